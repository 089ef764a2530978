package script_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rtmphub/rtmphub/rtmp/client"
	"github.com/rtmphub/rtmphub/rtmp/message"
	"github.com/rtmphub/rtmphub/session"
	"github.com/rtmphub/rtmphub/session/script"
	"github.com/rtmphub/rtmphub/session/sessiontest"
)

const accessScript = `
application.onAppStart = function () {
	var so = SharedObject.get("shared/room", false);
	so.setProperty("topic", "hi");
	so.onSync = function (list) { trace("onSync " + list[0].name + " " + list[0].code); };
	this.room = so;
};
application.onConnect = function (client, role) {
	if (role === "viewer") {
		client.readAccess = " pub ; ;/shared/ ";
		client.writeAccess = "";
	}
	return true;
};
Client.prototype.access = function () { return [this.readAccess, this.writeAccess]; };
Client.prototype.grant = function (r, w) {
	this.readAccess = r;
	this.writeAccess = w;
	return [this.readAccess, this.writeAccess];
};
Client.prototype.tooLong = function () {
	try {
		this.readAccess = new Array(5000).join("x");
	} catch (e) {
		return e.name + " " + this.readAccess;
	}
	return "no error";
};
`

// statusCode is the code of a *client.StatusError ("" for another error or
// none).
func statusCode(err error) string {
	var se *client.StatusError
	if errors.As(err, &se) {
		return se.Code + " " + se.Description
	}
	if err != nil {
		return "error " + err.Error()
	}
	return ""
}

// soEvents reads name's messages until one has an event for which ok
// holds, and returns that message's events.
func soEvents(t *testing.T, ctx context.Context, c *client.Conn, name string, ok func(message.SOEvent) bool) []message.SOEvent {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	for {
		m, err := c.ReadSO(ctx, name)
		if err != nil {
			t.Fatalf("waiting on shared object %s: %v", name, err)
		}
		if slices.ContainsFunc(m.Events, ok) {
			return m.Events
		}
	}
}

func soStatus(code string) func(message.SOEvent) bool {
	return func(e message.SOEvent) bool { return e.Type == message.SOStatus && e.Code == code }
}

// access calls method and returns its two-string result.
func access(t *testing.T, ctx context.Context, c *client.Conn, method string, args ...any) [2]string {
	t.Helper()
	r, err := c.Call(ctx, method, args...)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := r.Arg(0).([]any)
	if len(a) != 2 {
		t.Fatalf("result %#v", r.Args)
	}
	s0, _ := a[0].(string)
	s1, _ := a[1].(string)
	return [2]string{s0, s1}
}

// Client.readAccess / writeAccess set in onConnect and changed by a later
// call decide what the client may play, publish, subscribe to and change,
// with FMS's refusals.
func TestClientAccessEnforced(t *testing.T) {
	base, logs := start(t, map[string]map[string]string{"acl": {"main.asc": accessScript}}, time.Second)
	ctx := ctxT(t, 15*time.Second)

	// The default is "/": everything.
	full := mustDial(t, base+"/acl", client.Options{})
	if got := access(t, ctx, full, "access"); got != [2]string{"/", "/"} {
		t.Errorf("default access = %q", got)
	}

	v := mustDial(t, base+"/acl", client.Options{ConnectArgs: []any{"viewer"}})
	if got := access(t, ctx, v, "access"); got != [2]string{"pub;/shared/", ""} {
		t.Errorf("viewer access = %q, want normalized %q", got, [2]string{"pub;/shared/", ""})
	}
	if r, err := v.Call(ctx, "tooLong"); err != nil || r.Arg(0) != "TypeError pub;/shared/" {
		t.Errorf("too long an access string: %v %v (want a TypeError, access unchanged)", r, err)
	}

	// play: within readAccess only.
	id, err := v.CreateStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Play(ctx, id, "pub/cam", -2000); err != nil {
		t.Errorf("play pub/cam: %v", err)
	}
	for _, name := range []string{"other/cam", "pubx", "pub/../other/cam", "mp4:other/clip.mp4", "cam"} {
		err := v.Play(ctx, id, name, -2000)
		if got := statusCode(err); !strings.HasPrefix(got, "NetStream.Play.Failed No read access") {
			t.Errorf("play %s: %q, want NetStream.Play.Failed", name, got)
		}
	}
	// a type prefix is not part of the path: allowed, then not found
	if got := statusCode(v.Play(ctx, id, "mp4:pub/clip.mp4", 0)); !strings.HasPrefix(got, "NetStream.Play.StreamNotFound") {
		t.Errorf("play mp4:pub/clip.mp4: %q, want StreamNotFound (allowed, no file)", got)
	}

	// publish: writeAccess is "".
	pid, err := v.CreateStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := statusCode(v.Publish(ctx, pid, "pub/mine", "live")); !strings.HasPrefix(got, "NetStream.Publish.BadName No write access") {
		t.Errorf("publish pub/mine without write access: %q", got)
	}

	// shared objects: read within readAccess, no writes, no creation.
	if err := v.UseSO("shared/room", false, 0); err != nil {
		t.Fatal(err)
	}
	soEvents(t, ctx, v, "shared/room", func(e message.SOEvent) bool {
		return e.Type == message.SOChange && e.Key == "topic" && e.Value == "hi"
	})
	if err := v.SetSO("shared/room", false, 0, message.SOEvent{Key: "topic", Value: "mine"}); err != nil {
		t.Fatal(err)
	}
	evs := soEvents(t, ctx, v, "shared/room", soStatus("SharedObject.NoWriteAccess"))
	if !slices.ContainsFunc(evs, func(e message.SOEvent) bool {
		return e.Type == message.SOChange && e.Key == "topic" && e.Value == "hi"
	}) {
		t.Errorf("refused change not reverted to the current value: %+v", evs)
	}
	if err := v.RemoveSO("shared/room", false, "topic"); err != nil {
		t.Fatal(err)
	}
	soEvents(t, ctx, v, "shared/room", soStatus("SharedObject.NoWriteAccess"))
	if err := v.UseSO("other/so", false, 0); err != nil {
		t.Fatal(err)
	}
	soEvents(t, ctx, v, "other/so", soStatus("SharedObject.NoReadAccess"))
	if err := v.UseSO("shared/new", false, 0); err != nil {
		t.Fatal(err)
	}
	soEvents(t, ctx, v, "shared/new", soStatus("SharedObject.NoWriteAccess"))

	// A full client sees the slot unchanged; its own write goes through.
	if err := full.UseSO("shared/room", false, 0); err != nil {
		t.Fatal(err)
	}
	soEvents(t, ctx, full, "shared/room", func(e message.SOEvent) bool {
		return e.Type == message.SOChange && e.Key == "topic" && e.Value == "hi"
	})
	if strings.Contains(logs.String(), "onSync topic") {
		t.Errorf("a refused change reached onSync")
	}

	// Changed in a call: takes effect for the next requests.
	if got := access(t, ctx, v, "grant", "/", "pub;shared"); got != [2]string{"/", "pub;shared"} {
		t.Errorf("grant = %q", got)
	}
	if err := v.Play(ctx, id, "other/cam", -2000); err != nil {
		t.Errorf("play other/cam after grant: %v", err)
	}
	if err := v.Publish(ctx, pid, "pub/mine", "live"); err != nil {
		t.Errorf("publish pub/mine after grant: %v", err)
	}
	pid2, err := v.CreateStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := statusCode(v.Publish(ctx, pid2, "elsewhere", "live")); !strings.HasPrefix(got, "NetStream.Publish.BadName No write access") {
		t.Errorf("publish elsewhere: %q", got)
	}
	if err := v.SetSO("shared/room", false, 0, message.SOEvent{Key: "topic", Value: "granted"}); err != nil {
		t.Fatal(err)
	}
	soEvents(t, ctx, v, "shared/room", func(e message.SOEvent) bool { return e.Type == message.SOSuccess && e.Key == "topic" })
	soEvents(t, ctx, full, "shared/room", func(e message.SOEvent) bool {
		return e.Type == message.SOChange && e.Key == "topic" && e.Value == "granted"
	})
	waitLog(t, logs, "onSync topic change", 3*time.Second)
	if err := v.UseSO("shared/new", false, 0); err != nil {
		t.Fatal(err)
	}
	soEvents(t, ctx, v, "shared/new", func(e message.SOEvent) bool { return e.Type == message.SOUseSuccess })

	// null takes everything away.
	if got := access(t, ctx, v, "grant", nil, nil); got != [2]string{"", ""} {
		t.Errorf("grant(null, null) = %q", got)
	}
	if got := statusCode(v.Play(ctx, id, "pub/cam", -2000)); !strings.HasPrefix(got, "NetStream.Play.Failed") {
		t.Errorf("play with readAccess \"\": %q", got)
	}
}

// startCapture wraps a scripted instance to hand its *session.Instance to
// the test.
type startCapture struct {
	*script.App
	got chan *session.Instance
}

func (s startCapture) Start(in *session.Instance) {
	select {
	case s.got <- in:
	default:
	}
	s.App.Start(in)
}

// SharedObject.purge(version) drops the deleted properties older than
// version; version is the object's version.
func TestSharedObjectPurge(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "board"), 0o755); err != nil {
		t.Fatal(err)
	}
	src := `
var so;
application.onAppStart = function () { so = SharedObject.get("board", false); };
function flushed(k, v) { so.setProperty(k, v); so.flush(); return so.version; }
Client.prototype.build = function () {
	var v = [so.version];
	v.push(flushed("a", 1)); // 1
	so.setProperty("b", 2); so.setProperty("c", 3); so.flush(); v.push(so.version); // 2
	v.push(flushed("a", null)); // a deleted at 3
	v.push(flushed("b", null)); // b deleted at 4
	v.push(flushed("c", null)); // c deleted at 5
	return v;
};
Client.prototype.purge = function (n) { return typeof so.purge(n); };
Client.prototype.purgeNaN = function () {
	try { so.purge("x"); } catch (e) { return e.name; }
	return "no error";
};
Client.prototype.reset = function (k) { so.setProperty(k, "back"); so.flush(); return so.version; };
`
	if err := os.WriteFile(filepath.Join(dir, "board", "main.asc"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	got := make(chan *session.Instance, 1)
	base, _, _ := sessiontest.Start(t, func(log *slog.Logger) session.Config {
		f := script.Factory(script.Config{DataDir: dir, MaxRun: time.Second, Log: log})
		return session.Config{DataDir: dir, CallTimeout: 3 * time.Second, Application: func(app, inst string) session.Application {
			return startCapture{App: f(app, inst).(*script.App), got: got}
		}}
	})
	ctx := ctxT(t, 10*time.Second)
	c := mustDial(t, base+"/board", client.Options{})
	var in *session.Instance
	select {
	case in = <-got:
	case <-ctx.Done():
		t.Fatal("no instance")
	}
	r, err := c.Call(ctx, "build")
	if err != nil {
		t.Fatal(err)
	}
	if vs, _ := r.Arg(0).([]any); !slices.Equal(vs, []any{0.0, 1.0, 2.0, 3.0, 4.0, 5.0}) {
		t.Fatalf("versions %v", r.Args)
	}
	so, err := in.SharedObject("board", false)
	if err != nil {
		t.Fatal(err)
	}
	defer so.Release()
	if d := so.DeletedNames(); !slices.Equal(d, []string{"a", "b", "c"}) {
		t.Fatalf("deleted before purge: %v", d)
	}
	if v, ok := so.DeletedVersion("b"); !ok || v != 4 {
		t.Errorf("b deleted at %d %v, want 4", v, ok)
	}

	// purge(4): older than 4 is a (3) only; it returns nothing.
	if r, err := c.Call(ctx, "purge", 4.0); err != nil || r.Arg(0) != "undefined" {
		t.Fatalf("purge(4): %v %v", r, err)
	}
	if d := so.DeletedNames(); !slices.Equal(d, []string{"b", "c"}) {
		t.Errorf("after purge(4): %v, want [b c]", d)
	}
	if r, err := c.Call(ctx, "purgeNaN"); err != nil || r.Arg(0) != "TypeError" {
		t.Errorf("purge(\"x\"): %v %v", r, err)
	}
	// setting a deleted property again ends its deletion
	if _, err := c.Call(ctx, "reset", "b"); err != nil {
		t.Fatal(err)
	}
	if d := so.DeletedNames(); !slices.Equal(d, []string{"c"}) {
		t.Errorf("after setting b again: %v, want [c]", d)
	}
	// purge(version + 1) drops every deletion; live properties stay.
	if _, err := c.Call(ctx, "purge", float64(so.Version()+1)); err != nil {
		t.Fatal(err)
	}
	if d := so.DeletedNames(); len(d) != 0 {
		t.Errorf("after purging all: %v", d)
	}
	if names := so.Names(); !slices.Equal(names, []string{"b"}) {
		t.Errorf("properties after purge: %v, want [b]", names)
	}
}
