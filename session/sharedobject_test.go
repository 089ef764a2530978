package session_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/rtmphub/rtmphub/rtmp/amf"
	"github.com/rtmphub/rtmphub/rtmp/client"
	"github.com/rtmphub/rtmphub/rtmp/message"
	"github.com/rtmphub/rtmphub/session"
	"github.com/rtmphub/rtmphub/session/sessiontest"
	"github.com/rtmphub/rtmphub/session/sharedobject"
)

// soState is a subscriber's copy of a shared object, as a Flash client
// keeps it.
type soState struct {
	version uint32
	props   map[string]any
	events  []message.SOEvent
}

func (s *soState) apply(m *message.SharedObjectMessage) {
	s.version = m.Version
	for _, e := range m.Events {
		s.events = append(s.events, e)
		switch e.Type {
		case message.SOClear:
			s.props = map[string]any{}
		case message.SOChange:
			s.props[e.Key] = e.Value
		case message.SORemove:
			delete(s.props, e.Key)
		}
	}
}

func kv(k string, v any) message.SOEvent { return message.SOEvent{Key: k, Value: v} }

// readSO reads one SO message into st.
func readSO(t *testing.T, ctx context.Context, c *client.Conn, name string, st *soState) *message.SharedObjectMessage {
	t.Helper()
	m, err := c.ReadSO(ctx, name)
	if err != nil {
		t.Fatalf("reading %s: %v", name, err)
	}
	st.apply(m)
	return m
}

func evTypes(m *message.SharedObjectMessage) string {
	var s []string
	for _, e := range m.Events {
		s = append(s, e.Type.String()+":"+e.Key)
	}
	return strings.Join(s, " ")
}

func TestSharedObjectTwoClients(t *testing.T) {
	base, _, _ := startServer(t, session.Config{SOSyncInterval: 30 * time.Millisecond})
	for i, encs := range [][2]float64{{0, 0}, {3, 0}, {3, 3}} {
		ctx := sessiontest.Ctx(t, 5*time.Second)
		a := sessiontest.Dial(t, base+"/chat/r1", client.Options{ObjectEncoding: encs[0]})
		b := sessiontest.Dial(t, base+"/chat/r1", client.Options{ObjectEncoding: encs[1]})
		// A fresh object per round: the last round's clients may still be
		// leaving (their release runs after their connection closes), which
		// would keep its object, and its version, alive.
		name := fmt.Sprintf("rooms/lobby%d", i)
		sa, sb := &soState{props: map[string]any{}}, &soState{props: map[string]any{}}

		a.UseSO(name, false, 0)
		m := readSO(t, ctx, a, name, sa)
		if m.Events[0].Type != message.SOUseSuccess || m.Events[1].Type != message.SOClear {
			t.Fatalf("use reply %s", evTypes(m))
		}
		a.SetSO(name, false, sa.version, kv("x", 1.0), kv("who", "a"))
		m = readSO(t, ctx, a, name, sa)
		if evTypes(m) != "Success:x Success:who" || m.Version != 1 {
			t.Fatalf("a after set: v%d %s", m.Version, evTypes(m))
		}

		// B joins: initial sync.
		b.UseSO(name, false, 0)
		m = readSO(t, ctx, b, name, sb)
		if sb.props["x"] != 1.0 || sb.props["who"] != "a" || m.Version != 1 {
			t.Fatalf("b initial sync v%d %v", m.Version, sb.props)
		}

		// A changes, B sees Change; A removes, B sees Remove.
		a.SetSO(name, false, 1, kv("x", 2.0))
		readSO(t, ctx, a, name, sa)
		m = readSO(t, ctx, b, name, sb)
		if sb.props["x"] != 2.0 || m.Version != 2 {
			t.Fatalf("b change v%d %v", m.Version, sb.props)
		}
		a.RemoveSO(name, false, "who")
		readSO(t, ctx, a, name, sa)
		readSO(t, ctx, b, name, sb)
		if _, ok := sb.props["who"]; ok {
			t.Fatalf("b after remove %v", sb.props)
		}

		// AMF3 values keep their type between AMF3 peers.
		if encs == [2]float64{3, 3} {
			a.SetSO(name, false, 3, kv("bytes", amf.ByteArray{1, 2, 3}), kv("vec", amf.VectorDouble{Items: []float64{1.5}}))
			readSO(t, ctx, a, name, sa)
			readSO(t, ctx, b, name, sb)
			if _, ok := sb.props["bytes"].(amf.ByteArray); !ok {
				t.Errorf("ByteArray arrived as %T", sb.props["bytes"])
			}
			if _, ok := sb.props["vec"].(amf.VectorDouble); !ok {
				t.Errorf("Vector arrived as %T", sb.props["vec"])
			}
		}

		// Send message: to everyone, sender included.
		b.SendSO(name, false, "onChat", "hi", 7.0)
		for _, p := range []struct {
			c  *client.Conn
			st *soState
		}{{a, sa}, {b, sb}} {
			m = readSO(t, ctx, p.c, name, p.st)
			if len(m.Events) != 1 || m.Events[0].Type != message.SOSendMessage || m.Events[0].Handler != "onChat" || m.Events[0].Args[0] != "hi" {
				t.Fatalf("send: %s %+v", evTypes(m), m.Events)
			}
		}
		if sa.version != sb.version {
			t.Fatalf("versions differ: %d %d", sa.version, sb.version)
		}
		a.Close()
		b.Close()
	}
}

// Shared object messages go out on chunk stream 3, with the commands of
// message stream 0: client libraries that read commands only from chunk
// streams 2 and 3 dropped them on 4 (see message.CSIDSharedOb).
func TestSharedObjectChunkStream(t *testing.T) {
	base, _, _ := startServer(t, session.Config{SOSyncInterval: 30 * time.Millisecond})
	ctx := sessiontest.Ctx(t, 5*time.Second)
	// readRaw reads until the next shared object message.
	readRaw := func(c *client.Conn) *message.Message {
		t.Helper()
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		for {
			m, err := c.ReadMessage()
			if err != nil {
				t.Fatalf("waiting for a shared object message: %v", err)
			}
			if m.Type == message.TypeSharedObjectAMF0 || m.Type == message.TypeSharedObjectAMF3 {
				return m
			}
		}
	}
	for _, enc := range []float64{0, 3} {
		a := sessiontest.Dial(t, base+"/chat/csid", client.Options{ObjectEncoding: enc})
		b := sessiontest.Dial(t, base+"/chat/csid", client.Options{ObjectEncoding: enc})
		name := fmt.Sprintf("room%v", enc)
		sa, sb := &soState{props: map[string]any{}}, &soState{props: map[string]any{}}
		a.UseSO(name, false, 0)
		readSO(t, ctx, a, name, sa)
		b.UseSO(name, false, 0)
		readSO(t, ctx, b, name, sb)
		a.SetSO(name, false, sa.version, kv("x", 1.0))
		for who, c := range map[string]*client.Conn{"requester (Success)": a, "listener (Change)": b} {
			if m := readRaw(c); m.ChunkStreamID != message.CSIDCommand {
				t.Errorf("encoding %v, %s: shared object message on chunk stream %d, want %d", enc, who, m.ChunkStreamID, message.CSIDCommand)
			}
		}
		a.Close()
		b.Close()
	}
}

// Two writers of one slot within one sync interval: the first wins. The
// test runs in a synctest bubble, so that "within one interval" holds
// however loaded the machine: fake time stands still between the writes.
func TestSharedObjectConflictFirstWriterWins(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base, _, _ := sessiontest.StartPipe(t, sessiontest.Config(session.Config{SOSyncInterval: 200 * time.Millisecond}))
		ctx := sessiontest.Ctx(t, 5*time.Second)
		a := sessiontest.Dial(t, base+"/chat", client.Options{})
		b := sessiontest.Dial(t, base+"/chat", client.Options{ObjectEncoding: 3})
		sa, sb := &soState{props: map[string]any{}}, &soState{props: map[string]any{}}
		a.UseSO("board", false, 0)
		b.UseSO("board", false, 0)
		readSO(t, ctx, a, "board", sa)
		readSO(t, ctx, b, "board", sb)
		// Both write the same slot within one (long) interval: A first.
		a.SetSO("board", false, 0, kv("cell", "A"))
		synctest.Wait() // the server has taken A's change
		b.SetSO("board", false, 0, kv("cell", "B"), kv("other", 1.0))
		sb.props["cell"] = "B" // B's local, optimistic copy
		ma := readSO(t, ctx, a, "board", sa)
		mb := readSO(t, ctx, b, "board", sb)
		if evTypes(ma) != "Success:cell Change:other" {
			t.Errorf("winner got %s", evTypes(ma))
		}
		if evTypes(mb) != "Change:cell Success:other" {
			t.Errorf("loser got %s", evTypes(mb))
		}
		if sb.props["cell"] != "A" || sa.props["other"] != 1.0 || ma.Version != mb.Version {
			t.Errorf("not converged: a=%v b=%v", sa.props, sb.props)
		}
	})
}

func TestSharedObjectBatchesUpdates(t *testing.T) {
	base, _, _ := startServer(t, session.Config{SOSyncInterval: 50 * time.Millisecond})
	ctx := sessiontest.Ctx(t, 5*time.Second)
	w := sessiontest.Dial(t, base+"/chat", client.Options{})
	r := sessiontest.Dial(t, base+"/chat", client.Options{})
	sw, sr := &soState{props: map[string]any{}}, &soState{props: map[string]any{}}
	w.UseSO("pos", false, 0)
	r.UseSO("pos", false, 0)
	readSO(t, ctx, w, "pos", sw)
	readSO(t, ctx, r, "pos", sr)
	for i := range 200 {
		w.SetSO("pos", false, 0, kv("x", float64(i)))
	}
	msgs := 0
	for sr.props["x"] != 199.0 {
		readSO(t, ctx, r, "pos", sr)
		msgs++
	}
	if msgs > 5 {
		t.Errorf("200 writes reached the subscriber in %d messages", msgs)
	}
	t.Logf("200 writes → %d messages, version %d", msgs, sr.version)
}

func TestSharedObjectServerAPIAndHook(t *testing.T) {
	seen := make(chan *session.Client, 1)
	base, _, _ := startServer(t, session.Config{Application: testApp(seen)})
	ctx := sessiontest.Ctx(t, 5*time.Second)
	c := sessiontest.Dial(t, base+"/rpc", client.Options{})
	st := &soState{props: map[string]any{}}
	c.Call(ctx, "echo")
	sc := <-seen
	so, err := sc.Instance().SharedObject("game", false)
	if err != nil {
		t.Fatal(err)
	}
	defer so.Release()
	so.SetChangeHook(func(ch *sharedobject.Change) error {
		switch ch.Key {
		case "locked":
			return os.ErrPermission
		case "upper":
			s, _ := ch.Value.(string)
			ch.Value, ch.Modified = strings.ToUpper(s), true
		}
		return nil
	})
	so.Lock()
	so.Set("a", 1.0)
	so.Set("b", "two")
	so.Send("onTick", 1.0)
	so.Unlock()

	c.UseSO("game", false, 0)
	m := readSO(t, ctx, c, "game", st)
	if st.props["a"] != 1.0 || st.props["b"] != "two" {
		t.Fatalf("initial %v (%s)", st.props, evTypes(m))
	}
	c.SetSO("game", false, st.version, kv("locked", true), kv("upper", "abc"))
	m = readSO(t, ctx, c, "game", st)
	// The rejected slot is reverted (removed: it did not exist), the
	// modified one comes back as a Change with the hook's value.
	if _, ok := st.props["locked"]; ok || st.props["upper"] != "ABC" {
		t.Fatalf("after hook %v (%s)", st.props, evTypes(m))
	}
	if v, _ := so.Get("upper"); v != "ABC" {
		t.Errorf("server sees upper=%v", v)
	}
	if got := strings.Join(so.Names(), ","); got != "a,b,upper" {
		t.Errorf("names %s", got)
	}
	so.Clear()
	m = readSO(t, ctx, c, "game", st)
	if len(st.props) != 0 || m.Events[0].Type != message.SOClear {
		t.Errorf("after clear %v (%s)", st.props, evTypes(m))
	}
}

func TestSharedObjectLimitsAndErrors(t *testing.T) {
	base, _, _ := startServer(t, session.Config{MaxSharedObjects: 2, MaxSOProperties: 2, MaxSOSize: 200})
	ctx := sessiontest.Ctx(t, 5*time.Second)
	c := sessiontest.Dial(t, base+"/chat", client.Options{})
	other := sessiontest.Dial(t, base+"/chat", client.Options{})
	st, so := &soState{props: map[string]any{}}, &soState{props: map[string]any{}}
	c.UseSO("one", false, 0)
	readSO(t, ctx, c, "one", st)
	other.UseSO("one", false, 0)
	readSO(t, ctx, other, "one", so)

	status := func(name string) string {
		t.Helper()
		m, err := c.ReadSO(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range m.Events {
			if e.Type == message.SOStatus {
				return e.Code
			}
		}
		st.apply(m)
		return "none: " + evTypes(m)
	}
	c.UseSO("two", false, 0)
	readSO(t, ctx, c, "two", &soState{props: map[string]any{}})
	c.UseSO("three", false, 0)
	if got := status("three"); got != "SharedObject.ObjectCreationFailed" {
		t.Errorf("too many SOs: %s", got)
	}
	c.UseSO("../evil", false, 0)
	if got := status("../evil"); got != "SharedObject.ObjectCreationFailed" {
		t.Errorf("bad name: %s", got)
	}
	c.SetSO("one", false, 0, kv("a", 1.0), kv("b", 2.0), kv("c", 3.0))
	if got := status("one"); got != "SharedObject.NoWriteAccess" {
		t.Errorf("too many properties: %s", got)
	}
	c.SetSO("one", false, 0, kv("a", strings.Repeat("x", 300)))
	if got := status("one"); got != "SharedObject.NoWriteAccess" {
		t.Errorf("too large: %s", got)
	}
	// The other subscriber is unaffected and converges. It reads up to a
	// message c sends after all of the above: the server takes c's
	// messages in order and sends an object's events in order.
	c.SendSO("one", false, "fence")
	fenced := func(m *message.SharedObjectMessage) bool {
		for _, e := range m.Events {
			if e.Type == message.SOSendMessage && e.Handler == "fence" {
				return true
			}
		}
		return false
	}
	for {
		m := readSO(t, ctx, other, "one", so)
		for _, e := range m.Events {
			if e.Type == message.SOStatus {
				t.Errorf("other got a status %s", e.Code)
			}
		}
		if fenced(m) {
			break
		}
	}
	for fencedC := false; !fencedC; { // c gets its message too
		fencedC = fenced(readSO(t, ctx, c, "one", st))
	}
	if so.props["a"] != 1.0 || so.props["b"] != 2.0 || len(so.props) != 2 {
		t.Errorf("other's copy %v", so.props)
	}
	// Persistence mismatch.
	c.UseSO("one", true, 0)
	if got := status("one"); got != "SharedObject.BadPersistence" {
		t.Errorf("bad persistence: %s", got)
	}
}

func TestPersistentSharedObjectSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	cfg := session.Config{DataDir: dir}
	vals := []message.SOEvent{
		kv("n", 1.5), kv("s", "str"), kv("o", amf.Object{{Key: "k", Value: "v"}}),
		kv("ecma", amf.ECMAArray{{Key: "e", Value: 1.0}}),
	}
	vals3 := []message.SOEvent{
		kv("bytes", amf.ByteArray{9, 8, 7}), kv("vec", amf.VectorInt{Items: []int32{-1, 2}}), kv("int", int32(5)),
	}
	var version uint32
	{
		base, _, _ := startServer(t, cfg)
		ctx := sessiontest.Ctx(t, 5*time.Second)
		a := sessiontest.Dial(t, base+"/game/i1", client.Options{})
		b := sessiontest.Dial(t, base+"/game/i1", client.Options{ObjectEncoding: 3})
		st := &soState{props: map[string]any{}}
		a.UseSO("scores/top", true, 0)
		readSO(t, ctx, a, "scores/top", st)
		b.UseSO("scores/top", true, 0)
		readSO(t, ctx, b, "scores/top", &soState{props: map[string]any{}})
		a.SetSO("scores/top", true, 0, vals...)
		readSO(t, ctx, a, "scores/top", st)
		b.SetSO("scores/top", true, 0, vals3...)
		readSO(t, ctx, a, "scores/top", st)
		version = st.version
		a.Close()
		b.Close()
	}
	path := filepath.Join(dir, "game", "sharedobjects", "i1", "scores", "top.fso")
	if !sessiontest.Poll(3*time.Second, func() bool { _, err := os.Stat(path); return err == nil }) {
		t.Fatalf("no file %s", path)
	}
	base, _, _ := startServer(t, cfg)
	ctx := sessiontest.Ctx(t, 5*time.Second)
	c := sessiontest.Dial(t, base+"/game/i1", client.Options{ObjectEncoding: 3})
	st := &soState{props: map[string]any{}}
	c.UseSO("scores/top", true, 0)
	m := readSO(t, ctx, c, "scores/top", st)
	if m.Version != version || !m.Persistent {
		t.Errorf("version %d after restart, want %d (persistent %v)", m.Version, version, m.Persistent)
	}
	if st.props["n"] != 1.5 || st.props["s"] != "str" {
		t.Errorf("props %v", st.props)
	}
	if _, ok := st.props["bytes"].(amf.ByteArray); !ok {
		t.Errorf("ByteArray is %T", st.props["bytes"])
	}
	if v, ok := st.props["vec"].(amf.VectorInt); !ok || len(v.Items) != 2 || v.Items[0] != -1 {
		t.Errorf("Vector is %#v", st.props["vec"])
	}
	if v, ok := st.props["int"].(int32); !ok || v != 5 {
		t.Errorf("int is %#v", st.props["int"])
	}
	// A temporary use of a persistent name is refused.
	d := sessiontest.Dial(t, base+"/game/i1", client.Options{})
	d.UseSO("scores/top", false, 0)
	m2, err := d.ReadSO(ctx, "scores/top")
	if err != nil || m2.Events[0].Type != message.SOStatus || m2.Events[0].Code != "SharedObject.BadPersistence" {
		t.Errorf("temporary use of a persistent SO: %+v %v", m2, err)
	}
}

func TestSharedObjectSlowSubscriberIsDisconnected(t *testing.T) {
	base, srv, logs := startServer(t, session.Config{SOSyncInterval: time.Millisecond, StallTimeout: 500 * time.Millisecond})
	ctx := sessiontest.Ctx(t, 20*time.Second)
	w := sessiontest.Dial(t, base+"/chat", client.Options{})
	slow := sessiontest.Dial(t, base+"/chat", client.Options{})
	slow.UseSO("flood", false, 0)
	w.UseSO("flood", false, 0)
	sw := &soState{props: map[string]any{}}
	readSO(t, ctx, w, "flood", sw)
	big := strings.Repeat("y", 60000)
	for i := 0; srv.Stats().SlowDisconnects.Load() == 0; i++ {
		if ctx.Err() != nil {
			t.Fatal("slow subscriber never disconnected")
		}
		w.SetSO("flood", false, 0, kv("v", fmt.Sprint(i, big)))
		readSO(t, ctx, w, "flood", sw) // the writer keeps up
	}
	if !sessiontest.Poll(2*time.Second, func() bool {
		return strings.Contains(logs.String(), "too slow") || strings.Contains(logs.String(), "overflow")
	}) {
		t.Error("no log line for the slow subscriber")
	}
	// The writer is still served.
	w.SetSO("flood", false, 0, kv("after", true))
	for ev := ""; !strings.Contains(ev, "Success:after"); {
		ev = evTypes(readSO(t, ctx, w, "flood", sw))
	}
}

// The admin view lists the SharedObjects in use with their state.
func TestSharedObjectsView(t *testing.T) {
	base, srv, _ := startServer(t, session.Config{})
	c := sessiontest.Dial(t, base+"/live/room1", client.Options{})
	if err := c.UseSO("rooms/lobby", false, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ReadSO(sessiontest.Ctx(t, 5*time.Second), "rooms/lobby"); err != nil {
		t.Fatal(err)
	}
	if err := c.SetSO("rooms/lobby", false, 0, message.SOEvent{Type: message.SORequestChange, Key: "topic", Value: "hello"}); err != nil {
		t.Fatal(err)
	}
	var views []session.SharedObjectView
	sessiontest.Eventually(t, 5*time.Second, "a view of the changed object", func() bool {
		views = srv.SharedObjects()
		return len(views) == 1 && views[0].Version > 0
	})
	if v := views[0]; v.App != "live" || v.Instance != "room1" || v.Name != "rooms/lobby" || v.Subscribers != 1 || v.Size == 0 || v.Persistent {
		t.Fatalf("view %+v", v)
	}
}
