package tunnel

// RoQR: RTMP messages framed directly on QUIC (ALPN "roqr"), after the
// public draft "RTMP over QUIC". There is no RTMP handshake and no
// chunking: each frame is
//
//	flow id (varint) | timestamp (varint) | message type (varint) |
//	message stream id (varint) | chunk stream id (varint) |
//	length (varint) | the message's payload (length bytes)
//
// with the QUIC variable-length integers of RFC 9000 §16.
//
// This implementation carries every message, both ways, on the first
// bidirectional stream the client opens (the draft's stream-only
// profile: media in DATAGRAMs is not implemented). The flow id is kept
// on reading and written as 0. A RoQRConn is a message transport: the
// session core serves it as it serves chunked RTMP.

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/quicvarint"

	"github.com/rtmphub/rtmphub/rtmp/message"
)

// RoQRALPN is the TLS application protocol of RoQR.
const RoQRALPN = "roqr"

// RoQRProtocol is the protocol name of a client that came over RoQR.
const RoQRProtocol = "roqr"

// maxRoQRMessage bounds one message read (RTMP's own limit: 24 bits).
const maxRoQRMessage = 0xFFFFFF

// AppendRoQRFrame appends m as one RoQR frame with the given flow id.
func AppendRoQRFrame(b []byte, flow uint64, m *message.Message) []byte {
	csid := m.ChunkStreamID
	if csid == 0 {
		csid = message.DefaultCSID(m.Type, m.StreamID)
	}
	b = quicvarint.Append(b, flow)
	b = quicvarint.Append(b, uint64(m.Timestamp))
	b = quicvarint.Append(b, uint64(m.Type))
	b = quicvarint.Append(b, uint64(m.StreamID))
	b = quicvarint.Append(b, uint64(csid))
	b = quicvarint.Append(b, uint64(len(m.Payload)))
	return append(b, m.Payload...)
}

// ReadRoQRFrame reads one frame; messages longer than maxSize (or than
// 16 MiB − 1) are an error.
func ReadRoQRFrame(r *bufio.Reader, maxSize int) (flow uint64, m *message.Message, err error) {
	var f [6]uint64
	for i := range f {
		f[i], err = quicvarint.Read(r)
		if err != nil {
			if i > 0 && err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return 0, nil, err
		}
	}
	if maxSize <= 0 || maxSize > maxRoQRMessage {
		maxSize = maxRoQRMessage
	}
	switch {
	case f[1] > 0xFFFFFFFF:
		return 0, nil, fmt.Errorf("roqr: timestamp %d out of range", f[1])
	case f[2] > 0xFF:
		return 0, nil, fmt.Errorf("roqr: message type %d out of range", f[2])
	case f[3] > 0xFFFFFFFF || f[4] > 65599:
		return 0, nil, fmt.Errorf("roqr: stream id %d / chunk stream id %d out of range", f[3], f[4])
	case f[5] > uint64(maxSize):
		return 0, nil, fmt.Errorf("roqr: message of %d bytes, limit %d", f[5], maxSize)
	}
	m = &message.Message{Type: message.Type(f[2]), Timestamp: uint32(f[1]), StreamID: uint32(f[3]),
		ChunkStreamID: uint32(f[4]), Payload: make([]byte, f[5])}
	if _, err := io.ReadFull(r, m.Payload); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return 0, nil, err
	}
	return f[0], m, nil
}

// RoQRConn is one RoQR client: whole RTMP messages on a QUIC stream. It
// has the methods the session core's message transport needs.
type RoQRConn struct {
	quicStream
	r       *bufio.Reader
	maxSize int

	wmu      sync.Mutex
	wbuf     []byte
	wtimeout atomic.Int64 // nanoseconds; 0 = none

	in, out atomic.Uint64
}

func newRoQRConn(qc *quic.Conn, str *quic.Stream, maxSize int, onClose func()) *RoQRConn {
	return &RoQRConn{quicStream: quicStream{qc: qc, str: str, onClose: onClose}, r: bufio.NewReaderSize(str, 16<<10), maxSize: maxSize}
}

// ReadMessage returns the next message from the client.
func (c *RoQRConn) ReadMessage() (*message.Message, error) {
	if c.closed.Load() {
		return nil, opError("read", "roqr", c.RemoteAddr(), net.ErrClosed)
	}
	_, m, err := ReadRoQRFrame(c.r, c.maxSize)
	if err != nil {
		var ne net.Error
		switch {
		case c.closed.Load():
			return nil, opError("read", "roqr", c.RemoteAddr(), net.ErrClosed)
		case err == io.EOF:
			return nil, io.EOF
		case errors.As(err, &ne) && ne.Timeout():
			return nil, opError("read", "roqr", c.RemoteAddr(), errTimeout)
		}
		var ae *quic.ApplicationError
		if errors.As(err, &ae) && ae.Remote && ae.ErrorCode == 0 {
			return nil, io.EOF
		}
		return nil, err
	}
	c.in.Add(uint64(len(m.Payload)))
	return m, nil
}

// WriteMessages writes msgs in order as one write.
func (c *RoQRConn) WriteMessages(msgs []message.Message) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closed.Load() {
		return opError("write", "roqr", c.RemoteAddr(), net.ErrClosed)
	}
	b := c.wbuf[:0]
	n := 0
	for i := range msgs {
		b = AppendRoQRFrame(b, 0, &msgs[i])
		n += len(msgs[i].Payload)
	}
	if d := time.Duration(c.wtimeout.Load()); d > 0 {
		c.str.SetWriteDeadline(time.Now().Add(d))
	}
	_, err := c.str.Write(b)
	if cap(b) <= 256<<10 {
		c.wbuf = b[:0]
	} else {
		c.wbuf = nil
	}
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return opError("write", "roqr", c.RemoteAddr(), errTimeout)
		}
		return opError("write", "roqr", c.RemoteAddr(), err)
	}
	c.out.Add(uint64(n))
	return nil
}

func (c *RoQRConn) SetReadDeadline(t time.Time) error { return c.str.SetReadDeadline(t) }

// SetWriteTimeout bounds every later write.
func (c *RoQRConn) SetWriteTimeout(d time.Duration) { c.wtimeout.Store(int64(d)) }

// Close ends the stream both ways (bytes written are still delivered).
func (c *RoQRConn) Close() error { return c.close("roqr") }

// BytesRead and BytesWritten count message payload bytes.
func (c *RoQRConn) BytesRead() uint64    { return c.in.Load() }
func (c *RoQRConn) BytesWritten() uint64 { return c.out.Load() }
