package web

import (
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/rtmphub/rtmphub/session"
)

// Application front ends: the files of <DataDir>/<app>/public/ are served
// at /<app>/, so an application's HTML5 client lives next to its main.asc
// and reaches the hub on the page's own origin (no CORS, no second
// server). The rules:
//
//   - only a regular file that exists there answers; any other path falls
//     through to the stream routes (the player page of /<app>/<stream>),
//     so a front end can shadow a route only with a file; media paths
//     (*.flv, the HLS playlists and segments) are always streams and are
//     never looked up here;
//   - /<app>/ and any /<app>/<dir>/ serve that folder's index.html; a
//     folder named without its slash is redirected to it (the page's
//     relative links need it); folders are never listed;
//   - GET and HEAD only (405 otherwise, for a file that exists);
//   - the application's name follows the RTMP rules (so StrictApps holds
//     as well: a public folder is inside the application's folder), and no
//     path element may start with a dot (.git, .env, ..);
//   - a symbolic link is followed only while it stays inside public/
//     (os.Root), so a link or a "../" cannot reach the rest of the data
//     folder (main.asc, recordings, SharedObject files) or the system.

// publicDir is the folder under an application's that is served.
const publicDir = "public"

// servePublic answers r from the application's public folder and reports
// whether it did; false leaves r to the other routes, having written
// nothing.
func (h *Handler) servePublic(w http.ResponseWriter, r *http.Request) bool {
	app, rel, ok := publicPath(r.URL.Path)
	if !ok {
		return false
	}
	root, err := os.OpenRoot(filepath.Join(h.cfg.DataDir, app, publicDir))
	if err != nil {
		return false // no front end for this application
	}
	defer root.Close()
	name := rel
	if name == "" || strings.HasSuffix(name, "/") {
		name += "index.html"
	}
	f, err := root.Open(name)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			// An escaping link, a file it may not read: not served,
			// and worth a line for whoever set the folder up.
			h.log.Debug("front end file not served", "app", app, "path", rel, "err", err)
		}
		return false
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return false
	}
	if fi.IsDir() {
		// /<app>/dir: the folder's index.html, through its slash.
		if rel != "" {
			if ix, err := root.Stat(path.Join(rel, "index.html")); err == nil && ix.Mode().IsRegular() {
				if !allowGet(w, r) {
					return true
				}
				u := *r.URL
				u.Path += "/"
				http.Redirect(w, r, u.RequestURI(), http.StatusMovedPermanently)
				return true
			}
		}
		return false
	}
	if !fi.Mode().IsRegular() {
		return false
	}
	if rel == "" && !strings.HasSuffix(r.URL.Path, "/") {
		// /<app> with index.html: the page's relative links (chat.js)
		// resolve against /<app>/.
		if !allowGet(w, r) {
			return true
		}
		u := *r.URL
		u.Path += "/"
		http.Redirect(w, r, u.RequestURI(), http.StatusMovedPermanently)
		return true
	}
	if !allowGet(w, r) {
		return true
	}
	hd := w.Header()
	// A weak validator from what ServeContent's Last-Modified also uses;
	// the size catches an edit within the same second.
	hd.Set("ETag", fmt.Sprintf(`W/"%x-%x"`, fi.ModTime().UnixNano(), fi.Size()))
	// Front ends are edited in place: the browser may keep a copy but
	// asks again (a 304 costs one round trip) so a fix reaches every page.
	hd.Set("Cache-Control", "no-cache")
	hd.Set("X-Content-Type-Options", "nosniff")
	http.ServeContent(w, r, path.Base(name), fi.ModTime(), f)
	return true
}

// allowGet answers 405 to anything but GET and HEAD.
func allowGet(w http.ResponseWriter, r *http.Request) bool {
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return true
	}
	w.Header().Set("Allow", "GET, HEAD")
	http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	return false
}

// publicPath splits a request path into the application and the path
// inside its public folder ("" for the folder itself, a trailing slash
// kept); false for a path no front end file can have.
func publicPath(p string) (app, rel string, ok bool) {
	p, found := strings.CutPrefix(p, "/")
	if !found || strings.ContainsAny(p, "\x00\\") {
		return "", "", false
	}
	app, rel, _ = strings.Cut(p, "/")
	if !session.ValidAppName(app) {
		return "", "", false
	}
	if rel == "" {
		return app, "", true
	}
	for i, e := range strings.Split(rel, "/") {
		if e == "" && i == strings.Count(rel, "/") {
			break // the trailing slash of a folder
		}
		if e == "" || strings.HasPrefix(e, ".") {
			return "", "", false
		}
	}
	return app, rel, true
}
