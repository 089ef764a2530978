package session

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/rtmphub/rtmphub/session/live"
	"github.com/rtmphub/rtmphub/session/outqueue"
)

// Watching: readers of a live stream that are not RTMP clients, such as
// an HTTP-FLV viewer or an HLS muxer. The transport that serves them
// (package web) asks the core two things: may this viewer play the
// stream (AuthorizeWatch, the same Authorize hook an RTMP play asks),
// and attach this reader to it (Watch). The core counts them by protocol
// in its views.

// WatchRequest names a live stream and who asks to watch it.
type WatchRequest struct {
	App      string
	Instance string // "" is _definst_
	Stream   string
	// Query is the request's query string (token=...&expires=...).
	Query string
	// IP is the viewer's address; Protocol what it watches with
	// ("http-flv", "ws-flv", "hls").
	IP       string
	Protocol string
	// PageURL is the page that embeds the player (the Referer), for the
	// authorization hook.
	PageURL string
}

// ErrNotLive is returned by Watch for a stream that is not being published
// (nor waiting for a vanished publisher to come back).
var ErrNotLive = errors.New("session: stream not live")

// ErrBadName is returned for an application, instance or stream name that
// an RTMP client could not use either.
var ErrBadName = errors.New("session: bad stream name")

// ValidAppName reports whether an RTMP client may name the application
// app, for the other transports that name applications in their paths.
func ValidAppName(app string) bool { return appNameRE.MatchString(app) && app != ".." }

// Check reports ErrBadName for names an RTMP client could not use, and
// makes an empty Instance _definst_.
func (req *WatchRequest) Check() error {
	if req.Instance == "" {
		req.Instance = "_definst_"
	}
	if !appNameRE.MatchString(req.App) || req.App == ".." || !instNameRE.MatchString(req.Instance) ||
		strings.Contains(req.Instance, "..") || req.Stream == "" || len(req.Stream) > maxStreamNameLen ||
		strings.ContainsAny(req.Stream, "?\x00") {
		return fmt.Errorf("%w: %s/%s/%s", ErrBadName, req.App, req.Instance, req.Stream)
	}
	return nil
}

// AuthorizeWatch asks Config.Authorize whether the viewer may play the
// stream, as an RTMP client is asked on connect and then on play: nil
// allows it, a *DenyError is a decided denial, ErrBadName a name no
// client could play; any other error is a failure to decide (denied
// too). The query carries what RTMP carries in the connect URL and the
// stream name (the signed token of TokenAuthorizer).
func (s *Server) AuthorizeWatch(ctx context.Context, req WatchRequest) error {
	if err := req.Check(); err != nil {
		return err
	}
	a := s.cfg.Authorize
	if a == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.AuthTimeout)
	defer cancel()
	ar := AuthRequest{App: req.App, Instance: req.Instance, IP: req.IP, Protocol: req.Protocol,
		Query: req.Query, ConnectQuery: req.Query, PageURL: req.PageURL}
	for _, act := range []AuthAction{AuthConnect, AuthPlay} {
		ar.Action = act
		if act == AuthPlay {
			ar.Stream = req.Stream
		}
		if err := a(ctx, ar); err != nil {
			s.stats.AuthDenied.Add(1)
			s.log.Info("access", "event", "watch", "ip", req.IP, "protocol", req.Protocol, "app", req.App,
				"instance", req.Instance, "stream", req.Stream, "allowed", false, "reason", err.Error())
			return err
		}
	}
	return nil
}

// watcher is a reader attached by Watch: the reader, and the protocol
// the views count it under. A Viewer is counted as itself.
type watcher struct {
	live.Reader
	protocol string
}

// Viewer is a reader Watch attaches as it is (not wrapped): the stream
// reaches it, and its subscription, for every packet, and both in its own
// memory keep them in the cache together (see live.Stream.Attach).
type Viewer interface {
	live.Reader
	// Subscription is the unused subscription, a field of the viewer,
	// that Watch attaches it with.
	Subscription() *live.Subscription
	// Protocol is what the views count it under.
	Protocol() string
}

// Watch attaches r to the live stream req names, which must be live, and
// returns its subscription and the function that detaches it (once;
// later calls do nothing). The reader gets what an RTMP player gets: the
// join burst, then the stream, under the same slow-reader rule, which
// its Queue's refusals drive. Authorization is AuthorizeWatch's.
func (s *Server) Watch(req WatchRequest, r live.Reader, opt live.ReaderOptions) (*live.Subscription, func(), error) {
	if err := req.Check(); err != nil {
		return nil, nil, err
	}
	s.mu.Lock()
	in := s.instances[req.App+"/"+req.Instance]
	s.mu.Unlock()
	// pulled: another hub publishes the stream and the cluster pulls it
	// here; the reader waits for it as an RTMP player does.
	pulled := false
	if cl := s.cfg.Cluster; cl != nil && (in == nil || !in.liveNow(req.Stream)) {
		pulled = cl.Want(req.App, req.Instance, req.Stream, req.Query, false)
		if pulled && in == nil {
			in = s.instanceFor(req.App, req.Instance, false) // a reader is no client: no application (cluster.go)
		}
	}
	if in == nil {
		return nil, nil, ErrNotLive
	}
	if opt.Log == nil {
		opt.Log = s.log.With("app", req.App, "instance", req.Instance, "stream", req.Stream, "protocol", req.Protocol, "ip", req.IP)
	}
	var sub *live.Subscription
	attach := func(st *live.Stream) {
		if v, ok := r.(Viewer); ok {
			sub = st.Attach(v.Subscription(), v, opt)
		} else {
			sub = st.AddReader(&watcher{Reader: r, protocol: req.Protocol}, opt)
		}
	}
	if pulled {
		in.withStream(req.Stream, attach)
	} else {
		in.mu.Lock()
		if st := in.streams[req.Stream]; st != nil && st.Live() {
			attach(st)
		}
		in.mu.Unlock()
	}
	if sub == nil {
		return nil, nil, ErrNotLive
	}
	s.watching.add(req.Protocol, 1)
	s.log.Info("access", "event", "watch", "ip", req.IP, "protocol", req.Protocol, "app", req.App,
		"instance", req.Instance, "stream", req.Stream, "allowed", true)
	var once sync.Once
	return sub, func() {
		once.Do(func() {
			sub.Close()
			s.watching.add(req.Protocol, -1)
		})
	}, nil
}

// watchCounts counts the readers attached by Watch, by protocol.
type watchCounts struct {
	mu    sync.Mutex
	n     map[string]int
	extra ViewerCounter
}

func (w *watchCounts) add(protocol string, d int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.n == nil {
		w.n = make(map[string]int)
	}
	if w.n[protocol] += d; w.n[protocol] <= 0 {
		delete(w.n, protocol)
	}
}

// ViewerCounter counts a stream's viewers that are not readers of their
// own, by protocol: HLS clients, which one muxer reads the stream for.
type ViewerCounter func(app, instance, stream string) map[string]int

// CountViewers adds what fn counts to the views of every stream (and to
// the server's totals). Set it once, before serving.
func (s *Server) CountViewers(fn ViewerCounter) { s.watching.extra = fn }

// Viewers returns how many readers Watch has attached now, by protocol,
// and the viewers CountViewers' function counts.
func (s *Server) Viewers() map[string]int {
	s.watching.mu.Lock()
	m := make(map[string]int, len(s.watching.n))
	for k, v := range s.watching.n {
		m[k] = v
	}
	s.watching.mu.Unlock()
	if s.watching.extra != nil {
		for _, in := range s.allInstances() {
			for _, st := range in.streamList() {
				for p, n := range s.watching.extra(in.app, in.name, st.Name()) {
					m[p] += n
				}
			}
		}
	}
	return m
}

// PlayerLimits are the bounds of an RTMP player's outbound queue, which a
// reader attached by Watch takes for its own so that it follows the same
// slow-reader rule.
func (s *Server) PlayerLimits() outqueue.Limits { return s.cfg.queueLimits() }
