package message

import "encoding/binary"

// Keyframes from the bitstream. Some Enhanced RTMP publishers (gortmplib
// up to v1.0.1, OBS before its fix) write frame type 0, which FLV leaves
// undefined, in the header of every HEVC, AV1 or VP9 frame, keyframes
// included. For such a frame ParseVideo looks at the codec's own data to
// tell a keyframe. The parsers read headers only, never allocate, and say
// "not a keyframe" for anything they cannot read.

// Frame types (the frame type field of a video payload) FLV and Enhanced
// RTMP define: 1 keyframe, 2 inter frame, 3 disposable inter frame (H.263
// only), 4 generated keyframe (server use), 5 video info/command frame.
const (
	frameTypeMin = 1
	frameTypeMax = 5
)

// bitstreamKeyframe reports whether data, the coded frame of codec (its
// FourCC; for AVC and HEVC the data after the composition time), is a
// keyframe by its own headers: an AVC IDR or HEVC IRAP NAL unit in
// length-prefixed NAL units, an AV1 shown key frame, a VP9 or VP8 key
// frame. Other codecs are never keyframes by their data.
func bitstreamKeyframe(codec string, data []byte) bool {
	switch codec {
	case "avc1":
		return avcKeyframe(data)
	case "hvc1":
		return hevcKeyframe(data)
	case "av01":
		return av1Keyframe(data)
	case "vp09":
		return vp9Keyframe(data)
	case "vp08":
		return vp8Keyframe(data)
	}
	return false
}

// nalUnits calls key with the first byte of each NAL unit of an access
// unit in the AVCC/HVCC layout (each NAL unit after its size in 4 bytes,
// the lengthSizeMinusOne of 3 that every encoder we know of writes),
// while they fit in p, and stops at the first for which key returns
// true. A NAL unit cut short still counts: its header is what matters.
func nalUnits(p []byte, key func(byte) bool) bool {
	for len(p) > 4 {
		n := binary.BigEndian.Uint32(p)
		p = p[4:]
		if n == 0 || p[0]&0x80 != 0 { // forbidden_zero_bit
			return false
		}
		if key(p[0]) {
			return true
		}
		if uint64(n) >= uint64(len(p)) {
			return false
		}
		p = p[n:]
	}
	return false
}

// avcKeyframe: an IDR slice (nal_unit_type 5).
func avcKeyframe(p []byte) bool {
	return nalUnits(p, func(b byte) bool { return b&0x1f == 5 })
}

// hevcKeyframe: an IRAP picture (nal_unit_type 16-23: BLA, IDR, CRA and
// the reserved IRAP types).
func hevcKeyframe(p []byte) bool {
	return nalUnits(p, func(b byte) bool { t := b >> 1 & 0x3f; return t >= 16 && t <= 23 })
}

// AV1 OBU types (AV1 specification 6.2.2).
const (
	obuSequenceHeader = 1
	obuFrameHeader    = 3
	obuFrame          = 6
)

// av1Keyframe walks the OBUs of a temporal unit (low overhead bitstream
// format, as E-RTMP carries AV1) to its first frame header, in a
// FRAME_HEADER or FRAME OBU: a keyframe when its frame_type is KEY_FRAME
// and show_frame is set (not a frame shown again by show_existing_frame,
// nor a hidden key frame shown later). A sequence header in the same
// temporal unit with reduced_still_picture_header makes every frame a
// shown key frame.
func av1Keyframe(p []byte) bool {
	reduced := false
	for len(p) > 0 {
		h := p[0]
		if h&0x80 != 0 { // obu_forbidden_bit
			return false
		}
		typ := h >> 3 & 0x0f
		p = p[1:]
		if h&0x04 != 0 { // obu_extension_flag
			if len(p) < 1 {
				return false
			}
			p = p[1:]
		}
		size := uint64(len(p)) // no obu_has_size_field: up to the end
		if h&0x02 != 0 {
			var n int
			if size, n = leb128(p); n == 0 {
				return false
			}
			p = p[n:]
		}
		body := p
		if size < uint64(len(p)) {
			body = p[:size]
		}
		switch typ {
		case obuSequenceHeader:
			// seq_profile f(3), still_picture f(1),
			// reduced_still_picture_header f(1).
			if len(body) < 1 {
				return false
			}
			reduced = body[0]&0x08 != 0
		case obuFrameHeader, obuFrame:
			if reduced {
				return true
			}
			if len(body) < 1 {
				return false
			}
			// show_existing_frame f(1), frame_type f(2) (0 is
			// KEY_FRAME), show_frame f(1).
			b := body[0]
			return b&0x80 == 0 && b>>5&0x03 == 0 && b&0x10 != 0
		}
		if size >= uint64(len(p)) {
			return false
		}
		p = p[size:]
	}
	return false
}

// leb128 decodes an AV1 leb128 (at most 8 bytes) and returns it and its
// length, or 0 for the length when p ends first.
func leb128(p []byte) (uint64, int) {
	var v uint64
	for i := 0; i < 8 && i < len(p); i++ {
		v |= uint64(p[i]&0x7f) << (7 * i)
		if p[i]&0x80 == 0 {
			return v, i + 1
		}
	}
	return 0, 0
}

// vp9Keyframe reads the start of a VP9 uncompressed header (VP9
// specification 6.2): frame_marker (2), profile_low_bit, profile_high_bit,
// for profile 3 a reserved zero bit, show_existing_frame, frame_type (0 is
// KEY_FRAME), show_frame, error_resilient_mode, and for a key frame the
// frame sync code 0x49 0x83 0x42, which it checks. In a superframe the
// first frame is the one read, as a key frame comes first.
func vp9Keyframe(p []byte) bool {
	if len(p) < 5 {
		return false
	}
	var b [8]byte
	copy(b[:], p)
	bits := binary.BigEndian.Uint64(b[:])
	if bits>>62 != 2 { // frame_marker
		return false
	}
	bits <<= 4 // frame_marker, profile_low_bit, profile_high_bit
	if b[0]>>4&3 == 3 {
		bits <<= 1 // profile 3: reserved_zero
	}
	// show_existing_frame 0, frame_type 0 (KEY_FRAME), show_frame and
	// error_resilient_mode either, then the sync code: 33 bits at most
	// from the start, within the 5 bytes of p.
	return bits>>62 == 0 && bits>>36&0xffffff == 0x498342
}

// vp8Keyframe reads a VP8 frame tag (RFC 6386 9.1): key_frame bit 0 (0
// for a key frame), version up to 3, then for a key frame the start code
// 0x9d 0x01 0x2a.
func vp8Keyframe(p []byte) bool {
	return len(p) >= 6 && p[0]&0x01 == 0 && p[0]>>1&0x07 <= 3 &&
		p[3] == 0x9d && p[4] == 0x01 && p[5] == 0x2a
}
