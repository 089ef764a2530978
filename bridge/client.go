package bridge

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"sync/atomic"
	"time"

	"github.com/rtmphub/rtmphub/tunnel"
)

func tlsDialer(timeout time.Duration, tc *tls.Config) *tls.Dialer {
	return &tls.Dialer{NetDialer: &net.Dialer{Timeout: timeout}, Config: tc}
}

// defaultLinger bounds the wait for the second direction of a connection
// once the first has ended.
const defaultLinger = 10 * time.Second

// defaultStall bounds a write to a side that stopped reading (see Pipe).
const defaultStall = 30 * time.Second

// Client is the client bridge: it accepts local TCP RTMP connections
// (from ffmpeg, OBS, a Flash-era encoder) and carries each to the hub
// over its own connection made by Dial (or DialRoQR).
type Client struct {
	// Dial carries each client's bytes (rtmp, rtmps, rtmpt, rtmpts, quic).
	Dial DialFunc
	// DialRoQR, when set instead, carries each client's messages over
	// RoQR: the bridge terminates the local RTMP handshake and chunking.
	DialRoQR RoQRDialFunc
	Logger   *slog.Logger
	// Linger bounds the wait for the second direction once the first has
	// ended (default 10s).
	Linger time.Duration

	ids atomic.Uint64
}

// Serve accepts on ln until ctx ends (which closes ln) and waits for the
// connections it carries.
func (c *Client) Serve(ctx context.Context, ln net.Listener) error {
	log := c.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return tunnel.Serve(ctx, ln, "tcp", log, func(ctx context.Context, nc net.Conn, _ string) {
		id := c.ids.Add(1)
		l := log.With("conn", id, "client", nc.RemoteAddr().String())
		if c.DialRoQR != nil {
			c.carryRoQR(ctx, nc, l)
			return
		}
		c.carry(ctx, nc, l)
	})
}

func (c *Client) carry(ctx context.Context, nc net.Conn, log *slog.Logger) {
	start := time.Now()
	up, err := c.Dial(ctx)
	if err != nil {
		log.Warn("hub unreachable, closing the client", "err", err.Error())
		nc.Close()
		return
	}
	log.Info("carrying", "hub", up.RemoteAddr().String(), "setup", time.Since(start).Round(time.Microsecond).String())
	stop := context.AfterFunc(ctx, func() { nc.Close(); up.Close() })
	defer stop()
	linger := c.Linger
	if linger <= 0 {
		linger = defaultLinger
	}
	st, err := Pipe(nc, up, linger, defaultStall)
	attrs := []any{"sent", st.AToB, "received", st.BToA, "duration", time.Since(start).Round(time.Millisecond).String()}
	if err != nil {
		attrs = append(attrs, "err", err.Error())
	}
	log.Info("closed", attrs...)
}
