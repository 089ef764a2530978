package session_test

import (
	"testing"
	"time"

	"github.com/rtmphub/rtmphub/rtmp/message"
	"github.com/rtmphub/rtmphub/session"
	"github.com/rtmphub/rtmphub/session/sessiontest"
)

// GStreamer's rtmp2sink ends a publication with its stop-commands
// (gst/rtmp2/rtmp/rtmpclient.c send_stop): each on message stream 0 with
// transaction 0, a null and the stream's name, FCUnpublish and deleteStream
// by default, closeStream on request; then it closes the connection. A
// name must end the publication as the numeric id does, so that players
// hear UnpublishNotify at once, not after the grace a dropped publisher
// gets.
func TestStopCommandsByName(t *testing.T) {
	const grace = 30 * time.Second // far longer than any wait below
	base, srv, _ := startServer(t, session.Config{PublisherGrace: grace})
	for _, tc := range []struct {
		name string
		cmds []string // what stop-commands sends, in its order
	}{
		{"deletestream", []string{"deleteStream"}},
		{"closestream", []string{"closeStream"}},
		{"fcunpublish+deletestream (the default)", []string{"FCUnpublish", "deleteStream"}},
		{"fcunpublish+closestream+deletestream", []string{"FCUnpublish", "closeStream", "deleteStream"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stream := "gst" + time.Now().Format("150405.000000000")
			pub := publish(t, base, stream)
			pub.Frames(t, 0, 3, 25)
			c, id := sessiontest.Play(t, base+"/live", stream)
			for _, cmd := range tc.cmds {
				if err := pub.C.WriteCommand(0, &message.Command{Name: cmd, TransactionID: 0, Args: []any{stream}}); err != nil {
					t.Fatal(err)
				}
			}
			pub.C.Close()
			start := time.Now()
			if _, err := c.WaitStatus(sessiontest.Ctx(t, 5*time.Second), id, "NetStream.Play.UnpublishNotify"); err != nil {
				t.Fatalf("no UnpublishNotify within 5 s of %v and a close (grace %v): %v", tc.cmds, grace, err)
			}
			t.Logf("UnpublishNotify %v after the close", time.Since(start).Round(time.Millisecond))
		})
	}

	// A player's deleteStream(name) stops its play without closing the
	// connection.
	t.Run("player deleteStream(name)", func(t *testing.T) {
		pub := publish(t, base, "watched")
		pub.Frames(t, 0, 3, 25)
		c, _ := sessiontest.Play(t, base+"/live", "watched")
		players := func() int {
			for _, v := range srv.Streams() {
				if v.App == "live" && v.Name == "watched" {
					return len(v.Players)
				}
			}
			return 0
		}
		if n := players(); n != 1 {
			t.Fatalf("%d players before deleteStream, want 1", n)
		}
		if err := c.WriteCommand(0, &message.Command{Name: "deleteStream", Args: []any{"watched"}}); err != nil {
			t.Fatal(err)
		}
		sessiontest.Eventually(t, 5*time.Second, "the player's play to stop after deleteStream(name)", func() bool { return players() == 0 })
		// The connection is still usable.
		if _, err := c.CreateStream(sessiontest.Ctx(t, 5*time.Second)); err != nil {
			t.Fatalf("createStream after deleteStream(name): %v", err)
		}
	})
}
