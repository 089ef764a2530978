// Package player serves the browser player of a live stream: a page that
// plays HTTP-FLV or WebSocket-FLV through mpegts.js, or LL-HLS through
// hls.js (or the browser's own HLS), and the static files it needs. The
// players are embedded (static/vendor, fetched by
// scripts/update-web-vendor.sh); the page loads nothing from elsewhere.
//
// The package does no routing of media: the caller serves base+".flv"
// (fetch streaming and WebSocket), base+"/index.m3u8", calls Page for base
// itself and mounts Assets at Prefix.
package player

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"html/template"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Prefix is the path the static files are served under. Assets expects
// the full request path, prefix included (mount it as
// mux.Handle(player.Prefix, player.Assets())).
const Prefix = "/.rtmphub/"

//go:embed static
var staticFS embed.FS

//go:embed templates/page.html
var pageHTML string

var pageTmpl = template.Must(template.New("page").Parse(pageHTML))

// playerParams are the page's own query parameters: they choose how the
// page plays and are not passed on to the media URLs. Every other
// parameter (token=, expires=, ...) is.
var playerParams = map[string]bool{"proto": true, "embed": true}

// protos are the values of the proto parameter, in the order the page
// offers them.
var protos = []struct{ name, label string }{
	{"flv", "HTTP-FLV"},
	{"ws", "WS-FLV"},
	{"hls", "LL-HLS"},
}

type protoLink struct {
	Name, Label, Href string
}

type pageData struct {
	Name     string // base without its leading slash, for the title
	FLV, HLS string // media URLs (paths with the query), same origin
	Proto    string // the proto asked for, "" for the page's choice
	Embed    bool
	Protos   []protoLink
	CSS, JS  string
	Mpegts   string
	HlsJS    string
}

// Page writes the player page for one stream. base is the path of the
// stream without extension, e.g. "/live/demo" or "/live/room1/demo"
// (already validated; each segment is escaped here). The page plays
//
//	base+".flv"            proto=flv (HTTP-FLV, fetch streaming)
//	ws(s)://host+base+".flv" proto=ws (WebSocket-FLV)
//	base+"/index.m3u8"     proto=hls (LL-HLS: hls.js, or native HLS)
//
// and passes the page's own query string on to each media URL, less the
// page's parameters proto= and embed=. Without proto= it chooses: HTTP-FLV
// where the browser has MSE and streaming fetch, else native HLS, else
// hls.js. embed=1 drops the header, for an <iframe>.
func Page(w http.ResponseWriter, r *http.Request, base string) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	q := r.URL.Query()
	d := pageData{
		Name:   strings.TrimPrefix(base, "/"),
		Embed:  q.Get("embed") != "" && q.Get("embed") != "0",
		CSS:    assetURL("player.css"),
		JS:     assetURL("player.js"),
		Mpegts: assetURL("vendor/mpegts.js"),
		HlsJS:  assetURL("vendor/hls.min.js"),
	}
	p := escapePath(base)
	mq := mediaQuery(r.URL.RawQuery)
	d.FLV = p + ".flv" + mq
	d.HLS = p + "/index.m3u8" + mq
	for _, pr := range protos {
		if q.Get("proto") == pr.name {
			d.Proto = pr.name
		}
		v := withParam(r.URL.RawQuery, "proto", pr.name)
		d.Protos = append(d.Protos, protoLink{Name: pr.name, Label: pr.label, Href: "?" + v})
	}

	var buf bytes.Buffer
	if err := pageTmpl.Execute(&buf, d); err != nil {
		http.Error(w, "player page: "+err.Error(), http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	// Same-origin media only; blob: for MediaSource objects and hls.js's
	// worker. Framing stays allowed: the web console previews streams in
	// an <iframe> served from the admin port.
	h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; "+
		"img-src 'self' data:; media-src 'self' blob: mediastream:; connect-src 'self' ws: wss:; "+
		"worker-src 'self' blob:; base-uri 'none'; form-action 'none'")
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		w.Write(buf.Bytes())
	}
}

// escapePath escapes each segment of p, keeping its slashes.
func escapePath(p string) string {
	segs := strings.Split(p, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return strings.Join(segs, "/")
}

// mediaQuery is raw without the page's own parameters, with its "?", or
// "" when nothing is left. It keeps the other parameters byte for byte (a
// signed token must arrive as it was signed).
func mediaQuery(raw string) string {
	var keep []string
	for _, kv := range strings.Split(raw, "&") {
		if kv == "" {
			continue
		}
		k, _, _ := strings.Cut(kv, "=")
		if uk, err := url.QueryUnescape(k); err == nil && playerParams[uk] {
			continue
		}
		keep = append(keep, kv)
	}
	if len(keep) == 0 {
		return ""
	}
	return "?" + strings.Join(keep, "&")
}

// withParam is raw with parameter key set to value (in place of any it
// had), the rest byte for byte.
func withParam(raw, key, value string) string {
	out := []string{url.QueryEscape(key) + "=" + url.QueryEscape(value)}
	for _, kv := range strings.Split(raw, "&") {
		if kv == "" {
			continue
		}
		k, _, _ := strings.Cut(kv, "=")
		if uk, err := url.QueryUnescape(k); err == nil && uk == key {
			continue
		}
		out = append(out, kv)
	}
	return strings.Join(out, "&")
}

// asset is one embedded static file. Its bytes are read from the binary
// for each request, not kept: copies of the files (880 KB) were a third of
// an idle hub's live heap, and the GC lets the heap grow to twice that.
type asset struct {
	name  string // under static/
	ctype string
	etag  string // quoted, from the content's sha256
	ver   string // the first 12 hex digits of the sha256: the ?v= of its URL
}

var (
	assetsOnce sync.Once
	assets     map[string]*asset // by path under static/, e.g. "vendor/hls.min.js"
	assetFS    fs.FS             // static/
)

func loadAssets() {
	assets = make(map[string]*asset)
	sub, _ := fs.Sub(staticFS, "static")
	assetFS = sub
	fs.WalkDir(sub, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(sub, p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		h := hex.EncodeToString(sum[:])
		assets[p] = &asset{name: p, ctype: contentType(p), etag: `"` + h[:32] + `"`, ver: h[:12]}
		return nil
	})
}

func contentType(p string) string {
	switch path.Ext(p) {
	case ".js", ".mjs":
		return "text/javascript; charset=utf-8"
	case ".css":
		return "text/css; charset=utf-8"
	case ".html":
		return "text/html; charset=utf-8"
	case ".svg":
		return "image/svg+xml"
	case ".png":
		return "image/png"
	case ".json":
		return "application/json"
	}
	return "text/plain; charset=utf-8" // LICENSE files, VERSIONS
}

// assetURL is the URL of static file name, versioned by its content so
// that it can be cached for good.
func assetURL(name string) string {
	assetsOnce.Do(loadAssets)
	a := assets[name]
	if a == nil {
		panic("player: no embedded file " + name)
	}
	return Prefix + name + "?v=" + a.ver
}

// How long a versioned URL is cached: its content never
// changes under that URL. An unversioned request (someone's bookmark, a
// stale page) gets an hour and revalidates by ETag.
const (
	cacheImmutable   = "public, max-age=31536000, immutable"
	cacheUnversioned = "public, max-age=3600"
)

// Assets serves the embedded static files (player.js, player.css, the
// vendored mpegts.js and hls.js and their licenses) under Prefix. It takes
// the full request path, Prefix included; anything else, a directory or an
// unknown name is 404 (there is no listing). A URL whose ?v= matches the
// file's content (as the page writes them) is cacheable for a year.
func Assets() http.Handler {
	assetsOnce.Do(loadAssets)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name, ok := strings.CutPrefix(r.URL.Path, Prefix)
		a := assets[name]
		if !ok || a == nil {
			http.NotFound(w, r)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		h := w.Header()
		h.Set("Content-Type", a.ctype)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("ETag", a.etag)
		// Served to the console's preview iframe and to pages on other
		// origins that embed the player script: the files hold no data.
		h.Set("Access-Control-Allow-Origin", "*")
		if r.URL.Query().Get("v") == a.ver {
			h.Set("Cache-Control", cacheImmutable)
		} else {
			h.Set("Cache-Control", cacheUnversioned)
		}
		serveEmbedded(w, r, assetFS, a.name)
	})
}

// serveEmbedded serves the embedded file name of fsys, read in place: an
// embedded file is a seeker over the binary's data.
func serveEmbedded(w http.ResponseWriter, r *http.Request, fsys fs.FS, name string) {
	f, err := fsys.Open(name)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	defer f.Close()
	rs, ok := f.(io.ReadSeeker)
	if !ok {
		http.NotFound(w, r)
		return
	}
	http.ServeContent(w, r, "", time.Time{}, rs)
}
