// Package web is rtmphub's face to browsers on its HTTP ports: every live
// stream as HTTP-FLV and WebSocket-FLV (package httpflv) and as LL-HLS
// (package hls), a player page that plays them (package player), with
// the play authorization RTMP has and CORS.
//
// It is a net/http handler. The transport (package tunnel) hands it the
// connections whose first request is not RTMPT, on the RTMP port, the
// HTTP port and the TLS port alike (tunnel.Server.WebListener). Each
// viewer and each HLS muxer is one more reader of a live stream, attached
// through the core (session.Server.Watch), so it is bounded and skipped
// like an RTMP player.
package web

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/coder/websocket"

	"github.com/rtmphub/rtmphub/internal/sockio"
	"github.com/rtmphub/rtmphub/session"
	"github.com/rtmphub/rtmphub/session/live"
	"github.com/rtmphub/rtmphub/tunnel"
	"github.com/rtmphub/rtmphub/web/hls"
	"github.com/rtmphub/rtmphub/web/httpflv"
	"github.com/rtmphub/rtmphub/web/player"
)

// The protocols viewers are counted under.
const (
	ProtoHTTPFLV = "http-flv"
	ProtoWSFLV   = "ws-flv"
	ProtoHLS     = "hls"
)

// Config tunes the handler.
type Config struct {
	// AllowOrigins are the origins whose pages may play the streams
	// (CORS, and the WebSocket origin check): "*" or none is any origin,
	// since players are often embedded in other sites' pages.
	AllowOrigins []string
	// TrustedProxies are the peers whose Forwarded and X-Forwarded-For
	// headers name the viewer.
	TrustedProxies []netip.Prefix
	// AuthCache is how long an allowed HLS viewer (its address, stream
	// and query) is not asked about again: an HLS player makes several
	// requests a second. Default 10s; negative asks every time.
	AuthCache time.Duration
	// HLS tunes the LL-HLS muxers.
	HLS hls.Config
	Log *slog.Logger
}

// DefaultConfig is the configuration the zero Config stands for.
func DefaultConfig() Config { return Config{}.WithDefaults() }

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	if len(c.AllowOrigins) == 0 {
		c.AllowOrigins = []string{"*"}
	}
	if c.AuthCache == 0 {
		c.AuthCache = 10 * time.Second
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	log := c.HLS.Log
	c.HLS = c.HLS.WithDefaults()
	c.HLS.Log = log // the handler's, unless set
	return c
}

// Handler serves browsers.
type Handler struct {
	srv      *session.Server
	cfg      Config
	log      *slog.Logger
	anyOrig  bool
	origins  map[string]bool
	auth     authCache
	ctx      context.Context // ends with Close: viewers stop
	cancel   context.CancelFunc
	assets   http.Handler
	mu       sync.Mutex
	closing  bool
	running  map[*httpflv.Viewer]struct{} // FLV viewers, for Close
	hls      *hls.Manager
	hlsSeen  hlsSeen
	viewers  sync.WaitGroup
	requests [numProtos]atomic.Uint64
	bytes    [numProtos]atomic.Uint64
	refused  atomic.Uint64
}

const (
	iFLV = iota
	iWS
	iHLS
	numProtos
)

var protoNames = [numProtos]string{ProtoHTTPFLV, ProtoWSFLV, ProtoHLS}

// New returns the handler of srv's streams.
func New(srv *session.Server, cfg Config) *Handler {
	cfg = cfg.WithDefaults()
	h := &Handler{srv: srv, cfg: cfg, log: cfg.Log, origins: make(map[string]bool), assets: player.Assets()}
	h.ctx, h.cancel = context.WithCancel(context.Background())
	h.anyOrig = len(cfg.AllowOrigins) == 0
	for _, o := range cfg.AllowOrigins {
		if o == "*" {
			h.anyOrig = true
		}
		h.origins[strings.TrimSuffix(strings.ToLower(o), "/")] = true
	}
	h.auth.ttl = cfg.AuthCache
	if cfg.HLS.Log == nil {
		cfg.HLS.Log = cfg.Log
	}
	h.hls = hls.New(cfg.HLS)
	srv.CountViewers(h.viewerCount)
	return h
}

// Close ends every viewer and HLS muxer and waits for them.
func (h *Handler) Close() {
	h.cancel()
	h.mu.Lock()
	h.closing = true
	running := make([]*httpflv.Viewer, 0, len(h.running))
	for v := range h.running {
		running = append(running, v)
	}
	h.mu.Unlock()
	for _, v := range running {
		v.Stop(errClosing)
	}
	h.hls.Close()
	h.viewers.Wait()
}

// Stats counts what the handler served.
type Stats struct {
	Requests map[string]uint64 // by protocol: viewers started, HLS requests
	Bytes    map[string]uint64 // FLV bytes sent, by protocol (HLS: not counted)
	Refused  uint64            // requests refused by authorization
}

// Stats returns the handler's counters.
func (h *Handler) Stats() Stats {
	s := Stats{Requests: make(map[string]uint64), Bytes: make(map[string]uint64), Refused: h.refused.Load()}
	for i, n := range protoNames {
		s.Requests[n] = h.requests[i].Load()
		s.Bytes[n] = h.bytes[i].Load()
	}
	return s
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if tunnel.IsRTMPTPath(r.URL.Path) {
		// RTMPT's requests, sent with another method (or on a
		// connection that started with one): RTMPT's answer.
		w.Header().Set("Allow", "POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	t := parseTarget(r.URL.Path)
	switch t.kind {
	case kindNone:
		http.NotFound(w, r)
		return
	case kindAsset:
		h.assets.ServeHTTP(w, r)
		return
	case kindPage:
		if err := (&session.WatchRequest{App: t.app, Instance: t.instance, Stream: t.stream}).Check(); err != nil {
			http.Error(w, "bad stream name", http.StatusBadRequest)
			return
		}
		player.Page(w, r, t.base)
		return
	}
	if !h.cors(w, r) {
		return
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
	case http.MethodOptions:
		w.WriteHeader(http.StatusNoContent)
		return
	default:
		w.Header().Set("Allow", "GET, HEAD, OPTIONS")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	switch t.kind {
	case kindFLV:
		h.serveFLV(w, r, t)
	case kindHLS:
		h.serveHLS(w, r, t)
	default:
		http.NotFound(w, r)
	}
}

// cors answers the CORS headers of r; false when the origin is refused
// (answered 403).
func (h *Handler) cors(w http.ResponseWriter, r *http.Request) bool {
	origin := r.Header.Get("Origin")
	hd := w.Header()
	if origin == "" {
		return true
	}
	switch {
	case h.anyOrig:
		hd.Set("Access-Control-Allow-Origin", "*")
	case h.origins[strings.ToLower(origin)]:
		hd.Set("Access-Control-Allow-Origin", origin)
		hd.Add("Vary", "Origin")
	default:
		http.Error(w, "origin not allowed", http.StatusForbidden)
		return false
	}
	if r.Method == http.MethodOptions {
		hd.Set("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS")
		if rh := r.Header.Get("Access-Control-Request-Headers"); rh != "" {
			hd.Set("Access-Control-Allow-Headers", rh)
		}
		hd.Set("Access-Control-Max-Age", "600")
	}
	return true
}

// clientIP is the viewer's address.
func (h *Handler) clientIP(r *http.Request) string {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		return host
	}
	return tunnel.ClientIP(ap.Addr(), h.cfg.TrustedProxies, r.Header.Values("Forwarded"), r.Header.Values("X-Forwarded-For")).String()
}

func (h *Handler) request(r *http.Request, t target, proto string) session.WatchRequest {
	page := r.Header.Get("Referer")
	if page == "" {
		page = r.Header.Get("Origin")
	}
	inst := t.instance
	if inst == "" {
		inst = "_definst_"
	}
	return session.WatchRequest{App: t.app, Instance: inst, Stream: t.stream, Query: r.URL.RawQuery,
		IP: h.clientIP(r), Protocol: proto, PageURL: page}
}

// authorize asks the core about req and answers a refusal: 403 for a
// decided denial, 401 when no token came and one may be needed, 400 for
// a bad name, 503 when the authorizer failed to decide.
func (h *Handler) authorize(w http.ResponseWriter, r *http.Request, req session.WatchRequest) bool {
	err := h.srv.AuthorizeWatch(r.Context(), req)
	if err == nil {
		return true
	}
	h.refused.Add(1)
	var de *session.DenyError
	switch {
	case errors.Is(err, session.ErrBadName):
		http.Error(w, "bad stream name", http.StatusBadRequest)
	case errors.As(err, &de):
		status := http.StatusForbidden
		if r.URL.Query().Get("token") == "" {
			status = http.StatusUnauthorized
			w.Header().Set("WWW-Authenticate", `Token realm="rtmphub"`)
		}
		http.Error(w, de.Description, status)
	default:
		http.Error(w, "authorization failed", http.StatusServiceUnavailable)
	}
	return false
}

// serveFLV starts an HTTP-FLV or WebSocket-FLV viewer. An HTTP-FLV
// viewer takes the connection from the HTTP server and lives on without
// this goroutine (see httpflv); a WebSocket one keeps it, to read the
// peer's close.
func (h *Handler) serveFLV(w http.ResponseWriter, r *http.Request, t target) {
	ws := strings.EqualFold(r.Header.Get("Upgrade"), "websocket")
	proto, pi := ProtoHTTPFLV, iFLV
	if ws {
		proto, pi = ProtoWSFLV, iWS
	}
	req := h.request(r, t, proto)
	if !h.authorize(w, r, req) {
		return
	}
	if r.Method == http.MethodHead && !ws {
		flvHeaders(w.Header())
		w.WriteHeader(http.StatusOK)
		return
	}
	stall := h.srv.Config().StallTimeout
	var (
		sink      httpflv.Sink
		closeConn func()
		notFound  func()
		wc        *websocket.Conn
	)
	if ws {
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: h.anyOrig, OriginPatterns: h.originPatterns()})
		if err != nil {
			return // Accept answered
		}
		wc, sink = c, wsSink{c}
		closeConn = func() { c.CloseNow() }
		notFound = func() { c.Close(websocket.StatusPolicyViolation, "stream not found") }
	} else {
		s, err := hijackFLV(w, r)
		if err != nil {
			h.log.Debug("http-flv: cannot take the connection", "err", err.Error())
			return
		}
		sink, closeConn = s, s.close
		if s.rc != nil {
			sink = inlineConnSink{s}
		}
		notFound = func() { s.refuse(stall) }
	}

	start := time.Now()
	ready := make(chan struct{})
	var (
		v      *httpflv.Viewer
		detach func()
	)
	v = httpflv.New(h.srv.PlayerLimits(), stall, sink, func(why error) {
		<-ready
		closeConn()
		h.untrack(v)
		defer h.viewers.Done()
		if detach == nil {
			return // never attached
		}
		detach()
		n := v.Bytes()
		h.bytes[pi].Add(n)
		reason := "closed"
		if why != nil {
			reason = why.Error()
		}
		h.log.Info("access", "event", "watch_end", "ip", req.IP, "protocol", proto, "app", req.App,
			"instance", req.Instance, "stream", req.Stream, "bytes_out", n,
			"duration", time.Since(start).Round(time.Millisecond).String(), "reason", reason)
	})
	v.SetProtocol(proto)
	h.viewers.Add(1)
	if !h.track(v) {
		close(ready)
		v.Stop(errClosing)
		return
	}
	_, d, err := h.srv.Watch(req, v, live.ReaderOptions{})
	detach = d
	close(ready)
	if err != nil {
		notFound()
		v.Stop(err)
		return
	}
	h.requests[pi].Add(1)
	if wc != nil {
		v.Run(wc.CloseRead(h.ctx)) // the viewer's close frame ends it; it sends nothing else
	}
}

var errClosing = errors.New("web: server stopping")

// track remembers a running viewer, for Close; false when closing.
func (h *Handler) track(v *httpflv.Viewer) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closing {
		return false
	}
	if h.running == nil {
		h.running = make(map[*httpflv.Viewer]struct{})
	}
	h.running[v] = struct{}{}
	return true
}

func (h *Handler) untrack(v *httpflv.Viewer) {
	h.mu.Lock()
	delete(h.running, v)
	h.mu.Unlock()
}

func (h *Handler) originPatterns() []string {
	if h.anyOrig {
		return nil
	}
	var ps []string
	for o := range h.origins {
		if _, host, ok := strings.Cut(o, "://"); ok {
			ps = append(ps, host)
		} else {
			ps = append(ps, o)
		}
	}
	return ps
}

func flvHeaders(hd http.Header) {
	hd.Set("Content-Type", "video/x-flv")
	hd.Set("Cache-Control", "no-cache, no-store")
	hd.Set("X-Content-Type-Options", "nosniff")
}

// connSink writes an HTTP-FLV body straight to the connection, which it
// took from the HTTP server: the body has no length and ends when the
// connection closes (HTTP/1.1 allows it, every player reads it), so
// every batch of tags is one write, with no chunk framing. The response
// head goes out with the first batch, once the viewer is attached to a
// live stream; refuse answers 404 instead.
type connSink struct {
	nc     net.Conn
	rc     syscall.RawConn // nil: no non-blocking writes (TLS)
	iov    []sockio.Iovec
	head   []byte // the response head, until written
	origin string // the Access-Control-Allow-Origin answer, for refuse
}

// inlineConnSink is a connSink on a plain TCP socket: the publisher's
// goroutine writes to it (httpflv.Inline).
type inlineConnSink struct{ *connSink }

func (s inlineConnSink) TryWritev(bufs [][]byte) (int, error) {
	n, iov, err := sockio.WritevNow(s.rc, bufs, s.connSink.iov)
	s.connSink.iov = iov // the scratch is the connSink's, shared by every copy
	return n, err
}

// hijackFLV takes the connection of r from the HTTP server.
func hijackFLV(w http.ResponseWriter, r *http.Request) (*connSink, error) {
	hd := w.Header()
	flvHeaders(hd)
	hd.Set("Connection", "close")
	nc, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return nil, err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "HTTP/1.%d 200 OK\r\n", min(r.ProtoMinor, 1))
	if err := hd.Write(&b); err != nil {
		nc.Close()
		return nil, err
	}
	b.WriteString("\r\n")
	if brw.Reader.Buffered() > 0 {
		// A pipelined request after an endless body can never be
		// answered; the viewer gets the stream and the request is dropped.
		brw.Reader.Discard(brw.Reader.Buffered())
	}
	return &connSink{nc: nc, rc: sockio.RawConnOf(nc), head: []byte(b.String()),
		origin: hd.Get("Access-Control-Allow-Origin")}, nil
}

// WriteFLV writes p (after the response head, the first time) within
// deadline. The deadline is lifted after: the publisher's non-blocking
// writes (inlineConnSink) must never find one that passed.
func (s *connSink) WriteFLV(p []byte, deadline time.Time) error {
	s.nc.SetWriteDeadline(deadline)
	if s.head != nil {
		if _, err := s.nc.Write(s.head); err != nil {
			return err
		}
		s.head = nil
	}
	_, err := s.nc.Write(p)
	if err == nil {
		err = s.nc.SetWriteDeadline(time.Time{})
	}
	return err
}

// refuse answers 404 on a connection whose stream is not live.
func (s *connSink) refuse(stall time.Duration) {
	head := "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 17\r\nConnection: close\r\n"
	if s.origin != "" {
		head += "Access-Control-Allow-Origin: " + s.origin + "\r\n"
	}
	s.nc.SetWriteDeadline(time.Now().Add(stall))
	io.WriteString(s.nc, head+"\r\nstream not found\n")
}

func (s *connSink) close() { s.nc.Close() }

// wsSink sends each batch of tags as one binary WebSocket message.
type wsSink struct{ c *websocket.Conn }

func (s wsSink) WriteFLV(p []byte, deadline time.Time) error {
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	return s.c.Write(ctx, websocket.MessageBinary, p)
}

// authCache remembers allowed HLS viewers for a while.
type authCache struct {
	ttl time.Duration
	mu  sync.Mutex
	m   map[string]time.Time
}

// maxAuthCache bounds the viewers remembered; a full cache starts over.
const maxAuthCache = 16384

func (c *authCache) allowed(key string) bool {
	if c.ttl <= 0 {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	until, ok := c.m[key]
	return ok && time.Now().Before(until)
}

func (c *authCache) allow(key string) {
	if c.ttl <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= maxAuthCache {
		c.m = make(map[string]time.Time)
	}
	c.m[key] = time.Now().Add(c.ttl)
}
