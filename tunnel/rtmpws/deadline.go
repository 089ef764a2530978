package rtmpws

import (
	"sync"
	"time"
)

// deadline is one direction's deadline of a Conn: a channel that is
// closed when it passes, and made anew when the deadline is moved after
// that, so that a deadline that passed leaves the connection usable once
// it is moved (as a socket's does). It is tunnel/internal/deadline's
// Deadline plus a callback when it passes: a write deadline passing
// during a write must cancel that write's context at once (coder/websocket
// waits on a context, not on a channel), without a goroutine per write.
type deadline struct {
	mu       sync.Mutex
	ch       chan struct{} // closed once the deadline passed
	timer    *time.Timer
	gen      uint64 // which set the running timer belongs to
	onExpire func() // run when the deadline passes (nil: nothing)
}

func newDeadline(onExpire func()) *deadline {
	return &deadline{ch: make(chan struct{}), onExpire: onExpire}
}

// set moves the deadline to t; the zero time means none.
func (d *deadline) set(t time.Time) {
	d.mu.Lock()
	d.gen++
	if d.timer != nil {
		d.timer.Stop() // a callback already running finds gen moved on
		d.timer = nil
	}
	select {
	case <-d.ch:
		d.ch = make(chan struct{})
	default:
	}
	if t.IsZero() {
		d.mu.Unlock()
		return
	}
	wait := time.Until(t)
	if wait <= 0 {
		close(d.ch)
		d.mu.Unlock()
		if d.onExpire != nil {
			d.onExpire()
		}
		return
	}
	gen := d.gen
	d.timer = time.AfterFunc(wait, func() { d.fire(gen) })
	d.mu.Unlock()
}

func (d *deadline) fire(gen uint64) {
	d.mu.Lock()
	if d.gen != gen {
		d.mu.Unlock()
		return
	}
	d.timer = nil
	select {
	case <-d.ch:
	default:
		close(d.ch)
	}
	d.mu.Unlock()
	if d.onExpire != nil {
		d.onExpire()
	}
}

// wait returns the channel that closes when the deadline passes.
func (d *deadline) wait() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.ch
}

// passed reports whether the deadline has passed.
func (d *deadline) passed() bool {
	select {
	case <-d.wait():
		return true
	default:
		return false
	}
}
