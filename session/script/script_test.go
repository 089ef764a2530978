package script_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/rtmphub/rtmphub/flv"
	"github.com/rtmphub/rtmphub/rtmp"
	"github.com/rtmphub/rtmphub/rtmp/amf"
	"github.com/rtmphub/rtmphub/rtmp/client"
	"github.com/rtmphub/rtmphub/rtmp/message"
	"github.com/rtmphub/rtmphub/session"
	"github.com/rtmphub/rtmphub/session/script"
	"github.com/rtmphub/rtmphub/session/sessiontest"
	"github.com/rtmphub/rtmphub/tunnel"
)

func start(t *testing.T, apps map[string]map[string]string, maxRun time.Duration) (string, *sessiontest.LogBuffer) {
	t.Helper()
	base, _, logs := startServer(t, apps, maxRun)
	return base, logs
}

// startServer is start, also returning the server.
func startServer(t *testing.T, apps map[string]map[string]string, maxRun time.Duration) (string, *session.Server, *sessiontest.LogBuffer) {
	t.Helper()
	dir := writeApps(t, apps)
	return sessiontest.Start(t, func(log *slog.Logger) session.Config {
		return session.Config{
			DataDir:     dir,
			CallTimeout: 3 * time.Second,
			Application: script.Factory(script.Config{DataDir: dir, MaxRun: maxRun, Log: log}),
		}
	})
}

// writeApps writes the files of each app (name → content) into the app's
// folder of a new data folder, and returns the data folder.
func writeApps(t *testing.T, apps map[string]map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for app, files := range apps {
		if err := os.MkdirAll(filepath.Join(dir, app), 0o755); err != nil {
			t.Fatal(err)
		}
		for name, src := range files {
			if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, app, name)), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, app, name), []byte(src), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	return dir
}

// pipedServer is a core with the script runtime whose clients connect
// over net.Pipe: it opens no socket, so that a test can run it in a
// synctest bubble, where the scripts' timers, the pacing of server-side
// streams and the clients' read deadlines all keep virtual time, and
// synctest.Wait says when every goroutine of the server has settled.
type pipedServer struct {
	srv  *session.Server
	logs *sessiontest.LogBuffer
	ctx  context.Context
}

// startPiped starts a pipedServer with apps (as writeApps takes them). It
// must be called inside the bubble; the test's cleanup shuts the server
// down (a test may have done so already), so that all its goroutines end
// before the bubble does.
func startPiped(t *testing.T, apps map[string]map[string]string, maxRun time.Duration) *pipedServer {
	t.Helper()
	dir := writeApps(t, apps)
	logs := &sessiontest.LogBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv := session.NewServer(session.Config{
		DataDir:     dir,
		CallTimeout: 3 * time.Second,
		Application: script.Factory(script.Config{DataDir: dir, MaxRun: maxRun, Log: log}),
	}, log)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() {
		ctx, stop := context.WithTimeout(context.Background(), 5*time.Second)
		defer stop()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		cancel()
		if t.Failed() {
			t.Log(logs.String())
		}
	})
	return &pipedServer{srv: srv, logs: logs, ctx: ctx}
}

// options returns o with a Dial that connects to the server over a pipe,
// as a client from 127.0.0.1 on rtmp.
func (p *pipedServer) options(o client.Options) client.Options {
	o.Dial = func(context.Context, string) (net.Conn, error) {
		nc, sc := net.Pipe()
		go p.srv.ServeConn(p.ctx, sc, session.ConnInfo{Protocol: "rtmp", RemoteIP: "127.0.0.1"})
		return nc, nil
	}
	return o
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func dial(t *testing.T, url string, opt client.Options) (*client.Conn, error) {
	t.Helper()
	c, err := client.Dial(ctxT(t, 5*time.Second), url, opt)
	if err == nil {
		t.Cleanup(func() { c.Close() })
	}
	return c, err
}

func mustDial(t *testing.T, url string, opt client.Options) *client.Conn {
	t.Helper()
	c, err := dial(t, url, opt)
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	return c
}

func readFile(t *testing.T, p string) string {
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func calculator(t *testing.T) map[string]string {
	return map[string]string{
		"main.asc": readFile(t, "../../e2e/testdata/apps/calculator/main.asc"),
		"ops.asc":  readFile(t, "../../e2e/testdata/apps/calculator/ops.asc"),
	}
}

// Connects are accepted or rejected by onConnect's result, or later by
// the script's timers; onDisconnect and onAppStop run when the last client
// leaves. The test runs in a synctest bubble: the timers keep virtual
// time, and synctest.Wait tells when the server has done all that the
// last client's leaving makes it do.
func TestConnectAcceptRejectPending(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := startPiped(t, map[string]map[string]string{
			"calculator": calculator(t),
			"pending": {"main.asc": `
application.onConnect = function (client, who) {
	if (who === "later-no") {
		setTimeout(function () { application.rejectConnection(client, { reason: "too late", n: 7 }); }, 50);
		return null;
	}
	setTimeout(function () { application.acceptConnection(client); }, 50);
	return null;
};
application.onDisconnect = function (client) { trace("bye " + client.id); };
application.onAppStop = function () { trace("pending app stopping"); };
Client.prototype.who = function () {
	return [this.id, this.ip, this.agent, this.protocol, application.clients.length];
};
`},
		}, time.Second)
		base := "rtmp://127.0.0.1"

		// accepted with the password; rejected without, with the info object.
		mustDial(t, base+"/calculator", p.options(client.Options{ConnectArgs: []any{"secret"}}))
		_, err := dial(t, base+"/calculator", p.options(client.Options{ConnectArgs: []any{"wrong"}}))
		var se *client.StatusError
		if !errors.As(err, &se) || se.Code != "NetConnection.Connect.Rejected" {
			t.Fatalf("wrong password: %v", err)
		}

		// pending, then accepted by a timer
		c := mustDial(t, base+"/pending", p.options(client.Options{FlashVer: "WIN 32,0,0,1", ConnectArgs: []any{"me"}}))
		r, err := c.Call(ctxT(t, 5*time.Second), "who")
		if err != nil {
			t.Fatal(err)
		}
		got, _ := r.Arg(0).([]any)
		if len(got) != 5 || got[1] != "127.0.0.1" || got[2] != "WIN 32,0,0,1" || got[3] != "rtmp" || got[4] != 1.0 {
			t.Errorf("who = %#v", got)
		}
		// pending, then rejected by a timer with a custom info object
		_, err = dial(t, base+"/pending", p.options(client.Options{ConnectArgs: []any{"later-no"}}))
		if !errors.As(err, &se) || se.Code != "NetConnection.Connect.Rejected" {
			t.Fatalf("later-no: %v", err)
		}
		c.Close()
		synctest.Wait()
		if !strings.Contains(p.logs.String(), `msg="bye `) {
			t.Errorf("onDisconnect did not trace")
		}
		if !strings.Contains(p.logs.String(), "pending app stopping") {
			t.Errorf("onAppStop did not run when the instance unloaded")
		}
	})
}

func TestCallsBothWays(t *testing.T) {
	base, _ := start(t, map[string]map[string]string{
		"calculator": calculator(t),
		"ask": {"main.asc": `
Client.prototype.ask = function (q) {
	var self = this;
	this.call("question", new Responder(function (answer) {
		self.call("heard", null, "answer was " + answer);
	}, function (info) {
		self.call("heard", null, "failed: " + info.code);
	}), q, 1);
	return "asked";
};
Client.prototype.echo = function () { return Array.prototype.slice.call(arguments); };
`},
	}, time.Second)
	for _, enc := range []float64{0, 3} {
		c := mustDial(t, base+"/calculator", client.Options{ObjectEncoding: enc, ConnectArgs: []any{"secret"}})
		ctx := ctxT(t, 5*time.Second)
		for _, tc := range []struct {
			m    string
			args []any
			want float64
		}{{"add", []any{2.0, 3.0}, 5}, {"mul", []any{4.0, 2.5}, 10}, {"sum", []any{1.0, 2.0, 3.0, 4.0}, 10}} {
			r, err := c.Call(ctx, tc.m, tc.args...)
			if err != nil || r.Arg(0) != tc.want {
				t.Errorf("enc %v %s: %v %v", enc, tc.m, r, err)
			}
		}
		_, err := c.Call(ctx, "div", 1.0, 0.0)
		var se *client.StatusError
		if !errors.As(err, &se) || se.Code != "NetConnection.Call.Failed" {
			t.Errorf("div by zero: %v", err)
		}
		_, err = c.Call(ctx, "nosuch")
		if !errors.As(err, &se) || !strings.Contains(se.Description, "Method not found (nosuch)") {
			t.Errorf("nosuch: %v", err)
		}
		_, err = c.Call(ctx, "call", "x")
		if !errors.As(err, &se) {
			t.Errorf("a client may not call Client.call: %v", err)
		}

		a := mustDial(t, base+"/ask", client.Options{ObjectEncoding: enc})
		r, err := a.Call(ctx, "ask", "life?")
		if err != nil || r.Arg(0) != "asked" {
			t.Fatalf("ask: %v %v", r, err)
		}
		q, err := a.ReadCall(ctx, "question")
		if err != nil || q.Arg(0) != "life?" || q.Arg(1) != 1.0 {
			t.Fatalf("question: %v %v", q, err)
		}
		if err := a.Reply(q.TransactionID, 42.0); err != nil {
			t.Fatal(err)
		}
		h, err := a.ReadCall(ctx, "heard")
		if err != nil || h.Arg(0) != "answer was 42" {
			t.Fatalf("heard: %v %v", h, err)
		}

		// AMF round trip through the script
		when := time.UnixMilli(1700000000123).UTC()
		args := []any{nil, amf.Undefined{}, "s", 1.5, true, when,
			amf.Object{{Key: "b", Value: 1.0}, {Key: "a", Value: []any{"x", 2.0}}},
			amf.TypedObject{Class: "com.example.Point", Props: amf.Object{{Key: "x", Value: 1.0}}}}
		if enc == 3 {
			args = append(args, amf.ByteArray{1, 2, 3})
		}
		r, err = a.Call(ctx, "echo", args...)
		if err != nil {
			t.Fatal(err)
		}
		back, _ := r.Arg(0).([]any)
		if len(back) != len(args) {
			t.Fatalf("enc %v echo: %#v", enc, r.Args)
		}
		if back[0] != nil || back[2] != "s" || back[3] != 1.5 || back[4] != true {
			t.Errorf("enc %v scalars: %#v", enc, back[:5])
		}
		if _, ok := back[1].(amf.Undefined); !ok {
			t.Errorf("enc %v undefined: %#v", enc, back[1])
		}
		if d, ok := back[5].(time.Time); !ok || !d.Equal(when) {
			t.Errorf("enc %v date: %#v", enc, back[5])
		}
		if o, ok := back[6].(amf.Object); !ok || len(o) != 2 || o[0].Key != "b" {
			t.Errorf("enc %v object: %#v", enc, back[6])
		}
		if o, ok := back[7].(amf.TypedObject); !ok || o.Class != "com.example.Point" {
			t.Errorf("enc %v typed: %#v", enc, back[7])
		}
		if enc == 3 {
			if b, ok := back[8].(amf.ByteArray); !ok || !bytes.Equal(b, []byte{1, 2, 3}) {
				t.Errorf("bytearray: %#v", back[8])
			}
		}
	}
}

func TestSharedObjectsBothWays(t *testing.T) {
	chat := readFile(t, "../../e2e/testdata/apps/chat/main.asc")
	base, logs := start(t, map[string]map[string]string{"chat": {"main.asc": chat}}, time.Second)
	ctx := ctxT(t, 10*time.Second)
	c := mustDial(t, base+"/chat", client.Options{ConnectArgs: []any{"ann"}})
	if err := c.UseSO("room", false, 0); err != nil {
		t.Fatal(err)
	}
	// the script's topic is in the initial state
	waitSlot(t, ctx, c, "topic", func(v any) bool { return v == "welcome" })

	// a script change reaches the client
	if _, err := c.Call(ctx, "say", "hello"); err != nil {
		t.Fatal(err)
	}
	waitSlot(t, ctx, c, "last", func(v any) bool {
		o, _ := v.(amf.Object)
		s, _ := o.GetString("text")
		return s == "hello"
	})
	// the client's change reaches onSync, which sends a message
	if err := c.SetSO("room", false, 0, message.SOEvent{Key: "topic", Value: "go"}); err != nil {
		t.Fatal(err)
	}
	for {
		so, err := c.ReadSO(ctx, "room")
		if err != nil {
			t.Fatalf("waiting for the onSync message: %v\n%s", err, logs)
		}
		found := false
		for _, ev := range so.Events {
			if ev.Type == message.SOSendMessage && ev.Handler == "msg" && len(ev.Args) == 2 && ev.Args[1] == "topic is now go" {
				found = true
			}
		}
		if found {
			break
		}
	}
	// a client's send reaches the object's handler
	if err := c.SendSO("room", false, "shout", "hey"); err != nil {
		t.Fatal(err)
	}
	waitSlot(t, ctx, c, "lastShout", func(v any) bool { return v == "HEY" })
}

func waitSlot(t *testing.T, ctx context.Context, c *client.Conn, key string, ok func(any) bool) {
	t.Helper()
	for {
		so, err := c.ReadSO(ctx, "room")
		if err != nil {
			t.Fatalf("waiting for slot %s: %v", key, err)
		}
		for _, ev := range so.Events {
			if ev.Type == message.SOChange && ev.Key == key && ok(ev.Value) {
				return
			}
		}
	}
}

func TestBrokenScriptsLeaveServerHealthy(t *testing.T) {
	base, logs := start(t, map[string]map[string]string{
		"calculator": calculator(t),
		"syntax":     {"main.asc": "var x = 1;\nfunction (\n"},
		"throws":     {"main.asc": "application.onConnect = function () { null.boom(); };"},
		"badload":    {"main.asc": "load('../calculator/main.asc');"},
		"spin": {"main.asc": `
Client.prototype.spin = function () { trace("spinning"); for (;;) {} };
Client.prototype.ok = function () { return "ok"; };
setInterval(function () { application.ticks = (application.ticks || 0) + 1; }, 10);
Client.prototype.ticks = function () { return application.ticks; };
`},
		"spinconnect": {"main.asc": "application.onConnect = function () { while (true) {} };"},
	}, 300*time.Millisecond)
	var se *client.StatusError
	_, err := dial(t, base+"/syntax", client.Options{})
	if !errors.As(err, &se) || se.Code != "NetConnection.Connect.Rejected" || !strings.Contains(se.Description, "main.asc: Line 2") {
		t.Errorf("syntax error connect: %v", err)
	}
	_, err = dial(t, base+"/throws", client.Options{})
	if !errors.As(err, &se) || se.Code != "NetConnection.Connect.Rejected" || !strings.Contains(se.Description, "TypeError") {
		t.Errorf("throwing onConnect: %v", err)
	}
	_, err = dial(t, base+"/badload", client.Options{})
	if !errors.As(err, &se) || !strings.Contains(se.Description, `load("../calculator/main.asc")`) {
		t.Errorf("load outside the app folder: %v", err)
	}
	_, err = dial(t, base+"/spinconnect", client.Options{})
	if !errors.As(err, &se) || !strings.Contains(se.Description, "longer than") {
		t.Errorf("looping onConnect: %v", err)
	}

	s := mustDial(t, base+"/spin", client.Options{})
	ctx := ctxT(t, 10*time.Second)
	// another instance stays responsive while this one spins
	calc := mustDial(t, base+"/calculator", client.Options{ConnectArgs: []any{"secret"}})
	spun := make(chan error, 1)
	go func() {
		_, err := s.Call(ctx, "spin")
		spun <- err
	}()
	waitLog(t, logs, `msg=spinning`, 5*time.Second) // the spin runs: the instance's loop is held
	t0 := time.Now()
	if r, err := calc.Call(ctx, "add", 1.0, 1.0); err != nil || r.Arg(0) != 2.0 {
		t.Errorf("calculator during a spin: %v %v", r, err)
	}
	select {
	case <-spun:
		t.Errorf("calculator answered only after the other instance's spin ended (%v)", time.Since(t0))
		spun <- &client.StatusError{Description: "longer than (already checked)"}
	default:
	}
	if err := <-spun; !errors.As(err, &se) || !strings.Contains(se.Description, "longer than") {
		t.Errorf("spin: %v", err)
	}
	// the interrupted instance still works, timers included
	if r, err := s.Call(ctx, "ok"); err != nil || r.Arg(0) != "ok" {
		t.Errorf("after the spin: %v %v", r, err)
	}
	r1, err := s.Call(ctx, "ticks")
	if err != nil {
		t.Fatalf("ticks: %v", err)
	}
	n1, _ := r1.Arg(0).(float64)
	waitFor(t, 5*time.Second, fmt.Sprintf("the interval to tick again after the spin (it had ticked %v times)", n1), func() bool {
		r2, err := s.Call(ctx, "ticks")
		if err != nil {
			t.Fatalf("ticks: %v", err)
		}
		n2, _ := r2.Arg(0).(float64)
		return n2 > n1
	})
	if !strings.Contains(logs.String(), "main.asc: Line 2") {
		t.Errorf("syntax error not logged with its line:\n%s", logs)
	}
}

// BenchmarkScriptCall measures client → script → result round trips.
func BenchmarkScriptCall(b *testing.B) {
	dir := b.TempDir()
	os.MkdirAll(filepath.Join(dir, "bench"), 0o755)
	os.WriteFile(filepath.Join(dir, "bench", "main.asc"), []byte(`Client.prototype.add = function (a, b) { return a + b; };`), 0o644)
	log := slog.New(slog.NewTextHandler(&bytes.Buffer{}, &slog.HandlerOptions{Level: slog.LevelError}))
	srv := session.NewServer(session.Config{DataDir: dir, Application: script.Factory(script.Config{DataDir: dir, Log: log})}, log)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go tunnel.Serve(ctx, ln, "rtmp", log, func(ctx context.Context, nc net.Conn, proto string) {
		srv.ServeConn(ctx, nc, session.ConnInfo{Protocol: proto})
	})
	c, err := client.Dial(ctx, "rtmp://"+ln.Addr().String()+"/bench", client.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r, err := c.Call(ctx, "add", 1.0, float64(i))
		if err != nil || r.Arg(0) != float64(i+1) {
			b.Fatalf("%v %v", r, err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "calls/s")
}

// rawConnect sends connect with args and returns the server's reply to it.
func rawConnect(t *testing.T, base, app string, args ...any) *message.Command {
	t.Helper()
	nc, err := net.Dial("tcp", strings.TrimPrefix(base, "rtmp://"))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(5 * time.Second))
	rc, err := rtmp.Dial(nc, false, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	cmd := &message.Command{Name: "connect", TransactionID: 1, Object: amf.Object{
		{Key: "app", Value: app}, {Key: "tcUrl", Value: base + "/" + app}, {Key: "objectEncoding", Value: 0.0}}, Args: args}
	typ, p, err := message.EncodeCommand(cmd, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := rc.WriteMessages([]message.Message{{Type: typ, ChunkStreamID: 3, Payload: p}}); err != nil {
		t.Fatal(err)
	}
	for {
		m, err := rc.ReadMessage()
		if err != nil {
			t.Fatalf("reading the connect reply: %v", err)
		}
		if m.Type != message.TypeCommandAMF0 {
			continue
		}
		r, err := message.DecodeCommand(m)
		if err == nil && r.TransactionID == 1 {
			return r
		}
	}
}

func TestRejectCarriesInfoObject(t *testing.T) {
	base, _ := start(t, map[string]map[string]string{"calculator": calculator(t), "pending": {"main.asc": `
application.onConnect = function (client) {
	setTimeout(function () {
		application.rejectConnection(client, { description: "Come back later.", retryIn: 30 });
	}, 20);
	return null;
};`}}, time.Second)
	r := rawConnect(t, base, "calculator", "wrong")
	info, _ := r.Arg(0).(amf.Object)
	app, _ := info.Get("application")
	ao, _ := app.(amf.Object)
	if r.Name != "_error" || len(ao) == 0 {
		t.Fatalf("reply %s %#v", r.Name, r.Args)
	}
	if msg, _ := ao.GetString("message"); msg != "wrong password" {
		t.Errorf("application info %#v", ao)
	}
	if code, _ := info.GetString("code"); code != "NetConnection.Connect.Rejected" {
		t.Errorf("code %q", code)
	}
	r = rawConnect(t, base, "pending")
	info, _ = r.Arg(0).(amf.Object)
	if d, _ := info.GetString("description"); r.Name != "_error" || d != "Come back later." {
		t.Errorf("pending rejection: %s %#v", r.Name, r.Args)
	}
	app, _ = info.Get("application")
	if n, _ := app.(amf.Object).GetNumber("retryIn"); n != 30 {
		t.Errorf("pending rejection info: %#v", app)
	}
}

func TestNetConnectionToAnotherApp(t *testing.T) {
	base, logs := start(t, map[string]map[string]string{"calculator": calculator(t), "relay": {"main.asc": `
application.onConnect = function (client, url) {
	var nc = new NetConnection();
	client.nc = nc;
	nc.onStatus = function (info) {
		trace("relay nc " + info.code);
		if (info.code === "NetConnection.Connect.Success") {
			application.acceptConnection(client);
		} else if (!this.isConnected) {
			application.rejectConnection(client, { upstream: info.code });
		}
	};
	nc.connect(url, "secret");
	return null;
};
application.onDisconnect = function (client) { client.nc.close(); };
Client.prototype.relayAdd = function (a, b) {
	var client = this;
	this.nc.call("add", new Responder(function (r) {
		client.call("relayed", null, r);
	}), a, b);
	return "sent";
};
`}}, time.Second)
	ctx := ctxT(t, 10*time.Second)
	c := mustDial(t, base+"/relay", client.Options{ConnectArgs: []any{base + "/calculator"}})
	if r, err := c.Call(ctx, "relayAdd", 20.0, 22.0); err != nil || r.Arg(0) != "sent" {
		t.Fatalf("relayAdd: %v %v", r, err)
	}
	got, err := c.ReadCall(ctx, "relayed")
	if err != nil || got.Arg(0) != 42.0 {
		t.Fatalf("relayed: %v %v\n%s", got, err, logs)
	}
	// an unreachable upstream makes the relay reject, with its status
	r := rawConnect(t, base, "relay", "rtmp://127.0.0.1:1/calculator")
	info, _ := r.Arg(0).(amf.Object)
	app, _ := info.Get("application")
	ao, _ := app.(amf.Object)
	if up, _ := ao.GetString("upstream"); r.Name != "_error" || up != "NetConnection.Connect.Failed" {
		t.Errorf("unreachable upstream: %s %#v", r.Name, r.Args)
	}
}

func TestFileStaysInAppFolder(t *testing.T) {
	base, logs := start(t, map[string]map[string]string{"files": {"main.asc": `
Client.prototype.roundTrip = function () {
	var f = new File("logs/../notes.txt");
	f.open("text", "write");
	f.writeln("one", "two");
	f.close();
	var g = new File("/notes.txt");
	g.open("text", "read");
	var lines = g.readAll();
	g.close();
	var d = new File("/");
	d.mkdir("sub");
	return [f.name, lines.join(","), g.length, d.list().join(","), new File("../../etc/passwd").name];
};
`}}, time.Second)
	c := mustDial(t, base+"/files", client.Options{})
	r, err := c.Call(ctxT(t, 5*time.Second), "roundTrip")
	if err != nil {
		t.Fatalf("%v\n%s", err, logs)
	}
	got, _ := r.Arg(0).([]any)
	want := []any{"/notes.txt", "one,two", 8.0, "/main.asc,/notes.txt,/sub", "/etc/passwd"}
	if len(got) != len(want) {
		t.Fatalf("got %#v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("item %d: got %#v, want %#v", i, got[i], want[i])
		}
	}
}

// clipFLV is seconds of 25 fps video (a keyframe a second) with metadata.
func clipFLV(t *testing.T, seconds int) string {
	b := flv.AppendHeader(nil, flv.Header{Version: 1, HasVideo: true})
	meta, err := amf.Marshal0("onMetaData", amf.ECMAArray{{Key: "duration", Value: float64(seconds)}})
	if err != nil {
		t.Fatal(err)
	}
	b, _ = flv.AppendTag(b, &flv.Tag{Type: message.TypeDataAMF0, Data: meta})
	for i := 0; i < seconds*25; i++ {
		frame := []byte{0x22, byte(i >> 8), byte(i), 0} // the frame number tells the position
		if i%25 == 0 {
			frame[0] = 0x12
		}
		b, err = flv.AppendTag(b, &flv.Tag{Type: message.TypeVideo, Timestamp: uint32(i * 40), Data: frame})
		if err != nil {
			t.Fatal(err)
		}
	}
	return string(b)
}

// playLive plays live stream name on c.
func playLive(t *testing.T, c *client.Conn, name string) {
	t.Helper()
	ctx := ctxT(t, 10*time.Second)
	msid, err := c.CreateStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Play(ctx, msid, name, -1); err != nil {
		t.Fatal(err)
	}
}

// lastVideoTs reads what c plays and reports the newest video frame number
// (as clipFLV writes it: players' timestamps start at their own join) and
// the number of video frames seen until the deadline. It calls seen with
// each frame number.
func lastVideoTs(c *client.Conn, until time.Time, seen func(frame uint32)) (uint32, int) {
	var last uint32
	n := 0
	for {
		c.Conn.SetReadDeadline(until)
		m, err := c.ReadMessage()
		if err != nil {
			return last, n
		}
		if m.Type == message.TypeVideo && len(m.Payload) >= 3 {
			n++
			last = uint32(m.Payload[1])<<8 | uint32(m.Payload[2])
			seen(last)
		}
	}
}

// Players that join a server-side playlist at different times see the
// same point of it. The test runs in a synctest bubble: the playlist is
// paced in virtual time, so the machine's load cannot move the players
// apart.
func TestServerSidePlaylistSamePositionForEveryone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := startPiped(t, map[string]map[string]string{"tv": {
			"streams/_definst_/intro.flv": clipFLV(t, 2),
			"streams/_definst_/show.flv":  clipFLV(t, 2),
			"main.asc":                    readFile(t, "../../e2e/testdata/apps/playlist/main.asc"),
		}}, time.Second)
		logs := srv.logs
		a := mustDial(t, "rtmp://127.0.0.1/tv", srv.options(client.Options{}))
		playLive(t, a, "tv")
		start := time.Now()
		end := start.Add(2500 * time.Millisecond)
		type res struct {
			ts uint32
			n  int
		}
		ra := make(chan res, 1)
		oneSecondIn := make(chan struct{})
		go func() {
			ts, n := lastVideoTs(a, end, func(frame uint32) {
				if frame == 25 { // the intro's second keyframe: 1 s into the playlist
					close(oneSecondIn)
				}
			})
			ra <- res{ts, n}
		}()
		var gotA res
		select {
		case <-oneSecondIn:
		case gotA = <-ra:
			t.Fatalf("player A never reached the playlist's second second: %d frames, last frame #%d", gotA.n, gotA.ts)
		}
		joined := time.Since(start)
		b := mustDial(t, "rtmp://127.0.0.1/tv", srv.options(client.Options{}))
		playLive(t, b, "tv")
		tsB, nB := lastVideoTs(b, end, func(uint32) {})
		gotA = <-ra
		t.Logf("player A: %d frames, last frame #%d; player B (joined %v later): %d frames, last frame #%d", gotA.n, gotA.ts, joined, nB, tsB)
		if gotA.n < 25 || nB < 10 {
			t.Fatalf("too few frames: A %d, B %d", gotA.n, nB)
		}
		if d := int64(gotA.ts) - int64(tsB); d < -2 || d > 2 {
			t.Errorf("players are at different points: A frame %d, B frame %d", gotA.ts, tsB)
		}
		if gotA.n < 50 {
			t.Errorf("timeline did not advance past the first item: %d frames", gotA.n)
		}
		waitLog(t, logs, "tv: NetStream.Play.Stop", 3*time.Second)
		if !strings.Contains(logs.String(), "tv: NetStream.Play.Start") {
			t.Errorf("Stream.onStatus event NetStream.Play.Start missing")
		}
	})
}

// An instance that holds a shared object outlives its last client; its
// onAppStop runs when the server shuts down. The test runs in a synctest
// bubble, so that synctest.Wait tells when the server has done all that
// the client's leaving makes it do.
func TestOnAppStopAtShutdown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := startPiped(t, map[string]map[string]string{"held": {"main.asc": `
application.onAppStart = function () { this.so = SharedObject.get("keep", false); };
application.onAppStop = function () { trace("app stopping"); };
`}}, 0)
		c := mustDial(t, "rtmp://127.0.0.1/held", p.options(client.Options{}))
		c.Close()
		synctest.Wait()
		if strings.Contains(p.logs.String(), "app stopping") {
			t.Fatal("instance holding a shared object stopped with its last client")
		}
		if apps := p.srv.Apps(); len(apps) != 1 || len(apps[0].Instances) != 1 || apps[0].Instances[0].Clients != 0 {
			t.Fatalf("want the instance loaded without clients, have %+v", apps)
		}
		if err := p.srv.Shutdown(ctxT(t, 5*time.Second)); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if !strings.Contains(p.logs.String(), "app stopping") {
			t.Errorf("onAppStop did not run at shutdown")
		}
	})
}

// application.onPublish and onUnpublish run with the client and a stream
// object naming the stream, as in FMS.
func TestOnPublishOnUnpublish(t *testing.T) {
	base, logs := start(t, map[string]map[string]string{"live": {"main.asc": `
application.onConnect = function (client) { return true; };
application.onPublish = function (client, stream) { trace("published " + stream.name + " by " + client.id); };
application.onUnpublish = function (client, stream) { trace("unpublished " + stream.name); };
`}}, time.Second)
	c := mustDial(t, base+"/live", client.Options{FlashVer: "FMLE/3.0 (compatible; rtmphub-test)"})
	ctx := ctxT(t, 5*time.Second)
	id, err := c.CreateStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Publish(ctx, id, "cam1", "live"); err != nil {
		t.Fatal(err)
	}
	if err := c.WriteCommand(0, &message.Command{Name: "deleteStream", Args: []any{float64(id)}}); err != nil {
		t.Fatal(err)
	}
	var l string
	waitFor(t, 5*time.Second, "onPublish's and onUnpublish's traces", func() bool {
		l = logs.String()
		return strings.Contains(l, "published cam1 by ") && strings.Contains(l, "unpublished cam1")
	})
	if strings.Index(l, "published cam1 by") > strings.Index(l, "unpublished cam1") {
		t.Fatal("onUnpublish ran before onPublish")
	}
}

// client.ping sends a real ping request; the client's answer gives
// getStats().ping_rtt (-1 before it).
func TestClientPingAndGetStats(t *testing.T) {
	base, logs := start(t, map[string]map[string]string{"pinger": {"main.asc": `
application.onConnect = function (client) {
	trace("before " + client.getStats().ping_rtt);
	client.ping();
	setTimeout(function () {
		var s = client.getStats();
		trace("rtt " + s.ping_rtt + " in " + s.bytes_in + " out " + s.bytes_out);
	}, 500);
	return true;
};
`}}, time.Second)
	c := mustDial(t, base+"/pinger", client.Options{})
	deadline := time.Now().Add(5 * time.Second)
	answered := false
	for time.Now().Before(deadline) && !strings.Contains(logs.String(), "rtt ") {
		c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		m, err := c.ReadMessage()
		if err != nil {
			continue
		}
		if m.Type == message.TypeUserControl {
			if uc, err := message.DecodeUserControl(m.Payload); err == nil && uc.Event == message.UCPingRequest {
				if err := c.WriteMessages([]message.Message{*message.UserControl{Event: message.UCPingResponse, StreamID: uc.StreamID}.Message()}); err != nil {
					t.Fatal(err)
				}
				answered = true
			}
		}
	}
	l := logs.String()
	if !answered {
		t.Fatalf("no ping request reached the client:\n%s", l)
	}
	if !strings.Contains(l, "before -1") {
		t.Fatalf("ping_rtt before any answer is not -1:\n%s", l)
	}
	i := strings.Index(l, "rtt ")
	if i < 0 || strings.HasPrefix(l[i:], "rtt -1") {
		t.Fatalf("ping_rtt not measured:\n%s", l)
	}
}
