package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rtmphub/rtmphub/rtmp/client"
	"github.com/rtmphub/rtmphub/rtmp/message"
	"github.com/rtmphub/rtmphub/session/sessiontest"
	"github.com/rtmphub/rtmphub/tunnel"
)

// pythonRPCScript drives the RPC set with python3-librtmp: a call to a
// server method (add, echo), a server → client call answered by a Python
// handler (callBack asks the server to call question on us), and the
// native bandwidth check ending with onBWDone and its four values.
const pythonRPCScript = `
import sys, librtmp
c = librtmp.RTMP(sys.argv[1], live=True, timeout=15)
c.connect()
print("add", c.call("add", 2, 3).result(timeout=10), flush=True)
print("echo", c.call("echo", "hello").result(timeout=10), flush=True)
@c.invoke_handler
def question(x):
    return "answer:" + str(x)
print("callBack", c.call("callBack", "question", "hi").result(timeout=10), flush=True)
checks = [0]
@c.invoke_handler
def onBWCheck(*args):
    checks[0] += 1
    return checks[0]
c.call("checkBandwidth")
while True:
    args = c.process_packets(invoked_method="onBWDone", timeout=15)
    if args and len(args) >= 4:
        break
print("onBWCheck", checks[0], "onBWDone", " ".join(str(a) for a in args), flush=True)
c.close()
`

// TestPythonLibrtmpRPC: the real librtmp (through python3-librtmp) over
// rtmp:// and rtmpt:// calls a server method and gets its result, answers
// a server → client call, and runs checkBandwidth to onBWDone. The test
// methods come from --rpc-test-app.
func TestPythonLibrtmpRPC(t *testing.T) {
	e2e(t)
	py := pythonWithLibrtmp(t)
	srv := startServer(t, "--rpc-test-app", "rpc")
	for _, url := range []string{"rtmp://" + srv.Addr + "/rpc/x", "rtmpt://" + srv.RTMPTAddr(t) + "/rpc/x"} {
		out := run(t, time.Minute, py, "-c", pythonRPCScript, url)
		t.Logf("%s:\n%s", url, strings.TrimSpace(out))
		for _, want := range []string{"add 5.0\n", "echo hello\n", "callBack answer:hi\n", "onBWDone "} {
			if !strings.Contains(out, want) {
				t.Errorf("%s: output lacks %q", url, want)
			}
		}
		var checks int
		var kbit, deltaDown, deltaTime, latency float64
		i := strings.Index(out, "onBWCheck ")
		if i < 0 {
			continue
		}
		if n, _ := fmt.Sscanf(out[i:], "onBWCheck %d onBWDone %g %g %g %g", &checks, &kbit, &deltaDown, &deltaTime, &latency); n != 5 || checks < 2 || kbit <= 0 || deltaDown <= 0 {
			t.Errorf("%s: bandwidth check: %d onBWCheck, onBWDone %v %v %v %v", url, checks, kbit, deltaDown, deltaTime, latency)
		}
	}
}

// soWriter keeps changing two slots of a persistent shared object in one
// message each time, so that a consistent state has them equal.
func soWriter(ctx context.Context, addr string, from int) (last int, err error) {
	c, err := client.Dial(ctx, "rtmp://"+addr+"/game/kill", client.Options{})
	if err != nil {
		return from, err
	}
	defer c.Close()
	if err := c.UseSO("state", true, 0); err != nil {
		return from, err
	}
	big := strings.Repeat("x", 2000)
	for i := from; ; i++ {
		if ctx.Err() != nil {
			return i, nil
		}
		v := float64(i)
		if err := c.SetSO("state", true, 0,
			message.SOEvent{Key: "a", Value: v}, message.SOEvent{Key: "b", Value: v},
			message.SOEvent{Key: fmt.Sprintf("k%d", i%50), Value: big}); err != nil {
			return i, nil // killed
		}
		time.Sleep(time.Millisecond)
	}
}

// readSOState connects and returns the persistent object's slots a and b
// and its version, or the Status code it was refused with.
func readSOState(t *testing.T, addr string) (a, b any, version uint32, status string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, "rtmp://"+addr+"/game/kill", client.Options{})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer c.Close()
	if err := c.UseSO("state", true, 0); err != nil {
		t.Fatal(err)
	}
	m, err := c.ReadSO(ctx, "state")
	if err != nil {
		t.Fatalf("use: %v", err)
	}
	for _, e := range m.Events {
		switch {
		case e.Type == message.SOStatus:
			return nil, nil, 0, e.Code
		case e.Type == message.SOChange && e.Key == "a":
			a = e.Value
		case e.Type == message.SOChange && e.Key == "b":
			b = e.Value
		}
	}
	return a, b, m.Version, ""
}

// TestPersistentSOKillLoop kills the server with SIGKILL at random moments
// while a client writes a persistent shared object that is saved every few
// milliseconds, restarts it on the same data folder, and checks each time
// that the object loads whole (its two slots written together agree) and
// that its version never goes back past what a restart read before.
func TestPersistentSOKillLoop(t *testing.T) {
	e2e(t)
	dir := t.TempDir()
	deadline := time.Now().Add(15 * time.Second)
	next, kills, lastVersion := 0, 0, uint32(0)
	for time.Now().Before(deadline) {
		srv := startServer(t, "--data-dir", dir, "--so-save-interval", "2ms", "--so-sync-interval", "5ms")
		a, b, ver, status := readSOState(t, srv.Addr)
		if status != "" {
			t.Fatalf("after %d kills the object is refused: %s\n%s", kills, status, srv.log.tail(20))
		}
		if a != b {
			t.Fatalf("after %d kills: torn state a=%v b=%v", kills, a, b)
		}
		if ver < lastVersion {
			t.Fatalf("after %d kills: version %d went back from %d", kills, ver, lastVersion)
		}
		lastVersion = ver
		if n, ok := a.(float64); ok {
			next = int(n) + 1
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Duration(50+rand.IntN(400))*time.Millisecond)
		done := make(chan int, 1)
		go func() {
			n, _ := soWriter(ctx, srv.Addr, next)
			done <- n
		}()
		<-ctx.Done()
		srv.kill()
		cancel()
		<-done
		kills++
	}
	srv := startServer(t, "--data-dir", dir)
	a, b, ver, status := readSOState(t, srv.Addr)
	if status != "" || a != b || ver < lastVersion {
		t.Fatalf("final state: a=%v b=%v version %d (last %d) status %q", a, b, ver, lastVersion, status)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "game", "sharedobjects", "kill", "*"))
	t.Logf("%d kills; final a=%v version %d; files %v", kills, a, ver, files)
	if kills < 3 {
		t.Errorf("only %d kills in the time allowed", kills)
	}
}

// TestTsharkDissectsRPCAndSO captures AMF0 and AMF3 clients doing calls
// both ways and shared object traffic, and has Wireshark's RTMP dissector
// read it with no malformed packet.
func TestTsharkDissectsRPCAndSO(t *testing.T) {
	e2e(t)
	needTool(t, "tshark")
	srv := startServer(t, "--rpc-test-app", "rpc")
	dir := t.TempDir()
	pcap := filepath.Join(dir, "rpc.pcapng")
	capture := startProc(t, 2*time.Minute, "tshark", "-n", "-i", "lo", "-f", fmt.Sprintf("tcp port %d", srv.Port), "-w", pcap)
	if !sessiontest.Poll(30*time.Second, func() bool {
		return strings.Contains(capture.Stderr.String(), "Capturing on") || capture.exited()
	}) || capture.exited() {
		msg := fmt.Sprintf("tshark did not start capturing on lo: %s", capture.Stderr.String())
		if !inCI() && (strings.Contains(msg, "ermission") || strings.Contains(msg, "Operation not permitted")) {
			t.Skip(msg)
		}
		t.Fatal(msg)
	}
	for _, enc := range []float64{0, 3} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		c, err := client.Dial(ctx, "rtmp://"+srv.Addr+"/rpc/tshark", client.Options{ObjectEncoding: enc})
		if err != nil {
			t.Fatal(err)
		}
		if r, err := c.Call(ctx, "add", 1.0, 2.0); err != nil || r.Arg(0) != 3.0 {
			t.Fatalf("add: %v %v", r, err)
		}
		if err := c.WriteCommand(0, &message.Command{Name: "callBack", TransactionID: 77, Args: []any{"question", "q"}}); err != nil {
			t.Fatal(err)
		}
		q, err := c.ReadCall(ctx, "question")
		if err != nil {
			t.Fatal(err)
		}
		c.Reply(q.TransactionID, "a")
		if _, err := c.ReadCall(ctx, "_result"); err != nil {
			t.Fatal(err)
		}
		c.UseSO("room", false, 0)
		c.ReadSO(ctx, "room")
		c.SetSO("room", false, 0, message.SOEvent{Key: "x", Value: 1.0}, message.SOEvent{Key: "s", Value: "str"})
		c.ReadSO(ctx, "room")
		c.SendSO("room", false, "onMsg", "hello")
		c.ReadSO(ctx, "room")
		c.RemoveSO("room", false, "x")
		c.ReadSO(ctx, "room")
		c.ReleaseSO("room", false)
		c.Close()
		cancel()
	}
	time.Sleep(300 * time.Millisecond)
	capture.signal(syscall.SIGINT)
	if !capture.wait(15 * time.Second) {
		t.Fatal("tshark did not stop")
	}
	if st, err := os.Stat(pcap); err != nil || st.Size() == 0 {
		t.Fatalf("no capture: %v", err)
	}
	read := func(filter string, extra ...string) string {
		args := append([]string{"-n", "-r", pcap, "-d", fmt.Sprintf("tcp.port==%d,rtmpt", srv.Port), "-Y", filter}, extra...)
		return strings.TrimSpace(run(t, time.Minute, "tshark", args...))
	}
	if bad := read("_ws.malformed"); bad != "" {
		t.Errorf("malformed packets:\n%s\n%s", bad, tailString(read("_ws.malformed", "-V"), 4000))
	}
	for _, f := range []string{"rtmpt.header.typeid == 0x13", "rtmpt.header.typeid == 0x10", "rtmpt.header.typeid == 0x11", `amf.string == "question"`} {
		if read(f) == "" {
			t.Errorf("no packet matches %s", f)
		}
	}
}

// TestSharedObjectRTMPAndRTMPT: against the real binary, an AMF0 client
// over rtmp:// and an AMF3 client over rtmpt:// share one object: initial
// sync, a change each way, a send message.
func TestSharedObjectRTMPAndRTMPT(t *testing.T) {
	e2e(t)
	srv := startServer(t)
	httpAddr := srv.RTMPTAddr(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	a, err := client.Dial(ctx, "rtmp://"+srv.Addr+"/chat/room", client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := client.Dial(ctx, "rtmp://"+httpAddr+"/chat/room", client.Options{ObjectEncoding: 3,
		Dial: func(ctx context.Context, addr string) (net.Conn, error) {
			return tunnel.DialRTMPT(ctx, "rtmpt://"+addr, tunnel.DialOptions{})
		}})
	if err != nil {
		t.Fatalf("connect over RTMPT: %v", err)
	}
	defer b.Close()
	read := func(c *client.Conn, want string) *message.SharedObjectMessage {
		t.Helper()
		m, err := c.ReadSO(ctx, "rooms/one")
		if err != nil {
			t.Fatalf("waiting for %s: %v", want, err)
		}
		var got []string
		for _, e := range m.Events {
			got = append(got, e.Type.String()+":"+e.Key)
		}
		if !strings.Contains(strings.Join(got, " "), want) {
			t.Fatalf("got %v, want %s", got, want)
		}
		return m
	}
	a.UseSO("rooms/one", false, 0)
	read(a, "UseSuccess:")
	a.SetSO("rooms/one", false, 0, message.SOEvent{Key: "topic", Value: "hello"})
	read(a, "Success:topic")
	b.UseSO("rooms/one", false, 0)
	m := read(b, "Change:topic")
	if m.Events[2].Value != "hello" {
		t.Errorf("rtmpt client synced %v", m.Events[2].Value)
	}
	b.SetSO("rooms/one", false, m.Version, message.SOEvent{Key: "n", Value: 2.0})
	read(b, "Success:n")
	if m := read(a, "Change:n"); m.Events[0].Value != 2.0 {
		t.Errorf("rtmp client got %v", m.Events[0].Value)
	}
	b.SendSO("rooms/one", false, "onChat", "hi")
	read(a, "SendMessage:")
	read(b, "SendMessage:")
}
