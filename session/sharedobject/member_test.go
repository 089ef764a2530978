package sharedobject_test

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/rtmphub/rtmphub/rtmp/message"
	"github.com/rtmphub/rtmphub/session/sharedobject"
)

// member is a client as the objects see it, without a connection: what
// they send it is kept, decoded, in the order sent.
type member struct {
	id       uint64
	amf3     bool
	readOnly bool

	mu   sync.Mutex
	msgs []*message.SharedObjectMessage
	t    *testing.T
}

func (m *member) ID() uint64                 { return m.id }
func (m *member) AMF3() bool                 { return m.amf3 }
func (m *member) Logger() *slog.Logger       { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
func (m *member) MayRead(string) bool        { return true }
func (m *member) MayWrite(name string) bool  { return !m.readOnly }
func (m *member) SendSO(msg message.Message) { m.record(msg) }

func (m *member) record(msg message.Message) {
	m.t.Helper()
	if msg.ChunkStreamID != message.CSIDSharedOb {
		m.t.Errorf("member %d: SO message on chunk stream %d", m.id, msg.ChunkStreamID)
	}
	if want := m.msgType(); msg.Type != want {
		m.t.Errorf("member %d: message type %v, want %v", m.id, msg.Type, want)
	}
	so, err := message.DecodeSharedObject(msg.Payload, msg.Type == message.TypeSharedObjectAMF3)
	if err != nil {
		m.t.Errorf("member %d: %v", m.id, err)
		return
	}
	m.mu.Lock()
	m.msgs = append(m.msgs, so)
	m.mu.Unlock()
}

func (m *member) msgType() message.Type {
	if m.amf3 {
		return message.TypeSharedObjectAMF3
	}
	return message.TypeSharedObjectAMF0
}

// take returns the messages sent since the last take, as
// "name@version Event:key=value ..." lines.
func (m *member) take() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for _, so := range m.msgs {
		line := fmt.Sprintf("%s@%d", so.Name, so.Version)
		for _, e := range so.Events {
			line += " " + e.Type.String()
			if e.Key != "" {
				line += ":" + e.Key
			}
			if e.Value != nil {
				line += fmt.Sprintf("=%v", e.Value)
			}
			if e.Code != "" {
				line += ":" + e.Code
			}
		}
		out = append(out, line)
	}
	m.msgs = nil
	return out
}

// handle sends m's message of events on object name to subs.
func handle(t *testing.T, subs *sharedobject.Subscriptions, m *member, name string, evs ...message.SOEvent) {
	t.Helper()
	p, err := message.EncodeSharedObject(nil, &message.SharedObjectMessage{Name: name, Events: evs}, m.amf3)
	if err != nil {
		t.Fatal(err)
	}
	if err := subs.Handle(&message.Message{Type: m.msgType(), ChunkStreamID: message.CSIDSharedOb, Payload: p}); err != nil {
		t.Fatal(err)
	}
}

func equal(t *testing.T, who string, got []string, want ...string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("%s got\n\t%s\nwant\n\t%s", who, strings.Join(got, "\n\t"), strings.Join(want, "\n\t"))
	}
}

// The seam to the core, without one: two members, one AMF0 and one AMF3,
// use an object, change the same slot in one sync interval, and get one
// message each at its end; the first writer wins and the loser's copy is
// reverted. A read-only member's change is refused with a Status. Time is
// synctest's: no sleeps.
func TestSubscriptionsSync(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig(t, 100)
		r := sharedobject.NewRegistry(cfg, "app", "inst", slog.New(slog.NewTextHandler(io.Discard, nil)))
		a := &member{id: 1, t: t}
		b := &member{id: 2, amf3: true, t: t}
		ro := &member{id: 3, readOnly: true, t: t}
		sa := sharedobject.NewSubscriptions(r, a, a)
		sb := sharedobject.NewSubscriptions(r, b, b)
		sro := sharedobject.NewSubscriptions(r, ro, ro)

		for _, x := range []struct {
			s *sharedobject.Subscriptions
			m *member
		}{{sa, a}, {sb, b}, {sro, ro}} {
			handle(t, x.s, x.m, "room", message.SOEvent{Type: message.SOUse})
			equal(t, "use", x.m.take(), "room@0 UseSuccess Clear")
		}
		if r.Len() != 1 || sa.Len() != 1 {
			t.Fatalf("registry %d objects, a uses %d", r.Len(), sa.Len())
		}

		handle(t, sa, a, "room", message.SOEvent{Type: message.SORequestChange, Key: "x", Value: 1.0})
		handle(t, sb, b, "room", message.SOEvent{Type: message.SORequestChange, Key: "x", Value: 2.0})
		handle(t, sro, ro, "room", message.SOEvent{Type: message.SORequestChange, Key: "y", Value: 3.0})
		equal(t, "a before the sync", a.take())
		time.Sleep(cfg.SyncInterval)
		synctest.Wait()
		equal(t, "a (won)", a.take(), "room@1 Success:x")
		equal(t, "b (lost)", b.take(), "room@1 Change:x=1")
		equal(t, "read-only", ro.take(), "room@1 Change:x=1 Status:SharedObject.NoWriteAccess Remove:y")

		so, err := r.Acquire("room", false)
		if err != nil {
			t.Fatal(err)
		}
		if v, _ := so.Get("x"); v != 1.0 || so.Version() != 1 || so.Subscribers() != 3 {
			t.Errorf("x=%v version %d subscribers %d", v, so.Version(), so.Subscribers())
		}
		sa.ReleaseAll()
		sb.ReleaseAll()
		sro.ReleaseAll()
		if info := so.Info(); info.Subscribers != 0 || r.Len() != 1 {
			t.Errorf("after the members left: %+v, registry %d", info, r.Len())
		}
		so.Release()
		if r.Len() != 0 {
			t.Errorf("released, still %d objects", r.Len())
		}
		if err := so.Set("x", 2.0); err == nil {
			t.Error("Set on an unloaded object succeeded")
		}
	})
}

// A slot the server wrote just before members used the object, in the
// same sync interval (a script's onAppStart, run by the first connect):
// the members get the value with the object's state, so a change one of
// them then asks for is made over it, not refused as a conflict with
// it. It used to be refused (the server "wrote first"): the requester got
// the server's value back instead of a Success, and every subscriber
// kept the old value. A member that used the object before the server's
// write did not see it, and still loses to it.
func TestChangeOverAWriteSeenAtUse(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig(t, 100)
		r := sharedobject.NewRegistry(cfg, "app", "inst", slog.New(slog.NewTextHandler(io.Discard, nil)))
		so, err := r.Acquire("room", false)
		if err != nil {
			t.Fatal(err)
		}
		defer so.Release()
		early := &member{id: 3, t: t}
		se := sharedobject.NewSubscriptions(r, early, early)
		handle(t, se, early, "room", message.SOEvent{Type: message.SOUse})
		equal(t, "early use", early.take(), "room@0 UseSuccess Clear")

		if err := so.Set("topic", "welcome"); err != nil {
			t.Fatal(err)
		}
		a := &member{id: 1, t: t}
		b := &member{id: 2, amf3: true, t: t}
		sa := sharedobject.NewSubscriptions(r, a, a)
		sb := sharedobject.NewSubscriptions(r, b, b)
		for _, x := range []struct {
			s *sharedobject.Subscriptions
			m *member
		}{{sa, a}, {sb, b}} {
			handle(t, x.s, x.m, "room", message.SOEvent{Type: message.SOUse})
			equal(t, "use", x.m.take(), "room@0 UseSuccess Clear Change:topic=welcome")
		}
		// Still in the interval of the server's write.
		handle(t, sa, a, "room", message.SOEvent{Type: message.SORequestChange, Key: "topic", Value: "from a"})
		// The early member did not see the server's value: its change of
		// the same slot conflicts with it, and loses.
		handle(t, se, early, "room", message.SOEvent{Type: message.SORequestChange, Key: "topic", Value: "early"})
		time.Sleep(cfg.SyncInterval)
		synctest.Wait()
		equal(t, "a (changed a slot it had been sent)", a.take(), "room@1 Success:topic")
		equal(t, "b", b.take(), "room@1 Change:topic=from a")
		equal(t, "early (lost)", early.take(), "room@1 Change:topic=from a")
		if v, _ := so.Get("topic"); v != "from a" {
			t.Errorf("topic = %v, want a's value", v)
		}

		// The next interval starts afresh: a change of a slot another
		// member wrote in it, by a member that has not seen it, loses.
		handle(t, sb, b, "room", message.SOEvent{Type: message.SORequestChange, Key: "topic", Value: "b"})
		handle(t, sa, a, "room", message.SOEvent{Type: message.SORequestChange, Key: "topic", Value: "a again"})
		time.Sleep(cfg.SyncInterval)
		synctest.Wait()
		equal(t, "b (won)", b.take(), "room@2 Success:topic")
		equal(t, "a (lost)", a.take(), "room@2 Change:topic=b")
		equal(t, "early", early.take(), "room@2 Change:topic=b")
		sa.ReleaseAll()
		sb.ReleaseAll()
		se.ReleaseAll()
	})
}
