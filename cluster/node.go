package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/rtmphub/rtmphub/session"
	"github.com/rtmphub/rtmphub/session/live"
)

// Config describes a hub's place in the cluster. Zero values are
// defaults (filled in by New).
type Config struct {
	// Servers are the NATS URLs to join (nats://host:4222). Empty with
	// Embedded set: the embedded server.
	Servers []string
	// Embedded, when set, runs a NATS server in this process.
	Embedded *Embedded
	// Name is this hub's name in the cluster (default: the host name).
	Name string
	// Advertise is the host:port other hubs pull this hub's streams from.
	Advertise string
	// Secret is shared by the hubs: it signs pulls (see auth.go).
	Secret string
	// TTL is how long a node's heartbeat and a stream's claim outlive
	// their last refresh (default 6s); both are refreshed every TTL/3.
	TTL time.Duration
	// OwnerTTL is how long an application instance's ownership (its
	// lease) outlives its owner's last renewal (default 3s): a hub
	// that died leaves its instances to another hub within about
	// OwnerTTL and a sixth of it. Renewed every OwnerTTL/3.
	OwnerTTL time.Duration
	// Linger keeps a pull this long after its last local reader left
	// (default 3s).
	Linger time.Duration
	// Grace is how long the readers of a pull wait, without being told,
	// for their stream to come back on some hub when its origin hub
	// vanished (died, or lost its publisher's connection with it) and its
	// claim expired: the hub's publisher grace. 0: they are told at once.
	Grace time.Duration
	// Replicas of the buckets (default 1; at most the NATS servers).
	Replicas int
	// Load reports this hub's load for its heartbeat (default: the
	// hub's clients, when it has Stats).
	Load func() int
	// Dial opens pull connections; default TCP.
	Dial func(ctx context.Context, addr string) (net.Conn, error)
	Log  *slog.Logger
}

// Embedded is an in-process NATS server.
type Embedded struct {
	// Listen is its client address (host:port; port 0 or -1: any).
	Listen string
	// RouteListen is its cluster (route) address; "" is no route listener
	// unless Routes are given (then Listen's host, any port... see New).
	RouteListen string
	// Routes are the other hubs' route addresses (host:port or nats-route://).
	Routes []string
	// StoreDir keeps its JetStream data.
	StoreDir string
}

// Hub is what a Node needs of the hub it serves (a *session.Server).
type Hub interface {
	PublishPull(app, instance, stream string, src live.Source) (*live.Publication, error)
	PublishedHere(app, instance, stream string) bool
	PublisherVanished(app, instance, stream string) bool
	StreamReaders(app, instance, stream string) int
	DropIdleInstance(app, instance string)
	InstanceLoaded(app, instance string) (loaded bool, clients int)
}

// Node is a hub's membership of the cluster. It implements
// session.Cluster.
type Node struct {
	cfg    Config
	name   string
	secret []byte
	log    *slog.Logger
	ns     *server.Server // embedded, or nil
	nc     *nats.Conn
	hub    Hub

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	ready   atomic.Bool // buckets made
	nodesKV jetstream.KeyValue
	strKV   jetstream.KeyValue
	ownKV   jetstream.KeyValue
	soKV    jetstream.KeyValue // persistent shared objects (sorelay.go)

	so          soRelay // shared objects across hubs (sorelay.go)
	appFwd      atomic.Uint64
	soStoreOnce sync.Once
	// spawnMu and closing keep goroutines started from callbacks (spawn)
	// from being added to wg once Close waits for it.
	spawnMu sync.Mutex
	closing bool
	soStore *soStore

	// Application instances (owners.go), under imu.
	imu       sync.Mutex
	leases    map[InstanceID]*lease // instances this hub owns
	follows   map[InstanceID]string // instances used here, owned by another hub → its name
	takeovers atomic.Uint64

	mu     sync.Mutex
	claims map[StreamID]uint64 // streams this hub publishes → revision of its claim
	// claimedAt is when each claim was made: the publish it was made for
	// follows it, so a claim is not released for lack of one just after.
	claimedAt map[StreamID]time.Time
	pulls     map[StreamID]*pull
	// missed are the streams readers waited for while the cluster could
	// not be reached: asked for again when it can (wantMissed).
	missed map[StreamID]struct{}

	// rebuild asks the run loop to make the buckets again: NATS came back,
	// and a server that restarted lost them (they are in memory); kick
	// wakes the loop for it.
	rebuild atomic.Bool
	kick    chan struct{}

	// failing is set while the cluster's store fails (one log line when
	// it starts failing, one when it works again, not one per attempt).
	failing atomic.Bool

	nodeCount   atomic.Int64
	pullsTotal  atomic.Uint64
	warnedUnrdy atomic.Bool
}

const (
	nodesBucket   = "rtmphub_nodes"
	streamsBucket = "rtmphub_streams"
	ownersBucket  = "rtmphub_owners"
	opTimeout     = 2 * time.Second
)

// New joins the cluster: it starts the embedded server if configured and
// connects. The buckets are made in the background (retried until the
// NATS cluster can make them); until then claims are allowed (fail open)
// and nothing is pulled. Attach the hub before serving.
func New(cfg Config) (*Node, error) {
	if cfg.Name == "" {
		cfg.Name, _ = os.Hostname()
	}
	if cfg.TTL <= 0 {
		cfg.TTL = 6 * time.Second
	}
	if cfg.OwnerTTL <= 0 {
		cfg.OwnerTTL = 3 * time.Second
	}
	if cfg.Linger <= 0 {
		cfg.Linger = 3 * time.Second
	}
	if cfg.Replicas <= 0 {
		cfg.Replicas = 1
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	n := &Node{cfg: cfg, name: cfg.Name, secret: []byte(cfg.Secret), log: cfg.Log.With("node", cfg.Name),
		claims: make(map[StreamID]uint64), claimedAt: make(map[StreamID]time.Time), pulls: make(map[StreamID]*pull),
		missed: make(map[StreamID]struct{}), kick: make(chan struct{}, 1),
		leases: make(map[InstanceID]*lease), follows: make(map[InstanceID]string)}
	urls := cfg.Servers
	if cfg.Embedded != nil {
		ns, err := startEmbedded(cfg.Name, cfg.Embedded)
		if err != nil {
			return nil, err
		}
		n.ns = ns
		if len(urls) == 0 {
			urls = []string{ns.ClientURL()}
		}
		n.log.Info("cluster: embedded NATS server", "client", ns.ClientURL(), "routes", cfg.Embedded.Routes)
	}
	if len(urls) == 0 {
		return nil, errors.New("cluster: no NATS servers")
	}
	nc, err := nats.Connect(joinURLs(urls), nats.Name("rtmphub "+cfg.Name), nats.MaxReconnects(-1),
		nats.ReconnectWait(500*time.Millisecond), nats.RetryOnFailedConnect(true),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			n.log.Warn("cluster: NATS disconnected", "err", errString(err))
		}),
		nats.ReconnectHandler(func(c *nats.Conn) {
			n.log.Info("cluster: NATS reconnected", "url", c.ConnectedUrl())
			n.rebuild.Store(true)
			select {
			case n.kick <- struct{}{}:
			default:
			}
		}))
	if err != nil {
		n.shutdownEmbedded()
		return nil, fmt.Errorf("cluster: connect: %w", err)
	}
	n.nc = nc
	n.ctx, n.cancel = context.WithCancel(context.Background())
	return n, nil
}

func joinURLs(us []string) string {
	s := ""
	for i, u := range us {
		if i > 0 {
			s += ","
		}
		s += u
	}
	return s
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func startEmbedded(name string, e *Embedded) (*server.Server, error) {
	host, port, err := splitHostPort(e.Listen)
	if err != nil {
		return nil, fmt.Errorf("cluster: embedded listen %q: %w", e.Listen, err)
	}
	opts := &server.Options{ServerName: name, Host: host, Port: port, JetStream: true,
		StoreDir: e.StoreDir, NoSigs: true, NoLog: true}
	if e.StoreDir == "" {
		return nil, errors.New("cluster: embedded NATS needs a store dir")
	}
	if err := os.MkdirAll(filepath.Clean(e.StoreDir), 0o755); err != nil {
		return nil, err
	}
	if e.RouteListen != "" || len(e.Routes) > 0 {
		rl := e.RouteListen
		if rl == "" {
			rl = net.JoinHostPort(host, "-1")
		}
		rh, rp, err := splitHostPort(rl)
		if err != nil {
			return nil, fmt.Errorf("cluster: embedded route listen %q: %w", rl, err)
		}
		opts.Cluster = server.ClusterOpts{Name: "rtmphub", Host: rh, Port: rp}
		var routes []string
		for _, r := range e.Routes {
			if !hasScheme(r) {
				r = "nats-route://" + r
			}
			routes = append(routes, r)
		}
		opts.Routes = server.RoutesFromStr(joinURLs(routes))
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("cluster: embedded NATS: %w", err)
	}
	ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		ns.Shutdown()
		return nil, errors.New("cluster: embedded NATS did not start within 10s")
	}
	return ns, nil
}

func hasScheme(s string) bool {
	for i := 0; i+2 < len(s); i++ {
		if s[i:i+3] == "://" {
			return true
		}
	}
	return false
}

func splitHostPort(a string) (string, int, error) {
	h, p, err := net.SplitHostPort(a)
	if err != nil {
		return "", 0, err
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		return "", 0, err
	}
	if n == 0 {
		n = -1 // nats-server: -1 is any free port (0 is its default)
	}
	return h, n, nil
}

// ClientURL is the embedded server's client URL ("" without one).
func (n *Node) ClientURL() string {
	if n.ns == nil {
		return ""
	}
	return n.ns.ClientURL()
}

// RouteAddr is the embedded server's route address ("" without one).
func (n *Node) RouteAddr() string {
	if n.ns == nil || n.ns.ClusterAddr() == nil {
		return ""
	}
	return n.ns.ClusterAddr().String()
}

// Name is this hub's name in the cluster.
func (n *Node) Name() string { return n.name }

// SetAdvertise sets the address other hubs pull from, when it is known
// only once the hub listens; call it before Attach.
func (n *Node) SetAdvertise(addr string) { n.cfg.Advertise = addr }

// Attach gives the node its hub and starts its loops: buckets, heartbeat,
// claims' refresh. Call it once.
func (n *Node) Attach(h Hub) {
	n.hub = h
	if err := n.startSORelay(); err != nil {
		n.log.Error("cluster: cannot subscribe to this hub's inbox; shared objects are not shared across hubs", "err", err.Error())
	}
	n.wg.Add(1)
	go n.run()
}

// Close leaves the cluster: pulls end, this hub's claims and heartbeat
// are deleted (its streams can be published elsewhere at once), and the
// embedded server stops.
func (n *Node) Close() {
	n.spawnMu.Lock()
	n.closing = true
	n.spawnMu.Unlock()
	n.cancel()
	if n.so.sub != nil {
		n.so.sub.Unsubscribe()
	}
	n.wg.Wait()
	n.mu.Lock()
	pulls := make([]*pull, 0, len(n.pulls))
	for _, p := range n.pulls {
		pulls = append(pulls, p)
	}
	claims := n.claims
	n.claims = make(map[StreamID]uint64)
	n.mu.Unlock()
	for _, p := range pulls {
		p.stop()
	}
	for _, p := range pulls {
		<-p.done
	}
	n.imu.Lock()
	leases := n.leases
	n.leases = make(map[InstanceID]*lease)
	n.imu.Unlock()
	if n.ready.Load() && n.nc.IsConnected() {
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		for id, rev := range claims {
			n.strKV.Delete(ctx, id.key(), jetstream.LastRevision(rev))
		}
		// Another hub may own these instances at once.
		for id, l := range leases {
			if l.rev != 0 {
				n.ownKV.Delete(ctx, id.key(), jetstream.LastRevision(l.rev))
			}
		}
		n.nodesKV.Delete(ctx, nodeKey(n.name))
		cancel()
	}
	if n.nc.IsConnected() {
		n.nc.Drain()
	} else {
		n.nc.Close()
	}
	n.shutdownEmbedded()
}

// spawn runs f on a goroutine that Close waits for; false (f not run)
// once the node is closing.
func (n *Node) spawn(f func()) bool {
	n.spawnMu.Lock()
	defer n.spawnMu.Unlock()
	if n.closing {
		return false
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		f()
	}()
	return true
}

func (n *Node) shutdownEmbedded() {
	if n.ns != nil {
		n.ns.Shutdown()
		n.ns.WaitForShutdown()
	}
}

// run makes the buckets (retrying), then heartbeats and refreshes claims
// every TTL/3 until Close.
func (n *Node) run() {
	defer n.wg.Done()
	wait := 200 * time.Millisecond
	for !n.ready.Load() {
		if err := n.setup(); err != nil {
			n.log.Debug("cluster: buckets not ready", "err", err.Error())
			select {
			case <-n.ctx.Done():
				return
			case <-time.After(wait):
			}
			wait = min(2*wait, 2*time.Second)
			continue
		}
		n.ready.Store(true)
		n.log.Info("cluster: joined", "advertise", n.cfg.Advertise, "nats", n.nc.ConnectedUrl())
	}
	n.wg.Add(2)
	go n.watchDirectory()
	go n.runOwners()
	t := time.NewTicker(n.cfg.TTL / 3)
	defer t.Stop()
	for {
		if n.rebuild.Load() {
			// After an outage: the buckets (and so the membership and
			// the directory) are made again if the server lost them;
			// the heartbeat and the claims' refresh below fill them.
			if _, _, _, err := n.buckets(); err != nil {
				n.trouble("making the buckets again", err)
			} else if _, err := n.soBucket(); err != nil {
				n.trouble("making the shared objects' bucket again", err)
			} else {
				n.rebuild.Store(false)
			}
		}
		n.heartbeat()
		n.refreshClaims()
		n.wantMissed()
		select {
		case <-n.ctx.Done():
			return
		case <-t.C:
		case <-n.kick:
		}
	}
}

func (n *Node) setup() error {
	nk, sk, ok, err := n.buckets()
	if err != nil {
		return err
	}
	sok, err := n.soBucket()
	if err != nil {
		return err
	}
	n.nodesKV, n.strKV, n.ownKV, n.soKV = nk, sk, ok, sok
	return nil
}

// buckets makes the buckets, or updates them (a bucket that exists is
// kept as it is).
func (n *Node) buckets() (nodes, streams, owners jetstream.KeyValue, err error) {
	ctx, cancel := context.WithTimeout(n.ctx, 5*time.Second)
	defer cancel()
	js, err := jetstream.New(n.nc)
	if err != nil {
		return nil, nil, nil, err
	}
	mk := func(bucket string, ttl time.Duration) (jetstream.KeyValue, error) {
		return js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: bucket, TTL: ttl,
			History: 1, Storage: jetstream.MemoryStorage, Replicas: n.cfg.Replicas})
	}
	nk, err := mk(nodesBucket, n.cfg.TTL)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("bucket %s: %w", nodesBucket, err)
	}
	sk, err := mk(streamsBucket, n.cfg.TTL)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("bucket %s: %w", streamsBucket, err)
	}
	// Instances' leases: a lease is its bucket's TTL (the age of its last
	// renewal), as a stream's claim is.
	ok, err := mk(ownersBucket, n.cfg.OwnerTTL)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("bucket %s: %w", ownersBucket, err)
	}
	return nk, sk, ok, nil
}

// soBucket makes the bucket of persistent shared objects: on disk, no
// TTL, replicated as the others.
func (n *Node) soBucket() (jetstream.KeyValue, error) {
	ctx, cancel := context.WithTimeout(n.ctx, 5*time.Second)
	defer cancel()
	js, err := jetstream.New(n.nc)
	if err != nil {
		return nil, err
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: soBucket, History: 1,
		Storage: jetstream.FileStorage, Replicas: n.cfg.Replicas})
	if err != nil {
		return nil, fmt.Errorf("bucket %s: %w", soBucket, err)
	}
	return kv, nil
}

// Ready reports whether the node joined (its buckets are made).
func (n *Node) Ready() bool { return n.ready.Load() }

// nodeRecord is a node's heartbeat.
type nodeRecord struct {
	Name      string    `json:"name"`
	Advertise string    `json:"advertise"`
	Load      int       `json:"load"`
	Pulls     int       `json:"pulls"`
	At        time.Time `json:"at"`
}

// claimRecord is a stream's owner.
type claimRecord struct {
	Node      string    `json:"node"`
	Advertise string    `json:"advertise"`
	Since     time.Time `json:"since"`
	// Vanished: the owner's publisher dropped and the owner waits for it
	// (its grace); the publisher may reconnect to another hub, which
	// then takes the stream over.
	Vanished bool `json:"vanished,omitempty"`
}

func (n *Node) heartbeat() {
	n.mu.Lock()
	pulls := len(n.pulls)
	n.mu.Unlock()
	load := 0
	if n.cfg.Load != nil {
		load = n.cfg.Load()
	} else if st, ok := n.hub.(interface{ Stats() *session.Stats }); ok {
		load = int(st.Stats().Connections.Load())
	}
	b, _ := json.Marshal(nodeRecord{Name: n.name, Advertise: n.cfg.Advertise, Load: load, Pulls: pulls, At: time.Now().UTC()})
	ctx, cancel := context.WithTimeout(n.ctx, opTimeout)
	defer cancel()
	_, err := n.nodesKV.Put(ctx, nodeKey(n.name), b)
	if n.ctx.Err() != nil {
		return
	}
	n.trouble("heartbeat", err)
	if nodes, err := n.Nodes(ctx); err == nil {
		n.nodeCount.Store(int64(len(nodes)))
	}
}

// NodeCount is the nodes seen alive at the last heartbeat.
func (n *Node) NodeCount() int { return int(n.nodeCount.Load()) }

// alive reports whether node has a heartbeat record (an error counts as
// alive: never take a stream from a node we cannot see).
func (n *Node) alive(ctx context.Context, node string) bool {
	_, err := n.nodesKV.Get(ctx, nodeKey(node))
	return !errors.Is(err, jetstream.ErrKeyNotFound)
}

// trouble logs the first failure of an outage and the recovery after it:
// while NATS is unreachable the loops fail every tick and a publish may
// fail each time, which would flood the log.
func (n *Node) trouble(what string, err error) {
	if err == nil {
		if n.failing.Swap(false) {
			n.log.Info("cluster: store reachable again", "after", what)
		}
		return
	}
	if !n.failing.Swap(true) {
		n.log.Warn("cluster: store failing; this hub keeps serving what it has (logged once per outage)", "during", what, "err", err.Error())
	}
}
