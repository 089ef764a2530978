package bridge

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"time"

	"github.com/rtmphub/rtmphub/rtmp"
	"github.com/rtmphub/rtmphub/rtmp/message"
	"github.com/rtmphub/rtmphub/tunnel"
	"github.com/rtmphub/rtmphub/tunnel/rtmpquic"
)

// RoQRDialFunc opens one RoQR connection (messages, not bytes) to a hub.
type RoQRDialFunc func(ctx context.Context) (*rtmpquic.RoQRConn, error)

// NewRoQRDialer dials cfg.URL, roqr://host[:1935]. With
// cfg.QUIC.RoQRDatagrams the connections offer QUIC DATAGRAMs: where the
// hub offers them too, media a decoder can lose travels in datagrams.
func NewRoQRDialer(cfg DialConfig) (RoQRDialFunc, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || u.Scheme != "roqr" || u.Hostname() == "" {
		return nil, fmt.Errorf("bad url %q: want roqr://host[:port]", cfg.URL)
	}
	if _, err := tunnel.ClientTLSConfig(u.Hostname(), cfg.Insecure, cfg.PinSHA256, nil); err != nil {
		return nil, err
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	raw := "roqr://" + u.Host
	return func(ctx context.Context) (*rtmpquic.RoQRConn, error) {
		ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
		defer cancel()
		return rtmpquic.DialRoQR(ctx, raw, rtmpquic.DialOptions{
			Insecure: cfg.Insecure, PinSHA256: cfg.PinSHA256, Config: cfg.QUIC})
	}, nil
}

// handshakeTimeout bounds the local client's RTMP handshake.
const handshakeTimeout = 10 * time.Second

// carryRoQR terminates the local client's chunked RTMP (handshake, chunk
// sizes, acknowledgements) and relays its messages to the hub over RoQR,
// and the hub's back. Chunk-layer messages stay on their own leg.
func (c *Client) carryRoQR(ctx context.Context, nc net.Conn, log *slog.Logger) {
	start := time.Now()
	nc.SetDeadline(time.Now().Add(handshakeTimeout))
	local, _, err := rtmp.Accept(nc, 16<<20)
	if err != nil {
		log.Debug("local handshake failed", "err", err.Error())
		nc.Close()
		return
	}
	nc.SetDeadline(time.Time{})
	hub, err := c.DialRoQR(ctx)
	if err != nil {
		log.Warn("hub unreachable, closing the client", "err", err.Error())
		nc.Close()
		return
	}
	_, datagrams := hub.DatagramStats()
	log.Info("carrying", "hub", hub.RemoteAddr().String(), "mapping", "roqr", "datagrams", datagrams, "setup", time.Since(start).Round(time.Microsecond).String())
	end := (&msgPipe{a: local, b: hub,
		keepAB: func(m *message.Message) bool {
			switch m.Type {
			case message.TypeSetChunkSize, message.TypeAbort, message.TypeAck:
				return false // chunk layer of the local leg
			}
			return true
		},
		keepBA: func(m *message.Message) bool {
			return m.Type != message.TypeAck // the local leg acknowledges its own bytes
		},
		stall: defaultStall,
	}).run(ctx)
	attrs := []any{"sent", hub.BytesWritten(), "received", hub.BytesRead(), "duration", time.Since(start).Round(time.Millisecond).String()}
	attrs = append(attrs, datagramAttrs(hub)...)
	if end.err != nil {
		attrs = append(attrs, "err", end.err.Error())
	}
	log.Info("closed", attrs...)
}

// datagramAttrs are the log attributes of a RoQR connection's DATAGRAM
// counters (none when it does not use the datagram profile).
func datagramAttrs(rc *rtmpquic.RoQRConn) []any {
	s, on := rc.DatagramStats()
	if !on {
		return nil
	}
	return []any{"datagrams_sent", s.Sent, "datagrams_too_large", s.TooLarge, "datagrams_received", s.Received,
		"datagrams_delivered", s.Delivered, "datagrams_dropped", s.Stale + s.Unsynced + s.Overflow + s.Bad}
}
