package main

import (
	"net/netip"
	"strings"
	"time"

	"github.com/rtmphub/rtmphub/session"
	"github.com/rtmphub/rtmphub/tunnel"
)

// defaultConfig is config at its defaults: the command's own for the rows
// only it uses, and the libraries' for the rows that configure them, read
// back through links from session.DefaultConfig and tunnel.DefaultConfig.
func defaultConfig() *config {
	c := &config{
		RTMPAddr:        ":1935",
		LogLevel:        "info",
		LogFormat:       "text",
		ShutdownTimeout: 5 * time.Second,
		HTTPAddr:        ":80",
		TLSAddr:         ":443",
		ScriptTimeout:   5 * time.Second,
		ScriptQueue:     4096,
		AdminAddr:       "127.0.0.1:1111",
		QUICAddr:        ":1935",
		QUICIdleTimeout: 30 * time.Second,
		QUICKeepAlive:   10 * time.Second,
		RoQRDatagrams:   true,
		UpstreamTimeout: 5 * time.Second,
	}
	s, t := session.DefaultConfig(), tunnel.DefaultConfig()
	for _, l := range c.links(&s, &t) {
		l.fromLib()
	}
	return c
}

// libraryConfigs is what the rows that configure the libraries give them;
// the wiring (callbacks, logger, TLS) is serve's.
func (c *config) libraryConfigs() (session.Config, tunnel.Config) {
	var s session.Config
	var t tunnel.Config
	for _, l := range c.links(&s, &t) {
		l.toLib()
	}
	return s, t
}

// links ties each row that configures a library to the library's field,
// both ways: toLib when serving, fromLib for the row's default. It is the
// one place where a row and its field differ in sense (a setting that is
// on against a library's Disable or No field) or in how they spell off.
func (c *config) links(s *session.Config, t *tunnel.Config) []link {
	return []link{
		same(&c.DataDir, &s.DataDir),
		same(&c.StrictApps, &s.StrictApps),
		number(&c.MaxConnections, &s.MaxConnections),
		number(&c.MaxMessageSize, &s.MaxMessageSize),
		number(&c.PlayerQueue, &s.PlayerQueue),
		number(&c.PlayerQueueBytes, &s.PlayerQueueBytes),
		same(&c.StallTimeout, &s.StallTimeout),
		negated(&c.GOPCache, &s.DisableGOPCache),
		offAtZero(&c.WriteMerge, &s.WriteMerge),
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
		same(&c.AuthTimeout, &s.AuthTimeout),
		number(&c.MaxConnectionsPerIP, &s.MaxConnectionsPerIP), // off at 0 in both
		number(&c.ClientBandwidthOut, &s.ClientBandwidthOut),   // off at 0 in both
		number(&c.ClientBandwidthIn, &s.ClientBandwidthIn),     // off at 0 in both
		same(&c.ClientIdleTimeout, &s.ClientIdleTimeout),       // off at 0 in both

		offAtZero(&c.RTMPTHold, &t.HoldTime),
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
	}
}

// link carries one row to its library field and back.
type link struct{ toLib, fromLib func() }

func same[T any](row, lib *T) link {
	return link{func() { *lib = *row }, func() { *row = *lib }}
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
