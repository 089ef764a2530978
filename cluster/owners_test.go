package cluster

import (
	"fmt"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/rtmphub/rtmphub/rtmp/client"
	"github.com/rtmphub/rtmphub/session/sessiontest"
)

func TestInstanceKeysRoundTrip(t *testing.T) {
	for _, id := range []InstanceID{{"live", "_definst_"}, {"chat", "room/7 é*>"}, {"a.b", ""}} {
		got, err := parseInstanceKey(id.key())
		if err != nil || got != id {
			t.Errorf("%v: %q → %v, %v", id, id.key(), got, err)
		}
	}
	for _, k := range []string{"", "a", "a.b.c", "!!.x"} {
		if _, err := parseInstanceKey(k); err == nil {
			t.Errorf("parseInstanceKey(%q) accepted", k)
		}
	}
}

// ownerTTLNode is a node of the NATS server at url with the owner TTL ttl.
func ownerTTLNode(t *testing.T, name, url string, ttl time.Duration) *Node {
	t.Helper()
	n, err := New(Config{Name: name, Secret: "s3cret", TTL: 3 * time.Second, OwnerTTL: ttl, Log: testLog(t, name),
		Servers: []string{url}})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// Two hubs start the same instance at once, again and again: exactly one
// owns each, both name the same owner, and so does the lease.
func TestInstanceOwnerRace(t *testing.T) {
	a := embedded(t, "a", 3*time.Second)
	b := joined(t, "b", a.ClientURL(), 3*time.Second)
	ha, hb := &fakeHub{}, &fakeHub{}
	a.Attach(ha)
	b.Attach(hb)
	t.Cleanup(func() { b.Close(); a.Close() })
	waitReady(t, a, b)
	const N = 50
	wins := map[string]int{}
	ctx := sessiontest.Ctx(t, 30*time.Second)
	for i := range N {
		id := InstanceID{"chat", fmt.Sprintf("room%d", i)}
		ha.setClients(id, 1)
		hb.setClients(id, 1)
		var owners [2]string
		var here [2]bool
		var wg sync.WaitGroup
		start := make(chan struct{})
		for j, n := range []*Node{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				owners[j], here[j] = n.OwnInstance(id.App, id.Instance)
			}()
		}
		close(start)
		wg.Wait()
		if here[0] == here[1] || owners[0] != owners[1] {
			t.Fatalf("%v: a says %q (here %v), b says %q (here %v)", id, owners[0], here[0], owners[1], here[1])
		}
		owner, found, err := a.instanceOwner(ctx, id)
		if err != nil || !found || owner != owners[0] {
			t.Fatalf("%v: lease of %q (found %v, %v), hubs say %q", id, owner, found, err, owners[0])
		}
		wins[owner]++
	}
	t.Logf("wins: %v", wins)
	if a.OwnedCount()+b.OwnedCount() != N {
		t.Errorf("owned: a %d + b %d, want %d", a.OwnedCount(), b.OwnedCount(), N)
	}
	is, err := a.Instances(ctx)
	if err != nil || len(is) != N {
		t.Fatalf("instances: %d, %v", len(is), err)
	}
	// Leases are renewed: after several TTLs the owners are the same.
	time.Sleep(2 * a.cfg.OwnerTTL)
	for _, in := range is {
		owner, _, err := b.instanceOwner(ctx, InstanceID{in.App, in.Instance})
		if err != nil || owner != in.Owner {
			t.Fatalf("%s/%s: owner %q (%v) after renewals, was %q", in.App, in.Instance, owner, err, in.Owner)
		}
	}
}

// The owner dies (its renewals stop and its NATS connection goes, as with
// kill -9): a hub with clients of the instance owns it within the lease's
// TTL and a sixth of it, and not before the lease lapsed.
func TestInstanceOwnerLapses(t *testing.T) {
	srv := embedded(t, "nats", 3*time.Second) // serves NATS only
	srv.Attach(&fakeHub{})
	t.Cleanup(srv.Close)
	const ttl = 3 * time.Second // the default
	for round := range 3 {
		a := ownerTTLNode(t, "a", srv.ClientURL(), ttl)
		b := ownerTTLNode(t, "b", srv.ClientURL(), ttl)
		ha, hb := &fakeHub{}, &fakeHub{}
		a.Attach(ha)
		b.Attach(hb)
		waitReady(t, srv, a, b)
		id := InstanceID{"chat", fmt.Sprintf("lobby%d", round)}
		ha.setClients(id, 1)
		hb.setClients(id, 2)
		if o, here := a.OwnInstance(id.App, id.Instance); !here {
			t.Fatalf("a: owner %q", o)
		}
		if o, here := b.OwnInstance(id.App, id.Instance); here || o != "a" {
			t.Fatalf("b: owner %q, here %v", o, here)
		}
		if round == 0 {
			time.Sleep(ttl + ttl/2) // renewed past its TTL while a lives
			if o, here := b.InstanceOwner(id.App, id.Instance); here || o != "a" {
				t.Fatalf("b took a live owner's instance: %q %v", o, here)
			}
		}
		a.kill()
		died := time.Now()
		sessiontest.Eventually(t, 3*ttl, "b owns the instance", func() bool {
			_, here := b.InstanceOwner(id.App, id.Instance)
			return here
		})
		took := time.Since(died)
		t.Logf("round %d: b owns %v after a died (owner TTL %v)", round, took.Round(10*time.Millisecond), ttl)
		if took > ttl+ttl/6+time.Second {
			t.Errorf("new owner after %v, want ≤ %v", took, ttl+ttl/6+time.Second)
		}
		if b.Takeovers() != 1 {
			t.Errorf("takeovers %d", b.Takeovers())
		}
		owner, _, err := b.instanceOwner(sessiontest.Ctx(t, 2*time.Second), id)
		if err != nil || owner != "b" {
			t.Fatalf("lease: %q %v", owner, err)
		}
		b.Close()
		// A hub that leaves deletes its leases.
		if _, found, _ := srv.instanceOwner(sessiontest.Ctx(t, 2*time.Second), id); found {
			t.Error("b's lease outlived its Close")
		}
	}
}

// NATS unreachable: a hub keeps owning what it owns, and answers at once
// for an instance it owns and for one it has not seen (it serves it);
// when NATS is back its leases are in the store again.
func TestInstanceOwnerNATSDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	dir := t.TempDir()
	ns := natsAt(t, port, dir)
	url := "nats://127.0.0.1:" + strconv.Itoa(port)
	const ttl = 1500 * time.Millisecond
	b := ownerTTLNode(t, "b", url, ttl)
	hb := &fakeHub{}
	b.Attach(hb)
	t.Cleanup(b.Close)
	waitReady(t, b)
	owned, fresh := InstanceID{"chat", "owned"}, InstanceID{"chat", "fresh"}
	hb.setClients(owned, 1)
	if _, here := b.OwnInstance(owned.App, owned.Instance); !here {
		t.Fatal("b does not own")
	}
	ns.Shutdown()
	ns.WaitForShutdown()
	sessiontest.Eventually(t, 5*time.Second, "b disconnected", func() bool { return !b.nc.IsConnected() })
	hb.setClients(fresh, 1)
	for _, id := range []InstanceID{owned, fresh} {
		start := time.Now()
		if o, here := b.OwnInstance(id.App, id.Instance); !here {
			t.Fatalf("%v with NATS down: owner %q", id, o)
		}
		if d := time.Since(start); d > 100*time.Millisecond {
			t.Errorf("%v: OwnInstance with NATS down took %v", id, d)
		}
	}
	time.Sleep(2 * ttl) // renewals fail
	for _, id := range []InstanceID{owned, fresh} {
		if _, here := b.InstanceOwner(id.App, id.Instance); !here {
			t.Errorf("%v: b stopped owning during the outage", id)
		}
	}
	ns = natsAt(t, port, dir)
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	ctx := sessiontest.Ctx(t, 20*time.Second)
	sessiontest.Eventually(t, 10*time.Second, "leases back", func() bool {
		is, err := b.Instances(ctx)
		return err == nil && len(is) == 2 && is[0].Owner == "b" && is[1].Owner == "b"
	})
}

// With real hubs: the first client of an instance makes its hub the
// owner; a client on another hub finds it, and is a remote client of the
// owner's application, which keeps the instance there after the owner's
// own clients left; when the last client of the instance leaves, the
// owner's instance ends and its lease goes, and the next client makes its
// own hub the owner.
func TestInstanceOwnerWithClients(t *testing.T) {
	na := embedded(t, "a", 3*time.Second)
	nb := joined(t, "b", na.ClientURL(), 3*time.Second)
	a, b := startHub(t, "a", na), startHub(t, "b", nb)
	waitReady(t, na, nb)
	ca := sessiontest.Dial(t, a.base+"/chat/room1", client.Options{})
	cb := sessiontest.Dial(t, b.base+"/chat/room1", client.Options{})
	if o, here := na.InstanceOwner("chat", "room1"); !here {
		t.Fatalf("a: owner %q", o)
	}
	if o, here := nb.InstanceOwner("chat", "room1"); here || o != "a" {
		t.Fatalf("b: owner %q here %v", o, here)
	}
	ctx := sessiontest.Ctx(t, 20*time.Second)
	st := nb.Status(ctx)
	if len(st.Instances) != 1 || st.Instances[0].Owner != "a" || st.Instances[0].Instance != "room1" {
		t.Fatalf("status instances %+v", st.Instances)
	}
	if na.RemoteClients() != 1 {
		t.Fatalf("a serves %d remote clients", na.RemoteClients())
	}
	ca.Close()
	time.Sleep(2 * time.Second) // past the settle time and a renewal
	if _, here := na.InstanceOwner("chat", "room1"); !here {
		t.Fatal("a let the instance go while b's client is its application's")
	}
	cb.Close()
	left := time.Now()
	sessiontest.Eventually(t, 10*time.Second, "a releases room1", func() bool { return na.OwnedCount() == 0 })
	t.Logf("a released room1 %v after the last client left", time.Since(left).Round(10*time.Millisecond))
	sessiontest.Dial(t, b.base+"/chat/room1", client.Options{})
	if o, here := nb.InstanceOwner("chat", "room1"); !here {
		t.Fatalf("b: owner %q", o)
	}
	st = na.Status(ctx)
	if len(st.Instances) != 1 || st.Instances[0].Owner != "b" {
		t.Fatalf("status instances %+v", st.Instances)
	}
}
