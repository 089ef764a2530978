package flv

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/rtmphub/rtmphub/rtmp/message"
)

// Sizes of the fixed parts of a file.
const (
	// HeaderSize is the size of the file header this package writes (and
	// the smallest DataOffset it reads).
	HeaderSize = 9
	// TagHeaderSize is the size of a tag header: type, DataSize (24 bits),
	// Timestamp (24 bits), TimestampExtended, StreamID (24 bits).
	TagHeaderSize = 11
	// PrevSizeSize is the size of a PreviousTagSize field.
	PrevSizeSize = 4
	// MaxDataSize is the largest DataSize the 24-bit field can hold.
	MaxDataSize = 1<<24 - 1
	// DefaultMaxTagSize is the largest tag data a Reader accepts when its
	// MaxTagSize is zero. It is above MaxDataSize, so by default only the
	// format limits the size of a tag.
	DefaultMaxTagSize = 16 << 20
)

// Tag types (the low 5 bits of a tag's first byte). They are the RTMP
// message types of the same payloads.
const (
	TagAudio  = message.TypeAudio
	TagVideo  = message.TypeVideo
	TagScript = message.TypeDataAMF0
)

var (
	// ErrCorrupt reports bytes that are not a valid FLV file at the offset
	// the error names: a bad signature, a PreviousTagSize that does not
	// match its tag, reserved bits set in a tag type, an encrypted tag.
	ErrCorrupt = errors.New("flv: corrupt file")
	// ErrTagTooLarge reports a tag whose DataSize exceeds the Reader's
	// MaxTagSize.
	ErrTagTooLarge = errors.New("flv: tag too large")
	// ErrNoMetadata reports a file whose script tags before the first
	// audio or video tag include no onMetaData.
	ErrNoMetadata = errors.New("flv: no onMetaData")
)

// Tag is one FLV tag: audio (8), video (9) or script data (18), or another
// type a file may carry, passed through unchanged.
type Tag struct {
	Type message.Type
	// Timestamp in milliseconds, the extended byte included (bits 24-31).
	Timestamp uint32
	// StreamID is the 24-bit field the specification says is always 0.
	StreamID uint32
	// Data is the tag body: the payload of the RTMP message of the same
	// type, Enhanced RTMP ExHeaders included.
	Data []byte
	// Offset is the file position of the tag header (where Reader.SeekTag
	// goes to read this tag again). Writing ignores it.
	Offset int64
}

// Header is the file header.
type Header struct {
	Version            uint8
	HasAudio, HasVideo bool
	// DataOffset is the size of the header: 9, or more when the file
	// carries header bytes this package does not know, which it skips.
	DataOffset uint32
}

const (
	flagVideo = 0x01
	flagAudio = 0x04
)

// AppendHeader appends the file header h (DataOffset 9 whatever h says)
// and PreviousTagSize0 to b.
func AppendHeader(b []byte, h Header) []byte {
	var flags byte
	if h.HasAudio {
		flags |= flagAudio
	}
	if h.HasVideo {
		flags |= flagVideo
	}
	return append(b, 'F', 'L', 'V', h.Version, flags, 0, 0, 0, HeaderSize, 0, 0, 0, 0)
}

// AppendTag appends t's header, data and PreviousTagSize to b. It fails
// when the data is larger than MaxDataSize, the type does not fit in 5 bits
// or the stream id in 24.
func AppendTag(b []byte, t *Tag) ([]byte, error) {
	if len(t.Data) > MaxDataSize {
		return b, fmt.Errorf("flv: tag data of %d bytes, at most %d fit", len(t.Data), MaxDataSize)
	}
	if t.Type > 0x1f {
		return b, fmt.Errorf("flv: tag type %d does not fit in 5 bits", t.Type)
	}
	if t.StreamID > 0xffffff {
		return b, fmt.Errorf("flv: stream id %d does not fit in 24 bits", t.StreamID)
	}
	b = appendTagHeader(b, t.Type, len(t.Data), t.Timestamp, t.StreamID)
	b = append(b, t.Data...)
	return binary.BigEndian.AppendUint32(b, uint32(TagHeaderSize+len(t.Data))), nil
}

func appendTagHeader(b []byte, typ message.Type, size int, ts, streamID uint32) []byte {
	return append(b, byte(typ),
		byte(size>>16), byte(size>>8), byte(size),
		byte(ts>>16), byte(ts>>8), byte(ts), byte(ts>>24),
		byte(streamID>>16), byte(streamID>>8), byte(streamID))
}

// tagHeader is a decoded tag header.
type tagHeader struct {
	typ      message.Type
	size     uint32
	ts       uint32
	streamID uint32
}

// parseTagHeader decodes the 11 bytes of a tag header. Reserved bits and
// the filter (encryption) bit make it fail: this package cannot play
// encrypted tags, and set reserved bits mean the bytes are not a tag.
func parseTagHeader(p []byte) (tagHeader, error) {
	_ = p[TagHeaderSize-1]
	if p[0]&0xe0 != 0 {
		if p[0]&0xc0 == 0 {
			return tagHeader{}, fmt.Errorf("encrypted tag (type byte 0x%02x): %w", p[0], ErrCorrupt)
		}
		return tagHeader{}, fmt.Errorf("reserved bits set in tag type byte 0x%02x: %w", p[0], ErrCorrupt)
	}
	return tagHeader{
		typ:      message.Type(p[0]),
		size:     uint32(p[1])<<16 | uint32(p[2])<<8 | uint32(p[3]),
		ts:       uint32(p[7])<<24 | uint32(p[4])<<16 | uint32(p[5])<<8 | uint32(p[6]),
		streamID: uint32(p[8])<<16 | uint32(p[9])<<8 | uint32(p[10]),
	}, nil
}

// isSeekPoint reports whether a video payload is a keyframe that can
// start playback: a picture, not a sequence header, end of sequence,
// command or metadata frame. Enhanced RTMP payloads (HEVC, AV1, VP9...,
// multitrack) are classified by message.ParseVideo like legacy ones. A
// payload too short to classify counts when its frame type says keyframe.
func isSeekPoint(p []byte) bool {
	v, ok := message.ParseVideo(p)
	return seekPoint(p, v, ok)
}

// seekPoint is isSeekPoint of p, which message.ParseVideo classified as v,
// ok.
func seekPoint(p []byte, v message.VideoInfo, ok bool) bool {
	if !ok {
		// Only the frame type is left to go by: bits 4-6 in both layouts.
		return len(p) > 0 && p[0]>>4&0x07 == 1
	}
	return v.Keyframe && !v.SequenceHeader && !v.SequenceEnd && !v.Command && !v.Metadata
}
