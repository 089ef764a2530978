package hls

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/bluenviron/gohlslib/v2/pkg/codecs"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
)

// This file turns FLV tag bodies (RTMP audio/video payloads, legacy and
// Enhanced RTMP) into what gohlslib takes: codec parameters from sequence
// headers, access units from coded frames. Nothing here keeps or changes
// a payload: NAL units and AAC frames are sub-slices of it.

// Legacy FLV codec ids and packet types, and the Enhanced RTMP ones used
// here (rtmp/message has the full set).
const (
	legacyAVC  = 7
	legacyHEVC = 12 // not in the FLV specification; sent by some encoders
	legacyAAC  = 10
	exAudio    = 9 // sound format of an Enhanced RTMP audio ExHeader

	exSequenceStart    = 0
	exCodedFrames      = 1
	exCodedFramesX     = 3 // video only: coded frames without composition time
	frameTypeCommand   = 5
	avcPacketSeqHeader = 0
	avcPacketNALU      = 1
)

// mediaKind is what a parsed payload carries.
type mediaKind int

const (
	kindSkip   mediaKind = iota // nothing to mux: end of sequence, command, metadata
	kindConfig                  // a sequence header
	kindFrame                   // coded data
)

// videoTag is a parsed video payload.
type videoTag struct {
	kind  mediaKind
	codec string // "avc1" or "hvc1"
	cts   int32  // composition time offset, ms
	data  []byte // decoder configuration record, or length-prefixed NAL units
}

// audioTag is a parsed audio payload.
type audioTag struct {
	kind mediaKind
	data []byte // AudioSpecificConfig or one raw AAC frame
}

// errUnsupported marks a payload of a codec or layout this package does not
// mux (VP6, AV1, multitrack, ModEx...); its text names it.
var errUnsupported = errors.New("unsupported")

// parseVideo reads a video payload: legacy AVC (codec id 7) or HEVC (12),
// or Enhanced RTMP avc1/hvc1 single-track.
func parseVideo(p []byte) (videoTag, error) {
	if len(p) < 1 {
		return videoTag{}, errors.New("empty video payload")
	}
	b := p[0]
	if b&0x80 == 0 {
		if b>>4 == frameTypeCommand {
			return videoTag{kind: kindSkip}, nil
		}
		var codec string
		switch b & 0x0f {
		case legacyAVC:
			codec = "avc1"
		case legacyHEVC:
			codec = "hvc1"
		default:
			return videoTag{}, fmt.Errorf("%w video codec id %d", errUnsupported, b&0x0f)
		}
		if len(p) < 5 {
			return videoTag{}, fmt.Errorf("%s video payload of %d bytes", codec, len(p))
		}
		t := videoTag{codec: codec, data: p[5:]}
		switch p[1] {
		case avcPacketSeqHeader:
			t.kind = kindConfig
		case avcPacketNALU:
			t.kind, t.cts = kindFrame, si24(p[2:5])
		default:
			t.kind = kindSkip
		}
		return t, nil
	}
	// Enhanced RTMP: frame type in bits 4-6, packet type in bits 0-3,
	// then the FourCC.
	if (b>>4)&0x07 == frameTypeCommand {
		return videoTag{kind: kindSkip}, nil
	}
	pt := b & 0x0f
	if len(p) < 5 {
		return videoTag{}, fmt.Errorf("enhanced video payload of %d bytes", len(p))
	}
	codec := string(p[1:5])
	switch pt {
	case exSequenceStart, exCodedFrames, exCodedFramesX:
	case 2, 4: // SequenceEnd, Metadata
		return videoTag{kind: kindSkip}, nil
	default: // multitrack, ModEx, MPEG2TSSequenceStart
		return videoTag{}, fmt.Errorf("%w enhanced video packet type %d", errUnsupported, pt)
	}
	if codec != "avc1" && codec != "hvc1" {
		return videoTag{}, fmt.Errorf("%w video codec %q", errUnsupported, codec)
	}
	t := videoTag{codec: codec, data: p[5:]}
	switch pt {
	case exSequenceStart:
		t.kind = kindConfig
	case exCodedFrames:
		if len(t.data) < 3 {
			return videoTag{}, fmt.Errorf("%s coded frames of %d bytes", codec, len(p))
		}
		t.kind, t.cts, t.data = kindFrame, si24(t.data), t.data[3:]
	case exCodedFramesX:
		t.kind = kindFrame
	}
	return t, nil
}

// parseAudio reads an audio payload: legacy AAC or Enhanced RTMP mp4a
// single-track.
func parseAudio(p []byte) (audioTag, error) {
	if len(p) < 1 {
		return audioTag{}, errors.New("empty audio payload")
	}
	switch p[0] >> 4 {
	case legacyAAC:
		if len(p) < 2 {
			return audioTag{}, errors.New("AAC payload of 1 byte")
		}
		if p[1] == 0 {
			return audioTag{kind: kindConfig, data: p[2:]}, nil
		}
		return audioTag{kind: kindFrame, data: p[2:]}, nil
	case exAudio:
		pt := p[0] & 0x0f
		if len(p) < 5 {
			return audioTag{}, fmt.Errorf("enhanced audio payload of %d bytes", len(p))
		}
		if codec := string(p[1:5]); codec != "mp4a" {
			return audioTag{}, fmt.Errorf("%w audio codec %q", errUnsupported, codec)
		}
		switch pt {
		case exSequenceStart:
			return audioTag{kind: kindConfig, data: p[5:]}, nil
		case exCodedFrames:
			return audioTag{kind: kindFrame, data: p[5:]}, nil
		case 2, 4: // SequenceEnd, MultichannelConfig
			return audioTag{kind: kindSkip}, nil
		}
		return audioTag{}, fmt.Errorf("%w enhanced audio packet type %d", errUnsupported, pt)
	}
	return audioTag{}, fmt.Errorf("%w sound format %d", errUnsupported, p[0]>>4)
}

func si24(p []byte) int32 {
	return int32(uint32(p[0])<<24|uint32(p[1])<<16|uint32(p[2])<<8) >> 8
}

// videoConfig is a video track's decoder configuration.
type videoConfig struct {
	raw        []byte // the record, to tell a changed sequence header
	codec      codecs.Codec
	lengthSize int // bytes of each NAL unit's length prefix
}

// parseVideoConfig reads an AVCDecoderConfigurationRecord (avc1) or an
// HEVCDecoderConfigurationRecord (hvc1) and checks its SPS parses. raw is
// copied: the payload belongs to the stream.
func parseVideoConfig(codec string, rec []byte) (*videoConfig, error) {
	c := &videoConfig{raw: bytes.Clone(rec)}
	rec = c.raw // NAL units point into the copy, not the stream's payload
	switch codec {
	case "avc1":
		// version, profile, compatibility, level, 6 bits + lengthSizeMinusOne,
		// 3 bits + numOfSPS, SPSs, numOfPPS, PPSs.
		if len(rec) < 7 || rec[0] != 1 {
			return nil, errors.New("bad AVCDecoderConfigurationRecord")
		}
		c.lengthSize = int(rec[4]&0x03) + 1
		p := rec[5:]
		sps, p, err := readNALUs(p[1:], int(p[0]&0x1f))
		if err != nil {
			return nil, fmt.Errorf("AVCDecoderConfigurationRecord SPS: %w", err)
		}
		if len(p) < 1 {
			return nil, errors.New("AVCDecoderConfigurationRecord without PPS")
		}
		pps, _, err := readNALUs(p[1:], int(p[0]))
		if err != nil {
			return nil, fmt.Errorf("AVCDecoderConfigurationRecord PPS: %w", err)
		}
		if sps == nil || pps == nil {
			return nil, errors.New("AVCDecoderConfigurationRecord without SPS or PPS")
		}
		var s h264.SPS
		if err := s.Unmarshal(sps); err != nil {
			return nil, fmt.Errorf("H.264 SPS: %w", err)
		}
		c.codec = &codecs.H264{SPS: sps, PPS: pps}
	case "hvc1":
		// 22 bytes of profile/tier/level and more (lengthSizeMinusOne in
		// the low bits of the last), numOfArrays, arrays of NAL units.
		if len(rec) < 23 {
			return nil, errors.New("bad HEVCDecoderConfigurationRecord")
		}
		c.lengthSize = int(rec[21]&0x03) + 1
		n := int(rec[22])
		p := rec[23:]
		h := &codecs.H265{}
		for range n {
			if len(p) < 3 {
				return nil, errors.New("HEVCDecoderConfigurationRecord cut short")
			}
			typ := h265.NALUType(p[0] & 0x3f)
			var nalu []byte
			var err error
			nalu, p, err = readNALUs(p[3:], int(binary.BigEndian.Uint16(p[1:3])))
			if err != nil {
				return nil, fmt.Errorf("HEVCDecoderConfigurationRecord: %w", err)
			}
			switch {
			case nalu == nil:
			case typ == h265.NALUType_VPS_NUT && h.VPS == nil:
				h.VPS = nalu
			case typ == h265.NALUType_SPS_NUT && h.SPS == nil:
				h.SPS = nalu
			case typ == h265.NALUType_PPS_NUT && h.PPS == nil:
				h.PPS = nalu
			}
		}
		if h.VPS == nil || h.SPS == nil || h.PPS == nil {
			return nil, errors.New("HEVCDecoderConfigurationRecord without VPS, SPS or PPS")
		}
		var s h265.SPS
		if err := s.Unmarshal(h.SPS); err != nil {
			return nil, fmt.Errorf("H.265 SPS: %w", err)
		}
		c.codec = h
	default:
		return nil, fmt.Errorf("%w video codec %q", errUnsupported, codec)
	}
	return c, nil
}

// readNALUs reads count NAL units, each with a 16-bit length, as a
// configuration record lists them, from p (which starts after the count).
// It returns the first non-empty one and what follows the list.
func readNALUs(p []byte, count int) (first, rest []byte, err error) {
	for range count {
		if len(p) < 2 {
			return nil, nil, errors.New("cut short")
		}
		n := int(binary.BigEndian.Uint16(p))
		if len(p) < 2+n {
			return nil, nil, errors.New("cut short")
		}
		if first == nil && n > 0 {
			first = p[2 : 2+n : 2+n]
		}
		p = p[2+n:]
	}
	return first, p, nil
}

// splitNALUs splits coded frames of length-prefixed NAL units (lengthSize
// bytes each) into the NAL units, skipping empty ones. It appends to dst.
func splitNALUs(dst [][]byte, p []byte, lengthSize int) ([][]byte, error) {
	for len(p) > 0 {
		if len(p) < lengthSize {
			return dst, errors.New("NAL unit length cut short")
		}
		var n uint64
		for _, b := range p[:lengthSize] {
			n = n<<8 | uint64(b)
		}
		p = p[lengthSize:]
		if n > uint64(len(p)) {
			return dst, fmt.Errorf("NAL unit of %d bytes in %d", n, len(p))
		}
		if n > 0 {
			dst = append(dst, p[:n:n])
		}
		p = p[n:]
	}
	return dst, nil
}

// audioConfig is an AAC track's AudioSpecificConfig.
type audioConfig struct {
	raw   []byte
	codec *codecs.MPEG4Audio
}

// parseAudioConfig reads an AudioSpecificConfig.
func parseAudioConfig(asc []byte) (*audioConfig, error) {
	var c mpeg4audio.AudioSpecificConfig
	if err := c.Unmarshal(asc); err != nil {
		return nil, fmt.Errorf("AudioSpecificConfig: %w", err)
	}
	if c.SampleRate <= 0 || c.SampleRate > 192000 {
		return nil, fmt.Errorf("AudioSpecificConfig: sample rate %d", c.SampleRate)
	}
	return &audioConfig{raw: bytes.Clone(asc), codec: &codecs.MPEG4Audio{Config: c}}, nil
}
