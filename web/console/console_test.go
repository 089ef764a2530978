package console

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestHandler(t *testing.T) {
	srv := httptest.NewServer(Handler())
	defer srv.Close()
	get := func(method, path string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, nil)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		return res, string(b)
	}

	for _, c := range []struct {
		path, ctype, holds string
	}{
		{"/", "text/html; charset=utf-8", `<script type="module" src="console/app.js">`},
		{"/console/app.js", "text/javascript; charset=utf-8", "api/v1/"},
		{"/console/console.css", "text/css; charset=utf-8", "table.grid"},
	} {
		res, body := get("GET", c.path)
		if res.StatusCode != 200 {
			t.Errorf("%s: status %d", c.path, res.StatusCode)
			continue
		}
		if ct := res.Header.Get("Content-Type"); ct != c.ctype {
			t.Errorf("%s: Content-Type %q, want %q", c.path, ct, c.ctype)
		}
		if !strings.Contains(body, c.holds) {
			t.Errorf("%s does not hold %q", c.path, c.holds)
		}
		if res.Header.Get("X-Content-Type-Options") != "nosniff" || res.Header.Get("ETag") == "" {
			t.Errorf("%s: headers %v", c.path, res.Header)
		}
	}

	// The page refers to nothing outside the handler.
	_, page := get("GET", "/")
	for _, ref := range []string{`href="console/console.css"`, `src="console/app.js"`} {
		if !strings.Contains(page, ref) {
			t.Errorf("page lacks %s", ref)
		}
	}
	for _, bad := range []string{"http://", "https://", "//cdn", "fonts."} {
		if strings.Contains(page, bad) {
			t.Errorf("page refers to %q", bad)
		}
	}

	for _, p := range []string{"/index.html", "/console/", "/console", "/console/nope.js", "/static/app.js",
		"/app.js", "/console/../console/app.js", "/api/v1/server", "/favicon.ico"} {
		if res, _ := get("GET", p); res.StatusCode != 404 {
			t.Errorf("%s: status %d, want 404", p, res.StatusCode)
		}
	}
	if res, _ := get("POST", "/"); res.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /: status %d", res.StatusCode)
	}
	if res, body := get("HEAD", "/console/app.js"); res.StatusCode != 200 || body != "" {
		t.Errorf("HEAD: status %d, %d bytes", res.StatusCode, len(body))
	}
}
