package message

import (
	"encoding/hex"
	"strings"
	"testing"
)

// Real byte layouts. The AVC and AAC headers are the first tags FFmpeg
// (libx264, aac) writes to FLV; the HEVC, AV1 and VP9 configuration
// records and the AV1 OBUs come from FFmpeg's libx265, libaom and libvpx
// output (hvcC without its SEI array, av1C, vpcC); the Opus ID header and
// FLAC STREAMINFO from libopus and flac.
const (
	ffmpegAVCSeqHeader = "17 00 000000 01f4000affe1001767f4000a9196847b011000000300100000030140f1226a01000568ce0f1920"
	ffmpegAACSeqHeader = "af 00 121056e500"
	hvcC               = "0104080000009e08000000001ef000fcfff8f800000f03" +
		"200001001740010c01ffff0408000003009e0800000300001e959809" +
		"210001002b4201010408000003009e0800000300001e90041062cb2b35c995e02dc08080010000030001000003000a08" +
		"22000100084401c17318310890"
	av1C       = "812000000a0d20000002aff79b5f2404340080"
	av1OBUs    = "0a0d20000002aff79b5f2404340080328204140022c000008000a0dc852668f4"
	vpcC       = "01000000010a870202000000"
	opusHead   = "4f707573486561640101380180bb0000000000"
	flacHeader = "664c6143 80000022 1200120000047e0004da0ac440f00000227464b80e4dc9c9bd5ca308a6942a1c06ec"
)

// fcc returns a FourCC in hex, for building rows.
func fcc(s string) string { return hex.EncodeToString([]byte(s)) }

var videoCases = []struct {
	name  string
	bytes string
	want  VideoInfo
	ok    bool
}{
	// Legacy FLV.
	{"ffmpeg AVC sequence header", ffmpegAVCSeqHeader, VideoInfo{Codec: "avc1", Keyframe: true, SequenceHeader: true}, true},
	{"AVC keyframe NALUs", "17 01 000000 00000005 6588840021", VideoInfo{Codec: "avc1", Keyframe: true}, true},
	{"AVC inter frame", "27 01 000050 00000004 419a2b3c", VideoInfo{Codec: "avc1", CompositionTime: 80}, true},
	{"AVC B-frame, negative composition time", "27 01 ffffd8 00000004 019a2b3c", VideoInfo{Codec: "avc1", CompositionTime: -40}, true},
	{"AVC frame cut in its composition time", "27 01 0000", VideoInfo{Codec: "avc1"}, true},
	{"ffmpeg AVC end of sequence", "17 02 000000", VideoInfo{Codec: "avc1", Keyframe: true, SequenceEnd: true}, true},
	{"AVC seek command frame", "57 00", VideoInfo{Codec: "avc1", Command: true}, true},
	{"legacy HEVC id 12 sequence header", "1c 00 000000" + hvcC, VideoInfo{Codec: "hvc1", Keyframe: true, SequenceHeader: true}, true},
	{"legacy HEVC id 12 inter", "2c 01 000028 00000003 020101", VideoInfo{Codec: "hvc1", CompositionTime: 40}, true},
	{"Sorenson H.263 keyframe", "12 00008402", VideoInfo{Codec: "h263", Keyframe: true}, true},
	{"VP6 inter", "24 00 4600", VideoInfo{Codec: "vp6"}, true},
	{"VP6 alpha keyframe", "15 00 000000", VideoInfo{Codec: "vp6a", Keyframe: true}, true},
	{"screen video", "13 0000", VideoInfo{Codec: "screen", Keyframe: true}, true},
	{"screen video v2", "26 0000", VideoInfo{Codec: "screen2"}, true},
	{"unknown legacy codec", "1e 00", VideoInfo{Keyframe: true}, true},
	// Enhanced RTMP.
	{"HEVC SequenceStart", "90" + fcc("hvc1") + hvcC, VideoInfo{Codec: "hvc1", Enhanced: true, Keyframe: true, SequenceHeader: true}, true},
	{"HEVC CodedFrames with CTS", "91" + fcc("hvc1") + "000028 00000003 260101", VideoInfo{Codec: "hvc1", Enhanced: true, Keyframe: true, CompositionTime: 40}, true},
	{"AVC CodedFrames with CTS", "a1" + fcc("avc1") + "000050 00000004 419a2b3c", VideoInfo{Codec: "avc1", Enhanced: true, CompositionTime: 80}, true},
	{"HEVC CodedFramesX inter", "a3" + fcc("hvc1") + "00000003 020101", VideoInfo{Codec: "hvc1", Enhanced: true}, true},
	{"HEVC SequenceEnd", "92" + fcc("hvc1"), VideoInfo{Codec: "hvc1", Enhanced: true, Keyframe: true, SequenceEnd: true}, true},
	{"AV1 SequenceStart", "90" + fcc("av01") + av1C, VideoInfo{Codec: "av01", Enhanced: true, Keyframe: true, SequenceHeader: true}, true},
	{"AV1 CodedFrames keyframe", "91" + fcc("av01") + av1OBUs, VideoInfo{Codec: "av01", Enhanced: true, Keyframe: true}, true},
	{"AV1 MPEG2TSSequenceStart", "95" + fcc("av01") + "80", VideoInfo{Codec: "av01", Enhanced: true, Keyframe: true, SequenceHeader: true}, true},
	{"VP9 SequenceStart", "90" + fcc("vp09") + vpcC, VideoInfo{Codec: "vp09", Enhanced: true, Keyframe: true, SequenceHeader: true}, true},
	{"VP8 inter", "a1" + fcc("vp08") + "b10100", VideoInfo{Codec: "vp08", Enhanced: true}, true},
	{"VVC keyframe", "93" + fcc("vvc1") + "00000002 0000", VideoInfo{Codec: "vvc1", Enhanced: true, Keyframe: true}, true},
	{"AVC in an ExHeader", "90" + fcc("avc1") + ffmpegAVCSeqHeader[12:], VideoInfo{Codec: "avc1", Enhanced: true, Keyframe: true, SequenceHeader: true}, true},
	{"unknown FourCC", "91" + fcc("xyz9") + "00", VideoInfo{Codec: "xyz9", Enhanced: true, Keyframe: true}, true},
	{"ffmpeg HDR Metadata (command frame type)", "d4" + fcc("hvc1") + "020009636f6c6f72496e666f03", VideoInfo{Codec: "hvc1", Enhanced: true, Metadata: true}, true},
	{"enhanced command frame", "d1 01", VideoInfo{Enhanced: true, Command: true}, true},
	{"multitrack one track SequenceStart", "96 00" + fcc("hvc1") + "00" + hvcC,
		VideoInfo{Codec: "hvc1", Enhanced: true, Keyframe: true, SequenceHeader: true, Multitrack: true, TrackKey: "hvc1:0"}, true},
	{"multitrack one track HEVC CodedFrames with CTS", "a6 01" + fcc("hvc1") + "00 000078 00000003 020101",
		VideoInfo{Codec: "hvc1", Enhanced: true, Multitrack: true, TrackKey: "hvc1:0", CompositionTime: 120}, true},
	{"multitrack many tracks HEVC CodedFrames with CTS", "a6 11" + fcc("hvc1") + "00 00000a 000028 00000003 020101" + "01 000003 000050",
		VideoInfo{Codec: "hvc1", Enhanced: true, Multitrack: true, TrackKey: "hvc1:0,hvc1:1", CompositionTime: 40}, true},
	{"multitrack many tracks CodedFramesX", "96 13" + fcc("av01") + "00 000003 120000" + "01 000002 1200",
		VideoInfo{Codec: "av01", Enhanced: true, Keyframe: true, Multitrack: true, TrackKey: "av01:0,av01:1"}, true},
	{"multitrack many codecs SequenceStart", "96 20" + fcc("avc1") + "00 000004 01640028" + fcc("hvc1") + "02 000003 010408",
		VideoInfo{Codec: "avc1", Enhanced: true, Keyframe: true, SequenceHeader: true, Multitrack: true, TrackKey: "avc1:0,hvc1:2"}, true},
	{"multitrack last track overruns", "a6 11" + fcc("hvc1") + "00 000002 0000" + "01 0000ff 00",
		VideoInfo{Codec: "hvc1", Enhanced: true, Multitrack: true, TrackKey: "hvc1:0,hvc1:1"}, true},
	{"ModEx TimestampOffsetNano, CodedFrames", "97 02 0f4240 01" + fcc("av01") + av1OBUs, VideoInfo{Codec: "av01", Enhanced: true, Keyframe: true}, true},
	{"ModEx before SequenceStart", "97 02 000001 00" + fcc("hvc1") + hvcC, VideoInfo{Codec: "hvc1", Enhanced: true, Keyframe: true, SequenceHeader: true}, true},
	{"two ModEx", "a7 00 aa 17 01 bbcc 03" + fcc("vp09") + "00", VideoInfo{Codec: "vp09", Enhanced: true}, true},
	{"ModEx 16-bit size", "97 ff 0100" + strings.Repeat("00", 257) + "01" + fcc("vp09") + "00", VideoInfo{Codec: "vp09", Enhanced: true, Keyframe: true}, true},
	{"ModEx then multitrack", "97 02 000000 06 00" + fcc("hvc1") + "03 00", VideoInfo{Codec: "hvc1", Enhanced: true, Keyframe: true, SequenceHeader: true, Multitrack: true, TrackKey: "hvc1:3"}, true},
	// Frame type 0 (gortmplib up to v1.0.1, OBS before its fix) or
	// reserved: keyframes from the bitstream.
	{"gortmplib HEVC keyframe, frame type 0", "81" + fcc("hvc1") + "000000 00000003 2601af", VideoInfo{Codec: "hvc1", Enhanced: true, Keyframe: true, NoFrameType: true}, true},
	{"gortmplib HEVC inter frame, frame type 0", "81" + fcc("hvc1") + "000028 00000003 0201d0", VideoInfo{Codec: "hvc1", Enhanced: true, NoFrameType: true, CompositionTime: 40}, true},
	{"gortmplib HEVC SequenceStart, frame type 0", "80" + fcc("hvc1") + hvcC, VideoInfo{Codec: "hvc1", Enhanced: true, SequenceHeader: true, NoFrameType: true}, true},
	{"AV1 key frame, frame type 0", "81" + fcc("av01") + av1OBUs, VideoInfo{Codec: "av01", Enhanced: true, Keyframe: true, NoFrameType: true}, true},
	{"AV1 inter frame, frame type 0", "81" + fcc("av01") + "3203 300000", VideoInfo{Codec: "av01", Enhanced: true, NoFrameType: true}, true},
	{"VP9 key frame, frame type 0", "83" + fcc("vp09") + "82498342 00", VideoInfo{Codec: "vp09", Enhanced: true, Keyframe: true, NoFrameType: true}, true},
	{"VP9 inter frame, frame type 0", "81" + fcc("vp09") + "86004092 00", VideoInfo{Codec: "vp09", Enhanced: true, NoFrameType: true}, true},
	{"HEVC keyframe, reserved frame type 7", "f3" + fcc("hvc1") + "00000003 2601af", VideoInfo{Codec: "hvc1", Enhanced: true, Keyframe: true, NoFrameType: true}, true},
	{"ModEx, HEVC keyframe, frame type 0", "87 02 0f4240 01" + fcc("hvc1") + "000000 00000003 2601af", VideoInfo{Codec: "hvc1", Enhanced: true, Keyframe: true, NoFrameType: true}, true},
	{"multitrack one track HEVC keyframe, frame type 0", "86 03" + fcc("hvc1") + "00 00000003 2601af",
		VideoInfo{Codec: "hvc1", Enhanced: true, Keyframe: true, NoFrameType: true, Multitrack: true, TrackKey: "hvc1:0"}, true},
	{"legacy AVC IDR, frame type 0", "07 01 000000 00000004 65888400", VideoInfo{Codec: "avc1", Keyframe: true, NoFrameType: true}, true},
	{"legacy VP6, frame type 0", "04 00 4600", VideoInfo{Codec: "vp6", NoFrameType: true}, true},
	// Too short or malformed.
	{"empty", "", VideoInfo{}, false},
	{"AVC without packet type", "17", VideoInfo{}, false},
	{"FourCC cut", "90 6876", VideoInfo{}, false},
	{"ModEx size past the end", "97 05 0000", VideoInfo{}, false},
	{"ModEx 16-bit size cut", "97 ff 01", VideoInfo{}, false},
	{"ModEx without packet type", "97 00 00", VideoInfo{}, false},
	{"multitrack without type", "96", VideoInfo{}, false},
	{"multitrack without track id", "96 00" + fcc("hvc1"), VideoInfo{}, false},
	{"multitrack without track size", "96 10" + fcc("hvc1") + "00 0000", VideoInfo{}, false},
	{"multitrack type 3", "96 30" + fcc("hvc1") + "00 000000", VideoInfo{}, false},
	{"nested multitrack", "96 06" + fcc("hvc1") + "00", VideoInfo{}, false},
}

func TestParseVideo(t *testing.T) {
	for _, tc := range videoCases {
		t.Run(tc.name, func(t *testing.T) {
			v, ok := ParseVideo(mustHex(tc.bytes))
			if ok != tc.ok || v != tc.want {
				t.Fatalf("got %+v %v, want %+v %v", v, ok, tc.want, tc.ok)
			}
		})
	}
}

var audioCases = []struct {
	name  string
	bytes string
	want  AudioInfo
	ok    bool
}{
	// Legacy FLV.
	{"ffmpeg AAC sequence header", ffmpegAACSeqHeader, AudioInfo{Codec: "mp4a", SequenceHeader: true}, true},
	{"ffmpeg AAC raw", "af 01 21466cffffffcd591b64", AudioInfo{Codec: "mp4a"}, true},
	{"MP3 44.1 kHz stereo", "2f fffb9064", AudioInfo{Codec: ".mp3"}, true},
	{"MP3 8 kHz", "e2 fff3", AudioInfo{Codec: ".mp3"}, true},
	{"Speex (Flash Player microphone)", "b2 3e00", AudioInfo{Codec: "speex"}, true},
	{"Nellymoser (Flash Player microphone)", "6a 00", AudioInfo{Codec: "nellymoser"}, true},
	{"Nellymoser 8 kHz", "52 00", AudioInfo{Codec: "nellymoser8k"}, true},
	{"G.711 A-law", "72 d5d5", AudioInfo{Codec: "alaw"}, true},
	{"G.711 mu-law", "82 ffff", AudioInfo{Codec: "ulaw"}, true},
	{"PCM little endian", "3e 0000", AudioInfo{Codec: "lpcmle"}, true},
	{"ADPCM", "1a 00", AudioInfo{Codec: "adpcm"}, true},
	{"reserved format 12", "c0 00", AudioInfo{}, true},
	// Enhanced RTMP.
	{"Opus SequenceStart", "90" + fcc("Opus") + opusHead, AudioInfo{Codec: "Opus", Enhanced: true, SequenceHeader: true}, true},
	{"Opus CodedFrames", "91" + fcc("Opus") + "fc ff fe", AudioInfo{Codec: "Opus", Enhanced: true}, true},
	{"Opus SequenceEnd", "92" + fcc("Opus"), AudioInfo{Codec: "Opus", Enhanced: true, SequenceEnd: true}, true},
	{"Opus MultichannelConfig", "94" + fcc("Opus") + "01 02 00 01", AudioInfo{Codec: "Opus", Enhanced: true, MultichannelConfig: true}, true},
	{"FLAC SequenceStart", "90" + fcc("fLaC") + flacHeader, AudioInfo{Codec: "fLaC", Enhanced: true, SequenceHeader: true}, true},
	{"AAC SequenceStart", "90" + fcc("mp4a") + "1210", AudioInfo{Codec: "mp4a", Enhanced: true, SequenceHeader: true}, true},
	{"MP3 CodedFrames", "91" + fcc(".mp3") + "fffb9064", AudioInfo{Codec: ".mp3", Enhanced: true}, true},
	{"AC-3 CodedFrames", "91" + fcc("ac-3") + "0b77", AudioInfo{Codec: "ac-3", Enhanced: true}, true},
	{"E-AC-3 CodedFrames", "91" + fcc("ec-3") + "0b77", AudioInfo{Codec: "ec-3", Enhanced: true}, true},
	{"multitrack one track SequenceStart", "95 00" + fcc("Opus") + "01" + opusHead,
		AudioInfo{Codec: "Opus", Enhanced: true, SequenceHeader: true, Multitrack: true, TrackKey: "Opus:1"}, true},
	{"multitrack many codecs CodedFrames", "95 21" + fcc("Opus") + "00 000003 fcfffe" + fcc("mp4a") + "01 000002 2146",
		AudioInfo{Codec: "Opus", Enhanced: true, Multitrack: true, TrackKey: "Opus:0,mp4a:1"}, true},
	{"ModEx then SequenceStart", "97 02 000010 00" + fcc("Opus") + opusHead, AudioInfo{Codec: "Opus", Enhanced: true, SequenceHeader: true}, true},
	// Too short or malformed.
	{"empty (silence)", "", AudioInfo{}, false},
	{"AAC without packet type", "af", AudioInfo{}, false},
	{"FourCC cut", "90 4f70", AudioInfo{}, false},
	{"ModEx cut", "97 03 00", AudioInfo{}, false},
	{"multitrack without track id", "95 00" + fcc("Opus"), AudioInfo{}, false},
	{"nested multitrack", "95 05" + fcc("Opus") + "00", AudioInfo{}, false},
}

func TestParseAudio(t *testing.T) {
	for _, tc := range audioCases {
		t.Run(tc.name, func(t *testing.T) {
			a, ok := ParseAudio(mustHex(tc.bytes))
			if ok != tc.ok || a != tc.want {
				t.Fatalf("got %+v %v, want %+v %v", a, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestParseMediaAllocs(t *testing.T) {
	v := mustHex("17 01 000000 00000005 6588840021")
	e := mustHex("97 02 0f4240 01" + fcc("av01") + av1OBUs)
	a := mustHex("90" + fcc("Opus") + opusHead)
	if n := testing.AllocsPerRun(100, func() {
		ParseVideo(v)
		ParseVideo(e)
		ParseAudio(a)
	}); n != 0 {
		t.Fatalf("%v allocations per run, want 0", n)
	}
}

func FuzzParseVideo(f *testing.F) {
	for _, tc := range videoCases {
		f.Add(mustHex(tc.bytes))
	}
	f.Fuzz(func(t *testing.T, p []byte) {
		v, ok := ParseVideo(p)
		if !ok {
			if v != (VideoInfo{}) {
				t.Fatalf("not ok but %+v", v)
			}
			return
		}
		if v.Multitrack != (v.TrackKey != "") || (v.Multitrack && !v.Enhanced) {
			t.Fatalf("multitrack %+v", v)
		}
		if n := btoi(v.SequenceHeader) + btoi(v.SequenceEnd) + btoi(v.Metadata) + btoi(v.Command); n > 1 {
			t.Fatalf("exclusive flags %+v", v)
		}
		if v.Enhanced != (p[0]&0x80 != 0) {
			t.Fatalf("enhanced %+v for %#x", v, p[0])
		}
		// A frame type of 1-5 is believed; only the others are
		// classified by the bitstream.
		ft := p[0] >> 4
		if v.Enhanced {
			ft &= 0x07
		}
		if v.NoFrameType != (ft == 0 || ft > 5) || !v.NoFrameType && v.Keyframe != (ft == 1) {
			t.Fatalf("frame type %d: %+v", ft, v)
		}
	})
}

func FuzzParseAudio(f *testing.F) {
	for _, tc := range audioCases {
		f.Add(mustHex(tc.bytes))
	}
	f.Fuzz(func(t *testing.T, p []byte) {
		a, ok := ParseAudio(p)
		if !ok {
			if a != (AudioInfo{}) {
				t.Fatalf("not ok but %+v", a)
			}
			return
		}
		if a.Multitrack != (a.TrackKey != "") || (a.Multitrack && !a.Enhanced) {
			t.Fatalf("multitrack %+v", a)
		}
		if n := btoi(a.SequenceHeader) + btoi(a.SequenceEnd) + btoi(a.MultichannelConfig); n > 1 {
			t.Fatalf("exclusive flags %+v", a)
		}
		if a.Enhanced != (p[0]>>4 == 9) {
			t.Fatalf("enhanced %+v for %#x", a, p[0])
		}
	})
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
