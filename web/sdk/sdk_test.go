package sdk

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

func get(t *testing.T, method, path string, hdr map[string]string) *http.Response {
	t.Helper()
	req := httptest.NewRequest(method, path, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	Handler().ServeHTTP(rec, req)
	return rec.Result()
}

func TestServesTheModule(t *testing.T) {
	resp := get(t, "GET", Path, nil)
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/javascript") {
		t.Errorf("Content-Type %q", ct)
	}
	if o := resp.Header.Get("Access-Control-Allow-Origin"); o != "*" {
		t.Errorf("Access-Control-Allow-Origin %q", o)
	}
	disk, err := os.ReadFile("rtmphub.js")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(body, disk) || !bytes.Contains(body, []byte("export class NetConnection")) {
		t.Errorf("body is not rtmphub.js (%d bytes, file %d)", len(body), len(disk))
	}
	et := resp.Header.Get("ETag")
	if !strings.HasPrefix(et, `"`) || len(et) < 10 {
		t.Fatalf("ETag %q", et)
	}
	// Revalidation: 304 for the current tag (also weak, in a list, or *),
	// the body again for another.
	for _, inm := range []string{et, "W/" + et, `"x", ` + et, "*"} {
		r := get(t, "GET", Path, map[string]string{"If-None-Match": inm})
		if b, _ := io.ReadAll(r.Body); r.StatusCode != 304 || len(b) != 0 {
			t.Errorf("If-None-Match %s: %d with %d bytes, want 304", inm, r.StatusCode, len(b))
		}
	}
	if r := get(t, "GET", Path, map[string]string{"If-None-Match": `"other"`}); r.StatusCode != 200 {
		t.Errorf("stale tag: %d", r.StatusCode)
	}
	// HEAD: headers only.
	if r := get(t, "HEAD", Path, nil); r.StatusCode != 200 || r.Header.Get("Content-Length") != resp.Header.Get("Content-Length") {
		t.Errorf("HEAD: %d, length %q", r.StatusCode, r.Header.Get("Content-Length"))
	}
	if r := get(t, "POST", Path, nil); r.StatusCode != 405 {
		t.Errorf("POST: %d", r.StatusCode)
	}
	if r := get(t, "OPTIONS", Path, nil); r.StatusCode != 204 || r.Header.Get("Access-Control-Allow-Origin") != "*" {
		t.Errorf("OPTIONS: %d", r.StatusCode)
	}
	if r := get(t, "GET", "/sdk/other.js", nil); r.StatusCode != 404 {
		t.Errorf("other path: %d", r.StatusCode)
	}
}

// TestNodeTests runs the library's own tests (test/*.test.mjs) with
// node's test runner, so that go test ./... (make test, CI) runs them. A
// missing node skips locally and fails in CI.
func TestNodeTests(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("node not found in PATH (CI is set; run scripts/install-test-tools.sh)")
		}
		t.Skip("node not found in PATH; run scripts/install-test-tools.sh")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "--test", "--test-reporter=tap", "test/")
	// The hub test needs a hub (e2e/sdk_node_test.go starts one); here it
	// is skipped.
	cmd.Env = append(os.Environ(), "RTMPHUB_TEST_HUBS=")
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node --test test/: %v\n%s", err, tail(out, 200))
	}
	if !bytes.Contains(out, []byte("\n# fail 0")) || bytes.Contains(out, []byte("\n# pass 0")) {
		t.Fatalf("node test report:\n%s", tail(out, 50))
	}
}

// tail returns the last n lines of b.
func tail(b []byte, n int) []byte {
	lines := bytes.Split(b, []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return bytes.Join(lines, []byte("\n"))
}
