package tunnel

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"
)

// RTMPT's own HTTP/1.x request reader, for connections served directly
// (rtmpt_direct.go), and the writer's fast parser of an idle poll
// (parseIdlePoll, for the hand-off). The reader applies the bounds on
// bodies and request times of limits.go, shared with the fasthttp path.
//
// The requests this server reads are the ones RTMPT clients and reverse
// proxies send: HTTP/1.x with a Content-Length body (a chunked body is
// refused with 411 and the connection closed), keep-alive, pipelining
// (replies go out in request order: a parked poll is answered before any
// later request on its connection), Expect: 100-continue.

// directReadBuffer bounds a request line and each header line; a request
// head may have at most maxDirectHeaders lines of it.
const (
	directReadBuffer = 4096
	maxDirectHeaders = 64
)

// directRequest is a request read by requestReader.read. Its slices are
// valid until the next read.
type directRequest struct {
	post     bool
	path     []byte
	body     []byte
	close    bool     // the client asked to close after the reply (or HTTP/1.0)
	fwd, xff []string // Forwarded and X-Forwarded-For, kept for /open
}

// httpError is a request that cannot be read; it is answered with status
// and the connection closed.
type httpError struct{ status int }

func (e httpError) Error() string { return "http: " + fasthttp.StatusMessage(e.status) }

var (
	errBadRequest = httpError{fasthttp.StatusBadRequest}
	hdrLength     = []byte("content-length")
	hdrTE         = []byte("transfer-encoding")
	hdrConn       = []byte("connection")
	hdrExpect     = []byte("expect")
	hdrFwd        = []byte("forwarded")
	hdrXFF        = []byte("x-forwarded-for")
)

// requestReader reads the requests of one connection served directly.
type requestReader struct {
	br   *bufio.Reader
	path []byte      // request path scratch
	body *bodyReader // the connection's body scratch and budget share
	lim  *limits
	dl   deadliner // arms the body deadline (nil: none)
	cont func()    // writes "100 Continue" (nil: nothing)
}

// read reads one request: its line, its headers and its body (at most
// lim.maxBody bytes, grown as it arrives, against the budget). Errors
// other than httpError are the connection's (EOF, a timeout) and end it
// without a reply. The caller gives the body's budget back (body.done)
// once the request is served or refused.
func (rq *requestReader) read() (directRequest, error) {
	var req directRequest
	br := rq.br
	line, err := readDirectLine(br)
	if err != nil {
		if errors.Is(err, bufio.ErrBufferFull) {
			return req, httpError{fasthttp.StatusRequestURITooLong}
		}
		return req, err
	}
	method, rest, ok := bytes.Cut(line, []byte{' '})
	target, version, ok2 := bytes.Cut(rest, []byte{' '})
	if !ok || !ok2 || len(method) == 0 || len(target) == 0 || target[0] != '/' {
		return req, errBadRequest
	}
	switch string(version) {
	case "HTTP/1.1":
	case "HTTP/1.0":
		req.close = true // unless it asks for keep-alive
	default:
		return req, errBadRequest
	}
	req.post = string(method) == "POST"
	if i := bytes.IndexByte(target, '?'); i >= 0 {
		target = target[:i]
	}
	// The path must outlive the header lines read after it.
	rq.path = append(rq.path[:0], target...)
	req.path = rq.path
	length, chunked, expect := -1, false, false
	for n := 0; ; n++ {
		if n == maxDirectHeaders {
			return req, httpError{fasthttp.StatusRequestHeaderFieldsTooLarge}
		}
		line, err := readDirectLine(br)
		if err != nil {
			if errors.Is(err, bufio.ErrBufferFull) {
				return req, httpError{fasthttp.StatusRequestHeaderFieldsTooLarge}
			}
			return req, err
		}
		if len(line) == 0 {
			break
		}
		if line[0] == ' ' || line[0] == '\t' {
			return req, errBadRequest // obsolete line folding
		}
		name, value, ok := bytes.Cut(line, []byte{':'})
		if !ok || len(name) == 0 || bytes.ContainsAny(name, " \t") {
			return req, errBadRequest
		}
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, hdrLength):
			v, err := strconv.ParseUint(string(value), 10, 31)
			if err != nil || length >= 0 && int(v) != length {
				return req, errBadRequest
			}
			length = int(v)
		case bytes.EqualFold(name, hdrTE):
			chunked = true
		case bytes.EqualFold(name, hdrConn):
			for _, tok := range bytes.Split(value, []byte{','}) {
				switch tok = bytes.TrimSpace(tok); {
				case bytes.EqualFold(tok, []byte("close")):
					req.close = true
				case bytes.EqualFold(tok, []byte("keep-alive")):
					req.close = false
				}
			}
		case bytes.EqualFold(name, hdrExpect):
			expect = bytes.EqualFold(value, []byte("100-continue"))
		case bytes.EqualFold(name, hdrFwd):
			req.fwd = append(req.fwd, string(value))
		case bytes.EqualFold(name, hdrXFF):
			req.xff = append(req.xff, string(value))
		}
	}
	if chunked {
		return req, httpError{fasthttp.StatusLengthRequired}
	}
	if length > rq.lim.maxBody {
		return req, errBodyTooLarge
	}
	if length <= 0 {
		return req, nil
	}
	if expect && rq.cont != nil {
		// The interim reply belongs to this request.
		rq.cont()
	}
	body, err := rq.body.read(br, length, br.Buffered(), rq.lim, rq.dl)
	if err != nil {
		return req, err
	}
	req.body = body
	return req, nil
}

// readDirectLine reads one line without its CRLF (or LF).
func readDirectLine(br *bufio.Reader) ([]byte, error) {
	line, err := br.ReadSlice('\n')
	if err != nil {
		return nil, err
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, nil
}

// lingeringClose ends a connection whose request was refused unread: it
// stops writing, then reads (and drops) what the client is still sending
// for a moment, so that closing does not reset the connection before the
// client has read the refusal.
func lingeringClose(hc *httpConn, br *bufio.Reader) {
	if cw, ok := hc.Conn.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
	hc.SetReadDeadline(time.Now().Add(time.Second))
	io.CopyN(io.Discard, br, 256<<10)
}

// parseIdlePoll parses b as one whole request "POST /idle/<sid>/<seq>"
// with a one-byte body and no header that asks for more than that; it
// returns the sequence number and the bytes it took.
func parseIdlePoll(b []byte, sid string) (seq uint64, n int, ok bool) {
	end := bytes.Index(b, []byte("\r\n\r\n"))
	if end < 0 {
		return 0, 0, false
	}
	head := b[:end+2]
	line, rest, _ := bytes.Cut(head, []byte("\r\n"))
	p, found := bytes.CutPrefix(line, []byte("POST /idle/"))
	if !found {
		return 0, 0, false
	}
	p, found = bytes.CutPrefix(p, []byte(sid))
	if !found || len(p) < 2 || p[0] != '/' {
		return 0, 0, false
	}
	num, ver, _ := bytes.Cut(p[1:], []byte{' '})
	if string(ver) != "HTTP/1.1" || len(num) == 0 || len(num) > 15 {
		return 0, 0, false
	}
	for _, c := range num {
		if c < '0' || c > '9' {
			return 0, 0, false
		}
		seq = seq*10 + uint64(c-'0')
	}
	// Nothing the connection's reader (requestReader.read) would read
	// otherwise: a bare LF ends a line there, a name with a blank or a
	// folded line is refused, and so are too many lines.
	length := -1
	for lines := 0; len(rest) > 0; lines++ {
		var h []byte
		h, rest, _ = bytes.Cut(rest, []byte("\r\n"))
		name, value, ok := bytes.Cut(h, []byte{':'})
		if !ok || lines == maxDirectHeaders || len(name) == 0 || bytes.ContainsAny(name, " \t\n") ||
			bytes.IndexByte(value, '\n') >= 0 {
			return 0, 0, false
		}
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, hdrLength):
			if string(value) != "1" {
				return 0, 0, false
			}
			length = 1
		case bytes.EqualFold(name, hdrTE), bytes.EqualFold(name, hdrExpect):
			return 0, 0, false
		case bytes.EqualFold(name, hdrConn):
			if !bytes.EqualFold(value, []byte("keep-alive")) {
				return 0, 0, false
			}
		}
	}
	n = end + 4 + 1
	if length != 1 || len(b) < n {
		return 0, 0, false
	}
	return seq, n, true
}

// idlePollCache keeps the header block of the last idle poll of a
// connection that parseIdlePoll accepted. A client words its polls the
// same every time but for the sequence number, so a poll whose header
// block is the same bytes is taken with one comparison instead of being
// parsed again (the parse was a tenth of a writer's cost per poll,
// syscalls excepted, at 1000 players).
type idlePollCache struct{ head []byte }

// parse is parseIdlePoll, with the header block compared to the last one
// accepted before it is parsed.
func (c *idlePollCache) parse(b []byte, sid string) (seq uint64, n int, ok bool) {
	if len(c.head) > 0 {
		if seq, line, ok := parseIdleLine(b, sid); ok {
			if rest := b[line:]; len(rest) > len(c.head) && bytes.Equal(rest[:len(c.head)], c.head) {
				return seq, line + len(c.head) + 1, true
			}
		}
	}
	if seq, n, ok = parseIdlePoll(b, sid); ok {
		if _, line, lok := parseIdleLine(b, sid); lok && line <= n-1 {
			c.head = append(c.head[:0], b[line:n-1]...)
		}
	}
	return seq, n, ok
}

// parseIdleLine parses the request line "POST /idle/<sid>/<seq> HTTP/1.1"
// at the start of b, as parseIdlePoll does, and returns the sequence
// number and the length of the line with its CRLF.
func parseIdleLine(b []byte, sid string) (seq uint64, n int, ok bool) {
	p, found := bytes.CutPrefix(b, []byte("POST /idle/"))
	if !found {
		return 0, 0, false
	}
	p, found = bytes.CutPrefix(p, []byte(sid))
	if !found || len(p) < 2 || p[0] != '/' {
		return 0, 0, false
	}
	p = p[1:]
	digits := 0
	for digits < len(p) && p[digits] >= '0' && p[digits] <= '9' {
		seq = seq*10 + uint64(p[digits]-'0')
		digits++
	}
	if digits == 0 || digits > 15 || !bytes.HasPrefix(p[digits:], []byte(" HTTP/1.1\r\n")) {
		return 0, 0, false
	}
	n = len(b) - len(p) + digits + len(" HTTP/1.1\r\n")
	return seq, n, true
}
