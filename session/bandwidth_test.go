package session_test

import (
	"testing"
	"time"

	"github.com/rtmphub/rtmphub/rtmp/message"
	"github.com/rtmphub/rtmphub/session"
	"github.com/rtmphub/rtmphub/session/sessiontest"
)

// bigFrame is a 10 kB video frame, a keyframe every 10.
func bigFrame(i int) []byte {
	b := make([]byte, 10_000)
	b[0], b[1] = 0x27, 1
	if i%10 == 0 {
		b[0] = 0x17
	}
	return b
}

func TestBandwidthLimitIn(t *testing.T) {
	base, _, _ := startServer(t, session.Config{ClientBandwidthIn: 100_000})
	p := publish(t, base, "in")
	start := time.Now()
	for i := range 30 { // 300 kB: about 3 s at 100 kB/s
		p.Send(t, message.TypeVideo, uint32(i*40), bigFrame(i))
	}
	// The reply comes once the server has read everything before it.
	if _, err := p.C.CreateStream(sessiontest.Ctx(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 2*time.Second || d > 6*time.Second {
		t.Errorf("300 kB at 100 kB/s read in %v", d)
	}
}

func TestBandwidthLimitOut(t *testing.T) {
	base, _, _ := startServer(t, session.Config{ClientBandwidthOut: 100_000})
	p := publish(t, base, "out")
	pl, id := sessiontest.Play(t, base+"/live", "out")
	start := time.Now()
	for i := range 30 {
		p.Send(t, message.TypeVideo, uint32(i*40), bigFrame(i))
	}
	got := 0
	for got < 30 {
		m := sessiontest.NextMedia(t, pl, id)
		if m.Type == message.TypeVideo && len(m.Payload) == 10_000 {
			got++
		}
	}
	if d := time.Since(start); d < 2*time.Second || d > 6*time.Second {
		t.Errorf("300 kB at 100 kB/s delivered in %v", d)
	}
}
