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
// Linger. It follows the directory (watchDirectory): when the stream's
// owner changes it reconnects to the new one; when the stream has no
// owner its readers wait, as a player of an unpublished name waits on one
// hub, until a hub publishes it; when this hub publishes it, the pull
// ends. An upstream that fails is retried with backoff.

// Want is told that a local reader waits for a stream nobody publishes
// here (see session.Cluster). It reports whether another hub publishes
// it; a pull is then running. waits says the reader waits for the stream
// anyway (an RTMP player): a pull then waits for a publisher on any hub
// even when there is none yet. A pull from another hub is never pulled
// on (an edge never serves a third hub: hubs pull from the owner).
func (n *Node) Want(app, instance, stream, query string, waits bool) bool {
	if isPull(query) || n.ctx.Err() != nil {
		return false
	}
	id := StreamID{app, instance, stream}
	if !n.ready.Load() || !n.nc.IsConnected() {
		if waits {
			// Asked again once the cluster is reachable (wantMissed).
			n.mu.Lock()
			n.missed[id] = struct{}{}
			n.mu.Unlock()
		}
		return false
	}
	if p := n.pullOf(id); p != nil {
		return p.elsewhere()
	}
	ctx, cancel := context.WithTimeout(n.ctx, opTimeout)
	defer cancel()
	node, addr, found, err := n.Owner(ctx, id)
	if err != nil && waits {
		n.mu.Lock()
		n.missed[id] = struct{}{} // asked again at the next tick
		n.mu.Unlock()
	}
	if err != nil || found && node == n.name || !found && !waits {
		return false
	}
	var o *originInfo
	if found {
		o = &originInfo{node: node, addr: addr}
	}
	return n.startPull(id, o).elsewhere()
}

// wantMissed asks again for the streams that readers waited for while
// the cluster could not be reached (before this hub joined, or during a
// NATS outage), for those that still have readers here and no publisher.
func (n *Node) wantMissed() {
	if !n.ready.Load() || !n.nc.IsConnected() {
		return
	}
	n.mu.Lock()
	ids := make([]StreamID, 0, len(n.missed))
	for id := range n.missed {
		ids = append(ids, id)
	}
	clear(n.missed)
	n.mu.Unlock()
	for _, id := range ids {
		if n.hub.StreamReaders(id.App, id.Instance, id.Stream) > 0 && !n.hub.PublishedHere(id.App, id.Instance, id.Stream) {
			n.Want(id.App, id.Instance, id.Stream, "", true)
		}
	}
}

func (n *Node) pullOf(id StreamID) *pull {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.pulls[id]
}

// startPull returns the stream's pull, started with origin o (nil: wait
// for one) if there was none.
func (n *Node) startPull(id StreamID, o *originInfo) *pull {
	n.mu.Lock()
	defer n.mu.Unlock()
	if p := n.pulls[id]; p != nil {
		return p
	}
	p := &pull{n: n, id: id, done: make(chan struct{}), wake: make(chan struct{}, 1), log: n.log.With("pull", id.String()),
		started: time.Now()}
	p.ctx, p.cancel = context.WithCancel(n.ctx)
	p.origin.Store(o)
	n.pulls[id] = p
	n.pullsTotal.Add(1)
	go p.run()
	return p
}

// pull is one stream pulled from its owner.
type pull struct {
	n      *Node
	id     StreamID
	log    *slog.Logger
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
	wake   chan struct{} // the owner changed

	started  time.Time
	origin   atomic.Pointer[originInfo] // nil: no hub publishes it
	up       atomic.Bool                // connected and playing
	attempts atomic.Int64               // connections made
	messages atomic.Uint64              // media messages received

	handOver atomic.Bool // ended for a local publisher of the stream
	stale    uint64      // a claim revision whose stream ended (run's goroutine only)

	mu      sync.Mutex
	pub     *live.Publication  // the pull's publication, nil when there is none
	rebase  bool               // the next message sets offset (a new connection)
	offset  uint32             // added to the connection's timestamps
	lastTS  uint32             // the last timestamp written
	wrote   bool               // lastTS is set
	current *originInfo        // the origin of the connection running now
	hangUp  context.CancelFunc // ends that connection
}

type originInfo struct{ node, addr string }

func (p *pull) stop() { p.cancel() }

// elsewhere reports whether another hub publishes the stream, as far as
// the pull knows.
func (p *pull) elsewhere() bool {
	o := p.origin.Load()
	return o != nil && o.node != p.n.name
}

// Log and Evict make the pull the live.Source of its publication.
func (p *pull) Log() *slog.Logger { return p.log }

// Evict ends a pull whose stream a local publisher took over (it could
// claim the name: the owner is gone).
func (p *pull) Evict(live.Source, time.Duration) {
	p.log.Info("cluster: pull taken over by a local publisher")
	p.cancel()
}

// ownerChanged is told by the directory watcher that the stream's owner
// is now o (nil: deleted). A connection to another origin is hung up, so
// that the loop connects to the new one at once.
func (p *pull) ownerChanged(o *originInfo) {
	old := p.origin.Swap(o)
	if old == nil && o == nil || old != nil && o != nil && *old == *o {
		return // a refresh of the same claim
	}
	p.mu.Lock()
	if p.current != nil && o != nil && *o != *p.current && p.hangUp != nil {
		p.log.Info("cluster: stream moved", "from", p.current.node, "to", o.node)
		p.hangUp()
	}
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

func (p *pull) run() {
	n := p.n
	defer close(p.done)
	defer func() {
		n.mu.Lock()
		delete(n.pulls, p.id)
		n.mu.Unlock()
		// Handed over to a local publisher: its readers wait for it
		// through the grace, as for a publisher that reconnects.
		p.closePub(!p.handOver.Load())
		n.hub.DropIdleInstance(p.id.App, p.id.Instance)
		p.log.Info("cluster: pull ended", "connections", p.attempts.Load(), "messages", p.messages.Load())
	}()
	go p.watchReaders()
	backoff := 250 * time.Millisecond
	// lost is when the upstream last failed without the origin saying
	// the stream ended (its hub died, or the connection did); zero while
	// a connection plays or after a clean unpublish.
	var lost time.Time
	for p.ctx.Err() == nil {
		o := p.origin.Load()
		if o == nil || o.node == n.name {
			// No owner (or this hub, whose publisher then feeds the
			// stream itself). When the origin vanished (its claim expired
			// after its hub died) the readers wait for the stream to come
			// back anywhere through the grace, as for a publisher that
			// vanished on their own hub; then, or after a clean
			// unpublish, they are told, and wait for a publisher. The
			// directory watcher wakes the pull; looking up now and then
			// covers claims that expired (which no watcher sees).
			wait := 2 * time.Second
			if left := n.cfg.Grace - time.Since(lost); !lost.IsZero() && left > 0 && p.hasPub() {
				wait = min(wait, left)
			} else {
				if p.hasPub() && !lost.IsZero() {
					p.log.Info("cluster: no hub publishes the stream after the grace; readers told", "grace", n.cfg.Grace.String())
				}
				lost = time.Time{}
				p.closePub(true)
			}
			if !p.sleep(wait) {
				return
			}
			p.lookup()
			continue
		}
		began := time.Now()
		got, err := p.once(o)
		p.up.Store(false)
		if p.ctx.Err() != nil {
			return
		}
		moved := false
		if no := p.origin.Load(); no != nil && *no != *o {
			moved = true
		}
		// The publication stays while the pull reconnects (its readers
		// see a gap, the next connection's timestamps continue the
		// timeline), unless the origin said the stream was unpublished
		// and nobody took it over: then the readers are told.
		unpublished := errors.Is(err, upstream.ErrUnpublished) && !moved
		if unpublished {
			p.closePub(true)
			lost = time.Time{}
		} else if got > 0 || lost.IsZero() {
			lost = time.Now()
		}
		p.log.Info("cluster: pull upstream ended", "origin", o.node, "messages", got, "moved", moved, "err", errString(err))
		if unpublished {
			// The origin's claim may outlive its stream until its next
			// refresh: wait for the directory to change (or that refresh)
			// rather than play the ended stream again.
			p.forget(o)
			if !p.sleep(n.cfg.TTL/3 + 500*time.Millisecond) {
				return
			}
			p.lookup()
			continue
		}
		if time.Since(began) > 10*time.Second || moved {
			backoff = 250 * time.Millisecond
		}
		if !moved {
			if !p.sleep(backoff) {
				return
			}
			backoff = min(2*backoff, 5*time.Second)
		}
		p.lookup()
	}
}

// lookup finds the stream's owner again.
func (p *pull) lookup() {
	ctx, cancel := context.WithTimeout(p.ctx, opTimeout)
	defer cancel()
	cr, rev, found, err := p.n.owner(ctx, p.id)
	switch {
	case err != nil:
		// keep the last one
	case !found || rev == p.stale:
		p.origin.Store(nil)
	default:
		p.origin.Store(&originInfo{node: cr.Node, addr: cr.Advertise})
	}
}

// forget notes that the claim of origin o, as it is now, names a stream
// that ended there: lookup ignores it until it changes.
func (p *pull) forget(o *originInfo) {
	p.origin.Store(nil)
	ctx, cancel := context.WithTimeout(p.ctx, opTimeout)
	defer cancel()
	if cr, rev, found, err := p.n.owner(ctx, p.id); err == nil && found && cr.Node == o.node {
		p.stale = rev
	}
}

// sleep waits d, or until the owner changes; false when the pull ends.
func (p *pull) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-p.ctx.Done():
		return false
	case <-t.C:
	case <-p.wake:
	}
	return true
}

// watchReaders ends the pull Linger after its last local reader left, or
// at once when a client of this hub publishes the stream.
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
		if n.hub.PublishedHere(p.id.App, p.id.Instance, p.id.Stream) {
			p.log.Info("cluster: stream published here; pull ends")
			p.cancel()
			return
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
	ctx, hangUp := context.WithCancel(p.ctx)
	defer hangUp()
	p.mu.Lock()
	p.current, p.hangUp = o, hangUp
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		p.current, p.hangUp = nil, nil
		p.mu.Unlock()
	}()
	return upstream.Run(ctx, upstream.Options{URL: u.String(), Stream: stream, Dial: n.dial(),
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
	p.mu.Lock()
	have := p.pub != nil
	p.rebase = true
	p.mu.Unlock()
	if have {
		return nil
	}
	pub, err := p.n.hub.PublishPull(p.id.App, p.id.Instance, p.id.Stream, p)
	if err != nil {
		return err // a local publisher has the name
	}
	p.mu.Lock()
	p.pub = pub
	p.mu.Unlock()
	return nil
}

// Write publishes m on the pull's timeline: a new connection's
// timestamps (which start where its play started) continue one
// millisecond after the last one written.
func (s sink) Write(m *message.Message) {
	p := s.p
	p.messages.Add(1)
	p.mu.Lock()
	if p.rebase {
		p.rebase = false
		p.offset = 0
		if p.wrote {
			p.offset = p.lastTS + 1 - m.Timestamp
		}
	}
	ts := m.Timestamp + p.offset
	if !p.wrote || int32(ts-p.lastTS) > 0 {
		p.lastTS, p.wrote = ts, true
	}
	pub := p.pub
	p.mu.Unlock()
	if pub != nil {
		mm := *m
		mm.Timestamp = ts
		pub.Write(&mm) // on this goroutine only: Publication.Write is not concurrent
	}
}

// hasPub reports whether the pull's publication is open.
func (p *pull) hasPub() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.pub != nil
}

func (p *pull) closePub(graceful bool) {
	p.mu.Lock()
	pub := p.pub
	p.pub, p.wrote = nil, false
	p.mu.Unlock()
	if pub != nil {
		pub.Close(graceful)
	}
}

// handOverTo ends the stream's pull, if any, for a client of this hub
// that claimed the stream (the owner's publisher reconnected here): the
// pull's readers wait for the local publisher, which takes the stream
// over. It waits for the pull to end, at most opTimeout.
func (n *Node) handOver(id StreamID) {
	p := n.pullOf(id)
	if p == nil {
		return
	}
	p.handOver.Store(true)
	p.cancel()
	select {
	case <-p.done:
	case <-time.After(opTimeout):
		p.log.Warn("cluster: pull did not end for the local publisher in time")
	}
}
