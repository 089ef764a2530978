package e2e

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rtmphub/rtmphub/session/sessiontest"
)

// startNginxProxyProtocol runs nginx's stream module as a TCP load balancer
// in front of backend that prefixes every connection with a PROXY protocol
// header, and returns its address.
func startNginxProxyProtocol(t testing.TB, backend string) string {
	t.Helper()
	return startNginxModule(t, "/usr/lib/nginx/modules/ngx_stream_module.so", "nginx stream module", func(addr string) string {
		return fmt.Sprintf(`stream {
    server {
        listen %s;
        proxy_pass %s;
        proxy_protocol on;
    }
}
`, addr, backend)
	})
}

// startNginxModule runs a foreground nginx on a free loopback port with
// one dynamic module loaded and the configuration block conf(addr), waits
// until the port accepts, and returns the address. A missing module skips
// the test locally and fails it in CI.
func startNginxModule(t testing.TB, module, what string, conf func(addr string) string) string {
	t.Helper()
	nginx := needTool(t, "nginx")
	if _, err := os.Stat(module); err != nil {
		if inCI() {
			t.Fatalf("%s: %v", what, err)
		}
		t.Skipf("%s not installed: %v", what, err)
	}
	dir := t.TempDir()
	addr := fmt.Sprintf("127.0.0.1:%d", freeLoopbackPort(t))
	text := fmt.Sprintf(`load_module %s;
daemon off;
master_process off;
pid %s;
error_log stderr warn;
events { worker_connections 256; }
%s`, module, filepath.Join(dir, "nginx.pid"), conf(addr))
	path := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	p := startProc(t, 5*time.Minute, nginx, "-p", dir, "-c", path)
	if !sessiontest.Poll(10*time.Second, func() bool {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
		}
		return err == nil || p.exited()
	}) || p.exited() {
		t.Fatalf("nginx (%s) did not start on %s:\n%s", what, addr, p.Stderr.String())
	}
	t.Cleanup(func() { p.stop(5 * time.Second) })
	return addr
}

// TestProxyProtocolBehindNginx: rtmphub behind a real TCP load balancer
// (nginx stream, proxy_protocol on) that it trusts: ffmpeg publishes over
// rtmp:// and plays over rtmp:// and rtmpt:// through the balancer, every
// connection prefixed with a PROXY header. The same balancer in front of a
// server that does not trust it gets nowhere (the header is not RTMP), so
// the header really is read.
func TestProxyProtocolBehindNginx(t *testing.T) {
	e2e(t)
	needFFmpeg(t)
	srv := startServer(t, "--trusted-proxies", "127.0.0.1/32")
	lb := startNginxProxyProtocol(t, srv.Addr)
	dir := t.TempDir()

	const seconds = 10
	pub := startPublisher(t, "rtmp://"+lb+"/live/pp", pubOpts{Seconds: seconds, GOP: 25})
	pub.waitFrames(t, 50, 30*time.Second)
	players := []playerOut{
		ffPlay(t, pub, dir, "ffmpeg rtmp through the balancer", "rtmp://"+lb+"/live/pp"),
		ffPlay(t, pub, dir, "ffmpeg rtmpt through the balancer", "rtmpt://"+lb+"/live/pp"),
	}
	pub.finish(t, seconds*time.Second+40*time.Second)
	srv.requireAlive(t)
	checkPlayers(t, pub, players)

	untrusting := startServer(t)
	lb2 := startNginxProxyProtocol(t, untrusting.Addr)
	p := startProc(t, 30*time.Second, "ffmpeg", "-hide_banner", "-loglevel", "error", "-i", "rtmp://"+lb2+"/live/none", "-t", "1", "-f", "null", "-")
	if !p.wait(40 * time.Second) {
		t.Fatal("ffmpeg through a balancer the server does not trust did not give up")
	}
	if p.exitErr() == nil {
		t.Fatal("a PROXY header from an untrusted balancer was accepted")
	}
}
