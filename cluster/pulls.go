package cluster

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	upstream "github.com/rtmphub/rtmphub/cluster/pull"
	"github.com/rtmphub/rtmphub/rtmp/message"
	"github.com/rtmphub/rtmphub/session"
	"github.com/rtmphub/rtmphub/session/live"
)

var _ session.Cluster = (*Node)(nil)

// Pulls: a hub with local readers of a stream another hub publishes plays
// it from that hub once and publishes it here (the edge's one upstream
// connection per stream). A pull lives while it has local readers, plus
// Linger; when its upstream fails it looks the owner up again (the
// stream may have moved) and retries with backoff.

// Want is told that a local reader waits for a stream nobody publishes
// here (see session.Cluster). It reports whether another hub publishes
// it; a pull is then running. A pull from another hub is never pulled on
// (an edge never serves a third hub: hubs pull from the owner).
func (n *Node) Want(app, instance, stream, query string) bool {
	if isPull(query) || !n.ready.Load() || n.ctx.Err() != nil || !n.nc.IsConnected() {
		return false
	}
	id := StreamID{app, instance, stream}
	n.mu.Lock()
	_, ok := n.pulls[id]
	n.mu.Unlock()
	if ok {
		return true
	}
	ctx, cancel := context.WithTimeout(n.ctx, opTimeout)
	defer cancel()
	node, addr, found, err := n.Owner(ctx, id)
	if err != nil || !found || node == n.name {
		return false
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if _, ok := n.pulls[id]; ok {
		return true
	}
	p := &pull{n: n, id: id, done: make(chan struct{}), log: n.log.With("pull", id.String())}
	p.ctx, p.cancel = context.WithCancel(n.ctx)
	p.origin.Store(&originInfo{node: node, addr: addr})
	n.pulls[id] = p
	n.pullsTotal.Add(1)
	go p.run()
	return true
}

// pull is one stream pulled from its owner.
type pull struct {
	n      *Node
	id     StreamID
	log    *slog.Logger
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}

	started  time.Time
	origin   atomic.Pointer[originInfo]
	up       atomic.Bool   // connected and playing
	attempts atomic.Int64  // connections made
	messages atomic.Uint64 // media messages received

	mu  sync.Mutex
	pub *live.Publication // nil between upstream connections
}

type originInfo struct{ node, addr string }

func (p *pull) stop() { p.cancel() }

// Log and Evict make the pull the live.Source of its publication.
func (p *pull) Log() *slog.Logger { return p.log }

// Evict ends a pull whose stream a local publisher took over (it could
// claim the name: the owner is gone).
func (p *pull) Evict(live.Source, time.Duration) {
	p.log.Info("cluster: pull taken over by a local publisher")
	p.cancel()
}

func (p *pull) run() {
	n := p.n
	defer close(p.done)
	defer func() {
		n.mu.Lock()
		delete(n.pulls, p.id)
		n.mu.Unlock()
		p.closePub(true)
		n.hub.DropIdleInstance(p.id.App, p.id.Instance)
		p.log.Info("cluster: pull ended", "connections", p.attempts.Load(), "messages", p.messages.Load())
	}()
	p.started = time.Now()
	go p.watchReaders()
	backoff := 250 * time.Millisecond
	for p.ctx.Err() == nil {
		o := p.origin.Load()
		if o == nil || o.node == n.name {
			// No owner (or this hub, whose publisher then feeds the
			// stream itself): wait for one while readers wait.
			if !p.sleep(backoff) {
				return
			}
			backoff = min(2*backoff, 5*time.Second)
			p.lookup()
			continue
		}
		began := time.Now()
		got, err := p.once(o)
		p.up.Store(false)
		if p.ctx.Err() != nil {
			return
		}
		// The publisher at the origin may come back or move: keep local
		// readers through the grace (not graceful) unless it said it
		// unpublished.
		p.closePub(errors.Is(err, upstream.ErrUnpublished))
		p.log.Info("cluster: pull upstream ended; retrying", "origin", o.node, "messages", got, "err", errString(err))
		if time.Since(began) > 10*time.Second {
			backoff = 250 * time.Millisecond
		}
		if !p.sleep(backoff) {
			return
		}
		backoff = min(2*backoff, 5*time.Second)
		p.lookup()
	}
}

// lookup finds the stream's owner again.
func (p *pull) lookup() {
	ctx, cancel := context.WithTimeout(p.ctx, opTimeout)
	defer cancel()
	node, addr, found, err := p.n.Owner(ctx, p.id)
	switch {
	case err != nil:
		// keep the last one
	case !found:
		p.origin.Store(nil)
	default:
		p.origin.Store(&originInfo{node: node, addr: addr})
	}
}

func (p *pull) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-p.ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// watchReaders ends the pull Linger after its last local reader left.
func (p *pull) watchReaders() {
	n := p.n
	tick := time.NewTicker(min(n.cfg.Linger/3, 500*time.Millisecond))
	defer tick.Stop()
	last := time.Now() // the reader that wanted it attaches just after Want
	for {
		select {
		case <-p.ctx.Done():
			return
		case <-tick.C:
		}
		if n.hub.StreamReaders(p.id.App, p.id.Instance, p.id.Stream) > 0 {
			last = time.Now()
			continue
		}
		if time.Since(last) >= n.cfg.Linger {
			p.log.Info("cluster: pull has no readers left", "linger", n.cfg.Linger.String())
			p.cancel()
			return
		}
	}
}

// once runs one upstream connection.
func (p *pull) once(o *originInfo) (int, error) {
	n := p.n
	u := url.URL{Scheme: "rtmp", Host: o.addr, Path: "/" + p.id.App + "/" + p.id.Instance,
		RawQuery: pullQuery(n.secret, n.name, session.AuthConnect, p.id, time.Now())}
	stream := p.id.Stream
	if q := pullQuery(n.secret, n.name, session.AuthPlay, p.id, time.Now()); q != "" {
		stream += "?" + q
	}
	p.attempts.Add(1)
	return upstream.Run(p.ctx, upstream.Options{URL: u.String(), Stream: stream, Dial: n.dial(),
		Started: func() {
			p.up.Store(true)
			p.log.Info("cluster: pulling", "origin", o.node, "addr", o.addr)
		}}, sink{p})
}

func (n *Node) dial() func(ctx context.Context, addr string) (net.Conn, error) {
	return n.cfg.Dial
}

// sink publishes what the upstream sends into the local stream.
type sink struct{ p *pull }

func (s sink) Start() error {
	p := s.p
	pub, err := p.n.hub.PublishPull(p.id.App, p.id.Instance, p.id.Stream, p)
	if err != nil {
		return err // a local publisher has the name
	}
	p.mu.Lock()
	p.pub = pub
	p.mu.Unlock()
	return nil
}

func (s sink) Write(m *message.Message) {
	s.p.messages.Add(1)
	s.p.pub.Write(m) // set by Start, on this goroutine
}

func (p *pull) closePub(graceful bool) {
	p.mu.Lock()
	pub := p.pub
	p.pub = nil
	p.mu.Unlock()
	if pub != nil {
		pub.Close(graceful)
	}
}
