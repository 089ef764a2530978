package chunk

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/rtmphub/rtmphub/rtmp/message"
)

const (
	// firstAlloc is the most a message's payload buffer is allocated ahead
	// of the bytes that fill it; messages up to this size get one exact
	// allocation. Bigger ones double as their bytes arrive.
	firstAlloc = 64 << 10
	// smallAlloc replaces firstAlloc once aheadLimit bytes are already
	// allocated ahead of data across all partial messages, so that a peer
	// opening many messages without sending them gains little memory.
	smallAlloc = 4 << 10
	aheadLimit = 1 << 20

	// partialFactor times the maximum message size bounds the sum of the
	// declared lengths of concurrently partial messages.
	partialFactor = 4
)

// inStream is the receive state of one chunk stream id.
type inStream struct {
	csid      uint32
	seen      bool // a format 0 or 1 header set length, type and stream id
	typ       message.Type
	streamID  uint32
	length    uint32 // of the current (or last) message
	timestamp uint32 // absolute timestamp of the current (or last) message
	delta     uint32 // the delta a format-3 new message adds
	extended  bool   // the last format 0-2 header carried an extended timestamp
	extValue  uint32 // the value of that extended timestamp
	active    bool   // a message is being reassembled in buf
	buf       []byte // len = bytes received so far
}

// Reader reassembles RTMP messages from a chunk stream. It is not safe for
// concurrent use.
type Reader struct {
	br         readBuf
	chunkSize  uint32
	maxMsg     uint32
	maxPartial uint64
	partial    uint64 // sum of declared lengths of partial messages
	ahead      int    // payload bytes allocated but not yet received
	nread      uint64
	streams    []*inStream
	last       *inStream
	err        error
	hdr        [15]byte // message header plus extended timestamp
}

// NewReader returns a Reader that reads chunks from r. The Reader buffers
// what it reads (it looks ahead at extended timestamps) in a buffer it
// borrows only while bytes wait in it: an idle Reader holds none.
//
// maxMessageSize bounds the length of one message; a longer declared length
// fails with ErrLimit before any of its bytes are read. Zero means
// MaxMessageSize. The declared lengths of all partial messages together
// may not exceed four times maxMessageSize.
func NewReader(r io.Reader, maxMessageSize uint32) *Reader {
	return NewReaderBuffered(r, nil, maxMessageSize)
}

// NewReaderBuffered is NewReader for a stream of which buffered, bytes
// already read from r (by a handshake's buffered reader), come first.
func NewReaderBuffered(r io.Reader, buffered []byte, maxMessageSize uint32) *Reader {
	if maxMessageSize == 0 || maxMessageSize > MaxMessageSize {
		maxMessageSize = MaxMessageSize
	}
	rd := &Reader{
		chunkSize:  DefaultChunkSize,
		maxMsg:     maxMessageSize,
		maxPartial: partialFactor * uint64(maxMessageSize),
	}
	rd.br.src = r
	switch {
	case len(buffered) > pooledReadSize:
		rd.br.src = io.MultiReader(bytes.NewReader(bytes.Clone(buffered)), r)
	case len(buffered) > 0:
		rd.br.buf = readPool.Get().(*[pooledReadSize]byte)
		rd.br.w = copy(rd.br.buf[:], buffered)
	}
	return rd
}

// ChunkSize returns the chunk size the peer currently writes with.
func (r *Reader) ChunkSize() uint32 { return r.chunkSize }

// BytesRead returns the number of bytes consumed from the underlying
// reader since NewReader (chunk headers and payloads; bytes the bufio.Reader
// read ahead are not counted until consumed). Acknowledgements are based
// on it.
func (r *Reader) BytesRead() uint64 { return r.nread }

// ReadMessage reads chunks until a message is complete and returns it.
// Payload is freshly allocated and owned by the caller (nil for an empty
// message). SetChunkSize and Abort messages are applied by the Reader and
// also returned.
//
// At the end of the stream between chunks ReadMessage returns io.EOF; in
// the middle of a chunk, io.ErrUnexpectedEOF. Errors caused by the peer
// wrap ErrProtocol or ErrLimit. An error returned before any byte of a chunk
// was consumed (for example an expired read deadline while the peer is
// idle) leaves the Reader usable; after any other error the Reader returns
// that error from every later call.
func (r *Reader) ReadMessage() (*message.Message, error) {
	if r.err != nil {
		return nil, r.err
	}
	for {
		b0, err := r.br.ReadByte()
		if err != nil {
			return nil, err // nothing consumed: the caller may call again
		}
		r.nread++
		m, err := r.readChunk(b0)
		if err != nil {
			r.err = err
			return nil, err
		}
		if m != nil {
			return m, nil
		}
	}
}

// readChunk reads the rest of the chunk whose first byte is b0 and returns
// the message it completes, if any.
func (r *Reader) readChunk(b0 byte) (*message.Message, error) {
	format := b0 >> 6
	csid := uint32(b0 & 0x3f)
	switch csid {
	case 0:
		if err := r.readFull(r.hdr[:1]); err != nil {
			return nil, err
		}
		csid = 64 + uint32(r.hdr[0])
	case 1:
		if err := r.readFull(r.hdr[:2]); err != nil {
			return nil, err
		}
		csid = 64 + uint32(r.hdr[0]) + uint32(r.hdr[1])<<8
	}
	s, err := r.stream(csid)
	if err != nil {
		return nil, err
	}
	if format < 3 {
		if err := r.readHeader(s, format); err != nil {
			return nil, err
		}
	} else {
		if !s.seen {
			return nil, fmt.Errorf("%w: chunk stream %d: format-3 chunk without a previous header", ErrProtocol, csid)
		}
		if s.extended {
			if err := r.skipRepeatedExtended(s); err != nil {
				return nil, err
			}
		}
		if !s.active {
			s.timestamp += s.delta
			if err := r.begin(s); err != nil {
				return nil, err
			}
		}
	}
	return r.readData(s)
}

// readHeader reads a format 0, 1 or 2 message header (and its extended
// timestamp) and starts a new message on s.
func (r *Reader) readHeader(s *inStream, format byte) error {
	// librtmp sends its first ping response on chunk stream 2 with a
	// format-1 header (SRS #98): a format 1 on a fresh chunk stream is
	// taken relative to timestamp 0 on message stream 0.
	if format == 2 && !s.seen {
		return fmt.Errorf("%w: chunk stream %d: format-2 chunk without a previous header", ErrProtocol, s.csid)
	}
	size := [3]int{11, 7, 3}[format]
	if err := r.readFull(r.hdr[:size]); err != nil {
		return err
	}
	field := uint32(r.hdr[0])<<16 | uint32(r.hdr[1])<<8 | uint32(r.hdr[2])
	value := field
	if field == extendedMark {
		if err := r.readFull(r.hdr[size : size+4]); err != nil {
			return err
		}
		value = binary.BigEndian.Uint32(r.hdr[size:])
	}
	if s.active {
		// A new header in the middle of a message: the peer gave up on
		// the partial message (as with an Abort) and starts another.
		r.drop(s)
	}
	switch format {
	case 0:
		s.timestamp = value
		s.streamID = binary.LittleEndian.Uint32(r.hdr[7:11])
	default:
		s.timestamp += value
	}
	if format < 2 {
		s.length = uint32(r.hdr[3])<<16 | uint32(r.hdr[4])<<8 | uint32(r.hdr[5])
		s.typ = message.Type(r.hdr[6])
	}
	s.delta = value
	s.extended = field == extendedMark
	s.extValue = value
	s.seen = true
	return r.begin(s)
}

// skipRepeatedExtended consumes the 4-byte extended timestamp a format-3
// chunk repeats after a header that carried one, if the peer sent it: the
// next bytes are taken as that field only when they equal its value. When
// the chunk has fewer than 4 payload bytes, only those are looked at first,
// so a peer that omits the field and then waits is never waited for.
func (r *Reader) skipRepeatedExtended(s *inStream) error {
	n := s.length
	if s.active {
		n -= uint32(len(s.buf))
	}
	n = min(n, r.chunkSize)
	var want [4]byte
	binary.BigEndian.PutUint32(want[:], s.extValue)
	if n == 0 && r.br.Buffered() < 4 {
		return nil // empty message: never block on a field that may not come
	}
	if n > 0 && n < 4 {
		p, err := r.br.Peek(int(n))
		if err != nil {
			return peekErr(err)
		}
		if !bytes.Equal(p, want[:n]) {
			return nil
		}
	}
	p, err := r.br.Peek(4)
	if err != nil {
		return peekErr(err)
	}
	if bytes.Equal(p, want[:]) {
		d, _ := r.br.Discard(4)
		r.nread += uint64(d)
	}
	return nil
}

// peekErr turns an end of stream while looking ahead into "no repeated
// field": reading the payload then reports the truncation.
func peekErr(err error) error {
	if errors.Is(err, io.EOF) {
		return nil
	}
	return err
}

// begin starts a message of s.length bytes on s.
func (r *Reader) begin(s *inStream) error {
	if s.length > r.maxMsg {
		return fmt.Errorf("%w: chunk stream %d: message of %d bytes exceeds the limit of %d", ErrLimit, s.csid, s.length, r.maxMsg)
	}
	if r.partial+uint64(s.length) > r.maxPartial {
		return fmt.Errorf("%w: chunk stream %d: partial messages would hold %d bytes, limit %d", ErrLimit, s.csid, r.partial+uint64(s.length), r.maxPartial)
	}
	s.active = true
	s.buf = nil
	r.partial += uint64(s.length)
	return nil
}

// readData reads the payload of the current chunk of s and returns the
// message if it is now complete.
func (r *Reader) readData(s *inStream) (*message.Message, error) {
	n := min(s.length-uint32(len(s.buf)), r.chunkSize)
	for n > 0 {
		if len(s.buf) == cap(s.buf) {
			r.grow(s)
		}
		start := len(s.buf)
		k := min(int(n), cap(s.buf)-start)
		got, err := r.read(s.buf[start : start+k])
		s.buf = s.buf[:start+got]
		r.ahead -= got
		if err != nil {
			return nil, err
		}
		n -= uint32(got)
	}
	if uint32(len(s.buf)) < s.length {
		return nil, nil
	}
	m := &message.Message{
		Type:          s.typ,
		StreamID:      s.streamID,
		Timestamp:     s.timestamp,
		ChunkStreamID: s.csid,
		Payload:       s.buf,
	}
	s.buf = nil
	s.active = false
	r.partial -= uint64(s.length)
	if err := r.control(m); err != nil {
		return nil, err
	}
	return m, nil
}

// grow enlarges the payload buffer of s, which is full: a new buffer gets
// firstAlloc (or smallAlloc) bytes, a used one doubles, never beyond the
// message length, so a complete payload has cap == len.
func (r *Reader) grow(s *inStream) {
	c := cap(s.buf)
	want := 2 * c
	if c == 0 {
		want = firstAlloc
		if r.ahead >= aheadLimit {
			want = smallAlloc
		}
	}
	want = min(want, int(s.length))
	nb := make([]byte, len(s.buf), want)
	copy(nb, s.buf)
	r.ahead += want - c
	s.buf = nb
}

// drop discards the partial message of s.
func (r *Reader) drop(s *inStream) {
	r.partial -= uint64(s.length)
	r.ahead -= cap(s.buf) - len(s.buf)
	s.buf = nil
	s.active = false
}

// control applies SetChunkSize and Abort.
func (r *Reader) control(m *message.Message) error {
	switch m.Type {
	case message.TypeSetChunkSize:
		if len(m.Payload) < 4 {
			return fmt.Errorf("%w: SetChunkSize with %d-byte payload", ErrProtocol, len(m.Payload))
		}
		n := binary.BigEndian.Uint32(m.Payload)
		if n == 0 || n > MaxChunkSize {
			return fmt.Errorf("%w: SetChunkSize %d outside 1..%d", ErrProtocol, n, MaxChunkSize)
		}
		r.chunkSize = n
	case message.TypeAbort:
		if len(m.Payload) < 4 {
			return fmt.Errorf("%w: Abort with %d-byte payload", ErrProtocol, len(m.Payload))
		}
		id := binary.BigEndian.Uint32(m.Payload)
		for _, s := range r.streams {
			if s.csid == id && s.active {
				r.drop(s)
			}
		}
	}
	return nil
}

// stream returns the state of chunk stream csid, creating it if needed.
func (r *Reader) stream(csid uint32) (*inStream, error) {
	if r.last != nil && r.last.csid == csid {
		return r.last, nil
	}
	for _, s := range r.streams {
		if s.csid == csid {
			r.last = s
			return s, nil
		}
	}
	if len(r.streams) >= MaxChunkStreams {
		return nil, fmt.Errorf("%w: more than %d chunk streams (chunk stream %d)", ErrLimit, MaxChunkStreams, csid)
	}
	s := &inStream{csid: csid}
	r.streams = append(r.streams, s)
	r.last = s
	return s, nil
}

// readFull fills p, counting the bytes consumed; an end of stream here is
// in the middle of a chunk.
func (r *Reader) readFull(p []byte) error {
	_, err := r.read(p)
	return err
}

// read is readFull that also reports how many bytes it read.
func (r *Reader) read(p []byte) (int, error) {
	n, err := io.ReadFull(&r.br, p)
	r.nread += uint64(n)
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}
