package chunk

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"slices"
	"sync"

	"github.com/rtmphub/rtmphub/rtmp/message"
)

const (
	// copyBelow: payload pieces shorter than this are copied next to their
	// chunk header instead of being referenced, which keeps the number of
	// iovecs per flush low (see BenchmarkWriterCopyThreshold).
	copyBelow = 512

	// Discard drops buffers that a burst (a player's join) grew beyond
	// these sizes instead of pooling them. A steady flush of a few audio
	// and video messages fits well within them, and so does a merged
	// write's window (about 25 messages in 350 ms of 25 fps video with
	// AAC, two segments each): pooled, they cost no player memory, and
	// dropping them made every merged write grow new ones (7% of the
	// CPU at 3000 players).
	maxKeptScratch  = 16 << 10
	maxKeptSegments = 128
)

// writerBufs are a Writer's buffers between Queue and Discard. An idle
// Writer holds none: thousands of players each have a Writer, and a
// publisher writes to them one after the other, so one set of buffers
// from the pool serves them all (measured with 1000 players: about 2 KiB
// of heap less per player, twice that in RSS).
type writerBufs struct {
	scratch []byte
	segs    []segment
	iov     net.Buffers
}

var writerPool = sync.Pool{New: func() any { return new(writerBufs) }}

// outStream is the send state of one chunk stream id: the header fields of
// the last message sent on it.
type outStream struct {
	csid      uint32
	seen      bool // a message was queued on it
	typ       message.Type
	streamID  uint32
	length    uint32
	timestamp uint32
	delta     uint32
	deltaOK   bool // delta was set by a format 1 or 2 header (not by format 0)
}

// segment is a piece of the queued output: a payload piece referenced in
// place, or (ext == nil) the range [off, end) of the scratch buffer.
type segment struct {
	ext      []byte
	off, end int
}

// Writer splits messages into chunks. Queue encodes chunk headers into a
// scratch buffer and references large payload pieces without copying them;
// Flush writes everything with one vectored write. A Writer is not safe for
// concurrent use: the caller serializes Queue and Flush.
type Writer struct {
	w         io.Writer
	chunkSize uint32
	copyBelow int
	streams   []outStream

	scratch  []byte    // chunk headers and small payload pieces
	mark     int       // start of the scratch run not yet in segs
	segs     []segment // queued output in order
	extBytes int       // payload bytes referenced by segs
	iov      net.Buffers
	out      net.Buffers // the part of iov WriteTo consumes
	held     *writerBufs // where scratch, segs and iov came from; nil when idle
}

// NewWriter returns a Writer writing to w with the default chunk size.
// Flush uses net.Buffers.WriteTo, which becomes one writev on a
// *net.TCPConn (and a *net.UnixConn); other writers get one Write per
// piece.
func NewWriter(w io.Writer) *Writer {
	return &Writer{w: w, chunkSize: DefaultChunkSize, copyBelow: copyBelow}
}

// SetChunkSize sets the chunk size for messages queued afterwards; n is
// clamped to 1..MaxChunkSize. The caller sends the SetChunkSize message
// (queued with the old size) before calling it.
func (w *Writer) SetChunkSize(n uint32) {
	w.chunkSize = min(max(n, 1), MaxChunkSize)
}

// ChunkSize returns the chunk size used for the next message queued.
func (w *Writer) ChunkSize() uint32 { return w.chunkSize }

// Buffered returns the number of bytes queued and not yet flushed.
func (w *Writer) Buffered() int { return len(w.scratch) + w.extBytes }

// Queue encodes m into chunks. Headers and payload pieces shorter than
// 512 bytes are copied; longer payload pieces are referenced, so m.Payload
// must not change until Flush returns. m itself is only read (one message
// may be queued on many Writers concurrently). A zero ChunkStreamID means
// message.DefaultCSID.
//
// The header of the first chunk is compressed against the last message on
// the same chunk stream: format 0 for the first message, a new message
// stream id, a timestamp lower than the last one (including a 32-bit wrap)
// or a delta of 0xFFFFFF or more; format 1 when the length or type
// changed; format 3 when the delta repeats one a format 1 or 2 header set;
// format 2 otherwise. A timestamp of 0xFFFFFF or more uses the extended
// field, repeated on every continuation chunk.
func (w *Writer) Queue(m *message.Message) error {
	csid := m.ChunkStreamID
	if csid == 0 {
		csid = message.DefaultCSID(m.Type, m.StreamID)
	}
	if csid < 2 || csid > MaxChunkStreamID {
		return fmt.Errorf("chunk: chunk stream id %d outside 2..%d", csid, MaxChunkStreamID)
	}
	if len(m.Payload) > MaxMessageSize {
		return fmt.Errorf("chunk: %v message of %d bytes exceeds the RTMP limit of %d", m.Type, len(m.Payload), MaxMessageSize)
	}
	length := uint32(len(m.Payload))
	s := w.stream(csid)
	if w.held == nil {
		w.take()
	}

	var format byte
	var field uint32 // timestamp (format 0) or delta (1, 2)
	delta := m.Timestamp - s.timestamp
	switch {
	case !s.seen || s.streamID != m.StreamID || m.Timestamp < s.timestamp || delta >= extendedMark:
		// Extended deltas are legal in formats 1 and 2, but Wireshark
		// adds the next deltas to the extended field as if it were
		// absolute; an absolute format-0 timestamp reads the same in
		// every implementation.
		format, field = 0, m.Timestamp
		s.deltaOK = false
	case s.length != length || s.typ != m.Type:
		format, field = 1, delta
		s.delta, s.deltaOK = delta, true
	case s.deltaOK && delta == s.delta:
		format = 3
	default:
		format, field = 2, delta
		s.delta, s.deltaOK = delta, true
	}
	s.seen, s.typ, s.streamID, s.length, s.timestamp = true, m.Type, m.StreamID, length, m.Timestamp
	// Only format 0 carries an extended field: deltas are below
	// extendedMark, so a format-3 new message has none either.
	extended := format == 0 && field >= extendedMark

	// Grow the scratch buffer once for the whole message rather than
	// doubling chunk by chunk: Flush may have released it.
	b := slices.Grow(w.scratch, w.scratchNeed(length, csid, extended))
	b = w.appendBasic(b, format, csid)
	if format < 3 {
		f := min(field, extendedMark)
		b = append(b, byte(f>>16), byte(f>>8), byte(f))
		if format < 2 {
			b = append(b, byte(length>>16), byte(length>>8), byte(length), byte(m.Type))
			if format == 0 {
				b = binary.LittleEndian.AppendUint32(b, m.StreamID)
			}
		}
		if extended {
			b = binary.BigEndian.AppendUint32(b, field)
		}
	}
	w.scratch = b

	p := m.Payload
	for first := true; len(p) > 0; first = false {
		if !first {
			b := w.appendBasic(w.scratch, 3, csid)
			if extended {
				b = binary.BigEndian.AppendUint32(b, field)
			}
			w.scratch = b
		}
		n := min(uint32(len(p)), w.chunkSize)
		w.appendPayload(p[:n])
		p = p[n:]
	}
	return nil
}

// scratchNeed returns an upper bound of the scratch bytes Queue writes for
// a message: its chunk headers and the payload pieces it copies.
func (w *Writer) scratchNeed(length, csid uint32, extended bool) int {
	basic := 1
	if csid >= 320 {
		basic = 3
	} else if csid >= 64 {
		basic = 2
	}
	need := basic + 11 + 4
	if length == 0 {
		return need
	}
	cs := w.chunkSize
	chunks := (length + cs - 1) / cs
	cont := basic
	if extended {
		cont += 4
	}
	need += int(chunks-1) * cont
	if int(cs) < w.copyBelow {
		return need + int(length)
	}
	if last := int(length - (chunks-1)*cs); last < w.copyBelow {
		need += last
	}
	return need
}

// appendBasic appends a basic header of the given format for csid.
func (w *Writer) appendBasic(b []byte, format byte, csid uint32) []byte {
	f := format << 6
	switch {
	case csid < 64:
		return append(b, f|byte(csid))
	case csid < 320:
		return append(b, f, byte(csid-64))
	default:
		return append(b, f|1, byte(csid-64), byte((csid-64)>>8))
	}
}

// appendPayload queues a piece of payload, copying it if it is small.
func (w *Writer) appendPayload(p []byte) {
	if len(p) < w.copyBelow {
		w.scratch = append(w.scratch, p...)
		return
	}
	w.closeRun()
	w.segs = append(w.segs, segment{ext: p})
	w.extBytes += len(p)
}

// closeRun moves the scratch bytes written since the last segment into a
// segment.
func (w *Writer) closeRun() {
	if len(w.scratch) > w.mark {
		w.segs = append(w.segs, segment{off: w.mark, end: len(w.scratch)})
		w.mark = len(w.scratch)
	}
}

// Flush writes everything queued with one vectored write and empties the
// queue, whether or not the write succeeds. Buffers grown beyond 16 KiB (or
// 128 pieces) by a burst are released. After an error the peer's view of
// the chunk streams is unknown and the connection must be closed.
func (w *Writer) Flush() error {
	bufs := w.Pending()
	if len(bufs) == 0 {
		return nil
	}
	w.out = bufs
	_, err := w.out.WriteTo(w.w)
	w.Discard()
	return err
}

// Pending returns the queued output as buffers, in order, for a caller
// that writes them itself (a non-blocking write, say). The buffers stay
// valid until Discard, which the caller must call next; pieces of payload
// are the queued messages' own bytes.
func (w *Writer) Pending() net.Buffers {
	w.closeRun()
	iov := w.iov[:0]
	for _, sg := range w.segs {
		if sg.ext != nil {
			iov = append(iov, sg.ext)
		} else {
			iov = append(iov, w.scratch[sg.off:sg.end])
		}
	}
	w.iov = iov
	return iov
}

// Discard empties the queue after Pending (or Flush), dropping references
// to payloads, and gives the buffers back to the pool (those a burst grew
// are dropped instead).
func (w *Writer) Discard() {
	clear(w.iov)
	clear(w.segs)
	w.out = nil
	w.mark = 0
	w.extBytes = 0
	h := w.held
	if h == nil {
		// Nothing was queued since the last Discard: nothing to give back.
		w.scratch, w.segs, w.iov = nil, nil, nil
		return
	}
	h.scratch, h.segs, h.iov = w.scratch[:0], w.segs[:0], w.iov[:0]
	if cap(h.scratch) > maxKeptScratch {
		h.scratch = nil
	}
	if cap(h.segs) > maxKeptSegments {
		h.segs = nil
	}
	if cap(h.iov) > maxKeptSegments {
		h.iov = nil
	}
	w.scratch, w.segs, w.iov, w.held = nil, nil, nil, nil
	writerPool.Put(h)
}

// take gives an idle Writer buffers from the pool.
func (w *Writer) take() {
	h := writerPool.Get().(*writerBufs)
	w.held = h
	w.scratch, w.segs, w.iov = h.scratch, h.segs, h.iov
	h.scratch, h.segs, h.iov = nil, nil, nil
}

// WriteMessage queues m and flushes.
func (w *Writer) WriteMessage(m *message.Message) error {
	if err := w.Queue(m); err != nil {
		return err
	}
	return w.Flush()
}

// stream returns the send state of csid.
func (w *Writer) stream(csid uint32) *outStream {
	for i := range w.streams {
		if w.streams[i].csid == csid {
			return &w.streams[i]
		}
	}
	w.streams = append(w.streams, outStream{csid: csid})
	return &w.streams[len(w.streams)-1]
}
