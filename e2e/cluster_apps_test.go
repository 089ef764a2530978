package e2e

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/rtmphub/rtmphub/rtmp/amf"
	"github.com/rtmphub/rtmphub/rtmp/client"
	"github.com/rtmphub/rtmphub/session/sessiontest"
)

// One application across hubs (issue 13, item 2), with real processes on
// Debian's nats-server and the lobby example (testdata/apps/lobby): the
// instance's owner runs main.asc, whose onConnect sees the clients of
// every hub (a nickname taken on B is refused on C); a client of C calls
// it, is called back (client.call) and its answer comes back. The owner
// is killed: the clients of B and C connect again to the new owner's
// main.asc with their connect arguments (their nicknames are still
// taken), without reconnecting.
func TestClusterApplication(t *testing.T) {
	e2e(t)
	url := startNATS(t)
	flags := []string{"--cluster", url, "--cluster-secret", "e2e-secret", "--admin-addr", "127.0.0.1:0"}
	hubs := map[string]*server{}
	for _, name := range []string{"a", "b", "c"} {
		hubs[name] = startServer(t, append([]string{"--node-name", name}, flags...)...)
		copyApp(t, hubs[name].DataDir, "lobby")
	}
	for _, h := range hubs {
		waitJoined(t, h, 60*time.Second)
	}
	sessiontest.Eventually(t, 10*time.Second, "three nodes seen", func() bool {
		return len(getCluster(t, hubs["c"]).Nodes) == 3
	})
	dial := func(hub, nick string) (*client.Conn, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c, err := client.Dial(ctx, "rtmp://"+hubs[hub].Addr+"/lobby/room", client.Options{ConnectArgs: []any{nick}})
		if err == nil {
			t.Cleanup(func() { c.Close() })
		}
		return c, err
	}
	must := func(hub, nick string) *client.Conn {
		c, err := dial(hub, nick)
		if err != nil {
			t.Fatalf("%s on %s: %v", nick, hub, err)
		}
		return c
	}
	ca := must("a", "ann") // first: a owns lobby/room
	cb := must("b", "bob")
	cc := must("c", "cid")
	taken := func(hub, nick string) {
		t.Helper()
		_, err := dial(hub, nick)
		var se *client.StatusError
		if !errors.As(err, &se) || se.Code != "NetConnection.Connect.Rejected" || se.Description != "Nickname "+nick+" is taken." {
			t.Fatalf("%s on %s: %v, want taken", nick, hub, err)
		}
	}
	taken("c", "bob")
	taken("b", "ann")

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	r, err := cb.Call(ctx, "whoami")
	if o, _ := r.Arg(0).(amf.Object); err != nil || o == nil {
		t.Fatalf("whoami: %v %v", r, err)
	} else if nick, _ := o.GetString("nick"); nick != "bob" {
		t.Fatalf("whoami: %v", o)
	}
	if r, err := cc.Call(ctx, "ask", "color?"); err != nil || r.Arg(0) != "asked" {
		t.Fatalf("ask: %v %v", r, err)
	}
	q, err := cc.ReadCall(ctx, "answer")
	if err != nil || q.Arg(0) != "color?" || q.Arg(1) != "cid" {
		t.Fatalf("answer call: %v %v", q, err)
	}
	cc.Reply(q.TransactionID, "blue")
	if h, err := cc.ReadCall(ctx, "heard"); err != nil || h.Arg(0) != "cid answered blue" {
		t.Fatalf("heard: %v %v", h, err)
	}
	if r, err := cc.Call(ctx, "lastAnswer"); err != nil || r.Arg(0) != "blue" {
		t.Fatalf("lastAnswer: %v %v", r, err)
	}

	hubs["a"].kill()
	ca.Close()
	killed := time.Now()
	// b's and c's clients are the new owner's: their nicknames are taken
	// there, and their calls are answered.
	sessiontest.Eventually(t, 15*time.Second, "the new owner knows cid", func() bool {
		_, err := dial("b", "cid")
		var se *client.StatusError
		return errors.As(err, &se) && se.Description == "Nickname cid is taken."
	})
	t.Logf("the new owner's main.asc has the other hubs' clients %v after the owner was killed",
		time.Since(killed).Round(10*time.Millisecond))
	// bob's hub connects it again too (a call made before it did went to
	// the dead owner and is not answered: asked again).
	sessiontest.Eventually(t, 15*time.Second, "bob's calls answered by the new owner", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		r, err := cb.Call(ctx, "whoami")
		o, _ := r.Arg(0).(amf.Object)
		nick, _ := o.GetString("nick")
		return err == nil && nick == "bob"
	})
	taken("c", "bob")
	must("c", "ann") // a's client left with a
}
