package hls

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
)

// LL-HLS requests are answered here, not by gohlslib's handler: gohlslib
// (v2.2.0) parks every blocking playlist reload on one sync.Cond of the
// muxer, wakes them all at each part, and has each generate its playlist
// under the muxer's lock, on a goroutine of its own that ignores the
// request's context. A thousand players following a video and an audio
// playlist made two thousand goroutines queueing on that lock five times
// a second (the muxer's writes behind them), and past maxHandlers the
// requests were refused with 503.
//
// Instead, the muxer's goroutine reads the leading media playlist after
// each write to the leading track (one playlist per frame, while
// requests are many per part) and, when its preload hint moved on,
// publishes a new state: what blocking reloads and preload hints are
// answered with, and the channel that wakes every request waiting on the
// previous one (one close, no goroutine per request). The playlists of a
// state are made by gohlslib once each (per playlist, query and delta
// update) by the first request that needs them, then copied to all others.
// gohlslib answers those at once: they are not blocking requests.

// state is an instance's part state as of its leading media playlist.
// All its media playlists share the numbering: gohlslib rotates the parts
// and segments of every stream together.
type state struct {
	hint      int64  // number of the part being written (the preload hint)
	next      uint64 // media sequence number of the segment being written
	nextParts uint64 // its parts complete
	lastParts uint64 // parts of segment next-1
	segments  uint64 // segments listed (gaps included)

	// changed is closed when a newer state replaces this one.
	changed chan struct{}

	mu        sync.Mutex
	playlists map[playlistKey]*playlistEntry
}

// playlistKey names one playlist of a state: the media playlist, the
// query that gohlslib copies into its URIs (without _HLS_ parameters),
// and whether it is a delta update.
type playlistKey struct {
	file, query string
	skip        bool
}

// playlistEntry is one playlist of a state, made once.
type playlistEntry struct {
	once sync.Once
	body []byte
	code int // 0: made; else the status to answer (errReplaced: closed)
}

// maxPlaylistsPerState bounds the playlists a state keeps (players with
// queries of their own, tokens for instance, each need one); past it
// playlists are made per request.
const maxPlaylistsPerState = 64

// parseState reads a leading media playlist of gohlslib's LL-HLS variant;
// nil when it has no preload hint.
func parseState(pl []byte) *state {
	st := &state{hint: -1}
	var seq, parts uint64
	text := string(pl)
	for text != "" {
		var line string
		line, text, _ = strings.Cut(text, "\n")
		line = strings.TrimSpace(line)
		switch {
		case line == "":
		case !strings.HasPrefix(line, "#"):
			// a segment's URI (or gap.mp4) ends it
			st.segments++
			st.lastParts, parts = parts, 0
		case strings.HasPrefix(line, "#EXT-X-MEDIA-SEQUENCE:"):
			seq, _ = strconv.ParseUint(line[len("#EXT-X-MEDIA-SEQUENCE:"):], 10, 64)
		case strings.HasPrefix(line, "#EXT-X-PART:"):
			parts++
		case strings.HasPrefix(line, "#EXT-X-PRELOAD-HINT:"):
			st.hint = preloadHint(line)
		}
	}
	if st.hint < 0 || st.segments == 0 {
		return nil
	}
	st.next, st.nextParts = seq+st.segments, parts
	st.changed = make(chan struct{})
	return st
}

// reload answers whether a blocking reload of (msn, part) can be answered
// with this state: 0 when it can, errWait when it waits for a later
// state, 400 when it asks for a segment too far ahead or gone (as
// gohlslib: _HLS_msn beyond the segment after the one being written, or
// before the oldest but one listed).
func (st *state) reload(msn, part uint64) int {
	if msn > st.next+1 || msn+st.segments-1 < st.next {
		return http.StatusBadRequest
	}
	switch {
	case msn == st.next+1:
		return errWait
	case msn == st.next:
		if part < st.nextParts {
			return 0
		}
		return errWait
	case msn+1 < st.next:
		// an older segment: its part, or the parts that follow it
		return 0
	default: // msn == next-1, the last complete segment
		// A part index beyond its last part is part 0 of the next
		// segment (draft-pantos-hls-rfc8216bis, 6.2.5.2).
		if part < st.lastParts || st.nextParts > 0 {
			return 0
		}
		return errWait
	}
}

// errWait is reload's answer for a reload that waits for a later state.
const errWait = -3

// playlist returns the media playlist file of the state (made by gohlslib
// once per key), or the status to answer.
func (st *state) playlist(inst *instance, key playlistKey) ([]byte, int) {
	st.mu.Lock()
	e := st.playlists[key]
	if e == nil {
		if len(st.playlists) >= maxPlaylistsPerState {
			st.mu.Unlock()
			return inst.makePlaylist(key)
		}
		if st.playlists == nil {
			st.playlists = make(map[playlistKey]*playlistEntry)
		}
		e = &playlistEntry{}
		st.playlists[key] = e
	}
	st.mu.Unlock()
	// The first request makes it (gohlslib answers at once: not a
	// blocking request, and the instance has its first segment); the
	// others wait for that.
	e.once.Do(func() { e.body, e.code = inst.makePlaylist(key) })
	return e.body, e.code
}

// seed records a playlist made already (the leading one the muxer read).
func (st *state) seed(key playlistKey, body []byte) {
	e := &playlistEntry{body: body}
	e.once.Do(func() {})
	st.playlists = map[playlistKey]*playlistEntry{key: e}
}

// makePlaylist asks gohlslib for a media playlist, without _HLS_msn (so it
// does not block): a playlist at least as new as the state the caller
// holds, which satisfies whatever that state does.
func (inst *instance) makePlaylist(key playlistKey) ([]byte, int) {
	q := key.query
	if key.skip {
		if q != "" {
			q += "&"
		}
		q += "_HLS_skip=YES"
	}
	req := internalRequest(key.file)
	req.URL.RawQuery = q
	rec := &bufferWriter{header: make(http.Header)}
	inst.hm.Handle(rec, req)
	inst.made.Add(1)
	if rec.code == http.StatusOK {
		return rec.body.Bytes(), 0
	}
	if rec.body.Len() == 0 && (rec.code == 0 || rec.code == http.StatusInternalServerError) {
		select {
		case <-inst.closed:
			return nil, errReplaced // the instance closed meanwhile
		default:
		}
		return nil, http.StatusNotFound // no such playlist
	}
	if rec.code == 0 {
		return nil, http.StatusNotFound
	}
	return nil, rec.code
}

// currentState returns the instance's state, nil before its first
// segment.
func (inst *instance) currentState() *state { return inst.st.Load() }

// update reads the leading media playlist (gohlslib answers at once once
// the instance is ready) and publishes it. Only the muxer's goroutine
// calls it, after writes to the leading track.
func (inst *instance) update() {
	rec := &bufferWriter{header: make(http.Header)}
	inst.hm.Handle(rec, internalRequest(inst.lead))
	if rec.code == http.StatusOK {
		inst.publish(rec.body.Bytes())
	}
}

// publish takes a leading media playlist: when its preload hint moved
// on, it becomes the new state, and the requests waiting on the previous
// one are woken.
func (inst *instance) publish(body []byte) {
	inst.pmu.Lock()
	defer inst.pmu.Unlock()
	cur := inst.st.Load()
	if cur != nil && preloadHintBytes(body) <= cur.hint {
		return
	}
	st := parseState(body)
	if st == nil {
		return
	}
	st.seed(playlistKey{file: inst.lead}, body)
	inst.st.Store(st)
	if cur != nil {
		close(cur.changed)
	}
	inst.trimParts(st)
}

// preloadHintBytes is preloadHint of a playlist held as bytes.
func preloadHintBytes(pl []byte) int64 {
	// The hint is the playlist's last line: look at its tail.
	const tail = 512
	if len(pl) > tail {
		if n := preloadHint(string(pl[len(pl)-tail:])); n >= 0 {
			return n
		}
	}
	return preloadHint(string(pl))
}

// servePlaylist answers an LL-HLS media playlist request: a blocking
// reload (_HLS_msn, _HLS_part) waits for a state with its part, up to
// ctx; then the state's playlist is copied out.
func (inst *instance) servePlaylist(ctx context.Context, w http.ResponseWriter, r *http.Request, file string) int {
	key, msn, part, blocking, code := playlistRequest(file, r.URL.RawQuery)
	if code != 0 {
		return code
	}
	st := inst.currentState()
	for {
		if st == nil {
			select {
			case <-inst.closed:
				return errReplaced
			default:
			}
			return http.StatusNotFound
		}
		if !blocking {
			break
		}
		c := st.reload(msn, part)
		if c == 0 {
			break
		}
		if c != errWait {
			inst.log.Debug("HLS blocking reload refused", "file", file, "msn", msn, "part", part,
				"next_msn", st.next, "next_parts", st.nextParts, "segments", st.segments)
			return c
		}
		select {
		case <-st.changed:
			st = inst.currentState()
		case <-inst.closed:
			return errReplaced
		case <-ctx.Done():
			return http.StatusServiceUnavailable
		}
	}
	body, code := st.playlist(inst, key)
	if code != 0 {
		return code
	}
	h := w.Header()
	h.Set("Cache-Control", "no-cache")
	h.Set("Content-Type", "application/vnd.apple.mpegurl")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	setDate(h)
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
	return 0
}

// playlistRequest reads the query of a media playlist request: the key
// of the playlist to answer with and, for a blocking reload, the part it
// waits for; or 400 for _HLS_ parameters gohlslib refuses.
func playlistRequest(file, rawQuery string) (key playlistKey, msn, part uint64, blocking bool, code int) {
	key.file = file
	if rawQuery == "" {
		return key, 0, 0, false, 0
	}
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		// gohlslib would copy such a query into its URIs as it is
		return key, 0, 0, false, http.StatusBadRequest
	}
	first := func(k string) string {
		if v := q[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	msnS, partS, skip := first("_HLS_msn"), first("_HLS_part"), first("_HLS_skip")
	key.skip = skip == "YES" || skip == "v2"
	if msnS != "" {
		if msn, err = strconv.ParseUint(msnS, 10, 64); err != nil {
			return key, 0, 0, false, http.StatusBadRequest
		}
		blocking = true
	}
	if partS != "" {
		if part, err = strconv.ParseUint(partS, 10, 64); err != nil || msnS == "" {
			return key, 0, 0, false, http.StatusBadRequest
		}
	}
	other := false
	for k := range q {
		if strings.HasPrefix(k, "_HLS_") {
			delete(q, k)
		} else {
			other = true
		}
	}
	if other {
		key.query = q.Encode() // as gohlslib puts it in the URIs
	}
	return key, msn, part, blocking, 0
}
