package hls

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rtmphub/rtmphub/flv"
	"github.com/rtmphub/rtmphub/rtmp/message"
	"github.com/rtmphub/rtmphub/session/live"
	"github.com/rtmphub/rtmphub/session/vod"
)

// The tests feed a live.Stream with the tags of an FLV file that ffmpeg
// made, serve it through httptest and read it back with ffmpeg/ffprobe.

func inCI() bool { return os.Getenv("CI") != "" }

// needTool returns the path of an external tool. A missing tool skips the
// test locally and fails it in CI: CI must never skip silently.
func needTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if inCI() {
			t.Fatalf("required tool %q not found in PATH (CI is set; run scripts/install-test-tools.sh)", name)
		}
		t.Skipf("tool %q not found in PATH; run scripts/install-test-tools.sh", name)
	}
	return p
}

var (
	flvDir   string
	flvMu    sync.Mutex
	flvFiles = map[string][]*flv.Tag{}
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "hls-test")
	if err != nil {
		panic(err)
	}
	flvDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// ffmpeg inputs of the test files: 25 fps, a keyframe a second.
var flvInputs = map[string][]string{
	"av": {"-f", "lavfi", "-i", "testsrc=size=320x240:rate=25", "-f", "lavfi", "-i", "sine=sample_rate=44100",
		"-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-g", "25", "-c:a", "aac", "-t", "6"},
	"av160": {"-f", "lavfi", "-i", "testsrc=size=160x120:rate=25", "-f", "lavfi", "-i", "sine=sample_rate=44100",
		"-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-g", "25", "-c:a", "aac", "-t", "3"},
	"audio": {"-f", "lavfi", "-i", "sine=sample_rate=48000", "-c:a", "aac", "-t", "4"},
	"video": {"-f", "lavfi", "-i", "testsrc=size=320x240:rate=25", "-c:v", "libx264", "-preset", "ultrafast",
		"-pix_fmt", "yuv420p", "-bf", "2", "-g", "25", "-t", "4"},
}

// mp4Inputs are test files made as MP4 (ffmpeg 5 writes no HEVC in FLV)
// and read as FLV tags through session/vod, which sends HEVC as E-RTMP.
var mp4Inputs = map[string][]string{
	"hevc": {"-f", "lavfi", "-i", "testsrc=size=320x240:rate=25", "-f", "lavfi", "-i", "sine=sample_rate=44100",
		"-c:v", "libx265", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-x265-params", "keyint=25:min-keyint=25:log-level=error",
		"-c:a", "aac", "-t", "4"},
}

// testTags returns the tags of the FLV file kind, made once by ffmpeg.
func testTags(t *testing.T, kind string) []*flv.Tag {
	t.Helper()
	ffmpeg := needTool(t, "ffmpeg")
	flvMu.Lock()
	defer flvMu.Unlock()
	if tags, ok := flvFiles[kind]; ok {
		return tags
	}
	if in, ok := mp4Inputs[kind]; ok {
		tags := mp4Tags(t, ffmpeg, kind, in)
		flvFiles[kind] = tags
		return tags
	}
	path := filepath.Join(flvDir, kind+".flv")
	args := append([]string{"-hide_banner", "-loglevel", "error", "-y"}, flvInputs[kind]...)
	args = append(args, "-f", "flv", path)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, ffmpeg, args...).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, out)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := flv.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	var tags []*flv.Tag
	for {
		tag, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		tags = append(tags, tag)
	}
	flvFiles[kind] = tags
	return tags
}

// mp4Tags makes an MP4 file with ffmpeg and returns its sequence headers
// and samples as FLV tags, as session/vod plays them.
func mp4Tags(t *testing.T, ffmpeg, kind string, in []string) []*flv.Tag {
	t.Helper()
	dir := filepath.Join(flvDir, kind)
	streams := filepath.Join(dir, "app", "streams", "_definst_")
	if err := os.MkdirAll(streams, 0o755); err != nil {
		t.Fatal(err)
	}
	args := append([]string{"-hide_banner", "-loglevel", "error", "-y"}, in...)
	args = append(args, filepath.Join(streams, kind+".mp4"))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, ffmpeg, args...).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, out)
	}
	store := vod.New(vod.Config{DataDir: dir})
	f, err := store.Find("app", "_definst_", "mp4:"+kind+".mp4")
	if err != nil {
		t.Fatal(err)
	}
	src, err := store.Open(f)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	tags := append([]*flv.Tag(nil), src.Info().Seq...)
	for {
		tag, err := src.Next()
		if errors.Is(err, io.EOF) {
			return tags
		}
		if err != nil {
			t.Fatal(err)
		}
		tags = append(tags, tag)
	}
}

// source is a test publisher.
type source struct{}

func (source) Log() *slog.Logger                { return slog.New(slog.DiscardHandler) }
func (source) Evict(live.Source, time.Duration) {}

// env is a published stream served over HTTP by a Manager.
type env struct {
	t   *testing.T
	st  *live.Stream
	pub *live.Publication
	m   *Manager
	srv *httptest.Server
	log *bytes.Buffer
	// served, when set, hears of every request answered 200.
	served func(file string)
	// attach attaches a muxer to the stream of a key, as the server does.
	attach func(key string) Attach
}

// lockedBuffer is a log sink safe for the muxers' goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  *bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (e *env) logText() string {
	return e.log.String()
}

func newEnv(t *testing.T, cfg Config) *env {
	t.Helper()
	st := live.New("cam", live.Options{Config: &live.Config{Takeover: time.Second, GOPCacheMaxBytes: 8 << 20}})
	pub, err := st.Publish(source{}, live.PublishOptions{Type: "live"})
	if err != nil {
		t.Fatal(err)
	}
	logBuf := &bytes.Buffer{}
	lb := &lockedBuffer{b: logBuf}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	e := &env{t: t, st: st, pub: pub, m: New(cfg), log: logBuf}
	attachKey := func(key string) Attach {
		return func(r live.Reader) (func(), error) {
			if key != "live/cam" || !st.Live() {
				return nil, errors.New("not live")
			}
			sub := st.AddReader(r, live.ReaderOptions{})
			return sub.Close, nil
		}
	}
	e.attach = attachKey
	e.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// /hls/<key>/<file>
		p := strings.TrimPrefix(r.URL.Path, "/hls/")
		i := strings.LastIndexByte(p, '/')
		if i < 0 {
			http.NotFound(w, r)
			return
		}
		sw := &statusWriter{ResponseWriter: w}
		e.m.Serve(sw, r, p[:i], p[i+1:], attachKey(p[:i]))
		if e.served != nil && (sw.code == 0 || sw.code == http.StatusOK) {
			e.served(p[i+1:])
		}
	}))
	t.Cleanup(func() {
		e.srv.Close()
		e.m.Close()
		if n, stacks := leftGoroutines(3 * time.Second); n > 0 {
			t.Errorf("%d goroutines of muxers left after Close:\n%s", n, stacks)
		}
		if t.Failed() {
			lb.mu.Lock()
			t.Logf("log:\n%s", logBuf.String())
			lb.mu.Unlock()
		}
	})
	return e
}

func (e *env) url(file string) string { return e.srv.URL + "/hls/live/cam/" + file }

// feed writes tags to the stream; speed 0 writes them at once, else at
// speed times real time.
func (e *env) feed(tags []*flv.Tag, speed float64) { e.feedAt(tags, speed, 0) }

// feedAt is feed with offset added to every timestamp.
func (e *env) feedAt(tags []*flv.Tag, speed float64, offset uint32) {
	start := time.Now()
	var first uint32
	for i, tag := range tags {
		if i == 0 {
			first = tag.Timestamp
		}
		if speed > 0 {
			due := time.Duration(float64(tag.Timestamp-first)*float64(time.Millisecond)/speed) - time.Since(start)
			if due > 0 {
				time.Sleep(due)
			}
		}
		e.pub.Write(&message.Message{Type: tag.Type, Timestamp: tag.Timestamp + offset, Payload: tag.Data})
	}
}

// waitMuxer waits until the stream has a reader (the muxer attached).
func (e *env) waitMuxer() {
	e.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for len(e.st.Snapshot().Readers) == 0 {
		if time.Now().After(deadline) {
			e.t.Fatal("no muxer attached in 5s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// get fetches a URL with a bound.
func get(t *testing.T, url string, timeout time.Duration) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// asyncGet starts a GET and returns where its result comes.
func asyncGet(t *testing.T, url string, timeout time.Duration) <-chan [2]any {
	c := make(chan [2]any, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			c <- [2]any{0, err.Error()}
			return
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		c <- [2]any{res.StatusCode, string(b)}
	}()
	return c
}

// statusWriter keeps the status a handler answered.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (s *statusWriter) WriteHeader(code int) {
	s.code = code
	s.ResponseWriter.WriteHeader(code)
}

// leftGoroutines waits up to timeout for the goroutines of muxers and of
// gohlslib to end, and returns how many are left and their stacks.
func leftGoroutines(timeout time.Duration) (int, string) {
	deadline := time.Now().Add(timeout)
	for {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		var left []string
		for _, g := range strings.Split(string(buf), "\n\n") {
			if strings.Contains(g, "bluenviron/gohlslib") || strings.Contains(g, "web/hls.(*muxer)") ||
				strings.Contains(g, "web/hls.(*instance)") {
				left = append(left, g)
			}
		}
		if len(left) == 0 || time.Now().After(deadline) {
			return len(left), strings.Join(left, "\n\n")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
