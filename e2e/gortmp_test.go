package e2e

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/yutopp/go-rtmp/message"
)

type sentMsg struct {
	Type    message.TypeID
	TS      uint32
	Payload []byte
}

// TestGoRTMPPublishPlay drives the server with go-rtmp's chunk and AMF
// implementation. A player that subscribed before the publisher must receive
// every audio/video message byte for byte and in order, starting with the
// sequence headers; a player joining mid-stream must receive metadata and
// sequence headers first, then the current GOP from its keyframe on.
func TestGoRTMPPublishPlay(t *testing.T) {
	e2e(t)
	srv := startServer(t)
	const name = "gortmp1"

	early := dialRTMP(t, "early player", srv.Addr, dialOpts{})
	esid, err := early.play("live", name)
	if err != nil {
		t.Fatal(err)
	}

	pub := dialRTMP(t, "publisher", srv.Addr, dialOpts{ChunkSize: 4096})
	psid, err := pub.publish("live", name)
	if err != nil {
		t.Fatal(err)
	}
	if err := pub.sendMetadata(psid, map[string]any{"width": 320.0, "height": 240.0, "videocodecid": 7.0, "audiocodecid": 10.0, "framerate": 25.0}); err != nil {
		t.Fatal(err)
	}

	var sent []sentMsg
	send := func(typ message.TypeID, ts uint32, p []byte) {
		t.Helper()
		var err error
		if typ == message.TypeIDVideoMessage {
			err = pub.sendVideo(psid, ts, p)
		} else {
			err = pub.sendAudio(psid, ts, p)
		}
		if err != nil {
			t.Fatalf("publisher write: %v", err)
		}
		sent = append(sent, sentMsg{typ, ts, p})
	}
	send(message.TypeIDVideoMessage, 0, avcSeqHeader())
	send(message.TypeIDAudioMessage, 0, aacSeqHeader())

	const (
		videoFrames = 250 // 10 s of media at 25 fps, sent about 10x faster
		gop         = 25
		joinAt      = 137 // late player joins mid-GOP, after this many frames
	)
	var (
		late        *rtmpClient
		lsid        uint32
		lastKey     = -1 // index in sent of the last keyframe
		lastKeyJoin = -1 // lastKey when the late player joined
		audioSeq    uint32
		audioTS     float64
	)
	for i := 0; i < videoFrames; i++ {
		ts := uint32(i * 40)
		for audioTS <= float64(ts) { // AAC frames every 1024/44100 s
			send(message.TypeIDAudioMessage, uint32(audioTS), aacFrame(audioSeq, 180+int(audioSeq%40)))
			audioSeq++
			audioTS += 1024.0 * 1000 / 44100
		}
		key := i%gop == 0
		size := 1200 + (i%9)*150
		if key {
			size = 9000
		}
		send(message.TypeIDVideoMessage, ts, avcFrame(key, uint32(i), size, 0x40))
		if key {
			lastKey = len(sent) - 1
		}
		if i == joinAt {
			lastKeyJoin = lastKey
			late = dialRTMP(t, "late player", srv.Addr, dialOpts{})
			if lsid, err = late.play("live", name); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(4 * time.Millisecond)
	}
	pub.unpublish(psid, name)

	for _, p := range []struct {
		c   *rtmpClient
		sid uint32
	}{{early, esid}, {late, lsid}} {
		if _, err := p.c.waitStatus(p.sid, 10*time.Second, "NetStream.Play.UnpublishNotify", "NetStream.Play.Stop"); err != nil {
			t.Errorf("after unpublish: %v", err)
		}
	}

	t.Run("early", func(t *testing.T) {
		got := drainMedia(early)
		checkMetadata(t, got)
		video, audio := splitAV(got)
		if len(video) == 0 || !bytes.Equal(video[0].Payload, avcSeqHeader()) {
			t.Errorf("first video message is not the AVC sequence header: %v", first(video))
		}
		if len(audio) == 0 || !bytes.Equal(audio[0].Payload, aacSeqHeader()) {
			t.Errorf("first audio message is not the AAC sequence header: %v", first(audio))
		}
		compareStream(t, "video", filterSent(sent, message.TypeIDVideoMessage), video)
		compareStream(t, "audio", filterSent(sent, message.TypeIDAudioMessage), audio)
		if s := early.decodeErr(); s != "" {
			t.Errorf("early player: %s", s)
		}
	})

	t.Run("late", func(t *testing.T) {
		got := drainMedia(late)
		checkMetadata(t, got)
		video, audio := splitAV(got)
		if len(video) < 2 || !bytes.Equal(video[0].Payload, avcSeqHeader()) {
			t.Fatalf("late player: first video message is not the AVC sequence header: %v", first(video))
		}
		if len(audio) == 0 || !bytes.Equal(audio[0].Payload, aacSeqHeader()) {
			t.Errorf("late player: first audio message is not the AAC sequence header: %v", first(audio))
		}
		// The first frame after the header must be the keyframe that
		// started the GOP in progress when the player joined (GOP cache),
		// followed by every later frame.
		sentVideo := filterSent(sent, message.TypeIDVideoMessage)
		wantFirst := sent[lastKeyJoin]
		if !bytes.Equal(video[1].Payload, wantFirst.Payload) {
			idx := indexOf(sentVideo, video[1].Payload)
			t.Errorf("late player: first frame is video frame %d (keyframe %v), want the cached GOP's keyframe (frame %d)",
				idx-1, video[1].Payload[0] == 0x17, (joinAt/gop)*gop)
		}
		from := indexOf(sentVideo, video[1].Payload)
		if from < 0 {
			t.Fatalf("late player: first frame matches nothing sent")
		}
		compareStream(t, "video", append([]sentMsg{sentVideo[0]}, sentVideo[from:]...), video)
		// Audio: header, then a contiguous run up to the last frame sent.
		sentAudio := filterSent(sent, message.TypeIDAudioMessage)
		if len(audio) > 1 {
			afrom := indexOf(sentAudio, audio[1].Payload)
			if afrom < 0 {
				t.Errorf("late player: first audio frame matches nothing sent")
			} else {
				compareStream(t, "audio", append([]sentMsg{sentAudio[0]}, sentAudio[afrom:]...), audio)
			}
		} else {
			t.Errorf("late player: no audio frames")
		}
		if s := late.decodeErr(); s != "" {
			t.Errorf("late player: %s", s)
		}
	})
}

// drainMedia returns the media and data messages queued so far.
func drainMedia(c *rtmpClient) []rxMsg {
	var out []rxMsg
	for {
		select {
		case m := <-c.media:
			out = append(out, m)
		default:
			return out
		}
	}
}

func splitAV(msgs []rxMsg) (video, audio []rxMsg) {
	for _, m := range msgs {
		switch m.Type {
		case message.TypeIDVideoMessage:
			video = append(video, m)
		case message.TypeIDAudioMessage:
			audio = append(audio, m)
		}
	}
	return
}

func filterSent(s []sentMsg, typ message.TypeID) []sentMsg {
	var out []sentMsg
	for _, m := range s {
		if m.Type == typ {
			out = append(out, m)
		}
	}
	return out
}

func indexOf(s []sentMsg, p []byte) int {
	for i, m := range s {
		if bytes.Equal(m.Payload, p) {
			return i
		}
	}
	return -1
}

func first(ms []rxMsg) string {
	if len(ms) == 0 {
		return "none received"
	}
	p := ms[0].Payload
	return fmt.Sprintf("%d bytes % x...", len(p), p[:min(len(p), 8)])
}

// checkMetadata: onMetaData (without @setDataFrame) must precede all media.
func checkMetadata(t *testing.T, msgs []rxMsg) {
	t.Helper()
	for _, m := range msgs {
		switch m.Type {
		case message.TypeIDDataMessageAMF0:
			if m.Name == "onMetaData" {
				for _, a := range m.Args {
					if obj, ok := asMap(a); ok && obj["width"] == 320.0 {
						return
					}
				}
				t.Errorf("onMetaData without the published fields: %v", m.Args)
				return
			}
		case message.TypeIDAudioMessage, message.TypeIDVideoMessage:
			t.Errorf("media arrived before onMetaData")
			return
		}
	}
	t.Errorf("no onMetaData received")
}

// compareStream checks that got carries exactly want's payloads in order,
// with the same timestamp spacing (measured from the first message after the
// sequence header, whose timestamp servers may restamp).
func compareStream(t *testing.T, kind string, want []sentMsg, got []rxMsg) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: received %d messages, want %d", kind, len(got), len(want))
	}
	bad := 0
	for i := 0; i < min(len(got), len(want)); i++ {
		if !bytes.Equal(got[i].Payload, want[i].Payload) {
			if bad < 3 {
				t.Errorf("%s message %d: payload differs (got %d bytes, want %d; sent index of got: %d)",
					kind, i, len(got[i].Payload), len(want[i].Payload), indexOf(want, got[i].Payload))
			}
			bad++
			continue
		}
		if i > 1 && got[i].TS-got[1].TS != want[i].TS-want[1].TS {
			if bad < 3 {
				t.Errorf("%s message %d: timestamp %d (base %d), want offset %d", kind, i, got[i].TS, got[1].TS, want[i].TS-want[1].TS)
			}
			bad++
		}
	}
	if bad > 0 {
		t.Errorf("%s: %d mismatching messages", kind, bad)
	}
}
