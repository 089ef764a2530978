package hls

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/gohlslib/v2"

	"github.com/rtmphub/rtmphub/flv"
	"github.com/rtmphub/rtmphub/rtmp/message"
	"github.com/rtmphub/rtmphub/session/live"
)

// segmentLines matches the segments (not gaps) of a media playlist.
var segmentLines = regexp.MustCompile(`(?m)^[0-9a-f]+_\w+_seg\d+\.(mp4|ts)`)

// waitSegments polls the media playlist until it lists n segments.
func (e *env) waitSegments(playlist string, n int) string {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, pl := get(e.t, e.url(playlist), 5*time.Second)
		if code == http.StatusOK && len(segmentLines.FindAllString(pl, -1)) >= n {
			return pl
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("%s: %d, not %d segments in 10s:\n%s", playlist, code, n, pl)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// probed is what ffprobe found of a stream.
type probed struct {
	codec  string
	frames int
}

// ffprobe reads the live playlist from its oldest entry with ffprobe
// -count_frames while done is open; the stream is unpublished once
// ffprobe fetched want segments, so that its reloads get 404 and it ends.
func (e *env) ffprobe(served *segmentCounter, want int) []probed {
	e.t.Helper()
	ffprobe := needTool(e.t, "ffprobe")
	go func() {
		if served.wait(want, 15*time.Second) {
			e.pub.Close(true)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, ffprobe, "-v", "error", "-live_start_index", "0", "-count_frames",
		"-show_entries", "stream=codec_name,nb_read_frames", "-of", "csv=p=0", e.url("index.m3u8"))
	out, err := cmd.Output()
	if ctx.Err() != nil {
		e.t.Fatalf("ffprobe did not end in 20s: %s", out)
	}
	if err != nil {
		e.t.Logf("ffprobe: %v (expected: the stream ended under it)", err)
	}
	var res []probed
	seen := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Split(line, ",")
		if len(f) != 2 || seen[line] {
			continue // ffprobe lists each stream under its program too
		}
		seen[line] = true
		n, _ := strconv.Atoi(f[1])
		res = append(res, probed{f[0], n})
	}
	e.t.Logf("ffprobe: %v", res)
	return res
}

// segmentCounter counts the segments (not parts) the server answered 200.
type segmentCounter struct {
	mu   sync.Mutex
	seen map[string]bool
	c    chan struct{}
}

func newSegmentCounter() *segmentCounter {
	return &segmentCounter{seen: map[string]bool{}, c: make(chan struct{}, 1)}
}

func (s *segmentCounter) add(file string) {
	if !strings.Contains(file, "_seg") {
		return
	}
	s.mu.Lock()
	s.seen[file] = true
	s.mu.Unlock()
	select {
	case s.c <- struct{}{}:
	default:
	}
}

func (s *segmentCounter) wait(n int, timeout time.Duration) bool {
	deadline := time.After(timeout)
	for {
		s.mu.Lock()
		got := len(s.seen)
		s.mu.Unlock()
		if got >= n {
			return true
		}
		select {
		case <-s.c:
		case <-deadline:
			return false
		}
	}
}

// feedAndProbe publishes kind, waits for its complete segments and reads
// them with ffprobe.
func feedAndProbe(t *testing.T, kind string, cfg Config, playlist string, segments, tracks int) ([]probed, *env) {
	tags := testTags(t, kind)
	e := newEnv(t, cfg)
	served := newSegmentCounter()
	e.served = served.add
	res := asyncGet(t, e.url("index.m3u8"), 15*time.Second)
	e.waitMuxer()
	e.feed(tags, 0)
	if r := <-res; r[0] != http.StatusOK {
		t.Fatalf("index.m3u8: %v %v", r[0], r[1])
	}
	e.waitSegments(playlist, segments)
	return e.ffprobe(served, segments*tracks), e
}

func TestFFprobeReadsLowLatencyHLS(t *testing.T) {
	// 6 s at 25 fps with a keyframe a second: 5 complete segments (the
	// last GOP waits for a keyframe that never comes), 125 frames.
	res, e := feedAndProbe(t, "av", Config{}, "video1_stream.m3u8", 5, 2)
	got := map[string]int{}
	for _, p := range res {
		got[p.codec] = p.frames
	}
	if got["h264"] < 120 || got["h264"] > 150 {
		t.Errorf("h264 frames: %d, want about 125 of the 150 fed (%v)", got["h264"], res)
	}
	// 5 s of 44.1 kHz AAC: 215 frames.
	if got["aac"] < 180 {
		t.Errorf("aac frames: %d, want about 215 (%v)", got["aac"], res)
	}
	if s := e.m.Stats(); s.EncodeErrors != 0 || s.BadInput != 0 || s.Instances != 1 {
		t.Errorf("stats %+v", s)
	}
}

func TestAudioOnly(t *testing.T) {
	// 4 s of 48 kHz AAC, no video: the muxer starts after a second of
	// media without a video sequence header.
	res, _ := feedAndProbe(t, "audio", Config{}, "audio1_stream.m3u8", 3, 1)
	if len(res) != 1 || res[0].codec != "aac" || res[0].frames < 130 {
		t.Fatalf("got %v, want aac only with about 140 frames or more", res)
	}
}

func TestVideoOnlyWithBFrames(t *testing.T) {
	// 4 s at 25 fps with B-frames (composition time offsets): gohlslib's
	// first segment starts at the first PTS (80 ms) and so takes two
	// GOPs, 1.92 s; with the next, 2.92 s in 2 complete segments, 73
	// frames.
	res, _ := feedAndProbe(t, "video", Config{}, "video1_stream.m3u8", 2, 1)
	if len(res) != 1 || res[0].codec != "h264" || res[0].frames < 70 || res[0].frames > 100 {
		t.Fatalf("got %v, want h264 only with about 73 frames", res)
	}
}

// lastTags splits tags at a timestamp.
func splitTags(tags []*flv.Tag, ms uint32) (before, after []*flv.Tag) {
	for i, tag := range tags {
		if tag.Timestamp >= ms && tag.Type != message.TypeDataAMF0 {
			return tags[:i], tags[i:]
		}
	}
	return tags, nil
}

// atLiveEdge starts a muxer, feeds it the first 2.5 s of the test clip
// and returns the environment, the rest of the clip and the video
// playlist once it lists a segment. settle lets the muxer take all that
// was fed first, so that the playlist ends where the feed did (the tests
// that ask for the next part need that).
func atLiveEdge(t *testing.T, settle bool) (e *env, tail []*flv.Tag, pl string) {
	t.Helper()
	head, tail := splitTags(testTags(t, "av"), 2500)
	e = newEnv(t, Config{})
	res := asyncGet(t, e.url("index.m3u8"), 15*time.Second)
	e.waitMuxer()
	e.feed(head, 0)
	if r := <-res; r[0] != http.StatusOK {
		t.Fatalf("index.m3u8: %v", r)
	}
	e.waitSegments("video1_stream.m3u8", 1)
	if settle {
		time.Sleep(100 * time.Millisecond) // let the muxer take all of head
	}
	_, pl = get(t, e.url("video1_stream.m3u8"), 5*time.Second)
	return e, tail, pl
}

// nextPart is the part after the last one media playlist pl lists: its
// segment is the one after the last listed (gaps and segments count),
// its index the number of parts listed after the last segment.
func nextPart(t *testing.T, pl string) (msn, part int) {
	t.Helper()
	m := mediaSequence.FindStringSubmatch(pl)
	if m == nil {
		t.Fatalf("no media sequence in\n%s", pl)
	}
	seq, _ := strconv.Atoi(m[1])
	last := pl[strings.LastIndex(pl, "#EXTINF:"):]
	return seq + strings.Count(pl, "#EXTINF:"), strings.Count(last, "#EXT-X-PART:")
}

var (
	mediaSequence = regexp.MustCompile(`#EXT-X-MEDIA-SEQUENCE:(\d+)`)
	preloadURI    = regexp.MustCompile(`#EXT-X-PRELOAD-HINT:TYPE=PART,URI="([^"]+)"`)
)

func TestBlockingReloadAndPreloadHint(t *testing.T) {
	e, tail, pl := atLiveEdge(t, true)
	msn, part := nextPart(t, pl)
	hint := preloadURI.FindStringSubmatch(pl)[1]

	// A client that gives up on a blocking reload leaves a goroutine in
	// gohlslib, which ends with the muxer (the cleanup checks).
	if r := <-asyncGet(t, e.url(fmt.Sprintf("video1_stream.m3u8?_HLS_msn=%d&_HLS_part=0", msn+1)), 100*time.Millisecond); r[0] != 0 {
		t.Fatalf("blocking reload of the next segment answered at once: %v", r)
	}
	blocked := asyncGet(t, e.url(fmt.Sprintf("video1_stream.m3u8?_HLS_msn=%d&_HLS_part=%d", msn, part)), 10*time.Second)
	hinted := asyncGet(t, e.url(hint), 10*time.Second)
	select {
	case r := <-blocked:
		t.Fatalf("_HLS_msn=%d&_HLS_part=%d answered before its part existed: %v\n%s", msn, part, r[0], pl)
	case r := <-hinted:
		t.Fatalf("preload hint %s answered before it existed: %v", hint, r[0])
	case <-time.After(300 * time.Millisecond):
	}
	// A request further ahead than the next segment is refused at once.
	if code, _ := get(t, e.url(fmt.Sprintf("video1_stream.m3u8?_HLS_msn=%d", msn+5)), 2*time.Second); code != http.StatusBadRequest {
		t.Errorf("_HLS_msn far ahead: %d, want 400", code)
	}

	e.feed(tail, 0)
	r := <-blocked
	if r[0] != http.StatusOK {
		t.Fatalf("blocking reload: %v", r)
	}
	body := r[1].(string)
	wantPart := hint[:strings.LastIndex(hint, "_part")] // the same prefix and stream
	if !strings.Contains(body, wantPart) || !strings.Contains(body, hint) {
		t.Errorf("blocking reload lacks the part it waited for, %s:\n%s", hint, body)
	}
	h := <-hinted
	if h[0] != http.StatusOK || len(h[1].(string)) == 0 {
		t.Errorf("preload hint part: %v, %d bytes", h[0], len(h[1].(string)))
	}
	// A part beyond the hint does not exist: 404 at once, not a wait.
	if code, _ := get(t, e.url(strings.Replace(hint, "_part", "_part9", 1)), 2*time.Second); code != http.StatusNotFound {
		t.Errorf("part far beyond the hint: %d, want 404", code)
	}
}

func TestGarbageIsSkipped(t *testing.T) {
	tags := testTags(t, "av")
	e := newEnv(t, Config{SegmentMaxSize: 8 << 20}) // frames over 4 MiB are skipped
	res := asyncGet(t, e.url("index.m3u8"), 15*time.Second)
	e.waitMuxer()

	rnd := rand.New(rand.NewPCG(1, 2))
	junk := func(prefix ...byte) []byte {
		b := append([]byte(nil), prefix...)
		for range rnd.IntN(64) {
			b = append(b, byte(rnd.Uint32()))
		}
		return b
	}
	prefixes := [][]byte{
		{0x17, 0}, {0x17, 1}, {0x27, 1}, {0x1c, 0}, {0x1c, 1}, // AVC and HEVC (id 12)
		{0x90, 'a', 'v', 'c', '1'}, {0x91, 'h', 'v', 'c', '1'}, {0x93, 'h', 'v', 'c', '1'}, // E-RTMP
		{0x17, 0, 0, 0, 0, 1, 0x64}, {0x17, 1, 0, 0, 0, 0, 0, 0, 9}, {},
	}
	ts := uint32(0)
	write := func(typ message.Type, p []byte) {
		e.pub.Write(&message.Message{Type: typ, Timestamp: ts, Payload: p})
	}
	for range 300 {
		write(message.TypeVideo, junk(prefixes[rnd.IntN(len(prefixes))]...))
		write(message.TypeAudio, junk([]byte{0xaf, byte(rnd.IntN(2))}[:1+rnd.IntN(2)]...))
		write(message.TypeAudio, junk(0x90, 'm', 'p', '4', 'a'))
		ts += 10
	}
	// A huge frame, then the real stream, with junk amid it.
	write(message.TypeVideo, append([]byte{0x27, 1, 0, 0, 0}, make([]byte, 17<<20)...))
	// Junk NAL units, correctly framed, of every type (SPS and PPS too).
	nalu := func(key bool) []byte {
		b := []byte{0x27, 1, 0, 0, 0}
		if key {
			b[0] = 0x17
		}
		n := junk(byte(rnd.IntN(32)))
		return append(append(b, 0, 0, 0, byte(len(n))), n...)
	}
	for i, tag := range tags {
		e.pub.Write(&message.Message{Type: tag.Type, Timestamp: tag.Timestamp, Payload: tag.Data})
		switch i % 10 {
		case 5:
			e.pub.Write(&message.Message{Type: message.TypeAudio, Timestamp: tag.Timestamp, Payload: junk(0xaf, 1)})
		case 7:
			e.pub.Write(&message.Message{Type: message.TypeVideo, Timestamp: tag.Timestamp, Payload: nalu(i%20 == 7)})
		}
	}
	if r := <-res; r[0] != http.StatusOK {
		t.Fatalf("index.m3u8 after garbage: %v", r)
	}
	e.waitSegments("video1_stream.m3u8", 3)
	// Junk in-band parameter sets do not spoil the codec description.
	if code, body := get(t, e.url("index.m3u8"), 5*time.Second); code != http.StatusOK || !strings.Contains(body, "RESOLUTION=320x240") {
		t.Errorf("index.m3u8 at the end: %d %s", code, body)
	}
	if s := e.m.Stats(); s.BadInput == 0 {
		t.Errorf("no bad input counted: %+v", s)
	}
	if n := strings.Count(e.logText(), "logged once per muxer"); n == 0 || n > 10 {
		t.Errorf("%d bad-input log lines, want a few", n)
	}
	if !strings.Contains(e.logText(), "frame too large") {
		t.Errorf("the 17 MiB frame was not skipped as too large")
	}
}

func TestIdleMuxerIsClosed(t *testing.T) {
	tags := testTags(t, "av")
	e := newEnv(t, Config{Idle: 300 * time.Millisecond})
	res := asyncGet(t, e.url("index.m3u8"), 15*time.Second)
	e.waitMuxer()
	e.feed(tags, 0)
	if r := <-res; r[0] != http.StatusOK {
		t.Fatalf("index.m3u8: %v", r)
	}
	deadline := time.Now().Add(5 * time.Second)
	for e.m.Stats().Muxers != 0 || len(e.st.Snapshot().Readers) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("idle muxer still there after 5s: %+v, %d readers", e.m.Stats(), len(e.st.Snapshot().Readers))
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The next request attaches a new muxer.
	res = asyncGet(t, e.url("index.m3u8"), 15*time.Second)
	e.waitMuxer()
	if s := e.m.Stats(); s.Created != 2 {
		t.Fatalf("stats after a new request: %+v", s)
	}
	e.feedAt(tags, 0, 7000)
	if r := <-res; r[0] != http.StatusOK {
		t.Fatalf("index.m3u8 of the second muxer: %v", r)
	}
}

func TestUnpublishedStreamIs404(t *testing.T) {
	tags := testTags(t, "av")
	e := newEnv(t, Config{MaxMuxers: 1})
	res := asyncGet(t, e.url("index.m3u8"), 15*time.Second)
	e.waitMuxer()
	e.feed(tags, 0)
	if r := <-res; r[0] != http.StatusOK {
		t.Fatalf("index.m3u8: %v", r)
	}
	// One muxer at most: another stream's request is refused.
	if code, _ := get(t, e.srv.URL+"/hls/live/other/index.m3u8", 5*time.Second); code != http.StatusServiceUnavailable {
		t.Errorf("second muxer over MaxMuxers: %d, want 503", code)
	}
	e.pub.Close(true)
	deadline := time.Now().Add(5 * time.Second)
	for e.m.Stats().Muxers != 0 {
		if time.Now().After(deadline) {
			t.Fatal("muxer of an unpublished stream still there after 5s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if code, _ := get(t, e.url("index.m3u8"), 5*time.Second); code != http.StatusNotFound {
		t.Errorf("index.m3u8 of an unpublished stream: %d, want 404", code)
	}
	if n := len(e.st.Snapshot().Readers); n != 0 {
		t.Errorf("%d readers left on the stream", n)
	}

	// Published again: a request attaches a new muxer.
	pub, err := e.st.Publish(source{}, live.PublishOptions{Type: "live"})
	if err != nil {
		t.Fatal(err)
	}
	e.pub = pub
	res = asyncGet(t, e.url("index.m3u8"), 15*time.Second)
	e.waitMuxer()
	e.feedAt(tags, 0, 7000)
	if r := <-res; r[0] != http.StatusOK {
		t.Fatalf("index.m3u8 after republishing: %v", r)
	}
}

// toLegacyHEVC rewrites E-RTMP hvc1 video tags as legacy FLV tags of codec
// id 12, as some encoders send HEVC.
func toLegacyHEVC(tags []*flv.Tag) []*flv.Tag {
	out := make([]*flv.Tag, 0, len(tags))
	for _, tag := range tags {
		d := tag.Data
		if tag.Type != message.TypeVideo || len(d) < 5 || d[0]&0x80 == 0 {
			out = append(out, tag)
			continue
		}
		ft := (d[0] >> 4) & 0x07
		var b []byte
		switch d[0] & 0x0f {
		case 0: // SequenceStart
			b = append([]byte{ft<<4 | 12, 0, 0, 0, 0}, d[5:]...)
		case 1: // CodedFrames: composition time, then data
			b = append([]byte{ft<<4 | 12, 1}, d[5:]...)
		default:
			continue
		}
		c := *tag
		c.Data = b
		out = append(out, &c)
	}
	return out
}

func TestHEVC(t *testing.T) {
	for _, tc := range []struct {
		name   string
		legacy bool
	}{{"E-RTMP hvc1", false}, {"legacy codec id 12", true}} {
		t.Run(tc.name, func(t *testing.T) {
			tags := testTags(t, "hevc")
			if tc.legacy {
				tags = toLegacyHEVC(tags)
			}
			e := newEnv(t, Config{})
			served := newSegmentCounter()
			e.served = served.add
			res := asyncGet(t, e.url("index.m3u8"), 15*time.Second)
			e.waitMuxer()
			e.feed(tags, 0)
			r := <-res
			if r[0] != http.StatusOK || !strings.Contains(r[1].(string), "hvc1.") {
				t.Fatalf("index.m3u8: %v", r)
			}
			e.waitSegments("video1_stream.m3u8", 2)
			got := map[string]int{}
			for _, p := range e.ffprobe(served, 4) {
				got[p.codec] = p.frames
			}
			// 4 s, a keyframe a second: 2 or 3 complete segments.
			if got["hevc"] < 48 || got["aac"] < 80 {
				t.Errorf("ffprobe: %v, want hevc and aac", got)
			}
			if s := e.m.Stats(); s.BadInput != 0 {
				t.Errorf("stats: %+v", s)
			}
		})
	}
}

func TestNewVideoParametersInBand(t *testing.T) {
	tags := testTags(t, "av")
	small := testTags(t, "av160")
	e := newEnv(t, Config{SegmentCount: 20})
	served := newSegmentCounter()
	e.served = served.add
	res := asyncGet(t, e.url("index.m3u8"), 15*time.Second)
	e.waitMuxer()
	e.feed(tags, 0)
	if r := <-res; r[0] != http.StatusOK || !strings.Contains(r[1].(string), "RESOLUTION=320x240") {
		t.Fatalf("index.m3u8: %v", r)
	}
	// Multivariant playlists asked for while gohlslib takes the new
	// parameter sets (a data race in gohlslib that write must exclude).
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				get(t, e.url("index.m3u8"), 5*time.Second)
			}
		})
	}
	e.feedAt(small, 0.0, 6100)
	time.Sleep(50 * time.Millisecond)
	close(stop)
	wg.Wait()
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, body := get(t, e.url("index.m3u8"), 5*time.Second)
		if code == http.StatusOK && strings.Contains(body, "RESOLUTION=160x120") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no 160x120 playlist in 10s: %d %s", code, body)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Only the video parameters changed (the AAC configuration is the
	// same): the same muxer goes on, with a new init file.
	if s := e.m.Stats(); s.Restarts != 0 || s.Instances != 1 || s.Created != 1 {
		t.Errorf("stats: %+v", s)
	}
	// 6 s, 100 ms of nothing, 3 s at 160x120: 8 complete segments of
	// 200 frames, 320x240 and 160x120 both decoded.
	e.waitSegments("video1_stream.m3u8", 8)
	got := map[string]int{}
	for _, p := range e.ffprobe(served, 16) {
		got[p.codec] = p.frames
	}
	if got["h264"] < 190 || got["aac"] < 300 {
		t.Errorf("ffprobe across the change: %v, want about 200 h264 and 340 aac frames", got)
	}
}

func TestNewAudioConfigRestartsTheMuxer(t *testing.T) {
	tags := testTags(t, "av")
	audio := testTags(t, "audio") // 48 kHz, not 44.1
	e := newEnv(t, Config{})
	res := asyncGet(t, e.url("index.m3u8"), 15*time.Second)
	e.waitMuxer()
	e.feed(tags, 0)
	if r := <-res; r[0] != http.StatusOK {
		t.Fatalf("index.m3u8: %v", r)
	}
	for _, tag := range audio {
		if tag.Type == message.TypeAudio {
			e.pub.Write(&message.Message{Type: tag.Type, Timestamp: tag.Timestamp + 6100, Payload: tag.Data})
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for e.m.Stats().Restarts != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("no restart on a new AAC configuration: %+v", e.m.Stats())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestQueueBounds(t *testing.T) {
	m := New(Config{Queue: 4, QueueBytes: 100})
	mx := newMuxer(m, "k")
	pkt := &live.Packet{Type: message.TypeVideo, Video: true, Payload: make([]byte, 10)}
	for i := range 4 {
		if !mx.Queue(pkt, uint32(i), false) {
			t.Fatalf("packet %d refused", i)
		}
	}
	if mx.Queue(pkt, 4, false) {
		t.Fatal("fifth packet taken by a queue of 4")
	}
	if !mx.Queue(pkt, 5, true) {
		t.Fatal("forced packet (join burst) refused")
	}
	q, _ := mx.take()
	mx.giveBack(q)
	big := &live.Packet{Type: message.TypeVideo, Video: true, Payload: make([]byte, 101)}
	if mx.Queue(big, 6, false) {
		t.Fatal("packet over QueueBytes taken")
	}
	if s := m.Stats(); s.Refused != 2 {
		t.Fatalf("refused %d, want 2", s.Refused)
	}
	// Sequence headers: the same one twice is queued once; garbage not at all.
	seq := &live.Packet{Type: message.TypeAudio, Seq: true, Payload: []byte{0xaf, 0, 0x12, 0x10}}
	mx.Send(seq, 0)
	mx.Send(&live.Packet{Type: message.TypeAudio, Seq: true, Payload: []byte{0xaf, 0, 0x12, 0x10}}, 0)
	mx.Send(&live.Packet{Type: message.TypeAudio, Seq: true, Payload: []byte{0xaf, 0, 0xff}}, 0)
	if q, lost := mx.take(); len(q) != 1 || lost || q[0].aconf == nil || q[0].aconf.codec.SampleRate != 44100 {
		t.Fatalf("queued %d items (lost %v), want the AAC config once", len(q), lost)
	}
	if s := m.Stats(); s.BadInput != 1 {
		t.Fatalf("bad input %d, want 1", s.BadInput)
	}
}

func TestWaitersAtUnpublish(t *testing.T) {
	// Requests waiting for a part or a blocking reload when the stream
	// ends are answered, and the muxer goes: gohlslib v2.2.0 returns from
	// its own preload-hint wait with its lock held when closed under it,
	// which this package must never let happen.
	tags := testTags(t, "av")
	head, _ := splitTags(tags, 2500)
	e := newEnv(t, Config{})
	res := asyncGet(t, e.url("index.m3u8"), 15*time.Second)
	e.waitMuxer()
	e.feed(head, 0)
	if r := <-res; r[0] != http.StatusOK {
		t.Fatalf("index.m3u8: %v", r)
	}
	time.Sleep(100 * time.Millisecond)
	_, pl := get(t, e.url("video1_stream.m3u8"), 5*time.Second)
	hint := preloadURI.FindStringSubmatch(pl)[1]
	seq, _ := strconv.Atoi(mediaSequence.FindStringSubmatch(pl)[1])
	msn := seq + strings.Count(pl, "#EXTINF:")
	var waiting []<-chan [2]any
	for range 3 {
		waiting = append(waiting, asyncGet(t, e.url(hint), 10*time.Second),
			asyncGet(t, e.url(fmt.Sprintf("audio2_stream.m3u8?_HLS_msn=%d&_HLS_part=0", msn+1)), 10*time.Second))
	}
	time.Sleep(200 * time.Millisecond)
	start := time.Now()
	e.pub.Close(true)
	for _, c := range waiting {
		if r := <-c; r[0] != http.StatusNotFound {
			t.Errorf("waiting request at unpublish: %v, want 404", r[0])
		}
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("waiting requests answered %v after the unpublish", d)
	}
	closed := make(chan struct{})
	go func() { e.m.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Manager.Close hangs")
	}
}

func TestMPEGTSVariant(t *testing.T) {
	res, _ := feedAndProbe(t, "av", Config{Variant: gohlslib.MuxerVariantMPEGTS}, "main_stream.m3u8", 5, 1)
	got := map[string]int{}
	for _, p := range res {
		got[p.codec] = p.frames
	}
	if got["h264"] < 120 || got["aac"] < 180 {
		t.Errorf("ffprobe: %v, want about 125 h264 and 215 aac frames", res)
	}
}

func TestMP3AudioIsLeftOut(t *testing.T) {
	// H.264 with MP3 audio: HLS carries the video, and says once why not
	// the audio.
	tags := testTags(t, "av")
	e := newEnv(t, Config{})
	res := asyncGet(t, e.url("index.m3u8"), 15*time.Second)
	e.waitMuxer()
	for _, tag := range tags {
		d := tag.Data
		if tag.Type == message.TypeAudio {
			d = append([]byte{0x2f}, make([]byte, 100)...) // MP3, 44 kHz, stereo
		}
		e.pub.Write(&message.Message{Type: tag.Type, Timestamp: tag.Timestamp, Payload: d})
	}
	r := <-res
	if r[0] != http.StatusOK || strings.Contains(r[1].(string), "mp4a") || !strings.Contains(r[1].(string), "avc1") {
		t.Fatalf("index.m3u8: %v", r)
	}
	if n := strings.Count(e.logText(), "audio left out of HLS"); n != 1 {
		t.Errorf("%d log lines about the audio, want 1:\n%s", n, e.logText())
	}
}

func TestConcurrentFirstRequestsMakeOneMuxer(t *testing.T) {
	tags := testTags(t, "av")
	e := newEnv(t, Config{})
	var waiting []<-chan [2]any
	for _, f := range []string{"index.m3u8", "index.m3u8", "video1_stream.m3u8", "audio2_stream.m3u8", "index.m3u8"} {
		waiting = append(waiting, asyncGet(t, e.url(f), 15*time.Second))
	}
	e.waitMuxer()
	time.Sleep(50 * time.Millisecond) // let every request find the muxer
	e.feed(tags, 0)
	for _, c := range waiting {
		if r := <-c; r[0] != http.StatusOK {
			t.Errorf("first request: %v", r)
		}
	}
	if s := e.m.Stats(); s.Created != 1 || s.Muxers != 1 || len(e.st.Snapshot().Readers) != 1 {
		t.Errorf("stats %+v, %d readers, want one muxer", s, len(e.st.Snapshot().Readers))
	}
	// A stream that is not live: 404, and no muxer stays.
	if code, _ := get(t, e.srv.URL+"/hls/live/nothing/index.m3u8", 5*time.Second); code != http.StatusNotFound {
		t.Errorf("request of a stream not live: %d, want 404", code)
	}
}
