package tunnel

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"
)

// bothPaths runs f on the direct path and on the HTTP server's.
func bothPaths(t *testing.T, f func(t *testing.T, noDirect bool)) {
	for _, nd := range []bool{false, true} {
		t.Run(fmt.Sprintf("nodirect=%v", nd), func(t *testing.T) { f(t, nd) })
	}
}

// slowSend is the head of a /send that announces a body of n bytes.
func slowSend(n int) string {
	return fmt.Sprintf("POST /send/ABCDEFGHabcdefgh/1 HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-fcs\r\n"+
		"Content-Length: %d\r\n\r\n", n)
}

func heapInuse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// Connections that announce 8 MiB bodies and send a trickle of them make
// the server hold what they sent, not what they announced (it held the
// announced length: 32 × 8 MiB here).
func TestSlowBodiesStayBounded(t *testing.T) {
	bothPaths(t, func(t *testing.T, noDirect bool) {
		const conns, announced = 32, 8 << 20
		addr, s := testServer(t, Config{NoDirect: noDirect}, echo)
		before := heapInuse()
		var ncs []net.Conn
		for range conns {
			nc, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			nc.SetDeadline(time.Now().Add(20 * time.Second))
			// The HTTP server reads ahead 8 KiB of a body before its
			// handler runs: send that much, and more.
			if _, err := io.WriteString(nc, slowSend(announced)+strings.Repeat("x", 12<<10)); err != nil {
				t.Fatal(err)
			}
			ncs = append(ncs, nc)
		}
		// Every connection's body has started to arrive.
		if !eventually(10*time.Second, func() bool { return s.Stats().BufferedBody >= conns*(16<<10-bodyFreeBytes) }) {
			t.Fatalf("bodies not buffered: %+v", s.Stats())
		}
		after := heapInuse()
		st := s.Stats()
		t.Logf("heap in use %d → %d bytes; %+v", before, after, st)
		if st.BufferedBody > conns*(32<<10) {
			t.Errorf("%d body bytes buffered for %d connections that sent 12 KiB each", st.BufferedBody, conns)
		}
		if after > before+16<<20 {
			t.Errorf("heap in use grew by %d bytes for %d connections that sent 12 KiB each", after-before, conns)
		}
		for _, nc := range ncs {
			nc.Close()
		}
		if !eventually(10*time.Second, func() bool { return s.Stats().BufferedBody == 0 }) {
			t.Errorf("budget not given back: %+v", s.Stats())
		}
	})
}

// A body that would take the buffered bytes of all connections past the
// budget is refused with 503, its connection closed; the others go on.
func TestBufferedBodyBudget(t *testing.T) {
	bothPaths(t, func(t *testing.T, noDirect bool) {
		addr, s := testServer(t, Config{NoDirect: noDirect, MaxBufferedBody: 96 << 10}, echo)
		a := dialRaw(t, addr)
		a.write([]byte(slowSend(64<<10) + strings.Repeat("a", 40<<10))) // holds 64 KiB, 56 KiB of the budget
		if !eventually(10*time.Second, func() bool { return s.Stats().BufferedBody == 56<<10 }) {
			t.Fatalf("first body: %+v", s.Stats())
		}
		b := dialRaw(t, addr)
		b.write([]byte(slowSend(1<<20) + strings.Repeat("b", 40<<10)))
		if r := b.read(); r.status() != 503 {
			t.Fatalf("second body: %q, want 503", r.statusLine)
		}
		// Closed: at its end, or reset over the unread body.
		if _, err := b.br.ReadByte(); err != io.EOF && !errors.Is(err, syscall.ECONNRESET) {
			t.Errorf("connection not closed after the 503: %v", err)
		}
		if st := s.Stats(); st.CutOverBudget != 1 || st.BufferedBody != 56<<10 {
			t.Errorf("after the refusal: %+v", st)
		}
		// The first goes on: its body ends in a 404 (no such session).
		a.write(make([]byte, 24<<10))
		if r := a.read(); r.status() != 404 {
			t.Errorf("first body: %q", r.statusLine)
		}
		if !eventually(5*time.Second, func() bool { return s.Stats().BufferedBody == 0 }) {
			t.Errorf("budget not given back: %+v", s.Stats())
		}
	})
}

// A head sent a byte at a time is cut at the head deadline from its first
// byte, however steadily the bytes come; so is a body that comes slower
// than the minimum rate, at the body deadline.
func TestTrickleIsCut(t *testing.T) {
	cfg := func(noDirect bool) Config {
		return Config{NoDirect: noDirect, HeadTimeout: 300 * time.Millisecond, BodyTimeout: 300 * time.Millisecond, MinBodyRate: 1000}
	}
	trickle := func(t *testing.T, nc net.Conn, b []byte) (sent int) {
		// 40 bytes a second: 2.5 s for 100, far past either deadline.
		for i := range b {
			if _, err := nc.Write(b[i : i+1]); err != nil {
				return i
			}
			time.Sleep(25 * time.Millisecond)
		}
		return len(b)
	}
	cutWithin := func(t *testing.T, nc net.Conn, what string) {
		nc.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.ReadAll(nc); err != nil && !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("%s: not closed: %v", what, err)
		}
	}
	bothPaths(t, func(t *testing.T, noDirect bool) {
		t.Run("head", func(t *testing.T) {
			addr, s := testServer(t, cfg(noDirect), echo)
			nc, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			head := []byte("POST /send/ABCDEFGHabcdefgh/1 HTTP/1.1\r\nHost: x\r\nUser-Agent: Shockwave Flash\r\nX-Pad: " +
				strings.Repeat("p", 100) + "\r\nContent-Length: 1\r\n\r\n\x00")
			done := make(chan int, 1)
			go func() { done <- trickle(t, nc, head) }()
			cutWithin(t, nc, "head")
			if sent := <-done; sent == len(head) {
				t.Errorf("the whole head (%d bytes, 25 ms apart) was read", sent)
			}
			if !eventually(5*time.Second, func() bool { return s.Stats().CutSlow == 1 }) {
				t.Errorf("stats %+v", s.Stats())
			}
		})
		t.Run("body", func(t *testing.T) {
			addr, s := testServer(t, cfg(noDirect), echo)
			nc, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			io.WriteString(nc, slowSend(200))
			done := make(chan int, 1)
			go func() { done <- trickle(t, nc, make([]byte, 200)) }()
			cutWithin(t, nc, "body")
			if sent := <-done; sent == 200 {
				t.Errorf("the whole body (200 bytes, 25 ms apart) was read")
			}
			if !eventually(5*time.Second, func() bool { return s.Stats().CutSlow == 1 }) {
				t.Errorf("stats %+v", s.Stats())
			}
		})
	})
}

// One address may hold MaxHTTPConnsPerIP connections; a trusted proxy is
// not limited per address.
func TestHTTPConnsPerIP(t *testing.T) {
	for _, trusted := range []bool{false, true} {
		t.Run(fmt.Sprintf("trusted=%v", trusted), func(t *testing.T) {
			cfg := Config{MaxHTTPConnsPerIP: 3}
			if trusted {
				cfg.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
			}
			addr, s := testServer(t, cfg, echo)
			for range 3 {
				c := dialRaw(t, addr)
				c.write([]byte("POST /open/1 HTTP/1.1\r\n")) // half a request: held open
			}
			if !eventually(5*time.Second, func() bool { return s.Stats().HTTPConns == 3 }) {
				t.Fatalf("stats %+v", s.Stats())
			}
			c := dialRaw(t, addr)
			r := c.do("/fcs/ident2", []byte{0})
			switch {
			case !trusted && r.status() != 429:
				t.Fatalf("fourth connection: %q, want 429", r.statusLine)
			case trusted && r.status() != 404:
				t.Fatalf("fourth connection from a trusted proxy: %q, want 404", r.statusLine)
			}
			if st := s.Stats(); !trusted && st.CutConnLimit != 1 {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

func TestConnIPKey(t *testing.T) {
	s := NewServer(Config{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}, echo)
	for _, tc := range []struct {
		addr, key string
		limited   bool
	}{
		{"192.0.2.1:5000", "192.0.2.1", true},
		{"[::ffff:192.0.2.1]:5000", "192.0.2.1", true},
		{"[2001:db8:1:2:3:4:5:6]:5000", "2001:db8:1:2::", true},
		{"10.1.2.3:80", "invalid IP", false},
	} {
		key, limited := s.connIPKey(net.TCPAddrFromAddrPort(netip.MustParseAddrPort(tc.addr)))
		if key.String() != tc.key || limited != tc.limited {
			t.Errorf("%s: %v %v, want %s %v", tc.addr, key, limited, tc.key, tc.limited)
		}
	}
}

// records keeps the log records it is handed.
type records struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (r *records) Enabled(context.Context, slog.Level) bool { return true }
func (r *records) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.recs = append(r.recs, rec.Clone())
	return nil
}
func (r *records) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *records) WithGroup(string) slog.Handler      { return r }

// Peers cut in a burst make one log line a second that sums them, never
// one line per peer.
func TestCutLogOncePerSecond(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var h records
		c := &cutLog{log: slog.New(&h)}
		start := time.Now()
		for i := range 3000 { // 3 s of a flood: 1000 cuts a second
			c.add(i % numCuts)
			time.Sleep(time.Millisecond)
		}
		time.Sleep(5 * time.Second)
		c.add(cutSlow) // a lone one later
		time.Sleep(2 * time.Second)
		synctest.Wait()
		var total int64
		var last time.Time
		for i, rec := range h.recs {
			if at := rec.Time; i > 0 && at.Sub(last) < time.Second {
				t.Errorf("line %d %v after the previous one", i, at.Sub(last))
			}
			last = rec.Time
			rec.Attrs(func(a slog.Attr) bool {
				if a.Key == "count" {
					total += a.Value.Int64()
				}
				return true
			})
		}
		if total != 3001 {
			t.Errorf("lines sum %d cuts, want 3001", total)
		}
		if n := len(h.recs); n < 3 || n > 5 {
			t.Errorf("%d lines for 3 s of cuts and a lone one (since %v)", n, start)
		}
	})
}

// The budget's accounting and the body's growth, without a socket.
func TestBodyReaderGrowsAsBytesArrive(t *testing.T) {
	budget := &byteBudget{max: 1 << 20}
	lim := &limits{maxBody: 8 << 20, budget: budget, headTimeout: time.Second, bodyTimeout: time.Second, minRate: 1, now: time.Now}
	var br bodyReader
	pr, pw := io.Pipe()
	go func() {
		pw.Write(make([]byte, 100<<10))
		pw.CloseWithError(io.ErrUnexpectedEOF)
	}()
	_, err := br.read(bufio.NewReader(pr), 8<<20, 0, lim, nil)
	if err != io.ErrUnexpectedEOF {
		t.Fatalf("err %v", err)
	}
	if c := cap(br.buf); c > 256<<10 {
		t.Errorf("capacity %d for 100 KiB received of 8 MiB", c)
	}
	if used := budget.used.Load(); used != int64(cap(br.buf)-bodyFreeBytes) {
		t.Errorf("budget used %d, capacity %d", used, cap(br.buf))
	}
	br.done(budget)
	if used := budget.used.Load(); used != 0 || br.buf != nil {
		t.Errorf("after done: budget %d, buffer %d", used, cap(br.buf))
	}
}
