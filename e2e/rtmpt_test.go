package e2e

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rtmphub/rtmphub/rtmp/client"
	"github.com/rtmphub/rtmphub/rtmp/message"
	"github.com/rtmphub/rtmphub/session/sessiontest"
	"github.com/rtmphub/rtmphub/tunnel"
)

// RTMPT (RTMP over HTTP polling), RTMPS and RTMPTS with real clients:
// ffmpeg, rtmpdump, python3-librtmp, nginx as a reverse proxy, tshark,
// and rtmphub's own RTMPT dialer.

// ---------------------------------------------------------------------------
// Helpers

// listenAddr waits for the server's {"msg":"listening","transport":...}
// line and returns its address.
func listenAddr(t testing.TB, s *server, transport string) string {
	t.Helper()
	ln, ok := s.log.wait(func(l logLine) bool {
		return l.str("msg") == "listening" && l.str("transport") == transport && l.str("addr") != ""
	}, listenTimeout, s.done)
	if !ok {
		t.Fatalf("server logged no listening line for %s\n%s", transport, s.log.tail(40))
	}
	return ln.str("addr")
}

// logCount counts the server's JSON lines with msg whose attributes match.
func logCount(s *server, msg string, attrs map[string]string) int {
	lines, _ := s.log.snapshot(0)
	n := 0
next:
	for _, l := range lines {
		if l.str("msg") != msg {
			continue
		}
		for k, v := range attrs {
			if l.str(k) != v {
				continue next
			}
		}
		n++
	}
	return n
}

// freeLoopbackPort returns a port that was free a moment ago.
func freeLoopbackPort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// startNginx runs nginx with a config from docs/, its placeholder
// addresses replaced (old → new), plus what a test run needs (foreground,
// one process, a private prefix). It returns the proxy's address.
func startNginx(t testing.TB, docFile string, replace map[string]string) string {
	t.Helper()
	nginx := needTool(t, "nginx")
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, "docs", docFile))
	if err != nil {
		t.Fatal(err)
	}
	conf := string(b)
	port := freeLoopbackPort(t)
	replace["listen 80;"] = fmt.Sprintf("listen 127.0.0.1:%d;", port)
	for old, new := range replace {
		if !strings.Contains(conf, old) {
			t.Fatalf("docs/%s has no %q to replace", docFile, old)
		}
		conf = strings.ReplaceAll(conf, old, new)
	}
	dir := t.TempDir()
	var temps strings.Builder
	for _, k := range []string{"client_body", "proxy", "fastcgi", "uwsgi", "scgi"} {
		fmt.Fprintf(&temps, "    %s_temp_path %s;\n", k, filepath.Join(dir, k))
	}
	conf = fmt.Sprintf("daemon off;\nmaster_process off;\npid %s;\nerror_log stderr warn;\n", filepath.Join(dir, "nginx.pid")) +
		strings.Replace(conf, "http {\n", "http {\n"+temps.String(), 1)
	path := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	p := startProc(t, 5*time.Minute, nginx, "-p", dir, "-c", path)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	if !sessiontest.Poll(10*time.Second, func() bool {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
		}
		return err == nil || p.exited()
	}) || p.exited() {
		t.Fatalf("nginx did not start on %s:\n%s", addr, p.Stderr.String())
	}
	t.Cleanup(func() { p.stop(5 * time.Second) })
	return addr
}

// writeTestCert writes a self-signed certificate for 127.0.0.1 and its
// key as PEM files.
func writeTestCert(t testing.TB) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "rtmphub e2e"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:              []string{"localhost"},
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// playerOut is a player and where its output goes: a framemd5 file
// (ffmpeg) or an FLV file (rtmpdump).
type playerOut struct {
	p        *player
	md5, flv string
}

// checkPlayers waits for every player to end by itself after the
// publisher ended, then applies the 90% rule to each over its window
// (from when it sent play).
func checkPlayers(t *testing.T, pub *ffPublisher, players []playerOut) {
	t.Helper()
	for _, p := range players {
		awaitPlayerEnd(t, p.p, 20*time.Second)
		t.Logf("%s: playing from publisher frame %d, ended after %v: %v", p.p.Who, p.p.JoinFrame(t),
			p.p.took().Round(time.Millisecond), p.p.exitErr())
	}
	checkPlayerFrames(t, pub, players)
	for _, p := range players {
		if p.md5 == "" {
			continue // rtmpdump's exit status is its own download estimate
		}
		if err := p.p.exitErr(); err != nil {
			t.Errorf("%s exited with %v", p.p.Who, err)
		}
	}
}

// checkPlayerFrames applies the 90% rule to each ended player's decoded
// frames (an ffmpeg framemd5 file, or an rtmpdump FLV decoded here).
func checkPlayerFrames(t *testing.T, pub *ffPublisher, players []playerOut) {
	t.Helper()
	ref := loadReference(t, pub.Ref, pub.FPS)
	for _, p := range players {
		if p.md5 == "" {
			checkPlayer(t, p.p.Who, ref, decodeToMD5(t, p.flv), p.p.JoinFrame(t))
			continue
		}
		fl, err := parseFrameMD5(p.md5)
		if err != nil {
			t.Errorf("%s: %v", p.p.Who, err)
			continue
		}
		checkPlayer(t, p.p.Who, ref, fl, p.p.JoinFrame(t))
	}
}

// ffPlay and rdPlay start an ffmpeg or rtmpdump player of url.
func ffPlay(t *testing.T, pub *ffPublisher, dir, who, url string) playerOut {
	t.Helper()
	out := filepath.Join(dir, strings.NewReplacer(" ", "-", "/", "-").Replace(who)+".md5")
	return playerOut{p: startFFmpegPlayer(t, who, url, out, pub.Frames), md5: out}
}

func rdPlay(t *testing.T, pub *ffPublisher, dir, who, url string) playerOut {
	t.Helper()
	out := filepath.Join(dir, strings.NewReplacer(" ", "-", "/", "-").Replace(who)+".flv")
	return playerOut{p: startRtmpdump(t, who, url, out, pub.Frames), flv: out}
}

// ---------------------------------------------------------------------------
// Real clients over RTMPT

// TestRTMPTFFmpegAndRtmpdump: ffmpeg publishes over rtmpt:// on the HTTP
// port; ffmpeg and rtmpdump play over rtmpt:// on the HTTP port and on the
// RTMP port (sniffed), and ffmpeg plays over native rtmp:// (mixed). Each
// player decodes ≥ 90% of the frames sent after it joined, identical to
// what was published, and ends by itself after the publisher.
func TestRTMPTFFmpegAndRtmpdump(t *testing.T) {
	e2e(t)
	needFFmpeg(t)
	needTool(t, "rtmpdump")
	srv := startServer(t)
	httpAddr := srv.RTMPTAddr(t)
	dir := t.TempDir()

	const seconds = 16
	pub := startPublisher(t, "rtmpt://"+httpAddr+"/live/t1", pubOpts{Seconds: seconds, GOP: 25})
	pub.waitFrames(t, 75, 30*time.Second)
	players := []playerOut{
		ffPlay(t, pub, dir, "ffmpeg rtmpt on the HTTP port", "rtmpt://"+httpAddr+"/live/t1"),
		ffPlay(t, pub, dir, "ffmpeg rtmpt on the RTMP port", "rtmpt://"+srv.Addr+"/live/t1"),
		ffPlay(t, pub, dir, "ffmpeg native rtmp", srv.URL("t1")),
		rdPlay(t, pub, dir, "rtmpdump rtmpt on the HTTP port", "rtmpt://"+httpAddr+"/live/t1"),
		rdPlay(t, pub, dir, "rtmpdump rtmpt on the RTMP port", "rtmpt://"+srv.Addr+"/live/t1"),
	}
	pub.finish(t, seconds*time.Second+40*time.Second)
	srv.requireAlive(t)
	checkPlayers(t, pub, players)

	if n := logCount(srv, "publish", map[string]string{"proto": "rtmpt"}); n != 1 {
		t.Errorf("%d publish lines with proto rtmpt, want 1", n)
	}
	if n := logCount(srv, "play", map[string]string{"proto": "rtmpt"}); n != 4 {
		t.Errorf("%d play lines with proto rtmpt, want 4", n)
	}
	if n := logCount(srv, "play", map[string]string{"proto": "rtmp"}); n != 1 {
		t.Errorf("%d play lines with proto rtmp, want 1", n)
	}
}

// TestRTMPTPlayOfNativePublish: the reverse mix, ffmpeg publishing over
// native RTMP and playing over RTMPT.
func TestRTMPTPlayOfNativePublish(t *testing.T) {
	e2e(t)
	needFFmpeg(t)
	srv := startServer(t)
	httpAddr := srv.RTMPTAddr(t)
	dir := t.TempDir()
	const seconds = 10
	pub := startPublisher(t, srv.URL("t2"), pubOpts{Seconds: seconds, GOP: 25})
	pub.waitFrames(t, 50, 30*time.Second)
	players := []playerOut{ffPlay(t, pub, dir, "ffmpeg rtmpt player", "rtmpt://"+httpAddr+"/live/t2")}
	pub.finish(t, seconds*time.Second+40*time.Second)
	checkPlayers(t, pub, players)
}

// pythonLibrtmpScript connects with python3-librtmp, plays a live stream
// and prints how many FLV bytes it read.
const pythonLibrtmpScript = `
import sys, time, librtmp
conn = librtmp.RTMP(sys.argv[1], live=True, timeout=15)
conn.connect()
stream = conn.create_stream()
got = b""
deadline = time.time() + 20
while len(got) < 150000 and time.time() < deadline:
    data = stream.read(65536)
    if not data:
        break
    got += data
stream.close()
print("read", len(got), got[:3].decode("latin-1"))
`

// pythonWithLibrtmp finds a python3 that imports librtmp (the Debian
// package installs it for the system python, which a pyenv shim may hide).
func pythonWithLibrtmp(t testing.TB) string {
	t.Helper()
	for _, p := range []string{"/usr/bin/python3", "python3"} {
		path, err := exec.LookPath(p)
		if err != nil {
			continue
		}
		if exec.Command(path, "-c", "import librtmp").Run() == nil {
			return path
		}
	}
	if inCI() {
		t.Fatal("no python3 with the librtmp module (apt-get install python3-librtmp)")
	}
	t.Skip("no python3 with the librtmp module (apt-get install python3-librtmp)")
	return ""
}

// TestRTMPTPythonLibrtmp: python3-librtmp connects over rtmpt:// (librtmp
// pipelines its requests) and reads the live stream as FLV.
func TestRTMPTPythonLibrtmp(t *testing.T) {
	e2e(t)
	needFFmpeg(t)
	py := pythonWithLibrtmp(t)
	srv := startServer(t)
	httpAddr := srv.RTMPTAddr(t)
	pub := startPublisher(t, srv.URL("t3"), pubOpts{Seconds: 20, GOP: 25})
	pub.waitFrames(t, 25, 30*time.Second)
	out := run(t, time.Minute, py, "-c", pythonLibrtmpScript, "rtmpt://"+httpAddr+"/live/t3")
	f := strings.Fields(out)
	if len(f) < 3 || f[0] != "read" || f[2] != "FLV" {
		t.Fatalf("python3-librtmp output %q", out)
	}
	if n, _ := strconv.Atoi(f[1]); n < 150000 {
		t.Fatalf("python3-librtmp read only %d bytes", n)
	}
	t.Logf("python3-librtmp: %s", strings.TrimSpace(out))
	if n := logCount(srv, "connected", map[string]string{"proto": "rtmpt"}); n != 1 {
		t.Errorf("%d rtmpt connections logged, want 1", n)
	}
	pub.stop(5 * time.Second)
}

// ---------------------------------------------------------------------------
// Through nginx

// TestRTMPTBehindNginx: docs/nginx-rtmpt.conf in front of the HTTP port;
// ffmpeg publishes and plays, rtmpdump plays, all through the proxy.
func TestRTMPTBehindNginx(t *testing.T) {
	e2e(t)
	needFFmpeg(t)
	needTool(t, "rtmpdump")
	srv := startServer(t, "--trusted-proxies", "127.0.0.1/32")
	proxy := startNginx(t, "nginx-rtmpt.conf", map[string]string{"server 127.0.0.1:8080;": "server " + srv.RTMPTAddr(t) + ";"})
	dir := t.TempDir()
	const seconds = 14
	pub := startPublisher(t, "rtmpt://"+proxy+"/live/n1", pubOpts{Seconds: seconds, GOP: 25})
	pub.waitFrames(t, 50, 30*time.Second)
	players := []playerOut{
		ffPlay(t, pub, dir, "ffmpeg through nginx", "rtmpt://"+proxy+"/live/n1"),
		rdPlay(t, pub, dir, "rtmpdump through nginx", "rtmpt://"+proxy+"/live/n1"),
	}
	pub.finish(t, seconds*time.Second+40*time.Second)
	checkPlayers(t, pub, players)
	if n := logCount(srv, "connected", map[string]string{"proto": "rtmpt"}); n != 3 {
		t.Errorf("%d rtmpt connections logged, want 3", n)
	}
}

// TestRTMPTTwoInstancesBehindNginx: docs/nginx-rtmpt-cluster.conf routes
// each session to the instance whose id prefix it carries. One ffmpeg
// feeds both instances; four ffmpeg players through the proxy play for
// 20 s, landing on both instances, and none loses its session.
func TestRTMPTTwoInstancesBehindNginx(t *testing.T) {
	e2e(t)
	needFFmpeg(t)
	a := startServer(t, "--rtmpt-id-prefix", "A", "--trusted-proxies", "127.0.0.1/32")
	b := startServer(t, "--rtmpt-id-prefix", "B", "--trusted-proxies", "127.0.0.1/32")
	aHTTP, bHTTP := a.RTMPTAddr(t), b.RTMPTAddr(t)
	proxy := startNginx(t, "nginx-rtmpt-cluster.conf", map[string]string{
		"server 127.0.0.1:8081;": "server " + aHTTP + ";",
		"server 127.0.0.1:8082;": "server " + bHTTP + ";",
	})
	dir := t.TempDir()
	const seconds = 26
	// One encode, published to both instances (ffmpeg's tee muxer).
	ref := filepath.Join(dir, "published.flv")
	args := []string{"-nostdin", "-hide_banner", "-loglevel", "warning", "-re",
		"-f", "lavfi", "-i", "testsrc=size=320x240:rate=25", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100",
		"-map", "0:v", "-map", "1:a"}
	args = append(args, x264Args(25, "")...)
	args = append(args, "-c:a", "aac", "-b:a", "64k", "-flags", "+global_header", "-t", strconv.Itoa(seconds),
		"-progress", "pipe:1", "-stats_period", "0.1",
		"-f", "tee", "[f=flv:onfail=abort]"+a.URL("c1")+"|[f=flv:onfail=abort]"+b.URL("c1")+"|[f=flv]"+ref)
	pub := &ffPublisher{URL: "tee to two instances", Ref: ref, FPS: 25}
	pub.proc = command(t, seconds*time.Second+time.Minute, "ffmpeg", args...)
	pub.cmd.Stdout = tee(pub.Stdout, &lineWriter{fn: func(l string) {
		if v, ok := strings.CutPrefix(l, "frame="); ok {
			if n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil {
				pub.frames.Store(n)
			}
		}
	}})
	pub.startCmd()
	pub.waitFrames(t, 50, 30*time.Second)
	var players []playerOut
	for i := range 4 {
		players = append(players, ffPlay(t, pub, dir, fmt.Sprintf("ffmpeg %d through nginx", i+1), "rtmpt://"+proxy+"/live/c1"))
	}
	pub.finish(t, seconds*time.Second+40*time.Second)
	checkPlayers(t, pub, players)
	na := logCount(a, "play", map[string]string{"proto": "rtmpt"})
	nb := logCount(b, "play", map[string]string{"proto": "rtmpt"})
	t.Logf("players on instance A: %d, on instance B: %d", na, nb)
	if na+nb != 4 || na == 0 || nb == 0 {
		t.Errorf("players per instance A=%d B=%d: want all four, on both", na, nb)
	}
	for _, s := range []*server{a, b} {
		if n := logCount(s, "rtmpt sessions closed for silence", nil); n != 0 {
			t.Errorf("an instance timed out %d sessions: requests went astray", n)
		}
	}
}

// ---------------------------------------------------------------------------
// tshark

// TestRTMPTTsharkDissects captures an RTMPT publish and play on the HTTP
// port. Decoded as rtmpt (-d tcp.port==P,rtmpt) nothing is malformed; as
// HTTP (-d tcp.port==P,http), Wireshark hands the application/x-fcs bodies
// of both directions to its RTMPT dissector, which finds the commands,
// statuses and media.
func TestRTMPTTsharkDissects(t *testing.T) {
	e2e(t)
	needFFmpeg(t)
	needTool(t, "tshark")
	srv := startServer(t)
	httpAddr := srv.RTMPTAddr(t)
	_, port, _ := net.SplitHostPort(httpAddr)
	dir := t.TempDir()
	pcap := filepath.Join(dir, "rtmpt.pcapng")
	capture := startProc(t, 2*time.Minute, "tshark", "-n", "-i", "lo", "-f", "tcp port "+port, "-w", pcap)
	if !sessiontest.Poll(30*time.Second, func() bool {
		return strings.Contains(capture.Stderr.String(), "Capturing on") || capture.exited()
	}) || capture.exited() {
		msg := fmt.Sprintf("tshark did not start capturing on lo:\n%s", capture.Stderr.String())
		if !inCI() && (strings.Contains(msg, "ermission") || strings.Contains(msg, "Operation not permitted")) {
			t.Skip(msg)
		}
		t.Fatal(msg)
	}
	pub := startPublisher(t, "rtmpt://"+httpAddr+"/live/cap", pubOpts{Seconds: 4, GOP: 25})
	pub.waitFrames(t, 25, 30*time.Second)
	player := startFFmpegPlayer(t, "ffmpeg rtmpt player", "rtmpt://"+httpAddr+"/live/cap", filepath.Join(dir, "p.md5"), pub.Frames)
	pub.finish(t, 40*time.Second)
	awaitPlayerEnd(t, player, 20*time.Second)
	time.Sleep(300 * time.Millisecond)
	capture.signal(syscall.SIGINT)
	if !capture.wait(15 * time.Second) {
		t.Fatal("tshark did not stop on SIGINT")
	}
	read := func(decodeAs, filter string, extra ...string) string {
		args := append([]string{"-n", "-r", pcap, "-d", "tcp.port==" + port + "," + decodeAs, "-Y", filter}, extra...)
		return strings.TrimSpace(run(t, time.Minute, "tshark", args...))
	}
	for _, as := range []string{"rtmpt", "http"} {
		if bad := read(as, "_ws.malformed"); bad != "" {
			t.Errorf("decoded as %s, tshark flags malformed packets:\n%s\n%s", as, tailString(bad, 2000),
				tailString(read(as, "_ws.malformed", "-V"), 4000))
		}
	}
	if read("rtmpt", "rtmpt") == "" {
		t.Error("decoded as rtmpt, nothing was dissected as RTMP")
	}
	for _, code := range []string{"NetConnection.Connect.Success", "NetStream.Publish.Start", "NetStream.Play.Start"} {
		if read("http", fmt.Sprintf("amf.string == %q", code)) == "" {
			t.Errorf("tshark found no AMF string %q in the RTMPT replies", code)
		}
	}
	if read("http", "tcp.dstport=="+port+" && rtmpt.video.data") == "" {
		t.Error("tshark found no video in the /send bodies")
	}
	if read("http", "tcp.srcport=="+port+" && rtmpt.video.data") == "" || read("http", "tcp.srcport=="+port+" && rtmpt.audio.data") == "" {
		t.Error("tshark found no audio/video in the replies")
	}
	if read("http", `http.content_type == "application/x-fcs"`) == "" {
		t.Error("no application/x-fcs HTTP messages")
	}
}

// ---------------------------------------------------------------------------
// TLS

// TestRTMPSAndRTMPTS: with a certificate made here, ffmpeg publishes over
// rtmps:// to the TLS port and plays over rtmpts:// on the TLS port, over
// rtmps:// on the RTMP port and over rtmpts:// on the HTTP port (TLS
// sniffed on both).
func TestRTMPSAndRTMPTS(t *testing.T) {
	e2e(t)
	needFFmpeg(t)
	cert, key := writeTestCert(t)
	srv := startServer(t, "--tls-cert", cert, "--tls-key", key, "--tls-addr", "127.0.0.1:0")
	tlsAddr, httpAddr := listenAddr(t, srv, "tls"), srv.RTMPTAddr(t)
	dir := t.TempDir()
	const seconds = 14
	pub := startPublisher(t, "rtmps://"+tlsAddr+"/live/s1", pubOpts{Seconds: seconds, GOP: 25})
	pub.waitFrames(t, 50, 30*time.Second)
	players := []playerOut{
		ffPlay(t, pub, dir, "ffmpeg rtmpts on the TLS port", "rtmpts://"+tlsAddr+"/live/s1"),
		ffPlay(t, pub, dir, "ffmpeg rtmps on the RTMP port", "rtmps://"+srv.Addr+"/live/s1"),
		ffPlay(t, pub, dir, "ffmpeg rtmpts on the HTTP port", "rtmpts://"+httpAddr+"/live/s1"),
	}
	pub.finish(t, seconds*time.Second+40*time.Second)
	checkPlayers(t, pub, players)
	if n := logCount(srv, "publish", map[string]string{"proto": "rtmps"}); n != 1 {
		t.Errorf("%d rtmps publishers logged, want 1", n)
	}
	if n := logCount(srv, "play", map[string]string{"proto": "rtmpts"}); n != 2 {
		t.Errorf("%d rtmpts players logged, want 2", n)
	}
	if n := logCount(srv, "play", map[string]string{"proto": "rtmps"}); n != 1 {
		t.Errorf("%d rtmps players logged, want 1", n)
	}
}

// ---------------------------------------------------------------------------
// rtmphub's own dialer

// TestRTMPTDialerSurvivesDroppedConnections: a Go player on
// tunnel.DialRTMPT plays a live stream while every TCP connection under it
// is closed once a second; the RTMPT session (keyed on its id) survives,
// and video keeps coming in order.
func TestRTMPTDialerSurvivesDroppedConnections(t *testing.T) {
	e2e(t)
	needFFmpeg(t)
	srv := startServer(t)
	httpAddr := srv.RTMPTAddr(t)
	pub := startPublisher(t, srv.URL("d1"), pubOpts{Seconds: 20, GOP: 25})
	pub.waitFrames(t, 25, 30*time.Second)
	defer pub.stop(5 * time.Second)

	var mu sync.Mutex
	var conns []net.Conn
	dialTCP := func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err == nil {
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
		return c, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, "rtmp://"+httpAddr+"/live", client.Options{
		Dial: func(ctx context.Context, addr string) (net.Conn, error) {
			return tunnel.DialRTMPT(ctx, "rtmpt://"+addr, tunnel.DialOptions{Dial: dialTCP})
		},
	})
	if err != nil {
		t.Fatalf("connect over RTMPT: %v", err)
	}
	defer c.Close()
	msid, err := c.CreateStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Play(ctx, msid, "d1", -1000); err != nil {
		t.Fatal(err)
	}

	stop := make(chan struct{})
	killed := 0
	var killer sync.WaitGroup
	killer.Add(1)
	go func() {
		defer killer.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(time.Second):
			}
			mu.Lock()
			for _, nc := range conns {
				nc.Close()
				killed++
			}
			conns = nil
			mu.Unlock()
		}
	}()
	const playFor = 8 * time.Second
	start := time.Now()
	var videos int
	var lastTS uint32
	var worstGap time.Duration
	lastAt := time.Now()
	for time.Since(start) < playFor {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		m, err := c.ReadMessage()
		if err != nil {
			close(stop)
			killer.Wait()
			t.Fatalf("after %v, %d video messages and %d connections killed: %v", time.Since(start).Round(time.Millisecond), videos, killed, err)
		}
		if m.Type != message.TypeVideo {
			continue
		}
		if videos > 0 && m.Timestamp < lastTS {
			t.Errorf("video timestamp went back from %d to %d", lastTS, m.Timestamp)
		}
		lastTS = m.Timestamp
		videos++
		worstGap = max(worstGap, time.Since(lastAt))
		lastAt = time.Now()
	}
	close(stop)
	killer.Wait()
	t.Logf("%d video messages in %v with %d TCP connections killed; longest gap %v", videos, playFor, killed, worstGap.Round(time.Millisecond))
	if killed < 5 {
		t.Fatalf("only %d connections killed", killed)
	}
	if videos < int(playFor.Seconds()*25*0.9) {
		t.Errorf("%d video messages in %v, want ≥ 90%% of 25 per second", videos, playFor)
	}
	if n := logCount(srv, "rtmpt session opened", nil); n != 1 {
		t.Errorf("%d RTMPT sessions opened, want the one session to survive", n)
	}
}

// ---------------------------------------------------------------------------
// Bad input

// TestRTMPTBadInput: unknown sessions, wrong methods, malformed paths and
// bodies over the limit get 4xx (never 5xx), the connection staying usable
// where HTTP allows; 10k bogus requests leave the server's memory flat and
// a real client still connects afterwards.
func TestRTMPTBadInput(t *testing.T) {
	e2e(t)
	srv := startServer(t, "--rtmpt-max-body", "65536")
	httpAddr := srv.RTMPTAddr(t)

	one := func(req string) int {
		nc, err := net.DialTimeout("tcp", httpAddr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		nc.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.WriteString(nc, req); err != nil {
			t.Fatal(err)
		}
		line, err := bufio.NewReader(nc).ReadString('\n')
		if err != nil {
			t.Fatalf("no reply to %q: %v", tailString(req, 80), err)
		}
		f := strings.Fields(line)
		code, _ := strconv.Atoi(f[1])
		return code
	}
	for _, tc := range []struct {
		name, req string
		want      int
	}{
		{"unknown session", "POST /idle/ABCDEFGH12345678/0 HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\n\x00", 404},
		{"GET", "GET /open/1 HTTP/1.1\r\nHost: x\r\n\r\n", 405},
		{"malformed path", "POST /idle/../../etc/passwd HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", 400},
		{"body over the limit", "POST /send/ABCDEFGH12345678/0 HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n", 413},
		{"garbage request line", "POZT\x01\x02 nonsense\r\n\r\n", 400},
	} {
		if got := one(tc.req); got != tc.want {
			t.Errorf("%s: status %d, want %d", tc.name, got, tc.want)
		}
	}

	rssBefore, _ := srv.RSS()
	var wg sync.WaitGroup
	var bad5xx, failed sync.Map
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			nc, err := net.Dial("tcp", httpAddr)
			if err != nil {
				failed.Store(w, err)
				return
			}
			defer nc.Close()
			br := bufio.NewReader(nc)
			for i := 0; i < 2500; i += 50 {
				var b strings.Builder
				for j := range 50 {
					switch (i + j) % 4 {
					case 0:
						fmt.Fprintf(&b, "POST /idle/Zz%014d/%d HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\n\x00", i+j, j)
					case 1:
						fmt.Fprintf(&b, "POST /send/Zz%014d/%d HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nabcd", i+j, j)
					case 2:
						b.WriteString("POST /nope HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
					case 3:
						b.WriteString("GET /idle/x/1 HTTP/1.1\r\nHost: x\r\n\r\n")
					}
				}
				nc.SetDeadline(time.Now().Add(20 * time.Second))
				if _, err := io.WriteString(nc, b.String()); err != nil {
					failed.Store(w, err)
					return
				}
				for range 50 {
					resp, err := readHTTPStatusAndSkip(br)
					if err != nil {
						failed.Store(w, err)
						return
					}
					if resp >= 500 || resp < 400 {
						bad5xx.Store(resp, true)
					}
				}
			}
		}()
	}
	wg.Wait()
	failed.Range(func(k, v any) bool { t.Errorf("bogus request worker %v: %v", k, v); return true })
	bad5xx.Range(func(k, v any) bool { t.Errorf("a bogus request got status %v", k); return true })
	rssAfter, _ := srv.RSS()
	t.Logf("10000 bogus requests: RSS %d → %d KiB", rssBefore>>10, rssAfter>>10)
	if rssAfter > rssBefore+16<<20 {
		t.Errorf("RSS grew by %d KiB over 10k bogus requests", (rssAfter-rssBefore)>>10)
	}
	srv.requireAlive(t)

	// A real session still works.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, "rtmp://"+httpAddr+"/live", client.Options{
		Dial: func(ctx context.Context, addr string) (net.Conn, error) {
			return tunnel.DialRTMPT(ctx, "rtmpt://"+addr, tunnel.DialOptions{})
		},
	})
	if err != nil {
		t.Fatalf("connect over RTMPT after the flood: %v", err)
	}
	c.Close()
}

// readHTTPStatusAndSkip reads one HTTP response with a Content-Length and
// returns its status.
func readHTTPStatusAndSkip(br *bufio.Reader) (int, error) {
	line, err := br.ReadString('\n')
	if err != nil {
		return 0, err
	}
	f := strings.Fields(line)
	if len(f) < 2 {
		return 0, fmt.Errorf("bad status line %q", line)
	}
	code, _ := strconv.Atoi(f[1])
	length := 0
	for {
		h, err := br.ReadString('\n')
		if err != nil {
			return 0, err
		}
		h = strings.TrimRight(h, "\r\n")
		if h == "" {
			break
		}
		if k, v, ok := strings.Cut(h, ":"); ok && strings.EqualFold(k, "Content-Length") {
			length, _ = strconv.Atoi(strings.TrimSpace(v))
		}
	}
	_, err = br.Discard(length)
	return code, err
}

// TestRTMPTStalledPlayerIsDisconnected: an RTMPT player that stops reading
// (so its client stops polling) fills its session's pending bytes; the
// server's writes to it then block — nothing is dropped from the middle of
// its chunk stream — and the slow-client rule disconnects it after
// --stall-timeout, while another RTMPT player of the same stream plays on.
func TestRTMPTStalledPlayerIsDisconnected(t *testing.T) {
	e2e(t)
	needFFmpeg(t)
	srv := startServer(t, "--rtmpt-max-pending", "65536", "--stall-timeout", "2s", "--rtmpt-timeout", "3s")
	httpAddr := srv.RTMPTAddr(t)
	pub := startPublisher(t, srv.URL("st"), pubOpts{Seconds: 40, GOP: 25, Bitrate: "800k"})
	pub.waitFrames(t, 25, 30*time.Second)
	defer pub.stop(5 * time.Second)

	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	play := func(who string) *client.Conn {
		c, err := client.Dial(ctx, "rtmp://"+httpAddr+"/live", client.Options{
			Dial: func(ctx context.Context, addr string) (net.Conn, error) {
				return tunnel.DialRTMPT(ctx, "rtmpt://"+addr, tunnel.DialOptions{MaxPending: 64 << 10})
			},
		})
		if err != nil {
			t.Fatalf("%s: %v", who, err)
		}
		t.Cleanup(func() { c.Close() })
		msid, err := c.CreateStream(ctx)
		if err == nil {
			err = c.Play(ctx, msid, "st", -1000)
		}
		if err != nil {
			t.Fatalf("%s: %v", who, err)
		}
		return c
	}
	play("stalled player") // never read from again
	healthy := play("healthy player")

	start := time.Now()
	stalledOff := false
	videos := 0
	for time.Since(start) < 15*time.Second && !(stalledOff && videos > 100) {
		healthy.SetReadDeadline(time.Now().Add(5 * time.Second))
		m, err := healthy.ReadMessage()
		if err != nil {
			t.Fatalf("healthy player after %d video messages: %v", videos, err)
		}
		if m.Type == message.TypeVideo {
			videos++
		}
		if !stalledOff {
			stalledOff = logCount(srv, "closed", map[string]string{"proto": "rtmpt"}) > 0
			if stalledOff {
				t.Logf("stalled player disconnected after %v", time.Since(start).Round(time.Millisecond))
			}
		}
	}
	if !stalledOff {
		t.Fatalf("the stalled RTMPT player was not disconnected within 15s\n%s", srv.log.tail(30))
	}
	ln, _ := srv.log.find(0, func(l logLine) bool { return l.str("msg") == "closed" && l.str("proto") == "rtmpt" })
	t.Logf("stalled player closed: %q; healthy player got %d video messages", ln.str("reason"), videos)
	if !strings.Contains(ln.str("reason"), "too slow") && !strings.Contains(ln.str("reason"), "stalled") {
		t.Errorf("stalled player closed for %q, want the slow-client reason", ln.str("reason"))
	}
	if videos < 100 {
		t.Errorf("healthy player got %d video messages meanwhile", videos)
	}
}
