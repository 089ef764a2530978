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

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rtmphub/rtmphub/session"
	"github.com/rtmphub/rtmphub/session/script"
	"github.com/rtmphub/rtmphub/tunnel"
	"github.com/rtmphub/rtmphub/tunnel/rtmpws"
	"github.com/rtmphub/rtmphub/web"
)

// serve wires the listeners to the session core and runs until ctx ends,
// then shuts down within cfg.ShutdownTimeout.
func serve(ctx context.Context, cfg *config, log *slog.Logger) error {
	libs := cfg.libraryConfigs()
	libs.script.Log = log.With("component", "script")
	libs.script.Next = testApplication(cfg.RPCTestApp)
	libs.session.Application = script.Factory(libs.script)
	libs.session.Authorize = authorizer(cfg, log)
	node, err := startCluster(cfg, log)
	if err != nil {
		return err
	}
	if node != nil {
		defer node.Close()
		libs.session.Cluster = node
		libs.session.Authorize = node.Authorizer(libs.session.Authorize)
	}
	srv := session.NewServer(libs.session, log)

	var tlsCfg *tls.Config
	if cfg.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
		if err != nil {
			return fmt.Errorf("%s %s, %s %s: %w", cfg.name(&cfg.TLSCert), cfg.TLSCert, cfg.name(&cfg.TLSKey), cfg.TLSKey, err)
		}
		tlsCfg = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	var lns []net.Listener
	closeAll := func() {
		for _, l := range lns {
			l.Close()
		}
	}
	ln, err := listen("tcp", cfg.RTMPAddr, cfg.name(&cfg.RTMPAddr))
	if err != nil {
		return err
	}
	lns = append(lns, ln)
	log.Info("listening", "transport", "rtmp", "addr", ln.Addr().String())
	var collectors []prometheus.Collector
	if node != nil {
		node.SetAdvertise(advertiseAddr(cfg, ln.Addr()))
		node.Attach(srv)
		collectors = append(collectors, newClusterCollector(node))
	}
	// The HTTP and TLS ports: an address left at its default may be
	// unavailable (a privileged port, or one in use); RTMPT and TLS are
	// still sniffed on the RTMP port then. One set explicitly must bind.
	for _, o := range []struct {
		on        bool
		addr      *string
		transport string
	}{
		{cfg.HTTPAddr != "", &cfg.HTTPAddr, "rtmpt"},
		{tlsCfg != nil && cfg.TLSAddr != "", &cfg.TLSAddr, "tls"},
	} {
		if !o.on {
			continue
		}
		l, err := listenOptional(*o.addr, cfg.name(o.addr), o.transport, cfg.isExplicit(o.addr), ln.Addr().String(), log)
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
		dln, err := listen("tcp", cfg.DebugAddr, cfg.name(&cfg.DebugAddr))
		if err != nil {
			closeAll()
			return err
		}
		log.Info("listening", "transport", "pprof", "addr", dln.Addr().String())
		dsrv := &http.Server{Handler: pprofMux(), ReadHeaderTimeout: 10 * time.Second}
		go dsrv.Serve(dln)
		defer dsrv.Close()
	}
	handler, err := connHandlers(cfg, libs.gateway, srv, log)
	if err != nil {
		closeAll()
		return err
	}
	qln, err := listenQUIC(cfg, libs.quic, tlsCfg, log)
	if err != nil {
		closeAll()
		return err
	}
	tc, wc, wsc := newTunnelCollector(), newWebCollector(), newRTMPWSCollector()
	httpURL := ""
	if cfg.HTTPPlayback && cfg.Upstream == "" {
		// The HTTP port when it is bound, else the RTMP port, which
		// serves browsers too.
		httpURL = "http://" + lns[min(1, len(lns)-1)].Addr().String()
		if tlsCfg != nil && len(lns) == 2 && cfg.HTTPAddr == "" {
			httpURL = "https://" + lns[1].Addr().String()
		}
	}
	adm, err := startAdmin(cfg, srv, httpURL, append(collectors, tc, wc, wsc), node, log)
	if err != nil {
		closeAll()
		return err
	}
	defer adm.close()
	libs.tunnel.TLSConfig = tlsCfg
	libs.tunnel.Logger = log
	ts := tunnel.NewServer(libs.tunnel, handler.conn)
	tc.ts.Store(ts)
	// The connections whose first request is not RTMPT: /rtmp is RTMP over
	// WebSocket, in every mode; the rest is the web handler's (streams to
	// browsers), when it is on.
	var wsh *rtmpws.Handler
	if cfg.RTMPWS {
		libs.rtmpws.Logger = log
		wsh = rtmpws.New(libs.rtmpws, handler.served)
		wsc.h.Store(wsh)
		log.Info("rtmp over websocket", "path", rtmpws.Path, "allow_origins", cfg.RTMPWSAllowOrigins)
	}
	var webh http.Handler
	if cfg.HTTPPlayback && cfg.Upstream == "" {
		libs.web.Log = log
		wh := web.New(srv, libs.web)
		webh = wh
		defer wh.Close()
		wc.h.Store(wh)
	}
	if wsh != nil || webh != nil {
		wsrv := &http.Server{Handler: httpRoutes(wsh, webh), ReadHeaderTimeout: libs.tunnel.WithDefaults().HeadTimeout,
			IdleTimeout: 60 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug)}
		wln := ts.WebListener()
		go wsrv.Serve(wln)
		defer wsrv.Close()
	}
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
	wsDone := make(chan struct{})
	if wsh != nil {
		// Its connections end with the server: their handlers' context
		// ends, and each closes with 1001.
		context.AfterFunc(ctx, func() { wsh.Close(); close(wsDone) })
	} else {
		close(wsDone)
	}

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
	select {
	case <-wsDone:
	case <-sctx.Done():
	}
	log.Info("stopped")
	return nil
}

// httpRoutes serves the connections the tunnel's WebListener hands out:
// /rtmp to ws (RTMP over WebSocket), the rest to web. Either may be nil;
// without web, RTMPT's paths asked with another method than POST get
// RTMPT's answer (405), and the rest 404.
func httpRoutes(ws, web http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case ws != nil && r.URL.Path == rtmpws.Path:
			ws.ServeHTTP(w, r)
		case web != nil:
			web.ServeHTTP(w, r)
		case tunnel.IsRTMPTPath(r.URL.Path):
			w.Header().Set("Allow", "POST")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		default:
			http.NotFound(w, r)
		}
	})
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
