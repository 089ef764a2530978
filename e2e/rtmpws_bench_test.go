package e2e

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rtmphub/rtmphub/rtmp/client"
	"github.com/rtmphub/rtmphub/rtmp/message"
	"github.com/rtmphub/rtmphub/tunnel/rtmpws"
)

// TestRTMPWSBench (opt-in: RTMPHUB_E2E_RTMPWS_BENCH=1) compares clients
// over RTMP over WebSocket with native RTMP clients against one hub, in
// the same run, in rounds (RTMPHUB_E2E_BENCH_ROUNDS, default 3) that
// alternate which transport goes first:
//   - RPC round trips a second: one client calling echo (the built-in
//     --rpc-test-app, no script) back to back, and 16 clients at once;
//     then one client calling a main.asc method (wsprobe's add);
//   - SharedObject latency: a client sets a slot, another client (same
//     transport) of the instance gets the change; 300 changes one after
//     the other, the time from the set to the change. The hub runs with
//     --so-sync-interval 1ms, so that the transports, not the 20ms sync
//     period, make the difference.
//
// Every client is the project's rtmp/client; the WebSocket ones dial
// through rtmpws.Dialer.
func TestRTMPWSBench(t *testing.T) {
	if os.Getenv("RTMPHUB_E2E_RTMPWS_BENCH") == "" {
		t.Skip("set RTMPHUB_E2E_RTMPWS_BENCH=1 to run")
	}
	e2e(t)
	rounds := 3
	if v, err := strconv.Atoi(os.Getenv("RTMPHUB_E2E_BENCH_ROUNDS")); err == nil && v > 0 {
		rounds = v
	}
	srv := startServer(t, "--rpc-test-app", "rpc", "--so-sync-interval", "1ms", "--log-level", "info")
	copyApp(t, srv.DataDir, "wsprobe")
	var d rtmpws.Dialer
	transports := []struct {
		name string
		dial func(ctx context.Context, app string) (*client.Conn, error)
	}{
		{"rtmp", func(ctx context.Context, app string) (*client.Conn, error) {
			return client.Dial(ctx, "rtmp://"+srv.Addr+"/"+app, client.Options{})
		}},
		{"rtmpws", func(ctx context.Context, app string) (*client.Conn, error) {
			return dialWS(ctx, &d, srv.Addr, app, false)
		}},
	}
	const window = 3 * time.Second
	type row struct{ rpc1, rpc16, script, soP50, soP95 []float64 }
	res := map[string]*row{"rtmp": {}, "rtmpws": {}}
	for r := range rounds {
		order := []int{0, 1}
		if r%2 == 1 {
			order = []int{1, 0}
		}
		for _, i := range order {
			tr := transports[i]
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			rr := res[tr.name]
			rr.rpc1 = append(rr.rpc1, callRate(t, ctx, tr.dial, "rpc", "echo", 1, window))
			rr.rpc16 = append(rr.rpc16, callRate(t, ctx, tr.dial, "rpc", "echo", 16, window))
			rr.script = append(rr.script, callRate(t, ctx, tr.dial, "wsprobe/bench", "add", 1, window))
			p50, p95 := soLatency(t, ctx, tr.dial, fmt.Sprintf("so%d", r), 300)
			rr.soP50 = append(rr.soP50, p50)
			rr.soP95 = append(rr.soP95, p95)
			cancel()
			t.Logf("round %d %-6s: echo 1 client %7.0f/s, 16 clients %7.0f/s, main.asc add %6.0f/s, SO change p50 %.3fms p95 %.3fms",
				r+1, tr.name, rr.rpc1[r], rr.rpc16[r], rr.script[r], p50, p95)
		}
	}
	med := func(xs []float64) float64 { s := slices.Clone(xs); slices.Sort(s); return s[len(s)/2] }
	var b strings.Builder
	fmt.Fprintf(&b, "medians of %d rounds (ratio = rtmpws / rtmp; for latency, > 1 is slower):\n", rounds)
	n, w := res["rtmp"], res["rtmpws"]
	for _, m := range []struct {
		name   string
		rt, ws []float64
		unit   string
	}{
		{"echo, 1 client (calls/s)", n.rpc1, w.rpc1, ""},
		{"echo, 16 clients (calls/s)", n.rpc16, w.rpc16, ""},
		{"main.asc add, 1 client (calls/s)", n.script, w.script, ""},
		{"SO change → other client p50 (ms)", n.soP50, w.soP50, ""},
		{"SO change → other client p95 (ms)", n.soP95, w.soP95, ""},
	} {
		fmt.Fprintf(&b, "  %-36s rtmp %9.3f  rtmpws %9.3f  ratio %.3f\n", m.name, med(m.rt), med(m.ws), med(m.ws)/med(m.rt))
	}
	t.Log("\n" + b.String())
}

// callRate runs clients clients of app, each calling method back to back
// for window, and returns the calls answered a second, all together.
func callRate(t *testing.T, ctx context.Context, dial func(context.Context, string) (*client.Conn, error), app, method string, clients int, window time.Duration) float64 {
	t.Helper()
	conns := make([]*client.Conn, 0, clients)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range clients {
		c, err := dial(ctx, app)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		if _, err := c.Call(ctx, method, 1.0, 2.0); err != nil { // warm up
			t.Fatal(err)
		}
	}
	var total atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	end := start.Add(window)
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(end) {
				if _, err := c.Call(ctx, method, 1.0, 2.0); err != nil {
					t.Error(err)
					return
				}
				total.Add(1)
			}
		}()
	}
	wg.Wait()
	return float64(total.Load()) / time.Since(start).Seconds()
}

// soLatency connects two clients to one instance, and has one change a
// slot n times, waiting each time until the other gets the change; it
// returns the p50 and p95 of those waits, in milliseconds.
func soLatency(t *testing.T, ctx context.Context, dial func(context.Context, string) (*client.Conn, error), inst string, n int) (p50, p95 float64) {
	t.Helper()
	a, err := dial(ctx, "live/"+inst)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := dial(ctx, "live/"+inst)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	for _, c := range []*client.Conn{a, b} {
		if err := c.UseSO("room", false, 0); err != nil {
			t.Fatal(err)
		}
		if _, err := c.ReadSO(ctx, "room"); err != nil {
			t.Fatal(err)
		}
	}
	// The setter's own replies (success) are read on the side, so that
	// they never fill its connection.
	go func() {
		for {
			if _, err := a.ReadMessage(); err != nil {
				return
			}
		}
	}()
	lat := make([]float64, 0, n)
	for i := range n {
		v := float64(i)
		start := time.Now()
		if err := a.SetSO("room", false, 0, message.SOEvent{Key: "x", Value: v}); err != nil {
			t.Fatal(err)
		}
		if !soChangeArrives(ctx, b, "x", v) {
			t.Fatalf("change %d did not arrive", i)
		}
		lat = append(lat, float64(time.Since(start).Microseconds())/1000)
	}
	slices.Sort(lat)
	return lat[len(lat)/2], lat[len(lat)*95/100]
}
