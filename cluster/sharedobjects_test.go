package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/rtmphub/rtmphub/rtmp/client"
	"github.com/rtmphub/rtmphub/rtmp/message"
	"github.com/rtmphub/rtmphub/session/sessiontest"
)

// soView is a client's copy of a shared object, as a Flash client keeps
// it, with the events it got.
type soView struct {
	t       *testing.T
	who     string
	c       *client.Conn
	name    string
	version uint32
	props   map[string]any
	events  []message.SOEvent
}

func useSO(t *testing.T, who string, c *client.Conn, name string, persistent bool) *soView {
	t.Helper()
	v := &soView{t: t, who: who, c: c, name: name, props: map[string]any{}}
	if err := c.UseSO(name, persistent, 0); err != nil {
		t.Fatal(err)
	}
	v.until(10*time.Second, "UseSuccess", func() bool { return v.has(message.SOUseSuccess, "") })
	return v
}

// read applies the next message within d; false when none came.
func (v *soView) read(d time.Duration) bool {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	m, err := v.c.ReadSO(ctx, v.name)
	if err != nil {
		if !errors.Is(err, context.DeadlineExceeded) && !strings.Contains(err.Error(), "timeout") && !strings.Contains(err.Error(), "deadline") {
			v.t.Fatalf("%s: reading %s: %v", v.who, v.name, err)
		}
		return false
	}
	v.version = m.Version
	for _, e := range m.Events {
		v.events = append(v.events, e)
		switch e.Type {
		case message.SOClear:
			v.props = map[string]any{}
		case message.SOChange:
			v.props[e.Key] = e.Value
		case message.SORemove:
			delete(v.props, e.Key)
		}
	}
	return true
}

// until reads messages until cond holds.
func (v *soView) until(d time.Duration, what string, cond func() bool) {
	v.t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			v.t.Fatalf("%s: no %s within %v; props %v v%d events %+v", v.who, what, d, v.props, v.version, v.events)
		}
		v.read(200 * time.Millisecond)
	}
}

// drain reads until nothing comes for quiet.
func (v *soView) drain(quiet time.Duration) {
	for v.read(quiet) {
	}
}

func (v *soView) has(typ message.SOEventType, key string) bool {
	for _, e := range v.events {
		if e.Type == typ && e.Key == key {
			return true
		}
	}
	return false
}

func (v *soView) reset() { v.events = nil }

// set changes a slot as a Flash client does: its copy at once, the
// server asked (a refusal comes back as a Change of the winning value).
func (v *soView) set(persistent bool, key string, value any) error {
	v.props[key] = value
	return v.c.SetSO(v.name, persistent, v.version, kv(key, value))
}

// inboxSpy counts the NATS messages to a hub's inbox.
type inboxSpy struct {
	mu       sync.Mutex
	delivers int
	groups   int
	clients  int
}

func spyInbox(t *testing.T, url, node string) *inboxSpy {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	s := &inboxSpy{}
	_, err = nc.Subscribe(inbox(node), func(m *nats.Msg) {
		var w soWire
		if json.Unmarshal(m.Data, &w) != nil || w.Kind != "deliver" {
			return
		}
		s.mu.Lock()
		s.delivers++
		s.groups += len(w.Groups)
		for _, g := range w.Groups {
			s.clients += len(g.Clients)
		}
		s.mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	nc.Flush()
	return s
}

func (s *inboxSpy) counts() (delivers, groups, clients int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.delivers, s.groups, s.clients
}

// A change made by a client of hub B reaches the subscribers on A (the
// owner) and C with the same version; C's two subscribers get it in one
// NATS message; a SendMessage from C reaches everyone.
func TestSharedObjectAcrossHubs(t *testing.T) {
	na := embedded(t, "a", 3*time.Second)
	nb := joined(t, "b", na.ClientURL(), 3*time.Second)
	nc := joined(t, "c", na.ClientURL(), 3*time.Second)
	a, b, c := startHub(t, "a", na), startHub(t, "b", nb), startHub(t, "c", nc)
	waitReady(t, na, nb, nc)

	ca := sessiontest.Dial(t, a.base+"/chat/room", client.Options{})
	cb := sessiontest.Dial(t, b.base+"/chat/room", client.Options{ObjectEncoding: 3})
	cc1 := sessiontest.Dial(t, c.base+"/chat/room", client.Options{})
	cc2 := sessiontest.Dial(t, c.base+"/chat/room", client.Options{ObjectEncoding: 3})
	if _, here := na.InstanceOwner("chat", "room"); !here {
		t.Fatal("a does not own chat/room")
	}
	va := useSO(t, "a", ca, "game", false)
	vb := useSO(t, "b", cb, "game", false)
	vc1 := useSO(t, "c1", cc1, "game", false)
	vc2 := useSO(t, "c2", cc2, "game", false)
	spy := spyInbox(t, na.ClientURL(), "c")

	for i, v := range []*soView{va, vb, vc1, vc2} {
		v.drain(100 * time.Millisecond)
		v.reset()
		_ = i
	}
	start := time.Now()
	if err := cb.SetSO("game", false, vb.version, kv("x", 1.0), kv("who", "b")); err != nil {
		t.Fatal(err)
	}
	vb.until(5*time.Second, "Success", func() bool { return vb.has(message.SOSuccess, "x") && vb.has(message.SOSuccess, "who") })
	for _, v := range []*soView{va, vc1, vc2} {
		v.until(5*time.Second, "the change", func() bool { return v.props["x"] == 1.0 && v.props["who"] == "b" })
	}
	t.Logf("change from b seen on a and c %v after it was sent", time.Since(start).Round(time.Millisecond))
	if va.version != vb.version || vc1.version != vb.version || vc2.version != vb.version || vb.version == 0 {
		t.Fatalf("versions a %d b %d c1 %d c2 %d", va.version, vb.version, vc1.version, vc2.version)
	}
	// c1 (AMF0) and c2 (AMF3) need a message each, in one NATS message.
	sessiontest.Eventually(t, 2*time.Second, "spy", func() bool { _, _, k := spy.counts(); return k >= 2 })
	d, g, k := spy.counts()
	t.Logf("to c: %d NATS messages, %d groups, %d client deliveries", d, g, k)
	if d != 1 || k != 2 {
		t.Errorf("to c for one change: %d NATS messages for %d client deliveries, want 1 for 2", d, k)
	}

	// SendMessage from c reaches every subscriber, the sender too.
	for _, v := range []*soView{va, vb, vc1, vc2} {
		v.reset()
	}
	if err := cc1.SendSO("game", false, "onChat", "hi"); err != nil {
		t.Fatal(err)
	}
	for _, v := range []*soView{va, vb, vc1, vc2} {
		v.until(5*time.Second, "onChat", func() bool {
			for _, e := range v.events {
				if e.Type == message.SOSendMessage && e.Handler == "onChat" && len(e.Args) == 1 && e.Args[0] == "hi" {
					return true
				}
			}
			return false
		})
	}
	// A remove from a (the owner's own client) reaches b and c.
	if err := ca.RemoveSO("game", false, "who"); err != nil {
		t.Fatal(err)
	}
	for _, v := range []*soView{vb, vc1, vc2} {
		v.until(5*time.Second, "the remove", func() bool { _, ok := v.props["who"]; return !ok })
	}
	// A client of c leaves: the owner forgets it.
	cc2.Close()
	sessiontest.Eventually(t, 5*time.Second, "c2 released at the owner", func() bool {
		na.so.mu.Lock()
		defer na.so.mu.Unlock()
		return len(na.so.remotes) == 2
	})
}

func kv(k string, v any) message.SOEvent { return message.SOEvent{Key: k, Value: v} }

// Clients of B and C change the same slot in the same sync interval: the
// owner's rule (first writer wins) decides, and every copy, the owner's
// client's too, ends with the same value and version.
func TestSharedObjectConflictAcrossHubs(t *testing.T) {
	na := embedded(t, "a", 3*time.Second)
	nb := joined(t, "b", na.ClientURL(), 3*time.Second)
	nc := joined(t, "c", na.ClientURL(), 3*time.Second)
	a, b, c := startHub(t, "a", na), startHub(t, "b", nb), startHub(t, "c", nc)
	waitReady(t, na, nb, nc)
	ca := sessiontest.Dial(t, a.base+"/chat/duel", client.Options{})
	cb := sessiontest.Dial(t, b.base+"/chat/duel", client.Options{})
	cc := sessiontest.Dial(t, c.base+"/chat/duel", client.Options{})
	views := []*soView{useSO(t, "a", ca, "duel", false), useSO(t, "b", cb, "duel", false), useSO(t, "c", cc, "duel", false)}
	conflicts := 0
	for round := range 10 {
		for _, v := range views {
			v.drain(30 * time.Millisecond)
			v.reset()
		}
		var wg sync.WaitGroup
		for i, v := range views[1:] {
			wg.Add(1)
			go func() {
				defer wg.Done()
				v.set(false, "k", float64(100*round+i))
			}()
		}
		wg.Wait()
		for _, v := range views {
			v.drain(150 * time.Millisecond)
		}
		va, vb, vc := views[0], views[1], views[2]
		if va.props["k"] != vb.props["k"] || vb.props["k"] != vc.props["k"] || va.version != vb.version || vb.version != vc.version {
			t.Fatalf("round %d: a %v v%d, b %v v%d, c %v v%d", round, va.props["k"], va.version, vb.props["k"], vb.version, vc.props["k"], vc.version)
		}
		want := []any{float64(100 * round), float64(100*round + 1)}
		if va.props["k"] != want[0] && va.props["k"] != want[1] {
			t.Fatalf("round %d: k = %v", round, va.props["k"])
		}
		// Both in one interval: the winner got Success, the loser the
		// Change that reverted it.
		if vb.has(message.SOSuccess, "k") != vc.has(message.SOSuccess, "k") {
			conflicts++
		}
	}
	t.Logf("%d of 10 rounds were conflicts (both changes in one sync interval)", conflicts)
	if conflicts < 3 {
		t.Errorf("only %d conflicts: the rule was hardly tested", conflicts)
	}
}

// A persistent object changed by a client of B lives in the cluster's
// store: the owner dies, B takes the instance over, and B's and C's
// clients find the value, at the version it had.
func TestPersistentSharedObjectSurvivesOwner(t *testing.T) {
	srv := embedded(t, "nats", 3*time.Second) // serves NATS only
	srv.Attach(&fakeHub{})
	t.Cleanup(srv.Close)
	na := joined(t, "a", srv.ClientURL(), 3*time.Second)
	nb := joined(t, "b", srv.ClientURL(), 3*time.Second)
	nc := joined(t, "c", srv.ClientURL(), 3*time.Second)
	a, b, c := startHub(t, "a", na), startHub(t, "b", nb), startHub(t, "c", nc)
	waitReady(t, na, nb, nc)
	ca := sessiontest.Dial(t, a.base+"/chat/keep", client.Options{})
	cb := sessiontest.Dial(t, b.base+"/chat/keep", client.Options{})
	cc := sessiontest.Dial(t, c.base+"/chat/keep", client.Options{})
	if _, here := na.InstanceOwner("chat", "keep"); !here {
		t.Fatal("a does not own")
	}
	useSO(t, "a", ca, "score", true)
	vb := useSO(t, "b", cb, "score", true)
	vc := useSO(t, "c", cc, "score", true)
	vb.drain(50 * time.Millisecond)
	vb.set(true, "points", 42.0)
	vb.until(5*time.Second, "Success", func() bool { return vb.has(message.SOSuccess, "points") })
	vc.until(5*time.Second, "the change", func() bool { return vc.props["points"] == 42.0 })
	version := vb.version
	// Saved within the save interval (1s by default): a kill never
	// flushes, so what the next owner finds is what was saved.
	sessiontest.Eventually(t, 5*time.Second, "saved", func() bool {
		data, found, err := nb.SOStore().Load("chat", "keep", "score")
		return err == nil && found && len(data) > 0
	})

	na.kill()
	ca.Close()
	died := time.Now()
	for _, v := range []*soView{vb, vc} {
		v.reset()
	}
	sessiontest.Eventually(t, 10*time.Second, "a new owner", func() bool {
		_, hb := nb.InstanceOwner("chat", "keep")
		_, hc := nc.InstanceOwner("chat", "keep")
		return hb || hc
	})
	t.Logf("new owner %v after a died", time.Since(died).Round(10*time.Millisecond))
	for _, v := range []*soView{vb, vc} {
		v.until(10*time.Second, "the state from the new owner", func() bool {
			return v.has(message.SOClear, "") && v.props["points"] == 42.0
		})
		if v.version != version {
			t.Errorf("%s: version %d, was %d", v.who, v.version, version)
		}
	}
	t.Logf("clients resynced %v after a died", time.Since(died).Round(10*time.Millisecond))
	// And it goes on: a change from c reaches b.
	vc.set(true, "points", 43.0)
	vb.until(5*time.Second, "the change after the takeover", func() bool { return vb.props["points"] == 43.0 })
}

// Bad messages to a hub's inbox are dropped with a log line.
func TestInboxRejectsBadMessages(t *testing.T) {
	na := embedded(t, "a", 3*time.Second)
	startHub(t, "a", na)
	waitReady(t, na)
	nc, err := nats.Connect(na.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	bad := []string{
		`not json`,
		`{"k":"so","f":"x","a":"chat","i":"room","t":19,"p":"AAAA"}`,
		`{"k":"so","f":"x","a":"chat","i":"room","t":8,"p":""}`,
		`{"k":"deliver","f":"x","g":[{"a":"chat","i":"room","t":19,"p":"//8=","c":[1]}]}`,
		`{"k":"deliver","f":"x","g":[{"a":"","i":"","t":0,"p":null,"c":null}]}`,
		`{"k":"what","f":"x"}`,
		`{"k":"so"}`,
		`{"k":"gone","f":"x","a":"chat","i":"room","c":7}`,
		`{"k":"reset","f":"x"}`,
		`{"k":"open","f":"x"}`,
		`{"k":"open","f":"x","connect":{"App":"chat","Instance":"room","Type":20,"Payload":"AAAA"}}`,
		`{"k":"out","f":"x","a":"chat","i":"room","c":1,"m":[{"t":9,"p":"AAAA"}]}`,
		`{"k":"cmd","f":"x","a":"chat","i":"room","c":1,"m":[{"t":20,"p":"//8="}]}`,
		`{"k":"ended","f":"x","a":"chat","i":"room","c":424242}`,
		`{"k":"close","f":"x","a":"chat","i":"room","c":424242}`,
		`{"k":"cmd","f":1}`,
	}
	for _, m := range bad {
		if err := nc.Publish(inbox("a"), []byte(m)); err != nil {
			t.Fatal(err)
		}
	}
	nc.Flush()
	sessiontest.Eventually(t, 5*time.Second, "dropped", func() bool { return na.SODropped() >= 10 })
	// Still serving.
	c := sessiontest.Dial(t, "rtmp://"+na.cfg.Advertise+"/chat/room", client.Options{})
	useSO(t, "a", c, "s", false)
	ks := []string{}
	for k := range na.so.remotes {
		ks = append(ks, k.hub)
	}
	sort.Strings(ks)
	if len(ks) != 0 {
		t.Errorf("remote clients from bad messages: %v", ks)
	}
}

// An owner whose queue for an edge overflows drops it and tells the edge
// ("reset"), before what it queues next; the edge then uses its clients'
// objects again, and they get each object's whole state.
func TestLinkOverflowResyncs(t *testing.T) {
	na := embedded(t, "a", 3*time.Second)
	nb := joined(t, "b", na.ClientURL(), 3*time.Second)
	a, b := startHub(t, "a", na), startHub(t, "b", nb)
	waitReady(t, na, nb)
	ca := sessiontest.Dial(t, a.base+"/chat/flood", client.Options{})
	cb := sessiontest.Dial(t, b.base+"/chat/flood", client.Options{})
	useSO(t, "a", ca, "s", false)
	vb := useSO(t, "b", cb, "s", false)
	ca.SetSO("s", false, 0, kv("x", 7.0))
	vb.until(5*time.Second, "x", func() bool { return vb.props["x"] == 7.0 })

	// The link's queue, filled past its bound while its goroutine cannot
	// drain it (a's link to b is held locked meanwhile).
	na.so.mu.Lock()
	l := na.so.links["b"]
	na.so.mu.Unlock()
	if l == nil {
		t.Fatal("a has no link to b")
	}
	spy := spyInboxKinds(t, na.ClientURL(), "b")
	junk := message.Message{Type: message.TypeSharedObjectAMF0, ChunkStreamID: message.CSIDSharedOb, Payload: []byte{1}}
	l.mu.Lock()
	for range maxLinkItems {
		l.q = append(l.q, linkItem{InstanceID{"chat", "flood"}, 999999, junk})
	}
	l.mu.Unlock()
	l.push(InstanceID{"chat", "flood"}, 999999, junk) // overflows
	vb.reset()
	vb.until(5*time.Second, "the state again", func() bool {
		return vb.has(message.SOUseSuccess, "") && vb.has(message.SOClear, "") && vb.props["x"] == 7.0
	})
	if k := spy.kinds(); len(k) == 0 || k[0] != "reset" {
		t.Errorf("b's inbox got %v, want a reset first", k)
	}
}

type kindSpy struct {
	mu sync.Mutex
	k  []string
}

func (s *kindSpy) kinds() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.k...)
}

func spyInboxKinds(t *testing.T, url, node string) *kindSpy {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	s := &kindSpy{}
	_, err = nc.Subscribe(inbox(node), func(m *nats.Msg) {
		var w soWire
		if json.Unmarshal(m.Data, &w) == nil {
			s.mu.Lock()
			s.k = append(s.k, w.Kind)
			s.mu.Unlock()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	nc.Flush()
	return s
}

// SO change → remote subscriber latency: a client of B changes 1000 slots
// a second (10 every 10 ms) of an object A owns; a subscriber on C notes
// when each change arrives. Run with RTMPHUB_SO_BENCH=1 (a few seconds of
// load: not run by default).
func TestSOLatencyAcrossHubs(t *testing.T) {
	if os.Getenv("RTMPHUB_SO_BENCH") == "" {
		t.Skip("RTMPHUB_SO_BENCH not set")
	}
	na := embedded(t, "a", 3*time.Second)
	nb := joined(t, "b", na.ClientURL(), 3*time.Second)
	nc := joined(t, "c", na.ClientURL(), 3*time.Second)
	a, b, c := startHub(t, "a", na), startHub(t, "b", nb), startHub(t, "c", nc)
	waitReady(t, na, nb, nc)
	ca := sessiontest.Dial(t, a.base+"/chat/bench", client.Options{})
	cb := sessiontest.Dial(t, b.base+"/chat/bench", client.Options{})
	cc := sessiontest.Dial(t, c.base+"/chat/bench", client.Options{})
	useSO(t, "a", ca, "ticks", false)
	useSO(t, "b", cb, "ticks", false)
	vc := useSO(t, "c", cc, "ticks", false)
	vc.drain(100 * time.Millisecond)
	const seconds = 5
	var lat []time.Duration
	done := make(chan struct{})
	go func() {
		defer close(done)
		ctx, cancel := context.WithTimeout(context.Background(), (seconds+5)*time.Second)
		defer cancel()
		for len(lat) < seconds*1000 {
			m, err := cc.ReadSO(ctx, "ticks")
			if err != nil {
				return
			}
			now := time.Now().UnixMicro()
			for _, e := range m.Events {
				if f, ok := e.Value.(float64); ok && e.Type == message.SOChange {
					lat = append(lat, time.Duration(now-int64(f))*time.Microsecond)
				}
			}
		}
	}()
	tk := time.NewTicker(10 * time.Millisecond)
	for i := range seconds * 100 {
		<-tk.C
		evs := make([]message.SOEvent, 10)
		now := float64(time.Now().UnixMicro())
		for j := range evs {
			evs[j] = kv(fmt.Sprintf("k%d", (i*10+j)%200), now)
		}
		if err := cb.SetSO("ticks", false, 0, evs...); err != nil {
			t.Fatal(err)
		}
	}
	tk.Stop()
	<-done
	if len(lat) < seconds*1000*9/10 {
		t.Fatalf("c got %d of %d changes", len(lat), seconds*1000)
	}
	slices.Sort(lat)
	t.Logf("SO change on b → subscriber on c, %d changes at 1000/s, sync interval 20 ms: p50 %v p99 %v max %v",
		len(lat), lat[len(lat)/2], lat[len(lat)*99/100], lat[len(lat)-1])
}

// Saves are compare-and-set at the revision a hub loaded: a hub that
// owned an instance before another took it over (a partition, a hub
// thought dead) cannot overwrite what the new owner saved.
func TestSOStoreStaleOwnerCannotOverwrite(t *testing.T) {
	na := embedded(t, "a", 3*time.Second)
	nb := joined(t, "b", na.ClientURL(), 3*time.Second)
	na.Attach(&fakeHub{})
	nb.Attach(&fakeHub{})
	t.Cleanup(func() { nb.Close(); na.Close() })
	waitReady(t, na, nb)
	sa, sb := na.SOStore(), nb.SOStore()
	if _, found, err := sa.Load("chat", "r", "so"); found || err != nil {
		t.Fatalf("load: %v %v", found, err)
	}
	if err := sa.Save("chat", "r", "so", []byte("v1")); err != nil {
		t.Fatal(err)
	}
	if err := sa.Save("chat", "r", "so", []byte("v2")); err != nil {
		t.Fatal(err)
	}
	d, found, err := sb.Load("chat", "r", "so")
	if !found || err != nil || string(d) != "v2" {
		t.Fatalf("b loaded %q %v %v", d, found, err)
	}
	if err := sb.Save("chat", "r", "so", []byte("v3 by b")); err != nil {
		t.Fatal(err)
	}
	if err := sa.Save("chat", "r", "so", []byte("v3 by a")); !errors.Is(err, ErrStaleSave) {
		t.Fatalf("a's stale save: %v", err)
	}
	// Two hubs creating the object at once: one create wins.
	sa.Load("chat", "r", "new")
	sb.Load("chat", "r", "new")
	ea, eb := sa.Save("chat", "r", "new", []byte("a")), sb.Save("chat", "r", "new", []byte("b"))
	if (ea == nil) == (eb == nil) {
		t.Fatalf("both or neither created: %v, %v", ea, eb)
	}
	d, _, _ = sa.Load("chat", "r", "so")
	if string(d) != "v3 by b" {
		t.Fatalf("stored %q", d)
	}
	if err := sa.Save("chat", "r", "so", []byte("v4 by a")); err != nil {
		t.Fatalf("save after a fresh load: %v", err)
	}
}

// NATS unreachable: the owner serves its clients' shared objects as
// before, and a client of a new instance connects and uses a temporary
// object at once; a persistent object that is not loaded cannot be
// (its store is NATS) and is refused at once, not after a timeout.
func TestSharedObjectsNATSDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	ns := natsAt(t, port, t.TempDir())
	url := "nats://127.0.0.1:" + strconv.Itoa(port)
	na := joined(t, "a", url, 3*time.Second)
	a := startHub(t, "a", na)
	waitReady(t, na)
	ca := sessiontest.Dial(t, a.base+"/chat/room", client.Options{})
	va := useSO(t, "a", ca, "game", false)
	vp := useSO(t, "a", ca, "kept", true)
	ns.Shutdown()
	ns.WaitForShutdown()
	sessiontest.Eventually(t, 5*time.Second, "a disconnected", func() bool { return !na.nc.IsConnected() })

	start := time.Now()
	va.set(false, "x", 1.0)
	vp.set(true, "y", 2.0)
	va.until(2*time.Second, "Success", func() bool { return va.has(message.SOSuccess, "x") })
	vp.until(2*time.Second, "Success", func() bool { return vp.has(message.SOSuccess, "y") })
	t.Logf("changes applied %v after they were sent, NATS down", time.Since(start).Round(time.Millisecond))

	start = time.Now()
	cn := sessiontest.Dial(t, a.base+"/chat/other", client.Options{})
	vn := useSO(t, "new", cn, "fresh", false)
	if d := time.Since(start); d > time.Second {
		t.Errorf("connect and use with NATS down took %v", d)
	}
	vn.set(false, "z", 3.0)
	vn.until(2*time.Second, "Success", func() bool { return vn.has(message.SOSuccess, "z") })
	start = time.Now()
	cn.UseSO("stored", true, 0)
	v := &soView{t: t, who: "new", c: cn, name: "stored", props: map[string]any{}}
	v.until(2*time.Second, "a refusal", func() bool {
		for _, e := range v.events {
			if e.Type == message.SOStatus && e.Code == "SharedObject.ObjectCreationFailed" {
				return true
			}
		}
		return false
	})
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Errorf("refusal took %v", d)
	}
}

// An owner that finds its lease taken (as after a partition longer than
// the TTL, during which another hub took the instance) follows the new
// owner: its clients' objects move there, and they share them with the
// new owner's clients.
func TestOwnerThatLostItsLeaseMovesItsClients(t *testing.T) {
	na := embedded(t, "a", 3*time.Second)
	nb := joined(t, "b", na.ClientURL(), 3*time.Second)
	a, b := startHub(t, "a", na), startHub(t, "b", nb)
	waitReady(t, na, nb)
	ca := sessiontest.Dial(t, a.base+"/chat/split", client.Options{})
	va := useSO(t, "a", ca, "g", false)
	if _, here := na.InstanceOwner("chat", "split"); !here {
		t.Fatal("a does not own")
	}
	// The partition, as the store saw it: a's lease went, b took one.
	ctx := sessiontest.Ctx(t, 10*time.Second)
	if err := na.ownKV.Delete(ctx, InstanceID{"chat", "split"}.key()); err != nil {
		t.Fatal(err)
	}
	cb := sessiontest.Dial(t, b.base+"/chat/split", client.Options{})
	if o, here := nb.InstanceOwner("chat", "split"); !here {
		t.Fatalf("b: owner %q", o)
	}
	vb := useSO(t, "b", cb, "g", false)
	va.reset()
	sessiontest.Eventually(t, 5*time.Second, "a follows b", func() bool {
		o, here := na.InstanceOwner("chat", "split")
		return !here && o == "b"
	})
	va.until(5*time.Second, "the object from b", func() bool { return va.has(message.SOUseSuccess, "") })
	va.set(false, "from", "a")
	vb.until(5*time.Second, "a's change", func() bool { return vb.props["from"] == "a" })
	vb.set(false, "back", "b")
	va.until(5*time.Second, "b's change", func() bool { return va.props["back"] == "b" })
}
