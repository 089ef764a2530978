package tunnel

import (
	"strconv"
	"strings"
	"testing"
)

// pathCases seeds both the table test and the fuzz target. Rows named
// after a client record what that client really sends.
var pathCases = []struct {
	name string
	path string
	want rtmptRequest
	ok   bool
}{
	{"flash ident2", "/fcs/ident2", rtmptRequest{cmd: cmdIdent}, true},
	{"open as every client sends it", "/open/1", rtmptRequest{cmd: cmdOpen}, true},
	{"ffmpeg first send", "/send/AbCdEfGh12345678/0", rtmptRequest{cmd: cmdSend, sid: "AbCdEfGh12345678", seq: 0, hasSeq: true}, true},
	{"ffmpeg idle", "/idle/AbCdEfGh12345678/17", rtmptRequest{cmd: cmdIdle, sid: "AbCdEfGh12345678", seq: 17, hasSeq: true}, true},
	{"librtmp close with seq", "/close/AbCdEfGh12345678/42", rtmptRequest{cmd: cmdClose, sid: "AbCdEfGh12345678", seq: 42, hasSeq: true}, true},
	{"haishinkit close without seq", "/close/AbCdEfGh12345678", rtmptRequest{cmd: cmdClose, sid: "AbCdEfGh12345678"}, true},
	{"other servers' numeric ids", "/idle/1234567890/1", rtmptRequest{cmd: cmdIdle, sid: "1234567890", seq: 1, hasSeq: true}, true},
	{"large seq", "/idle/abc/9007199254740991", rtmptRequest{cmd: cmdIdle, sid: "abc", seq: maxSeq, hasSeq: true}, true},

	{"empty", "", rtmptRequest{}, false},
	{"root", "/", rtmptRequest{}, false},
	{"no leading slash", "idle/abc/1", rtmptRequest{}, false},
	{"unknown command", "/poll/abc/1", rtmptRequest{}, false},
	{"upper case command", "/IDLE/abc/1", rtmptRequest{}, false},
	{"idle without seq", "/idle/abc", rtmptRequest{}, false},
	{"send without seq", "/send/abc", rtmptRequest{}, false},
	{"idle trailing slash", "/idle/abc/1/", rtmptRequest{}, false},
	{"extra segment", "/idle/abc/1/2", rtmptRequest{}, false},
	{"empty sid", "/idle//1", rtmptRequest{}, false},
	{"sid with dash", "/idle/ab-cd/1", rtmptRequest{}, false},
	{"sid with dot dot", "/idle/../1", rtmptRequest{}, false},
	{"sid too long", "/idle/" + strings.Repeat("a", 65) + "/1", rtmptRequest{}, false},
	{"negative seq", "/idle/abc/-1", rtmptRequest{}, false},
	{"plus seq", "/idle/abc/+1", rtmptRequest{}, false},
	{"hex seq", "/idle/abc/0x10", rtmptRequest{}, false},
	{"seq with space", "/idle/abc/1 ", rtmptRequest{}, false},
	{"seq too large", "/idle/abc/9007199254740992", rtmptRequest{}, false},
	{"seq overflow", "/idle/abc/99999999999999999999", rtmptRequest{}, false},
	{"open without number", "/open", rtmptRequest{}, false},
	{"open with word", "/open/x", rtmptRequest{}, false},
	{"ident typo", "/fcs/ident3", rtmptRequest{}, false},
	{"close empty sid", "/close/", rtmptRequest{}, false},
	{"non-ascii sid", "/idle/abcé/1", rtmptRequest{}, false},
}

func TestParseRTMPTPath(t *testing.T) {
	for _, tc := range pathCases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseRTMPTPath(tc.path)
			if (err == nil) != tc.ok {
				t.Fatalf("parse(%q) err = %v, want ok=%v", tc.path, err, tc.ok)
			}
			if tc.ok && got != tc.want {
				t.Fatalf("parse(%q) = %+v, want %+v", tc.path, got, tc.want)
			}
		})
	}
}

// formatRTMPTPath is the inverse of parseRTMPTPath for accepted requests.
func formatRTMPTPath(r rtmptRequest) string {
	switch r.cmd {
	case cmdIdent:
		return "/fcs/ident2"
	case cmdOpen:
		return "/open/1"
	}
	p := "/" + r.cmd.String() + "/" + r.sid
	if r.hasSeq {
		p += "/" + strconv.FormatUint(r.seq, 10)
	}
	return p
}

func FuzzParseRTMPTPath(f *testing.F) {
	for _, tc := range pathCases {
		f.Add(tc.path)
	}
	f.Fuzz(func(t *testing.T, path string) {
		r, err := parseRTMPTPath(path)
		if err != nil {
			return
		}
		// Whatever is accepted is well formed and survives a round trip.
		switch r.cmd {
		case cmdIdle, cmdSend:
			if !r.hasSeq {
				t.Fatalf("%q: %v without a sequence number", path, r.cmd)
			}
			fallthrough
		case cmdClose:
			if !validSID(r.sid) {
				t.Fatalf("%q: accepted bad sid %q", path, r.sid)
			}
		case cmdIdent, cmdOpen:
		default:
			t.Fatalf("%q: unknown command %d", path, r.cmd)
		}
		if r.seq > maxSeq {
			t.Fatalf("%q: seq %d over the limit", path, r.seq)
		}
		back, err := parseRTMPTPath(formatRTMPTPath(r))
		if err != nil || back != r {
			t.Fatalf("%q: round trip gave %+v, %v; want %+v", path, back, err, r)
		}
	})
}
