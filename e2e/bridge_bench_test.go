package e2e

import (
	"context"
	"encoding/binary"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/rtmphub/rtmphub/rtmp/client"
	"github.com/rtmphub/rtmphub/rtmp/message"
)

// TestBridgeBench (opt-in: RTMPHUB_E2E_BRIDGE_BENCH=1) compares the paths
// a legacy client can take to one hub, in the same run: direct RTMP, and
// through `rtmphub bridge` over QUIC (byte stream), RoQR (stream only, and with
// media in QUIC DATAGRAMs) and RTMPT. On each path a Go
// publisher and a Go player (both through the path) exchange
//   - latency: a keyframe, then 200 small video inter frames 20ms apart
//     (small enough for a datagram), each stamped with its send time; the
//     player notes the one-way delay (same clock);
//   - throughput: 24 MiB (RTMPHUB_E2E_BENCH_MIB) of 64 KiB video messages
//     as fast as the path takes them; delivered bytes over the player's
//     elapsed time.
func TestBridgeBench(t *testing.T) {
	if os.Getenv("RTMPHUB_E2E_BRIDGE_BENCH") == "" {
		t.Skip("set RTMPHUB_E2E_BRIDGE_BENCH=1 to run")
	}
	e2e(t)
	args := []string{"--quic-addr", "127.0.0.1:0", "--log-level", "info"}
	if os.Getenv("RTMPHUB_E2E_BENCH_FIXED_PORTS") != "" {
		// Known hub ports, for tc filters that impair only the hub's
		// traffic (see the netem note in the report).
		args = append(args, "--rtmp-addr", "127.0.0.1:19350", "--http-addr", "127.0.0.1:19380", "--quic-addr", "127.0.0.1:19390")
	}
	bigMsgs := 384 // 24 MiB
	if v, err := strconv.Atoi(os.Getenv("RTMPHUB_E2E_BENCH_MIB")); err == nil && v > 0 {
		bigMsgs = v * 16
	}
	srv := startServer(t, args...)
	qaddr, pin := quicEndpoint(t, srv)
	paths := []struct{ name, addr string }{
		{"direct rtmp", srv.Addr},
		{"bridge → quic", startBridge(t, "quic://"+qaddr, "--pin", pin, "--log-level", "info")},
		{"bridge → roqr", startBridge(t, "roqr://"+qaddr, "--pin", pin, "--log-level", "info")},
		{"bridge → roqr+dgram", startBridge(t, "roqr://"+qaddr, "--pin", pin, "--log-level", "info", "--roqr-datagrams")},
		{"bridge → rtmpt", startBridge(t, "rtmpt://"+srv.RTMPTAddr(t), "--log-level", "info")},
	}
	for i, p := range paths {
		r := benchPath(t, p.addr, "bench"+string(rune('a'+i)), bigMsgs)
		t.Logf("%-19s latency p50 %6.2fms p95 %6.2fms max %6.2fms (%d/200) | throughput %7.1f Mbit/s (%d of %d MiB delivered, publisher %7.1f Mbit/s)",
			p.name, ms(r.p50), ms(r.p95), ms(r.max), r.latN, r.mbps, r.delivered>>20, r.sent>>20, r.pubMbps)
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

type benchResult struct {
	p50, p95, max   time.Duration
	latN            int
	mbps, pubMbps   float64
	delivered, sent int64
}

func benchPath(t *testing.T, addr, stream string, bigMsgs int) benchResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dial := func(flashVer string) *client.Conn {
		c, err := client.Dial(ctx, "rtmp://"+addr+"/live", client.Options{FlashVer: flashVer})
		if err != nil {
			t.Fatalf("%s: %v", addr, err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	pl := dial("")
	pid, err := pl.CreateStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := pl.Play(ctx, pid, stream, -1000); err != nil {
		t.Fatal(err)
	}
	pub := dial("FMLE/3.0 (compatible; rtmphub-e2e)")
	sid, err := pub.CreateStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := pub.Publish(ctx, sid, stream, "live"); err != nil {
		t.Fatal(err)
	}
	const (
		latMsgs   = 200
		bigSize   = 64 << 10
		endKind   = 3
		latKind   = 1
		bulkKind  = 2
		startKind = 4
	)
	// Every message is an H.264 NAL, a keyframe (0x17) but for the
	// latency phase's inter frames (0x27): 0x17/0x27 0x01 cts(3) then the
	// send time and a marker.
	frame := func(size int, kind byte) []byte {
		b := make([]byte, size)
		b[0], b[1] = 0x17, 0x01
		if kind == latKind {
			b[0] = 0x27
		}
		binary.BigEndian.PutUint64(b[5:], uint64(time.Now().UnixNano()))
		b[13] = kind
		return b
	}
	type got struct {
		kind byte
		at   time.Time
		sent time.Time
		n    int
	}
	recv := make(chan got, 4096)
	go func() {
		defer close(recv)
		for {
			pl.SetReadDeadline(time.Now().Add(20 * time.Second))
			m, err := pl.ReadMessage()
			if err != nil {
				return
			}
			if m.Type != message.TypeVideo || len(m.Payload) < 14 || m.Payload[0] != 0x17 && m.Payload[0] != 0x27 || m.Payload[1] != 0x01 {
				continue
			}
			recv <- got{m.Payload[13], time.Now(), time.Unix(0, int64(binary.BigEndian.Uint64(m.Payload[5:]))), len(m.Payload)}
			if m.Payload[13] == endKind {
				return
			}
		}
	}()
	send := func(ts uint32, p []byte) {
		if err := pub.WriteMessages([]message.Message{{Type: message.TypeVideo, StreamID: sid, Timestamp: ts, Payload: p}}); err != nil {
			t.Fatalf("publish: %v", err)
		}
	}
	var r benchResult
	var lats []time.Duration
	var ts uint32
	send(ts, frame(2048, startKind)) // the player starts here
	ts += 20
	for range latMsgs {
		send(ts, frame(1000, latKind))
		ts += 20
		time.Sleep(20 * time.Millisecond)
	}
	// Collect the latency messages (they come well within a second).
	deadline := time.After(5 * time.Second)
collect:
	for len(lats) < latMsgs {
		select {
		case g, ok := <-recv:
			if !ok {
				break collect
			}
			if g.kind == latKind {
				lats = append(lats, g.at.Sub(g.sent))
			}
		case <-deadline:
			break collect
		}
	}
	slices.Sort(lats)
	r.latN = len(lats)
	if len(lats) > 0 {
		r.p50, r.p95, r.max = lats[len(lats)/2], lats[len(lats)*95/100], lats[len(lats)-1]
	}

	pubStart := time.Now()
	done := make(chan benchResult, 1)
	go func() {
		var first, last time.Time
		var n int64
		for g := range recv {
			if g.kind == latKind || g.kind == startKind {
				continue
			}
			if first.IsZero() {
				first = g.at
			}
			last = g.at
			n += int64(g.n)
			if g.kind == endKind {
				break
			}
		}
		res := benchResult{delivered: n}
		if el := last.Sub(pubStart); el > 0 {
			res.mbps = float64(n) * 8 / el.Seconds() / 1e6
		}
		done <- res
	}()
	for i := range bigMsgs {
		kind := byte(bulkKind)
		if i == bigMsgs-1 {
			kind = endKind
		}
		send(ts, frame(bigSize, kind))
		ts += 40
	}
	r.sent = int64(bigMsgs) * bigSize
	r.pubMbps = float64(r.sent) * 8 / time.Since(pubStart).Seconds() / 1e6
	select {
	case res := <-done:
		r.delivered, r.mbps = res.delivered, res.mbps
	case <-time.After(90 * time.Second):
		t.Errorf("%s: the player did not get the end of the bulk phase", addr)
	}
	return r
}
