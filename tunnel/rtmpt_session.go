package tunnel

import (
	"context"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/rtmphub/rtmphub/tunnel/internal/deadline"
)

// Sequencing bounds of an RTMPT session.
const (
	// seqWindow is how far ahead of the next expected sequence number a
	// request may arrive (clients that pipeline over several connections)
	// and wait for the ones before it.
	seqWindow = 32
	// gapWait bounds that wait: a request whose predecessor never comes is
	// refused (409) and the client may retry it.
	gapWait = 2 * time.Second
	// replyCache is how many recent replies are kept for clients that
	// retry a request with the same sequence number; minCacheBytes is the
	// least memory they may take (see bytesCachedTrimLocked). A retry
	// that comes too late for its reply gets 410: the session cannot go
	// on without the bytes that reply carried.
	replyCache    = 8
	minCacheBytes = 512 << 10
	// inboundWait bounds how long a /send waits for the session core to
	// read what earlier requests brought before it is refused (429).
	inboundWait = 10 * time.Second
	// keepBuffer is the largest buffer capacity an idle session keeps.
	keepBuffer = 64 << 10
)

type cachedReply struct {
	seq  uint64
	data []byte // interval byte + RTMP bytes; never modified once cached
	via  any    // the HTTP connection it was last sent on (nil: unknown)
	// pooled: data came from replyBufs; sends: how many requests it
	// answered. A reply sent once, on a connection that has carried a
	// later request since, is no longer referenced: its buffer is reused.
	pooled bool
	sends  int
}

// rtmptSession is one RTMPT session: the net.Conn the session core reads
// and writes, fed by /send bodies and drained by the replies to /idle and
// /send requests. Its state is keyed on the session id, never on an HTTP
// connection: every request may arrive on another connection.
type rtmptSession struct {
	srv    *Server
	id     string
	ip     string // client address for the per-IP limit
	info   Info
	local  net.Addr
	remote net.Addr

	lastReq atomic.Int64 // unix nanoseconds of the last request naming it

	mu sync.Mutex

	// Client to core: bytes of /send bodies not read yet.
	in         []byte
	inOff      int
	inSig      signal // bytes arrived or the session ended
	inSpaceSig signal // the core read some

	// Core to client: bytes written and not yet handed to a reply, after
	// a byte kept for the reply's interval (out is nil when empty): the
	// buffer becomes the reply as it is.
	out      []byte
	outSig   signal // bytes arrived, a later request arrived, or the session ended
	spaceSig signal // out was drained

	// Sequencing.
	started bool
	origin  uint64 // sequence number of the first request seen
	placed  bool   // a /send body from origin on is in the stream
	early   uint64 // requests before origin still placeable have this number or more
	next    uint64 // sequence number the session answers next
	maxSeen uint64 // highest sequence number received
	applied bool   // the body of request next is in `in` already
	seqSig  signal // next advanced
	cache   [replyCache]cachedReply
	cacheN  int // replies cached so far (ring position = cacheN % replyCache)
	empties int // consecutive replies without data (for the interval byte)

	localClosed bool  // the core closed the conn
	remoteErr   error // the client closed, or went silent; reads end with EOF

	rd, wd *deadline.Deadline

	holdTimer *time.Timer // reused by held polls, one at a time
	holding   bool        // holdTimer is in use

	// A poll parked on a direct connection (see rtmpt_session_park.go).
	parked    parkedPoll
	parkTimer *time.Timer // answers the parked poll when its hold ends
	reader    *directConn // reads this session's next poll when bytes are written (see handOff)
	// When the core last wrote, and the time before; when the client last
	// sent data (see handOff); when out last went from empty to holding
	// bytes (see Config.ReplyMerge).
	lastWrite, prevWrite, lastBody, outSince time.Time

	bytesIn, bytesOut uint64
}

func newRTMPTSession(srv *Server, id, ip string, info Info, local, remote net.Addr) *rtmptSession {
	ss := &rtmptSession{srv: srv, id: id, ip: ip, info: info, local: local, remote: remote,
		rd: deadline.New(), wd: deadline.New(), holdTimer: time.NewTimer(time.Hour)}
	ss.holdTimer.Stop()
	ss.lastReq.Store(time.Now().UnixNano())
	return ss
}

// --- net.Conn, used by the session core ---

// Read returns bytes the client sent; io.EOF once the client closed the
// session (or went silent) and every byte it sent was read.
func (ss *rtmptSession) Read(p []byte) (int, error) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	for {
		if ss.localClosed {
			return 0, opError("read", "rtmpt", ss.remote, net.ErrClosed)
		}
		if ss.rd.Expired() {
			return 0, opError("read", "rtmpt", ss.remote, errTimeout)
		}
		if ss.inOff < len(ss.in) {
			n := copy(p, ss.in[ss.inOff:])
			ss.inOff += n
			if ss.inOff == len(ss.in) {
				ss.in, ss.inOff = ss.in[:0], 0
				if cap(ss.in) > keepBuffer {
					ss.in = nil
				}
			}
			ss.inSpaceSig.fire()
			return n, nil
		}
		if ss.remoteErr != nil {
			return 0, io.EOF
		}
		ch, dl := ss.inSig.wait(), ss.rd.Wait()
		ss.mu.Unlock()
		select {
		case <-ch:
		case <-dl:
		}
		ss.mu.Lock()
	}
}

// Write queues p for the client's next polls. When the session already
// holds MaxPending bytes the client has not fetched, Write blocks until a
// poll takes them or the write deadline passes (a timeout error, after
// which the core's slow-client policy applies). Bytes are never dropped.
func (ss *rtmptSession) Write(p []byte) (int, error) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	n := 0
	limit := ss.srv.cfg.MaxPending
	for {
		switch {
		case ss.localClosed:
			return n, opError("write", "rtmpt", ss.remote, net.ErrClosed)
		case ss.remoteErr != nil:
			return n, opError("write", "rtmpt", ss.remote, syscall.EPIPE)
		case ss.wd.Expired():
			return n, opError("write", "rtmpt", ss.remote, errTimeout)
		case len(p) == 0:
			return n, nil
		}
		if room := limit - ss.pendingLocked(); room > 0 {
			k := min(room, len(p))
			now := time.Now()
			if ss.out == nil {
				ss.out = ss.newOutLocked(k)
				ss.outSince = now
			}
			ss.out = append(ss.out, p[:k]...)
			p, n = p[k:], n+k
			ss.outSig.fire()
			ss.noteWriteLocked(now)
			ss.answerParkedLocked()
			if ss.reader != nil && ss.pendingLocked() > 0 && ss.mergedLocked(now) {
				ss.takePollLocked(now)
			}
			continue
		}
		ch, dl := ss.spaceSig.wait(), ss.wd.Wait()
		ss.mu.Unlock()
		select {
		case <-ch:
		case <-dl:
		}
		ss.mu.Lock()
	}
}

// TryWriteBuffers queues as many of bufs' bytes as the session has room
// for (MaxPending less what the client has not fetched) without blocking,
// and returns how many: the session core's non-blocking write path
// (rtmp.BufferWriter). It copies the bytes once, straight into the buffer
// that becomes the next reply.
func (ss *rtmptSession) TryWriteBuffers(bufs [][]byte) (int, error) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	switch {
	case ss.localClosed:
		return 0, opError("write", "rtmpt", ss.remote, net.ErrClosed)
	case ss.remoteErr != nil:
		return 0, opError("write", "rtmpt", ss.remote, syscall.EPIPE)
	case ss.wd.Expired():
		return 0, opError("write", "rtmpt", ss.remote, errTimeout)
	}
	total := 0
	for _, b := range bufs {
		total += len(b)
	}
	room := min(ss.srv.cfg.MaxPending-ss.pendingLocked(), total)
	if room <= 0 {
		return 0, nil
	}
	now := time.Now()
	if ss.out == nil {
		ss.out = ss.newOutLocked(room)
		ss.outSince = now
	}
	n := 0
	for _, b := range bufs {
		k := min(len(b), room-n)
		ss.out = append(ss.out, b[:k]...)
		if n += k; n == room {
			break
		}
	}
	ss.outSig.fire()
	ss.noteWriteLocked(now)
	ss.answerParkedLocked()
	if ss.reader != nil && ss.pendingLocked() > 0 && ss.mergedLocked(now) {
		ss.takePollLocked(now)
	}
	return n, nil
}

// noteWriteLocked keeps the times of the core's last two writes.
func (ss *rtmptSession) noteWriteLocked(now time.Time) {
	ss.prevWrite, ss.lastWrite = ss.lastWrite, now
}

// mergedLocked reports whether the pending bytes of a streaming session
// have waited Config.ReplyMerge for more, or are enough to send anyway
// (mergeEnough): its writer then takes the client's poll. Until then the
// poll stays unread in its socket; should no write come, the hand timer
// takes it within handBackWait of the last take (handExpired).
func (ss *rtmptSession) mergedLocked(now time.Time) bool {
	d := ss.srv.cfg.ReplyMerge
	return d <= 0 || now.Sub(ss.outSince) >= d || ss.pendingLocked() >= mergeEnough
}

// mergeEnough is a reply's worth of bytes that goes at once: about a
// second of a 500 kbps stream.
const mergeEnough = 64 << 10

// Close ends the session on the server's side. Bytes written before it
// are still handed to the client's next polls; the session leaves the
// table once they are (or when the client goes silent).
func (ss *rtmptSession) Close() error {
	ss.mu.Lock()
	if ss.localClosed {
		ss.mu.Unlock()
		return nil
	}
	ss.localClosed = true
	ss.in, ss.inOff = nil, 0
	drained := ss.pendingLocked() == 0
	ss.fireAllLocked()
	ss.answerParkedLocked() // with interval 0: the session is closing
	ss.handBackLocked()
	ss.mu.Unlock()
	ss.rd.Stop()
	ss.wd.Stop()
	if drained {
		ss.srv.removeSession(ss)
	}
	return nil
}

func (ss *rtmptSession) LocalAddr() net.Addr  { return ss.local }
func (ss *rtmptSession) RemoteAddr() net.Addr { return ss.remote }

func (ss *rtmptSession) SetDeadline(t time.Time) error {
	ss.rd.Set(t)
	ss.wd.Set(t)
	ss.wakeWaiters()
	return nil
}

func (ss *rtmptSession) SetReadDeadline(t time.Time) error {
	ss.rd.Set(t)
	ss.wakeWaiters()
	return nil
}

func (ss *rtmptSession) SetWriteDeadline(t time.Time) error {
	ss.wd.Set(t)
	ss.wakeWaiters()
	return nil
}

// wakeWaiters lets blocked reads and writes look at a moved deadline.
func (ss *rtmptSession) wakeWaiters() {
	ss.mu.Lock()
	ss.inSig.fire()
	ss.spaceSig.fire()
	ss.mu.Unlock()
}

func (ss *rtmptSession) fireAllLocked() {
	ss.inSig.fire()
	ss.inSpaceSig.fire()
	ss.outSig.fire()
	ss.spaceSig.fire()
	ss.seqSig.fire()
}

func (ss *rtmptSession) openLocked() bool { return !ss.localClosed && ss.remoteErr == nil }

// end closes the session on the client's side: /close, or no request for
// the session timeout. The core reads what is left, then io.EOF.
func (ss *rtmptSession) end(reason error) {
	ss.mu.Lock()
	if ss.remoteErr == nil {
		ss.remoteErr = reason
	}
	ss.fireAllLocked()
	ss.answerParkedLocked()
	ss.handBackLocked()
	ss.mu.Unlock()
	ss.srv.removeSession(ss)
}

// --- the HTTP side ---

// exchange serves one /idle or /send request with sequence number seq:
// it applies the body in sequence order, then answers with the interval
// byte and every byte pending for the client. An /idle with nothing to
// send is held up to hold (a /send up to linger) and answered the moment
// bytes are written, a later request arrives or the session ends. A
// repeated sequence number gets the same reply as the first (a retry).
// It returns the reply body, or an HTTP status for a refusal.
//
// via identifies the HTTP connection the request came on (nil when
// unknown). A client that does not pipeline has read every reply sent on
// a connection before it sends the next request there, so the replies
// sent on via are not kept for retries any more; clients that pipeline
// (librtmp) do not retry.
//
// dc is the direct connection the request came on (see rtmpt_direct.go),
// nil when the HTTP server serves it: a poll to hold is then parked
// instead (status 0 and no reply), answered later on dc by whichever
// goroutine writes the bytes, a later request, the end of the session or
// the hold's timer.
func (ss *rtmptSession) exchange(done <-chan struct{}, via any, dc *directConn, cmd rtmptCmd, seq uint64, body []byte) ([]byte, int) {
	ss.lastReq.Store(time.Now().UnixNano())
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.forgetReadLocked(via, seq)
	if !ss.started {
		// Clients start anywhere (0 after open for FFmpeg and librtmp, 1
		// for others): the first request sets the origin.
		ss.started, ss.origin, ss.next, ss.maxSeen = true, seq, seq, seq
	}
	if seq > ss.maxSeen {
		ss.maxSeen = seq
		ss.outSig.fire() // a held earlier poll answers now, keeping order
		ss.answerParkedLocked()
	}
	if seq > ss.next {
		if seq-ss.next >= seqWindow {
			return nil, 400
		}
		if st := ss.waitTurnLocked(done, seq); st != 0 {
			return nil, st
		}
	}
	if seq < ss.next {
		if r := ss.cachedLocked(seq, via); r != nil {
			return r, 200
		}
		if seq < ss.origin && seq >= ss.early && !ss.placed {
			// Sent before the first request this session saw, and
			// overtaken by it on another connection (a client that
			// opens with a send and a poll at once). No body has been
			// placed after it yet, so its body still goes first; its
			// reply takes no bytes, so replies stay in order too. Such
			// requests are placed in increasing order, each once.
			ss.early = seq + 1
			if cmd == cmdSend && len(body) > 0 && ss.openLocked() {
				ss.appendInLocked(body)
			}
			reply := emptyReplies[ss.intervalLocked(false)][:]
			ss.cacheLocked(seq, reply, via, false)
			return reply, 200
		}
		if seq < ss.origin && cmd == cmdIdle {
			// An idle from before the origin that was never answered:
			// it takes nothing, so an empty answer is safe.
			return emptyReplies[ss.intervalLocked(false)][:], 200
		}
		// A /send that can no longer be placed in the stream, or a retry
		// whose reply is no longer cached: the bytes it carried are lost
		// to the client, which must hear so rather than go on without
		// them.
		return nil, 410
	}

	// seq == ss.next: this request (or a concurrent retry of it) is the
	// one the session answers now.
	if cmd == cmdSend && len(body) > 0 {
		ss.lastBody = time.Now()
	}
	if cmd == cmdSend && !ss.applied && len(body) > 0 {
		if st := ss.waitInboundRoomLocked(done, seq); st != 0 {
			return nil, st
		}
		if seq < ss.next { // a retry answered while this one waited
			return ss.cachedOrGoneLocked(seq, via)
		}
		if !ss.applied && ss.openLocked() {
			ss.appendInLocked(body)
			ss.placed = true
		}
	}
	ss.applied = true

	hold := ss.srv.cfg.HoldTime
	if cmd == cmdSend {
		hold = ss.srv.cfg.SendLinger
	}
	if ss.pendingLocked() == 0 && hold > 0 && ss.maxSeen == seq && ss.openLocked() {
		if dc != nil {
			ss.parkLocked(dc, seq, via, hold)
			return nil, 0
		}
		ss.holdLocked(done, seq, hold)
	}
	if seq < ss.next {
		return ss.cachedOrGoneLocked(seq, via)
	}
	return ss.answerLocked(seq, via), 200
}

// forgetReadLocked drops the cached replies to requests before seq last
// sent on via (nil: unknown): a request on via means its client read them.
// A reply sent only there goes back for reuse.
func (ss *rtmptSession) forgetReadLocked(via any, seq uint64) {
	if via == nil {
		return
	}
	for i := range ss.cache {
		if c := &ss.cache[i]; c.via == via && c.seq < seq {
			if c.sends == 1 {
				c.release()
			} else {
				*c = cachedReply{}
			}
		}
	}
}

// waitTurnLocked waits until the requests before seq have been answered.
func (ss *rtmptSession) waitTurnLocked(done <-chan struct{}, seq uint64) int {
	t := time.NewTimer(gapWait)
	defer t.Stop()
	for seq > ss.next {
		if ss.remoteErr != nil {
			return 404 // the client closed it meanwhile
		}
		ch := ss.seqSig.wait()
		ss.mu.Unlock()
		select {
		case <-ch:
			ss.mu.Lock()
		case <-t.C:
			ss.mu.Lock()
			if seq > ss.next {
				return 409
			}
		case <-done:
			ss.mu.Lock()
			return 409
		}
	}
	return 0
}

// waitInboundRoomLocked applies back-pressure to a sending client: the
// body waits while the core has MaxPending bytes or more left to read.
func (ss *rtmptSession) waitInboundRoomLocked(done <-chan struct{}, seq uint64) int {
	if len(ss.in)-ss.inOff < ss.srv.cfg.MaxPending {
		return 0
	}
	t := time.NewTimer(inboundWait)
	defer t.Stop()
	for len(ss.in)-ss.inOff >= ss.srv.cfg.MaxPending && ss.openLocked() && seq == ss.next && !ss.applied {
		ch := ss.inSpaceSig.wait()
		ss.mu.Unlock()
		select {
		case <-ch:
			ss.mu.Lock()
		case <-t.C:
			ss.mu.Lock()
			return 429
		case <-done:
			ss.mu.Lock()
			return 429
		}
	}
	return 0
}

// holdLocked waits up to d for bytes to send, a later request or the end
// of the session. The core writes a batch of whole messages at once (one
// Write or TryWriteBuffers), so the reply never waits for more pieces.
func (ss *rtmptSession) holdLocked(done <-chan struct{}, seq uint64, d time.Duration) {
	t := ss.holdTimer
	if t == nil || ss.holding {
		t = time.NewTimer(d) // a second request held at once (a retry): its own timer
		defer t.Stop()
	} else {
		ss.holding = true
		t.Reset(d)
		defer func() { t.Stop(); ss.holding = false }()
	}
	for {
		ch := ss.outSig.wait()
		ss.mu.Unlock()
		timedOut := false
		select {
		case <-ch:
		case <-t.C:
			timedOut = true
		case <-done:
			timedOut = true
		}
		ss.mu.Lock()
		if seq < ss.next || ss.pendingLocked() > 0 || timedOut || ss.maxSeen > seq || !ss.openLocked() {
			return
		}
	}
}

// answerLocked builds the reply to request seq from the pending bytes,
// caches it and moves the session to the next sequence number.
func (ss *rtmptSession) answerLocked(seq uint64, via any) []byte {
	data := ss.pendingLocked() > 0
	interval := ss.intervalLocked(data)
	if ss.localClosed {
		interval = 0 // the server is closing the session
	}
	var reply []byte
	pooled := false
	if data {
		reply, pooled = ss.out, true
		reply[0] = interval
		ss.bytesOut += uint64(len(reply) - 1)
	} else {
		reply = emptyReplies[interval][:]
	}
	ss.out = nil
	ss.spaceSig.fire()
	ss.cacheLocked(seq, reply, via, pooled)
	ss.next = seq + 1
	ss.applied = false
	ss.seqSig.fire()
	if ss.localClosed {
		ss.srv.removeSession(ss)
	}
	return reply
}

// emptyReplies are the replies without data, one per interval byte;
// shared by every session, never modified.
var emptyReplies = func() (r [256][1]byte) {
	for i := range r {
		r[i][0] = byte(i)
	}
	return r
}()

// replyBufs recycles reply buffers (see newOutLocked and releaseLocked).
var replyBufs sync.Pool

// newOutLocked returns an empty reply buffer for n bytes or more: one
// byte for the interval, then room for the data.
func (ss *rtmptSession) newOutLocked(n int) []byte {
	if p, _ := replyBufs.Get().(*[]byte); p != nil {
		if b := *p; cap(b) >= 1+n {
			return b[:1]
		}
	}
	return make([]byte, 1, 1+max(n, 4096))
}

// release gives a cached reply's buffer back for reuse, once nothing can
// send it any more.
func (c *cachedReply) release() {
	if c.pooled && cap(c.data) <= keepBuffer {
		b := c.data[:0]
		replyBufs.Put(&b)
	}
	*c = cachedReply{}
}

// pendingLocked is the number of bytes waiting for the client.
func (ss *rtmptSession) pendingLocked() int {
	if ss.out == nil {
		return 0
	}
	return len(ss.out) - 1
}

// appendInLocked adds a /send body to the bytes the core reads.
func (ss *rtmptSession) appendInLocked(body []byte) {
	if ss.inOff > 0 && ss.inOff >= len(ss.in)/2 {
		k := copy(ss.in, ss.in[ss.inOff:])
		ss.in, ss.inOff = ss.in[:k], 0
	}
	ss.in = append(ss.in, body...)
	ss.bytesIn += uint64(len(body))
	ss.inSig.fire()
}

// cacheLocked keeps reply for a retry of request seq.
func (ss *rtmptSession) cacheLocked(seq uint64, reply []byte, via any, pooled bool) {
	ss.cache[ss.cacheN%replyCache] = cachedReply{seq: seq, data: reply, via: via, pooled: pooled, sends: 1}
	ss.cacheN++
	ss.bytesCachedTrimLocked()
}

// bytesCachedTrimLocked bounds the memory of the retry cache to
// max(2 × MaxPending, minCacheBytes): older replies are dropped first,
// the newest is always kept.
func (ss *rtmptSession) bytesCachedTrimLocked() {
	limit := max(2*ss.srv.cfg.MaxPending, minCacheBytes)
	total := 0
	for i := 0; i < replyCache && i < ss.cacheN; i++ {
		idx := (ss.cacheN - 1 - i) % replyCache
		total += len(ss.cache[idx].data)
		if i > 0 && total > limit {
			ss.cache[idx] = cachedReply{}
		}
	}
}

// cachedLocked returns the reply kept for request seq, now sent on via.
func (ss *rtmptSession) cachedLocked(seq uint64, via any) []byte {
	for i := range ss.cache {
		if c := &ss.cache[i]; c.data != nil && c.seq == seq {
			c.via = via
			c.sends++
			return c.data
		}
	}
	return nil
}

func (ss *rtmptSession) cachedOrGoneLocked(seq uint64, via any) ([]byte, int) {
	if r := ss.cachedLocked(seq, via); r != nil {
		return r, 200
	}
	return nil, 410
}

// intervalLocked is the polling interval hint of a reply: 1 while data
// flows, then backing off over consecutive empty replies as Red5 does
// (1, 3, 5, 9, 17, 33). Clients that long-poll may ignore it.
func (ss *rtmptSession) intervalLocked(data bool) byte {
	if data {
		ss.empties = 0
		return 1
	}
	ss.empties++
	switch {
	case ss.empties < 10:
		return 1
	case ss.empties < 20:
		return 3
	case ss.empties < 30:
		return 5
	case ss.empties < 40:
		return 9
	case ss.empties < 50:
		return 17
	}
	return 33
}

// stale reports whether the session has seen no request since before.
func (ss *rtmptSession) stale(before int64) bool { return ss.lastReq.Load() < before }

// serveCore runs the handler on the session, in its own goroutine.
func (ss *rtmptSession) serveCore(ctx context.Context, h ConnHandler) {
	defer ss.Close()
	h(ctx, ss, ss.info)
}
