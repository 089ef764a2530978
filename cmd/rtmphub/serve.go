package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"syscall"
	"time"

	"github.com/rtmphub/rtmphub/session"
	"github.com/rtmphub/rtmphub/session/script"
	"github.com/rtmphub/rtmphub/tunnel"
)

// serve wires the listeners to the session core and runs until ctx ends,
// then shuts down within cfg.ShutdownTimeout.
func serve(ctx context.Context, cfg *config, log *slog.Logger) error {
	srv := session.NewServer(session.Config{
		DataDir:          cfg.DataDir,
		StrictApps:       cfg.StrictApps,
		MaxConnections:   cfg.MaxConnections,
		MaxMessageSize:   uint32(cfg.MaxMessageSize),
		PlayerQueue:      cfg.PlayerQueue,
		PlayerQueueBytes: cfg.PlayerQueueBytes,
		TCPNoDelay:       cfg.TCPNoDelay,
		StallTimeout:     cfg.StallTimeout,
		DisableGOPCache:  !cfg.GOPCache,
		OutChunkSize:     uint32(cfg.ChunkSize),
		WriteMerge:       offSetting(cfg.WriteMerge),
		PublisherGrace:   offSetting(cfg.PublisherGrace),
		CallTimeout:      cfg.CallTimeout,
		DisableBWCheck:   !cfg.BWCheck,
		SOSyncInterval:   cfg.SOSyncInterval,
		SOSaveInterval:   cfg.SOSaveInterval,
		MaxSharedObjects: cfg.MaxSharedObject,
		MaxSOSize:        cfg.MaxSOSize,
		MaxSOProperties:  cfg.MaxSOProperties,
		Application: script.Factory(script.Config{
			DataDir:  cfg.DataDir,
			MaxRun:   cfg.ScriptTimeout,
			QueueLen: cfg.ScriptQueue,
			Log:      log.With("component", "script"),
			Next:     testApplication(cfg.RPCTestApp),
		}),

		MaxConnectionsPerIP: cfg.MaxConnectionsPerIP,
		Authorize:           authorizer(cfg, log),
		AuthTimeout:         cfg.AuthTimeout,
		ClientBandwidthOut:  int64(cfg.ClientBandwidthOut),
		ClientBandwidthIn:   int64(cfg.ClientBandwidthIn),
		ClientIdleTimeout:   cfg.ClientIdleTimeout,
	}, log)

	var tlsCfg *tls.Config
	if cfg.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
		if err != nil {
			return fmt.Errorf("RTMPHUB_TLS_CERT / --tls-cert %s, RTMPHUB_TLS_KEY / --tls-key %s: %w", cfg.TLSCert, cfg.TLSKey, err)
		}
		tlsCfg = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	trusted, _ := tunnel.ParsePrefixes(cfg.TrustedProxies) // validated already

	var lns []net.Listener
	closeAll := func() {
		for _, l := range lns {
			l.Close()
		}
	}
	ln, err := listen("tcp", cfg.RTMPAddr, "RTMPHUB_RTMP_ADDR / --rtmp-addr")
	if err != nil {
		return err
	}
	lns = append(lns, ln)
	log.Info("listening", "transport", "rtmp", "addr", ln.Addr().String())
	// The HTTP and TLS ports: an address left at its default may be
	// unavailable (a privileged port, or one in use); RTMPT and TLS are
	// still sniffed on the RTMP port then. One set explicitly must bind.
	for _, o := range []struct {
		on        bool
		addr      string
		field     string
		setting   string
		transport string
	}{
		{cfg.HTTPAddr != "", cfg.HTTPAddr, "HTTPAddr", "RTMPHUB_HTTP_ADDR / --http-addr", "rtmpt"},
		{tlsCfg != nil && cfg.TLSAddr != "", cfg.TLSAddr, "TLSAddr", "RTMPHUB_TLS_ADDR / --tls-addr", "tls"},
	} {
		if !o.on {
			continue
		}
		l, err := listenOptional(o.addr, o.setting, o.transport, cfg.explicit[o.field], ln.Addr().String(), log)
		if err != nil {
			closeAll()
			return err
		}
		if l == nil {
			continue
		}
		lns = append(lns, l)
		log.Info("listening", "transport", o.transport, "addr", l.Addr().String())
	}
	if cfg.DebugAddr != "" {
		dln, err := listen("tcp", cfg.DebugAddr, "RTMPHUB_DEBUG_ADDR / --debug-addr")
		if err != nil {
			closeAll()
			return err
		}
		log.Info("listening", "transport", "pprof", "addr", dln.Addr().String())
		dsrv := &http.Server{Handler: pprofMux(), ReadHeaderTimeout: 10 * time.Second}
		go dsrv.Serve(dln)
		defer dsrv.Close()
	}
	handler, err := connHandlers(cfg, srv, log)
	if err != nil {
		closeAll()
		return err
	}
	qln, err := listenQUIC(cfg, tlsCfg, log)
	if err != nil {
		closeAll()
		return err
	}
	tc := newTunnelCollector()
	adm, err := startAdmin(cfg, srv, tc, log)
	if err != nil {
		closeAll()
		return err
	}
	defer adm.close()
	ts := tunnel.NewServer(tunnel.Config{
		HoldTime:          offSetting(cfg.RTMPTHold),
		SessionTimeout:    cfg.RTMPTTimeout,
		MaxSessions:       cfg.RTMPTMaxSessions,
		MaxSessionsPerIP:  cfg.RTMPTMaxPerIP,
		MaxBodySize:       cfg.RTMPTMaxBody,
		MaxPending:        cfg.RTMPTMaxPending,
		MaxHTTPConnsPerIP: cfg.RTMPTConnsPerIP,
		MaxBufferedBody:   cfg.RTMPTMaxBuffered,
		HeadTimeout:       cfg.RTMPTHeadTimeout,
		BodyTimeout:       cfg.RTMPTBodyTimeout,
		MinBodyRate:       cfg.RTMPTMinBodyRate,
		SessionIDPrefix:   cfg.RTMPTIDPrefix,
		NoDirect:          !cfg.RTMPTDirect,
		TrustedProxies:    trusted,
		TLSConfig:         tlsCfg,
		Logger:            log,
	}, handler.conn)
	tc.ts.Store(ts)
	log.Info("rtmphub started", "version", version(), "data_dir", cfg.DataDir)
	adm.setReady(true)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	served := make(chan error, 1)
	go func() {
		served <- ts.Run(ctx, lns...)
	}()
	quicDone := serveQUIC(ctx, qln, handler, log)
	defer func() { cancel(); <-quicDone }()

	select {
	case <-ctx.Done():
	case err := <-served:
		if err != nil {
			return err
		}
	}
	log.Info("shutting down", "timeout", cfg.ShutdownTimeout.String())
	adm.setReady(false)
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
// cannot be bound. The error unwraps to the system's.
func listen(network, addr, setting string) (net.Listener, error) {
	ln, err := net.Listen(network, addr)
	if err != nil {
		switch {
		case errors.Is(err, syscall.EADDRINUSE):
			return nil, &listenError{fmt.Sprintf("%s %s: port already in use", setting, addr), err}
		case errors.Is(err, syscall.EACCES):
			return nil, &listenError{fmt.Sprintf("%s %s: permission denied (ports below 1024 need privileges)", setting, addr), err}
		}
		return nil, fmt.Errorf("%s %s: %w", setting, addr, err)
	}
	return ln, nil
}

// listenOptional binds the address of an optional transport. An address
// left at its default that is taken or needs privileges is skipped with a
// warning (nil, nil): the RTMP port still serves the transport. One set
// explicitly must bind.
func listenOptional(addr, setting, transport string, explicit bool, rtmpAddr string, log *slog.Logger) (net.Listener, error) {
	l, err := listen("tcp", addr, setting)
	if err == nil {
		return l, nil
	}
	if explicit || !errors.Is(err, syscall.EACCES) && !errors.Is(err, syscall.EADDRINUSE) {
		return nil, err
	}
	log.Warn("default port not available; "+transport+" stays available on the RTMP port",
		"transport", transport, "addr", addr, "err", err.Error(), "rtmp_addr", rtmpAddr)
	return nil, nil
}

// listenError says which setting failed to bind, and unwraps to the cause.
type listenError struct {
	msg string
	err error
}

func (e *listenError) Error() string { return e.msg }
func (e *listenError) Unwrap() error { return e.err }
