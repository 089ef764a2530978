package bridge

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"time"

	"github.com/rtmphub/rtmphub/rtmp/message"
)

// msgConn is a connection that carries whole RTMP messages: chunked RTMP
// (*rtmp.Conn, which does the chunk layer itself) or RoQR
// (*rtmpquic.RoQRConn).
type msgConn interface {
	ReadMessage() (*message.Message, error)
	WriteMessages(msgs []message.Message) error
	Close() error
}

// msgPipe relays messages between a and b, one goroutine each way, as
// Pipe relays bytes. Each message is written before the next one is read:
// nothing is buffered, and a side that takes messages slowly holds the
// other back.
type msgPipe struct {
	a, b msgConn
	// keepAB and keepBA say whether a message read from a (from b) is
	// written to b (to a); they may adjust it first. nil keeps everything.
	keepAB, keepBA func(*message.Message) bool
	// halfCloseB, when set, is called once a's messages end with io.EOF:
	// it ends b's write side, and b→a goes on for at most linger (b's last
	// replies still reach a) before both close. Otherwise the end of
	// either direction closes both at once.
	halfCloseB func() error
	linger     time.Duration
	// stall bounds each write (on sides that take a write timeout, as
	// rtmp.Conn and rtmpquic.RoQRConn do): a side that stopped reading ends
	// the relay. 0 waits for ever.
	stall time.Duration
}

// msgPipeEnd says how a msgPipe ended.
type msgPipeEnd struct {
	// first is the direction that ended first: 0 a→b, 1 b→a.
	first int
	// side is the connection whose end (or failure) ended it: 0 a, 1 b.
	side int
	// err is the first error worth reporting: nil when the first
	// direction ended with the peer's clean end (or a close run made),
	// and the other then ended only because that peer was gone.
	err error
}

// msgDirEnd is how one direction ended.
type msgDirEnd struct {
	err   error
	write bool // writing to the destination failed (else reading the source did)
}

// run relays until both directions have ended (or ctx ends), then closes
// both connections.
func (p *msgPipe) run(ctx context.Context) msgPipeEnd {
	var once sync.Once
	closeBoth := func() { once.Do(func() { p.a.Close(); p.b.Close() }) }
	if p.stall > 0 {
		for _, c := range []msgConn{p.a, p.b} {
			if wt, ok := c.(interface{ SetWriteTimeout(time.Duration) }); ok {
				wt.SetWriteTimeout(p.stall)
			}
		}
	}
	stop := context.AfterFunc(ctx, closeBoth)
	defer stop()
	var res [2]msgDirEnd
	ended := make(chan int, 2)
	pump := func(d int, src, dst msgConn, keep func(*message.Message) bool) {
		for {
			m, err := src.ReadMessage()
			if err != nil {
				res[d] = msgDirEnd{err: err}
				ended <- d
				return
			}
			if keep != nil && !keep(m) {
				continue
			}
			if err := dst.WriteMessages([]message.Message{*m}); err != nil {
				res[d] = msgDirEnd{err: err, write: true}
				ended <- d
				return
			}
		}
	}
	go pump(0, p.a, p.b, p.keepAB)
	go pump(1, p.b, p.a, p.keepBA)
	first := <-ended
	second := 1 - first
	waited := false
	if first == 0 && errors.Is(res[0].err, io.EOF) && p.halfCloseB != nil && p.halfCloseB() == nil {
		t := time.NewTimer(p.linger)
		select {
		case <-ended:
			waited = true
		case <-t.C:
		}
		t.Stop()
	}
	closeBoth()
	if !waited {
		<-ended
	}
	end := msgPipeEnd{first: first, side: first}
	if res[first].write {
		end.side = 1 - first // the destination refused a message
	}
	switch {
	case reportable(res[first].err):
		end.err = res[first].err
	case !res[second].write && reportable(res[second].err):
		// The first side ended cleanly: writing to it may fail now, but
		// reading the other side should not.
		end.err = res[second].err
	}
	return end
}

// reportable says whether a direction's error is worth a log: not the
// peer's clean end, nor a close the relay made itself.
func reportable(err error) bool {
	return err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed)
}
