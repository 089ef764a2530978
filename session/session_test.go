package session_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rtmphub/rtmphub/rtmp/amf"
	"github.com/rtmphub/rtmphub/rtmp/client"
	"github.com/rtmphub/rtmphub/rtmp/message"
	"github.com/rtmphub/rtmphub/session"
	"github.com/rtmphub/rtmphub/session/sessiontest"
)

// startServer runs a core on 127.0.0.1:0 and returns its rtmp:// base URL.
func startServer(t *testing.T, cfg session.Config) (string, *session.Server, *sessiontest.LogBuffer) {
	t.Helper()
	return sessiontest.Start(t, sessiontest.Config(cfg))
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func dial(t *testing.T, url string, opt client.Options) *client.Conn {
	t.Helper()
	c, err := client.Dial(ctxT(t, 5*time.Second), url, opt)
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestConnectRepliesAsFMS(t *testing.T) {
	base, _, _ := startServer(t, session.Config{})
	for _, enc := range []float64{0, 3} {
		c := dial(t, base+"/live", client.Options{ObjectEncoding: enc})
		props, _ := c.Result.Object.(amf.Object)
		inf, _ := c.Result.Arg(0).(amf.Object)
		if v, _ := props.Get("fmsVer"); !strings.HasPrefix(v.(string), "FMS/") {
			t.Errorf("enc %v: fmsVer %v", enc, v)
		}
		if v, _ := inf.Get("code"); v != "NetConnection.Connect.Success" {
			t.Errorf("enc %v: code %v", enc, v)
		}
		if v, _ := inf.Get("objectEncoding"); v != enc {
			t.Errorf("enc %v: objectEncoding %v", enc, v)
		}
		if _, ok := inf.Get("data"); !ok {
			t.Errorf("enc %v: no data.version", enc)
		}
	}
}

func TestConnectAMF3RepliesAreType17(t *testing.T) {
	base, _, _ := startServer(t, session.Config{})
	c := dial(t, base+"/live", client.Options{ObjectEncoding: 3})
	if err := c.WriteCommand(0, &message.Command{Name: "createStream", TransactionID: 9}); err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t, 5*time.Second)
	for ctx.Err() == nil {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		m, err := c.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		if m.Type == message.TypeCommandAMF0 || m.Type == message.TypeCommandAMF3 {
			cmd, err := message.DecodeCommand(m)
			if err != nil {
				t.Fatal(err)
			}
			if cmd.TransactionID == 9 {
				if m.Type != message.TypeCommandAMF3 {
					t.Fatalf("reply to an AMF3 client is %v", m.Type)
				}
				return
			}
		}
	}
}

func TestConnectRejectsBadAppName(t *testing.T) {
	base, _, _ := startServer(t, session.Config{})
	for _, app := range []string{"..", "li%20ve", "live/../x"} {
		_, err := client.Dial(ctxT(t, 5*time.Second), base+"/"+app, client.Options{})
		var se *client.StatusError
		if !errors.As(err, &se) || se.Code != "NetConnection.Connect.Rejected" || se.Description == "" {
			t.Errorf("app %q: got %v", app, err)
		}
	}
}

func TestStrictAppsNeedsFolder(t *testing.T) {
	base, _, _ := startServer(t, session.Config{StrictApps: true})
	_, err := client.Dial(ctxT(t, 5*time.Second), base+"/nosuchapp", client.Options{})
	var se *client.StatusError
	if !errors.As(err, &se) || !strings.Contains(se.Description, "not defined") {
		t.Fatalf("got %v", err)
	}
}

func TestUnknownMethodCallFails(t *testing.T) {
	base, _, _ := startServer(t, session.Config{})
	c := dial(t, base+"/live", client.Options{})
	_, err := c.Call(ctxT(t, 5*time.Second), "noSuchMethod", 1.0)
	var se *client.StatusError
	if !errors.As(err, &se) || se.Code != "NetConnection.Call.Failed" || !strings.Contains(se.Description, "noSuchMethod") {
		t.Fatalf("got %v", err)
	}
}

// media is a synthetic H.264/AAC stream: sequence headers, then frames
// with a keyframe every gop frames.
var (
	avcSeq  = []byte{0x17, 0x00, 0, 0, 0, 1, 0x64, 0, 0x1f, 0xff, 0xe1, 0, 4, 0x67, 0x64, 0, 0x1f}
	aacSeq  = []byte{0xaf, 0x00, 0x12, 0x10}
	metaArr = amf.ECMAArray{{Key: "width", Value: 320.0}, {Key: "height", Value: 240.0}}
)

func videoFrame(i, gop int) []byte {
	b := make([]byte, 200)
	if i%gop == 0 {
		b[0] = 0x17
	} else {
		b[0] = 0x27
	}
	b[1] = 1
	b[5] = byte(i)
	b[6] = byte(i >> 8)
	return b
}

type publisher struct {
	c    *client.Conn
	msid uint32
}

func publish(t *testing.T, base, name string) *publisher {
	t.Helper()
	c := dial(t, base+"/live", client.Options{FlashVer: "FMLE/3.0 (compatible; rtmphub-test)"})
	ctx := ctxT(t, 5*time.Second)
	id, err := c.CreateStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Publish(ctx, id, name, "live"); err != nil {
		t.Fatal(err)
	}
	p := &publisher{c: c, msid: id}
	_, meta, _ := message.EncodeData(false, "@setDataFrame", "onMetaData", metaArr)
	p.send(t, message.TypeDataAMF0, 0, meta)
	p.send(t, message.TypeVideo, 0, avcSeq)
	p.send(t, message.TypeAudio, 0, aacSeq)
	return p
}

func (p *publisher) send(t *testing.T, typ message.Type, ts uint32, payload []byte) {
	t.Helper()
	if err := p.c.WriteMessages([]message.Message{{Type: typ, StreamID: p.msid, Timestamp: ts, Payload: payload}}); err != nil {
		t.Fatalf("publisher write: %v", err)
	}
}

// frames sends video frames from..to (40 ms apart) with audio between.
func (p *publisher) frames(t *testing.T, from, to, gop int) {
	for i := from; i < to; i++ {
		p.send(t, message.TypeVideo, uint32(i*40), videoFrame(i, gop))
		p.send(t, message.TypeAudio, uint32(i*40+20), []byte{0xaf, 0x01, byte(i), 2, 3})
	}
}

func play(t *testing.T, base, name string) (*client.Conn, uint32) {
	t.Helper()
	c := dial(t, base+"/live", client.Options{})
	ctx := ctxT(t, 5*time.Second)
	id, err := c.CreateStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Play(ctx, id, name, -2000); err != nil {
		t.Fatal(err)
	}
	return c, id
}

// next returns the next audio, video or data message on msid.
func next(t *testing.T, c *client.Conn, msid uint32) *message.Message {
	t.Helper()
	for {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		m, err := c.ReadMessage()
		if err != nil {
			t.Fatalf("player read: %v", err)
		}
		if m.StreamID == msid && (m.Type == message.TypeVideo || m.Type == message.TypeAudio || m.Type == message.TypeDataAMF0) {
			return m
		}
	}
}

func TestLateJoinerStartsFromGOPCache(t *testing.T) {
	base, _, _ := startServer(t, session.Config{})
	pub := publish(t, base, "cam")
	pub.frames(t, 0, 37, 25) // keyframes at 0 and 25: the cache holds 25..36
	time.Sleep(100 * time.Millisecond)

	c, id := play(t, base, "cam")
	for _, want := range []string{"|RtmpSampleAccess", "onStatus", "onMetaData"} {
		m := next(t, c, id)
		if name, _, _ := message.DataName(m.Payload); m.Type != message.TypeDataAMF0 || name != want {
			t.Fatalf("got %v, want data message %s", m, want)
		}
	}
	seen := map[message.Type][]byte{}
	for range 2 {
		m := next(t, c, id)
		seen[m.Type] = m.Payload
	}
	if !bytes.Equal(seen[message.TypeVideo], avcSeq) || !bytes.Equal(seen[message.TypeAudio], aacSeq) {
		t.Fatalf("sequence headers not sent first: %v", seen)
	}
	m := next(t, c, id)
	if m.Type != message.TypeVideo || !bytes.Equal(m.Payload, videoFrame(25, 25)) || m.Timestamp != 0 {
		t.Fatalf("first frame %v, want the cached keyframe 25 at timestamp 0", m)
	}
	// The cached audio and inter frames follow, rebased.
	m = next(t, c, id)
	if m.Type != message.TypeAudio || m.Timestamp != 20 {
		t.Fatalf("after keyframe got %v", m)
	}
	// Live frames continue on the same timeline.
	pub.frames(t, 37, 38, 25)
	var last *message.Message
	for last == nil || last.Type != message.TypeVideo || !bytes.Equal(last.Payload, videoFrame(37, 25)) {
		last = next(t, c, id)
	}
	if last.Timestamp != (37-25)*40 {
		t.Fatalf("live frame timestamp %d, want %d", last.Timestamp, (37-25)*40)
	}
}

func TestNoGOPCacheWaitsForKeyframe(t *testing.T) {
	base, _, _ := startServer(t, session.Config{DisableGOPCache: true})
	pub := publish(t, base, "cam")
	pub.frames(t, 0, 30, 25)
	time.Sleep(100 * time.Millisecond)
	c, id := play(t, base, "cam")
	pub.frames(t, 30, 51, 25)
	for {
		m := next(t, c, id)
		if m.Type == message.TypeVideo && m.Payload[1] == 1 {
			if !bytes.Equal(m.Payload, videoFrame(50, 25)) {
				t.Fatalf("first coded frame is not the next keyframe: % x", m.Payload[:8])
			}
			return
		}
	}
}

func TestSecondPublisherGetsBadName(t *testing.T) {
	base, _, _ := startServer(t, session.Config{})
	pub := publish(t, base, "cam")
	pub.frames(t, 0, 2, 25)
	c := dial(t, base+"/live", client.Options{})
	ctx := ctxT(t, 5*time.Second)
	id, _ := c.CreateStream(ctx)
	err := c.Publish(ctx, id, "cam", "live")
	var se *client.StatusError
	if !errors.As(err, &se) || se.Code != "NetStream.Publish.BadName" {
		t.Fatalf("got %v", err)
	}
}

func TestPlayBeforePublishGetsPublishNotify(t *testing.T) {
	base, _, _ := startServer(t, session.Config{})
	c, id := play(t, base, "later")
	pub := publish(t, base, "later")
	ctx := ctxT(t, 5*time.Second)
	if _, err := c.WaitStatus(ctx, id, "NetStream.Play.PublishNotify"); err != nil {
		t.Fatal(err)
	}
	pub.frames(t, 0, 3, 25)
	m := next(t, c, id)
	for m.Type != message.TypeVideo || m.Payload[1] != 1 {
		m = next(t, c, id)
	}
	if !bytes.Equal(m.Payload, videoFrame(0, 25)) {
		t.Fatalf("first frame % x", m.Payload[:8])
	}
	if err := pub.c.WriteCommand(pub.msid, &message.Command{Name: "deleteStream", Args: []any{float64(pub.msid)}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.WaitStatus(ctx, id, "NetStream.Play.UnpublishNotify"); err != nil {
		t.Fatal(err)
	}
}

func TestPublisherTakeoverKeepsPlayers(t *testing.T) {
	base, _, _ := startServer(t, session.Config{PublisherTakeover: 200 * time.Millisecond})
	pub := publish(t, base, "cam")
	pub.frames(t, 0, 10, 5)
	c, id := play(t, base, "cam")
	time.Sleep(300 * time.Millisecond) // the old publisher falls silent
	pub2 := publish(t, base, "cam")    // same name: takes over
	pub2.frames(t, 0, 6, 5)
	var lastTs uint32
	for {
		m := next(t, c, id)
		if m.Type == message.TypeCommandAMF0 {
			continue
		}
		if int32(m.Timestamp-lastTs) < 0 && m.Timestamp != 0 {
			t.Fatalf("timestamps went back from %d to %d", lastTs, m.Timestamp)
		}
		lastTs = m.Timestamp
		if m.Type == message.TypeVideo && bytes.Equal(m.Payload, videoFrame(5, 5)) && lastTs > 9*40 {
			return // the new publisher's frame 5 arrived after the old stream, on one timeline
		}
	}
}

// A player that never reads must not hold up the publisher or a reader
// that keeps up; it skips ahead, and is dropped when its writes stall.
func TestSlowPlayerDoesNotStallOthers(t *testing.T) {
	base, srv, logs := startServer(t, session.Config{PlayerQueue: 32, StallTimeout: 2 * time.Second})
	pub := publish(t, base, "big")
	play(t, base, "big") // never read again
	fast, fid := play(t, base, "big")

	var got atomic.Int64
	go func() {
		for {
			fast.SetReadDeadline(time.Now().Add(10 * time.Second))
			m, err := fast.ReadMessage()
			if err != nil {
				return
			}
			if m.StreamID == fid && m.Type == message.TypeVideo && len(m.Payload) == 64<<10 {
				got.Add(1)
			}
		}
	}()
	frame := make([]byte, 64<<10)
	frame[0], frame[1] = 0x17, 1
	// Publish at ~100 Mbit/s, easy for a reader that keeps up, until the
	// slow player has skipped frames and then been dropped (bounded).
	stats := srv.Stats()
	sent := 0
	deadline := time.Now().Add(20 * time.Second)
	for stats.SlowDisconnects.Load() == 0 && time.Now().Before(deadline) {
		pub.send(t, message.TypeVideo, uint32(sent*40), frame)
		sent++
		time.Sleep(5 * time.Millisecond)
	}
	if stats.SlowDisconnects.Load() == 0 || stats.DroppedMessages.Load() == 0 {
		t.Fatalf("slow player not skipped and dropped after %d frames: %d disconnects, %d dropped",
			sent, stats.SlowDisconnects.Load(), stats.DroppedMessages.Load())
	}
	for want := int64(sent) * 95 / 100; got.Load() < want && time.Now().Before(deadline.Add(5*time.Second)); {
		time.Sleep(10 * time.Millisecond)
	}
	if n := got.Load(); n < int64(sent)*95/100 {
		t.Fatalf("fast player got %d of %d frames", n, sent)
	}
	if !strings.Contains(logs.String(), "too slow") {
		t.Fatal("no log line about the slow player")
	}
}

func TestGarbageAfterHandshakeClosesOnlyThatConnection(t *testing.T) {
	base, _, _ := startServer(t, session.Config{})
	pub := publish(t, base, "cam")
	c := dial(t, base+"/live", client.Options{})
	// A chunk header declaring a message far over the limit.
	raw := []byte{0x04, 0, 0, 0, 0xff, 0xff, 0xff, 0x09, 1, 0, 0, 0}
	nc, err := net.Dial("tcp", strings.TrimPrefix(base, "rtmp://"))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.Write(append([]byte{3}, make([]byte, 1536)...))
	io.ReadFull(nc, make([]byte, 1+1536+1536))
	nc.Write(make([]byte, 1536))
	nc.Write(raw)
	nc.Write(bytes.Repeat([]byte{0xff}, 4096))
	nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.Copy(io.Discard, nc); err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("server did not close the bad connection: %v", err)
	}
	// The publisher is unaffected.
	pub.frames(t, 0, 2, 25)
	if _, err := c.Call(ctxT(t, 5*time.Second), "createStream"); err != nil {
		t.Fatal(err)
	}
}

// Enhanced RTMP media passes through untouched, and its sequence start is
// cached like an AVC sequence header, so a late HEVC player can decode.
func TestEnhancedRTMPPassThrough(t *testing.T) {
	base, _, _ := startServer(t, session.Config{})
	c := dial(t, base+"/live", client.Options{Extra: amf.Object{{Key: "fourCcList", Value: []any{"hvc1", "av01"}}}})
	if props, _ := c.Result.Object.(amf.Object); props != nil {
		if _, ok := props.Get("fourCcList"); !ok {
			t.Error("connect with fourCcList: the reply does not state the server's fourCcList")
		}
	}
	ctx := ctxT(t, 5*time.Second)
	id, _ := c.CreateStream(ctx)
	if err := c.Publish(ctx, id, "hevc", "live"); err != nil {
		t.Fatal(err)
	}
	pub := &publisher{c: c, msid: id}
	// ExHeader | keyframe | SequenceStart, "hvc1", then a configuration record.
	seqStart := append([]byte{0x90, 'h', 'v', 'c', '1'}, 1, 2, 3, 4)
	// ExHeader | keyframe | CodedFramesX, "hvc1"; inter frames: frame type 2.
	key := append([]byte{0x93, 'h', 'v', 'c', '1'}, bytes.Repeat([]byte{7}, 100)...)
	inter := append([]byte{0xa3, 'h', 'v', 'c', '1'}, bytes.Repeat([]byte{8}, 50)...)
	// Opus audio: ExHeader sound format 9, CodedFrames, "Opus".
	opus := append([]byte{0x91, 'O', 'p', 'u', 's'}, 9, 9, 9)
	pub.send(t, message.TypeVideo, 0, seqStart)
	pub.send(t, message.TypeVideo, 0, key)
	pub.send(t, message.TypeAudio, 10, opus)
	pub.send(t, message.TypeVideo, 40, inter)
	time.Sleep(100 * time.Millisecond)

	p, pid := play(t, base, "hevc")
	var got [][]byte
	for len(got) < 4 {
		m := next(t, p, pid)
		if m.Type == message.TypeVideo || m.Type == message.TypeAudio {
			got = append(got, m.Payload)
		}
	}
	for i, want := range [][]byte{seqStart, key, opus, inter} {
		if !bytes.Equal(got[i], want) {
			t.Fatalf("message %d: % x, want % x", i, got[i][:5], want[:5])
		}
	}
}
