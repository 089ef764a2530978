// Package deadline holds the read and write deadlines of the tunnel
// packages' virtual connections (RTMPT sessions and dialers, RoQR
// connections that read from QUIC DATAGRAMs too): connections whose reads
// and writes wait on channels, not on a socket that keeps its own
// deadlines. A Deadline never panics, whatever the order of calls, so
// that no SetDeadline of theirs panics or lies.
package deadline

import (
	"sync"
	"sync/atomic"
	"time"
)

// Deadline is one read or write deadline of a virtual connection: a
// channel that is closed when the deadline passes, re-armed by every Set.
// It never panics, whatever the order of calls, and a deadline in the past
// closes the channel at once, as net.Conn documents.
type Deadline struct {
	mu    sync.Mutex
	timer *time.Timer
	ch    chan struct{} // closed when the deadline has passed
	// cur is ch for Wait and Expired, read without the lock: an RTMPT
	// session checks its write deadline at every write of every frame.
	cur atomic.Pointer[chan struct{}]
}

// New returns a Deadline that is not set.
func New() *Deadline {
	d := &Deadline{}
	d.renew()
	return d
}

// renew gives the deadline a fresh channel; d.mu is held (or d is new).
func (d *Deadline) renew() {
	ch := make(chan struct{})
	d.ch = ch
	d.cur.Store(&ch)
}

// Set moves the deadline to t; the zero time means none. The channel is
// replaced only once it has been closed, so a goroutine waiting on it while
// the deadline moves later keeps waiting on the right channel.
func (d *Deadline) Set(t time.Time) {
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
			d.renew()
		}
		return
	}
	if dur := time.Until(t); dur > 0 {
		if closed {
			d.renew()
		}
		ch := d.ch
		d.timer = time.AfterFunc(dur, func() { close(ch) })
		return
	}
	if !closed {
		close(d.ch)
	}
}

// Wait returns a channel closed once the deadline has passed.
func (d *Deadline) Wait() <-chan struct{} { return *d.cur.Load() }

// Expired reports whether the deadline has passed.
func (d *Deadline) Expired() bool {
	select {
	case <-d.Wait():
		return true
	default:
		return false
	}
}

// Stop releases the timer.
func (d *Deadline) Stop() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil {
		d.timer.Stop()
		d.timer = nil
	}
}
