package main

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/rtmphub/rtmphub/tunnel"
)

// The RTMPT counters reach the metrics once the server is set, and move
// with its requests.
func TestTunnelCollector(t *testing.T) {
	tc := newTunnelCollector()
	reg := prometheus.NewRegistry()
	reg.MustRegister(tc)
	if n, err := testutil.GatherAndCount(reg); err != nil || n != 0 {
		t.Fatalf("before the server is set: %d metrics (%v), want none", n, err)
	}
	ts := tunnel.NewServer(tunnel.Config{}, func(ctx context.Context, nc net.Conn, info tunnel.Info) { nc.Close() })
	tc.ts.Store(ts)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ts.Run(ctx, ln) }()
	defer func() { cancel(); <-done }()
	nc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(5 * time.Second))
	// An unknown session: one request, refused.
	nc.Write([]byte("POST /idle/AAAAAAAAAAAAAAAA/0 HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\n\x00"))
	buf := make([]byte, 512)
	if n, err := nc.Read(buf); err != nil || !strings.Contains(string(buf[:n]), " 404 ") {
		t.Fatalf("reply %q %v", buf[:n], err)
	}
	want := `
# HELP rtmpt_refused_total RTMPT HTTP requests answered with a 4xx status.
# TYPE rtmpt_refused_total counter
rtmpt_refused_total 1
# HELP rtmpt_requests_total RTMPT HTTP requests served.
# TYPE rtmpt_requests_total counter
rtmpt_requests_total 1
# HELP rtmpt_http_connections HTTP connections open now.
# TYPE rtmpt_http_connections gauge
rtmpt_http_connections 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "rtmpt_refused_total", "rtmpt_requests_total", "rtmpt_http_connections"); err != nil {
		t.Fatal(err)
	}
}
