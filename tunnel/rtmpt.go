package tunnel

import (
	"context"
	"crypto/rand"
	"errors"
	"net"
	"net/netip"
	"os"
	"time"
	"unsafe"

	"github.com/valyala/fasthttp"
)

// RTMPT (RTMP tunneled over HTTP polling). A client POSTs /open/1 and gets
// a session id; it then POSTs /send/<id>/<seq> with RTMP bytes and
// /idle/<id>/<seq> to poll, and each reply carries one interval byte and
// the RTMP bytes the server has for it; /close/<id> ends the session. The
// reply shapes and headers are the ones FFmpeg, librtmp and Flash Player
// all accept: status line "HTTP/1.1 200 OK", Content-Type
// application/x-fcs, a Content-Length (never chunked), Cache-Control:
// no-cache and Connection: Keep-Alive (never close).

const (
	contentTypeFCS = "application/x-fcs"
	sidLen         = 16
	// MaxSessionIDPrefix is the longest Config.SessionIDPrefix: the
	// other characters of an id (at least 8, 47 bits) stay random.
	MaxSessionIDPrefix = 8
)

var (
	errClientClosed   = errors.New("rtmpt: client closed the session")
	errSessionTimeout = errors.New("rtmpt: no request for the session timeout")
)

// serveRTMPT is the fasthttp handler for every RTMPT request.
func (s *Server) serveRTMPT(ctx *fasthttp.RequestCtx) {
	s.stats.requests.Add(1)
	h := &ctx.Response.Header
	h.SetContentTypeBytes(hdrFCS)
	h.SetCanonical(hdrCacheControl, hdrNoCache)
	h.SetCanonical(hdrConnection, hdrKeepAlive)
	body, ok := s.readBody(ctx)
	if !ok {
		return
	}
	if hc, ok := ctx.Conn().(*httpConn); ok {
		defer hc.body.done(&s.budget)
	}
	if !ctx.IsPost() {
		h.Set("Allow", "POST")
		s.refuse(ctx, fasthttp.StatusMethodNotAllowed)
		return
	}
	// req.sid aliases the request's buffer: it is only looked up, never kept.
	req, err := parseRTMPTPath(b2s(ctx.Path()))
	if err != nil {
		s.refuse(ctx, fasthttp.StatusBadRequest)
		return
	}
	switch req.cmd {
	case cmdIdent:
		// Flash Player asks first and goes on to /open after a 404.
		s.refuse(ctx, fasthttp.StatusNotFound)
	case cmdOpen:
		s.open(ctx)
	case cmdIdle, cmdSend:
		ss := s.lookup(req.sid)
		if ss == nil {
			s.refuse(ctx, fasthttp.StatusNotFound)
			return
		}
		reply, status := ss.exchange(ctx.Done(), ctx.Conn(), nil, req.cmd, req.seq, body)
		if status != fasthttp.StatusOK {
			s.refuse(ctx, status)
			return
		}
		ctx.Response.SetBodyRaw(reply)
	case cmdClose:
		ss := s.lookup(req.sid)
		if ss == nil {
			s.refuse(ctx, fasthttp.StatusNotFound)
			return
		}
		ss.end(errClientClosed)
		s.log.Debug("rtmpt session closed by client", "tunnel", ss.id)
		ctx.Response.SetBodyRaw(closeReply)
	}
}

var (
	closeReply = []byte{0}

	hdrFCS          = []byte(contentTypeFCS)
	hdrCacheControl = []byte("Cache-Control")
	hdrNoCache      = []byte("no-cache")
	hdrConnection   = []byte("Connection")
	hdrKeepAlive    = []byte("Keep-Alive")
)

// readBody reads the body of a request on the HTTP server (which hands
// it over as a stream, StreamRequestBody) as serveDirect does: growing as
// it arrives, against the budget and the body deadline. A body that
// cannot be read whole is refused and its connection closed: what is
// left of it cannot be told from the next request.
func (s *Server) readBody(ctx *fasthttp.RequestCtx) ([]byte, bool) {
	cl := ctx.Request.Header.ContentLength()
	stream := ctx.RequestBodyStream()
	if cl == 0 || cl == -2 || stream == nil {
		return nil, true
	}
	var err error
	var body []byte
	if cl > s.cfg.MaxBodySize {
		err = errBodyTooLarge
	} else {
		br := &bodyReader{}
		var dl deadliner
		if hc, ok := ctx.Conn().(*httpConn); ok {
			br, dl = &hc.body, hc
		}
		avail := 0 // a chunked body: fasthttp has read none of it
		if cl > 0 {
			avail = min(cl, bodyFreeBytes)
		}
		body, err = br.read(stream, cl, avail, &s.lim, dl)
		if err != nil {
			br.done(&s.budget)
		}
	}
	if err == nil {
		return body, true
	}
	if why := cutFor(err, true); why >= 0 {
		s.cut(why)
	}
	status := fasthttp.StatusBadRequest
	var he httpError
	switch {
	case errors.As(err, &he):
		status = he.status
	case errors.Is(err, os.ErrDeadlineExceeded):
		status = fasthttp.StatusRequestTimeout
	}
	if status < 500 {
		s.stats.refused.Add(1)
	}
	ctx.SetStatusCode(status)
	ctx.Response.ResetBody()
	ctx.SetConnectionClose()
	return nil, false
}

func (s *Server) refuse(ctx *fasthttp.RequestCtx, status int) {
	s.stats.refused.Add(1)
	ctx.SetStatusCode(status)
	ctx.Response.ResetBody()
}

// open serves /open: see openSession.
func (s *Server) open(ctx *fasthttp.RequestCtx) {
	secure := false
	if hc, ok := ctx.Conn().(*httpConn); ok {
		secure = hc.secure
	}
	body, status := s.openSession(addrPortOf(ctx.RemoteAddr()), ctx.LocalAddr(), secure,
		headerValues(&ctx.Request.Header, "Forwarded"), headerValues(&ctx.Request.Header, "X-Forwarded-For"))
	if status != fasthttp.StatusOK {
		s.refuse(ctx, status)
		return
	}
	ctx.Response.SetBodyRaw(body)
}

// openSession starts a session for a client at peer (or at the address a
// trusted proxy forwarded): a new id, the per-address and global limits,
// and the core's handler on the session's conn. It returns the reply body
// (the id and a newline) or the status of a refusal.
func (s *Server) openSession(peer netip.AddrPort, local net.Addr, secure bool, fwd, xff []string) ([]byte, int) {
	ip, forwarded := clientIP(peer.Addr(), s.cfg.TrustedProxies, fwd, xff)
	info := Info{Protocol: "rtmpt"}
	if secure {
		info.Protocol = "rtmpts"
	}
	remote := net.TCPAddrFromAddrPort(peer)
	if forwarded {
		info.RemoteIP = ip.String()
		remote = net.TCPAddrFromAddrPort(netip.AddrPortFrom(ip, 0))
	}
	ipKey := ip.String()

	s.mu.Lock()
	switch {
	case s.closing:
		s.mu.Unlock()
		return nil, fasthttp.StatusNotFound
	case len(s.sessions) >= s.cfg.MaxSessions:
		s.mu.Unlock()
		s.log.Debug("rtmpt session refused: too many sessions", "limit", s.cfg.MaxSessions)
		return nil, fasthttp.StatusTooManyRequests
	case s.perIP[ipKey] >= s.cfg.MaxSessionsPerIP:
		s.mu.Unlock()
		s.log.Debug("rtmpt session refused: too many sessions from one address", "ip", ipKey, "limit", s.cfg.MaxSessionsPerIP)
		return nil, fasthttp.StatusTooManyRequests
	}
	id := newSessionID(s.cfg.SessionIDPrefix)
	for s.sessions[id] != nil {
		id = newSessionID(s.cfg.SessionIDPrefix)
	}
	info.TunnelID = id
	ss := newRTMPTSession(s, id, ipKey, info, local, remote)
	s.sessions[id] = ss
	if len(s.sessions) == 1 {
		select {
		case s.janitorWake <- struct{}{}:
		default:
		}
	}
	s.perIP[ipKey]++
	s.sessWG.Add(1)
	s.mu.Unlock()
	s.stats.opened.Add(1)

	go func() {
		defer s.sessWG.Done()
		ss.serveCore(s.runCtx, s.handler)
	}()
	s.log.Debug("rtmpt session opened", "tunnel", id, "remote", remote.String(), "proto", info.Protocol)
	body := make([]byte, 0, sidLen+1)
	return append(append(body, id...), '\n'), fasthttp.StatusOK
}

func (s *Server) lookup(id string) *rtmptSession {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sessions[id]
}

// removeSession takes ss out of the table (idempotent). Callers may hold
// ss.mu: the server's lock is always taken after a session's, never the
// other way round.
func (s *Server) removeSession(ss *rtmptSession) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sessions[ss.id] != ss {
		return
	}
	delete(s.sessions, ss.id)
	if n := s.perIP[ss.ip] - 1; n > 0 {
		s.perIP[ss.ip] = n
	} else {
		delete(s.perIP, ss.ip)
	}
}

// janitor closes sessions that received no request for the session
// timeout, checking a few times per timeout. With no session it sleeps
// until one opens: an idle hub has no reason to wake for RTMPT.
func (s *Server) janitor(ctx context.Context) {
	period := min(max(s.cfg.SessionTimeout/4, 10*time.Millisecond), time.Second)
	t := time.NewTicker(period)
	defer t.Stop()
	var stale []*rtmptSession
	for {
		s.mu.Lock()
		empty := len(s.sessions) == 0
		s.mu.Unlock()
		if empty {
			t.Stop()
			select {
			case <-ctx.Done():
				return
			case <-s.janitorWake:
			}
			t.Reset(period)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		cutoff := time.Now().Add(-s.cfg.SessionTimeout).UnixNano()
		stale = stale[:0]
		s.mu.Lock()
		for _, ss := range s.sessions {
			if ss.stale(cutoff) {
				stale = append(stale, ss)
			}
		}
		s.mu.Unlock()
		for _, ss := range stale {
			ss.end(errSessionTimeout)
		}
		if len(stale) > 0 {
			s.stats.timedOut.Add(uint64(len(stale)))
			s.log.Debug("rtmpt sessions closed for silence", "count", len(stale), "timeout", s.cfg.SessionTimeout.String())
		}
		clear(stale)
	}
}

// newSessionID returns sidLen characters [A-Za-z0-9]: prefix, then
// characters from crypto/rand. The id is the only credential of a
// tunneled session.
func newSessionID(prefix string) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	var out [sidLen]byte
	n := copy(out[:], prefix)
	var buf [2 * sidLen]byte
	for n < sidLen {
		rand.Read(buf[:]) // never fails (crypto/rand panics rather)
		for _, b := range buf {
			if b >= 248 { // 248 = 4 × 62: keep the choice uniform
				continue
			}
			out[n] = alphabet[b%62]
			if n++; n == sidLen {
				break
			}
		}
	}
	return string(out[:])
}

// ValidSessionIDPrefix reports whether p can prefix session ids.
func ValidSessionIDPrefix(p string) bool {
	return p == "" || len(p) <= MaxSessionIDPrefix && validSID(p)
}

func headerValues(h *fasthttp.RequestHeader, key string) []string {
	vals := h.PeekAll(key)
	if len(vals) == 0 {
		return nil
	}
	out := make([]string, len(vals))
	for i, v := range vals {
		out[i] = string(v)
	}
	return out
}

func addrPortOf(a net.Addr) netip.AddrPort {
	switch a := a.(type) {
	case *net.TCPAddr:
		return a.AddrPort()
	case nil:
		return netip.AddrPort{}
	}
	ap, _ := netip.ParseAddrPort(a.String())
	return ap
}

// b2s views b as a string for the duration of a call that does not keep it.
func b2s(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// httpErrorHandler answers requests fasthttp could not read: never with a
// 5xx status.
func (s *Server) httpErrorHandler(ctx *fasthttp.RequestCtx, err error) {
	var small *fasthttp.ErrSmallBuffer
	var ne net.Error
	switch {
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		s.cut(cutTooLarge)
		ctx.SetStatusCode(fasthttp.StatusRequestEntityTooLarge)
	case errors.As(err, &small):
		s.cut(cutTooLarge)
		ctx.SetStatusCode(fasthttp.StatusRequestHeaderFieldsTooLarge)
	case errors.As(err, &ne) && ne.Timeout():
		// Part of a request came (the wait for one ends silently):
		// its head or read-ahead body missed the head deadline.
		s.cut(cutSlow)
		ctx.SetStatusCode(fasthttp.StatusRequestTimeout)
	default:
		ctx.SetStatusCode(fasthttp.StatusBadRequest)
	}
	ctx.Response.Header.SetContentType(contentTypeFCS)
	ctx.Response.Header.Set("Cache-Control", "no-cache")
	ctx.Response.ResetBody()
}
