package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// sdkTestApp is the application the JavaScript library's hub test
// (web/sdk/test/hub.test.mjs) talks to: a connect rejected with an info
// object, calls with results and errors, a server call of the client's
// ping whose result the script keeps, and a shared object the script
// writes.
const sdkTestApp = `
var room;
application.onAppStart = function () {
	room = SharedObject.get("room", false);
	room.setProperty("topic", "welcome");
};
application.onConnect = function (client, nick, n) {
	if (nick === "bad") {
		application.rejectConnection(client, { description: "no bad nicks", reason: "bad", n: n });
		return;
	}
	client.nick = nick;
	client.n = n;
	return true;
};
Client.prototype.info = function () { return { nick: this.nick, n: this.n, protocol: this.protocol }; };
Client.prototype.add = function (a, b) { return a + b; };
Client.prototype.echo = function (v) { return v; };
Client.prototype.fail = function (why) { throw new Error(why); };
Client.prototype.askPing = function (x) {
	var self = this;
	this.pong = null;
	this.call("ping", new Responder(function (r) { self.pong = r; }), x);
	return "asked";
};
Client.prototype.lastPong = function () { return this.pong; };
Client.prototype.setSlot = function (name, v) { room.setProperty(name, v); return true; };
`

// TestSDKNodeAgainstHub runs the JavaScript client library (web/sdk) in
// node against the real binary over RTMP-in-WebSocket, on the HTTP port
// and on the RTMP port (which answers WebSocket upgrades too), with
// objectEncoding 0 and 3: connect arguments, calls both ways, a rejected
// connect's info object, shared object changes between two connections.
// It proves the library against the server without a browser.
func TestSDKNodeAgainstHub(t *testing.T) {
	e2e(t)
	node := needTool(t, "node")
	if out, err := exec.Command(node, "-p", "Number(process.versions.node.split('.')[0]) >= 20").Output(); err != nil || strings.TrimSpace(string(out)) != "true" {
		msg := "node >= 20 needed (WebSocket client, node --test reporters); see scripts/install-test-tools.sh"
		if inCI() {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	srv := startServer(t)
	dir := filepath.Join(srv.DataDir, "sdkjs")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "main.asc"), []byte(sdkTestApp), 0o644); err != nil {
		t.Fatal(err)
	}
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// node 20 has WebSocket behind a flag, which later versions do not
	// need: ask node.
	args := []string{"--test", "--test-reporter=tap", filepath.Join(root, "web", "sdk", "test", "hub.test.mjs")}
	if exec.CommandContext(ctx, node, "-e", "process.exit(typeof WebSocket === 'function' ? 0 : 1)").Run() != nil {
		args = append([]string{"--experimental-websocket"}, args...)
	}
	cmd := exec.CommandContext(ctx, node, args...)
	cmd.Env = append(os.Environ(), "RTMPHUB_TEST_HUBS="+srv.RTMPTAddr(t)+" "+srv.Addr)
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node %s: %v\n%s\nserver log:\n%s", strings.Join(args, " "), err, out, srv.log.tail(60))
	}
	// The tap report: every case ran (none skipped for want of hubs).
	if !strings.Contains(string(out), "# fail 0") || !strings.Contains(string(out), "# skipped 0") || !strings.Contains(string(out), "# pass 13") {
		t.Fatalf("node test report:\n%s", out)
	}
	t.Logf("node: %d bytes of report, all passed", len(out))
}
