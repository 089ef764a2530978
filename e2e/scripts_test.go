package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rtmphub/rtmphub/rtmp/amf"
	"github.com/rtmphub/rtmphub/rtmp/client"
	"github.com/rtmphub/rtmphub/rtmp/message"
)

// pythonCalculatorScript calls the calculator example app (main.asc)
// with python3-librtmp: the connect parameter is the password, passed
// with librtmp's conn= URL option.
const pythonCalculatorScript = `
import sys, librtmp
c = librtmp.RTMP(sys.argv[1] + " conn=S:secret", live=True, timeout=15)
c.connect()
print("add", c.call("add", 2, 3).result(timeout=10), flush=True)
print("mul", c.call("mul", 6, 7).result(timeout=10), flush=True)
print("sum", c.call("sum", 1, 2, 3, 4).result(timeout=10), flush=True)
print("count", c.call("count").result(timeout=10), flush=True)
c.close()
bad = librtmp.RTMP(sys.argv[1] + " conn=S:wrong", live=True, timeout=15)
try:
    # librtmp's connect does not wait for the reply; the closed
    # connection shows on the first call.
    bad.connect()
    bad.call("add", 1, 1).result(timeout=5)
    print("wrong password accepted", flush=True)
except Exception as e:
    print("rejected", e, flush=True)
`

// copyApp copies an example application into the server's data folder.
func copyApp(t *testing.T, dataDir, app string) {
	t.Helper()
	src := filepath.Join("testdata", "apps", app)
	// Walked, not os.CopyFS: a test may copy an application over one it
	// copied before. Subfolders (a front end's public/) come along.
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		dst := filepath.Join(dataDir, app, rel)
		if d.IsDir() {
			return os.MkdirAll(dst, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(dst, b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestPythonLibrtmpScriptCalculator: the real librtmp over rtmp:// and
// rtmpt:// calls methods a main.asc defines on Client.prototype (and one
// found by __resolve), and a wrong connect parameter is rejected by the
// script's onConnect.
func TestPythonLibrtmpScriptCalculator(t *testing.T) {
	e2e(t)
	py := pythonWithLibrtmp(t)
	srv := startServer(t)
	copyApp(t, srv.DataDir, "calculator")
	for _, url := range []string{"rtmp://" + srv.Addr + "/calculator/a", "rtmpt://" + srv.RTMPTAddr(t) + "/calculator/b"} {
		out := run(t, time.Minute, py, "-c", pythonCalculatorScript, url)
		t.Logf("%s:\n%s", url, strings.TrimSpace(out))
		for _, want := range []string{"add 5.0\n", "mul 42.0\n", "sum 10.0\n", "count 2.0\n", "rejected"} {
			if !strings.Contains(out, want) {
				t.Errorf("%s: output lacks %q", url, want)
			}
		}
	}
	srv.requireAlive(t)
}

// TestScriptServerSideChannelFFmpeg: the showtime example app's
// server-side stream "show" plays a recorded MP4 (made by ffmpeg), then
// the live stream an ffmpeg publisher sends to the same instance. An
// ffmpeg player of "show" decodes frames of both, intro first, each
// identical to its source's; Stream.send reaches a player of "show" as a
// data message; Stream.record wrote show.flv, which ffprobe decodes.
func TestScriptServerSideChannelFFmpeg(t *testing.T) {
	e2e(t)
	needFFmpeg(t)
	srv := startServer(t)
	copyApp(t, srv.DataDir, "showtime")
	dir := filepath.Join(srv.DataDir, "showtime", "streams", "_definst_")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	intro := filepath.Join(dir, "intro.mp4")
	args := []string{"-nostdin", "-hide_banner", "-loglevel", "error",
		"-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25", "-f", "lavfi", "-i", "sine=frequency=880:sample_rate=44100",
		"-t", "2", "-map", "0:v", "-map", "1:a"}
	args = append(args, x264Args(25, "")...)
	args = append(args, "-c:a", "aac", "-b:a", "64k", "-y", intro)
	run(t, time.Minute, "ffmpeg", args...)
	introRef := decodeToMD5(t, intro)

	base := "rtmp://" + srv.Addr + "/showtime"
	pub := startPublisher(t, base+"/cam", pubOpts{Seconds: 6})
	pub.waitFrames(t, 1, 15*time.Second)
	out := filepath.Join(t.TempDir(), "show.md5")
	pl := startFFmpegPlayer(t, "ffmpeg", base+"/show", out, pub.Frames, "-t", "5")

	// Stream.send: a cue reaches a player of "show".
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	viewer, err := client.Dial(ctx, base, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer viewer.Close()
	msid, err := viewer.CreateStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := viewer.Play(ctx, msid, "show", -1000); err != nil {
		t.Fatal(err)
	}
	ctrl, err := client.Dial(ctx, base, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ctrl.Close()
	if r, err := ctrl.Call(ctx, "cue", "curtain"); err != nil || r.Arg(0) != true {
		t.Fatalf("cue: %v %v", r, err)
	}
	cued := false
	viewer.SetReadDeadline(time.Now().Add(10 * time.Second))
	for !cued {
		m, err := viewer.ReadMessage()
		if err != nil {
			t.Fatalf("viewer: no onCue: %v", err)
		}
		if m.Type != message.TypeDataAMF0 && m.Type != message.TypeDataAMF3 {
			continue
		}
		if vals, err := message.DecodeData(m); err == nil && len(vals) == 2 && vals[0] == "onCue" {
			o, _ := vals[1].(amf.Object)
			text, _ := o.GetString("text")
			_, hasAt := o.Get("at")
			cued = text == "curtain" && hasAt
		}
	}
	viewer.Close()

	if !pl.wait(30*time.Second) || pl.exitErr() != nil {
		t.Fatalf("ffmpeg player: %v\n%s", pl.exitErr(), tailString(pl.Stderr.String(), 2000))
	}
	pub.finish(t, 20*time.Second)
	got, err := parseFrameMD5(out)
	if err != nil {
		t.Fatal(err)
	}
	liveRef := decodeToMD5(t, pub.Ref)
	introSet, liveSet := map[string]bool{}, map[string]bool{}
	for _, h := range introRef.Video {
		introSet[h] = true
	}
	for _, h := range liveRef.Video {
		liveSet[h] = true
	}
	var nIntro, nLive, other int
	firstLive, lastIntro := -1, -1
	for i, h := range got.Video {
		switch {
		case introSet[h]:
			nIntro++
			lastIntro = i
		case liveSet[h]:
			nLive++
			if firstLive < 0 {
				firstLive = i
			}
		default:
			other++
		}
	}
	t.Logf("ffmpeg player decoded %d frames: %d of the intro, %d of the live stream, %d neither; %.2fs of audio",
		len(got.Video), nIntro, nLive, other, got.AudioSeconds)
	if nIntro < 5 || nLive < 25 || firstLive < lastIntro {
		t.Errorf("the player did not see the intro, then the live stream\n%s", srv.log.tail(60))
	}

	// The recording ends when cam stops (the app's onStatus).
	if _, ok := srv.log.wait(func(l logLine) bool { return strings.Contains(l.Raw, "show: NetStream.Record.Stop") }, 10*time.Second, srv.done); !ok {
		t.Fatalf("no Record.Stop\n%s", srv.log.tail(60))
	}
	rec := filepath.Join(dir, "show.flv")
	probe := strings.TrimSpace(run(t, time.Minute, "ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0",
		"-show_entries", "stream=codec_name,nb_read_frames", "-of", "csv=p=0", rec))
	codec, n, _ := strings.Cut(probe, ",")
	frames, _ := strconv.Atoi(n)
	t.Logf("recording: %s", probe)
	if codec != "h264" || frames < 75 {
		t.Errorf("recording %s: ffprobe says %q, want h264 and at least 75 frames", rec, probe)
	}
	srv.requireAlive(t)
}

const pythonHelloScript = `
import sys, librtmp
c = librtmp.RTMP(sys.argv[1], live=True, timeout=15)
c.connect()
print("hello:", c.call("hello", "librtmp").result(timeout=10), flush=True)
c.close()
`

// TestScriptAppReloadAdminAPI: after main.asc changes, POST
// /api/v1/apps/{app}/reload unloads the running instance (its client gets
// NetConnection.Connect.AppShutdown and is disconnected, onAppStop runs)
// and the next connection (python3-librtmp) runs the new script.
func TestScriptAppReloadAdminAPI(t *testing.T) {
	e2e(t)
	py := pythonWithLibrtmp(t)
	srv := startServer(t, "--admin-addr", "127.0.0.1:0")
	api := "http://" + srv.adminAddr(t)
	copyApp(t, srv.DataDir, "hello")
	url := "rtmp://" + srv.Addr + "/hello"
	if out := run(t, time.Minute, py, "-c", pythonHelloScript, url); !strings.Contains(out, "hello: Hello, librtmp!") {
		t.Fatalf("before: %q", out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, url, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	main := filepath.Join(srv.DataDir, "hello", "main.asc")
	b, err := os.ReadFile(main)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(main, []byte(strings.Replace(string(b), `"Hello, "`, `"Howdy, "`, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	// The running instance keeps the script it loaded.
	if r, err := c.Call(ctx, "hello", "go"); err != nil || r.Arg(0) != "Hello, go!" {
		t.Fatalf("before the reload: %v %v", r, err)
	}

	resp, err := http.Post(api+"/api/v1/apps/hello/reload", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	var res struct {
		Reloaded  string `json:"reloaded"`
		Instances int    `json:"instances"`
	}
	err = json.NewDecoder(resp.Body).Decode(&res)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || res.Reloaded != "hello" || res.Instances != 1 {
		t.Fatalf("reload: %d %+v %v", resp.StatusCode, res, err)
	}
	if info, err := c.WaitStatus(ctx, 0, "NetConnection.Connect.AppShutdown"); err != nil {
		t.Fatalf("AppShutdown: %v %v", info, err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		if _, err := c.ReadMessage(); err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatal("the connection stayed open after AppShutdown")
			}
			break
		}
	}
	if _, ok := srv.log.wait(func(l logLine) bool { return strings.Contains(l.Raw, "hello stopping") }, 5*time.Second, srv.done); !ok {
		t.Errorf("onAppStop did not run")
	}
	if out := run(t, time.Minute, py, "-c", pythonHelloScript, url); !strings.Contains(out, "hello: Howdy, librtmp!") {
		t.Errorf("after the reload: %q", out)
	}
	if code := apiDo(t, "POST", api+"/api/v1/apps/nosuch/reload"); code != 404 {
		t.Errorf("reload of an unknown app: %d", code)
	}
	srv.requireAlive(t)
}
