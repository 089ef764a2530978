package web_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/rtmphub/rtmphub/flv"
	"github.com/rtmphub/rtmphub/rtmp/amf"
	"github.com/rtmphub/rtmphub/rtmp/message"
	"github.com/rtmphub/rtmphub/session"
	"github.com/rtmphub/rtmphub/session/sessiontest"
	"github.com/rtmphub/rtmphub/web"
)

// start runs a core with mk's configuration and the web handler in front
// of it, and returns the RTMP base URL (rtmp://host/live), the HTTP base
// URL and the core.
func start(t *testing.T, mk func(log *slog.Logger) session.Config, cfg web.Config) (string, string, *session.Server) {
	t.Helper()
	rtmpBase, httpBase, srv, _ := startLogged(t, mk, cfg)
	return rtmpBase, httpBase, srv
}

// startLogged is start, with the core's log.
func startLogged(t *testing.T, mk func(log *slog.Logger) session.Config, cfg web.Config) (string, string, *session.Server, *sessiontest.LogBuffer) {
	t.Helper()
	base, srv, logs := sessiontest.Start(t, mk)
	h := web.New(srv, cfg)
	hs := httptest.NewServer(h)
	t.Cleanup(func() {
		h.Close()
		hs.Close()
	})
	return base + "/live", hs.URL, srv, logs
}

func plain(log *slog.Logger) session.Config { return session.Config{} }

// flvTags reads an FLV body: the header, then tags until n of them came.
func flvTags(t *testing.T, r io.Reader, n int) (flv.Header, []flv.Tag) {
	t.Helper()
	br := bufio.NewReader(r)
	var h [flv.HeaderSize + 4]byte
	if _, err := io.ReadFull(br, h[:]); err != nil {
		t.Fatalf("FLV header: %v", err)
	}
	if string(h[:3]) != "FLV" {
		t.Fatalf("FLV header %q", h[:])
	}
	hdr := flv.Header{Version: h[3], HasAudio: h[4]&4 != 0, HasVideo: h[4]&1 != 0}
	var tags []flv.Tag
	for len(tags) < n {
		var th [flv.TagHeaderSize]byte
		if _, err := io.ReadFull(br, th[:]); err != nil {
			t.Fatalf("tag %d header: %v", len(tags), err)
		}
		size := int(th[1])<<16 | int(th[2])<<8 | int(th[3])
		ts := uint32(th[4])<<16 | uint32(th[5])<<8 | uint32(th[6]) | uint32(th[7])<<24
		data := make([]byte, size+4)
		if _, err := io.ReadFull(br, data); err != nil {
			t.Fatalf("tag %d body: %v", len(tags), err)
		}
		if prev := int(data[size])<<24 | int(data[size+1])<<16 | int(data[size+2])<<8 | int(data[size+3]); prev != size+flv.TagHeaderSize {
			t.Fatalf("tag %d: PreviousTagSize %d, want %d", len(tags), prev, size+flv.TagHeaderSize)
		}
		tags = append(tags, flv.Tag{Type: message.Type(th[0]), Timestamp: ts, Data: data[:size]})
	}
	return hdr, tags
}

// publish starts a publisher of stream name with its header and the
// frames 0..n (a keyframe every 10).
func publish(t *testing.T, rtmpBase, name string, n int) *sessiontest.Publisher {
	t.Helper()
	p := sessiontest.Publish(t, rtmpBase, name, "live")
	p.Header(t, amf.ECMAArray{{Key: "width", Value: 320.0}})
	p.Frames(t, 0, n, 10)
	p.Sync(t)
	return p
}

// checkJoin checks what a viewer joining after frames 0..14 (keyframes
// every 10) gets first: metadata, both sequence headers, then the cached
// group from keyframe 10, on a timeline starting at 0.
func checkJoin(t *testing.T, hdr flv.Header, tags []flv.Tag) {
	t.Helper()
	if !hdr.HasAudio || !hdr.HasVideo {
		t.Errorf("FLV header flags: %+v", hdr)
	}
	if tags[0].Type != message.TypeDataAMF0 || !strings.Contains(string(tags[0].Data), "onMetaData") {
		t.Fatalf("first tag %v %q, want onMetaData", tags[0].Type, tags[0].Data)
	}
	if tags[1].Type != message.TypeVideo || string(tags[1].Data) != string(sessiontest.AVCSeq) {
		t.Fatalf("second tag: %v, want the AVC sequence header", tags[1].Type)
	}
	if tags[2].Type != message.TypeAudio || string(tags[2].Data) != string(sessiontest.AACSeq) {
		t.Fatalf("third tag: %v, want the AAC sequence header", tags[2].Type)
	}
	if tags[3].Type != message.TypeVideo || sessiontest.FrameIndex(tags[3].Data) != 10 || tags[3].Timestamp != 0 {
		t.Fatalf("first media tag: %v frame %d ts %d, want keyframe 10 at 0", tags[3].Type, sessiontest.FrameIndex(tags[3].Data), tags[3].Timestamp)
	}
}

func TestHTTPFLVViewerGetsJoinBurstThenLive(t *testing.T) {
	rtmpBase, httpBase, srv := start(t, plain, web.Config{})
	p := publish(t, rtmpBase, "demo", 15)

	ctx := sessiontest.Ctx(t, 10*time.Second)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, httpBase+"/live/demo.flv", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "video/x-flv" {
		t.Fatalf("status %d, type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	sessiontest.Eventually(t, 5*time.Second, "the viewer counted", func() bool {
		return srv.Viewers()[web.ProtoHTTPFLV] == 1
	})
	p.Frames(t, 15, 20, 10)
	hdr, tags := flvTags(t, resp.Body, 3+2*10) // meta, 2 seq, frames 10..19 with audio
	checkJoin(t, hdr, tags)
	last := tags[len(tags)-2]
	if sessiontest.FrameIndex(last.Data) != 19 || last.Timestamp != 9*40 {
		t.Fatalf("live tag: frame %d ts %d, want 19 at 360", sessiontest.FrameIndex(last.Data), last.Timestamp)
	}
	var views []session.StreamView
	for _, v := range srv.Streams() {
		if v.Name == "demo" {
			views = append(views, v)
		}
	}
	if len(views) != 1 || views[0].Viewers[web.ProtoHTTPFLV] != 1 {
		t.Fatalf("stream views: %+v", views)
	}

	// The publisher leaves: the viewer's body ends.
	p.C.Close()
	done := make(chan error, 1)
	go func() { _, err := io.Copy(io.Discard, resp.Body); done <- err }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("body after unpublish: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the viewer's body did not end when the stream did")
	}
	sessiontest.Eventually(t, 5*time.Second, "the viewer gone", func() bool {
		return srv.Viewers()[web.ProtoHTTPFLV] == 0
	})
}

func TestWebSocketFLV(t *testing.T) {
	rtmpBase, httpBase, _ := start(t, plain, web.Config{})
	p := publish(t, rtmpBase, "demo", 15)
	ctx := sessiontest.Ctx(t, 10*time.Second)
	c, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(httpBase, "http")+"/live/demo.flv", &websocket.DialOptions{
		HTTPHeader: http.Header{"Origin": {"https://elsewhere.example"}}})
	if err != nil {
		t.Fatalf("dial: %v (%v)", err, resp)
	}
	defer c.CloseNow()
	p.Frames(t, 15, 20, 10)
	pr, pw := io.Pipe()
	go func() {
		for {
			typ, b, err := c.Read(ctx)
			if err != nil {
				pw.CloseWithError(err)
				return
			}
			if typ != websocket.MessageBinary {
				pw.CloseWithError(fmt.Errorf("message type %v", typ))
				return
			}
			pw.Write(b)
		}
	}()
	hdr, tags := flvTags(t, pr, 3+2*10)
	checkJoin(t, hdr, tags)
	c.Close(websocket.StatusNormalClosure, "")
}

func TestPlaybackNeedsTheToken(t *testing.T) {
	secret := []byte("s3cret")
	mk := func(log *slog.Logger) session.Config {
		return session.Config{Authorize: session.TokenAuthorizer(secret, nil)}
	}
	_, httpBase, srv := start(t, mk, web.Config{})
	exp := time.Now().Add(time.Hour).Unix()
	tok := fmt.Sprintf("%x", session.SignToken(secret, "live", "demo", exp))
	for _, tc := range []struct {
		query string
		want  int
	}{
		{"", http.StatusUnauthorized},
		{"token=00&expires=" + strconv.FormatInt(exp, 10), http.StatusForbidden},
		{"token=" + tok + "&expires=" + strconv.FormatInt(exp-7200, 10), http.StatusForbidden},
		// Allowed, and then there is no such live stream.
		{"token=" + tok + "&expires=" + strconv.FormatInt(exp, 10), http.StatusNotFound},
	} {
		resp, err := http.Get(httpBase + "/live/demo.flv?" + tc.query)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("query %q: %d %q, want %d", tc.query, resp.StatusCode, body, tc.want)
		}
		if resp.StatusCode != http.StatusNotFound && strings.Contains(resp.Header.Get("Content-Type"), "flv") {
			t.Errorf("query %q: a refusal sent FLV", tc.query)
		}
	}
	if n := srv.Overview().AuthDenied; n != 3 {
		t.Errorf("auth denials counted: %d, want 3", n)
	}
}

func TestCORS(t *testing.T) {
	_, httpBase, _ := start(t, plain, web.Config{AllowOrigins: []string{"https://good.example"}})
	do := func(method, origin string) *http.Response {
		req, _ := http.NewRequest(method, httpBase+"/live/demo.flv", nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "GET")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if r := do(http.MethodOptions, "https://good.example"); r.StatusCode != 204 || r.Header.Get("Access-Control-Allow-Origin") != "https://good.example" {
		t.Errorf("preflight from an allowed origin: %d %q", r.StatusCode, r.Header.Get("Access-Control-Allow-Origin"))
	}
	if r := do(http.MethodGet, "https://bad.example"); r.StatusCode != 403 || r.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("GET from another origin: %d %q", r.StatusCode, r.Header.Get("Access-Control-Allow-Origin"))
	}
	if r := do(http.MethodGet, "https://good.example"); r.StatusCode != 404 || r.Header.Get("Access-Control-Allow-Origin") != "https://good.example" {
		t.Errorf("GET of a stream not live from an allowed origin: %d %q", r.StatusCode, r.Header.Get("Access-Control-Allow-Origin"))
	}
}

func TestBadPathsAndMethods(t *testing.T) {
	_, httpBase, _ := start(t, plain, web.Config{})
	for _, tc := range []struct {
		method, path string
		want         int
	}{
		{"GET", "/", 404},
		{"GET", "/demo.flv", 404},
		{"GET", "/live/../x.flv", 404},
		{"GET", "/live/nothing.flv", 404},
		{"GET", "/-bad/x.flv", 400},
		{"POST", "/live/x.flv", 405},
		{"GET", "/open/1", 405}, // RTMPT's paths are RTMPT's
		{"GET", "/idle/ABCDEFGH12345678/3", 405},
		{"GET", "/sdk/rtmphub.js", 200}, // the JavaScript library, not a player page
	} {
		req, _ := http.NewRequest(tc.method, httpBase+tc.path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%s %s: %d, want %d", tc.method, tc.path, resp.StatusCode, tc.want)
		}
	}
}

// TestSlowViewerDoesNotSlowThePublisher: a viewer that reads nothing
// fills its socket, then its queue, and is skipped; the publisher and an
// RTMP player of the same stream go on at full speed.
func TestSlowViewerDoesNotSlowThePublisher(t *testing.T) {
	mk := func(log *slog.Logger) session.Config {
		return session.Config{PlayerQueue: 64, PlayerQueueBytes: 64 << 10}
	}
	rtmpBase, httpBase, srv, logs := startLogged(t, mk, web.Config{})
	p := publish(t, rtmpBase, "demo", 1)
	nc, err := net.Dial("tcp", strings.TrimPrefix(httpBase, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.(*net.TCPConn).SetReadBuffer(4096)
	fmt.Fprintf(nc, "GET /live/demo.flv HTTP/1.1\r\nHost: x\r\n\r\n")
	sessiontest.Eventually(t, 5*time.Second, "the viewer attached", func() bool {
		return srv.Viewers()[web.ProtoHTTPFLV] == 1
	})
	c, msid := sessiontest.Play(t, rtmpBase, "demo")
	const frames = 600 // 4.8 MB: far beyond any socket buffer and the viewer's queue
	got := make(chan int, 1)
	go func() {
		// The RTMP player reads as it comes; it ends at the last frame.
		n := 0
		for {
			m, err := c.ReadMessage()
			if err != nil {
				got <- -n
				return
			}
			if m.StreamID == msid && m.Type == message.TypeVideo {
				n++
				if sessiontest.FrameIndex(m.Payload) == frames-1 {
					got <- n
					return
				}
			}
		}
	}()
	big := make([]byte, 8000)
	start := time.Now()
	for i := 1; i < frames; i++ {
		f := sessiontest.VideoFrame(i, 25)
		p.Send(t, message.TypeVideo, uint32(i*40), append(f, big...))
	}
	p.Sync(t)
	if d := time.Since(start); d > 20*time.Second {
		t.Fatalf("publishing %d frames took %v", frames, d)
	}
	select {
	case n := <-got:
		if n < frames*9/10 {
			t.Fatalf("the RTMP player beside the stalled viewer got %d of %d frames", n, frames)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the RTMP player beside the stalled viewer did not get the last frame")
	}
	if !strings.Contains(logs.String(), "skipping to the next keyframe\" app=live instance=_definst_ stream=demo protocol=http-flv") {
		t.Fatal("the stalled viewer was never skipped")
	}
}

// TestViewerLeavingIsNoticed: a viewer that closes its connection is
// detached at the next write.
func TestViewerLeavingIsNoticed(t *testing.T) {
	rtmpBase, httpBase, srv := start(t, plain, web.Config{})
	p := publish(t, rtmpBase, "demo", 5)
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, httpBase+"/live/demo.flv", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.ReadFull(resp.Body, make([]byte, 13))
	cancel()
	resp.Body.Close()
	for i := 5; srv.Viewers()[web.ProtoHTTPFLV] != 0; i++ {
		if i > 500 {
			t.Fatal("the viewer that left is still attached after 500 frames")
		}
		p.Frames(t, i, i+1, 10)
		time.Sleep(10 * time.Millisecond)
	}
}

// TestViewerOutlivesTheStallTimeout: a viewer that keeps up is never cut,
// however long it watches (no write deadline is left behind for the
// publisher's non-blocking writes to trip on).
func TestViewerOutlivesTheStallTimeout(t *testing.T) {
	mk := func(log *slog.Logger) session.Config { return session.Config{StallTimeout: 300 * time.Millisecond} }
	rtmpBase, httpBase, _ := start(t, mk, web.Config{})
	p := publish(t, rtmpBase, "demo", 1)
	resp, err := http.Get(httpBase + "/live/demo.flv")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got := make(chan int, 1)
	go func() {
		_, tags := flvTags(t, resp.Body, 3+2+2*40) // meta, seqs, frame 0 and 1..40 with audio
		got <- sessiontest.FrameIndex(tags[len(tags)-2].Data)
	}()
	for i := 1; i <= 40; i++ { // 1.2 s: four stall timeouts
		p.Frames(t, i, i+1, 10)
		time.Sleep(30 * time.Millisecond)
	}
	select {
	case n := <-got:
		if n != 40 {
			t.Fatalf("last frame %d, want 40", n)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the viewer stopped getting frames")
	}
}
