package e2e

import (
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestMergedWriteRealPlayers: with --merged-write 300ms, ffmpeg publishes;
// ffmpeg and rtmpdump play over RTMP and ffmpeg over HTTP-FLV. Each
// decodes ≥ 99% of the frames sent after it joined, identical to what was
// published, and ends by itself after the publisher. tshark, capturing
// the RTMP port, sees what the window is for: each player's media arrives
// in about one TCP segment per window (at most 2 / 300 ms + 2 a second),
// where 25 fps video with its audio takes 25 or more without the window.
func TestMergedWriteRealPlayers(t *testing.T) {
	e2e(t)
	needFFmpeg(t)
	needTool(t, "rtmpdump")
	needTool(t, "tshark")
	const window = 300 * time.Millisecond
	srv := startServer(t, "--merged-write", window.String())
	dir := t.TempDir()
	pcap := filepath.Join(dir, "merged.pcapng")
	capture := startCapture(t, srv.Port, pcap)

	const seconds = 12
	pub := startPublisher(t, srv.URL("s1"), pubOpts{Seconds: seconds, GOP: 25})
	pub.waitFrames(t, 50, 30*time.Second)
	players := []playerOut{
		ffPlay(t, pub, dir, "ffmpeg rtmp", srv.URL("s1")),
		rdPlay(t, pub, dir, "rtmpdump rtmp", srv.URL("s1")),
		ffPlay(t, pub, dir, "ffmpeg http-flv", "http://"+srv.Addr+"/live/s1.flv"),
	}
	pub.finish(t, seconds*time.Second+40*time.Second)
	checkPlayers(t, pub, players)
	checkPlayers99(t, pub, players)
	stopCapture(t, capture, pcap)

	// The server's segments with payload, per connection: the players'
	// connections are those that received the stream (the publisher's
	// gets a few hundred bytes).
	out := run(t, time.Minute, "tshark", "-n", "-r", pcap, "-Y", fmt.Sprintf("tcp.srcport==%d && tcp.len>0", srv.Port),
		"-T", "fields", "-e", "frame.time_relative", "-e", "tcp.dstport", "-e", "tcp.len")
	type conn struct {
		at    []float64 // segments of media size (control messages are smaller)
		bytes int
	}
	conns := map[string]*conn{}
	for line := range strings.Lines(out) {
		f := strings.Fields(line)
		if len(f) != 3 {
			continue
		}
		at, err1 := strconv.ParseFloat(f[0], 64)
		n, err2 := strconv.Atoi(f[2])
		if err1 != nil || err2 != nil {
			t.Fatalf("tshark line %q", line)
		}
		c := conns[f[1]]
		if c == nil {
			c = &conn{}
			conns[f[1]] = c
		}
		c.bytes += n
		if n >= 200 {
			c.at = append(c.at, at)
		}
	}
	maxRate := 2/window.Seconds() + 2
	seen := 0
	for port, c := range conns {
		if c.bytes < 100<<10 {
			continue
		}
		seen++
		// Steady state: from 2 s after the join burst to 1 s before the end.
		from, to := c.at[0]+2, c.at[len(c.at)-1]-1
		if to-from < 4 {
			t.Fatalf("player on port %s streamed only %.1f s", port, to-from+3)
		}
		var gaps []float64
		n := 0
		for i, at := range c.at {
			if at >= from && at <= to {
				n++
				if i > 0 {
					gaps = append(gaps, at-c.at[i-1])
				}
			}
		}
		slices.Sort(gaps)
		rate := float64(n) / (to - from)
		t.Logf("player on port %s: %d KiB, %.1f media segments a second, median gap %.0f ms", port, c.bytes>>10, rate, gaps[len(gaps)/2]*1000)
		if rate > maxRate {
			t.Errorf("player on port %s got %.1f media segments a second, want at most %.1f with a %v window", port, rate, maxRate, window)
		}
	}
	if seen != len(players) {
		t.Errorf("capture shows %d connections that received the stream, want %d players", seen, len(players))
	}
}
