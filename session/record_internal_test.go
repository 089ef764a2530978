package session

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/rtmphub/rtmphub/rtmp/amf"
	"github.com/rtmphub/rtmphub/rtmp/client"
	"github.com/rtmphub/rtmphub/rtmp/message"
	"github.com/rtmphub/rtmphub/session/vod"
)

// slowWriter is a disk that takes delay per tag.
type slowWriter struct {
	delay time.Duration
	mu    sync.Mutex
	tags  int
}

func (w *slowWriter) WriteTag(typ message.Type, ts uint32, data []byte) error {
	time.Sleep(w.delay) // fake time: the test runs in a synctest bubble
	w.mu.Lock()
	w.tags++
	w.mu.Unlock()
	return nil
}

func (w *slowWriter) Close() error { return nil }

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// pipeDialer returns a client dialer that serves each connection with srv
// over net.Pipe until the test ends, for tests in a testing/synctest
// bubble. (This package's own tests cannot use sessiontest, which imports
// it.)
func pipeDialer(t *testing.T, srv *Server) func(context.Context, string) (net.Conn, error) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
	return func(context.Context, string) (net.Conn, error) {
		cc, sc := net.Pipe()
		wg.Go(func() { srv.ServeConn(ctx, sc, ConnInfo{}) })
		return cc, nil
	}
}

// A disk slower than the stream: the recording stops with Record.Failed
// when its queue overflows, and neither the publisher nor a live player
// is held up. The test runs in a synctest bubble: the disk's slowness and
// the player's wait are fake time, which a loaded machine cannot stretch.
func TestRecordSlowDiskOverflowStopsRecordingOnly(t *testing.T) {
	synctest.Test(t, testRecordSlowDisk)
}

func testRecordSlowDisk(t *testing.T) {
	logs := &lockedBuffer{}
	srv := NewServer(Config{DataDir: t.TempDir(), RecordQueueBytes: 64 << 10}, slog.New(slog.NewTextHandler(logs, nil)))
	slow := &slowWriter{delay: 100 * time.Millisecond}
	srv.openWriter = func(string, bool, bool, bool, amf.ECMAArray) (vod.TagWriter, error) { return slow, nil }
	url, opt := "rtmp://pipe/live", client.Options{Dial: pipeDialer(t, srv)}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	player, err := client.Dial(ctx, url, opt)
	if err != nil {
		t.Fatal(err)
	}
	defer player.Close()
	pid, _ := player.CreateStream(ctx)
	if err := player.Play(ctx, pid, "cam", -1000); err != nil {
		t.Fatal(err)
	}
	pub, err := client.Dial(ctx, url, opt)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	id, _ := pub.CreateStream(ctx)
	if err := pub.Publish(ctx, id, "cam", "record"); err != nil {
		t.Fatal(err)
	}
	if _, err := pub.WaitStatus(ctx, id, "NetStream.Record.Start"); err != nil {
		t.Fatal(err)
	}
	frame := make([]byte, 4<<10)
	frame[0], frame[1] = 0x17, 1
	start := time.Now()
	const n = 100 // 400 KB: at 100 ms a tag the disk would need 10 s
	for i := range n {
		if err := pub.WriteMessages([]message.Message{{Type: message.TypeVideo, StreamID: id, Timestamp: uint32(i * 40), Payload: frame}}); err != nil {
			t.Fatal(err)
		}
	}
	got := 0
	for got < n {
		player.SetReadDeadline(time.Now().Add(5 * time.Second))
		m, err := player.ReadMessage()
		if err != nil {
			t.Fatalf("live player got %d of %d frames: %v", got, n, err)
		}
		if m.Type == message.TypeVideo && len(m.Payload) == len(frame) {
			got++
		}
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("live player got the frames after %v: held up by the disk", d)
	}
	if _, err := pub.WaitStatus(ctx, id, "NetStream.Record.Failed"); err != nil {
		t.Fatalf("publisher: %v, want NetStream.Record.Failed", err)
	}
	if !strings.Contains(logs.String(), "record queue overflow") {
		t.Fatalf("no log line about the overflow:\n%s", logs.String())
	}
	slow.mu.Lock()
	written := slow.tags
	slow.mu.Unlock()
	if written >= n {
		t.Fatalf("all %d tags written: no overflow", written)
	}
}
