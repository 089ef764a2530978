package hls

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// statePlaylist is a leading media playlist as gohlslib's LL-HLS variant
// writes it: a gap (msn 3), segments 4 and 5 with their parts, and two
// parts of segment 6, the one being written.
const statePlaylist = `#EXTM3U
#EXT-X-VERSION:10
#EXT-X-TARGETDURATION:1
#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=0.50000,CAN-SKIP-UNTIL=6.00000
#EXT-X-PART-INF:PART-TARGET=0.20000
#EXT-X-MEDIA-SEQUENCE:3
#EXT-X-MAP:URI="p_video1_init.mp4"
#EXT-X-GAP
#EXTINF:1.00000,
gap.mp4
#EXT-X-PROGRAM-DATE-TIME:2026-12-07T20:00:00.000Z
#EXT-X-PART:DURATION=0.20000,URI="p_video1_part0.mp4",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.20000,URI="p_video1_part1.mp4"
#EXT-X-PART:DURATION=0.20000,URI="p_video1_part2.mp4"
#EXT-X-PART:DURATION=0.20000,URI="p_video1_part3.mp4"
#EXT-X-PART:DURATION=0.20000,URI="p_video1_part4.mp4"
#EXTINF:1.00000,
p_video1_seg4.mp4
#EXT-X-PROGRAM-DATE-TIME:2026-12-07T20:00:01.000Z
#EXT-X-PART:DURATION=0.20000,URI="p_video1_part5.mp4",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.20000,URI="p_video1_part6.mp4"
#EXT-X-PART:DURATION=0.20000,URI="p_video1_part7.mp4"
#EXT-X-PART:DURATION=0.40000,URI="p_video1_part8.mp4"
#EXTINF:1.00000,
p_video1_seg5.mp4
#EXT-X-PART:DURATION=0.20000,URI="p_video1_part9.mp4",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.20000,URI="p_video1_part10.mp4"
#EXT-X-PRELOAD-HINT:TYPE=PART,URI="p_video1_part11.mp4"
`

func TestParseStateAndReload(t *testing.T) {
	st := parseState([]byte(statePlaylist))
	if st == nil {
		t.Fatal("no state")
	}
	if st.hint != 11 || st.next != 6 || st.nextParts != 2 || st.lastParts != 4 || st.segments != 3 {
		t.Fatalf("state: hint %d next %d nextParts %d lastParts %d segments %d", st.hint, st.next, st.nextParts, st.lastParts, st.segments)
	}
	if n := preloadHintBytes([]byte(statePlaylist)); n != 11 {
		t.Errorf("preloadHintBytes: %d", n)
	}
	for _, c := range []struct {
		msn, part uint64
		want      int
	}{
		{6, 0, 0}, {6, 1, 0}, {6, 2, errWait}, {6, 9, errWait},
		{7, 0, errWait}, {8, 0, http.StatusBadRequest},
		{5, 0, 0}, {5, 3, 0}, {5, 4, 0}, // past segment 5's last part: part 0 of 6, which exists
		{4, 0, 0}, {4, 99, 0},
		{3, 0, http.StatusBadRequest}, // gohlslib's oldest allowed is 4
	} {
		if got := st.reload(c.msn, c.part); got != c.want {
			t.Errorf("reload(%d, %d) = %d, want %d", c.msn, c.part, got, c.want)
		}
	}
	// At a segment's start: nothing of segment 6 yet.
	cut := strings.Replace(statePlaylist, "#EXT-X-PART:DURATION=0.20000,URI=\"p_video1_part9.mp4\",INDEPENDENT=YES\n#EXT-X-PART:DURATION=0.20000,URI=\"p_video1_part10.mp4\"\n", "", 1)
	cut = strings.Replace(cut, "part11", "part9", 1)
	st = parseState([]byte(cut))
	if st == nil || st.hint != 9 || st.nextParts != 0 {
		t.Fatalf("state at a segment's start: %+v", st)
	}
	if got := st.reload(5, 4); got != errWait {
		t.Errorf("reload(5, 4) at a segment's start = %d, want errWait", got)
	}
	if got := st.reload(5, 3); got != 0 {
		t.Errorf("reload(5, 3) at a segment's start = %d, want 0", got)
	}
	if parseState([]byte("#EXTM3U\n#EXTINF:1,\nx.mp4\n")) != nil {
		t.Error("a playlist without a preload hint has a state")
	}
}

func TestPlaylistRequest(t *testing.T) {
	for _, c := range []struct {
		query     string
		key       playlistKey
		msn, part uint64
		blocking  bool
		code      int
	}{
		{"", playlistKey{file: "v.m3u8"}, 0, 0, false, 0},
		{"_HLS_msn=7&_HLS_part=2", playlistKey{file: "v.m3u8"}, 7, 2, true, 0},
		{"_HLS_msn=7", playlistKey{file: "v.m3u8"}, 7, 0, true, 0},
		{"_HLS_msn=7&_HLS_part=1&_HLS_skip=YES", playlistKey{file: "v.m3u8", skip: true}, 7, 1, true, 0},
		{"token=b&_HLS_msn=7&a=1", playlistKey{file: "v.m3u8", query: "a=1&token=b"}, 7, 0, true, 0},
		{"_HLS_part=1", playlistKey{}, 0, 0, false, http.StatusBadRequest},
		{"_HLS_msn=x", playlistKey{}, 0, 0, false, http.StatusBadRequest},
		{"_HLS_msn=1&_HLS_part=-1", playlistKey{}, 0, 0, false, http.StatusBadRequest},
		{"a=%zz", playlistKey{}, 0, 0, false, http.StatusBadRequest},
	} {
		key, msn, part, blocking, code := playlistRequest("v.m3u8", c.query)
		if code != c.code || code == 0 && (key != c.key || msn != c.msn || part != c.part || blocking != c.blocking) {
			t.Errorf("%q: %+v %d %d %v %d, want %+v %d %d %v %d", c.query, key, msn, part, blocking, code, c.key, c.msn, c.part, c.blocking, c.code)
		}
	}
}

// serveDirect calls Serve as the server would, without a socket.
func (e *env) serveDirect(ctx context.Context, file string) *httptest.ResponseRecorder {
	req := httptest.NewRequestWithContext(ctx, http.MethodGet, "/hls/live/cam/"+file, nil)
	rec := httptest.NewRecorder()
	name := file
	if i := strings.IndexByte(name, '?'); i >= 0 {
		name = name[:i]
	}
	e.m.Serve(rec, req, "live/cam", name, e.attach("live/cam"))
	return rec
}

// goroutinesIn counts the goroutines whose stack mentions s.
func goroutinesIn(s string) int {
	buf := make([]byte, 8<<20)
	buf = buf[:runtime.Stack(buf, true)]
	n := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, s) {
			n++
		}
	}
	return n
}

func TestManyBlockingReloadsOfOnePart(t *testing.T) {
	// Hundreds of players at the live edge ask for the same next part of
	// the video and audio playlists: none waits inside gohlslib, none is
	// answered before the part exists, all are answered (with the same
	// bytes per playlist and query) once it does, and nothing is left
	// behind.
	e, tail, pl := atLiveEdge(t, true)
	msn, part := nextPart(t, pl)
	hint := preloadURI.FindStringSubmatch(pl)[1]

	const n = 300
	files := []string{"video1_stream.m3u8", "audio2_stream.m3u8", "video1_stream.m3u8?token=x"}
	type answer struct {
		file string
		code int
		body string
	}
	answers := make(chan answer, n*len(files))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for i := range n * len(files) {
		file := files[i%len(files)]
		sep := "?"
		if strings.Contains(file, "?") {
			sep = "&"
		}
		wg.Go(func() {
			rec := e.serveDirect(ctx, fmt.Sprintf("%s%s_HLS_msn=%d&_HLS_part=%d", file, sep, msn, part))
			answers <- answer{file, rec.Code, rec.Body.String()}
		})
	}
	time.Sleep(300 * time.Millisecond)
	select {
	case a := <-answers:
		t.Fatalf("a blocking reload was answered before its part existed: %d\n%s", a.code, a.body)
	default:
	}
	if g := goroutinesIn("bluenviron/gohlslib"); g > 0 {
		t.Errorf("%d goroutines in gohlslib while %d requests wait", g, n*len(files))
	}

	// In real time: the first part completes, the waiters are answered
	// from its state (one that is slow to wake may see the next one).
	made := e.m.Stats().Playlists
	tail, _ = splitTags(tail, 3500)
	e.feed(tail, 1)
	wg.Wait()
	close(answers)
	made = e.m.Stats().Playlists - made
	bodies := map[string]map[string]int{}
	got := 0
	for a := range answers {
		got++
		if a.code != http.StatusOK {
			t.Fatalf("%s: %d %s", a.file, a.code, a.body)
		}
		if bodies[a.file] == nil {
			bodies[a.file] = map[string]int{}
		}
		bodies[a.file][a.body]++
	}
	// gohlslib made each playlist once per state, not once per request.
	if made > uint64(3*len(files)) {
		t.Errorf("gohlslib made %d playlists for %d requests", made, n*len(files))
	}
	if got != n*len(files) {
		t.Fatalf("%d answers, want %d", got, n*len(files))
	}
	for file, bs := range bodies {
		stream := "video1"
		if strings.HasPrefix(file, "audio2") {
			stream = "audio2"
		}
		if len(bs) > 3 {
			t.Errorf("%s: %d different answers", file, len(bs))
		}
		for body := range bs {
			if want := strings.Replace(hint, "video1", stream, 1); !strings.Contains(body, `URI="`+want) {
				t.Errorf("%s lacks the part it waited for, %s:\n%s", file, want, body)
			}
			if strings.Contains(file, "token=x") != strings.Contains(body, "?token=x") {
				t.Errorf("%s: the query in its URIs is wrong:\n%s", file, body)
			}
		}
		t.Logf("%s: answers %v", file, slices.Collect(maps.Values(bs)))
	}
}

func TestBlockingReloadLeftByItsClient(t *testing.T) {
	// A client that gives up on a blocking reload is answered at once and
	// leaves nothing waiting.
	e, _, pl := atLiveEdge(t, true)
	msn, _ := nextPart(t, pl)
	before := goroutinesIn("web/hls.")
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			rec := e.serveDirect(ctx, fmt.Sprintf("video1_stream.m3u8?_HLS_msn=%d&_HLS_part=0", msn+1))
			if rec.Code != http.StatusServiceUnavailable {
				t.Errorf("abandoned blocking reload: %d, want 503", rec.Code)
			}
		})
	}
	wg.Wait()
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("abandoned blocking reloads answered after %v", d)
	}
	if after := goroutinesIn("web/hls."); after > before {
		t.Errorf("%d goroutines of web/hls after the requests left, %d before", after, before)
	}
	if g := goroutinesIn("bluenviron/gohlslib"); g > 0 {
		t.Errorf("%d goroutines left in gohlslib", g)
	}
}
