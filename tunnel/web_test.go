package tunnel

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestWebListenerTakesWhatIsNotRTMPT checks that a GET on a sniffed port
// reaches the web listener whole, and is served there, while RTMPT's
// POSTs on the same port are not, and that both count against the
// connection limit.
func TestWebListenerTakesWhatIsNotRTMPT(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := NewServer(Config{MaxHTTPConns: 3}, echo)
	web := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.Method+" "+r.URL.Path)
	}), ReadHeaderTimeout: 5 * time.Second}
	wln := s.WebListener()
	webDone := make(chan error, 1)
	go func() { webDone <- web.Serve(wln) }()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, ln) }()
	addr := ln.Addr().String()

	c := dialRaw(t, addr)
	c.write([]byte("GET /live/demo.flv HTTP/1.1\r\nHost: x\r\n\r\n"))
	if r := c.read(); r.status() != 200 || string(r.body) != "GET /live/demo.flv" {
		t.Fatalf("GET: %q %q", r.statusLine, r.body)
	}
	c.write([]byte("OPTIONS /live/demo.flv HTTP/1.1\r\nHost: x\r\n\r\n"))
	if r := c.read(); r.status() != 200 || string(r.body) != "OPTIONS /live/demo.flv" {
		t.Fatalf("OPTIONS on the same connection: %q %q", r.statusLine, r.body)
	}
	// RTMPT on the same port still goes to the tunnel.
	c2 := dialRaw(t, addr)
	if sid := c2.open(); len(sid) != sidLen {
		t.Fatalf("RTMPT open beside the web listener: %q", sid)
	}
	if n := s.Stats().HTTPConns; n != 2 {
		t.Fatalf("HTTP connections counted: %d, want 2 (one web, one RTMPT)", n)
	}
	// A reverse proxy reuses a kept-alive connection that carried RTMPT
	// for a GET: the web listener gets the rest of the connection.
	c2.write([]byte("GET /live/reused.flv HTTP/1.1\r\nHost: x\r\n\r\n"))
	if r := c2.read(); r.status() != 200 || string(r.body) != "GET /live/reused.flv" {
		t.Fatalf("GET on a connection that carried RTMPT: %q %q", r.statusLine, r.body)
	}
	c2.write([]byte("GET /live/again.flv HTTP/1.1\r\nHost: x\r\n\r\n"))
	if r := c2.read(); r.status() != 200 || string(r.body) != "GET /live/again.flv" {
		t.Fatalf("second GET there: %q %q", r.statusLine, r.body)
	}
	if n := s.Stats().HTTPConns; n != 2 {
		t.Fatalf("HTTP connections counted: %d, want 2", n)
	}
	c3 := dialRaw(t, addr)
	c3.write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
	c3.read()
	c4 := dialRaw(t, addr)
	c4.write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
	if r := c4.read(); r.status() != 429 {
		t.Fatalf("a web connection over MaxHTTPConns: %q, want 429", r.statusLine)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return")
	}
	select {
	case err := <-webDone:
		if err == nil || !strings.Contains(err.Error(), "closed") {
			t.Fatalf("web server: %v, want the listener closed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the web listener did not close with the server")
	}
	// The server closed the web connection it handed out.
	c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.nc.Read(make([]byte, 1)); err == nil {
		t.Fatal("web connection still open after the server stopped")
	}
}
