package rtmpws

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/rtmphub/rtmphub/tunnel"
)

// Path is where the server takes RTMP over WebSocket, on every port that
// serves HTTP.
const Path = "/rtmp"

// Subprotocol is the WebSocket subprotocol a client may offer.
const Subprotocol = "rtmp"

// The protocol names scripts (client.protocol) and the admin API see.
const (
	Protocol       = "rtmpws"
	ProtocolSecure = "rtmpwss"
)

// Config tunes a Handler. The zero value of a field means its default,
// filled in by WithDefaults; a negative PingInterval turns pings off.
type Config struct {
	// AllowOrigins are the origins (https://example.com) whose pages may
	// open the WebSocket: a request with another Origin header gets 403.
	// None, or "*", allows any: pages of other sites are what this
	// transport is for, and a client that is not a browser sends what
	// Origin it likes anyway. A page of the hub's own host is always
	// allowed, and so is a request without an Origin header (not a
	// browser).
	AllowOrigins []string
	// TrustedProxies are the peers whose Forwarded, X-Forwarded-For and
	// X-Forwarded-Proto headers are believed: they name the client's
	// address and whether it came over TLS (rtmpwss).
	TrustedProxies []netip.Prefix
	// PingInterval is how often the server pings a client, and
	// PongTimeout how long it waits for the pong before it closes the
	// connection (1008). A missing pong counts only while the core waits
	// in Read: pongs are read with the RTMP bytes, and a core that is
	// busy (or throttled) has simply not read it yet. Pings also keep
	// reverse proxies, which close silent connections (nginx after 60s by
	// default), from dropping a quiet client. Defaults 20s and 20s; a
	// negative PingInterval: none.
	PingInterval time.Duration
	PongTimeout  time.Duration
	// MaxFrame is the largest WebSocket message a client may send; a
	// larger one closes the connection (1009). Frame boundaries mean
	// nothing to RTMP, and messages are read as they arrive, never held
	// whole, so this bounds a peer's misbehaviour rather than memory.
	// Default 1 MiB.
	MaxFrame int
	// Logger gets one line per connection closed for breaking the mapping
	// (text frame, oversized frame, no pong) and a debug line per refused
	// request.
	Logger *slog.Logger
}

// DefaultConfig is the configuration the zero Config stands for.
func DefaultConfig() Config { return Config{}.WithDefaults() }

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	if len(c.AllowOrigins) == 0 {
		c.AllowOrigins = []string{"*"}
	}
	if c.PingInterval == 0 {
		c.PingInterval = 20 * time.Second
	}
	if c.PongTimeout <= 0 {
		c.PongTimeout = 20 * time.Second
	}
	if c.MaxFrame <= 0 {
		c.MaxFrame = 1 << 20
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Handler upgrades requests for Path to WebSocket and hands each
// connection, as a net.Conn of RTMP bytes, to a tunnel.ConnHandler. It
// serves the connection for as long as the ConnHandler runs (an HTTP
// handler's goroutine), so the ConnHandler must serve it to its end
// (session.Server.ServeConn, not StartConn).
type Handler struct {
	cfg     Config
	log     *slog.Logger
	serve   tunnel.ConnHandler
	anyOrig bool
	origins map[string]bool

	ctx    context.Context // ends with Close
	cancel context.CancelFunc

	mu      sync.Mutex
	closing bool
	conns   map[*serverConn]struct{}
	wg      sync.WaitGroup

	stats struct{ accepted, refused, textFrames, tooLarge, noPong atomic.Uint64 }
}

// New returns a handler that serves every WebSocket with serve.
func New(cfg Config, serve tunnel.ConnHandler) *Handler {
	cfg = cfg.WithDefaults()
	h := &Handler{cfg: cfg, log: cfg.Logger, serve: serve, origins: make(map[string]bool), conns: make(map[*serverConn]struct{})}
	h.ctx, h.cancel = context.WithCancel(context.Background())
	for _, o := range cfg.AllowOrigins {
		if o = strings.TrimSpace(o); o == "*" {
			h.anyOrig = true
		} else if o != "" {
			h.origins[strings.TrimSuffix(strings.ToLower(o), "/")] = true
		}
	}
	if len(h.origins) == 0 {
		h.anyOrig = true
	}
	return h
}

// Stats counts what the handler did.
type Stats struct {
	Open       int    // connections now
	Accepted   uint64 // upgrades, ever
	Refused    uint64 // requests refused: not an upgrade, origin, closing
	TextFrames uint64 // connections closed for a text frame
	TooLarge   uint64 // connections closed for a frame over MaxFrame
	NoPong     uint64 // connections closed for a missing pong
}

func (h *Handler) Stats() Stats {
	h.mu.Lock()
	n := len(h.conns)
	h.mu.Unlock()
	return Stats{Open: n, Accepted: h.stats.accepted.Load(), Refused: h.stats.refused.Load(),
		TextFrames: h.stats.textFrames.Load(), TooLarge: h.stats.tooLarge.Load(), NoPong: h.stats.noPong.Load()}
}

// Close closes every connection and waits for their handlers to return;
// requests that come later are refused (503).
func (h *Handler) Close() {
	h.mu.Lock()
	h.closing = true
	conns := make([]*serverConn, 0, len(h.conns))
	for c := range h.conns {
		conns = append(conns, c)
	}
	h.mu.Unlock()
	h.cancel()
	for _, c := range conns {
		c.closeWith(websocket.StatusGoingAway, "server stopping", nil)
	}
	h.wg.Wait()
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	remote := r.RemoteAddr
	if !isUpgrade(r) {
		h.stats.refused.Add(1)
		h.log.Debug("rtmpws: not a WebSocket upgrade", "remote", remote, "method", r.Method, "path", r.URL.Path)
		w.Header().Set("Connection", "Upgrade")
		w.Header().Set("Upgrade", "websocket")
		http.Error(w, Path+" carries RTMP over WebSocket: upgrade required", http.StatusUpgradeRequired)
		return
	}
	if !h.originAllowed(r) {
		h.stats.refused.Add(1)
		h.log.Info("rtmpws: origin refused", "remote", remote, "origin", r.Header.Get("Origin"))
		http.Error(w, "origin not allowed", http.StatusForbidden)
		return
	}
	h.mu.Lock()
	if h.closing {
		h.mu.Unlock()
		h.stats.refused.Add(1)
		http.Error(w, "server stopping", http.StatusServiceUnavailable)
		return
	}
	h.wg.Add(1)
	h.mu.Unlock()
	defer h.wg.Done()

	raw, br, sub, err := upgrade(w, r, true)
	if err != nil {
		h.stats.refused.Add(1)
		h.log.Debug("rtmpws: upgrade failed", "remote", remote, "err", err.Error())
		return
	}
	peer := peerAddr(r.RemoteAddr)
	info := tunnel.Info{Protocol: Protocol}
	if ip := tunnel.ClientIP(peer, h.cfg.TrustedProxies, r.Header.Values("Forwarded"), r.Header.Values("X-Forwarded-For")); ip.IsValid() && ip != peer.Unmap() {
		info.RemoteIP = ip.String()
	}
	if r.TLS != nil || tunnel.ViaTLS(raw) ||
		tunnel.ForwardedTLS(peer, h.cfg.TrustedProxies, r.Header.Values("Forwarded"), r.Header.Values("X-Forwarded-Proto")) {
		info.Protocol = ProtocolSecure
	}
	c := newServerConn(raw, br, sub, h.cfg.MaxFrame, h.log.With("proto", info.Protocol))
	h.mu.Lock()
	if h.closing {
		h.mu.Unlock()
		c.closeWith(websocket.StatusGoingAway, "server stopping", nil)
		c.drain()
		return
	}
	h.conns[c] = struct{}{}
	h.mu.Unlock()
	h.stats.accepted.Add(1)
	if h.cfg.PingInterval > 0 {
		c.startKeepalive(h.cfg.PingInterval, h.cfg.PongTimeout)
	}

	h.serve(h.ctx, c, info)

	// The core is done with the connection: close it, and read what the
	// peer still sends until its close frame (at most closeGrace).
	c.Close()
	c.drain()
	switch why := c.why.Load(); {
	case why == nil:
	case why.code == websocket.StatusUnsupportedData:
		h.stats.textFrames.Add(1)
	case why.code == websocket.StatusMessageTooBig:
		h.stats.tooLarge.Add(1)
	case why.code == websocket.StatusPolicyViolation:
		h.stats.noPong.Add(1)
	}
	h.mu.Lock()
	delete(h.conns, c)
	h.mu.Unlock()
}

// originAllowed applies AllowOrigins to r's Origin header.
func (h *Handler) originAllowed(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if h.anyOrig || origin == "" {
		return true
	}
	o := strings.TrimSuffix(strings.ToLower(origin), "/")
	if h.origins[o] {
		return true
	}
	// A page of the hub itself (same host and port as the request).
	if _, host, ok := strings.Cut(o, "://"); ok && strings.EqualFold(host, r.Host) {
		return true
	}
	return false
}

func isUpgrade(r *http.Request) bool {
	return r.Method == http.MethodGet && headerHas(r.Header, "Connection", "upgrade") && headerHas(r.Header, "Upgrade", "websocket")
}

// headerHas reports whether a comma-separated header holds token.
func headerHas(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

func peerAddr(remote string) netip.Addr {
	if ap, err := netip.ParseAddrPort(remote); err == nil {
		return ap.Addr().Unmap()
	}
	host, _, _ := net.SplitHostPort(remote)
	a, _ := netip.ParseAddr(host)
	return a.Unmap()
}
