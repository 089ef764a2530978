package tunnel

import (
	"net"
	"os"
)

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
