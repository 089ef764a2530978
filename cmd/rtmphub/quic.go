package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/rtmphub/rtmphub/bridge"
	"github.com/rtmphub/rtmphub/session"
	"github.com/rtmphub/rtmphub/tunnel"
	"github.com/rtmphub/rtmphub/tunnel/rtmpquic"
)

// handlers are where accepted connections go: the session core, or, in
// gateway mode (--upstream), the origin. conn takes RTMP byte streams,
// roqr RoQR clients (messages framed on QUIC). served takes RTMP byte
// streams too, but serves each to its end before it returns: a
// WebSocket's connection lives as long as its HTTP handler runs.
type handlers struct {
	conn   tunnel.ConnHandler
	served tunnel.ConnHandler
	roqr   func(ctx context.Context, rc *rtmpquic.RoQRConn)
}

func connHandlers(cfg *config, gcfg bridge.GatewayConfig, srv *session.Server, log *slog.Logger) (handlers, error) {
	if cfg.Upstream == "" {
		return handlers{
			// A socket: StartConn, not ServeConn, so that the client's
			// goroutine parks on a shallow stack (4 KiB a player instead
			// of 8). An RTMPT session ends when its handler returns: it is
			// served to the end.
			conn: func(ctx context.Context, nc net.Conn, info tunnel.Info) {
				ci := session.ConnInfo{Protocol: info.Protocol, RemoteIP: info.RemoteIP, TunnelID: info.TunnelID}
				if info.TunnelID != "" {
					srv.ServeConn(ctx, nc, ci)
					return
				}
				srv.StartConn(ctx, nc, ci)
			},
			served: func(ctx context.Context, nc net.Conn, info tunnel.Info) {
				srv.ServeConn(ctx, nc, session.ConnInfo{Protocol: info.Protocol, RemoteIP: info.RemoteIP, TunnelID: info.TunnelID})
			},
			roqr: func(ctx context.Context, rc *rtmpquic.RoQRConn) {
				srv.ServeTransport(ctx, rc, session.ConnInfo{Protocol: rtmpquic.RoQRProtocol})
			},
		}, nil
	}
	gcfg.Logger = log.With("component", "gateway")
	gw, err := bridge.NewGateway(gcfg)
	if err != nil {
		return handlers{}, fmt.Errorf("%s: %w", cfg.name(&cfg.Upstream), err)
	}
	log.Info("gateway mode: every client is forwarded to the upstream", "upstream", gw.Addr(), "proxy_protocol", cfg.UpstreamProxy)
	serve := func(ctx context.Context, nc net.Conn, info tunnel.Info) {
		gw.Serve(ctx, nc, info.Protocol, info.RemoteIP)
	}
	return handlers{
		conn:   serve,
		served: serve, // Serve returns when the client has gone
		roqr: func(ctx context.Context, rc *rtmpquic.RoQRConn) {
			gw.ServeRoQR(ctx, rc, "")
		},
	}, nil
}

// listenQUIC binds the QUIC listener (nil when off, or when the default
// address cannot be bound). Its certificate is the configured one, or a
// self-signed one kept in the data dir; the SHA-256 fingerprint is
// logged for clients to pin.
func listenQUIC(cfg *config, qcfg rtmpquic.Config, tlsCfg *tls.Config, log *slog.Logger) (*rtmpquic.Listener, error) {
	if cfg.QUICAddr == "" {
		return nil, nil
	}
	setting := cfg.name(&cfg.QUICAddr)
	qtls := tlsCfg
	if qtls == nil {
		cert, created, err := rtmpquic.LoadOrCreateSelfSigned(cfg.DataDir)
		if err != nil {
			return nil, fmt.Errorf("%s: self-signed certificate in %s: %w", setting, cfg.DataDir, err)
		}
		if created {
			log.Info("made a self-signed certificate for QUIC", "dir", cfg.DataDir)
		}
		qtls = &tls.Config{Certificates: []tls.Certificate{cert}}
		log.Info("quic certificate", "sha256", tunnel.Fingerprint(cert.Certificate[0]), "self_signed", true)
	} else {
		log.Info("quic certificate", "sha256", tunnel.Fingerprint(qtls.Certificates[0].Certificate[0]), "self_signed", false)
	}
	qcfg.RoQR = true
	qcfg.Logger = log
	ln, err := rtmpquic.Listen(cfg.QUICAddr, qtls, qcfg)
	if err != nil {
		if cfg.isExplicit(&cfg.QUICAddr) || !errors.Is(err, syscall.EACCES) && !errors.Is(err, syscall.EADDRINUSE) {
			return nil, fmt.Errorf("%s %s: %w", setting, cfg.QUICAddr, err)
		}
		log.Warn("default QUIC port not available; QUIC is off", "transport", rtmpquic.Protocol, "addr", cfg.QUICAddr, "err", err.Error())
		return nil, nil
	}
	// RoQR clients are served in gateway mode too: the gateway relays
	// their messages over its own RTMP connection to the origin.
	alpn := rtmpquic.ALPN + "," + rtmpquic.RoQRALPN
	log.Info("listening", "transport", rtmpquic.Protocol, "addr", ln.Addr().String(), "alpn", alpn, "roqr_datagrams", cfg.RoQRDatagrams)
	return ln, nil
}

// serveQUIC serves ln's RTMP connections with h.conn, and its RoQR
// clients with h.roqr, until ctx ends; the channel closes once every
// connection has ended.
func serveQUIC(ctx context.Context, ln *rtmpquic.Listener, h handlers, log *slog.Logger) <-chan struct{} {
	done := make(chan struct{})
	if ln == nil {
		close(done)
		return done
	}
	var roqr sync.WaitGroup
	roqr.Add(1)
	go func() {
		defer roqr.Done()
		for {
			rc, err := ln.AcceptRoQR() // ends when ctx closes ln
			if err != nil {
				return
			}
			roqr.Add(1)
			go func() {
				defer roqr.Done()
				h.roqr(ctx, rc)
			}()
		}
	}()
	go func() {
		defer close(done)
		err := tunnel.Serve(ctx, ln, rtmpquic.Protocol, log, func(ctx context.Context, nc net.Conn, proto string) {
			h.conn(ctx, nc, tunnel.Info{Protocol: proto})
		})
		ln.Close() // idempotent: ends the RoQR accept loop too
		roqr.Wait()
		if err != nil {
			log.Error("quic listener failed", "err", err.Error())
		}
		// Every RTMP connection has ended: give the clients a moment to
		// close their QUIC connections, then release the socket.
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		ln.Shutdown(sctx)
	}()
	return done
}
