package main

import (
	"net/netip"
	"strings"
	"time"

	"github.com/rtmphub/rtmphub/bridge"
	"github.com/rtmphub/rtmphub/session"
	"github.com/rtmphub/rtmphub/session/script"
	"github.com/rtmphub/rtmphub/tunnel"
	"github.com/rtmphub/rtmphub/tunnel/rtmpquic"
	"github.com/rtmphub/rtmphub/tunnel/rtmpws"
	"github.com/rtmphub/rtmphub/web"
)

// libraries are the configurations of the packages the server is made of,
// as far as the settings reach them.
type libraries struct {
	session session.Config
	tunnel  tunnel.Config
	quic    rtmpquic.Config
	script  script.Config
	gateway bridge.GatewayConfig
	web     web.Config
	rtmpws  rtmpws.Config
}

// defaultConfig is config at its defaults: the libraries' for the rows
// that configure them, read back through links from their DefaultConfig
// functions, and the command's own for the rest (the ports it listens on,
// logging, --rtmpws and --roqr-datagrams, which the server offers while a QUIC
// client asks for it).
func defaultConfig() *config {
	c := &config{
		RTMPAddr:        ":1935",
		LogLevel:        "info",
		LogFormat:       "text",
		ShutdownTimeout: 5 * time.Second,
		HTTPAddr:        ":80",
		TLSAddr:         ":443",
		AdminAddr:       "127.0.0.1:1111",
		QUICAddr:        ":1935",
		RoQRDatagrams:   true,
		HTTPPlayback:    true,
		RTMPWS:          true,
		ClusterTTL:      6 * time.Second,
		ClusterOwnerTTL: 3 * time.Second,
	}
	libs := &libraries{
		session: session.DefaultConfig(),
		tunnel:  tunnel.DefaultConfig(),
		quic:    rtmpquic.DefaultConfig(),
		script:  script.DefaultConfig(),
		gateway: bridge.DefaultGatewayConfig(),
		web:     web.DefaultConfig(),
		rtmpws:  rtmpws.DefaultConfig(),
	}
	for _, l := range c.links(libs) {
		if l.fromLib != nil {
			l.fromLib()
		}
	}
	return c
}

// libraryConfigs is what the settings give the libraries; the wiring
// (callbacks, loggers, TLS) is serve's.
func (c *config) libraryConfigs() *libraries {
	libs := &libraries{}
	for _, l := range c.links(libs) {
		l.toLib()
	}
	return libs
}

// links ties each row that configures a library to the library's field,
// both ways: toLib when serving, fromLib for the row's default. A row that
// configures several libraries takes its default from the first and feeds
// the others. links is the one place where a row and its field differ in
// sense (a setting that is on against a library's Disable or No field) or
// in how they spell off.
func (c *config) links(l *libraries) []link {
	s, t, q := &l.session, &l.tunnel, &l.quic
	return []link{
		same(&c.DataDir, &s.DataDir),
		feeds(same(&c.DataDir, &l.script.DataDir)),
		feeds(same(&c.DataDir, &l.web.DataDir)),
		same(&c.StrictApps, &s.StrictApps),
		number(&c.MaxConnections, &s.MaxConnections),
		number(&c.MaxMessageSize, &s.MaxMessageSize),
		feeds(number(&c.MaxMessageSize, &q.MaxMessageSize)),
		number(&c.PlayerQueue, &s.PlayerQueue),
		number(&c.PlayerQueueBytes, &s.PlayerQueueBytes),
		same(&c.StallTimeout, &s.StallTimeout),
		feeds(same(&c.StallTimeout, &l.gateway.StallTimeout)),
		negated(&c.GOPCache, &s.DisableGOPCache),
		offAtZero(&c.WriteMerge, &s.WriteMerge),
		same(&c.MergedWrite, &s.MergedWrite),
		same(&c.TCPNoDelay, &s.TCPNoDelay),
		number(&c.ChunkSize, &s.OutChunkSize),
		offAtZero(&c.PublisherGrace, &s.PublisherGrace),
		same(&c.CallTimeout, &s.CallTimeout),
		negated(&c.BWCheck, &s.DisableBWCheck),
		same(&c.SOSyncInterval, &s.SOSyncInterval),
		same(&c.SOSaveInterval, &s.SOSaveInterval),
		number(&c.MaxSharedObject, &s.MaxSharedObjects),
		number(&c.MaxSOSize, &s.MaxSOSize),
		number(&c.MaxSOProperties, &s.MaxSOProperties),
		same(&c.ScriptTimeout, &l.script.MaxRun),
		number(&c.ScriptQueue, &l.script.QueueLen),
		same(&c.AuthTimeout, &s.AuthTimeout),
		number(&c.MaxConnectionsPerIP, &s.MaxConnectionsPerIP), // off at 0 in both
		number(&c.ClientBandwidthOut, &s.ClientBandwidthOut),   // off at 0 in both
		number(&c.ClientBandwidthIn, &s.ClientBandwidthIn),     // off at 0 in both
		same(&c.ClientIdleTimeout, &s.ClientIdleTimeout),       // off at 0 in both

		offAtZero(&c.RTMPTHold, &t.HoldTime),
		offAtZero(&c.RTMPTReplyMerge, &t.ReplyMerge),
		same(&c.RTMPTTimeout, &t.SessionTimeout),
		number(&c.RTMPTMaxSessions, &t.MaxSessions),
		number(&c.RTMPTMaxPerIP, &t.MaxSessionsPerIP),
		number(&c.RTMPTMaxBody, &t.MaxBodySize),
		number(&c.RTMPTMaxPending, &t.MaxPending),
		derived(&c.RTMPTConnsPerIP, &t.MaxHTTPConnsPerIP),
		number(&c.RTMPTMaxBuffered, &t.MaxBufferedBody),
		same(&c.RTMPTHeadTimeout, &t.HeadTimeout),
		same(&c.RTMPTBodyTimeout, &t.BodyTimeout),
		number(&c.RTMPTMinBodyRate, &t.MinBodyRate),
		same(&c.RTMPTIDPrefix, &t.SessionIDPrefix),
		negated(&c.RTMPTDirect, &t.NoDirect),
		prefixes(&c.TrustedProxies, &t.TrustedProxies),
		feeds(prefixes(&c.TrustedProxies, &l.web.TrustedProxies)),
		list(&c.HTTPAllowOrigins, &l.web.AllowOrigins),
		feeds(prefixes(&c.TrustedProxies, &l.rtmpws.TrustedProxies)),
		list(&c.RTMPWSAllowOrigins, &l.rtmpws.AllowOrigins),
		offAtZero(&c.RTMPWSPing, &l.rtmpws.PingInterval),
		same(&c.RTMPWSPongTimeout, &l.rtmpws.PongTimeout),
		number(&c.RTMPWSMaxFrame, &l.rtmpws.MaxFrame),
		same(&c.HLSSegment, &l.web.HLS.SegmentMinDuration),
		same(&c.HLSPart, &l.web.HLS.PartMinDuration),
		same(&c.HLSSegments, &l.web.HLS.SegmentCount),
		same(&c.HLSIdle, &l.web.HLS.Idle),
		same(&c.HLSMaxMuxers, &l.web.HLS.MaxMuxers),

		same(&c.QUICIdleTimeout, &q.IdleTimeout),
		offAtZero(&c.QUICKeepAlive, &q.KeepAlive),
		// The server offers datagrams unless told not to; the library's
		// default (off) is a client's, which asks for them.
		feeds(same(&c.RoQRDatagrams, &q.RoQRDatagrams)),
		same(&c.Upstream, &l.gateway.Upstream),
		same(&c.UpstreamProxy, &l.gateway.ProxyProtocol), // off at 0 in both
		same(&c.UpstreamTimeout, &l.gateway.DialTimeout),
	}
}

// link carries one row to its library field and back (fromLib nil: the
// row takes its default from another library).
type link struct{ toLib, fromLib func() }

func same[T any](row, lib *T) link {
	return link{func() { *lib = *row }, func() { *row = *lib }}
}

// feeds makes l one way: its row goes to one more library, which does not
// give it its default.
func feeds(l link) link {
	l.fromLib = nil
	return l
}

// number links integers of different types (a byteSize row, a uint32
// field); the row's bounds keep its value in the field's range.
func number[R, L ~int | ~int64 | ~uint32](row *R, lib *L) link {
	return link{func() { *lib = L(*row) }, func() { *row = R(*lib) }}
}

// negated links a setting that is on (--gop-cache) to the library's
// field that turns it off (DisableGOPCache), false at its zero value.
func negated(row, lib *bool) link {
	return link{func() { *lib = !*row }, func() { *row = !*lib }}
}

// offAtZero links a duration the user turns off with 0 to a library
// field where 0 is the default and a negative value is off.
func offAtZero(row, lib *time.Duration) link {
	return link{
		func() {
			if *lib = *row; *row == 0 {
				*lib = -1
			}
		},
		func() { *row = max(*lib, 0) },
	}
}

// derived links a row whose default (0) lets the library derive the value
// from other fields; the row shows 0, not the derived default.
func derived(row, lib *int) link {
	return link{func() { *lib = *row }, func() { *row = 0 }}
}

// list links a comma-separated row to a list of its items.
func list(row *string, lib *[]string) link {
	return link{
		func() {
			*lib = nil
			for _, it := range strings.Split(*row, ",") {
				if it = strings.TrimSpace(it); it != "" {
					*lib = append(*lib, it)
				}
			}
		},
		func() { *row = strings.Join(*lib, ",") },
	}
}

// prefixes links the comma-separated trusted proxies (checked by their
// kind) to the parsed prefixes.
func prefixes(row *string, lib *[]netip.Prefix) link {
	return link{
		func() { *lib, _ = tunnel.ParsePrefixes(*row) },
		func() {
			texts := make([]string, len(*lib))
			for i, p := range *lib {
				texts[i] = p.String()
			}
			*row = strings.Join(texts, ",")
		},
	}
}
