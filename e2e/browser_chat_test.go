package e2e

// HTML5 clients of an FMS application: the chat example's front end
// (testdata/apps/chat/public/, served by the hub at /chat/) and pages
// using the JavaScript library (/sdk/rtmphub.js) over RTMP in a
// WebSocket, in the same application instance as python3-librtmp, whose
// SharedObject messages testdata/librtmp_chat.py builds from their bytes
// (python3-librtmp has no SharedObject API).

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/rtmphub/rtmphub/session/sessiontest"
)

// Bounds of the chat tests.
const (
	chatStep    = 10 * time.Second // one message, change or call reaching the others
	chatConnect = 15 * time.Second // a page's connect → connected
	// netStreamWatch is the window the NetStream test counts frames in.
	netStreamWatch = 8 * time.Second
)

// ---------------------------------------------------------------------------
// python3-librtmp in the chat room

// pyChat is testdata/librtmp_chat.py, connected to a chat instance.
type pyChat struct {
	t    *testing.T
	p    *proc
	in   io.WriteCloser
	mu   sync.Mutex
	evs  []map[string]any
	nick string
}

func startPyChat(t *testing.T, py, rtmpURL, nick string) *pyChat {
	t.Helper()
	c := &pyChat{t: t, nick: nick}
	c.p = command(t, 2*time.Minute, py, filepath.Join("testdata", "librtmp_chat.py"), rtmpURL, nick)
	in, err := c.p.cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	c.in = in
	c.p.cmd.Stdout = tee(c.p.Stdout, &lineWriter{fn: func(l string) {
		var ev map[string]any
		if json.Unmarshal([]byte(l), &ev) != nil {
			return
		}
		c.mu.Lock()
		c.evs = append(c.evs, ev)
		c.mu.Unlock()
	}})
	c.p.startCmd()
	t.Cleanup(func() {
		c.in.Close()
		if !c.p.wait(5 * time.Second) {
			c.p.stop(time.Second)
		}
	})
	return c
}

// do sends one command.
func (c *pyChat) do(cmd map[string]any) {
	c.t.Helper()
	b, _ := json.Marshal(cmd)
	if _, err := c.in.Write(append(b, '\n')); err != nil {
		c.t.Fatalf("librtmp client %s: %v\nstderr:\n%s", c.nick, err, c.p.Stderr.String())
	}
}

// wait returns the first event that match accepts, waiting up to
// timeout for it.
func (c *pyChat) wait(what string, timeout time.Duration, match func(ev map[string]any) bool) map[string]any {
	c.t.Helper()
	return c.waitFrom(0, what, timeout, match)
}

// waitFrom is wait among the events from the mark'th on.
func (c *pyChat) waitFrom(mark int, what string, timeout time.Duration, match func(ev map[string]any) bool) map[string]any {
	c.t.Helper()
	var found map[string]any
	sessiontest.Poll(timeout, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, ev := range c.evs[min(mark, len(c.evs)):] {
			if match(ev) {
				found = ev
				return true
			}
		}
		return c.p.exited()
	})
	if found == nil {
		c.t.Fatalf("librtmp client %s: no %s within %v (exited %v)\nevents:\n%s\nstderr:\n%s", c.nick, what, timeout,
			c.p.exited(), c.p.Stdout.String(), tailString(c.p.Stderr.String(), 2000))
	}
	return found
}

// call calls a method of main.asc and returns its result.
func (c *pyChat) call(method string, args ...any) any {
	c.t.Helper()
	if args == nil {
		args = []any{}
	}
	mark := c.count()
	c.do(map[string]any{"op": "call", "method": method, "args": args})
	called := c.waitFrom(mark, "called "+method, chatStep, func(ev map[string]any) bool {
		return ev["ev"] == "called" && ev["method"] == method
	})
	res := c.waitFrom(mark, "result of "+method, chatStep, func(ev map[string]any) bool {
		return ev["ev"] == "result" && ev["id"] == called["id"]
	})
	if res["ok"] != true {
		c.t.Fatalf("librtmp client %s: %s failed: %v", c.nick, method, res["value"])
	}
	return res["value"]
}

func (c *pyChat) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.evs)
}

// msg matches a SharedObject msg(from, text) send.
func pyMsg(from, text string) func(map[string]any) bool {
	return func(ev map[string]any) bool {
		args, _ := ev["args"].([]any)
		return ev["ev"] == "so" && ev["type"] == "send" && ev["handler"] == "msg" && len(args) == 2 &&
			args[0] == from && args[1] == text
	}
}

// slot is the client's view of a slot: the last change the server sent,
// or its own latest request once the server confirmed it (success). A
// request the server refuses (another client wrote the slot first in the
// same sync interval) gets no success, only the Change of the winner.
func (c *pyChat) slot(key string) (any, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var v, requested any
	have := false
	for _, ev := range c.evs {
		switch {
		case ev["ev"] == "requested" && ev["key"] == key:
			requested = ev["value"]
		case ev["ev"] == "so" && ev["type"] == "change" && ev["key"] == key:
			v, have = ev["value"], true
		case ev["ev"] == "so" && ev["type"] == "success" && ev["key"] == key:
			v, have = requested, true
		}
	}
	return v, have
}

// set asks to change a slot; the request is remembered for slot.
func (c *pyChat) set(key string, value any) {
	c.t.Helper()
	c.mu.Lock()
	c.evs = append(c.evs, map[string]any{"ev": "requested", "key": key, "value": value})
	c.mu.Unlock()
	c.do(map[string]any{"op": "set", "key": key, "value": value})
}

// ---------------------------------------------------------------------------
// Pages

// typeText replaces the value of the input matching sel by text, typed
// with the keyboard.
func (p *page) typeText(t *testing.T, sel, text string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, clickTimeout)
	defer cancel()
	js, _ := json.Marshal(sel)
	err := p.evalErr(`document.querySelector(`+string(js)+`).value = ""`, nil, evalTimeout)
	if err == nil {
		err = chromedp.Do(ctx, chromedp.SendKeys(chromedp.CSS(sel), text))
	}
	if err != nil {
		p.shotOnFailure(t, "type-failed")
		t.Fatalf("type into %s: %v", sel, err)
	}
}

// evalUntil evaluates js (a promise is awaited) every 100 ms until ok
// accepts its value, and fails t when timeout passes first.
func (p *page) evalUntil(t *testing.T, what, js string, timeout time.Duration, ok func(raw json.RawMessage) bool) json.RawMessage {
	t.Helper()
	var last json.RawMessage
	var lastErr error
	if sessiontest.Poll(timeout, func() bool {
		var raw json.RawMessage
		lastErr = p.evalErr(js, &raw, evalTimeout)
		if lastErr == nil {
			last = raw
		}
		return lastErr == nil && ok(raw)
	}) {
		return last
	}
	p.shotOnFailure(t, "evalUntil-timeout")
	t.Fatalf("%s: still %s (err %v) after %v\nconsole:\n%s", what, last, lastErr, timeout, p.dump())
	return nil
}

// chatMessagesJS lists the chat page's messages as "from: text".
const chatMessagesJS = `[...document.querySelectorAll('#messages li')].map(li =>
	li.querySelector('.from').textContent + ' ' + li.querySelector('.text').textContent)`

// waitMessage waits until the chat page shows from's message text.
func (p *page) waitMessage(t *testing.T, from, text string) {
	t.Helper()
	want, _ := json.Marshal(from + ": " + text)
	p.waitFor(t, chatMessagesJS+`.includes(`+string(want)+`)`, chatStep)
}

// waitTopic waits until the chat page shows topic.
func (p *page) waitTopic(t *testing.T, topic string) {
	t.Helper()
	want, _ := json.Marshal(topic)
	p.waitFor(t, `document.getElementById('topic').textContent === `+string(want), chatStep)
}

// openChat opens the chat page, and joins room as nick with the form:
// typed (typed true) or prefilled from the query.
func openChat(t *testing.T, b *browser, base, room, nick string, enc int, typed bool) *page {
	t.Helper()
	q := url.Values{"enc": {fmt.Sprint(enc)}}
	if !typed {
		q.Set("nick", nick)
		q.Set("room", room)
	}
	p := b.open(t, base+"/chat/?"+q.Encode())
	p.waitFor(t, `window.chat && window.chat.ready === true`, chatConnect)
	if typed {
		p.typeText(t, "#nick", nick)
		p.typeText(t, "#room", room)
	}
	p.click(t, "#connect")
	p.waitFor(t, `chat.state !== 'connecting' && chat.state !== 'idle'`, chatConnect)
	var st struct{ State, Error string }
	p.eval(t, `({State: chat.state, Error: chat.error})`, &st)
	if st.State != "connected" {
		p.shotOnFailure(t, "not-connected")
		t.Fatalf("chat page %s: %s %q\nconsole:\n%s", nick, st.State, st.Error, p.dump())
	}
	return p
}

// ---------------------------------------------------------------------------
// Tests

// TestBrowserChatRoom: two Chromium pages on the chat front end (one with
// AMF3, one with AMF0, driven through the page's form fields and buttons)
// and python3-librtmp over RTMP in one chat instance. A message said by
// each reaches the other two; a topic (SharedObject slot) changed in a
// page reaches the RTMP client and the other page, and the other way
// round; a SharedObject send from a page reaches both; the three changing
// the topic within a few milliseconds (each client first once) end up
// agreeing with each other and with the server, which refuses all but
// one change of a slot in a sync interval (it must have refused some).
func TestBrowserChatRoom(t *testing.T) {
	e2e(t)
	py := pythonWithLibrtmp(t)
	b := startBrowser(t)
	srv := startServer(t)
	copyApp(t, srv.DataDir, "chat")
	base := "http://" + srv.RTMPTAddr(t)

	alice := openChat(t, b, base, "r1", "alice", 3, true)
	alice.waitTopic(t, "welcome")
	bob := openChat(t, b, base, "r1", "bob", 0, false)
	bob.waitTopic(t, "welcome")
	// librtmp takes the first path element for the application and the
	// rest for a stream: the instance needs its app option.
	carol := startPyChat(t, py, "rtmp://"+srv.Addr+"/chat/r1 app=chat/r1", "carol")
	if ev := carol.wait("connect reply", chatStep, func(ev map[string]any) bool { return ev["ev"] == "connect" }); ev["code"] != "NetConnection.Connect.Success" {
		t.Fatalf("librtmp connect: %v", ev)
	}
	carol.do(map[string]any{"op": "use"})
	carol.wait("UseSuccess", chatStep, func(ev map[string]any) bool { return ev["ev"] == "so" && ev["type"] == "use" })
	for _, p := range []*page{alice, bob} {
		p.waitFor(t, `[...document.querySelectorAll('#users li')].map(li => li.textContent).join(',') === 'alice,bob,carol'`, chatStep)
	}
	// The script sees the pages as rtmpws clients, the RTMP one as rtmp.
	if got, _ := carol.call("listClients").(map[string]any); got["list"] != "alice/rtmpws,bob/rtmpws,carol/rtmp" {
		t.Errorf("listClients: %v, want alice/rtmpws,bob/rtmpws,carol/rtmp", got)
	}
	for _, enc := range []float64{0, 3} {
		if got := countConnected(srv, "rtmpws", enc); got != 1 {
			t.Errorf("%d rtmpws clients connected with objectEncoding %v, want 1", got, enc)
		}
	}

	t.Run("Messages", func(t *testing.T) {
		alice.typeText(t, "#text", "hello from alice")
		alice.click(t, "#send")
		bob.waitMessage(t, "alice", "hello from alice")
		carol.wait("alice's message", chatStep, pyMsg("alice", "hello from alice"))
		alice.waitMessage(t, "alice", "hello from alice")
		alice.waitFor(t, `document.getElementById('text').value === ''`, chatStep)

		bob.typeText(t, "#text", "héllo <b>from</b> bob ✓")
		bob.click(t, "#send")
		alice.waitMessage(t, "bob", "héllo <b>from</b> bob ✓")
		carol.wait("bob's message", chatStep, pyMsg("bob", "héllo <b>from</b> bob ✓"))
		// Text, not markup.
		var bolds int
		alice.eval(t, `document.querySelectorAll('#messages b').length`, &bolds)
		if bolds != 0 {
			t.Errorf("a message's markup became elements in the page")
		}

		if r := carol.call("say", "hi from carol"); r != true {
			t.Errorf("say: %v", r)
		}
		alice.waitMessage(t, "carol", "hi from carol")
		bob.waitMessage(t, "carol", "hi from carol")

		// so.send from a page reaches the handlers of the others.
		bob.eval(t, `chat.so.send("msg", "bob", "sent with so.send"), true`, nil)
		alice.waitMessage(t, "bob", "sent with so.send")
		carol.wait("bob's so.send", chatStep, pyMsg("bob", "sent with so.send"))
	})

	t.Run("Topic", func(t *testing.T) {
		// A page changes the slot: the RTMP client and the other page.
		alice.typeText(t, "#new-topic", "topic by alice")
		alice.click(t, "#set-topic")
		carol.wait("alice's topic", chatStep, func(ev map[string]any) bool {
			return ev["ev"] == "so" && ev["type"] == "change" && ev["key"] == "topic" && ev["value"] == "topic by alice"
		})
		bob.waitTopic(t, "topic by alice")
		alice.waitTopic(t, "topic by alice")
		// The script's onSync saw it too.
		bob.waitMessage(t, "server", "topic is now topic by alice")

		// The RTMP client changes it: both pages.
		carol.set("topic", "topic by carol")
		carol.wait("success of carol's topic", chatStep, func(ev map[string]any) bool {
			return ev["ev"] == "so" && ev["type"] == "success" && ev["key"] == "topic"
		})
		alice.waitTopic(t, "topic by carol")
		bob.waitTopic(t, "topic by carol")
		var data string
		bob.eval(t, `chat.so.data.topic`, &data)
		if data != "topic by carol" {
			t.Errorf("bob's so.data.topic %q", data)
		}
	})

	t.Run("Conflict", func(t *testing.T) {
		refusals := 0
		for round := range 3 {
			mark := carol.count()
			vals := map[string]string{}
			for _, who := range []string{"alice", "bob", "carol"} {
				vals[who] = fmt.Sprintf("round %d: %s", round, who)
			}
			// The three requests leave within a few milliseconds (the
			// server takes the first of a sync interval, 20 ms, and
			// refuses the others): one client goes first, a different
			// one each round, and the two others at once right after.
			set := map[string]func(){"carol": func() { carol.set("topic", vals["carol"]) }}
			for who, p := range map[string]*page{"alice": alice, "bob": bob} {
				js, _ := json.Marshal(vals[who])
				set[who] = func() {
					_ = p.evalErr(`chat.so.setProperty("topic", `+string(js)+`), true`, nil, evalTimeout)
				}
			}
			first := []string{"carol", "alice", "bob"}[round]
			set[first]()
			var wg sync.WaitGroup
			for who, f := range set {
				if who != first {
					wg.Go(f)
				}
			}
			wg.Wait()

			// Converged: the three hold one of the values, the same as
			// the server's (the script's view of the object).
			var final string
			converged := sessiontest.Poll(chatStep, func() bool {
				var a, b, srvTopic string
				if alice.evalErr(`chat.so.data.topic`, &a, evalTimeout) != nil || bob.evalErr(`chat.so.data.topic`, &b, evalTimeout) != nil ||
					bob.evalErr(`chat.nc.callAsync("getTopic")`, &srvTopic, evalTimeout) != nil {
					return false
				}
				c, _ := carol.slot("topic")
				final = a
				return a == b && c == a && srvTopic == a && slices.Contains([]string{vals["alice"], vals["bob"], vals["carol"]}, a)
			})
			if !converged {
				var a, b string
				alice.evalErr(`chat.so.data.topic`, &a, evalTimeout)
				bob.evalErr(`chat.so.data.topic`, &b, evalTimeout)
				c, _ := carol.slot("topic")
				t.Fatalf("round %d: the topic did not converge: alice %q, bob %q, carol %v\ncarol's events:\n%s", round, a, b, c, carol.p.Stdout.String())
			}
			// What the pages show agrees with their data.
			alice.waitTopic(t, final)
			bob.waitTopic(t, final)
			// How many of the three requests the server took: each one
			// taken reaches the RTMP client, as a Change or, its own, as
			// a Success, in order on its connection, the last of them
			// already in (it holds the final value). A refused request
			// reaches nobody. (A page's onSync "reject" is no proof: the
			// library reports one when another's change arrives while its
			// own is on its way, and a success after it.)
			taken := 0
			carol.mu.Lock()
			for _, ev := range carol.evs[mark:] {
				if ev["ev"] == "so" && ev["key"] == "topic" && (ev["type"] == "change" || ev["type"] == "success") {
					taken++
				}
			}
			carol.mu.Unlock()
			refusals += 3 - taken
			t.Logf("round %d: %s first; every client holds %q; the server took %d of the 3 requests", round, first, final, taken)
		}
		// The requests did cross: the server refused some (three rounds
		// in a row of requests 20 ms apart would be a broken test).
		if refusals == 0 {
			t.Errorf("no change was refused in three rounds: the requests never conflicted")
		}
	})

	alice.screenshot(t, "chat-alice")
	bob.screenshot(t, "chat-bob")

	// Leaving: the others hear it and the users list shrinks.
	bob.click(t, "#disconnect")
	alice.waitMessage(t, "server", "bob left")
	carol.wait("bob left", chatStep, pyMsg("server", "bob left"))
	alice.waitFor(t, `[...document.querySelectorAll('#users li')].map(li => li.textContent).join(',') === 'alice,carol'`, chatStep)
	alice.noErrors(t)
	bob.noErrors(t)
	srv.requireAlive(t)
}

// countConnected counts the server's "connected" lines of proto with
// objectEncoding enc.
func countConnected(srv *server, proto string, enc float64) int {
	lines, _ := srv.log.snapshot(0)
	n := 0
	for _, l := range lines {
		if l.str("msg") == "connected" && l.str("proto") == proto && l.JSON["objectEncoding"] == enc {
			n++
		}
	}
	return n
}

// sdkJS imports the library into an expression evaluated in a page.
const sdkJS = `(async () => { const {NetConnection, SharedObject, NetStream, Responder} = await import("/sdk/rtmphub.js"); %s })()`

// TestBrowserChatRPC: from a page (AMF0 from the HTTP port, AMF3 from the
// RTMP port), nc.call("add") with a Responder and callAsync return
// main.asc's result, and a missing method fails; the script's client.call
// reaches the page's nc.client method, whose return value reaches the
// script's Responder (its trace, and lastPong); the script lists the page
// in application.clients with protocol rtmpws; and a connect the script
// rejects shows the script's info object, in the raw info and on the chat
// page.
func TestBrowserChatRPC(t *testing.T) {
	e2e(t)
	b := startBrowser(t)
	srv := startServer(t)
	copyApp(t, srv.DataDir, "chat")
	// AMF0 from the HTTP port; AMF3 from the RTMP port, which serves the
	// page and the WebSocket too (told apart from RTMP by its first bytes).
	bases := map[int]string{0: "http://" + srv.RTMPTAddr(t), 3: "http://" + srv.Addr}

	for _, enc := range []int{0, 3} {
		t.Run(fmt.Sprintf("AMF%d", enc), func(t *testing.T) {
			base := bases[enc]
			nick := fmt.Sprintf("dana%d", enc)
			p := openChat(t, b, base, "rpc", nick, enc, false)
			var sum float64
			p.eval(t, fmt.Sprintf(sdkJS, `return await new Promise((res, rej) =>
				chat.nc.call("add", new Responder(res, (info) => rej(new Error(info.code))), 2, 3));`), &sum)
			if sum != 5 {
				t.Errorf("add(2, 3) with a Responder: %v", sum)
			}
			p.eval(t, `chat.nc.callAsync("add", 20.5, 21.5)`, &sum)
			if sum != 42 {
				t.Errorf("callAsync add(20.5, 21.5): %v", sum)
			}
			// A method main.asc lacks: the Responder's status.
			var code string
			p.eval(t, `chat.nc.callAsync("noSuchMethod").then(() => "resolved", (e) => (e && (e.code || (e.info && e.info.code))) || String(e))`, &code)
			if !strings.Contains(code, "NetConnection.Call.Failed") {
				t.Errorf("call of a missing method: %q, want NetConnection.Call.Failed", code)
			}

			// Server → page: pingMe(x) calls the page's ping(x), which
			// answers x + 1 to the script.
			x := 40 + enc
			mark := srv.log.len()
			var sent string
			p.eval(t, fmt.Sprintf(`chat.nc.callAsync("pingMe", %d)`, x), &sent)
			if sent != "sent" {
				t.Errorf("pingMe: %q", sent)
			}
			trace := fmt.Sprintf("ping(%d) answered by %s: %d", x, nick, x+1)
			if _, ok := srv.log.wait(func(l logLine) bool { return strings.Contains(l.Raw, trace) }, chatStep, srv.done); !ok {
				t.Errorf("no script trace %q after line %d", trace, mark)
			}
			p.evalUntil(t, "lastPong", `chat.nc.callAsync("lastPong")`, chatStep, func(raw json.RawMessage) bool {
				return string(raw) == fmt.Sprint(x+1)
			})

			// application.clients: the page, as rtmpws.
			var me struct{ Nick, Protocol string }
			p.eval(t, `chat.nc.callAsync("whoami").then(r => ({Nick: r.nick, Protocol: r.protocol}))`, &me)
			if me.Nick != nick || me.Protocol != "rtmpws" {
				t.Errorf("whoami: %+v, want %s over rtmpws", me, nick)
			}
			var list []struct{ Nick, Protocol string }
			p.eval(t, `chat.nc.callAsync("listClients").then(r => Array.from(r.clients, c => ({Nick: c.nick, Protocol: c.protocol})))`, &list)
			if !slices.Contains(list, struct{ Nick, Protocol string }{nick, "rtmpws"}) {
				t.Errorf("application.clients %+v lacks %s over rtmpws", list, nick)
			}
			p.waitFor(t, `document.getElementById('status').textContent.includes('(rtmpws)')`, chatStep)

			// A rejected connect: the info object the script gave.
			var info struct {
				Level, Code, Description string
				Application              map[string]any
			}
			p.eval(t, fmt.Sprintf(sdkJS, fmt.Sprintf(`const nc = new NetConnection(); nc.objectEncoding = %d;
				const info = await new Promise((res) => { nc.onStatus = (i) => { if (i.code.startsWith("NetConnection.Connect.")) res(i); };
					nc.connect("/chat/rpc", "banned-eve"); });
				nc.close();
				return {Level: info.level, Code: info.code, Description: info.description, Application: info.application};`, enc)), &info)
			if info.Code != "NetConnection.Connect.Rejected" || info.Level != "error" {
				t.Errorf("banned connect: %+v, want NetConnection.Connect.Rejected", info)
			}
			if info.Application["reason"] != "banned" || info.Application["nick"] != "banned-eve" ||
				info.Application["description"] != "Nickname banned-eve is banned from this room." {
				t.Errorf("banned connect: info.application %v, want the script's object", info.Application)
			}
			if info.Description != "Nickname banned-eve is banned from this room." {
				t.Errorf("banned connect: description %q", info.Description)
			}

			// The same through the chat page: leave, rejoin as banned.
			p.click(t, "#disconnect")
			p.typeText(t, "#nick", "banned-eve")
			p.click(t, "#connect")
			p.waitFor(t, `chat.state === 'rejected'`, chatConnect)
			p.waitFor(t, `!document.getElementById('error').hidden &&
				document.getElementById('error').textContent.includes('Nickname banned-eve is banned from this room.')`, chatStep)
			p.screenshot(t, fmt.Sprintf("rejected-amf%d", enc))
			p.noErrors(t)
		})
	}
	srv.requireAlive(t)
}

// netStreamPage plays ?stream= from application ?app= with NetStream
// (the hub's front end of that application: the test writes it into
// <data>/<app>/public/). window.play tells how far it got.
const netStreamPage = `<!doctype html><html lang="en"><head><meta charset="utf-8"><link rel="icon" href="data:,">
<title>NetStream</title></head><body style="margin:0;background:#202020">
<video id="v" muted autoplay playsinline width="640" height="480"></video>
<script type="module">
import { NetConnection, NetStream } from "/sdk/rtmphub.js";
const q = new URLSearchParams(location.search);
const play = window.play = {state: "connecting", status: [], meta: null};
const nc = new NetConnection();
nc.objectEncoding = Number(q.get("enc") || 3);
nc.onStatus = (info) => {
	play.status.push(info.code);
	if (info.code !== "NetConnection.Connect.Success") return;
	play.state = "connected";
	const ns = new NetStream(nc);
	ns.client = { onMetaData(md) { play.meta = md; } };
	ns.onStatus = (i) => play.status.push(i.code);
	ns.attach(document.getElementById("v"));
	ns.play(q.get("stream"), -1);
	play.state = "playing";
};
nc.connect("/" + location.pathname.split("/")[1]);
</script></body></html>`

// TestBrowserNetStreamPlay: ffmpeg publishes H.264+AAC over RTMP; a page
// plays it with NetStream.play over the page's RTMP-in-WebSocket
// connection (AMF0), receiving onMetaData and NetStream.Play.Start, and
// decodes ≥ 90% of the frames ffmpeg sent while it watched.
func TestBrowserNetStreamPlay(t *testing.T) {
	e2e(t)
	needFFmpeg(t)
	b := startBrowser(t)
	srv := startServer(t)
	base := "http://" + srv.RTMPTAddr(t)
	pub := startPublisher(t, srv.URL("cam"), pubOpts{Seconds: 60, GOP: 25})
	t.Cleanup(func() { pub.stop(5 * time.Second) })
	dir := filepath.Join(srv.DataDir, "live", "public")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "index.html"), []byte(netStreamPage), 0o644); err != nil {
		t.Fatal(err)
	}
	pub.waitFrames(t, 25, 30*time.Second)

	start := time.Now()
	p := b.open(t, base+"/live/?stream=cam&enc=0")
	p.waitFor(t, `window.play && play.meta !== null && play.status.includes("NetStream.Play.Start") &&
		document.querySelector('video').currentTime > 0 &&
		document.querySelector('video').getVideoPlaybackQuality().totalVideoFrames > 0`, playStartTimeout)
	t.Logf("playing %v after the page was asked for", time.Since(start).Round(time.Millisecond))

	// The window starts a second into playback, past the start's burst
	// (the cached GOP), and is long enough that ffmpeg's progress lines
	// (every 100 ms) and a publisher catching up after a busy moment of
	// this shared machine weigh a few percent at most.
	p.waitFor(t, `document.querySelector('video').getVideoPlaybackQuality().totalVideoFrames >= 25`, playStartTimeout)
	pub0 := pub.Frames()
	frames, advanced := p.watchPlayback(t, netStreamWatch)
	sent := pub.Frames() - pub0
	ratio := float64(frames) / float64(max(sent, 1))
	t.Logf("NETSTREAM frames decoded %d / sent %d = %.3f, currentTime +%.3f s", frames, sent, ratio, advanced)
	if sent < int(0.9*playFPS*netStreamWatch.Seconds()) {
		t.Errorf("ffmpeg sent only %d frames in %v", sent, netStreamWatch)
	}
	if ratio < 0.9 {
		t.Errorf("decoded %d of the %d frames sent (%.1f%%); want ≥ 90%%", frames, sent, 100*ratio)
	}
	if advanced < 0.9*netStreamWatch.Seconds() {
		t.Errorf("currentTime advanced %.3f s in %v; want ≥ %.2f s", advanced, netStreamWatch, 0.9*netStreamWatch.Seconds())
	}
	var meta map[string]any
	p.eval(t, `play.meta`, &meta)
	if w, h := meta["width"], meta["height"]; w != 320.0 || h != 240.0 {
		t.Errorf("onMetaData: width %v height %v, want 320x240 (%v)", w, h, meta)
	}
	if fr, _ := meta["framerate"].(float64); math.Abs(fr-playFPS) > 0.5 {
		t.Errorf("onMetaData: framerate %v, want %d", meta["framerate"], playFPS)
	}
	p.screenshot(t, "netstream")
	p.noErrors(t)
	// Media came over the page's RTMP connection: no FLV viewer.
	if n := logCount(srv, "access", map[string]string{"event": "watch"}); n != 0 {
		t.Errorf("%d watch lines: the page played through an FLV viewer", n)
	}
	if n := logCount(srv, "connected", map[string]string{"proto": "rtmpws"}); n != 1 {
		t.Errorf("%d rtmpws connections logged, want 1", n)
	}
}
