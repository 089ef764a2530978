package session_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rtmphub/rtmphub/flv"
	"github.com/rtmphub/rtmphub/rtmp/amf"
	"github.com/rtmphub/rtmphub/rtmp/client"
	"github.com/rtmphub/rtmphub/rtmp/message"
	"github.com/rtmphub/rtmphub/session"
	"github.com/rtmphub/rtmphub/session/sessiontest"
)

// A VOD fixture: the synthetic H.264/AAC stream of session_test.go as a
// file, video every 40 ms (a keyframe every gop frames) and audio 20 ms
// after each video frame.
type fixture struct {
	frames, gop int
	tags        []flv.Tag // media tags in file order, sequence headers first
}

func writeFixture(t *testing.T, dataDir, name string, frames, gop int) *fixture {
	t.Helper()
	dir := filepath.Join(dataDir, "live", "streams", "_definst_", filepath.Dir(name))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	meta := amf.ECMAArray{{Key: "width", Value: 320.0}, {Key: "height", Value: 240.0},
		{Key: "videocodecid", Value: 7.0}, {Key: "audiocodecid", Value: 10.0}, {Key: "framerate", Value: 25.0}}
	w, err := flv.Create(filepath.Join(dir, filepath.Base(name)+".flv"), true, true, meta)
	if err != nil {
		t.Fatal(err)
	}
	fx := &fixture{frames: frames, gop: gop}
	add := func(typ message.Type, ts uint32, p []byte) {
		if err := w.WriteTag(typ, ts, p); err != nil {
			t.Fatal(err)
		}
		fx.tags = append(fx.tags, flv.Tag{Type: typ, Timestamp: ts, Data: p})
	}
	add(flv.TagVideo, 0, sessiontest.AVCSeq)
	add(flv.TagAudio, 0, sessiontest.AACSeq)
	for i := range frames {
		add(flv.TagVideo, uint32(i*40), sessiontest.VideoFrame(i, gop))
		add(flv.TagAudio, uint32(i*40+20), []byte{0xaf, 0x01, byte(i), byte(i >> 8), 3})
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return fx
}

// ev is one event on a played stream, as the tests look at it.
type ev struct {
	kind string // "uc", "status", "data", "playstatus", "video", "audio"
	code string // user control event, status code, data name
	ts   uint32
	data []byte
}

func (e ev) String() string {
	if e.kind == "video" || e.kind == "audio" {
		return fmt.Sprintf("%s@%d#%d", e.kind, e.ts, sessiontest.FrameIndex(e.data))
	}
	return e.kind + ":" + e.code
}

// readEv returns the next event of stream msid.
func readEv(t *testing.T, c *client.Conn, msid uint32, timeout time.Duration) ev {
	t.Helper()
	for {
		c.SetReadDeadline(time.Now().Add(timeout))
		m, err := c.ReadMessage()
		if err != nil {
			t.Fatalf("player read: %v", err)
		}
		switch m.Type {
		case message.TypeUserControl:
			uc, err := message.DecodeUserControl(m.Payload)
			if err == nil && uc.StreamID == msid && uc.Event != message.UCPingRequest {
				return ev{kind: "uc", code: uc.Event.String()}
			}
		case message.TypeCommandAMF0, message.TypeCommandAMF3:
			if m.StreamID != msid {
				continue
			}
			cmd, err := message.DecodeCommand(m)
			if err != nil || cmd.Name != "onStatus" {
				continue
			}
			o, _ := cmd.Arg(0).(amf.Object)
			code, _ := o.GetString("code")
			return ev{kind: "status", code: code}
		case message.TypeDataAMF0, message.TypeDataAMF3:
			if m.StreamID != msid {
				continue
			}
			vals, err := message.DecodeData(m)
			if err != nil || len(vals) == 0 {
				t.Fatalf("bad data message: %v", err)
			}
			name, _ := vals[0].(string)
			if name == "onPlayStatus" && len(vals) > 1 {
				o, _ := vals[1].(amf.Object)
				code, _ := o.GetString("code")
				return ev{kind: "playstatus", code: code, ts: m.Timestamp}
			}
			if name == "onStatus" && len(vals) > 1 {
				o, _ := vals[1].(amf.Object)
				code, _ := o.GetString("code")
				name += ":" + code
			}
			return ev{kind: "data", code: name, ts: m.Timestamp, data: m.Payload}
		case message.TypeVideo, message.TypeAudio:
			if m.StreamID != msid {
				continue
			}
			k := "video"
			if m.Type == message.TypeAudio {
				k = "audio"
			}
			return ev{kind: k, ts: m.Timestamp, data: m.Payload}
		}
	}
}

// expectEvs reads events and checks them against want ("kind:code", or
// "video"/"audio" for any media message).
func expectEvs(t *testing.T, c *client.Conn, msid uint32, want ...string) {
	t.Helper()
	for i, w := range want {
		e := readEv(t, c, msid, 5*time.Second)
		got := e.kind
		if e.code != "" {
			got += ":" + e.code
		}
		if got != w {
			t.Fatalf("event %d: got %s, want %s", i, got, w)
		}
	}
}

// untilEv reads events until one matches kind:code and returns the events
// before it.
func untilEv(t *testing.T, c *client.Conn, msid uint32, kind, code string, timeout time.Duration) []ev {
	t.Helper()
	var seen []ev
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		e := readEv(t, c, msid, time.Until(deadline)+time.Second)
		if e.kind == kind && e.code == code {
			return seen
		}
		seen = append(seen, e)
	}
	t.Fatalf("no %s %s within %v; saw %d events", kind, code, timeout, len(seen))
	return nil
}

// vodPlayer connects and sends play; buffer, when positive, is the
// client's buffer length in milliseconds (SetBufferLength) sent first.
func vodPlayer(t *testing.T, base string, buffer uint32, args ...any) (*client.Conn, uint32) {
	t.Helper()
	c := sessiontest.Dial(t, base+"/live", client.Options{})
	id, err := c.CreateStream(sessiontest.Ctx(t, 5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if buffer > 0 {
		setBuffer(t, c, id, buffer)
	}
	if err := c.WriteCommand(id, &message.Command{Name: "play", Args: args}); err != nil {
		t.Fatal(err)
	}
	return c, id
}

func setBuffer(t *testing.T, c *client.Conn, id, ms uint32) {
	t.Helper()
	if err := c.WriteMessages([]message.Message{*message.UserControl{Event: message.UCSetBufferLength, StreamID: id, BufferLength: ms}.Message()}); err != nil {
		t.Fatal(err)
	}
}

// checkMedia checks that got are the fixture's media tags from index from
// on, with the file's timestamps plus offset.
func checkMedia(t *testing.T, fx *fixture, from int, got []ev, offset uint32) {
	t.Helper()
	for i, e := range got {
		if from+i >= len(fx.tags) {
			t.Fatalf("got %d media messages, the file has %d from %d", len(got), len(fx.tags)-from, from)
		}
		w := fx.tags[from+i]
		if e.kind != map[message.Type]string{flv.TagVideo: "video", flv.TagAudio: "audio"}[w.Type] || !bytes.Equal(e.data, w.Data) || e.ts != w.Timestamp+offset {
			t.Fatalf("media message %d: got %v ts %d, want %v ts %d (tag %d)", i, e, e.ts, w.Type, w.Timestamp+offset, from+i)
		}
	}
}

func media(evs []ev) []ev {
	var out []ev
	for _, e := range evs {
		if e.kind == "video" || e.kind == "audio" {
			out = append(out, e)
		}
	}
	return out
}

func TestVODPlayWholeFile(t *testing.T) {
	dir := t.TempDir()
	fx := writeFixture(t, dir, "clip", 75, 25)
	base, _, _ := startServer(t, session.Config{DataDir: dir})
	for _, name := range []string{"clip", "flv:clip", "clip.flv"} {
		t.Run(name, func(t *testing.T) {
			c, id := vodPlayer(t, base, 60000, name, -2000.0)
			expectEvs(t, c, id, "uc:StreamIsRecorded", "uc:StreamBegin", "status:NetStream.Play.Reset", "status:NetStream.Play.Start",
				"data:|RtmpSampleAccess", "data:onStatus:NetStream.Data.Start")
			e := readEv(t, c, id, 5*time.Second)
			if e.kind != "data" || e.code != "onMetaData" {
				t.Fatalf("got %v, want onMetaData", e)
			}
			vals, _ := message.DecodeData(&message.Message{Type: message.TypeDataAMF0, Payload: e.data})
			props, _ := vals[1].(amf.ECMAArray)
			if w, _ := props.GetNumber("width"); w != 320 {
				t.Errorf("onMetaData width %v", w)
			}
			if d, _ := props.GetNumber("duration"); d < 2.9 || d > 3.1 {
				t.Errorf("onMetaData duration %v", d)
			}
			if bytes.Contains(e.data, []byte("rtmphubpadding")) {
				t.Error("onMetaData has the writer's padding")
			}
			got := untilEv(t, c, id, "playstatus", "NetStream.Play.Complete", 10*time.Second)
			if len(got) != len(fx.tags) {
				t.Fatalf("got %d messages before Play.Complete, want the file's %d media tags", len(got), len(fx.tags))
			}
			checkMedia(t, fx, 0, got, 0)
			expectEvs(t, c, id, "status:NetStream.Play.Stop", "uc:StreamEOF")
		})
	}
}

func TestVODStartLenAndSingleFrame(t *testing.T) {
	dir := t.TempDir()
	fx := writeFixture(t, dir, "clip", 100, 25) // keyframes at 0, 1000, 2000, 3000 ms
	base, _, _ := startServer(t, session.Config{DataDir: dir})

	// start 2500, len 1000: from the keyframe at 2000 (frame 50), with the
	// sequence headers first, up to 3500.
	c, id := vodPlayer(t, base, 60000, "clip", 2500.0, 1000.0)
	untilEv(t, c, id, "data", "onMetaData", 5*time.Second)
	got := untilEv(t, c, id, "playstatus", "NetStream.Play.Complete", 10*time.Second)
	if len(got) < 3 || !bytes.Equal(got[0].data, sessiontest.AVCSeq) || !bytes.Equal(got[1].data, sessiontest.AACSeq) || got[0].ts != 2000 {
		t.Fatalf("start at 2500: first messages %v", got[:min(3, len(got))])
	}
	first := 2 + 2*50 // tag index of frame 50
	checkMedia(t, fx, first, got[2:], 0)
	last := got[len(got)-1]
	if last.ts >= 3500 || last.ts < 3440 {
		t.Fatalf("len 1000 from 2500: last message at %d, want just before 3500", last.ts)
	}

	// len 0: one frame, the keyframe at or before start.
	c, id = vodPlayer(t, base, 0, "clip", 1200.0, 0.0)
	untilEv(t, c, id, "data", "onMetaData", 5*time.Second)
	got = untilEv(t, c, id, "playstatus", "NetStream.Play.Complete", 5*time.Second)
	var frames []ev
	for _, e := range media(got) {
		if e.kind == "video" && sessiontest.FrameIndex(e.data) >= 0 {
			frames = append(frames, e)
		}
	}
	if len(frames) != 1 || sessiontest.FrameIndex(frames[0].data) != 25 || frames[0].ts != 1000 {
		t.Fatalf("len 0 at 1200: video frames %v, want frame 25 at 1000", frames)
	}
	expectEvs(t, c, id, "status:NetStream.Play.Stop", "uc:StreamEOF")
}

func TestVODSeekLandsOnKeyframe(t *testing.T) {
	dir := t.TempDir()
	fx := writeFixture(t, dir, "clip", 250, 25) // 10 s
	base, _, _ := startServer(t, session.Config{DataDir: dir})
	c, id := vodPlayer(t, base, 500, "clip", 0.0)
	untilEv(t, c, id, "data", "onMetaData", 5*time.Second)
	for range 10 {
		readEv(t, c, id, 5*time.Second)
	}
	if err := c.WriteCommand(id, &message.Command{Name: "seek", Args: []any{6500.0}}); err != nil {
		t.Fatal(err)
	}
	before := untilEv(t, c, id, "status", "NetStream.Seek.Notify", 5*time.Second)
	if n := len(before); n > 0 && before[n-1].kind == "video" && before[n-1].ts > 3000 {
		t.Fatalf("paced at 500 ms ahead, yet %d messages up to %v before the seek", n, before[n-1])
	}
	if before[len(before)-2].code != "StreamEOF" || before[len(before)-1].code != "StreamBegin" {
		t.Fatalf("before Seek.Notify: %v, want StreamEOF, StreamBegin", before[len(before)-2:])
	}
	expectEvs(t, c, id, "status:NetStream.Play.Start", "data:onMetaData", "video", "audio")
	e := readEv(t, c, id, 5*time.Second)
	if e.kind != "video" || sessiontest.FrameIndex(e.data) != 150 || e.ts != 6000 {
		t.Fatalf("after seek to 6500: %v, want keyframe 150 at 6000", e)
	}
	var got []ev
	for range 20 {
		got = append(got, readEv(t, c, id, 5*time.Second))
	}
	checkMedia(t, fx, 2+2*150+1, got, 0)
}

func TestVODPacing(t *testing.T) {
	dir := t.TempDir()
	writeFixture(t, dir, "clip", 75, 25) // 3 s
	base, _, _ := startServer(t, session.Config{DataDir: dir})
	start := time.Now()
	c, id := vodPlayer(t, base, 1000, "clip", 0.0)
	var firstFrame time.Duration
	var at []time.Duration
	for {
		e := readEv(t, c, id, 5*time.Second)
		if e.kind == "video" && firstFrame == 0 {
			firstFrame = time.Since(start)
		}
		if e.kind == "video" {
			at = append(at, time.Since(start))
		}
		if e.kind == "playstatus" {
			break
		}
	}
	took := time.Since(start)
	t.Logf("first frame after %v, complete after %v", firstFrame, took)
	if firstFrame > 500*time.Millisecond {
		t.Errorf("first frame after %v", firstFrame)
	}
	// 3 s of media, 1 s of it sent at once: about 2 s.
	if took < 1700*time.Millisecond || took > 5*time.Second {
		t.Errorf("3 s file with a 1 s buffer took %v, want about 2 s", took)
	}
	// The first second arrives at once.
	if at[24] > 600*time.Millisecond {
		t.Errorf("frame 24 (960 ms) after %v: not sent ahead", at[24])
	}
}

func TestVODPlaylist(t *testing.T) {
	dir := t.TempDir()
	a := writeFixture(t, dir, "a", 50, 25)
	b := writeFixture(t, dir, "b", 30, 10)
	base, _, _ := startServer(t, session.Config{DataDir: dir})
	// A 1 s buffer keeps a (2 s) playing for at least a second, so the
	// queued play of b always arrives while a plays: with a long buffer a
	// could be sent and completed before it.
	c, id := vodPlayer(t, base, 1000, "a", 0.0, -1.0, true)
	if err := c.WriteCommand(id, &message.Command{Name: "play", Args: []any{"b", 0.0, -1.0, false}}); err != nil {
		t.Fatal(err)
	}
	untilEv(t, c, id, "data", "onMetaData", 5*time.Second)
	got := untilEv(t, c, id, "playstatus", "NetStream.Play.Switch", 10*time.Second)
	checkMedia(t, a, 0, got, 0)
	expectEvs(t, c, id, "status:NetStream.Play.Start", "data:onMetaData")
	got = untilEv(t, c, id, "playstatus", "NetStream.Play.Complete", 10*time.Second)
	// b continues a's timeline: a ends at 50*40 ms.
	checkMedia(t, b, 0, got, 2000)
	expectEvs(t, c, id, "status:NetStream.Play.Stop", "uc:StreamEOF")
}

func TestVODPauseResumesWhereItPaused(t *testing.T) {
	dir := t.TempDir()
	writeFixture(t, dir, "clip", 200, 25) // 8 s
	base, _, _ := startServer(t, session.Config{DataDir: dir})
	c, id := vodPlayer(t, base, 300, "clip", 0.0)
	lastVideo := -1
	for lastVideo < 30 {
		if e := readEv(t, c, id, 5*time.Second); e.kind == "video" && sessiontest.FrameIndex(e.data) >= 0 {
			lastVideo = sessiontest.FrameIndex(e.data)
		}
	}
	if err := c.WriteCommand(id, &message.Command{Name: "pause", Args: []any{true, float64(lastVideo * 40)}}); err != nil {
		t.Fatal(err)
	}
	for _, e := range untilEv(t, c, id, "status", "NetStream.Pause.Notify", 5*time.Second) {
		if e.kind == "video" && sessiontest.FrameIndex(e.data) >= 0 {
			lastVideo = sessiontest.FrameIndex(e.data)
		}
	}
	expectEvs(t, c, id, "uc:StreamEOF")
	// Nothing arrives while paused.
	c.SetReadDeadline(time.Now().Add(1500 * time.Millisecond))
	if m, err := c.ReadMessage(); err == nil && m.StreamID == id {
		t.Fatalf("while paused: %v", m)
	}
	if err := c.WriteCommand(id, &message.Command{Name: "pause", Args: []any{false, float64(lastVideo * 40)}}); err != nil {
		t.Fatal(err)
	}
	expectEvs(t, c, id, "uc:StreamBegin", "status:NetStream.Unpause.Notify")
	for {
		e := readEv(t, c, id, 5*time.Second)
		if e.kind == "video" {
			if sessiontest.FrameIndex(e.data) != lastVideo+1 {
				t.Fatalf("resumed at frame %d, paused after %d", sessiontest.FrameIndex(e.data), lastVideo)
			}
			return
		}
	}
}

func TestVODTraversalIsStreamNotFound(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	writeFixture(t, data, "clip", 10, 5)
	writeFixture(t, data, "sub/inner", 10, 5)
	// A file outside the data dir, reachable by a symbolic link and by
	// relative names, and one in another application.
	writeFixture(t, dir, "secret", 10, 5) // dir/live/streams/_definst_/secret.flv
	outside := filepath.Join(dir, "live", "streams", "_definst_", "secret.flv")
	if err := os.Symlink(outside, filepath.Join(data, "live", "streams", "_definst_", "link.flv")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(dir, "live"), filepath.Join(data, "live", "streams", "_definst_", "dirlink")); err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(data, "other", "streams", "_definst_"), 0o755)
	os.WriteFile(filepath.Join(data, "other", "streams", "_definst_", "x.flv"), []byte("FLV"), 0o644)
	base, _, _ := startServer(t, session.Config{DataDir: data})
	for _, name := range []string{
		"../../../secret", "flv:../../../../live/streams/_definst_/secret", outside, "/etc/passwd",
		"sub/../../../../../secret", "link", "dirlink/streams/_definst_/secret", "../../../other/streams/_definst_/x",
		"mp4:../../x.mp4", "nosuch", "sub", "mp4:clip",
	} {
		c := sessiontest.Dial(t, base+"/live", client.Options{})
		ctx := sessiontest.Ctx(t, 5*time.Second)
		id, _ := c.CreateStream(ctx)
		err := c.Play(ctx, id, name, 0)
		var se *client.StatusError
		if !errors.As(err, &se) || se.Code != "NetStream.Play.StreamNotFound" {
			t.Errorf("play %q: %v, want StreamNotFound", name, err)
		}
	}
	// Names in subfolders of the instance's folder are fine.
	c, id := vodPlayer(t, base, 60000, "sub/inner", 0.0)
	untilEv(t, c, id, "playstatus", "NetStream.Play.Complete", 5*time.Second)
}

func TestVODStartMinus1000IsLiveOnly(t *testing.T) {
	dir := t.TempDir()
	writeFixture(t, dir, "clip", 10, 5)
	base, _, _ := startServer(t, session.Config{DataDir: dir})
	// Live only: no StreamIsRecorded, waits for a publisher.
	c, id := vodPlayer(t, base, 0, "clip", -1000.0)
	expectEvs(t, c, id, "uc:StreamBegin", "status:NetStream.Play.Reset", "status:NetStream.Play.Start")
	// -2000 with a live publisher plays live even though the file exists.
	pub := publish(t, base, "clip")
	pub.Frames(t, 0, 3, 25)
	untilEv(t, c, id, "status", "NetStream.Play.PublishNotify", 5*time.Second)
	c2, id2 := vodPlayer(t, base, 0, "clip", -2000.0)
	expectEvs(t, c2, id2, "uc:StreamBegin", "status:NetStream.Play.Reset", "status:NetStream.Play.Start")
}

// Adobe's RTMP specification (7.2.2.1) gives play's start in seconds, and
// GStreamer's rtmp2src and node-media-server's client send -2: it must play
// the recorded file like -2000, not wait for a publisher like -1000.
func TestVODStartInSeconds(t *testing.T) {
	dir := t.TempDir()
	fx := writeFixture(t, dir, "clip", 10, 5)
	base, _, _ := startServer(t, session.Config{DataDir: dir})
	t.Run("-2 plays the file", func(t *testing.T) {
		c, id := vodPlayer(t, base, 60000, "clip", -2.0)
		expectEvs(t, c, id, "uc:StreamIsRecorded", "uc:StreamBegin", "status:NetStream.Play.Reset", "status:NetStream.Play.Start")
		got := media(untilEv(t, c, id, "playstatus", "NetStream.Play.Complete", 10*time.Second))
		if len(got) != len(fx.tags) {
			t.Fatalf("got %d media messages, want the file's %d", len(got), len(fx.tags))
		}
	})
	t.Run("-1 is live only", func(t *testing.T) {
		c, id := vodPlayer(t, base, 0, "clip", -1.0)
		expectEvs(t, c, id, "uc:StreamBegin", "status:NetStream.Play.Reset", "status:NetStream.Play.Start")
	})
}

func TestNormalizeStart(t *testing.T) {
	for _, tc := range []struct {
		in   float64
		norm float64
		mode session.StartMode
	}{
		{-2000, -2000, session.StartLiveOrRecorded}, // ffmpeg's default
		{-1000, -1000, session.StartLiveOnly},       // ffmpeg live, librtmp
		{-2, -2000, session.StartLiveOrRecorded},    // GStreamer, node-media-server, the spec
		{-1, -1000, session.StartLiveOnly},          // the spec
		{-3, -2000, session.StartLiveOrRecorded},
		{-1.5, -2000, session.StartLiveOrRecorded},
		{-0.5, -1000, session.StartLiveOnly},
		{-5000, -5000, session.StartLiveOrRecorded},
		{-1200, -1200, session.StartLiveOnly},
		{0, 0, session.StartRecorded},
		{1500, 1500, session.StartRecorded},
	} {
		if got := session.NormalizeStart(tc.in); got != tc.norm {
			t.Errorf("NormalizeStart(%v) = %v, want %v", tc.in, got, tc.norm)
		}
		if got := session.NormalizeStart(session.NormalizeStart(tc.in)); got != tc.norm {
			t.Errorf("NormalizeStart twice (%v) = %v, want %v", tc.in, got, tc.norm)
		}
		if got := session.PlayStartMode(tc.in); got != tc.mode {
			t.Errorf("PlayStartMode(%v) = %v, want %v", tc.in, got, tc.mode)
		}
	}
}

func TestGetStreamLength(t *testing.T) {
	dir := t.TempDir()
	writeFixture(t, dir, "clip", 50, 25)
	base, _, _ := startServer(t, session.Config{DataDir: dir})
	c := sessiontest.Dial(t, base+"/live", client.Options{})
	r, err := c.Call(sessiontest.Ctx(t, 5*time.Second), "getStreamLength", "clip")
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := amf.Number(r.Arg(0)); d < 1.9 || d > 2.1 {
		t.Fatalf("getStreamLength = %v, want 2", r.Args)
	}
}

func TestVODCorruptFileDoesNotCrash(t *testing.T) {
	dir := t.TempDir()
	fdir := filepath.Join(dir, "live", "streams", "_definst_")
	writeFixture(t, dir, "good", 50, 25)
	good, _ := os.ReadFile(filepath.Join(fdir, "good.flv"))
	files := map[string][]byte{
		"empty":     nil,
		"notflv":    []byte("hello, this is not a video"),
		"header":    good[:13],
		"truncated": good[:len(good)*2/3],
		"garbage":   append(append([]byte{}, good[:len(good)/2]...), bytes.Repeat([]byte{0xff}, 5000)...),
	}
	for name, b := range files {
		os.WriteFile(filepath.Join(fdir, name+".flv"), b, 0o644)
	}
	base, _, logs := startServer(t, session.Config{DataDir: dir})
	for name := range files {
		c, id := vodPlayer(t, base, 60000, name, 0.0)
		var codes []string
		for {
			e := readEv(t, c, id, 5*time.Second)
			if e.kind == "status" || e.kind == "playstatus" {
				codes = append(codes, e.code)
			}
			if e.code == "NetStream.Play.Stop" || e.code == "NetStream.Play.FileStructureInvalid" {
				break
			}
		}
		t.Logf("%s: %s", name, strings.Join(codes, ", "))
	}
	if strings.Contains(logs.String(), "panic") {
		t.Fatal("panic in the log")
	}
}

// ffmpegFixture runs ffmpeg to make a file in the instance's streams
// folder; the test is skipped without ffmpeg.
func ffmpegFixture(t *testing.T, dataDir, name string, args ...string) string {
	t.Helper()
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Skip("ffmpeg not installed")
	}
	dir := filepath.Join(dataDir, "live", "streams", "_definst_")
	os.MkdirAll(dir, 0o755)
	out := filepath.Join(dir, name)
	all := append([]string{"-nostdin", "-hide_banner", "-loglevel", "error",
		"-f", "lavfi", "-i", "testsrc=size=160x120:rate=25", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100", "-t", "2"}, args...)
	if b, err := exec.Command("ffmpeg", append(all, "-y", out)...).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, b)
	}
	return out
}

func TestVODMP4(t *testing.T) {
	dir := t.TempDir()
	// B-frames (composition offsets, an edit list) and a keyframe every
	// 25 frames; moov at the end. And an audio-only .m4a.
	ffmpegFixture(t, dir, "movie.mp4", "-map", "0:v", "-map", "1:a", "-c:v", "libx264", "-preset", "ultrafast", "-bf", "2",
		"-g", "25", "-keyint_min", "25", "-sc_threshold", "0", "-pix_fmt", "yuv420p", "-c:a", "aac")
	ffmpegFixture(t, dir, "song.m4a", "-map", "1:a", "-c:a", "aac")
	base, _, logs := startServer(t, session.Config{DataDir: dir})

	c, id := vodPlayer(t, base, 60000, "mp4:movie.mp4", 0.0)
	expectEvs(t, c, id, "uc:StreamIsRecorded", "uc:StreamBegin", "status:NetStream.Play.Reset", "status:NetStream.Play.Start",
		"data:|RtmpSampleAccess", "data:onStatus:NetStream.Data.Start", "data:onMetaData")
	got := untilEv(t, c, id, "playstatus", "NetStream.Play.Complete", 10*time.Second)
	if len(got) < 2 || got[0].kind != "video" || !bytes.Equal(got[0].data[:2], []byte{0x17, 0}) ||
		got[1].kind != "audio" || !bytes.Equal(got[1].data[:2], []byte{0xaf, 0}) {
		t.Fatalf("MP4 does not start with the AVC and AAC sequence headers: %v", got[:min(2, len(got))])
	}
	var video, keys, bframes int
	var last uint32
	for _, e := range got[2:] {
		if e.ts < last && e.kind == "video" {
			t.Fatalf("video timestamp %d after %d", e.ts, last)
		}
		if e.kind == "video" {
			last = e.ts
			video++
			if e.data[0] == 0x17 {
				keys++
			}
			if cts := int32(uint32(e.data[2])<<16|uint32(e.data[3])<<8|uint32(e.data[4])) << 8 >> 8; cts != 0 {
				bframes++
			}
		}
	}
	if video != 50 || keys != 2 || bframes == 0 {
		t.Fatalf("MP4: %d video frames (%d keyframes, %d with a composition offset), want 50, 2, some", video, keys, bframes)
	}
	expectEvs(t, c, id, "status:NetStream.Play.Stop", "uc:StreamEOF")

	// Seek to 1.5 s lands on the keyframe at 1 s (plus the audio
	// priming the edit list accounts for).
	c, id = vodPlayer(t, base, 500, "mp4:movie.mp4", 0.0)
	untilEv(t, c, id, "data", "onMetaData", 5*time.Second)
	c.WriteCommand(id, &message.Command{Name: "seek", Args: []any{1500.0}})
	untilEv(t, c, id, "status", "NetStream.Seek.Notify", 5*time.Second)
	expectEvs(t, c, id, "status:NetStream.Play.Start", "data:onMetaData", "video", "audio")
	e := readEv(t, c, id, 5*time.Second)
	if e.kind != "video" || e.data[0] != 0x17 || e.ts < 1000 || e.ts > 1100 {
		t.Fatalf("after seek to 1500: %v (% x), want the keyframe at 1 s", e, e.data[:2])
	}

	// Audio only.
	c, id = vodPlayer(t, base, 60000, "mp4:song.m4a", 0.0)
	untilEv(t, c, id, "data", "onMetaData", 5*time.Second)
	got = media(untilEv(t, c, id, "playstatus", "NetStream.Play.Complete", 5*time.Second))
	if len(got) < 80 || !bytes.Equal(got[0].data[:2], []byte{0xaf, 0}) {
		t.Fatalf("m4a: %d audio messages", len(got))
	}

	// Broken MP4s are FileStructureInvalid (or end early), never a crash.
	mp4, _ := os.ReadFile(filepath.Join(dir, "live", "streams", "_definst_", "movie.mp4"))
	broken := map[string][]byte{
		"empty.mp4": nil, "text.mp4": []byte("not an mp4 file at all"),
		"half.mp4":   mp4[:len(mp4)/2],
		"nomdat.mp4": append(append([]byte{}, mp4[:40]...), mp4[len(mp4)-len(mp4)/4:]...),
	}
	for i := 0; i+8 < len(mp4); i += len(mp4) / 7 {
		b := append([]byte{}, mp4...)
		for j := i; j < i+64 && j < len(b); j++ {
			b[j] ^= 0x5a
		}
		broken[fmt.Sprintf("flip%d.mp4", i)] = b
	}
	// The moov box is at the end: damage its tables too.
	for i := max(0, len(mp4)-3000); i+8 < len(mp4); i += 97 {
		b := append([]byte{}, mp4...)
		for j := i; j < i+6; j++ {
			b[j] = ^b[j]
		}
		broken[fmt.Sprintf("moov%d.mp4", i)] = b
	}
	for name, b := range broken {
		os.WriteFile(filepath.Join(dir, "live", "streams", "_definst_", name), b, 0o644)
		c, id := vodPlayer(t, base, 60000, "mp4:"+name, 0.0)
		for {
			e := readEv(t, c, id, 5*time.Second)
			if e.code == "NetStream.Play.Stop" || e.code == "NetStream.Play.FileStructureInvalid" {
				break
			}
		}
	}
	if strings.Contains(logs.String(), "panic") {
		t.Fatal("panic in the log")
	}
}

// A seek sent right behind play applies to what play started.
func TestVODSeekRightAfterPlay(t *testing.T) {
	dir := t.TempDir()
	writeFixture(t, dir, "clip", 200, 25)
	base, _, _ := startServer(t, session.Config{DataDir: dir})
	c, id := vodPlayer(t, base, 500, "clip", 0.0)
	if err := c.WriteCommand(id, &message.Command{Name: "seek", Args: []any{3000.0}}); err != nil {
		t.Fatal(err)
	}
	untilEv(t, c, id, "status", "NetStream.Seek.Notify", 5*time.Second)
	for {
		e := readEv(t, c, id, 5*time.Second)
		if e.code == "NetStream.Seek.Failed" {
			t.Fatal("Seek.Failed")
		}
		if e.kind == "video" && sessiontest.FrameIndex(e.data) >= 0 {
			if sessiontest.FrameIndex(e.data) != 75 || e.ts != 3000 {
				t.Fatalf("first frame after the seek: %v", e)
			}
			return
		}
	}
}
