package tunnel

import (
	"bufio"
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"
)

// realRequests are requests as real RTMPT clients and proxies send them
// (see RTMPT-NOTES.md); they seed FuzzDirectRequest and FuzzParseIdlePoll.
var realRequests = []struct{ name, req string }{
	{"flash, ident2", "POST /fcs/ident2 HTTP/1.1\r\nContent-Type: application/x-fcs\r\nUser-Agent: Shockwave Flash\r\n" +
		"Host: example.com\r\nContent-Length: 1\r\nConnection: Keep-Alive\r\nCache-Control: no-cache\r\n\r\n\x00"},
	{"flash, open", "POST /open/1 HTTP/1.1\r\nContent-Type: application/x-fcs\r\nUser-Agent: Shockwave Flash\r\n" +
		"Host: example.com\r\nContent-Length: 1\r\nConnection: Keep-Alive\r\nCache-Control: no-cache\r\n\r\n\x00"},
	{"flash, idle", "POST /idle/" + fuzzSID + "/0 HTTP/1.1\r\nContent-Type: application/x-fcs\r\nUser-Agent: Shockwave Flash\r\n" +
		"Host: example.com\r\nContent-Length: 1\r\nConnection: Keep-Alive\r\nCache-Control: no-cache\r\n\r\n\x00"},
	{"ffmpeg, send with c0c1", "POST /send/" + fuzzSID + "/1 HTTP/1.1\r\nUser-Agent: Lavf/61.7.100\r\nAccept: */*\r\n" +
		"Connection: keep-alive\r\nHost: 127.0.0.1:80\r\nIcy-MetaData: 1\r\nContent-Type: application/x-fcs\r\n" +
		"Content-Length: 17\r\n\r\n\x03\x00\x00\x00\x00\x00\x00\x00\x00abcdefgh"},
	{"ffmpeg, idle", "POST /idle/" + fuzzSID + "/2 HTTP/1.1\r\nUser-Agent: Lavf/61.7.100\r\nAccept: */*\r\n" +
		"Connection: keep-alive\r\nHost: 127.0.0.1:80\r\nIcy-MetaData: 1\r\nContent-Type: application/x-fcs\r\nContent-Length: 1\r\n\r\n\x00"},
	{"librtmp, pipelined idles", "POST /idle/" + fuzzSID + "/3 HTTP/1.1\r\nHost: h:80\r\nAccept: */*\r\nUser-Agent: Shockwave Flash\r\n" +
		"Connection: Keep-Alive\r\nCache-Control: no-cache\r\nContent-type: application/x-fcs\r\nContent-length: 1\r\n\r\n\x00" +
		"POST /idle/" + fuzzSID + "/4 HTTP/1.1\r\nHost: h:80\r\nAccept: */*\r\nUser-Agent: Shockwave Flash\r\n" +
		"Connection: Keep-Alive\r\nCache-Control: no-cache\r\nContent-type: application/x-fcs\r\nContent-length: 1\r\n\r\n\x00"},
	{"haishinkit, close without seq", "POST /close/" + fuzzSID + " HTTP/1.1\r\nContent-Type: application/x-fcs\r\nContent-Length: 0\r\n\r\n"},
	{"nginx proxy", "POST /send/" + fuzzSID + "/5 HTTP/1.1\r\nX-Forwarded-For: 203.0.113.7\r\nForwarded: for=203.0.113.7\r\n" +
		"Host: backend\r\nConnection: \r\nContent-Length: 3\r\nContent-Type: application/x-fcs\r\n\r\nabc"},
	{"curl, expect", "POST /send/" + fuzzSID + "/6 HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\nabcd"},
	{"http/1.0", "POST /idle/" + fuzzSID + "/7 HTTP/1.0\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\n\x00"},
	{"chunked", "POST /send/" + fuzzSID + "/8 HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\n\r\n"},
	{"huge announced body", "POST /send/" + fuzzSID + "/9 HTTP/1.1\r\nContent-Length: 8388608\r\n\r\nabc"},
	{"bare LF inside a header", "POST /idle/" + fuzzSID + "/1 HTTP/1.1\r\nHost: x\nContent-Length: 5\r\nContent-Length: 1\r\n\r\n\x00abcd"},
}

const fuzzSID = "ABCDEFGHabcdefgh"

// FuzzDirectRequest feeds any bytes to the direct path's request reader:
// it must not panic, must allocate for a body only as its bytes come (at
// most twice what arrived, never the announced length), must keep the
// budget, and what it reads must be a consistent request.
func FuzzDirectRequest(f *testing.F) {
	for _, tc := range realRequests {
		f.Add([]byte(tc.req))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		budget := &byteBudget{max: 48 << 10}
		lim := &limits{maxBody: 64 << 10, budget: budget, headTimeout: time.Second, bodyTimeout: time.Second, minRate: 1, now: time.Now}
		var body bodyReader
		rd := bytes.NewReader(data)
		rq := requestReader{br: bufio.NewReaderSize(rd, directReadBuffer), body: &body, lim: lim}
		for range 8 {
			req, err := rq.read()
			if c := cap(body.buf); c > max(directReadBuffer, 2*len(data)) {
				t.Fatalf("a body buffer of %d bytes for %d bytes of input", c, len(data))
			}
			if u := budget.used.Load(); u < 0 || u > budget.max {
				t.Fatalf("budget used %d of %d", u, budget.max)
			}
			if err != nil {
				body.done(budget)
				break
			}
			if len(req.path) == 0 || req.path[0] != '/' || bytes.IndexByte(req.path, '?') >= 0 {
				t.Fatalf("path %q", req.path)
			}
			if len(req.body) > lim.maxBody {
				t.Fatalf("body of %d bytes over %d", len(req.body), lim.maxBody)
			}
			// Written back as a plain request, it reads the same.
			again := fmt.Sprintf("POST %s HTTP/1.1\r\nContent-Length: %d\r\n\r\n%s", req.path, len(req.body), req.body)
			var body2 bodyReader
			rq2 := requestReader{br: bufio.NewReader(strings.NewReader(again)), body: &body2, lim: &limits{
				maxBody: lim.maxBody, budget: &byteBudget{max: 1 << 20}, minRate: 1, now: time.Now}}
			req2, err := rq2.read()
			if err != nil || !bytes.Equal(req2.path, req.path) || !bytes.Equal(req2.body, req.body) {
				t.Fatalf("%q read back as %q %q (%v)", again, req2.path, req2.body, err)
			}
			body.done(budget)
			if u := budget.used.Load(); u != 0 {
				t.Fatalf("budget used %d after done", u)
			}
		}
	})
}

func TestParseIdlePoll(t *testing.T) {
	const sid = "ABCDEFGHabcdefgh"
	ok := "POST /idle/" + sid + "/42 HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nConnection: Keep-Alive\r\n\r\n\x00"
	if seq, n, good := parseIdlePoll([]byte(ok+"POST"), sid); !good || seq != 42 || n != len(ok) {
		t.Fatalf("a whole poll: %d %d %v", seq, n, good)
	}
	for _, bad := range []string{
		ok[:len(ok)-1], // no body yet
		strings.Replace(ok, "/idle/", "/send/", 1),
		strings.Replace(ok, sid, "AAAAAAAAAAAAAAAA", 1),
		strings.Replace(ok, "Content-Length: 1", "Content-Length: 2", 1),
		strings.Replace(ok, "Keep-Alive", "close", 1),
		strings.Replace(ok, "Host: x", "Expect: 100-continue", 1),
		strings.Replace(ok, "/42 ", "/4x ", 1),
		strings.Replace(ok, "HTTP/1.1", "HTTP/1.0", 1),
		strings.Replace(ok, "Content-Length: 1\r\n", "", 1),
	} {
		if _, _, good := parseIdlePoll([]byte(bad), sid); good {
			t.Errorf("taken: %q", bad)
		}
		// The cache of a connection whose last poll was ok takes no
		// more than the parser does.
		var c idlePollCache
		if _, _, good := c.parse([]byte(ok), sid); !good {
			t.Fatal("cache: ok not taken")
		}
		if _, _, good := c.parse([]byte(bad), sid); good {
			t.Errorf("cache took: %q", bad)
		}
	}
	var c idlePollCache
	for _, tc := range []struct {
		req string
		seq uint64
	}{
		{ok, 42},
		{strings.Replace(ok, "/42 ", "/43 ", 1), 43}, // the same header block
		{strings.Replace(ok, "/42 ", "/1234567 ", 1), 1234567},
		{strings.Replace(ok, "Host: x", "Host: yy", 1), 42}, // another one, parsed
		{strings.Replace(ok, "Host: x", "Host: yy", 1), 42},
	} {
		seq, n, good := c.parse([]byte(tc.req+"POST"), sid)
		if !good || seq != tc.seq || n != len(tc.req) {
			t.Errorf("cache: %q: %d %d %v", tc.req, seq, n, good)
		}
	}
}

// FuzzParseIdlePoll checks the writer's poll parser against the
// connection's request reader: a poll it takes must be one whole request
// that the reader reads the same way (same path, a one-byte body, kept
// alive) and that ends where the parser says.
func FuzzParseIdlePoll(f *testing.F) {
	for _, tc := range realRequests {
		f.Add([]byte(tc.req))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 1024 { // the writer reads at most this much at once
			data = data[:1024]
		}
		seq, n, ok := parseIdlePoll(data, fuzzSID)
		// The writers' cache, warmed by the same bytes (its fast path
		// then), takes what the parser takes.
		var c idlePollCache
		c.parse(data, fuzzSID)
		if cseq, cn, cok := c.parse(data, fuzzSID); cok != ok || ok && (cseq != seq || cn != n) {
			t.Fatalf("%q: cache %d %d %v, parser %d %d %v", data, cseq, cn, cok, seq, n, ok)
		}
		if !ok {
			return
		}
		if n > len(data) {
			t.Fatalf("took %d of %d bytes", n, len(data))
		}
		var body bodyReader
		rd := bytes.NewReader(data[:n])
		br := bufio.NewReaderSize(rd, directReadBuffer)
		rq := requestReader{br: br, body: &body, lim: &limits{maxBody: 1 << 20, budget: &byteBudget{max: 1 << 20}, minRate: 1, now: time.Now}}
		req, err := rq.read()
		if err != nil {
			t.Fatalf("poll %q (seq %d) taken, but the reader says %v", data[:n], seq, err)
		}
		r, perr := parseRTMPTPath(string(req.path))
		if !req.post || req.close || len(req.body) != 1 || perr != nil || r.cmd != cmdIdle || r.sid != fuzzSID || r.seq != seq {
			t.Fatalf("poll %q (seq %d) read as post %v close %v path %q body %q (%+v, %v)", data[:n], seq, req.post, req.close, req.path, req.body, r, perr)
		}
		if left := br.Buffered() + rd.Len(); left != 0 {
			t.Fatalf("poll %q: the reader left %d bytes of it", data[:n], left)
		}
	})
}
