package cluster

import (
	"errors"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/rtmphub/rtmphub/session/sessiontest"
)

// natsAt runs a standalone NATS server with JetStream on port, storing
// under dir.
func natsAt(t *testing.T, port int, dir string) *server.Server {
	t.Helper()
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: port, JetStream: true, StoreDir: dir,
		NoSigs: true, NoLog: true})
	if err != nil {
		t.Fatal(err)
	}
	ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("NATS server did not start")
	}
	return ns
}

// A NATS server that restarts loses the buckets (they are in memory):
// the nodes make them again when they reconnect, and their heartbeats
// and claims fill them, so that the membership and the directory are
// back and a claim is honored again.
func TestRejoinAfterNATSRestart(t *testing.T) {
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
	a, b := joined(t, "a", url, ttl), joined(t, "b", url, ttl)
	ha := &fakeHub{}
	a.Attach(ha)
	b.Attach(&fakeHub{})
	t.Cleanup(a.Close)
	t.Cleanup(b.Close)
	waitReady(t, a, b)
	id := StreamID{"live", "_definst_", "cam"}
	if err := a.Claim(id.App, id.Instance, id.Stream); err != nil {
		t.Fatal(err)
	}
	ha.set(id, true)

	ns.Shutdown()
	ns.WaitForShutdown()
	sessiontest.Eventually(t, 5*time.Second, "disconnected", func() bool { return !a.nc.IsConnected() && !b.nc.IsConnected() })
	ns = natsAt(t, port, dir)
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	back := time.Now()
	ctx := sessiontest.Ctx(t, 20*time.Second)
	sessiontest.Eventually(t, 10*time.Second, "directory and membership back", func() bool {
		node, _, found, _ := b.Owner(ctx, id)
		nodes, err := b.Nodes(ctx)
		return found && node == "a" && err == nil && len(nodes) == 2
	})
	t.Logf("directory and membership back %v after the server restarted", time.Since(back).Round(10*time.Millisecond))
	var taken *TakenError
	if err := b.Claim(id.App, id.Instance, id.Stream); !errors.As(err, &taken) || taken.Node != "a" {
		t.Fatalf("claim of a's stream on b after the restart: %v", err)
	}
}

// A player that asks an edge for a stream during a NATS outage waits (the
// edge cannot look its owner up), and gets the stream once NATS is back.
func TestPlayerWaitingThroughAnOutageGetsTheStream(t *testing.T) {
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
	na, nb := joined(t, "a", url, ttl), joined(t, "b", url, ttl)
	a, b := startHub(t, "a", na), startHub(t, "b", nb)
	waitReady(t, na, nb)
	p := sessiontest.Publish(t, a.base+"/live", "cam", "live")
	p.Header(t, nil)
	go feed(p, 0, 3000)

	ns.Shutdown()
	ns.WaitForShutdown()
	sessiontest.Eventually(t, 5*time.Second, "disconnected", func() bool { return !na.nc.IsConnected() && !nb.nc.IsConnected() })
	w := watch(t, b.base, "cam")
	time.Sleep(time.Second)
	if m := w.max.Load(); m >= 0 {
		t.Fatalf("b's player got frame %d with NATS down", m)
	}
	ns = natsAt(t, port, dir)
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	back := time.Now()
	sessiontest.Eventually(t, 10*time.Second, "b's player gets the stream", func() bool { return w.max.Load() >= 0 })
	t.Logf("b's player got the stream %v after NATS came back", time.Since(back).Round(10*time.Millisecond))
	if n := w.unpublished.Load(); n != 0 {
		t.Errorf("b's player told %d times the stream was unpublished", n)
	}
}
