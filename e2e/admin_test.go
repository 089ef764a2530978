package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"

	"github.com/rtmphub/rtmphub/rtmp/client"
	"github.com/rtmphub/rtmphub/rtmp/message"
	"github.com/rtmphub/rtmphub/session/sessiontest"
	"github.com/rtmphub/rtmphub/tunnel"
)

// adminAddr is the address of the admin API, from the server's
// {"msg":"listening","transport":"admin"} log line.
func (s *server) adminAddr(t testing.TB) string {
	t.Helper()
	ln, ok := s.log.wait(func(l logLine) bool {
		return l.str("msg") == "listening" && l.str("transport") == "admin" && l.str("addr") != ""
	}, listenTimeout, s.done)
	if !ok {
		t.Fatalf("server logged no admin listening line")
	}
	return ln.str("addr")
}

func apiGet(t testing.TB, base, path string, out any) {
	t.Helper()
	resp, err := http.Get(base + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
	}
	if err := json.Unmarshal(b, out); err != nil {
		t.Fatalf("GET %s: %v\n%s", path, err, b)
	}
}

func apiDo(t testing.TB, method, url string) int {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

type apiStream struct {
	Name       string   `json:"name"`
	Publisher  uint64   `json:"publisher"`
	VideoCodec string   `json:"video_codec"`
	AudioCodec string   `json:"audio_codec"`
	Width      int      `json:"width"`
	Height     int      `json:"height"`
	FPS        float64  `json:"fps"`
	Bitrate    float64  `json:"bitrate"`
	Players    []uint64 `json:"players"`
}

type apiClient struct {
	ID       uint64 `json:"id"`
	Protocol string `json:"protocol"`
	App      string `json:"app"`
	Streams  []struct {
		Name string `json:"name"`
		Role string `json:"role"`
	} `json:"streams"`
}

func scrapeMetrics(t testing.TB, base string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var p expfmt.TextParser
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("/metrics does not parse: %v", err)
	}
	out := map[string]float64{}
	for name, f := range fams {
		for _, m := range f.GetMetric() {
			out[name] += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return out
}

// TestAdminAPIDuringFFmpegPublish: the API shows an ffmpeg publication
// with its codecs, size and a bitrate near ffmpeg's own count; deleting
// the ffmpeg player's client ends it; /metrics parses and moves.
func TestAdminAPIDuringFFmpegPublish(t *testing.T) {
	e2e(t)
	needFFmpeg(t)
	srv := startServer(t, "--admin-addr", "127.0.0.1:0")
	api := "http://" + srv.adminAddr(t)
	m0 := scrapeMetrics(t, api)

	// ffmpeg publishes 640x360 at 25 fps, constant bitrate, and reports the
	// bytes it has sent (total_size) and the media time (out_time_us).
	var mu sync.Mutex
	var sent, outUS int64
	pub := command(t, 2*time.Minute, "ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "warning", "-re",
		"-f", "lavfi", "-i", "testsrc=size=640x360:rate=25", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100",
		"-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", "25", "-pix_fmt", "yuv420p",
		"-b:v", "600k", "-minrate", "600k", "-maxrate", "600k", "-bufsize", "300k", "-x264-params", "nal-hrd=cbr",
		"-c:a", "aac", "-b:a", "64k", "-t", "40", "-progress", "pipe:1", "-stats_period", "0.5",
		"-f", "flv", srv.URL("adm"))
	pub.cmd.Stdout = tee(pub.Stdout, &lineWriter{fn: func(l string) {
		k, v, _ := strings.Cut(l, "=")
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return
		}
		mu.Lock()
		switch k {
		case "total_size":
			sent = n
		case "out_time_us":
			outUS = n
		}
		mu.Unlock()
	}})
	pub.startCmd()
	defer pub.stop(5 * time.Second)

	ply := startProc(t, time.Minute, "ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "warning",
		"-i", srv.URL("adm"), "-f", "null", "-")

	// Let the encoder settle, then take two samples: the API's bitrate is
	// measured between calls.
	var streams []apiStream
	if !sessiontest.Poll(20*time.Second, func() bool {
		streams = nil
		apiGet(t, api, "/api/v1/streams", &streams)
		return len(streams) == 1 && streams[0].Publisher != 0 && len(streams[0].Players) == 1
	}) {
		t.Fatalf("stream with a player not shown: %+v\n%s", streams, pub.Stderr.String())
	}
	time.Sleep(4 * time.Second)
	mu.Lock()
	sent0, us0 := sent, outUS
	mu.Unlock()
	apiGet(t, api, "/api/v1/streams", &streams)
	time.Sleep(4 * time.Second)
	apiGet(t, api, "/api/v1/streams", &streams)
	mu.Lock()
	sent1, us1 := sent, outUS
	mu.Unlock()
	if us1 <= us0 {
		t.Fatalf("ffmpeg reported no progress (%d → %d us)\n%s", us0, us1, pub.Stderr.String())
	}
	real := float64(sent1-sent0) * 8 / (float64(us1-us0) / 1e6)
	s := streams[0]
	t.Logf("API: %+v; ffmpeg's own rate over the same stretch %.0f bit/s", s, real)
	if s.Name != "adm" || s.VideoCodec != "avc1" || s.AudioCodec != "mp4a" || s.Width != 640 || s.Height != 360 || s.FPS != 25 {
		t.Errorf("stream view %+v", s)
	}
	if s.Bitrate < 0.75*real || s.Bitrate > 1.25*real {
		t.Errorf("API bitrate %.0f bit/s, ffmpeg sent %.0f bit/s", s.Bitrate, real)
	}

	// Metrics parse and their counters move.
	m1 := scrapeMetrics(t, api)
	for _, name := range []string{"rtmphub_connections_accepted_total", "rtmphub_received_bytes_total", "rtmphub_sent_bytes_total"} {
		if m1[name] <= m0[name] {
			t.Errorf("%s did not move: %v → %v", name, m0[name], m1[name])
		}
	}
	if m1["rtmphub_connections"] != 2 || m1["rtmphub_stream_players"] != 1 || m1["rtmphub_stream_bitrate_bits_per_second"] <= 0 {
		t.Errorf("gauges: connections %v players %v bitrate %v", m1["rtmphub_connections"], m1["rtmphub_stream_players"],
			m1["rtmphub_stream_bitrate_bits_per_second"])
	}

	// Disconnecting the player's client ends the ffmpeg player.
	var clients []apiClient
	apiGet(t, api, "/api/v1/clients", &clients)
	var playerID uint64
	for _, c := range clients {
		for _, st := range c.Streams {
			if st.Role == "play" && st.Name == "adm" {
				playerID = c.ID
			}
		}
	}
	if playerID == 0 {
		t.Fatalf("no playing client in %+v", clients)
	}
	if code := apiDo(t, "DELETE", fmt.Sprintf("%s/api/v1/clients/%d", api, playerID)); code != 200 {
		t.Fatalf("DELETE client: %d", code)
	}
	if !ply.wait(15 * time.Second) {
		t.Fatalf("ffmpeg player still running 15s after its client was disconnected")
	}
	t.Logf("ffmpeg player ended after the disconnect: %v", ply.exitErr())
	if !pub.exited() {
		apiGet(t, api, "/api/v1/streams", &streams)
		if len(streams) != 1 || len(streams[0].Players) != 0 {
			t.Errorf("after the disconnect: %+v", streams)
		}
	}
}

// TestAdminDeniedPublish: an authorization callback refuses a publish; the
// publisher gets NetStream.Publish.BadName with the description, ffmpeg
// gives up, and a player waiting on the name gets nothing.
func TestAdminDeniedPublish(t *testing.T) {
	e2e(t)
	var mu sync.Mutex
	var asked []map[string]any
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req map[string]any
		json.NewDecoder(r.Body).Decode(&req)
		mu.Lock()
		asked = append(asked, req)
		mu.Unlock()
		if req["action"] == "publish" && req["stream"] == "forbidden" {
			w.WriteHeader(http.StatusForbidden)
			io.WriteString(w, "No publishing here.\n")
		}
	}))
	defer hook.Close()
	srv := startServer(t, "--admin-addr", "127.0.0.1:0", "--auth-url", hook.URL)
	api := "http://" + srv.adminAddr(t)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	player, err := client.Dial(ctx, srv.URL(""), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer player.Close()
	pid, err := player.CreateStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := player.Play(ctx, pid, "forbidden", -2000); err != nil {
		t.Fatal(err)
	}

	pubc, err := client.Dial(ctx, srv.URL(""), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer pubc.Close()
	id, err := pubc.CreateStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	err = pubc.Publish(ctx, id, "forbidden?user=x", "live")
	var se *client.StatusError
	if !errors.As(err, &se) || se.Code != "NetStream.Publish.BadName" || se.Description != "No publishing here." {
		t.Fatalf("denied publish: %v", err)
	}
	// Media sent anyway is dropped: the stream has no publisher.
	for i := range 20 {
		pubc.WriteMessages([]message.Message{{Type: message.TypeVideo, StreamID: id, Timestamp: uint32(i * 40), Payload: []byte{0x17, 1, 0, 0, 0, 1}}})
	}

	if p, ok := lookPath("ffmpeg"); ok {
		ff := startProc(t, 30*time.Second, p, "-nostdin", "-hide_banner", "-loglevel", "error",
			"-f", "lavfi", "-i", "testsrc=size=160x120:rate=10", "-t", "5", "-c:v", "libx264", "-preset", "ultrafast",
			"-f", "flv", srv.URL("forbidden"))
		if !ff.wait(20 * time.Second) {
			t.Errorf("ffmpeg still publishing to a denied name")
		} else if ff.exitErr() == nil {
			t.Errorf("ffmpeg publish to a denied name succeeded")
		}
		t.Logf("ffmpeg on a denied publish: %s", strings.TrimSpace(tailString(ff.Stderr.String(), 300)))
	}

	// The player got no media.
	player.SetReadDeadline(time.Now().Add(2 * time.Second))
	for {
		m, err := player.ReadMessage()
		if err != nil {
			break
		}
		if m.StreamID == pid && (m.Type == message.TypeVideo || m.Type == message.TypeAudio) {
			t.Fatalf("a denied publish reached a player: %v", m.Type)
		}
	}
	var streams []apiStream
	apiGet(t, api, "/api/v1/streams", &streams)
	for _, s := range streams {
		if s.Publisher != 0 {
			t.Errorf("denied stream has a publisher: %+v", s)
		}
	}
	if n := logCountAccess(srv, "publish", "false"); n == 0 {
		t.Errorf("no access line for the denied publish")
	}
	mu.Lock()
	defer mu.Unlock()
	found := false
	for _, r := range asked {
		if r["action"] == "publish" && r["stream"] == "forbidden" && r["query"] == "user=x" && r["app"] == "live" && r["ip"] == "127.0.0.1" {
			found = true
		}
	}
	if !found {
		t.Errorf("the callback was not asked with app, stream, query and ip: %v", asked)
	}
}

func lookPath(name string) (string, bool) {
	p, err := exec.LookPath(name)
	return p, err == nil
}

// logCountAccess counts access lines of event whose allowed attribute is
// allowed ("true" or "false").
func logCountAccess(s *server, event, allowed string) int {
	lines, _ := s.log.snapshot(0)
	n := 0
	for _, l := range lines {
		if l.str("msg") == "access" && l.str("event") == event && fmt.Sprint(l.JSON["allowed"]) == allowed {
			n++
		}
	}
	return n
}

// TestAdminTokenRequiredOffLoopback: the binary refuses to start with the
// admin API on all interfaces and no token, naming the setting.
func TestAdminTokenRequiredOffLoopback(t *testing.T) {
	e2e(t)
	p := startProc(t, 20*time.Second, serverBin, "serve", "--rtmp-addr", "127.0.0.1:0", "--http-addr", "",
		"--data-dir", t.TempDir(), "--admin-addr", "0.0.0.0:0")
	if !p.wait(15 * time.Second) {
		t.Fatal("server started with an admin API off loopback and no token")
	}
	if err := p.exitErr(); err == nil || !strings.Contains(p.Stderr.String(), "RTMPHUB_ADMIN_TOKEN") {
		t.Fatalf("exit %v, stderr %q", err, p.Stderr.String())
	}
	// With a token it starts, and the API wants it.
	srv := startServer(t, "--admin-addr", "0.0.0.0:0", "--admin-token", "e2e-token")
	_, port, _ := strings.Cut(srv.adminAddr(t), "]:")
	if port == "" {
		_, port, _ = strings.Cut(srv.adminAddr(t), ":")
	}
	api := "http://127.0.0.1:" + port
	if code := apiDo(t, "GET", api+"/api/v1/server"); code != http.StatusUnauthorized {
		t.Errorf("without the token: %d", code)
	}
	req, _ := http.NewRequest("GET", api+"/api/v1/server", nil)
	req.Header.Set("Authorization", "Bearer e2e-token")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("with the token: %d", resp.StatusCode)
	}
}

// TestAdminRTMPTClient: a client over RTMPT shows its protocol and its
// RTMPT session id.
func TestAdminRTMPTClient(t *testing.T) {
	e2e(t)
	srv := startServer(t, "--admin-addr", "127.0.0.1:0")
	api := "http://" + srv.adminAddr(t)
	httpAddr := srv.RTMPTAddr(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, "rtmpt://"+httpAddr+"/live", client.Options{Dial: func(ctx context.Context, addr string) (net.Conn, error) {
		return tunnel.DialRTMPT(ctx, "rtmpt://"+httpAddr, tunnel.DialOptions{})
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var clients []struct {
		Protocol string `json:"protocol"`
		TunnelID string `json:"rtmpt_session_id"`
		App      string `json:"app"`
	}
	apiGet(t, api, "/api/v1/clients", &clients)
	if len(clients) != 1 || clients[0].Protocol != "rtmpt" || clients[0].TunnelID == "" || clients[0].App != "live" {
		t.Errorf("clients %+v", clients)
	}
}
