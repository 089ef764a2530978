package e2e

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rtmphub/rtmphub/rtmp/client"
	"github.com/rtmphub/rtmphub/rtmp/message"
	"github.com/rtmphub/rtmphub/tunnel"
)

// TestRTMPTBench compares players over RTMPT with players over native RTMP
// in one run against one server: a Go publisher sends a synthetic video
// stream (RTMPHUB_RTMPT_BENCH_KBPS, default 1000 kbit/s, 25 fps, a
// keyframe a second) and N players (RTMPHUB_RTMPT_BENCH=N) play it, first
// all over native RTMP, then all over RTMPT (tunnel.DialRTMPT to the HTTP
// port). For each it reports delivered Mbps per server CPU-second, the
// server's CPU per player, the latency from the publisher's write to the
// player's decoding of each frame (p50/p99), and RTMPT requests per second
// per session. Run alone on an idle machine:
//
//	RTMPHUB_RTMPT_BENCH=50 go test ./e2e/ -run TestRTMPTBench -v
//
// RTMPHUB_RTMPT_BENCH_ONLY=rtmp or rtmpt runs one transport (on a fresh
// server, so that the RSS per player means something).
func TestRTMPTBench(t *testing.T) {
	players, _ := strconv.Atoi(os.Getenv("RTMPHUB_RTMPT_BENCH"))
	if players <= 0 {
		t.Skip("set RTMPHUB_RTMPT_BENCH=<players> to run the RTMPT benchmark")
	}
	kbps := 1000
	if v, err := strconv.Atoi(os.Getenv("RTMPHUB_RTMPT_BENCH_KBPS")); err == nil && v > 0 {
		kbps = v
	}
	e2e(t)
	lock, err := os.OpenFile(filepath.Join(os.TempDir(), "rtmpbench.lock"), os.O_RDWR|os.O_CREATE, 0o666)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}

	// RTMPHUB_RTMPT_BENCH_ARGS: extra server flags (e.g. --debug-addr 127.0.0.1:6060 to profile).
	srv := startServer(t, append([]string{"--log-level", "info", "--rtmpt-max-per-ip", "100000"}, strings.Fields(os.Getenv("RTMPHUB_RTMPT_BENCH_ARGS"))...)...)
	httpAddr := srv.RTMPTAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	pub := startBenchPublisher(t, ctx, srv.Addr, kbps)
	time.Sleep(2 * time.Second) // a keyframe in the GOP cache

	const warmup, window = 3 * time.Second, 15 * time.Second
	type result struct {
		name              string
		rssPerPlayer      int64
		mbps, cpu         float64
		p50, p99          time.Duration
		reqPerSecPerPlyr  float64
		failed, completed int
	}
	var results []result
	transports := []string{"rtmp", "rtmpt"}
	if only := os.Getenv("RTMPHUB_RTMPT_BENCH_ONLY"); only != "" {
		transports = []string{only} // one transport per server: RSS per player is meaningful
	}
	for _, transport := range transports {
		rssBase, _ := srv.RSS()
		dial := func(ctx context.Context, addr string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "tcp", addr)
		}
		url := "rtmp://" + srv.Addr + "/live"
		if transport == "rtmpt" {
			url = "rtmp://" + httpAddr + "/live"
			dial = func(ctx context.Context, addr string) (net.Conn, error) {
				return tunnel.DialRTMPT(ctx, "rtmpt://"+addr, tunnel.DialOptions{})
			}
		}
		pctx, pcancel := context.WithCancel(ctx)
		var wg sync.WaitGroup
		bps := make([]*benchPlayer, players)
		for i := range bps {
			bps[i] = &benchPlayer{pub: pub}
			wg.Add(1)
			go func() {
				defer wg.Done()
				bps[i].run(pctx, url, dial)
			}()
			time.Sleep(20 * time.Millisecond) // a ramp, not a stampede
		}
		time.Sleep(warmup)
		for _, p := range bps {
			p.measure.Store(true)
		}
		cpu0, _ := cpuTimeOf(srv.Pid())
		var bytes0, req0 uint64
		for _, p := range bps {
			bytes0 += p.bytes.Load()
			req0 += p.requests()
		}
		start := time.Now()
		time.Sleep(window)
		elapsed := time.Since(start)
		cpu1, _ := cpuTimeOf(srv.Pid())
		var bytes1, req1 uint64
		var lat []time.Duration
		failed := 0
		for _, p := range bps {
			p.measure.Store(false)
			bytes1 += p.bytes.Load()
			req1 += p.requests()
			p.mu.Lock()
			lat = append(lat, p.lat...)
			if p.err != nil {
				failed++
			}
			p.mu.Unlock()
		}
		rss, _ := srv.RSS()
		pcancel()
		wg.Wait()
		slices.Sort(lat)
		pct := func(q float64) time.Duration {
			if len(lat) == 0 {
				return 0
			}
			return lat[min(len(lat)-1, int(q*float64(len(lat))))]
		}
		cpu := (cpu1 - cpu0).Seconds()
		mbps := float64(bytes1-bytes0) * 8 / elapsed.Seconds() / 1e6
		results = append(results, result{
			name: transport, mbps: mbps, cpu: cpu, p50: pct(0.5), p99: pct(0.99), rssPerPlayer: (rss - rssBase) / int64(players),
			reqPerSecPerPlyr: float64(req1-req0) / elapsed.Seconds() / float64(players),
			failed:           failed, completed: len(lat),
		})
		time.Sleep(time.Second)
	}
	pub.stop()

	var b strings.Builder
	fmt.Fprintf(&b, "\n%d players of a %d kbit/s stream, %v window, server pid %d (CPU = server utime+stime in the window)\n", players, kbps, window, srv.Pid())
	fmt.Fprintf(&b, "| transport | Mbps delivered | server CPU s | Mbps per CPU-s | CPU ms/s per player | latency p50 | latency p99 | requests/s per session | RSS KiB per player | frames | failed |\n|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range results {
		perCPU := 0.0
		if r.cpu > 0 {
			perCPU = r.mbps * window.Seconds() / r.cpu
		}
		fmt.Fprintf(&b, "| %s | %.1f | %.2f | %.1f | %.2f | %v | %v | %.1f | %d | %d | %d |\n", r.name, r.mbps, r.cpu, perCPU,
			r.cpu/window.Seconds()*1000/float64(players), r.p50.Round(10*time.Microsecond), r.p99.Round(10*time.Microsecond),
			r.reqPerSecPerPlyr, r.rssPerPlayer>>10, r.completed, r.failed)
	}
	if len(results) == 2 && results[0].cpu > 0 {
		fmt.Fprintf(&b, "RTMPT vs RTMP: CPU per player ×%.2f, added latency p50 %v, p99 %v\n",
			results[1].cpu/results[0].cpu, (results[1].p50 - results[0].p50).Round(10*time.Microsecond),
			(results[1].p99 - results[0].p99).Round(10*time.Microsecond))
	}
	t.Log(b.String())
	for _, r := range results {
		if r.failed > 0 {
			t.Errorf("%s: %d players failed", r.name, r.failed)
		}
	}
}

// cpuTimeOf is the user+system CPU time of a process.
func cpuTimeOf(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("bad /proc stat")
	}
	f := bytes.Fields(b[i+1:])
	if len(f) < 13 {
		return 0, errors.New("short /proc stat")
	}
	ut, _ := strconv.ParseUint(string(f[11]), 10, 64)
	st, _ := strconv.ParseUint(string(f[12]), 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond, nil // USER_HZ = 100
}

// benchPublisher publishes synthetic H.264-tagged video frames in real
// time; the first 4 payload bytes after the 5-byte AVC header carry the
// frame number, and sent[frame] the wall time it was written.
type benchPublisher struct {
	mu   sync.Mutex
	sent map[uint32]time.Time
	done chan struct{}
	c    *client.Conn
}

func startBenchPublisher(t testing.TB, ctx context.Context, addr string, kbps int) *benchPublisher {
	t.Helper()
	dctx, dcancel := context.WithTimeout(ctx, 10*time.Second)
	defer dcancel()
	c, err := client.Dial(dctx, "rtmp://"+addr+"/live", client.Options{FlashVer: "FMLE/3.0 (compatible; bench)"})
	if err != nil {
		t.Fatal(err)
	}
	msid, err := c.CreateStream(dctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Publish(dctx, msid, "bench", "live"); err != nil {
		t.Fatal(err)
	}
	p := &benchPublisher{sent: make(map[uint32]time.Time), done: make(chan struct{}), c: c}
	frameSize := max(kbps*1000/8/25, 16)
	go func() {
		defer close(p.done)
		// AVC sequence header, then frames.
		seqHdr := []byte{0x17, 0, 0, 0, 0, 1, 0x42, 0xc0, 0x1e, 0xff, 0xe1, 0, 4, 0x67, 0x42, 0xc0, 0x1e, 1, 0, 4, 0x68, 0xce, 0x3c, 0x80}
		c.WriteMessages([]message.Message{{Type: message.TypeVideo, StreamID: msid, ChunkStreamID: 6, Payload: seqHdr}})
		start := time.Now()
		tick := time.NewTicker(40 * time.Millisecond)
		defer tick.Stop()
		for n := uint32(0); ; n++ {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			payload := make([]byte, frameSize)
			payload[0] = 0x27
			if n%25 == 0 {
				payload[0] = 0x17
			}
			payload[1] = 1
			binary.BigEndian.PutUint32(payload[5:], n)
			ts := uint32(time.Since(start).Milliseconds())
			p.mu.Lock()
			p.sent[n] = time.Now()
			delete(p.sent, n-2000)
			p.mu.Unlock()
			if err := c.WriteMessages([]message.Message{{Type: message.TypeVideo, StreamID: msid, ChunkStreamID: 6, Timestamp: ts, Payload: payload}}); err != nil {
				return
			}
		}
	}()
	return p
}

func (p *benchPublisher) stop() {
	p.c.Close()
	<-p.done
}

func (p *benchPublisher) sentAt(n uint32) (time.Time, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	at, ok := p.sent[n]
	return at, ok
}

// benchPlayer plays the bench stream and records, while measure is set,
// the latency of every frame (publisher's write → message decoded here).
type benchPlayer struct {
	pub     *benchPublisher
	bytes   atomic.Uint64
	measure atomic.Bool
	conn    atomic.Value // net.Conn, for RTMPT request counts

	mu  sync.Mutex
	lat []time.Duration
	err error
}

func (p *benchPlayer) requests() uint64 {
	if c, ok := p.conn.Load().(interface{ Requests() uint64 }); ok {
		return c.Requests()
	}
	return 0
}

func (p *benchPlayer) run(ctx context.Context, url string, dial func(context.Context, string) (net.Conn, error)) {
	fail := func(err error) {
		if ctx.Err() == nil {
			p.mu.Lock()
			p.err = err
			p.mu.Unlock()
		}
	}
	dctx, dcancel := context.WithTimeout(ctx, 15*time.Second)
	defer dcancel()
	c, err := client.Dial(dctx, url, client.Options{Dial: func(ctx context.Context, addr string) (net.Conn, error) {
		nc, err := dial(ctx, addr)
		if err == nil {
			p.conn.Store(nc)
		}
		return nc, err
	}})
	if err != nil {
		fail(err)
		return
	}
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	defer c.Close()
	msid, err := c.CreateStream(dctx)
	if err == nil {
		err = c.Play(dctx, msid, "bench", -1000)
	}
	if err != nil {
		fail(err)
		return
	}
	for {
		m, err := c.ReadMessage()
		if err != nil {
			fail(err)
			return
		}
		p.bytes.Add(uint64(len(m.Payload)))
		if m.Type != message.TypeVideo || len(m.Payload) < 9 || m.Payload[1] != 1 || !p.measure.Load() {
			continue
		}
		if at, ok := p.pub.sentAt(binary.BigEndian.Uint32(m.Payload[5:])); ok {
			d := time.Since(at)
			p.mu.Lock()
			p.lat = append(p.lat, d)
			p.mu.Unlock()
		}
	}
}
