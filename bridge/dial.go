package bridge

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"time"

	"github.com/rtmphub/rtmphub/tunnel"
	"github.com/rtmphub/rtmphub/tunnel/rtmpquic"
)

// DialFunc opens one connection carrying RTMP bytes to a hub or origin.
type DialFunc func(ctx context.Context) (net.Conn, error)

// DialConfig says how to reach the far end.
type DialConfig struct {
	// URL is rtmp://host[:1935], rtmps://host[:443], rtmpt://host[:80],
	// rtmpts://host[:443] or quic://host[:1935]; a path is ignored.
	URL string
	// Insecure accepts any TLS certificate (rtmps, rtmpts, quic).
	Insecure bool
	// PinSHA256 accepts only the certificate with this SHA-256 (hex).
	PinSHA256 string
	// Timeout bounds the connection set-up (default 10s).
	Timeout time.Duration
	// QUIC tunes quic:// connections.
	QUIC rtmpquic.Config
}

// NewDialer checks cfg and returns the function that dials it.
func NewDialer(cfg DialConfig) (DialFunc, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("bad url %q: %w", cfg.URL, err)
	}
	if u.Hostname() == "" {
		return nil, fmt.Errorf("bad url %q: no host", cfg.URL)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	port := func(def string) string {
		if p := u.Port(); p != "" {
			return net.JoinHostPort(u.Hostname(), p)
		}
		return net.JoinHostPort(u.Hostname(), def)
	}
	// Fail early on a bad pin rather than at the first client.
	tc, err := tunnel.ClientTLSConfig(u.Hostname(), cfg.Insecure, cfg.PinSHA256, nil)
	if err != nil {
		return nil, err
	}
	switch u.Scheme {
	case "rtmp":
		addr := port("1935")
		return func(ctx context.Context) (net.Conn, error) {
			d := net.Dialer{Timeout: cfg.Timeout}
			return d.DialContext(ctx, "tcp", addr)
		}, nil
	case "rtmps":
		addr := port("443")
		return func(ctx context.Context) (net.Conn, error) {
			d := tlsDialer(cfg.Timeout, tc)
			return d.DialContext(ctx, "tcp", addr)
		}, nil
	case "rtmpt", "rtmpts":
		raw := u.Scheme + "://" + u.Host
		return func(ctx context.Context) (net.Conn, error) {
			ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
			defer cancel()
			return tunnel.DialRTMPT(ctx, raw, tunnel.DialOptions{TLSConfig: tc})
		}, nil
	case "quic":
		raw := "quic://" + u.Host
		return func(ctx context.Context) (net.Conn, error) {
			ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
			defer cancel()
			return rtmpquic.Dial(ctx, raw, rtmpquic.DialOptions{
				Insecure: cfg.Insecure, PinSHA256: cfg.PinSHA256, Config: cfg.QUIC})
		}, nil
	}
	return nil, fmt.Errorf("bad url %q: scheme must be rtmp, rtmps, rtmpt, rtmpts, quic or roqr", cfg.URL)
}
