package e2e

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rtmphub/rtmphub/rtmp/client"
	"github.com/rtmphub/rtmphub/session/sessiontest"
)

// Failure (issue 13, item 4, streams): the hub a publisher is on dies
// (kill -9), and NATS becomes unreachable.

// outSize is the size of a player's output file (framemd5 lines or FLV
// bytes), which grows while it decodes.
func outSize(p playerOut) int64 {
	path := p.md5
	if path == "" {
		path = p.flv
	}
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// startPublisherRetrying starts ffmpeg publishing to url, again and
// again until one is accepted (it sent frames), as an encoder that
// reconnects does: a publish of a name another hub still holds gets
// BadName. It gives up after timeout.
func startPublisherRetrying(t *testing.T, url string, o pubOpts, timeout time.Duration) (*ffPublisher, int) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for try := 1; ; try++ {
		p := startPublisher(t, url, o)
		if sessiontest.Poll(time.Until(deadline), func() bool { return p.Frames() > 0 || p.exited() }) && p.Frames() > 0 && !p.exited() {
			return p, try
		}
		p.stop(2 * time.Second)
		if time.Now().After(deadline) {
			t.Fatalf("no publish of %s accepted within %v (%d tries); last stderr:\n%s", url, timeout, try, tailString(p.Stderr.String(), 1500))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestClusterPublisherHubKilled: ffmpeg publishes on hub A; players on B
// and C (ffmpeg rtmp, rtmpt and HTTP-FLV, rtmpdump) play it through their
// pulls. A is killed (-9), taking the publisher's connection with it. A
// new ffmpeg publishes the same name on B, retried until B accepts it, as
// an encoder's reconnect would (while A's claim is alive, B refuses it).
// The players wait (no UnpublishNotify: none ends) and decode again once
// the new publisher is on; the time from the kill to each player's first
// frame again is logged. Each player decodes ≥ 99% of the first
// publisher's frames from its join up to the last it got, and ≥ 99% of
// the second one's from the first it got.
func TestClusterPublisherHubKilled(t *testing.T) { publisherHubKilled(t, 0, 3*time.Second, false) }

// TestClusterPublisherHubKilledEmbeddedNATS: the same with each hub's
// embedded NATS server (routed together, buckets replicated on all three):
// the kill takes one of the three NATS servers with it.
func TestClusterPublisherHubKilledEmbeddedNATS(t *testing.T) {
	publisherHubKilled(t, 0, 3*time.Second, true)
}

// TestClusterPublisherHubKilledLateReconnect: the same, but the encoder
// comes back 10 s after the kill, after A's claim expired (the default
// --cluster-ttl, 6 s) and within the grace (15 s): the players still wait
// for it.
func TestClusterPublisherHubKilledLateReconnect(t *testing.T) {
	publisherHubKilled(t, 10*time.Second, 6*time.Second, false)
}

// publisherHubKilled runs the scenario with the new publisher started
// reconnectAfter the kill (0: at once, retried) and hubs whose claims
// live ttl (--cluster-ttl), on nats-server or (embedded) the hubs' own.
func publisherHubKilled(t *testing.T, reconnectAfter, ttl time.Duration, embedded bool) {
	e2e(t)
	needFFmpeg(t)
	needTool(t, "rtmpdump")
	var flags func(i int) []string
	if embedded {
		var client, route [3]int
		for i := range 3 {
			client[i], route[i] = freePort(t), freePort(t)
		}
		flags = func(i int) []string {
			var routes []string
			for j := range 3 {
				if j != i {
					routes = append(routes, "127.0.0.1:"+strconv.Itoa(route[j]))
				}
			}
			return []string{"--cluster-embedded", "127.0.0.1:" + strconv.Itoa(client[i]),
				"--cluster-route-addr", "127.0.0.1:" + strconv.Itoa(route[i]),
				"--cluster-routes", strings.Join(routes, ",")}
		}
	} else {
		url := startNATS(t)
		flags = func(int) []string { return []string{"--cluster", url} }
	}
	hubs := startHubs(t, func(i int, _ string) []string {
		return append(flags(i), "--publisher-grace", "15s", "--cluster-ttl", ttl.String())
	})
	a, b, c := hubs[0], hubs[1], hubs[2]
	for _, h := range hubs {
		waitJoined(t, h, 60*time.Second)
	}
	sessiontest.Eventually(t, 10*time.Second, "three nodes seen", func() bool {
		return len(getCluster(t, c).Nodes) == 3
	})
	dir := t.TempDir()
	pub1 := startPublisher(t, a.URL("k1"), pubOpts{Seconds: 60, GOP: 25})
	pub1.waitFrames(t, 75, 30*time.Second)
	players := []playerOut{
		ffPlay(t, pub1, dir, "ffmpeg rtmp on B", b.URL("k1")),
		ffPlay(t, pub1, dir, "ffmpeg http-flv on B", "http://"+b.RTMPTAddr(t)+"/live/k1.flv"),
		ffPlay(t, pub1, dir, "ffmpeg rtmpt on C", "rtmpt://"+c.RTMPTAddr(t)+"/live/k1"),
		rdPlay(t, pub1, dir, "rtmpdump rtmp on C", c.URL("k1")),
	}
	sessiontest.Eventually(t, 20*time.Second, "b and c pulling", func() bool {
		for _, h := range []*server{b, c} {
			if v := getCluster(t, h); len(v.Pulls) != 1 || !v.Pulls[0].Connected {
				return false
			}
		}
		return true
	})
	pub1.waitFrames(t, pub1.Frames()+125, 30*time.Second) // five seconds of play

	killed := time.Now()
	a.kill()
	t.Logf("hub a (pid %d) killed with SIGKILL at publisher frame %d", a.Pid(), pub1.Frames())
	if !pub1.wait(15 * time.Second) {
		t.Errorf("the first publisher did not end after its hub died")
		pub1.stop(5 * time.Second)
	}

	if d := reconnectAfter - time.Since(killed); d > 0 {
		time.Sleep(d)
		for _, p := range players {
			if p.p.exited() {
				t.Errorf("%s ended before the publisher came back, within the grace: %v\n%s", p.p.Who, p.p.exitErr(),
					tailString(p.p.Stderr.String(), 800))
			}
		}
		if t.Failed() {
			t.FailNow()
		}
	}
	pub2, tries := startPublisherRetrying(t, b.URL("k1"), pubOpts{Seconds: 20, GOP: 25, Source: "testsrc2"}, 30*time.Second)
	accepted := time.Since(killed)
	t.Logf("second publisher accepted on b %v after the kill (%d tries)", accepted.Round(time.Millisecond), tries)
	base := make([]int64, len(players))
	for i, p := range players {
		base[i] = outSize(p)
	}
	resumed := make([]time.Duration, len(players))
	sessiontest.Eventually(t, 20*time.Second, "every player decoding again", func() bool {
		all := true
		for i, p := range players {
			if resumed[i] == 0 && outSize(p) > base[i] {
				resumed[i] = time.Since(killed)
			}
			if resumed[i] == 0 {
				all = false
				if p.p.exited() {
					t.Fatalf("%s ended after the kill (told the stream was unpublished?): %v\n%s", p.p.Who, p.p.exitErr(),
						tailString(p.p.Stderr.String(), 1500))
				}
			}
		}
		return all
	})
	var ds []time.Duration
	for i, p := range players {
		t.Logf("%s: decoding again %v after the kill", p.p.Who, resumed[i].Round(time.Millisecond))
		ds = append(ds, resumed[i])
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	t.Logf("--cluster-ttl %v: kill -9 → publish accepted elsewhere: %v; → players decoding again: min %v, max %v",
		ttl, accepted.Round(time.Millisecond), ds[0].Round(time.Millisecond), ds[len(ds)-1].Round(time.Millisecond))

	sessiontest.Eventually(t, 20*time.Second, "c pulling from b", func() bool {
		v := getCluster(t, c)
		return len(v.Pulls) == 1 && v.Pulls[0].Origin == "b" && v.Pulls[0].Connected
	})
	if v := getCluster(t, b); len(v.Pulls) != 0 {
		t.Errorf("b publishes the stream now, yet pulls: %+v", v.Pulls)
	}
	pub2.finish(t, 20*time.Second+40*time.Second)
	for _, h := range []*server{b, c} {
		h.requireAlive(t)
	}
	for _, p := range players {
		awaitPlayerEnd(t, p.p, 20*time.Second)
	}
	ref1 := loadReference(t, pub1.Ref, pub1.FPS)
	ref2 := loadReference(t, pub2.Ref, pub2.FPS)
	for _, p := range players {
		fl := decodedFrames(t, p)
		r1 := ref1.analyze(fl, p.p.JoinFrame(t))
		r2 := ref2.analyze(fl, 0)
		if r2.First >= 0 {
			r2 = ref2.analyze(fl, r2.First)
		}
		span1 := r1.Last - p.p.JoinFrame(t) + 1
		ratio1 := float64(r1.InWindow) / float64(max(span1, 1))
		corrupt := len(fl.Video) - r1.Matched - r2.Matched
		t.Logf("%s: first publisher: %d of frames #%d..#%d (%.1f%%); second: %d of #%d..#%d (%.1f%%); %d frames match neither",
			p.p.Who, r1.InWindow, p.p.JoinFrame(t), r1.Last, ratio1*100, r2.InWindow, r2.First, ref2.Frames-1, r2.ratio()*100, corrupt)
		if span1 < 100 || ratio1 < 0.99 {
			t.Errorf("%s: first publisher's frames %d of %d from its join", p.p.Who, r1.InWindow, span1)
		}
		if r2.First < 0 || r2.Window < ref2.Frames*3/4 || r2.ratio() < 0.99 {
			t.Errorf("%s: second publisher's frames: %v", p.p.Who, r2)
		}
		if corrupt*100 > len(fl.Video) {
			t.Errorf("%s: %d of %d decoded frames match neither publisher", p.p.Who, corrupt, len(fl.Video))
		}
	}
}

// decodedFrames is a finished player's framemd5 log.
func decodedFrames(t *testing.T, p playerOut) *frameLog {
	t.Helper()
	if p.md5 == "" {
		return decodeToMD5(t, p.flv)
	}
	fl, err := parseFrameMD5(p.md5)
	if err != nil {
		t.Fatalf("%s: %v", p.p.Who, err)
	}
	return fl
}

// natsProc is a nats-server that the test kills and starts again on the
// same port with the same store directory.
type natsProc struct {
	t     *testing.T
	bin   string
	port  int
	store string
	cmd   *exec.Cmd
	out   *syncBuffer
	done  chan struct{}
}

func newNATS(t *testing.T) *natsProc {
	t.Helper()
	n := &natsProc{t: t, bin: needTool(t, "nats-server"), port: freePort(t), store: t.TempDir()}
	n.start()
	t.Cleanup(n.kill)
	return n
}

func (n *natsProc) url() string { return fmt.Sprintf("nats://127.0.0.1:%d", n.port) }

func (n *natsProc) start() {
	t := n.t
	t.Helper()
	n.cmd = exec.Command(n.bin, "-a", "127.0.0.1", "-p", strconv.Itoa(n.port), "-js", "-sd", n.store)
	n.out = &syncBuffer{}
	n.cmd.Stdout, n.cmd.Stderr = n.out, n.out
	n.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := n.cmd.Start(); err != nil {
		t.Fatalf("nats-server: %v", err)
	}
	done := make(chan struct{})
	n.done = done
	cmd := n.cmd
	go func() { cmd.Wait(); close(done) }()
	addr := fmt.Sprintf("127.0.0.1:%d", n.port)
	if !sessiontest.Poll(10*time.Second, func() bool {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil
	}) {
		t.Fatalf("nats-server did not listen on %s:\n%s", addr, n.out.String())
	}
	t.Logf("nats-server pid %d on %s", cmd.Process.Pid, addr)
}

// kill ends the server with SIGKILL, by its PID.
func (n *natsProc) kill() {
	if n.cmd == nil {
		return
	}
	syscall.Kill(n.cmd.Process.Pid, syscall.SIGKILL)
	select {
	case <-n.done:
	case <-time.After(10 * time.Second):
		n.t.Errorf("nats-server pid %d did not exit after SIGKILL", n.cmd.Process.Pid)
	}
	if n.t.Failed() {
		n.t.Logf("nats-server output:\n%s", tailString(n.out.String(), 3000))
	}
	n.cmd = nil
}

// TestClusterNATSDown: ffmpeg publishes on hub A; ffmpeg players on A
// (local) and B (pulled) play it. nats-server is killed (-9): the hubs go
// on serving what they have (both players keep decoding; the pull is
// RTMP, hub to hub), each logs the outage once, and a new publisher on C
// is accepted at once. nats-server comes back on the same port with the
// same store: every hub rejoins (logged once), the directory names A's
// and C's streams again and a second publisher of A's stream elsewhere is
// refused again. The players decode ≥ 99% of their window throughout.
func TestClusterNATSDown(t *testing.T) {
	e2e(t)
	needFFmpeg(t)
	ns := newNATS(t)
	hubs := startHubs(t, func(int, string) []string { return []string{"--cluster", ns.url()} })
	a, b, c := hubs[0], hubs[1], hubs[2]
	for _, h := range hubs {
		waitJoined(t, h, 60*time.Second)
	}
	sessiontest.Eventually(t, 10*time.Second, "three nodes seen", func() bool {
		return len(getCluster(t, c).Nodes) == 3
	})
	dir := t.TempDir()
	const seconds = 36
	pub := startPublisher(t, a.URL("n1"), pubOpts{Seconds: seconds, GOP: 25})
	pub.waitFrames(t, 75, 30*time.Second)
	players := []playerOut{
		ffPlay(t, pub, dir, "ffmpeg rtmp on A", a.URL("n1")),
		ffPlay(t, pub, dir, "ffmpeg rtmp on B", b.URL("n1")),
	}
	sessiontest.Eventually(t, 20*time.Second, "b pulling", func() bool {
		v := getCluster(t, b)
		return len(v.Pulls) == 1 && v.Pulls[0].Connected
	})
	pub.waitFrames(t, pub.Frames()+75, 30*time.Second)

	ns.kill()
	down := time.Now()
	t.Logf("nats-server killed at publisher frame %d", pub.Frames())
	for _, h := range hubs {
		if _, ok := h.log.wait(func(l logLine) bool { return l.str("msg") == "cluster: NATS disconnected" }, 10*time.Second, h.done); !ok {
			t.Errorf("hub %s logged no 'cluster: NATS disconnected'", h.Addr)
		}
	}
	// A publisher is never held up by the outage.
	start := time.Now()
	ctx := sessiontest.Ctx(t, 10*time.Second)
	cc, err := client.Dial(ctx, "rtmp://"+c.Addr+"/live", client.Options{FlashVer: "FMLE/3.0 (compatible; e2e)"})
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	msid, err := cc.CreateStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := cc.Publish(ctx, msid, "n2", "live"); err != nil {
		t.Fatalf("publish on c with NATS down: %v", err)
	}
	t.Logf("publish on c accepted %v after its request, NATS down", time.Since(start).Round(time.Millisecond))
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("publish on c with NATS down took %v", d)
	}
	// The players keep decoding through the outage.
	sizes := make([]int64, len(players))
	for i, p := range players {
		sizes[i] = outSize(p)
	}
	time.Sleep(8*time.Second - time.Since(down))
	for i, p := range players {
		if s := outSize(p); s <= sizes[i] {
			t.Errorf("%s decoded nothing during the NATS outage", p.p.Who)
		}
	}

	ns.start()
	t.Logf("nats-server back after %v", time.Since(down).Round(time.Millisecond))
	for _, h := range hubs {
		if _, ok := h.log.wait(func(l logLine) bool { return l.str("msg") == "cluster: NATS reconnected" }, 20*time.Second, h.done); !ok {
			t.Errorf("hub %s logged no 'cluster: NATS reconnected'", h.Addr)
		}
	}
	rejoined := time.Now()
	sessiontest.Eventually(t, 20*time.Second, "directory and membership back", func() bool {
		v := getCluster(t, b)
		return len(v.Nodes) == 3 && originOf(v, "n1") == "a" && originOf(v, "n2") == "c"
	})
	t.Logf("directory and membership back %v after nats-server restarted", time.Since(rejoined).Round(time.Millisecond))
	// Claims are honored again: a second publisher of n1 on c is refused.
	{
		cc2, err := client.Dial(ctx, "rtmp://"+c.Addr+"/live", client.Options{FlashVer: "FMLE/3.0 (compatible; e2e)"})
		if err != nil {
			t.Fatal(err)
		}
		id, err := cc2.CreateStream(ctx)
		if err != nil {
			t.Fatal(err)
		}
		err = cc2.Publish(ctx, id, "n1", "live")
		cc2.Close()
		if err == nil || !strings.Contains(err.Error(), "NetStream.Publish.BadName") {
			t.Errorf("second publisher of n1 on c after NATS came back: %v, want BadName", err)
		}
	}
	cc.Close()

	pub.finish(t, seconds*time.Second+40*time.Second)
	for _, h := range hubs {
		h.requireAlive(t)
	}
	checkPlayers(t, pub, players)
	checkPlayers99(t, pub, players)
	for _, h := range hubs {
		for _, msg := range []string{"cluster: NATS disconnected", "cluster: NATS reconnected"} {
			if n := logMsgCount(h, msg); n != 1 {
				t.Errorf("hub %s: %d %q lines, want 1", h.Addr, n, msg)
			}
		}
		if n := logMsgCount(h, "cluster: store failing; this hub keeps serving what it has (logged once per outage)"); n > 1 {
			t.Errorf("hub %s: %d 'store failing' lines, want at most 1", h.Addr, n)
		}
	}
	for _, h := range []*server{b} {
		if n := logMsgCount(h, "cluster: pulling"); n != 1 {
			t.Errorf("hub b: %d upstream connections, want 1 (the outage must not touch the pull)", n)
		}
	}
}

func originOf(v clusterView, stream string) string {
	for _, s := range v.Streams {
		if s.Stream == stream {
			return s.Origin
		}
	}
	return ""
}
