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

// load() and File follow the recordings' rule: a symbolic link may lead
// anywhere in the app folder, not out of it.
func TestLoadAndFileStayInAppFolderThroughLinks(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	app := filepath.Join(data, "links")
	outside := filepath.Join(dir, "outside")
	write := func(p, s string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	link := func(target, name string) {
		t.Helper()
		if err := os.Symlink(target, filepath.Join(app, name)); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(app, "main.asc"), `
Client.prototype.tryLoad = function (name) {
	loaded = "";
	try { load(name); return "ok " + loaded; } catch (e) { return "error " + e; }
};
Client.prototype.tryCreate = function (name) {
	try { var f = new File(name); f.open("text", "create"); f.writeln("x"); f.close(); return "ok"; } catch (e) { return "error " + e; }
};
`)
	write(filepath.Join(app, "lib", "inner.asc"), `loaded = "inner";`)
	write(filepath.Join(outside, "evil.asc"), `loaded = "outside";`)
	write(filepath.Join(data, "other", "evil.asc"), `loaded = "other app";`)
	link(filepath.Join(outside, "evil.asc"), "abs.asc")   // absolute, out of everything
	link("../other/evil.asc", "rel.asc")                  // relative, into another app
	link(outside, "outdir")                               // a folder out
	link("lib/inner.asc", "in.asc")                       // inside: allowed
	link(filepath.Join(app, "lib"), "inlib")              // absolute, inside: allowed
	link(filepath.Join(outside, "new.txt"), "dangle.txt") // dangling, out

	base, _, logs := sessiontest.Start(t, func(log *slog.Logger) session.Config {
		return session.Config{DataDir: data, Application: script.Factory(script.Config{DataDir: data, MaxRun: time.Second, Log: log})}
	})
	c := mustDial(t, base+"/links", client.Options{})
	call := func(method, arg string) string {
		t.Helper()
		r, err := c.Call(ctxT(t, 5*time.Second), method, arg)
		if err != nil {
			t.Fatalf("%s(%q): %v\n%s", method, arg, err, logs)
		}
		s, _ := r.Arg(0).(string)
		return s
	}
	for _, tc := range []struct{ method, arg, want string }{
		{"tryLoad", "lib/inner.asc", "ok inner"},
		{"tryLoad", "in.asc", "ok inner"},
		{"tryLoad", "inlib/inner.asc", "ok inner"},
		{"tryLoad", "abs.asc", "error GoError: load(\"abs.asc\"): path leaves the application folder"},
		{"tryLoad", "rel.asc", "error GoError: load(\"rel.asc\"): path leaves the application folder"},
		{"tryLoad", "outdir/evil.asc", "error GoError: load(\"outdir/evil.asc\"): path leaves the application folder"},
		{"tryLoad", "../other/evil.asc", "error GoError: load(\"../other/evil.asc\"): open "},
		{"tryCreate", "inlib/new.txt", "ok"},
		{"tryCreate", "outdir/new.txt", "error GoError: path leaves the application folder"},
		{"tryCreate", "dangle.txt", "error GoError: "},
	} {
		if got := call(tc.method, tc.arg); !strings.HasPrefix(got, tc.want) {
			t.Errorf("%s(%q) = %q, want %q...", tc.method, tc.arg, got, tc.want)
		}
	}
	if _, err := os.Stat(filepath.Join(outside, "new.txt")); err == nil {
		t.Error("a file was created outside the app folder")
	}
	if _, err := os.Stat(filepath.Join(app, "lib", "new.txt")); err != nil {
		t.Errorf("no file created through the link inside: %v", err)
	}
}
