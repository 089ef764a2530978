package flv

import (
	"bytes"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"testing"
	"time"

	"github.com/rtmphub/rtmphub/rtmp/amf"
)

// fuzzSeeds are the case table's files plus small files of the Writer's,
// with a keyframes index in the metadata (whole and subsampled).
func fuzzSeeds(f *testing.F) {
	for _, c := range fileCases {
		f.Add(c.file)
	}
	dir := f.TempDir()
	for i, capacity := range []int{8, 2} {
		path := filepath.Join(dir, "seed"+itoa(int64(i))+".flv")
		w, err := create(path, true, true, amf.ECMAArray{{Key: "width", Value: 320.0}}, capacity)
		if err != nil {
			f.Fatal(err)
		}
		writeAll(f, w, append(gop(0, 1)[:6], tg(TagVideo, 1000, hevcKey), tg(TagVideo, 2000, av1Key), tg(TagAudio, 2010, opusFrame)))
		if err := w.Close(); err != nil {
			f.Fatal(err)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	audio, _ := layout(tg(TagAudio, 0, aacSeq), tg(TagAudio, 0, aacFrame), tg(TagAudio, 1000, aacFrame), tg(TagAudio, 1023, aacFrame))
	f.Add(audio)
}

// FuzzReader: the Reader never panics, allocates in proportion to its
// input (never what a DataSize claims), fails only with the documented
// errors, and what it reads re-encodes to the bytes it came from.
func FuzzReader(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		r, err := NewReader(bytes.NewReader(data))
		if err != nil {
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("NewReader: %v", err)
			}
			return
		}
		var tags []*Tag
		for range len(data)/15 + 2 {
			var tg *Tag
			tg, err = r.Next()
			if err != nil {
				break
			}
			tags = append(tags, tg)
		}
		runtime.ReadMemStats(&after)
		if err == nil {
			t.Fatalf("more tags than the input can hold")
		}
		if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, ErrCorrupt) {
			t.Fatalf("reading ended with %v", err)
		}
		if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 12*uint64(len(data))+64<<10 {
			t.Fatalf("allocated %d bytes for %d bytes of input", alloc, len(data))
		}

		// Re-encoding: the header (but the bits and fields the Reader
		// ignores), then the tags, byte for byte.
		hdr := r.Header()
		enc := AppendHeader(nil, hdr)
		want := bytes.Clone(data[:HeaderSize])
		want[4] &= flagAudio | flagVideo
		if hdr.DataOffset == HeaderSize && !bytes.Equal(enc[:HeaderSize], want) {
			t.Fatalf("header re-encodes to % x, read from % x", enc[:HeaderSize], data[:HeaderSize])
		}
		enc = enc[:0]
		for _, tg := range tags {
			if enc, err = AppendTag(enc, tg); err != nil {
				t.Fatal(err)
			}
		}
		first := int64(hdr.DataOffset) + PrevSizeSize
		if !bytes.Equal(enc, data[first:first+int64(len(enc))]) {
			t.Fatalf("tags re-encode differently")
		}
		if r.Pos() != first+int64(len(enc)) {
			t.Fatalf("Pos %d after %d bytes of tags from %d", r.Pos(), len(enc), first)
		}
		// Each tag reads again from its offset.
		for _, tg := range tags[:min(len(tags), 8)] {
			if err := r.SeekTag(tg.Offset); err != nil {
				t.Fatal(err)
			}
			again, err := r.Next()
			if err != nil || !reflect.DeepEqual(again, tg) {
				t.Fatalf("tag at %d read again: %+v, %v", tg.Offset, again, err)
			}
		}
	})
}

// FuzzIndex: BuildIndex and ReadMetadata never panic, and every index
// entry is a tag that starts playback at the entry's time.
func FuzzIndex(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		if m, err := ReadMetadata(bytes.NewReader(data)); err == nil {
			if enc, err := m.Encode(); err == nil {
				if _, err := ParseMetadata(enc); err != nil {
					t.Fatalf("re-encoded metadata does not parse: %v", err)
				}
			} else if !errors.Is(err, amf.ErrUnencodable) {
				t.Fatalf("Encode: %v", err)
			}
		}

		idx, err := BuildIndex(bytes.NewReader(data))
		if idx == nil {
			if err == nil {
				t.Fatal("no index and no error")
			}
			return
		}
		if err != nil && !errors.Is(err, ErrCorrupt) {
			t.Fatalf("BuildIndex: %v", err)
		}
		r, err := NewReader(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		if idx.Start != int64(r.Header().DataOffset)+PrevSizeSize || idx.Size != int64(len(data)) || idx.Duration < 0 {
			t.Fatalf("index %+v", idx)
		}
		audioOnly := true
		for i, k := range idx.Keyframes {
			if math.IsNaN(k.Time) || k.Time < 0 || i > 0 && (k.Pos <= idx.Keyframes[i-1].Pos || k.Time < idx.Keyframes[i-1].Time) {
				t.Fatalf("entry %d %+v out of order", i, k)
			}
			if err := r.SeekTag(k.Pos); err != nil {
				t.Fatal(err)
			}
			tg, err := r.Next()
			if err != nil {
				t.Fatalf("entry %d %+v: %v", i, k, err)
			}
			if d := float64(tg.Timestamp) - k.Time*1000; d > 1 || d < -1 {
				t.Fatalf("entry %d %+v: tag at %d ms", i, k, tg.Timestamp)
			}
			switch {
			case tg.Type == TagVideo && isSeekPoint(tg.Data):
				audioOnly = false
			case tg.Type == TagAudio && audioOnly:
			default:
				t.Fatalf("entry %d %+v: %v tag % x", i, k, tg.Type, tg.Data[:min(len(tg.Data), 8)])
			}
		}
		var prev Keyframe
		for i, d := range []time.Duration{0, time.Millisecond, time.Second, 2 * time.Second, time.Minute, time.Hour} {
			k := idx.Lookup(d)
			if seconds(k.Time) > d || i > 0 && k.Pos < prev.Pos {
				t.Fatalf("Lookup(%v) = %+v after %+v", d, k, prev)
			}
			prev = k
		}
		b, _ := idx.MarshalBinary()
		var again Index
		if err := again.UnmarshalBinary(b); err != nil || !reflect.DeepEqual(&again, idx) {
			t.Fatalf("binary round trip: %+v, %v", again, err)
		}
	})
}
