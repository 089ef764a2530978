package tunnel

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"github.com/rtmphub/rtmphub/internal/sockio"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"
)

// Info describes how an accepted connection reached the server.
type Info struct {
	// Protocol is "rtmp", "rtmps", "rtmpt" or "rtmpts".
	Protocol string
	// RemoteIP is the client's address as a trusted proxy forwarded it;
	// empty means the connection's own remote address.
	RemoteIP string
	// TunnelID is the RTMPT session id ("" for native connections).
	TunnelID string
}

// ConnHandler serves one connection carrying RTMP bytes (handshake
// included). It owns nc and closes it; ctx ends when the server stops.
type ConnHandler func(ctx context.Context, nc net.Conn, info Info)

// Config tunes a Server. The zero value of a field means its default,
// filled in by WithDefaults, the one place the defaults live (cmd shows
// them from DefaultConfig). A field whose default is on is turned off by
// a negative value (HoldTime, SendLinger); a boolean is named so that
// false is the default (NoDirect).
type Config struct {
	// HoldTime is the longest time an /idle request with nothing to send
	// is held open, answered the moment bytes are ready (long polling).
	// Default 500ms; negative answers at once.
	HoldTime time.Duration
	// SendLinger is how long a /send with nothing to send back waits for
	// the reply the core is about to write (the handshake, a command
	// result), saving the client a poll. Default 3ms; negative disables.
	SendLinger time.Duration
	// ReplyMerge is how long the bytes written for a streaming session
	// (a player, see handOff) may wait for more before the client's poll
	// takes them: one reply then carries two or three video frames
	// instead of one, and every reply costs the server a read of the
	// poll and a write. Default 50ms, at most maxReplyMerge; negative
	// answers at every write.
	ReplyMerge time.Duration
	// SessionTimeout closes an RTMPT session that received no request for
	// this long; its core sees the client disconnect. Default 15s.
	SessionTimeout time.Duration

	MaxSessions      int // RTMPT sessions at once (default 10000)
	MaxSessionsPerIP int // RTMPT sessions of one client address (default 100)
	MaxBodySize      int // largest request body; larger gets 413 (default 8 MiB)
	// MaxPending bounds the bytes an RTMPT session holds for the client
	// between polls (and for the core between reads). A full session
	// blocks the core's writes — back-pressure — rather than drop bytes.
	// Default 1 MiB.
	MaxPending int
	// MaxHTTPConns bounds the HTTP connections open at once; more are
	// refused with 429 (default 2 × MaxSessions + 256).
	MaxHTTPConns int
	// MaxHTTPConnsPerIP bounds the HTTP connections open at once from one
	// client address (IPv6: one /64); more are refused with 429.
	// Connections from TrustedProxies are not counted per address (see
	// connIPKey). Default max(256, 2 × MaxSessionsPerIP).
	MaxHTTPConnsPerIP int
	// MaxBufferedBody bounds the request body bytes buffered at once by
	// all connections together (each body's first 8 KiB excepted); a
	// request that would pass it is answered 503 and its connection
	// closed. Bodies grow as their bytes arrive, never to their declared
	// length up front. Default 64 MiB.
	MaxBufferedBody int
	// HeadTimeout bounds the time from a request's first byte to the end
	// of its head, whatever the peer sends meanwhile. Default 10s.
	HeadTimeout time.Duration
	// BodyTimeout and MinBodyRate bound the time a request body may take
	// from the end of its head: BodyTimeout, plus one second for every
	// MinBodyRate bytes received. Defaults 10s and 8192 bytes a second.
	BodyTimeout time.Duration
	MinBodyRate int

	// SessionIDPrefix starts every RTMPT session id this server hands
	// out (at most 8 characters [A-Za-z0-9]; the rest of the 16 are
	// random). Several servers behind one reverse proxy each get their
	// own prefix, and the proxy routes /idle, /send and /close on it.
	SessionIDPrefix string

	// SniffTimeout bounds the wait for a connection's first byte and its
	// TLS handshake. Default 10s.
	SniffTimeout time.Duration

	// TrustedProxies are the peers whose X-Forwarded-For and Forwarded
	// headers name the client.
	TrustedProxies []netip.Prefix
	// NoDirect leaves every RTMPT request to the HTTP server: no
	// connection is taken over for direct replies (see rtmpt_direct.go).
	NoDirect bool

	// TLSConfig, when set, lets a connection that starts a TLS handshake
	// carry RTMPS or RTMPTS (sniffed again inside TLS).
	TLSConfig *tls.Config

	Logger *slog.Logger
}

// DefaultConfig is the configuration the zero Config stands for: every
// default filled in.
func DefaultConfig() Config { return Config{}.WithDefaults() }

// WithDefaults returns c with every zero field set to its default, as
// NewServer runs with it.
func (c Config) WithDefaults() Config {
	if c.HoldTime == 0 {
		c.HoldTime = 500 * time.Millisecond
	} else if c.HoldTime < 0 {
		c.HoldTime = 0
	}
	if c.ReplyMerge == 0 {
		c.ReplyMerge = 50 * time.Millisecond
	}
	c.ReplyMerge = min(max(c.ReplyMerge, 0), maxReplyMerge)
	if c.SendLinger == 0 {
		c.SendLinger = 3 * time.Millisecond
	} else if c.SendLinger < 0 {
		c.SendLinger = 0
	}
	if c.SessionTimeout <= 0 {
		c.SessionTimeout = 15 * time.Second
	}
	if c.MaxSessions <= 0 {
		c.MaxSessions = 10000
	}
	if c.MaxSessionsPerIP <= 0 {
		c.MaxSessionsPerIP = 100
	}
	if c.MaxBodySize <= 0 {
		c.MaxBodySize = 8 << 20
	}
	if c.MaxPending <= 0 {
		c.MaxPending = 1 << 20
	}
	if c.MaxHTTPConns <= 0 {
		c.MaxHTTPConns = 2*c.MaxSessions + 256
	}
	if !ValidSessionIDPrefix(c.SessionIDPrefix) {
		c.SessionIDPrefix = "" // NewServer's callers validate; never hand out bad ids
	}
	if c.SniffTimeout <= 0 {
		c.SniffTimeout = 10 * time.Second
	}
	if c.MaxHTTPConnsPerIP <= 0 {
		c.MaxHTTPConnsPerIP = max(256, 2*c.MaxSessionsPerIP)
	}
	if c.MaxBufferedBody <= 0 {
		c.MaxBufferedBody = 64 << 20
	}
	if c.HeadTimeout <= 0 {
		c.HeadTimeout = 10 * time.Second
	}
	if c.BodyTimeout <= 0 {
		c.BodyTimeout = 10 * time.Second
	}
	if c.MinBodyRate <= 0 {
		c.MinBodyRate = 8 << 10
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Server accepts connections on any number of listeners and tells them
// apart by their first byte: 0x03 (and anything else that is not HTTP or
// TLS) is native RTMP, an ASCII letter is HTTP — RTMPT, served by one
// fasthttp server for all listeners — and 0x16 is TLS, inside which the
// same choice is made again (RTMPS, RTMPTS). Every client ends up as a
// net.Conn handed to the ConnHandler with its protocol.
type Server struct {
	cfg     Config
	log     *slog.Logger
	handler ConnHandler
	http    *fasthttp.Server
	vln     *connQueue
	web     *connQueue // the connections that are not RTMPT (WebListener); nil: none taken

	runCtx context.Context

	mu       sync.Mutex
	running  bool
	closing  bool
	sessions map[string]*rtmptSession
	perIP    map[string]int
	// janitorWake tells the janitor, asleep while there is no session,
	// that the first one opened (one pending signal at most).
	janitorWake chan struct{}
	conns       map[*httpConn]struct{} // open HTTP connections
	connsIP     map[netip.Addr]int     // open HTTP connections per client address (connIPKey)
	sessWG      sync.WaitGroup         // one per running session core
	directWG    sync.WaitGroup         // one per connection served by serveDirect

	readTimeout time.Duration // between requests
	lim         limits
	budget      byteBudget // request body bytes buffered (see limits.go)
	cuts        cutLog

	httpConns atomic.Int64
	stats     counters
	tlsFailed rateLog // failed TLS handshakes, logged at most once a second
}

type counters struct {
	opened, requests, refused, timedOut, direct, writerPolls atomic.Uint64

	cuts [numCuts]atomic.Uint64 // peers cut, by why (limits.go)
}

// Stats is a snapshot of a Server's counters.
type Stats struct {
	Sessions        int    // RTMPT sessions now
	SessionsOpened  uint64 // RTMPT sessions ever
	SessionsTimeout uint64 // RTMPT sessions closed for silence
	Requests        uint64 // RTMPT requests served
	Refused         uint64 // RTMPT requests answered with a 4xx status
	HTTPConns       int64  // HTTP connections now
	DirectConns     uint64 // HTTP connections served without the HTTP server, ever
	WriterPolls     uint64 // polls read and answered by the goroutine that wrote their bytes

	// Peers cut to bound what they make the server hold (limits.go).
	BufferedBody  int64  // request body bytes buffered now, against Config.MaxBufferedBody
	CutSlow       uint64 // connections closed for a head or body slower than its deadline
	CutTooLarge   uint64 // requests refused for a body, head or line over its limit
	CutOverBudget uint64 // requests refused with 503 for the buffered-bytes budget
	CutConnLimit  uint64 // HTTP connections refused over the per-address or global limit
}

// NewServer returns a server that hands every client to h.
func NewServer(cfg Config, h ConnHandler) *Server {
	cfg = cfg.WithDefaults()
	s := &Server{
		cfg:         cfg,
		log:         cfg.Logger,
		handler:     h,
		vln:         newConnQueue(),
		sessions:    make(map[string]*rtmptSession),
		perIP:       make(map[string]int),
		conns:       make(map[*httpConn]struct{}),
		janitorWake: make(chan struct{}, 1),
		connsIP:     make(map[netip.Addr]int),
	}
	s.tlsFailed.log = cfg.Logger
	s.cuts.log = cfg.Logger
	s.budget.max = int64(cfg.MaxBufferedBody)
	s.lim = limits{
		maxBody:     cfg.MaxBodySize,
		budget:      &s.budget,
		headTimeout: cfg.HeadTimeout,
		bodyTimeout: cfg.BodyTimeout,
		minRate:     cfg.MinBodyRate,
		now:         time.Now,
	}
	// The wait for the next request on a kept-alive connection. A request
	// itself has HeadTimeout from its first byte, then its body's time.
	readTimeout := max(30*time.Second, cfg.SessionTimeout+5*time.Second)
	s.readTimeout = readTimeout
	s.http = &fasthttp.Server{
		Handler:                      s.serveRTMPT,
		ErrorHandler:                 s.httpErrorHandler,
		NoDefaultServerHeader:        true,
		NoDefaultDate:                true,
		NoDefaultContentType:         true,
		DisablePreParseMultipartForm: true,
		MaxRequestBodySize:           cfg.MaxBodySize,
		// The body is read by serveRTMPT (readBody), growing as it comes,
		// against the budget and the body deadline: fasthttp would make
		// it its declared length at once. It reads ahead at most 8 KiB.
		StreamRequestBody: true,
		// Set once the first byte of a request is there (for the first
		// one, it was sniffed): the head's fixed deadline.
		ReadTimeout:     cfg.HeadTimeout,
		WriteTimeout:    30 * time.Second,
		IdleTimeout:     readTimeout,
		Concurrency:     cfg.MaxHTTPConns + 64,
		CloseOnShutdown: true,
		Logger:          fasthttpLogger{&rateLog{log: cfg.Logger}},
	}
	return s
}

// Stats returns the server's counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	n := len(s.sessions)
	s.mu.Unlock()
	return Stats{
		Sessions:        n,
		SessionsOpened:  s.stats.opened.Load(),
		SessionsTimeout: s.stats.timedOut.Load(),
		Requests:        s.stats.requests.Load(),
		Refused:         s.stats.refused.Load(),
		DirectConns:     s.stats.direct.Load(),
		WriterPolls:     s.stats.writerPolls.Load(),
		HTTPConns:       s.httpConns.Load(),
		BufferedBody:    s.budget.used.Load(),
		CutSlow:         s.stats.cuts[cutSlow].Load(),
		CutTooLarge:     s.stats.cuts[cutTooLarge].Load(),
		CutOverBudget:   s.stats.cuts[cutBudget].Load(),
		CutConnLimit:    s.stats.cuts[cutPerIP].Load(),
	}
}

// httpShutdownWait bounds the wait for HTTP connections to finish their
// request when the server stops; the rest are closed.
const httpShutdownWait = 2 * time.Second

// Run serves the listeners until ctx ends or one of them fails for good
// (its error is returned). It closes the listeners, ends the RTMPT
// sessions and waits for every handler it started before returning. A
// Server runs once.
func (s *Server) Run(ctx context.Context, lns ...net.Listener) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s.mu.Lock()
	if s.running {
		s.mu.Unlock()
		return errors.New("tunnel: server already running")
	}
	s.running = true
	s.runCtx = ctx
	s.mu.Unlock()

	httpDone := make(chan struct{})
	go func() {
		defer close(httpDone)
		if err := s.http.Serve(s.vln); err != nil {
			s.log.Warn("rtmpt: http server ended", "err", err)
		}
	}()
	janitorDone := make(chan struct{})
	go func() {
		defer close(janitorDone)
		s.janitor(ctx)
	}()

	var (
		wg       sync.WaitGroup
		errMu    sync.Mutex
		firstErr error
	)
	for _, ln := range lns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := Serve(ctx, ln, "", s.log, func(ctx context.Context, nc net.Conn, _ string) { s.handleConn(ctx, nc) })
			if err != nil {
				errMu.Lock()
				if firstErr == nil {
					firstErr = fmt.Errorf("listener %s: %w", ln.Addr(), err)
				}
				errMu.Unlock()
				cancel()
			}
		}()
	}
	<-ctx.Done()

	// Stop taking RTMPT sessions, end the open ones (their cores see the
	// client leave) and let requests in progress answer.
	s.mu.Lock()
	s.closing = true
	sessions := make([]*rtmptSession, 0, len(s.sessions))
	for _, ss := range s.sessions {
		sessions = append(sessions, ss)
	}
	s.mu.Unlock()
	for _, ss := range sessions {
		ss.end(errServerStopping)
	}
	s.vln.Close()
	if s.web != nil {
		s.web.Close()
	}
	sctx, scancel := context.WithTimeout(context.Background(), httpShutdownWait)
	s.http.ShutdownWithContext(sctx)
	scancel()
	// What the HTTP server did not close: connections it left busy, and
	// the ones serveDirect took over.
	s.closeHTTPConns()
	<-httpDone
	s.directWG.Wait()
	wg.Wait() // accept loops and native connections
	s.sessWG.Wait()
	<-janitorDone
	return firstErr
}

var errServerStopping = errors.New("rtmpt: server stopping")

// handleConn sniffs an accepted connection and serves it.
func (s *Server) handleConn(ctx context.Context, nc net.Conn) {
	// A connection that has sent nothing yet (a browser's preconnect) is
	// closed when the server stops, not left to its sniff timeout.
	stop := context.AfterFunc(ctx, func() { nc.Close() })
	b, c, err := sniffByte(nc, s.cfg.SniffTimeout)
	if !stop() {
		nc.Close()
		return
	}
	if err != nil {
		nc.Close() // silent or gone before its first byte
		return
	}
	if (b == 'P' || b == '\r') && trustedAddr(addrPortOf(nc.RemoteAddr()).Addr(), s.cfg.TrustedProxies) {
		// A trusted load balancer may name the client in a PROXY header.
		pc, ok, err := readProxyHeader(c, s.cfg.SniffTimeout)
		if err != nil {
			s.log.Debug("bad proxy protocol header", "remote", nc.RemoteAddr().String(), "err", err.Error())
			nc.Close()
			return
		}
		if ok {
			if b, c, err = sniffByte(pc, s.cfg.SniffTimeout); err != nil {
				pc.Close()
				return
			}
		}
	}
	if b == 0x16 && s.cfg.TLSConfig != nil {
		tc := tls.Server(c, s.cfg.TLSConfig)
		hctx, hcancel := context.WithTimeout(ctx, s.cfg.SniffTimeout)
		err := tc.HandshakeContext(hctx)
		hcancel()
		if err != nil {
			s.tlsFailed.debug(func() (string, []any) {
				return "tls handshake failed", []any{"remote", nc.RemoteAddr().String(), "err", err.Error()}
			})
			tc.Close()
			return
		}
		b, c, err = sniffByte(tc, s.cfg.SniffTimeout)
		if err != nil {
			tc.Close()
			return
		}
		s.dispatch(ctx, c, b, true)
		return
	}
	s.dispatch(ctx, c, b, false)
}

func (s *Server) dispatch(ctx context.Context, nc net.Conn, first byte, secure bool) {
	if first >= 'A' && first <= 'Z' || first >= 'a' && first <= 'z' {
		s.serveHTTPConn(nc, first, secure)
		return
	}
	proto := "rtmp"
	if secure {
		proto = "rtmps"
	}
	s.handler(ctx, nc, Info{Protocol: proto})
}

// refusedHTTPConn is the whole answer to an HTTP connection over the
// connection limit.
const refusedHTTPConn = "HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/x-fcs\r\n" +
	"Cache-Control: no-cache\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"

// WebListener returns the listener of the HTTP connections that are not
// RTMPT, from every listener the server sniffs (the RTMP, HTTP and TLS
// ports): a connection whose first request is not a POST (a page, a
// stream, a WebSocket upgrade) goes there, still counted against
// MaxHTTPConns and MaxHTTPConnsPerIP, and no longer read by the server.
// RTMPT clients only ever POST. Call it before Run; without a call, such
// requests are answered 405 as RTMPT does. The listener ends when the
// server stops, which closes the connections it handed out.
func (s *Server) WebListener() net.Listener {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.web == nil {
		s.web = newConnQueue()
	}
	return s.web
}

// serveHTTPConn hands an HTTP connection to the fasthttp server, or the
// connection of a request that is not RTMPT to the WebListener.
func (s *Server) serveHTTPConn(nc net.Conn, first byte, secure bool) {
	refuse := func() {
		s.stats.refused.Add(1)
		s.cut(cutPerIP)
		nc.SetWriteDeadline(time.Now().Add(time.Second))
		nc.Write([]byte(refusedHTTPConn))
		nc.Close()
	}
	if s.httpConns.Add(1) > int64(s.cfg.MaxHTTPConns) {
		s.httpConns.Add(-1)
		refuse()
		return
	}
	hc := &httpConn{Conn: nc, secure: secure, srv: s}
	hc.ip, hc.ipLimited = s.connIPKey(nc.RemoteAddr())
	s.mu.Lock()
	if hc.ipLimited {
		if s.connsIP[hc.ip] >= s.cfg.MaxHTTPConnsPerIP {
			s.mu.Unlock()
			s.httpConns.Add(-1)
			refuse()
			return
		}
		s.connsIP[hc.ip]++
	}
	s.conns[hc] = struct{}{}
	web := s.web
	if web != nil && first != 'P' { // POST, and PUT and PATCH, which RTMPT refuses
		s.mu.Unlock()
		hc.plain = true
		if !web.push(hc) {
			hc.Close()
		}
		return
	}
	rc := sockio.RawConnOf(nc)
	direct := !secure && !s.cfg.NoDirect && rc != nil && !s.closing
	if direct {
		s.directWG.Add(1)
	}
	s.mu.Unlock()
	if direct {
		defer s.directWG.Done()
		s.serveDirect(hc, rc)
		return
	}
	if !s.vln.push(hc) {
		hc.Close()
	}
}

func (s *Server) closeHTTPConns() {
	s.mu.Lock()
	conns := make([]*httpConn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		// Only the socket: the goroutine serving c owns its buffers, and
		// closes c (leaving the count) once its reads and writes fail.
		c.Conn.Close()
	}
}

// httpConn is an HTTP connection being served; it remembers whether it
// came through TLS and leaves the server's count when closed.
//
// It also gathers what the HTTP server writes until the server next reads
// (or closes): fasthttp writes a reply through a 4 KiB buffer, which cuts
// a reply carrying a video frame into several write system calls, and an
// RTMPT server sends one reply per frame to every player. The server
// always reads the next request after writing a reply, so nothing waits
// on the gathered bytes.
type httpConn struct {
	net.Conn
	secure bool
	plain  bool // a WebListener connection: writes go out at once, never gathered
	srv    *Server
	once   sync.Once

	ip        netip.Addr // its key for the per-address limit, when ipLimited
	ipLimited bool
	body      bodyReader // request bodies, read by the goroutine serving it

	mu      sync.Mutex // the server closes idle connections from another goroutine
	pending *[]byte    // gathered writes, from writeBufs
	werr    error      // the error of a gathered write, reported by the next call

	// The deadlines last applied to the connection (see lazyDeadline).
	dmu      sync.Mutex
	rdl, wdl time.Time
}

// SetReadDeadline and SetWriteDeadline move the connection's deadlines
// lazily: the HTTP server sets a read deadline twice and a write deadline
// once for every request, each a timer update in the runtime, and an RTMPT
// client makes a request for every frame it plays. A deadline is kept
// when it falls at most a quarter of the time left after the one asked,
// so timeouts fire at most 25% late and never early.
func (c *httpConn) SetReadDeadline(t time.Time) error {
	c.dmu.Lock()
	defer c.dmu.Unlock()
	return lazyDeadline(&c.rdl, t, c.Conn.SetReadDeadline)
}

func (c *httpConn) SetWriteDeadline(t time.Time) error {
	c.dmu.Lock()
	defer c.dmu.Unlock()
	return lazyDeadline(&c.wdl, t, c.Conn.SetWriteDeadline)
}

func (c *httpConn) SetDeadline(t time.Time) error {
	c.dmu.Lock()
	defer c.dmu.Unlock()
	err := lazyDeadline(&c.rdl, t, c.Conn.SetReadDeadline)
	if werr := lazyDeadline(&c.wdl, t, c.Conn.SetWriteDeadline); err == nil {
		err = werr
	}
	return err
}

// lazyDeadline applies t through set unless the deadline applied already
// (*cur) is no earlier than t and no later than a quarter of t's time
// left after it. A deadline it applies is moved a quarter of that time
// later, so that the next ones asked can keep it.
func lazyDeadline(cur *time.Time, t time.Time, set func(time.Time) error) error {
	if t.IsZero() {
		if cur.IsZero() {
			return nil
		}
		*cur = time.Time{}
		return set(t)
	}
	left := time.Until(t)
	if left > 0 && !cur.IsZero() && !cur.Before(t) && cur.Sub(t) <= left/4 {
		return nil
	}
	if left > 0 {
		t = t.Add(left / 8)
	}
	*cur = t
	return set(t)
}

// maxGather bounds the bytes gathered before they are written out.
const maxGather = 256 << 10

var writeBufs = sync.Pool{New: func() any { b := make([]byte, 0, 16<<10); return &b }}

func (c *httpConn) Write(p []byte) (int, error) {
	if c.plain {
		return c.Conn.Write(p)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.werr != nil {
		return 0, c.werr
	}
	if c.pending == nil {
		c.pending = writeBufs.Get().(*[]byte)
	}
	*c.pending = append(*c.pending, p...)
	if len(*c.pending) >= maxGather {
		if err := c.flush(); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

// flush writes the gathered bytes out; call with c.mu held.
func (c *httpConn) flush() error {
	if c.pending == nil {
		return c.werr
	}
	b := c.pending
	c.pending = nil
	_, err := c.Conn.Write(*b)
	if cap(*b) <= 1<<20 {
		*b = (*b)[:0]
		writeBufs.Put(b)
	}
	if err != nil && c.werr == nil {
		c.werr = err
	}
	return c.werr
}

func (c *httpConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	err := c.flush()
	c.mu.Unlock()
	if err != nil {
		return 0, err
	}
	return c.Conn.Read(p)
}

// ViaTLS reports whether c, a connection the WebListener handed out (or
// one an HTTP server hijacked from it), came through TLS: the server
// sniffs TLS itself, so net/http sees no *tls.Conn and leaves
// http.Request.TLS nil.
func ViaTLS(c net.Conn) bool {
	hc, ok := c.(*httpConn)
	return ok && hc.secure
}

// SyscallConn reaches the socket of a WebListener connection on plain TCP,
// for writes that must never block (an HTTP-FLV viewer's, made by the
// publisher's goroutine). Other connections have none to give: the HTTP
// server's replies are gathered (Write), and TLS has its own state.
func (c *httpConn) SyscallConn() (syscall.RawConn, error) {
	if !c.plain || c.secure {
		return nil, errors.ErrUnsupported
	}
	sc, ok := c.Conn.(syscall.Conn)
	if !ok {
		return nil, errors.ErrUnsupported
	}
	return sc.SyscallConn()
}

func (c *httpConn) Close() error {
	c.mu.Lock()
	c.flush()
	c.mu.Unlock()
	err := c.Conn.Close()
	c.once.Do(func() {
		s := c.srv
		s.httpConns.Add(-1)
		s.mu.Lock()
		delete(s.conns, c)
		if c.ipLimited {
			if n := s.connsIP[c.ip] - 1; n > 0 {
				s.connsIP[c.ip] = n
			} else {
				delete(s.connsIP, c.ip)
			}
		}
		s.mu.Unlock()
	})
	return err
}

// connQueue is the listener the fasthttp server accepts from: it yields
// the connections the sniffer found to be HTTP.
type connQueue struct {
	ch   chan net.Conn
	done chan struct{}
	once sync.Once
}

func newConnQueue() *connQueue {
	return &connQueue{ch: make(chan net.Conn), done: make(chan struct{})}
}

func (q *connQueue) push(c net.Conn) bool {
	select {
	case q.ch <- c:
		return true
	case <-q.done:
		return false
	}
}

func (q *connQueue) Accept() (net.Conn, error) {
	select {
	case c := <-q.ch:
		return c, nil
	case <-q.done:
		return nil, net.ErrClosed
	}
}

func (q *connQueue) Close() error {
	q.once.Do(func() { close(q.done) })
	return nil
}

func (q *connQueue) Addr() net.Addr { return queueAddr{} }

type queueAddr struct{}

func (queueAddr) Network() string { return "sniffed" }
func (queueAddr) String() string  { return "sniffed" }

// fasthttpLogger routes fasthttp's own messages to the debug log, at
// most one a second.
type fasthttpLogger struct{ lim *rateLog }

func (l fasthttpLogger) Printf(format string, args ...any) {
	l.lim.debug(func() (string, []any) { return "http: " + fmt.Sprintf(format, args...), nil })
}

// rateLog writes at most one debug line a second for a kind of event that
// a misbehaving peer could repeat at will, counting the ones it skipped.
type rateLog struct {
	log     *slog.Logger
	mu      sync.Mutex
	last    time.Time
	skipped int
}

func (r *rateLog) debug(line func() (string, []any)) {
	if !r.log.Enabled(context.Background(), slog.LevelDebug) {
		return
	}
	r.mu.Lock()
	now := time.Now()
	if now.Sub(r.last) < time.Second {
		r.skipped++
		r.mu.Unlock()
		return
	}
	skipped := r.skipped
	r.last, r.skipped = now, 0
	r.mu.Unlock()
	msg, attrs := line()
	if skipped > 0 {
		attrs = append(attrs, "similar_skipped", skipped)
	}
	r.log.Debug(msg, attrs...)
}
