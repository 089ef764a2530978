package e2e

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rtmphub/rtmphub/session/sessiontest"
)

// startBridge runs `rtmphub bridge --to to` on a loopback port and returns
// its address.
func startBridge(t testing.TB, to string, extra ...string) string {
	t.Helper()
	args := append([]string{"bridge", "--listen", "127.0.0.1:0", "--to", to, "--log-format", "json", "--log-level", "debug"}, extra...)
	p := command(t, 5*time.Minute, serverBin, args...)
	log := newLineLog()
	p.cmd.Stderr = tee(p.Stderr, log)
	p.cmd.Env = nil
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "RTMPHUB_") {
			p.cmd.Env = append(p.cmd.Env, kv)
		}
	}
	p.startCmd()
	t.Cleanup(func() { p.stop(5 * time.Second) })
	ln, ok := log.wait(func(l logLine) bool {
		return l.str("msg") == "listening" && l.str("transport") == "bridge" && l.str("addr") != ""
	}, listenTimeout, p.done)
	if !ok {
		t.Fatalf("bridge to %s did not start: %v\n%s", to, p.exited(), log.tail(40))
	}
	return ln.str("addr")
}

// quicEndpoint is the QUIC address and certificate fingerprint a server
// logged.
func quicEndpoint(t testing.TB, s *server) (addr, pin string) {
	t.Helper()
	addr = listenAddr(t, s, "rtmpq")
	l, ok := s.log.find(0, func(l logLine) bool { return l.str("msg") == "quic certificate" })
	if !ok || len(l.str("sha256")) != 64 {
		t.Fatalf("server logged no quic certificate fingerprint\n%s", s.log.tail(40))
	}
	return addr, l.str("sha256")
}

// bridgedPublishPlay: ffmpeg publishes through one bridge and plays
// through another, both to srv over the same transport; the player decodes
// ≥ 90% of the frames sent after it joined, identical to what was sent.
func bridgedPublishPlay(t *testing.T, srv *server, to string, proto string, bridgeArgs ...string) {
	pubBridge := startBridge(t, to, bridgeArgs...)
	playBridge := startBridge(t, to, bridgeArgs...)
	dir := t.TempDir()
	const seconds = 12
	pub := startPublisher(t, "rtmp://"+pubBridge+"/live/b1", pubOpts{Seconds: seconds, GOP: 25})
	pub.waitFrames(t, 50, 30*time.Second)
	players := []playerOut{ffPlay(t, pub, dir, "ffmpeg via bridge "+proto, "rtmp://"+playBridge+"/live/b1")}
	pub.finish(t, seconds*time.Second+40*time.Second)
	checkPlayers(t, pub, players)
	if n := logCount(srv, "publish", map[string]string{"proto": proto}); n != 1 {
		t.Errorf("%d %s publishers logged, want 1", n, proto)
	}
	if n := logCount(srv, "play", map[string]string{"proto": proto}); n != 1 {
		t.Errorf("%d %s players logged, want 1", n, proto)
	}
}

// TestBridgeQUIC: ffmpeg → rtmphub bridge → QUIC (certificate pinned) →
// hub, publish and play.
func TestBridgeQUIC(t *testing.T) {
	e2e(t)
	needFFmpeg(t)
	srv := startServer(t, "--quic-addr", "127.0.0.1:0")
	addr, pin := quicEndpoint(t, srv)
	bridgedPublishPlay(t, srv, "quic://"+addr, "rtmpq", "--pin", pin)
}

// TestBridgeRoQR: ffmpeg → rtmphub bridge (which terminates RTMP chunking)
// → RoQR, messages framed on QUIC → hub, publish and play.
func TestBridgeRoQR(t *testing.T) {
	e2e(t)
	needFFmpeg(t)
	srv := startServer(t, "--quic-addr", "127.0.0.1:0")
	addr, pin := quicEndpoint(t, srv)
	bridgedPublishPlay(t, srv, "roqr://"+addr, "roqr", "--pin", pin)
}

// TestBridgeRTMPT: ffmpeg → rtmphub bridge → RTMPT → hub, publish and play.
func TestBridgeRTMPT(t *testing.T) {
	e2e(t)
	needFFmpeg(t)
	srv := startServer(t, "--quic-addr", "")
	bridgedPublishPlay(t, srv, "rtmpt://"+srv.RTMPTAddr(t), "rtmpt")
}

// TestBridgeRTMPTS: the same over RTMPTS with a self-signed certificate,
// accepted with --insecure.
func TestBridgeRTMPTS(t *testing.T) {
	e2e(t)
	needFFmpeg(t)
	cert, key := writeTestCert(t)
	srv := startServer(t, "--quic-addr", "", "--tls-cert", cert, "--tls-key", key, "--tls-addr", "127.0.0.1:0")
	bridgedPublishPlay(t, srv, "rtmpts://"+listenAddr(t, srv, "tls"), "rtmpts", "--insecure")
}

// startNginxRTMP runs nginx-rtmp (libnginx-mod-rtmp) with one live
// application on a loopback port and returns its address.
func startNginxRTMP(t testing.TB) string {
	t.Helper()
	return startNginxModule(t, "/usr/lib/nginx/modules/ngx_rtmp_module.so", "nginx-rtmp module", func(addr string) string {
		return fmt.Sprintf(`rtmp {
    server {
        listen %s;
        application live {
            live on;
        }
    }
}
`, addr)
	})
}

// TestGatewayNginxRTMP: rtmphub as a gateway in front of a real nginx-rtmp
// (which has no RTMPT): ffmpeg publishes over rtmpt:// to the gateway; one
// ffmpeg player reads straight from nginx-rtmp, another through the
// gateway over rtmpt://, rtmpdump through the gateway over rtmp://, and
// ffmpeg through a client bridge and QUIC to the gateway.
func TestGatewayNginxRTMP(t *testing.T) {
	e2e(t)
	needFFmpeg(t)
	needTool(t, "rtmpdump")
	origin := startNginxRTMP(t)
	gw := startServer(t, "--quic-addr", "127.0.0.1:0", "--upstream", "rtmp://"+origin, "--rtmpt-timeout", "3s")
	httpAddr := gw.RTMPTAddr(t)
	qaddr, pin := quicEndpoint(t, gw)
	quicBridge := startBridge(t, "quic://"+qaddr, "--pin", pin)
	dir := t.TempDir()
	// nginx-rtmp keeps no GOP: a player starts at the next keyframe, so
	// keyframes come every 10 frames.
	const seconds = 16
	pub := startPublisher(t, "rtmpt://"+httpAddr+"/live/g1", pubOpts{Seconds: seconds, GOP: 10})
	pub.waitFrames(t, 50, 30*time.Second)
	players := []playerOut{
		ffPlay(t, pub, dir, "ffmpeg straight from nginx-rtmp", "rtmp://"+origin+"/live/g1"),
		ffPlay(t, pub, dir, "ffmpeg rtmpt via the gateway", "rtmpt://"+httpAddr+"/live/g1"),
		rdPlay(t, pub, dir, "rtmpdump rtmp via the gateway", "rtmp://"+gw.Addr+"/live/g1"),
		ffPlay(t, pub, dir, "ffmpeg via bridge, quic to the gateway", "rtmp://"+quicBridge+"/live/g1"),
	}
	finishOriginPlayers(t, pub, players, seconds)
	if !sessiontest.Poll(10*time.Second, func() bool {
		return logCount(gw, "forwarded", map[string]string{"proto": "rtmpt"}) >= 2
	}) {
		t.Errorf("%d rtmpt connections forwarded, want 2", logCount(gw, "forwarded", map[string]string{"proto": "rtmpt"}))
	}
	if n := logCount(gw, "forwarded", map[string]string{"proto": "rtmpq"}); n != 1 {
		t.Errorf("%d rtmpq connections forwarded, want 1", n)
	}
	if n := logCount(gw, "publish", nil); n != 0 {
		t.Errorf("the gateway served %d publishers itself, want 0", n)
	}
}

// finishOriginPlayers waits for a publisher of the given length to end,
// then stops players of an nginx-rtmp origin and applies the frame check
// over each player's window. nginx-rtmp tells players the stream ended
// (UnpublishNotify) but ffmpeg keeps waiting for it to come back, so the
// players are stopped rather than awaited.
func finishOriginPlayers(t *testing.T, pub *ffPublisher, players []playerOut, seconds int) {
	t.Helper()
	pub.finish(t, time.Duration(seconds)*time.Second+40*time.Second)
	settle := time.Now().Add(5 * time.Second)
	for _, p := range players {
		p.p.wait(time.Until(settle))
	}
	for _, p := range players {
		p.p.signal(syscall.SIGINT)
	}
	for _, p := range players {
		if !p.p.wait(3 * time.Second) {
			p.p.signal(syscall.SIGKILL)
			p.p.wait(5 * time.Second)
		}
		t.Logf("%s: playing from publisher frame %d, ended after %v", p.p.Who, p.p.JoinFrame(t), p.p.took().Round(time.Millisecond))
	}
	checkPlayerFrames(t, pub, players)
}

// TestGatewayNginxRTMPS: the gateway terminates TLS in front of nginx-rtmp
// (which has none): ffmpeg publishes over rtmps:// to the gateway's TLS
// port; one ffmpeg player reads straight from nginx-rtmp, another through
// the gateway over rtmpts:// on the same port (RTMPT sniffed inside TLS).
func TestGatewayNginxRTMPS(t *testing.T) {
	e2e(t)
	needFFmpeg(t)
	origin := startNginxRTMP(t)
	cert, key := writeTestCert(t)
	gw := startServer(t, "--quic-addr", "", "--upstream", "rtmp://"+origin, "--rtmpt-timeout", "3s",
		"--tls-cert", cert, "--tls-key", key, "--tls-addr", "127.0.0.1:0")
	tlsAddr := listenAddr(t, gw, "tls")
	dir := t.TempDir()
	const seconds = 14
	pub := startPublisher(t, "rtmps://"+tlsAddr+"/live/g2", pubOpts{Seconds: seconds, GOP: 10})
	pub.waitFrames(t, 50, 30*time.Second)
	players := []playerOut{
		ffPlay(t, pub, dir, "ffmpeg straight from nginx-rtmp", "rtmp://"+origin+"/live/g2"),
		ffPlay(t, pub, dir, "ffmpeg rtmpts via the gateway", "rtmpts://"+tlsAddr+"/live/g2"),
	}
	finishOriginPlayers(t, pub, players, seconds)
	if n := logCount(gw, "forwarded", map[string]string{"proto": "rtmps"}); n != 1 {
		t.Errorf("%d rtmps connections forwarded, want 1", n)
	}
	// A tunneled connection is logged when its session ends: after the
	// player stopped polling, at the session timeout.
	if !sessiontest.Poll(10*time.Second, func() bool {
		return logCount(gw, "forwarded", map[string]string{"proto": "rtmpts"}) == 1
	}) {
		t.Errorf("%d rtmpts connections forwarded, want 1", logCount(gw, "forwarded", map[string]string{"proto": "rtmpts"}))
	}
	if n := logCount(gw, "publish", nil); n != 0 {
		t.Errorf("the gateway served %d publishers itself, want 0", n)
	}
}

// TestGatewayUpstreamDown: with the origin down, a client is refused at
// once (its connection closed), the gateway logs why and keeps running.
func TestGatewayUpstreamDown(t *testing.T) {
	e2e(t)
	dead := freeLoopbackPort(t)
	gw := startServer(t, "--quic-addr", "", "--upstream", fmt.Sprintf("rtmp://127.0.0.1:%d", dead))
	for i := range 2 {
		c, err := net.DialTimeout("tcp", gw.Addr, 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		c.Write(append([]byte{3}, make([]byte, 1536)...)) // C0 C1
		c.SetReadDeadline(time.Now().Add(3 * time.Second))
		start := time.Now()
		n, err := c.Read(make([]byte, 1))
		took := time.Since(start)
		c.Close()
		var ne net.Error
		if n != 0 || err == nil || (errors.As(err, &ne) && ne.Timeout()) {
			t.Fatalf("client %d: read %d bytes, err %v after %v; want the connection closed", i, n, err, took)
		}
		if took > time.Second {
			t.Errorf("client %d refused after %v, want promptly", i, took)
		}
	}
	if _, ok := gw.log.wait(func(l logLine) bool {
		return l.str("msg") == "upstream unreachable, refusing client" && strings.Contains(l.str("err"), "refused")
	}, 5*time.Second, gw.done); !ok {
		t.Errorf("no log line naming the refused upstream\n%s", gw.log.tail(20))
	}
	gw.requireAlive(t)
}
