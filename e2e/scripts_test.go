package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// pythonCalculatorScript calls the calculator example app (main.asc)
// with python3-librtmp: the connect parameter is the password, passed
// with librtmp's conn= URL option.
const pythonCalculatorScript = `
import sys, librtmp
c = librtmp.RTMP(sys.argv[1] + " conn=S:secret", live=True, timeout=15)
c.connect()
print("add", c.call("add", 2, 3).result(timeout=10), flush=True)
print("mul", c.call("mul", 6, 7).result(timeout=10), flush=True)
print("sum", c.call("sum", 1, 2, 3, 4).result(timeout=10), flush=True)
print("count", c.call("count").result(timeout=10), flush=True)
c.close()
bad = librtmp.RTMP(sys.argv[1] + " conn=S:wrong", live=True, timeout=15)
try:
    # librtmp's connect does not wait for the reply; the closed
    # connection shows on the first call.
    bad.connect()
    bad.call("add", 1, 1).result(timeout=5)
    print("wrong password accepted", flush=True)
except Exception as e:
    print("rejected", e, flush=True)
`

// copyApp copies an example application into the server's data folder.
func copyApp(t *testing.T, dataDir, app string) {
	t.Helper()
	src := filepath.Join("testdata", "apps", app)
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dataDir, app), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dataDir, app, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestPythonLibrtmpScriptCalculator: the real librtmp over rtmp:// and
// rtmpt:// calls methods a main.asc defines on Client.prototype (and one
// found by __resolve), and a wrong connect parameter is rejected by the
// script's onConnect.
func TestPythonLibrtmpScriptCalculator(t *testing.T) {
	e2e(t)
	py := pythonWithLibrtmp(t)
	srv := startServer(t)
	copyApp(t, srv.DataDir, "calculator")
	for _, url := range []string{"rtmp://" + srv.Addr + "/calculator/a", "rtmpt://" + srv.RTMPTAddr(t) + "/calculator/b"} {
		out := run(t, time.Minute, py, "-c", pythonCalculatorScript, url)
		t.Logf("%s:\n%s", url, strings.TrimSpace(out))
		for _, want := range []string{"add 5.0\n", "mul 42.0\n", "sum 10.0\n", "count 2.0\n", "rejected"} {
			if !strings.Contains(out, want) {
				t.Errorf("%s: output lacks %q", url, want)
			}
		}
	}
	srv.requireAlive(t)
}
