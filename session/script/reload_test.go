package script_test

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rtmphub/rtmphub/rtmp/client"
	"github.com/rtmphub/rtmphub/session"
	"github.com/rtmphub/rtmphub/session/script"
	"github.com/rtmphub/rtmphub/session/sessiontest"
)

// Reloading an application (FMS's reloadApp, Server.ReloadApp) unloads
// its running instance: the client hears NetConnection.Connect.AppShutdown
// and is disconnected, onDisconnect runs, then onAppStop; the next
// connect runs the changed main.asc.
func TestReloadRunsTheChangedScript(t *testing.T) {
	dir := t.TempDir()
	main := filepath.Join(dir, "ver", "main.asc")
	write := func(v string) {
		t.Helper()
		src := `
Client.prototype.version = function () { return "` + v + `"; };
application.onDisconnect = function (client) { trace("` + v + ` bye"); };
application.onAppStop = function () { trace("` + v + ` stopping"); };
`
		if err := os.MkdirAll(filepath.Dir(main), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(main, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("v1")
	base, srv, logs := sessiontest.Start(t, func(log *slog.Logger) session.Config {
		return session.Config{DataDir: dir, Application: script.Factory(script.Config{DataDir: dir, Log: log})}
	})
	ctx := ctxT(t, 10*time.Second)
	c := mustDial(t, base+"/ver", client.Options{})
	if r, err := c.Call(ctx, "version"); err != nil || r.Arg(0) != "v1" {
		t.Fatalf("v1: %v %v", r, err)
	}
	write("v2")
	// The running instance keeps its script until it is reloaded.
	if r, err := c.Call(ctx, "version"); err != nil || r.Arg(0) != "v1" {
		t.Fatalf("before the reload: %v %v", r, err)
	}
	n, err := srv.ReloadApp("ver", "reload test")
	if err != nil || n != 1 {
		t.Fatalf("ReloadApp: %d %v", n, err)
	}
	info, err := c.WaitStatus(ctx, 0, "NetConnection.Connect.AppShutdown")
	if level, _ := info.GetString("level"); err != nil || level != "error" {
		t.Fatalf("AppShutdown: %v %v", info, err)
	}
	if _, err := c.Call(ctx, "version"); err == nil {
		t.Fatal("the connection survived the reload")
	}
	waitLog(t, logs, "v1 stopping", 5*time.Second)
	l := logs.String()
	if i, j := strings.Index(l, "v1 bye"), strings.Index(l, "v1 stopping"); i < 0 || i > j {
		t.Errorf("onDisconnect did not run before onAppStop")
	}
	c2 := mustDial(t, base+"/ver", client.Options{})
	if r, err := c2.Call(ctx, "version"); err != nil || r.Arg(0) != "v2" {
		t.Fatalf("after the reload: %v %v", r, err)
	}
	if _, err := srv.ReloadApp("nosuch", "x"); err != session.ErrNotFound {
		t.Errorf("unknown app: %v", err)
	}
}
