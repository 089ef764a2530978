package rtmpws

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"slices"
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
		if sub := s.conn.(interface{ Subprotocol() string }).Subprotocol(); sub != wantSub || c.Subprotocol() != wantSub {
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

// rawClient is a WebSocket client written here frame by frame, to send
// what a well-behaved library never would.
type rawClient struct {
	nc net.Conn
	br *bufio.Reader
}

func dialRaw(t *testing.T, srv *httptest.Server) *rawClient {
	t.Helper()
	nc, err := net.DialTimeout("tcp", strings.TrimPrefix(srv.URL, "http://"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(nc, "GET "+Path+" HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	// RFC 6455's own example key and answer.
	if resp.StatusCode != 101 || resp.Header.Get("Sec-WebSocket-Accept") != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
		t.Fatalf("upgrade: %d %v", resp.StatusCode, resp.Header)
	}
	return &rawClient{nc, br}
}

// frame encodes one client frame: masked (unless unmasked), fin or not.
func frame(op byte, fin, unmasked bool, payload []byte) []byte {
	b0 := op
	if fin {
		b0 |= 0x80
	}
	out := []byte{b0}
	mbit := byte(0x80)
	if unmasked {
		mbit = 0
	}
	switch n := len(payload); {
	case n <= 125:
		out = append(out, mbit|byte(n))
	case n <= 0xffff:
		out = append(out, mbit|126, byte(n>>8), byte(n))
	default:
		out = append(out, mbit|127)
		out = binary.BigEndian.AppendUint64(out, uint64(n))
	}
	if unmasked {
		return append(out, payload...)
	}
	key := [4]byte{0x37, 0xfa, 0x21, 0x3d}
	out = append(out, key[:]...)
	for i, b := range payload {
		out = append(out, b^key[i%4])
	}
	return out
}

// readFrame reads one server frame (servers never mask).
func (c *rawClient) readFrame(t *testing.T) (op byte, payload []byte) {
	t.Helper()
	var h [2]byte
	if _, err := io.ReadFull(c.br, h[:]); err != nil {
		t.Fatalf("read frame: %v", err)
	}
	n := int(h[1] & 0x7f)
	switch n {
	case 126:
		var e [2]byte
		io.ReadFull(c.br, e[:])
		n = int(binary.BigEndian.Uint16(e[:]))
	case 127:
		var e [8]byte
		io.ReadFull(c.br, e[:])
		n = int(binary.BigEndian.Uint64(e[:]))
	}
	payload = make([]byte, n)
	if _, err := io.ReadFull(c.br, payload); err != nil {
		t.Fatalf("read payload: %v", err)
	}
	return h[0] & 0x0f, payload
}

// A message in several frames, with a ping between two of them, arrives
// whole; the ping gets its pong. A frame cut anywhere, its header too, by
// the server's read deadline arrives whole once the rest comes.
func TestFramingFragmentsPingsAndCutHeaders(t *testing.T) {
	type readResult struct {
		b   []byte
		err error
	}
	reads := make(chan readResult, 16)
	_, srv, got := testServer(t, Config{}, func(nc net.Conn) {
		buf := make([]byte, 64<<10)
		for {
			nc.SetReadDeadline(time.Now().Add(30 * time.Millisecond))
			n, err := nc.Read(buf)
			if err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
				reads <- readResult{nil, err} // a timeout: read again
				continue
			}
			reads <- readResult{append([]byte(nil), buf[:n]...), err}
			if err != nil {
				return
			}
		}
	})
	c := dialRaw(t, srv)
	recv(t, got)
	collect := func(want int) []byte {
		var all []byte
		for len(all) < want {
			select {
			case r := <-reads:
				if r.err != nil && !errors.Is(r.err, os.ErrDeadlineExceeded) {
					t.Fatalf("server read: %v", r.err)
				}
				all = append(all, r.b...)
			case <-time.After(5 * time.Second):
				t.Fatalf("server got %d of %d bytes", len(all), want)
			}
		}
		return all
	}
	var w bytes.Buffer
	w.Write(frame(opBinary, false, false, []byte("hello, ")))
	w.Write(frame(opPing, true, false, []byte("p1")))
	w.Write(frame(opCont, false, false, bytes.Repeat([]byte("x"), 300)))
	w.Write(frame(opCont, true, false, []byte("world")))
	c.nc.Write(w.Bytes())
	if all := collect(312); string(all) != "hello, "+strings.Repeat("x", 300)+"world" {
		t.Fatalf("fragmented message arrived as %q", all)
	}
	if op, p := c.readFrame(t); op != opPong || string(p) != "p1" {
		t.Fatalf("ping answered with op %d %q", op, p)
	}
	// One frame of 70000 bytes (a 64-bit length) sent a byte, then a few,
	// with pauses longer than the server's read deadline in its header.
	big := make([]byte, 70000)
	for i := range big {
		big[i] = byte(i * 7)
	}
	f := frame(opBinary, true, false, big)
	for _, cut := range []int{1, 2, 5, 9, 13, 14} {
		prev := 0
		if cut > 1 {
			prev = []int{0, 1, 2, 5, 9, 13}[slices.Index([]int{1, 2, 5, 9, 13, 14}, cut)]
		}
		c.nc.Write(f[prev:cut])
		time.Sleep(60 * time.Millisecond)
	}
	c.nc.Write(f[14:])
	if all := collect(len(big)); !bytes.Equal(all, big) {
		t.Fatalf("frame cut in its header arrived changed (%d bytes)", len(all))
	}
}

// Frames that break RFC 6455 close the connection with 1002.
func TestFramingViolations(t *testing.T) {
	for _, tc := range []struct {
		name string
		raw  []byte
	}{
		{"unmasked", frame(opBinary, true, true, []byte("abc"))},
		{"reserved bit", func() []byte { f := frame(opBinary, true, false, []byte("abc")); f[0] |= 0x40; return f }()},
		{"continuation first", frame(opCont, true, false, []byte("abc"))},
		{"fragmented ping", frame(opPing, false, false, []byte("abc"))},
		{"unknown opcode", frame(0x3, true, false, []byte("abc"))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			readErr := make(chan error, 1)
			_, srv, got := testServer(t, Config{}, func(nc net.Conn) {
				_, err := io.Copy(io.Discard, nc)
				readErr <- err
			})
			c := dialRaw(t, srv)
			recv(t, got)
			c.nc.Write(tc.raw)
			op, p := c.readFrame(t)
			if op != opClose || len(p) < 2 || binary.BigEndian.Uint16(p) != 1002 {
				t.Errorf("got op %d %v, want a close frame 1002", op, p)
			}
			select {
			case err := <-readErr:
				if err == nil {
					t.Error("the handler's read ended cleanly")
				}
			case <-time.After(5 * time.Second):
				t.Fatal("the handler's read did not end")
			}
		})
	}
}

func TestUnmask(t *testing.T) {
	key := [4]byte{1, 2, 3, 4}
	data := make([]byte, 1000)
	for i := range data {
		data[i] = byte(i)
	}
	want := make([]byte, len(data))
	for i, b := range data {
		want[i] = b ^ key[i%4]
	}
	// In pieces of odd sizes: the key rotates across calls.
	got := append([]byte(nil), data...)
	k := key
	for p, n := got, 1; len(p) > 0; n += 3 {
		m := min(n, len(p))
		unmask(p[:m], &k)
		p = p[m:]
	}
	if !bytes.Equal(got, want) {
		t.Fatal("unmask in pieces differs from the byte-wise reference")
	}
}

// Keepalive, on a pipe in a synctest bubble: a ping every interval; a
// pong not back within the timeout closes the connection (1008) while the
// server is waiting in Read, and does not while the server is not reading
// (a busy core has not read the pong yet); an answered ping keeps it.
func TestKeepaliveTiming(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srvSide, cliSide := net.Pipe()
		defer cliSide.Close()
		c := newServerConn(srvSide, bufio.NewReader(srvSide), "", 0, nil)
		const interval, timeout = 20 * time.Second, 10 * time.Second
		start := time.Now()
		c.startKeepalive(interval, timeout)

		// The client side: reads frames; answers pings while answer is set.
		var answer atomic.Bool
		answer.Store(true)
		type seen struct {
			op byte
			at time.Duration
			p  []byte
		}
		frames := make(chan seen, 16)
		go func() {
			br := bufio.NewReader(cliSide)
			for {
				var h [2]byte
				if _, err := io.ReadFull(br, h[:]); err != nil {
					close(frames)
					return
				}
				p := make([]byte, h[1]&0x7f)
				io.ReadFull(br, p)
				op := h[0] & 0x0f
				frames <- seen{op, time.Since(start), p}
				if op == opPing && answer.Load() {
					cliSide.Write(frame(opPong, true, false, p))
				}
			}
		}()
		// The server reads all along, as the core does.
		readDone := make(chan error, 1)
		go func() {
			_, err := io.Copy(io.Discard, c)
			readDone <- err
		}()
		for i := 1; i <= 3; i++ {
			f := <-frames
			if f.op != opPing || f.at != time.Duration(i)*interval {
				t.Fatalf("frame %d: op %d at %v, want a ping at %v", i, f.op, f.at, time.Duration(i)*interval)
			}
		}
		answer.Store(false) // the 4th ping goes unanswered
		f := <-frames
		if f.op != opPing || f.at != 4*interval {
			t.Fatalf("op %d at %v, want the 4th ping", f.op, f.at)
		}
		f = <-frames
		if f.op != opClose || binary.BigEndian.Uint16(f.p) != 1008 || f.at != 4*interval+timeout {
			t.Fatalf("op %d %v at %v, want close 1008 at %v", f.op, f.p, f.at, 4*interval+timeout)
		}
		if err := <-readDone; !errors.Is(err, errNoPong) {
			t.Fatalf("server read ended with %v, want %v", err, errNoPong)
		}
	})
}

// While the server is not reading, a late pong is not held against the
// client: nobody has read it.
func TestKeepaliveNotReading(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srvSide, cliSide := net.Pipe()
		defer cliSide.Close()
		c := newServerConn(srvSide, bufio.NewReader(srvSide), "", 0, nil)
		c.startKeepalive(20*time.Second, 10*time.Second)
		pings := make(chan byte, 16)
		go func() {
			br := bufio.NewReader(cliSide)
			for {
				var h [2]byte
				if _, err := io.ReadFull(br, h[:]); err != nil {
					close(pings)
					return
				}
				io.CopyN(io.Discard, br, int64(h[1]&0x7f))
				pings <- h[0] & 0x0f
			}
		}()
		if op := <-pings; op != opPing {
			t.Fatalf("op %d, want a ping", op)
		}
		time.Sleep(5 * time.Minute) // no Read, no pong
		select {
		case op, ok := <-pings:
			if !ok || op == opClose {
				t.Fatal("closed while the server was not reading")
			}
		default:
		}
		c.Close()
		synctest.Wait()
	})
}

// A connection closed while its writer is busy (a player being sent
// video) still gets its close frame: the writer sends it when its write
// ends. Without it the client would see 1006, an abnormal closure.
func TestCloseFrameWhileWriting(t *testing.T) {
	h, srv, got := testServer(t, Config{}, func(nc net.Conn) {
		p := make([]byte, 1<<10)
		for {
			if _, err := nc.Write(p); err != nil {
				return
			}
		}
	})
	for range 5 {
		ws, _, err := websocket.Dial(ctx5s(t), wsURL(srv), nil)
		if err != nil {
			t.Fatal(err)
		}
		ws.SetReadLimit(-1)
		recv(t, got)
		readDone := make(chan error, 1)
		go func() {
			for {
				if _, _, err := ws.Read(ctx5s(t)); err != nil {
					readDone <- err
					return
				}
			}
		}()
		time.Sleep(20 * time.Millisecond) // writing at full speed
		h.mu.Lock()
		var c *serverConn
		for open := range h.conns {
			c = open // the only one
		}
		h.mu.Unlock()
		c.closeWith(websocket.StatusGoingAway, "server stopping", nil)
		select {
		case err := <-readDone:
			if code := websocket.CloseStatus(err); code != websocket.StatusGoingAway {
				t.Fatalf("client saw %v (%v), want 1001", code, err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("client not closed")
		}
		ws.CloseNow()
		waitFor(t, func() bool { return h.Stats().Open == 0 }, func() string { return fmt.Sprintf("%+v", h.Stats()) })
	}
}
