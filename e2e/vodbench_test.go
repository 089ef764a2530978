package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rtmphub/rtmphub/rtmp/client"
	"github.com/rtmphub/rtmphub/rtmp/message"
)

// TestVODBench: N players (default 200, RTMPHUB_VOD_BENCH=N) of one
// 5 Mbit/s FLV file, each with a 3 s buffer as ffmpeg sets it. Reports
// the server's CPU and RSS while they play, time to first frame, and what
// the players received. Opt-in: it needs an otherwise quiet machine. It
// takes the rtmpbench lock so that it never runs alongside another
// benchmark on the host.
func TestVODBench(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("RTMPHUB_VOD_BENCH"))
	if n <= 0 {
		t.Skip("set RTMPHUB_VOD_BENCH=<players> to run the VOD benchmark")
	}
	e2e(t)
	needFFmpeg(t)
	lock, err := os.OpenFile(filepath.Join(os.TempDir(), "rtmpbench.lock"), os.O_RDWR|os.O_CREATE, 0o666)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}

	const seconds = 40
	src := clip(t, clipSpec{Name: "vodbench5m", Size: "640x360", FPS: 25, GOP: 50, Seconds: seconds, Bitrate: "5M", Noise: true})
	fi, _ := os.Stat(src)
	rate := float64(fi.Size()) * 8 / seconds / 1e6
	srv := startServer(t, "--log-level", "info")
	dir := filepath.Join(srv.DataDir, "live", "streams", "_definst_")
	os.MkdirAll(dir, 0o755)
	b, _ := os.ReadFile(src)
	os.WriteFile(filepath.Join(dir, "big.flv"), b, 0o644)
	time.Sleep(500 * time.Millisecond)
	rssBase, _ := srv.RSS()

	var (
		mu    sync.Mutex
		ttff  []time.Duration
		got   atomic.Int64
		fails atomic.Int64
		wg    sync.WaitGroup
	)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	start := time.Now()
	for i := range n {
		wg.Go(func() {
			d, err := vodBenchPlayer(ctx, srv.Addr, &got)
			if err != nil {
				if fails.Add(1) <= 3 {
					t.Logf("player %d: %v", i, err)
				}
				return
			}
			mu.Lock()
			ttff = append(ttff, d)
			mu.Unlock()
		})
		time.Sleep(5 * time.Millisecond) // 200 players in a second
	}
	// Measure a window well inside the file: after the initial bursts,
	// while every player is paced in real time.
	time.Sleep(time.Until(start.Add(8 * time.Second)))
	cpu0, _ := procCPU(srv.Pid())
	b0, t0 := got.Load(), time.Now()
	time.Sleep(20 * time.Second)
	cpu1, _ := procCPU(srv.Pid())
	b1, t1 := got.Load(), time.Now()
	rss, _ := srv.RSS()
	cancel()
	wg.Wait()

	slices.Sort(ttff)
	pct := func(p float64) time.Duration {
		if len(ttff) == 0 {
			return 0
		}
		return ttff[min(len(ttff)-1, int(p*float64(len(ttff))))]
	}
	window := t1.Sub(t0)
	t.Logf("VOD bench: %d players of a %.2f Mbit/s file (%d failed)", n, rate, fails.Load())
	t.Logf("  received %.0f Mbit/s in the window (expected %.0f, paced in real time)", float64(b1-b0)*8/window.Seconds()/1e6, rate*float64(n))
	t.Logf("  server CPU %.0f%% of one core; RSS %.1f MB base, %.1f MB playing (%.0f KB per player)",
		float64(cpu1-cpu0)/float64(window)*100, float64(rssBase)/1e6, float64(rss)/1e6, float64(rss-rssBase)/1e3/float64(n))
	t.Logf("  time to first frame: p50 %v, p95 %v, max %v", pct(0.5).Round(time.Millisecond), pct(0.95).Round(time.Millisecond), pct(1).Round(time.Millisecond))
	if fails.Load() > 0 {
		t.Errorf("%d players failed", fails.Load())
	}
}

// vodBenchPlayer plays live/big: buffer 3 s, then counts bytes without
// parsing after the first video message. It returns the time from play to
// the first video message.
func vodBenchPlayer(ctx context.Context, addr string, total *atomic.Int64) (time.Duration, error) {
	var nc net.Conn
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	c, err := client.Dial(dctx, "rtmp://"+addr+"/live", client.Options{Dial: func(ctx context.Context, a string) (net.Conn, error) {
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", a)
		nc = conn
		return conn, err
	}})
	if err != nil {
		return 0, err
	}
	defer c.Close()
	id, err := c.CreateStream(dctx)
	if err != nil {
		return 0, err
	}
	if err := c.WriteMessages([]message.Message{*message.UserControl{Event: message.UCSetBufferLength, StreamID: id, BufferLength: 3000}.Message()}); err != nil {
		return 0, err
	}
	sent := time.Now()
	if err := c.WriteCommand(id, &message.Command{Name: "play", Args: []any{"big", -2000.0}}); err != nil {
		return 0, err
	}
	var ttff time.Duration
	for ttff == 0 {
		c.SetReadDeadline(time.Now().Add(20 * time.Second))
		m, err := c.ReadMessage()
		if err != nil {
			return 0, err
		}
		total.Add(int64(len(m.Payload)))
		if m.Type == message.TypeVideo && m.StreamID == id {
			ttff = time.Since(sent)
		}
	}
	stop := context.AfterFunc(ctx, func() { nc.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	buf := make([]byte, 256<<10)
	for {
		nc.SetReadDeadline(time.Now().Add(20 * time.Second))
		n, err := nc.Read(buf)
		total.Add(int64(n))
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, os.ErrDeadlineExceeded) && ctx.Err() != nil {
				return ttff, nil
			}
			return ttff, err
		}
	}
}

// procCPU is a process's user+system time.
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("proc stat")
	}
	f := bytes.Fields(b[i+1:])
	if len(f) < 13 {
		return 0, errors.New("proc stat fields")
	}
	ut, _ := strconv.ParseUint(string(f[11]), 10, 64)
	st, _ := strconv.ParseUint(string(f[12]), 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond, nil
}
