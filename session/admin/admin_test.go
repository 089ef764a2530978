package admin_test

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"

	"github.com/rtmphub/rtmphub/rtmp/amf"
	"github.com/rtmphub/rtmphub/rtmp/client"
	"github.com/rtmphub/rtmphub/rtmp/message"
	"github.com/rtmphub/rtmphub/session"
	"github.com/rtmphub/rtmphub/session/admin"
	"github.com/rtmphub/rtmphub/session/sessiontest"
)

// env is a session core on a loopback port with its admin API.
type env struct {
	base  string // rtmp://127.0.0.1:port
	srv   *session.Server
	api   *httptest.Server
	token string
	logs  *sessiontest.LogBuffer
}

func start(t *testing.T, cfg session.Config, token string) *env {
	t.Helper()
	var log *slog.Logger
	base, srv, logs := sessiontest.Start(t, func(l *slog.Logger) session.Config {
		log = l
		return cfg
	})
	h := admin.New(srv, admin.Options{Token: token, Version: "test", Log: log})
	h.SetReady(true)
	api := httptest.NewServer(h)
	t.Cleanup(api.Close)
	return &env{base: base, srv: srv, api: api, token: token, logs: logs}
}

func (e *env) do(t *testing.T, method, path string, out any) int {
	t.Helper()
	req, _ := http.NewRequest(method, e.api.URL+path, nil)
	if e.token != "" {
		req.Header.Set("Authorization", "Bearer "+e.token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %v\n%s", method, path, err, b)
		}
	}
	return resp.StatusCode
}

// publish publishes name on url with a 640x360 25 fps header and ten
// frames.
func publish(t *testing.T, url, name string) *sessiontest.Publisher {
	t.Helper()
	p := sessiontest.Publish(t, url, name, "live")
	p.Header(t, amf.ECMAArray{{Key: "width", Value: 640.0}, {Key: "height", Value: 360.0}, {Key: "framerate", Value: 25.0}})
	for i := range 10 {
		p.Send(t, message.TypeVideo, uint32(i*40), sessiontest.VideoFrame(i, 10))
	}
	return p
}

func TestAPIViewsAndActions(t *testing.T) {
	e := start(t, session.Config{}, "")
	pub := publish(t, e.base+"/live", "cam")
	pl, plID := sessiontest.Play(t, e.base+"/live", "cam")
	other, _ := sessiontest.Play(t, e.base+"/live", "cam")

	var streams []session.StreamView
	sessiontest.Eventually(t, 5*time.Second, "the stream with 2 players", func() bool {
		streams = nil
		return e.do(t, "GET", "/api/v1/streams", &streams) == 200 && len(streams) == 1 && len(streams[0].Players) == 2
	})
	s := streams[0]
	if s.App != "live" || s.Instance != "_definst_" || s.Name != "cam" || s.Publisher == 0 ||
		s.VideoCodec != "avc1" || s.AudioCodec != "mp4a" || s.Width != 640 || s.Height != 360 || s.FPS != 25 || s.Bytes == 0 || s.Recording {
		t.Errorf("stream view %+v", s)
	}

	var clients []session.ClientView
	if code := e.do(t, "GET", "/api/v1/clients", &clients); code != 200 || len(clients) != 3 {
		t.Fatalf("clients: %d %+v", code, clients)
	}
	roles := map[string]int{}
	for _, c := range clients {
		if c.App != "live" || c.Instance != "_definst_" || c.Protocol != "rtmp" || c.IP != "127.0.0.1" || c.BytesOut == 0 || c.ConnectedAt.IsZero() {
			t.Errorf("client view %+v", c)
		}
		for _, st := range c.Streams {
			roles[st.Role]++
		}
	}
	if roles["publish"] != 1 || roles["play"] != 2 {
		t.Errorf("roles %v", roles)
	}

	var srvInfo admin.ServerInfo
	if code := e.do(t, "GET", "/api/v1/server", &srvInfo); code != 200 || srvInfo.Version != "test" ||
		srvInfo.ByProtocol["rtmp"] != 3 || srvInfo.Connections != 3 || srvInfo.BytesIn == 0 || srvInfo.Streams != 1 {
		t.Errorf("server: %d %+v", code, srvInfo)
	}
	var apps []session.AppView
	if code := e.do(t, "GET", "/api/v1/apps", &apps); code != 200 || len(apps) != 1 || apps[0].Name != "live" ||
		len(apps[0].Instances) != 1 || apps[0].Instances[0].Clients != 3 {
		t.Errorf("apps: %d %+v", code, apps)
	}
	var sos []session.SharedObjectView
	if code := e.do(t, "GET", "/api/v1/sharedobjects", &sos); code != 200 || sos == nil || len(sos) != 0 {
		t.Errorf("sharedobjects: %d %+v", code, sos)
	}
	if code := e.do(t, "POST", "/api/v1/apps/nosuchapp/reload", nil); code != http.StatusNotFound {
		t.Errorf("reload of an unknown app: %d", code)
	}
	if code := e.do(t, "DELETE", "/api/v1/clients/999999", nil); code != 404 {
		t.Errorf("delete unknown client: %d", code)
	}

	// Disconnect the first player: its connection ends.
	var playerID uint64
	for _, c := range clients {
		for _, st := range c.Streams {
			if st.Role == "play" && (playerID == 0 || c.ID < playerID) {
				playerID = c.ID
			}
		}
	}
	if code := e.do(t, "DELETE", fmt.Sprintf("/api/v1/clients/%d", playerID), nil); code != 200 {
		t.Fatalf("delete client: %d", code)
	}
	pl.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		if _, err := pl.ReadMessage(); err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatal("disconnected player still connected")
			}
			break
		}
	}
	_ = plID

	// Stop the stream: the remaining player is told, the publisher is cut.
	if code := e.do(t, "DELETE", "/api/v1/streams/live/_definst_/cam", nil); code != 200 {
		t.Fatalf("delete stream: %d", code)
	}
	if _, err := other.WaitStatus(sessiontest.Ctx(t, 5*time.Second), 1, "NetStream.Play.UnpublishNotify"); err != nil {
		t.Fatalf("player after stop: %v", err)
	}
	pub.C.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		if _, err := pub.C.ReadMessage(); err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatal("stopped publisher still connected")
			}
			break
		}
	}
	if code := e.do(t, "DELETE", "/api/v1/streams/live/_definst_/cam", nil); code != 404 {
		t.Errorf("delete stopped stream again: %d", code)
	}

	// Unload the instance: the last client goes.
	if code := e.do(t, "DELETE", "/api/v1/apps/live/_definst_", nil); code != 200 {
		t.Fatalf("unload: %d", code)
	}
	sessiontest.Eventually(t, 5*time.Second, "no clients", func() bool {
		clients = nil
		return e.do(t, "GET", "/api/v1/clients", &clients) == 200 && len(clients) == 0
	})
	if !strings.Contains(e.logs.String(), `msg=access event=disconnect`) {
		t.Error("no access line for the disconnects")
	}
}

func TestMetricsParseAndMove(t *testing.T) {
	e := start(t, session.Config{}, "")
	scrape := func() map[string]float64 {
		resp, err := http.Get(e.api.URL + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var p expfmt.TextParser
		fams, err := p.TextToMetricFamilies(resp.Body)
		if err != nil {
			t.Fatalf("metrics do not parse: %v", err)
		}
		out := map[string]float64{}
		for name, f := range fams {
			if !strings.HasPrefix(name, "rtmphub_") {
				t.Errorf("metric %s does not start with rtmphub_", name)
			}
			for _, m := range f.GetMetric() {
				v := m.GetCounter().GetValue() + m.GetGauge().GetValue()
				out[name] += v
			}
		}
		return out
	}
	before := scrape()
	if _, ok := before["rtmphub_connections_accepted_total"]; !ok {
		t.Fatalf("no rtmphub_connections_accepted_total in %v", before)
	}
	pub := publish(t, e.base+"/live", "m")
	sessiontest.Play(t, e.base+"/live", "m")
	after := scrape()
	if after["rtmphub_connections_accepted_total"] != before["rtmphub_connections_accepted_total"]+2 ||
		after["rtmphub_connections"] != 2 || after["rtmphub_streams"] != 1 || after["rtmphub_stream_players"] != 1 ||
		after["rtmphub_stream_received_bytes_total"] == 0 {
		t.Errorf("metrics did not move: before %v after %v", before, after)
	}
	if after["rtmphub_received_bytes_total"] <= before["rtmphub_received_bytes_total"] {
		t.Errorf("received bytes did not move: %v -> %v", before["rtmphub_received_bytes_total"], after["rtmphub_received_bytes_total"])
	}
	pub.C.Close()
	sessiontest.Eventually(t, 5*time.Second, "the publisher's departure", func() bool {
		m := scrape()
		// its bytes stay counted once it has left
		return m["rtmphub_connections"] == 1 && m["rtmphub_received_bytes_total"] >= after["rtmphub_received_bytes_total"]
	})
}

func TestTokenRequired(t *testing.T) {
	e := start(t, session.Config{}, "s3cret")
	for _, p := range []string{"/api/v1/server", "/metrics", "/debug/pprof/"} {
		resp, err := http.Get(e.api.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s without token: %d", p, resp.StatusCode)
		}
		req, _ := http.NewRequest("GET", e.api.URL+p, nil)
		req.Header.Set("Authorization", "Bearer wrong")
		resp, err = http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s with a wrong token: %d", p, resp.StatusCode)
		}
		if code := e.do(t, "GET", p, nil); code != 200 {
			t.Errorf("%s with the token: %d", p, code)
		}
	}
	for _, p := range []string{"/healthz", "/readyz"} {
		resp, err := http.Get(e.api.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("%s: %d", p, resp.StatusCode)
		}
	}
	// Without a token, no profiles.
	e2 := start(t, session.Config{}, "")
	if code := e2.do(t, "GET", "/debug/pprof/", nil); code != 404 {
		t.Errorf("pprof without a token configured: %d", code)
	}
}

func TestIsLoopback(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:1111": true, "localhost:1111": true, "[::1]:1111": true, "127.0.0.2:0": true,
		":1111": false, "0.0.0.0:1111": false, "[::]:1111": false, "192.168.1.2:1111": false, "example.com:1111": false, "bad": false,
	} {
		if got := admin.IsLoopback(addr); got != want {
			t.Errorf("IsLoopback(%q) = %v", addr, got)
		}
	}
}

// hook is an authorization callback server that records requests.
type hook struct {
	mu   sync.Mutex
	reqs []session.AuthRequest
	srv  *httptest.Server
}

func newHook(t *testing.T, decide func(session.AuthRequest, http.ResponseWriter)) *hook {
	h := &hook{}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req session.AuthRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		h.mu.Lock()
		h.reqs = append(h.reqs, req)
		h.mu.Unlock()
		decide(req, w)
	}))
	t.Cleanup(h.srv.Close)
	return h
}

func statusCode(err error) string {
	var se *client.StatusError
	if errors.As(err, &se) {
		return se.Code + ": " + se.Description
	}
	return fmt.Sprint(err)
}

func TestAuthCallback(t *testing.T) {
	release := make(chan struct{}) // the slow callback answers when the test ends
	defer close(release)
	h := newHook(t, func(r session.AuthRequest, w http.ResponseWriter) {
		switch {
		case r.Action == session.AuthConnect && r.App == "closed":
			w.WriteHeader(http.StatusForbidden)
			io.WriteString(w, "Closed for maintenance.\n")
		case r.Action == session.AuthPublish && r.Stream != "ok":
			w.WriteHeader(http.StatusForbidden)
		case r.Action == session.AuthPlay && r.Stream == "secret":
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, `{"description":"Subscribers only."}`)
		case r.Stream == "slow":
			<-release // long after AuthTimeout
		}
	})
	e := start(t, session.Config{
		Authorize:   admin.HTTPAuthorizer(admin.HookOptions{URL: h.srv.URL}),
		AuthTimeout: 300 * time.Millisecond,
	}, "")

	// connect denied
	_, err := client.Dial(sessiontest.Ctx(t, 5*time.Second), e.base+"/closed?key=1", client.Options{})
	if got := statusCode(err); got != "NetConnection.Connect.Rejected: Closed for maintenance." {
		t.Errorf("connect: %s", got)
	}
	// publish denied; allowed publish works; the denied one never reaches players
	c := sessiontest.Dial(t, e.base+"/live", client.Options{})
	ctx := sessiontest.Ctx(t, 5*time.Second)
	id, _ := c.CreateStream(ctx)
	err = c.Publish(ctx, id, "bad?k=v", "live")
	if got := statusCode(err); !strings.HasPrefix(got, "NetStream.Publish.BadName: Access denied (403") {
		t.Errorf("publish: %s", got)
	}
	var streams []session.StreamView
	e.do(t, "GET", "/api/v1/streams", &streams)
	if len(streams) != 0 {
		t.Errorf("a denied publish made a stream: %+v", streams)
	}
	publish(t, e.base+"/live", "ok")
	// play denied with the callback's description
	pc := sessiontest.Dial(t, e.base+"/live", client.Options{})
	pid, _ := pc.CreateStream(ctx)
	err = pc.Play(ctx, pid, "secret", -2000)
	if got := statusCode(err); got != "NetStream.Play.Failed: Subscribers only." {
		t.Errorf("play: %s", got)
	}
	// timeout denies
	start := time.Now()
	err = pc.Play(ctx, pid, "slow", -2000)
	if got := statusCode(err); got != "NetStream.Play.Failed: Authorization service unavailable." {
		t.Errorf("play on a slow callback: %s", got)
	}
	if d := time.Since(start); d > 1500*time.Millisecond {
		t.Errorf("the timeout took %v", d)
	}

	h.mu.Lock()
	defer h.mu.Unlock()
	var sawPublish bool
	for _, r := range h.reqs {
		if r.Action == session.AuthPublish && r.Stream == "bad" {
			sawPublish = true
			if r.Query != "k=v" || r.App != "live" || r.Instance != "_definst_" || r.IP != "127.0.0.1" || r.Protocol != "rtmp" || r.PublishType != "live" {
				t.Errorf("publish request %+v", r)
			}
		}
		if r.Action == session.AuthConnect && r.App == "closed" && r.Query != "key=1" {
			t.Errorf("connect request %+v", r)
		}
	}
	if !sawPublish {
		t.Errorf("no publish request among %+v", h.reqs)
	}
}

func TestAuthCallbackFailOpen(t *testing.T) {
	h := newHook(t, func(r session.AuthRequest, w http.ResponseWriter) { w.WriteHeader(http.StatusBadGateway) })
	e := start(t, session.Config{Authorize: admin.HTTPAuthorizer(admin.HookOptions{URL: h.srv.URL, FailOpen: true})}, "")
	publish(t, e.base+"/live", "x")
	sessiontest.Play(t, e.base+"/live", "x")
}

func TestSignedTokens(t *testing.T) {
	secret := []byte("k")
	e := start(t, session.Config{Authorize: session.TokenAuthorizer(secret, nil)}, "")
	exp := time.Now().Add(time.Hour).Unix()
	tok := func(app, name string, exp int64) string {
		return fmt.Sprintf("?token=%s&expires=%d", hex.EncodeToString(session.SignToken(secret, app, name, exp)), exp)
	}
	publish(t, e.base+"/live", "cam"+tok("live", "cam", exp))
	sessiontest.Play(t, e.base+"/live", "cam"+tok("live", "cam", exp))

	c := sessiontest.Dial(t, e.base+"/live", client.Options{})
	ctx := sessiontest.Ctx(t, 5*time.Second)
	id, _ := c.CreateStream(ctx)
	for _, tc := range []struct{ name, want string }{
		{"cam", "NetStream.Play.Failed: Missing token."},
		{"cam" + tok("live", "other", exp), "NetStream.Play.Failed: Bad token."},
		{"cam" + tok("live", "cam", time.Now().Add(-time.Minute).Unix()), "NetStream.Play.Failed: Token expired."},
	} {
		if got := statusCode(c.Play(ctx, id, tc.name, -2000)); got != tc.want {
			t.Errorf("play %s: %s, want %s", tc.name, got, tc.want)
		}
	}
	// the token may come with the connect URL instead
	c2 := sessiontest.Dial(t, e.base+"/live"+tok("live", "cam", exp), client.Options{})
	id2, _ := c2.CreateStream(ctx)
	if err := c2.Play(ctx, id2, "cam", -2000); err != nil {
		t.Errorf("play with the token on the connect URL: %v", err)
	}
}

func TestMaxConnectionsPerIP(t *testing.T) {
	e := start(t, session.Config{MaxConnectionsPerIP: 2}, "")
	sessiontest.Dial(t, e.base+"/live", client.Options{})
	sessiontest.Dial(t, e.base+"/live", client.Options{})
	if _, err := client.Dial(sessiontest.Ctx(t, 5*time.Second), e.base+"/live", client.Options{}); err == nil {
		t.Fatal("third connection from one address accepted")
	}
	var v admin.ServerInfo
	e.do(t, "GET", "/api/v1/server", &v)
	if v.Rejected == 0 {
		t.Errorf("rejection not counted: %+v", v)
	}
}

// stopApp is an application that counts its instances and their stops.
type stopApp struct {
	stopped *atomic.Int32
}

func (a stopApp) Call(*session.Client, string, []any) (any, error) { return "ok", nil }
func (a stopApp) Stop()                                            { a.stopped.Add(1) }

// POST /api/v1/apps/{app}/reload unloads the running instances of the
// app, as FMS's reloadApp: their clients get
// NetConnection.Connect.AppShutdown and are disconnected, the application
// is stopped, and the next connect gets a fresh instance.
func TestReloadApp(t *testing.T) {
	var made, stopped atomic.Int32
	dir := t.TempDir()
	for _, app := range []string{"live", "idle"} {
		if err := os.MkdirAll(filepath.Join(dir, app), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	e := start(t, session.Config{DataDir: dir, Application: func(app, inst string) session.Application {
		made.Add(1)
		return stopApp{stopped: &stopped}
	}}, "")
	a := sessiontest.Dial(t, e.base+"/live/one", client.Options{})
	b := sessiontest.Dial(t, e.base+"/live/two", client.Options{})
	other := sessiontest.Dial(t, e.base+"/other", client.Options{})
	if made.Load() != 3 {
		t.Fatalf("instances made: %d", made.Load())
	}

	var res struct {
		Reloaded  string `json:"reloaded"`
		Instances int    `json:"instances"`
	}
	if code := e.do(t, "POST", "/api/v1/apps/live/reload", &res); code != 200 || res.Reloaded != "live" || res.Instances != 2 {
		t.Fatalf("reload: %d %+v", code, res)
	}
	// Both clients of live hear of the shutdown, then the server closes.
	for _, c := range []*client.Conn{a, b} {
		ctx := sessiontest.Ctx(t, 5*time.Second)
		if info, err := c.WaitStatus(ctx, 0, "NetConnection.Connect.AppShutdown"); err != nil {
			t.Fatalf("AppShutdown status: %v %v", info, err)
		}
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		for {
			if _, err := c.ReadMessage(); err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					t.Fatal("connection not closed after AppShutdown")
				}
				break
			}
		}
	}
	if stopped.Load() != 2 {
		t.Errorf("applications stopped: %d, want 2", stopped.Load())
	}
	// The other app is untouched; live starts afresh.
	if _, err := other.Call(sessiontest.Ctx(t, 5*time.Second), "anything"); err != nil {
		t.Errorf("other app after the reload: %v", err)
	}
	sessiontest.Dial(t, e.base+"/live/one", client.Options{})
	if made.Load() != 4 {
		t.Errorf("instances made after reconnecting: %d, want 4", made.Load())
	}

	// An app with a folder and nothing running: nothing to reload.
	if code := e.do(t, "POST", "/api/v1/apps/idle/reload", &res); code != 200 || res.Instances != 0 {
		t.Errorf("reload of an idle app: %d %+v", code, res)
	}
	if code := e.do(t, "POST", "/api/v1/apps/nosuchapp/reload", nil); code != 404 {
		t.Errorf("reload of an unknown app: %d", code)
	}
}
