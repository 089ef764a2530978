package rtmpquic

// RoQR: RTMP messages framed directly on QUIC (ALPN "roqr"), after the
// public draft "RTMP over QUIC" (draft-gregoire-rtmp-over-quic). There is
// no RTMP handshake and no chunking: each RoQR frame is
//
//	flow id (varint) | timestamp (varint) | message type (1 byte) |
//	message stream id (varint) | chunk stream id (varint) |
//	payload length (varint) | the message's payload (length bytes)
//
// with the QUIC variable-length integers of RFC 9000 §16. The same frame
// is used on streams (frames back to back) and in QUIC DATAGRAMs (exactly
// one frame per datagram, no trailing bytes).
//
// Every message that sets up or changes session state — commands,
// protocol control, user control, shared objects, data (metadata) — and
// every message a decoder needs to start or to go on — sequence headers
// (AVC/HEVC/AAC configuration, Enhanced RTMP SequenceStart and
// MultichannelConfig, video Metadata), sequence ends and keyframes —
// travels, both ways, on the first bidirectional stream the client opens,
// in order.
//
// The datagram profile (Config.RoQRDatagrams, negotiated: both ends
// must offer the QUIC DATAGRAM extension, RFC 9221) moves the rest of the
// audio and video — inter frames and coded audio frames, whose loss a
// decoder conceals until the next keyframe — into DATAGRAMs, so that a
// lost packet drops one old frame instead of holding up every newer one
// behind its retransmission. A frame that does not fit one datagram goes
// on the stream (it is never split), and so does a frame that closely
// follows a stream-carried frame of the same track, so that it cannot
// overtake it (a DATAGRAM is sent ahead of queued stream data).
//
// The receiver feeds both into the one message read path, stream frames
// first. Per track (message stream id and type): media in a datagram that
// is older than media already delivered is dropped, and so is a lossy
// stream frame that datagrams overtook; video in datagrams waits for a
// keyframe from the stream, audio of a codec with a configuration for
// that configuration; a detected gap (a video frame dropped for its age
// or for a full queue) makes the video timeline discontinuous until the
// next keyframe, as the draft asks: inter frames are dropped until then.
// A datagram newer than a same-track stream frame that is partly received
// waits for that frame. Keyframes, sequence headers and everything else
// from the stream are always delivered. The datagram receive queue is
// bounded (the oldest is dropped when full) and never holds up the
// stream; a malformed datagram, or a command or control message in one,
// is counted and dropped, never fatal. Datagrams belong to the
// connection's first stream: further streams are stream-only.
//
// The flow id is written as 0 (the draft's default RTMP session flow) and
// not interpreted on reading: a frame's message stream id places it. A
// RoQRConn is a message transport: the session core serves it as it
// serves chunked RTMP.

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
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
	b = append(b, byte(m.Type))
	b = quicvarint.Append(b, uint64(m.StreamID))
	b = quicvarint.Append(b, uint64(csid))
	b = quicvarint.Append(b, uint64(len(m.Payload)))
	return append(b, m.Payload...)
}

// roqrHeader is a RoQR frame's fields before its payload.
type roqrHeader struct {
	flow, ts, msid, csid, length uint64
	typ                          byte
}

// check validates the fields against RTMP's ranges and maxSize (≤ 0: 16
// MiB − 1).
func (h *roqrHeader) check(maxSize int) error {
	if maxSize <= 0 || maxSize > maxRoQRMessage {
		maxSize = maxRoQRMessage
	}
	switch {
	case h.ts > 0xFFFFFFFF:
		return fmt.Errorf("roqr: timestamp %d out of range", h.ts)
	case h.msid > 0xFFFFFFFF || h.csid > 65599:
		return fmt.Errorf("roqr: stream id %d / chunk stream id %d out of range", h.msid, h.csid)
	case h.length > uint64(maxSize):
		return fmt.Errorf("roqr: message of %d bytes, limit %d", h.length, maxSize)
	}
	return nil
}

func (h *roqrHeader) message(payload []byte) *message.Message {
	return &message.Message{Type: message.Type(h.typ), Timestamp: uint32(h.ts), StreamID: uint32(h.msid),
		ChunkStreamID: uint32(h.csid), Payload: payload}
}

// readRoQRHeader reads the fields of the next frame (io.EOF before its
// first byte, io.ErrUnexpectedEOF within it).
func readRoQRHeader(r *bufio.Reader, maxSize int) (h roqrHeader, err error) {
	unexpected := func(err error) error {
		if errors.Is(err, io.EOF) {
			return io.ErrUnexpectedEOF
		}
		return err
	}
	if h.flow, err = quicvarint.Read(r); err != nil {
		return h, err
	}
	if h.ts, err = quicvarint.Read(r); err != nil {
		return h, unexpected(err)
	}
	if h.typ, err = r.ReadByte(); err != nil {
		return h, unexpected(err)
	}
	if h.msid, err = quicvarint.Read(r); err != nil {
		return h, unexpected(err)
	}
	if h.csid, err = quicvarint.Read(r); err != nil {
		return h, unexpected(err)
	}
	if h.length, err = quicvarint.Read(r); err != nil {
		return h, unexpected(err)
	}
	return h, h.check(maxSize)
}

// readRoQRPayload reads the payload announced by h.
func readRoQRPayload(r *bufio.Reader, h *roqrHeader) (*message.Message, error) {
	m := h.message(make([]byte, h.length))
	if _, err := io.ReadFull(r, m.Payload); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return m, nil
}

// ReadRoQRFrame reads one frame from a stream; messages longer than
// maxSize (or than 16 MiB − 1) are an error. A zero-length payload, which
// the draft forbids senders, is accepted.
func ReadRoQRFrame(r *bufio.Reader, maxSize int) (flow uint64, m *message.Message, err error) {
	h, err := readRoQRHeader(r, maxSize)
	if err != nil {
		return 0, nil, err
	}
	m, err = readRoQRPayload(r, &h)
	if err != nil {
		return 0, nil, err
	}
	return h.flow, m, nil
}

// ParseRoQRDatagram parses the payload of one QUIC DATAGRAM: exactly one
// RoQR frame, no trailing bytes. The message's payload aliases b.
func ParseRoQRDatagram(b []byte, maxSize int) (flow uint64, m *message.Message, err error) {
	var h roqrHeader
	off := 0
	varint := func(v *uint64) error {
		if err != nil {
			return err
		}
		var n int
		*v, n, err = quicvarint.Parse(b[off:])
		if err != nil {
			err = fmt.Errorf("roqr datagram: truncated header (%d bytes)", len(b))
		}
		off += n
		return err
	}
	varint(&h.flow)
	varint(&h.ts)
	if err == nil {
		if off >= len(b) {
			err = fmt.Errorf("roqr datagram: truncated header (%d bytes)", len(b))
		} else {
			h.typ = b[off]
			off++
		}
	}
	varint(&h.msid)
	varint(&h.csid)
	varint(&h.length)
	if err != nil {
		return 0, nil, err
	}
	if err := h.check(maxSize); err != nil {
		return 0, nil, err
	}
	if rest := uint64(len(b) - off); rest != h.length {
		return 0, nil, fmt.Errorf("roqr datagram: payload of %d bytes announced, %d carried", h.length, rest)
	}
	return h.flow, h.message(b[off:len(b):len(b)]), nil
}

// RoQRConn is one RoQR client: whole RTMP messages on a QUIC stream (and,
// in the datagram profile, media in QUIC DATAGRAMs). It has the methods
// the session core's message transport needs.
type RoQRConn struct {
	quicStream
	r       *bufio.Reader
	maxSize int

	wmu      sync.Mutex
	wbuf     []byte
	wtimeout atomic.Int64 // nanoseconds; 0 = none

	in, out atomic.Uint64

	dg *roqrDatagrams // nil: stream-only profile
}

// newRoQRConn wraps str. withDatagrams says the connection's DATAGRAMs
// are this stream's (its first stream): they are used when cfg asks for
// them and the peer offered them too.
func newRoQRConn(qc *quic.Conn, str *quic.Stream, cfg Config, withDatagrams bool, onClose func()) *RoQRConn {
	c := &RoQRConn{quicStream: quicStream{qc: qc, str: str, onClose: onClose}, r: bufio.NewReaderSize(str, 16<<10), maxSize: cfg.MaxMessageSize}
	if st := qc.ConnectionState().SupportsDatagrams; withDatagrams && cfg.RoQRDatagrams && st.Local && st.Remote {
		log := cfg.Logger
		if log == nil {
			log = slog.New(slog.DiscardHandler)
		}
		c.dg = newRoQRDatagrams(c, log.With("proto", RoQRProtocol, "remote", qc.RemoteAddr().String()))
	}
	return c
}

// mapReadErr turns a stream read error into what ReadMessage returns.
func (c *RoQRConn) mapReadErr(err error) error {
	var ne net.Error
	switch {
	case c.closed.Load():
		return opError("read", "roqr", c.RemoteAddr(), net.ErrClosed)
	case errors.Is(err, io.EOF):
		return io.EOF
	case errors.As(err, &ne) && ne.Timeout():
		return opError("read", "roqr", c.RemoteAddr(), errTimeout)
	}
	var ae *quic.ApplicationError
	if errors.As(err, &ae) && ae.Remote && ae.ErrorCode == 0 {
		return io.EOF
	}
	return err
}

// ReadMessage returns the next message from the peer.
func (c *RoQRConn) ReadMessage() (*message.Message, error) {
	if c.closed.Load() {
		return nil, opError("read", "roqr", c.RemoteAddr(), net.ErrClosed)
	}
	if c.dg != nil {
		return c.dg.readMessage()
	}
	_, m, err := ReadRoQRFrame(c.r, c.maxSize)
	if err != nil {
		return nil, c.mapReadErr(err)
	}
	c.in.Add(uint64(len(m.Payload)))
	return m, nil
}

// WriteMessages writes msgs in order as one write (in the datagram
// profile: media that may go in DATAGRAMs does, the rest goes on the
// stream in order).
func (c *RoQRConn) WriteMessages(msgs []message.Message) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closed.Load() {
		return opError("write", "roqr", c.RemoteAddr(), net.ErrClosed)
	}
	if c.dg != nil {
		return c.dg.writeMessages(msgs)
	}
	b := c.wbuf[:0]
	n := 0
	for i := range msgs {
		b = AppendRoQRFrame(b, 0, &msgs[i])
		n += len(msgs[i].Payload)
	}
	err := c.writeStream(b, false)
	c.keepWbuf(b)
	if err != nil {
		return err
	}
	c.out.Add(uint64(n))
	return nil
}

// writeStream writes b to the stream under the write timeout. flush waits
// until every byte has been put in a packet, so that a DATAGRAM queued
// afterwards cannot be sent before them.
func (c *RoQRConn) writeStream(b []byte, flush bool) error {
	if len(b) == 0 {
		return nil
	}
	if d := time.Duration(c.wtimeout.Load()); d > 0 {
		c.str.SetWriteDeadline(time.Now().Add(d))
	}
	var err error
	if flush {
		_, err = c.str.WriteWithLimit(b, noWriteLimit)
	} else {
		_, err = c.str.Write(b)
	}
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return opError("write", "roqr", c.RemoteAddr(), errTimeout)
		}
		return opError("write", "roqr", c.RemoteAddr(), err)
	}
	return nil
}

// noWriteLimit is a write limiter that limits nothing: with it, a stream
// write returns only once all its bytes are in packets (quic-go buffers
// the tail of a plain write).
func noWriteLimit(n int) int { return n }

func (c *RoQRConn) keepWbuf(b []byte) {
	if cap(b) <= 256<<10 {
		c.wbuf = b[:0]
	} else {
		c.wbuf = nil
	}
}

// SetReadDeadline bounds ReadMessage.
func (c *RoQRConn) SetReadDeadline(t time.Time) error {
	if c.dg != nil {
		c.dg.rdl.Set(t)
		return nil
	}
	return c.str.SetReadDeadline(t)
}

// SetWriteTimeout bounds every later write.
func (c *RoQRConn) SetWriteTimeout(d time.Duration) { c.wtimeout.Store(int64(d)) }

// Close ends the stream both ways (bytes written are still delivered).
func (c *RoQRConn) Close() error {
	err := c.close("roqr")
	if c.dg != nil {
		c.dg.stop()
	}
	return err
}

// BytesRead and BytesWritten count message payload bytes.
func (c *RoQRConn) BytesRead() uint64    { return c.in.Load() }
func (c *RoQRConn) BytesWritten() uint64 { return c.out.Load() }
