package main

import (
	"bufio"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// The playlists an LL-HLS player reads (draft-pantos-hls-rfc8216bis):
// only what a player that follows the live edge part by part needs.

// hlsVariant is an EXT-X-STREAM-INF of a multivariant playlist.
type hlsVariant struct {
	uri   string
	audio string // the AUDIO group, "" for none
}

// hlsRendition is an EXT-X-MEDIA of a multivariant playlist.
type hlsRendition struct {
	typ, group, uri string // uri "" when the variant's playlist carries it
	isDefault       bool
}

// hlsMultivariant is a multivariant playlist.
type hlsMultivariant struct {
	variants   []hlsVariant
	renditions []hlsRendition
}

// hlsPos is where a partial segment sits: its parent segment's media
// sequence number and its index in that segment (what _HLS_msn and
// _HLS_part name).
type hlsPos struct {
	msn  uint64
	part int
}

func (a hlsPos) before(b hlsPos) bool {
	return a.msn < b.msn || a.msn == b.msn && a.part < b.part
}

// hlsPart is an EXT-X-PART.
type hlsPart struct {
	pos         hlsPos
	uri         string
	independent bool // starts with a keyframe
	gap         bool // not available: nothing to download
}

// hlsMedia is a media playlist.
type hlsMedia struct {
	target         time.Duration // EXT-X-TARGETDURATION
	partTarget     time.Duration // EXT-X-PART-INF PART-TARGET; 0: not low-latency
	canBlockReload bool          // EXT-X-SERVER-CONTROL CAN-BLOCK-RELOAD=YES
	mapURI         string        // EXT-X-MAP, "" for none
	parts          []hlsPart     // every EXT-X-PART, in order
	// next is the position of the part after the last one listed: the
	// blocking reload to ask for (_HLS_msn, _HLS_part) to get a playlist
	// that lists one more part.
	next    hlsPos
	hint    string // EXT-X-PRELOAD-HINT TYPE=PART: the URI of that part
	endList bool
}

// isMultivariant tells a multivariant playlist from a media playlist.
func isMultivariant(text string) bool {
	return strings.Contains(text, "#EXT-X-STREAM-INF:")
}

// playlistLines returns the lines of a playlist after its #EXTM3U,
// without blank ones.
func playlistLines(text string) ([]string, error) {
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(nil, 1<<20)
	var lines []string
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			lines = append(lines, l)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(lines) == 0 || lines[0] != "#EXTM3U" {
		return nil, errors.New("playlist: no #EXTM3U first line")
	}
	return lines[1:], nil
}

// parseMultivariant parses a multivariant playlist.
func parseMultivariant(text string) (*hlsMultivariant, error) {
	lines, err := playlistLines(text)
	if err != nil {
		return nil, err
	}
	var mv hlsMultivariant
	for i := 0; i < len(lines); i++ {
		tag, val, _ := strings.Cut(lines[i], ":")
		switch tag {
		case "#EXT-X-STREAM-INF":
			attrs, err := parseAttrs(val)
			if err != nil {
				return nil, fmt.Errorf("playlist: %s: %w", tag, err)
			}
			if i+1 == len(lines) || strings.HasPrefix(lines[i+1], "#") {
				return nil, fmt.Errorf("playlist: %s without a URI line", tag)
			}
			i++
			mv.variants = append(mv.variants, hlsVariant{uri: lines[i], audio: attrs["AUDIO"]})
		case "#EXT-X-MEDIA":
			attrs, err := parseAttrs(val)
			if err != nil {
				return nil, fmt.Errorf("playlist: %s: %w", tag, err)
			}
			mv.renditions = append(mv.renditions, hlsRendition{
				typ: attrs["TYPE"], group: attrs["GROUP-ID"], uri: attrs["URI"], isDefault: attrs["DEFAULT"] == "YES",
			})
		}
	}
	if len(mv.variants) == 0 {
		return nil, errors.New("playlist: no EXT-X-STREAM-INF")
	}
	return &mv, nil
}

// mediaURIs are the media playlists a player of the first variant
// follows: the variant's, and the audio rendition's of its AUDIO group
// (the DEFAULT=YES one, else the first) when that has its own URI.
func (mv *hlsMultivariant) mediaURIs() []string {
	v := mv.variants[0]
	uris := []string{v.uri}
	if v.audio == "" {
		return uris
	}
	var pick *hlsRendition
	for i := range mv.renditions {
		r := &mv.renditions[i]
		if r.typ != "AUDIO" || r.group != v.audio {
			continue
		}
		if pick == nil || r.isDefault && !pick.isDefault {
			pick = r
		}
	}
	if pick != nil && pick.uri != "" && pick.uri != v.uri {
		uris = append(uris, pick.uri)
	}
	return uris
}

// parseMedia parses a media playlist.
func parseMedia(text string) (*hlsMedia, error) {
	var m hlsMedia
	var cur hlsPos // the segment being listed, and its parts so far
	first := true
	for text != "" {
		var l string
		l, text, _ = strings.Cut(text, "\n")
		if l = strings.TrimSpace(l); l == "" {
			continue
		}
		if first {
			if l != "#EXTM3U" {
				return nil, errors.New("playlist: no #EXTM3U first line")
			}
			first = false
			continue
		}
		if !strings.HasPrefix(l, "#") {
			// A segment's URI ends it.
			cur = hlsPos{msn: cur.msn + 1}
			continue
		}
		tag, val, _ := strings.Cut(l, ":")
		var err error
		switch tag {
		case "#EXT-X-TARGETDURATION":
			var s uint64
			s, err = strconv.ParseUint(val, 10, 32)
			m.target = time.Duration(s) * time.Second
		case "#EXT-X-MEDIA-SEQUENCE":
			cur.msn, err = strconv.ParseUint(val, 10, 64)
		case "#EXT-X-SERVER-CONTROL":
			var a map[string]string
			if a, err = parseAttrs(val); err == nil {
				m.canBlockReload = a["CAN-BLOCK-RELOAD"] == "YES"
			}
		case "#EXT-X-PART-INF":
			var a map[string]string
			if a, err = parseAttrs(val); err == nil {
				m.partTarget, err = parseSeconds(a["PART-TARGET"])
			}
		case "#EXT-X-MAP":
			var a map[string]string
			if a, err = parseAttrs(val); err == nil {
				m.mapURI = a["URI"]
			}
		case "#EXT-X-SKIP":
			// A delta update (not asked for) leaves segments out.
			var a map[string]string
			if a, err = parseAttrs(val); err == nil {
				var n uint64
				n, err = strconv.ParseUint(a["SKIPPED-SEGMENTS"], 10, 32)
				cur.msn += n
			}
		case "#EXT-X-PART":
			p := hlsPart{pos: cur}
			err = scanAttrs(val, func(name, value string) {
				switch name {
				case "URI":
					p.uri = value
				case "INDEPENDENT":
					p.independent = value == "YES"
				case "GAP":
					p.gap = value == "YES"
				}
			})
			if err == nil {
				if p.uri == "" {
					err = errors.New("no URI")
					break
				}
				m.parts = append(m.parts, p)
				cur.part++
			}
		case "#EXT-X-PRELOAD-HINT":
			var a map[string]string
			if a, err = parseAttrs(val); err == nil && a["TYPE"] == "PART" {
				m.hint = a["URI"]
			}
		case "#EXT-X-ENDLIST":
			m.endList = true
		}
		if err != nil {
			return nil, fmt.Errorf("playlist: %s: %w", l, err)
		}
	}
	if first {
		return nil, errors.New("playlist: no #EXTM3U first line")
	}
	m.next = cur
	return &m, nil
}

// parseSeconds parses a decimal-floating-point number of seconds.
func parseSeconds(s string) (time.Duration, error) {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f < 0 {
		return 0, fmt.Errorf("bad duration %q", s)
	}
	return time.Duration(f * float64(time.Second)), nil
}

// parseAttrs parses an attribute list: NAME=value pairs separated by
// commas, a value quoted when it may hold commas. Quotes are removed.
func parseAttrs(s string) (map[string]string, error) {
	attrs := make(map[string]string)
	err := scanAttrs(s, func(name, value string) { attrs[name] = value })
	if err != nil {
		return nil, err
	}
	return attrs, nil
}

// scanAttrs calls fn with each attribute of a list, as parseAttrs reads
// them, without a map (EXT-X-PART lines are most of what the players
// parse).
func scanAttrs(s string, fn func(name, value string)) error {
	for s != "" {
		name, rest, ok := strings.Cut(s, "=")
		if !ok || name == "" {
			return fmt.Errorf("bad attribute list at %q", s)
		}
		name = strings.TrimSpace(name)
		if !strings.HasPrefix(rest, `"`) {
			var v string
			v, s, _ = strings.Cut(rest, ",")
			fn(name, v)
			continue
		}
		end := strings.IndexByte(rest[1:], '"')
		if end < 0 {
			return fmt.Errorf("unterminated quoted value of %s", name)
		}
		fn(name, rest[1:1+end])
		rest = rest[2+end:]
		if rest != "" && rest[0] != ',' {
			return fmt.Errorf("junk after the quoted value of %s", name)
		}
		s = strings.TrimPrefix(rest, ",")
	}
	return nil
}
