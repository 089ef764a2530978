package rtmpws

import (
	"bufio"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// serverConn is the server's side of a WebSocket as a net.Conn: the
// frames are read and written here, on the hijacked socket, by the
// goroutines that call Read and Write. The socket's own deadlines are
// the connection's, so they are real for free: a read deadline that
// passes leaves the connection usable (a frame header is parsed from
// bytes peeked, never consumed half), and the session core, which uses
// read deadlines for idle clients and then goes on reading, gets what a
// socket gives it. There is no goroutine of its own and no copy of what
// is read: RTMP bytes are unmasked in the caller's buffer.
//
// The client's side (Dial) is coder/websocket's, under Conn.
//
// Control frames are handled as Read meets them: a ping is answered with
// a pong at once, a pong is noted for keepalive, a close is answered and
// ends the stream (io.EOF for 1000 and 1001). A text frame closes the
// connection with 1003, a message over maxFrame with 1009, a frame that
// breaks RFC 6455 with 1002; each is logged once.
type serverConn struct {
	raw      net.Conn
	br       *bufio.Reader // the hijacked reader: it may hold bytes already
	sub      string
	maxFrame int64
	log      *slog.Logger

	// reading: one Read at a time
	rmu     sync.Mutex
	remain  int64   // payload bytes left in the current data frame
	mask    [4]byte // its masking key, rotated to where the payload is
	inMsg   bool    // a message was started and its last frame not seen
	msgSize int64   // bytes of the current message so far
	rerr    error   // sticky: the stream has ended
	// draining: the core is done and the close frame sent; frames are
	// skipped, unchecked, until the peer's close frame (drain).
	draining bool
	reading  atomic.Bool

	// writing: one frame at a time
	wmu  sync.Mutex
	wbuf []byte // header and payload, for one write system call
	werr error  // sticky: a frame was cut
	// closePayload is the close frame's, set when closing starts;
	// closeSent once it went out (under wmu).
	closePayload []byte
	closeSent    bool

	// keepalive
	pingMu     sync.Mutex
	pingTimer  *time.Timer
	pingSentAt atomic.Int64 // unix nanoseconds; 0: no ping out
	pongAt     atomic.Int64
	grace      *time.Timer // closes the socket closeGrace after closing started

	closeOnce sync.Once
	closed    chan struct{} // closing started
	why       atomic.Pointer[closeReason]
	done      chan struct{} // the socket is closed
	rawOnce   sync.Once
}

const (
	opCont   = 0x0
	opText   = 0x1
	opBinary = 0x2
	opClose  = 0x8
	opPing   = 0x9
	opPong   = 0xa
)

// maxKeptWriteBuf is the largest payload copied behind its frame header
// for one write; a larger one is written on its own.
const maxKeptWriteBuf = 64 << 10

func newServerConn(raw net.Conn, br *bufio.Reader, sub string, maxFrame int, log *slog.Logger) *serverConn {
	return &serverConn{raw: raw, br: br, sub: sub, maxFrame: int64(maxFrame), log: log,
		closed: make(chan struct{}), done: make(chan struct{})}
}

// upgrade answers r's WebSocket handshake (already checked by isUpgrade)
// on the hijacked connection and returns it with its buffered reader.
func upgrade(w http.ResponseWriter, r *http.Request, offerSub bool) (net.Conn, *bufio.Reader, string, error) {
	if !r.ProtoAtLeast(1, 1) {
		http.Error(w, "WebSocket needs HTTP/1.1", http.StatusUpgradeRequired)
		return nil, nil, "", fmt.Errorf("WebSocket over %s", r.Proto)
	}
	key := r.Header.Get("Sec-WebSocket-Key")
	if k, err := base64.StdEncoding.DecodeString(key); err != nil || len(k) != 16 {
		http.Error(w, "bad Sec-WebSocket-Key", http.StatusBadRequest)
		return nil, nil, "", errors.New("bad Sec-WebSocket-Key")
	}
	if v := r.Header.Get("Sec-WebSocket-Version"); v != "13" {
		w.Header().Set("Sec-WebSocket-Version", "13")
		http.Error(w, "WebSocket version 13 only", http.StatusUpgradeRequired)
		return nil, nil, "", fmt.Errorf("WebSocket version %q", v)
	}
	sub := ""
	if offerSub && headerHas(r.Header, "Sec-WebSocket-Protocol", Subprotocol) {
		sub = Subprotocol
	}
	nc, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		http.Error(w, "cannot take the connection", http.StatusInternalServerError)
		return nil, nil, "", err
	}
	sum := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	head := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Accept: " + base64.StdEncoding.EncodeToString(sum[:]) + "\r\n"
	if sub != "" {
		head += "Sec-WebSocket-Protocol: " + sub + "\r\n"
	}
	head += "\r\n"
	// net/http leaves the deadlines of the request on the connection.
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(nc, head); err != nil {
		nc.Close()
		return nil, nil, "", err
	}
	nc.SetDeadline(time.Time{})
	return nc, brw.Reader, sub, nil
}

func (c *serverConn) logf(msg string, args ...any) {
	if c.log != nil {
		c.log.Warn(msg, append([]any{"remote", c.raw.RemoteAddr().String()}, args...)...)
	}
}

// Read returns payload bytes of binary messages, handling the frames in
// between.
func (c *serverConn) Read(p []byte) (int, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	if len(p) == 0 {
		return 0, nil
	}
	c.reading.Store(true)
	defer c.reading.Store(false)
	for {
		if c.rerr != nil {
			return 0, c.rerr
		}
		if c.remain > 0 {
			n, err := c.br.Read(p[:min(int64(len(p)), c.remain)])
			if n > 0 {
				unmask(p[:n], &c.mask)
				c.remain -= int64(n)
				return n, nil
			}
			if err != nil {
				return 0, c.readFailed(err)
			}
			continue
		}
		if err := c.nextFrame(); err != nil {
			return 0, err
		}
	}
}

// readFailed turns a socket read error into Read's: a timeout is returned
// as it is and leaves the connection usable; anything else ends it.
func (c *serverConn) readFailed(err error) error {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return err
	}
	select {
	case <-c.closed:
		c.rerr = c.opErr("read", c.closedErr())
	default:
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			c.rerr = io.EOF // gone without a close frame
		} else {
			c.rerr = err
		}
		c.closeWith(websocket.StatusAbnormalClosure, "", nil)
	}
	return c.rerr
}

// nextFrame reads the next frame's header (and a control frame whole) and
// acts on it. Bytes are only consumed once the frame's header (or the
// control frame) is all there, so a read deadline may cut it anywhere.
func (c *serverConn) nextFrame() error {
	b, err := c.br.Peek(2)
	if err != nil {
		return c.readFailed(err)
	}
	fin, rsv, op := b[0]&0x80 != 0, b[0]&0x70, b[0]&0x0f
	masked, plen7 := b[1]&0x80 != 0, int64(b[1]&0x7f)
	hlen := 2
	switch plen7 {
	case 126:
		hlen += 2
	case 127:
		hlen += 8
	}
	if masked {
		hlen += 4
	}
	if b, err = c.br.Peek(hlen); err != nil {
		return c.readFailed(err)
	}
	plen := plen7
	switch plen7 {
	case 126:
		plen = int64(binary.BigEndian.Uint16(b[2:]))
	case 127:
		plen = int64(binary.BigEndian.Uint64(b[2:]))
	}
	var key [4]byte
	if masked {
		copy(key[:], b[hlen-4:])
	}
	switch {
	case rsv != 0:
		return c.violation(websocket.StatusProtocolError, "reserved bits set (no extension was agreed)")
	case !masked:
		return c.violation(websocket.StatusProtocolError, "unmasked frame from a client")
	case plen < 0:
		return c.violation(websocket.StatusProtocolError, "bad payload length")
	}
	if op >= opClose {
		if !fin || plen > 125 {
			return c.violation(websocket.StatusProtocolError, "fragmented or long control frame")
		}
		f, err := c.br.Peek(hlen + int(plen))
		if err != nil {
			return c.readFailed(err)
		}
		payload := append([]byte(nil), f[hlen:]...)
		c.br.Discard(hlen + int(plen))
		unmask(payload, &key)
		return c.control(op, payload)
	}
	if c.draining || op == opText {
		// Skipped whole, so that drain can read on to the close frame.
		c.br.Discard(hlen)
		c.remain, c.mask = plen, key
		if c.draining {
			return nil
		}
	}
	switch {
	case op == opText:
		c.logf("rtmpws: text frame, closing the connection (1003)")
		return c.violation(websocket.StatusUnsupportedData, "")
	case op == opBinary && c.inMsg || op == opCont && !c.inMsg:
		return c.violation(websocket.StatusProtocolError, "frames out of order")
	case op != opBinary && op != opCont:
		return c.violation(websocket.StatusProtocolError, fmt.Sprintf("unknown opcode %d", op))
	}
	c.br.Discard(hlen)
	if op == opBinary {
		c.msgSize = 0
	}
	c.inMsg = !fin
	c.msgSize += plen
	c.remain, c.mask = plen, key
	if c.maxFrame > 0 && c.msgSize > c.maxFrame {
		c.logf("rtmpws: frame over the size limit, closing the connection (1009)", "limit", c.maxFrame)
		return c.violation(websocket.StatusMessageTooBig, "")
	}
	return nil
}

// control acts on a ping, a pong or a close frame.
func (c *serverConn) control(op byte, payload []byte) error {
	switch op {
	case opPing:
		if c.draining {
			return nil // closing: no pong
		}
		if err := c.writeFrame(opPong, payload); err != nil {
			return c.readFailed(err)
		}
	case opPong:
		c.pongAt.Store(time.Now().UnixNano())
	case opClose:
		code := websocket.StatusNoStatusRcvd
		if len(payload) >= 2 {
			code = websocket.StatusCode(binary.BigEndian.Uint16(payload))
		}
		reply := code
		if code == websocket.StatusNoStatusRcvd {
			reply = websocket.StatusNormalClosure
		}
		// Our answer, unless we sent ours first; then the socket goes.
		c.closeWith(reply, "", nil)
		c.wmu.Lock()
		c.sendCloseLocked()
		c.wmu.Unlock()
		c.closeRaw()
		switch code {
		case websocket.StatusNormalClosure, websocket.StatusGoingAway, websocket.StatusNoStatusRcvd:
			c.rerr = io.EOF
		default:
			c.rerr = c.opErr("read", fmt.Errorf("rtmpws: closed by the peer with %v", code))
		}
		return c.rerr
	default:
		return c.violation(websocket.StatusProtocolError, fmt.Sprintf("unknown control opcode %d", op))
	}
	return nil
}

// violation closes the connection for the peer's fault with code.
func (c *serverConn) violation(code websocket.StatusCode, why string) error {
	var err error
	switch code {
	case websocket.StatusUnsupportedData:
		err = errTextFrame
	case websocket.StatusMessageTooBig:
		err = fmt.Errorf("rtmpws: message over %d bytes", c.maxFrame)
	default:
		err = fmt.Errorf("rtmpws: protocol error: %s", why)
		c.logf("rtmpws: WebSocket protocol error, closing the connection (1002)", "err", why)
	}
	c.closeWith(code, "", err)
	c.rerr = c.opErr("read", err)
	return c.rerr
}

// unmask XORs p with the masking key, rotating the key to where p ends.
func unmask(p []byte, key *[4]byte) {
	if len(p) >= 16 {
		k := uint64(binary.LittleEndian.Uint32(key[:]))
		k |= k << 32
		for len(p) >= 8 {
			binary.LittleEndian.PutUint64(p, binary.LittleEndian.Uint64(p)^k)
			p = p[8:]
		}
	}
	for i := range p {
		p[i] ^= key[i&3]
	}
	n := len(p) & 3
	*key = [4]byte{key[n&3], key[(n+1)&3], key[(n+2)&3], key[(n+3)&3]}
}

// Write sends p as one binary frame, in one write system call.
func (c *serverConn) Write(p []byte) (int, error) {
	if err := c.writeFrame(opBinary, p); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (c *serverConn) writeFrame(op byte, p []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	select {
	case <-c.closed:
		// The close frame goes out now if the writer was busy when
		// closing started.
		c.sendCloseLocked()
		return c.opErr("write", c.closedErr())
	default:
	}
	return c.writeFrameLocked(op, p)
}

// sendCloseLocked writes the close frame once closing has started, if it
// has not gone out yet; wmu is held.
func (c *serverConn) sendCloseLocked() {
	if c.closeSent || c.closePayload == nil {
		return
	}
	c.closeSent = true
	c.raw.SetWriteDeadline(time.Now().Add(closeGrace))
	c.writeFrameLocked(opClose, c.closePayload)
}

// writeFrameLocked writes one frame; wmu is held.
func (c *serverConn) writeFrameLocked(op byte, p []byte) error {
	if c.werr != nil {
		return c.werr
	}
	b := c.wbuf[:0]
	b = append(b, 0x80|op)
	switch n := len(p); {
	case n <= 125:
		b = append(b, byte(n))
	case n <= 0xffff:
		b = append(b, 126, byte(n>>8), byte(n))
	default:
		b = append(b, 127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	var n int
	var err error
	if len(p) <= maxKeptWriteBuf {
		// Header and payload in one system call (one TLS record).
		b = append(b, p...)
		n, err = c.raw.Write(b)
	} else {
		// Large: not worth a copy.
		if n, err = c.raw.Write(b); err == nil {
			var m int
			m, err = c.raw.Write(p)
			n += m
		}
	}
	c.wbuf = b[:0]
	if err != nil {
		if n == 0 && errors.Is(err, os.ErrDeadlineExceeded) {
			return err // nothing went out: the connection is as it was
		}
		// A frame cut in the middle cannot be resumed.
		c.werr = err
		c.closeRaw()
		return err
	}
	return nil
}

// Close closes the connection with a normal close frame; it does not wait
// for the peer (done closes once the socket is closed).
func (c *serverConn) Close() error {
	c.closeWith(websocket.StatusNormalClosure, "", nil)
	return nil
}

func (c *serverConn) closedErr() error {
	if why := c.why.Load(); why != nil && why.err != nil {
		return why.err
	}
	return net.ErrClosed
}

// closeWith starts closing (the first call wins): a close frame with code
// is sent unless a writer is stuck on a full socket, and the socket is
// closed when the peer answers (Read or drain sees it), or closeGrace
// later in any case.
func (c *serverConn) closeWith(code websocket.StatusCode, reason string, err error) {
	c.closeOnce.Do(func() {
		c.why.Store(&closeReason{code, reason, err})
		if code != websocket.StatusAbnormalClosure {
			c.closePayload = append(binary.BigEndian.AppendUint16(nil, uint16(code)), reason...)
		}
		close(c.closed)
		c.pingMu.Lock()
		if c.pingTimer != nil {
			c.pingTimer.Stop()
		}
		c.grace = time.AfterFunc(closeGrace, c.closeRaw)
		c.pingMu.Unlock()
		// A busy writer sends it when its write ends (writeFrame), and
		// drain when the core is done; a writer stuck on a full socket
		// never does, and the socket goes after closeGrace.
		if c.wmu.TryLock() {
			c.sendCloseLocked()
			c.wmu.Unlock()
		}
	})
}

// drain reads what the peer sends after our close frame, until its own
// close frame, the end of the stream or closeGrace, then closes the
// socket. It is for when nobody else reads any more (the core is done).
func (c *serverConn) drain() {
	c.wmu.Lock()
	c.sendCloseLocked()
	c.wmu.Unlock()
	c.rmu.Lock()
	defer c.rmu.Unlock()
	c.raw.SetReadDeadline(time.Now().Add(closeGrace))
	c.draining, c.rerr = true, nil
	for c.rerr == nil {
		if c.remain > 0 {
			n, err := c.br.Discard(int(min(c.remain, 32<<10)))
			c.remain -= int64(n)
			if err != nil {
				break
			}
			continue
		}
		if c.nextFrame() != nil {
			break
		}
	}
	c.closeRaw()
}

// closeRaw closes the socket (once) and marks the connection done.
func (c *serverConn) closeRaw() {
	c.rawOnce.Do(func() {
		c.raw.Close()
		c.pingMu.Lock()
		if c.grace != nil {
			c.grace.Stop()
		}
		c.pingMu.Unlock()
		close(c.done)
	})
}

// startKeepalive pings every interval; a pong not back within timeout
// closes the connection with 1008, but only when Read has been waiting
// on the socket: a core busy elsewhere has simply not read the pong yet.
// It costs a timer between pings, not a goroutine.
func (c *serverConn) startKeepalive(interval, timeout time.Duration) {
	c.pingMu.Lock()
	defer c.pingMu.Unlock()
	select {
	case <-c.closed:
		return
	default:
	}
	c.pingTimer = time.AfterFunc(interval, func() { c.keepaliveTick(interval, timeout) })
}

func (c *serverConn) keepaliveTick(interval, timeout time.Duration) {
	now := time.Now()
	sent := c.pingSentAt.Load()
	var next time.Duration
	switch {
	case sent != 0 && c.pongAt.Load() < sent:
		// A ping is out without its pong.
		if late := now.Sub(time.Unix(0, sent)); late < timeout {
			next = timeout - late
		} else if c.reading.Load() {
			c.logf("rtmpws: no pong, closing the connection", "timeout", timeout.String())
			c.closeWith(websocket.StatusPolicyViolation, "no pong", errNoPong)
			return
		} else {
			next = max(timeout/4, time.Millisecond) // the core has not read it yet
		}
	case sent != 0 && now.Sub(time.Unix(0, sent)) < interval:
		next = interval - now.Sub(time.Unix(0, sent))
	default:
		c.pingSentAt.Store(now.UnixNano())
		if err := c.writeFrame(opPing, binary.BigEndian.AppendUint64(nil, uint64(now.UnixNano()))); err != nil {
			return // the connection failed; the core sees it too
		}
		next = min(timeout, interval)
	}
	c.pingMu.Lock()
	select {
	case <-c.closed:
	default:
		c.pingTimer.Reset(next)
	}
	c.pingMu.Unlock()
}

func (c *serverConn) Subprotocol() string { return c.sub }

func (c *serverConn) LocalAddr() net.Addr                { return c.raw.LocalAddr() }
func (c *serverConn) RemoteAddr() net.Addr               { return c.raw.RemoteAddr() }
func (c *serverConn) SetDeadline(t time.Time) error      { return c.raw.SetDeadline(t) }
func (c *serverConn) SetReadDeadline(t time.Time) error  { return c.raw.SetReadDeadline(t) }
func (c *serverConn) SetWriteDeadline(t time.Time) error { return c.raw.SetWriteDeadline(t) }

func (c *serverConn) opErr(op string, err error) error {
	return &net.OpError{Op: op, Net: "websocket", Source: c.raw.LocalAddr(), Addr: c.raw.RemoteAddr(), Err: err}
}
