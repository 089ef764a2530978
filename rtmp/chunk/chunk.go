// Package chunk implements the RTMP chunk stream (RTMP specification 1.0,
// section 5.3): a Reader that reassembles messages from the chunks a peer
// sends and a Writer that splits messages into chunks with compressed
// headers.
//
// # Wire format
//
// A chunk is a basic header (format and chunk stream id, 1 to 3 bytes), a
// message header of 11, 7, 3 or 0 bytes for formats 0 to 3, an optional
// 4-byte extended timestamp, then up to chunk-size bytes of the message.
// Format 0 carries the absolute timestamp, length, type and message stream
// id; format 1 a timestamp delta, length and type; format 2 a delta only;
// format 3 nothing. Chunk stream ids 2 to 65599 are valid.
//
// # Timestamps
//
// Timestamps are 32-bit milliseconds and wrap; deltas are added modulo
// 2^32. A timestamp or delta of 0xFFFFFF or more is sent as 0xFFFFFF in the
// 3-byte field followed by the 4-byte extended timestamp. A format-3 chunk
// that starts a new message reuses the previous delta; after a format-0
// header that delta is the format-0 timestamp itself (FFmpeg, librtmp, SRS
// and FMLE agree; nginx-rtmp uses 0). The Writer never depends on that
// case: it sends format 3 for a new message only after a format-1 or
// format-2 header set the delta explicitly.
//
// Extended timestamps on format-3 chunks: the Writer repeats the 4-byte
// extended timestamp on every format-3 chunk of a message whose header
// carried one, as Flash Player, FMS, FFmpeg, librtmp and SRS do and as the
// 2012 specification text says. Some peers (go-rtmp, nginx-rtmp without
// publish_time_fix, writers that followed the older wording) omit it. The
// Reader accepts both: on a format-3 chunk after a header with an extended
// timestamp it looks at the next 4 bytes without consuming them and takes
// them as the repeated field only if they equal the value of that header's
// extended field; otherwise they are payload. When the chunk carries fewer
// than 4 payload bytes the Reader first compares only those bytes, so it
// never waits for bytes an omitting peer will not send.
//
// # Limits
//
// A peer controls what the Reader allocates, so everything is bounded:
// one message's length by the Reader's maxMessageSize; the sum of the
// declared lengths of concurrently partial messages by four times that;
// the number of chunk streams tracked by MaxChunkStreams; and a message's
// payload buffer grows as its bytes arrive, never from the declared length
// alone: it starts at 64 KiB (4 KiB once 1 MiB is allocated ahead of data
// across partial messages) or the message length if smaller, and doubles
// when full. Chunk sizes from 1 to MaxChunkSize are accepted.
//
// The package never logs and never starts goroutines. A Reader and a
// Writer each belong to one goroutine at a time.
package chunk

import "errors"

const (
	// DefaultChunkSize is the chunk size both directions start with.
	DefaultChunkSize = 128

	// MaxChunkSize is the largest chunk size accepted from a peer and used
	// by a Writer. The specification allows SetChunkSize values up to
	// 2^31-1 but notes that every size above 0xFFFFFF behaves the same,
	// because no message is longer than 0xFFFFFF bytes; a larger value from
	// a peer is treated as a protocol error.
	MaxChunkSize = 0xFFFFFF

	// MaxMessageSize is the largest message length RTMP can express (24
	// bits); it is the Reader's limit when NewReader is given zero.
	MaxMessageSize = 0xFFFFFF

	// MaxChunkStreams is how many distinct chunk stream ids a Reader
	// tracks; a peer that uses more is rejected with ErrLimit. Real
	// clients use fewer than ten.
	MaxChunkStreams = 256

	// MaxChunkStreamID is the largest chunk stream id (3-byte basic header).
	MaxChunkStreamID = 65599
)

var (
	// ErrProtocol is wrapped by every error a Reader returns because the
	// peer broke the chunk stream rules (bad header sequence, bad control
	// message).
	ErrProtocol = errors.New("chunk: protocol error")

	// ErrLimit is wrapped by every error a Reader returns because the peer
	// exceeded a resource bound (message size, partial messages, chunk
	// streams).
	ErrLimit = errors.New("chunk: limit exceeded")
)

// extendedMark is the 3-byte timestamp field value that announces an
// extended timestamp.
const extendedMark = 0xFFFFFF
