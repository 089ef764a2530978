package bridge

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rtmphub/rtmphub/rtmp"
	"github.com/rtmphub/rtmphub/rtmp/client"
	"github.com/rtmphub/rtmphub/rtmp/message"
	"github.com/rtmphub/rtmphub/session"
	"github.com/rtmphub/rtmphub/session/sessiontest"
	"github.com/rtmphub/rtmphub/tunnel"
	"github.com/rtmphub/rtmphub/tunnel/rtmpquic"
)

// startRoQRGateway serves RoQR on a loopback QUIC port with g until the
// test ends and returns the address and the certificate's fingerprint.
func startRoQRGateway(t *testing.T, g *Gateway, datagrams bool) (addr, pin string) {
	t.Helper()
	cert, _, err := rtmpquic.LoadOrCreateSelfSigned(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ln, err := rtmpquic.Listen("127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}},
		rtmpquic.Config{IdleTimeout: 5 * time.Second, RoQR: true, RoQRDatagrams: datagrams})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			rc, err := ln.AcceptRoQR()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				g.ServeRoQR(ctx, rc, "")
			}()
		}
	}()
	t.Cleanup(func() {
		cancel()
		ln.Close()
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Error("the gateway's RoQR connections did not end")
		}
		sctx, scancel := context.WithTimeout(context.Background(), time.Second)
		defer scancel()
		ln.Shutdown(sctx)
	})
	return ln.Addr().String(), tunnel.Fingerprint(cert.Certificate[0])
}

// startRoQRBridge runs a client bridge to roqr://addr on a loopback port
// until the test ends and returns its address.
func startRoQRBridge(t *testing.T, addr, pin string, datagrams bool) string {
	t.Helper()
	dial, err := NewRoQRDialer(DialConfig{URL: "roqr://" + addr, PinSHA256: pin, Timeout: 5 * time.Second,
		QUIC: rtmpquic.Config{RoQRDatagrams: datagrams}})
	if err != nil {
		t.Fatal(err)
	}
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan struct{})
	go func() {
		defer close(served)
		(&Client{DialRoQR: dial}).Serve(ctx, tcp)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-served:
		case <-time.After(5 * time.Second):
			t.Error("the bridge did not stop")
		}
	})
	return tcp.Addr().String()
}

// jsonLog is a gateway's log, JSON lines, for assertions.
type jsonLog struct{ sessiontest.LogBuffer }

func (l *jsonLog) logger() *slog.Logger {
	return slog.New(slog.NewJSONHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// lines returns the records with message msg.
func (l *jsonLog) lines(msg string) []map[string]any {
	var out []map[string]any
	for _, s := range strings.Split(l.String(), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(s), &rec) == nil && rec["msg"] == msg {
			out = append(out, rec)
		}
	}
	return out
}

// waitLines waits up to d for n records with message msg.
func (l *jsonLog) waitLines(t *testing.T, msg string, n int, d time.Duration) []map[string]any {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		recs := l.lines(msg)
		if len(recs) >= n {
			return recs
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d %q lines, want %d\n%s", len(recs), msg, n, l.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestGatewayRoQR: a publisher and a player reach a session core origin
// through client bridges, RoQR and the gateway (stream only, and with
// datagrams on every RoQR leg). The player gets the publisher's frames
// whole and in order; the gateway logs each connection as forwarded.
func TestGatewayRoQR(t *testing.T) {
	for _, datagrams := range []bool{false, true} {
		name := "stream"
		if datagrams {
			name = "datagrams"
		}
		t.Run(name, func(t *testing.T) {
			origin, _, _ := sessiontest.Start(t, sessiontest.Config(session.Config{}))
			var logs jsonLog
			g, err := NewGateway(GatewayConfig{Upstream: origin, Logger: logs.logger(), Linger: 2 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			addr, pin := startRoQRGateway(t, g, datagrams)
			br := startRoQRBridge(t, addr, pin, datagrams)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()

			player, err := client.Dial(ctx, "rtmp://"+br+"/live", client.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer player.Close()
			pid, err := player.CreateStream(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if err := player.Play(ctx, pid, "cam", -1000); err != nil {
				t.Fatal(err)
			}
			pub, err := client.Dial(ctx, "rtmp://"+br+"/live", client.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer pub.Close()
			id, err := pub.CreateStream(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if err := pub.Publish(ctx, id, "cam", "live"); err != nil {
				t.Fatal(err)
			}

			// A sequence header, a keyframe larger than the gateway's chunk
			// size (several chunks on the origin leg), then small inter
			// frames (datagram-sized), in real time.
			want := [][]byte{{0x17, 0, 0, 0, 0, 1, 0x64}}
			key := bytes.Repeat([]byte{0xAB}, 3*gatewayChunkSize+100)
			key[0], key[1] = 0x17, 1
			want = append(want, key)
			for i := range 24 {
				want = append(want, []byte{0x27, 1, 0, 0, 0, byte(i), byte(i * 7)})
			}
			go func() {
				for i, p := range want {
					if err := pub.WriteMessages([]message.Message{{Type: message.TypeVideo, StreamID: id, Timestamp: uint32(i * 40), Payload: p}}); err != nil {
						return
					}
					time.Sleep(20 * time.Millisecond)
				}
			}()
			var keyTS uint32
			for i, w := range want {
				var m *message.Message
				for {
					player.SetReadDeadline(time.Now().Add(5 * time.Second))
					if m, err = player.ReadMessage(); err != nil {
						t.Fatalf("player: frame %d: %v", i, err)
					}
					if m.Type == message.TypeVideo {
						break
					}
				}
				// The origin times a player from its join: frames keep
				// their spacing from the keyframe on.
				if i == 1 {
					keyTS = m.Timestamp
				}
				if !bytes.Equal(m.Payload, w) || i > 1 && m.Timestamp-keyTS != uint32((i-1)*40) {
					t.Fatalf("player: frame %d: %d bytes at %d ms (keyframe at %d), want %d bytes, %d ms after it",
						i, len(m.Payload), m.Timestamp, keyTS, len(w), (i-1)*40)
				}
			}
			pub.Close()
			player.Close()

			if n := len(logs.waitLines(t, "forwarding", 2, 5*time.Second)); n != 2 {
				t.Errorf("%d forwarding lines, want 2", n)
			}
			fw := logs.waitLines(t, "forwarded", 2, 10*time.Second)
			var dgIn, dgOut float64
			for _, r := range fw {
				t.Logf("forwarded: %v", r)
				if r["proto"] != "roqr" || r["closed_by"] != "client" || r["err"] != nil {
					t.Errorf("forwarded line %v: want proto roqr, closed by the client, no error", r)
				}
				in, _ := r["datagrams_received"].(float64)
				out, _ := r["datagrams_sent"].(float64)
				dgIn += in
				dgOut += out
			}
			if datagrams && (dgIn < 10 || dgOut < 10) {
				t.Errorf("gateway datagrams received %v, sent %v: want ≥ 10 each way (no loss on loopback)", dgIn, dgOut)
			}
			if !datagrams && (dgIn != 0 || dgOut != 0) {
				t.Errorf("gateway datagrams received %v, sent %v without the datagram profile", dgIn, dgOut)
			}
		})
	}
}

// rawOrigin accepts one connection, reads its PROXY line (when proxy) and
// runs the server handshake.
func rawOrigin(t *testing.T, ln net.Listener, proxy bool) (*rtmp.Conn, string) {
	t.Helper()
	nc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(5 * time.Second))
	var line []byte
	if proxy {
		b := make([]byte, 1)
		for !bytes.HasSuffix(line, []byte("\r\n")) && len(line) < 108 {
			if _, err := nc.Read(b); err != nil {
				t.Fatalf("PROXY line: %v", err)
			}
			line = append(line, b[0])
		}
	}
	c, _, err := rtmp.Accept(nc, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	nc.SetDeadline(time.Time{})
	return c, string(line)
}

func dialRoQR(t *testing.T, addr, pin string) *rtmpquic.RoQRConn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rc, err := rtmpquic.DialRoQR(ctx, "roqr://"+addr, rtmpquic.DialOptions{PinSHA256: pin})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rc.Close() })
	return rc
}

func command(t *testing.T, name string, msid uint32) message.Message {
	typ, p, err := message.EncodeCommand(&message.Command{Name: name, TransactionID: 1}, false)
	if err != nil {
		t.Fatal(err)
	}
	return message.Message{Type: typ, StreamID: msid, Payload: p}
}

// TestGatewayRoQRPerHop: the origin gets the PROXY header naming the QUIC
// client, the gateway's own chunk size first, and none of the client's
// per-hop control messages; the client gets none of the origin's
// acknowledgements. When the client goes away, the origin sees the end of
// its messages and is let go after the linger time.
func TestGatewayRoQRPerHop(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var logs jsonLog
	g, err := NewGateway(GatewayConfig{Upstream: "rtmp://" + ln.Addr().String(), ProxyProtocol: 1, Logger: logs.logger(), Linger: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	addr, pin := startRoQRGateway(t, g, false)
	rc := dialRoQR(t, addr, pin)

	big := bytes.Repeat([]byte{7}, 10000)
	connect := command(t, "connect", 0)
	connect.ChunkStreamID = 1 // valid on RoQR, not in a chunk stream
	sent := []message.Message{
		*message.SetChunkSize(1),
		*message.WindowAckSize(100),
		*message.SetPeerBandwidth(100, 2),
		connect,
		*message.Ack(12345),
		*message.Abort(3),
		{Type: message.TypeVideo, StreamID: 1, Timestamp: 40, Payload: big},
		*message.UserControl{Event: message.UCSetBufferLength, StreamID: 1, BufferLength: 500}.Message(),
	}
	if err := rc.WriteMessages(sent); err != nil {
		t.Fatal(err)
	}
	up, line := rawOrigin(t, ln, true)
	if !strings.HasPrefix(line, "PROXY TCP4 127.0.0.1 127.0.0.1 ") {
		t.Errorf("PROXY line %q", line)
	}
	up.SetReadDeadline(time.Now().Add(5 * time.Second))
	var got []*message.Message
	for len(got) < 4 {
		m, err := up.ReadMessage()
		if err != nil {
			t.Fatalf("origin: message %d: %v", len(got), err)
		}
		got = append(got, m)
	}
	if n, err := message.DecodeUint32(got[0].Payload); got[0].Type != message.TypeSetChunkSize || err != nil || n != gatewayChunkSize {
		t.Errorf("origin's first message %v, want SetChunkSize %d", got[0], gatewayChunkSize)
	}
	if !bytes.Equal(got[1].Payload, connect.Payload) || got[1].Type != connect.Type {
		t.Errorf("origin's second message %v, want connect", got[1])
	}
	if got[2].Type != message.TypeVideo || !bytes.Equal(got[2].Payload, big) || got[2].Timestamp != 40 || got[2].StreamID != 1 {
		t.Errorf("origin's third message %v, want the video", got[2])
	}
	if got[3].Type != message.TypeUserControl {
		t.Errorf("origin's fourth message %v, want the user control", got[3])
	}

	// The origin's acknowledgement stays on its leg; its window and chunk
	// size are passed on; its reply crosses.
	reply := command(t, "_result", 0)
	if err := up.WriteMessages([]message.Message{*message.Ack(99), *message.WindowAckSize(5000000), *message.SetChunkSize(8192), reply,
		{Type: message.TypeAudio, StreamID: 1, Timestamp: 7, Payload: big}}); err != nil {
		t.Fatal(err)
	}
	rc.SetReadDeadline(time.Now().Add(5 * time.Second))
	var types []message.Type
	for len(types) < 4 {
		m, err := rc.ReadMessage()
		if err != nil {
			t.Fatalf("client: message %d: %v", len(types), err)
		}
		types = append(types, m.Type)
		if m.Type == message.TypeAudio && !bytes.Equal(m.Payload, big) {
			t.Error("client: audio payload changed")
		}
	}
	if want := []message.Type{message.TypeWindowAckSize, message.TypeSetChunkSize, reply.Type, message.TypeAudio}; !equalTypes(types, want) {
		t.Errorf("client got %v, want %v", types, want)
	}

	// The client goes away: the origin sees the end of the gateway's
	// messages (a half-close, its replies could still come), and the
	// gateway lets go of it after Linger.
	start := time.Now()
	rc.Close()
	if m, err := up.ReadMessage(); err != io.EOF {
		t.Fatalf("origin: %v, %v after the client's end, want EOF", m, err)
	}
	r := logs.waitLines(t, "forwarded", 1, 5*time.Second)[0]
	if r["proto"] != "roqr" || r["closed_by"] != "client" || r["err"] != nil {
		t.Errorf("forwarded line %v", r)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("forwarded after %v, want about the linger (500ms)", d)
	}
}

func equalTypes(a, b []message.Type) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestGatewayRoQRUpstreamDown: with the origin down, a RoQR client is
// closed at once with a log line, and the gateway serves the next one;
// an origin that drops a client mid-session gets that client closed at
// once too.
func TestGatewayRoQRUpstreamDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	origin := ln.Addr().String()
	ln.Close()
	var logs jsonLog
	g, err := NewGateway(GatewayConfig{Upstream: "rtmp://" + origin, Logger: logs.logger()})
	if err != nil {
		t.Fatal(err)
	}
	addr, pin := startRoQRGateway(t, g, true)
	for i := range 2 {
		rc := dialRoQR(t, addr, pin)
		if err := rc.WriteMessages([]message.Message{command(t, "connect", 0)}); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		rc.SetReadDeadline(time.Now().Add(3 * time.Second))
		m, err := rc.ReadMessage()
		var ne net.Error
		if err == nil || errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("client %d: %v, %v: want the connection closed", i, m, err)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("client %d closed after %v, want promptly", i, d)
		}
	}
	if recs := logs.waitLines(t, "upstream unreachable, refusing client", 2, 5*time.Second); recs[0]["proto"] != "roqr" {
		t.Errorf("refusal line %v", recs[0])
	}

	// The origin comes up, takes the client, then goes away.
	ln, err = net.Listen("tcp", origin)
	if err != nil {
		t.Skipf("the origin's port was taken meanwhile: %v", err)
	}
	defer ln.Close()
	rc := dialRoQR(t, addr, pin)
	if err := rc.WriteMessages([]message.Message{command(t, "connect", 0)}); err != nil {
		t.Fatal(err)
	}
	up, _ := rawOrigin(t, ln, false)
	up.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		m, err := up.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		if m.Type == message.TypeCommandAMF0 {
			break
		}
	}
	up.Close()
	start := time.Now()
	rc.SetReadDeadline(time.Now().Add(5 * time.Second))
	if m, err := rc.ReadMessage(); err == nil {
		t.Fatalf("client got %v after the origin went away", m)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("client closed %v after the origin went away, want promptly", d)
	}
	recs := logs.waitLines(t, "forwarded", 1, 5*time.Second)
	if recs[0]["closed_by"] != "upstream" {
		t.Errorf("forwarded line %v: want closed by the upstream", recs[0])
	}
}
