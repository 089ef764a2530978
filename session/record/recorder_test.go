package record

import (
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/rtmphub/rtmphub/rtmp/amf"
	"github.com/rtmphub/rtmphub/rtmp/message"
	"github.com/rtmphub/rtmphub/session/live"
	"github.com/rtmphub/rtmphub/session/vod"
)

// tagLog is a disk that keeps what is written; block holds every write
// until it is closed.
type tagLog struct {
	mu     sync.Mutex
	tags   []string
	closed bool
	block  chan struct{}
}

func (l *tagLog) WriteTag(typ message.Type, ts uint32, data []byte) error {
	if l.block != nil {
		<-l.block
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.tags = append(l.tags, fmt.Sprintf("%d@%d#%d", typ, ts, data[len(data)-1]))
	return nil
}

func (l *tagLog) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	return nil
}

type statuses struct {
	mu    sync.Mutex
	codes []string
	told  chan string
}

func (s *statuses) add(level, code, desc string) {
	s.mu.Lock()
	s.codes = append(s.codes, code)
	s.mu.Unlock()
	s.told <- code
}

// await waits for the next status.
func (s *statuses) await(t *testing.T) string {
	t.Helper()
	select {
	case code := <-s.told:
		return code
	case <-time.After(10 * time.Second):
		t.Fatal("no status in 10 s")
		return ""
	}
}

func (s *statuses) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return fmt.Sprint(s.codes)
}

type source struct{}

func (source) Log() *slog.Logger                { return slog.New(slog.DiscardHandler) }
func (source) Evict(live.Source, time.Duration) {}

func setup(t *testing.T, queueBytes int, disk *tagLog) (*live.Stream, *live.Publication, Config, *statuses) {
	t.Helper()
	cfg := live.Config{Takeover: time.Second, GOPCacheMaxBytes: 1 << 20}
	st := live.New("cam", live.Options{Config: &cfg})
	p, err := st.Publish(source{}, live.PublishOptions{Type: "record"})
	if err != nil {
		t.Fatal(err)
	}
	sts := statuses{told: make(chan string, 8)}
	rc := Config{Store: vod.New(vod.Config{DataDir: t.TempDir()}), App: "live", Instance: "_definst_", Name: "cam",
		QueueBytes: queueBytes, Status: sts.add, Log: slog.New(slog.DiscardHandler),
		Open: func(string, bool, bool, bool, amf.ECMAArray) (vod.TagWriter, error) { return disk, nil }}
	return st, p, rc, &sts
}

func write(p *live.Publication, typ message.Type, ts uint32, payload ...byte) {
	p.Write(&message.Message{Type: typ, Timestamp: ts, Payload: payload})
}

// A recorder started mid-stream gets the sequence header first and its
// video from the next keyframe, on a timeline of its own.
func TestRecorderReadsTheStreamFromTheNextKeyframe(t *testing.T) {
	disk := &tagLog{}
	st, p, rc, sts := setup(t, 1<<20, disk)
	write(p, message.TypeVideo, 1000, 0x17, 0, 0, 0, 0, 1) // sequence header
	write(p, message.TypeVideo, 1000, 0x17, 1, 0, 0, 0, 2) // cached keyframe: not recorded
	write(p, message.TypeVideo, 1040, 0x27, 1, 0, 0, 0, 3)

	r := Start(st, rc)
	write(p, message.TypeVideo, 1080, 0x27, 1, 0, 0, 0, 4) // before a keyframe: not recorded
	write(p, message.TypeVideo, 2000, 0x17, 1, 0, 0, 0, 5)
	write(p, message.TypeAudio, 2020, 0xaf, 1, 6)
	write(p, message.TypeVideo, 2040, 0x27, 1, 0, 0, 0, 7)
	r.Stop(true)

	disk.mu.Lock()
	got := fmt.Sprint(disk.tags)
	disk.mu.Unlock()
	if want := "[9@0#1 9@0#5 8@20#6 9@40#7]"; got != want {
		t.Fatalf("recorded %s, want %s", got, want)
	}
	if !disk.closed {
		t.Fatal("the file was not closed")
	}
	if want := "[NetStream.Record.Start NetStream.Record.Stop]"; sts.String() != want {
		t.Fatalf("statuses %s, want %s", sts, want)
	}
	write(p, message.TypeVideo, 2060, 0x17, 1, 0, 0, 0, 8)
	if len(disk.tags) != 4 {
		t.Fatal("a stopped recorder still reads the stream")
	}
}

// A disk that cannot keep up fails the recording as a whole; the stream
// and its other readers go on.
func TestRecorderFailsWhenTheDiskFallsBehind(t *testing.T) {
	disk := &tagLog{block: make(chan struct{})}
	st, p, rc, sts := setup(t, 4*(recordOverhead+100), disk)
	r := Start(st, rc)
	if code := sts.await(t); code != "NetStream.Record.Start" {
		t.Fatalf("first status %s", code)
	}
	frame := make([]byte, 100)
	frame[0], frame[1] = 0x17, 1
	for i := range 20 {
		write(p, message.TypeVideo, uint32(i*40), frame...)
	}
	close(disk.block)
	r.Stop(true)
	if !r.Failed() {
		t.Fatal("the recording did not fail with 20 frames queued for a bound of 4")
	}
	if want := "[NetStream.Record.Start NetStream.Record.Failed]"; sts.String() != want {
		t.Fatalf("statuses %s, want %s", sts, want)
	}
	if p.Stream().Snapshot().Publication != p {
		t.Fatal("the publication ended with its recording")
	}
}
