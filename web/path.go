package web

import (
	"path"
	"strings"

	"github.com/rtmphub/rtmphub/web/player"
)

// What a request path names on the HTTP port:
//
//	/<app>[/<instance>]/<stream>.flv          HTTP-FLV, or WebSocket-FLV when upgraded
//	/<app>[/<instance>]/<stream>/index.m3u8   LL-HLS playlist, and the files it lists
//	/<app>[/<instance>]/<stream>              the player page
//	/.rtmphub/...                             the page's scripts
//
// A file of the application's front end (<data>/<app>/public/, public.go)
// answers before any of these.
//
// The first element is the application, the last the stream (for HLS, the
// one before the file), and what lies between the instance (_definst_ when
// nothing does), as in an RTMP URL. A stream whose name has a slash cannot
// be named this way.
type target struct {
	kind     kind
	app      string
	instance string
	stream   string
	file     string // HLS: the file asked for
	base     string // the page: the stream's path, without extension
}

type kind int

const (
	kindNone kind = iota
	kindFLV
	kindHLS
	kindPage
	kindAsset
)

// assetPrefix starts the paths of the page's scripts; no application can
// be called ".rtmphub" (names start with a letter, digit or underscore).
const assetPrefix = player.Prefix

// hlsExts are the extensions of the files an HLS muxer serves.
var hlsExts = map[string]bool{".m3u8": true, ".mp4": true, ".m4s": true, ".ts": true}

// parseTarget reads what p names; kindNone for nothing.
func parseTarget(p string) target {
	if strings.HasPrefix(p, assetPrefix) {
		return target{kind: kindAsset}
	}
	if strings.Contains(p, "//") || strings.Contains(p, "\x00") {
		return target{}
	}
	elems := strings.Split(strings.Trim(p, "/"), "/")
	for _, e := range elems {
		if e == "" || e == "." || e == ".." {
			return target{}
		}
	}
	last := elems[len(elems)-1]
	switch {
	case strings.HasSuffix(last, ".flv") && len(last) > len(".flv") && len(elems) >= 2:
		return target{kind: kindFLV, app: elems[0], instance: strings.Join(elems[1:len(elems)-1], "/"),
			stream: strings.TrimSuffix(last, ".flv")}
	case hlsExts[path.Ext(last)] && len(elems) >= 3:
		return target{kind: kindHLS, app: elems[0], instance: strings.Join(elems[1:len(elems)-2], "/"),
			stream: elems[len(elems)-2], file: last}
	case len(elems) >= 2 && !hlsExts[path.Ext(last)]:
		return target{kind: kindPage, app: elems[0], instance: strings.Join(elems[1:len(elems)-1], "/"),
			stream: last, base: "/" + strings.Join(elems, "/")}
	}
	return target{}
}

// key names the stream of t, instance included.
func (t target) key() string {
	inst := t.instance
	if inst == "" {
		inst = "_definst_"
	}
	return t.app + "/" + inst + "/" + t.stream
}
