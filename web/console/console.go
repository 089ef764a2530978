// Package console serves the web console of the admin port: one page of
// plain HTML, CSS and JavaScript (embedded, no build step, nothing loaded
// from elsewhere) that reads the admin JSON API of session/admin (relative
// URLs api/v1/...) and shows the server, live streams with a preview
// through the player page on the HTTP port, clients, applications and
// instances, SharedObjects and recordings.
//
// The files hold no data and are served without the admin token; the page
// asks for the token and sends it as a bearer on its API calls.
package console

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io"
	"net/http"
	"time"
)

//go:embed static
var staticFS embed.FS

// Paths the handler serves; any other is 404. The page refers to its
// assets by relative URLs (console/app.js), so the handler can also sit
// under a prefix when a proxy strips it.
const (
	PathIndex = "/"
	PathJS    = "/console/app.js"
	PathCSS   = "/console/console.css"
)

// file is one embedded file, read from the binary for each request, not
// kept (see the player's assets).
type file struct {
	name  string
	ctype string
	etag  string
}

var files = func() map[string]file {
	m := make(map[string]file)
	for p, f := range map[string]struct{ name, ctype string }{
		PathIndex: {"static/index.html", "text/html; charset=utf-8"},
		PathJS:    {"static/app.js", "text/javascript; charset=utf-8"},
		PathCSS:   {"static/console.css", "text/css; charset=utf-8"},
	} {
		b, err := staticFS.ReadFile(f.name)
		if err != nil {
			panic("console: " + err.Error())
		}
		sum := sha256.Sum256(b)
		m[p] = file{name: f.name, ctype: f.ctype, etag: `"` + hex.EncodeToString(sum[:16]) + `"`}
	}
	return m
}()

// csp allows the page its own scripts, styles and API, and frames from
// any http(s) origin: the stream previews come from the HTTP port.
const csp = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; frame-src http: https:; base-uri 'none'; form-action 'self'; frame-ancestors 'self'"

// Handler serves the console: GET / is the page (index.html), and its
// script and style sheet are /console/app.js and /console/console.css.
// It expects the full request path; mount it for "GET /{$}" and
// "GET /console/" next to the API. Any other path is 404. The files are
// revalidated on each load (no-cache with an ETag), so a new binary's
// console shows at once.
func Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f, ok := files[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		h := w.Header()
		h.Set("Content-Type", f.ctype)
		h.Set("Cache-Control", "no-cache")
		h.Set("ETag", f.etag)
		h.Set("X-Content-Type-Options", "nosniff")
		if r.URL.Path == PathIndex {
			h.Set("Content-Security-Policy", csp)
			h.Set("Referrer-Policy", "no-referrer")
			h.Set("X-Frame-Options", "SAMEORIGIN")
		}
		ef, err := staticFS.Open(f.name)
		if err != nil {
			http.NotFound(w, r)
			return
		}
		defer ef.Close()
		http.ServeContent(w, r, "", time.Time{}, ef.(io.ReadSeeker)) // an embedded file seeks
	})
}
