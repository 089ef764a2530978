package e2e

import (
	"encoding/binary"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rtmphub/rtmphub/rtmp/client"
	"github.com/rtmphub/rtmphub/rtmp/message"
	"github.com/rtmphub/rtmphub/session/sessiontest"
)

// Streams across hubs (issue 13, item 1): three hubs share a NATS
// cluster; ffmpeg publishes to hub A; players on A, B and C (ffmpeg and
// rtmpdump, over rtmp and rtmpt, and HTTP-FLV on B) decode at least 99%
// of the frames of their window; B and C each pull the stream once; a
// second publisher of the name on C gets BadName; the pulls end after
// the players leave.

// freePort returns a loopback port free at the moment.
func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// startNATS runs Debian's nats-server with JetStream on a free loopback
// port and returns its URL; it is killed by its PID when the test ends.
func startNATS(t testing.TB) string {
	t.Helper()
	bin := needTool(t, "nats-server")
	port := freePort(t)
	cmd := exec.Command(bin, "-a", "127.0.0.1", "-p", strconv.Itoa(port), "-js", "-sd", t.TempDir())
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("nats-server: %v", err)
	}
	pid := cmd.Process.Pid
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		syscall.Kill(pid, syscall.SIGKILL)
		<-done
		if t.Failed() {
			t.Logf("nats-server output:\n%s", tailString(out.String(), 3000))
		}
	})
	addr := "127.0.0.1:" + strconv.Itoa(port)
	if !sessiontest.Poll(10*time.Second, func() bool {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil
	}) {
		t.Fatalf("nats-server did not listen on %s:\n%s", addr, out.String())
	}
	t.Logf("nats-server pid %d on %s", pid, addr)
	return "nats://" + addr
}

// clusterView is GET /api/v1/cluster as the test reads it.
type clusterView struct {
	Node  string `json:"node"`
	Nodes []struct {
		Name      string `json:"name"`
		Advertise string `json:"advertise"`
	} `json:"nodes"`
	Streams []struct {
		Stream string `json:"stream"`
		Origin string `json:"origin"`
	} `json:"streams"`
	Pulls []struct {
		Stream      string `json:"stream"`
		Origin      string `json:"origin"`
		Connected   bool   `json:"connected"`
		Connections int    `json:"connections"`
		Readers     int    `json:"readers"`
	} `json:"pulls"`
}

func getCluster(t testing.TB, s *server) clusterView {
	t.Helper()
	resp, err := http.Get("http://" + s.adminAddr(t) + "/api/v1/cluster")
	if err != nil {
		t.Fatalf("GET /api/v1/cluster: %v", err)
	}
	defer resp.Body.Close()
	var v clusterView
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /api/v1/cluster: %s", resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		t.Fatalf("GET /api/v1/cluster: %v", err)
	}
	return v
}

// waitJoined waits for a hub's "cluster: joined" log line.
func waitJoined(t testing.TB, s *server, timeout time.Duration) {
	t.Helper()
	if _, ok := s.log.wait(func(l logLine) bool { return l.str("msg") == "cluster: joined" }, timeout, s.done); !ok {
		t.Fatalf("hub %s did not join the cluster within %v:\n%s", s.Addr, timeout, s.log.tail(40))
	}
}

// logMsgCount counts a hub's log lines with msg.
func logMsgCount(s *server, msg string) int {
	lines, _ := s.log.snapshot(0)
	n := 0
	for _, l := range lines {
		if l.str("msg") == msg {
			n++
		}
	}
	return n
}

// startHubs starts three hubs a, b, c with flags(name) each.
func startHubs(t *testing.T, flags func(i int, name string) []string) []*server {
	t.Helper()
	var hubs []*server
	for i, name := range []string{"a", "b", "c"} {
		args := append([]string{"--node-name", name, "--cluster-secret", "e2e-secret", "--admin-addr", "127.0.0.1:0"}, flags(i, name)...)
		hubs = append(hubs, startServer(t, args...))
	}
	return hubs
}

func TestClusterStreamsExternalNATS(t *testing.T) {
	e2e(t)
	needFFmpeg(t)
	needTool(t, "rtmpdump")
	url := startNATS(t)
	hubs := startHubs(t, func(int, string) []string { return []string{"--cluster", url} })
	clusterStreams(t, hubs, 20, true)
}

func TestClusterStreamsEmbeddedNATS(t *testing.T) {
	e2e(t)
	needFFmpeg(t)
	needTool(t, "rtmpdump")
	var client, route [3]int
	for i := range 3 {
		client[i], route[i] = freePort(t), freePort(t)
	}
	hubs := startHubs(t, func(i int, _ string) []string {
		var routes []string
		for j := range 3 {
			if j != i {
				routes = append(routes, "127.0.0.1:"+strconv.Itoa(route[j]))
			}
		}
		return []string{"--cluster-embedded", "127.0.0.1:" + strconv.Itoa(client[i]),
			"--cluster-route-addr", "127.0.0.1:" + strconv.Itoa(route[i]),
			"--cluster-routes", strings.Join(routes, ",")}
	})
	clusterStreams(t, hubs, 14, false)
}

// clusterStreams runs the scenario on three hubs; all adds players (more
// of them, HTTP-FLV on B).
func clusterStreams(t *testing.T, hubs []*server, seconds int, all bool) {
	a, b, c := hubs[0], hubs[1], hubs[2]
	for _, h := range hubs {
		waitJoined(t, h, 60*time.Second)
	}
	sessiontest.Eventually(t, 10*time.Second, "three nodes seen", func() bool {
		return len(getCluster(t, c).Nodes) == 3
	})
	dir := t.TempDir()
	pub := startPublisher(t, a.URL("s1"), pubOpts{Seconds: seconds, GOP: 25})
	pub.waitFrames(t, 75, 30*time.Second)
	if v := getCluster(t, b); len(v.Streams) != 1 || v.Streams[0].Origin != "a" {
		t.Fatalf("directory seen from b: %+v", v.Streams)
	}

	if !all {
		// An HLS request on C starts C's pull (its muxer is the first
		// reader there): the playlist comes while the stream is live.
		hls := "http://" + c.Addr + "/live/s1/index.m3u8"
		sessiontest.Eventually(t, 15*time.Second, "HLS playlist from c", func() bool {
			resp, err := http.Get(hls)
			if err != nil {
				return false
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			return resp.StatusCode == http.StatusOK && strings.HasPrefix(string(body), "#EXTM3U")
		})
	}
	// B's first player starts its pull: RTMP in one run, HTTP-FLV (the
	// core's Watch) in the other.
	first := ffPlay(t, pub, dir, "ffmpeg http-flv on B", "http://"+b.Addr+"/live/s1.flv")
	if all {
		first = ffPlay(t, pub, dir, "ffmpeg rtmp on B", b.URL("s1"))
	}
	players := []playerOut{
		first,
		ffPlay(t, pub, dir, "ffmpeg rtmp on A", a.URL("s1")),
		rdPlay(t, pub, dir, "rtmpdump rtmpt on C", "rtmpt://"+c.RTMPTAddr(t)+"/live/s1"),
	}
	if all {
		players = append(players,
			ffPlay(t, pub, dir, "ffmpeg http-flv on B", "http://"+b.Addr+"/live/s1.flv"),
			ffPlay(t, pub, dir, "ffmpeg rtmpt on B", "rtmpt://"+b.RTMPTAddr(t)+"/live/s1"),
			ffPlay(t, pub, dir, "ffmpeg rtmp on C", c.URL("s1")),
			rdPlay(t, pub, dir, "rtmpdump rtmp on C", c.URL("s1")),
		)
	}
	// Every edge pulls once, however many players it has.
	sessiontest.Eventually(t, 15*time.Second, "b and c pulling", func() bool {
		for _, h := range []*server{b, c} {
			if v := getCluster(t, h); len(v.Pulls) != 1 || !v.Pulls[0].Connected {
				return false
			}
		}
		return true
	})
	time.Sleep(2 * time.Second) // the players are all in
	if m := getText(t, "http://"+b.adminAddr(t)+"/metrics"); !strings.Contains(m, "\nrtmphub_cluster_pulls 1\n") ||
		!strings.Contains(m, "\nrtmphub_cluster_nodes 3\n") {
		t.Errorf("b's metrics lack rtmphub_cluster_pulls 1 and rtmphub_cluster_nodes 3")
	}
	for _, h := range []*server{a, b, c} {
		v := getCluster(t, h)
		want := 1
		if h == a {
			want = 0
		}
		if len(v.Pulls) != want {
			t.Errorf("hub %s: %d pulls, want %d: %+v", v.Node, len(v.Pulls), want, v.Pulls)
		}
		for _, p := range v.Pulls {
			t.Logf("hub %s pulls %s from %s: connections %d, local readers %d", v.Node, p.Stream, p.Origin, p.Connections, p.Readers)
			if p.Origin != "a" || p.Connections != 1 {
				t.Errorf("hub %s: pull %+v, want one connection to a", v.Node, p)
			}
		}
	}
	// A second publisher of the name on C: BadName while A publishes it.
	{
		ctx := sessiontest.Ctx(t, 10*time.Second)
		cc, err := client.Dial(ctx, "rtmp://"+c.Addr+"/live", client.Options{FlashVer: "FMLE/3.0 (compatible; e2e)"})
		if err != nil {
			t.Fatal(err)
		}
		msid, err := cc.CreateStream(ctx)
		if err != nil {
			t.Fatal(err)
		}
		err = cc.Publish(ctx, msid, "s1", "live")
		cc.Close()
		if err == nil || !strings.Contains(err.Error(), "NetStream.Publish.BadName") {
			t.Errorf("second publisher on c: %v, want NetStream.Publish.BadName", err)
		} else {
			t.Logf("second publisher on c: %v", err)
		}
	}

	pub.finish(t, time.Duration(seconds)*time.Second+40*time.Second)
	for _, h := range hubs {
		h.requireAlive(t)
	}
	checkPlayers(t, pub, players)
	checkPlayers99(t, pub, players)

	// The players left: the pulls end (3 s linger), each after one connection.
	sessiontest.Eventually(t, 15*time.Second, "pulls ended", func() bool {
		return len(getCluster(t, b).Pulls) == 0 && len(getCluster(t, c).Pulls) == 0
	})
	for _, h := range []*server{b, c} {
		if n := logMsgCount(h, "cluster: pulling"); n != 1 {
			t.Errorf("hub %s: %d upstream connections (cluster: pulling), want 1", h.Addr, n)
			lines, _ := h.log.snapshot(0)
			for _, l := range lines {
				if strings.HasPrefix(l.str("msg"), "cluster:") {
					t.Log(l.Raw)
				}
			}
		}
		if n := logMsgCount(h, "cluster: pull ended"); n != 1 {
			t.Errorf("hub %s: %d pulls ended, want 1", h.Addr, n)
		}
	}
	if n := logMsgCount(a, "cluster: pulling"); n != 0 {
		t.Errorf("hub a (the origin) pulled %d times", n)
	}
}

// checkPlayers99 applies the stricter rule: every player decodes
// at least 99% of the frames of its window.
func checkPlayers99(t *testing.T, pub *ffPublisher, players []playerOut) {
	t.Helper()
	ref := loadReference(t, pub.Ref, pub.FPS)
	for _, p := range players {
		fl := func() *frameLog {
			if p.md5 == "" {
				return decodeToMD5(t, p.flv)
			}
			fl, err := parseFrameMD5(p.md5)
			if err != nil {
				t.Fatalf("%s: %v", p.p.Who, err)
			}
			return fl
		}()
		res := ref.analyze(fl, p.p.JoinFrame(t))
		if res.ratio() < 0.99 {
			t.Errorf("%s: %d of %d frames of its window (%.1f%% < 99%%)", p.p.Who, res.InWindow, res.Window, res.ratio()*100)
		}
	}
}

// TestClusterLatency measures (reports, asserts nothing) the latency a
// pull adds: a Go publisher on hub A stamps each video frame with the
// time it wrote it; Go players on A (the origin) and on B (an edge, one
// pull) note when each frame arrives. Loopback, one machine's clock.
func TestClusterLatency(t *testing.T) {
	e2e(t)
	url := startNATS(t)
	hubs := startHubs(t, func(int, string) []string { return []string{"--cluster", url} })
	a, b := hubs[0], hubs[1]
	for _, h := range hubs[:2] {
		waitJoined(t, h, 30*time.Second)
	}
	const (
		fps     = 50
		seconds = 15
		size    = 2000 // bytes a frame: 800 kbit/s
	)
	ctx := sessiontest.Ctx(t, time.Minute)
	pc, err := client.Dial(ctx, "rtmp://"+a.Addr+"/live", client.Options{FlashVer: "FMLE/3.0 (compatible; e2e)"})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	msid, err := pc.CreateStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := pc.Publish(ctx, msid, "lat", "live"); err != nil {
		t.Fatal(err)
	}
	send := func(ts uint32, p []byte) {
		if err := pc.WriteMessages([]message.Message{{Type: message.TypeVideo, StreamID: msid, Timestamp: ts, Payload: p}}); err != nil {
			t.Errorf("publisher: %v", err)
		}
	}
	send(0, sessiontest.AVCSeq)
	// frame i: AVC NALU, bytes 8..16 the write time (Unix ns).
	frame := func(i int) []byte {
		p := make([]byte, size)
		p[0], p[1] = 0x27, 1
		if i%fps == 0 {
			p[0] = 0x17
		}
		binary.BigEndian.PutUint64(p[8:], uint64(time.Now().UnixNano()))
		return p
	}
	i := 0
	tick := time.NewTicker(time.Second / fps)
	defer tick.Stop()
	next := func() {
		<-tick.C
		send(uint32(i*1000/fps), frame(i))
		i++
	}
	for range fps { // a second: the stream is live and its GOP cached
		next()
	}
	// Players: connected and playing before the measured frames.
	type result struct {
		who string
		ms  []float64
	}
	results := make(chan result, 2)
	measureFrom := time.Now().Add(2 * time.Second) // after the join burst and the pull's start
	for _, h := range []*server{a, b} {
		who := "origin A"
		if h == b {
			who = "edge B"
		}
		c, err := client.Dial(ctx, "rtmp://"+h.Addr+"/live", client.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		id, err := c.CreateStream(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Play(ctx, id, "lat", -1000); err != nil {
			t.Fatal(err)
		}
		go func() {
			var ms []float64
			for {
				c.SetReadDeadline(time.Now().Add(5 * time.Second))
				m, err := c.ReadMessage()
				if err != nil {
					break
				}
				if m.StreamID != id || m.Type != message.TypeVideo || len(m.Payload) != size {
					continue
				}
				sent := time.Unix(0, int64(binary.BigEndian.Uint64(m.Payload[8:])))
				if sent.After(measureFrom) {
					ms = append(ms, float64(time.Since(sent).Microseconds())/1000)
				}
			}
			results <- result{who, ms}
		}()
	}
	for range seconds * fps {
		next()
	}
	pc.Close() // the players' reads end 5 s after the stream stops
	got := map[string][]float64{}
	for range 2 {
		r := <-results
		got[r.who] = r.ms
	}
	var p50 [2]float64
	for k, who := range []string{"origin A", "edge B"} {
		ms := got[who]
		if len(ms) < (seconds-3)*fps {
			t.Errorf("%s: %d frames measured, want about %d", who, len(ms), (seconds-2)*fps)
			continue
		}
		p50[k] = percentile(ms, 50)
		t.Logf("%s: %d frames, latency p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, max %.2f ms",
			who, len(ms), p50[k], percentile(ms, 90), percentile(ms, 99), percentile(ms, 100))
	}
	t.Logf("added by the pull (edge − origin): p50 %.2f ms", p50[1]-p50[0])
}

func getText(t testing.TB, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
