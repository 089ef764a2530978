package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"syscall"
	"time"

	"github.com/rtmphub/rtmphub/session"
	"github.com/rtmphub/rtmphub/tunnel"
)

// serve wires the listeners to the session core and runs until ctx ends,
// then shuts down within cfg.ShutdownTimeout.
func serve(ctx context.Context, cfg *config, log *slog.Logger) error {
	srv := session.NewServer(session.Config{
		DataDir:         cfg.DataDir,
		StrictApps:      cfg.StrictApps,
		MaxConnections:  cfg.MaxConnections,
		MaxMessageSize:  uint32(cfg.MaxMessageSize),
		PlayerQueue:     cfg.PlayerQueue,
		StallTimeout:    cfg.StallTimeout,
		DisableGOPCache: !cfg.GOPCache,
		OutChunkSize:    uint32(cfg.ChunkSize),
		WriteMerge:      offSetting(cfg.WriteMerge),
		PublisherGrace:  offSetting(cfg.PublisherGrace),
	}, log)

	ln, err := listen("tcp", cfg.RTMPAddr, "RTMPHUB_RTMP_ADDR / --rtmp-addr")
	if err != nil {
		return err
	}
	log.Info("listening", "transport", "rtmp", "addr", ln.Addr().String())
	if cfg.DebugAddr != "" {
		dln, err := listen("tcp", cfg.DebugAddr, "RTMPHUB_DEBUG_ADDR / --debug-addr")
		if err != nil {
			ln.Close()
			return err
		}
		log.Info("listening", "transport", "pprof", "addr", dln.Addr().String())
		dsrv := &http.Server{Handler: pprofMux(), ReadHeaderTimeout: 10 * time.Second}
		go dsrv.Serve(dln)
		defer dsrv.Close()
	}
	log.Info("rtmphub started", "version", version(), "data_dir", cfg.DataDir)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	served := make(chan error, 1)
	go func() {
		served <- tunnel.Serve(ctx, ln, "rtmp", log, func(ctx context.Context, nc net.Conn, proto string) {
			srv.ServeConn(ctx, nc, session.ConnInfo{Protocol: proto})
		})
	}()

	select {
	case <-ctx.Done():
	case err := <-served:
		if err != nil {
			return fmt.Errorf("rtmp listener: %w", err)
		}
	}
	log.Info("shutting down", "timeout", cfg.ShutdownTimeout.String())
	sctx, scancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer scancel()
	cancel()
	err = srv.Shutdown(sctx)
	if err != nil {
		log.Warn("shutdown timed out, clients left behind", "err", err)
	}
	select {
	case <-served:
	case <-sctx.Done():
	}
	log.Info("stopped")
	return nil
}

// pprofMux serves Go's runtime profiles under /debug/pprof/.
func pprofMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

// offSetting maps a duration setting where 0 means off onto the core's
// convention (negative = off, 0 = default).
func offSetting(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}

// listen binds addr, naming the setting when the port is taken or
// cannot be bound.
func listen(network, addr, setting string) (net.Listener, error) {
	ln, err := net.Listen(network, addr)
	if err != nil {
		switch {
		case errors.Is(err, syscall.EADDRINUSE):
			return nil, fmt.Errorf("%s %s: port already in use", setting, addr)
		case errors.Is(err, syscall.EACCES):
			return nil, fmt.Errorf("%s %s: permission denied (ports below 1024 need privileges)", setting, addr)
		}
		return nil, fmt.Errorf("%s %s: %w", setting, addr, err)
	}
	return ln, nil
}
