package main

import (
	"errors"
	"fmt"
	"github.com/prometheus/client_golang/prometheus"
	"log/slog"
	"net/http"
	"syscall"
	"time"

	"github.com/rtmphub/rtmphub/cluster"
	"github.com/rtmphub/rtmphub/session"
	"github.com/rtmphub/rtmphub/session/admin"
	"github.com/rtmphub/rtmphub/web/console"
)

// adminServer is the running admin API listener, or nothing when it is
// off or its default port was unavailable.
type adminServer struct {
	h    *admin.Handler
	http *http.Server
}

func (a *adminServer) setReady(ok bool) {
	if a.h != nil {
		a.h.SetReady(ok)
	}
}

func (a *adminServer) close() {
	if a.http != nil {
		a.http.Close()
	}
}

// startAdmin serves the admin API on cfg.AdminAddr. The address left at
// its default (127.0.0.1:1111) may be taken (another server on the same
// host) or unprivileged: the server then runs without it, with a warning.
// An address set explicitly must bind.
func startAdmin(cfg *config, srv *session.Server, httpURL string, collectors []prometheus.Collector, node *cluster.Node, log *slog.Logger) (*adminServer, error) {
	a := &adminServer{}
	if cfg.AdminAddr == "" {
		return a, nil
	}
	ln, err := listen("tcp", cfg.AdminAddr, cfg.name(&cfg.AdminAddr))
	if err != nil {
		if cfg.isExplicit(&cfg.AdminAddr) || !errors.Is(err, syscall.EADDRINUSE) && !errors.Is(err, syscall.EACCES) {
			return nil, err
		}
		log.Warn("default admin port not available; running without the admin API",
			"transport", "admin", "addr", cfg.AdminAddr, "err", err.Error())
		return a, nil
	}
	var playQuery func(app, stream string) string
	if cfg.AuthSecret != "" {
		// The console's previews: a token good for an hour.
		playQuery = func(app, stream string) string {
			exp := time.Now().Add(time.Hour).Unix()
			return fmt.Sprintf("token=%x&expires=%d", session.SignToken([]byte(cfg.AuthSecret), app, stream, exp), exp)
		}
	}
	opt := admin.Options{Token: cfg.AdminToken, Version: version(), HTTPURL: httpURL, PlayQuery: playQuery,
		Log: log, Collectors: collectors}
	if node != nil {
		opt.Cluster = clusterStatus(node)
	}
	a.h = admin.New(srv, opt)
	// The web console: static files (they hold no data; the page asks for
	// the token and calls the API with it) beside the API.
	mux := http.NewServeMux()
	mux.Handle("/", a.h)
	c := console.Handler()
	mux.Handle("GET /{$}", c)
	mux.Handle("GET /console/", c)
	a.http = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go a.http.Serve(ln)
	log.Info("listening", "transport", "admin", "addr", ln.Addr().String(), "token", cfg.AdminToken != "")
	return a, nil
}

// authorizer composes the configured authorization: signed tokens, then
// the HTTP callback; nil when neither is set.
func authorizer(cfg *config, log *slog.Logger) session.Authorizer {
	var tokens, hook session.Authorizer
	if cfg.AuthSecret != "" {
		tokens = session.TokenAuthorizer([]byte(cfg.AuthSecret), nil)
	}
	if cfg.AuthURL != "" {
		hook = admin.HTTPAuthorizer(admin.HookOptions{URL: cfg.AuthURL, FailOpen: cfg.AuthFailOpen, Log: log})
	}
	return session.ChainAuthorizers(tokens, hook)
}
