package flv

import (
	"bytes"
	"errors"
	"reflect"
	"runtime"
	"testing"

	"github.com/rtmphub/rtmphub/rtmp/amf"
)

func marshal(t testing.TB, vals ...any) []byte {
	t.Helper()
	b, err := amf.Marshal0(vals...)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseMetadata(t *testing.T) {
	fourCC := func(s string) float64 {
		return float64(uint32(s[0])<<24 | uint32(s[1])<<16 | uint32(s[2])<<8 | uint32(s[3]))
	}
	for _, c := range []struct {
		name string
		data []byte
		want Metadata // Raw not compared
		err  error
	}{
		{
			name: "ECMA array",
			data: metaBody,
			want: Metadata{Duration: 2.5, Width: 320},
		},
		{
			name: "object, legacy codec ids, keyframes",
			data: marshal(t, "onMetaData", amf.Object{
				{Key: "duration", Value: 10.0}, {Key: "width", Value: 640.0}, {Key: "height", Value: 360.0},
				{Key: "framerate", Value: 30.0}, {Key: "videocodecid", Value: 7.0}, {Key: "audiocodecid", Value: 10.0},
				{Key: "filesize", Value: 12345.0},
				{Key: "keyframes", Value: amf.Object{
					{Key: "times", Value: []any{0.0, 2.0}},
					{Key: "filepositions", Value: []any{400.0, 9000.0}},
				}},
			}),
			want: Metadata{Duration: 10, Width: 640, Height: 360, FrameRate: 30, FileSize: 12345,
				VideoCodec: "avc1", AudioCodec: "mp4a", Keyframes: []Keyframe{{0, 400}, {2, 9000}}},
		},
		{
			name: "Enhanced RTMP FourCC codec ids, videoframerate",
			data: marshal(t, "onMetaData", amf.ECMAArray{
				{Key: "videocodecid", Value: fourCC("av01")}, {Key: "audiocodecid", Value: fourCC("Opus")},
				{Key: "videoframerate", Value: 50.0},
			}),
			want: Metadata{VideoCodec: "av01", AudioCodec: "Opus", FrameRate: 50},
		},
		{
			name: "codec names as strings, HEVC id 12, MP3",
			data: marshal(t, "onMetaData", amf.ECMAArray{
				{Key: "videocodecid", Value: "hvc1"}, {Key: "audiocodecid", Value: 2.0},
			}),
			want: Metadata{VideoCodec: "hvc1", AudioCodec: ".mp3"},
		},
		{
			name: "legacy id 12 is HEVC",
			data: marshal(t, "onMetaData", amf.ECMAArray{{Key: "videocodecid", Value: 12.0}}),
			want: Metadata{VideoCodec: "hvc1"},
		},
		{
			name: "malformed keyframes are ignored",
			data: marshal(t, "onMetaData", amf.ECMAArray{{Key: "keyframes", Value: amf.Object{
				{Key: "times", Value: []any{0.0, 2.0}},
				{Key: "filepositions", Value: []any{400.0}},
			}}}),
			want: Metadata{},
		},
		{
			name: "negative position is malformed",
			data: marshal(t, "onMetaData", amf.ECMAArray{{Key: "keyframes", Value: amf.Object{
				{Key: "times", Value: []any{0.0}},
				{Key: "filepositions", Value: []any{-4.0}},
			}}}),
			want: Metadata{},
		},
		{name: "another name", data: marshal(t, "onCuePoint", amf.Object{}), err: ErrNoMetadata},
		{name: "not an object", data: marshal(t, "onMetaData", 5.0), err: ErrCorrupt},
		{name: "garbage", data: hx("02000a6f6e4d657461446174610300"), err: ErrCorrupt},
		{name: "empty", data: nil, err: ErrCorrupt},
	} {
		t.Run(c.name, func(t *testing.T) {
			m, err := ParseMetadata(c.data)
			if c.err != nil {
				if !errors.Is(err, c.err) {
					t.Fatalf("error %v, want %v", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			c.want.Raw, c.want.Size = m.Raw, uint32(len(c.data))
			if !reflect.DeepEqual(*m, c.want) {
				t.Errorf("got  %+v\nwant %+v", *m, c.want)
			}
		})
	}
}

func TestReadMetadataPosition(t *testing.T) {
	// onMetaData after another script tag is found; after a media tag
	// it is not.
	cue := marshal(t, "onCuePoint", amf.Object{})
	file, ts := layout(tg(TagScript, 0, cue), tg(TagScript, 0, metaBody), tg(TagVideo, 0, avcKey))
	m, err := ReadMetadata(bytes.NewReader(file))
	if err != nil {
		t.Fatal(err)
	}
	if m.Offset != ts[1].Offset || m.Duration != 2.5 {
		t.Errorf("%+v", m)
	}
	file, _ = layout(tg(TagVideo, 0, avcKey), tg(TagScript, 0, metaBody))
	if _, err := ReadMetadata(bytes.NewReader(file)); !errors.Is(err, ErrNoMetadata) {
		t.Errorf("after video: %v", err)
	}
	if _, err := ReadMetadata(bytes.NewReader(hdrAV)); !errors.Is(err, ErrNoMetadata) {
		t.Errorf("no tags: %v", err)
	}
}

// The Writer's padding is invisible to ParseMetadata, whether it cuts it
// off before decoding or not, and gone from Encode.
func TestMetadataPadding(t *testing.T) {
	w := &Writer{props: ownProps(amf.ECMAArray{{Key: "width", Value: 320.0}})}
	body, err := w.metadata(metaState{final: true, duration: 3}, []Keyframe{{0, 100}}, padOverhead+1000)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(body, []byte(keyPadding)) {
		t.Fatal("no padding")
	}
	if cut := withoutPadding(body); len(cut) >= len(body)-1000 {
		t.Fatalf("padding not cut: %d of %d bytes left", len(cut), len(body))
	}
	m, err := ParseMetadata(body)
	if err != nil {
		t.Fatal(err)
	}
	slow, err := parseMetadata(body)
	if err != nil {
		t.Fatal(err)
	}
	slow.Size = m.Size
	if !reflect.DeepEqual(m, slow) {
		t.Errorf("cut %+v\nfull %+v", m, slow)
	}
	if _, ok := m.Raw.(amf.ECMAArray).Get(keyPadding); ok {
		t.Error("padding in Raw")
	}
	if m.Duration != 3 || len(m.Keyframes) != 1 {
		t.Errorf("%+v", m)
	}
	enc, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(enc, []byte(keyPadding)) || len(enc) > len(body)-1000 {
		t.Errorf("Encode kept the padding: %d bytes", len(enc))
	}
	again, err := ParseMetadata(enc)
	if err != nil || !reflect.DeepEqual(again.Raw, m.Raw) {
		t.Errorf("Encode round trip: %v\n%+v\n%+v", err, again.Raw, m.Raw)
	}
	// Allocation: parsing the padded tag costs about what the unpadded one
	// does, not 16 bytes per null.
	allocPadded := allocBytes(10, func() { ParseMetadata(body) })
	if allocPadded > 4000 {
		t.Errorf("parsing the padded metadata allocates %d bytes", allocPadded)
	}
}

// allocBytes returns the bytes f allocates per run, on average.
func allocBytes(runs int, f func()) uint64 {
	var before, after runtime.MemStats
	f()
	runtime.ReadMemStats(&before)
	for range runs {
		f()
	}
	runtime.ReadMemStats(&after)
	return (after.TotalAlloc - before.TotalAlloc) / uint64(runs)
}
