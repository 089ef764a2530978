package httpflv

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/rtmphub/rtmphub/flv"
	"github.com/rtmphub/rtmphub/rtmp/message"
	"github.com/rtmphub/rtmphub/session/live"
	"github.com/rtmphub/rtmphub/session/outqueue"
)

type source struct{}

func (source) Log() *slog.Logger                     { return nil }
func (source) Evict(by live.Source, _ time.Duration) {}

// stingySink is a socket that takes a random part of each non-blocking
// write, and everything of a blocking one, recording the byte stream.
type stingySink struct {
	mu      sync.Mutex
	out     bytes.Buffer
	rnd     *rand.Rand
	partial int // non-blocking writes that took less than asked
	inline  int // non-blocking writes
}

func (s *stingySink) WriteFLV(p []byte, _ time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.out.Write(p)
	return nil
}

func (s *stingySink) TryWritev(bufs [][]byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.inline++
	total := 0
	for _, b := range bufs {
		total += len(b)
	}
	n := total
	if s.rnd.IntN(3) == 0 {
		n = s.rnd.IntN(total + 1)
		s.partial++
	}
	left := n
	for _, b := range bufs {
		k := min(left, len(b))
		s.out.Write(b[:k])
		left -= k
	}
	return n, nil
}

func (s *stingySink) bytes() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return bytes.Clone(s.out.Bytes())
}

// TestInlineWritesKeepTheStreamWhole: the publisher's goroutine writes a
// viewer's tags itself; a socket that takes only part of a write leaves
// the rest to the viewer's goroutine, and the viewer still gets every tag,
// whole and in order.
func TestInlineWritesKeepTheStreamWhole(t *testing.T) {
	st := live.New("s", live.Options{Config: &live.Config{}, MaybeUnused: func(*live.Stream) {}})
	pub, err := st.Publish(source{}, live.PublishOptions{Type: "live"})
	if err != nil {
		t.Fatal(err)
	}
	pub.Write(&message.Message{Type: message.TypeVideo, Payload: []byte{0x17, 0, 0, 0, 0, 1, 2, 3}})
	sink := &stingySink{rnd: rand.New(rand.NewPCG(1, 2))}
	v := New(outqueue.Limits{Media: 100000, MediaBytes: 1 << 30, Hard: 1024}, 10*time.Second, sink, nil)
	sub := st.AddReader(v, live.ReaderOptions{})
	defer sub.Close()

	const frames = 3000
	for i := range frames {
		p := make([]byte, 5+rand.IntN(3000))
		p[0] = 0x27
		if i%50 == 0 {
			p[0] = 0x17
		}
		p[1] = 1
		p[2], p[3] = byte(i), byte(i>>8)
		pub.Write(&message.Message{Type: message.TypeVideo, Timestamp: uint32(i * 40), Payload: p})
		if i%7 == 0 {
			time.Sleep(100 * time.Microsecond) // let the viewer's goroutine take some
		}
	}
	want := 1 + frames // the sequence header, then every frame (nothing is skipped: the queue is large)
	deadline := time.Now().Add(10 * time.Second)
	var tags []flv.Tag
	for {
		tags = readTags(t, sink.bytes())
		if len(tags) >= want || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	v.Stop(errors.New("test over"))
	if len(tags) != want {
		t.Fatalf("%d tags, want %d", len(tags), want)
	}
	for i, tg := range tags[1:] {
		if n := int(tg.Data[2]) | int(tg.Data[3])<<8; n != i || tg.Timestamp != uint32(i*40) {
			t.Fatalf("tag %d carries frame %d at %d", i, n, tg.Timestamp)
		}
	}
	if sink.inline == 0 || sink.partial == 0 {
		t.Fatalf("inline writes %d, partial %d: the path under test was not taken", sink.inline, sink.partial)
	}
	t.Logf("%d inline writes, %d partial", sink.inline, sink.partial)
}

// readTags parses an FLV byte stream as far as it is complete.
func readTags(t *testing.T, b []byte) []flv.Tag {
	t.Helper()
	if len(b) < flv.HeaderSize+4 {
		return nil
	}
	if string(b[:3]) != "FLV" {
		t.Fatalf("stream starts %q", b[:3])
	}
	r := bytes.NewReader(b[flv.HeaderSize+4:])
	var tags []flv.Tag
	for {
		var h [flv.TagHeaderSize]byte
		if _, err := io.ReadFull(r, h[:]); err != nil {
			return tags
		}
		n := int(h[1])<<16 | int(h[2])<<8 | int(h[3])
		d := make([]byte, n+4)
		if _, err := io.ReadFull(r, d); errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return tags
		}
		if prev := int(d[n])<<24 | int(d[n+1])<<16 | int(d[n+2])<<8 | int(d[n+3]); prev != n+flv.TagHeaderSize {
			t.Fatalf("tag %d: PreviousTagSize %d, want %d", len(tags), prev, n+flv.TagHeaderSize)
		}
		tags = append(tags, flv.Tag{Type: message.Type(h[0]), Timestamp: uint32(h[4])<<16 | uint32(h[5])<<8 | uint32(h[6]) | uint32(h[7])<<24, Data: d[:n]})
	}
}
