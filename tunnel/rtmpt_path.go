package tunnel

import (
	"errors"
	"strconv"
	"strings"
)

// rtmptCmd is the command of an RTMPT request, the first path segment.
type rtmptCmd uint8

const (
	cmdIdent rtmptCmd = iota + 1 // /fcs/ident2
	cmdOpen                      // /open/<n>
	cmdIdle                      // /idle/<sid>/<seq>
	cmdSend                      // /send/<sid>/<seq>
	cmdClose                     // /close/<sid>[/<seq>]
)

func (c rtmptCmd) String() string {
	switch c {
	case cmdIdent:
		return "ident"
	case cmdOpen:
		return "open"
	case cmdIdle:
		return "idle"
	case cmdSend:
		return "send"
	case cmdClose:
		return "close"
	}
	return "unknown"
}

// rtmptRequest is a parsed RTMPT request path.
type rtmptRequest struct {
	cmd    rtmptCmd
	sid    string // idle, send, close
	seq    uint64 // idle, send, close with a sequence number
	hasSeq bool
}

// Limits of the path grammar. Session ids this server hands out are
// sidLen characters; longer ones are refused before any lookup, and
// sequence numbers stay within what every client's integer holds.
const (
	maxSIDLen = 64
	maxSeq    = 1<<53 - 1
)

var errBadPath = errors.New("rtmpt: malformed request path")

// parseRTMPTPath parses the path of an RTMPT request. It accepts exactly
// the forms clients send: /fcs/ident2, /open/<n>, /idle/<sid>/<seq>,
// /send/<sid>/<seq>, /close/<sid> and /close/<sid>/<seq>, where sid is
// 1 to 64 characters [A-Za-z0-9] and numbers are plain decimal.
func parseRTMPTPath(path string) (rtmptRequest, error) {
	rest, ok := strings.CutPrefix(path, "/")
	if !ok {
		return rtmptRequest{}, errBadPath
	}
	cmd, rest, _ := strings.Cut(rest, "/")
	var r rtmptRequest
	switch cmd {
	case "fcs":
		if rest != "ident2" && rest != "ident" {
			return r, errBadPath
		}
		r.cmd = cmdIdent
		return r, nil
	case "open":
		if _, ok := parseSeq(rest); !ok {
			return r, errBadPath
		}
		r.cmd = cmdOpen
		return r, nil
	case "idle":
		r.cmd = cmdIdle
	case "send":
		r.cmd = cmdSend
	case "close":
		r.cmd = cmdClose
	default:
		return r, errBadPath
	}
	sid, seq, hasSeq := strings.Cut(rest, "/")
	if !validSID(sid) {
		return rtmptRequest{}, errBadPath
	}
	r.sid = sid
	if !hasSeq {
		if r.cmd != cmdClose { // only close may omit the sequence
			return rtmptRequest{}, errBadPath
		}
		return r, nil
	}
	n, ok := parseSeq(seq)
	if !ok {
		return rtmptRequest{}, errBadPath
	}
	r.seq, r.hasSeq = n, true
	return r, nil
}

// parseSeq parses a plain decimal number (no sign, no spaces) up to maxSeq.
func parseSeq(s string) (uint64, bool) {
	if s == "" || len(s) > 16 {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n > maxSeq {
		return 0, false
	}
	return n, true
}

func validSID(s string) bool {
	if s == "" || len(s) > maxSIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isAlnum(s[i]) {
			return false
		}
	}
	return true
}

func isAlnum(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

// IsRTMPTPath reports whether path is one of RTMPT's requests (/open/1,
// /idle/<id>/<seq>, ...): a server that serves other HTTP beside RTMPT
// answers it 405 to any method but POST, as RTMPT does.
func IsRTMPTPath(path string) bool {
	_, err := parseRTMPTPath(path)
	return err == nil
}
