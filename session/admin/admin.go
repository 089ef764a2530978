// Package admin is the HTTP face of the session core: a JSON admin API
// (the successor of FMS's admin port 1111), Prometheus metrics, health
// checks, profiles, and the HTTP authorization callback. It asks the core
// plain questions (session.Server's view and action methods); the core
// knows nothing of HTTP.
package admin

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/rtmphub/rtmphub/session"
)

// Options configure the admin handler.
type Options struct {
	// Token, when set, is required as "Authorization: Bearer <token>" on
	// every endpoint but /healthz and /readyz. The profiles under
	// /debug/pprof/ are served only when a token is set.
	Token   string
	Version string
	// HTTPURL is where browsers reach the HTTP port (players, previews),
	// shown in /api/v1/server; a host of 0.0.0.0 or [::] stands for the
	// host the admin API was reached at.
	HTTPURL string
	// PlayQuery, when set, signs a play of a stream for the console's
	// previews: it returns the query string that authorizes it
	// (token=...&expires=...), shown as each stream's preview_query.
	PlayQuery func(app, stream string) string
	Log       *slog.Logger
	// Collectors are more metrics (a transport's counters), registered
	// with the same rtmphub_ prefix.
	Collectors []prometheus.Collector
	// Cluster, when set, answers GET /api/v1/cluster with the cluster as
	// this hub sees it (nil: the hub is alone, and the endpoint says so).
	Cluster func(ctx context.Context) any
}

// Handler serves the admin API of one session.Server.
type Handler struct {
	srv   *session.Server
	opt   Options
	mux   *http.ServeMux
	ready atomic.Bool
}

// New returns the admin handler of srv. It reports not ready on /readyz
// until SetReady(true).
func New(srv *session.Server, opt Options) *Handler {
	if opt.Log == nil {
		opt.Log = slog.Default()
	}
	h := &Handler{srv: srv, opt: opt, mux: http.NewServeMux()}

	// Every name starts with rtmphub_, the Go runtime's and the
	// process's too (rtmphub_go_*, rtmphub_process_*).
	reg := prometheus.NewRegistry()
	for _, c := range append([]prometheus.Collector{
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		newCollector(srv, opt.Version),
	}, opt.Collectors...) {
		if err := prometheus.WrapRegistererWithPrefix("rtmphub_", reg).Register(c); err != nil {
			opt.Log.Error("admin: registering metrics", "err", err)
		}
	}
	m := h.mux
	m.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { writeText(w, http.StatusOK, "ok\n") })
	m.HandleFunc("GET /readyz", h.readyz)
	m.Handle("GET /metrics", h.auth(promhttp.HandlerFor(reg, promhttp.HandlerOpts{})))

	m.Handle("GET /api/v1/server", h.auth(http.HandlerFunc(h.getServer)))
	m.Handle("GET /api/v1/apps", h.auth(http.HandlerFunc(h.getApps)))
	m.Handle("GET /api/v1/clients", h.auth(http.HandlerFunc(h.getClients)))
	m.Handle("GET /api/v1/clients/{id}", h.auth(http.HandlerFunc(h.getClient)))
	m.Handle("GET /api/v1/streams", h.auth(http.HandlerFunc(h.getStreams)))
	m.Handle("GET /api/v1/sharedobjects", h.auth(http.HandlerFunc(h.getSharedObjects)))
	m.Handle("GET /api/v1/recordings", h.auth(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, h.srv.Recordings())
	})))
	m.Handle("DELETE /api/v1/clients/{id}", h.auth(http.HandlerFunc(h.deleteClient)))
	m.Handle("DELETE /api/v1/streams/{app}/{instance}/{name...}", h.auth(http.HandlerFunc(h.deleteStream)))
	m.Handle("DELETE /api/v1/apps/{app}/{instance}", h.auth(http.HandlerFunc(h.deleteInstance)))
	m.Handle("POST /api/v1/apps/{app}/reload", h.auth(http.HandlerFunc(h.reloadApp)))
	m.Handle("GET /api/v1/cluster", h.auth(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if opt.Cluster == nil {
			writeError(w, http.StatusNotFound, "this hub is not in a cluster (--cluster, --cluster-embedded)")
			return
		}
		writeJSON(w, http.StatusOK, opt.Cluster(r.Context()))
	})))
	m.Handle("/api/", h.auth(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such endpoint: "+r.Method+" "+r.URL.Path)
	})))

	if opt.Token != "" {
		m.Handle("/debug/pprof/", h.auth(http.HandlerFunc(pprof.Index)))
		m.Handle("/debug/pprof/cmdline", h.auth(http.HandlerFunc(pprof.Cmdline)))
		m.Handle("/debug/pprof/profile", h.auth(http.HandlerFunc(pprof.Profile)))
		m.Handle("/debug/pprof/symbol", h.auth(http.HandlerFunc(pprof.Symbol)))
		m.Handle("/debug/pprof/trace", h.auth(http.HandlerFunc(pprof.Trace)))
	}
	return h
}

// SetReady sets what /readyz answers: 200 when ready, 503 otherwise.
func (h *Handler) SetReady(ok bool) { h.ready.Store(ok) }

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// auth requires the bearer token, when one is set.
func (h *Handler) auth(next http.Handler) http.Handler {
	if h.opt.Token == "" {
		return next
	}
	want := []byte("Bearer " + h.opt.Token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := []byte(r.Header.Get("Authorization"))
		if subtle.ConstantTimeCompare(got, want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="rtmphub"`)
			writeError(w, http.StatusUnauthorized, "a valid bearer token is required")
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (h *Handler) readyz(w http.ResponseWriter, r *http.Request) {
	if !h.ready.Load() {
		writeText(w, http.StatusServiceUnavailable, "not ready\n")
		return
	}
	writeText(w, http.StatusOK, "ready\n")
}

// ServerInfo is the answer of /api/v1/server.
type ServerInfo struct {
	Version string `json:"version"`
	HTTPURL string `json:"http_url,omitempty"`
	session.ServerView
}

func (h *Handler) getServer(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, ServerInfo{Version: h.opt.Version, HTTPURL: h.opt.HTTPURL, ServerView: h.srv.Overview()})
}

func (h *Handler) getApps(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, h.srv.Apps())
}

func (h *Handler) getClients(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, h.srv.Clients())
}

func (h *Handler) getClient(w http.ResponseWriter, r *http.Request) {
	id, ok := clientID(w, r)
	if !ok {
		return
	}
	for _, c := range h.srv.Clients() {
		if c.ID == id {
			writeJSON(w, http.StatusOK, c)
			return
		}
	}
	writeError(w, http.StatusNotFound, "no client "+r.PathValue("id"))
}

// StreamInfo is a stream of /api/v1/streams.
type StreamInfo struct {
	session.StreamView
	// PreviewQuery authorizes playing the stream (a signed token), when
	// the server signs them.
	PreviewQuery string `json:"preview_query,omitempty"`
}

func (h *Handler) getStreams(w http.ResponseWriter, r *http.Request) {
	views := h.srv.Streams()
	out := make([]StreamInfo, len(views))
	for i, v := range views {
		out[i].StreamView = v
		if h.opt.PlayQuery != nil {
			out[i].PreviewQuery = h.opt.PlayQuery(v.App, v.Name)
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func (h *Handler) getSharedObjects(w http.ResponseWriter, r *http.Request) {
	if r.URL.Query().Get("slots") == "1" {
		writeJSON(w, http.StatusOK, h.srv.SharedObjectsWithSlots())
		return
	}
	writeJSON(w, http.StatusOK, h.srv.SharedObjects())
}

func clientID(w http.ResponseWriter, r *http.Request) (uint64, bool) {
	id, err := strconv.ParseUint(r.PathValue("id"), 10, 64)
	if err != nil {
		writeError(w, http.StatusBadRequest, "client id must be a number")
		return 0, false
	}
	return id, true
}

func (h *Handler) deleteClient(w http.ResponseWriter, r *http.Request) {
	id, ok := clientID(w, r)
	if !ok {
		return
	}
	if err := h.srv.DisconnectClient(id, "disconnected by the admin API"); err != nil {
		h.notFound(w, err, "no client "+r.PathValue("id"))
		return
	}
	h.opt.Log.Info("admin: client disconnected", "client", id, "remote", r.RemoteAddr)
	writeJSON(w, http.StatusOK, map[string]any{"disconnected": id})
}

func (h *Handler) deleteStream(w http.ResponseWriter, r *http.Request) {
	app, inst, name := r.PathValue("app"), r.PathValue("instance"), r.PathValue("name")
	if err := h.srv.StopStream(app, inst, name, "stream stopped by the admin API"); err != nil {
		h.notFound(w, err, "no published stream "+app+"/"+inst+"/"+name)
		return
	}
	h.opt.Log.Info("admin: stream stopped", "app", app, "instance", inst, "stream", name, "remote", r.RemoteAddr)
	writeJSON(w, http.StatusOK, map[string]any{"stopped": app + "/" + inst + "/" + name})
}

func (h *Handler) deleteInstance(w http.ResponseWriter, r *http.Request) {
	app, inst := r.PathValue("app"), r.PathValue("instance")
	n, err := h.srv.UnloadInstance(app, inst, "instance unloaded by the admin API")
	if err != nil {
		h.notFound(w, err, "no running instance "+app+"/"+inst)
		return
	}
	h.opt.Log.Info("admin: instance unloaded", "app", app, "instance", inst, "clients", n, "remote", r.RemoteAddr)
	writeJSON(w, http.StatusOK, map[string]any{"unloaded": app + "/" + inst, "clients_disconnected": n})
}

// reloadApp unloads every running instance of an application, as FMS's
// reloadApp: their clients get NetConnection.Connect.AppShutdown and are
// disconnected, the script's onAppStop runs, and the next connect starts a
// fresh instance with the application's current main.asc.
func (h *Handler) reloadApp(w http.ResponseWriter, r *http.Request) {
	app := r.PathValue("app")
	n, err := h.srv.ReloadApp(app, "application reloaded by the admin API")
	if err != nil {
		h.notFound(w, err, "no application "+app)
		return
	}
	h.opt.Log.Info("admin: application reloaded", "app", app, "instances", n, "remote", r.RemoteAddr)
	writeJSON(w, http.StatusOK, map[string]any{"reloaded": app, "instances": n})
}

func (h *Handler) notFound(w http.ResponseWriter, err error, msg string) {
	if errors.Is(err, session.ErrNotFound) {
		writeError(w, http.StatusNotFound, msg)
		return
	}
	writeError(w, http.StatusInternalServerError, err.Error())
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	w.Write(append(b, '\n'))
}

func writeError(w http.ResponseWriter, code int, msg string) {
	b, _ := json.Marshal(map[string]string{"error": msg})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	w.Write(append(b, '\n'))
}

func writeText(w http.ResponseWriter, code int, s string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(code)
	w.Write([]byte(s))
}

// IsLoopback reports whether a listen address binds loopback only: a
// host that is a loopback IP or "localhost". An empty host (all
// interfaces) is not.
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}
