package vod

import (
	"bytes"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/rtmphub/rtmphub/rtmp/amf"
	"github.com/rtmphub/rtmphub/rtmp/message"
)

// The player's tests run in a synctest bubble: its pacing is on the
// bubble's clock, so a test checks when each message left to the
// millisecond, and a sleep only moves that clock.

// fakeOutput records what a Player sends, in order, with when it was sent.
type fakeOutput struct {
	start  time.Time
	buffer time.Duration

	mu     sync.Mutex
	events []event
	added  chan struct{} // capacity 1: an event was added
}

// event is one thing sent: media (and onMetaData) as msg, everything else
// summed up in what.
type event struct {
	at    time.Duration // since the player started
	what  string        // "StreamBegin", "NetStream.Play.Start a", "onPlayStatus NetStream.Play.Complete"...; "" for media
	desc  string        // a status's description
	props amf.Object    // onPlayStatus's object
	msg   message.Message
}

func newOutput(buffer time.Duration) *fakeOutput {
	return &fakeOutput{start: time.Now(), buffer: buffer, added: make(chan struct{}, 1)}
}

func (o *fakeOutput) add(e event) {
	o.mu.Lock()
	defer o.mu.Unlock()
	e.at = time.Since(o.start)
	o.events = append(o.events, e)
	select {
	case o.added <- struct{}{}:
	default:
	}
}

// waitFor waits, on the bubble's clock, until what has been sent, and
// then until the player is idle; a minute of fake time without it fails
// the test.
func (o *fakeOutput) waitFor(t *testing.T, what string) {
	t.Helper()
	deadline := time.After(time.Minute)
	for {
		if index(o.snapshot(), 0, what) >= 0 {
			synctest.Wait()
			return
		}
		select {
		case <-o.added:
		case <-deadline:
			t.Fatalf("no %q in a minute; sent: %v", what, sequence(o.snapshot()))
		}
	}
}

func (o *fakeOutput) SendWait(msgs []message.Message, limit int, stop <-chan struct{}) bool {
	for _, m := range msgs {
		o.add(event{msg: m})
	}
	return true
}

func (o *fakeOutput) Status(level, code, desc, details string) {
	o.add(event{what: code + " " + details, desc: desc})
}

func (o *fakeOutput) Data(vals ...any) {
	what := fmt.Sprint(vals[0])
	if obj, ok := vals[len(vals)-1].(amf.Object); ok {
		for _, p := range obj {
			if p.Key == "code" {
				what += " " + fmt.Sprint(p.Value)
			}
		}
		o.add(event{what: what, props: obj})
		return
	}
	o.add(event{what: what})
}

func (o *fakeOutput) Control(ev message.UserControlEvent) { o.add(event{what: ev.String()}) }

func (o *fakeOutput) BufferLength() time.Duration { return o.buffer }

// snapshot returns the events so far.
func (o *fakeOutput) snapshot() []event {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.events)
}

// sequence is what was sent, each run of media as one "media".
func sequence(evs []event) []string {
	var seq []string
	for _, e := range evs {
		what := e.what
		if what == "" {
			what = "media"
			if len(seq) > 0 && seq[len(seq)-1] == what {
				continue
			}
		}
		seq = append(seq, what)
	}
	return seq
}

// sent is a media message as the tests expect it: type, timestamp and
// when it left.
type sent struct {
	typ message.Type
	ts  uint32
	at  time.Duration
}

// media returns the media events from evs[from:] up to the next other one
// at or after it.
func media(evs []event, from int) []sent {
	var out []sent
	for _, e := range evs[from:] {
		if e.what != "" {
			break
		}
		out = append(out, sent{e.msg.Type, e.msg.Timestamp, e.at})
	}
	return out
}

// index is where what is in evs, from from on; -1 when it is not there.
func index(evs []event, from int, what string) int {
	for i := from; i < len(evs); i++ {
		if evs[i].what == what {
			return i
		}
	}
	return -1
}

func checkSequence(t *testing.T, evs []event, want ...string) {
	t.Helper()
	if got := sequence(evs); !slices.Equal(got, want) {
		t.Errorf("sent\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

func checkMedia(t *testing.T, what string, got, want []sent) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s: media sent %v, want %v", what, got, want)
	}
}

// lockedBuffer is a log's destination, written by the player's goroutine.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// playerStore returns a Store over a new data dir and a function that
// writes an n-second file there (see writeFLV: tags at 0, 10 and 500 ms
// of each second) and finds it.
func playerStore(t *testing.T) (*Store, func(name string, n int) File) {
	dir := t.TempDir()
	s := New(Config{DataDir: dir, MaxFiles: 8})
	return s, func(name string, n int) File {
		writeFLV(t, filepath.Join(dir, "live", "streams", "_definst_", name+".flv"), n)
		f, err := s.Find("live", "_definst_", name)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
}

const (
	meta  = message.TypeDataAMF0
	video = message.TypeVideo
	audio = message.TypeAudio
)

// A file plays to its end: the statuses of a fresh start, onMetaData and
// the tags ahead of real time by the buffer length (less the 40 ms tick),
// then Play.Complete, Play.Stop and StreamEOF.
func TestPlayerPlaysToTheEnd(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, file := playerStore(t)
		f := file("a", 3)
		var logs lockedBuffer
		out := newOutput(time.Second)
		p := s.Play(out, &Item{Name: "a", File: f, Length: -1, Reset: true},
			PlayOptions{StreamID: 1, Log: slog.New(slog.NewTextHandler(&logs, nil))})
		defer p.Close()
		out.waitFor(t, "NetStream.Play.Stop a")

		evs := out.snapshot()
		checkSequence(t, evs, "StreamIsRecorded", "StreamBegin", "NetStream.Play.Reset a", "NetStream.Play.Start a",
			"|RtmpSampleAccess", "onStatus NetStream.Data.Start", "media",
			"onPlayStatus NetStream.Play.Complete", "NetStream.Play.Stop a", "StreamEOF")
		due := func(ts uint32) time.Duration { return max(0, time.Duration(ts)*time.Millisecond-time.Second-tick) }
		var want []sent
		for _, m := range []struct {
			typ message.Type
			ts  uint32
		}{{meta, 0}, {video, 0}, {audio, 0}, {video, 0}, {audio, 10}, {video, 500},
			{video, 1000}, {audio, 1010}, {video, 1500}, {video, 2000}, {audio, 2010}, {video, 2500}} {
			want = append(want, sent{m.typ, m.ts, due(m.ts)})
		}
		checkMedia(t, "play", media(evs, index(evs, 0, "onStatus NetStream.Data.Start")+1), want)
		for _, e := range evs {
			if e.what == "" && e.msg.StreamID != 1 {
				t.Errorf("media message %v on stream %d, want 1", e.msg.Type, e.msg.StreamID)
			}
		}
		if i := index(evs, 0, "onPlayStatus NetStream.Play.Complete"); i >= 0 {
			if d, _ := evs[i].props[2].Value.(float64); evs[i].props[2].Key != "duration" || d < 2.5 || d > 3.1 {
				t.Errorf("Play.Complete %v: want the duration of the file", evs[i].props)
			}
		}
		if !strings.Contains(logs.String(), `msg="vod complete" stream=a frames=6`) {
			t.Errorf("log has no vod complete line with 6 frames:\n%s", logs.String())
		}
	})
}

// A seek while playing drops what was read ahead, restarts the stream
// at the keyframe (StreamEOF, StreamBegin, Seek.Notify, Play.Start,
// onMetaData and the sequence headers) and paces from there.
func TestPlayerSeek(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, file := playerStore(t)
		f := file("a", 3)
		out := newOutput(100 * time.Millisecond)
		p := s.Play(out, &Item{Name: "a", File: f, Length: -1}, PlayOptions{StreamID: 1})
		defer p.Close()
		time.Sleep(300 * time.Millisecond) // the frame at 500 ms is due at 360 ms
		p.SeekTo(2100)
		out.waitFor(t, "NetStream.Play.Stop a")

		evs := out.snapshot()
		checkSequence(t, evs, "StreamIsRecorded", "StreamBegin", "NetStream.Play.Start a",
			"|RtmpSampleAccess", "onStatus NetStream.Data.Start", "media",
			"StreamEOF", "StreamBegin", "NetStream.Seek.Notify a", "NetStream.Play.Start a", "media",
			"onPlayStatus NetStream.Play.Complete", "NetStream.Play.Stop a", "StreamEOF")
		checkMedia(t, "before the seek", media(evs, index(evs, 0, "onStatus NetStream.Data.Start")+1),
			[]sent{{meta, 0, 0}, {video, 0, 0}, {audio, 0, 0}, {video, 0, 0}, {audio, 10, 0}})
		at := 300 * time.Millisecond
		seek := index(evs, 0, "NetStream.Seek.Notify a")
		if seek >= 0 && evs[seek].desc != "Seeking 2100 (stream ID: 1)." {
			t.Errorf("Seek.Notify says %q", evs[seek].desc)
		}
		checkMedia(t, "after the seek", media(evs, seek+2), []sent{{meta, 2000, at}, {video, 2000, at}, {audio, 2000, at},
			{video, 2000, at}, {audio, 2010, at}, {video, 2500, at + 500*time.Millisecond - 100*time.Millisecond - tick}})
	})
}

// Pause stops the media (Pause.Notify, StreamEOF) and resume (here a
// pause without its flag, which toggles) goes on with the frame that was
// due next, paced from then on.
func TestPlayerPause(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, file := playerStore(t)
		f := file("a", 3)
		out := newOutput(100 * time.Millisecond)
		p := s.Play(out, &Item{Name: "a", File: f, Length: -1}, PlayOptions{StreamID: 1})
		defer p.Close()
		time.Sleep(400 * time.Millisecond)
		p.Pause(true, true)
		time.Sleep(10 * time.Second)
		p.Pause(false, false)
		out.waitFor(t, "NetStream.Play.Stop a")

		evs := out.snapshot()
		checkSequence(t, evs, "StreamIsRecorded", "StreamBegin", "NetStream.Play.Start a",
			"|RtmpSampleAccess", "onStatus NetStream.Data.Start", "media",
			"NetStream.Pause.Notify a", "StreamEOF", "StreamBegin", "NetStream.Unpause.Notify a", "media",
			"onPlayStatus NetStream.Play.Complete", "NetStream.Play.Stop a", "StreamEOF")
		if i := index(evs, 0, "NetStream.Pause.Notify a"); i < 0 || evs[i].at != 400*time.Millisecond {
			t.Errorf("no Pause.Notify at 400 ms: %v", i)
		}
		checkMedia(t, "before the pause", media(evs, index(evs, 0, "onStatus NetStream.Data.Start")+1),
			[]sent{{meta, 0, 0}, {video, 0, 0}, {audio, 0, 0}, {video, 0, 0}, {audio, 10, 0}, {video, 500, 360 * time.Millisecond}})
		at := 10400 * time.Millisecond
		checkMedia(t, "after the pause", media(evs, index(evs, 0, "NetStream.Unpause.Notify a")+1), []sent{
			{video, 1000, at}, {audio, 1010, at}, {video, 1500, at + 360*time.Millisecond},
			{video, 2000, at + 860*time.Millisecond}, {audio, 2010, at + 870*time.Millisecond}, {video, 2500, at + 1360*time.Millisecond}})
	})
}

// A second item played with reset false follows the first: Play.Switch
// and Play.Start instead of the statuses of a fresh start, and its
// timestamps continue where the first file ended.
func TestPlayerPlaylist(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, file := playerStore(t)
		fa, fb := file("a", 1), file("b", 2)
		src, err := s.Open(fa)
		if err != nil {
			t.Fatal(err)
		}
		base := uint32(max(501, src.Info().Duration.Milliseconds())) // after a's last frame, at 500 ms
		src.Close()
		out := newOutput(100 * time.Millisecond)
		p := s.Play(out, &Item{Name: "a", File: fa, Length: -1, Reset: true}, PlayOptions{StreamID: 1})
		defer p.Close()
		p.Add(&Item{Name: "b", File: fb, Length: -1})
		out.waitFor(t, "NetStream.Play.Stop b")

		evs := out.snapshot()
		checkSequence(t, evs, "StreamIsRecorded", "StreamBegin", "NetStream.Play.Reset a", "NetStream.Play.Start a",
			"|RtmpSampleAccess", "onStatus NetStream.Data.Start", "media",
			"onPlayStatus NetStream.Play.Switch", "NetStream.Play.Start b", "media",
			"onPlayStatus NetStream.Play.Complete", "NetStream.Play.Stop b", "StreamEOF")
		var ts []uint32
		for _, m := range media(evs, index(evs, 0, "NetStream.Play.Start b")+1) {
			ts = append(ts, m.ts)
		}
		if want := []uint32{base, base, base, base, base + 10, base + 500, base + 1000, base + 1010, base + 1500}; !slices.Equal(ts, want) {
			t.Errorf("b sent at %v, want %v (a ends at %d)", ts, want, base)
		}
	})
}

// A file that cannot be opened is StreamNotFound, and the player waits
// for the next item.
func TestPlayerNotFound(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, file := playerStore(t)
		f := file("a", 1)
		missing := f
		missing.Real += ".gone"
		out := newOutput(0)
		p := s.Play(out, &Item{Name: "gone", File: missing, Length: -1}, PlayOptions{StreamID: 1, Burst: true})
		defer p.Close()
		synctest.Wait()
		p.Add(&Item{Name: "a", File: f, Length: -1})
		synctest.Wait()
		checkSequence(t, out.snapshot(), "NetStream.Play.StreamNotFound gone",
			"StreamIsRecorded", "StreamBegin", "NetStream.Play.Start a", "|RtmpSampleAccess", "onStatus NetStream.Data.Start", "media",
			"onPlayStatus NetStream.Play.Complete", "NetStream.Play.Stop a", "StreamEOF")
	})
}
