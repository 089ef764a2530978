package sessiontest

import (
	"testing"
	"time"
)

// Poll checks cond until it holds or timeout passes and reports whether it
// held. It looks again after 5 ms, then less and less often, up to every
// 50 ms: quick for state that is nearly there, light on a busy machine for
// state that takes seconds (a scraped metric, a process's sockets). For
// waits on state nothing announces (a file on disk, a counter, a view); a
// test that can wait for a message or a log line should.
func Poll(timeout time.Duration, cond func() bool) bool {
	if cond() {
		return true
	}
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	every := 5 * time.Millisecond
	next := time.NewTimer(every)
	defer next.Stop()
	for {
		select {
		case <-next.C:
			if cond() {
				return true
			}
			every = min(2*every, 50*time.Millisecond)
			next.Reset(every)
		case <-deadline.C:
			return cond()
		}
	}
}

// Eventually is Poll that ends the test, saying what it waited for, when
// cond does not hold within timeout.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	if !Poll(timeout, cond) {
		t.Fatalf("timed out after %v waiting for %s", timeout, what)
	}
}
