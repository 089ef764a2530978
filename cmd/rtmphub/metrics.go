package main

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rtmphub/rtmphub/tunnel"
)

// tunnelCollector exports the RTMPT server's counters (tunnel.Stats) as
// rtmphub_rtmpt_* metrics. The admin API starts before the transports:
// it reports nothing until the server is set.
type tunnelCollector struct {
	ts atomic.Pointer[tunnel.Server]

	sessions, opened, timedOut, requests, refused, httpConns *prometheus.Desc
}

func newTunnelCollector() *tunnelCollector {
	d := prometheus.NewDesc
	return &tunnelCollector{
		sessions:  d("rtmpt_sessions", "RTMPT sessions now.", nil, nil),
		opened:    d("rtmpt_sessions_opened_total", "RTMPT sessions opened.", nil, nil),
		timedOut:  d("rtmpt_sessions_timed_out_total", "RTMPT sessions closed because the client stopped polling.", nil, nil),
		requests:  d("rtmpt_requests_total", "RTMPT HTTP requests served.", nil, nil),
		refused:   d("rtmpt_refused_total", "RTMPT HTTP requests answered with a 4xx status.", nil, nil),
		httpConns: d("rtmpt_http_connections", "HTTP connections open now.", nil, nil),
	}
}

func (c *tunnelCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.sessions, c.opened, c.timedOut, c.requests, c.refused, c.httpConns} {
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
}
