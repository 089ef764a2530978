package script_test

import (
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/rtmphub/rtmphub/rtmp/client"
	"github.com/rtmphub/rtmphub/rtmp/message"
)

// onSync hears the clients' changes the shared object made, and only
// those: two clients change the same slot in one sync interval, the
// second had not been sent the first's value and loses (the
// first-writer rule), so onSync hears the first change only. It used to
// hear both, the refused one included, because the script was told from
// the change hook, before the object decided (the chat announced "topic
// is now" a topic that was not the room's). A change a client makes
// over a value it had been sent is made, and heard, in order. The test
// runs in a synctest bubble: synctest.Wait tells when the server has
// handled a change, with the sync interval not yet over.
func TestOnSyncHearsOnlyChangesMade(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := startPiped(t, map[string]map[string]string{"room": {"main.asc": `
var room;
application.onAppStart = function () {
	room = SharedObject.get("room", false);
	room.onSync = function (list) {
		for (var i = 0; i < list.length; i++) {
			trace("onSync " + list[i].code + " " + list[i].name + " " + list[i].oldValue + "->" + list[i].newValue);
		}
	};
};
`}}, time.Second)
		base := "rtmp://127.0.0.1/room"
		a := mustDial(t, base, p.options(client.Options{}))
		b := mustDial(t, base, p.options(client.Options{}))
		for _, c := range []*client.Conn{a, b} {
			if err := c.UseSO("room", false, 0); err != nil {
				t.Fatal(err)
			}
		}
		synctest.Wait()
		time.Sleep(time.Second) // past any interval of the uses
		synctest.Wait()

		set := func(c *client.Conn, v string) {
			t.Helper()
			if err := c.SetSO("room", false, 0, message.SOEvent{Key: "topic", Value: v}); err != nil {
				t.Fatal(err)
			}
			synctest.Wait()
		}
		// One interval: a writes first, b's change of the slot is refused.
		set(a, "first")
		set(b, "refused")
		time.Sleep(time.Second)
		synctest.Wait()
		// The next interval: b was sent "first" and changes it, then a
		// changes b's value, which it has not been sent: refused.
		set(b, "second")
		set(a, "refused too")
		time.Sleep(time.Second)
		synctest.Wait()

		var got []string
		for _, line := range strings.Split(p.logs.String(), "\n") {
			if i := strings.Index(line, "onSync "); i >= 0 {
				got = append(got, strings.TrimSuffix(line[i:], `"`))
			}
		}
		want := []string{"onSync change topic null->first", "onSync change topic first->second"}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("onSync heard\n\t%s\nwant\n\t%s", strings.Join(got, "\n\t"), strings.Join(want, "\n\t"))
		}
	})
}
