package e2e

// Tests of the browser harness itself (browser_test.go): that it sees a
// page's errors, drives it, and measures real decoding; and which media
// types this Chromium can play through Media Source Extensions, which is
// what mpegts.js and hls.js feed.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// servePages serves each path's HTML (or, for a name not ending in .html,
// bytes as application/octet-stream; .mp4 as video/mp4) on 127.0.0.1.
func servePages(t *testing.T, files map[string][]byte) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, ok := files[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		switch {
		case strings.HasSuffix(r.URL.Path, ".mp4"):
			w.Header().Set("Content-Type", "video/mp4")
		case strings.HasSuffix(r.URL.Path, ".html") || r.URL.Path == "/":
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
		default:
			w.Header().Set("Content-Type", "application/octet-stream")
		}
		http.ServeContent(w, r, r.URL.Path, time.Time{}, bytes.NewReader(body))
	}))
	t.Cleanup(srv.Close)
	return srv
}

// htmlPage wraps body in a page with an empty favicon, so that Chromium's
// favicon request is no 404 in the console.
func htmlPage(title, body string) []byte {
	return []byte(`<!doctype html><html><head><meta charset="utf-8"><link rel="icon" href="data:,">` +
		`<title>` + title + `</title></head><body style="margin:0;background:#202020;color:#eee;font-family:sans-serif">` +
		body + `</body></html>`)
}

// TestBrowserHarness checks the harness can fail: a page's console.error,
// uncaught exception and failed requests are reported by page.errors(),
// while its log and warning lines are collected but are not errors; and
// that click and waitFor drive a page.
func TestBrowserHarness(t *testing.T) {
	e2e(t)
	b := startBrowser(t)
	// A port nothing listens on (any longer).
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	srv := servePages(t, map[string][]byte{
		"/errors.html": htmlPage("errors", `<script>
console.log('hello'); console.warn('careful'); console.error('x');
setTimeout(() => { throw new Error('boom'); }, 0);
fetch('/missing').catch(() => {});
fetch('http://`+closed+`/refused').catch(() => {});
</script>`),
		// No icon link: Chromium's own /favicon.ico 404 is no page error.
		"/clean.html": []byte(`<!doctype html><title>clean</title><script>console.log('all fine')</script>`),
		"/click.html": htmlPage("click", `<button id="go" style="margin:40px;font-size:32px"
onclick="document.title = 'clicked'; this.textContent = 'clicked'">go</button>`),
	})

	t.Run("ConsoleErrors", func(t *testing.T) {
		p := b.open(t, srv.URL+"/errors.html")
		want := map[string]func(consoleMsg) bool{
			"console.error('x')": func(m consoleMsg) bool { return m.Kind == "console" && m.Text == "x" },
			"uncaught Error: boom": func(m consoleMsg) bool {
				return m.Kind == "exception" && strings.Contains(m.Text, "Error: boom")
			},
			"404 of /missing": func(m consoleMsg) bool { return strings.Contains(m.Text, "404") },
			"refused connection": func(m consoleMsg) bool {
				return strings.Contains(m.Text, "ERR_CONNECTION_REFUSED")
			},
		}
		deadline := time.Now().Add(10 * time.Second)
		var missing []string
		for {
			missing = missing[:0]
			errs := p.errors()
			for name, match := range want {
				if !slices.ContainsFunc(errs, match) {
					missing = append(missing, name)
				}
			}
			if len(missing) == 0 || time.Now().After(deadline) {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if len(missing) > 0 {
			t.Errorf("page.errors() lacks %q\nall messages:\n%s", missing, p.dump())
		}
		for _, text := range []string{"hello", "careful"} {
			isText := func(m consoleMsg) bool { return m.Text == text }
			if !slices.ContainsFunc(p.messages(), isText) {
				t.Errorf("page.messages() lacks console %q\n%s", text, p.dump())
			}
			if slices.ContainsFunc(p.errors(), isText) {
				t.Errorf("page.errors() has non-error console %q", text)
			}
		}
		t.Logf("collected:\n%s", p.dump())
	})

	t.Run("CleanPage", func(t *testing.T) {
		p := b.open(t, srv.URL+"/clean.html")
		p.waitFor(t, `document.readyState === 'complete'`, 5*time.Second)
		// Give Chromium's favicon request time to fail, so that noErrors
		// sees it.
		isFavicon := func(m consoleMsg) bool { return strings.HasSuffix(m.URL, "/favicon.ico") }
		for end := time.Now().Add(2 * time.Second); time.Now().Before(end) && !slices.ContainsFunc(p.messages(), isFavicon); {
			time.Sleep(50 * time.Millisecond)
		}
		t.Logf("messages:\n%s", p.dump())
		p.noErrors(t)
		var two int
		p.eval(t, `Promise.resolve(1 + 1)`, &two)
		if two != 2 {
			t.Errorf("eval of a promise: got %d, want 2", two)
		}
	})

	t.Run("Click", func(t *testing.T) {
		p := b.open(t, srv.URL+"/click.html")
		p.click(t, "#go")
		p.waitFor(t, `document.title === 'clicked'`, 5*time.Second)
		path := p.screenshot(t, "clicked")
		if png, err := os.ReadFile(path); err != nil || !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) {
			t.Errorf("screenshot %s: not a PNG (err %v)", path, err)
		}
		p.noErrors(t)
	})
}

// mseProbeJS reports, for each MIME type, MediaSource.isTypeSupported and
// the <video> element's canPlayType.
const mseProbeJS = `(() => {
	const types = %s;
	const v = document.createElement('video');
	const out = {userAgent: navigator.userAgent, mediaSource: !!window.MediaSource,
		managedMediaSource: !!window.ManagedMediaSource, types: []};
	for (const t of types) {
		out.types.push({type: t,
			mse: window.MediaSource ? MediaSource.isTypeSupported(t) : false,
			canPlay: v.canPlayType(t)});
	}
	return out;
})()`

// mseTypes are the types that decide how browsers can be served: H.264
// (Constrained Baseline, Main, High) and AAC (LC, HE) are what RTMP
// publishers send; HEVC is enhanced RTMP's; Opus, VP9 and AV1 are what a
// WebRTC or transcoded path would carry.
var mseTypes = []string{
	`video/mp4; codecs="avc1.42C01E"`,
	`video/mp4; codecs="avc1.4D401F"`,
	`video/mp4; codecs="avc1.64001F"`,
	`video/mp4; codecs="avc1.42C01E, mp4a.40.2"`,
	`video/mp4; codecs="hvc1.1.6.L93.B0"`,
	`video/mp4; codecs="hev1.1.6.L93.B0"`,
	`audio/mp4; codecs="mp4a.40.2"`,
	`audio/mp4; codecs="mp4a.40.5"`,
	`audio/mp4; codecs="mp4a.69"`,
	`audio/mpeg`,
	`audio/mp4; codecs="opus"`,
	`audio/webm; codecs="opus"`,
	`video/webm; codecs="vp9"`,
	`video/mp4; codecs="vp09.00.10.08"`,
	`video/webm; codecs="vp8"`,
	`video/mp4; codecs="av01.0.05M.08"`,
	`video/mp2t; codecs="avc1.42C01E, mp4a.40.2"`,
	`application/vnd.apple.mpegurl`,
}

type mseProbe struct {
	UserAgent          string `json:"userAgent"`
	MediaSource        bool   `json:"mediaSource"`
	ManagedMediaSource bool   `json:"managedMediaSource"`
	Types              []struct {
		Type    string `json:"type"`
		MSE     bool   `json:"mse"`
		CanPlay string `json:"canPlay"`
	} `json:"types"`
}

// TestBrowserCodecSupport logs which media types this Chromium plays
// through MSE and <video>, and fails when H.264 and AAC in fragmented MP4,
// which every browser path of rtmphub relies on, are not among them.
func TestBrowserCodecSupport(t *testing.T) {
	e2e(t)
	b := startBrowser(t)
	srv := servePages(t, map[string][]byte{"/": htmlPage("probe", "")})
	p := b.open(t, srv.URL+"/")
	types, _ := json.Marshal(mseTypes)
	var res mseProbe
	p.eval(t, fmt.Sprintf(mseProbeJS, types), &res)
	var tab strings.Builder
	fmt.Fprintf(&tab, "%s\nMediaSource=%v ManagedMediaSource=%v\n", res.UserAgent, res.MediaSource, res.ManagedMediaSource)
	fmt.Fprintf(&tab, "  %-46s %-21s %s\n", "type", "MSE isTypeSupported", "canPlayType")
	supported := map[string]bool{}
	for _, r := range res.Types {
		fmt.Fprintf(&tab, "  %-46s %-21v %q\n", r.Type, r.MSE, r.CanPlay)
		supported[r.Type] = r.MSE
	}
	t.Logf("media support of this Chromium:\n%s", tab.String())
	if !res.MediaSource {
		t.Fatal("no MediaSource in this Chromium: mpegts.js and hls.js cannot play")
	}
	for _, need := range []string{`video/mp4; codecs="avc1.42C01E, mp4a.40.2"`, `video/mp4; codecs="avc1.64001F"`, `audio/mp4; codecs="mp4a.40.2"`} {
		if !supported[need] {
			t.Errorf("MSE does not support %s: browser playback of RTMP's H.264/AAC cannot be tested with this Chromium", need)
		}
	}
	p.noErrors(t)
}

// mseClipPage plays /clip.mp4 (fragmented MP4) through Media Source
// Extensions in a muted autoplaying <video>, as mpegts.js and hls.js do
// with what they remux. window.mse.state tells how far it got.
const mseClipPage = `<video id="v" muted autoplay playsinline width="640" height="360"></video>
<script>
window.mse = {state: 'start'};
const mime = 'video/mp4; codecs="avc1.42C01E, mp4a.40.2"';
(async () => {
	if (!window.MediaSource || !MediaSource.isTypeSupported(mime)) {
		mse.state = 'unsupported';
		throw new Error('MSE does not support ' + mime);
	}
	const v = document.getElementById('v');
	const ms = new MediaSource();
	v.src = URL.createObjectURL(ms);
	await new Promise(r => ms.addEventListener('sourceopen', r, {once: true}));
	const sb = ms.addSourceBuffer(mime);
	const resp = await fetch('/clip.mp4');
	if (!resp.ok) throw new Error('fetch /clip.mp4: ' + resp.status);
	const buf = await resp.arrayBuffer();
	mse.bytes = buf.byteLength;
	await new Promise((resolve, reject) => {
		sb.addEventListener('updateend', resolve, {once: true});
		sb.addEventListener('error', () => reject(new Error('SourceBuffer error')), {once: true});
		sb.appendBuffer(buf);
	});
	mse.buffered = [sb.buffered.start(0), sb.buffered.end(0)];
	ms.endOfStream();
	mse.state = 'appended';
	await v.play();
	mse.state = 'playing';
})().catch(e => {
	mse.state = 'failed: ' + e;
	console.error('MSE: ' + e);
});
</script>`

// TestBrowserHarnessPlaysVideo proves the harness measures real decoding:
// a 6 s H.264/AAC fragmented MP4 at 25 fps fed through MSE must decode at
// least 90% of its frames over 5 s of watching, with currentTime
// advancing at least 4.5 s, and no error in the console.
func TestBrowserHarnessPlaysVideo(t *testing.T) {
	e2e(t)
	needFFmpeg(t)
	b := startBrowser(t)

	const (
		fps   = 25
		clipS = 6
		watch = 5 * time.Second
	)
	clip := filepath.Join(t.TempDir(), "clip.mp4")
	run(t, 60*time.Second, "ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
		"-f", "lavfi", "-i", fmt.Sprintf("testsrc2=size=640x360:rate=%d:duration=%d", fps, clipS),
		"-f", "lavfi", "-i", fmt.Sprintf("sine=frequency=440:sample_rate=44100:duration=%d", clipS),
		// Constrained Baseline level 3.0 is avc1.42C01E; a keyframe, so a
		// fragment, every second.
		"-c:v", "libx264", "-profile:v", "baseline", "-level", "3.0", "-pix_fmt", "yuv420p",
		"-preset", "veryfast", "-g", fmt.Sprint(fps), "-keyint_min", fmt.Sprint(fps), "-sc_threshold", "0",
		"-c:a", "aac", "-b:a", "64k", "-ac", "2",
		"-movflags", "frag_keyframe+empty_moov+default_base_moof",
		"-shortest", clip)
	data, err := os.ReadFile(clip)
	if err != nil {
		t.Fatal(err)
	}
	srv := servePages(t, map[string][]byte{
		"/":         htmlPage("mse", mseClipPage),
		"/clip.mp4": data,
	})

	p := b.open(t, srv.URL+"/")
	p.waitFor(t, `window.mse.state === 'playing' || window.mse.state.startsWith('failed') || window.mse.state === 'unsupported'`, 15*time.Second)
	var state struct {
		State    string    `json:"state"`
		Bytes    int       `json:"bytes"`
		Buffered []float64 `json:"buffered"`
	}
	p.eval(t, `window.mse`, &state)
	t.Logf("clip %d bytes, MSE state %q, buffered %v", len(data), state.State, state.Buffered)
	if state.State != "playing" {
		p.shotOnFailure(t, "not-playing")
		t.Fatalf("MSE playback did not start: %s\nconsole:\n%s", state.State, p.dump())
	}
	// Measure from the first decoded frame on.
	p.waitFor(t, `document.querySelector('video').currentTime > 0`, 5*time.Second)

	frames, advanced := p.watchPlayback(t, watch)
	wantFrames := int(math.Ceil(0.9 * fps * watch.Seconds()))
	if frames < wantFrames {
		t.Errorf("decoded %d frames in %v; want ≥ %d (90%% of %d fps)", frames, watch, wantFrames, fps)
	}
	if advanced < 0.9*watch.Seconds() {
		t.Errorf("currentTime advanced %.3f s in %v; want ≥ %.1f s", advanced, watch, 0.9*watch.Seconds())
	}
	p.screenshot(t, "playing")

	// The rest plays to the end: every frame of the clip decoded.
	p.waitFor(t, `document.querySelector('video').ended`, 5*time.Second)
	total, end := p.videoStats(t)
	t.Logf("ended at currentTime %.3f s with %d frames decoded in all", end, total)
	if want := int(math.Ceil(0.9 * fps * clipS)); total < want {
		t.Errorf("decoded %d frames of the %d s clip; want ≥ %d", total, clipS, want)
	}
	if end < clipS-0.1 {
		t.Errorf("ended at %.3f s; want ≈ %d s", end, clipS)
	}
	p.noErrors(t)
}
