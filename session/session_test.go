package session_test

import (
	"bytes"
	"errors"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/synctest"
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

func TestConnectRepliesAsFMS(t *testing.T) {
	base, _, _ := startServer(t, session.Config{})
	for _, enc := range []float64{0, 3} {
		c := sessiontest.Dial(t, base+"/live", client.Options{ObjectEncoding: enc})
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
	c := sessiontest.Dial(t, base+"/live", client.Options{ObjectEncoding: 3})
	if err := c.WriteCommand(0, &message.Command{Name: "createStream", TransactionID: 9}); err != nil {
		t.Fatal(err)
	}
	ctx := sessiontest.Ctx(t, 5*time.Second)
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
		_, err := client.Dial(sessiontest.Ctx(t, 5*time.Second), base+"/"+app, client.Options{})
		var se *client.StatusError
		if !errors.As(err, &se) || se.Code != "NetConnection.Connect.Rejected" || se.Description == "" {
			t.Errorf("app %q: got %v", app, err)
		}
	}
}

func TestStrictAppsNeedsFolder(t *testing.T) {
	base, _, _ := startServer(t, session.Config{StrictApps: true})
	_, err := client.Dial(sessiontest.Ctx(t, 5*time.Second), base+"/nosuchapp", client.Options{})
	var se *client.StatusError
	if !errors.As(err, &se) || !strings.Contains(se.Description, "not defined") {
		t.Fatalf("got %v", err)
	}
}

func TestUnknownMethodCallFails(t *testing.T) {
	base, _, _ := startServer(t, session.Config{})
	c := sessiontest.Dial(t, base+"/live", client.Options{})
	_, err := c.Call(sessiontest.Ctx(t, 5*time.Second), "noSuchMethod", 1.0)
	var se *client.StatusError
	if !errors.As(err, &se) || se.Code != "NetConnection.Call.Failed" || !strings.Contains(se.Description, "noSuchMethod") {
		t.Fatalf("got %v", err)
	}
}

// metaArr is the onMetaData of publish's stream.
var metaArr = amf.ECMAArray{{Key: "width", Value: 320.0}, {Key: "height", Value: 240.0}}

// publish publishes name live on the app "live" and sends the synthetic
// stream's header.
func publish(t *testing.T, base, name string) *sessiontest.Publisher {
	t.Helper()
	p := sessiontest.Publish(t, base+"/live", name, "live")
	p.Header(t, metaArr)
	return p
}

func TestLateJoinerStartsFromGOPCache(t *testing.T) {
	base, _, _ := startServer(t, session.Config{})
	pub := publish(t, base, "cam")
	pub.Frames(t, 0, 37, 25) // keyframes at 0 and 25: the cache holds 25..36
	pub.Sync(t)              // the cache holds them before the player comes

	c, id := sessiontest.Play(t, base+"/live", "cam")
	for _, want := range []string{"|RtmpSampleAccess", "onStatus", "onMetaData"} {
		m := sessiontest.NextMedia(t, c, id)
		if name, _, _ := message.DataName(m.Payload); m.Type != message.TypeDataAMF0 || name != want {
			t.Fatalf("got %v, want data message %s", m, want)
		}
	}
	seen := map[message.Type][]byte{}
	for range 2 {
		m := sessiontest.NextMedia(t, c, id)
		seen[m.Type] = m.Payload
	}
	if !bytes.Equal(seen[message.TypeVideo], sessiontest.AVCSeq) || !bytes.Equal(seen[message.TypeAudio], sessiontest.AACSeq) {
		t.Fatalf("sequence headers not sent first: %v", seen)
	}
	m := sessiontest.NextMedia(t, c, id)
	if m.Type != message.TypeVideo || !bytes.Equal(m.Payload, sessiontest.VideoFrame(25, 25)) || m.Timestamp != 0 {
		t.Fatalf("first frame %v, want the cached keyframe 25 at timestamp 0", m)
	}
	// The cached audio and inter frames follow, rebased.
	m = sessiontest.NextMedia(t, c, id)
	if m.Type != message.TypeAudio || m.Timestamp != 20 {
		t.Fatalf("after keyframe got %v", m)
	}
	// Live frames continue on the same timeline.
	pub.Frames(t, 37, 38, 25)
	var last *message.Message
	for last == nil || last.Type != message.TypeVideo || !bytes.Equal(last.Payload, sessiontest.VideoFrame(37, 25)) {
		last = sessiontest.NextMedia(t, c, id)
	}
	if last.Timestamp != (37-25)*40 {
		t.Fatalf("live frame timestamp %d, want %d", last.Timestamp, (37-25)*40)
	}
}

func TestNoGOPCacheWaitsForKeyframe(t *testing.T) {
	base, _, _ := startServer(t, session.Config{DisableGOPCache: true})
	pub := publish(t, base, "cam")
	pub.Frames(t, 0, 30, 25)
	pub.Sync(t) // the server has had the keyframe at 25 before the player comes
	c, id := sessiontest.Play(t, base+"/live", "cam")
	pub.Frames(t, 30, 51, 25)
	for {
		m := sessiontest.NextMedia(t, c, id)
		if m.Type == message.TypeVideo && m.Payload[1] == 1 {
			if !bytes.Equal(m.Payload, sessiontest.VideoFrame(50, 25)) {
				t.Fatalf("first coded frame is not the next keyframe: % x", m.Payload[:8])
			}
			return
		}
	}
}

func TestSecondPublisherGetsBadName(t *testing.T) {
	base, _, _ := startServer(t, session.Config{})
	pub := publish(t, base, "cam")
	pub.Frames(t, 0, 2, 25)
	c := sessiontest.Dial(t, base+"/live", client.Options{})
	ctx := sessiontest.Ctx(t, 5*time.Second)
	id, _ := c.CreateStream(ctx)
	err := c.Publish(ctx, id, "cam", "live")
	var se *client.StatusError
	if !errors.As(err, &se) || se.Code != "NetStream.Publish.BadName" {
		t.Fatalf("got %v", err)
	}
}

func TestPlayBeforePublishGetsPublishNotify(t *testing.T) {
	base, _, _ := startServer(t, session.Config{})
	c, id := sessiontest.Play(t, base+"/live", "later")
	pub := publish(t, base, "later")
	ctx := sessiontest.Ctx(t, 5*time.Second)
	if _, err := c.WaitStatus(ctx, id, "NetStream.Play.PublishNotify"); err != nil {
		t.Fatal(err)
	}
	pub.Frames(t, 0, 3, 25)
	m := sessiontest.NextMedia(t, c, id)
	for m.Type != message.TypeVideo || m.Payload[1] != 1 {
		m = sessiontest.NextMedia(t, c, id)
	}
	if !bytes.Equal(m.Payload, sessiontest.VideoFrame(0, 25)) {
		t.Fatalf("first frame % x", m.Payload[:8])
	}
	if err := pub.C.WriteCommand(pub.MsID, &message.Command{Name: "deleteStream", Args: []any{float64(pub.MsID)}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.WaitStatus(ctx, id, "NetStream.Play.UnpublishNotify"); err != nil {
		t.Fatal(err)
	}
}

// A publisher silent for longer than PublisherTakeover loses its name to
// the next one. The test runs in a synctest bubble: the silence is fake
// time, exactly 300 ms however loaded the machine.
func TestPublisherTakeoverKeepsPlayers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base, _, _ := sessiontest.StartPipe(t, sessiontest.Config(session.Config{PublisherTakeover: 200 * time.Millisecond}))
		pub := publish(t, base, "cam")
		pub.Frames(t, 0, 10, 5)
		c, id := sessiontest.Play(t, base+"/live", "cam")
		time.Sleep(300 * time.Millisecond) // fake time: the old publisher falls silent
		pub2 := publish(t, base, "cam")    // same name: takes over
		pub2.Frames(t, 0, 6, 5)
		var lastTs uint32
		for {
			m := sessiontest.NextMedia(t, c, id)
			if m.Type == message.TypeCommandAMF0 {
				continue
			}
			if int32(m.Timestamp-lastTs) < 0 && m.Timestamp != 0 {
				t.Fatalf("timestamps went back from %d to %d", lastTs, m.Timestamp)
			}
			lastTs = m.Timestamp
			if m.Type == message.TypeVideo && bytes.Equal(m.Payload, sessiontest.VideoFrame(5, 5)) && lastTs > 9*40 {
				return // the new publisher's frame 5 arrived after the old stream, on one timeline
			}
		}
	})
}

// A player that never reads must not hold up the publisher or a reader
// that keeps up; it skips ahead, and is dropped when its writes stall. The
// test runs in a synctest bubble: the publisher's pace and the stall
// timeout are fake time, so a loaded machine neither stretches the run nor
// makes the fast reader look slow.
func TestSlowPlayerDoesNotStallOthers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base, srv, logs := sessiontest.StartPipe(t, sessiontest.Config(session.Config{PlayerQueue: 32, StallTimeout: 2 * time.Second}))
		pub := publish(t, base, "big")
		sessiontest.Play(t, base+"/live", "big") // never read again
		fast, fid := sessiontest.Play(t, base+"/live", "big")

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
		pace := time.NewTicker(5 * time.Millisecond) // fake time
		defer pace.Stop()
		deadline := time.Now().Add(20 * time.Second)
		for stats.SlowDisconnects.Load() == 0 && time.Now().Before(deadline) {
			pub.Send(t, message.TypeVideo, uint32(sent*40), frame)
			sent++
			<-pace.C
		}
		if stats.SlowDisconnects.Load() == 0 || stats.DroppedMessages.Load() == 0 {
			t.Fatalf("slow player not skipped and dropped after %d frames: %d disconnects, %d dropped",
				sent, stats.SlowDisconnects.Load(), stats.DroppedMessages.Load())
		}
		synctest.Wait() // the fast player has read all the server had for it
		if n := got.Load(); n < int64(sent)*95/100 {
			t.Fatalf("fast player got %d of %d frames", n, sent)
		}
		if !strings.Contains(logs.String(), "too slow") {
			t.Fatal("no log line about the slow player")
		}
	})
}

func TestGarbageAfterHandshakeClosesOnlyThatConnection(t *testing.T) {
	base, _, _ := startServer(t, session.Config{})
	pub := publish(t, base, "cam")
	c := sessiontest.Dial(t, base+"/live", client.Options{})
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
	pub.Frames(t, 0, 2, 25)
	if _, err := c.Call(sessiontest.Ctx(t, 5*time.Second), "createStream"); err != nil {
		t.Fatal(err)
	}
}

// Enhanced RTMP media passes through untouched, and its sequence start is
// cached like an AVC sequence header, so a late HEVC player can decode.
func TestEnhancedRTMPPassThrough(t *testing.T) {
	base, _, _ := startServer(t, session.Config{})
	c := sessiontest.Dial(t, base+"/live", client.Options{Extra: amf.Object{{Key: "fourCcList", Value: []any{"hvc1", "av01"}}}})
	if props, _ := c.Result.Object.(amf.Object); props != nil {
		if _, ok := props.Get("fourCcList"); !ok {
			t.Error("connect with fourCcList: the reply does not state the server's fourCcList")
		}
	}
	ctx := sessiontest.Ctx(t, 5*time.Second)
	id, _ := c.CreateStream(ctx)
	if err := c.Publish(ctx, id, "hevc", "live"); err != nil {
		t.Fatal(err)
	}
	pub := &sessiontest.Publisher{C: c, MsID: id}
	// ExHeader | keyframe | SequenceStart, "hvc1", then a configuration record.
	seqStart := append([]byte{0x90, 'h', 'v', 'c', '1'}, 1, 2, 3, 4)
	// ExHeader | keyframe | CodedFramesX, "hvc1"; inter frames: frame type 2.
	key := append([]byte{0x93, 'h', 'v', 'c', '1'}, bytes.Repeat([]byte{7}, 100)...)
	inter := append([]byte{0xa3, 'h', 'v', 'c', '1'}, bytes.Repeat([]byte{8}, 50)...)
	// Opus audio: ExHeader sound format 9, CodedFrames, "Opus".
	opus := append([]byte{0x91, 'O', 'p', 'u', 's'}, 9, 9, 9)
	pub.Send(t, message.TypeVideo, 0, seqStart)
	pub.Send(t, message.TypeVideo, 0, key)
	pub.Send(t, message.TypeAudio, 10, opus)
	pub.Send(t, message.TypeVideo, 40, inter)
	pub.Sync(t) // cached before the player comes

	p, pid := sessiontest.Play(t, base+"/live", "hevc")
	var got [][]byte
	for len(got) < 4 {
		m := sessiontest.NextMedia(t, p, pid)
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
