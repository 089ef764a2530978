package cluster

import (
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rtmphub/rtmphub/rtmp/client"
	"github.com/rtmphub/rtmphub/rtmp/message"
	"github.com/rtmphub/rtmphub/session"
	"github.com/rtmphub/rtmphub/session/live"
	"github.com/rtmphub/rtmphub/session/sessiontest"
)

// eventsASC records the application's stream events: which client (its
// connect argument, and whether it is the object application.clients
// holds), which stream, and the stream object's fields.
const eventsASC = `
var events = [];
application.onAppStart = function () { trace("appstart"); };
application.onConnect = function (client, tag) { client.tag = tag || "?"; return true; };
function listed(client) { return application.clients.indexOf(client) >= 0 ? "listed" : "unlisted"; }
function fields(stream) { return Object.keys(stream).sort().join(","); }
application.onPublish = function (client, stream) {
	events.push("publish " + stream.name + " " + client.tag + " " + listed(client) + " " + fields(stream));
};
application.onUnpublish = function (client, stream) {
	events.push("unpublish " + stream.name + " " + client.tag + " " + listed(client) + " " + fields(stream));
};
application.onDisconnect = function (client) { events.push("disconnect " + client.tag); };
Client.prototype.events = function () { return events.join("|"); };
`

// publishAs connects to appURL with connect argument tag and publishes
// name.
func publishAs(t *testing.T, appURL, tag, name string) *sessiontest.Publisher {
	t.Helper()
	c := sessiontest.Dial(t, appURL, client.Options{FlashVer: "FMLE/3.0 (compatible; rtmphub-test)", ConnectArgs: []any{tag}})
	ctx := sessiontest.Ctx(t, 5*time.Second)
	id, err := c.CreateStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Publish(ctx, id, name, "live"); err != nil {
		t.Fatal(err)
	}
	return &sessiontest.Publisher{C: c, MsID: id}
}

// eventsOf is the application's record, through client c.
func eventsOf(t *testing.T, c *client.Conn) string {
	t.Helper()
	r, err := c.Call(sessiontest.Ctx(t, 5*time.Second), "events")
	if err != nil {
		t.Fatalf("events: %v", err)
	}
	s, _ := r.Arg(0).(string)
	return s
}

// waitEvents waits until the application's record ends with want.
func waitEvents(t *testing.T, c *client.Conn, what, want string) {
	t.Helper()
	var got string
	if !sessiontest.Poll(10*time.Second, func() bool { got = eventsOf(t, c); return strings.HasSuffix(got, want) }) {
		t.Fatalf("%s: events %q, want them to end with %q", what, got, want)
	}
}

// A client of hub B publishing in an instance A owns: A's main.asc hears
// onPublish and onUnpublish for it, with the remote client object
// application.clients holds and the stream object a client of A gets; a
// dropped connection unpublishes before it disconnects. When A dies, the
// new owner's main.asc hears of the streams the clients of B and C
// publish. A hub that only pulls a stream for an instance it never saw a
// client of does not run its main.asc.
func TestStreamEventsAcrossHubs(t *testing.T) {
	srvN := embedded(t, "nats", 3*time.Second)
	srvN.Attach(&fakeHub{})
	t.Cleanup(srvN.Close)
	na := joined(t, "a", srvN.ClientURL(), 3*time.Second)
	nb := joined(t, "b", srvN.ClientURL(), 3*time.Second)
	nc := joined(t, "c", srvN.ClientURL(), 3*time.Second)
	nd := joined(t, "d", srvN.ClientURL(), 3*time.Second)
	a, la := scriptHubASC(t, "a", na, eventsASC)
	b, lb := scriptHubASC(t, "b", nb, eventsASC)
	c, lc := scriptHubASC(t, "c", nc, eventsASC)
	d, ld := scriptHubASC(t, "d", nd, eventsASC)
	waitReady(t, na, nb, nc, nd)

	ca := sessiontest.Dial(t, a.base+"/game/room", client.Options{ConnectArgs: []any{"watcher"}})
	const fieldsLocal = "name"

	// A publisher of A itself: the fields a local stream object has.
	pa := publishAs(t, a.base+"/game/room", "pubA", "local")
	pa.Sync(t)
	waitEvents(t, ca, "local onPublish", "publish local pubA listed "+fieldsLocal)

	// Publish and unpublish on B.
	pb := publishAs(t, b.base+"/game/room", "pubB", "cam")
	pb.Header(t, nil)
	pb.Frames(t, 0, 25, 25)
	pb.Sync(t)
	waitEvents(t, ca, "onPublish of b's client", "publish cam pubB listed "+fieldsLocal)
	if err := pb.C.WriteCommand(pb.MsID, &message.Command{Name: "closeStream"}); err != nil {
		t.Fatal(err)
	}
	pb.Sync(t)
	waitEvents(t, ca, "onUnpublish of b's client", "publish cam pubB listed name|unpublish cam pubB listed name")

	// Publish again, then the connection drops: onUnpublish, then
	// onDisconnect.
	if err := pb.C.Publish(sessiontest.Ctx(t, 5*time.Second), pb.MsID, "cam2", "live"); err != nil {
		t.Fatal(err)
	}
	waitEvents(t, ca, "second onPublish", "publish cam2 pubB listed name")
	pb.C.Close()
	waitEvents(t, ca, "dropped publisher", "unpublish cam2 pubB listed name|disconnect pubB")
	if appStarts(la) != 1 || appStarts(lb) != 0 {
		t.Errorf("main.asc started on a %d, b %d times; want 1, 0", appStarts(la), appStarts(lb))
	}

	// D only pulls a stream of the instance for a reader of its own (no
	// client): no main.asc there.
	pb2 := publishAs(t, b.base+"/game/room", "pubB2", "camB")
	pb2.Header(t, nil)
	pb2.Frames(t, 0, 25, 25)
	pb2.Sync(t)
	pc := publishAs(t, c.base+"/game/room", "pubC", "camC")
	pc.Sync(t)
	waitEvents(t, ca, "onPublish of c's client", "publish camC pubC listed name")
	r := &mediaCount{}
	_, detach, err := d.srv.Watch(session.WatchRequest{App: "game", Instance: "room", Stream: "camB", Protocol: "http-flv"}, r, live.ReaderOptions{})
	if err != nil {
		t.Fatalf("watch on d: %v", err)
	}
	sessiontest.Eventually(t, 10*time.Second, "d pulls camB", func() bool {
		ps := nd.Pulls()
		return len(ps) == 1 && ps[0].Connected && r.media.Load() > 0
	})
	if n := appStarts(ld); n != 0 {
		t.Errorf("main.asc started %d times on d, which only pulls", n)
	}
	detach()

	// A dies: B or C owns the instance, and its main.asc hears of both
	// streams (one publisher is its own, the other a remote client).
	na.kill()
	ca.Close()
	pa.C.Close()
	sessiontest.Eventually(t, 10*time.Second, "a new owner runs main.asc", func() bool {
		return appStarts(lb)+appStarts(lc) == 1
	})
	var got string
	sessiontest.Eventually(t, 10*time.Second, "the new owner hears of both streams", func() bool {
		r, err := pb2.C.Call(sessiontest.Ctx(t, 2*time.Second), "events")
		if err != nil {
			return false
		}
		got, _ = r.Arg(0).(string)
		return strings.Contains(got, "publish camB pubB2 listed name") && strings.Contains(got, "publish camC pubC listed name")
	})
	if strings.Count(got, "publish camB") != 1 || strings.Count(got, "publish camC") != 1 {
		t.Errorf("new owner's events: %q", got)
	}
	// And hears of them ending, wherever the publisher is.
	pc.C.Close()
	pb2.C.WriteCommand(pb2.MsID, &message.Command{Name: "closeStream"})
	sessiontest.Eventually(t, 10*time.Second, "the new owner hears of the unpublishes", func() bool {
		r, err := pb2.C.Call(sessiontest.Ctx(t, 2*time.Second), "events")
		if err != nil {
			return false
		}
		got, _ = r.Arg(0).(string)
		return strings.Contains(got, "unpublish camB pubB2 listed name") && strings.Contains(got, "unpublish camC pubC listed name|disconnect pubC")
	})
	t.Logf("new owner's events: %s", got)
}

// mediaCount is a reader that counts media.
type mediaCount struct{ media atomic.Int64 }

func (r *mediaCount) Send(*live.Packet, uint32) {}
func (r *mediaCount) Queue(*live.Packet, uint32, bool) bool {
	r.media.Add(1)
	return true
}
func (r *mediaCount) Flush()            {}
func (r *mediaCount) Notify(live.Event) {}
