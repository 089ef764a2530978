package flv

import (
	"bufio"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// stream5Mbps calls emit with the tags of a synthetic 5 Mbps stream of
// secs seconds: 30 fps H.264 with a keyframe every 2 s (keyframes 4 times
// the size of other frames), and 128 kbit/s AAC in 1024-sample frames at
// 44.1 kHz.
func stream5Mbps(secs int, emit func(Tag)) {
	const (
		videoRate = 5_000_000 - 128_000 // bit/s
		fps       = 30
		gopFrames = 2 * fps
	)
	inter := videoRate / 8 * 2 / (gopFrames - 1 + 4) // bytes per inter frame
	key := make([]byte, 4*inter)
	copy(key, avcKey)
	other := make([]byte, inter)
	copy(other, avcInter)
	aac := make([]byte, 128_000/8*1024/44100)
	copy(aac, aacFrame)
	emit(tg(TagVideo, 0, avcSeq))
	emit(tg(TagAudio, 0, aacSeq))
	audioMs := 0.0
	for f := 0; f < secs*fps; f++ {
		ms := uint32(f * 1000 / fps)
		for ; audioMs <= float64(ms); audioMs += 1024 * 1000 / 44100.0 {
			emit(tg(TagAudio, uint32(audioMs), aac))
		}
		if f%gopFrames == 0 {
			emit(tg(TagVideo, ms, key))
		} else {
			emit(tg(TagVideo, ms, other))
		}
	}
}

// recorded5Mbps records secs seconds of stream5Mbps with the Writer.
func recorded5Mbps(b *testing.B, secs int) (string, int64) {
	b.Helper()
	path := filepath.Join(b.TempDir(), "5mbps.flv")
	w, err := Create(path, true, true, nil)
	if err != nil {
		b.Fatal(err)
	}
	stream5Mbps(secs, func(t Tag) {
		if err := w.WriteTag(t.Type, t.Timestamp, t.Data); err != nil {
			b.Fatal(err)
		}
	})
	size := w.Size()
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	return path, size
}

// BenchmarkReadTags reads every tag of 20 s of a 5 Mbps file (12.5 MB)
// into one reused Tag; BenchmarkNext allocates each tag.
func BenchmarkReadTags(b *testing.B) { benchRead(b, false) }
func BenchmarkNext(b *testing.B)     { benchRead(b, true) }

func benchRead(b *testing.B, alloc bool) {
	path, size := recorded5Mbps(b, 20)
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	r, err := NewReader(f)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(size)
	b.ReportAllocs()
	var t Tag
	var tags int
	for b.Loop() {
		if err := r.SeekTag(0); err != nil {
			b.Fatal(err)
		}
		tags = 0
		for {
			if alloc {
				_, err = r.Next()
			} else {
				err = r.ReadTag(&t)
			}
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			tags++
		}
	}
	b.ReportMetric(float64(tags), "tags/op")
}

// BenchmarkBuildIndexScan100MB scans 100 MB of 5 Mbps tags without a
// metadata index; BenchmarkBuildIndexMetadata100MB checks the Writer's.
func BenchmarkBuildIndexScan100MB(b *testing.B) {
	path := filepath.Join(b.TempDir(), "100mb.flv")
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	bw := bufio.NewWriter(f)
	buf := AppendHeader(nil, Header{Version: 1, HasAudio: true, HasVideo: true})
	stream5Mbps(160, func(t Tag) {
		bw.Write(buf)
		buf, _ = AppendTag(buf[:0], &t)
	})
	bw.Write(buf)
	if err := bw.Flush(); err != nil {
		b.Fatal(err)
	}
	f.Close()
	benchIndex(b, path, false)
}

func BenchmarkBuildIndexMetadata100MB(b *testing.B) {
	path, _ := recorded5Mbps(b, 160)
	benchIndex(b, path, true)
}

func benchIndex(b *testing.B, path string, fromMetadata bool) {
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	if st.Size() < 100_000_000 {
		b.Fatalf("file of %d bytes", st.Size())
	}
	m, _ := ReadMetadata(f)
	if (m != nil && m.Keyframes != nil) != fromMetadata {
		b.Fatalf("metadata index present: %v", !fromMetadata)
	}
	b.ReportAllocs()
	var idx *Index
	for b.Loop() {
		if idx, err = BuildIndex(f); err != nil {
			b.Fatal(err)
		}
	}
	if len(idx.Keyframes) != 80 {
		b.Fatalf("%d keyframes", len(idx.Keyframes))
	}
	b.ReportMetric(float64(st.Size())/1e6, "MB")
}
