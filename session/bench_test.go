package session

import (
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/rtmphub/rtmphub/rtmp/message"
	"github.com/rtmphub/rtmphub/session/live"
)

// discardTransport accepts writes and counts them; reads block until Close.
type discardTransport struct {
	mu     sync.Mutex
	writes int
	bytes  int
	closed chan struct{}
	once   sync.Once
}

func newDiscardTransport() *discardTransport { return &discardTransport{closed: make(chan struct{})} }

func (d *discardTransport) ReadMessage() (*message.Message, error) {
	<-d.closed
	return nil, io.EOF
}

func (d *discardTransport) WriteMessages(msgs []message.Message) error {
	d.mu.Lock()
	d.writes++
	for i := range msgs {
		d.bytes += len(msgs[i].Payload)
	}
	d.mu.Unlock()
	return nil
}

func (d *discardTransport) SetReadDeadline(time.Time) error { return nil }
func (d *discardTransport) SetWriteTimeout(time.Duration)   {}
func (d *discardTransport) Close() error {
	d.once.Do(func() { close(d.closed) })
	return nil
}
func (d *discardTransport) RemoteAddr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)} }
func (d *discardTransport) BytesRead() uint64    { return 0 }
func (d *discardTransport) BytesWritten() uint64 { return 0 }

// inlineTransport is a discardTransport that also writes inline, as
// rtmp.Conn does when the socket has room: the publisher's goroutine
// writes to every player itself (Client.writeNow), with no drain
// goroutine.
type inlineTransport struct{ *discardTransport }

func (t inlineTransport) TryWriteMessages(msgs []message.Message) (taken, more bool, err error) {
	return true, false, t.WriteMessages(msgs)
}

// BenchmarkFanout measures the core's cost of handing one message of a live
// stream to N players (queueing, waking writers, batching), without the
// cost of the transport: one op is one message delivered to every player.
func BenchmarkFanout(b *testing.B) {
	for _, bc := range []struct {
		name string
		n    int
		tr   func() Transport
	}{
		{"100players", 100, func() Transport { return newDiscardTransport() }},
		{"1000players", 1000, func() Transport { return newDiscardTransport() }},
		{"1000players-inline", 1000, func() Transport { return inlineTransport{newDiscardTransport()} }},
	} {
		n := bc.n
		b.Run(bc.name, func(b *testing.B) {
			srv := NewServer(Config{DataDir: b.TempDir()}, slog.New(slog.NewTextHandler(io.Discard, nil)))
			in := srv.instance("live", "_definst_")
			var st *live.Stream
			in.withStream("bench", func(s *live.Stream) { st = s })
			pubClient := newClient(srv, newDiscardTransport(), ConnInfo{Protocol: "rtmp"}, srv.log)
			pub, err := st.Publish(&publisher{c: pubClient, msid: 1, name: "bench"}, live.PublishOptions{Type: "live"})
			if err != nil {
				b.Fatal(err)
			}
			players := make([]*Client, n)
			for i := range players {
				c := newClient(srv, bc.tr(), ConnInfo{Protocol: "rtmp"}, srv.log)
				c.playLive(st, 1, true, nil)
				players[i] = c
			}
			video := make([]byte, 724)
			video[0], video[1] = 0x27, 1
			key := make([]byte, 3624)
			key[0], key[1] = 0x17, 1
			audio := []byte{0xaf, 1, 2, 3, 4, 5}
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				m := message.Message{Type: message.TypeAudio, StreamID: 1, Timestamp: uint32(i * 20), Payload: audio}
				if i%3 != 0 {
					m.Type, m.Payload = message.TypeVideo, video
					if i%75 == 1 {
						m.Payload = key
					}
				}
				pub.Write(&m)
			}
			b.StopTimer()
			for _, c := range players {
				c.writers.Wait()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/player-msg")
		})
	}
}
