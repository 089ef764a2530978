package tunnel

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/rtmphub/rtmphub/internal/sockio"
)

// Direct serving of RTMPT on plain TCP. A player over RTMPT makes one HTTP
// request per reply, and gets a reply per frame it plays. Served by the
// HTTP server (fasthttp), each of those is a handler goroutine woken twice:
// by the request, then by the frame that answers it. On a plain TCP
// connection the server serves the requests itself instead:
//
//   - A poll with nothing to send is parked in its session, not in a
//     goroutine. The goroutine that writes the bytes (the publisher's,
//     fanning a frame out) writes the reply straight to the socket with one
//     non-blocking writev, as it writes to native RTMP players.
//   - After a poll, the connection's goroutine stops reading and leaves the
//     session's next poll to that writer (handOff): at the next frame it
//     reads the request with one non-blocking read, and answers it at once
//     when it is the session's next idle poll. Anything else (nothing there
//     yet, a partial or another request, a /send) hands reading back, as do
//     handBackWait without a poll taken and the end of the session.
//
//   - Meanwhile the connection's receive low-water mark is raised
//     (SO_RCVLOWAT, Linux), so that a poll arriving there raises no
//     readiness event: nothing wakes, not even the poller's thread.
//
// So a streaming RTMPT player costs what a native one does plus one read
// and a short parse per frame. TLS connections
// stay with the HTTP server (a TLS write cannot be made without blocking),
// as does everything when Config.NoDirect is set.
//
// This file is the connection itself: its replies (non-blocking writes and
// the flushing goroutine), its serving loop and the hand-off of reading
// (handOff). Its requests are read by requestReader (rtmpt_request.go); the
// session's side of parking a poll and of the hand-off (parkLocked,
// takePollLocked, handBackLocked) is in rtmpt_session_park.go.

// directConn is a connection served by serveDirect. Replies are written
// by any goroutine, in order, without blocking: what the socket does not
// take at once is written by a flushing goroutine, and later replies queue
// behind it.
type directConn struct {
	srv *Server
	hc  *httpConn
	rc  syscall.RawConn

	parkedIn atomic.Pointer[rtmptSession] // the session holding a poll of this connection

	wmu      sync.Mutex
	head     []byte
	bufs     [2][]byte
	iov      []sockio.Iovec
	pending  []byte // written by the flushing goroutine
	flushing bool
	flushed  signal // pending was written (or failed); guarded by wmu
	werr     error

	rq requestReader // reads the requests, owned by the reading goroutine
	// The writers' parse of idle polls (see takePollLocked), under the
	// lock of the session whose reader the connection is.
	polls idlePollCache

	// Of the request being read (see dcReader): the socket reads made
	// for it, and whether its head deadline is armed.
	reqReads  int
	headArmed bool

	// Hand-off of reading (see handOff). src is what the connection's
	// goroutine reads; rbuf what a writer read and did not take, read
	// first. rbuf belongs to whoever reads: the connection's goroutine,
	// or, while a session's reader is this connection, the writers of
	// that session under its lock.
	src      io.Reader
	rbuf     []byte
	wake     chan struct{}
	lastTake atomic.Int64
	// The session whose reader the connection is or was last, and the
	// timer that hands reading back when its writers take no poll (see
	// handOff); handTimer is set and reset under that session's lock.
	handSS    atomic.Pointer[rtmptSession]
	handTimer *time.Timer
}

// respond writes one reply. It never blocks.
func (dc *directConn) respond(status int, body []byte, closing bool) {
	dc.wmu.Lock()
	defer dc.wmu.Unlock()
	dc.head = appendDirectHead(dc.head[:0], status, len(body), closing)
	dc.writeLocked(dc.head, body)
}

// writeLocked writes head and body after what is pending, without
// blocking: what the socket does not take goes to the flushing goroutine.
func (dc *directConn) writeLocked(head, body []byte) {
	if dc.werr != nil {
		return
	}
	if dc.flushing {
		dc.pending = append(append(dc.pending, head...), body...)
		return
	}
	dc.bufs = [2][]byte{head, body}
	n, iov, err := sockio.WritevNow(dc.rc, dc.bufs[:], dc.iov)
	dc.iov = iov
	dc.bufs = [2][]byte{}
	if err != nil {
		dc.failLocked(err)
		return
	}
	if total := len(head) + len(body); n < total {
		if n < len(head) {
			dc.pending = append(append(dc.pending, head[n:]...), body...)
		} else {
			dc.pending = append(dc.pending, body[n-len(head):]...)
		}
		dc.flushing = true
		go dc.flush()
	}
}

var continueHead = []byte("HTTP/1.1 100 Continue\r\n\r\n")

// flush writes what the socket did not take at once, waiting for it.
func (dc *directConn) flush() {
	for {
		dc.wmu.Lock()
		b := dc.pending
		if len(b) == 0 || dc.werr != nil {
			dc.pending = nil
			dc.flushing = false
			dc.flushed.fire()
			dc.wmu.Unlock()
			return
		}
		dc.pending = nil
		dc.wmu.Unlock()
		dc.hc.SetWriteDeadline(time.Now().Add(directWriteTimeout))
		if _, err := dc.hc.Conn.Write(b); err != nil {
			dc.wmu.Lock()
			dc.failLocked(err)
			dc.wmu.Unlock()
		}
	}
}

// directWriteTimeout bounds a reply the client does not read.
const directWriteTimeout = 30 * time.Second

func (dc *directConn) failLocked(err error) {
	if dc.werr == nil {
		dc.werr = err
		dc.hc.Conn.Close() // the reading goroutine ends
	}
}

// waitFlushed waits until earlier replies are written, so that a client
// that sends requests without reading replies is not read ahead of.
func (dc *directConn) waitFlushed() bool {
	dc.wmu.Lock()
	defer dc.wmu.Unlock()
	for dc.flushing && dc.werr == nil {
		ch := dc.flushed.wait()
		dc.wmu.Unlock()
		<-ch
		dc.wmu.Lock()
	}
	return dc.werr == nil
}

// releaseParked answers the poll of this connection that waits in a
// session: a later request on the connection must be answered after it.
func (dc *directConn) releaseParked() {
	ss := dc.parkedIn.Load()
	if ss == nil {
		return
	}
	ss.mu.Lock()
	if ss.parked.dc == dc {
		ss.answerParkedLocked()
	}
	ss.mu.Unlock()
}

// appendDirectHead appends the head of a reply with a body of n bytes:
// the status line and headers every RTMPT client accepts (see rtmpt.go).
func appendDirectHead(b []byte, status, n int, closing bool) []byte {
	b = append(b, "HTTP/1.1 "...)
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, ' ')
	b = append(b, fasthttp.StatusMessage(status)...)
	b = append(b, "\r\nContent-Type: "+contentTypeFCS+"\r\nCache-Control: no-cache\r\n"...)
	if status == fasthttp.StatusMethodNotAllowed {
		b = append(b, "Allow: POST\r\n"...)
	}
	if closing {
		b = append(b, "Connection: close\r\n"...)
	} else {
		b = append(b, "Connection: Keep-Alive\r\n"...)
	}
	b = append(b, "Content-Length: "...)
	b = strconv.AppendInt(b, int64(n), 10)
	return append(b, "\r\n\r\n"...)
}

// serveDirect serves the requests of a plain-TCP HTTP connection until it
// ends, without the HTTP server.
func (s *Server) serveDirect(hc *httpConn, rc syscall.RawConn) {
	dc := &directConn{srv: s, hc: hc, rc: rc, wake: make(chan struct{}, 1), src: hc}
	s.stats.direct.Add(1)
	br := bufio.NewReaderSize(dcReader{dc}, directReadBuffer)
	dc.rq = requestReader{br: br, body: &hc.body, lim: &s.lim, dl: dc, cont: dc.sendContinue}
	toWeb := false
	defer func() {
		dc.releaseParked()
		hc.body.done(&s.budget)
		if !toWeb {
			hc.Close()
		}
	}()
	s.mu.Lock()
	web := s.web
	s.mu.Unlock()
	for {
		if !dc.waitFlushed() {
			return
		}
		hc.SetReadDeadline(time.Now().Add(s.readTimeout))
		// Bytes of this request already read: its head deadline is
		// armed at the next socket read (see dcReader), else at the one
		// after its first.
		dc.reqReads, dc.headArmed = 0, false
		if br.Buffered() > 0 || len(dc.rbuf) > 0 {
			dc.reqReads = 1
		}
		if web != nil {
			// A request that is not RTMPT on a kept-alive connection (a
			// reverse proxy reuses its upstream connections for any
			// request): the rest of the connection goes to the web
			// listener, as it would have from its first request.
			if b, err := br.Peek(1); err == nil && b[0] != 'P' {
				dc.releaseParked()
				if !dc.waitFlushed() {
					return
				}
				toWeb = s.handToWeb(web, hc, br, dc.rbuf)
				return
			}
		}
		req, err := dc.rq.read()
		if err != nil {
			hc.body.done(&s.budget)
			if why := cutFor(err, dc.reqReads > 1 || br.Buffered() > 0); why >= 0 {
				s.cut(why)
			}
			var he httpError
			if errors.As(err, &he) {
				dc.releaseParked()
				s.stats.requests.Add(1)
				if he.status < 500 {
					s.stats.refused.Add(1)
				}
				dc.respond(he.status, nil, true)
				dc.waitFlushed()
				lingeringClose(hc, br)
			}
			return
		}
		s.stats.requests.Add(1)
		dc.releaseParked()
		keep, polled := s.serveDirectRequest(dc, &req)
		hc.body.done(&s.budget)
		if !keep || req.close {
			dc.waitFlushed()
			return
		}
		if polled != nil && br.Buffered() == 0 && len(dc.rbuf) == 0 {
			dc.handOff(polled)
		}
	}
}

// handToWeb gives the web listener a connection served directly so far,
// with the bytes read from it and not yet served read first.
func (s *Server) handToWeb(web *connQueue, hc *httpConn, br *bufio.Reader, rbuf []byte) bool {
	buffered, _ := br.Peek(br.Buffered())
	head := append(append([]byte(nil), buffered...), rbuf...)
	hc.SetReadDeadline(time.Time{})
	hc.plain = true
	return web.push(&replayConn{httpConn: hc, r: io.MultiReader(bytes.NewReader(head), hc)})
}

// replayConn is a connection whose first bytes were read already: Read
// returns them first.
type replayConn struct {
	*httpConn
	r io.Reader
}

func (c *replayConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// dcReader reads what a writer read for the connection first.
type dcReader struct{ dc *directConn }

// Read also arms a request's head deadline, the moment the request needs a
// second socket read: a request that comes whole in one read, as polls
// do, costs no deadline change. The body's deadline is requestReader's.
func (r dcReader) Read(p []byte) (int, error) {
	dc := r.dc
	if len(dc.rbuf) > 0 {
		n := copy(p, dc.rbuf)
		dc.rbuf = dc.rbuf[:copy(dc.rbuf, dc.rbuf[n:])]
		return n, nil
	}
	if dc.reqReads > 0 && !dc.headArmed {
		dc.headArmed = true
		dc.hc.SetReadDeadline(dc.srv.lim.now().Add(dc.srv.lim.headTimeout))
	}
	dc.reqReads++
	return dc.src.Read(p)
}

// SetReadDeadline arms a body's deadline (requestReader.dl): it replaces
// the head's.
func (dc *directConn) SetReadDeadline(t time.Time) error {
	dc.headArmed = true
	return dc.hc.SetReadDeadline(t)
}

// sendContinue writes the interim reply of a request that expects it
// (requestReader.cont); an earlier poll is answered first.
func (dc *directConn) sendContinue() {
	dc.releaseParked()
	dc.wmu.Lock()
	dc.writeLocked(continueHead, nil)
	dc.wmu.Unlock()
}

// handBackWait bounds how long the connection's goroutine leaves reading
// to writers that take nothing; streamGap is the longest gap between a
// session's last two writes for it to count as streaming (25 fps video
// writes every 40 ms).
const (
	handBackWait = 120 * time.Millisecond
	// maxReplyMerge bounds Config.ReplyMerge below handBackWait, so that
	// the writers of a streaming session keep reading its polls.
	maxReplyMerge = 100 * time.Millisecond
	streamGap     = 100 * time.Millisecond
	// quietSend: no /send body for this long before a hand-off.
	quietSend = 500 * time.Millisecond
)

// handOff leaves reading the connection's requests to the goroutines that
// write for the session whose poll it parked, and waits until one of them
// hands it back, or until they have taken nothing for handBackWait (the
// hand timer, handExpired). While the session streams (two writes less
// than streamGap apart), the poll after each reply is read and answered by
// the writer of the next frame, and the connection's goroutine sleeps:
// each take pushes the hand timer back, so nothing wakes for the
// connection while its session streams.
func (dc *directConn) handOff(ss *rtmptSession) {
	ss.mu.Lock()
	// Only a streaming session's writer comes back soon enough, by itself:
	// a client that sends data and waits for the answer (a call, a
	// publisher's stream) must be read at once.
	streaming := time.Since(ss.prevWrite) < streamGap && time.Since(ss.lastBody) > quietSend
	if ss.reader == dc || !ss.openLocked() || !streaming {
		ss.mu.Unlock()
		return
	}
	ss.handBackLocked() // the client polls on this connection now
	ss.reader = dc
	dc.handSS.Store(ss)
	dc.lastTake.Store(time.Now().UnixNano())
	if dc.handTimer == nil {
		dc.handTimer = time.AfterFunc(handBackWait, dc.handExpired)
	} else {
		dc.handTimer.Reset(handBackWait)
	}
	ss.mu.Unlock()
	setRcvLowat(dc.rc, handOffLowat)
	defer setRcvLowat(dc.rc, 1) // before the connection's goroutine reads again
	<-dc.wake                   // handed back (handBackLocked): ss.reader is no longer dc
	ss.mu.Lock()
	dc.handTimer.Stop()
	ss.mu.Unlock()
}

// handExpired is the hand timer's: the writers of the session have taken
// no poll for handBackWait. With bytes pending (held by Config.ReplyMerge)
// it takes the poll itself; otherwise it hands reading back, and the
// connection's goroutine parks the poll for its hold.
func (dc *directConn) handExpired() {
	ss := dc.handSS.Load()
	if ss == nil {
		return
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.reader != dc {
		return
	}
	now := time.Now()
	if idle := now.Sub(time.Unix(0, dc.lastTake.Load())); idle < handBackWait {
		dc.handTimer.Reset(handBackWait - idle)
		return
	}
	if ss.pendingLocked() > 0 {
		ss.takePollLocked(now) // answers, or hands back
		if ss.reader == dc {
			dc.handTimer.Reset(handBackWait)
		}
		return
	}
	ss.handBackLocked()
}

// serveDirectRequest answers one request as serveRTMPT does; false ends
// the connection.
func (s *Server) serveDirectRequest(dc *directConn, req *directRequest) (keep bool, polled *rtmptSession) {
	refuse := func(status int) (bool, *rtmptSession) {
		s.stats.refused.Add(1)
		dc.respond(status, nil, req.close)
		return true, nil
	}
	if !req.post {
		return refuse(fasthttp.StatusMethodNotAllowed)
	}
	r, err := parseRTMPTPath(b2s(req.path))
	if err != nil {
		return refuse(fasthttp.StatusBadRequest)
	}
	switch r.cmd {
	case cmdIdent:
		return refuse(fasthttp.StatusNotFound)
	case cmdOpen:
		body, status := s.openSession(addrPortOf(dc.hc.RemoteAddr()), dc.hc.LocalAddr(), false, req.fwd, req.xff)
		if status != fasthttp.StatusOK {
			return refuse(status)
		}
		dc.respond(fasthttp.StatusOK, body, req.close)
	case cmdIdle, cmdSend:
		ss := s.lookup(r.sid)
		if ss == nil {
			return refuse(fasthttp.StatusNotFound)
		}
		var park *directConn
		if !req.close {
			park = dc // a poll on a closing connection is answered at once
		}
		reply, status := ss.exchange(s.runCtx.Done(), dc.hc, park, r.cmd, r.seq, req.body)
		switch status {
		case 0: // parked: answered later
		case fasthttp.StatusOK:
			dc.respond(status, reply, req.close)
		default:
			return refuse(status)
		}
		if r.cmd == cmdIdle {
			return true, ss
		}
	case cmdClose:
		ss := s.lookup(r.sid)
		if ss == nil {
			return refuse(fasthttp.StatusNotFound)
		}
		ss.end(errClientClosed)
		s.log.Debug("rtmpt session closed by client", "tunnel", ss.id)
		dc.respond(fasthttp.StatusOK, closeReply, req.close)
	}
	return true, nil
}
