package vod

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/Eyevinn/mp4ff/mp4"

	"github.com/rtmphub/rtmphub/flv"
)

// The seeds in testdata/mp4 are one-second ffmpeg files (32×32 testsrc,
// 8 kHz sine):
//
//	plain.mp4    H.264 without B-frames + AAC, moov first (+faststart)
//	bframes.mp4  H.264 with B-frames (ctts, edit list) + AAC, moov last
//	hevc.mp4     HEVC (hvc1) with B-frames, no audio
//	audio.m4a    AAC only (edit list for the priming)
//	frag.mp4     fragmented (empty moov, moof boxes): refused

// FuzzMP4 opens the bytes as the VOD path opens an MP4 file (the sample
// table, then every sample as an FLV tag): it never panics (mp4ff's
// panics included: buildMP4Info's recover is not on this path), every
// loop ends, and the table is bounded by the input's size whatever the
// boxes claim.
func FuzzMP4(f *testing.F) {
	seeds, err := filepath.Glob(filepath.Join("testdata", "mp4", "*"))
	if err != nil || len(seeds) == 0 {
		f.Fatalf("no seeds in testdata/mp4: %v", err)
	}
	for _, p := range seeds {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		// The seeds are what they claim: all but the fragmented one play.
		info, err := parseMP4(bytes.NewReader(b), int64(len(b)))
		if frag := filepath.Base(p) == "frag.mp4"; frag != (err != nil) || !frag && len(info.mp4.samples) < 5 {
			f.Fatalf("%s: %v", p, err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var info *Info
		var err error
		allocBound(t, len(data), func() { info, err = parseMP4(bytes.NewReader(data), int64(len(data))) })
		checkMP4(t, data, info, err)
	})
}

// allocBound fails t when f allocates more than the boxes and the sample
// table of a file of size bytes can take: a sample is at least one byte
// of the file (four of stsz without a uniform size) and takes 56 bytes
// (its entries in its track's and the merged table, a key).
func allocBound(t *testing.T, size int, f func()) {
	t.Helper()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	before := ms.TotalAlloc
	f()
	runtime.ReadMemStats(&ms)
	if alloc := ms.TotalAlloc - before; alloc > 1<<20+256*uint64(size) {
		t.Fatalf("%d bytes allocated for a file of %d", alloc, size)
	}
}

// checkMP4 checks what parseMP4 made of data (or mp4Info of a moov
// read from data), then reads every sample, and again from a seek.
func checkMP4(t *testing.T, data []byte, info *Info, err error) {
	t.Helper()
	if err != nil {
		if info != nil || !errors.Is(err, ErrBadMP4) {
			t.Fatalf("info %v, error %v", info, err)
		}
		return
	}
	tab := info.mp4
	// Per track, a sample has 4 bytes of stsz or (with a uniform size)
	// at least one byte of the file.
	if len(tab.samples) > 2*len(data) || len(tab.keys) > len(tab.samples) {
		t.Fatalf("%d samples, %d keys from %d bytes", len(tab.samples), len(tab.keys), len(data))
	}
	if info.cost != int64(len(tab.samples))*mp4SampleBytes+int64(len(tab.keys))*8 || info.Duration < 0 {
		t.Fatalf("cost %d, duration %v", info.cost, info.Duration)
	}
	for i, s := range tab.samples {
		if i > 0 && s.ts < tab.samples[i-1].ts {
			t.Fatalf("sample %d at %d ms after %d ms", i, s.ts, tab.samples[i-1].ts)
		}
	}
	for i, k := range tab.keys {
		if k < 0 || k >= len(tab.samples) || i > 0 && k <= tab.keys[i-1] {
			t.Fatalf("key %d is sample %d of %d", i, k, len(tab.samples))
		}
	}
	for _, tg := range info.Seq {
		if tg == nil || tg.Type != flv.TagAudio && tg.Type != flv.TagVideo {
			t.Fatalf("sequence header %+v", tg)
		}
	}

	src := &mp4Source{f: nopCloser{bytes.NewReader(data)}, info: info, tab: tab}
	defer src.Close()
	// Every sample in order, then from a seek into the middle.
	read := func() {
		for range len(tab.samples) + 1 {
			tg, err := src.Next()
			if err != nil {
				if err != io.EOF && err != io.ErrUnexpectedEOF && !errors.Is(err, ErrBadMP4) {
					t.Fatalf("next: %v", err)
				}
				return
			}
			if len(tg.Data) > maxSampleSize+8 || len(tg.Data) > len(data)+8 {
				t.Fatalf("tag of %d bytes from %d", len(tg.Data), len(data))
			}
		}
		t.Fatal("next did not end")
	}
	read()
	if ts, _, err := src.SeekKeyframe(int64(info.Duration.Milliseconds() / 2)); err != nil || ts < 0 {
		t.Fatalf("seek: %d, %v", ts, err)
	}
	read()
}

type nopCloser struct{ io.ReaderAt }

func (nopCloser) Close() error { return nil }

// FuzzMP4Tables edits the sample tables of a seed's moov as a hostile
// file could write them (mp4ff decodes the boxes of FuzzMP4's inputs
// strictly, so few of its mutations reach the tables with odd values)
// and builds the table from them: the checks of FuzzMP4. An edit is 7
// bytes: track, field, index, value (u32).
func FuzzMP4Tables(f *testing.F) {
	var seeds [][]byte
	for _, name := range []string{"bframes.mp4", "plain.mp4", "hevc.mp4", "audio.m4a"} {
		b, err := os.ReadFile(filepath.Join("testdata", "mp4", name))
		if err != nil {
			f.Fatal(err)
		}
		seeds = append(seeds, b)
	}
	edit := func(track, field, idx byte, v uint32) []byte {
		return []byte{track, field, idx, byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}
	}
	for i := range seeds {
		f.Add(uint8(i), []byte(nil))
	}
	f.Add(uint8(0), bytes.Join([][]byte{edit(0, 3, 0, 1), edit(0, 2, 0, 1<<21), edit(0, 16, 1, 1), edit(0, 5, 0, 1<<21),
		edit(0, 16, 2, 1), edit(0, 8, 0, 1<<21)}, nil)) // 2M samples of 1 byte
	f.Add(uint8(0), append(edit(0, 5, 0, 0xFFFFFFFF), edit(0, 8, 0, 0xFFFFFFFF)...))               // huge counts
	f.Add(uint8(0), append(edit(0, 11, 3, 0x80000000), edit(0, 13, 0, 0xFFFFFFFF)...))             // negative offsets
	f.Add(uint8(1), append(edit(1, 12, 0, 0xFFFFFFFF), edit(1, 14, 0, 0x7FFFFFFF)...))             // huge edits
	f.Add(uint8(3), append(edit(0, 9, 0, 0xFFFFFFF0), edit(0, 1, 0, 1)...))                        // offset past the end
	f.Add(uint8(2), append(edit(0, 16, 0, 0), append(edit(0, 17, 2, 0), edit(0, 18, 0, 7)...)...)) // truncate, remove, append
	f.Fuzz(func(t *testing.T, which uint8, edits []byte) {
		data := seeds[int(which)%len(seeds)]
		moov, err := readMoov(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			t.Fatal(err)
		}
		for ; len(edits) >= 7 && len(moov.Traks) > 0; edits = edits[7:] {
			editMP4(moov, moov.Traks[int(edits[0])%len(moov.Traks)], edits[1], int(edits[2]), binary.BigEndian.Uint32(edits[3:7]))
		}
		var info *Info
		allocBound(t, len(data), func() { info, err = mp4Info(moov, int64(len(data))) })
		checkMP4(t, data, info, err)
	})
}

// editMP4 sets field of trak's tables (element idx of a list) to v.
func editMP4(moov *mp4.MoovBox, trak *mp4.TrakBox, field byte, idx int, v uint32) {
	if trak.Mdia == nil || trak.Mdia.Minf == nil || trak.Mdia.Minf.Stbl == nil {
		return
	}
	stbl := trak.Mdia.Minf.Stbl
	at := func(n int) (int, bool) { return idx % max(n, 1), n > 0 }
	var elst *mp4.ElstBox
	if trak.Edts != nil && len(trak.Edts.Elst) > 0 {
		elst = trak.Edts.Elst[0]
	}
	switch field % 19 {
	case 0:
		if moov.Mvhd != nil {
			moov.Mvhd.Timescale = v
		}
	case 1:
		if trak.Mdia.Mdhd != nil {
			trak.Mdia.Mdhd.Timescale = v
		}
	case 2:
		if stbl.Stsz != nil {
			stbl.Stsz.SampleNumber = v
		}
	case 3:
		if stbl.Stsz != nil {
			stbl.Stsz.SampleUniformSize = v
		}
	case 4:
		if stbl.Stsz != nil {
			if i, ok := at(len(stbl.Stsz.SampleSize)); ok {
				stbl.Stsz.SampleSize[i] = v
			}
		}
	case 5, 6:
		if stbl.Stts != nil {
			if i, ok := at(len(stbl.Stts.SampleCount)); ok && i < len(stbl.Stts.SampleTimeDelta) {
				if field%19 == 5 {
					stbl.Stts.SampleCount[i] = v
				} else {
					stbl.Stts.SampleTimeDelta[i] = v
				}
			}
		}
	case 7, 8:
		if stbl.Stsc != nil {
			if i, ok := at(len(stbl.Stsc.Entries)); ok {
				if field%19 == 7 {
					stbl.Stsc.Entries[i].FirstChunk = v
				} else {
					stbl.Stsc.Entries[i].SamplesPerChunk = v
				}
			}
		}
	case 9:
		if stbl.Stco != nil {
			if i, ok := at(len(stbl.Stco.ChunkOffset)); ok {
				stbl.Stco.ChunkOffset[i] = v
			}
		}
	case 10, 11:
		if c := stbl.Ctts; c != nil {
			if i, ok := at(len(c.SampleOffset)); ok && field%19 == 11 {
				c.SampleOffset[i] = int32(v)
			} else if i, ok := at(len(c.EndSampleNr)); ok {
				c.EndSampleNr[i] = v
			}
		}
	case 12, 13, 14:
		if elst == nil {
			return
		}
		if i, ok := at(len(elst.Entries)); ok {
			e := &elst.Entries[i]
			switch field % 19 {
			case 12:
				e.SegmentDuration = e.SegmentDuration<<32 | uint64(v)
			case 13:
				e.MediaTime = int64(int32(v))
			case 14:
				e.MediaTime = e.MediaTime<<32 | int64(v)
			}
		}
	case 15:
		if stbl.Stss != nil {
			if i, ok := at(len(stbl.Stss.SampleNumber)); ok {
				stbl.Stss.SampleNumber[i] = v
			}
		}
	case 16: // shorten a list to v modulo its length + 1
		cut := func(n int) int { return int(v % uint32(n+1)) }
		switch idx % 7 {
		case 0:
			if stbl.Stsz != nil {
				stbl.Stsz.SampleSize = stbl.Stsz.SampleSize[:cut(len(stbl.Stsz.SampleSize))]
			}
		case 1:
			if stbl.Stts != nil {
				stbl.Stts.SampleCount = stbl.Stts.SampleCount[:cut(len(stbl.Stts.SampleCount))]
			}
		case 2:
			if stbl.Stsc != nil {
				stbl.Stsc.Entries = stbl.Stsc.Entries[:cut(len(stbl.Stsc.Entries))]
			}
		case 3:
			if stbl.Stco != nil {
				stbl.Stco.ChunkOffset = stbl.Stco.ChunkOffset[:cut(len(stbl.Stco.ChunkOffset))]
			}
		case 4:
			if stbl.Ctts != nil {
				stbl.Ctts.SampleOffset = stbl.Ctts.SampleOffset[:cut(len(stbl.Ctts.SampleOffset))]
			}
		case 5:
			if stbl.Stss != nil {
				stbl.Stss.SampleNumber = stbl.Stss.SampleNumber[:cut(len(stbl.Stss.SampleNumber))]
			}
		case 6:
			if elst != nil {
				elst.Entries = elst.Entries[:cut(len(elst.Entries))]
			}
		}
	case 17: // drop a box
		switch idx % 6 {
		case 0:
			stbl.Stss = nil
		case 1:
			stbl.Ctts = nil
		case 2:
			trak.Edts = nil
		case 3:
			stbl.Stts = nil
		case 4:
			stbl.Stco, stbl.Co64 = nil, &mp4.Co64Box{ChunkOffset: []uint64{uint64(v) << 32}}
		case 5:
			moov.Mvhd = nil
		}
	case 18: // add an entry
		switch idx % 5 {
		case 0:
			if stbl.Stsz != nil {
				stbl.Stsz.SampleSize = append(stbl.Stsz.SampleSize, v)
			}
		case 1:
			if stbl.Stts != nil {
				stbl.Stts.SampleCount = append(stbl.Stts.SampleCount, v)
				stbl.Stts.SampleTimeDelta = append(stbl.Stts.SampleTimeDelta, v>>16)
			}
		case 2:
			if stbl.Stsc != nil {
				stbl.Stsc.Entries = append(stbl.Stsc.Entries, mp4.StscEntry{FirstChunk: v >> 16, SamplesPerChunk: v & 0xFFFF})
			}
		case 3:
			if stbl.Stco != nil {
				stbl.Stco.ChunkOffset = append(stbl.Stco.ChunkOffset, v)
			}
		case 4:
			if stbl.Stss != nil {
				stbl.Stss.SampleNumber = append(stbl.Stss.SampleNumber, v)
			}
		}
	}
}
