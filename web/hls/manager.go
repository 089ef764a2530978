package hls

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"path"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rtmphub/rtmphub/session/live"
)

// Attach attaches r to the live stream a request names and returns the
// function that detaches it; an error means there is no such live stream
// (the request is answered 404). It is called on the request's goroutine,
// with no lock of the Manager held.
type Attach func(r live.Reader) (detach func(), err error)

// Manager answers HLS requests: one muxer per stream while the stream has
// HLS requests, made on the first request and closed after Config.Idle
// without one.
type Manager struct {
	cfg Config

	mu     sync.Mutex
	muxers map[string]*muxer
	closed bool

	requests     atomic.Uint64
	created      atomic.Uint64
	instances    atomic.Uint64
	restarts     atomic.Uint64
	refused      atomic.Uint64
	encodeErrors atomic.Uint64
	badInput     atomic.Uint64
	busy         atomic.Uint64
	playlists    atomic.Uint64
}

// Stats are a Manager's counters, for metrics.
type Stats struct {
	Muxers       int    // muxers now
	Requests     uint64 // requests served, ever
	Created      uint64 // muxers made, ever
	Instances    uint64 // gohlslib muxers started, ever (restarts included)
	Restarts     uint64 // instances replaced for a new configuration or publication
	Refused      uint64 // media packets refused by a full queue (skipped to a keyframe)
	EncodeErrors uint64 // errors of gohlslib while muxing
	BadInput     uint64 // payloads and sequence headers skipped as unusable
	Busy         uint64 // requests answered 503 (too many muxers or waits, closed)
	Playlists    uint64 // LL-HLS media playlists gohlslib made for requests (once per part, playlist and query)
}

// New makes a Manager.
func New(cfg Config) *Manager {
	return &Manager{cfg: cfg.populate(), muxers: make(map[string]*muxer)}
}

// Stats returns the counters.
func (m *Manager) Stats() Stats {
	m.mu.Lock()
	n := len(m.muxers)
	m.mu.Unlock()
	return Stats{
		Muxers:       n,
		Requests:     m.requests.Load(),
		Created:      m.created.Load(),
		Instances:    m.instances.Load(),
		Restarts:     m.restarts.Load(),
		Refused:      m.refused.Load(),
		EncodeErrors: m.encodeErrors.Load(),
		BadInput:     m.badInput.Load(),
		Busy:         m.busy.Load(),
		Playlists:    m.playlists.Load(),
	}
}

// Close closes every muxer and detaches every reader; later requests are
// answered 503.
func (m *Manager) Close() {
	m.mu.Lock()
	m.closed = true
	all := make([]*muxer, 0, len(m.muxers))
	for _, mx := range m.muxers {
		all = append(all, mx)
	}
	m.mu.Unlock()
	for _, mx := range all {
		mx.end()
	}
	timeout := time.After(5 * time.Second)
	for _, mx := range all {
		select {
		case <-mx.done:
		case <-mx.attached:
			// attach failed or run has not started: nothing to wait for
			// unless it did start.
			if mx.attachErr == nil {
				select {
				case <-mx.done:
				case <-timeout:
				}
			}
		case <-timeout:
		}
	}
}

// forget removes mx from the set, when it is still the muxer of its key.
func (m *Manager) forget(mx *muxer) {
	m.mu.Lock()
	if m.muxers[mx.key] == mx {
		delete(m.muxers, mx.key)
	}
	m.mu.Unlock()
}

// Serve answers one HLS request: file is the last element of its path
// (index.m3u8, or the name of a playlist, init file, segment or part that
// gohlslib put in a playlist), key identifies the stream (such as
// "app/instance/stream"). The first request of a key attaches a muxer to
// the stream through attach; later ones reuse it. Playlist requests wait
// (up to 10 s, or the request's context) for the first segment, and
// LL-HLS blocking reloads and preload hints for their part.
func (m *Manager) Serve(w http.ResponseWriter, r *http.Request, key, file string, attach Attach) {
	m.requests.Add(1)
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if file == "" || strings.ContainsAny(file, "/\\") || attach == nil {
		http.NotFound(w, r)
		return
	}
	lazy := newLazyDeadline(r.Context(), blockTimeout)
	defer lazy.stop()
	var ctx context.Context = lazy
	var code int
	// A muxer that ended (idle) just as the request found it is replaced
	// by a new one, once.
	for try := 0; try < 2; try++ {
		var mx *muxer
		mx, code = m.muxer(ctx, key, attach)
		if mx == nil {
			break
		}
		code = m.serveWith(ctx, mx, w, r, file)
		if code != errEnded {
			break
		}
		code = http.StatusNotFound
	}
	if code != 0 {
		if code == http.StatusServiceUnavailable {
			m.busy.Add(1)
		}
		http.Error(w, http.StatusText(code), code)
	}
}

// errEnded is serve's status for a muxer that ended before it could
// answer, errReplaced handleAsync's for an instance that closed under the
// request: nothing was written.
const (
	errEnded    = -1
	errReplaced = -2
)

// serveWith answers the request with mx.
func (m *Manager) serveWith(ctx context.Context, mx *muxer, w http.ResponseWriter, r *http.Request, file string) int {
	mx.inflight.Add(1)
	defer mx.inflight.Add(-1)
	mx.touch()
	defer mx.touch()
	return mx.serve(ctx, w, r, file)
}

// muxer returns the muxer of key, attaching a new one when there is none,
// or the status to answer.
func (m *Manager) muxer(ctx context.Context, key string, attach Attach) (*muxer, int) {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil, http.StatusServiceUnavailable
	}
	mx := m.muxers[key]
	if mx != nil {
		m.mu.Unlock()
		select {
		case <-mx.attached:
		default:
			// (ctx.Done makes the request's timer: only when waiting)
			select {
			case <-mx.attached:
			case <-ctx.Done():
				return nil, http.StatusServiceUnavailable
			}
		}
		if mx.attachErr != nil {
			return nil, http.StatusNotFound
		}
		return mx, 0
	}
	if len(m.muxers) >= m.cfg.MaxMuxers {
		m.mu.Unlock()
		m.cfg.Log.Warn("HLS request refused: too many muxers", "stream", key, "max", m.cfg.MaxMuxers)
		return nil, http.StatusServiceUnavailable
	}
	mx = newMuxer(m, key)
	mx.touch()
	m.muxers[key] = mx
	m.mu.Unlock()

	detach, err := attach(mx)
	if err == nil {
		m.mu.Lock()
		closed := m.closed
		m.mu.Unlock()
		if closed {
			detach()
			err = errClosed
		}
	}
	if err != nil {
		mx.attachErr = err
		m.forget(mx)
		close(mx.attached)
		if errors.Is(err, errClosed) {
			return nil, http.StatusServiceUnavailable
		}
		return nil, http.StatusNotFound
	}
	mx.detach = detach
	m.created.Add(1)
	close(mx.attached)
	go mx.run()
	return mx, 0
}

// errClosed is the attach error of a request that raced Close.
var errClosed = &closedError{}

// closedError is errClosed's type.
type closedError struct{}

// Error says the manager is closed.
func (*closedError) Error() string { return "hls: manager closed" }

// serve answers a request with mx, or returns the status to answer.
func (mx *muxer) serve(ctx context.Context, w http.ResponseWriter, r *http.Request, file string) int {
	inst, code := mx.instance(ctx, strings.HasSuffix(file, ".m3u8"))
	if inst == nil {
		return code
	}
	if strings.HasSuffix(file, ".m3u8") {
		for {
			var code int
			if inst.lowLatency && file != "index.m3u8" {
				code = inst.servePlaylist(ctx, w, r, file)
			} else {
				code = inst.handleAsync(ctx, w, gohlslibRequest(ctx, r, file, true))
			}
			if code != errReplaced {
				return code
			}
			// The instance closed under the request (a restart): ask
			// the next one.
			if inst, code = mx.instance(ctx, true); inst == nil {
				return code
			}
		}
	}
	if _, n, ok := partName(file); ok && inst.lowLatency {
		if code := inst.waitPart(ctx, n); code != 0 {
			return code
		}
		if inst.servePart(w, r, file, n) {
			return 0
		}
	}
	req := gohlslibRequest(ctx, r, file, false)
	tw := &trackingWriter{ResponseWriter: w}
	inst.hm.Handle(tw, req)
	if !tw.wrote {
		return http.StatusNotFound
	}
	return 0
}

// gohlslibRequest is r as gohlslib's handler needs it: gohlslib routes
// by the path's last element, which must be file. A request handed to a
// goroutine that may outlive it (detached) is a copy.
func gohlslibRequest(ctx context.Context, r *http.Request, file string, detached bool) *http.Request {
	if !detached && path.Base(r.URL.Path) == file {
		return r
	}
	req := r.Clone(ctx)
	req.URL.Path = "/" + file
	req.RequestURI = ""
	return req
}

// instance returns the current instance, waiting for one with a playlist
// when wait (playlists); errEnded when the muxer ended, 404 when, not
// waiting, it has no playlist yet, 503 when none came in time.
func (mx *muxer) instance(ctx context.Context, wait bool) (*instance, int) {
	for {
		inst, changed := mx.instanceOrWait()
		if inst != nil {
			select {
			case <-inst.ready:
				return inst, 0
			default:
			}
			if !wait {
				return nil, http.StatusNotFound
			}
			select {
			case <-inst.ready:
				return inst, 0
			case <-changed:
				continue
			case <-mx.done:
				return nil, errEnded
			case <-ctx.Done():
				return nil, http.StatusServiceUnavailable
			}
		}
		if !wait {
			select {
			case <-mx.done:
				return nil, errEnded
			default:
				return nil, http.StatusNotFound
			}
		}
		select {
		case <-changed:
		case <-mx.done:
			return nil, errEnded
		case <-ctx.Done():
			return nil, http.StatusServiceUnavailable
		}
	}
}

// waitPart waits until part n is complete, so that gohlslib serves it at
// once: gohlslib's own wait for the part of a preload hint ignores the
// request's context and, when the muxer closes under it, returns with
// the muxer's lock held (v2.2.0), which would hang every later request.
// Part numbers beyond the hint are answered 404.
func (inst *instance) waitPart(ctx context.Context, n int64) int {
	for {
		st := inst.currentState()
		switch {
		case st == nil:
			return http.StatusNotFound
		case n < st.hint:
			return 0
		case n > st.hint:
			return http.StatusNotFound
		}
		select {
		case <-st.changed:
		case <-inst.closed:
			return http.StatusNotFound
		case <-ctx.Done():
			return http.StatusServiceUnavailable
		}
	}
}

// handleAsync runs gohlslib's handler, which may block (LL-HLS blocking
// playlist reloads) and ignores the request's context, on a goroutine of
// its own writing into a buffer, and copies the answer once it comes; a
// request whose context ends first is answered 503 and leaves the
// goroutine to end when its part exists or the instance closes (bounded
// by maxHandlers).
func (inst *instance) handleAsync(ctx context.Context, w http.ResponseWriter, req *http.Request) int {
	if inst.handlers.Add(1) > maxHandlers {
		inst.handlers.Add(-1)
		return http.StatusServiceUnavailable
	}
	bw := &bufferWriter{header: make(http.Header)}
	done := make(chan struct{})
	multivariant := path.Base(req.URL.Path) == "index.m3u8"
	go func() {
		defer close(done)
		defer inst.handlers.Add(-1)
		if multivariant {
			// Once ready, gohlslib answers it without waiting.
			inst.codecMu.RLock()
			defer inst.codecMu.RUnlock()
		}
		inst.hm.Handle(bw, req)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		return http.StatusServiceUnavailable
	}
	if bw.body.Len() == 0 && (bw.code == 0 || bw.code == http.StatusInternalServerError) {
		// gohlslib's answer to a request in a muxer that closed meanwhile
		select {
		case <-inst.closed:
			return errReplaced
		default:
		}
		return http.StatusNotFound
	}
	for k, v := range bw.header {
		w.Header()[k] = v
	}
	if bw.code == 0 {
		bw.code = http.StatusOK
	}
	w.WriteHeader(bw.code)
	if req.Method != http.MethodHead {
		_, _ = w.Write(bw.body.Bytes())
	}
	return 0
}

// trackingWriter tells whether gohlslib answered: it writes nothing for a
// name it does not know.
type trackingWriter struct {
	http.ResponseWriter
	wrote bool
}

// WriteHeader notes an answer.
func (t *trackingWriter) WriteHeader(code int) {
	t.wrote = true
	t.ResponseWriter.WriteHeader(code)
}

// Write notes an answer.
func (t *trackingWriter) Write(p []byte) (int, error) {
	t.wrote = true
	return t.ResponseWriter.Write(p)
}

// bufferWriter is a ResponseWriter that keeps the answer, for a handler
// that may outlive the request.
type bufferWriter struct {
	header http.Header
	code   int
	body   bytes.Buffer
}

// Header is the answer's header.
func (b *bufferWriter) Header() http.Header { return b.header }

// WriteHeader keeps the first status.
func (b *bufferWriter) WriteHeader(code int) {
	if b.code == 0 {
		b.code = code
	}
}

// Write keeps the body.
func (b *bufferWriter) Write(p []byte) (int, error) {
	if b.code == 0 {
		b.code = http.StatusOK
	}
	return b.body.Write(p)
}
