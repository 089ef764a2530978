package e2e

// Browsers playing rtmphub's streams for real: the player page (package
// web/player) in Chromium plays what ffmpeg publishes over RTMP, as
// HTTP-FLV and WebSocket-FLV through mpegts.js; the latency from a Go
// publisher to the frame the page shows; the web console on the admin
// port; and signed tokens refusing a page and curl-like requests.

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	cdppage "github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/rtmphub/rtmphub/session/sessiontest"
)

// Bounds of the browser playback tests.
const (
	playStartTimeout = 20 * time.Second // page open → playing
	playWatch        = 5 * time.Second  // the window watchPlayback measures
	playFPS          = 25
)

// playerState is window.rtmphubPlayer, as far as the tests read it.
type playerState struct {
	Proto   string  `json:"proto"`
	Engine  string  `json:"engine"`
	URL     string  `json:"url"`
	State   string  `json:"state"`
	Latency float64 `json:"latency"`
	Errors  []struct {
		Msg string `json:"msg"`
	} `json:"errors"`
	Retries int `json:"retries"`
	Starts  int `json:"starts"`
	Frames  int `json:"frames"`
	Width   int `json:"width"`
	Height  int `json:"height"`
}

const playerStateJS = `(() => { const p = window.rtmphubPlayer; if (!p) return null;
	const {restart, ...rest} = p; return rest; })()`

func (p *page) playerState(t *testing.T) playerState {
	t.Helper()
	var s *playerState
	p.eval(t, playerStateJS, &s)
	if s == nil {
		t.Fatalf("page %s has no window.rtmphubPlayer", p.url)
	}
	return *s
}

// playingJS is true once the player page plays: its state says so and the
// video shows frames.
const playingJS = `window.rtmphubPlayer && rtmphubPlayer.state === 'playing' &&
	document.querySelector('video').currentTime > 0 &&
	document.querySelector('video').getVideoPlaybackQuality().totalVideoFrames > 0`

// checkPlays opens the player page at pageURL, waits for it to play and
// holds it to the 90% rule over playWatch: frames decoded and currentTime
// advanced. It returns the page, still open.
func checkPlays(t *testing.T, b *browser, pageURL, wantProto, wantEngine string) *page {
	t.Helper()
	start := time.Now()
	p := b.open(t, pageURL)
	p.waitFor(t, playingJS, playStartTimeout)
	t.Logf("%s: playing %v after the page was asked for", pageURL, time.Since(start).Round(time.Millisecond))
	frames, advanced := p.watchPlayback(t, playWatch)
	want := int(math.Ceil(0.9 * playFPS * playWatch.Seconds()))
	if frames < want {
		t.Errorf("decoded %d frames in %v; want ≥ %d (90%% of %d fps)", frames, playWatch, want, playFPS)
	}
	if advanced < 0.9*playWatch.Seconds() {
		t.Errorf("currentTime advanced %.3f s in %v; want ≥ %.2f s", advanced, playWatch, 0.9*playWatch.Seconds())
	}
	st := p.playerState(t)
	t.Logf("rtmphubPlayer: proto=%s engine=%s url=%s state=%s latency=%.2fs %dx%d starts=%d retries=%d errors=%v",
		st.Proto, st.Engine, st.URL, st.State, st.Latency, st.Width, st.Height, st.Starts, st.Retries, st.Errors)
	if st.Proto != wantProto || st.Engine != wantEngine {
		t.Errorf("rtmphubPlayer plays %s with %s; want %s with %s", st.Proto, st.Engine, wantProto, wantEngine)
	}
	if st.State != "playing" || len(st.Errors) != 0 || st.Starts != 1 {
		t.Errorf("rtmphubPlayer: state %q, %d errors %v, %d starts; want playing, none, 1", st.State, len(st.Errors), st.Errors, st.Starts)
	}
	if st.Width != 320 || st.Height != 240 {
		t.Errorf("rtmphubPlayer: %dx%d; want 320x240", st.Width, st.Height)
	}
	p.noErrors(t)
	return p
}

// TestBrowserPlays: ffmpeg publishes H.264+AAC over RTMP; the player page
// in Chromium plays it as HTTP-FLV and as WebSocket-FLV from the HTTP
// port, as HTTP-FLV from the RTMP port (sniffed), and as LL-HLS through
// hls.js from the HTTP port, one tab after the other. Each decodes ≥ 90%
// of the frames of a 5 s window with currentTime advancing ≥ 90% of it,
// with no error in the page, and the server logs one watch line for it
// under its protocol (for LL-HLS: the stream's one HLS muxer).
func TestBrowserPlays(t *testing.T) {
	e2e(t)
	needFFmpeg(t)
	b := startBrowser(t)
	srv := startServer(t)
	httpAddr := srv.RTMPTAddr(t)
	pub := startPublisher(t, srv.URL("s1"), pubOpts{Seconds: 60, GOP: 25})
	t.Cleanup(func() { pub.stop(5 * time.Second) })
	pub.waitFrames(t, 25, 30*time.Second)

	for _, c := range []struct {
		name, url, proto, engine, logged string
	}{
		{"HTTPFLV", "http://" + httpAddr + "/live/s1?proto=flv", "flv", "mpegts.js", "http-flv"},
		{"WebSocketFLV", "http://" + httpAddr + "/live/s1?proto=ws", "ws", "mpegts.js", "ws-flv"},
		{"HTTPFLVOnRTMPPort", "http://" + srv.Addr + "/live/s1?proto=flv", "flv", "mpegts.js", "http-flv"},
		{"LLHLS", "http://" + httpAddr + "/live/s1?proto=hls", "hls", "hls.js", "hls-muxer"},
	} {
		t.Run(c.name, func(t *testing.T) {
			watch := map[string]string{"event": "watch", "protocol": c.logged}
			before := logCount(srv, "access", watch)
			p := checkPlays(t, b, c.url, c.proto, c.engine)
			p.screenshot(t, "player-"+c.proto)
			if n := logCount(srv, "access", watch) - before; n != 1 {
				t.Errorf("%d access watch lines with protocol %s for the page, want 1", n, c.logged)
			}
		})
	}
	srv.requireAlive(t)
}

// TestBrowserLatency measures the latency from a publisher to the frame
// the player page shows (see latency_test.go), through HTTP-FLV and
// WebSocket-FLV: a Go publisher sends a barcoded clip in real time and
// the page reads the frame number off its video every 150 ms for 8 s.
// The same for LL-HLS through hls.js.
// It asserts sanity only (readings decode, frames advance at about the
// clip's rate, p50 < 5 s) and logs "LATENCY <proto> p50=… p95=… max=…".
func TestBrowserLatency(t *testing.T) {
	e2e(t)
	clip := barcodeClip(t, 45, 25)
	b := startBrowser(t)
	srv := startServer(t)
	httpAddr := srv.RTMPTAddr(t)
	pub := startPacedPub(t, "rtmp://"+srv.Addr+"/live/lat", clip)
	if !sessiontest.Poll(10*time.Second, func() bool { return pub.frames.Load() >= 25 }) {
		t.Fatalf("paced publisher sent %d frames in 10 s", pub.frames.Load())
	}
	for _, c := range []struct{ name, proto, label string }{
		{"HTTPFLV", "flv", "http-flv"},
		{"WebSocketFLV", "ws", "ws-flv"},
		{"LLHLS", "hls", "hls"},
	} {
		t.Run(c.name, func(t *testing.T) {
			joined := pub.frames.Load()
			p := b.open(t, "http://"+httpAddr+"/live/lat?proto="+c.proto)
			p.waitFor(t, playingJS, playStartTimeout)
			// A viewer starts with the GOP the server holds: how far
			// into its GOP the stream was when the page came bears on
			// where the player starts (and whether it catches up).
			t.Logf("%s: page opened at publisher frame %d (frame %d of its GOP of 25)", c.label, joined, joined%25)
			measureLatency(t, p, pub, c.label, 8*time.Second, 150*time.Millisecond)
			p.noErrors(t)
		})
	}
	select {
	case err := <-pub.done:
		t.Fatalf("paced publisher ended early: %v", err)
	default:
	}
}

// measureLatency samples barcodeJS in p every interval for dur and logs
// the latencies.
func measureLatency(t *testing.T, p *page, pub *pacedPub, label string, dur, interval time.Duration) {
	t.Helper()
	var rs []barcodeReading
	start := time.Now()
	for time.Since(start) < dur {
		var r barcodeReading
		p.eval(t, barcodeJS, &r)
		rs = append(rs, r)
		time.Sleep(interval)
	}
	ms, misread := pub.latencies(rs)
	// The reading must be right: frame numbers advance at about the
	// clip's 25 fps (up to 1.2× while mpegts.js catches up with the live
	// edge), and seldom go back.
	var first, last *barcodeReading
	back := 0
	for i := range rs {
		if rs[i].N < 0 {
			continue
		}
		if last != nil && rs[i].N < last.N {
			back++
		}
		if first == nil {
			first = &rs[i]
		}
		last = &rs[i]
	}
	if first == nil || last == first {
		t.Fatalf("%s: no frame number read in %d readings: %v", label, len(rs), rs)
	}
	rate := float64(last.N-first.N) / (float64(last.At-first.At) / 1000)
	t.Logf("%s: %d readings, frames %d → %d in %.1f s (%.1f frames/s), %d went back; first readings %v",
		label, len(rs), first.N, last.N, float64(last.At-first.At)/1000, rate, back, rs[:min(5, len(rs))])
	if rate < 15 || rate > 35 {
		t.Errorf("%s: frame numbers advance at %.1f/s; want about 25 (is the barcode read right?)", label, rate)
	}
	p50, p95, mx := percentile(ms, 50), percentile(ms, 95), percentile(ms, 100)
	t.Logf("LATENCY %s p50=%.0fms p95=%.0fms max=%.0fms readings=%d decoded=%d misreads=%d",
		label, p50, p95, mx, len(rs), len(ms), misread)
	if len(ms) < int(math.Ceil(0.8*float64(len(rs)))) {
		t.Errorf("%s: %d of %d readings decoded; want ≥ 80%%", label, len(ms), len(rs))
	}
	if misread*10 > len(rs) {
		t.Errorf("%s: %d misreads in %d readings; want ≤ 10%%", label, misread, len(rs))
	}
	if p50 >= 5000 {
		t.Errorf("%s: median latency %.0f ms; want < 5 s", label, p50)
	}
}

// TestBrowserConsole: the web console on the admin port, signed in by a
// #token= link, lists a stream ffmpeg publishes and the ffmpeg RTMP player
// playing it; its preview (an <iframe> of the player page on the HTTP
// port, another origin) plays; nothing in the page errs; the player's
// Kick button disconnects that player, whose row goes. Plays need signed
// tokens (--auth-secret): the preview plays with the one the admin API
// signs for it.
func TestBrowserConsole(t *testing.T) {
	e2e(t)
	needFFmpeg(t)
	b := startBrowser(t)
	const secret = "S"
	srv := startServer(t, "--admin-addr", "127.0.0.1:0", "--admin-token", "T", "--auth-secret", secret)
	admin := srv.adminAddr(t)
	good := signedQuery(secret, "s1", time.Now().Add(time.Hour).Unix())
	pub := startPublisher(t, srv.URL("s1")+"?"+good, pubOpts{Seconds: 60, GOP: 25})
	t.Cleanup(func() { pub.stop(5 * time.Second) })
	pub.waitFrames(t, 25, 30*time.Second)
	ply := startProc(t, time.Minute, "ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "warning",
		"-i", srv.URL("s1")+"?"+good, "-f", "null", "-")

	p := b.open(t, "http://"+admin+"/#token=T")
	const row = `tr[data-stream="live/_definst_/s1"]`
	p.waitFor(t, `document.querySelector('`+row+`') !== null`, 10*time.Second)
	// The player's client: a client playing s1.
	const playerIDJS = `(() => { const c = (window.rtmphubConsole.state.clients || []).find(c =>
		(c.streams || []).some(s => s.role === 'play' && s.name === 's1'));
		return c ? c.id : 0; })()`
	p.waitFor(t, playerIDJS+` > 0`, 15*time.Second)
	var id uint64
	p.eval(t, playerIDJS, &id)
	clientRow := fmt.Sprintf(`tr[data-client="%d"]`, id)
	p.waitFor(t, `document.querySelector('`+clientRow+`') !== null`, 5*time.Second)
	var token string
	p.eval(t, `location.hash + '|' + sessionStorage.getItem('rtmphub.console.token')`, &token)
	if token != "|T" {
		t.Errorf("after the #token= link: hash|sessionStorage = %q; want the token moved out of the URL", token)
	}

	// The preview: the player page of the HTTP port in an iframe.
	watches := logCount(srv, "access", map[string]string{"event": "watch", "protocol": "http-flv"})
	p.click(t, `button[data-preview="live/_definst_/s1"]`)
	p.waitFor(t, `document.querySelector('[data-preview-of="live/_definst_/s1"] iframe') !== null`, 5*time.Second)
	var src string
	p.eval(t, `document.querySelector('[data-preview-of="live/_definst_/s1"] iframe').src`, &src)
	httpAddr := srv.RTMPTAddr(t)
	want := "http://" + httpAddr + "/live/s1?"
	if !strings.HasPrefix(src, want) || !strings.Contains(src, "proto=flv&embed=1") || !strings.Contains(src, "token=") {
		t.Fatalf("preview iframe src %q; want %s...token=...&proto=flv&embed=1 (a signed token)", src, want)
	}
	want = src
	if !sessiontest.Poll(15*time.Second, func() bool {
		return logCount(srv, "access", map[string]string{"event": "watch", "protocol": "http-flv"}) > watches
	}) {
		t.Errorf("the preview never watched the stream over HTTP-FLV")
	}
	// The console counts the preview among the stream's viewers.
	p.waitFor(t, `document.querySelector('`+row+`').textContent.includes('http-flv 1')`, 10*time.Second)
	// The preview plays: its <video> (read in the iframe, another origin)
	// decodes frames and moves on.
	previewVideo := func() (s *videoSample) {
		if err := p.evalInFrame(want, videoSampleJS, &s); err != nil {
			t.Fatalf("the preview iframe: %v", err)
		}
		return s
	}
	var v0 *videoSample
	if !sessiontest.Poll(15*time.Second, func() bool {
		v0 = previewVideo()
		return v0 != nil && v0.Frames > 0 && v0.Time > 0
	}) {
		t.Fatalf("the preview does not play: %+v\nconsole:\n%s", v0, p.dump())
	}
	time.Sleep(2 * time.Second)
	v1 := previewVideo()
	t.Logf("preview: %d frames decoded, currentTime %.2f s; 2 s later %d frames, %.2f s", v0.Frames, v0.Time, v1.Frames, v1.Time)
	if v1.Frames-v0.Frames < 40 || v1.Time-v0.Time < 1.6 {
		t.Errorf("the preview played %d frames and %.2f s in 2 s", v1.Frames-v0.Frames, v1.Time-v0.Time)
	}
	var frame struct {
		W, H int
	}
	p.eval(t, `(() => { const f = document.querySelector('[data-preview-of="live/_definst_/s1"] iframe').getBoundingClientRect();
		return {W: Math.round(f.width), H: Math.round(f.height)}; })()`, &frame)
	t.Logf("preview iframe %dx%d", frame.W, frame.H)
	if frame.W < 100 || frame.H < 60 {
		t.Errorf("preview iframe is %dx%d", frame.W, frame.H)
	}
	p.screenshot(t, "console")
	p.noErrors(t)

	// Kick the RTMP player.
	p.click(t, fmt.Sprintf(`button[data-kick="%d"]`, id))
	if !ply.wait(15 * time.Second) {
		t.Errorf("ffmpeg player still running 15 s after Kick")
	}
	if _, ok := srv.log.wait(func(l logLine) bool {
		c, _ := l.JSON["client"].(float64)
		return l.str("msg") == "access" && l.str("event") == "disconnect" && uint64(c) == id
	}, 10*time.Second, srv.done); !ok {
		t.Errorf("no access disconnect line for client %d", id)
	}
	p.waitFor(t, `document.querySelector('`+clientRow+`') === null`, 10*time.Second)
	p.waitFor(t, `document.querySelector('#banner').textContent.includes('disconnected')`, 5*time.Second)
	p.noErrors(t)

	// The checks above see the iframe's errors: a failed request made in
	// the preview is reported with the console page's.
	var ok bool
	if err := p.evalInFrame(want, `fetch('/.rtmphub/e2e-probe').then(r => r.status === 404)`, &ok); err != nil || !ok {
		t.Fatalf("probe request in the preview: %v %v", ok, err)
	}
	if !sessiontest.Poll(5*time.Second, func() bool {
		return slices.ContainsFunc(p.errors(), func(m consoleMsg) bool { return strings.Contains(m.URL, "/.rtmphub/e2e-probe") })
	}) {
		t.Errorf("a 404 in the preview iframe is not among the page's errors: the console checks would miss its errors\n%s", p.dump())
	}
}

// signedQuery is the token query of stream live/<stream> under secret.
func signedQuery(secret, stream string, expires int64) string {
	m := hmac.New(sha256.New, []byte(secret))
	fmt.Fprintf(m, "live/%s/%d", stream, expires)
	return fmt.Sprintf("token=%s&expires=%d", hex.EncodeToString(m.Sum(nil)), expires)
}

// TestBrowserTokenRefused: with --auth-secret, a viewer needs a signed
// token. Without one the .flv answers 401 and the player page reports
// the error; a bad token is 403; neither gets a byte of FLV. A good token
// gets the stream, and the page with it plays.
func TestBrowserTokenRefused(t *testing.T) {
	e2e(t)
	needFFmpeg(t)
	const secret = "S"
	b := startBrowser(t)
	srv := startServer(t, "--auth-secret", secret)
	httpAddr := srv.RTMPTAddr(t)
	good := signedQuery(secret, "s1", time.Now().Add(time.Hour).Unix())
	pub := startPublisher(t, srv.URL("s1")+"?"+good, pubOpts{Seconds: 60, GOP: 25})
	t.Cleanup(func() { pub.stop(5 * time.Second) })
	pub.waitFrames(t, 25, 30*time.Second)

	bad := signedQuery("not the secret", "s1", time.Now().Add(time.Hour).Unix())
	for _, f := range []struct{ path, magic string }{
		{"/live/s1.flv", "FLV\x01"},
		{"/live/s1/index.m3u8", "#EXTM3U"},
	} {
		for _, c := range []struct {
			name, query string
			status      int
		}{
			{"no token", "", http.StatusUnauthorized},
			{"bad token", "?" + bad, http.StatusForbidden},
			{"good token", "?" + good, http.StatusOK},
		} {
			status, head := getHead(t, "http://"+httpAddr+f.path+c.query, 13)
			t.Logf("GET %s with %s: %d %q", f.path, c.name, status, head)
			if status != c.status {
				t.Errorf("GET %s with %s: %d; want %d", f.path, c.name, status, c.status)
			}
			if ok := strings.HasPrefix(head, f.magic); ok != (c.status == http.StatusOK) {
				t.Errorf("GET %s with %s: body starts %q", f.path, c.name, head)
			}
		}
	}

	t.Run("PageWithoutToken", func(t *testing.T) {
		p := b.open(t, "http://"+httpAddr+"/live/s1?proto=flv")
		p.waitFor(t, `window.rtmphubPlayer && rtmphubPlayer.errors.length > 0`, 15*time.Second)
		st := p.playerState(t)
		t.Logf("player without a token: state %s, errors %v", st.State, st.Errors)
		if !strings.Contains(st.Errors[0].Msg, "401") {
			t.Errorf("player error %q; want a 401", st.Errors[0].Msg)
		}
		var frames int
		p.eval(t, `document.querySelector('video').getVideoPlaybackQuality().totalVideoFrames`, &frames)
		if frames != 0 {
			t.Errorf("the page decoded %d frames without a token", frames)
		}
		var status string
		p.eval(t, `document.getElementById('rtmphub-status').textContent`, &status)
		t.Logf("status line: %q", status)
		if !strings.Contains(status, "401") {
			t.Errorf("status line %q does not show the 401", status)
		}
	})
	t.Run("PageWithToken", func(t *testing.T) {
		checkPlays(t, b, "http://"+httpAddr+"/live/s1?proto=flv&"+good, "flv", "mpegts.js")
	})
	t.Run("HLSPageWithToken", func(t *testing.T) {
		checkPlays(t, b, "http://"+httpAddr+"/live/s1?proto=hls&"+good, "hls", "hls.js")
	})
	if n := logCount(srv, "access", map[string]string{"event": "watch", "protocol": "http-flv"}); n < 4 {
		t.Errorf("%d access watch lines; want the refusals and the allowed viewers logged", n)
	}
}

// getHead GETs url and returns the status and up to n bytes of the body.
func getHead(t *testing.T, url string, n int) (int, string) {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	buf := make([]byte, n)
	k, _ := io.ReadAtLeast(resp.Body, buf, n)
	return resp.StatusCode, string(buf[:k])
}

// evalInFrame evaluates js in the first frame of p whose URL starts with
// urlPrefix (an <iframe>, of any origin), in an isolated world of its own:
// it shares the frame's DOM, not its scripts' globals. The JSON value goes
// into out.
func (p *page) evalInFrame(urlPrefix, js string, out any) error {
	ctx, cancel := context.WithTimeout(p.ctx, evalTimeout)
	defer cancel()
	tree, err := chromedp.Call(ctx, cdppage.GetFrameTree, cdp.Empty{})
	if err != nil {
		return err
	}
	var find func(*cdppage.FrameTree) *cdp.Frame
	find = func(ft *cdppage.FrameTree) *cdp.Frame {
		if ft == nil {
			return nil
		}
		if ft.Frame != nil && ft.Frame.ParentID != "" && strings.HasPrefix(ft.Frame.URL, urlPrefix) {
			return ft.Frame
		}
		for _, c := range ft.ChildFrames {
			if f := find(c); f != nil {
				return f
			}
		}
		return nil
	}
	f := find(tree.FrameTree)
	if f == nil {
		return fmt.Errorf("no frame at %s", urlPrefix)
	}
	w, err := chromedp.Call(ctx, cdppage.CreateIsolatedWorld, cdppage.CreateIsolatedWorldParams{FrameID: f.ID, WorldName: "e2e"})
	if err != nil {
		return err
	}
	yes := true
	r, err := chromedp.Call(ctx, runtime.Evaluate, runtime.EvaluateParams{Expression: js,
		ContextID: w.ExecutionContextID, ReturnByValue: &yes, AwaitPromise: &yes})
	if err != nil {
		return err
	}
	if r.ExceptionDetails != nil {
		return errors.New(r.ExceptionDetails.Text + " " + fmt.Sprint(r.ExceptionDetails.Exception))
	}
	if r.Result == nil || len(r.Result.Value) == 0 {
		return json.Unmarshal([]byte("null"), out)
	}
	return json.Unmarshal(r.Result.Value, out)
}
