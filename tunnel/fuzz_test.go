package tunnel

import (
	"bufio"
	"bytes"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

func FuzzClientIP(f *testing.F) {
	f.Add("203.0.113.1, 10.0.0.2", `for="[2001:db8::1]:80";proto=http, for=198.51.100.3`)
	f.Add("", "for=_hidden")
	f.Add("not an ip", `for="unterminated`)
	trusted, _ := ParsePrefixes("10.0.0.0/8, 127.0.0.1")
	peer := netip.MustParseAddr("127.0.0.1")
	f.Fuzz(func(t *testing.T, xff, fwd string) {
		var fwds []string
		if fwd != "" {
			fwds = []string{fwd}
		}
		ip, fromHeader := clientIP(peer, trusted, fwds, []string{xff})
		if !ip.IsValid() {
			t.Fatalf("invalid address from %q / %q", xff, fwd)
		}
		if fromHeader && !strings.Contains(xff+fwd, strings.Trim(ip.String(), "[]")) && !ip.Is4() {
			// An IPv6 address may be written differently in the header;
			// an IPv4 one must appear as is — checked below.
			return
		}
		if fromHeader && ip.Is4() && !strings.Contains(xff+fwd, ip.String()) {
			t.Fatalf("client %v is in neither header %q / %q", ip, xff, fwd)
		}
	})
}

// FuzzSessionRequests plays random sequences of /idle and /send requests
// (any order, repeats, gaps) against a session: it must never panic or
// hang, and the core must read every body whole, at most once per
// sequence number, in sequence order.
func FuzzSessionRequests(f *testing.F) {
	f.Add([]byte{1, 0, 5, 1, 1, 3, 0, 2, 0, 1, 1, 4})
	f.Add([]byte{1, 3, 2, 1, 0, 2, 1, 3, 2, 0, 1, 0})
	f.Add([]byte{0, 40, 0, 1, 2, 9, 1, 1, 9})
	f.Fuzz(func(t *testing.T, ops []byte) {
		if len(ops) > 300 {
			ops = ops[:300]
		}
		synctest.Test(t, func(t *testing.T) {
			_, ss := testSession(t, Config{HoldTime: 20 * time.Millisecond, SendLinger: -1, MaxPending: 1 << 20})
			type sent struct {
				seq uint64
				id  byte
			}
			var bodies []sent
			id := byte(0)
			for i := 0; i+2 < len(ops); i += 3 {
				cmd := cmdIdle
				if ops[i]&1 == 1 {
					cmd = cmdSend
				}
				seq := uint64(ops[i+1] % 48)
				n := int(ops[i+2]%16) + 1
				id++
				body := []byte{0}
				if cmd == cmdSend {
					body = append([]byte{id}, make([]byte, n)...)
					for j := range body {
						body[j] = id
					}
					bodies = append(bodies, sent{seq, id})
				}
				if ops[i]&2 == 2 {
					ss.Write([]byte("out")) // the core answers something
				}
				ss.exchange(nil, nil, nil, cmd, seq, body)
			}
			ss.end(errClientClosed)
			var got []byte
			buf := make([]byte, 256)
			for {
				n, err := ss.Read(buf)
				got = append(got, buf[:n]...)
				if err != nil {
					break
				}
			}
			// Runs of one id: each must be a whole body, each id once, and
			// at most one body per sequence number.
			seqOf := map[byte]uint64{}
			for _, b := range bodies {
				seqOf[b.id] = b.seq
			}
			seenID := map[byte]bool{}
			seenSeq := map[uint64]bool{}
			prev := -1
			for i := 0; i < len(got); {
				j := i
				for j < len(got) && got[j] == got[i] {
					j++
				}
				bid := got[i]
				if seenID[bid] {
					t.Fatalf("body %d read twice: %v", bid, got)
				}
				seenID[bid] = true
				if seenSeq[seqOf[bid]] {
					t.Fatalf("two bodies for seq %d: %v", seqOf[bid], got)
				}
				seenSeq[seqOf[bid]] = true
				if int(seqOf[bid]) <= prev {
					t.Fatalf("body of seq %d read after seq %d: %v", seqOf[bid], prev, got)
				}
				prev = int(seqOf[bid])
				i = j
			}
		})
	})
}

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
