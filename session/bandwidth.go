package session

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/rtmphub/rtmphub/rtmp/message"
)

// Per-client bandwidth limits, as FMS's Client.setBandwidthLimit: bytes
// per second from the server to the client and from the client to the
// server. Inbound, the reader goroutine pauses between messages, so TCP
// slows the sender down. Outbound, the client's writes go through its
// drain goroutine only, which pauses between batches; media that piles up
// meanwhile meets the queue bounds, and a player then skips to the next
// keyframe as it does on a slow link.

// bandwidth holds a client's limits and pacing state.
type bandwidth struct {
	out, in atomic.Int64 // bytes per second; 0 = no limit

	mu      sync.Mutex // guards outNext
	outNext time.Time  // when the bytes written so far are paid for
	inMu    sync.Mutex // guards inNext
	inNext  time.Time  // when the bytes read so far are paid for
}

// SetBandwidthLimit limits the client's traffic in bytes per second, from
// the server to the client (out) and from the client to the server (in);
// 0 removes a limit.
func (c *Client) SetBandwidthLimit(out, in int64) {
	c.bw.out.Store(max(0, out))
	c.bw.in.Store(max(0, in))
}

// BandwidthLimit returns the limits set by SetBandwidthLimit or
// Config.ClientBandwidthOut/In.
func (c *Client) BandwidthLimit() (out, in int64) { return c.bw.out.Load(), c.bw.in.Load() }

// outLimited reports whether the client's writes are paced (and must
// therefore all go through its drain goroutine).
func (c *Client) outLimited() bool { return c.bw.out.Load() > 0 }

// writeBatch writes a batch on the drain goroutine. Under an outbound
// limit it goes in slices of about 50 ms of the allowed rate, each sent
// once the earlier ones are paid for; it stops early, without an error,
// when the client ends meanwhile.
func (c *Client) writeBatch(batch []message.Message) error {
	rate := c.bw.out.Load()
	if rate <= 0 {
		return c.t.WriteMessages(batch)
	}
	slice := int(max(rate/20, 1))
	for len(batch) > 0 {
		n, size := 0, 0
		for n < len(batch) && (n == 0 || size+len(batch[n].Payload) <= slice) {
			size += len(batch[n].Payload)
			n++
		}
		c.bw.mu.Lock()
		wait := pace(&c.bw.outNext, size, rate)
		c.bw.mu.Unlock()
		if !c.sleepUnlessEnded(wait) {
			return nil
		}
		if err := c.t.WriteMessages(batch[:n]); err != nil {
			return err
		}
		batch = batch[n:]
	}
	return nil
}

// paceIn runs on the reader goroutine after each message: it waits until
// the bytes read so far fit the inbound limit.
func (c *Client) paceIn(read uint64, last *uint64) {
	rate := c.bw.in.Load()
	n := int(read - *last)
	*last = read
	if rate <= 0 || n <= 0 {
		return
	}
	c.bw.inMu.Lock()
	wait := pace(&c.bw.inNext, n, rate)
	c.bw.inMu.Unlock()
	c.sleepUnlessEnded(wait)
}

// pace accounts n bytes at rate bytes per second against next, the time
// the earlier bytes are paid for, and returns how long to wait. Idle time
// is not saved up beyond a small burst.
func pace(next *time.Time, n int, rate int64) time.Duration {
	now := time.Now()
	const burst = 100 * time.Millisecond
	if next.Before(now.Add(-burst)) {
		*next = now.Add(-burst)
	}
	*next = next.Add(time.Duration(float64(n) / float64(rate) * float64(time.Second)))
	return next.Sub(now)
}

// sleepUnlessEnded sleeps for d in short steps; it returns false, early,
// once the client has ended.
func (c *Client) sleepUnlessEnded(d time.Duration) bool {
	const step = 50 * time.Millisecond
	for {
		if c.out.Closed() {
			return false
		}
		if d <= 0 {
			return true
		}
		s := min(d, step)
		time.Sleep(s)
		d -= s
	}
}
