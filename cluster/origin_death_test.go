package cluster

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/rtmphub/rtmphub/session/sessiontest"
)

// cutter dials TCP until cut, then hangs up what it dialed and refuses
// to dial: a hub that died, as its peers see it.
type cutter struct {
	mu    sync.Mutex
	cut   bool
	conns []net.Conn
}

func (c *cutter) dial(ctx context.Context, addr string) (net.Conn, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cut {
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: errRefused}
	}
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err == nil {
		c.conns = append(c.conns, nc)
	}
	return nc, err
}

func (c *cutter) hangUp() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cut = true
	for _, nc := range c.conns {
		nc.Close()
	}
}

type refused struct{}

func (refused) Error() string { return "connection refused (cut)" }

var errRefused = refused{}

// The origin hub dies (no heartbeat, no claim refresh, its connections
// gone): the edge's players are not told the stream ended when its claim
// expires, but only once the grace has passed since the pull lost it,
// with no hub publishing it again.
func TestPullWaitsOutTheGraceWhenItsOriginDies(t *testing.T) {
	const ttl = 1500 * time.Millisecond
	const grace = 6 * time.Second
	srv := embedded(t, "nats", ttl)
	srv.Attach(&fakeHub{})
	t.Cleanup(srv.Close)
	na := joined(t, "a", srv.ClientURL(), ttl)
	cut := &cutter{}
	nb, err := New(Config{Name: "b", Secret: "s3cret", TTL: ttl, Linger: time.Second, Grace: grace, Dial: cut.dial,
		Log: testLog(t, "b"), Servers: []string{srv.ClientURL()}})
	if err != nil {
		t.Fatal(err)
	}
	a, b := startHubGrace(t, "a", na, grace), startHubGrace(t, "b", nb, grace)
	waitReady(t, srv, na, nb)

	p := sessiontest.Publish(t, a.base+"/live", "cam", "live")
	p.Header(t, nil)
	go feed(p, 0, 3000)
	w := watch(t, b.base, "cam")
	sessiontest.Eventually(t, 10*time.Second, "b's player gets the stream", func() bool { return w.max.Load() >= 25 })

	na.kill()
	cut.hangUp()
	died := time.Now()
	ctx := sessiontest.Ctx(t, 20*time.Second)
	id := StreamID{"live", "_definst_", "cam"}
	sessiontest.Eventually(t, 4*ttl, "a's claim expired", func() bool {
		_, _, found, err := nb.Owner(ctx, id)
		return err == nil && !found
	})
	t.Logf("a's claim expired %v after it died", time.Since(died).Round(10*time.Millisecond))
	time.Sleep(2 * time.Second) // the pull looked the owner up meanwhile
	if n := w.unpublished.Load(); n != 0 {
		t.Fatalf("the player was told the stream ended %v after its origin died, within the grace (%v)", time.Since(died), grace)
	}
	sessiontest.Eventually(t, grace+5*time.Second, "the player told after the grace", func() bool { return w.unpublished.Load() == 1 })
	if d := time.Since(died); d < grace {
		t.Errorf("told %v after the origin died, before the grace (%v)", d, grace)
	} else {
		t.Logf("told %v after the origin died (grace %v)", d.Round(10*time.Millisecond), grace)
	}
}
