package admin

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/rtmphub/rtmphub/session"
)

// collector turns the core's views into metrics at each scrape: nothing is
// counted twice, and the media path pays nothing for metrics.
// Its names get the rtmphub_ prefix where it is registered (New).
type collector struct {
	srv     *session.Server
	version string

	info, uptime, conns, accepted, rejected, authDenied, slow, dropped,
	bytesIn, bytesOut, instances, streams, clients,
	streamBytes, streamMessages, streamPlayers, streamBitrate, viewers, streamViewers *prometheus.Desc
}

func newCollector(srv *session.Server, version string) *collector {
	d := prometheus.NewDesc
	sl := []string{"app", "instance", "stream"}
	return &collector{
		srv: srv, version: version,
		info:           d("build_info", "Build information (always 1).", []string{"version"}, nil),
		uptime:         d("uptime_seconds", "Seconds since the server started.", nil, nil),
		conns:          d("connections", "Clients connected now, by protocol.", []string{"protocol"}, nil),
		accepted:       d("connections_accepted_total", "Connections accepted.", nil, nil),
		rejected:       d("connections_rejected_total", "Connections refused (limits, bad input, rejected connects).", nil, nil),
		authDenied:     d("auth_denied_total", "Connects, publishes and plays denied by authorization.", nil, nil),
		slow:           d("slow_disconnects_total", "Clients dropped for stalled writes or queue overflow.", nil, nil),
		dropped:        d("dropped_messages_total", "Media messages skipped for slow players.", nil, nil),
		bytesIn:        d("received_bytes_total", "Bytes received from clients.", nil, nil),
		bytesOut:       d("sent_bytes_total", "Bytes sent to clients.", nil, nil),
		instances:      d("instances", "Running application instances.", nil, nil),
		streams:        d("streams", "Live streams.", nil, nil),
		clients:        d("instance_clients", "Clients connected to an instance.", []string{"app", "instance"}, nil),
		streamBytes:    d("stream_received_bytes_total", "Media bytes received from a stream's current publisher.", sl, nil),
		streamMessages: d("stream_received_messages_total", "Media messages received from a stream's current publisher.", sl, nil),
		streamPlayers:  d("stream_players", "Players of a live stream.", sl, nil),
		streamBitrate:  d("stream_bitrate_bits_per_second", "Measured input bitrate of a live stream.", sl, nil),
		viewers:        d("viewers", "Viewers that are not RTMP clients (HTTP-FLV, WebSocket-FLV, HLS muxers), by protocol.", []string{"protocol"}, nil),
		streamViewers:  d("stream_viewers", "Readers of a live stream by protocol: RTMP players under their connection's, browser viewers under theirs.", append(sl, "protocol"), nil),
	}
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.info, c.uptime, c.conns, c.accepted, c.rejected, c.authDenied, c.slow, c.dropped,
		c.bytesIn, c.bytesOut, c.instances, c.streams, c.clients, c.streamBytes, c.streamMessages, c.streamPlayers, c.streamBitrate, c.viewers, c.streamViewers} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	g, k := prometheus.GaugeValue, prometheus.CounterValue
	m := func(d *prometheus.Desc, t prometheus.ValueType, v float64, labels ...string) prometheus.Metric {
		metric, err := prometheus.NewConstMetric(d, t, v, labels...)
		if err != nil {
			return prometheus.NewInvalidMetric(d, err)
		}
		return metric
	}
	v := c.srv.Overview()
	ch <- m(c.info, g, 1, c.version)
	ch <- m(c.uptime, g, v.UptimeSeconds)
	protos := map[string]int{"rtmp": 0} // always present, so that a query never finds nothing
	for p, n := range v.ByProtocol {
		protos[p] = n
	}
	for p, n := range protos {
		ch <- m(c.conns, g, float64(n), p)
	}
	ch <- m(c.accepted, k, float64(v.Accepted))
	ch <- m(c.rejected, k, float64(v.Rejected))
	ch <- m(c.authDenied, k, float64(v.AuthDenied))
	ch <- m(c.slow, k, float64(v.SlowDisconnects))
	ch <- m(c.dropped, k, float64(v.DroppedMessages))
	ch <- m(c.bytesIn, k, float64(v.BytesIn))
	ch <- m(c.bytesOut, k, float64(v.BytesOut))
	for _, p := range []string{"http-flv", "ws-flv", "hls"} {
		ch <- m(c.viewers, g, float64(v.Viewers[p]), p)
	}
	ch <- m(c.instances, g, float64(v.Instances))
	ch <- m(c.streams, g, float64(v.Streams))
	for _, a := range c.srv.Apps() {
		for _, in := range a.Instances {
			ch <- m(c.clients, g, float64(in.Clients), in.App, in.Name)
		}
	}
	for _, s := range c.srv.Streams() {
		ch <- m(c.streamPlayers, g, float64(len(s.Players)), s.App, s.Instance, s.Name)
		for p, n := range s.Viewers {
			ch <- m(c.streamViewers, g, float64(n), s.App, s.Instance, s.Name, p)
		}
		if s.Publisher != 0 {
			ch <- m(c.streamBytes, k, float64(s.Bytes), s.App, s.Instance, s.Name)
			ch <- m(c.streamMessages, k, float64(s.Messages), s.App, s.Instance, s.Name)
			ch <- m(c.streamBitrate, g, s.Bitrate, s.App, s.Instance, s.Name)
		}
	}
}
