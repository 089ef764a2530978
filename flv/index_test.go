package flv

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/rtmphub/rtmphub/rtmp/message"
)

// layout builds a file (header, then tags) and returns it with the tags'
// offsets filled in.
func layout(ts ...Tag) ([]byte, []Tag) {
	b := append([]byte(nil), hdrAV...)
	for i := range ts {
		ts[i].Offset = int64(len(b))
		b, _ = AppendTag(b, &ts[i])
	}
	return b, ts
}

func TestIndexScan(t *testing.T) {
	cmd := hx("5001") // legacy command frame (seek start)
	exCmd := hx("d1") // enhanced command frame
	file, ts := layout(
		tg(TagScript, 0, metaBody), // no keyframes in it: scanned
		tg(TagVideo, 0, avcSeq),
		tg(TagAudio, 0, aacSeq),
		tg(TagVideo, 0, avcKey), // 3
		tg(TagAudio, 23, aacFrame),
		tg(TagVideo, 40, avcInter),
		tg(TagVideo, 1000, hevcSeq),
		tg(TagVideo, 1000, hevcKey), // 7
		tg(TagVideo, 1500, cmd),
		tg(TagVideo, 1600, exCmd),
		tg(TagVideo, 2000, av1Key),    // 10
		tg(TagVideo, 3000, mtHEVCKey), // 11
		tg(TagVideo, 2500, avcKey),    // earlier than the last keyframe: left out
		tg(TagVideo, 3040, avcInter),
		tg(TagAudio, 3050, aacFrame),
		tg(TagAudio, 3073, aacFrame),
	)
	idx, err := BuildIndex(bytes.NewReader(file))
	if err != nil {
		t.Fatal(err)
	}
	want := []Keyframe{{0, ts[3].Offset}, {1, ts[7].Offset}, {2, ts[10].Offset}, {3, ts[11].Offset}}
	if !reflect.DeepEqual(idx.Keyframes, want) {
		t.Errorf("keyframes %v, want %v", idx.Keyframes, want)
	}
	// Video ends at 3040 + 40, audio at 3073 + 23.
	if idx.Duration != 3096*time.Millisecond {
		t.Errorf("duration %v", idx.Duration)
	}
	if idx.Start != 13 || idx.Size != int64(len(file)) {
		t.Errorf("start %d size %d", idx.Start, idx.Size)
	}
}

func TestIndexAudioOnly(t *testing.T) {
	tags := []Tag{tg(TagScript, 0, metaBody), tg(TagAudio, 0, aacSeq)}
	for ts := uint32(0); ts < 3500; ts += 23 {
		tags = append(tags, tg(TagAudio, ts, aacFrame))
	}
	file, ts := layout(tags...)
	idx, err := BuildIndex(bytes.NewReader(file))
	if err != nil {
		t.Fatal(err)
	}
	// The first frame at or after each second: 0, 1012, 2001, 3013.
	want := []Keyframe{{0, ts[2].Offset}, {1.012, ts[2+44].Offset}, {2.001, ts[2+87].Offset}, {3.013, ts[2+131].Offset}}
	if !reflect.DeepEqual(idx.Keyframes, want) {
		t.Errorf("keyframes %v, want %v", idx.Keyframes, want)
	}
}

func TestIndexLookup(t *testing.T) {
	idx := &Index{Start: 13, Keyframes: []Keyframe{{0.5, 100}, {1.04, 200}, {2, 300}}}
	for _, c := range []struct {
		t    time.Duration
		want Keyframe
	}{
		{0, Keyframe{0, 13}},
		{499 * time.Millisecond, Keyframe{0, 13}},
		{500 * time.Millisecond, Keyframe{0.5, 100}},
		{1039 * time.Millisecond, Keyframe{0.5, 100}},
		{1040 * time.Millisecond, Keyframe{1.04, 200}},
		{2 * time.Second, Keyframe{2, 300}},
		{time.Hour, Keyframe{2, 300}},
		{-time.Second, Keyframe{0, 13}},
	} {
		if got := idx.Lookup(c.t); got != c.want {
			t.Errorf("Lookup(%v) = %v, want %v", c.t, got, c.want)
		}
	}
	empty := &Index{Start: 13}
	if got := empty.Lookup(time.Second); got != (Keyframe{0, 13}) {
		t.Errorf("empty Lookup = %v", got)
	}
	if n := testing.AllocsPerRun(100, func() { idx.Lookup(time.Second) }); n != 0 {
		t.Errorf("Lookup allocates %v times", n)
	}
}

// A file cut in its last tag is indexed without error; a corrupt one
// yields the index before the corruption and the error.
func TestIndexCutAndCorrupt(t *testing.T) {
	file, ts := layout(tg(TagVideo, 0, avcKey), tg(TagVideo, 1000, avcKey), tg(TagVideo, 2000, avcKey))
	idx, err := BuildIndex(bytes.NewReader(file[:len(file)-3]))
	if err != nil {
		t.Fatal(err)
	}
	if want := []Keyframe{{0, ts[0].Offset}, {1, ts[1].Offset}}; !reflect.DeepEqual(idx.Keyframes, want) {
		t.Errorf("cut: %v, want %v", idx.Keyframes, want)
	}
	bad := bytes.Clone(file)
	bad[ts[2].Offset-1]++ // the PreviousTagSize of tag 1
	idx, err = BuildIndex(bytes.NewReader(bad))
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("corrupt: %v", err)
	}
	if want := []Keyframe{{0, ts[0].Offset}}; !reflect.DeepEqual(idx.Keyframes, want) {
		t.Errorf("corrupt: %v, want %v", idx.Keyframes, want)
	}
}

func TestIndexMarshal(t *testing.T) {
	idx := &Index{Keyframes: []Keyframe{{0, 13}, {1.5, 4000}}, Duration: 3 * time.Second, Start: 13, Size: 5000}
	b, err := idx.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var got Index
	if err := got.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(&got, idx) {
		t.Errorf("round trip %+v, want %+v", got, idx)
	}
	for _, bad := range [][]byte{nil, b[:len(b)-1], append(bytes.Clone(b), 0), append([]byte("FLVY"), b[4:]...)} {
		if err := got.UnmarshalBinary(bad); err == nil {
			t.Errorf("accepted % x", bad)
		}
	}
}

func TestIsSeekPoint(t *testing.T) {
	for _, c := range []struct {
		name string
		p    []byte
		want bool
	}{
		{"AVC keyframe", avcKey, true},
		{"AVC sequence header", avcSeq, false},
		{"AVC inter frame", avcInter, false},
		{"AVC end of sequence", hx("1702 000000"), false},
		{"H.263 keyframe", hx("12 0000"), true},
		{"HEVC (E-RTMP) keyframe", hevcKey, true},
		{"HEVC (E-RTMP) SequenceStart", hevcSeq, false},
		{"AV1 (E-RTMP) keyframe", av1Key, true},
		{"multitrack HEVC keyframe", mtHEVCKey, true},
		{"legacy command frame", hx("5001"), false},
		{"E-RTMP metadata frame", cat(hx("d4"), []byte("hvc1"), hx("02")), false},
		{"too short to classify, keyframe type", hx("17"), true},
		{"empty", nil, false},
	} {
		if got := isSeekPoint(c.p); got != c.want {
			v, ok := message.ParseVideo(c.p)
			t.Errorf("%s: %v, want %v (%+v %v)", c.name, got, c.want, v, ok)
		}
	}
}
