// Package sdk serves the JavaScript client library, rtmphub.js: an ES
// module with the FMS client API (NetConnection, SharedObject, NetStream)
// speaking RTMP through a WebSocket to the hub's /rtmp endpoint. The file
// is embedded, so the library a hub serves always matches its server.
package sdk

import (
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"net/http"
	"strconv"
	"strings"
)

// Path is where the library is served.
const Path = "/sdk/rtmphub.js"

//go:embed rtmphub.js
var source []byte

// etag is a strong validator of the embedded file: it changes exactly
// when the file does, so a browser revalidates with If-None-Match and
// gets 304 until the hub is upgraded.
var etag = func() string {
	sum := sha256.Sum256(source)
	return `"` + hex.EncodeToString(sum[:12]) + `"`
}()

// Source returns the library's text.
func Source() []byte { return source }

// Handler serves Path: GET and HEAD (and the OPTIONS of a CORS
// preflight). Any page may load it (Access-Control-Allow-Origin: *): it
// is public code, and a module script from another origin needs CORS.
func Handler() http.Handler { return http.HandlerFunc(serve) }

func serve(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", "*")
	if r.URL.Path != Path {
		http.NotFound(w, r)
		return
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
	case http.MethodOptions:
		h.Set("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS")
		w.WriteHeader(http.StatusNoContent)
		return
	default:
		h.Set("Allow", "GET, HEAD, OPTIONS")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	h.Set("Content-Type", "text/javascript; charset=utf-8")
	h.Set("ETag", etag)
	// Revalidate every time: cheap with the ETag, and a hub upgrade is
	// seen at once.
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Content-Type-Options", "nosniff")
	if match(r.Header.Get("If-None-Match")) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	// ServeContent would add Range support and Last-Modified; the module
	// is small and always sent whole.
	h.Set("Content-Length", strconv.Itoa(len(source)))
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		w.Write(source)
	}
}

// match reports whether an If-None-Match header names the current ETag
// (or is "*"). Weak comparison, as RFC 9110 asks for If-None-Match.
func match(header string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimSpace(t)
		if t == "*" || strings.TrimPrefix(t, "W/") == etag {
			return true
		}
	}
	return false
}
