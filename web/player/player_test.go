package player

import (
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

func getPage(t *testing.T, target, base string) (*http.Response, string) {
	t.Helper()
	w := httptest.NewRecorder()
	Page(w, httptest.NewRequest("GET", target, nil), base)
	res := w.Result()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

// attr returns the unescaped value of attribute name in body's first
// element that has it.
func attr(t *testing.T, body, name string) string {
	t.Helper()
	m := regexp.MustCompile(`\s` + regexp.QuoteMeta(name) + `="([^"]*)"`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no %s attribute in the page:\n%s", name, body)
	}
	return html.UnescapeString(m[1])
}

func TestPageURLs(t *testing.T) {
	for _, c := range []struct {
		name, target, base string
		flv, hls, proto    string
		embed              bool
	}{
		{name: "plain", target: "/live/demo", base: "/live/demo",
			flv: "/live/demo.flv", hls: "/live/demo/index.m3u8"},
		{name: "instance", target: "/live/room1/demo", base: "/live/room1/demo",
			flv: "/live/room1/demo.flv", hls: "/live/room1/demo/index.m3u8"},
		{name: "token passed on", target: "/live/demo?token=a%2Bb%3D&expires=1700000000", base: "/live/demo",
			flv: "/live/demo.flv?token=a%2Bb%3D&expires=1700000000", hls: "/live/demo/index.m3u8?token=a%2Bb%3D&expires=1700000000"},
		{name: "proto and embed kept to the page", target: "/live/demo?proto=ws&token=t&embed=1", base: "/live/demo",
			flv: "/live/demo.flv?token=t", hls: "/live/demo/index.m3u8?token=t", proto: "ws", embed: true},
		{name: "unknown proto is the page's choice", target: "/live/demo?proto=rtsp", base: "/live/demo",
			flv: "/live/demo.flv", hls: "/live/demo/index.m3u8"},
		{name: "odd characters escaped", target: "/x", base: `/live/a b"<i>'&?#%`,
			flv: "/live/a%20b%22%3Ci%3E%27&%3F%23%25.flv", hls: "/live/a%20b%22%3Ci%3E%27&%3F%23%25/index.m3u8"},
	} {
		t.Run(c.name, func(t *testing.T) {
			res, body := getPage(t, c.target, c.base)
			if res.StatusCode != 200 {
				t.Fatalf("status %d", res.StatusCode)
			}
			if ct := res.Header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
				t.Errorf("Content-Type %q", ct)
			}
			if got := attr(t, body, "data-flv"); got != c.flv {
				t.Errorf("data-flv %q, want %q", got, c.flv)
			}
			if got := attr(t, body, "data-hls"); got != c.hls {
				t.Errorf("data-hls %q, want %q", got, c.hls)
			}
			if got := attr(t, body, "data-proto"); got != c.proto {
				t.Errorf("data-proto %q, want %q", got, c.proto)
			}
			if got := strings.Contains(body, `<body class="embed">`); got != c.embed {
				t.Errorf("embed %v, want %v", got, c.embed)
			}
			for _, bad := range []string{"<i>", `"<`, "'&"} {
				if strings.Contains(body, bad) {
					t.Errorf("page holds unescaped %q", bad)
				}
			}
			if !strings.Contains(body, "<video id=\"rtmphub-video\" muted autoplay playsinline controls>") {
				t.Error("no muted autoplay video element")
			}
		})
	}
}

func TestPageProtoLinks(t *testing.T) {
	_, body := getPage(t, "/live/demo?token=x%2By&proto=hls", "/live/demo")
	for _, want := range []string{
		`<a href="?proto=flv&amp;token=x%2By" data-proto="flv">`,
		`<a href="?proto=ws&amp;token=x%2By" data-proto="ws">`,
		`<a href="?proto=hls&amp;token=x%2By" data-proto="hls">`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("no %s in\n%s", want, body)
		}
	}
}

func TestPageAssetsLinked(t *testing.T) {
	_, body := getPage(t, "/live/demo", "/live/demo")
	for _, name := range []string{"player.css", "player.js", "vendor/mpegts.js", "vendor/hls.min.js"} {
		u := assetURL(name)
		if !strings.Contains(body, html.EscapeString(u)) && !strings.Contains(body, u) {
			t.Errorf("page does not link %s", u)
		}
	}
	if strings.Contains(body, "//cdn") || strings.Contains(body, "https://") {
		t.Error("page refers to another site")
	}
}

func TestPageMethod(t *testing.T) {
	w := httptest.NewRecorder()
	Page(w, httptest.NewRequest("POST", "/live/demo", nil), "/live/demo")
	if w.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d", w.Code)
	}
	w = httptest.NewRecorder()
	Page(w, httptest.NewRequest("HEAD", "/live/demo", nil), "/live/demo")
	if w.Code != 200 || w.Body.Len() != 0 {
		t.Errorf("HEAD: %d, %d bytes", w.Code, w.Body.Len())
	}
}

func TestAssets(t *testing.T) {
	srv := httptest.NewServer(Assets())
	defer srv.Close()
	get := func(path string, hdr ...string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest("GET", srv.URL+path, nil)
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res
	}
	for _, c := range []struct {
		path, ctype string
		minSize     int64
	}{
		{"/.rtmphub/vendor/mpegts.js", "text/javascript; charset=utf-8", 100 << 10},
		{"/.rtmphub/vendor/hls.min.js", "text/javascript; charset=utf-8", 300 << 10},
		{"/.rtmphub/player.js", "text/javascript; charset=utf-8", 1 << 10},
		{"/.rtmphub/player.css", "text/css; charset=utf-8", 1 << 10},
		{"/.rtmphub/vendor/VERSIONS", "text/plain; charset=utf-8", 100},
		{"/.rtmphub/vendor/hls.LICENSE", "text/plain; charset=utf-8", 100},
		{"/.rtmphub/vendor/mpegts.LICENSE", "text/plain; charset=utf-8", 100},
	} {
		res := get(c.path)
		if res.StatusCode != 200 {
			t.Errorf("%s: status %d", c.path, res.StatusCode)
			continue
		}
		if ct := res.Header.Get("Content-Type"); ct != c.ctype {
			t.Errorf("%s: Content-Type %q, want %q", c.path, ct, c.ctype)
		}
		if res.ContentLength < c.minSize {
			t.Errorf("%s: %d bytes", c.path, res.ContentLength)
		}
		if res.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: no nosniff", c.path)
		}
		if cc := res.Header.Get("Cache-Control"); cc != cacheUnversioned {
			t.Errorf("%s unversioned: Cache-Control %q", c.path, cc)
		}
	}

	// The page's versioned URLs are cached for good, and revalidate.
	u := assetURL("vendor/mpegts.js")
	res := get(u)
	if cc := res.Header.Get("Cache-Control"); cc != cacheImmutable {
		t.Errorf("%s: Cache-Control %q", u, cc)
	}
	if res := get(u, "If-None-Match", res.Header.Get("ETag")); res.StatusCode != http.StatusNotModified {
		t.Errorf("%s with its ETag: status %d", u, res.StatusCode)
	}
	if cc := get("/.rtmphub/vendor/mpegts.js?v=000000000000").Header.Get("Cache-Control"); cc != cacheUnversioned {
		t.Errorf("wrong version: Cache-Control %q", cc)
	}

	for _, p := range []string{
		"/.rtmphub/", "/.rtmphub/vendor", "/.rtmphub/vendor/", "/.rtmphub/nope.js",
		"/.rtmphub/vendor/mpegts.js.map", "/.rtmphub/../player.go", "/.rtmphub/static/player.js",
		"/vendor/mpegts.js", "/player.js", "/.rtmphub", "/.rtmphub/./player.js",
	} {
		if res := get(p); res.StatusCode != 404 {
			t.Errorf("%s: status %d, want 404", p, res.StatusCode)
		}
	}
}

func TestMediaQuery(t *testing.T) {
	for raw, want := range map[string]string{
		"":                              "",
		"proto=flv":                     "",
		"token=a&proto=hls&expires=2":   "?token=a&expires=2",
		"token=a%20b&&x":                "?token=a%20b&x",
		"pro%74o=ws&embed=1&sig=a+b%3D": "?sig=a+b%3D",
	} {
		if got := mediaQuery(raw); got != want {
			t.Errorf("mediaQuery(%q) = %q, want %q", raw, got, want)
		}
	}
}
