package hls

import (
	"context"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// LL-HLS parts are served from bytes: the first request of a complete
// part copies it out of gohlslib, later ones (every player of the stream
// asks for every part) are answered from that copy, with its length, in
// one Write (not chunked; net/http still makes two writes to the socket
// of an answer over its 4 KiB buffer). Parts never change once complete.

// partEntry is one part, read from gohlslib once.
type partEntry struct {
	n    int64
	once sync.Once
	body []byte
	ok   bool
}

// minPartsKept is the fewest recent parts an instance keeps the bytes of
// (see trimParts).
const minPartsKept = 8

// servePart answers a request for part n (complete: the caller waited
// for it) from the instance's copy; false when gohlslib has no such part
// (a name of another instance, or a part gone with its segment).
func (inst *instance) servePart(w http.ResponseWriter, r *http.Request, file string, n int64) bool {
	inst.partsMu.Lock()
	e := inst.parts[file]
	if e == nil {
		if inst.parts == nil {
			inst.parts = make(map[string]*partEntry)
		}
		e = &partEntry{n: n}
		inst.parts[file] = e
	}
	inst.partsMu.Unlock()
	e.once.Do(func() {
		rec := &bufferWriter{header: make(http.Header)}
		inst.hm.Handle(rec, internalRequest(file))
		e.body, e.ok = rec.body.Bytes(), rec.code == http.StatusOK
	})
	if !e.ok {
		inst.partsMu.Lock()
		if inst.parts[file] == e {
			delete(inst.parts, file) // kept for good answers only
		}
		inst.partsMu.Unlock()
		return false
	}
	h := w.Header()
	h.Set("Cache-Control", "max-age=3600") // as gohlslib
	h.Set("Content-Type", "video/mp4")
	h.Set("Content-Length", strconv.Itoa(len(e.body)))
	setDate(h)
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(e.body)
	}
	return true
}

// trimParts forgets the parts well behind the live edge of st: those
// older than the parts its playlists list (the last two segments'), which
// players that follow the edge no longer ask for; such a request is
// answered by gohlslib, as long as it keeps the part.
func (inst *instance) trimParts(st *state) {
	keep := max(int64(2*st.lastParts+st.nextParts)+2, minPartsKept)
	inst.partsMu.Lock()
	defer inst.partsMu.Unlock()
	for k, e := range inst.parts {
		if e.n < st.hint-keep {
			delete(inst.parts, k)
		}
	}
}

// lazyDeadline is a request's bound (blockTimeout) that makes its timer
// only once something waits on it: most requests (parts that exist,
// playlists of the current part) are answered without waiting.
type lazyDeadline struct {
	parent context.Context
	at     time.Time
	once   sync.Once
	ctx    context.Context
	cancel context.CancelFunc
}

func newLazyDeadline(parent context.Context, d time.Duration) *lazyDeadline {
	return &lazyDeadline{parent: parent, at: time.Now().Add(d)}
}

func (l *lazyDeadline) get() context.Context {
	l.once.Do(func() { l.ctx, l.cancel = context.WithDeadline(l.parent, l.at) })
	return l.ctx
}

// stop releases the timer, if one was made; the context is done after.
func (l *lazyDeadline) stop() {
	l.once.Do(func() { l.ctx = canceled }) // none made after this
	if l.cancel != nil {
		l.cancel()
	}
}

// canceled is a context that is done.
var canceled = func() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}()

func (l *lazyDeadline) Deadline() (time.Time, bool) { return l.get().Deadline() }
func (l *lazyDeadline) Done() <-chan struct{}       { return l.get().Done() }
func (l *lazyDeadline) Value(key any) any           { return l.parent.Value(key) }

func (l *lazyDeadline) Err() error { return l.get().Err() }

// httpDate is the Date header of this second: net/http formats one per
// response unless the handler sets it.
var httpDate atomic.Pointer[dateValue]

type dateValue struct {
	sec int64
	v   []string
}

// setDate sets the Date header (a shared, never modified slice).
func setDate(h http.Header) {
	now := time.Now()
	d := httpDate.Load()
	if d == nil || d.sec != now.Unix() {
		d = &dateValue{sec: now.Unix(), v: []string{now.UTC().Format(http.TimeFormat)}}
		httpDate.Store(d)
	}
	h["Date"] = d.v
}
