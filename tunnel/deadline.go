package tunnel

import (
	"net"
	"os"
	"sync"
	"time"
)

// deadline is one read or write deadline of a virtual connection: a channel
// that is closed when the deadline passes, re-armed by every set. It never
// panics, whatever the order of calls, and a deadline in the past closes
// the channel at once, as net.Conn documents.
type deadline struct {
	mu    sync.Mutex
	timer *time.Timer
	ch    chan struct{} // closed when the deadline has passed
}

func newDeadline() *deadline { return &deadline{ch: make(chan struct{})} }

// set moves the deadline to t; the zero time means none. The channel is
// replaced only once it has been closed, so a goroutine waiting on it while
// the deadline moves later keeps waiting on the right channel.
func (d *deadline) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil && !d.timer.Stop() {
		<-d.ch // the timer fired: wait for its callback to close ch
	}
	d.timer = nil
	closed := false
	select {
	case <-d.ch:
		closed = true
	default:
	}
	if t.IsZero() {
		if closed {
			d.ch = make(chan struct{})
		}
		return
	}
	if dur := time.Until(t); dur > 0 {
		if closed {
			d.ch = make(chan struct{})
		}
		ch := d.ch
		d.timer = time.AfterFunc(dur, func() { close(ch) })
		return
	}
	if !closed {
		close(d.ch)
	}
}

// wait returns a channel closed once the deadline has passed.
func (d *deadline) wait() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.ch
}

// expired reports whether the deadline has passed.
func (d *deadline) expired() bool {
	select {
	case <-d.wait():
		return true
	default:
		return false
	}
}

// stop releases the timer.
func (d *deadline) stop() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil {
		d.timer.Stop()
		d.timer = nil
	}
}

// signal wakes the goroutines waiting for one condition of a structure
// guarded by a mutex: waiters take the channel under the mutex, release
// the mutex and wait; fire (under the mutex) closes it. A channel is only
// made when somebody waits, so firing a condition nobody watches is free.
type signal struct {
	ch chan struct{}
}

// wait returns the channel to wait on; call with the guarding mutex held.
func (s *signal) wait() <-chan struct{} {
	if s.ch == nil {
		s.ch = make(chan struct{})
	}
	return s.ch
}

// fire wakes every waiter; call with the guarding mutex held.
func (s *signal) fire() {
	if s.ch != nil {
		close(s.ch)
		s.ch = nil
	}
}

// opError wraps err as the net package does, so that callers testing for
// net.Error, os.ErrDeadlineExceeded or net.ErrClosed find what they expect.
func opError(op, network string, addr net.Addr, err error) error {
	return &net.OpError{Op: op, Net: network, Addr: addr, Err: err}
}

// errTimeout is returned by reads and writes whose deadline has passed; it
// is a net.Error with Timeout() true.
var errTimeout = os.ErrDeadlineExceeded
