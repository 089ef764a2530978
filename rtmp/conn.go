// Package rtmp carries RTMP messages over a byte stream: the handshake, then
// chunked messages in both directions, with acknowledgements. Its Conn is
// the chunked implementation of the message transport the session core
// works on; any net.Conn (TCP, an RTMPT tunnel, a QUIC stream) can carry it.
//
// The package never logs and never starts goroutines.
package rtmp

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/rtmphub/rtmphub/internal/sockio"
	"github.com/rtmphub/rtmphub/rtmp/chunk"
	"github.com/rtmphub/rtmphub/rtmp/handshake"
	"github.com/rtmphub/rtmphub/rtmp/message"
)

// DefaultReadBufferSize is the size of the buffered reader on a connection.
// Players send little, publishers send large messages that bypass the
// buffer, so it is kept small: thousands of players each hold one.
const DefaultReadBufferSize = 1024

// defaultPeerWindow is the acknowledgement window assumed until the peer
// sets one with a WindowAckSize message.
const defaultPeerWindow = 2500000

// Conn is one RTMP connection after the handshake. ReadMessage is called by
// one goroutine and WriteMessages by another (or the same); writes are
// serialized internally, so acknowledgements sent by the reader never
// interleave with a batch being written.
type Conn struct {
	nc net.Conn
	r  *chunk.Reader

	wmu sync.Mutex
	w   *chunk.Writer

	peerWindow atomic.Uint32 // acknowledgement window the peer asked for
	ackedAt    uint64        // reader-owned: bytes read when the last ack was sent
	base       uint64        // handshake bytes read before the chunk reader existed

	bytesOut atomic.Uint64

	writeTimeout time.Duration // guarded by wmu
	deadlineAt   time.Time     // when the write deadline was last moved

	// Non-blocking writes (TryWriteMessages): on sockets (rc) and on
	// in-memory connections that can take bytes without blocking (bw).
	rc      syscall.RawConn
	bw      BufferWriter
	pending []byte // bytes a non-blocking write left unwritten, guarded by wmu
	flat    []byte // one-write buffer for non-sockets, guarded by wmu
}

// iovPool holds writev scratch: a Conn takes one for a write only, so the
// players a publisher writes to one after the other share a few (the
// chunk.Writer's buffers are pooled the same way).
var iovPool = sync.Pool{New: func() any { return new([]sockio.Iovec) }}

// writev writes bufs to the socket, waiting for it to take them all
// (block) or not at all. wmu is held.
func (c *Conn) writev(bufs [][]byte, block bool) (n int, err error) {
	iov := iovPool.Get().(*[]sockio.Iovec)
	if block {
		n, *iov, err = sockio.Writev(c.rc, bufs, *iov)
	} else {
		n, *iov, err = sockio.WritevNow(c.rc, bufs, *iov)
	}
	if cap(*iov) > maxKeptIovecs {
		*iov = nil
	}
	iovPool.Put(iov)
	return n, err
}

// maxKeptIovecs is the largest writev scratch put back in iovPool; a join
// burst grows one past it. (A merged write's window fits: see
// chunk.Writer's maxKeptSegments.)
const maxKeptIovecs = 128

// Accept runs the server handshake on nc and returns the connection. The
// caller sets a deadline on nc to bound the handshake.
func Accept(nc net.Conn, maxMessageSize uint32) (*Conn, *handshake.Info, error) {
	br := bufio.NewReaderSize(nc, DefaultReadBufferSize)
	info, err := handshake.Server(readWriter{br, nc})
	if err != nil {
		return nil, nil, fmt.Errorf("handshake: %w", err)
	}
	c := newConn(nc, br, maxMessageSize)
	c.base = 1 + 1536 + 1536
	c.bytesOut.Store(1 + 1536 + 1536)
	return c, info, nil
}

// Dial runs the client handshake on nc (digest selects the Flash Player 9
// handshake) and returns the connection.
func Dial(nc net.Conn, digest bool, maxMessageSize uint32) (*Conn, error) {
	br := bufio.NewReaderSize(nc, DefaultReadBufferSize)
	if err := handshake.Client(readWriter{br, nc}, digest); err != nil {
		return nil, fmt.Errorf("handshake: %w", err)
	}
	c := newConn(nc, br, maxMessageSize)
	c.base = 1 + 1536 + 1536
	c.bytesOut.Store(1 + 1536 + 1536)
	return c, nil
}

// newConn starts the chunk stream after a handshake read through br: the
// bytes br holds already (a client's first command may come with its
// handshake) go to the chunk reader, which reads nc itself from then on,
// and br is dropped (the chunk reader holds a buffer only while bytes
// wait in it).
func newConn(nc net.Conn, br *bufio.Reader, maxMessageSize uint32) *Conn {
	rest, _ := br.Peek(br.Buffered())
	c := &Conn{nc: nc, r: chunk.NewReaderBuffered(nc, rest, maxMessageSize), w: chunk.NewWriter(nc), rc: sockio.RawConnOf(nc)}
	if c.rc == nil {
		c.bw, _ = nc.(BufferWriter)
	}
	c.peerWindow.Store(defaultPeerWindow)
	return c
}

type readWriter struct {
	io.Reader
	io.Writer
}

// ReadMessage returns the next message, control messages included (the
// chunk size and abort are applied already). It acknowledges received
// bytes as the peer's window asks, at half the window so that encoders
// that track acknowledgements never wait for one.
func (c *Conn) ReadMessage() (*message.Message, error) {
	m, err := c.r.ReadMessage()
	if err != nil {
		return nil, err
	}
	switch m.Type {
	case message.TypeWindowAckSize:
		if n, err := message.DecodeUint32(m.Payload); err == nil && n > 0 {
			c.peerWindow.Store(n)
		}
	}
	read := c.BytesRead()
	if w := uint64(c.peerWindow.Load()); read-c.ackedAt >= w/2 {
		if err := c.ack(read); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// ack acknowledges the bytes read. It is a function of its own so that
// ReadMessage, under which a player's goroutine spends its life parked,
// keeps a small frame.
func (c *Conn) ack(read uint64) error {
	c.ackedAt = read
	return c.WriteMessages([]message.Message{*message.Ack(uint32(read))})
}

// WriteMessages writes msgs in order with one vectored write. A
// SetChunkSize message among them takes effect for the messages after it.
// Payloads are referenced, not copied, until the call returns.
func (c *Conn) WriteMessages(msgs []message.Message) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.armDeadline()
	if len(c.pending) > 0 {
		// The tail of an earlier non-blocking write goes first.
		n, err := c.nc.Write(c.pending)
		c.bytesOut.Add(uint64(n))
		if err != nil {
			return err
		}
		c.pending = nil
	}
	if err := c.queue(msgs); err != nil {
		return err
	}
	if c.rc == nil {
		return c.writeFlat()
	}
	// One writev of the chunk writer's pieces; not net.Buffers.WriteTo
	// (chunk.Writer.Flush), which leaves an iovec array on every socket.
	n, err := c.writev(c.w.Pending(), true)
	c.w.Discard()
	c.bytesOut.Add(uint64(n))
	return err
}

// writeFlat writes the queued output with one Write, for connections that
// are not sockets (an RTMPT session, a QUIC stream): written piece by
// piece, a tunnel would wake its reader, and maybe answer a poll, once per
// chunk header. wmu is held.
func (c *Conn) writeFlat() error {
	flat := c.flat[:0]
	for _, b := range c.w.Pending() {
		flat = append(flat, b...)
	}
	c.w.Discard()
	if len(flat) == 0 {
		return nil
	}
	n, err := c.nc.Write(flat)
	c.bytesOut.Add(uint64(n))
	if cap(flat) > maxKeptFlat {
		flat = nil
	}
	c.flat = flat[:0]
	return err
}

// maxKeptFlat is the largest write buffer a non-socket connection keeps.
const maxKeptFlat = 64 << 10

// armDeadline keeps the write deadline writeTimeout ahead. Moving it costs
// a timer update: it moves only when a quarter of the timeout has passed,
// so a write always has at least three quarters of it. wmu is held.
func (c *Conn) armDeadline() {
	if c.writeTimeout > 0 {
		if now := time.Now(); now.Sub(c.deadlineAt) >= c.writeTimeout/4 {
			c.nc.SetWriteDeadline(now.Add(c.writeTimeout))
			c.deadlineAt = now
		}
	}
}

func (c *Conn) queue(msgs []message.Message) error {
	for i := range msgs {
		m := &msgs[i]
		if err := c.w.Queue(m); err != nil {
			return err
		}
		if m.Type == message.TypeSetChunkSize {
			if n, err := message.DecodeUint32(m.Payload); err == nil {
				c.w.SetChunkSize(n)
			}
		}
	}
	return nil
}

// TryWriteMessages writes msgs without ever waiting: on a socket it queues
// them and makes one non-blocking writev (on a BufferWriter, one
// TryWriteBuffers). It reports whether it took msgs (false when another
// write is under way or the connection is neither a socket nor a
// BufferWriter: nothing was written, the caller writes them with
// WriteMessages)
// and whether bytes remain unwritten (the socket was full), which the
// caller must then flush with WriteMessages(nil) from a goroutine that may
// block. This lets a publisher's goroutine write to thousands of players
// without a goroutine switch per write.
func (c *Conn) TryWriteMessages(msgs []message.Message) (taken, more bool, err error) {
	if c.rc == nil && c.bw == nil || !c.wmu.TryLock() {
		return false, false, nil
	}
	defer c.wmu.Unlock()
	if len(c.pending) > 0 {
		return false, false, nil
	}
	c.armDeadline() // an expired deadline would fail even this write
	if err = c.queue(msgs); err != nil {
		return true, false, err
	}
	bufs := c.w.Pending()
	total := 0
	for _, b := range bufs {
		total += len(b)
	}
	var n int
	if c.rc != nil {
		n, err = c.writev(bufs, false)
	} else {
		n, err = c.bw.TryWriteBuffers(bufs)
	}
	c.bytesOut.Add(uint64(n))
	if err == nil && n < total {
		// Keep the unwritten tail: the writer's scratch is reused and
		// payloads may be released, so it is copied.
		c.pending = sockio.AppendUnwritten(make([]byte, 0, total-n), bufs, n)
	}
	c.w.Discard()
	return true, len(c.pending) > 0, err
}

// BufferWriter is a connection that is not a socket but can take bytes
// without blocking, such as a tunnel session that queues them for its
// client. TryWriteBuffers takes as many of bufs' bytes, in order, as it
// has room for, and returns how many; it never blocks. A Conn over a
// BufferWriter makes non-blocking writes (TryWriteMessages) with it.
type BufferWriter interface {
	TryWriteBuffers(bufs [][]byte) (int, error)
}

// BytesRead is the number of bytes received, handshake included.
func (c *Conn) BytesRead() uint64 { return c.base + c.r.BytesRead() }

// BytesWritten is the number of bytes sent, handshake included.
func (c *Conn) BytesWritten() uint64 { return c.bytesOut.Load() }

// SetNoDelay sets TCP_NODELAY when the connection is a TCP socket.
func (c *Conn) SetNoDelay(on bool) error {
	if tc, ok := c.nc.(interface{ SetNoDelay(bool) error }); ok {
		return tc.SetNoDelay(on)
	}
	return nil
}

// SetWriteTimeout makes every write, acknowledgements included, fail when
// it cannot finish within about d (between 3/4 d and d); 0 disables it.
func (c *Conn) SetWriteTimeout(d time.Duration) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.writeTimeout = d
	c.deadlineAt = time.Time{}
	if d == 0 {
		c.nc.SetWriteDeadline(time.Time{})
	}
}

// SetReadDeadline bounds the next reads.
func (c *Conn) SetReadDeadline(t time.Time) error { return c.nc.SetReadDeadline(t) }

// Close closes the underlying connection.
func (c *Conn) Close() error { return c.nc.Close() }

// RemoteAddr is the peer's address.
func (c *Conn) RemoteAddr() net.Addr { return c.nc.RemoteAddr() }

// LocalAddr is the local address.
func (c *Conn) LocalAddr() net.Addr { return c.nc.LocalAddr() }
