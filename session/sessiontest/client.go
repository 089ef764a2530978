package sessiontest

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/rtmphub/rtmphub/rtmp/amf"
	"github.com/rtmphub/rtmphub/rtmp/client"
	"github.com/rtmphub/rtmphub/rtmp/message"
)

// Ctx returns a context that ends after d, or with the test.
func Ctx(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// Dial connects to url (rtmp://host:port/app[/instance]) within 5 s and
// closes the connection when the test ends; a failure ends the test. A
// URL of a StartPipe server connects in memory.
func Dial(t testing.TB, url string, opt client.Options) *client.Conn {
	t.Helper()
	c, err := TryDial(Ctx(t, 5*time.Second), url, opt)
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TryDial is client.Dial that also reaches StartPipe servers; the caller
// closes the connection.
func TryDial(ctx context.Context, url string, opt client.Options) (*client.Conn, error) {
	if opt.Dial == nil {
		opt.Dial = pipeDialer(url)
	}
	return client.Dial(ctx, url, opt)
}

// pipeDialer returns the dialer of the StartPipe server url names, or nil.
func pipeDialer(url string) func(context.Context, string) (net.Conn, error) {
	host, _, _ := strings.Cut(strings.TrimPrefix(url, "rtmp://"), "/")
	if d, ok := pipes.Load(host); ok {
		return d.(func(context.Context, string) (net.Conn, error))
	}
	return nil
}

// A synthetic H.264/AAC stream: the sequence headers, and frames that carry
// their number (see VideoFrame).
var (
	// AVCSeq is an AVC sequence header: one SPS (High, level 3.1) and one PPS.
	AVCSeq = []byte{0x17, 0, 0, 0, 0, 1, 0x64, 0, 0x1f, 0xff, 0xe1, 0, 4, 0x67, 0x64, 0, 0x1f, 1, 0, 4, 0x68, 0xee, 0x3c, 0x80}
	// AACSeq is an AAC-LC sequence header, 44.1 kHz stereo.
	AACSeq = []byte{0xaf, 0x00, 0x12, 0x10}
)

// VideoFrame is 200 bytes of AVC video, frame i of a stream with a
// keyframe every gop frames; bytes 5 and 6 carry i.
func VideoFrame(i, gop int) []byte {
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

// FrameIndex returns the number a VideoFrame carries, or -1 for another
// payload (a sequence header, say).
func FrameIndex(p []byte) int {
	if len(p) < 7 || p[1] != 1 {
		return -1
	}
	return int(p[5]) | int(p[6])<<8
}

// Publisher is a client publishing a stream.
type Publisher struct {
	C    *client.Conn
	MsID uint32 // the message stream it publishes on
}

// Publish connects to appURL as an encoder (FMLE's flashVer) and publishes
// name with type typ ("live", "record" or "append"); it returns once
// NetStream.Publish.Start arrived. Record.* statuses follow it.
func Publish(t testing.TB, appURL, name, typ string) *Publisher {
	t.Helper()
	c := Dial(t, appURL, client.Options{FlashVer: "FMLE/3.0 (compatible; rtmphub-test)"})
	ctx := Ctx(t, 5*time.Second)
	id, err := c.CreateStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Publish(ctx, id, name, typ); err != nil {
		t.Fatal(err)
	}
	return &Publisher{C: c, MsID: id}
}

// Send sends one message on the published stream.
func (p *Publisher) Send(t testing.TB, typ message.Type, ts uint32, payload []byte) {
	t.Helper()
	if err := p.C.WriteMessages([]message.Message{{Type: typ, StreamID: p.MsID, Timestamp: ts, Payload: payload}}); err != nil {
		t.Fatalf("publisher write: %v", err)
	}
}

// Header sends what an encoder sends first: @setDataFrame onMetaData with
// meta, then the AVC and AAC sequence headers, at timestamp 0.
func (p *Publisher) Header(t testing.TB, meta amf.ECMAArray) {
	t.Helper()
	_, data, err := message.EncodeData(false, "@setDataFrame", "onMetaData", meta)
	if err != nil {
		t.Fatal(err)
	}
	p.Send(t, message.TypeDataAMF0, 0, data)
	p.Send(t, message.TypeVideo, 0, AVCSeq)
	p.Send(t, message.TypeAudio, 0, AACSeq)
}

// Frames sends VideoFrames from..to (to excluded) 40 ms apart, each with
// an audio frame 20 ms after it.
func (p *Publisher) Frames(t testing.TB, from, to, gop int) {
	t.Helper()
	for i := from; i < to; i++ {
		p.Send(t, message.TypeVideo, uint32(i*40), VideoFrame(i, gop))
		p.Send(t, message.TypeAudio, uint32(i*40+20), []byte{0xaf, 0x01, byte(i), byte(i >> 8), 3})
	}
}

// Sync returns once the server has handled everything the publisher sent
// before: the server handles a client's messages in order, so its answer
// to a call (_checkbw, which changes nothing) proves it.
func (p *Publisher) Sync(t testing.TB) {
	t.Helper()
	if _, err := p.C.Call(Ctx(t, 5*time.Second), "_checkbw"); err != nil {
		t.Fatalf("publisher sync: %v", err)
	}
}

// Play connects to appURL and plays name live or recorded (start -2000);
// it returns the connection and the message stream once
// NetStream.Play.Start arrived.
func Play(t testing.TB, appURL, name string) (*client.Conn, uint32) {
	t.Helper()
	c := Dial(t, appURL, client.Options{})
	ctx := Ctx(t, 5*time.Second)
	id, err := c.CreateStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Play(ctx, id, name, -2000); err != nil {
		t.Fatal(err)
	}
	return c, id
}

// NextMedia returns the next audio, video or AMF0 data message on stream
// msid, waiting at most 5 s for each message read.
func NextMedia(t testing.TB, c *client.Conn, msid uint32) *message.Message {
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
