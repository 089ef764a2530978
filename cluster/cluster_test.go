package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rtmphub/rtmphub/rtmp/amf"
	"github.com/rtmphub/rtmphub/rtmp/client"
	"github.com/rtmphub/rtmphub/rtmp/message"
	"github.com/rtmphub/rtmphub/session"
	"github.com/rtmphub/rtmphub/session/live"
	"github.com/rtmphub/rtmphub/session/sessiontest"
)

// testLog is a debug logger into a buffer printed when the test fails.
func testLog(t *testing.T, name string) *slog.Logger {
	logs := &sessiontest.LogBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("log of %s:\n%s", name, logs.String())
		}
	})
	return slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// embedded starts a node with an embedded NATS server on a random port.
func embedded(t *testing.T, name string, ttl time.Duration) *Node {
	t.Helper()
	n, err := New(Config{Name: name, Secret: "s3cret", TTL: ttl, Linger: time.Second, Log: testLog(t, name),
		Embedded: &Embedded{Listen: "127.0.0.1:0", StoreDir: t.TempDir()}})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// joined starts a node of the NATS server at url.
func joined(t *testing.T, name, url string, ttl time.Duration) *Node {
	t.Helper()
	n, err := New(Config{Name: name, Secret: "s3cret", TTL: ttl, Linger: time.Second, Log: testLog(t, name),
		Servers: []string{url}})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// fakeHub publishes what its node claimed, for directory tests.
type fakeHub struct {
	mu        sync.Mutex
	published map[StreamID]bool
	instances map[InstanceID]int // clients of loaded instances
}

func (h *fakeHub) PublishPull(string, string, string, live.Source) (*live.Publication, error) {
	return nil, errors.New("fake hub: no pulls")
}
func (h *fakeHub) PublishedHere(app, inst, stream string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.published[StreamID{app, inst, stream}]
}
func (h *fakeHub) set(id StreamID, on bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.published == nil {
		h.published = make(map[StreamID]bool)
	}
	h.published[id] = on
}
func (h *fakeHub) PublisherVanished(string, string, string) bool { return false }
func (h *fakeHub) StreamReaders(string, string, string) int      { return 0 }
func (h *fakeHub) DropIdleInstance(string, string)               {}
func (h *fakeHub) InstanceLoaded(app, inst string) (bool, int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	k := h.instances[InstanceID{app, inst}]
	return k > 0, k
}

// setClients sets the clients of an instance (0: not loaded).
func (h *fakeHub) setClients(id InstanceID, k int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.instances == nil {
		h.instances = make(map[InstanceID]int)
	}
	h.instances[id] = k
}

func waitReady(t *testing.T, ns ...*Node) {
	t.Helper()
	sessiontest.Eventually(t, 10*time.Second, "nodes joined", func() bool {
		for _, n := range ns {
			if !n.Ready() {
				return false
			}
		}
		return true
	})
}

// kill stops a node as kill -9 would, as far as the cluster sees: no
// more heartbeats or refreshes, nothing deleted.
func (n *Node) kill() {
	n.cancel()
	n.wg.Wait()
	n.nc.Close()
}

func TestKeysRoundTrip(t *testing.T) {
	for _, id := range []StreamID{
		{"live", "_definst_", "cam1"},
		{"live", "room/7", "a.b c*>?&=/é"},
		{"app.x", "i", strings.Repeat("z", 300)},
		{"a", "", "s"},
	} {
		k := id.key()
		for _, r := range k {
			if !strings.ContainsRune("-_=.abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", r) {
				t.Errorf("%v: key %q has %q", id, k, r)
			}
		}
		got, err := parseKey(k)
		if err != nil || got != id {
			t.Errorf("%v: parseKey(%q) = %v, %v", id, k, got, err)
		}
	}
}

func TestPullToken(t *testing.T) {
	secret := []byte("k")
	now := time.Now()
	id := StreamID{"live", "_definst_", "cam"}
	play := session.AuthRequest{Action: session.AuthPlay, App: "live", Instance: "_definst_", Stream: "cam",
		Query: pullQuery(secret, "b", session.AuthPlay, id, now)}
	conn := session.AuthRequest{Action: session.AuthConnect, App: "live", Instance: "_definst_",
		Query: pullQuery(secret, "b", session.AuthConnect, id, now)}
	if !validPull(secret, play, now) || !validPull(secret, conn, now) {
		t.Fatal("valid tokens refused")
	}
	bad := []struct {
		name string
		req  session.AuthRequest
		s    []byte
		at   time.Time
	}{
		{"other stream", func() session.AuthRequest { r := play; r.Stream = "cam2"; return r }(), secret, now},
		{"other secret", play, []byte("x"), now},
		{"no secret", play, nil, now},
		{"expired", play, secret, now.Add(tokenLife + time.Minute)},
		{"publish", func() session.AuthRequest { r := play; r.Action = session.AuthPublish; return r }(), secret, now},
		{"connect token on play", func() session.AuthRequest { r := play; r.Query = conn.Query; return r }(), secret, now},
		{"no token", session.AuthRequest{Action: session.AuthPlay, App: "live", Instance: "_definst_", Stream: "cam"}, secret, now},
	}
	for _, c := range bad {
		if validPull(c.s, c.req, c.at) {
			t.Errorf("%s: accepted", c.name)
		}
	}
	if !isPull(play.Query) || isPull("token=abc") {
		t.Error("isPull")
	}
	// The authorizer: a valid pull bypasses a denying authorizer; nothing else does.
	n := &Node{secret: secret}
	deny := func(context.Context, session.AuthRequest) error { return &session.DenyError{Description: "no"} }
	a := n.Authorizer(deny)
	if err := a(context.Background(), play); err != nil {
		t.Errorf("pull denied: %v", err)
	}
	if err := a(context.Background(), session.AuthRequest{Action: session.AuthPlay, App: "live", Stream: "cam"}); err == nil {
		t.Error("an outsider's play was allowed")
	}
	// A valid pull's socket keeps TCP_NODELAY; nothing else's.
	if !n.Relay("live", "_definst_", "cam", play.Query) || n.Relay("live", "_definst_", "cam2", play.Query) ||
		n.Relay("live", "_definst_", "cam", "token=x") {
		t.Error("Relay")
	}
}

// Two nodes claim the same names at once: exactly one wins each.
func TestClaimRace(t *testing.T) {
	a := embedded(t, "a", 6*time.Second)
	b := joined(t, "b", a.ClientURL(), 6*time.Second)
	ha, hb := &fakeHub{}, &fakeHub{}
	a.Attach(ha)
	b.Attach(hb)
	t.Cleanup(func() { b.Close(); a.Close() })
	waitReady(t, a, b)
	const N = 30
	var wins [2]atomic.Int32
	var wg sync.WaitGroup
	for i := range N {
		id := StreamID{"live", "_definst_", fmt.Sprintf("s%d", i)}
		start := make(chan struct{})
		for j, n := range []*Node{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				err := n.Claim(id.App, id.Instance, id.Stream)
				var taken *TakenError
				switch {
				case err == nil:
					wins[j].Add(1)
					[]*fakeHub{ha, hb}[j].set(id, true)
				case errors.As(err, &taken):
				default:
					t.Errorf("%s claim %v: %v", n.name, id, err)
				}
			}()
		}
		close(start)
	}
	wg.Wait()
	if got := wins[0].Load() + wins[1].Load(); got != N {
		t.Fatalf("%d wins for %d names (a %d, b %d)", got, N, wins[0].Load(), wins[1].Load())
	}
	t.Logf("a won %d, b won %d", wins[0].Load(), wins[1].Load())
	// The directory agrees with the winners.
	ctx := sessiontest.Ctx(t, 5*time.Second)
	streams, err := a.Streams(ctx)
	if err != nil || len(streams) != N {
		t.Fatalf("directory: %d streams, %v", len(streams), err)
	}
	for _, s := range streams {
		h := map[string]*fakeHub{"a": ha, "b": hb}[s.Origin]
		if h == nil || !h.PublishedHere(s.App, s.Instance, s.Stream) {
			t.Errorf("%s/%s owned by %q, which did not win it", s.Instance, s.Stream, s.Origin)
		}
	}
	// A claim the node holds is its own to claim again; a release frees it.
	s0 := StreamID{"live", "_definst_", "s0"}
	owner, loser, hown := a, b, ha
	if o, _, _, _ := a.Owner(ctx, s0); o == "b" {
		owner, loser, hown = b, a, hb
	}
	if err := owner.Claim(s0.App, s0.Instance, s0.Stream); err != nil {
		t.Fatalf("owner's second claim: %v", err)
	}
	hown.set(s0, false)
	owner.Released(s0.App, s0.Instance, s0.Stream)
	sessiontest.Eventually(t, 5*time.Second, "released claim", func() bool {
		_, _, found, _ := owner.Owner(ctx, s0)
		return !found
	})
	if err := loser.Claim(s0.App, s0.Instance, s0.Stream); err != nil {
		t.Fatalf("claim after release: %v", err)
	}
}

// A dead owner's claim stays while its heartbeat may be alive and
// expires with the TTL; another node then claims the stream.
func TestClaimExpiresWithDeadOwner(t *testing.T) {
	const ttl = 1500 * time.Millisecond
	srv := embedded(t, "nats", ttl) // serves NATS only
	srv.Attach(&fakeHub{})
	t.Cleanup(srv.Close)
	a := joined(t, "a", srv.ClientURL(), ttl)
	b := joined(t, "b", srv.ClientURL(), ttl)
	ha := &fakeHub{}
	a.Attach(ha)
	b.Attach(&fakeHub{})
	t.Cleanup(b.Close)
	waitReady(t, srv, a, b)
	id := StreamID{"live", "_definst_", "cam"}
	if err := a.Claim(id.App, id.Instance, id.Stream); err != nil {
		t.Fatal(err)
	}
	ha.set(id, true)
	// Refreshed past several TTLs while a lives.
	time.Sleep(2 * ttl)
	var taken *TakenError
	if err := b.Claim(id.App, id.Instance, id.Stream); !errors.As(err, &taken) || taken.Node != "a" {
		t.Fatalf("claim of a live owner's stream: %v", err)
	}
	a.kill()
	died := time.Now()
	if err := b.Claim(id.App, id.Instance, id.Stream); !errors.As(err, &taken) {
		t.Fatalf("claim just after the owner died: %v", err)
	}
	var took time.Duration
	sessiontest.Eventually(t, 4*ttl, "claim after the owner's TTL", func() bool {
		if b.Claim(id.App, id.Instance, id.Stream) == nil {
			took = time.Since(died)
			return true
		}
		return false
	})
	t.Logf("claimed %v after the owner died (TTL %v)", took.Round(10*time.Millisecond), ttl)
	node, _, found, _ := b.Owner(sessiontest.Ctx(t, 2*time.Second), id)
	if !found || node != "b" {
		t.Fatalf("owner %q %v", node, found)
	}
}

// hub is a session server serving RTMP, in the cluster.
type hub struct {
	node *Node
	srv  *session.Server
	base string // rtmp://host:port
}

func startHub(t *testing.T, name string, node *Node) *hub {
	t.Helper()
	return startHubGrace(t, name, node, -1)
}

func startHubGrace(t *testing.T, name string, node *Node, grace time.Duration) *hub {
	t.Helper()
	log := testLog(t, name+" server")
	srv := session.NewServer(session.Config{DataDir: t.TempDir(), Cluster: node, Owners: node, SORelay: node, AppRelay: node, SOStore: node.SOStore(),
		Authorize: node.Authorizer(nil), SOSyncInterval: 20 * time.Millisecond,
		PublisherGrace: grace}, log)
	base := sessiontest.Serve(t, srv)
	node.SetAdvertise(strings.TrimPrefix(base, "rtmp://"))
	node.Attach(srv)
	t.Cleanup(node.Close)
	return &hub{node: node, srv: srv, base: base}
}

// Players on B get a stream published on A through one pull, which ends
// after they leave; a publisher of the same name on B is refused.
func TestPullBetweenHubs(t *testing.T) {
	na := embedded(t, "a", 3*time.Second)
	nb := joined(t, "b", na.ClientURL(), 3*time.Second)
	a, b := startHub(t, "a", na), startHub(t, "b", nb)
	waitReady(t, na, nb)

	pub := sessiontest.Publish(t, a.base+"/live", "cam", "live")
	pub.Header(t, nil)
	pub.Frames(t, 0, 25, 25)
	pub.Sync(t)

	// Two RTMP players on B: one pull.
	p1, id1 := sessiontest.Play(t, b.base+"/live", "cam")
	p2, id2 := sessiontest.Play(t, b.base+"/live", "cam")
	go func() {
		for i := 25; i < 200 && t.Context().Err() == nil; i++ {
			err := pub.C.WriteMessages([]message.Message{{Type: message.TypeVideo, StreamID: pub.MsID,
				Timestamp: uint32(i * 40), Payload: sessiontest.VideoFrame(i, 25)}})
			if err != nil {
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	got := func(name string, c *clientConn, msid uint32) int {
		last := -1
		for range 60 {
			m := sessiontest.NextMedia(t, c, msid)
			if m.Type == message.TypeVideo {
				if i := sessiontest.FrameIndex(m.Payload); i >= 0 {
					if last >= 0 && i != last+1 {
						t.Errorf("%s: frame %d after %d", name, i, last)
					}
					last = i
				}
			}
		}
		return last
	}
	if l := got("p1", p1, id1); l < 0 {
		t.Fatal("p1 got no frames")
	}
	if l := got("p2", p2, id2); l < 0 {
		t.Fatal("p2 got no frames")
	}
	if ps := nb.Pulls(); len(ps) != 1 || ps[0].Origin != "a" || !ps[0].Connected {
		t.Fatalf("b's pulls: %+v", ps)
	}
	if ps := na.Pulls(); len(ps) != 0 {
		t.Fatalf("a pulls: %+v", ps)
	}
	// A publisher of the name on B is refused while A has it.
	c := sessiontest.Dial(t, b.base+"/live", clientOptions())
	ctx := sessiontest.Ctx(t, 5*time.Second)
	msid, err := c.CreateStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Publish(ctx, msid, "cam", "live"); err == nil || !strings.Contains(err.Error(), "BadName") {
		t.Fatalf("second publisher on b: %v", err)
	}
	c.Close()
	// The pull ends after the players leave.
	p1.Close()
	p2.Close()
	sessiontest.Eventually(t, 10*time.Second, "pull ended", func() bool { return len(nb.Pulls()) == 0 })
}

type clientConn = client.Conn

func clientOptions() client.Options { return client.Options{} }

// With NATS gone, a publish is allowed at once (and claimed when NATS is
// back), and the outage is logged once.
func TestNATSDownNeverHoldsAPublisher(t *testing.T) {
	srv := embedded(t, "nats", 3*time.Second)
	srv.Attach(&fakeHub{})
	t.Cleanup(srv.Close)
	logs := &sessiontest.LogBuffer{}
	b, err := New(Config{Name: "b", TTL: 3 * time.Second, Servers: []string{srv.ClientURL()},
		Log: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	hb := &fakeHub{}
	b.Attach(hb)
	t.Cleanup(b.Close)
	waitReady(t, srv, b)
	srv.ns.Shutdown()
	srv.ns.WaitForShutdown()
	sessiontest.Eventually(t, 5*time.Second, "b disconnected", func() bool { return !b.nc.IsConnected() })
	for i := range 5 {
		id := StreamID{"live", "_definst_", fmt.Sprintf("down%d", i)}
		start := time.Now()
		if err := b.Claim(id.App, id.Instance, id.Stream); err != nil {
			t.Fatalf("claim with NATS down: %v", err)
		}
		hb.set(id, true)
		if d := time.Since(start); d > 100*time.Millisecond {
			t.Errorf("claim with NATS down took %v", d)
		}
		if b.Want(id.App, id.Instance, "other", "", true) {
			t.Error("want with NATS down")
		}
	}
	time.Sleep(2 * time.Second) // a few refresh ticks, all failing
	if n := strings.Count(logs.String(), "store failing"); n != 1 {
		t.Errorf("%d 'store failing' lines, want 1:\n%s", n, logs.String())
	}
}

// watcher plays a stream and notes the highest frame index it got and
// whether it was told the stream was unpublished.
type watcher struct {
	max          atomic.Int64
	unpublished  atomic.Int64
	publishNotes atomic.Int64
}

func watch(t *testing.T, base, name string) *watcher {
	t.Helper()
	w := &watcher{}
	w.max.Store(-1)
	c, msid := sessiontest.Play(t, base+"/live", name)
	t.Cleanup(func() { c.Close() })
	go func() {
		for {
			c.SetReadDeadline(time.Now().Add(30 * time.Second))
			m, err := c.ReadMessage()
			if err != nil {
				return
			}
			if m.StreamID != msid {
				continue
			}
			switch m.Type {
			case message.TypeVideo:
				if i := sessiontest.FrameIndex(m.Payload); i > int(w.max.Load()) {
					w.max.Store(int64(i))
				}
			case message.TypeCommandAMF0, message.TypeCommandAMF3:
				if cmd, err := message.DecodeCommand(m); err == nil && cmd.Name == "onStatus" {
					o, _ := cmd.Arg(0).(amf.Object)
					switch code, _ := o.GetString("code"); code {
					case "NetStream.Play.UnpublishNotify":
						w.unpublished.Add(1)
					case "NetStream.Play.PublishNotify":
						w.publishNotes.Add(1)
					}
				}
			}
		}
	}()
	return w
}

// feed sends frames from..to 10 ms apart on p (stops at the first error).
func feed(p *sessiontest.Publisher, from, to int) {
	for i := from; i < to; i++ {
		err := p.C.WriteMessages([]message.Message{{Type: message.TypeVideo, StreamID: p.MsID,
			Timestamp: uint32(i * 40), Payload: sessiontest.VideoFrame(i, 25)}})
		if err != nil {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A player waiting on an edge for a stream nobody publishes yet gets it
// when a hub publishes it; when the publisher's connection drops and it
// reconnects to another hub within the grace, that hub takes the stream
// over and every player, on the old origin and on the edges, goes on
// without being told the stream was unpublished.
func TestStreamFollowsItsPublisher(t *testing.T) {
	const grace = 3 * time.Second
	na := embedded(t, "a", 3*time.Second)
	nb := joined(t, "b", na.ClientURL(), 3*time.Second)
	nc := joined(t, "c", na.ClientURL(), 3*time.Second)
	a, b, c := startHubGrace(t, "a", na, grace), startHubGrace(t, "b", nb, grace), startHubGrace(t, "c", nc, grace)
	waitReady(t, na, nb, nc)

	wb := watch(t, b.base, "cam") // before anyone publishes
	sessiontest.Eventually(t, 5*time.Second, "b waits for a publisher", func() bool {
		ps := nb.Pulls()
		return len(ps) == 1 && ps[0].Waiting && nb.PullCount() == 0
	})
	p1 := sessiontest.Publish(t, a.base+"/live", "cam", "live")
	p1.Header(t, nil)
	go feed(p1, 0, 1000)
	sessiontest.Eventually(t, 10*time.Second, "b's player gets the stream", func() bool { return wb.max.Load() >= 25 })
	wa, wc := watch(t, a.base, "cam"), watch(t, c.base, "cam")
	sessiontest.Eventually(t, 10*time.Second, "a's and c's players", func() bool { return wa.max.Load() >= 50 && wc.max.Load() >= 50 })

	// The publisher's connection drops; the owner marks the claim.
	p1.C.Close()
	ctx := sessiontest.Ctx(t, 10*time.Second)
	sessiontest.Eventually(t, 5*time.Second, "claim marked vanished", func() bool {
		e, err := na.strKV.Get(ctx, StreamID{"live", "_definst_", "cam"}.key())
		return err == nil && strings.Contains(string(e.Value()), `"vanished":true`)
	})
	// It reconnects to c, which pulled the stream: c takes it over.
	p2 := sessiontest.Publish(t, c.base+"/live", "cam", "live")
	p2.Header(t, nil)
	go feed(p2, 2000, 3000)
	for name, w := range map[string]*watcher{"a (old origin)": wa, "b (edge)": wb, "c (new origin)": wc} {
		sessiontest.Eventually(t, 10*time.Second, name+" follows the stream", func() bool { return w.max.Load() >= 2050 })
		if n := w.unpublished.Load(); n != 0 {
			t.Errorf("%s: told %d times the stream was unpublished", name, n)
		}
	}
	if node, _, _, _ := nb.Owner(ctx, StreamID{"live", "_definst_", "cam"}); node != "c" {
		t.Errorf("owner %q, want c", node)
	}
	for name, n := range map[string]*Node{"a": na, "b": nb} {
		if ps := n.Pulls(); len(ps) != 1 || ps[0].Origin != "c" {
			t.Errorf("%s pulls %+v, want one from c", name, ps)
		}
	}
	if len(nc.Pulls()) != 0 {
		t.Errorf("c still pulls: %+v", nc.Pulls())
	}
}

// With signed play tokens on every hub, a viewer with a token plays on an
// edge, whose pull the origin allows by the cluster's token alone; a
// player without a token, or with a forged pull token, is refused on the
// origin as before.
func TestPullAuthorization(t *testing.T) {
	viewers := []byte("viewer-secret")
	start := func(name string, n *Node) *hub {
		srv := session.NewServer(session.Config{DataDir: t.TempDir(), Cluster: n,
			Authorize: n.Authorizer(session.TokenAuthorizer(viewers, nil)), PublisherGrace: -1}, testLog(t, name+" server"))
		base := sessiontest.Serve(t, srv)
		n.SetAdvertise(strings.TrimPrefix(base, "rtmp://"))
		n.Attach(srv)
		t.Cleanup(n.Close)
		return &hub{node: n, srv: srv, base: base}
	}
	na := embedded(t, "a", 3*time.Second)
	nb := joined(t, "b", na.ClientURL(), 3*time.Second)
	a, b := start("a", na), start("b", nb)
	waitReady(t, na, nb)
	exp := time.Now().Add(time.Hour).Unix()
	tok := func(stream string) string {
		return fmt.Sprintf("%s?token=%x&expires=%d", stream, session.SignToken(viewers, "live", stream, exp), exp)
	}
	pub := sessiontest.Publish(t, a.base+"/live", tok("cam"), "live")
	pub.Header(t, nil)
	go feed(pub, 0, 2000)

	c, msid := sessiontest.Play(t, b.base+"/live", tok("cam"))
	defer c.Close()
	for range 30 {
		sessiontest.NextMedia(t, c, msid)
	}
	if ps := nb.Pulls(); len(ps) != 1 || !ps[0].Connected {
		t.Fatalf("b's pulls: %+v", ps)
	}
	play := func(base, name string) error {
		c := sessiontest.Dial(t, base+"/live", client.Options{})
		defer c.Close()
		ctx := sessiontest.Ctx(t, 5*time.Second)
		id, err := c.CreateStream(ctx)
		if err != nil {
			return err
		}
		return c.Play(ctx, id, name, -1000)
	}
	if err := play(a.base, "cam"); err == nil || !strings.Contains(err.Error(), "NetStream.Play.Failed") {
		t.Errorf("play on the origin without a token: %v", err)
	}
	forged := pullQuery([]byte("wrong"), "b", session.AuthPlay, StreamID{"live", "_definst_", "cam"}, time.Now())
	if err := play(a.base, "cam?"+forged); err == nil {
		t.Error("a forged pull token was allowed")
	}
	if err := play(b.base, "cam"); err == nil {
		t.Error("play on the edge without a token was allowed")
	}
}
