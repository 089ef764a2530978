package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rtmphub/rtmphub/session/sessiontest"
)

const rssLimit = 150 << 20 // resident memory bound for the server under load

// rssMonitor samples the server's VmRSS every 100ms.
type rssMonitor struct {
	peak atomic.Int64
	stop chan struct{}
	wg   sync.WaitGroup
}

func monitorRSS(t testing.TB, srv *server) *rssMonitor {
	m := &rssMonitor{stop: make(chan struct{})}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			if rss, err := srv.RSS(); err == nil && rss > m.peak.Load() {
				m.peak.Store(rss)
			}
			select {
			case <-tick.C:
			case <-m.stop:
				return
			}
		}
	}()
	t.Cleanup(m.done)
	return m
}

func (m *rssMonitor) done() {
	select {
	case <-m.stop:
	default:
		close(m.stop)
	}
	m.wg.Wait()
}

// check stops sampling and asserts the peak.
func (m *rssMonitor) check(t testing.TB) {
	t.Helper()
	m.done()
	limit := int64(rssLimit)
	if raceServer {
		limit *= 4 // the race detector multiplies memory use
	}
	peak := m.peak.Load()
	t.Logf("server peak RSS %.1f MiB (limit %d MiB)", float64(peak)/(1<<20), limit>>20)
	if peak == 0 {
		t.Errorf("could not read the server's RSS")
	}
	if peak > limit {
		t.Errorf("server peak RSS %.1f MiB exceeds %d MiB", float64(peak)/(1<<20), limit>>20)
	}
}

// slowPlayerLog matches the message (or close reason) of a server log line
// reporting that a slow player was skipped ahead, had media dropped, or was
// disconnected for stalling.
var slowPlayerLog = regexp.MustCompile(`(?i)slow|skip|drop|discard|overflow|lag|behind|stall|queue full`)

func isSlowPlayerLine(l logLine) bool {
	return slowPlayerLog.MatchString(l.str("msg") + " " + l.str("reason"))
}

// TestSlowPlayer: two players that stop reading (a go-rtmp client that never
// reads its socket, and rtmpdump writing into a pipe nobody reads) must not
// stall the publisher (ffmpeg sending 720p at ~6 Mbit/s in real time) nor a
// normal ffmpeg player, which still decodes ≥ 90% of the frames; the server
// stays within its memory bound, says in its log what it did to the slow
// players, and disconnects them (--stall-timeout 4s).
func TestSlowPlayer(t *testing.T) {
	e2e(t)
	needFFmpeg(t)
	needTool(t, "rtmpdump")
	const (
		seconds = 12
		stall   = 4 * time.Second
	)
	hd := clip(t, clipSpec{Name: "720p-6M-noise", Size: "1280x720", FPS: 25, GOP: 50, Seconds: seconds, Bitrate: "6M", Noise: true})
	// A queue of 256 messages holds the 2 s GOP a player gets on joining
	// (~140 messages) but only ~4 s of this stream.
	srv := startServer(t, "--player-queue", "256", "--stall-timeout", stall.String())
	rss := monitorRSS(t, srv)
	closes := watchServerClose(t, srv)
	dir := t.TempDir()
	url := srv.URL("hd")

	pub := startPublisher(t, url, pubOpts{Clip: hd})
	pub.waitFrames(t, 25, 20*time.Second)

	// Slow player 1: go-rtmp client with a tiny receive buffer that stops
	// reading right after Play.Start.
	stalled := dialRTMP(t, "stalled go-rtmp player", srv.Addr, dialOpts{RecvBuf: 4096})
	if _, err := stalled.play("live", "hd"); err != nil {
		t.Fatal(err)
	}
	stalled.pause()
	stallStart := time.Now()
	closes.add(stalled.name, localPort(stalled.conn))
	// Slow player 2: rtmpdump writing to a pipe that is never read.
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pr.Close() })
	rd := command(t, 3*time.Minute, "rtmpdump", "--live", "-r", url, "-o", "-")
	rd.cmd.Stdout = pw
	rd.startCmd()
	pw.Close()
	if !sessiontest.Poll(10*time.Second, func() bool { return len(clientPortsOf(rd.cmd.Process.Pid, srv.Port)) > 0 }) {
		t.Fatalf("rtmpdump did not connect")
	}
	closes.add("rtmpdump into an unread pipe", clientPortsOf(rd.cmd.Process.Pid, srv.Port)[0])
	logMark := srv.log.len()

	normal := startFFmpegPlayer(t, "normal ffmpeg player", url, filepath.Join(dir, "normal.md5"), pub.Frames)

	pub.finish(t, seconds*time.Second+30*time.Second)
	pubEnd := time.Now()
	// -re paces the publisher: it must not take much longer than the clip.
	if took := pub.took(); took > seconds*time.Second+5*time.Second {
		t.Errorf("publisher took %v to send a %ds clip: it was stalled", took.Round(time.Millisecond), seconds)
	} else {
		t.Logf("publisher sent the %ds clip in %v", seconds, took.Round(time.Millisecond))
	}
	awaitPlayerEnd(t, normal, 15*time.Second)
	srv.requireAlive(t)
	rss.check(t)

	ref := loadReference(t, hd, 25)
	fl, err := parseFrameMD5(filepath.Join(dir, "normal.md5"))
	if err != nil {
		t.Fatal(err)
	}
	checkPlayer(t, normal.Who, ref, fl, normal.JoinFrame(t))

	if ln, ok := srv.log.find(logMark, isSlowPlayerLine); ok {
		t.Logf("server log on the slow players: %s", ln.Raw)
	} else {
		t.Errorf("no server log line reports skipping, dropping or disconnecting the slow players (msg or reason matching %v)", slowPlayerLog)
	}
	// Both stopped reading at about stallStart. Once the socket buffers
	// (a few MB: ~5 s of this stream) and the player queue (~4 s) are
	// full, the server's writes stall and --stall-timeout must end them.
	const closeBound = 20 * time.Second
	for _, name := range []string{stalled.name, "rtmpdump into an unread pipe"} {
		if !sessiontest.Poll(time.Until(stallStart.Add(closeBound)), func() bool { _, ok := closes.closedAt(name); return ok }) {
			t.Errorf("%s: server still connected to it %v after it stopped reading (publisher ended after %v; --stall-timeout %v)\n%s",
				name, time.Since(stallStart).Round(time.Second), pubEnd.Sub(stallStart).Round(time.Second), stall, socketReport(t, srv))
		} else {
			at, _ := closes.closedAt(name)
			t.Logf("%s: server closed the connection %v after it stopped reading", name, at.Sub(stallStart).Round(100*time.Millisecond))
		}
	}
}

// socketReport shows the server's sockets (ss), as evidence.
func socketReport(t testing.TB, srv *server) string {
	if _, err := exec.LookPath("ss"); err != nil {
		return ""
	}
	p := startProc(t, 10*time.Second, "ss", "-tnmi", fmt.Sprintf("( sport = :%d or dport = :%d )", srv.Port, srv.Port))
	p.wait(15 * time.Second)
	return "ss -tnmi:\n" + p.Stdout.String()
}

// TestSlowPlayerFlood: a go-rtmp publisher pushes twice the memory bound in
// large frames at 40 MiB/s (320 Mbit/s), while one player never reads
// (default settings). The publisher must not be stalled, a reading player
// keeps receiving, the server's RSS stays bounded, and the stalled player is
// disconnected (default --stall-timeout 10s).
func TestSlowPlayerFlood(t *testing.T) {
	e2e(t)
	srv := startServer(t)
	rss := monitorRSS(t, srv)
	closes := watchServerClose(t, srv)
	const name = "flood"

	stalled := dialRTMP(t, "stalled player", srv.Addr, dialOpts{RecvBuf: 4096})
	if _, err := stalled.play("live", name); err != nil {
		t.Fatal(err)
	}
	stalled.pause()
	stallStart := time.Now()
	closes.add(stalled.name, localPort(stalled.conn))

	var readerMsgs, readerKeys atomic.Int64
	reader := dialRTMP(t, "reading player", srv.Addr, dialOpts{OnMedia: func(m rxMsg) {
		readerMsgs.Add(1)
		if len(m.Payload) > 1 && m.Payload[0] == 0x17 && m.Payload[1] == 1 {
			readerKeys.Add(1)
		}
	}})
	if _, err := reader.play("live", name); err != nil {
		t.Fatal(err)
	}

	pub := dialRTMP(t, "flood publisher", srv.Addr, dialOpts{ChunkSize: 65536})
	psid, err := pub.publish("live", name)
	if err != nil {
		t.Fatal(err)
	}
	logMark := srv.log.len()
	if err := pub.sendVideo(psid, 0, avcSeqHeader()); err != nil {
		t.Fatal(err)
	}
	const (
		total     = 320 << 20 // bytes to push: twice the RSS bound
		rate      = 40 << 20  // bytes per second: a fixed load, whatever the CPU
		frameSize = 64 << 10
		keySize   = 192 << 10
		gop       = 25
	)
	start := time.Now()
	var sentBytes int64
	var i int
	deadline := start.Add(60 * time.Second)
	for sentBytes < total {
		key := i%gop == 0
		size := frameSize
		if key {
			size = keySize
		}
		if err := pub.sendVideo(psid, uint32(i*40), avcFrame(key, uint32(i), size, 0x11)); err != nil {
			t.Fatalf("publisher stalled after %d MiB in %v: %v", sentBytes>>20, time.Since(start).Round(time.Millisecond), err)
		}
		sentBytes += int64(size)
		i++
		if ahead := time.Duration(float64(sentBytes)/rate*float64(time.Second)) - time.Since(start); ahead > 0 {
			time.Sleep(ahead)
		}
		if time.Now().After(deadline) {
			t.Fatalf("publisher pushed only %d MiB in 60s: stalled", sentBytes>>20)
		}
	}
	pushTook := time.Since(start)
	t.Logf("publisher pushed %d MiB (%d frames) in %v (%.0f MiB/s)", sentBytes>>20, i, pushTook.Round(time.Millisecond),
		float64(sentBytes)/(1<<20)/pushTook.Seconds())

	// The reading player is still served: it receives the frames sent from
	// now on (the server may have skipped it ahead during the burst).
	before := readerMsgs.Load()
	for j := 0; j < 2*gop; j++ {
		if err := pub.sendVideo(psid, uint32((i+j)*40), avcFrame(j%gop == 0, uint32(i+j), 4096, 0x22)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !sessiontest.Poll(10*time.Second, func() bool { return readerMsgs.Load() >= before+gop }) {
		t.Errorf("reading player got %d messages after the burst, want ≥ %d (total %d, %d keyframes)",
			readerMsgs.Load()-before, gop, readerMsgs.Load(), readerKeys.Load())
	}
	t.Logf("reading player received %d messages, %d keyframes, %d MiB", readerMsgs.Load(), readerKeys.Load(), reader.mediaBytes.Load()>>20)
	if ended, err := reader.ended(); ended {
		t.Errorf("reading player was disconnected: %v", err)
	}
	srv.requireAlive(t)

	// The stalled player must be disconnected once its writes have stalled
	// for the (default 10s) stall timeout.
	disconnectBy := stallStart.Add(30 * time.Second)
	if !sessiontest.Poll(time.Until(disconnectBy), func() bool { _, ok := closes.closedAt(stalled.name); return ok }) {
		t.Errorf("server still connected to the stalled player %v after it stopped reading\n%s",
			time.Since(stallStart).Round(time.Second), socketReport(t, srv))
	} else {
		at, _ := closes.closedAt(stalled.name)
		t.Logf("server closed the stalled player %v after it stopped reading", at.Sub(stallStart).Round(100*time.Millisecond))
	}
	if ln, ok := srv.log.find(logMark, isSlowPlayerLine); ok {
		t.Logf("server log on the stalled player: %s", ln.Raw)
	} else {
		t.Errorf("no server log line reports skipping, dropping or disconnecting the stalled player (msg or reason matching %v)", slowPlayerLog)
	}
	rss.check(t)
	pub.unpublish(psid, name)
}
