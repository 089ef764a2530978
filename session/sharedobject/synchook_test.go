package sharedobject_test

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/rtmphub/rtmphub/rtmp/message"
	"github.com/rtmphub/rtmphub/session/sharedobject"
)

// The SyncHook hears the clients' changes the object made, in order,
// with the values made (a ChangeHook's modification included), and never
// the refused ones: a change lost to another one of its interval, one a
// ChangeHook rejected, one past the limits. It is called without the
// object's lock: it may use the object.
func TestSyncHookHearsChangesMade(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig(t, 3)
		r := sharedobject.NewRegistry(cfg, "app", "inst", slog.New(slog.NewTextHandler(io.Discard, nil)))
		so, err := r.Acquire("room", false)
		if err != nil {
			t.Fatal(err)
		}
		defer so.Release()
		so.SetChangeHook(func(ch *sharedobject.Change) error {
			switch ch.Key {
			case "locked":
				return errors.New("locked")
			case "upper":
				ch.Value, ch.Modified = strings.ToUpper(ch.Value.(string)), true
			}
			return nil
		})
		var heard []string
		so.SetSyncHook(func(s sharedobject.Synced) {
			now, _ := so.Get(s.Key) // the object's lock is free
			heard = append(heard, fmt.Sprintf("%d %s %v(%v)->%v remove=%v now=%v", s.Member.ID(), s.Key, s.Old, s.HadOld, s.Value, s.Remove, now))
		})
		a := &member{id: 1, t: t}
		b := &member{id: 2, t: t}
		sa := sharedobject.NewSubscriptions(r, a, a)
		sb := sharedobject.NewSubscriptions(r, b, b)
		handle(t, sa, a, "room", message.SOEvent{Type: message.SOUse})
		handle(t, sb, b, "room", message.SOEvent{Type: message.SOUse})
		time.Sleep(cfg.SyncInterval)
		synctest.Wait()

		change := func(s *sharedobject.Subscriptions, m *member, key string, v any) {
			handle(t, s, m, "room", message.SOEvent{Type: message.SORequestChange, Key: key, Value: v})
		}
		change(sa, a, "topic", "first")
		change(sb, b, "topic", "lost") // same interval, a's value not sent to b
		change(sb, b, "locked", "x")   // the ChangeHook rejects it
		change(sb, b, "upper", "abc")  // the ChangeHook modifies it
		change(sa, a, "c", 1.0)
		change(sa, a, "d", 2.0) // a fourth slot: past the limit
		handle(t, sa, a, "room", message.SOEvent{Type: message.SORequestRemove, Key: "c"})
		time.Sleep(cfg.SyncInterval)
		synctest.Wait()
		want := []string{
			"1 topic <nil>(false)->first remove=false now=first",
			"2 upper <nil>(false)->ABC remove=false now=ABC",
			"1 c <nil>(false)->1 remove=false now=1",
			"1 c 1(true)-><nil> remove=true now=<nil>",
		}
		equal(t, "sync hook", heard, want...)
		if v, _ := so.Get("topic"); v != "first" {
			t.Errorf("topic = %v", v)
		}

		so.SetSyncHook(nil)
		change(sb, b, "topic", "unheard")
		if len(heard) != len(want) {
			t.Errorf("a removed hook heard %v", heard[len(want):])
		}
		sa.ReleaseAll()
		sb.ReleaseAll()
	})
}
