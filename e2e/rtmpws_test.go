package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rtmphub/rtmphub/rtmp/client"
	"github.com/rtmphub/rtmphub/rtmp/message"
	"github.com/rtmphub/rtmphub/tunnel/rtmpws"
)

// wsClient connects the project's RTMP client to app over RTMP over
// WebSocket at addr (ws://addr/rtmp, or wss:// with d's TLS settings when
// secure); the tcUrl says rtmpws://addr/app as a page's would.
func wsClient(t testing.TB, ctx context.Context, d *rtmpws.Dialer, addr, app string, secure bool) *client.Conn {
	t.Helper()
	scheme := "rtmpws://"
	if secure {
		scheme = "rtmpwss://"
	}
	c, err := client.Dial(ctx, scheme+addr+"/"+app, client.Options{Dial: d.DialFunc(secure)})
	if err != nil {
		t.Fatalf("connect %s%s/%s over WebSocket: %v", scheme, addr, app, err)
	}
	return c
}

// TestRTMPWSCallOnEveryPort: the project's RTMP client over WebSocket, at
// /rtmp of the RTMP port (sniffed as HTTP) and of the HTTP port, connects
// to a scripted application and calls its methods; the script sees the
// protocol rtmpws and the client's address, and an RTMP client of the
// same instance sees both kinds of client in application.clients.
func TestRTMPWSCallOnEveryPort(t *testing.T) {
	e2e(t)
	srv := startServer(t)
	copyApp(t, srv.DataDir, "wsprobe")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	native, err := client.Dial(ctx, "rtmp://"+srv.Addr+"/wsprobe/room", client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer native.Close()
	var d rtmpws.Dialer
	for _, addr := range []string{srv.Addr, srv.RTMPTAddr(t)} {
		c := wsClient(t, ctx, &d, addr, "wsprobe/room", false)
		res, err := c.Call(ctx, "whoami")
		if err != nil {
			t.Fatalf("%s: whoami: %v", addr, err)
		}
		if got := res.Args[0]; got != "rtmpws 127.0.0.1" {
			t.Errorf("%s: whoami = %v, want rtmpws 127.0.0.1", addr, got)
		}
		res, err = c.Call(ctx, "add", 2.0, 3.0)
		if err != nil || res.Args[0] != 5.0 {
			t.Errorf("%s: add(2, 3) = %v, %v", addr, res, err)
		}
		res, err = native.Call(ctx, "peers")
		if err != nil || res.Args[0] != "rtmp,rtmpws" {
			t.Errorf("%s: peers seen by the RTMP client = %v, %v; want rtmp,rtmpws", addr, res, err)
		}
		c.Close()
	}
	srv.requireAlive(t)
}

// TestRTMPWSSharedObjectChangeOfScriptSlot: what the JavaScript library's
// hub test does, with the project's client, over WebSocket and over TCP,
// in both encodings: two clients use the shared object whose slot "topic"
// the script set in onAppStart (the instance starts with the first
// connect, so the script's write is usually still in its first sync
// interval when they use it) and the first changes that slot. It gets a
// Success and the other the new value. The change used to be refused as
// a conflict with the script's write, which both clients had been sent
// with the object's state: the requester got the old value back and no
// Success, which looked like a message lost on the way.
func TestRTMPWSSharedObjectChangeOfScriptSlot(t *testing.T) {
	e2e(t)
	srv := startServer(t)
	dir := filepath.Join(srv.DataDir, "sdkjs")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "main.asc"), []byte(sdkTestApp), 0o644); err != nil {
		t.Fatal(err)
	}
	var d rtmpws.Dialer
	for _, ws := range []bool{true, false} {
		for _, enc := range []float64{0, 3} {
			inst := fmt.Sprintf("topic-ws%v-e%v", ws, enc)
			t.Run(inst, func(t *testing.T) {
				ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
				defer cancel()
				dial := func(nick string) *client.Conn {
					opt := client.Options{ObjectEncoding: enc, ConnectArgs: []any{nick, 1.0}}
					url := "rtmp://" + srv.Addr + "/sdkjs/" + inst
					if ws {
						opt.Dial = d.DialFunc(false)
						url = "rtmpws://" + srv.Addr + "/sdkjs/" + inst
					}
					c, err := client.Dial(ctx, url, opt)
					if err != nil {
						t.Fatalf("%s: %v", nick, err)
					}
					t.Cleanup(func() { c.Close() })
					return c
				}
				a, b := dial("a"), dial("b")
				for _, c := range []*client.Conn{a, b} {
					if err := c.UseSO("room", false, 0); err != nil {
						t.Fatal(err)
					}
				}
				var version uint32
				for i, c := range []*client.Conn{a, b} {
					m, err := c.ReadSO(ctx, "room")
					if err != nil {
						t.Fatal(err)
					}
					if len(m.Events) != 3 || m.Events[0].Type != message.SOUseSuccess || m.Events[2].Key != "topic" || m.Events[2].Value != "welcome" {
						t.Fatalf("client %d: use reply %+v", i, m.Events)
					}
					version = m.Version
				}
				if err := a.SetSO("room", false, version, message.SOEvent{Key: "topic", Value: "from a"}); err != nil {
					t.Fatal(err)
				}
				// wait reads c's shared object messages until one has an
				// event on topic that ok accepts (the script's write may
				// come first, as a Change at the end of its interval).
				wait := func(who string, c *client.Conn, ok func(message.SOEvent) bool) {
					var seen []message.SOEvent
					rctx, cancel := context.WithTimeout(ctx, 3*time.Second)
					defer cancel()
					for {
						m, err := c.ReadSO(rctx, "room")
						if err != nil {
							t.Fatalf("%s: %v; got %+v", who, err, seen)
						}
						for _, e := range m.Events {
							if e.Key == "topic" && ok(e) {
								return
							}
							seen = append(seen, e)
						}
					}
				}
				wait("a (Success)", a, func(e message.SOEvent) bool { return e.Type == message.SOSuccess })
				wait("b (the new value)", b, func(e message.SOEvent) bool { return e.Type == message.SOChange && e.Value == "from a" })
			})
		}
	}
	srv.requireAlive(t)
}
