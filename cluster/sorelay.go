package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/rtmphub/rtmphub/rtmp/message"
	"github.com/rtmphub/rtmphub/session"
	"github.com/rtmphub/rtmphub/session/sharedobject"
)

// Shared objects across hubs. The owner of an instance holds its objects
// (the authority for versions and the conflict rule); a client of another
// hub (an edge) uses them through the owner:
//
//   - Each hub subscribes to its inbox, rtmphub.hub.<node> (base64url).
//   - An edge publishes its clients' shared object messages (Use, changes,
//     SendMessage, Release), as they arrived, to the owner's inbox ("so"),
//     with the client's id, encoding and access to the object; and "gone"
//     when a client's objects leave the owner. Core NATS keeps one
//     publisher's order, and the owner handles its inbox on one goroutine:
//     a client's messages are applied in order.
//   - The owner makes each remote client a member of its objects
//     (remoteClient), so that its registry's sync, conflict rule and
//     versions apply to it as to a local client. What the objects send a
//     remote member goes to a bounded queue per edge hub (hubLink), which
//     one goroutine per edge drains: messages shared by several clients
//     of the edge (one sync's Change to every subscriber) travel once,
//     with the list of their clients ("deliver"); the edge queues them for
//     its clients as its own objects would.
//   - An edge that cannot keep up (its queue full) loses the queue: the
//     owner tells it ("reset"), and it uses its clients' objects again,
//     which sends them each object's whole state. The owner is never held
//     up by an edge.
//   - When an instance's owner changes (died, left), the edges and the new
//     owner move their clients' objects to it (session.Server.SOReroute):
//     persistent objects come back from the store (rtmphub_sharedobjects,
//     a JetStream bucket on disk), temporary ones start empty.
//   - An owner forgets the remote clients of hubs that left the cluster.
//
// Messages from NATS are checked (kind, names, message type, a shared
// object payload that decodes): a bad one is dropped with a log line (at
// most one a second).

const (
	soBucket = "rtmphub_sharedobjects"
	// maxRemoteClients bounds the clients of other hubs an owner holds.
	maxRemoteClients = 100000
	// maxLinkItems and maxLinkBytes bound what waits for one edge hub.
	maxLinkItems = 16384
	maxLinkBytes = 8 << 20
	// maxBatchBytes bounds one NATS message of a link (NATS's default
	// limit is 1 MiB).
	maxBatchBytes = 256 << 10
	// linkLinger lets a sync's messages for every subscriber of an edge
	// gather before they go (one NATS message).
	linkLinger = time.Millisecond
)

// SOHub is what the shared object relay needs of the hub (a
// *session.Server).
type SOHub interface {
	SOSubscriptions(app, instance string, m sharedobject.Member, a sharedobject.Access) *sharedobject.Subscriptions
	DeliverSO(app, instance string, clients []uint64, m message.Message)
	SOReroute(app, instance string, force bool)
}

// soWire is a message between hubs' inboxes.
type soWire struct {
	Kind    string    `json:"k"` // so, gone, deliver, reset
	From    string    `json:"f"`
	App     string    `json:"a,omitempty"`
	Inst    string    `json:"i,omitempty"`
	Client  uint64    `json:"c,omitempty"`
	AMF3    bool      `json:"amf3,omitempty"`
	Read    bool      `json:"r,omitempty"`
	Write   bool      `json:"w,omitempty"`
	Type    uint8     `json:"t,omitempty"`
	Payload []byte    `json:"p,omitempty"`
	Groups  []soGroup `json:"g,omitempty"`
}

// soGroup is one message for several clients of an edge.
type soGroup struct {
	App     string   `json:"a"`
	Inst    string   `json:"i"`
	Type    uint8    `json:"t"`
	Payload []byte   `json:"p"`
	Clients []uint64 `json:"c"`
}

func inbox(node string) string { return "rtmphub.hub." + b64.EncodeToString([]byte(node)) }

func soType(t uint8) bool {
	return message.Type(t) == message.TypeSharedObjectAMF0 || message.Type(t) == message.TypeSharedObjectAMF3
}

// soRelay is a node's part in shared objects across hubs.
type soRelay struct {
	sub *nats.Subscription

	mu      sync.Mutex
	remotes map[remoteKey]*remoteClient
	links   map[string]*hubLink
	apps    map[remoteKey]*session.Client // remote clients of this hub's applications (apprelay.go)
	missing map[string]int                // hubs with remote clients missing from the membership → sweeps

	forwarded, delivered, dropped atomic.Uint64
	badAt                         atomic.Int64 // last "bad message" log (unix nanos)
}

type remoteKey struct {
	hub    string
	inst   InstanceID
	client uint64
}

// remoteClient is a client of another hub, a member of objects here.
type remoteClient struct {
	key         remoteKey
	amf3        bool
	read, write bool // access to the object of the message being handled
	link        *hubLink
	subs        *sharedobject.Subscriptions
	log         *slog.Logger
}

func (r *remoteClient) ID() uint64               { return r.key.client }
func (r *remoteClient) AMF3() bool               { return r.amf3 }
func (r *remoteClient) Logger() *slog.Logger     { return r.log }
func (r *remoteClient) MayRead(string) bool      { return r.read }
func (r *remoteClient) MayWrite(string) bool     { return r.write }
func (r *remoteClient) SendSO(m message.Message) { r.link.push(r.key.inst, r.key.client, m) }

// startSORelay subscribes to this hub's inbox.
func (n *Node) startSORelay() error {
	n.so.remotes = make(map[remoteKey]*remoteClient)
	n.so.links = make(map[string]*hubLink)
	n.so.missing = make(map[string]int)
	n.so.apps = make(map[remoteKey]*session.Client)
	sub, err := n.nc.Subscribe(inbox(n.name), n.onInbox)
	if err != nil {
		return err
	}
	sub.SetPendingLimits(65536, 64<<20)
	n.so.sub = sub
	return nil
}

// bad logs a rejected message from NATS, at most once a second.
func (n *Node) bad(why string, attrs ...any) {
	n.so.dropped.Add(1)
	now := time.Now().UnixNano()
	if last := n.so.badAt.Load(); now-last < int64(time.Second) || !n.so.badAt.CompareAndSwap(last, now) {
		return
	}
	n.log.Warn("cluster: bad message from NATS dropped (logged at most once a second)", append([]any{"why", why}, attrs...)...)
}

// onInbox handles a message to this hub (one at a time).
func (n *Node) onInbox(msg *nats.Msg) {
	var w soWire
	if err := json.Unmarshal(msg.Data, &w); err != nil {
		n.bad("not JSON", "err", err.Error())
		return
	}
	if w.From == "" || w.From == n.name {
		n.bad("no sender", "kind", w.Kind)
		return
	}
	if n.onAppWire(msg, w.Kind) {
		return
	}
	switch w.Kind {
	case "so":
		if w.App == "" || w.Inst == "" || !soType(w.Type) {
			n.bad("bad so", "from", w.From)
			return
		}
		n.remoteSO(&w)
	case "gone":
		n.remoteGone(remoteKey{w.From, InstanceID{w.App, w.Inst}, w.Client})
	case "deliver":
		n.deliver(&w)
	case "reset":
		n.log.Warn("cluster: an owner hub dropped messages for this hub's clients; they use its objects again", "owner", w.From)
		n.resyncFrom(w.From)
	default:
		n.bad("unknown kind", "kind", w.Kind, "from", w.From)
	}
}

// remoteSO applies a shared object message of a client of another hub.
func (n *Node) remoteSO(w *soWire) {
	id := InstanceID{w.App, w.Inst}
	if _, here := n.InstanceOwner(id.App, id.Instance); !here {
		// The sender will find the owner (it looks the lease up) and
		// use its objects there.
		n.log.Debug("cluster: shared object message for an instance this hub does not own", "instance", id.String(), "from", w.From)
		return
	}
	if _, err := message.DecodeSharedObject(w.Payload, message.Type(w.Type) == message.TypeSharedObjectAMF3); err != nil {
		n.bad("shared object message does not decode", "from", w.From, "err", err.Error())
		return
	}
	sh, ok := n.hub.(SOHub)
	if !ok {
		return
	}
	key := remoteKey{w.From, id, w.Client}
	n.so.mu.Lock()
	defer n.so.mu.Unlock()
	rc := n.so.remotes[key]
	if rc == nil {
		if len(n.so.remotes) >= maxRemoteClients {
			n.bad("too many remote clients", "from", w.From)
			return
		}
		rc = &remoteClient{key: key, amf3: w.AMF3, link: n.linkLocked(w.From),
			log: n.log.With("hub", w.From, "client", w.Client, "app", id.App, "instance", id.Instance)}
		rc.subs = sh.SOSubscriptions(id.App, id.Instance, rc, rc)
		if rc.subs == nil {
			return
		}
		n.so.remotes[key] = rc
	}
	rc.read, rc.write = w.Read, w.Write
	m := message.Message{Type: message.Type(w.Type), ChunkStreamID: message.CSIDSharedOb, Payload: w.Payload}
	if err := rc.subs.Handle(&m); err != nil {
		n.bad("shared object message refused", "from", w.From, "err", err.Error())
	}
	n.so.forwarded.Add(1)
}

// remoteGone releases a remote client's objects.
func (n *Node) remoteGone(key remoteKey) {
	n.so.mu.Lock()
	rc := n.so.remotes[key]
	delete(n.so.remotes, key)
	if rc != nil {
		rc.subs.ReleaseAll()
	}
	n.so.mu.Unlock()
	if rc != nil {
		n.hub.DropIdleInstance(key.inst.App, key.inst.Instance)
	}
}

// deliver hands an owner's messages to this hub's clients.
func (n *Node) deliver(w *soWire) {
	sh, ok := n.hub.(SOHub)
	if !ok {
		return
	}
	for _, g := range w.Groups {
		if g.App == "" || g.Inst == "" || !soType(g.Type) || len(g.Clients) == 0 {
			n.bad("bad deliver group", "from", w.From)
			continue
		}
		if _, err := message.DecodeSharedObject(g.Payload, message.Type(g.Type) == message.TypeSharedObjectAMF3); err != nil {
			n.bad("delivered shared object message does not decode", "from", w.From, "err", err.Error())
			continue
		}
		sh.DeliverSO(g.App, g.Inst, g.Clients, message.Message{Type: message.Type(g.Type), ChunkStreamID: message.CSIDSharedOb, Payload: g.Payload})
		n.so.delivered.Add(1)
	}
}

// resyncFrom uses again, at owner, the objects of this hub's clients of
// the instances owner owns.
func (n *Node) resyncFrom(owner string) {
	sh, ok := n.hub.(SOHub)
	if !ok {
		return
	}
	n.imu.Lock()
	var ids []InstanceID
	for id, o := range n.follows {
		if o == owner {
			ids = append(ids, id)
		}
	}
	n.imu.Unlock()
	for _, id := range ids {
		sh.SOReroute(id.App, id.Instance, true)
	}
}

// ownerChanged moves the objects of the instance's clients here to its
// owner.
func (n *Node) ownerChanged(id InstanceID) {
	if sh, ok := n.hub.(SOHub); ok {
		sh.SOReroute(id.App, id.Instance, false)
	}
	if ah, ok := n.hub.(AppHub); ok {
		// Its clients connect again to the new owner's application: on a
		// goroutine, as they wait for it.
		n.spawn(func() { ah.AppReroute(id.App, id.Instance) })
	}
	if _, here := n.InstanceOwner(id.App, id.Instance); !here {
		n.dropRemotes(func(k remoteKey) bool { return k.inst == id })
		n.closeApps(func(k remoteKey) bool { return k.inst == id }, "this hub no longer owns the instance")
	}
}

// dropRemotes releases the remote clients keep selects.
func (n *Node) dropRemotes(sel func(remoteKey) bool) {
	n.so.mu.Lock()
	var dropped []InstanceID
	for k, rc := range n.so.remotes {
		if sel(k) {
			delete(n.so.remotes, k)
			rc.subs.ReleaseAll()
			dropped = append(dropped, k.inst)
		}
	}
	n.so.mu.Unlock()
	for _, id := range dropped {
		n.hub.DropIdleInstance(id.App, id.Instance)
	}
}

// sweepRemotes forgets the remote clients of hubs that left the cluster
// (missing from the membership twice running) and of instances this hub
// no longer owns.
func (n *Node) sweepRemotes() {
	n.so.mu.Lock()
	hubs := make(map[string]bool)
	for k := range n.so.remotes {
		hubs[k.hub] = true
	}
	for h := range n.so.links {
		hubs[h] = true
	}
	for k := range n.so.apps {
		hubs[k.hub] = true
	}
	n.so.mu.Unlock()
	if len(hubs) == 0 || !n.storeUp() {
		return
	}
	ctx, cancel := context.WithTimeout(n.ctx, opTimeout)
	nodes, err := n.Nodes(ctx)
	cancel()
	if err != nil {
		return
	}
	alive := make(map[string]bool, len(nodes))
	for _, nd := range nodes {
		alive[nd.Name] = true
	}
	gone := make(map[string]bool)
	n.so.mu.Lock()
	for h := range hubs {
		if alive[h] {
			delete(n.so.missing, h)
			continue
		}
		n.so.missing[h]++
		if n.so.missing[h] >= 2 {
			gone[h] = true
			delete(n.so.missing, h)
			if l := n.so.links[h]; l != nil {
				l.stop()
				delete(n.so.links, h)
			}
		}
	}
	n.so.mu.Unlock()
	for h := range gone {
		n.log.Info("cluster: hub left; its clients' shared objects here are released", "hub", h)
	}
	sel := func(k remoteKey) bool {
		if gone[k.hub] {
			return true
		}
		_, here := n.InstanceOwner(k.inst.App, k.inst.Instance)
		return !here
	}
	n.dropRemotes(sel)
	n.closeApps(sel, "its hub left, or this hub no longer owns the instance")
}

// ForwardSO sends a client's shared object message to the owner of its
// instance (see session.SORelay). It never blocks for long: NATS buffers
// it, and drops it when it cannot (the client is resynced when the owner
// changes).
func (n *Node) ForwardSO(owner, app, instance string, c session.RemoteSO, m message.Message) {
	b, _ := json.Marshal(soWire{Kind: "so", From: n.name, App: app, Inst: instance, Client: c.Client, AMF3: c.AMF3,
		Read: c.Read, Write: c.Write, Type: uint8(m.Type), Payload: m.Payload})
	if err := n.nc.Publish(inbox(owner), b); err != nil {
		n.trouble("forwarding a shared object message", err)
	}
}

// ForwardGone says a client's objects leave owner (see session.SORelay).
func (n *Node) ForwardGone(owner, app, instance string, client uint64) {
	b, _ := json.Marshal(soWire{Kind: "gone", From: n.name, App: app, Inst: instance, Client: client})
	if err := n.nc.Publish(inbox(owner), b); err != nil {
		n.trouble("forwarding a shared object release", err)
	}
}

// SOForwarded counts the shared object messages of other hubs' clients
// this hub applied as owner; SODelivered the messages from owners it
// delivered to its clients (one per group of clients); SODropped the bad
// messages from NATS it dropped.
func (n *Node) SOForwarded() uint64 { return n.so.forwarded.Load() }
func (n *Node) SODelivered() uint64 { return n.so.delivered.Load() }
func (n *Node) SODropped() uint64   { return n.so.dropped.Load() }

// linkLocked returns the link to hub, started if needed (n.so.mu held).
func (n *Node) linkLocked(hub string) *hubLink {
	l := n.so.links[hub]
	if l == nil {
		l = &hubLink{n: n, hub: hub, subject: inbox(hub), wake: make(chan struct{}, 1), quit: make(chan struct{})}
		n.so.links[hub] = l
		n.spawn(l.run)
	}
	return l
}

// hubLink is what this hub, an owner, sends to one edge hub: a bounded
// queue drained by one goroutine.
type hubLink struct {
	n       *Node
	hub     string
	subject string
	wake    chan struct{}
	quit    chan struct{}
	once    sync.Once

	mu    sync.Mutex
	q     []linkItem
	bytes int
	reset bool
}

type linkItem struct {
	inst   InstanceID
	client uint64
	m      message.Message
}

func (l *hubLink) stop() { l.once.Do(func() { close(l.quit) }) }

// push queues m for a client of the edge; a full queue is dropped and the
// edge told to resync (never blocks: an object is locked).
func (l *hubLink) push(inst InstanceID, client uint64, m message.Message) {
	l.mu.Lock()
	if len(l.q) >= maxLinkItems || l.bytes+len(m.Payload) > maxLinkBytes {
		if !l.reset {
			l.n.log.Warn("cluster: a hub does not keep up with its clients' shared objects; its queue is dropped and its clients resynced",
				"hub", l.hub, "queued", len(l.q), "bytes", l.bytes)
		}
		l.q, l.bytes, l.reset = l.q[:0], 0, true
	} else {
		l.q = append(l.q, linkItem{inst, client, m})
		l.bytes += len(m.Payload)
	}
	l.mu.Unlock()
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

func (l *hubLink) run() {
	var spare []linkItem
	for {
		select {
		case <-l.n.ctx.Done():
			return
		case <-l.quit:
			return
		case <-l.wake:
		}
		time.Sleep(linkLinger)
		l.mu.Lock()
		items, reset := l.q, l.reset
		l.q, l.bytes, l.reset = spare[:0], 0, false
		l.mu.Unlock()
		if reset {
			b, _ := json.Marshal(soWire{Kind: "reset", From: l.n.name})
			l.publish(b)
		}
		l.send(items)
		clear(items)
		spare = items
	}
}

// send publishes items in batches, each message once with its clients.
func (l *hubLink) send(items []linkItem) {
	type gkey struct {
		inst InstanceID
		typ  message.Type
		p    *byte
		n    int
	}
	var groups []soGroup
	index := make(map[gkey]int)
	size := 0
	flush := func() {
		if len(groups) == 0 {
			return
		}
		b, _ := json.Marshal(soWire{Kind: "deliver", From: l.n.name, Groups: groups})
		l.publish(b)
		groups, size = nil, 0
		clear(index)
	}
	for _, it := range items {
		if len(it.m.Payload) == 0 {
			continue
		}
		k := gkey{it.inst, it.m.Type, &it.m.Payload[0], len(it.m.Payload)}
		if i, ok := index[k]; ok {
			groups[i].Clients = append(groups[i].Clients, it.client)
			continue
		}
		if size+len(it.m.Payload) > maxBatchBytes {
			flush()
		}
		index[k] = len(groups)
		groups = append(groups, soGroup{App: it.inst.App, Inst: it.inst.Instance, Type: uint8(it.m.Type), Payload: it.m.Payload, Clients: []uint64{it.client}})
		size += len(it.m.Payload)
	}
	flush()
}

func (l *hubLink) publish(b []byte) {
	if err := l.n.nc.Publish(l.subject, b); err != nil {
		l.n.trouble("sending shared object messages to hub "+l.hub, err)
	}
}

// soStore keeps persistent shared objects in the rtmphub_sharedobjects
// bucket (see sharedobject.Store). A save is a compare-and-set at the
// revision this hub loaded or saved last: a hub that owned an instance
// during a partition, or after another hub took it over, cannot overwrite
// what the other owner saved since (its save fails with a log line).
type soStore struct {
	n *Node

	mu   sync.Mutex
	revs map[string]uint64 // key → revision loaded or saved here; 0: absent when loaded
}

// SOStore is the store of persistent shared objects for the hub's
// instances (session.Config.SOStore).
func (n *Node) SOStore() sharedobject.Store {
	n.soStoreOnce.Do(func() { n.soStore = &soStore{n: n, revs: make(map[string]uint64)} })
	return n.soStore
}

func soKey(app, instance, name string) string {
	return StreamID{app, instance, name}.key()
}

// maxStoreRevs bounds the revisions remembered (one per persistent
// object loaded here); past it, the oldest are not told apart: the map is
// cleared, and a save of an object loaded before is a plain put.
const maxStoreRevs = 100000

func (s *soStore) Load(app, instance, name string) ([]byte, bool, error) {
	n := s.n
	if !n.storeUp() {
		return nil, false, errDisconnected
	}
	ctx, cancel := context.WithTimeout(n.ctx, opTimeout)
	defer cancel()
	key := soKey(app, instance, name)
	e, err := n.soKV.Get(ctx, key)
	var rev uint64
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
	case err != nil:
		return nil, false, err
	default:
		rev = e.Revision()
	}
	s.mu.Lock()
	if len(s.revs) >= maxStoreRevs {
		clear(s.revs)
	}
	s.revs[key] = rev
	s.mu.Unlock()
	if rev == 0 {
		return nil, false, nil
	}
	return e.Value(), true, nil
}

// ErrStaleSave refuses a save: another owner saved the object since
// this hub loaded it.
var ErrStaleSave = errors.New("cluster: shared object saved by another owner since it was loaded here; this copy is not saved")

func (s *soStore) Save(app, instance, name string, data []byte) error {
	n := s.n
	if !n.storeUp() {
		return errDisconnected
	}
	// Not the node's context: an object unloaded as the hub shuts down is
	// saved too.
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	key := soKey(app, instance, name)
	s.mu.Lock()
	rev, known := s.revs[key]
	s.mu.Unlock()
	var nrev uint64
	var err error
	switch {
	case !known:
		nrev, err = n.soKV.Put(ctx, key, data)
	case rev == 0:
		nrev, err = n.soKV.Create(ctx, key, data)
	default:
		nrev, err = n.soKV.Update(ctx, key, data, rev)
	}
	if conflict(err) {
		return ErrStaleSave
	}
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.revs[key] = nrev
	s.mu.Unlock()
	return nil
}
