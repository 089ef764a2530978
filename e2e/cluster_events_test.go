package e2e

import (
	"context"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rtmphub/rtmphub/rtmp/client"
	"github.com/rtmphub/rtmphub/session/sessiontest"
)

// Stream events across hubs (issue 13, item 2), with real processes on
// Debian's nats-server: a client of hub A makes A the owner of
// streamlog/_definst_ (testdata/apps/streamlog); ffmpeg publishes to hub
// B. A's main.asc hears onPublish and onUnpublish for B's encoder, with
// the remote client object application.clients holds, both when ffmpeg
// ends its publication and when it is killed (onUnpublish, then
// onDisconnect); B never runs main.asc.
func TestClusterStreamEvents(t *testing.T) {
	e2e(t)
	needFFmpeg(t)
	url := startNATS(t)
	flags := []string{"--cluster", url, "--cluster-secret", "e2e-secret", "--admin-addr", "127.0.0.1:0"}
	hubs := map[string]*server{}
	for _, name := range []string{"a", "b"} {
		hubs[name] = startServer(t, append([]string{"--node-name", name}, flags...)...)
		copyApp(t, hubs[name].DataDir, "streamlog")
	}
	for _, h := range hubs {
		waitJoined(t, h, 60*time.Second)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ca, err := client.Dial(ctx, "rtmp://"+hubs["a"].Addr+"/streamlog", client.Options{ConnectArgs: []any{"watcher"}})
	if err != nil {
		t.Fatal(err)
	}
	defer ca.Close()
	events := func() string {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		r, err := ca.Call(ctx, "events")
		if err != nil {
			t.Fatalf("events: %v", err)
		}
		s, _ := r.Arg(0).(string)
		return s
	}
	wait := func(what, want string) {
		t.Helper()
		var got string
		if !sessiontest.Poll(20*time.Second, func() bool { got = events(); return strings.Contains(got, want) }) {
			t.Fatalf("%s: events %q, want %q in them", what, got, want)
		}
	}

	// ffmpeg publishes for 4 s and ends.
	pub := startPublisher(t, "rtmp://"+hubs["b"].Addr+"/streamlog/cam", pubOpts{Seconds: 4})
	wait("onPublish of b's encoder", "publish cam encoder listed name")
	pub.finish(t, 30*time.Second)
	wait("onUnpublish of b's encoder", "publish cam encoder listed name|unpublish cam encoder listed name|disconnect encoder")

	// ffmpeg is killed while publishing.
	pub2 := startPublisher(t, "rtmp://"+hubs["b"].Addr+"/streamlog/cam2", pubOpts{Seconds: 60})
	wait("onPublish of the second encoder", "publish cam2 encoder listed name")
	pub2.signal(syscall.SIGKILL)
	wait("onUnpublish of the killed encoder", "publish cam2 encoder listed name|unpublish cam2 encoder listed name|disconnect encoder")
	if n := logMsgCount(hubs["b"], "script loaded"); n != 0 {
		t.Errorf("b loaded main.asc %d times", n)
	}
	t.Logf("a's main.asc: %s", events())
}
