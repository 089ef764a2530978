package main

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rtmphub/rtmphub/tunnel"
	"github.com/rtmphub/rtmphub/tunnel/rtmpws"
	"github.com/rtmphub/rtmphub/web"
)

// tunnelCollector exports the RTMPT server's counters (tunnel.Stats) as
// rtmphub_rtmpt_* metrics. The admin API starts before the transports:
// it reports nothing until the server is set.
type tunnelCollector struct {
	ts atomic.Pointer[tunnel.Server]

	sessions, opened, timedOut, requests, refused, httpConns, direct, writerPolls *prometheus.Desc

	buffered, cutSlow, cutTooLarge, cutBudget, cutConnLimit *prometheus.Desc
}

func newTunnelCollector() *tunnelCollector {
	d := prometheus.NewDesc
	return &tunnelCollector{
		sessions:    d("rtmpt_sessions", "RTMPT sessions now.", nil, nil),
		opened:      d("rtmpt_sessions_opened_total", "RTMPT sessions opened.", nil, nil),
		timedOut:    d("rtmpt_sessions_timed_out_total", "RTMPT sessions closed because the client stopped polling.", nil, nil),
		requests:    d("rtmpt_requests_total", "RTMPT HTTP requests served.", nil, nil),
		refused:     d("rtmpt_refused_total", "RTMPT HTTP requests answered with a 4xx status.", nil, nil),
		httpConns:   d("rtmpt_http_connections", "HTTP connections open now.", nil, nil),
		direct:      d("rtmpt_direct_connections_total", "HTTP connections served without the HTTP server (plain TCP).", nil, nil),
		writerPolls: d("rtmpt_writer_polls_total", "RTMPT polls read and answered by the goroutine that wrote their data.", nil, nil),

		buffered:     d("rtmpt_request_body_buffered_bytes", "HTTP request body bytes buffered now, against --rtmpt-max-buffered.", nil, nil),
		cutSlow:      d("rtmpt_cut_slow_total", "HTTP connections closed for a request head or body slower than its deadline.", nil, nil),
		cutTooLarge:  d("rtmpt_cut_too_large_total", "HTTP requests refused for a body, head or line over its limit.", nil, nil),
		cutBudget:    d("rtmpt_cut_over_budget_total", "HTTP requests refused with 503 because buffered request bodies reached --rtmpt-max-buffered.", nil, nil),
		cutConnLimit: d("rtmpt_cut_conn_limit_total", "HTTP connections refused over --rtmpt-max-conns-per-ip or the global connection limit.", nil, nil),
	}
}

func (c *tunnelCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.sessions, c.opened, c.timedOut, c.requests, c.refused, c.httpConns, c.direct, c.writerPolls,
		c.buffered, c.cutSlow, c.cutTooLarge, c.cutBudget, c.cutConnLimit} {
		ch <- d
	}
}

func (c *tunnelCollector) Collect(ch chan<- prometheus.Metric) {
	ts := c.ts.Load()
	if ts == nil {
		return
	}
	st := ts.Stats()
	g, k := prometheus.GaugeValue, prometheus.CounterValue
	ch <- prometheus.MustNewConstMetric(c.sessions, g, float64(st.Sessions))
	ch <- prometheus.MustNewConstMetric(c.opened, k, float64(st.SessionsOpened))
	ch <- prometheus.MustNewConstMetric(c.timedOut, k, float64(st.SessionsTimeout))
	ch <- prometheus.MustNewConstMetric(c.requests, k, float64(st.Requests))
	ch <- prometheus.MustNewConstMetric(c.refused, k, float64(st.Refused))
	ch <- prometheus.MustNewConstMetric(c.httpConns, g, float64(st.HTTPConns))
	ch <- prometheus.MustNewConstMetric(c.direct, k, float64(st.DirectConns))
	ch <- prometheus.MustNewConstMetric(c.writerPolls, k, float64(st.WriterPolls))
	ch <- prometheus.MustNewConstMetric(c.buffered, g, float64(st.BufferedBody))
	ch <- prometheus.MustNewConstMetric(c.cutSlow, k, float64(st.CutSlow))
	ch <- prometheus.MustNewConstMetric(c.cutTooLarge, k, float64(st.CutTooLarge))
	ch <- prometheus.MustNewConstMetric(c.cutBudget, k, float64(st.CutOverBudget))
	ch <- prometheus.MustNewConstMetric(c.cutConnLimit, k, float64(st.CutConnLimit))
}

// webCollector exports the browser handler's counters (web.Stats) as
// rtmphub_web_* metrics; nothing until the handler is set (or when
// --http-playback is off).
type webCollector struct {
	h atomic.Pointer[web.Handler]

	requests, bytes, refused *prometheus.Desc
}

func newWebCollector() *webCollector {
	d := prometheus.NewDesc
	return &webCollector{
		requests: d("web_requests_total", "Browser playback served, by protocol: HTTP-FLV and WebSocket-FLV viewers started, HLS requests answered.", []string{"protocol"}, nil),
		bytes:    d("web_bytes_sent_total", "FLV bytes sent to HTTP-FLV and WebSocket-FLV viewers that have left, by protocol.", []string{"protocol"}, nil),
		refused:  d("web_refused_total", "Browser playback requests refused by authorization.", nil, nil),
	}
}

func (c *webCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.requests
	ch <- c.bytes
	ch <- c.refused
}

func (c *webCollector) Collect(ch chan<- prometheus.Metric) {
	h := c.h.Load()
	if h == nil {
		return
	}
	st := h.Stats()
	for p, n := range st.Requests {
		ch <- prometheus.MustNewConstMetric(c.requests, prometheus.CounterValue, float64(n), p)
	}
	for p, n := range st.Bytes {
		ch <- prometheus.MustNewConstMetric(c.bytes, prometheus.CounterValue, float64(n), p)
	}
	ch <- prometheus.MustNewConstMetric(c.refused, prometheus.CounterValue, float64(st.Refused))
}

// rtmpwsCollector exports RTMP over WebSocket's counters (rtmpws.Stats)
// as rtmphub_rtmpws_* metrics; nothing until the handler is set (or when
// --rtmpws is off).
type rtmpwsCollector struct {
	h atomic.Pointer[rtmpws.Handler]

	open, accepted, refused, closed *prometheus.Desc
}

func newRTMPWSCollector() *rtmpwsCollector {
	d := prometheus.NewDesc
	return &rtmpwsCollector{
		open:     d("rtmpws_connections", "RTMP-over-WebSocket connections open now.", nil, nil),
		accepted: d("rtmpws_accepted_total", "WebSocket upgrades of /rtmp accepted.", nil, nil),
		refused:  d("rtmpws_refused_total", "Requests of /rtmp refused: not an upgrade (426), origin not allowed (403), server stopping (503).", nil, nil),
		closed:   d("rtmpws_closed_total", "RTMP-over-WebSocket connections the server closed for the peer's fault, by reason: text_frame (1003), too_large (1009), no_pong (1008).", []string{"reason"}, nil),
	}
}

func (c *rtmpwsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.open, c.accepted, c.refused, c.closed} {
		ch <- d
	}
}

func (c *rtmpwsCollector) Collect(ch chan<- prometheus.Metric) {
	h := c.h.Load()
	if h == nil {
		return
	}
	st := h.Stats()
	k := prometheus.CounterValue
	ch <- prometheus.MustNewConstMetric(c.open, prometheus.GaugeValue, float64(st.Open))
	ch <- prometheus.MustNewConstMetric(c.accepted, k, float64(st.Accepted))
	ch <- prometheus.MustNewConstMetric(c.refused, k, float64(st.Refused))
	ch <- prometheus.MustNewConstMetric(c.closed, k, float64(st.TextFrames), "text_frame")
	ch <- prometheus.MustNewConstMetric(c.closed, k, float64(st.TooLarge), "too_large")
	ch <- prometheus.MustNewConstMetric(c.closed, k, float64(st.NoPong), "no_pong")
}
