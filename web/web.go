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
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rtmphub/rtmphub/session"
	"github.com/rtmphub/rtmphub/tunnel"
	"github.com/rtmphub/rtmphub/web/hls"
	"github.com/rtmphub/rtmphub/web/httpflv"
	"github.com/rtmphub/rtmphub/web/player"
	"github.com/rtmphub/rtmphub/web/sdk"
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
	// DataDir is the applications folder, whose <app>/public/ folders
	// are served at /<app>/ (public.go). Default: the core's.
	DataDir string
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
	if cfg.DataDir == "" {
		cfg.DataDir = srv.Config().DataDir
	}
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
	if r.URL.Path == sdk.Path {
		// Before parseTarget, which would take /sdk/... for a player
		// page of an application called "sdk", and before the
		// application front ends: the hub's own paths win.
		sdk.Handler().ServeHTTP(w, r)
		return
	}
	t := parseTarget(r.URL.Path)
	// Media paths (.flv, the HLS files) are always streams: they do not
	// look for a front end file first, which would cost an HLS viewer's
	// several requests a second a folder lookup each.
	if t.kind != kindFLV && t.kind != kindHLS && t.kind != kindAsset && h.servePublic(w, r) {
		return
	}
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
