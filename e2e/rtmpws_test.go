package e2e

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/rtmphub/rtmphub/rtmp/client"
	"github.com/rtmphub/rtmphub/rtmp/message"
	"github.com/rtmphub/rtmphub/session/sessiontest"
	"github.com/rtmphub/rtmphub/tunnel/rtmpws"
)

// RTMP over WebSocket (issue #15): the project's RTMP client
// (rtmp/client) over rtmpws.Dialer against the real binary, on every port
// that serves HTTP, over TLS, through the gateway and behind nginx; and
// what a misbehaving WebSocket peer gets. The application wsprobe
// (testdata/apps/wsprobe) tells a client how the script sees it.

// wsClient connects the project's RTMP client to app over RTMP over
// WebSocket at addr (ws://addr/rtmp, or wss:// with d's TLS settings when
// secure); the tcUrl says rtmpws://addr/app as a page's would.
func wsClient(t testing.TB, ctx context.Context, d *rtmpws.Dialer, addr, app string, secure bool) *client.Conn {
	t.Helper()
	c, err := dialWS(ctx, d, addr, app, secure)
	if err != nil {
		t.Fatalf("connect to %s/%s over WebSocket (secure %v): %v", addr, app, secure, err)
	}
	return c
}

func dialWS(ctx context.Context, d *rtmpws.Dialer, addr, app string, secure bool) (*client.Conn, error) {
	scheme := "rtmpws://"
	if secure {
		scheme = "rtmpwss://"
	}
	return client.Dial(ctx, scheme+addr+"/"+app, client.Options{Dial: d.DialFunc(secure)})
}

// callString calls method and returns its string result.
func callString(t testing.TB, ctx context.Context, c *client.Conn, method string, args ...any) string {
	t.Helper()
	res, err := c.Call(ctx, method, args...)
	if err != nil {
		t.Fatalf("%s: %v", method, err)
	}
	if len(res.Args) == 0 {
		t.Fatalf("%s: no result", method)
	}
	s, _ := res.Args[0].(string)
	return s
}

// TestRTMPWSCallOnEveryPort: the project's RTMP client over WebSocket, at
// /rtmp of the RTMP port (sniffed as HTTP) and of the HTTP port, connects
// to a scripted application and calls its methods; the script sees the
// protocol rtmpws and the client's address, an RTMP client of the same
// instance sees both kinds of client in application.clients, and the
// admin API lists the client with its protocol.
func TestRTMPWSCallOnEveryPort(t *testing.T) {
	e2e(t)
	srv := startServer(t, "--admin-addr", "127.0.0.1:0")
	api := "http://" + srv.adminAddr(t)
	copyApp(t, srv.DataDir, "wsprobe")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	native, err := client.Dial(ctx, "rtmp://"+srv.Addr+"/wsprobe/room", client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer native.Close()
	var d rtmpws.Dialer
	for _, addr := range []string{srv.Addr, srv.RTMPTAddr(t)} {
		c := wsClient(t, ctx, &d, addr, "wsprobe/room", false)
		if got := callString(t, ctx, c, "whoami"); got != "rtmpws 127.0.0.1" {
			t.Errorf("%s: whoami = %q, want rtmpws 127.0.0.1", addr, got)
		}
		res, err := c.Call(ctx, "add", 2.0, 3.0)
		if err != nil || len(res.Args) == 0 || res.Args[0] != 5.0 {
			t.Errorf("%s: add(2, 3) = %v, %v", addr, res, err)
		}
		if got := callString(t, ctx, native, "peers"); got != "rtmp,rtmpws" {
			t.Errorf("%s: peers seen by the RTMP client = %q, want rtmp,rtmpws", addr, got)
		}
		var clients []struct {
			Protocol string `json:"protocol"`
			App      string `json:"app"`
			IP       string `json:"ip"`
		}
		apiGet(t, api, "/api/v1/clients", &clients)
		protos := map[string]int{}
		for _, cl := range clients {
			protos[cl.Protocol]++
			if cl.Protocol == "rtmpws" && (cl.App != "wsprobe" || cl.IP != "127.0.0.1") {
				t.Errorf("%s: admin API lists %+v", addr, cl)
			}
		}
		if protos["rtmpws"] != 1 || protos["rtmp"] != 1 || len(clients) != 2 {
			t.Errorf("%s: admin API clients %+v, want one rtmp and one rtmpws", addr, clients)
		}
		c.Close()
		// The WebSocket client leaves the instance like any other.
		if !sessiontest.Poll(5*time.Second, func() bool {
			res, err := native.Call(ctx, "peers")
			return err == nil && len(res.Args) > 0 && res.Args[0] == "rtmp"
		}) {
			t.Errorf("%s: the WebSocket client is still listed after it closed", addr)
		}
	}
	srv.requireAlive(t)
}

// publishFrames publishes numbered video frames of size bytes on c's
// stream name every 20ms until ctx ends; the 4 bytes after the 5-byte AVC
// header carry the number.
func publishFrames(ctx context.Context, c *client.Conn, msid uint32, size int) error {
	seqHdr := []byte{0x17, 0, 0, 0, 0, 1, 0x42, 0xc0, 0x1e, 0xff, 0xe1, 0, 4, 0x67, 0x42, 0xc0, 0x1e, 1, 0, 4, 0x68, 0xce, 0x3c, 0x80}
	if err := c.WriteMessages([]message.Message{{Type: message.TypeVideo, StreamID: msid, ChunkStreamID: 6, Payload: seqHdr}}); err != nil {
		return err
	}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for n := uint32(0); ; n++ {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		p := make([]byte, size)
		p[0], p[1] = 0x27, 1
		if n%25 == 0 {
			p[0] = 0x17
		}
		binary.BigEndian.PutUint32(p[5:], n)
		for i := 9; i < len(p); i++ {
			p[i] = byte(n + uint32(i))
		}
		if err := c.WriteMessages([]message.Message{{Type: message.TypeVideo, StreamID: msid, ChunkStreamID: 6, Timestamp: n * 20, Payload: p}}); err != nil {
			return err
		}
	}
}

// playFrames plays name on c and checks want frames in a row, each whole
// (its bytes as publishFrames made them) and numbered one after the other.
func playFrames(ctx context.Context, c *client.Conn, name string, want int) error {
	msid, err := c.CreateStream(ctx)
	if err == nil {
		err = c.Play(ctx, msid, name, -1)
	}
	if err != nil {
		return err
	}
	got, last := 0, uint32(0)
	for got < want {
		m, err := c.ReadMessage()
		if err != nil {
			return fmt.Errorf("after %d frames: %w", got, err)
		}
		if m.Type != message.TypeVideo || len(m.Payload) < 9 || m.Payload[1] != 1 {
			continue
		}
		n := binary.BigEndian.Uint32(m.Payload[5:])
		if got > 0 && n != last+1 {
			return fmt.Errorf("frame %d after frame %d", n, last)
		}
		for i := 9; i < len(m.Payload); i++ {
			if m.Payload[i] != byte(n+uint32(i)) {
				return fmt.Errorf("frame %d: byte %d corrupt", n, i)
			}
		}
		last = n
		got++
	}
	return nil
}

// TestRTMPWSPublishPlayAndSharedObject: a publisher over WebSocket; a
// player over WebSocket and a native RTMP player get its frames whole and
// in order (frames of 30 KB, cut into many chunks and WebSocket frames);
// a shared object slot set by a WebSocket client reaches an RTMP client
// and the other way round.
func TestRTMPWSPublishPlayAndSharedObject(t *testing.T) {
	e2e(t)
	srv := startServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var d rtmpws.Dialer
	pub, err := client.Dial(ctx, "rtmpws://"+srv.Addr+"/live", client.Options{Dial: d.DialFunc(false), FlashVer: "FMLE/3.0 (compatible; e2e)"})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	msid, err := pub.CreateStream(ctx)
	if err == nil {
		err = pub.Publish(ctx, msid, "ws1", "live")
	}
	if err != nil {
		t.Fatal(err)
	}
	pctx, pcancel := context.WithCancel(ctx)
	pubErr := make(chan error, 1)
	go func() { pubErr <- publishFrames(pctx, pub, msid, 30000) }()

	players := map[string]func() (*client.Conn, error){
		"websocket player": func() (*client.Conn, error) { return dialWS(ctx, &d, srv.Addr, "live", false) },
		"rtmp player": func() (*client.Conn, error) {
			return client.Dial(ctx, "rtmp://"+srv.Addr+"/live", client.Options{})
		},
	}
	var wg sync.WaitGroup
	for name, dial := range players {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := dial()
			if err != nil {
				t.Errorf("%s: %v", name, err)
				return
			}
			defer c.Close()
			if err := playFrames(ctx, c, "ws1", 100); err != nil {
				t.Errorf("%s: %v", name, err)
			}
		}()
	}
	wg.Wait()
	pcancel()
	if err := <-pubErr; err != nil {
		t.Errorf("publisher: %v", err)
	}
	if n := logCount(srv, "publish", map[string]string{"proto": "rtmpws"}); n != 1 {
		t.Errorf("%d rtmpws publishers logged, want 1", n)
	}

	// Shared objects, both ways.
	wsc := wsClient(t, ctx, &d, srv.Addr, "live/so", false)
	defer wsc.Close()
	rc, err := client.Dial(ctx, "rtmp://"+srv.Addr+"/live/so", client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	for _, c := range []*client.Conn{wsc, rc} {
		if err := c.UseSO("room", false, 0); err != nil {
			t.Fatal(err)
		}
		if _, err := c.ReadSO(ctx, "room"); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		from, to *client.Conn
		key      string
	}{{wsc, rc, "fromWS"}, {rc, wsc, "fromRTMP"}} {
		if err := tc.from.SetSO("room", false, 0, message.SOEvent{Key: tc.key, Value: "hello " + tc.key}); err != nil {
			t.Fatal(err)
		}
		if !soChangeArrives(ctx, tc.to, tc.key, "hello "+tc.key) {
			t.Errorf("slot %s did not reach the other client", tc.key)
		}
	}
}

// soChangeArrives reads c's shared object messages until a change of key
// to value arrives (true) or ctx ends.
func soChangeArrives(ctx context.Context, c *client.Conn, key string, value any) bool {
	for {
		so, err := c.ReadSO(ctx, "room")
		if err != nil {
			return false
		}
		for _, ev := range so.Events {
			if ev.Type == message.SOChange && ev.Key == key && ev.Value == value {
				return true
			}
		}
	}
}

// TestRTMPWSSOverTLS: with a certificate, wss:// on the TLS port and on
// the RTMP port (TLS sniffed there) is rtmpwss for the script; a trusted
// certificate pool is used, no verification is skipped.
func TestRTMPWSSOverTLS(t *testing.T) {
	e2e(t)
	cert, key := writeTestCert(t)
	srv := startServer(t, "--tls-cert", cert, "--tls-key", key, "--tls-addr", "127.0.0.1:0")
	copyApp(t, srv.DataDir, "wsprobe")
	tlsAddr := listenAddr(t, srv, "tls")
	d := rtmpws.Dialer{TLSConfig: &tls.Config{RootCAs: certPool(t, cert)}}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, addr := range []string{tlsAddr, srv.Addr, srv.RTMPTAddr(t)} {
		c := wsClient(t, ctx, &d, addr, "wsprobe", true)
		if got := callString(t, ctx, c, "whoami"); got != "rtmpwss 127.0.0.1" {
			t.Errorf("wss://%s: whoami = %q, want rtmpwss 127.0.0.1", addr, got)
		}
		c.Close()
	}
	// Plain ws:// on the same server stays rtmpws, and an X-Forwarded-Proto
	// from a client that is no trusted proxy changes nothing.
	d2 := rtmpws.Dialer{Header: http.Header{"X-Forwarded-Proto": {"https"}, "X-Forwarded-For": {"198.51.100.7"}}}
	c := wsClient(t, ctx, &d2, srv.Addr, "wsprobe", false)
	if got := callString(t, ctx, c, "whoami"); got != "rtmpws 127.0.0.1" {
		t.Errorf("ws:// with forged headers: whoami = %q, want rtmpws 127.0.0.1", got)
	}
	c.Close()
}

func certPool(t testing.TB, certFile string) *x509.CertPool {
	t.Helper()
	b, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		t.Fatal("no certificate in " + certFile)
	}
	return pool
}

// TestRTMPWSGateway: in gateway mode (--upstream) a WebSocket client of
// the gateway is forwarded to the upstream hub and calls its script.
func TestRTMPWSGateway(t *testing.T) {
	e2e(t)
	origin := startServer(t)
	copyApp(t, origin.DataDir, "wsprobe")
	gw := startServer(t, "--upstream", "rtmp://"+origin.Addr)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var d rtmpws.Dialer
	for _, addr := range []string{gw.Addr, gw.RTMPTAddr(t)} {
		c := wsClient(t, ctx, &d, addr, "wsprobe", false)
		// The origin sees the gateway's RTMP connection.
		if got := callString(t, ctx, c, "whoami"); got != "rtmp 127.0.0.1" {
			t.Errorf("%s: whoami through the gateway = %q, want rtmp 127.0.0.1", addr, got)
		}
		c.Close()
	}
	if n := logCount(gw, "forwarding", map[string]string{"proto": "rtmpws"}); n != 2 {
		t.Errorf("gateway logged %d rtmpws clients forwarded, want 2", n)
	}
}

// TestRTMPWSConnectionLimitPerIP: --max-connections-per-ip counts
// WebSocket clients with the others.
func TestRTMPWSConnectionLimitPerIP(t *testing.T) {
	e2e(t)
	srv := startServer(t, "--max-connections-per-ip", "1")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var d rtmpws.Dialer
	c := wsClient(t, ctx, &d, srv.Addr, "live", false)
	defer c.Close()
	if c2, err := dialWS(ctx, &d, srv.Addr, "live", false); err == nil {
		c2.Close()
		t.Error("a second WebSocket client from the same address was accepted")
	}
	if c3, err := client.Dial(ctx, "rtmp://"+srv.Addr+"/live", client.Options{}); err == nil {
		c3.Close()
		t.Error("an RTMP client beside the WebSocket one was accepted")
	}
	c.Close()
	if !sessiontest.Poll(5*time.Second, func() bool {
		c4, err := dialWS(ctx, &d, srv.Addr, "live", false)
		if err == nil {
			c4.Close()
		}
		return err == nil
	}) {
		t.Error("no WebSocket client accepted after the first left")
	}
}

// TestRTMPWSHTTPConnLimitPerIP: a WebSocket is an HTTP connection of
// its address for --rtmpt-max-conns-per-ip, as RTMPT's and the players'.
func TestRTMPWSHTTPConnLimitPerIP(t *testing.T) {
	e2e(t)
	srv := startServer(t, "--rtmpt-max-conns-per-ip", "1")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var d rtmpws.Dialer
	c := wsClient(t, ctx, &d, srv.Addr, "live", false)
	defer c.Close()
	_, err := dialWS(ctx, &d, srv.Addr, "live", false)
	var de *rtmpws.DialError
	if !errors.As(err, &de) || de.Status != http.StatusTooManyRequests {
		t.Errorf("second WebSocket from the address: %v, want a 429", err)
	}
}

// goroutines reads the server's goroutine count from its pprof endpoint.
func goroutines(t testing.TB, debugAddr string) int {
	t.Helper()
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}
	resp, err := hc.Get("http://" + debugAddr + "/debug/pprof/goroutine?debug=1")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(line, "goroutine profile: total ")))
	if err != nil {
		t.Fatalf("goroutine profile head %q", line)
	}
	return n
}

// TestRTMPWSBadInput: garbage binary frames, a text frame, an oversized
// frame, a WebSocket that never finishes the RTMP handshake and a plain
// GET of /rtmp: each closes only its connection, with its log line; an
// RTMP caller and a WebSocket caller calling all along are undisturbed,
// the server stays up and its goroutines come back to their count before.
func TestRTMPWSBadInput(t *testing.T) {
	e2e(t)
	srv := startServer(t, "--debug-addr", "127.0.0.1:0", "--rtmpws-max-frame", "65536", "--admin-addr", "127.0.0.1:0")
	copyApp(t, srv.DataDir, "wsprobe")
	debugAddr := listenAddr(t, srv, "pprof")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var d rtmpws.Dialer
	wsURL := "ws://" + srv.Addr + rtmpws.Path

	// Callers that call all along, one of each kind.
	native, err := client.Dial(ctx, "rtmp://"+srv.Addr+"/wsprobe", client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer native.Close()
	wsCaller := wsClient(t, ctx, &d, srv.Addr, "wsprobe", false)
	defer wsCaller.Close()
	// A WebSocket client that came and went: what the server starts once
	// for the first one is in the baseline.
	wsClient(t, ctx, &d, srv.Addr, "wsprobe", false).Close()
	time.Sleep(500 * time.Millisecond)
	before := goroutines(t, debugAddr)

	stopCalls := make(chan struct{})
	callsDone := make(chan error, 2)
	calls := 0
	var callsMu sync.Mutex
	for _, c := range []*client.Conn{native, wsCaller} {
		go func() {
			for i := 0.0; ; i++ {
				select {
				case <-stopCalls:
					callsDone <- nil
					return
				case <-time.After(100 * time.Millisecond):
				}
				res, err := c.Call(ctx, "add", i, 1.0)
				if err != nil || len(res.Args) == 0 || res.Args[0] != i+1 {
					callsDone <- fmt.Errorf("add(%v, 1) = %v: %w", i, res, err)
					return
				}
				callsMu.Lock()
				calls++
				callsMu.Unlock()
			}
		}()
	}

	type result struct {
		name string
		err  error
	}
	results := make(chan result, 8)
	run := func(name string, f func() error) {
		go func() { results <- result{name, f()} }()
	}
	// closedWith reads ws until the server closes it; it wants code (or
	// any close when code is -1) within wait.
	closedWith := func(ws *websocket.Conn, code websocket.StatusCode, wait time.Duration) error {
		rctx, rcancel := context.WithTimeout(ctx, wait)
		defer rcancel()
		for {
			_, _, err := ws.Read(rctx)
			if err == nil {
				continue // what the server sent before closing
			}
			if rctx.Err() != nil {
				return fmt.Errorf("not closed within %v", wait)
			}
			got := websocket.CloseStatus(err)
			if code != -1 && got != code {
				return fmt.Errorf("closed with %v, want %v: %w", got, code, err)
			}
			return nil
		}
	}
	open := func() (*websocket.Conn, error) {
		ws, _, err := websocket.Dial(ctx, wsURL, &websocket.DialOptions{Subprotocols: []string{"rtmp"}})
		if err == nil {
			ws.SetReadLimit(-1)
		}
		return ws, err
	}
	run("garbage binary frames", func() error {
		ws, err := open()
		if err != nil {
			return err
		}
		defer ws.CloseNow()
		junk := make([]byte, 9000)
		rand.Read(junk)
		junk[0] = 0x03 // past the version byte: garbage handshake, then garbage chunks
		for p := junk; len(p) > 0; p = p[min(len(p), 1000):] {
			if err := ws.Write(ctx, websocket.MessageBinary, p[:min(len(p), 1000)]); err != nil {
				break // the server may close first
			}
		}
		return closedWith(ws, -1, 15*time.Second)
	})
	run("text frame", func() error {
		ws, err := open()
		if err != nil {
			return err
		}
		defer ws.CloseNow()
		ws.Write(ctx, websocket.MessageText, []byte("hello"))
		return closedWith(ws, websocket.StatusUnsupportedData, 5*time.Second)
	})
	run("oversized frame", func() error {
		ws, err := open()
		if err != nil {
			return err
		}
		defer ws.CloseNow()
		// Valid RTMP in one message of 200 KB, over the 64 KiB limit: a
		// handshake, then Acknowledgements (16 bytes each), so that the
		// size, not the content, is what ends it (the server reads a
		// message as it arrives).
		big := make([]byte, 1+2*1536, 200000)
		big[0] = 0x03
		rand.Read(big[1:])
		for len(big)+16 <= cap(big) {
			big = append(big, 0x02, 0, 0, 0, 0, 0, 4, 3, 0, 0, 0, 0, 0, 0, 0, 1)
		}
		ws.Write(ctx, websocket.MessageBinary, big)
		return closedWith(ws, websocket.StatusMessageTooBig, 5*time.Second)
	})
	run("handshake never finished", func() error {
		ws, err := open()
		if err != nil {
			return err
		}
		defer ws.CloseNow()
		ws.Write(ctx, websocket.MessageBinary, []byte{0x03, 1, 2, 3}) // C0 and the start of C1
		start := time.Now()
		// The RTMP handshake timeout (10s) applies.
		if err := closedWith(ws, -1, 20*time.Second); err != nil {
			return err
		}
		if took := time.Since(start); took < 8*time.Second {
			return fmt.Errorf("closed after %v, before the handshake timeout", took)
		}
		return nil
	})
	run("plain GET", func() error {
		hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}
		resp, err := hc.Get("http://" + srv.Addr + rtmpws.Path)
		if err != nil {
			return err
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusUpgradeRequired {
			return fmt.Errorf("status %d %q, want 426", resp.StatusCode, b)
		}
		return nil
	})
	for range 5 {
		select {
		case r := <-results:
			if r.err != nil {
				t.Errorf("%s: %v", r.name, r.err)
			} else {
				t.Logf("%s: closed as it should", r.name)
			}
		case <-ctx.Done():
			t.Fatal("bad-input clients did not finish")
		}
	}
	close(stopCalls)
	for range 2 {
		if err := <-callsDone; err != nil {
			t.Errorf("a caller beside the bad clients: %v", err)
		}
	}
	callsMu.Lock()
	t.Logf("%d calls answered meanwhile", calls)
	if calls < 20 {
		t.Errorf("only %d calls answered while the bad clients ran", calls)
	}
	callsMu.Unlock()
	srv.requireAlive(t)

	for _, want := range []struct{ msg, text string }{
		{"rtmpws: text frame, closing the connection (1003)", ""},
		{"rtmpws: frame over the size limit, closing the connection (1009)", ""},
	} {
		if n := logCount(srv, want.msg, nil); n != 1 {
			t.Errorf("%d log lines %q, want 1", n, want.msg)
		}
	}
	// The core's line for each connection that reached it: the garbage,
	// the unfinished handshake, the text and the oversized frame.
	if n := logCount(srv, "closed", map[string]string{"proto": "rtmpws"}); n < 4 {
		t.Errorf("%d rtmpws connections logged closed, want at least 4\n%s", n, srv.log.tail(40))
	}
	var after int
	if !sessiontest.Poll(10*time.Second, func() bool { after = goroutines(t, debugAddr); return after <= before }) {
		t.Errorf("goroutines: %d before the bad clients, %d after", before, after)
	}
	t.Logf("goroutines: %d before, %d after", before, after)
	// After the count: the scrape's kept-alive connection is one more.
	m := scrapeMetrics(t, "http://"+srv.adminAddr(t))
	if m["rtmphub_rtmpws_closed_total"] != 2 || m["rtmphub_rtmpws_refused_total"] != 1 || m["rtmphub_rtmpws_connections"] != 1 {
		t.Errorf("metrics: closed %v (want 2: text, too large), refused %v (want 1: the GET), open %v (want 1: the caller)",
			m["rtmphub_rtmpws_closed_total"], m["rtmphub_rtmpws_refused_total"], m["rtmphub_rtmpws_connections"])
	}
	if c := callString(t, ctx, wsCaller, "whoami"); c != "rtmpws 127.0.0.1" {
		t.Errorf("WebSocket caller after: %q", c)
	}
}

// TestRTMPWSIdleTimeout: --client-idle-timeout applies to a WebSocket
// client as to any: a silent one gets NetConnection.Connect.IdleTimeout,
// then the connection closes (the transport's read deadline fires and the
// core goes on reading, which needs a deadline that leaves the connection
// usable); a client that keeps calling stays.
func TestRTMPWSIdleTimeout(t *testing.T) {
	e2e(t)
	srv := startServer(t, "--client-idle-timeout", "1s", "--rpc-test-app", "rpc")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var d rtmpws.Dialer
	silent := wsClient(t, ctx, &d, srv.Addr, "rpc", false)
	defer silent.Close()
	busy := wsClient(t, ctx, &d, srv.Addr, "rpc", false)
	defer busy.Close()
	start := time.Now()
	stop := make(chan struct{})
	busyErr := make(chan error, 1)
	go func() {
		for {
			select {
			case <-stop:
				busyErr <- nil
				return
			case <-time.After(300 * time.Millisecond):
			}
			if _, err := busy.Call(ctx, "echo", "x"); err != nil {
				busyErr <- err
				return
			}
		}
	}()
	silent.SetReadDeadline(time.Now().Add(10 * time.Second))
	status := ""
	for {
		m, err := silent.ReadMessage()
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatal("silent WebSocket client not closed within 10s")
			}
			break
		}
		if m.Type == message.TypeCommandAMF0 || m.Type == message.TypeCommandAMF3 {
			if cmd, err := message.DecodeCommand(m); err == nil && cmd.Name == "onStatus" {
				status = fmt.Sprint(cmd.Args)
			}
		}
	}
	took := time.Since(start)
	if !strings.Contains(status, "NetConnection.Connect.IdleTimeout") {
		t.Errorf("silent client got %q before the close, want NetConnection.Connect.IdleTimeout", status)
	}
	if took < 900*time.Millisecond || took > 5*time.Second {
		t.Errorf("silent client closed after %v, want about 1s", took)
	}
	close(stop)
	if err := <-busyErr; err != nil {
		t.Errorf("the calling client: %v", err)
	}
}

// TestRTMPWSShutdown: open WebSocket sessions end when the server stops,
// and it stops within its shutdown timeout.
func TestRTMPWSShutdown(t *testing.T) {
	e2e(t)
	srv := startServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var d rtmpws.Dialer
	var conns []*client.Conn
	for range 3 {
		conns = append(conns, wsClient(t, ctx, &d, srv.Addr, "live", false))
	}
	// One WebSocket that never finished its handshake, too.
	ws, _, err := websocket.Dial(ctx, "ws://"+srv.Addr+rtmpws.Path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	code, took, exited := srv.signal(syscall.SIGTERM, 10*time.Second)
	if !exited {
		t.Fatalf("server did not exit within 10s of SIGTERM\n%s", srv.log.tail(30))
	}
	if code != 0 || took > 6*time.Second {
		t.Errorf("exit code %d after %v", code, took)
	}
	for i, c := range conns {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		for {
			if _, err := c.ReadMessage(); err != nil {
				if errors.Is(err, os.ErrDeadlineExceeded) {
					t.Errorf("client %d: still open after the server stopped", i)
				}
				break
			}
		}
	}
}

// TestRTMPWSBehindNginx: docs/nginx-rtmpws.conf in front of the HTTP port,
// terminating TLS with a certificate made here. A client from 127.0.0.2
// (loopback, but not the proxy's address) connects through wss:// and
// through plain ws://: the script sees rtmpwss and rtmpws, and the
// client's own address, which only the trusted proxy's headers carry.
func TestRTMPWSBehindNginx(t *testing.T) {
	e2e(t)
	cert, key := writeTestCert(t)
	srv := startServer(t, "--trusted-proxies", "127.0.0.1/32")
	copyApp(t, srv.DataDir, "wsprobe")
	tlsPort := freeLoopbackPort(t)
	plain := startNginx(t, "nginx-rtmpws.conf", map[string]string{
		"server 127.0.0.1:8080;": "server " + srv.RTMPTAddr(t) + ";",
		"listen 443 ssl;":        fmt.Sprintf("listen 127.0.0.1:%d ssl;", tlsPort),
		"ssl_certificate     /etc/ssl/rtmphub/fullchain.pem;": "ssl_certificate " + cert + ";",
		"ssl_certificate_key /etc/ssl/rtmphub/privkey.pem;":   "ssl_certificate_key " + key + ";",
	})
	secure := fmt.Sprintf("127.0.0.1:%d", tlsPort)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	from := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}
	d := rtmpws.Dialer{TLSConfig: &tls.Config{RootCAs: certPool(t, cert)}, NetDialer: from}
	for _, tc := range []struct {
		addr   string
		secure bool
		want   string
	}{
		{secure, true, "rtmpwss 127.0.0.2"},
		{plain, false, "rtmpws 127.0.0.2"},
	} {
		c := wsClient(t, ctx, &d, tc.addr, "wsprobe", tc.secure)
		if got := callString(t, ctx, c, "whoami"); got != tc.want {
			t.Errorf("through nginx at %s: whoami = %q, want %q", tc.addr, got, tc.want)
		}
		res, err := c.Call(ctx, "add", 20.0, 22.0)
		if err != nil || len(res.Args) == 0 || res.Args[0] != 42.0 {
			t.Errorf("through nginx at %s: add = %v, %v", tc.addr, res, err)
		}
		c.Close()
	}
	// The same client straight to the hub is itself, not trusted: its
	// forged headers are ignored.
	d.Header = http.Header{"X-Forwarded-Proto": {"https"}, "X-Forwarded-For": {"198.51.100.7"}}
	c := wsClient(t, ctx, &d, srv.RTMPTAddr(t), "wsprobe", false)
	if got := callString(t, ctx, c, "whoami"); got != "rtmpws 127.0.0.2" {
		t.Errorf("straight to the hub with forged headers: whoami = %q, want rtmpws 127.0.0.2", got)
	}
	c.Close()
}

// TestRTMPWSSettings: /rtmp is served without --http-playback (the other
// GETs get 404, RTMPT's paths 405 as before), and --rtmpws=false turns it
// off.
func TestRTMPWSSettings(t *testing.T) {
	e2e(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var d rtmpws.Dialer
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}
	status := func(url string) int {
		resp, err := hc.Get(url)
		if err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}

	noWeb := startServer(t, "--http-playback=false")
	c := wsClient(t, ctx, &d, noWeb.RTMPTAddr(t), "live", false)
	c.Close()
	if got := status("http://" + noWeb.Addr + "/live/s.flv"); got != http.StatusNotFound {
		t.Errorf("--http-playback=false: GET of a stream: %d, want 404", got)
	}
	if got := status("http://" + noWeb.Addr + "/open/1"); got != http.StatusMethodNotAllowed {
		t.Errorf("--http-playback=false: GET of an RTMPT path: %d, want 405", got)
	}

	off := startServer(t, "--rtmpws=false")
	if c, err := dialWS(ctx, &d, off.Addr, "live", false); err == nil {
		c.Close()
		t.Error("--rtmpws=false: a WebSocket client connected")
	}
	if n := logCount(off, "connected", map[string]string{"proto": "rtmpws"}); n != 0 {
		t.Errorf("--rtmpws=false: %d rtmpws clients logged", n)
	}
}
