package hls

import (
	"testing"

	"github.com/bluenviron/gohlslib/v2/pkg/codecs"
)

// A real AVCDecoderConfigurationRecord (x264, 320x240, High 4:4:4) and AAC-LC
// AudioSpecificConfig (44.1 kHz mono), from the test files.
var (
	avcC = []byte{
		0x01, 0xf4, 0x00, 0x0d, 0xff, 0xe1, 0x00, 0x18, 0x67, 0xf4, 0x00, 0x0d, 0x91, 0x96, 0x81, 0x41,
		0xfb, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00, 0x10, 0x00, 0x00, 0x03, 0x03, 0x20, 0xf1, 0x42, 0xaa,
		0x01, 0x00, 0x05, 0x68, 0xce, 0x0f, 0x19, 0x20,
	}
	asc = []byte{0x12, 0x08}
)

// codecCases are payloads the parsers must take or refuse, shared by the
// table test and the fuzz seeds.
var codecCases = []struct {
	name    string
	video   bool
	payload []byte
	ok      bool
}{
	{"AVC sequence header", true, append([]byte{0x17, 0, 0, 0, 0}, avcC...), true},
	{"HEVC id 12 sequence header, cut", true, []byte{0x1c, 0, 0, 0, 0, 1, 2, 3}, false},
	{"E-RTMP avc1 sequence start", true, append([]byte{0x90, 'a', 'v', 'c', '1'}, avcC...), true},
	{"E-RTMP av01", true, []byte{0x90, 'a', 'v', '0', '1', 0}, false},
	{"VP6", true, []byte{0x14, 0, 0}, false},
	{"AVC record cut in the SPS", true, append([]byte{0x17, 0, 0, 0, 0}, avcC[:12]...), false},
	{"AVC record without PPS", true, append(append([]byte{0x17, 0, 0, 0, 0}, avcC[:32]...), 0), false},
	{"empty", true, nil, false},
	{"AAC sequence header", false, append([]byte{0xaf, 0}, asc...), true},
	{"E-RTMP mp4a sequence start", false, append([]byte{0x90, 'm', 'p', '4', 'a'}, asc...), true},
	{"AAC object type 0", false, []byte{0xaf, 0, 0, 0}, false},
	{"Opus", false, []byte{0x90, 'O', 'p', 'u', 's', 1}, false},
	{"MP3", false, []byte{0x2f, 1, 2}, false},
}

// parseConfig is what Send does with a sequence header.
func parseConfig(video bool, p []byte) error {
	if video {
		t, err := parseVideo(p)
		if err != nil {
			return err
		}
		c, err := parseVideoConfig(t.codec, t.data)
		if err != nil {
			return err
		}
		// Frames of that codec, whatever they hold.
		au, _ := splitNALUs(nil, p, c.lengthSize)
		withParameterSets(au, c.codec)
		return nil
	}
	t, err := parseAudio(p)
	if err != nil {
		return err
	}
	_, err = parseAudioConfig(t.data)
	return err
}

func TestParseConfig(t *testing.T) {
	for _, tc := range codecCases {
		err := parseConfig(tc.video, tc.payload)
		if (err == nil) != tc.ok {
			t.Errorf("%s: error %v, want ok %v", tc.name, err, tc.ok)
		}
	}
	c, err := parseVideoConfig("avc1", avcC)
	if err != nil {
		t.Fatal(err)
	}
	if h := c.codec.(*codecs.H264); c.lengthSize != 4 || len(h.SPS) != 24 || len(h.PPS) != 5 {
		t.Fatalf("avcC: length size %d, SPS %d bytes, PPS %d bytes", c.lengthSize, len(h.SPS), len(h.PPS))
	}
	// An IDR AU without parameter sets gets them; junk ones are dropped.
	au := withParameterSets([][]byte{{0x67, 1}, {0x65, 2}}, c.codec)
	if len(au) != 3 || &au[0][0] != &c.codec.(*codecs.H264).SPS[0] || au[2][0] != 0x65 {
		t.Fatalf("IDR AU: %x", au)
	}
}

// FuzzCodec feeds arbitrary payloads to the parsers, as a publisher can:
// they must refuse what they cannot use, never panic.
func FuzzCodec(f *testing.F) {
	for _, tc := range codecCases {
		f.Add(tc.video, tc.payload)
	}
	f.Fuzz(func(t *testing.T, video bool, p []byte) {
		_ = parseConfig(video, p)
		if video {
			if vt, err := parseVideo(p); err == nil {
				_, _ = splitNALUs(nil, vt.data, 1+len(p)%4)
			}
		}
	})
}
