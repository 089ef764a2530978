package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeLLHLS is a live LL-HLS origin in gohlslib's shape: index.m3u8 with a
// video variant and an audio rendition, media playlists listing the parts
// of the last two segments and the segment in progress, a preload hint,
// and blocking reloads. A part is added every tick; four make a segment,
// the first of them independent.
type fakeLLHLS struct {
	mu        sync.Mutex
	parts     int              // parts made so far, both playlists alike
	got       map[string][]int // playlist → part ids downloaded, in order
	inits     map[string]int
	reloads   []string // queries of the playlist requests
	badReload string   // a reload without the playlist's own query
}

const (
	fakeFirstMSN = 7
	fakePerSeg   = 4
)

func newFakeLLHLS(t *testing.T, tick time.Duration) *httptest.Server {
	f := &fakeLLHLS{got: map[string][]int{}, inits: map[string]int{}, parts: 9}
	srv := httptest.NewServer(f)
	stop := make(chan struct{})
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(tick):
				f.mu.Lock()
				f.parts++
				f.mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() { close(stop); srv.Close() })
	srv.Config.Handler = f
	return srv
}

func (f *fakeLLHLS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimPrefix(r.URL.Path, "/live/bench/")
	switch {
	case name == "index.m3u8":
		fmt.Fprint(w, "#EXTM3U\n#EXT-X-VERSION:9\n#EXT-X-INDEPENDENT-SEGMENTS\n\n"+
			"#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"audio\",NAME=\"audio2\",AUTOSELECT=YES,DEFAULT=YES,URI=\"a_stream.m3u8?key=value\"\n\n"+
			"#EXT-X-STREAM-INF:BANDWIDTH=872,CODECS=\"avc1.42c028,mp4a.40.2\",AUDIO=\"audio\"\nv_stream.m3u8?key=value\n")
	case strings.HasSuffix(name, "_stream.m3u8"):
		f.playlist(w, r, strings.TrimSuffix(name, "_stream.m3u8"))
	case strings.HasSuffix(name, "_init.mp4"):
		f.mu.Lock()
		f.inits[strings.TrimSuffix(name, "_init.mp4")]++
		f.mu.Unlock()
		w.Write(make([]byte, 50))
	case strings.Contains(name, "_part"):
		pl, id, _ := strings.Cut(strings.TrimSuffix(name, ".mp4"), "_part")
		n, _ := strconv.Atoi(id)
		f.mu.Lock()
		f.got[pl] = append(f.got[pl], n)
		f.mu.Unlock()
		w.Write(make([]byte, partSize(pl)))
	default:
		http.NotFound(w, r)
	}
}

func partSize(pl string) int {
	if pl == "v" {
		return 1000
	}
	return 100
}

func (f *fakeLLHLS) playlist(w http.ResponseWriter, r *http.Request, pl string) {
	q := r.URL.Query()
	f.mu.Lock()
	f.reloads = append(f.reloads, r.URL.RawQuery)
	if q.Get("key") != "value" {
		f.badReload = r.URL.RawQuery
	}
	f.mu.Unlock()
	if msn := q.Get("_HLS_msn"); msn != "" {
		m, _ := strconv.Atoi(msn)
		p, _ := strconv.Atoi(q.Get("_HLS_part"))
		want := (m-fakeFirstMSN)*fakePerSeg + p // the part's id
		for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(time.Millisecond) {
			f.mu.Lock()
			ok := f.parts > want
			f.mu.Unlock()
			if ok {
				break
			}
			if r.Context().Err() != nil {
				return
			}
			if time.Now().After(deadline) {
				http.Error(w, "blocked too long", http.StatusServiceUnavailable)
				return
			}
		}
	}
	f.mu.Lock()
	parts := f.parts
	f.mu.Unlock()
	complete := parts / fakePerSeg
	first := max(0, complete-2)
	var b strings.Builder
	fmt.Fprintf(&b, "#EXTM3U\n#EXT-X-VERSION:10\n#EXT-X-TARGETDURATION:1\n"+
		"#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=0.50000,CAN-SKIP-UNTIL=6.00000\n"+
		"#EXT-X-PART-INF:PART-TARGET=0.20000\n#EXT-X-MEDIA-SEQUENCE:%d\n#EXT-X-MAP:URI=\"%s_init.mp4?key=value\"\n",
		fakeFirstMSN+first, pl)
	for id := first * fakePerSeg; id < parts; id++ {
		fmt.Fprintf(&b, "#EXT-X-PART:DURATION=0.20000,URI=\"%s_part%d.mp4?key=value\"", pl, id)
		if id%fakePerSeg == 0 {
			b.WriteString(",INDEPENDENT=YES")
		}
		b.WriteString("\n")
		if id%fakePerSeg == fakePerSeg-1 {
			fmt.Fprintf(&b, "#EXTINF:0.80000,\n%s_seg%d.mp4?key=value\n", pl, fakeFirstMSN+id/fakePerSeg)
		}
	}
	fmt.Fprintf(&b, "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"%s_part%d.mp4?key=value\"\n", pl, parts)
	w.Header().Set("Content-Type", "application/vnd.apple.mpegurl")
	fmt.Fprint(w, b.String())
}

func TestHLSPlayer(t *testing.T) {
	srv := newFakeLLHLS(t, 5*time.Millisecond)
	f := srv.Config.Handler.(*fakeLLHLS)
	cfg := testPlayerConfig(strings.TrimPrefix(srv.URL, "http://"))
	cfg.protocol = protoHLS
	cfg.http = newHLSClient(1, time.Second)
	defer cfg.http.CloseIdleConnections()

	var p player
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	done := make(chan struct{})
	go func() { p.run(ctx, cfg, func() { close(ready) }); close(done) }()
	select {
	case <-ready:
	case <-time.After(5 * time.Second):
		t.Fatal("not ready")
	}
	if st := p.state.Load(); st != playerStreaming {
		t.Fatalf("state %d, err %v", st, p.err)
	}
	if p.ttff <= 0 || p.ttfk != p.ttff {
		t.Errorf("ttff %v, ttfk %v: the first part is independent", p.ttff, p.ttfk)
	}
	time.Sleep(300 * time.Millisecond)
	cancel()
	<-done
	if st := p.state.Load(); st != playerStopped {
		t.Errorf("state %d after the stop, err %v", st, p.err)
	}

	f.mu.Lock()
	defer f.mu.Unlock()
	var want uint64
	for _, pl := range []string{"v", "a"} {
		ids := f.got[pl]
		if len(ids) < 20 {
			t.Errorf("%s: only parts %v in 300 ms at a part every 5 ms", pl, ids)
			continue
		}
		// From an independent part on, each part once, none left out.
		if ids[0]%fakePerSeg != 0 {
			t.Errorf("%s: started at part %d, not independent", pl, ids[0])
		}
		for i := 1; i < len(ids); i++ {
			if ids[i] != ids[i-1]+1 {
				t.Errorf("%s: part %d after %d", pl, ids[i], ids[i-1])
			}
		}
		if f.inits[pl] != 1 {
			t.Errorf("%s: init fetched %d times", pl, f.inits[pl])
		}
		want += uint64(50 + len(ids)*partSize(pl))
		t.Logf("%s: parts %d to %d", pl, ids[0], ids[len(ids)-1])
	}
	t.Logf("%d bytes, %d playlist requests, ttff %v", p.bytes.Load(), len(f.reloads), p.ttff)
	// A part cut short by the stop counts what came.
	if got := p.bytes.Load(); got > want || got+1000 < want {
		t.Errorf("counted %d bytes, the server sent %d", got, want)
	}
	blocking := slices.IndexFunc(f.reloads, func(q string) bool {
		return strings.Contains(q, "_HLS_msn=") && strings.Contains(q, "&_HLS_part=")
	})
	if blocking < 0 {
		t.Errorf("no blocking reload: %q", f.reloads)
	}
	if f.badReload != "" {
		t.Errorf("reload lost the playlist's query: %q", f.badReload)
	}
}

func TestHLSPlayer404(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "stream not found", http.StatusNotFound)
	}))
	defer srv.Close()
	cfg := testPlayerConfig(strings.TrimPrefix(srv.URL, "http://"))
	cfg.protocol = protoHLS
	cfg.http = newHLSClient(1, time.Second)
	var p player
	p.run(context.Background(), cfg, func() {})
	if st := p.state.Load(); st != playerFailed {
		t.Errorf("state %d", st)
	}
	if p.err == nil || p.err.Error() != "GET /live/bench/index.m3u8: HTTP 404 Not Found: stream not found" {
		t.Errorf("err %v", p.err)
	}
}

// A playlist without parts is not low-latency HLS: the player says so.
func TestHLSPlayerNotLowLatency(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:0\n#EXTINF:2.0,\ns0.ts\n")
	}))
	defer srv.Close()
	cfg := testPlayerConfig(strings.TrimPrefix(srv.URL, "http://"))
	cfg.protocol = protoHLS
	cfg.http = newHLSClient(1, time.Second)
	var p player
	p.run(context.Background(), cfg, func() {})
	if p.state.Load() != playerFailed || p.err == nil || !strings.Contains(p.err.Error(), "not a low-latency playlist") {
		t.Errorf("state %d, err %v", p.state.Load(), p.err)
	}
}

func TestHLSNextPos(t *testing.T) {
	m := &hlsMedia{next: hlsPos{9, 2}}
	var f hlsFollower
	if got := f.nextPos(m); got != (hlsPos{9, 2}) {
		t.Errorf("first: %v", got)
	}
	f.last = &hlsPos{9, 1}
	if got := f.nextPos(m); got != (hlsPos{9, 2}) {
		t.Errorf("after {9 1}: %v", got)
	}
	// The playlist lists less than was downloaded: wait for the part
	// after the last one instead of asking for one already there.
	f.last = &hlsPos{12, 3}
	if got := f.nextPos(m); got != (hlsPos{12, 4}) {
		t.Errorf("behind the last part downloaded: %v", got)
	}
}
