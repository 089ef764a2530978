package tunnel

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/rtmphub/rtmphub/tunnel/internal/deadline"
)

// DialOptions tune DialRTMPT. The zero value is ready to use.
type DialOptions struct {
	// TLSConfig is used for rtmpts:// (default: the system's roots, the
	// URL's host as server name).
	TLSConfig *tls.Config
	// Dial opens the TCP connections the HTTP requests go on (default
	// net.Dialer). ctx is the tunnel's lifetime.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// RequestTimeout bounds one request, server-side hold included
	// (default 15s).
	RequestTimeout time.Duration
	// Retries is how many times a failed request is sent again, with the
	// same sequence number and body, on a fresh connection (default 4).
	Retries int
	// MaxPending bounds the bytes buffered each way (default 1 MiB):
	// writes block beyond it, and polling pauses until reads catch up.
	MaxPending int
	// MaxSendBody bounds the body of one /send (default 256 KiB).
	MaxSendBody int
}

func (o DialOptions) withDefaults() DialOptions {
	if o.Dial == nil {
		o.Dial = (&net.Dialer{}).DialContext
	}
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = 15 * time.Second
	}
	if o.Retries <= 0 {
		o.Retries = 4
	}
	if o.MaxPending <= 0 {
		o.MaxPending = 1 << 20
	}
	if o.MaxSendBody <= 0 {
		o.MaxSendBody = 256 << 10
	}
	return o
}

// DialRTMPT opens an RTMPT session to rawURL ("rtmpt://host[:port][/...]",
// default port 80, or "rtmpts://..." over TLS, default port 443) and
// returns it as a net.Conn carrying RTMP bytes, handshake not done yet.
//
// Requests go over keep-alive connections, one request at a time on each
// (no pipelining): /send requests on one connection, in order, and /idle
// polls on another, so that a poll the server holds never delays bytes
// the caller writes (the server answers a held poll as soon as a later
// request arrives, keeping sequence order). Replies are put back in
// sequence order. A request that fails is sent again with the same
// sequence number, which the server answers with the same reply, so the
// session survives dropped TCP connections. Deadlines work as on TCP.
func DialRTMPT(ctx context.Context, rawURL string, opts DialOptions) (net.Conn, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("rtmpt: %w", err)
	}
	var secure bool
	var port string
	switch u.Scheme {
	case "rtmpt":
		port = "80"
	case "rtmpts":
		secure, port = true, "443"
	default:
		return nil, fmt.Errorf("rtmpt: unsupported scheme %q (want rtmpt or rtmpts)", u.Scheme)
	}
	if u.Hostname() == "" {
		return nil, fmt.Errorf("rtmpt: no host in %q", rawURL)
	}
	if p := u.Port(); p != "" {
		port = p
	}
	addr := net.JoinHostPort(u.Hostname(), port)
	opts = opts.withDefaults()

	life, cancel := context.WithCancel(context.Background())
	c := &rtmptClient{
		opts:    opts,
		base:    "http://" + u.Host,
		life:    life,
		cancel:  cancel,
		replies: make(map[uint64][]byte),
		rd:      deadline.New(),
		wd:      deadline.New(),
		network: u.Scheme,
		raddr:   rtmptAddr{u.Scheme, addr},
	}
	tlsCfg := opts.TLSConfig
	if secure {
		c.base = "https://" + u.Host
		if tlsCfg == nil {
			tlsCfg = &tls.Config{}
		} else {
			tlsCfg = tlsCfg.Clone()
		}
		if tlsCfg.ServerName == "" {
			tlsCfg.ServerName = u.Hostname()
		}
	}
	c.hc = &fasthttp.HostClient{
		// The connection used last goes out first: polls keep to one
		// connection, as FFmpeg's and librtmp's do, instead of taking
		// turns on every connection the sender ever opened.
		ConnPoolStrategy: fasthttp.LIFO,
		Addr:             addr,
		IsTLS:            secure,
		TLSConfig:        tlsCfg,
		DialTimeout: func(a string, timeout time.Duration) (net.Conn, error) {
			dctx, dcancel := context.WithTimeout(life, timeout)
			defer dcancel()
			nc, err := opts.Dial(dctx, "tcp", a)
			if err == nil {
				c.noteLocal(nc.LocalAddr())
			}
			return nc, err
		},
		MaxConns:                  4,
		MaxIdleConnDuration:       30 * time.Second,
		MaxIdemponentCallAttempts: 1,
		RetryIfErr:                func(*fasthttp.Request, int, error) (bool, bool) { return false, false },
		MaxResponseBodySize:       64 << 20,
		NoDefaultUserAgentHeader:  true,
		DisablePathNormalizing:    true,
	}

	// /open/1: the reply body is the session id and one trailing byte.
	deadline := time.Now().Add(opts.RequestTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	stop := context.AfterFunc(ctx, cancel)
	body, status, err := c.do("/open/1", []byte{0}, deadline)
	stop()
	if err == nil && status != fasthttp.StatusOK {
		err = fmt.Errorf("status %d", status)
	}
	if err == nil {
		for len(body) > 0 && (body[len(body)-1] == '\n' || body[len(body)-1] == '\r' || body[len(body)-1] == 0) {
			body = body[:len(body)-1]
		}
		if !validSID(string(body)) {
			err = fmt.Errorf("bad session id %q", body)
		}
	}
	if err != nil {
		cancel()
		c.hc.CloseIdleConnections()
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return nil, fmt.Errorf("rtmpt: open %s: %w", addr, err)
	}
	c.sid = string(body)
	c.wg.Add(2)
	go c.sender()
	go c.poller()
	return c, nil
}

// rtmptAddr is the address of an RTMPT session.
type rtmptAddr struct{ network, addr string }

func (a rtmptAddr) Network() string { return a.network }
func (a rtmptAddr) String() string  { return a.addr }

// rtmptClient is the client end of an RTMPT session.
type rtmptClient struct {
	hc      *fasthttp.HostClient
	opts    DialOptions
	base    string // scheme://host[:port] of the request URIs
	sid     string
	network string
	raddr   net.Addr
	laddr   atomic.Value // net.Addr of the latest TCP connection

	life   context.Context // ends at Close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	requests atomic.Uint64

	mu sync.Mutex
	// Sequencing: the next number to use, and the next reply to deliver.
	seq         uint64
	nextDeliver uint64
	replies     map[uint64][]byte // replies that arrived before an earlier one
	// Server to caller.
	in         []byte
	inOff      int
	inSig      signal
	inSpaceSig signal
	// Caller to server.
	out      []byte
	outSig   signal
	spaceSig signal
	sending  bool // a /send is in flight (Close waits for it)

	closing bool // Close was called
	eof     bool // the server ended the session
	// A reply ended the session (interval 0, or the session was gone):
	// closeSeq is its sequence number; eof follows once it is delivered.
	closeSeen bool
	closeSeq  uint64
	err       error // the tunnel failed

	rd, wd *deadline.Deadline
}

func (c *rtmptClient) noteLocal(a net.Addr) {
	if a != nil {
		c.laddr.Store(a)
	}
}

// Requests is the number of HTTP requests the session has made.
func (c *rtmptClient) Requests() uint64 { return c.requests.Load() }

// do sends one POST and returns the body of a 200 reply (copied) or the
// status.
func (c *rtmptClient) do(path string, body []byte, deadline time.Time) ([]byte, int, error) {
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.Header.SetMethod(fasthttp.MethodPost)
	req.SetRequestURI(c.base + path)
	req.Header.SetContentType(contentTypeFCS)
	req.Header.Set("Cache-Control", "no-cache")
	req.Header.Set("User-Agent", "Shockwave Flash")
	req.SetBodyRaw(body)
	c.requests.Add(1)
	if err := c.hc.DoDeadline(req, resp, deadline); err != nil {
		return nil, 0, err
	}
	if resp.StatusCode() != fasthttp.StatusOK {
		return nil, resp.StatusCode(), nil
	}
	return append([]byte(nil), resp.Body()...), fasthttp.StatusOK, nil
}

// exchange sends request cmd with sequence number seq, retrying failures
// with the same number and body; it returns the reply body (interval byte
// first) or an error that ends the tunnel.
func (c *rtmptClient) exchange(cmd string, seq uint64, body []byte) ([]byte, error) {
	path := "/" + cmd + "/" + c.sid + "/" + strconv.FormatUint(seq, 10)
	// A dropped connection is retried at once, on a fresh one: the
	// server keeps only a few replies for retries. Refusals that ask for
	// patience (409, 429) and repeated failures back off.
	var backoff time.Duration
	var lastErr error
	for attempt := 0; attempt <= c.opts.Retries; attempt++ {
		if backoff > 0 {
			select {
			case <-time.After(backoff):
			case <-c.life.Done():
				return nil, net.ErrClosed
			}
		}
		if attempt > 0 {
			backoff = min(max(2*backoff, 20*time.Millisecond), time.Second)
		}
		reply, status, err := c.do(path, body, time.Now().Add(c.opts.RequestTimeout))
		switch {
		case err != nil:
			lastErr = err // a dropped connection, a timeout: try again
			if c.life.Err() != nil {
				return nil, net.ErrClosed
			}
			continue
		case status == fasthttp.StatusOK:
			if len(reply) == 0 {
				return nil, errors.New("rtmpt: empty reply")
			}
			return reply, nil
		case status == fasthttp.StatusNotFound:
			return nil, io.EOF // the session is gone
		case status == fasthttp.StatusConflict || status == fasthttp.StatusTooManyRequests:
			lastErr = fmt.Errorf("status %d", status) // out of order, or the server is full: later
			continue
		default:
			return nil, fmt.Errorf("rtmpt: %s: status %d", cmd, status)
		}
	}
	return nil, fmt.Errorf("rtmpt: %s failed %d times: %w", cmd, c.opts.Retries+1, lastErr)
}

// deliver puts the data of reply seq in the read buffer, in sequence order.
// A reply with interval 0 (the server is closing the session, and this
// reply carries its last bytes) ends the session once every reply before
// it has been delivered too: it may overtake the reply to an earlier poll.
func (c *rtmptClient) deliver(seq uint64, reply []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if reply[0] == 0 && (!c.closeSeen || seq < c.closeSeq) {
		c.closeSeen, c.closeSeq = true, seq
	}
	c.replies[seq] = reply[1:]
	for {
		data, ok := c.replies[c.nextDeliver]
		if !ok {
			break
		}
		delete(c.replies, c.nextDeliver)
		c.nextDeliver++
		if len(data) > 0 {
			if c.inOff > 0 && c.inOff >= len(c.in)/2 {
				n := copy(c.in, c.in[c.inOff:])
				c.in, c.inOff = c.in[:n], 0
			}
			c.in = append(c.in, data...)
			c.inSig.fire()
		}
	}
	if c.closeSeen && c.nextDeliver > c.closeSeq && !c.eof {
		c.eof = true
		c.fireAllLocked()
	}
}

// fail ends the tunnel after request seq failed with err. io.EOF (the
// server no longer knows the session) is the end of the session after the
// replies before seq, which may still be on their way.
func (c *rtmptClient) fail(seq uint64, err error) {
	if errors.Is(err, io.EOF) {
		c.deliver(seq, []byte{0})
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err == nil && !errors.Is(err, net.ErrClosed) {
		c.err = err
	}
	c.fireAllLocked()
}

func (c *rtmptClient) fireAllLocked() {
	c.inSig.fire()
	c.inSpaceSig.fire()
	c.outSig.fire()
	c.spaceSig.fire()
}

func (c *rtmptClient) doneLocked() bool { return c.eof || c.err != nil }

// sender posts what the caller wrote, one /send at a time, in order.
func (c *rtmptClient) sender() {
	defer c.wg.Done()
	for {
		c.mu.Lock()
		for len(c.out) == 0 && !c.closing && !c.doneLocked() {
			ch := c.outSig.wait()
			c.mu.Unlock()
			<-ch
			c.mu.Lock()
		}
		if len(c.out) == 0 || c.doneLocked() {
			c.mu.Unlock()
			return
		}
		n := min(len(c.out), c.opts.MaxSendBody)
		body := append([]byte(nil), c.out[:n]...)
		k := copy(c.out, c.out[n:])
		c.out = c.out[:k]
		c.spaceSig.fire()
		seq := c.seq
		c.seq++
		c.sending = true
		c.mu.Unlock()

		reply, err := c.exchange("send", seq, body)
		c.mu.Lock()
		c.sending = false
		c.outSig.fire() // Close may wait for the in-flight send
		c.mu.Unlock()
		if err != nil {
			c.fail(seq, err)
			return
		}
		c.deliver(seq, reply)
	}
}

// poller keeps one /idle in flight while the caller keeps up with reading.
func (c *rtmptClient) poller() {
	defer c.wg.Done()
	for {
		c.mu.Lock()
		for len(c.in)-c.inOff >= c.opts.MaxPending && !c.closing && !c.doneLocked() {
			ch := c.inSpaceSig.wait()
			c.mu.Unlock()
			<-ch
			c.mu.Lock()
		}
		if c.closing || c.doneLocked() {
			c.mu.Unlock()
			return
		}
		seq := c.seq
		c.seq++
		c.mu.Unlock()

		start := time.Now()
		reply, err := c.exchange("idle", seq, []byte{0})
		if err != nil {
			c.fail(seq, err)
			return
		}
		c.deliver(seq, reply)
		// A server that does not hold polls answers at once: wait as its
		// interval byte suggests before polling again.
		if len(reply) == 1 && time.Since(start) < 20*time.Millisecond {
			wait := min(time.Duration(reply[0])*10*time.Millisecond, 500*time.Millisecond)
			select {
			case <-time.After(wait):
			case <-c.life.Done():
				return
			}
		}
	}
}

// Read returns bytes the server sent; io.EOF once it ended the session.
func (c *rtmptClient) Read(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for {
		if c.closing {
			return 0, opError("read", c.network, c.raddr, net.ErrClosed)
		}
		if c.rd.Expired() {
			return 0, opError("read", c.network, c.raddr, errTimeout)
		}
		if c.inOff < len(c.in) {
			n := copy(p, c.in[c.inOff:])
			c.inOff += n
			if c.inOff == len(c.in) {
				c.in, c.inOff = c.in[:0], 0
				if cap(c.in) > keepBuffer {
					c.in = nil
				}
			}
			c.inSpaceSig.fire()
			return n, nil
		}
		if c.err != nil {
			return 0, opError("read", c.network, c.raddr, c.err)
		}
		if c.eof {
			return 0, io.EOF
		}
		ch, dl := c.inSig.wait(), c.rd.Wait()
		c.mu.Unlock()
		select {
		case <-ch:
		case <-dl:
		}
		c.mu.Lock()
	}
}

// Write queues p for the server; it blocks while MaxPending bytes wait.
func (c *rtmptClient) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for {
		switch {
		case c.closing:
			return n, opError("write", c.network, c.raddr, net.ErrClosed)
		case c.err != nil:
			return n, opError("write", c.network, c.raddr, c.err)
		case c.eof:
			return n, opError("write", c.network, c.raddr, syscall.EPIPE)
		case c.wd.Expired():
			return n, opError("write", c.network, c.raddr, errTimeout)
		case len(p) == 0:
			return n, nil
		}
		if room := c.opts.MaxPending - len(c.out); room > 0 {
			k := min(room, len(p))
			c.out = append(c.out, p[:k]...)
			p, n = p[k:], n+k
			c.outSig.fire()
			continue
		}
		ch, dl := c.spaceSig.wait(), c.wd.Wait()
		c.mu.Unlock()
		select {
		case <-ch:
		case <-dl:
		}
		c.mu.Lock()
	}
}

// closeFlushWait bounds how long Close waits for written bytes to be sent.
const closeFlushWait = 2 * time.Second

// Close sends what was written (for up to closeFlushWait), then /close,
// and releases the connections.
func (c *rtmptClient) Close() error {
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return nil
	}
	c.closing = true
	c.inSig.fire()
	c.inSpaceSig.fire()
	c.spaceSig.fire()
	c.outSig.fire()
	limit := time.NewTimer(closeFlushWait)
	expired := false
	for (len(c.out) > 0 || c.sending) && !c.doneLocked() && !expired {
		ch := c.outSig.wait()
		c.mu.Unlock()
		select {
		case <-ch:
		case <-limit.C:
			expired = true
		}
		c.mu.Lock()
	}
	limit.Stop()
	seq := c.seq
	c.seq++
	sendClose := !c.doneLocked()
	c.mu.Unlock()
	if sendClose {
		path := "/close/" + c.sid + "/" + strconv.FormatUint(seq, 10)
		c.do(path, []byte{0}, time.Now().Add(time.Second))
	}
	c.cancel()
	c.rd.Stop()
	c.wd.Stop()
	c.hc.CloseIdleConnections()
	return nil
}

func (c *rtmptClient) LocalAddr() net.Addr {
	if a, ok := c.laddr.Load().(net.Addr); ok {
		return a
	}
	return rtmptAddr{c.network, ""}
}

func (c *rtmptClient) RemoteAddr() net.Addr { return c.raddr }

func (c *rtmptClient) SetDeadline(t time.Time) error {
	c.rd.Set(t)
	c.wd.Set(t)
	c.wake()
	return nil
}

func (c *rtmptClient) SetReadDeadline(t time.Time) error {
	c.rd.Set(t)
	c.wake()
	return nil
}

func (c *rtmptClient) SetWriteDeadline(t time.Time) error {
	c.wd.Set(t)
	c.wake()
	return nil
}

func (c *rtmptClient) wake() {
	c.mu.Lock()
	c.inSig.fire()
	c.spaceSig.fire()
	c.mu.Unlock()
}
