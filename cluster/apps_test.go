package cluster

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rtmphub/rtmphub/rtmp/client"
	"github.com/rtmphub/rtmphub/session"
	"github.com/rtmphub/rtmphub/session/script"
	"github.com/rtmphub/rtmphub/session/sessiontest"
)

const gameASC = `
application.onAppStart = function () { trace("appstart"); };
application.onConnect = function (client, mode) {
	if (mode === "reject") {
		application.rejectConnection(client, { why: "asked to" });
		return null;
	}
	return true;
};
Client.prototype.count = function () { return application.clients.length; };
Client.prototype.ask = function (q) {
	var self = this;
	this.call("question", new Responder(function (answer) {
		self.call("heard", null, "answer was " + answer);
	}), q);
	return "asked";
};
Client.prototype.news = function (m) { application.broadcastMsg("news", m); return true; };
`

// scriptHub is a hub running main.asc of app "game"; logs gets the
// script's trace lines.
func scriptHub(t *testing.T, name string, node *Node) (*hub, *sessiontest.LogBuffer) {
	t.Helper()
	return scriptHubASC(t, name, node, gameASC)
}

// scriptHubASC is scriptHub with asc for game's main.asc.
func scriptHubASC(t *testing.T, name string, node *Node, asc string) (*hub, *sessiontest.LogBuffer) {
	t.Helper()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "game"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "game", "main.asc"), []byte(asc), 0o644); err != nil {
		t.Fatal(err)
	}
	logs := &sessiontest.LogBuffer{}
	slog := slog.New(slog.NewTextHandler(logs, nil))
	srv := session.NewServer(session.Config{DataDir: dir, Cluster: node, Owners: node, SORelay: node, AppRelay: node,
		SOStore: node.SOStore(), Authorize: node.Authorizer(nil), PublisherGrace: -1, CallTimeout: 5 * time.Second,
		Application: script.Factory(script.Config{DataDir: dir, Log: slog})}, testLog(t, name+" server"))
	base := sessiontest.Serve(t, srv)
	node.SetAdvertise(strings.TrimPrefix(base, "rtmp://"))
	node.Attach(srv)
	t.Cleanup(node.Close)
	return &hub{node: node, srv: srv, base: base}, logs
}

func appStarts(l *sessiontest.LogBuffer) int { return strings.Count(l.String(), "msg=appstart") }

func count(t *testing.T, c *client.Conn) float64 {
	t.Helper()
	r, err := c.Call(sessiontest.Ctx(t, 5*time.Second), "count")
	if err != nil {
		t.Fatalf("count: %v", err)
	}
	n, _ := r.Arg(0).(float64)
	return n
}

// main.asc runs on the owner only; its application.clients lists the
// clients of every hub; a client of another hub calls it and is called
// back through its hub; broadcastMsg reaches every hub; onConnect rejects
// a client of another hub. When the owner dies, the other hubs' clients
// connect again to the new owner's application without reconnecting.
func TestApplicationAcrossHubs(t *testing.T) {
	srvN := embedded(t, "nats", 3*time.Second) // serves NATS only
	srvN.Attach(&fakeHub{})
	t.Cleanup(srvN.Close)
	na := joined(t, "a", srvN.ClientURL(), 3*time.Second)
	nb := joined(t, "b", srvN.ClientURL(), 3*time.Second)
	nc := joined(t, "c", srvN.ClientURL(), 3*time.Second)
	a, la := scriptHub(t, "a", na)
	b, lb := scriptHub(t, "b", nb)
	c, lc := scriptHub(t, "c", nc)
	waitReady(t, na, nb, nc)

	ca := sessiontest.Dial(t, a.base+"/game/room", client.Options{})
	cb := sessiontest.Dial(t, b.base+"/game/room", client.Options{})
	cc := sessiontest.Dial(t, c.base+"/game/room", client.Options{ObjectEncoding: 3})
	if n := count(t, cc); n != 3 {
		t.Errorf("application.clients.length from c = %v, want 3", n)
	}
	if n := count(t, ca); n != 3 {
		t.Errorf("application.clients.length from a = %v, want 3", n)
	}
	if appStarts(la) != 1 || appStarts(lb) != 0 || appStarts(lc) != 0 {
		t.Errorf("main.asc started on a %d, b %d, c %d times; want 1, 0, 0", appStarts(la), appStarts(lb), appStarts(lc))
	}

	// onConnect on a rejects a client of b.
	_, err := sessiontest.TryDial(sessiontest.Ctx(t, 5*time.Second), b.base+"/game/room", client.Options{ConnectArgs: []any{"reject"}})
	var se *client.StatusError
	if !errors.As(err, &se) || se.Code != "NetConnection.Connect.Rejected" || se.Description != "Connection rejected by the application." {
		t.Fatalf("rejected client of b: %v", err)
	}

	// client.call from a to c's client and back.
	ctx := sessiontest.Ctx(t, 10*time.Second)
	start := time.Now()
	r, err := cc.Call(ctx, "ask", "six times seven?")
	if err != nil || r.Arg(0) != "asked" {
		t.Fatalf("ask: %v %v", r, err)
	}
	q, err := cc.ReadCall(ctx, "question")
	if err != nil || q.Arg(0) != "six times seven?" {
		t.Fatalf("question: %v %v", q, err)
	}
	if err := cc.Reply(q.TransactionID, 42.0); err != nil {
		t.Fatal(err)
	}
	h, err := cc.ReadCall(ctx, "heard")
	if err != nil || h.Arg(0) != "answer was 42" {
		t.Fatalf("heard: %v %v", h, err)
	}
	t.Logf("call from c to a's main.asc, its call back to c, c's answer and a's last call: %v", time.Since(start).Round(time.Millisecond))

	// broadcastMsg from a reaches every hub's clients.
	if _, err := cb.Call(ctx, "news", "hello all"); err != nil {
		t.Fatal(err)
	}
	for name, cl := range map[string]*client.Conn{"a": ca, "b": cb, "c": cc} {
		m, err := cl.ReadCall(ctx, "news")
		if err != nil || m.Arg(0) != "hello all" {
			t.Errorf("%s: news %v %v", name, m, err)
		}
	}

	// The owner dies: b or c owns the instance, runs main.asc, and the
	// clients of both connect again to it.
	na.kill()
	ca.Close()
	died := time.Now()
	sessiontest.Eventually(t, 10*time.Second, "a new owner runs main.asc", func() bool {
		return appStarts(lb)+appStarts(lc) == 1
	})
	sessiontest.Eventually(t, 10*time.Second, "both clients at the new owner", func() bool {
		r, err := cb.Call(sessiontest.Ctx(t, 2*time.Second), "count")
		return err == nil && r.Arg(0) == 2.0
	})
	t.Logf("new owner's main.asc counts b's and c's clients %v after a died", time.Since(died).Round(10*time.Millisecond))
	if n := count(t, cc); n != 2 {
		t.Errorf("count from c after the takeover = %v", n)
	}
}
