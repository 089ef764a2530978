package tunnel

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// testSession returns a session registered in a server that is not
// running: exchange, Read and Write work on it directly.
func testSession(t *testing.T, cfg Config) (*Server, *rtmptSession) {
	t.Helper()
	s := NewServer(cfg, nil)
	addr := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}
	ss := newRTMPTSession(s, newSessionID(""), "127.0.0.1", Info{Protocol: "rtmpt"}, addr, addr)
	s.sessions[ss.id] = ss
	s.perIP[ss.ip]++
	return s, ss
}

type exchangeResult struct {
	reply  []byte
	status int
	took   time.Duration
}

func goExchange(ss *rtmptSession, cmd rtmptCmd, seq uint64, body []byte) <-chan exchangeResult {
	ch := make(chan exchangeResult, 1)
	start := time.Now()
	go func() {
		r, st := ss.exchange(nil, nil, nil, cmd, seq, body)
		ch <- exchangeResult{r, st, time.Since(start)}
	}()
	return ch
}

func TestLongPollWakesOnWrite(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, ss := testSession(t, Config{HoldTime: 500 * time.Millisecond})
		res := goExchange(ss, cmdIdle, 0, []byte{0})
		time.Sleep(120 * time.Millisecond)
		synctest.Wait()
		select {
		case r := <-res:
			t.Fatalf("idle answered before any data: %+v", r)
		default:
		}
		if _, err := ss.Write([]byte("hello")); err != nil {
			t.Fatal(err)
		}
		r := <-res
		if r.status != 200 || string(r.reply[1:]) != "hello" || r.reply[0] != 1 {
			t.Fatalf("reply %q status %d", r.reply, r.status)
		}
		if r.took != 120*time.Millisecond {
			t.Fatalf("answered after %v, want the moment data was written (120ms)", r.took)
		}
	})
}

func TestLongPollTimesOutEmpty(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, ss := testSession(t, Config{HoldTime: 300 * time.Millisecond})
		r := <-goExchange(ss, cmdIdle, 0, []byte{0})
		if r.status != 200 || len(r.reply) != 1 || r.reply[0] != 1 {
			t.Fatalf("reply %q status %d", r.reply, r.status)
		}
		if r.took != 300*time.Millisecond {
			t.Fatalf("held %v, want the hold time 300ms", r.took)
		}
		// With data pending the reply is immediate.
		ss.Write([]byte("x"))
		r = <-goExchange(ss, cmdIdle, 1, []byte{0})
		if r.took != 0 || string(r.reply[1:]) != "x" {
			t.Fatalf("pending data: reply %q after %v", r.reply, r.took)
		}
		// No hold configured: answered at once.
		_, ss2 := testSession(t, Config{HoldTime: -1})
		if r := <-goExchange(ss2, cmdIdle, 0, []byte{0}); r.took != 0 {
			t.Fatalf("hold off: answered after %v", r.took)
		}
	})
}

func TestIntervalBacksOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, ss := testSession(t, Config{HoldTime: -1})
		var got []byte
		for seq := range uint64(60) {
			r := <-goExchange(ss, cmdIdle, seq, []byte{0})
			got = append(got, r.reply[0])
		}
		want := []byte{1, 3, 5, 9, 17, 33}
		var steps []byte
		for _, b := range got {
			if len(steps) == 0 || steps[len(steps)-1] != b {
				steps = append(steps, b)
			}
		}
		if !bytes.Equal(steps, want) {
			t.Fatalf("interval steps %v, want %v", steps, want)
		}
		ss.Write([]byte("data"))
		if r := <-goExchange(ss, cmdIdle, 60, []byte{0}); r.reply[0] != 1 {
			t.Fatalf("interval with data = %d, want 1", r.reply[0])
		}
	})
}

func TestSendLingerCatchesTheAnswer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, ss := testSession(t, Config{SendLinger: 5 * time.Millisecond})
		// The "core" answers whatever it reads, after 1ms of work.
		go func() {
			buf := make([]byte, 64)
			n, _ := ss.Read(buf)
			time.Sleep(time.Millisecond)
			ss.Write(append([]byte("re:"), buf[:n]...))
		}()
		r := <-goExchange(ss, cmdSend, 0, []byte("connect"))
		if string(r.reply[1:]) != "re:connect" {
			t.Fatalf("send reply %q, want the answer written during the linger", r.reply)
		}
		// Nothing to answer: the send returns after the linger.
		r = <-goExchange(ss, cmdSend, 1, []byte("media"))
		if len(r.reply) != 1 || r.took != 5*time.Millisecond {
			t.Fatalf("send with no answer: %q after %v", r.reply, r.took)
		}
	})
}

func TestRetryGetsSameReply(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, ss := testSession(t, Config{HoldTime: -1, SendLinger: -1})
		ss.Write([]byte("first"))
		r1 := <-goExchange(ss, cmdSend, 7, []byte("abc")) // any start
		ss.Write([]byte("second"))
		r2 := <-goExchange(ss, cmdSend, 7, []byte("abc")) // a retry
		if !bytes.Equal(r1.reply, r2.reply) || string(r1.reply[1:]) != "first" {
			t.Fatalf("retry got %q, first %q", r2.reply, r1.reply)
		}
		r3 := <-goExchange(ss, cmdIdle, 8, []byte{0})
		if string(r3.reply[1:]) != "second" {
			t.Fatalf("next request got %q", r3.reply)
		}
		// The retried body was applied once.
		buf := make([]byte, 16)
		n, _ := ss.Read(buf)
		if string(buf[:n]) != "abc" {
			t.Fatalf("core read %q, want abc once", buf[:n])
		}
		// A retry older than the cache: its reply (and the bytes it
		// carried) is gone, and the client hears so.
		for seq := uint64(9); seq < 9+replyCache+2; seq++ {
			<-goExchange(ss, cmdIdle, seq, []byte{0})
		}
		if r := <-goExchange(ss, cmdIdle, 8, []byte{0}); r.status != 410 {
			t.Fatalf("old idle: %d %q, want 410", r.status, r.reply)
		}
		if r := <-goExchange(ss, cmdSend, 8, []byte("zz")); r.status != 410 {
			t.Fatalf("old send: status %d, want 410", r.status)
		}
		// An idle from before the origin was never answered: empty 200.
		if r := <-goExchange(ss, cmdIdle, 3, []byte{0}); r.status != 200 || len(r.reply) != 1 {
			t.Fatalf("idle before the origin: %d %q", r.status, r.reply)
		}
	})
}

func TestReorderWithinWindow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, ss := testSession(t, Config{HoldTime: -1, SendLinger: -1})
		<-goExchange(ss, cmdSend, 0, []byte("a"))
		// 3 and 2 arrive before 1.
		r3 := goExchange(ss, cmdSend, 3, []byte("d"))
		r2 := goExchange(ss, cmdSend, 2, []byte("c"))
		synctest.Wait()
		<-goExchange(ss, cmdSend, 1, []byte("b"))
		for _, r := range []exchangeResult{<-r2, <-r3} {
			if r.status != 200 {
				t.Fatalf("reordered send: status %d", r.status)
			}
		}
		buf := make([]byte, 16)
		var got []byte
		for len(got) < 4 {
			n, _ := ss.Read(buf)
			got = append(got, buf[:n]...)
		}
		if string(got) != "abcd" {
			t.Fatalf("core read %q, want abcd", got)
		}
		// Too far ahead.
		if r := <-goExchange(ss, cmdSend, 4+seqWindow, []byte("x")); r.status != 400 {
			t.Fatalf("out of window: %d", r.status)
		}
		// A gap that never fills is refused after gapWait.
		r := <-goExchange(ss, cmdSend, 6, []byte("x"))
		if r.status != 409 || r.took != gapWait {
			t.Fatalf("gap: status %d after %v", r.status, r.took)
		}
	})
}

func TestLaterRequestReleasesHeldPoll(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, ss := testSession(t, Config{HoldTime: 500 * time.Millisecond, SendLinger: -1})
		held := goExchange(ss, cmdIdle, 0, []byte{0})
		time.Sleep(10 * time.Millisecond)
		send := goExchange(ss, cmdSend, 1, []byte("x"))
		r := <-held
		if r.took != 10*time.Millisecond {
			t.Fatalf("held poll released after %v, want at once when seq 1 arrived", r.took)
		}
		if s := <-send; s.status != 200 {
			t.Fatalf("send: %d", s.status)
		}
	})
}

func TestWriteBackPressure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, ss := testSession(t, Config{MaxPending: 1000, HoldTime: -1})
		data := bytes.Repeat([]byte("0123456789"), 250) // 2500 bytes
		ss.SetWriteDeadline(time.Now().Add(time.Second))
		type wr struct {
			n   int
			err error
		}
		done := make(chan wr, 1)
		go func() {
			n, err := ss.Write(data)
			done <- wr{n, err}
		}()
		synctest.Wait()
		select {
		case w := <-done:
			t.Fatalf("write of 2500 bytes into 1000 returned %d, %v", w.n, w.err)
		default:
		}
		// Each poll takes what is pending; the writer goes on.
		var got []byte
		for seq := uint64(0); len(got) < len(data); seq++ {
			r := <-goExchange(ss, cmdIdle, seq, []byte{0})
			if len(r.reply)-1 > 1000 {
				t.Fatalf("reply of %d bytes over the pending limit", len(r.reply)-1)
			}
			got = append(got, r.reply[1:]...)
			synctest.Wait()
		}
		if w := <-done; w.err != nil || w.n != len(data) || !bytes.Equal(got, data) {
			t.Fatalf("write %d, %v; polls got %d bytes intact=%v", w.n, w.err, len(got), bytes.Equal(got, data))
		}
		// Nobody polls: the write times out with what fitted, nothing lost.
		start := time.Now()
		n, err := ss.Write(data)
		var ne net.Error
		if n != 1000 || !errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("stalled write: %d, %v", n, err)
		}
		if took := time.Since(start); took != time.Second {
			t.Fatalf("stalled write took %v, want the deadline's 1s", took)
		}
	})
}

func TestDeadlinesWork(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, ss := testSession(t, Config{})
		buf := make([]byte, 8)
		// A deadline in the past fails at once.
		ss.SetReadDeadline(time.Now().Add(-time.Second))
		if _, err := ss.Read(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("past deadline: %v", err)
		}
		// A blocked read whose deadline moves later waits for the new one.
		ss.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		start := time.Now()
		errc := make(chan error, 1)
		go func() {
			_, err := ss.Read(buf)
			errc <- err
		}()
		time.Sleep(50 * time.Millisecond)
		ss.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		if err := <-errc; !errors.Is(err, os.ErrDeadlineExceeded) || time.Since(start) != 250*time.Millisecond {
			t.Fatalf("moved deadline: %v after %v", err, time.Since(start))
		}
		// Clearing it: a read blocks until data comes.
		ss.SetDeadline(time.Time{})
		go func() {
			time.Sleep(time.Second)
			ss.exchange(nil, nil, nil, cmdSend, 0, []byte("late"))
		}()
		n, err := ss.Read(buf)
		if err != nil || string(buf[:n]) != "late" {
			t.Fatalf("read after clearing the deadline: %q, %v", buf[:n], err)
		}
		// Deadlines after Close never panic.
		ss.Close()
		ss.SetDeadline(time.Now().Add(time.Second))
		ss.SetReadDeadline(time.Time{})
		if _, err := ss.Read(buf); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("read after close: %v", err)
		}
		if _, err := ss.Write(buf); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("write after close: %v", err)
		}
	})
}

func TestClientCloseAndSilenceGiveEOF(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, ss := testSession(t, Config{SessionTimeout: 2 * time.Second, HoldTime: -1, SendLinger: -1})
		<-goExchange(ss, cmdSend, 0, []byte("bye"))
		ss.end(errClientClosed)
		buf := make([]byte, 8)
		n, err := ss.Read(buf)
		if string(buf[:n]) != "bye" || err != nil {
			t.Fatalf("read after client close: %q %v", buf[:n], err)
		}
		if _, err := ss.Read(buf); err != io.EOF {
			t.Fatalf("then %v, want EOF", err)
		}
		if s.lookup(ss.id) != nil {
			t.Fatal("closed session still in the table")
		}

		// Silence: the janitor ends the session after the timeout.
		ss2 := newRTMPTSession(s, newSessionID(""), "127.0.0.1", Info{}, ss.local, ss.remote)
		s.mu.Lock()
		s.sessions[ss2.id] = ss2
		s.mu.Unlock()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go s.janitor(ctx)
		start := time.Now()
		if _, err := ss2.Read(buf); err != io.EOF {
			t.Fatalf("silent session read: %v", err)
		}
		if took := time.Since(start); took < 2*time.Second || took > 3*time.Second {
			t.Fatalf("silent session ended after %v, want about 2s", took)
		}
		s.mu.Lock()
		left, ips := len(s.sessions), len(s.perIP)
		s.mu.Unlock()
		if left != 0 || ips != 0 {
			t.Fatalf("tables not empty: %d sessions, %d addresses", left, ips)
		}
	})
}

func TestServerCloseDeliversPendingBytes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, ss := testSession(t, Config{HoldTime: time.Second})
		held := goExchange(ss, cmdIdle, 0, []byte{0})
		synctest.Wait()
		ss.Write([]byte("_error"))
		ss.Close()
		r := <-held
		if string(r.reply[1:]) != "_error" {
			t.Fatalf("last reply %q", r.reply)
		}
		if r.reply[0] != 0 {
			t.Fatalf("last reply interval %d, want 0 (closing)", r.reply[0])
		}
		if s.lookup(ss.id) != nil {
			t.Fatal("drained closed session still in the table")
		}
		// Closed with nothing pending: a held poll is answered at once.
		_, ss2 := testSession(t, Config{HoldTime: time.Second})
		held = goExchange(ss2, cmdIdle, 0, []byte{0})
		time.Sleep(10 * time.Millisecond)
		ss2.Close()
		if r := <-held; r.took != 10*time.Millisecond || len(r.reply) != 1 || r.reply[0] != 0 {
			t.Fatalf("held poll on close: %q after %v", r.reply, r.took)
		}
	})
}

func TestInboundBackPressure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, ss := testSession(t, Config{MaxPending: 100, SendLinger: -1})
		big := bytes.Repeat([]byte{'x'}, 150)
		if r := <-goExchange(ss, cmdSend, 0, big); r.status != 200 {
			t.Fatalf("first send: %d", r.status)
		}
		// The core has not read: the next send waits, then gets in when
		// the core reads.
		res := goExchange(ss, cmdSend, 1, []byte("y"))
		time.Sleep(time.Second)
		synctest.Wait()
		select {
		case r := <-res:
			t.Fatalf("send over the inbound limit answered: %+v", r)
		default:
		}
		buf := make([]byte, 200)
		ss.Read(buf)
		if r := <-res; r.status != 200 {
			t.Fatalf("send after the core read: %d", r.status)
		}
		// A core that never reads: the send is refused after inboundWait.
		<-goExchange(ss, cmdSend, 2, big)
		if r := <-goExchange(ss, cmdSend, 3, []byte("z")); r.status != 429 || r.took != inboundWait {
			t.Fatalf("stuck core: %d after %v", r.status, r.took)
		}
	})
}

func TestConcurrentUseIsSafe(t *testing.T) {
	// Many goroutines polling, sending, writing, reading and moving
	// deadlines at once, for the race detector.
	_, ss := testSession(t, Config{HoldTime: 5 * time.Millisecond, MaxPending: 4096})
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(3)
	go func() {
		defer wg.Done()
		buf := make([]byte, 512)
		for {
			select {
			case <-stop:
				return
			default:
			}
			ss.SetReadDeadline(time.Now().Add(time.Millisecond))
			ss.Read(buf)
		}
	}()
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			ss.SetWriteDeadline(time.Now().Add(time.Millisecond))
			ss.Write(make([]byte, 1000))
		}
	}()
	go func() {
		defer wg.Done()
		for seq := uint64(0); ; seq++ {
			select {
			case <-stop:
				return
			default:
			}
			cmd := cmdIdle
			if seq%3 == 0 {
				cmd = cmdSend
			}
			r, st := ss.exchange(nil, nil, nil, cmd, seq, []byte("abc"))
			if st != 200 || len(r) == 0 {
				t.Errorf("seq %d: status %d", seq, st)
				return
			}
			if seq%5 == 0 { // a retry
				ss.exchange(nil, nil, nil, cmd, seq, []byte("abc"))
			}
		}
	}()
	time.Sleep(300 * time.Millisecond)
	close(stop)
	ss.Close()
	wg.Wait()
}

func TestFirstRequestOvertaken(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// A client opens with an idle (seq 1) and a send (seq 0) on two
		// connections, and the idle arrives first.
		_, ss := testSession(t, Config{HoldTime: 200 * time.Millisecond, SendLinger: -1})
		idle := goExchange(ss, cmdIdle, 1, []byte{0})
		synctest.Wait()
		send := <-goExchange(ss, cmdSend, 0, []byte("C0C1"))
		if send.status != 200 || len(send.reply) != 1 {
			t.Fatalf("overtaken send: %d %q", send.status, send.reply)
		}
		if again := <-goExchange(ss, cmdSend, 0, []byte("C0C1")); !bytes.Equal(again.reply, send.reply) {
			t.Fatalf("retry of the overtaken send: %q", again.reply)
		}
		buf := make([]byte, 16)
		n, _ := ss.Read(buf)
		if string(buf[:n]) != "C0C1" {
			t.Fatalf("core read %q, want the overtaken send's body once", buf[:n])
		}
		ss.Write([]byte("S0S1"))
		if r := <-idle; string(r.reply[1:]) != "S0S1" {
			t.Fatalf("held idle: %q", r.reply)
		}
		// Once a body from the origin on is in the stream, an older send
		// can no longer be placed.
		_, ss2 := testSession(t, Config{HoldTime: -1, SendLinger: -1})
		<-goExchange(ss2, cmdSend, 5, []byte("later"))
		if r := <-goExchange(ss2, cmdSend, 4, []byte("earlier")); r.status != 410 {
			t.Fatalf("send before a placed body: %d", r.status)
		}
	})
}

func TestRepliesReadOnAConnectionAreNotKept(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, ss := testSession(t, Config{HoldTime: -1, SendLinger: -1})
		a, b, c, d, e := new(int), new(int), new(int), new(int), new(int)
		ss.Write([]byte("zero"))
		r0, _ := ss.exchange(nil, a, nil, cmdIdle, 0, []byte{0})
		ss.Write([]byte("one"))
		ss.exchange(nil, b, nil, cmdIdle, 1, []byte{0})
		// Seq 1 came on another connection: reply 0 may be unread yet.
		if r, st := ss.exchange(nil, c, nil, cmdIdle, 0, []byte{0}); st != 200 || !bytes.Equal(r, r0) {
			t.Fatalf("retry of 0: %d %q", st, r)
		}
		// Reply 0 was last sent on c, reply 1 on b: a request on a does
		// not release them.
		ss.exchange(nil, a, nil, cmdIdle, 2, []byte{0})
		if _, st := ss.exchange(nil, d, nil, cmdIdle, 1, []byte{0}); st != 200 {
			t.Fatalf("retry of 1: %d", st)
		}
		// Reply 1 was last sent on d; the next request on d shows it was
		// read there, and it is dropped. Reply 2 (sent on a) is kept.
		ss.exchange(nil, d, nil, cmdIdle, 3, []byte{0})
		if _, st := ss.exchange(nil, e, nil, cmdIdle, 1, []byte{0}); st != 410 {
			t.Fatalf("retry of 1 after d moved on: %d, want 410", st)
		}
		if _, st := ss.exchange(nil, e, nil, cmdIdle, 2, []byte{0}); st != 200 {
			t.Fatalf("retry of 2: %d", st)
		}
	})
}

func TestTryWriteBuffersTakesWhatFits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, ss := testSession(t, Config{HoldTime: -1, SendLinger: -1, MaxPending: 10})
		n, err := ss.TryWriteBuffers([][]byte{[]byte("hello"), []byte("world!")})
		if err != nil || n != 10 {
			t.Fatalf("first write took %d (%v), want 10", n, err)
		}
		if n, err := ss.TryWriteBuffers([][]byte{[]byte("more")}); err != nil || n != 0 {
			t.Fatalf("write to a full session took %d (%v), want 0", n, err)
		}
		r, st := ss.exchange(nil, nil, nil, cmdIdle, 0, []byte{0})
		if st != 200 || string(r[1:]) != "helloworld" {
			t.Fatalf("reply %q status %d", r, st)
		}
		if n, err := ss.TryWriteBuffers([][]byte{[]byte("!")}); err != nil || n != 1 {
			t.Fatalf("write after a poll took %d (%v), want 1", n, err)
		}
		ss.end(errClientClosed)
		if _, err := ss.TryWriteBuffers([][]byte{[]byte("x")}); err == nil {
			t.Fatal("write after the client left succeeded")
		}
	})
}

// A reply buffer goes back for reuse only once its connection carried a
// later request; replies never change under a client that may still read
// them.
func TestReusedReplyBuffersNeverChangeASentReply(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, ss := testSession(t, Config{HoldTime: -1, SendLinger: -1})
		a, b := new(int), new(int)
		var kept [][]byte
		var want []string
		for seq := range uint64(40) {
			payload := bytes.Repeat([]byte{byte('a' + seq%26)}, 100+int(seq))
			if n, err := ss.TryWriteBuffers([][]byte{payload}); err != nil || n != len(payload) {
				t.Fatal(n, err)
			}
			via := any(a)
			if seq%3 == 0 {
				via = b // b carries a later request only every third time
			}
			r, st := ss.exchange(nil, via, nil, cmdIdle, seq, []byte{0})
			if st != 200 {
				t.Fatal(st)
			}
			if via == any(b) {
				kept = append(kept, r)
				want = append(want, string(r))
			}
		}
		// The last reply on b has not been released: it is intact.
		if got := string(kept[len(kept)-1]); got != want[len(want)-1] {
			t.Fatalf("reply changed after it was sent")
		}
	})
}

func TestLazyDeadline(t *testing.T) {
	var applied []time.Time
	set := func(t time.Time) error { applied = append(applied, t); return nil }
	var cur time.Time
	now := time.Now()
	lazyDeadline(&cur, now.Add(30*time.Second), set)
	if len(applied) != 1 || applied[0].Before(now.Add(30*time.Second)) {
		t.Fatalf("first deadline: %v", applied)
	}
	// Asked again a moment later: kept (it is late by less than a quarter).
	lazyDeadline(&cur, now.Add(30*time.Second+time.Millisecond), set)
	if len(applied) != 1 {
		t.Fatalf("a deadline barely later was applied: %v", applied)
	}
	// An earlier deadline is applied: a timeout never fires late by more than a quarter.
	lazyDeadline(&cur, now.Add(5*time.Second), set)
	if len(applied) != 2 || applied[1].After(now.Add(5*time.Second+5*time.Second/4)) {
		t.Fatalf("earlier deadline: %v", applied)
	}
	// A deadline in the past is applied as it is, at once.
	past := now.Add(-time.Second)
	lazyDeadline(&cur, past, set)
	if len(applied) != 3 || !applied[2].Equal(past) {
		t.Fatalf("past deadline: %v", applied)
	}
	// Zero clears, once.
	lazyDeadline(&cur, time.Time{}, set)
	lazyDeadline(&cur, time.Time{}, set)
	if len(applied) != 4 || !applied[3].IsZero() {
		t.Fatalf("clearing: %v", applied)
	}
}

// The janitor sleeps while there is no session, and a session opened
// meanwhile still ends after the timeout of silence.
func TestJanitorSleepsWithoutSessions(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ended := make(chan time.Time, 1)
		s := NewServer(Config{SessionTimeout: 2 * time.Second, HoldTime: -1, SendLinger: -1},
			func(_ context.Context, c net.Conn, _ Info) {
				io.Copy(io.Discard, c)
				ended <- time.Now()
			})
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		s.runCtx = ctx
		go s.janitor(ctx)
		time.Sleep(time.Minute)
		synctest.Wait()
		start := time.Now()
		addr := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}
		if _, status := s.openSession(addr.AddrPort(), addr, false, nil, nil); status != 200 {
			t.Fatalf("open: %d", status)
		}
		took := (<-ended).Sub(start)
		if took < 2*time.Second || took > 3*time.Second {
			t.Fatalf("silent session ended after %v, want about 2s", took)
		}
		// Empty again: asleep until the next session.
		time.Sleep(time.Minute)
		cancel()
		s.sessWG.Wait()
	})
}
