package tunnel

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// What an unauthenticated HTTP peer can make the server hold. Measured
// before these bounds: 300 connections that each sent the head of a /send
// with Content-Length: 8388608 and then one byte a second took the hub
// from 22 MB to 1.9 GB (the body was allocated at its declared length
// before a byte of it came), and each was kept for 34 s. Now:
//
//   - a body grows as its bytes arrive (from bodyFirstStep, doubling), so
//     a connection holds about what its peer has sent;
//   - body capacity beyond bodyFreeBytes is taken from one budget shared
//     by every connection (Config.MaxBufferedBody); a request that would
//     overdraw it is answered 503 and its connection closed;
//   - a request head must arrive within Config.HeadTimeout of its first
//     byte, and a body within Config.BodyTimeout of the head plus one
//     second per Config.MinBodyRate bytes received (checked only when the
//     deadline passes, so a trickle earns almost nothing);
//   - one client address has at most Config.MaxHTTPConnsPerIP HTTP
//     connections open (see connIPKey for trusted proxies and IPv6).
//
// Every peer cut for these reasons is counted in Stats and summed in one
// log line a second at most (cutLog).

const (
	// bodyFirstStep is the first capacity of a body that has to wait
	// for its bytes (at least what is already buffered).
	bodyFirstStep = 2 << 10
	// bodyFreeBytes of a body's capacity are not taken from the budget:
	// a poll's or a small send's body costs no shared atomic, and is
	// bounded per connection as its read buffer is. It is also the body
	// fasthttp reads ahead before calling the handler (StreamRequestBody).
	bodyFreeBytes = 8 << 10
)

// limits are the request bounds a Server applies on both of its paths.
type limits struct {
	maxBody     int
	budget      *byteBudget
	headTimeout time.Duration
	bodyTimeout time.Duration
	minRate     int // bytes a second
	now         func() time.Time
}

// byteBudget is a count of bytes held against a maximum.
type byteBudget struct {
	max  int64
	used atomic.Int64
}

// take reserves n bytes, or none when that would pass the maximum.
func (b *byteBudget) take(n int) bool {
	if b.used.Add(int64(n)) > b.max {
		b.used.Add(-int64(n))
		return false
	}
	return true
}

func (b *byteBudget) give(n int) {
	if n != 0 {
		b.used.Add(-int64(n))
	}
}

// errOverBudget refuses a request whose body would overdraw the budget.
var errOverBudget = httpError{fasthttp.StatusServiceUnavailable}

// errBodyTooLarge refuses a body over Config.MaxBodySize.
var errBodyTooLarge = httpError{fasthttp.StatusRequestEntityTooLarge}

// deadliner moves a connection's read deadline.
type deadliner interface {
	SetReadDeadline(t time.Time) error
}

// bodyReader reads the request bodies of one connection into a scratch
// buffer that grows as bytes arrive and is kept between requests (up to
// keepBuffer bytes).
type bodyReader struct {
	buf  []byte
	held int // bytes of the budget this body holds
}

// read reads a body of length bytes (-1: until EOF, at most lim.maxBody)
// from r, of which avail can be read without waiting. When it has to
// wait, it arms dl's read deadline (nil: none) for the body: the body
// timeout from then, extended when it passes by the time the bytes
// received are worth at the minimum rate. The body is valid until the
// next read; done gives back its budget.
func (b *bodyReader) read(r io.Reader, length, avail int, lim *limits, dl deadliner) ([]byte, error) {
	limit := length
	if length < 0 {
		limit = lim.maxBody + 1 // one more tells a body too large
	}
	buf := b.buf[:0]
	armed := false
	var start time.Time
	for len(buf) < limit {
		if len(buf) == cap(buf) {
			want := bodyFirstStep // doubling: powers of two from here
			for want <= cap(buf) || want < avail {
				want <<= 1
			}
			want = min(want, limit)
			if err := b.reserve(want, lim.budget); err != nil {
				b.buf = buf
				return nil, err
			}
			nb := make([]byte, len(buf), want)
			copy(nb, buf)
			buf = nb
		}
		if !armed && len(buf) >= avail && dl != nil {
			armed = true
			start = lim.now()
			dl.SetReadDeadline(start.Add(lim.bodyTimeout))
		}
		n, err := r.Read(buf[len(buf):min(cap(buf), limit)])
		buf = buf[:len(buf)+n]
		if err == nil || len(buf) == length {
			continue // a stream may end its last read with io.EOF
		}
		if err == io.EOF && length < 0 {
			break
		}
		if armed && errors.Is(err, os.ErrDeadlineExceeded) {
			// The deadline passed: the bytes received so far may earn
			// more time, never more than the body's length is worth.
			until := start.Add(lim.bodyTimeout + time.Duration(int64(len(buf))*int64(time.Second)/int64(lim.minRate)))
			if now := lim.now(); until.Sub(now) > 10*time.Millisecond {
				dl.SetReadDeadline(until)
				continue
			}
			err = errSlowBody
		} else if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		b.buf = buf
		return nil, err
	}
	b.buf = buf
	if len(buf) > lim.maxBody {
		return nil, errBodyTooLarge
	}
	return buf, nil
}

// errSlowBody ends a connection whose body came slower than the minimum
// rate; it is a timeout, as the deadline that found it.
var errSlowBody = &net.OpError{Op: "read", Net: "tcp", Err: os.ErrDeadlineExceeded}

// reserve makes the budget cover a body capacity of want bytes.
func (b *bodyReader) reserve(want int, budget *byteBudget) error {
	need := max(0, want-bodyFreeBytes) - b.held
	if need <= 0 {
		return nil
	}
	if !budget.take(need) {
		return errOverBudget
	}
	b.held += need
	return nil
}

// done gives back the budget of the last body and drops a scratch buffer
// larger than keepBuffer.
func (b *bodyReader) done(budget *byteBudget) {
	if b.held != 0 {
		budget.give(b.held)
		b.held = 0
	}
	if cap(b.buf) > keepBuffer {
		b.buf = nil
	}
}

// connIPKey returns the key a connection from addr counts under for the
// per-address connection limit, and false when it is not limited: a
// connection from a trusted proxy (Config.TrustedProxies) carries many
// clients, whose addresses it names only per request, so it is bounded
// by the global limits alone (MaxHTTPConns, the budget, the deadlines);
// the proxy is expected to limit its clients. A client named by a PROXY
// protocol header counts as itself. IPv6 clients count by /64, the block
// one subscriber usually gets.
func (s *Server) connIPKey(addr net.Addr) (netip.Addr, bool) {
	ip := addrPortOf(addr).Addr().Unmap()
	if !ip.IsValid() || trustedAddr(ip, s.cfg.TrustedProxies) {
		return netip.Addr{}, false
	}
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		ip = p.Addr()
	}
	return ip, true
}

// Why a peer was cut (cutLog).
const (
	cutSlow     = iota // a head or body slower than its deadline
	cutTooLarge        // a body, head or line over its size limit
	cutBudget          // a body over the buffered-bytes budget
	cutPerIP           // a connection over the per-address or global limit
	numCuts
)

// cutLog sums the peers cut for slow or oversized requests and logs them
// at most once a second, in one line, never one per connection: a flood
// would otherwise flood the log too.
type cutLog struct {
	log     *slog.Logger
	pending atomic.Int64 // events since the last line; the first arms a flush
	window  [numCuts]atomic.Int64
}

func (c *cutLog) add(why int) {
	c.window[why].Add(1)
	if c.pending.Add(1) == 1 {
		time.AfterFunc(time.Second, c.flush)
	}
}

func (c *cutLog) flush() {
	c.pending.Store(0)
	var n [numCuts]int64
	var total int64
	for i := range n {
		n[i] = c.window[i].Swap(0)
		total += n[i]
	}
	if total == 0 {
		return
	}
	c.log.Warn("rtmpt: cut HTTP connections for slow or oversized requests in the last second",
		"count", total, "slow", n[cutSlow], "too_large", n[cutTooLarge],
		"over_budget", n[cutBudget], "over_conn_limit", n[cutPerIP])
}

// cut counts a peer cut for why, in the stats and the log.
func (s *Server) cut(why int) {
	s.stats.cuts[why].Add(1)
	s.cuts.add(why)
}

// cutFor returns why a request error cuts its connection, or -1 when it
// does not count (a peer that left, a bad request).
func cutFor(err error, inRequest bool) int {
	var he httpError
	switch {
	case errors.As(err, &he):
		switch he.status {
		case fasthttp.StatusServiceUnavailable:
			return cutBudget
		case fasthttp.StatusRequestEntityTooLarge, fasthttp.StatusRequestURITooLong,
			fasthttp.StatusRequestHeaderFieldsTooLarge:
			return cutTooLarge
		}
	case inRequest && errors.Is(err, os.ErrDeadlineExceeded):
		return cutSlow
	}
	return -1
}
