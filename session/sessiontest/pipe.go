package sessiontest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rtmphub/rtmphub/session"
)

// pipes maps the host of each running StartPipe server to its dialer, so
// that Dial, Publish and Play reach it from its URL as they reach a TCP
// server. Entries live as long as their test.
var pipes sync.Map // host → func(context.Context, string) (net.Conn, error)

var pipeServers atomic.Uint64

// StartPipe is Start over in-memory connections instead of TCP, for tests
// run inside a testing/synctest bubble, where time is virtual: a test can
// let a publisher fall silent or a disk be slow for seconds of fake time,
// and synctest.Wait returns once the server has done all it can. Call it
// inside the bubble; the test's cleanup shuts the server down. The
// returned URL works with Dial, TryDial, Publish and Play of this package
// (client.Dial needs TryDial's dialer).
//
// Each connection buffers up to PipeBuffer bytes each way, as a socket
// does: a client that sends without reading (a publisher never reads the
// acknowledgements) is not held up until that fills.
func StartPipe(t testing.TB, mk func(log *slog.Logger) session.Config) (string, *session.Server, *LogBuffer) {
	t.Helper()
	srv, _, logs := newServer(t, mk)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var port atomic.Uint32
	host := fmt.Sprintf("pipe%d.sessiontest.invalid:1935", pipeServers.Add(1))
	pipes.Store(host, func(_ context.Context, addr string) (net.Conn, error) {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("dial %s: %w", addr, net.ErrClosed)
		}
		// Client addresses are loopback ones, as with Start.
		p := int(port.Add(1))
		cc, sc := Pipe(&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000 + p}, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1935})
		wg.Go(func() { srv.ServeConn(ctx, sc, session.ConnInfo{Protocol: "rtmp"}) })
		return cc, nil
	})
	t.Cleanup(func() {
		pipes.Delete(host)
		// Shutdown also stops the applications, whose goroutines (a
		// script's, say) must end before the bubble does.
		stop, done := context.WithTimeout(context.Background(), 5*time.Second)
		defer done()
		if err := srv.Shutdown(stop); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		cancel()
		wg.Wait()
	})
	return "rtmp://" + host, srv, logs
}

// PipeBuffer is how many bytes a Pipe connection holds each way before a
// write blocks.
const PipeBuffer = 256 << 10

// Pipe returns the two ends of an in-memory connection, as net.Pipe does,
// but with PipeBuffer bytes of buffer each way and the given addresses.
// Its blocking operations wait on channels, so inside a testing/synctest
// bubble they are durably blocking and its deadlines run on fake time.
// Unlike net.Pipe it takes no lock across a blocked Write (a goroutine
// waiting for a lock is not durably blocked, and fake time would stop):
// writers of one end must take turns, as rtmp.Conn's do.
func Pipe(a, b net.Addr) (net.Conn, net.Conn) {
	ab, ba := newPipeBuf(), newPipeBuf()
	ca := &pipeConn{rx: ba, tx: ab, local: a, remote: b, rd: newDeadline(), wd: newDeadline(), done: make(chan struct{})}
	cb := &pipeConn{rx: ab, tx: ba, local: b, remote: a, rd: newDeadline(), wd: newDeadline(), done: make(chan struct{})}
	return ca, cb
}

// pipeBuf is one direction of a pipe.
type pipeBuf struct {
	mu      sync.Mutex
	b       []byte
	closed  bool          // the writing end closed
	gone    bool          // the reading end closed
	changed chan struct{} // closed and replaced at every change
}

func newPipeBuf() *pipeBuf { return &pipeBuf{changed: make(chan struct{})} }

// notifyLocked wakes the waiters; p.mu is held.
func (p *pipeBuf) notifyLocked() {
	close(p.changed)
	p.changed = make(chan struct{})
}

type pipeConn struct {
	rx, tx        *pipeBuf
	local, remote net.Addr
	rd, wd        *deadline
	closeOnce     sync.Once
	done          chan struct{}
}

func (c *pipeConn) Read(b []byte) (int, error) {
	for {
		c.rx.mu.Lock()
		switch {
		case c.isClosed():
			c.rx.mu.Unlock()
			return 0, net.ErrClosed
		case len(c.rx.b) > 0:
			n := copy(b, c.rx.b)
			c.rx.b = c.rx.b[n:]
			c.rx.notifyLocked()
			c.rx.mu.Unlock()
			return n, nil
		case c.rx.closed:
			c.rx.mu.Unlock()
			return 0, io.EOF
		}
		changed := c.rx.changed
		c.rx.mu.Unlock()
		if len(b) == 0 {
			return 0, nil
		}
		select {
		case <-changed:
		case <-c.rd.wait():
			return 0, os.ErrDeadlineExceeded
		case <-c.done:
		}
	}
}

func (c *pipeConn) Write(b []byte) (int, error) {
	written := 0
	for {
		c.tx.mu.Lock()
		switch {
		case c.isClosed():
			c.tx.mu.Unlock()
			return written, net.ErrClosed
		case c.tx.gone:
			c.tx.mu.Unlock()
			return written, io.ErrClosedPipe
		}
		if room := PipeBuffer - len(c.tx.b); room > 0 && written < len(b) {
			n := min(room, len(b)-written)
			c.tx.b = append(c.tx.b, b[written:written+n]...)
			written += n
			c.tx.notifyLocked()
		}
		if written == len(b) {
			c.tx.mu.Unlock()
			return written, nil
		}
		changed := c.tx.changed
		c.tx.mu.Unlock()
		select {
		case <-changed:
		case <-c.wd.wait():
			return written, os.ErrDeadlineExceeded
		case <-c.done:
		}
	}
}

func (c *pipeConn) isClosed() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

func (c *pipeConn) Close() error {
	c.closeOnce.Do(func() {
		close(c.done)
		for _, p := range []*pipeBuf{c.rx, c.tx} {
			p.mu.Lock()
			if p == c.tx {
				p.closed = true
			} else {
				p.gone = true
				p.b = nil
			}
			p.notifyLocked()
			p.mu.Unlock()
		}
	})
	return nil
}

func (c *pipeConn) LocalAddr() net.Addr  { return c.local }
func (c *pipeConn) RemoteAddr() net.Addr { return c.remote }

func (c *pipeConn) SetDeadline(t time.Time) error {
	c.rd.set(t)
	c.wd.set(t)
	return nil
}

func (c *pipeConn) SetReadDeadline(t time.Time) error  { c.rd.set(t); return nil }
func (c *pipeConn) SetWriteDeadline(t time.Time) error { c.wd.set(t); return nil }

// deadline is a deadline as a channel closed when it passes (as in
// net.Pipe).
type deadline struct {
	mu     sync.Mutex
	timer  *time.Timer
	passed chan struct{}
}

func newDeadline() *deadline { return &deadline{passed: make(chan struct{})} }

func (d *deadline) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil && !d.timer.Stop() {
		<-d.passed // the timer fired: its function closes passed
	}
	d.timer = nil
	closed := isDone(d.passed)
	if t.IsZero() {
		if closed {
			d.passed = make(chan struct{})
		}
		return
	}
	if dur := time.Until(t); dur > 0 {
		if closed {
			d.passed = make(chan struct{})
		}
		passed := d.passed
		d.timer = time.AfterFunc(dur, func() { close(passed) })
		return
	}
	if !closed {
		close(d.passed)
	}
}

func (d *deadline) wait() chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.passed
}

func isDone(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}
