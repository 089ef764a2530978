package session

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"time"
)

// The idle timeout (Config.ClientIdleTimeout) drops a connected client that
// sends nothing for that long while it is quiet: no stream publishing or
// playing, no shared object in use, no call in flight either way. It costs
// no goroutine and no timer of its own: it is the transport's read
// deadline, armed when the client turns quiet and cleared when it stops
// being so. With the setting off nothing here runs, and a silent client
// is kept for ever, as before.
//
// The reader goroutine knows the streams and shared objects; the calls
// change on other goroutines (a script answering later, a server call
// answered or timed out). Both sides meet under idleState.mu, which also
// orders their SetReadDeadline calls. A publisher's reads keep
// Config.PublisherIdleTimeout's deadline (handle.go): a publisher is never
// quiet, so this code leaves its deadline alone.
type idleState struct {
	mu    sync.Mutex
	quiet bool // no stream, no shared object, as of the last message (reader)
	calls int  // calls in flight, both directions
	armed bool // the read deadline is the idle one
}

// errIdle is the reason an idle client is closed with (logs, access log).
type errIdle time.Duration

func (e errIdle) Error() string {
	return fmt.Sprintf("idle timeout: no message for %v", time.Duration(e))
}

func (c *Client) idleOn() bool { return c.srv.cfg.ClientIdleTimeout > 0 }

// armLocked sets the read deadline from the state.
func (c *Client) idleArmLocked() {
	if c.idle.quiet && c.idle.calls == 0 {
		c.idle.armed = true
		c.t.SetReadDeadline(time.Now().Add(c.srv.cfg.ClientIdleTimeout))
		return
	}
	c.idle.armed = false
	c.t.SetReadDeadline(time.Time{})
}

// idleBeforeMessage runs on the reader goroutine when a message arrived:
// while it is handled the client is not quiet, so that a call finishing
// meanwhile does not arm the deadline under a publish the message starts.
func (c *Client) idleBeforeMessage() {
	if c.publishTimeout || !c.connected {
		return // not quiet already; before connect the handshake deadline runs
	}
	c.idle.mu.Lock()
	c.idle.quiet = false
	c.idle.mu.Unlock()
}

// idleAfterMessage runs on the reader goroutine after a message was
// handled: the idle clock restarts, or stops while the client is busy.
func (c *Client) idleAfterMessage() {
	if c.publishTimeout || !c.connected {
		return
	}
	quiet := c.soInUse() == 0
	for _, ns := range c.streams {
		if ns.pub != nil || ns.player != nil || ns.vod != nil {
			quiet = false
			break
		}
	}
	c.idle.mu.Lock()
	c.idle.quiet = quiet
	c.idleArmLocked()
	c.idle.mu.Unlock()
}

// idleCall counts a call starting (+1) or ending (-1), in either
// direction. A quiet client's clock stops while it has a call in flight
// and restarts when the last one ends.
func (c *Client) idleCall(d int) {
	if !c.idleOn() {
		return
	}
	c.idle.mu.Lock()
	c.idle.calls += d
	if c.idle.quiet && (d > 0 && c.idle.calls == 1 || d < 0 && c.idle.calls == 0) {
		c.idleArmLocked()
	}
	c.idle.mu.Unlock()
}

// idleExpired reports whether read error err is the idle deadline firing.
func (c *Client) idleExpired(err error) bool {
	var ne net.Error
	if !c.idleOn() || !errors.As(err, &ne) || !ne.Timeout() {
		return false
	}
	c.idle.mu.Lock()
	defer c.idle.mu.Unlock()
	return c.idle.armed && c.idle.quiet && c.idle.calls == 0
}

// closeIdle tells the client why it is dropped, as FMS did
// (NetConnection.Connect.IdleTimeout, then the connection closes), and
// closes it once that is written. It runs on the reader goroutine, which
// then reads on only until the writer has closed the connection (at most
// the stall timeout), dropping what arrives.
func (c *Client) closeIdle() {
	reason := errIdle(c.srv.cfg.ClientIdleTimeout)
	c.log.Info("idle client disconnected", "idle", c.srv.cfg.ClientIdleTimeout.String())
	c.sendStatus(0, levelStatus, "NetConnection.Connect.IdleTimeout",
		fmt.Sprintf("Connection closed: idle for %v.", c.srv.cfg.ClientIdleTimeout), "")
	c.closeWhenWritten(reason)
	c.t.SetReadDeadline(time.Now().Add(c.srv.cfg.StallTimeout))
	for {
		if _, err := c.t.ReadMessage(); err != nil {
			break
		}
	}
	c.close(reason) // the writer closed it already, unless it failed
}
