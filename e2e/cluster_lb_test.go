package e2e

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rtmphub/rtmphub/session/sessiontest"
)

// Hubs behind a load balancer (issue 13, item 5): docs/nginx-cluster.conf
// (nginx's stream module round robin for RTMP, http round robin for
// RTMPT and HTTP-FLV with RTMPT sessions routed by --rtmpt-id-prefix) in
// front of three clustered hubs. Any hub serves any stream, so nothing
// needs stream affinity.

// TestClusterBehindNginx: ffmpeg publishes through nginx (it lands on
// some hub); players through nginx over rtmp (ffmpeg, rtmpdump), rtmpt
// (ffmpeg, rtmpdump) and HTTP-FLV (ffmpeg) land round robin on the three
// hubs and each decodes ≥ 99% of its window; each hub that did not get
// the publisher pulls the stream once.
func TestClusterBehindNginx(t *testing.T) {
	clusterBehind(t, "nginx", func(hubs []*server) (string, string) {
		rtmpPort := freeLoopbackPort(t)
		lb := startNginx(t, "nginx-cluster.conf", map[string]string{
			"listen 1935;":            fmt.Sprintf("listen 127.0.0.1:%d;", rtmpPort),
			"server 127.0.0.1:19351;": "server " + hubs[0].Addr + ";",
			"server 127.0.0.1:19352;": "server " + hubs[1].Addr + ";",
			"server 127.0.0.1:19353;": "server " + hubs[2].Addr + ";",
			"server 127.0.0.1:8081;":  "server " + hubs[0].RTMPTAddr(t) + ";",
			"server 127.0.0.1:8082;":  "server " + hubs[1].RTMPTAddr(t) + ";",
			"server 127.0.0.1:8083;":  "server " + hubs[2].RTMPTAddr(t) + ";",
		})
		return fmt.Sprintf("127.0.0.1:%d", rtmpPort), lb
	})
}

// TestClusterBehindHAProxy: the same behind docs/haproxy-cluster.cfg.
func TestClusterBehindHAProxy(t *testing.T) {
	clusterBehind(t, "haproxy", func(hubs []*server) (string, string) {
		rtmpPort, httpPort := freeLoopbackPort(t), freeLoopbackPort(t)
		replace := map[string]string{
			"bind :1935": fmt.Sprintf("bind 127.0.0.1:%d", rtmpPort),
			"bind :80":   fmt.Sprintf("bind 127.0.0.1:%d", httpPort),
		}
		for i, name := range []string{"a", "b", "c"} {
			replace[fmt.Sprintf("server %s 127.0.0.1:1935%d send-proxy", name, i+1)] = "server " + name + " " + hubs[i].Addr + " send-proxy"
			replace[fmt.Sprintf("server %s 127.0.0.1:808%d\n", name, i+1)] = "server " + name + " " + hubs[i].RTMPTAddr(t) + "\n"
		}
		startHAProxy(t, "haproxy-cluster.cfg", replace, rtmpPort, httpPort)
		return fmt.Sprintf("127.0.0.1:%d", rtmpPort), fmt.Sprintf("127.0.0.1:%d", httpPort)
	})
}

// startHAProxy runs haproxy in the foreground with a config from docs/,
// its placeholders replaced (old → new, each must be there), and waits
// until it listens on the ports.
func startHAProxy(t *testing.T, docFile string, replace map[string]string, ports ...int) {
	t.Helper()
	bin := needTool(t, "haproxy")
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, "docs", docFile))
	if err != nil {
		t.Fatal(err)
	}
	conf := string(b)
	for old, new := range replace {
		if !strings.Contains(conf, old) {
			t.Fatalf("docs/%s has no %q to replace", docFile, old)
		}
		conf = strings.ReplaceAll(conf, old, new)
	}
	path := filepath.Join(t.TempDir(), "haproxy.cfg")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	p := startProc(t, 5*time.Minute, bin, "-db", "-f", path)
	for _, port := range ports {
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		if !sessiontest.Poll(10*time.Second, func() bool {
			c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
			if err == nil {
				c.Close()
			}
			return err == nil || p.exited()
		}) || p.exited() {
			t.Fatalf("haproxy did not start on %s:\n%s", addr, p.Stderr.String())
		}
	}
	t.Cleanup(func() { p.stop(5 * time.Second) })
}

// clusterBehind runs the scenario behind the balancer that start starts
// in front of the hubs; it returns the balancer's RTMP and HTTP addresses.
func clusterBehind(t *testing.T, balancer string, start func(hubs []*server) (rtmp, http string)) {
	e2e(t)
	needFFmpeg(t)
	needTool(t, "rtmpdump")
	url := startNATS(t)
	prefixes := []string{"A", "B", "C"}
	hubs := startHubs(t, func(i int, _ string) []string {
		return []string{"--cluster", url, "--rtmpt-id-prefix", prefixes[i], "--trusted-proxies", "127.0.0.1/32"}
	})
	for _, h := range hubs {
		waitJoined(t, h, 60*time.Second)
	}
	sessiontest.Eventually(t, 10*time.Second, "three nodes seen", func() bool {
		return len(getCluster(t, hubs[2]).Nodes) == 3
	})
	lbRTMP, lb := start(hubs)
	t.Logf("%s: rtmp on %s, http on %s", balancer, lbRTMP, lb)

	const seconds = 24
	dir := t.TempDir()
	pub := startPublisher(t, "rtmp://"+lbRTMP+"/live/lb1", pubOpts{Seconds: seconds, GOP: 25})
	pub.waitFrames(t, 75, 30*time.Second)
	var origin *server
	for _, h := range hubs {
		if h.PublishedLogged("lb1") {
			origin = h
		}
	}
	if origin == nil {
		t.Fatal("no hub logged the publish")
	}
	v := getCluster(t, hubs[0])
	if len(v.Streams) != 1 {
		t.Fatalf("directory: %+v", v.Streams)
	}
	t.Logf("the publisher landed on hub %s", v.Streams[0].Origin)

	// Six RTMP connections after the publisher's: two on each hub.
	var players []playerOut
	for i := range 3 {
		players = append(players,
			ffPlay(t, pub, dir, fmt.Sprintf("ffmpeg rtmp %d via %s", i+1, balancer), "rtmp://"+lbRTMP+"/live/lb1"),
			rdPlay(t, pub, dir, fmt.Sprintf("rtmpdump rtmp %d via %s", i+1, balancer), "rtmp://"+lbRTMP+"/live/lb1"))
	}
	// HTTP: RTMPT sessions (opened on any hub, then routed by their id)
	// and HTTP-FLV requests, round robin.
	players = append(players,
		ffPlay(t, pub, dir, "ffmpeg rtmpt 1 via "+balancer, "rtmpt://"+lb+"/live/lb1"),
		rdPlay(t, pub, dir, "rtmpdump rtmpt via "+balancer, "rtmpt://"+lb+"/live/lb1"),
		ffPlay(t, pub, dir, "ffmpeg rtmpt 2 via "+balancer, "rtmpt://"+lb+"/live/lb1"),
		ffPlay(t, pub, dir, "ffmpeg http-flv 1 via "+balancer, "http://"+lb+"/live/lb1.flv"),
		ffPlay(t, pub, dir, "ffmpeg http-flv 2 via "+balancer, "http://"+lb+"/live/lb1.flv"),
		ffPlay(t, pub, dir, "ffmpeg http-flv 3 via "+balancer, "http://"+lb+"/live/lb1.flv"),
	)
	edges := []*server{}
	for _, h := range hubs {
		if h != origin {
			edges = append(edges, h)
		}
	}
	sessiontest.Eventually(t, 20*time.Second, "the other two hubs pulling", func() bool {
		for _, h := range edges {
			if v := getCluster(t, h); len(v.Pulls) != 1 || !v.Pulls[0].Connected {
				return false
			}
		}
		return true
	})
	time.Sleep(2 * time.Second)
	for _, h := range hubs {
		v := getCluster(t, h)
		want := 1
		if h == origin {
			want = 0
		}
		if len(v.Pulls) != want {
			t.Errorf("hub %s: %d pulls, want %d: %+v", v.Node, len(v.Pulls), want, v.Pulls)
		}
		for _, p := range v.Pulls {
			t.Logf("hub %s pulls %s from %s: connections %d, local readers %d", v.Node, p.Stream, p.Origin, p.Connections, p.Readers)
			if p.Connections != 1 {
				t.Errorf("hub %s: pull %+v, want one connection", v.Node, p)
			}
		}
	}

	pub.finish(t, seconds*time.Second+40*time.Second)
	for _, h := range hubs {
		h.requireAlive(t)
	}
	checkPlayers(t, pub, players)
	checkPlayers99(t, pub, players)

	// Where the players landed: every hub got RTMP players and HTTP
	// clients; the origin's RTMP plays include the two pulls.
	total := map[string]int{}
	for i, h := range hubs {
		rtmp := logCount(h, "play", map[string]string{"proto": "rtmp"})
		rtmpt := logCount(h, "play", map[string]string{"proto": "rtmpt"})
		flv := logCount(h, "access", map[string]string{"event": "watch_end"})
		if h == origin {
			rtmp -= 2
		}
		total["rtmp"] += rtmp
		total["rtmpt"] += rtmpt
		total["flv"] += flv
		t.Logf("hub %s: %d rtmp players, %d rtmpt players, %d http-flv viewers", prefixes[i], rtmp, rtmpt, flv)
		if rtmp == 0 || rtmpt+flv == 0 {
			t.Errorf("hub %s got no rtmp player or no HTTP player: not round robin", prefixes[i])
		}
		if n := logCount(h, "rtmpt sessions closed for silence", nil); n != 0 {
			t.Errorf("hub %s timed out %d RTMPT sessions: requests went astray", prefixes[i], n)
		}
	}
	if total["rtmp"] != 6 || total["rtmpt"] != 3 || total["flv"] != 3 {
		t.Errorf("players seen by the hubs: %v, want rtmp 6, rtmpt 3, flv 3", total)
	}
	sessiontest.Eventually(t, 15*time.Second, "pulls ended", func() bool {
		for _, h := range edges {
			if len(getCluster(t, h).Pulls) != 0 {
				return false
			}
		}
		return true
	})
}

// PublishedLogged reports whether the hub logged a client's publish of
// stream.
func (s *server) PublishedLogged(stream string) bool {
	lines, _ := s.log.snapshot(0)
	for _, l := range lines {
		if l.str("msg") == "publish" && strings.HasPrefix(l.str("stream"), stream) {
			return true
		}
	}
	return false
}
