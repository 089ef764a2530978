package web

import (
	"net/http"
	"sync"
	"time"

	"github.com/rtmphub/rtmphub/session/live"
)

// ProtoHLSMuxer is what an HLS muxer, the one reader of a stream that
// serves all its HLS viewers, is counted under.
const ProtoHLSMuxer = "hls-muxer"

// serveHLS answers a request for an HLS playlist, part or segment. The
// first request of a viewer (its address, stream and query) is
// authorized as an RTMP play is; its later ones, which come several a
// second, are not asked again for the AuthCache time.
func (h *Handler) serveHLS(w http.ResponseWriter, r *http.Request, t target) {
	req := h.request(r, t, ProtoHLS)
	viewer := req.IP + "\x00" + req.Query
	key := t.key()
	if !h.auth.allowed(key + "\x00" + viewer) {
		if !h.authorize(w, r, req) {
			return
		}
		h.auth.allow(key + "\x00" + viewer)
	}
	h.requests[iHLS].Add(1)
	if h.hlsSeen.note(key, viewer) {
		// A new HLS viewer (its first request in hlsSeenWindow): the
		// access log's line; its many requests are counted in metrics.
		h.log.Info("access", "event", "watch", "ip", req.IP, "protocol", ProtoHLS, "app", req.App,
			"instance", req.Instance, "stream", req.Stream, "allowed", true)
	}
	mreq := req
	mreq.Protocol = ProtoHLSMuxer
	mreq.Query, mreq.PageURL = "", ""
	h.hls.Serve(w, r, key, t.file, func(rd live.Reader) (func(), error) {
		_, detach, err := h.srv.Watch(mreq, rd, live.ReaderOptions{})
		return detach, err
	})
}

// viewerCount is the core's ViewerCounter: a stream's HLS viewers are
// the distinct clients (address and query) that asked for it lately.
func (h *Handler) viewerCount(app, instance, stream string) map[string]int {
	n := h.hlsSeen.count(app + "/" + instance + "/" + stream)
	if n == 0 {
		return nil
	}
	return map[string]int{ProtoHLS: n}
}

// hlsSeenWindow is how long an HLS client counts as watching after its
// last request (a player asks at least once a target duration).
const hlsSeenWindow = 10 * time.Second

// maxHLSSeen bounds the clients remembered; past it the oldest streams'
// records are dropped (the counts are estimates either way).
const maxHLSSeen = 65536

// hlsSeen remembers when each HLS client of each stream last asked.
type hlsSeen struct {
	mu      sync.Mutex
	streams map[string]map[string]time.Time
	n       int
}

// note records a request of viewer for stream, and reports whether the
// viewer is new: not seen within hlsSeenWindow.
func (s *hlsSeen) note(stream, viewer string) (fresh bool) {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.streams == nil {
		s.streams = make(map[string]map[string]time.Time)
	}
	m := s.streams[stream]
	if m == nil {
		m = make(map[string]time.Time)
		s.streams[stream] = m
	}
	at, ok := m[viewer]
	if !ok {
		if s.n >= maxHLSSeen {
			s.pruneLocked(now)
		}
		if s.n >= maxHLSSeen {
			return false
		}
		s.n++
	}
	m[viewer] = now
	return !ok || now.Sub(at) >= hlsSeenWindow
}

func (s *hlsSeen) count(stream string) int {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for v, at := range s.streams[stream] {
		if now.Sub(at) < hlsSeenWindow {
			n++
		} else {
			delete(s.streams[stream], v)
			s.n--
		}
	}
	if n == 0 {
		delete(s.streams, stream)
	}
	return n
}

// pruneLocked forgets the clients that stopped asking.
func (s *hlsSeen) pruneLocked(now time.Time) {
	for k, m := range s.streams {
		for v, at := range m {
			if now.Sub(at) >= hlsSeenWindow {
				delete(m, v)
				s.n--
			}
		}
		if len(m) == 0 {
			delete(s.streams, k)
		}
	}
}
