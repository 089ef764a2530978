package web_test

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rtmphub/rtmphub/web"
)

// frontEnd makes a data folder with a chat application that has a front
// end, and things around it that must never be served.
func frontEnd(t *testing.T) string {
	t.Helper()
	data := t.TempDir()
	write := func(name, body string) {
		t.Helper()
		p := filepath.Join(data, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	link := func(target, name string) {
		t.Helper()
		if err := os.Symlink(target, filepath.Join(data, filepath.FromSlash(name))); err != nil {
			t.Fatal(err)
		}
	}
	write("chat/main.asc", "SECRET-script")
	write("chat/public/index.html", "<!doctype html><title>chat index</title>")
	write("chat/public/chat.js", "export const chat = 1;")
	write("chat/public/style.css", "body{}")
	write("chat/public/x.flv", "not a stream")
	write("chat/public/help/index.html", "help index")
	write("chat/public/img/logo.svg", "<svg xmlns='http://www.w3.org/2000/svg'/>")
	write("chat/public/.env", "SECRET-dotfile")
	write("other/public/index.html", "other index")
	write("outside.txt", "SECRET-outside")
	link("../main.asc", "chat/public/script.js")                    // up into the application
	link(filepath.Join(data, "outside.txt"), "chat/public/abs.txt") // absolute, out
	link("chat.js", "chat/public/alias.js")                         // stays inside: fine
	link("../../other/public", "chat/public/otherapp")              // a folder link out
	return data
}

func get(t *testing.T, method, url string, hdr ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestFrontEndFiles(t *testing.T) {
	data := frontEnd(t)
	_, base, _ := start(t, plain, web.Config{DataDir: data})
	for _, tc := range []struct {
		method, path string
		status       int
		ctype, body  string // prefix of the Content-Type; body ""= not checked
		location     string
	}{
		{"GET", "/chat/", 200, "text/html", "<!doctype html><title>chat index</title>", ""},
		{"GET", "/chat/index.html", 200, "text/html", "<!doctype html><title>chat index</title>", ""},
		{"GET", "/chat", 301, "", "", "/chat/"},
		{"GET", "/chat?room=a", 301, "", "", "/chat/?room=a"},
		{"GET", "/chat/chat.js", 200, "text/javascript", "export const chat = 1;", ""},
		{"GET", "/chat/alias.js", 200, "text/javascript", "export const chat = 1;", ""},
		{"GET", "/chat/style.css", 200, "text/css", "body{}", ""},
		{"GET", "/chat/img/logo.svg", 200, "image/svg+xml", "", ""},
		{"HEAD", "/chat/chat.js", 200, "text/javascript", "", ""},
		{"GET", "/chat/help", 301, "", "", "/chat/help/"},
		{"GET", "/chat/help/", 200, "text/html", "help index", ""},
		{"GET", "/chat/x.flv", 404, "", "", ""}, // media paths are streams, never files (no stream x here)
		{"GET", "/other/", 200, "text/html", "other index", ""},
		{"POST", "/chat/chat.js", 405, "", "", ""},
		{"PUT", "/chat/", 405, "", "", ""},
		// Not files: the other routes answer, as without a front end.
		{"GET", "/chat/nothing.flv", 404, "", "", ""},
		{"GET", "/nofrontend/", 404, "", "", ""},
		{"GET", "/-bad/", 404, "", "", ""},
	} {
		resp, body := get(t, tc.method, base+tc.path)
		if resp.StatusCode != tc.status {
			t.Errorf("%s %s: %d, want %d", tc.method, tc.path, resp.StatusCode, tc.status)
			continue
		}
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, tc.ctype) {
			t.Errorf("%s %s: Content-Type %q, want %q", tc.method, tc.path, ct, tc.ctype)
		}
		if tc.body != "" && body != tc.body {
			t.Errorf("%s %s: body %q, want %q", tc.method, tc.path, body, tc.body)
		}
		if tc.method == "HEAD" && (body != "" || resp.Header.Get("Content-Length") != "22") {
			t.Errorf("HEAD %s: body %q, Content-Length %q", tc.path, body, resp.Header.Get("Content-Length"))
		}
		if loc := resp.Header.Get("Location"); loc != tc.location {
			t.Errorf("%s %s: Location %q, want %q", tc.method, tc.path, loc, tc.location)
		}
		if tc.status == 200 && tc.method == "GET" && resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s %s: no nosniff", tc.method, tc.path)
		}
	}
}

// TestFrontEndCaching: a file has validators, and a browser's copy is
// confirmed with a 304.
func TestFrontEndCaching(t *testing.T) {
	data := frontEnd(t)
	_, base, _ := start(t, plain, web.Config{DataDir: data})
	resp, _ := get(t, "GET", base+"/chat/chat.js")
	etag, lm := resp.Header.Get("ETag"), resp.Header.Get("Last-Modified")
	if etag == "" || lm == "" || resp.Header.Get("Cache-Control") != "no-cache" {
		t.Fatalf("ETag %q, Last-Modified %q, Cache-Control %q", etag, lm, resp.Header.Get("Cache-Control"))
	}
	if resp, body := get(t, "GET", base+"/chat/chat.js", "If-None-Match", etag); resp.StatusCode != 304 || body != "" {
		t.Errorf("If-None-Match: %d %q, want 304", resp.StatusCode, body)
	}
	if resp, _ := get(t, "GET", base+"/chat/chat.js", "If-Modified-Since", lm); resp.StatusCode != 304 {
		t.Errorf("If-Modified-Since: %d, want 304", resp.StatusCode)
	}
	// An edit changes the validator: the browser gets the new file.
	if err := os.WriteFile(filepath.Join(data, "chat/public/chat.js"), []byte("export const chat = 22;"), 0o644); err != nil {
		t.Fatal(err)
	}
	if resp, body := get(t, "GET", base+"/chat/chat.js", "If-None-Match", etag); resp.StatusCode != 200 || body != "export const chat = 22;" {
		t.Errorf("after an edit: %d %q, want the new file", resp.StatusCode, body)
	}
}

// TestFrontEndEscapes: nothing outside public/ is served, whatever the
// path or the links in the folder; folders are not listed. Such paths
// fall through to the other routes (the player page answers 200 for
// /<app>/<name>), so what is checked is that no secret comes back.
func TestFrontEndEscapes(t *testing.T) {
	data := frontEnd(t)
	_, base, _ := start(t, plain, web.Config{DataDir: data})
	for _, p := range []string{
		"/chat/../chat/main.asc",
		"/chat/%2e%2e/main.asc",
		"/chat/..%2fmain.asc",
		"/chat/public/../main.asc",
		"/chat/script.js", // a link up to main.asc
		"/chat/abs.txt",   // a link to a file outside the data folder
		"/chat/otherapp/index.html",
		"/chat/otherapp/",
		"/chat/.env",
		"/chat/img/",
		"/chat/img",
		"/chat//main.asc",
		"/chat/%5c..%5cmain.asc",
		"/outside.txt",
		"/chat/help/../../main.asc",
	} {
		for _, m := range []string{"GET", "HEAD"} {
			resp, body := get(t, m, base+p)
			if strings.Contains(body, "SECRET") || strings.Contains(body, "logo.svg") || strings.Contains(body, "other index") {
				t.Errorf("%s %s: %d served %q", m, p, resp.StatusCode, body)
			}
			if resp.StatusCode == 200 && resp.Header.Get("ETag") != "" {
				t.Errorf("%s %s: served as a front end file (ETag %s)", m, p, resp.Header.Get("ETag"))
			}
		}
	}
}
