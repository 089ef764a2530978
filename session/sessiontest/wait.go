package sessiontest

import (
	"testing"
	"time"
)

// pollEvery is how often Poll and Eventually look: short against the
// waits of the tests, long enough not to load a busy machine.
const pollEvery = 10 * time.Millisecond

// Poll checks cond until it holds or timeout passes and reports whether it
// held. For waits on state nothing announces (a file on disk, a counter, a
// view); a test that can wait for a message or a log line should.
func Poll(timeout time.Duration, cond func() bool) bool {
	if cond() {
		return true
	}
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			if cond() {
				return true
			}
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
