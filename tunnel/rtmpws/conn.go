package rtmpws

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// Conn is the client's side of RTMP over WebSocket (Dial): a net.Conn
// over a coder/websocket connection whose binary frames carry the byte
// stream. coder/websocket's own NetConn is not used: a read deadline that
// passes during a read closes its connection (an RTMP client may read
// with a deadline and go on), and its Close waits up to ten seconds for a
// silent peer.
//
// Reading: one goroutine reads frames as they come and hands their bytes
// over in chunks through a channel of a few chunks (back-pressure: a
// full channel stops it reading the socket). It is also what answers the
// peer's pings and takes the pongs of keepalive. Read waits on the
// channel, the read deadline and Close. Keeping a reader running means
// the server's pings are answered even while the RTMP client does not
// read (rtmp/client reads only when asked).
//
// Writing: each Write is one binary frame. A write deadline that passes
// before a Write fails it with a timeout and leaves the connection usable;
// one that passes during a Write ends the connection (a frame cut in the
// middle cannot be resumed), and the Write returns a timeout.
//
// Close sends a close frame and waits at most closeGrace for the peer's,
// then closes the socket; it never blocks the caller.
type Conn struct {
	ws     *websocket.Conn
	raw    net.Conn // the socket under ws, closed when the peer lingers
	local  net.Addr
	remote net.Addr
	log    *slog.Logger // nil: no log lines

	// reading
	rmu    sync.Mutex // one Read at a time
	cur    []byte     // the rest of the chunk being read
	curBuf *[]byte    // cur's buffer, given back when read
	in     chan *[]byte
	rerr   error // why in was closed; written before it is
	rdl    *deadline
	rdone  chan struct{} // the reader goroutine ended

	// writing
	wmu     sync.Mutex // one Write at a time
	wstate  sync.Mutex // writing, wctx and wcancel, between Write and the deadline
	writing bool
	wctx    context.Context // cancelled by a write deadline passing during a write
	wcancel context.CancelFunc
	wdl     *deadline

	closed    chan struct{} // Close was called, or the reader ended for good
	closeOnce sync.Once
	done      chan struct{} // the socket is closed and every goroutine ended
	why       atomic.Pointer[closeReason]
}

// closeReason is the code and text a connection is closed with.
type closeReason struct {
	code   websocket.StatusCode
	reason string
	err    error // what Read and Write return from then on
}

// closeGrace bounds the close handshake: the wait for the peer's close
// frame after ours (and for our close frame to be written).
const closeGrace = time.Second

// chunkSize is the largest piece of a frame handed to Read at once, and
// inChunks the number of pieces the reader holds for Read at most.
const (
	chunkSize = 16 << 10
	inChunks  = 4
)

var chunks = sync.Pool{New: func() any { b := make([]byte, chunkSize); return &b }}

// errTextFrame and errTooLarge end a connection whose peer broke the
// mapping; they are what Read returns then.
var (
	errTextFrame = errors.New("rtmpws: text frame (RTMP travels in binary frames)")
	errNoPong    = errors.New("rtmpws: no pong from the peer")
)

func newConn(ws *websocket.Conn, raw net.Conn, log *slog.Logger) *Conn {
	ws.SetReadLimit(-1)
	c := &Conn{
		ws:     ws,
		raw:    raw,
		log:    log,
		in:     make(chan *[]byte, inChunks),
		rdone:  make(chan struct{}),
		closed: make(chan struct{}),
		done:   make(chan struct{}),
	}
	if raw != nil {
		c.local, c.remote = raw.LocalAddr(), raw.RemoteAddr()
	} else {
		c.local, c.remote = wsAddr{}, wsAddr{}
	}
	c.wctx, c.wcancel = context.WithCancel(context.Background())
	c.rdl = newDeadline(nil)
	c.wdl = newDeadline(func() {
		c.wstate.Lock()
		if c.writing {
			c.wcancel() // a frame cut in the middle: the connection ends
		}
		c.wstate.Unlock()
	})
	go c.readLoop()
	return c
}

// readLoop reads frames until the connection ends, handing their bytes to
// Read; it sets rerr and closes in when it stops.
func (c *Conn) readLoop() {
	defer close(c.rdone)
	defer close(c.in)
	for {
		typ, r, err := c.ws.Reader(context.Background())
		if err != nil {
			c.rerr = c.readError(err)
			return
		}
		if typ != websocket.MessageBinary {
			c.rerr = errTextFrame
			c.logf("rtmpws: text frame, closing the connection (1003)")
			c.closeWith(websocket.StatusUnsupportedData, "binary frames only", errTextFrame)
			return
		}
		for {
			bp := chunks.Get().(*[]byte)
			n, err := r.Read((*bp)[:chunkSize])
			if n > 0 {
				*bp = (*bp)[:n]
				if !c.push(bp) {
					c.rerr = net.ErrClosed
					return
				}
			} else {
				chunks.Put(bp)
			}
			if err == io.EOF {
				break
			}
			if err != nil {
				c.rerr = c.readError(err)
				return
			}
		}
	}
}

// push hands a chunk to Read; false when the connection closed meanwhile.
func (c *Conn) push(bp *[]byte) bool {
	select {
	case c.in <- bp:
		return true
	default:
	}
	select {
	case c.in <- bp:
		return true
	case <-c.closed:
		chunks.Put(bp)
		return false
	}
}

// readError is what Read returns once the reader stopped with err: io.EOF
// for a peer that closed normally, net.ErrClosed after Close.
func (c *Conn) readError(err error) error {
	switch websocket.CloseStatus(err) {
	case websocket.StatusNormalClosure, websocket.StatusGoingAway, websocket.StatusNoStatusRcvd:
		return io.EOF
	}
	select {
	case <-c.closed:
		return c.closedErr()
	default:
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) {
		return io.EOF
	}
	return err
}

func (c *Conn) logf(msg string, args ...any) {
	if c.log != nil {
		c.log.Warn(msg, append([]any{"remote", c.remote.String()}, args...)...)
	}
}

// Read reads bytes of the stream, waiting at most until the read deadline.
func (c *Conn) Read(p []byte) (int, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	if len(p) == 0 {
		return 0, nil
	}
	if len(c.cur) == 0 {
		if c.curBuf != nil {
			chunks.Put(c.curBuf)
			c.curBuf = nil
		}
		var bp *[]byte
		var ok bool
		select {
		case bp, ok = <-c.in:
		default:
			if c.rdl.passed() {
				return 0, c.opErr("read", os.ErrDeadlineExceeded)
			}
			select {
			case bp, ok = <-c.in:
			case <-c.rdl.wait():
				return 0, c.opErr("read", os.ErrDeadlineExceeded)
			case <-c.closed:
				// Closed by us (Close, or the peer broke the mapping):
				// the reader may still be draining the close handshake.
				return 0, c.opErr("read", c.closedErr())
			}
		}
		if !ok {
			err := c.rerr
			if errors.Is(err, io.EOF) {
				return 0, io.EOF
			}
			return 0, c.opErr("read", err)
		}
		c.curBuf, c.cur = bp, *bp
	}
	n := copy(p, c.cur)
	c.cur = c.cur[n:]
	return n, nil
}

// Write sends p as one binary frame.
func (c *Conn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	select {
	case <-c.closed:
		return 0, c.opErr("write", c.closedErr())
	default:
	}
	c.wstate.Lock()
	if c.wdl.passed() {
		c.wstate.Unlock()
		return 0, c.opErr("write", os.ErrDeadlineExceeded)
	}
	if c.wctx.Err() != nil {
		// Cancelled by a deadline that passed as the last write ended:
		// that write went out whole, the connection is fine.
		c.wctx, c.wcancel = context.WithCancel(context.Background())
	}
	c.writing = true
	ctx := c.wctx
	c.wstate.Unlock()
	err := c.ws.Write(ctx, websocket.MessageBinary, p)
	c.wstate.Lock()
	c.writing = false
	c.wstate.Unlock()
	if err != nil {
		if ctx.Err() != nil {
			c.Close()
			return 0, c.opErr("write", os.ErrDeadlineExceeded)
		}
		select {
		case <-c.closed:
			err = c.closedErr()
		default:
		}
		return 0, c.opErr("write", err)
	}
	return len(p), nil
}

// Close closes the connection with a normal close frame. It does not wait
// for the peer: Done closes once everything has ended.
func (c *Conn) Close() error {
	c.closeWith(websocket.StatusNormalClosure, "", nil)
	return nil
}

// closedErr is what a closed connection's reads and writes return.
func (c *Conn) closedErr() error {
	if why := c.why.Load(); why != nil && why.err != nil {
		return why.err
	}
	return net.ErrClosed
}

// closeWith starts closing with code (the first call wins); err is what
// reads and writes return from then on (nil: net.ErrClosed).
func (c *Conn) closeWith(code websocket.StatusCode, reason string, err error) {
	c.closeOnce.Do(func() {
		c.why.Store(&closeReason{code, reason, err})
		close(c.closed)
		go func() {
			defer close(c.done)
			var force *time.Timer
			if c.raw != nil {
				force = time.AfterFunc(closeGrace, func() { c.raw.Close() })
			}
			c.ws.Close(code, reason)
			if force != nil {
				force.Stop()
				c.raw.Close()
			}
			<-c.rdone
			c.wstate.Lock()
			c.wcancel()
			c.wstate.Unlock()
		}()
	})
}

// Done is closed once the connection has ended: closed, its socket shut
// and its goroutines ended.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Subprotocol is the subprotocol agreed on ("rtmp" or "").
func (c *Conn) Subprotocol() string { return c.ws.Subprotocol() }

func (c *Conn) LocalAddr() net.Addr  { return c.local }
func (c *Conn) RemoteAddr() net.Addr { return c.remote }

func (c *Conn) SetDeadline(t time.Time) error {
	c.rdl.set(t)
	c.wdl.set(t)
	return nil
}

func (c *Conn) SetReadDeadline(t time.Time) error  { c.rdl.set(t); return nil }
func (c *Conn) SetWriteDeadline(t time.Time) error { c.wdl.set(t); return nil }

func (c *Conn) opErr(op string, err error) error {
	return &net.OpError{Op: op, Net: "websocket", Source: c.local, Addr: c.remote, Err: err}
}

// wsAddr is the address of a connection whose socket is not known.
type wsAddr struct{}

func (wsAddr) Network() string { return "websocket" }
func (wsAddr) String() string  { return "websocket" }
