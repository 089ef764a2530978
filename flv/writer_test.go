package flv

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/rtmphub/rtmphub/rtmp/amf"
	"github.com/rtmphub/rtmphub/rtmp/message"
)

// avcP is an AVC inter frame without composition time: a P-frame of a
// stream without B-frames, which Append continues at its decode end.
var avcP = hx("2701 000000 00000004 41e002")

// gop returns the tags of seconds [from, to) of a stream with a keyframe
// every second, 25 fps video without B-frames and 40 ms audio, with
// sequence headers first when from is 0.
func gop(from, to uint32) []Tag {
	var ts []Tag
	if from == 0 {
		ts = append(ts, tg(TagVideo, 0, avcSeq), tg(TagAudio, 0, aacSeq))
	}
	for ms := from * 1000; ms < to*1000; ms += 40 {
		v := avcP
		if ms%1000 == 0 {
			v = avcKey
		}
		ts = append(ts, tg(TagVideo, ms, v), tg(TagAudio, ms, aacFrame))
	}
	return ts
}

func writeAll(t testing.TB, w *Writer, ts []Tag) {
	t.Helper()
	for _, tag := range ts {
		if err := w.WriteTag(tag.Type, tag.Timestamp, tag.Data); err != nil {
			t.Fatal(err)
		}
	}
}

// readFile reads every tag of the file at path; it fails the test on
// anything but a clean end.
func readFile(t testing.TB, path string) (Header, []Tag) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	h, ts, err := readAll(b, 0)
	if err != nil {
		t.Fatal(err)
	}
	return h, ts
}

// sameTags compares types, timestamps and data.
func sameTags(t testing.TB, got, want []Tag) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d tags, want %d", len(got), len(want))
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.Type != w.Type || g.Timestamp != w.Timestamp || !bytes.Equal(g.Data, w.Data) {
			t.Fatalf("tag %d: %v %d % x, want %v %d % x", i, g.Type, g.Timestamp, g.Data, w.Type, w.Timestamp, w.Data)
		}
	}
}

func metadataOf(t testing.TB, path string) *Metadata {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, err := ReadMetadata(f)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func indexOf(t testing.TB, path string) *Index {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	idx, err := BuildIndex(f)
	if err != nil {
		t.Fatal(err)
	}
	return idx
}

// scanIndex is BuildIndex without the metadata.
func scanIndex(t testing.TB, path string) *Index {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := newReader(f, scanBufferSize)
	if err != nil {
		t.Fatal(err)
	}
	s := r.scan()
	if s.err != nil || s.truncated {
		t.Fatalf("scan: %v, truncated %v", s.err, s.truncated)
	}
	return s.index(r)
}

func TestWriterRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rec.flv")
	meta := amf.ECMAArray{{Key: "width", Value: 320.0}, {Key: "duration", Value: 99.0}, {Key: "encoder", Value: "test"}}
	w, err := Create(path, true, true, meta)
	if err != nil {
		t.Fatal(err)
	}
	firstTag := w.Size()
	in := append(gop(0, 3), tg(TagScript, 2990, marshal(t, "onCuePoint", amf.Object{})),
		tg(TagVideo, 3000, hevcKey), tg(TagVideo, 3040, avcInter))
	writeAll(t, w, in)
	if w.LastTimestamp() != 3040 || w.Base() != 0 {
		t.Errorf("LastTimestamp %d Base %d", w.LastTimestamp(), w.Base())
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := w.WriteTag(TagAudio, 0, aacFrame); !errors.Is(err, os.ErrClosed) {
		t.Errorf("WriteTag after Close: %v", err)
	}
	h, got := readFile(t, path)
	if h != avHeader {
		t.Errorf("header %+v", h)
	}
	if got[0].Type != TagScript || got[1].Offset != firstTag {
		t.Fatalf("first tags %+v %+v: the onMetaData tag changed size", got[0].Type, got[1].Offset)
	}
	sameTags(t, got[1:], in)

	m := metadataOf(t, path)
	st, _ := os.Stat(path)
	// Video ends at 3040 + 40.
	if m.Duration != 3.08 || m.FileSize != float64(st.Size()) || m.Width != 320 {
		t.Errorf("metadata %+v", m)
	}
	raw := m.Raw.(amf.ECMAArray)
	if s, _ := raw.GetString("encoder"); s != "test" {
		t.Errorf("caller property lost: %v", raw)
	}
	want := scanIndex(t, path)
	if len(want.Keyframes) != 4 || want.Keyframes[3].Time != 3 {
		t.Fatalf("scan found %v", want.Keyframes)
	}
	if !reflect.DeepEqual(m.Keyframes, want.Keyframes) {
		t.Errorf("metadata keyframes %v, scan %v", m.Keyframes, want.Keyframes)
	}
	if idx := indexOf(t, path); !reflect.DeepEqual(idx, want) {
		t.Errorf("BuildIndex %+v, scan %+v", idx, want)
	}
	for _, k := range []string{"lasttimestamp", "lastkeyframetimestamp", "lastkeyframelocation"} {
		if v, _ := raw.GetNumber(k); v == 0 {
			t.Errorf("%s = %v", k, v)
		}
	}
}

func TestWriterErrors(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rec.flv")
	w, err := Create(path, false, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := w.WriteTag(message.TypeCommandAMF0, 0, nil); err == nil {
		t.Error("command tag accepted")
	}
	if err := w.WriteTag(TagVideo, 0, make([]byte, MaxDataSize+1)); err == nil {
		t.Error("oversized tag accepted")
	}
	if _, err := Create(filepath.Join(path, "sub", "x.flv"), true, true, nil); err == nil {
		t.Error("Create in a missing directory succeeded")
	}
	if _, err := Append(filepath.Join(t.TempDir(), "none.flv")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Append of a missing file: %v", err)
	}
}

// A recording with more keyframes than its onMetaData has room for keeps
// the first, the last and evenly spaced ones; BuildIndex still uses it.
func TestWriterSubsampledIndex(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rec.flv")
	w, err := create(path, true, true, nil, 3)
	if err != nil {
		t.Fatal(err)
	}
	writeAll(t, w, gop(0, 10))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	all := scanIndex(t, path).Keyframes
	if len(all) != 10 {
		t.Fatalf("%d keyframes", len(all))
	}
	want := []Keyframe{all[0], all[5], all[9]} // round(4.5) = 5
	if m := metadataOf(t, path); !reflect.DeepEqual(m.Keyframes, want) {
		t.Errorf("metadata %v, want %v", m.Keyframes, want)
	}
	if idx := indexOf(t, path); !reflect.DeepEqual(idx.Keyframes, want) {
		t.Errorf("BuildIndex %v, want %v", idx.Keyframes, want)
	}
}

// An index in the metadata that does not check out is replaced by a scan.
func TestIndexInsaneMetadata(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rec.flv")
	w, err := Create(path, true, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	writeAll(t, w, gop(0, 4))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	good := scanIndex(t, path)
	m := metadataOf(t, path)
	st, _ := os.Stat(path)
	size := st.Size()
	kfs := good.Keyframes
	for _, c := range []struct {
		name string
		size int64
		kfs  []Keyframe
	}{
		{"filesize differs", size + 1, kfs},
		{"position of an inter frame", size, []Keyframe{kfs[0], {1, kfs[1].Pos + 30}}},
		{"time off by 5 ms", size, []Keyframe{kfs[0], {1.005, kfs[1].Pos}}},
		{"positions not increasing", size, []Keyframe{kfs[1], kfs[0]}},
		{"position before the first tag", size, []Keyframe{{0, 13}}},
		{"position beyond the end", size, []Keyframe{kfs[0], {9, size + 100}}},
		{"position inside the metadata", size, []Keyframe{{0, 40}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			f, err := os.OpenFile(path, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			rw := &Writer{props: ownProps(m.Raw.(amf.ECMAArray)), metaSize: int(m.Size)}
			body, err := rw.fit(metaState{final: true, duration: 4, fileSize: c.size}, c.kfs)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.WriteAt(body, m.Offset+TagHeaderSize); err != nil {
				t.Fatal(err)
			}
			if got := metadataOf(t, path); !reflect.DeepEqual(got.Keyframes, c.kfs) {
				t.Fatalf("metadata not rewritten: %v", got.Keyframes)
			}
			if idx := indexOf(t, path); !reflect.DeepEqual(idx, good) {
				t.Errorf("BuildIndex %+v, want the scan's %+v", idx, good)
			}
		})
	}
}

func TestAppend(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rec.flv")
	w, err := Create(path, true, true, amf.ECMAArray{{Key: "width", Value: 320.0}})
	if err != nil {
		t.Fatal(err)
	}
	first := gop(0, 2)
	writeAll(t, w, first)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	closed, _ := os.ReadFile(path)

	w, err = Append(path)
	if err != nil {
		t.Fatal(err)
	}
	if w.LastTimestamp() != 1960 || w.Base() != 2000 || w.Size() != int64(len(closed)) {
		t.Errorf("LastTimestamp %d Base %d Size %d", w.LastTimestamp(), w.Base(), w.Size())
	}
	// While appending, the metadata claims nothing a kill would make stale.
	if m := metadataOf(t, path); m.Duration != 0 || m.Keyframes != nil || m.FileSize != 0 || m.Width != 320 {
		t.Errorf("metadata during Append %+v", m)
	}
	second := gop(0, 2)
	writeAll(t, w, second)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	_, got := readFile(t, path)
	want := append([]Tag(nil), first...)
	for _, tag := range second {
		tag.Timestamp += 2000
		want = append(want, tag)
	}
	sameTags(t, got[1:], want)
	m := metadataOf(t, path)
	if m.Duration != 4 || m.Width != 320 {
		t.Errorf("metadata %+v", m)
	}
	idx := indexOf(t, path)
	var times []float64
	for _, k := range idx.Keyframes {
		times = append(times, k.Time)
	}
	if !reflect.DeepEqual(times, []float64{0, 1, 2, 3}) || idx.Duration != 4*time.Second {
		t.Errorf("index %v, %v", times, idx.Duration)
	}
	if !reflect.DeepEqual(idx, scanIndex(t, path)) {
		t.Errorf("metadata index differs from the scan")
	}
}

// Append cuts off a tag that a kill left incomplete and continues from
// the last complete one.
func TestAppendCutTail(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rec.flv")
	w, err := Create(path, true, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	writeAll(t, w, gop(0, 1))
	complete := w.Size()
	writeAll(t, w, []Tag{tg(TagVideo, 1000, avcKey)})
	w.f.Close() // killed: no Close
	if err := os.Truncate(path, complete+9); err != nil {
		t.Fatal(err)
	}

	w, err = Append(path)
	if err != nil {
		t.Fatal(err)
	}
	if w.Size() != complete || w.LastTimestamp() != 960 || w.Base() != 1000 {
		t.Errorf("Size %d (want %d) LastTimestamp %d Base %d", w.Size(), complete, w.LastTimestamp(), w.Base())
	}
	writeAll(t, w, gop(0, 1))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	_, got := readFile(t, path)
	want := gop(0, 1)
	for _, tag := range gop(0, 1) {
		tag.Timestamp += 1000
		want = append(want, tag)
	}
	sameTags(t, got[1:], want)
}

// Append refuses a corrupt file and leaves it as it is.
func TestAppendCorrupt(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.flv")
	file, ts := layout(tg(TagScript, 0, metaBody), tg(TagVideo, 0, avcKey), tg(TagVideo, 40, avcInter))
	file[ts[2].Offset-1]++
	if err := os.WriteFile(path, file, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Append(path); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Append: %v", err)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(after, file) {
		t.Error("the file changed")
	}
	if err := os.WriteFile(path, []byte("not flv at all"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Append(path); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Append: %v", err)
	}
}

// Another writer's files: metadata too small to hold the Writer's is left
// as it is; one with room (here an object with an index to drop) is
// rewritten in its own form.
func TestAppendForeign(t *testing.T) {
	dir := t.TempDir()
	tight, _ := layout(append([]Tag{tg(TagScript, 0, metaBody)}, gop(0, 1)...)...)
	none, _ := layout(gop(0, 1)...)
	roomy := marshal(t, "onMetaData", amf.Object{
		{Key: "duration", Value: 1.0},
		{Key: "keyframes", Value: amf.Object{
			{Key: "times", Value: []any{0.0, 1, 2, 3, 4, 5, 6, 7, 8, 9}},
			{Key: "filepositions", Value: []any{0.0, 1, 2, 3, 4, 5, 6, 7, 8, 9}},
		}},
	})
	withRoom, _ := layout(append([]Tag{tg(TagScript, 0, roomy)}, gop(0, 1)...)...)
	for _, c := range []struct {
		name    string
		file    []byte
		rewrite bool
	}{
		{"tight metadata", tight, false},
		{"no metadata", none, false},
		{"object metadata with room", withRoom, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(dir, c.name+".flv")
			if err := os.WriteFile(path, c.file, 0o644); err != nil {
				t.Fatal(err)
			}
			w, err := Append(path)
			if err != nil {
				t.Fatal(err)
			}
			writeAll(t, w, gop(0, 1))
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			_, got := readFile(t, path)
			media := got
			if media[0].Type == TagScript {
				media = media[1:]
			}
			if len(media) != 2*len(gop(0, 1)) || media[len(media)-1].Timestamp != 1960 {
				t.Errorf("%d media tags, last at %d", len(media), media[len(media)-1].Timestamp)
			}
			after, _ := os.ReadFile(path)
			same := bytes.Equal(after[:len(c.file)], c.file)
			if same == c.rewrite {
				t.Errorf("metadata rewritten: %v, want %v", !same, c.rewrite)
			}
			if !c.rewrite {
				return
			}
			m := metadataOf(t, path)
			if _, ok := m.Raw.(amf.Object); !ok || m.Duration != 2 || len(m.Keyframes) != 2 {
				t.Errorf("%T %+v", m.Raw, m)
			}
			if idx := indexOf(t, path); !reflect.DeepEqual(idx.Keyframes, m.Keyframes) {
				t.Errorf("index %v, metadata %v", idx.Keyframes, m.Keyframes)
			}
		})
	}
}

// A failed write leaves the file ending with its last complete tag.
func TestWriterFailedWrite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rec.flv")
	w, err := Create(path, true, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	writeAll(t, w, gop(0, 1))
	size := w.Size()
	// Replace the file by a read-only descriptor: writes fail.
	ro, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	rw := w.f
	w.f = ro
	if err := w.WriteTag(TagVideo, 1000, avcKey); err == nil {
		t.Fatal("write to a read-only file succeeded")
	}
	if w.Size() != size {
		t.Errorf("Size %d after a failed write, want %d", w.Size(), size)
	}
	w.f = rw
	ro.Close()
	writeAll(t, w, []Tag{tg(TagVideo, 1000, avcKey)})
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	_, got := readFile(t, path)
	sameTags(t, got[1:], append(gop(0, 1), tg(TagVideo, 1000, avcKey)))
}

// bframes returns seconds [from, to) of a stream with B-frames, as x264
// with two B-frames lays it out: 25 fps AVC (legacy, or HEVC CodedFrames
// when enhanced) in decode order I P B B P B B..., a keyframe every
// second, presentation one frame behind decoding (composition times 40
// for the I-frame, 120 for P, 0 for B), and 40 ms audio; sequence headers
// first when from is 0.
func bframes(from, to uint32, enhanced bool) []Tag {
	var ts []Tag
	if from == 0 {
		seq := avcSeq
		if enhanced {
			seq = hevcSeq
		}
		ts = append(ts, tg(TagVideo, 0, seq), tg(TagAudio, 0, aacSeq))
	}
	for ms := from * 1000; ms < to*1000; ms += 40 {
		k := ms % 1000 / 40 // decode order in the GOP
		var cts int32
		switch {
		case k == 0:
			cts = 40
		case k%3 == 1:
			cts = 120
		}
		ts = append(ts, tg(TagVideo, ms, codedFrame(k == 0, cts, enhanced)), tg(TagAudio, ms, aacFrame))
	}
	return ts
}

// codedFrame returns an AVC (legacy) or HEVC (E-RTMP CodedFrames) frame
// with composition time cts.
func codedFrame(key bool, cts int32, enhanced bool) []byte {
	c := []byte{byte(cts >> 16), byte(cts >> 8), byte(cts)}
	switch {
	case enhanced && key:
		return cat(hx("91"), []byte("hvc1"), c, hx("00000003 2601af"))
	case enhanced:
		return cat(hx("a1"), []byte("hvc1"), c, hx("00000003 0201d0"))
	case key:
		return cat(hx("1701"), c, hx("00000004 65888400"))
	}
	return cat(hx("2701"), c, hx("00000003 41e002"))
}

// presentation returns a video tag's presentation time: its timestamp plus
// its composition time; ok is false for anything but a coded frame.
func presentation(tag Tag) (int64, bool) {
	if tag.Type != TagVideo {
		return 0, false
	}
	v, ok := message.ParseVideo(tag.Data)
	if !ok || v.SequenceHeader || v.SequenceEnd || v.Command || v.Metadata {
		return 0, false
	}
	return int64(tag.Timestamp) + int64(v.CompositionTime), true
}

// joinFault checks the join of a file's first n tags with what follows
// (an Append): per stream, the appended tags' timestamps (decode times)
// must be after the file's last; the appended video must be presented
// after the file's last presented frame, and the appended part start no
// more than two frames (frame is the video's frame interval: one frame,
// and rounding to the frame grid) after the file's last presentation or
// timestamp. It returns what is wrong, or "".
func joinFault(tags []Tag, n int, frame int64) string {
	lastTS := map[message.Type]int64{}
	maxPTS, end := int64(-1), int64(0)
	for _, tag := range tags[:n] {
		if tag.Type == TagScript {
			continue
		}
		lastTS[tag.Type] = max(lastTS[tag.Type], int64(tag.Timestamp))
		end = max(end, int64(tag.Timestamp))
		if pts, ok := presentation(tag); ok {
			maxPTS = max(maxPTS, pts)
		}
	}
	end = max(end, maxPTS)
	seen := map[message.Type]bool{}
	minPTS, start := int64(-1), int64(-1)
	for _, tag := range tags[n:] {
		if tag.Type == TagScript {
			continue
		}
		if start < 0 {
			start = int64(tag.Timestamp)
		}
		if !seen[tag.Type] {
			seen[tag.Type] = true
			if int64(tag.Timestamp) <= lastTS[tag.Type] {
				return fmt.Sprintf("%v: appended timestamp %d, the file's last %d", tag.Type, tag.Timestamp, lastTS[tag.Type])
			}
		}
		if pts, ok := presentation(tag); ok && (minPTS < 0 || pts < minPTS) {
			minPTS = pts
		}
	}
	switch {
	case minPTS <= maxPTS:
		return fmt.Sprintf("appended video presented from %d, the file's until %d", minPTS, maxPTS)
	case start > end+2*frame:
		return fmt.Sprintf("appended part starts at %d, the file ends at %d: a gap", start, end)
	}
	return ""
}

// A recording with B-frames killed in any tag of its last second, then
// appended to, continues with decode times after the file's and
// presentation times after the file's, one frame on: legacy AVC and
// E-RTMP HEVC composition times alike.
func TestAppendAfterKillBFrames(t *testing.T) {
	for _, enhanced := range []bool{false, true} {
		dir := t.TempDir()
		path := filepath.Join(dir, "rec.flv")
		w, err := Create(path, true, true, nil)
		if err != nil {
			t.Fatal(err)
		}
		writeAll(t, w, bframes(0, 3, enhanced))
		w.f.Close() // killed: no Close
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		_, all, err := readAll(b, 0)
		if err != nil {
			t.Fatal(err)
		}
		faults, joins := 0, 0
		for i, tag := range all {
			if tag.Timestamp < 2000 {
				continue
			}
			// Cut in the middle of the tag, as a kill during its write.
			cut := filepath.Join(dir, fmt.Sprintf("cut%d.flv", i))
			if err := os.WriteFile(cut, b[:tag.Offset+8+int64(len(tag.Data))/2], 0o644); err != nil {
				t.Fatal(err)
			}
			w, err := Append(cut)
			if err != nil {
				t.Fatal(err)
			}
			writeAll(t, w, bframes(0, 1, enhanced))
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			_, got := readFile(t, cut)
			joins++
			if f := joinFault(got, i, 40); f != "" {
				faults++
				t.Errorf("enhanced %v, cut in tag %d (%v at %d): %s", enhanced, i, tag.Type, tag.Timestamp, f)
			}
		}
		t.Logf("enhanced %v: %d of %d joins faulty", enhanced, faults, joins)
	}
}

// A recording of a publisher that writes frame type 0 in every E-RTMP
// header (gortmplib up to v1.0.1): its keyframes are found from the HEVC
// NAL units, also when parameter sets and SEI put the IDR picture far
// past the bytes a scan first looks at, by the Writer, by the scan and
// when BuildIndex checks the metadata's index.
func TestIndexFrameTypeZero(t *testing.T) {
	nal := func(header string, size int) []byte {
		b := be32(uint32(size))
		b = append(b, hx(header)...)
		return append(b, bytes.Repeat([]byte{0xab}, size-2)...)
	}
	key := cat(hx("81"), []byte("hvc1"), hx("000000"),
		nal("4001", 24), nal("4201", 60), nal("4401", 10), nal("4e01", 2000), nal("2601", 500)) // VPS, SPS, PPS, SEI, IDR_W_RADL
	inter := cat(hx("81"), []byte("hvc1"), hx("000000"), nal("0201", 300)) // TRAIL_R
	var in []Tag
	in = append(in, tg(TagVideo, 0, cat(hx("80"), []byte("hvc1"), hx("0101600000"))))
	for ms := uint32(0); ms < 2000; ms += 40 {
		v := inter
		if ms%1000 == 0 {
			v = key
		}
		in = append(in, tg(TagVideo, ms, v))
	}
	path := filepath.Join(t.TempDir(), "ft0.flv")
	w, err := Create(path, false, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	writeAll(t, w, in)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	for name, idx := range map[string]*Index{"metadata": indexOf(t, path), "scan": scanIndex(t, path)} {
		var times []float64
		for _, k := range idx.Keyframes {
			times = append(times, k.Time)
		}
		if !reflect.DeepEqual(times, []float64{0, 1}) {
			t.Errorf("%s index: keyframes at %v", name, times)
		}
	}
	if m := metadataOf(t, path); len(m.Keyframes) != 2 {
		t.Errorf("metadata keyframes %v", m.Keyframes)
	}
}
