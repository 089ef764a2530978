package message

import "testing"

// Coded frames built by hand from the codecs' specifications: HEVC and AVC
// access units with 4-byte NAL unit sizes, AV1 temporal units of OBUs
// with sizes (av1OBUs is libaom's sequence header and key frame), VP9
// uncompressed headers, VP8 frame tags.
var keyframeCases = []struct {
	name  string
	codec string
	bytes string
	key   bool
}{
	// HEVC: NAL unit header forbidden_zero_bit, nal_unit_type (6 bits),
	// layer id, temporal id; IRAP types 16-23 are keyframes.
	{"HEVC IDR_W_RADL", "hvc1", "00000003 2601af", true},
	{"HEVC TRAIL_R", "hvc1", "00000003 0201d0", false},
	{"HEVC AUD, VPS, SPS, PPS, IDR_W_RADL", "hvc1", "00000003 460150 00000004 40010c01 00000004 42010101 00000003 4401c1 00000003 2601af", true},
	{"HEVC AUD, SEI, TRAIL_R", "hvc1", "00000003 460150 00000003 4e0105 00000003 0201d0", false},
	{"HEVC IDR_N_LP", "hvc1", "00000003 2801af", true},
	{"HEVC CRA", "hvc1", "00000003 2a01af", true},
	{"HEVC BLA_W_LP", "hvc1", "00000003 2001af", true},
	{"HEVC reserved IRAP 23", "hvc1", "00000003 2e01af", true},
	{"HEVC reserved non-IRAP 24", "hvc1", "00000003 3001af", false},
	{"HEVC RASL_N", "hvc1", "00000003 1001af", false},
	{"HEVC IDR cut short", "hvc1", "00000100 2601", true},
	{"HEVC TRAIL_R, then past the end", "hvc1", "00000100 0201d0", false},
	{"HEVC forbidden bit", "hvc1", "00000003 a601af", false},
	{"HEVC empty NAL unit", "hvc1", "00000000 00000003 2601af", false},
	{"HEVC size only", "hvc1", "00000003", false},
	{"HEVC nothing", "hvc1", "", false},
	// AVC: nal_unit_type 5 is an IDR slice.
	{"AVC IDR", "avc1", "00000004 65888400", true},
	{"AVC SPS, PPS, IDR", "avc1", "00000004 67640028 00000004 68ce3c80 00000004 65888400", true},
	{"AVC non-IDR slice", "avc1", "00000003 41e002", false},
	{"AVC SEI then non-IDR slice", "avc1", "00000002 0605 00000003 41e002", false},
	// AV1: OBU header forbidden bit, obu_type (4 bits), extension flag,
	// has_size_field, reserved; a frame header starts
	// show_existing_frame, frame_type (2 bits, 0 KEY_FRAME), show_frame.
	{"AV1 sequence header and key frame (libaom)", "av01", av1OBUs, true},
	{"AV1 temporal delimiter, sequence header, frame header", "av01", "1200 0a0d20000002aff79b5f2404340080 1a01 10", true},
	{"AV1 temporal delimiter, key frame", "av01", "1200 3203 100000", true},
	{"AV1 inter frame", "av01", "3203 300000", false},
	{"AV1 intra-only frame", "av01", "3203 500000", false},
	{"AV1 hidden key frame", "av01", "3203 000000", false},
	{"AV1 shown existing frame", "av01", "1a01 80", false},
	{"AV1 key frame OBU with extension", "av01", "3608 02 1000", true},
	{"AV1 last OBU without size", "av01", "1200 30 10", true},
	{"AV1 two-byte leb128 size", "av01", "3280 01 10" + "00", true},
	{"AV1 padding, then key frame", "av01", "7a02 0000 3201 10", true},
	{"AV1 reduced still picture header", "av01", "0a01 18 3201 00", true},
	{"AV1 metadata only", "av01", "2a02 0100", false},
	{"AV1 forbidden bit", "av01", "b203 100000", false},
	{"AV1 leb128 cut", "av01", "32 80", false},
	{"AV1 extension cut", "av01", "36", false},
	{"AV1 empty frame OBU", "av01", "3200", false},
	// VP9: frame_marker 2, profile bits, (reserved bit in profile 3),
	// show_existing_frame, frame_type (0 KEY_FRAME), show_frame,
	// error_resilient_mode, then for a key frame the sync code 498342.
	{"VP9 key frame, profile 0", "vp09", "82 498342 00", true},
	{"VP9 key frame, profile 1", "vp09", "a2 498342 00", true},
	{"VP9 key frame, profile 3", "vp09", "b1 24c1a1 00", true},
	{"VP9 inter frame, profile 0", "vp09", "86 004092 00", false},
	{"VP9 inter frame, profile 3", "vp09", "b3 000000 00", false},
	{"VP9 show existing frame", "vp09", "88 000000 00", false},
	{"VP9 key frame, bad sync code", "vp09", "82 498343 00", false},
	{"VP9 bad frame marker", "vp09", "42 498342 00", false},
	{"VP9 key frame cut", "vp09", "82 4983", false},
	// VP8: frame tag key_frame bit (0 for a key frame), version,
	// show_frame, first partition size, then a key frame's start code.
	{"VP8 key frame", "vp08", "100200 9d012a 4001f000", true},
	{"VP8 inter frame", "vp08", "b10100 000000", false},
	{"VP8 key frame, bad start code", "vp08", "100200 9d012b 4001f000", false},
	// Codecs the bitstream is not read for.
	{"VVC", "vvc1", "00000003 0041af", false},
	{"unknown", "xyz9", "00", false},
}

// keyframeCodecs indexes the codecs of FuzzVideoKeyframe.
var keyframeCodecs = []string{"hvc1", "avc1", "av01", "vp09", "vp08", "vvc1"}

// frameType0 wraps a coded frame of codec in an Enhanced RTMP payload
// with frame type 0: CodedFrames (with a composition time for AVC and
// HEVC) or CodedFramesX.
func frameType0(codec string, data []byte, x bool) []byte {
	p := []byte{0x81}
	if x {
		p[0] = 0x83
	}
	p = append(p, codec...)
	if !x && (codec == "avc1" || codec == "hvc1") {
		p = append(p, 0, 0, 40)
	}
	return append(p, data...)
}

func TestBitstreamKeyframe(t *testing.T) {
	for _, tc := range keyframeCases {
		t.Run(tc.name, func(t *testing.T) {
			data := mustHex(tc.bytes)
			if got := bitstreamKeyframe(tc.codec, data); got != tc.key {
				t.Fatalf("keyframe %v, want %v", got, tc.key)
			}
			// The same frame in E-RTMP payloads with frame type 0.
			for _, x := range []bool{false, true} {
				p := frameType0(tc.codec, data, x)
				if v, ok := ParseVideo(p); !ok || v.Keyframe != tc.key || !v.NoFrameType {
					t.Fatalf("ParseVideo(%x): %+v %v", p, v, ok)
				}
			}
			// And in a legacy AVC payload with frame type 0.
			if tc.codec == "avc1" {
				p := append(mustHex("07 01 000000"), data...)
				if v, ok := ParseVideo(p); !ok || v.Keyframe != tc.key || !v.NoFrameType {
					t.Fatalf("ParseVideo(%x): %+v %v", p, v, ok)
				}
			}
		})
	}
}

// Frame types 1-5 are believed: the bitstream is not read.
func TestFrameTypeBelieved(t *testing.T) {
	idr := mustHex("00000003 2601af")
	for ft := range 8 {
		p := append([]byte{0x80 | byte(ft)<<4 | 3}, "hvc1"...)
		p = append(p, idr...)
		v, _ := ParseVideo(p)
		noType := ft == 0 || ft > 5
		want := ft == 1 || noType
		if ft == 5 {
			want = false // a command frame
		}
		if v.Keyframe != want || v.NoFrameType != noType {
			t.Errorf("frame type %d: %+v", ft, v)
		}
	}
}

func FuzzVideoKeyframe(f *testing.F) {
	for _, tc := range keyframeCases {
		for i, c := range keyframeCodecs {
			if c == tc.codec {
				f.Add(uint8(i), mustHex(tc.bytes))
			}
		}
	}
	f.Fuzz(func(t *testing.T, ci uint8, data []byte) {
		codec := keyframeCodecs[int(ci)%len(keyframeCodecs)]
		key := bitstreamKeyframe(codec, data)
		for _, x := range []bool{false, true} {
			p := frameType0(codec, data, x)
			v, ok := ParseVideo(p)
			if !ok || v.Keyframe != key || !v.NoFrameType {
				t.Fatalf("ParseVideo(%x): %+v %v, bitstream keyframe %v", p, v, ok, key)
			}
			// Frame type 2 is believed whatever the data.
			p[0] |= 0x20
			if v, _ := ParseVideo(p); v.Keyframe || v.NoFrameType {
				t.Fatalf("ParseVideo(%x) with frame type 2: %+v", p, v)
			}
		}
	})
}

func TestBitstreamKeyframeAllocs(t *testing.T) {
	var ps [][]byte
	for _, tc := range keyframeCases {
		if tc.codec != "xyz9" { // an unknown FourCC is a new string
			ps = append(ps, frameType0(tc.codec, mustHex(tc.bytes), false), frameType0(tc.codec, mustHex(tc.bytes), true))
		}
	}
	if n := testing.AllocsPerRun(100, func() {
		for _, p := range ps {
			ParseVideo(p)
		}
	}); n != 0 {
		t.Fatalf("%v allocations per run, want 0", n)
	}
}
