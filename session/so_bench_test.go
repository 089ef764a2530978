package session_test

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rtmphub/rtmphub/rtmp/client"
	"github.com/rtmphub/rtmphub/rtmp/message"
	"github.com/rtmphub/rtmphub/session"
	"github.com/rtmphub/rtmphub/session/sessiontest"
)

// benchServer runs a core for a benchmark, logging nothing.
func benchServer(b *testing.B, cfg session.Config) string {
	cfg.DataDir = b.TempDir()
	return sessiontest.Serve(b, session.NewServer(cfg, sessiontest.QuietLogger()))
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkSharedObjectFanout: one writer changes a slot 100 times a
// second; N subscribers receive the batched updates. Reported: messages
// and slot changes delivered per second, CPU (server and clients, one
// process) and heap in use. b.N is ignored beyond one run per size.
func BenchmarkSharedObjectFanout(b *testing.B) {
	for _, n := range []int{100, 500, 2000} {
		b.Run(fmt.Sprintf("subs=%d", n), func(b *testing.B) {
			base := benchServer(b, session.Config{MaxConnections: 5000})
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			var msgs, changes atomic.Int64
			var wg, synced sync.WaitGroup // synced: the use replies are in
			subs := make([]*client.Conn, 0, n)
			for range n {
				c, err := client.Dial(ctx, base+"/bench", client.Options{})
				if err != nil {
					b.Fatal(err)
				}
				subs = append(subs, c)
				c.UseSO("pos", false, 0)
			}
			synced.Add(n + 1)
			for _, c := range subs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for first := true; ; first = false {
						m, err := c.ReadSO(ctx, "pos")
						if first {
							synced.Done()
						}
						if err != nil {
							return
						}
						msgs.Add(1)
						for _, e := range m.Events {
							if e.Type == message.SOChange {
								changes.Add(1)
							}
						}
					}
				}()
			}
			w, err := client.Dial(ctx, base+"/bench", client.Options{})
			if err != nil {
				b.Fatal(err)
			}
			w.UseSO("pos", false, 0)
			go func() { // the writer's replies
				for first := true; ; first = false {
					_, err := w.ReadSO(ctx, "pos")
					if first {
						synced.Done()
					}
					if err != nil {
						return
					}
				}
			}()
			synced.Wait() // the initial syncs are not part of the measure
			msgs.Store(0)
			changes.Store(0)
			runtime.GC()
			cpu0, t0 := cpuTime(), time.Now()
			tick := time.NewTicker(10 * time.Millisecond)
			for i := 0; time.Since(t0) < 3*time.Second; i++ {
				<-tick.C
				w.SetSO("pos", false, 0, kv("x", float64(i)))
			}
			tick.Stop()
			el := time.Since(t0)
			cpu := cpuTime() - cpu0
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			b.ReportMetric(float64(msgs.Load())/el.Seconds(), "msgs/s")
			b.ReportMetric(float64(changes.Load())/el.Seconds(), "changes/s")
			b.ReportMetric(100*cpu.Seconds()/el.Seconds(), "%cpu")
			b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "heapMB")
			cancel()
			w.Close()
			for _, c := range subs {
				c.Close()
			}
			wg.Wait()
		})
	}
}

// BenchmarkRPCRoundTrip: one client calls an application method and waits
// for each _result.
func BenchmarkRPCRoundTrip(b *testing.B) {
	base := benchServer(b, session.Config{Application: testApp(nil)})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c, err := client.Dial(ctx, base+"/rpc", client.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	b.ResetTimer()
	t0 := time.Now()
	for range b.N {
		if _, err := c.Call(ctx, "plain"); err == nil {
			b.Fatal("plain succeeded")
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(t0).Seconds(), "calls/s")
}
