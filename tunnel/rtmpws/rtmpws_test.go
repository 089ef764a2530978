package rtmpws

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/coder/websocket"

	"github.com/rtmphub/rtmphub/tunnel"
)

// served is what a test's ConnHandler saw of one connection.
type served struct {
	conn net.Conn
	info tunnel.Info
}

// testServer serves h on a loopback HTTP server; every connection handed
// to the ConnHandler is sent on the returned channel, and the handler
// runs fn on it (nil: echo until the connection ends).
func testServer(t *testing.T, cfg Config, fn func(net.Conn)) (*Handler, *httptest.Server, chan served) {
	t.Helper()
	got := make(chan served, 16)
	h := New(cfg, func(ctx context.Context, nc net.Conn, info tunnel.Info) {
		got <- served{nc, info}
		if fn != nil {
			fn(nc)
			return
		}
		io.Copy(nc, nc)
	})
	srv := httptest.NewServer(h)
	t.Cleanup(func() {
		srv.Close()
		done := make(chan struct{})
		go func() { h.Close(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Error("Handler.Close did not return within 5s")
		}
	})
	return h, srv, got
}

func wsURL(srv *httptest.Server) string { return "ws" + strings.TrimPrefix(srv.URL, "http") + Path }

func ctx5s(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func recv(t *testing.T, ch chan served) served {
	t.Helper()
	select {
	case s := <-ch:
		return s
	case <-time.After(5 * time.Second):
		t.Fatal("no connection reached the handler within 5s")
		return served{}
	}
}

func TestEchoThroughDialedConn(t *testing.T) {
	_, srv, got := testServer(t, Config{}, nil)
	for _, noSub := range []bool{false, true} {
		d := Dialer{NoSubprotocol: noSub}
		c, err := d.Dial(ctx5s(t), wsURL(srv))
		if err != nil {
			t.Fatal(err)
		}
		s := recv(t, got)
		if s.info.Protocol != Protocol || s.info.RemoteIP != "" {
			t.Errorf("info %+v, want protocol rtmpws and the socket's address", s.info)
		}
		wantSub := Subprotocol
		if noSub {
			wantSub = ""
		}
		if sub := s.conn.(*Conn).Subprotocol(); sub != wantSub || c.Subprotocol() != wantSub {
			t.Errorf("subprotocol server %q client %q, want %q", sub, c.Subprotocol(), wantSub)
		}
		// Frame boundaries mean nothing: bytes written in pieces come back
		// whole, however they were cut.
		want := bytes.Repeat([]byte("0123456789abcdef"), 10000) // 160000 bytes, several chunks
		go func() {
			for p := want; len(p) > 0; {
				n := min(len(p), 7000)
				c.Write(p[:n])
				p = p[n:]
			}
		}()
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		back := make([]byte, len(want))
		if _, err := io.ReadFull(c, back); err != nil || !bytes.Equal(back, want) {
			t.Fatalf("echo: %v (equal %v)", err, bytes.Equal(back, want))
		}
		c.Close()
		select {
		case <-c.Done():
		case <-time.After(3 * time.Second):
			t.Fatal("client conn not done 3s after Close")
		}
	}
}

// A read deadline that passes returns a timeout and leaves the
// connection usable, as on a socket (the session core's idle timeout
// relies on it); so does a write deadline that passed before a Write.
func TestDeadlinesLeaveConnUsable(t *testing.T) {
	_, srv, got := testServer(t, Config{}, func(nc net.Conn) {
		nc.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		buf := make([]byte, 10)
		_, err := nc.Read(buf)
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, os.ErrDeadlineExceeded) {
			nc.Write([]byte("bad read err: " + errString(err)))
			return
		}
		nc.SetWriteDeadline(time.Now().Add(-time.Second))
		if _, err := nc.Write([]byte("x")); !errors.Is(err, os.ErrDeadlineExceeded) {
			nc.SetWriteDeadline(time.Time{})
			nc.Write([]byte("bad write err: " + errString(err)))
			return
		}
		nc.SetDeadline(time.Time{})
		nc.Write([]byte("ready"))
		n, err := io.ReadFull(nc, buf[:4])
		if err != nil {
			return
		}
		nc.Write(append([]byte("got "), buf[:n]...))
	})
	c, err := Dial(ctx5s(t), wsURL(srv))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	recv(t, got)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 64)
	n, err := io.ReadAtLeast(c, buf, 5)
	if err != nil || string(buf[:n]) != "ready" {
		t.Fatalf("server after its deadlines: %q %v", buf[:n], err)
	}
	c.Write([]byte("ping"))
	n, err = io.ReadAtLeast(c, buf, 8)
	if err != nil || string(buf[:n]) != "got ping" {
		t.Fatalf("server read after a passed deadline: %q %v", buf[:n], err)
	}
}

// A write deadline that passes during a Write (a peer that reads nothing)
// ends it with a timeout, and the connection with it: a frame cut in the
// middle cannot be resumed.
func TestWriteDeadlineDuringWrite(t *testing.T) {
	writeErr := make(chan error, 1)
	_, srv, got := testServer(t, Config{}, func(nc net.Conn) {
		nc.SetWriteDeadline(time.Now().Add(200 * time.Millisecond))
		_, err := nc.Write(make([]byte, 64<<20)) // far more than the sockets hold
		writeErr <- err
		if _, err := nc.Write([]byte("x")); err == nil {
			writeErr <- errors.New("a write after the cut succeeded")
		}
		close(writeErr)
	})
	ws, _, err := websocket.Dial(ctx5s(t), wsURL(srv), nil) // never reads
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	recv(t, got)
	start := time.Now()
	select {
	case err := <-writeErr:
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("write ended with %v, want a timeout", err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("write ended after %v, deadline 200ms", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("write not ended by its deadline within 5s")
	}
	for err := range writeErr {
		t.Error(err)
	}
}

func errString(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}

// logBuf collects a handler's log lines.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// A text frame and a message over MaxFrame each close only their
// connection, with 1003 and 1009, one log line naming the client; the
// handler's Read sees an error, and a connection beside them goes on.
func TestBadFramesCloseTheirConnection(t *testing.T) {
	var logs logBuf
	readErr := make(chan error, 4)
	h, srv, got := testServer(t, Config{MaxFrame: 4096, Logger: slog.New(slog.NewTextHandler(&logs, nil))}, func(nc net.Conn) {
		_, err := io.Copy(nc, nc)
		if err == nil {
			err = io.EOF
		}
		readErr <- err
	})
	good, err := Dial(ctx5s(t), wsURL(srv))
	if err != nil {
		t.Fatal(err)
	}
	defer good.Close()
	recv(t, got)

	for _, tc := range []struct {
		name string
		typ  websocket.MessageType
		size int
		code websocket.StatusCode
		log  string
	}{
		{"text frame", websocket.MessageText, 10, websocket.StatusUnsupportedData, "text frame"},
		{"oversized frame", websocket.MessageBinary, 10000, websocket.StatusMessageTooBig, "over the size limit"},
	} {
		ws, _, err := websocket.Dial(ctx5s(t), wsURL(srv), nil)
		if err != nil {
			t.Fatal(err)
		}
		recv(t, got)
		if err := ws.Write(ctx5s(t), tc.typ, make([]byte, tc.size)); err != nil {
			t.Fatalf("%s: write: %v", tc.name, err)
		}
		for err == nil {
			_, _, err = ws.Read(ctx5s(t)) // the echo of what came before the limit, then the close
		}
		if code := websocket.CloseStatus(err); code != tc.code {
			t.Errorf("%s: closed with %v (%v), want %v", tc.name, code, err, tc.code)
		}
		select {
		case err := <-readErr:
			if err == io.EOF {
				t.Errorf("%s: handler's read ended with EOF, want an error", tc.name)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: handler's read did not end", tc.name)
		}
		ws.CloseNow()
		if n := strings.Count(logs.String(), tc.log); n != 1 {
			t.Errorf("%s: %d log lines with %q, want 1:\n%s", tc.name, n, tc.log, logs.String())
		}
	}
	if !strings.Contains(logs.String(), "remote=127.0.0.1:") {
		t.Errorf("log lines do not name the client:\n%s", logs.String())
	}
	good.SetDeadline(time.Now().Add(5 * time.Second))
	good.Write([]byte("still here"))
	buf := make([]byte, 10)
	if _, err := io.ReadFull(good, buf); err != nil || string(buf) != "still here" {
		t.Fatalf("the other connection: %q %v", buf, err)
	}
	waitFor(t, func() bool { st := h.Stats(); return st.TextFrames == 1 && st.TooLarge == 1 && st.Open == 1 },
		func() string {
			return fmt.Sprintf("stats %+v, want one text frame, one too large, one open", h.Stats())
		})
}

func waitFor(t *testing.T, cond func() bool, what func() string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within 5s: %s", what())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestRefusedRequests(t *testing.T) {
	var logs logBuf
	_, srv, got := testServer(t, Config{AllowOrigins: []string{"https://good.example"}, Logger: slog.New(slog.NewTextHandler(&logs, nil))}, nil)
	resp, err := http.Get(srv.URL + Path)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUpgradeRequired {
		t.Errorf("plain GET %s: %d, want 426", Path, resp.StatusCode)
	}
	host := strings.TrimPrefix(srv.URL, "http://")
	for _, tc := range []struct {
		origin string
		ok     bool
	}{
		{"https://evil.example", false},
		{"https://good.example", true},
		{"HTTPS://GOOD.example/", true},
		{"", true},                     // not a browser
		{"http://" + host, true},       // a page of the hub itself
		{"http://good.example", false}, // another scheme is another origin
	} {
		d := Dialer{Header: http.Header{}}
		if tc.origin != "" {
			d.Header.Set("Origin", tc.origin)
		}
		c, err := d.Dial(ctx5s(t), wsURL(srv))
		var de *DialError
		switch {
		case tc.ok && err != nil:
			t.Errorf("origin %q refused: %v", tc.origin, err)
		case !tc.ok && (!errors.As(err, &de) || de.Status != http.StatusForbidden):
			t.Errorf("origin %q: %v, want a 403", tc.origin, err)
		}
		if c != nil {
			recv(t, got)
			c.Close()
		}
	}
	if !strings.Contains(logs.String(), "origin=https://evil.example") {
		t.Errorf("refused origin not logged:\n%s", logs.String())
	}
}

// The protocol is rtmpwss when a trusted proxy says the client came over
// TLS, and its client address is the forwarded one; the same headers from
// a peer that is not trusted are ignored.
func TestForwardedByTrustedProxy(t *testing.T) {
	for _, tc := range []struct {
		trusted  string
		header   http.Header
		proto    string
		remoteIP string
	}{
		{"127.0.0.1", http.Header{"X-Forwarded-Proto": {"https"}, "X-Forwarded-For": {"203.0.113.9"}}, ProtocolSecure, "203.0.113.9"},
		{"127.0.0.1", http.Header{"Forwarded": {`for="[2001:db8::7]";proto=https`}}, ProtocolSecure, "2001:db8::7"},
		{"127.0.0.1", http.Header{"X-Forwarded-Proto": {"http"}}, Protocol, ""},
		{"10.0.0.0/8", http.Header{"X-Forwarded-Proto": {"https"}, "X-Forwarded-For": {"203.0.113.9"}}, Protocol, ""},
	} {
		trusted, err := tunnel.ParsePrefixes(tc.trusted)
		if err != nil {
			t.Fatal(err)
		}
		_, srv, got := testServer(t, Config{TrustedProxies: trusted}, nil)
		d := Dialer{Header: tc.header}
		c, err := d.Dial(ctx5s(t), wsURL(srv))
		if err != nil {
			t.Fatal(err)
		}
		s := recv(t, got)
		if s.info.Protocol != tc.proto || s.info.RemoteIP != tc.remoteIP {
			t.Errorf("trusted %s, headers %v: info %+v, want %s %q", tc.trusted, tc.header, s.info, tc.proto, tc.remoteIP)
		}
		c.Close()
	}
}

// A client that stops answering pings is closed once PongTimeout has
// passed after a ping; one that answers stays.
func TestKeepaliveClosesSilentPeer(t *testing.T) {
	var logs logBuf
	readErr := make(chan error, 2)
	_, srv, got := testServer(t, Config{PingInterval: 50 * time.Millisecond, PongTimeout: 100 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))}, func(nc net.Conn) {
		_, err := io.Copy(io.Discard, nc)
		readErr <- err
	})
	// coder/websocket answers pings only while a read is under way: a
	// client that never reads never answers.
	silent, _, err := websocket.Dial(ctx5s(t), wsURL(srv), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.CloseNow()
	recv(t, got)
	live, err := Dial(ctx5s(t), wsURL(srv)) // its reader answers pings
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	recv(t, got)
	start := time.Now()
	select {
	case err := <-readErr:
		if !errors.Is(err, errNoPong) {
			t.Errorf("silent peer's read ended with %v, want %v", err, errNoPong)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("silent peer closed after %v", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("silent peer not closed within 5s")
	}
	if !strings.Contains(logs.String(), "no pong") {
		t.Errorf("no log line for the missing pong:\n%s", logs.String())
	}
	// The answering client outlives several more pings.
	time.Sleep(300 * time.Millisecond)
	select {
	case err := <-readErr:
		t.Fatalf("answering client closed: %v", err)
	default:
	}
}

// Handler.Close ends open connections (1001) and waits for their
// handlers; a handler that serves until its connection fails returns.
func TestCloseEndsConnections(t *testing.T) {
	h, srv, got := testServer(t, Config{}, nil)
	ws, _, err := websocket.Dial(ctx5s(t), wsURL(srv), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	recv(t, got)
	readDone := make(chan error, 1)
	go func() { _, _, err := ws.Read(ctx5s(t)); readDone <- err }()
	closed := make(chan struct{})
	go func() { h.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return within 5s")
	}
	select {
	case err := <-readDone:
		if code := websocket.CloseStatus(err); code != websocket.StatusGoingAway {
			t.Errorf("client saw %v (%v), want 1001", code, err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("client not closed")
	}
	resp, err := http.Get(srv.URL + Path)
	if err == nil {
		resp.Body.Close()
	}
}

// The deadline fires once, wakes waiters, and is usable again when moved.
func TestDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var fired atomic.Int32
		d := newDeadline(func() { fired.Add(1) })
		d.set(time.Now().Add(time.Second))
		ch := d.wait()
		time.Sleep(999 * time.Millisecond)
		if d.passed() {
			t.Fatal("passed early")
		}
		<-ch
		synctest.Wait() // the callback runs after the channel closes
		if !d.passed() || fired.Load() != 1 {
			t.Fatalf("passed %v fired %d", d.passed(), fired.Load())
		}
		d.set(time.Now().Add(time.Second))
		if d.passed() {
			t.Fatal("moved deadline still passed")
		}
		d.set(time.Now().Add(2 * time.Second)) // the first timer must not fire
		time.Sleep(1500 * time.Millisecond)
		if d.passed() || fired.Load() != 1 {
			t.Fatalf("a moved deadline fired: passed %v fired %d", d.passed(), fired.Load())
		}
		d.set(time.Time{})
		time.Sleep(time.Hour)
		if d.passed() || fired.Load() != 1 {
			t.Fatal("a cleared deadline fired")
		}
		d.set(time.Now().Add(-time.Second))
		if !d.passed() || fired.Load() != 2 {
			t.Fatalf("a past deadline: passed %v fired %d", d.passed(), fired.Load())
		}
	})
}

func TestForwardedTLS(t *testing.T) {
	trusted, _ := tunnel.ParsePrefixes("10.0.0.1")
	peer := netip.MustParseAddr("10.0.0.1")
	for _, tc := range []struct {
		fwd, xfp []string
		want     bool
	}{
		{nil, []string{"https"}, true},
		{nil, []string{"https, http"}, false}, // the nearest hop says http
		{nil, []string{"http, https"}, true},
		{[]string{"for=1.2.3.4;proto=https"}, []string{"http"}, true}, // Forwarded wins
		{[]string{"for=1.2.3.4"}, []string{"https"}, false},
		{nil, nil, false},
	} {
		if got := tunnel.ForwardedTLS(peer, trusted, tc.fwd, tc.xfp); got != tc.want {
			t.Errorf("Forwarded %q X-Forwarded-Proto %q: %v, want %v", tc.fwd, tc.xfp, got, tc.want)
		}
	}
	if tunnel.ForwardedTLS(netip.MustParseAddr("10.0.0.2"), trusted, nil, []string{"https"}) {
		t.Error("believed an untrusted peer")
	}
}
