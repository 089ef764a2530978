package message

import (
	"encoding/binary"
	"strconv"
)

// Media payloads come in two layouts. Legacy FLV tags start with a byte of
// frame type and codec id (video) or sound format (audio), followed for
// AVC/HEVC by an AVCPacketType and for AAC by an AACPacketType. Enhanced
// RTMP (E-RTMP v1/v2) sets bit 7 of a video byte, or uses sound format 9,
// and then names the codec by a FourCC after a packet type, optionally
// preceded by ModEx modifiers and optionally carrying several tracks.

// Enhanced RTMP packet types. Audio and video share the values of 0-2
// and 7; 3-6 differ.
const (
	exSequenceStart        = 0
	exCodedFrames          = 1
	exSequenceEnd          = 2
	exVideoCodedFramesX    = 3
	exVideoMetadata        = 4
	exVideoMPEG2TSSeqStart = 5
	exVideoMultitrack      = 6
	exAudioMultichannel    = 4
	exAudioMultitrack      = 5
	exModEx                = 7
)

// Multitrack types (AvMultitrackType).
const (
	oneTrack             = 0
	manyTracks           = 1
	manyTracksManyCodecs = 2
)

// Legacy video frame types and codec ids.
const (
	frameKey     = 1
	frameCommand = 5
	videoAVC     = 7
	videoHEVC    = 12 // not in the FLV specification; used by some encoders and CDNs
	soundExAudio = 9
	soundAAC     = 10
)

var legacyVideoCodecs = [16]string{
	1:         "jpeg",
	2:         "h263", // Sorenson H.263
	3:         "screen",
	4:         "vp6",
	5:         "vp6a",
	6:         "screen2",
	videoAVC:  "avc1",
	videoHEVC: "hvc1",
}

var legacyAudioCodecs = [16]string{
	0:        "lpcm", // platform endian
	1:        "adpcm",
	2:        ".mp3",
	3:        "lpcmle",
	4:        "nellymoser16k",
	5:        "nellymoser8k",
	6:        "nellymoser",
	7:        "alaw",
	8:        "ulaw",
	soundAAC: "mp4a",
	11:       "speex",
	14:       ".mp3", // MP3 8 kHz
	15:       "native",
}

// VideoInfo classifies a video message payload.
type VideoInfo struct {
	// Codec is the FourCC of an enhanced payload ("avc1", "hvc1", "av01",
	// "vp09", "vp08", "vvc1" or whatever four bytes it names), or for a
	// legacy one "h263", "screen", "vp6", "vp6a", "screen2", "jpeg",
	// "avc1" (id 7) or "hvc1" (id 12); "" for an unknown legacy id and for
	// enhanced command frames, which carry no FourCC. For multitrack
	// payloads it is the codec of the first track.
	Codec    string
	Enhanced bool // E-RTMP ExHeader
	// Keyframe marks frame type 1, or for a frame without a valid frame
	// type (see NoFrameType) a keyframe by the codec's data.
	Keyframe bool
	// NoFrameType marks a payload whose frame type is 0 or another value
	// FLV does not define (6-15, or 6-7 enhanced), as some E-RTMP
	// publishers send for every frame. Its coded frames are classified
	// by their data instead: AVC IDR and HEVC IRAP NAL units (4-byte NAL
	// unit sizes), AV1 shown key frames, VP9 and VP8 key frames, of the
	// first track when multitrack; anything else is no keyframe.
	NoFrameType bool
	// SequenceHeader marks a decoder configuration: AVC/HEVC packet type
	// 0, or E-RTMP SequenceStart or MPEG2TSSequenceStart, also inside a
	// multitrack payload.
	SequenceHeader bool
	// SequenceEnd marks AVC/HEVC packet type 2 or E-RTMP SequenceEnd.
	SequenceEnd bool
	// Metadata marks an E-RTMP Metadata packet (AMF-encoded colour/HDR
	// information), which a late joiner needs along with the sequence
	// header.
	Metadata bool
	// Command marks a video info/command frame (frame type 5) that is not
	// Metadata: it carries no picture.
	Command    bool
	Multitrack bool
	// TrackKey names the (codec, track) pairs of a multitrack payload as
	// "fourcc:id" joined by ",", e.g. "hvc1:0" or "avc1:0,hvc1:1", so
	// that one sequence header can be kept per key. "" when not
	// multitrack.
	TrackKey string
	// CompositionTime is the composition time offset of an AVC or HEVC
	// coded frame, in milliseconds: legacy packet type 1 and E-RTMP
	// CodedFrames of avc1 or hvc1 (of the first track when multitrack).
	// The frame is presented at its timestamp plus this. 0 for anything
	// else (CodedFramesX has none).
	CompositionTime int32
}

// AudioInfo classifies an audio message payload.
type AudioInfo struct {
	// Codec is the FourCC of an enhanced payload ("mp4a", ".mp3", "Opus",
	// "fLaC", "ac-3", "ec-3" or whatever four bytes it names), or for a
	// legacy one "mp4a" (AAC, 10), ".mp3" (2 and 14), "lpcm", "adpcm",
	// "lpcmle", "nellymoser16k", "nellymoser8k", "nellymoser", "alaw",
	// "ulaw", "speex", "native"; "" for a reserved legacy format. For
	// multitrack payloads it is the codec of the first track.
	Codec    string
	Enhanced bool // E-RTMP ExHeader (sound format 9)
	// SequenceHeader marks a decoder configuration: AAC packet type 0 or
	// E-RTMP SequenceStart, also inside a multitrack payload.
	SequenceHeader bool
	// SequenceEnd marks an E-RTMP SequenceEnd.
	SequenceEnd bool
	// MultichannelConfig marks an E-RTMP MultichannelConfig packet (the
	// channel order for codecs that do not describe it), which a late
	// joiner needs along with the sequence header.
	MultichannelConfig bool
	Multitrack         bool
	// TrackKey is as in VideoInfo.
	TrackKey string
}

// ParseVideo classifies a video message payload. It returns false, and a
// zero VideoInfo, when p is too short or malformed to tell.
func ParseVideo(p []byte) (VideoInfo, bool) {
	if len(p) == 0 {
		return VideoInfo{}, false
	}
	b := p[0]
	if b&0x80 == 0 {
		frameType, codecID := b>>4, b&0x0f
		v := VideoInfo{Codec: legacyVideoCodecs[codecID], Keyframe: frameType == frameKey}
		v.NoFrameType = frameType < frameTypeMin || frameType > frameTypeMax
		if frameType == frameCommand {
			// The next byte is a command (seek start/end), not a
			// packet type.
			v.Command = true
			return v, true
		}
		if codecID == videoAVC || codecID == videoHEVC {
			if len(p) < 2 {
				return VideoInfo{}, false
			}
			v.SequenceHeader = p[1] == 0
			v.SequenceEnd = p[1] == 2
			if p[1] == 1 && len(p) >= 5 {
				v.CompositionTime = si24(p[2:])
				if v.NoFrameType {
					v.Keyframe = bitstreamKeyframe(v.Codec, p[5:])
				}
			}
		}
		return v, true
	}

	frameType := b >> 4 & 0x07
	v := VideoInfo{Enhanced: true, Keyframe: frameType == frameKey}
	v.NoFrameType = frameType < frameTypeMin || frameType > frameTypeMax
	pt, rest, ok := skipModEx(b&0x0f, p[1:])
	if !ok {
		return VideoInfo{}, false
	}
	if frameType == frameCommand && pt != exVideoMetadata {
		v.Command = true
		return v, true
	}
	ex, ok := parseExTracks(pt, rest, exVideoMultitrack)
	if !ok {
		return VideoInfo{}, false
	}
	v.Codec, v.Multitrack, v.TrackKey = ex.codec, ex.multitrack, ex.trackKey
	switch ex.packetType {
	case exSequenceStart, exVideoMPEG2TSSeqStart:
		v.SequenceHeader = true
	case exSequenceEnd:
		v.SequenceEnd = true
	case exVideoMetadata:
		v.Metadata = true
	case exCodedFrames:
		data := ex.data
		if v.Codec == "avc1" || v.Codec == "hvc1" {
			if len(data) < 3 {
				break
			}
			v.CompositionTime = si24(data)
			data = data[3:]
		}
		if v.NoFrameType {
			v.Keyframe = bitstreamKeyframe(v.Codec, data)
		}
	case exVideoCodedFramesX:
		if v.NoFrameType {
			v.Keyframe = bitstreamKeyframe(v.Codec, ex.data)
		}
	}
	return v, true
}

// si24 reads a big-endian signed 24-bit integer from the first 3 bytes of p.
func si24(p []byte) int32 {
	return int32(uint32(p[0])<<24|uint32(p[1])<<16|uint32(p[2])<<8) >> 8
}

// ParseAudio classifies an audio message payload. It returns false, and a
// zero AudioInfo, when p is too short or malformed to tell (an empty
// payload is the "audio silence" message).
func ParseAudio(p []byte) (AudioInfo, bool) {
	if len(p) == 0 {
		return AudioInfo{}, false
	}
	format := p[0] >> 4
	if format != soundExAudio {
		a := AudioInfo{Codec: legacyAudioCodecs[format]}
		if format == soundAAC {
			if len(p) < 2 {
				return AudioInfo{}, false
			}
			a.SequenceHeader = p[1] == 0
		}
		return a, true
	}

	pt, rest, ok := skipModEx(p[0]&0x0f, p[1:])
	if !ok {
		return AudioInfo{}, false
	}
	ex, ok := parseExTracks(pt, rest, exAudioMultitrack)
	if !ok {
		return AudioInfo{}, false
	}
	a := AudioInfo{Enhanced: true, Codec: ex.codec, Multitrack: ex.multitrack, TrackKey: ex.trackKey}
	switch ex.packetType {
	case exSequenceStart:
		a.SequenceHeader = true
	case exSequenceEnd:
		a.SequenceEnd = true
	case exAudioMultichannel:
		a.MultichannelConfig = true
	}
	return a, true
}

// skipModEx skips the ModEx modifiers that precede the real packet type:
// each is a size (UI8 + 1, or UI16 + 1 when the UI8 is 255), that many
// bytes of data, then a byte of ModEx type (high nibble) and packet type
// (low nibble). It returns the final packet type and the bytes after it.
func skipModEx(pt byte, p []byte) (byte, []byte, bool) {
	for pt == exModEx {
		if len(p) < 1 {
			return 0, nil, false
		}
		size := int(p[0]) + 1
		p = p[1:]
		if size == 256 {
			if len(p) < 2 {
				return 0, nil, false
			}
			size = int(binary.BigEndian.Uint16(p)) + 1
			p = p[2:]
		}
		if len(p) < size+1 {
			return 0, nil, false
		}
		pt = p[size] & 0x0f
		p = p[size+1:]
	}
	return pt, p, true
}

// exTracks is what parseExTracks finds after the enhanced packet type.
type exTracks struct {
	packetType byte
	codec      string
	multitrack bool
	trackKey   string
	// data is the body of the (first) track after its FourCC, track id
	// and size: the codec's bytes, cut short when p is.
	data []byte
}

// parseExTracks reads the FourCC after an enhanced packet type pt or, when
// pt is the multitrack type, the multitrack header and the track headers.
// The tracks are walked while their sizes fit in p; the first track must be
// complete enough to name.
func parseExTracks(pt byte, p []byte, multitrackType byte) (exTracks, bool) {
	if pt != multitrackType {
		if len(p) < 4 {
			return exTracks{}, false
		}
		return exTracks{packetType: pt, codec: fourCC(p[:4]), data: p[4:]}, true
	}
	if len(p) < 1 {
		return exTracks{}, false
	}
	mt, pt := p[0]>>4, p[0]&0x0f
	p = p[1:]
	if mt > manyTracksManyCodecs || pt == multitrackType || pt == exModEx {
		return exTracks{}, false
	}
	ex := exTracks{packetType: pt, multitrack: true}
	var codec string
	if mt != manyTracksManyCodecs {
		if len(p) < 4 {
			return exTracks{}, false
		}
		codec = fourCC(p[:4])
		p = p[4:]
	}
	var key []byte
	for n := 0; ; n++ {
		head := 1 // track id
		if mt == manyTracksManyCodecs {
			head += 4
		}
		if mt != oneTrack {
			head += 3 // track size
		}
		if len(p) < head {
			if n == 0 {
				return exTracks{}, false
			}
			break
		}
		if mt == manyTracksManyCodecs {
			codec = fourCC(p[:4])
			p = p[4:]
		}
		if n == 0 {
			ex.codec = codec
		} else {
			key = append(key, ',')
		}
		key = append(key, codec...)
		key = append(key, ':')
		key = strconv.AppendUint(key, uint64(p[0]), 10)
		if mt == oneTrack {
			if n == 0 {
				ex.data = p[1:]
			}
			break
		}
		size := int(p[1])<<16 | int(p[2])<<8 | int(p[3])
		p = p[4:]
		if n == 0 {
			ex.data = p[:min(size, len(p))]
		}
		if size > len(p) {
			break
		}
		p = p[size:]
	}
	ex.trackKey = string(key)
	return ex, true
}

// fourCC returns b (4 bytes) as a string, without allocating for the
// FourCCs E-RTMP defines.
func fourCC(b []byte) string {
	switch string(b) {
	case "avc1":
		return "avc1"
	case "hvc1":
		return "hvc1"
	case "av01":
		return "av01"
	case "vp09":
		return "vp09"
	case "vp08":
		return "vp08"
	case "vvc1":
		return "vvc1"
	case "mp4a":
		return "mp4a"
	case ".mp3":
		return ".mp3"
	case "Opus":
		return "Opus"
	case "fLaC":
		return "fLaC"
	case "ac-3":
		return "ac-3"
	case "ec-3":
		return "ec-3"
	}
	return string(b)
}
