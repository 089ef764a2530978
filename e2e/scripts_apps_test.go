package e2e

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rtmphub/rtmphub/flv"
	"github.com/rtmphub/rtmphub/rtmp"
	"github.com/rtmphub/rtmphub/rtmp/amf"
	"github.com/rtmphub/rtmphub/rtmp/client"
	"github.com/rtmphub/rtmphub/rtmp/message"
	"github.com/rtmphub/rtmphub/session/sessiontest"
	"github.com/rtmphub/rtmphub/tunnel"
)

// End-to-end tests of the example server-side applications
// (testdata/apps/*/main.asc) against the real binary, with the Go client
// (rtmp/client) over rtmp:// and over rtmpt:// (tunnel.DialRTMPT to the
// HTTP listener), and with python3-librtmp over both:
//
//   - connects accepted and rejected by onConnect, with the script's info
//     object (lobby, calculator);
//   - client → server calls with results and errors (calculator, lobby);
//   - server → client calls with a Responder (lobby's ask);
//   - shared objects changed by the script and by clients (chat);
//   - a server-side playlist joined at different times (playlist);
//   - scripts that throw or loop forever (thrower, spinner, broken) while
//     other applications keep answering.
//
// Every application instance is named after the transport (app/rtmp,
// app/rtmpt) so that the transports' cases never share state.

// saTransport is one way for the Go client to reach the server.
type saTransport struct {
	name string // "rtmp" or "rtmpt": what the script sees as client.protocol
	base string // scheme://host:port
	dial func(ctx context.Context, addr string) (net.Conn, error)
}

func saTransports(t testing.TB, srv *server) []saTransport {
	t.Helper()
	httpAddr := srv.RTMPTAddr(t)
	return []saTransport{
		{name: "rtmp", base: "rtmp://" + srv.Addr, dial: func(ctx context.Context, addr string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "tcp", addr)
		}},
		{name: "rtmpt", base: "rtmpt://" + httpAddr, dial: func(ctx context.Context, addr string) (net.Conn, error) {
			return tunnel.DialRTMPT(ctx, "rtmpt://"+addr, tunnel.DialOptions{})
		}},
	}
}

// connect dials app path ("app/instance") with the Go client; the
// connection is closed when the test ends.
func (tr saTransport) connect(t testing.TB, ctx context.Context, path string, opt client.Options) (*client.Conn, error) {
	t.Helper()
	opt.Dial = tr.dial
	c, err := client.Dial(ctx, tr.base+"/"+path, opt)
	if err == nil {
		t.Cleanup(func() { c.Close() })
	}
	return c, err
}

func (tr saTransport) mustConnect(t testing.TB, ctx context.Context, path string, args ...any) *client.Conn {
	t.Helper()
	c, err := tr.connect(t, ctx, path, client.Options{ConnectArgs: args})
	if err != nil {
		t.Fatalf("%s: connect %s %v: %v", tr.name, path, args, err)
	}
	return c
}

// dialRejected is connect for a connect the script should reject.
func (tr saTransport) dialRejected(t testing.TB, ctx context.Context, path string, args []any) error {
	t.Helper()
	_, err := tr.connect(t, ctx, path, client.Options{ConnectArgs: args})
	return err
}

// connectReply sends connect(args...) to app path and returns the
// server's reply to it (_result or _error, with its info object), which
// client.Dial does not give back on a rejection.
func (tr saTransport) connectReply(t testing.TB, ctx context.Context, path string, args ...any) *message.Command {
	t.Helper()
	r, err := tr.connectReplyOnce(ctx, path, args)
	if err != nil {
		t.Fatalf("%s: connect %s %v: %v", tr.name, path, args, err)
	}
	return r
}

func (tr saTransport) connectReplyOnce(ctx context.Context, path string, args []any) (*message.Command, error) {
	u, err := url.Parse(tr.base + "/" + path)
	if err != nil {
		return nil, err
	}
	nc, err := tr.dial(ctx, u.Host)
	if err != nil {
		return nil, fmt.Errorf("dial: %w", err)
	}
	defer nc.Close()
	if dl, ok := ctx.Deadline(); ok {
		nc.SetDeadline(dl)
	}
	rc, err := rtmp.Dial(nc, false, 1<<20)
	if err != nil {
		return nil, fmt.Errorf("handshake: %w", err)
	}
	cmd := &message.Command{Name: "connect", TransactionID: 1, Object: amf.Object{
		{Key: "app", Value: path}, {Key: "flashVer", Value: "LNX 9,0,124,2"},
		{Key: "tcUrl", Value: u.String()}, {Key: "objectEncoding", Value: 0.0}}, Args: args}
	typ, p, err := message.EncodeCommand(cmd, false)
	if err != nil {
		return nil, err
	}
	if err := rc.WriteMessages([]message.Message{{Type: typ, ChunkStreamID: 3, Payload: p}}); err != nil {
		return nil, fmt.Errorf("write connect: %w", err)
	}
	for {
		m, err := rc.ReadMessage()
		if err != nil {
			return nil, fmt.Errorf("reading the reply: %w", err)
		}
		if m.Type != message.TypeCommandAMF0 && m.Type != message.TypeCommandAMF3 {
			continue
		}
		if r, err := message.DecodeCommand(m); err == nil && r.TransactionID == 1 {
			return r, nil
		}
	}
}

// saStatus returns err as a *client.StatusError, failing the test when it
// is not one.
func saStatus(t testing.TB, what string, err error) *client.StatusError {
	t.Helper()
	var se *client.StatusError
	if !errors.As(err, &se) {
		t.Fatalf("%s: want a status error, got %v", what, err)
	}
	return se
}

// saLogWait waits up to timeout for a server log line at or after index
// from that matches.
func saLogWait(s *server, from int, timeout time.Duration, match func(logLine) bool) bool {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	next := from
	for {
		lines, changed := s.log.snapshot(next)
		next += len(lines)
		for _, l := range lines {
			if match(l) {
				return true
			}
		}
		select {
		case <-changed:
		case <-s.done:
			_, ok := s.log.find(next, match)
			return ok
		case <-deadline.C:
			return false
		}
	}
}

// TestScriptAppsConnectAcceptReject: onConnect accepts a client (the Go
// client gets NetConnection.Connect.Success) and rejects others with an
// info object: the client gets NetConnection.Connect.Rejected whose
// description is the object's (or the server's default when it has none)
// and whose "application" member is the object, over rtmp and rtmpt.
func TestScriptAppsConnectAcceptReject(t *testing.T) {
	e2e(t)
	srv := startServer(t)
	copyApp(t, srv.DataDir, "lobby")
	copyApp(t, srv.DataDir, "calculator")
	for _, tr := range saTransports(t, srv) {
		t.Run(tr.name, func(t *testing.T) {
			ctx := sessiontest.Ctx(t, 12*time.Second)
			lobby, calc := "lobby/"+tr.name, "calculator/"+tr.name
			ann := tr.mustConnect(t, ctx, lobby, "ann")
			if o, _ := ann.Result.Arg(0).(amf.Object); ann.Result.Name != "_result" || !saHas(o, "code", "NetConnection.Connect.Success") {
				t.Errorf("accepted connect: %s %v", ann.Result.Name, ann.Result.Args)
			}
			tr.mustConnect(t, ctx, calc, "secret")

			for _, tc := range []struct {
				name     string
				path     string
				args     []any
				wantDesc string
				wantApp  amf.Object // members the application object must have
			}{
				{"no nickname", lobby, nil, "A nickname is required.",
					amf.Object{{Key: "description", Value: "A nickname is required."}, {Key: "reason", Value: "nonick"}}},
				{"empty nickname", lobby, []any{""}, "A nickname is required.",
					amf.Object{{Key: "reason", Value: "nonick"}}},
				{"nickname taken", lobby, []any{"ann"}, "Nickname ann is taken.",
					amf.Object{{Key: "description", Value: "Nickname ann is taken."}, {Key: "reason", Value: "taken"}, {Key: "nick", Value: "ann"}}},
				{"wrong password", calc, []any{"wrong"}, "Connection rejected by the application.",
					amf.Object{{Key: "message", Value: "wrong password"}, {Key: "code", Value: 403.0}}},
				{"no password", calc, nil, "Connection rejected by the application.",
					amf.Object{{Key: "message", Value: "wrong password"}}},
			} {
				// The Go client's view: a *client.StatusError.
				err := tr.dialRejected(t, ctx, tc.path, tc.args)
				se := saStatus(t, tc.name, err)
				if se.Code != "NetConnection.Connect.Rejected" || se.Description != tc.wantDesc {
					t.Errorf("%s: client.Dial: %q %q, want NetConnection.Connect.Rejected %q", tc.name, se.Code, se.Description, tc.wantDesc)
				}
				// The reply itself, with the script's info object.
				r := tr.connectReply(t, ctx, tc.path, tc.args...)
				info, _ := r.Arg(0).(amf.Object)
				if r.Name != "_error" || !saHas(info, "level", "error") || !saHas(info, "code", "NetConnection.Connect.Rejected") ||
					!saHas(info, "description", tc.wantDesc) {
					t.Errorf("%s: reply %s %v", tc.name, r.Name, r.Args)
					continue
				}
				app, _ := info.Get("application")
				ao, _ := app.(amf.Object)
				for _, p := range tc.wantApp {
					if !saHas(ao, p.Key, p.Value) {
						t.Errorf("%s: application member %v lacks %s=%v", tc.name, app, p.Key, p.Value)
					}
				}
			}

			// The rejections left the accepted clients and the instance
			// alone: a new nickname is accepted, ann still answers.
			bob := tr.mustConnect(t, ctx, lobby, "bob")
			for _, c := range []struct {
				conn *client.Conn
				nick string
			}{{ann, "ann"}, {bob, "bob"}} {
				r, err := c.conn.Call(ctx, "whoami")
				if err != nil {
					t.Fatalf("whoami: %v", err)
				}
				if o, _ := r.Arg(0).(amf.Object); !saHas(o, "nick", c.nick) || !saHas(o, "protocol", tr.name) {
					t.Errorf("whoami = %v, want nick %s, protocol %s", r.Arg(0), c.nick, tr.name)
				}
			}
		})
	}
	srv.requireAlive(t)
}

// saHas reports whether o has member key equal to want.
func saHas(o amf.Object, key string, want any) bool {
	v, ok := o.Get(key)
	return ok && v == want
}

// TestScriptAppsClientToServerCall: a client's calls run the methods the
// calculator's main.asc defines on Client.prototype (and one found by
// __resolve), with their results; a thrown value fails the call with
// NetConnection.Call.Failed and the value as "application"; an undefined
// method or a built-in one cannot be called. Over rtmp and rtmpt, with
// the script's per-instance state (count).
func TestScriptAppsClientToServerCall(t *testing.T) {
	e2e(t)
	srv := startServer(t)
	copyApp(t, srv.DataDir, "calculator")
	for _, tr := range saTransports(t, srv) {
		t.Run(tr.name, func(t *testing.T) {
			ctx := sessiontest.Ctx(t, 12*time.Second)
			c := tr.mustConnect(t, ctx, "calculator/"+tr.name, "secret")
			for _, tc := range []struct {
				method string
				args   []any
				want   float64
			}{
				{"add", []any{2.0, 3.0}, 5},
				{"sub", []any{2.0, 3.0}, -1},
				{"mul", []any{6.0, 7.0}, 42},
				{"div", []any{1.0, 4.0}, 0.25},
				{"sum", []any{1.0, 2.0, 3.0, 4.0}, 10}, // __resolve
				{"count", nil, 4},                      // add, sub, mul, div of this instance
			} {
				r, err := c.Call(ctx, tc.method, tc.args...)
				if err != nil {
					t.Errorf("%s%v: %v", tc.method, tc.args, err)
					continue
				}
				if r.Name != "_result" || r.Arg(0) != tc.want {
					t.Errorf("%s%v = %s %v, want %v", tc.method, tc.args, r.Name, r.Args, tc.want)
				}
			}

			r, err := c.Call(ctx, "div", 1.0, 0.0)
			se := saStatus(t, "div by zero", err)
			info, _ := r.Arg(0).(amf.Object)
			app, _ := info.Get("application")
			ao, _ := app.(amf.Object)
			if se.Code != "NetConnection.Call.Failed" || !saHas(ao, "code", "Calculator.DivByZero") || !saHas(ao, "message", "division by zero") {
				t.Errorf("div by zero: %v, info %v", err, info)
			}
			_, err = c.Call(ctx, "nosuch", 1.0)
			if se := saStatus(t, "nosuch", err); se.Code != "NetConnection.Call.Failed" || !strings.Contains(se.Description, "Method not found (nosuch)") {
				t.Errorf("nosuch: %v", err)
			}
			_, err = c.Call(ctx, "call", "add")
			saStatus(t, "a client calling Client.call", err)

			// The failed calls did not count; the instance still answers.
			if r, err := c.Call(ctx, "count"); err != nil || r.Arg(0) != 5.0 {
				t.Errorf("count after div by zero: %v %v, want 5", r, err)
			}
			// Another instance of the app has its own state.
			other := tr.mustConnect(t, ctx, "calculator/"+tr.name+"-other", "secret")
			if r, err := other.Call(ctx, "count"); err != nil || r.Arg(0) != 0.0 {
				t.Errorf("count of a new instance: %v %v, want 0", r, err)
			}
		})
	}
	srv.requireAlive(t)
}

// TestScriptAppsServerToClientCall: lobby's ask(question) makes the
// script call the client's answer(question, nick) with a Responder; the
// Go client answers, and the script's Responder calls the client's
// heard() with what it got and keeps it for lastAnswer(). An _error
// answer reaches the Responder's onStatus. Over rtmp and rtmpt.
func TestScriptAppsServerToClientCall(t *testing.T) {
	e2e(t)
	srv := startServer(t)
	copyApp(t, srv.DataDir, "lobby")
	for _, tr := range saTransports(t, srv) {
		t.Run(tr.name, func(t *testing.T) {
			ctx := sessiontest.Ctx(t, 12*time.Second)
			nick := "zoe-" + tr.name
			c := tr.mustConnect(t, ctx, "lobby/"+tr.name, nick)
			for i, tc := range []struct {
				question string
				reply    func(txid float64) error
				heard    string
				last     any
			}{
				{"meaning?", func(id float64) error { return c.Reply(id, 42.0) }, nick + " answered 42", 42.0},
				{"colour?", func(id float64) error { return c.Reply(id, "blue") }, nick + " answered blue", "blue"},
				{"unknowable?", func(id float64) error {
					return c.ReplyError(id, amf.Object{{Key: "level", Value: "error"}, {Key: "code", Value: "Lobby.NoIdea"},
						{Key: "description", Value: "no idea"}})
				}, nick + " failed: Lobby.NoIdea", nil},
			} {
				r, err := c.Call(ctx, "ask", tc.question)
				if err != nil || r.Arg(0) != "asked" {
					t.Fatalf("%d: ask: %v %v", i, r, err)
				}
				q, err := c.ReadCall(ctx, "answer")
				if err != nil {
					t.Fatalf("%d: the server did not call answer: %v", i, err)
				}
				if q.TransactionID == 0 || q.Arg(0) != tc.question || q.Arg(1) != nick {
					t.Errorf("%d: answer call: txid %v args %v, want a transaction and [%s %s]", i, q.TransactionID, q.Args, tc.question, nick)
				}
				if err := tc.reply(q.TransactionID); err != nil {
					t.Fatal(err)
				}
				h, err := c.ReadCall(ctx, "heard")
				if err != nil {
					t.Fatalf("%d: the Responder did not call heard: %v", i, err)
				}
				if h.Arg(0) != tc.heard {
					t.Errorf("%d: heard %v, want %q", i, h.Args, tc.heard)
				}
				// heard is called once the answer is kept.
				if r, err := c.Call(ctx, "lastAnswer"); err != nil || r.Arg(0) != tc.last {
					t.Errorf("%d: lastAnswer = %v %v, want %v", i, r, err, tc.last)
				}
			}
		})
	}
	srv.requireAlive(t)
}

// saSO follows a shared object on one connection: every event received,
// in order.
type saSO struct {
	who    string
	c      *client.Conn
	name   string
	events []message.SOEvent
}

func (w *saSO) String() string {
	var b strings.Builder
	for _, e := range w.events {
		switch e.Type {
		case message.SOChange:
			fmt.Fprintf(&b, " Change:%s=%v", e.Key, e.Value)
		case message.SOSendMessage:
			fmt.Fprintf(&b, " Send:%s%v", e.Handler, e.Args)
		default:
			fmt.Fprintf(&b, " %v:%s", e.Type, e.Key)
		}
	}
	return b.String()
}

// wait reads shared object messages until an event seen so far (this
// one's included) satisfies ok.
func (w *saSO) wait(t testing.TB, ctx context.Context, what string, ok func(message.SOEvent) bool) {
	t.Helper()
	for i := 0; ; i++ {
		for _, e := range w.events {
			if ok(e) {
				return
			}
		}
		m, err := w.c.ReadSO(ctx, w.name)
		if err != nil {
			t.Fatalf("%s: waiting for %s: %v; events so far:%s", w.who, what, err, w)
		}
		w.events = append(w.events, m.Events...)
	}
}

func saChange(key string, ok func(any) bool) func(message.SOEvent) bool {
	return func(e message.SOEvent) bool { return e.Type == message.SOChange && e.Key == key && ok(e.Value) }
}

func saSend(handler string, args ...any) func(message.SOEvent) bool {
	return func(e message.SOEvent) bool {
		if e.Type != message.SOSendMessage || e.Handler != handler || len(e.Args) != len(args) {
			return false
		}
		for i := range args {
			if e.Args[i] != args[i] {
				return false
			}
		}
		return true
	}
}

func saEq(want any) func(any) bool { return func(v any) bool { return v == want } }

// TestScriptAppsSharedObject: the chat app's SharedObject "room" with two
// Go clients, both over rtmp, both over rtmpt, and one over each: the
// script's slots reach a client when it subscribes and as they change;
// say() changes a slot and sends msg() to every subscriber; a client's own
// change of a slot reaches the script's onSync (which sends a message), a
// client's send reaches the object's handler method (which changes a
// slot), and onDisconnect tells the others.
func TestScriptAppsSharedObject(t *testing.T) {
	e2e(t)
	srv := startServer(t)
	copyApp(t, srv.DataDir, "chat")
	trs := saTransports(t, srv)
	for _, pair := range []struct {
		name string
		a, b saTransport
	}{{"rtmp", trs[0], trs[0]}, {"rtmpt", trs[1], trs[1]}, {"rtmp+rtmpt", trs[0], trs[1]}} {
		t.Run(pair.name, func(t *testing.T) {
			ctx := sessiontest.Ctx(t, 12*time.Second)
			inst := "chat/" + strings.ReplaceAll(pair.name, "+", "-")
			a := pair.a.mustConnect(t, ctx, inst, "ann")
			if err := a.UseSO("room", false, 0); err != nil {
				t.Fatal(err)
			}
			wa := &saSO{who: "ann (" + pair.a.name + ")", c: a, name: "room"}
			wa.wait(t, ctx, "UseSuccess", func(e message.SOEvent) bool { return e.Type == message.SOUseSuccess })
			wa.wait(t, ctx, "the script's topic", saChange("topic", saEq("welcome")))

			// say: a slot changed by the script, and a message.
			if r, err := a.Call(ctx, "say", "hello"); err != nil || r.Arg(0) != true {
				t.Fatalf("say: %v %v", r, err)
			}
			lastIs := func(from, text string) func(any) bool {
				return func(v any) bool {
					o, _ := v.(amf.Object)
					_, isDate := saGet(o, "at").(time.Time)
					return saHas(o, "from", from) && saHas(o, "text", text) && isDate
				}
			}
			wa.wait(t, ctx, "slot last", saChange("last", lastIs("ann", "hello")))
			wa.wait(t, ctx, "msg(ann, hello)", saSend("msg", "ann", "hello"))

			// A second client gets the script's slots when it subscribes.
			b := pair.b.mustConnect(t, ctx, inst, "bob")
			if err := b.UseSO("room", false, 0); err != nil {
				t.Fatal(err)
			}
			wb := &saSO{who: "bob (" + pair.b.name + ")", c: b, name: "room"}
			wb.wait(t, ctx, "the script's topic", saChange("topic", saEq("welcome")))
			wb.wait(t, ctx, "slot last", saChange("last", lastIs("ann", "hello")))

			// bob's say reaches both.
			if r, err := b.Call(ctx, "say", "hi ann"); err != nil || r.Arg(0) != true {
				t.Fatalf("say: %v %v", r, err)
			}
			for _, w := range []*saSO{wa, wb} {
				w.wait(t, ctx, "slot last from bob", saChange("last", lastIs("bob", "hi ann")))
				w.wait(t, ctx, "msg(bob, hi ann)", saSend("msg", "bob", "hi ann"))
			}

			// bob's change of topic reaches ann and the script's onSync,
			// which tells everyone.
			mark := srv.log.len()
			if err := b.SetSO("room", false, 0, message.SOEvent{Key: "topic", Value: "news"}); err != nil {
				t.Fatal(err)
			}
			wb.wait(t, ctx, "Success:topic", func(e message.SOEvent) bool { return e.Type == message.SOSuccess && e.Key == "topic" })
			wa.wait(t, ctx, "topic news", saChange("topic", saEq("news")))
			for _, w := range []*saSO{wa, wb} {
				w.wait(t, ctx, "onSync's message", saSend("msg", "server", "topic is now news"))
			}
			if !saLogWait(srv, mark, 5*time.Second, func(l logLine) bool {
				return strings.Contains(l.Raw, "topic changed to news") && l.str("instance") == strings.TrimPrefix(inst, "chat/")
			}) {
				t.Errorf("onSync did not trace the change")
			}

			// ann's send reaches the object's shout handler, whose change
			// reaches both; the send itself reaches the subscribers too.
			if err := a.SendSO("room", false, "shout", "hey"); err != nil {
				t.Fatal(err)
			}
			for _, w := range []*saSO{wa, wb} {
				w.wait(t, ctx, "lastShout HEY", saChange("lastShout", saEq("HEY")))
			}
			wb.wait(t, ctx, "shout(hey)", saSend("shout", "hey"))

			// bob leaves: onDisconnect tells ann.
			b.Close()
			wa.wait(t, ctx, "msg(server, bob left)", saSend("msg", "server", "bob left"))
		})
	}
	srv.requireAlive(t)
}

func saGet(o amf.Object, key string) any {
	v, _ := o.Get(key)
	return v
}

// saClip is seconds of 25 fps H.263-tagged video, a keyframe a second:
// each frame's payload is {frame type|codec, tag, frame number (2
// bytes)}, so that a player knows which file and which frame it got.
func saClip(t testing.TB, tag byte, seconds int) []byte {
	t.Helper()
	b := flv.AppendHeader(nil, flv.Header{Version: 1, HasVideo: true})
	meta, err := amf.Marshal0("onMetaData", amf.ECMAArray{{Key: "duration", Value: float64(seconds)}})
	if err != nil {
		t.Fatal(err)
	}
	if b, err = flv.AppendTag(b, &flv.Tag{Type: message.TypeDataAMF0, Data: meta}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < seconds*25; i++ {
		frame := []byte{0x22, tag, byte(i >> 8), byte(i)}
		if i%25 == 0 {
			frame[0] = 0x12
		}
		if b, err = flv.AppendTag(b, &flv.Tag{Type: message.TypeVideo, Timestamp: uint32(i * 40), Data: frame}); err != nil {
			t.Fatal(err)
		}
	}
	return b
}

// saFrame is a video frame a player got: when, its timestamp, and which
// frame of which file it is.
type saFrame struct {
	at  time.Time
	ts  uint32
	tag byte
	n   int
}

// saPlay plays live stream name on c and returns the video frames read
// until the deadline.
func saPlay(ctx context.Context, c *client.Conn, name string, until time.Time) ([]saFrame, error) {
	msid, err := c.CreateStream(ctx)
	if err != nil {
		return nil, err
	}
	if err := c.Play(ctx, msid, name, -1000); err != nil {
		return nil, err
	}
	var got []saFrame
	for {
		c.SetReadDeadline(until)
		m, err := c.ReadMessage()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return got, nil
			}
			return got, err
		}
		if m.Type == message.TypeVideo && m.StreamID == msid && len(m.Payload) >= 4 {
			got = append(got, saFrame{at: time.Now(), ts: m.Timestamp, tag: m.Payload[1], n: int(m.Payload[2])<<8 | int(m.Payload[3])})
		}
	}
}

// TestScriptAppsPlaylist: the playlist app's live stream "tv" plays
// intro.flv (2 s) then show.flv (3 s) on one timeline. Player A joins as
// the instance starts, player B 1.3 s later; both read until the same
// moment. B starts mid-intro, not at its beginning; both get the frames in
// order, with timestamps that follow the files'; at any wall-clock moment
// both are at the same frame (the same timeline origin, and the same last
// frame at the end); the playlist moves on to show.flv. Over rtmp and
// rtmpt.
func TestScriptAppsPlaylist(t *testing.T) {
	e2e(t)
	srv := startServer(t)
	copyApp(t, srv.DataDir, "playlist")
	const introFrames, showFrames = 50, 75
	trs := saTransports(t, srv)
	for _, tr := range trs {
		dir := filepath.Join(srv.DataDir, "playlist", "streams", tr.name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for name, b := range map[string][]byte{"intro.flv": saClip(t, 'I', introFrames/25), "show.flv": saClip(t, 'S', showFrames/25)} {
			if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	// pos is a frame's place on the timeline, in ms: show.flv starts 1 ms
	// after the last frame of intro.flv (or later, if the server was late).
	pos := func(f saFrame) int {
		if f.tag == 'S' {
			return 40*(introFrames-1) + 1 + 40*f.n
		}
		return 40 * f.n
	}
	for _, tr := range trs {
		t.Run(tr.name, func(t *testing.T) {
			t.Parallel()
			ctx := sessiontest.Ctx(t, 14*time.Second)
			inst := "playlist/" + tr.name
			a := tr.mustConnect(t, ctx, inst) // starts the instance, and the playlist
			start := time.Now()
			until := start.Add(3600 * time.Millisecond)
			type result struct {
				frames []saFrame
				err    error
			}
			ra := make(chan result, 1)
			go func() {
				f, err := saPlay(ctx, a, "tv", until)
				ra <- result{f, err}
			}()
			select {
			case <-time.After(time.Until(start.Add(1300 * time.Millisecond))):
			case <-ctx.Done():
			}
			b := tr.mustConnect(t, ctx, inst)
			fb, err := saPlay(ctx, b, "tv", until)
			if err != nil {
				t.Fatalf("player B: %v", err)
			}
			res := <-ra
			if res.err != nil {
				t.Fatalf("player A: %v", res.err)
			}
			fa := res.frames
			if len(fa) < 40 || len(fb) < 20 {
				t.Fatalf("too few frames: A %d, B %d", len(fa), len(fb))
			}
			// origin estimates when the timeline's frame 0 was due: the
			// earliest arrival minus the frame's place (frames sent from
			// the cache when a player joins arrive late, not early).
			origin := func(fs []saFrame) time.Time {
				o := fs[0].at.Add(-time.Duration(pos(fs[0])) * time.Millisecond)
				for _, f := range fs[1:] {
					if x := f.at.Add(-time.Duration(pos(f)) * time.Millisecond); x.Before(o) {
						o = x
					}
				}
				return o
			}
			describe := func(fs []saFrame) string {
				first, last := fs[0], fs[len(fs)-1]
				return fmt.Sprintf("%d frames, first %c%d (ts %d) at +%v, last %c%d (ts %d) at +%v",
					len(fs), first.tag, first.n, first.ts, first.at.Sub(start).Round(time.Millisecond),
					last.tag, last.n, last.ts, last.at.Sub(start).Round(time.Millisecond))
			}
			t.Logf("player A: %s; player B: %s", describe(fa), describe(fb))
			for _, p := range []struct {
				who string
				fs  []saFrame
			}{{"A", fa}, {"B", fb}} {
				sawShow := false
				for i, f := range p.fs {
					if f.tag != 'I' && f.tag != 'S' {
						t.Fatalf("%s: frame %d is not from the playlist's files: %+v", p.who, i, f)
					}
					sawShow = sawShow || f.tag == 'S'
					if i == 0 {
						continue
					}
					prev := p.fs[i-1]
					if pos(f) <= pos(prev) {
						t.Errorf("%s: frame %c%d after %c%d: not in playlist order", p.who, f.tag, f.n, prev.tag, prev.n)
					}
					if f.tag == prev.tag && f.ts-prev.ts != uint32(40*(f.n-prev.n)) {
						t.Errorf("%s: frames %c%d → %c%d have timestamps %d → %d, want %d ms apart",
							p.who, prev.tag, prev.n, f.tag, f.n, prev.ts, f.ts, 40*(f.n-prev.n))
					}
					if f.tag == 'S' && prev.tag == 'I' && int32(f.ts-prev.ts) <= 0 {
						t.Errorf("%s: show.flv's first frame (ts %d) is not after intro's last (ts %d)", p.who, f.ts, prev.ts)
					}
				}
				if !sawShow {
					t.Errorf("%s: the playlist did not move on to show.flv", p.who)
				}
			}
			if first := fa[0]; first.tag != 'I' || first.n > 25 {
				t.Errorf("A joined at the start but got %c%d first", first.tag, first.n)
			}
			// B joined 1.3 s in: it starts at the keyframe before (frame
			// 25) or later, not at the beginning of the playlist.
			if first := fb[0]; first.tag == 'I' && first.n < 25 {
				t.Errorf("B joined 1.3 s into the playlist but got %c%d first", first.tag, first.n)
			}
			oa, ob := origin(fa), origin(fb)
			t.Logf("timeline origin: A +%v, B +%v", oa.Sub(start).Round(time.Millisecond), ob.Sub(start).Round(time.Millisecond))
			if d := ob.Sub(oa); d < -300*time.Millisecond || d > 300*time.Millisecond {
				t.Errorf("the players are on different timelines: B's is %v from A's", d.Round(time.Millisecond))
			}
			if d := pos(fa[len(fa)-1]) - pos(fb[len(fb)-1]); d < -320 || d > 320 {
				t.Errorf("at the end A is at %d ms, B at %d ms of the playlist", pos(fa[len(fa)-1]), pos(fb[len(fb)-1]))
			}
			if _, ok := srv.log.wait(func(l logLine) bool {
				return l.str("instance") == tr.name && strings.Contains(l.Raw, "tv: NetStream.Play.Switch")
			}, 5*time.Second, srv.done); !ok {
				t.Errorf("the script's onStatus got no NetStream.Play.Switch")
			}
		})
	}
}

// TestScriptAppsBrokenScripts: with --script-timeout 1s, scripts that
// throw (at load, in onConnect, in a call, in a timer) and that loop
// forever (in onConnect, in a call, in a timer) fail only what they were
// doing: the connect is rejected or the call fails with the error, the
// looping callbacks are interrupted, the same instances answer afterwards
// (their timers still run), and other applications connect and answer
// while one spins. Over rtmp and rtmpt.
func TestScriptAppsBrokenScripts(t *testing.T) {
	e2e(t)
	srv := startServer(t, "--script-timeout", "1s")
	for _, app := range []string{"broken", "thrower", "spinner", "calculator", "hello"} {
		copyApp(t, srv.DataDir, app)
	}
	const interrupted = "script ran longer than 1s"
	for _, tr := range saTransports(t, srv) {
		t.Run(tr.name, func(t *testing.T) {
			ctx := sessiontest.Ctx(t, 14*time.Second)
			rejected := func(what, path string, args []any, want string) {
				t.Helper()
				err := tr.dialRejected(t, ctx, path, args)
				se := saStatus(t, what, err)
				if se.Code != "NetConnection.Connect.Rejected" || !strings.Contains(se.Description, want) {
					t.Errorf("%s: %q %q, want NetConnection.Connect.Rejected with %q", what, se.Code, se.Description, want)
				}
			}

			// A script that throws while it loads.
			rejected("script throwing at load", "broken/"+tr.name, nil, "broken on purpose")

			// A script that throws in onConnect, a call and a timer.
			// (th keeps the instance loaded: it unloads when its last
			// client leaves, or when its only one is rejected.)
			thrower := "thrower/" + tr.name
			th := tr.mustConnect(t, ctx, thrower)
			rejected("onConnect throwing", thrower, []any{"throw"}, "TypeError")
			_, err := th.Call(ctx, "boom")
			if se := saStatus(t, "boom", err); se.Code != "NetConnection.Call.Failed" || !strings.Contains(se.Description, "boom on purpose") {
				t.Errorf("boom: %v", err)
			}
			if r, err := th.Call(ctx, "ok"); err != nil || r.Arg(0) != "still ok" {
				t.Errorf("thrower after boom: %v %v", r, err)
			}
			var errs []any
			if !sessiontest.Poll(5*time.Second, func() bool {
				r, err := th.Call(ctx, "errors")
				if err != nil {
					return false
				}
				errs, _ = r.Arg(0).([]any)
				return saAnyContains(errs, "Application.Script.Error", "boom on purpose") &&
					saAnyContains(errs, "Application.Script.Error", "noSuchFunction") &&
					saAnyContains(errs, "Application.Script.Error", "TypeError")
			}) {
				t.Errorf("application.onStatus did not get the errors of the call, the timer and onConnect: %v", errs)
			}

			// A script that loops forever in onConnect, a call and a timer.
			spinner := "spinner/" + tr.name
			rejected("onConnect looping", spinner, []any{"spin"}, interrupted)
			sp := tr.mustConnect(t, ctx, spinner)
			mark := srv.log.len()
			spun := make(chan error, 1)
			go func() {
				_, err := sp.Call(ctx, "spin")
				spun <- err
			}()
			if !saLogWait(srv, mark, 5*time.Second, func(l logLine) bool {
				return strings.Contains(l.Raw, "spinning in "+spinner)
			}) {
				t.Fatalf("spin did not start")
			}
			// While it spins, other applications connect and answer.
			calc := tr.mustConnect(t, ctx, "calculator/"+tr.name, "secret")
			if r, err := calc.Call(ctx, "add", 1.0, 1.0); err != nil || r.Arg(0) != 2.0 {
				t.Errorf("calculator while spinner spins: %v %v", r, err)
			}
			hello := tr.mustConnect(t, ctx, "hello/"+tr.name)
			if r, err := hello.Call(ctx, "hello", tr.name); err != nil || r.Arg(0) != "Hello, "+tr.name+"!" {
				t.Errorf("hello while spinner spins: %v %v", r, err)
			}
			select {
			case err := <-spun:
				t.Errorf("the other applications answered only after the spin ended (%v)", err)
				spun <- err
			default:
			}
			select {
			case err := <-spun:
				if se := saStatus(t, "spin", err); se.Code != "NetConnection.Call.Failed" || !strings.Contains(se.Description, interrupted) {
					t.Errorf("spin: %v", err)
				}
			case <-ctx.Done():
				t.Fatalf("the looping call was not interrupted")
			}
			// The interrupted instance answers, and its interval runs.
			if r, err := sp.Call(ctx, "ok"); err != nil || r.Arg(0) != "ok" {
				t.Errorf("spinner after the spin: %v %v", r, err)
			}
			r1, err := sp.Call(ctx, "ticks")
			if err != nil {
				t.Fatal(err)
			}
			n1, _ := r1.Arg(0).(float64)
			if !sessiontest.Poll(5*time.Second, func() bool {
				r, err := sp.Call(ctx, "ticks")
				n, _ := r.Arg(0).(float64)
				return err == nil && n > n1
			}) {
				t.Errorf("the spinner's interval stopped at %v", n1)
			}
			// A looping timer is interrupted too.
			mark = srv.log.len()
			if r, err := sp.Call(ctx, "spinLater"); err != nil || r.Arg(0) != "scheduled" {
				t.Fatalf("spinLater: %v %v", r, err)
			}
			if !saLogWait(srv, mark, 5*time.Second, func(l logLine) bool {
				return l.str("instance") == tr.name && l.str("in") == "timer" && strings.Contains(l.Raw, interrupted)
			}) {
				t.Errorf("the looping timer was not interrupted (no script error logged)")
			}
			if r, err := sp.Call(ctx, "ok"); err != nil || r.Arg(0) != "ok" {
				t.Errorf("spinner after the looping timer: %v %v", r, err)
			}
			if r, err := calc.Call(ctx, "mul", 3.0, 4.0); err != nil || r.Arg(0) != 12.0 {
				t.Errorf("calculator at the end: %v %v", r, err)
			}
		})
	}
	srv.requireAlive(t)
}

// saAnyContains reports whether a string of list contains all of subs.
func saAnyContains(list []any, subs ...string) bool {
	for _, v := range list {
		s, _ := v.(string)
		all := true
		for _, sub := range subs {
			all = all && strings.Contains(s, sub)
		}
		if all {
			return true
		}
	}
	return false
}

// pythonScriptAppsLobby drives the lobby app with python3-librtmp:
// argv[1] is the app URL, argv[2] a nickname. It prints the reply to a
// connect without a nickname (read as librtmp reads packets: its connect
// does not wait for the reply), calls whoami and ask, answers the
// server's answer() call with an invoke handler, waits for heard(), and
// checks that a taken nickname is rejected.
const pythonScriptAppsLobby = `
import sys, time, librtmp
from librtmp.amf import decode_amf
from librtmp.packet import PACKET_TYPE_INVOKE

url, nick = sys.argv[1], sys.argv[2]

def connect_reply(u):
    c = librtmp.RTMP(u, live=True, timeout=10)
    c.connect()
    deadline = time.time() + 10
    while time.time() < deadline:
        p = c.read_packet()
        if p.type != PACKET_TYPE_INVOKE:
            c.handle_packet(p)  # chunk size, window size...
            continue
        v = decode_amf(p.body)
        if len(v) >= 4 and v[1] == 1.0:
            return c, v
    raise Exception("no reply to connect")

def show(label, v):
    info = v[3] or {}
    app = info.get("application") or {}
    print(label, v[0], info.get("code"), "|", info.get("description"), "|", app.get("reason"), app.get("nick"), flush=True)

bad, v = connect_reply(url)
show("nonick", v)
bad.close()

c = librtmp.RTMP(url + " conn=S:" + nick, live=True, timeout=10)
c.connect()

@c.invoke_handler
def answer(question, who):
    return "42 for " + who

me = c.call("whoami").result(timeout=10)
print("whoami", me.get("nick"), me.get("protocol"), flush=True)
print("ask", c.call("ask", "meaning?").result(timeout=10), flush=True)
print("heard", c.process_packets(invoked_method="heard", timeout=10), flush=True)
print("last", c.call("lastAnswer").result(timeout=10), flush=True)

taken, v = connect_reply(url + " conn=S:" + nick)
show("taken", v)
taken.close()
c.close()
`

// TestScriptAppsPythonLibrtmp: python3-librtmp over rtmp:// and rtmpt://
// is rejected by lobby's onConnect with the script's info object (no
// nickname, a taken one), calls a script method with a result, and
// answers the script's call (an invoke handler), whose Responder calls it
// back.
func TestScriptAppsPythonLibrtmp(t *testing.T) {
	e2e(t)
	py := pythonWithLibrtmp(t)
	srv := startServer(t)
	copyApp(t, srv.DataDir, "lobby")
	for _, tr := range saTransports(t, srv) {
		t.Run(tr.name, func(t *testing.T) {
			nick := "pat-" + tr.name
			out := run(t, 30*time.Second, py, "-c", pythonScriptAppsLobby, tr.base+"/lobby/py-"+tr.name, nick)
			t.Logf("%s:\n%s", tr.name, strings.TrimSpace(out))
			for _, want := range []string{
				"nonick _error NetConnection.Connect.Rejected | A nickname is required. | nonick None\n",
				"whoami " + nick + " " + tr.name + "\n",
				"ask asked\n",
				"heard ['" + nick + " answered 42 for " + nick + "']\n",
				"last 42 for " + nick + "\n",
				"taken _error NetConnection.Connect.Rejected | Nickname " + nick + " is taken. | taken " + nick + "\n",
			} {
				if !strings.Contains(out, want) {
					t.Errorf("output lacks %q", want)
				}
			}
		})
	}
	srv.requireAlive(t)
}
