package bridge

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"sync"
	"time"

	"github.com/rtmphub/rtmphub/rtmp"
	"github.com/rtmphub/rtmphub/rtmp/message"
	"github.com/rtmphub/rtmphub/tunnel"
)

// RoQRDialFunc opens one RoQR connection (messages, not bytes) to a hub.
type RoQRDialFunc func(ctx context.Context) (*tunnel.RoQRConn, error)

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
	return func(ctx context.Context) (*tunnel.RoQRConn, error) {
		ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
		defer cancel()
		return tunnel.DialRoQR(ctx, raw, tunnel.QUICDialOptions{
			Insecure: cfg.Insecure, PinSHA256: cfg.PinSHA256, QUICConfig: cfg.QUIC})
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
	var once sync.Once
	closeBoth := func() { once.Do(func() { local.Close(); hub.Close() }) }
	stop := context.AfterFunc(ctx, closeBoth)
	defer stop()
	var wg sync.WaitGroup
	var errs [2]error
	wg.Add(2)
	go func() { // client → hub
		defer wg.Done()
		defer closeBoth()
		for {
			m, err := local.ReadMessage()
			if err != nil {
				errs[0] = err
				return
			}
			switch m.Type {
			case message.TypeSetChunkSize, message.TypeAbort, message.TypeAck:
				continue // chunk layer of the local leg
			}
			if err := hub.WriteMessages([]message.Message{*m}); err != nil {
				errs[0] = err
				return
			}
		}
	}()
	go func() { // hub → client
		defer wg.Done()
		defer closeBoth()
		for {
			m, err := hub.ReadMessage()
			if err != nil {
				errs[1] = err
				return
			}
			if m.Type == message.TypeAck {
				continue // the local leg acknowledges its own bytes
			}
			if err := local.WriteMessages([]message.Message{*m}); err != nil {
				errs[1] = err
				return
			}
		}
	}()
	wg.Wait()
	attrs := []any{"sent", hub.BytesWritten(), "received", hub.BytesRead(), "duration", time.Since(start).Round(time.Millisecond).String()}
	if s, on := hub.DatagramStats(); on {
		attrs = append(attrs, "datagrams_sent", s.Sent, "datagrams_too_large", s.TooLarge, "datagrams_received", s.Received,
			"datagrams_delivered", s.Delivered, "datagrams_dropped", s.Stale+s.Unsynced+s.Overflow+s.Bad)
	}
	for _, err := range errs {
		if err != nil && err != io.EOF && !errors.Is(err, net.ErrClosed) {
			attrs = append(attrs, "err", err.Error())
			break
		}
	}
	log.Info("closed", attrs...)
}
