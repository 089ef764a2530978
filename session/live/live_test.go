package live

import (
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/rtmphub/rtmphub/rtmp/message"
)

// countingReader is a reader that is not an RTMP client: it counts what it
// gets, and holds at most room media packets until it is drained.
type countingReader struct {
	room   int
	queued int // media packets held, not yet drained
	got    []got

	mu      sync.Mutex // Flush and the grace timer's Notify run on timer goroutines
	flushes int
	flushAt []time.Time // when each Flush came
	events  []Event

	// When set, flushed and notified get a value per Flush and Notify, so
	// that a test in a synctest bubble can wait for one on the fake clock.
	flushed  chan struct{}
	notified chan Event
}

func (r *countingReader) flushCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.flushes
}

func (r *countingReader) eventList() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Event(nil), r.events...)
}

type got struct {
	kind string // "meta", "vseq", "aseq", "key", "inter", "audio", "data"
	ts   uint32
	n    byte // the frame number written in the payload
}

func kind(p *Packet) string {
	switch {
	case p.Type == message.TypeDataAMF0:
		if len(p.Payload) > 3 && string(p.Payload[3:13]) == "onMetaData" {
			return "meta"
		}
		return "data"
	case p.Video && p.Seq:
		return "vseq"
	case p.Seq:
		return "aseq"
	case p.Video && p.Key:
		return "key"
	case p.Video:
		return "inter"
	}
	return "audio"
}

func (r *countingReader) Send(p *Packet, ts uint32) {
	r.got = append(r.got, got{kind(p), ts, p.Payload[len(p.Payload)-1]})
}

func (r *countingReader) Queue(p *Packet, ts uint32, force bool) bool {
	if !force && r.queued >= r.room {
		return false
	}
	r.queued++
	r.got = append(r.got, got{kind(p), ts, p.Payload[len(p.Payload)-1]})
	return true
}

func (r *countingReader) Flush() {
	r.mu.Lock()
	r.flushes++
	r.flushAt = append(r.flushAt, time.Now())
	r.mu.Unlock()
	select {
	case r.flushed <- struct{}{}:
	default:
	}
}

func (r *countingReader) Notify(ev Event) {
	r.mu.Lock()
	r.events = append(r.events, ev)
	r.mu.Unlock()
	select {
	case r.notified <- ev:
	default:
	}
}

func (r *countingReader) kinds() string {
	s := ""
	for _, g := range r.got {
		s += fmt.Sprintf("%s%d ", g.kind, g.n)
	}
	return s
}

// source is a test publisher.
type source struct {
	evicted atomic.Bool
}

func (s *source) Log() *slog.Logger                   { return slog.New(slog.DiscardHandler) }
func (s *source) Evict(by Source, idle time.Duration) { s.evicted.Store(true) }

var (
	onMetaData = []byte{2, 0, 10, 'o', 'n', 'M', 'e', 't', 'a', 'D', 'a', 't', 'a', 3, 0, 0, 9}
	setData    = append([]byte{2, 0, 13, '@', 's', 'e', 't', 'D', 'a', 't', 'a', 'F', 'r', 'a', 'm', 'e'}, onMetaData...)
)

// frames write a stream's messages, numbering each in its last byte.
type frames struct {
	p  *Publication
	ts uint32
	n  byte
}

func (f *frames) write(typ message.Type, payload ...byte) {
	f.n++
	b := append(payload, f.n)
	f.p.Write(&message.Message{Type: typ, Timestamp: f.ts, Payload: b})
	f.ts += 20
}

func (f *frames) key()   { f.write(message.TypeVideo, 0x17, 1, 0, 0, 0) }
func (f *frames) inter() { f.write(message.TypeVideo, 0x27, 1, 0, 0, 0) }
func (f *frames) audio() { f.write(message.TypeAudio, 0xaf, 1) }
func (f *frames) headers() {
	f.p.Write(&message.Message{Type: message.TypeDataAMF0, Payload: setData})
	f.write(message.TypeVideo, 0x17, 0, 0, 0, 0)
	f.write(message.TypeAudio, 0xaf, 0)
}

func newStream(cfg Config) (*Stream, *atomic.Uint64) {
	var dropped atomic.Uint64
	if cfg.GOPCacheMaxBytes == 0 {
		cfg.GOPCacheMaxBytes = 1 << 20
	}
	return New("cam", Options{Config: &cfg, Dropped: &dropped}), &dropped
}

func TestReaderGetsTheJoinBurstAndEveryFrame(t *testing.T) {
	st, _ := newStream(Config{Takeover: time.Second})
	p, err := st.Publish(&source{}, PublishOptions{Type: "live"})
	if err != nil {
		t.Fatal(err)
	}
	f := &frames{p: p, ts: 1000}
	f.headers() // frames 1 (video header), 2 (audio header); metadata is not numbered
	f.key()     // 3
	f.audio()   // 4
	f.inter()   // 5

	r := &countingReader{room: 100}
	var order []string
	st.AddReader(r, ReaderOptions{Prelude: func() { order = append(order, fmt.Sprintf("prelude after %d", len(r.got))) }})
	if want := "meta9 vseq1 aseq2 key3 audio4 inter5 "; r.kinds() != want {
		t.Fatalf("join burst: %q, want %q", r.kinds(), want)
	}
	if order[0] != "prelude after 0" {
		t.Fatalf("the prelude ran %s packets into the burst, want before it", order[0])
	}
	if r.got[3].ts != 0 || r.got[5].ts != 40 {
		t.Fatalf("the reader's timeline starts at its first keyframe: key at %d, inter at %d", r.got[3].ts, r.got[5].ts)
	}
	if r.flushCount() != 1 {
		t.Fatalf("join burst flushed %d times, want once", r.flushCount())
	}
	for range 10 {
		f.inter()
		f.audio()
	}
	if len(r.got) != 6+20 {
		t.Fatalf("got %d packets after the burst, want every one of 20", len(r.got)-6)
	}
	for i := 6; i < len(r.got); i++ {
		if r.got[i].n != r.got[i-1].n+1 {
			t.Fatalf("frame %d followed by %d", r.got[i-1].n, r.got[i].n)
		}
	}
}

func TestSlowReaderSkipsToTheNextKeyframe(t *testing.T) {
	st, dropped := newStream(Config{Takeover: time.Second})
	p, _ := st.Publish(&source{}, PublishOptions{Type: "live"})
	f := &frames{p: p}
	f.headers()
	f.key() // 3

	slow := &countingReader{room: 3}
	fast := &countingReader{room: 1000}
	st.AddReader(slow, ReaderOptions{})
	st.AddReader(fast, ReaderOptions{})
	f.inter()       // 4
	f.inter()       // 5: the slow reader is full now (key3, inter4, inter5)
	f.inter()       // 6: refused
	f.audio()       // 7: skipped, waiting for a keyframe
	slow.queued = 0 // the reader drained its queue
	f.inter()       // 8: still skipped: a decoder needs the keyframe
	f.key()         // 9: taken
	f.inter()       // 10

	if want := "meta9 vseq1 aseq2 key3 inter4 inter5 key9 inter10 "; slow.kinds() != want {
		t.Fatalf("slow reader got %q, want %q", slow.kinds(), want)
	}
	if got := dropped.Load(); got != 3 {
		t.Fatalf("dropped counter %d, want 3 (frames 6, 7, 8)", got)
	}
	if len(fast.got) != 11 {
		t.Fatalf("a fast reader beside it got %d packets, want all 11: %q", len(fast.got), fast.kinds())
	}
}

func TestPublisherEventsAndTakeover(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st, _ := newStream(Config{Takeover: time.Second, Grace: 3 * time.Second})
		r := &countingReader{room: 100}
		st.AddReader(r, ReaderOptions{})
		first := &source{}
		p1, err := st.Publish(first, PublishOptions{})
		if err != nil {
			t.Fatal(err)
		}
		f := &frames{p: p1}
		f.key()
		if _, err := st.Publish(&source{}, PublishOptions{}); err == nil {
			t.Fatal("a second publisher took over a publisher that is not silent")
		}
		time.Sleep(2 * time.Second) // virtual: the publisher falls silent
		p2, err := st.Publish(&source{}, PublishOptions{})
		if err != nil || !first.evicted.Load() || !p2.TookOver() {
			t.Fatalf("takeover of a silent publisher: err %v, evicted %v", err, first.evicted.Load())
		}
		f.key() // the old publication's writes are ignored now
		(&frames{p: p2}).key()
		if want := "key1 key1 "; r.kinds() != want {
			t.Fatalf("reader got %q, want %q", r.kinds(), want)
		}
		if r.got[1].ts != 1 {
			t.Fatalf("the new publisher's first frame at %d, want 1: one timeline across publishers", r.got[1].ts)
		}
		r.notified = make(chan Event, 4)
		p2.Close(false) // vanished: the stream waits for it
		if len(r.eventList()) != 1 || st.Unused() {
			t.Fatalf("events %v right after a publisher vanished, unused %v", r.eventList(), st.Unused())
		}
		vanished := time.Now()
		if ev := <-r.notified; ev != Unpublished || time.Since(vanished) != 3*time.Second {
			t.Fatalf("event %v %v after the publisher vanished, want Unpublished after the 3 s grace", ev, time.Since(vanished))
		}
		if want := []Event{Published, Unpublished}; fmt.Sprint(r.eventList()) != fmt.Sprint(want) {
			t.Fatalf("events %v, want %v", r.eventList(), want)
		}
		if st.Live() {
			t.Fatal("live after the grace period")
		}
	})
}

func TestPinnedPublicationsNeitherTakeOverNorAreTakenOver(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st, _ := newStream(Config{Takeover: time.Second})
		server := &source{}
		if _, err := st.Publish(server, PublishOptions{Pinned: true}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Second)
		if _, err := st.Publish(&source{}, PublishOptions{}); err == nil || server.evicted.Load() {
			t.Fatal("a client took over a pinned publication")
		}
	})
}

func TestWriteMergeHoldsAudioForTheNextVideo(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st, _ := newStream(Config{Takeover: time.Second, WriteMerge: 50 * time.Millisecond})
		p, _ := st.Publish(&source{}, PublishOptions{})
		r := &countingReader{room: 100}
		st.AddReader(r, ReaderOptions{})
		f := &frames{p: p}
		f.key()
		flushes := r.flushCount()
		f.audio()
		if r.flushCount() != flushes {
			t.Fatal("audio was flushed at once, not merged with the next video")
		}
		f.inter()
		if r.flushCount() != flushes+1 {
			t.Fatalf("video flushed %d times, want once with the audio before it", r.flushCount()-flushes)
		}
		r.flushed = make(chan struct{}, 1)
		f.audio()
		queued := time.Now()
		<-r.flushed
		if r.flushCount() != flushes+2 || time.Since(queued) != 50*time.Millisecond {
			t.Fatalf("audio with no video after it flushed after %v, want the 50 ms merge window", time.Since(queued))
		}
	})
}

func TestPauseAndReceiveVideo(t *testing.T) {
	st, _ := newStream(Config{Takeover: time.Second})
	p, _ := st.Publish(&source{}, PublishOptions{})
	f := &frames{p: p}
	r := &countingReader{room: 100}
	sub := st.AddReader(r, ReaderOptions{})
	f.key()   // 1
	f.audio() // 2
	sub.SetPaused(true)
	f.inter()            // 3: paused
	f.key()              // 4: the cache starts here
	f.audio()            // 5
	sub.SetPaused(false) // resumes from the cached keyframe
	sub.SetReceive(false, false)
	f.audio() // 6: no audio
	f.inter() // 7
	if want := "key1 audio2 key4 audio5 inter7 "; r.kinds() != want {
		t.Fatalf("got %q, want %q", r.kinds(), want)
	}
	sub.Close()
	if !st.Unused() == (st.Publication() == nil) {
		t.Fatal("unused while published")
	}
	f.inter()
	if len(r.got) != 5 {
		t.Fatal("a closed subscription got a packet")
	}
}

// TestMergedWriteHoldsMediaForTheWindow: in merged-write mode a reader
// that allows it gets everything of a window in one flush, at most the
// window after the first message waited; a reader that does not (a
// relay, a recorder) still gets every video frame at once; a joining
// reader gets its burst at once.
func TestMergedWriteHoldsMediaForTheWindow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const window = 300 * time.Millisecond
		st, _ := newStream(Config{Takeover: time.Second, WriteMerge: 50 * time.Millisecond, MergedWrite: window})
		p, _ := st.Publish(&source{}, PublishOptions{})
		f := &frames{p: p}
		f.headers()
		f.key()
		merged := &countingReader{room: 100}
		st.AddReader(merged, ReaderOptions{Merge: true})
		if merged.flushCount() != 1 || merged.kinds() != "meta9 vseq1 aseq2 key3 " {
			t.Fatalf("join burst: %d flushes, got %q; want one flush of the headers and the cached keyframe", merged.flushCount(), merged.kinds())
		}
		relay := &countingReader{room: 100}
		st.AddReader(relay, ReaderOptions{})
		relayFlushes := relay.flushCount()

		// 25 fps video with audio between the frames, for over a window.
		start := time.Now()
		for i := range 20 {
			f.audio()
			f.inter()
			if relay.flushCount() != relayFlushes+i+1 {
				t.Fatalf("frame %d: the relay was flushed %d times, want once per video frame", i, relay.flushCount()-relayFlushes)
			}
			time.Sleep(40 * time.Millisecond)
		}
		time.Sleep(time.Second)
		merged.mu.Lock()
		defer merged.mu.Unlock()
		var flushedAt []time.Duration
		for _, at := range merged.flushAt[1:] {
			flushedAt = append(flushedAt, at.Sub(start))
		}
		// The window opens with the first message that waits (at 0) and
		// closes 300 ms later; the next opens at the next frame (320 ms).
		want := []time.Duration{window, 320*time.Millisecond + window, 640*time.Millisecond + window}
		if fmt.Sprint(flushedAt) != fmt.Sprint(want) {
			t.Fatalf("merged reader flushed at %v, want %v", flushedAt, want)
		}
		if len(merged.got) != 4+40 || merged.kinds()[len(merged.kinds())-len(relay.kinds()):] != relay.kinds() {
			t.Fatalf("merged reader got %d messages (%q), want the 4 of its join and all 40 sent, as the relay got them", len(merged.got), merged.kinds())
		}

		// Audio with no video after it: the relay's waits the write-merge
		// window (50 ms), the merging reader's its own window.
		merged.mu.Unlock()
		f.audio()
		queued := time.Now()
		time.Sleep(time.Second)
		merged.mu.Lock()
		relay.mu.Lock()
		defer relay.mu.Unlock()
		if at := relay.flushAt[len(relay.flushAt)-1].Sub(queued); at != 50*time.Millisecond {
			t.Errorf("the relay's last audio left after %v, want the 50 ms write-merge window", at)
		}
		if at := merged.flushAt[len(merged.flushAt)-1].Sub(queued); at != window {
			t.Errorf("the merging reader's last audio left after %v, want the %v window", at, window)
		}
	})
}

// TestMergedWriteOffByDefault: a reader that allows merging is flushed
// per video frame when the stream has no merged-write window.
func TestMergedWriteOffByDefault(t *testing.T) {
	st, _ := newStream(Config{Takeover: time.Second, WriteMerge: 50 * time.Millisecond})
	p, _ := st.Publish(&source{}, PublishOptions{})
	f := &frames{p: p}
	f.key()
	r := &countingReader{room: 100}
	st.AddReader(r, ReaderOptions{Merge: true})
	flushes := r.flushCount()
	for range 5 {
		f.audio()
		f.inter()
	}
	if r.flushCount() != flushes+5 {
		t.Fatalf("flushed %d times for 5 video frames, want 5", r.flushCount()-flushes)
	}
}

// TestUnpublishFlushesWaitingMedia: media waiting for a merge window is
// flushed before readers hear that the stream ended (an HTTP-FLV viewer
// ends its body then, and would lose it).
func TestUnpublishFlushesWaitingMedia(t *testing.T) {
	for _, cfg := range []Config{
		{Takeover: time.Second, WriteMerge: 50 * time.Millisecond, MergedWrite: time.Hour},
		{Takeover: time.Second, WriteMerge: time.Hour},
	} {
		st, _ := newStream(cfg)
		p, _ := st.Publish(&source{}, PublishOptions{})
		f := &frames{p: p}
		f.key()
		r := &notingReader{countingReader: countingReader{room: 100}}
		st.AddReader(r, ReaderOptions{Merge: true})
		f.audio()
		p.Close(true)
		if got := fmt.Sprint(r.log); got != "[flush unpublished]" {
			t.Errorf("merged write %v, write merge %v: reader heard %s after the join, want the waiting media flushed first", cfg.MergedWrite, cfg.WriteMerge, got)
		}
	}
}

// notingReader notes Flush and Notify after its join, in order.
type notingReader struct {
	countingReader
	joined bool
	log    []string
}

func (r *notingReader) Flush() {
	if r.joined {
		r.log = append(r.log, "flush")
	}
	r.joined = true
}

func (r *notingReader) Notify(ev Event) {
	if ev == Unpublished {
		r.log = append(r.log, "unpublished")
	}
}
