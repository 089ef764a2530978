package session_test

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/rtmphub/rtmphub/rtmp/amf"
	"github.com/rtmphub/rtmphub/rtmp/client"
	"github.com/rtmphub/rtmphub/rtmp/message"
	"github.com/rtmphub/rtmphub/session"
	"github.com/rtmphub/rtmphub/session/sessiontest"
)

// testIdle is long against what a loaded machine (the e2e suite running
// beside these tests) may delay a message by, so that a client that just
// connected or is about to send is never taken for idle.
const testIdle = time.Second

// readUntil reads c until the server closes it or until d has passed. It
// reports whether the connection was closed, after how long, and whether
// NetConnection.Connect.IdleTimeout came first.
func readUntil(t *testing.T, c *client.Conn, d time.Duration) (closed bool, after time.Duration, idleStatus bool) {
	t.Helper()
	start := time.Now()
	c.Conn.SetReadDeadline(start.Add(d))
	defer c.Conn.SetReadDeadline(time.Time{})
	for {
		m, err := c.ReadMessage()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return false, time.Since(start), idleStatus
			}
			return true, time.Since(start), idleStatus
		}
		if m.Type != message.TypeCommandAMF0 && m.Type != message.TypeCommandAMF3 {
			continue
		}
		if cmd, err := message.DecodeCommand(m); err == nil && cmd.Name == "onStatus" {
			o, _ := cmd.Arg(0).(amf.Object)
			if code, _ := o.GetString("code"); code == "NetConnection.Connect.IdleTimeout" {
				idleStatus = true
			}
		}
	}
}

func idleServer(t *testing.T, timeout time.Duration) string {
	app := session.Handlers{
		// callMe leaves a server-to-client call unanswered (the client
		// does not answer it) until the call timeout.
		"callMe": func(c *session.Client, _ []any) (any, error) {
			c.Call("ask", nil, func(any, error) {})
			return "asked", nil
		},
		// slow answers after 3s: a client-to-server call in flight.
		"slow": func(c *session.Client, _ []any) (any, error) {
			return session.Async(func(reply func(any, error)) {
				time.AfterFunc(3*time.Second, func() { reply("late", nil) })
			}), nil
		},
	}
	base, _, _ := startServer(t, session.Config{ClientIdleTimeout: timeout, CallTimeout: 3 * time.Second,
		Application: func(string, string) session.Application { return app }})
	return base
}

func TestIdleClientIsDropped(t *testing.T) {
	base, _, logs := startServer(t, session.Config{ClientIdleTimeout: testIdle})
	c := sessiontest.Dial(t, base+"/app", client.Options{})
	closed, after, status := readUntil(t, c, 5*time.Second)
	if !closed || !status || after < testIdle-50*time.Millisecond {
		t.Fatalf("closed %v after %v, IdleTimeout status %v", closed, after, status)
	}
	if !sessiontest.Poll(2*time.Second, func() bool {
		s := logs.String()
		return strings.Contains(s, "idle client disconnected") && strings.Contains(s, "event=disconnect") &&
			strings.Contains(s, fmt.Sprintf(`reason="idle timeout: no message for %v"`, testIdle))
	}) {
		t.Errorf("no log line or access log reason:\n%s", logs)
	}

	// A message restarts the clock: a client calling every 100ms stays
	// well past the timeout.
	c2 := sessiontest.Dial(t, base+"/app", client.Options{})
	for range 15 {
		if closed, _, _ := readUntil(t, c2, 100*time.Millisecond); closed {
			t.Fatal("a client sending messages was dropped")
		}
		c2.Call(sessiontest.Ctx(t, 5*time.Second), "nosuch") // an _error answer is fine
	}
}

func TestIdleTimeoutOffKeepsSilentClients(t *testing.T) {
	base, _, _ := startServer(t, session.Config{})
	c := sessiontest.Dial(t, base+"/app", client.Options{})
	if closed, _, _ := readUntil(t, c, 3*testIdle); closed {
		t.Fatal("a silent client was dropped with the idle timeout off")
	}
}

func TestIdleTimeoutSparesBusyClients(t *testing.T) {
	base := idleServer(t, testIdle)
	t.Run("shared object", func(t *testing.T) {
		t.Parallel()
		c := sessiontest.Dial(t, base+"/app", client.Options{})
		c.UseSO("room", false, 0)
		if closed, _, _ := readUntil(t, c, 4*testIdle); closed {
			t.Fatal("a client using a shared object was dropped")
		}
		// Released: quiet again, dropped.
		c.ReleaseSO("room", false)
		if closed, _, status := readUntil(t, c, 5*time.Second); !closed || !status {
			t.Fatalf("after release: closed %v, status %v", closed, status)
		}
	})
	t.Run("player", func(t *testing.T) {
		t.Parallel()
		c := sessiontest.Dial(t, base+"/app", client.Options{})
		ctx := sessiontest.Ctx(t, 5*time.Second)
		id, err := c.CreateStream(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Play(ctx, id, "nobody", -1); err != nil {
			t.Fatal(err)
		}
		if closed, _, _ := readUntil(t, c, 4*testIdle); closed {
			t.Fatal("a player was dropped")
		}
	})
	t.Run("publisher", func(t *testing.T) {
		t.Parallel()
		c := sessiontest.Dial(t, base+"/app", client.Options{})
		ctx := sessiontest.Ctx(t, 5*time.Second)
		id, err := c.CreateStream(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Publish(ctx, id, "silent", "live"); err != nil {
			t.Fatal(err)
		}
		// No media: --publisher-idle-timeout's business (30s), not this.
		if closed, _, _ := readUntil(t, c, 4*testIdle); closed {
			t.Fatal("a publisher was dropped")
		}
	})
	t.Run("server call pending", func(t *testing.T) {
		t.Parallel()
		c := sessiontest.Dial(t, base+"/app", client.Options{})
		if _, err := c.Call(sessiontest.Ctx(t, 5*time.Second), "callMe"); err != nil {
			t.Fatal(err)
		}
		// The call times out after 3s; the client is quiet from then.
		if closed, _, _ := readUntil(t, c, 2*testIdle); closed {
			t.Fatal("a client with a server call pending was dropped")
		}
		closed, after, status := readUntil(t, c, 5*time.Second)
		if !closed || !status || after < 100*time.Millisecond {
			t.Fatalf("after the call timed out: closed %v after %v more, status %v", closed, after, status)
		}
	})
	t.Run("client call pending", func(t *testing.T) {
		t.Parallel()
		c := sessiontest.Dial(t, base+"/app", client.Options{})
		if err := c.WriteCommand(0, &message.Command{Name: "slow", TransactionID: 7}); err != nil {
			t.Fatal(err)
		}
		// Answered after 3s; quiet from then.
		if closed, _, _ := readUntil(t, c, 2*testIdle); closed {
			t.Fatal("a client with a call in flight was dropped")
		}
		closed, after, status := readUntil(t, c, 5*time.Second)
		if !closed || !status || after < 100*time.Millisecond {
			t.Fatalf("after the answer: closed %v after %v more, status %v", closed, after, status)
		}
	})
}

// A client that stopped publishing is no publisher any more: the publisher
// idle timeout, counted from its last media message, does not cut it.
func TestExPublisherOutlivesPublisherIdleTimeout(t *testing.T) {
	for _, idle := range []time.Duration{0, 5 * time.Second} {
		base, _, _ := startServer(t, session.Config{PublisherIdleTimeout: testIdle, ClientIdleTimeout: idle})
		p := publish(t, base, "s")
		p.Frames(t, 0, 2, 25)
		if err := p.C.WriteCommand(p.MsID, &message.Command{Name: "closeStream"}); err != nil {
			t.Fatal(err)
		}
		if closed, after, _ := readUntil(t, p.C, 2*testIdle); closed {
			t.Errorf("client idle timeout %v: the ex-publisher was dropped after %v", idle, after)
		}
	}
}
