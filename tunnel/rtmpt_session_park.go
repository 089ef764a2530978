package tunnel

import (
	"errors"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"
)

// The session's side of direct serving (rtmpt_direct.go): a poll with
// nothing to send parked in its session until bytes are written for the
// client, and the session's writers reading and answering its next poll
// while its connection's reading is handed off to them (see handOff). Each
// is called with ss.mu held, except parkExpired (the park timer's), which
// takes it.

// parkedPoll is a poll waiting in its session for bytes to send.
type parkedPoll struct {
	dc   *directConn
	seq  uint64
	via  any
	at   time.Time
	hold time.Duration
}

// parkLocked parks poll seq of dc until bytes are written for the client,
// a later request comes, the session ends or d passes.
func (ss *rtmptSession) parkLocked(dc *directConn, seq uint64, via any, d time.Duration) {
	if old := ss.parked.dc; old != nil && old != dc {
		// The same poll again on another connection (a retry): the
		// first connection is given up, as its client did.
		old.wmu.Lock()
		old.failLocked(errors.New("rtmpt: poll retried on another connection"))
		old.wmu.Unlock()
		old.parkedIn.CompareAndSwap(ss, nil)
	}
	ss.parked = parkedPoll{dc: dc, seq: seq, via: via, at: time.Now(), hold: d}
	dc.parkedIn.Store(ss)
	if ss.parkTimer == nil {
		ss.parkTimer = time.AfterFunc(d, ss.parkExpired)
	} else {
		ss.parkTimer.Reset(d)
	}
}

// parkExpired answers the parked poll whose hold has passed (a timer that
// fires late for an earlier poll leaves a newer one parked).
func (ss *rtmptSession) parkExpired() {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	p := ss.parked
	if p.dc == nil {
		return
	}
	if left := p.hold - time.Since(p.at); left > time.Millisecond {
		ss.parkTimer.Reset(left)
		return
	}
	ss.answerParkedLocked()
}

// answerParkedLocked answers the parked poll, if any, with what is pending.
func (ss *rtmptSession) answerParkedLocked() {
	p := ss.parked
	if p.dc == nil {
		return
	}
	ss.parked = parkedPoll{}
	p.dc.parkedIn.CompareAndSwap(ss, nil)
	if ss.parkTimer != nil {
		ss.parkTimer.Stop()
	}
	if p.seq != ss.next {
		// Answered meanwhile by a retry of it on another connection:
		// the same reply, or, when it is no longer kept, the end of this
		// connection (its client gave up on it).
		if r := ss.cachedLocked(p.seq, p.via); r != nil {
			p.dc.respond(fasthttp.StatusOK, r, false)
		} else {
			p.dc.wmu.Lock()
			p.dc.failLocked(errors.New("rtmpt: poll answered on another connection"))
			p.dc.wmu.Unlock()
		}
		return
	}
	p.dc.respond(fasthttp.StatusOK, ss.answerLocked(p.seq, p.via), false)
}

// handBackLocked returns reading to the connection's goroutine; ss.mu is
// held.
func (ss *rtmptSession) handBackLocked() {
	dc := ss.reader
	if dc == nil {
		return
	}
	ss.reader = nil
	select {
	case dc.wake <- struct{}{}:
	default:
	}
}

// takePollLocked is the writer's side of a hand-off: with bytes pending
// for the client, it reads the connection's next request without waiting
// and, when it is the session's next idle poll, answers it at once. Any
// other outcome (nothing there yet, a partial or other request) hands
// reading back. ss.mu is held.
func (ss *rtmptSession) takePollLocked(now time.Time) {
	dc := ss.reader
	if len(dc.rbuf) == 0 {
		if cap(dc.rbuf) == 0 {
			dc.rbuf = make([]byte, 0, 1024)
		}
		var n int
		var rerr error
		buf := dc.rbuf[len(dc.rbuf):cap(dc.rbuf)]
		err := dc.rc.Read(func(fd uintptr) bool {
			n, rerr = syscall.Read(int(fd), buf)
			return true
		})
		if err != nil || rerr != nil || n <= 0 {
			ss.handBackLocked()
			return
		}
		dc.rbuf = dc.rbuf[:n]
	}
	seq, used, ok := dc.polls.parse(dc.rbuf, ss.id)
	if !ok || seq != ss.next || seq != ss.maxSeen+1 {
		ss.handBackLocked()
		return
	}
	dc.rbuf = dc.rbuf[:copy(dc.rbuf, dc.rbuf[used:])]
	dc.lastTake.Store(now.UnixNano())
	if dc.handTimer != nil {
		dc.handTimer.Reset(handBackWait)
	}
	ss.srv.stats.requests.Add(1)
	ss.srv.stats.writerPolls.Add(1)
	ss.lastReq.Store(now.UnixNano())
	ss.forgetReadLocked(dc.hc, seq)
	ss.maxSeen = seq
	ss.applied = true
	dc.respond(fasthttp.StatusOK, ss.answerLocked(seq, dc.hc), false)
	if len(dc.rbuf) > 0 {
		ss.handBackLocked() // more requests came: the connection's goroutine reads them
	}
}
