package session

import (
	"io"
	"log/slog"
	"testing"

	"github.com/rtmphub/rtmphub/rtmp/message"
)

func TestQueueBoundsInMessagesAndBytes(t *testing.T) {
	srv := NewServer(Config{DataDir: t.TempDir(), PlayerQueue: 4, PlayerQueueBytes: 1000}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	c := newClient(srv, newDiscardTransport(), ConnInfo{Protocol: "rtmp"}, srv.log)
	m := func(n int) message.Message { return message.Message{Type: message.TypeVideo, Payload: make([]byte, n)} }
	cases := []struct {
		name  string
		msg   message.Message
		force bool
		want  bool
	}{
		{"first", m(400), false, true},
		{"second", m(400), false, true},
		{"over the byte bound", m(400), false, false},
		{"small one fits", m(100), false, true},
		{"join burst ignores bounds", m(5000), true, true},
		{"message bound", m(1), false, false},
	}
	for _, tc := range cases {
		if got := c.queueMedia(tc.msg, tc.force); got != tc.want {
			t.Fatalf("%s: queued %v, want %v (queue %d messages, %d bytes)", tc.name, got, tc.want, len(c.out), c.outBytes)
		}
	}
	c.signal()
	c.writers.Wait()
	if c.outBytes != 0 || len(c.out) != 0 {
		t.Fatalf("after a drain: %d messages, %d bytes", len(c.out), c.outBytes)
	}
	if !c.queueMedia(m(900), false) {
		t.Fatal("an emptied queue refused a message")
	}
}
