package vod

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"time"

	"github.com/Eyevinn/mp4ff/mp4"

	"github.com/rtmphub/rtmphub/flv"
	"github.com/rtmphub/rtmphub/rtmp/amf"
)

// MP4 playback ("mp4:name.mp4", .f4v, .m4v, .m4a, .mov): progressive
// ISO BMFF files with H.264 or HEVC video and AAC audio. The moov box is
// parsed with mp4ff; the sample tables are flattened once per file into
// one list of samples in decoding order (both tracks interleaved by
// time), kept in the Store like an FLV index; players then read each
// sample from the file and send it in its FLV form (AVC and AAC as legacy
// FLV tags, HEVC as Enhanced RTMP). Fragmented files are not played.

// ErrBadMP4 reports an MP4 file that cannot be played.
var ErrBadMP4 = errors.New("unsupported or invalid MP4 file")

// Bounds on what an MP4 file may make the server hold.
const (
	maxMoovSize    = 64 << 20 // bytes of moov decoded in memory
	maxMP4Samples  = 2 << 20  // samples per track (about 11 hours of AAC)
	maxSampleSize  = 16 << 20 // bytes read for one sample
	maxTopBoxes    = 4096     // top-level boxes scanned for moov
	mp4SampleBytes = 24       // memory per sample in the table
)

// mp4Sample is one sample of the flattened table.
type mp4Sample struct {
	offset int64
	size   uint32
	ts     uint32 // decoding time in ms on the file's common timeline
	cts    int32  // composition offset in ms (video)
	video  bool
	key    bool
}

// mp4Table is what a player of an MP4 file needs: the samples, the
// keyframes (indexes into samples), and the FLV headers of each track.
type mp4Table struct {
	samples   []mp4Sample
	keys      []int // sample indexes of video sync samples (or audio, one per second)
	hevc      bool
	videoHead []byte // FLV video tag header for frames, before cts
	size      int64  // the file's size: no sample is read past it
}

// openMP4 opens an MP4 file for playing; its table is built once per file
// version and kept by the Store.
func openMP4(s *Store, real string) (Source, error) {
	f, err := openFile(real)
	if err != nil {
		return nil, err
	}
	info, err := s.infoWith(real, f, buildMP4Info)
	if err != nil {
		f.Close()
		return nil, err
	}
	return &mp4Source{f: f, info: info, tab: info.mp4}, nil
}

// buildMP4Info parses an MP4 file. A panic in the parsing library (a
// hostile file it does not guard against) is an invalid file, not a
// crash of the server.
func buildMP4Info(f *os.File) (info *Info, err error) {
	defer func() {
		if p := recover(); p != nil {
			info, err = nil, fmt.Errorf("%w: parser panic: %v", ErrBadMP4, p)
		}
	}()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	return parseMP4(f, fi.Size())
}

// parseMP4 builds the Info of the MP4 file r of size bytes.
func parseMP4(r io.ReaderAt, size int64) (*Info, error) {
	moov, err := readMoov(r, size)
	if err != nil {
		return nil, err
	}
	return mp4Info(moov, size)
}

// readMoov finds the top-level moov box (before or after mdat) of the
// file r of size bytes and decodes it; a fragmented file is refused.
func readMoov(r io.ReaderAt, size int64) (*mp4.MoovBox, error) {
	var pos int64
	var hdr [16]byte
	for range maxTopBoxes {
		if pos+8 > size {
			break
		}
		if _, err := r.ReadAt(hdr[:8], pos); err != nil {
			return nil, fmt.Errorf("%w: box header at %d: %v", ErrBadMP4, pos, err) //nolint:errorlint // the cause is detail: an io.EOF in it is no clean end
		}
		boxSize := int64(binary.BigEndian.Uint32(hdr[:4]))
		typ := string(hdr[4:8])
		switch boxSize {
		case 0:
			boxSize = size - pos
		case 1:
			if _, err := r.ReadAt(hdr[8:16], pos+8); err != nil {
				return nil, fmt.Errorf("%w: box header at %d: %v", ErrBadMP4, pos, err) //nolint:errorlint // the cause is detail: an io.EOF in it is no clean end
			}
			boxSize = int64(binary.BigEndian.Uint64(hdr[8:16]))
		}
		if boxSize < 8 || boxSize > size-pos {
			return nil, fmt.Errorf("%w: box %q at %d has size %d", ErrBadMP4, typ, pos, boxSize)
		}
		switch typ {
		case "moof":
			return nil, fmt.Errorf("%w: fragmented MP4", ErrBadMP4)
		case "moov":
			if boxSize > maxMoovSize {
				return nil, fmt.Errorf("%w: moov of %d bytes", ErrBadMP4, boxSize)
			}
			raw := make([]byte, boxSize)
			if _, err := r.ReadAt(raw, pos); err != nil {
				return nil, fmt.Errorf("%w: moov: %v", ErrBadMP4, err) //nolint:errorlint // the cause is detail: an io.EOF in it is no clean end
			}
			if err := checkHEVCConfigs(raw); err != nil {
				return nil, err
			}
			b, err := mp4.DecodeBox(uint64(pos), bytes.NewReader(raw))
			if err != nil {
				return nil, fmt.Errorf("%w: moov: %v", ErrBadMP4, err) //nolint:errorlint // the cause is detail: an io.EOF in it is no clean end
			}
			moov, ok := b.(*mp4.MoovBox)
			if !ok {
				return nil, fmt.Errorf("%w: moov", ErrBadMP4)
			}
			if moov.Mvex != nil { // moov comes before the first moof
				return nil, fmt.Errorf("%w: fragmented MP4", ErrBadMP4)
			}
			return moov, nil
		}
		pos += boxSize
	}
	return nil, fmt.Errorf("%w: no moov box", ErrBadMP4)
}

// mp4Track is a track being flattened.
type mp4Track struct {
	video     bool
	timescale uint32
	delta     int64 // ms added to decoding times (edit list)
	samples   []mp4Sample
	lastDur   uint32 // ms
}

// mp4Info builds the table and the player's Info from moov (of a
// file of size bytes): the first H.264/HEVC track and the first AAC track.
func mp4Info(moov *mp4.MoovBox, size int64) (*Info, error) {
	var movieScale uint32 = 1000
	if moov.Mvhd != nil && moov.Mvhd.Timescale > 0 {
		movieScale = moov.Mvhd.Timescale
	}
	info := &Info{mp4: &mp4Table{size: size}}
	meta := amf.ECMAArray{}
	var vt, at *mp4Track
	for _, trak := range moov.Traks {
		if trak == nil || trak.Mdia == nil || trak.Mdia.Mdhd == nil || trak.Mdia.Minf == nil || trak.Mdia.Minf.Stbl == nil || trak.Mdia.Minf.Stbl.Stsd == nil {
			continue
		}
		stbl := trak.Mdia.Minf.Stbl
		stsd := stbl.Stsd
		switch {
		case vt == nil && stsd.AvcX != nil && stsd.AvcX.AvcC != nil:
			var b bytes.Buffer
			if err := stsd.AvcX.AvcC.DecConfRec.Encode(&b); err != nil {
				continue
			}
			info.Seq = append(info.Seq, &flv.Tag{Type: flv.TagVideo, Data: append([]byte{0x17, 0, 0, 0, 0}, b.Bytes()...)})
			info.mp4.videoHead = []byte{0, 1}
			meta = append(meta, amf.Property{Key: "videocodecid", Value: 7.0},
				amf.Property{Key: "width", Value: float64(stsd.AvcX.Width)}, amf.Property{Key: "height", Value: float64(stsd.AvcX.Height)})
		case vt == nil && stsd.HvcX != nil && stsd.HvcX.HvcC != nil:
			var b bytes.Buffer
			if err := stsd.HvcX.HvcC.DecConfRec.Encode(&b); err != nil {
				continue
			}
			info.Seq = append(info.Seq, &flv.Tag{Type: flv.TagVideo, Data: append([]byte{0x90, 'h', 'v', 'c', '1'}, b.Bytes()...)})
			info.mp4.hevc = true
			meta = append(meta, amf.Property{Key: "videocodecid", Value: float64(binary.BigEndian.Uint32([]byte("hvc1")))},
				amf.Property{Key: "width", Value: float64(stsd.HvcX.Width)}, amf.Property{Key: "height", Value: float64(stsd.HvcX.Height)})
		case at == nil && stsd.Mp4a != nil && stsd.Mp4a.Esds != nil && stsd.Mp4a.Esds.DecConfigDescriptor != nil &&
			stsd.Mp4a.Esds.DecConfigDescriptor.DecSpecificInfo != nil:
			asc := stsd.Mp4a.Esds.DecConfigDescriptor.DecSpecificInfo.DecConfig
			info.Seq = append(info.Seq, &flv.Tag{Type: flv.TagAudio, Data: append([]byte{0xaf, 0}, asc...)})
			meta = append(meta, amf.Property{Key: "audiocodecid", Value: 10.0},
				amf.Property{Key: "audiosamplerate", Value: float64(stsd.Mp4a.SampleRate)},
				amf.Property{Key: "audiochannels", Value: float64(stsd.Mp4a.ChannelCount)})
		default:
			continue
		}
		video := stsd.AvcX != nil || stsd.HvcX != nil
		t, err := flattenTrack(trak, stbl, video, movieScale, size)
		if err != nil {
			return nil, err
		}
		if video {
			vt = t
		} else {
			at = t
		}
	}
	if vt == nil && at == nil {
		return nil, fmt.Errorf("%w: no H.264, HEVC or AAC track", ErrBadMP4)
	}
	// One timeline: shift both tracks so that the earliest starts at 0.
	var tracks []*mp4Track
	shift := int64(0)
	for _, t := range []*mp4Track{vt, at} {
		if t != nil {
			tracks = append(tracks, t)
			shift = max(shift, -t.delta)
		}
	}
	var end int64
	for _, t := range tracks {
		for i := range t.samples {
			ts := int64(t.samples[i].ts) + t.delta + shift
			if ts < 0 || ts > math.MaxUint32 {
				return nil, fmt.Errorf("%w: timestamp out of range", ErrBadMP4)
			}
			t.samples[i].ts = uint32(ts)
		}
		if n := len(t.samples); n > 0 {
			end = max(end, int64(t.samples[n-1].ts)+int64(t.lastDur))
		}
	}
	tab := info.mp4
	tab.samples = mergeSamples(vt, at)
	for i, s := range tab.samples {
		if s.video && s.key {
			tab.keys = append(tab.keys, i)
		}
	}
	if vt == nil {
		next := int64(0)
		for i, s := range tab.samples {
			if int64(s.ts) >= next {
				tab.keys = append(tab.keys, i)
				next = (int64(s.ts)/1000 + 1) * 1000
			}
		}
	}
	info.Duration = time.Duration(end) * time.Millisecond
	meta = append(meta, amf.Property{Key: "duration", Value: info.Duration.Seconds()})
	if vt != nil && end > 0 && len(vt.samples) > 1 {
		meta = append(meta, amf.Property{Key: "framerate", Value: math.Round(float64(len(vt.samples))*1e5/float64(end)) / 100})
	}
	b, err := amf.Marshal0("onMetaData", meta)
	if err == nil {
		info.Meta = b
	}
	info.cost = int64(len(tab.samples))*mp4SampleBytes + int64(len(tab.keys))*8
	return info, nil
}

// flattenTrack lists a track's samples from its sample tables (stts,
// ctts, stsc, stsz, stco/co64, stss), checking every table against the
// others and the sample count against the size of the file.
func flattenTrack(trak *mp4.TrakBox, stbl *mp4.StblBox, video bool, movieScale uint32, fileSize int64) (*mp4Track, error) {
	scale := trak.Mdia.Mdhd.Timescale
	if scale == 0 || stbl.Stts == nil || stbl.Stsz == nil || stbl.Stsc == nil || (stbl.Stco == nil && stbl.Co64 == nil) {
		return nil, fmt.Errorf("%w: incomplete sample tables", ErrBadMP4)
	}
	n := int(stbl.Stsz.SampleNumber)
	if stbl.Stsz.SampleUniformSize == 0 && len(stbl.Stsz.SampleSize) != n {
		return nil, fmt.Errorf("%w: stsz", ErrBadMP4)
	}
	if n > maxMP4Samples {
		return nil, fmt.Errorf("%w: %d samples", ErrBadMP4, n)
	}
	// A uniform sample size lists no sizes: n is then only a claim, held
	// to what the file can contain before a table of n samples is made.
	if u := int64(stbl.Stsz.SampleUniformSize); u > 0 && int64(n) > fileSize/u {
		return nil, fmt.Errorf("%w: %d samples of %d bytes in a file of %d", ErrBadMP4, n, u, fileSize)
	}
	t := &mp4Track{video: video, timescale: scale, samples: make([]mp4Sample, n)}
	ms := func(v int64) int64 { return int64(math.Round(float64(v) * 1000 / float64(scale))) }

	// Edit list: an empty edit delays the track, media_time skips into it.
	if trak.Edts != nil && len(trak.Edts.Elst) > 0 && trak.Edts.Elst[0] != nil {
		for _, e := range trak.Edts.Elst[0].Entries {
			if e.MediaTime < 0 {
				t.delta += int64(math.Round(float64(e.SegmentDuration) * 1000 / float64(movieScale)))
				continue
			}
			t.delta -= ms(e.MediaTime)
			break
		}
	}

	// Decoding times.
	var dts int64
	i := 0
	for e := range stbl.Stts.SampleCount {
		if e >= len(stbl.Stts.SampleTimeDelta) {
			break
		}
		d := int64(stbl.Stts.SampleTimeDelta[e])
		for range stbl.Stts.SampleCount[e] {
			if i >= n {
				break
			}
			v := ms(dts)
			if v > math.MaxUint32 {
				return nil, fmt.Errorf("%w: timestamps", ErrBadMP4)
			}
			t.samples[i].ts = uint32(v)
			dts += d
			i++
		}
		t.lastDur = uint32(min(ms(d), math.MaxUint32))
	}
	if i != n {
		return nil, fmt.Errorf("%w: stts lists %d of %d samples", ErrBadMP4, i, n)
	}
	// Composition offsets (EndSampleNr[0] is 0; entry k covers samples
	// up to EndSampleNr[k] with SampleOffset[k-1]).
	if c := stbl.Ctts; c != nil && len(c.EndSampleNr) > 1 && len(c.SampleOffset) >= len(c.EndSampleNr)-1 {
		k := 1
		for s := range n {
			for k < len(c.EndSampleNr) && uint32(s+1) > c.EndSampleNr[k] {
				k++
			}
			if k >= len(c.EndSampleNr) {
				break
			}
			off := ms(int64(c.SampleOffset[k-1]))
			t.samples[s].cts = int32(max(min(off, 1<<23-1), -(1 << 23)))
		}
	}
	// Sizes and sync samples.
	sync := stbl.Stss
	k := 0
	for s := range n {
		size := stbl.Stsz.SampleUniformSize
		if size == 0 {
			size = stbl.Stsz.SampleSize[s]
		}
		t.samples[s].size = size
		t.samples[s].video = video
		switch {
		case !video || sync == nil:
			t.samples[s].key = true
		default:
			for k < len(sync.SampleNumber) && sync.SampleNumber[k] < uint32(s+1) {
				k++
			}
			t.samples[s].key = k < len(sync.SampleNumber) && sync.SampleNumber[k] == uint32(s+1)
		}
	}
	// Offsets: chunks of samples per stsc.
	var offsets func(int) (int64, bool)
	nChunks := 0
	if stbl.Co64 != nil {
		nChunks = len(stbl.Co64.ChunkOffset)
		offsets = func(c int) (int64, bool) {
			v := stbl.Co64.ChunkOffset[c]
			return int64(v), v < math.MaxInt64/2
		}
	} else {
		nChunks = len(stbl.Stco.ChunkOffset)
		offsets = func(c int) (int64, bool) { return int64(stbl.Stco.ChunkOffset[c]), true }
	}
	entries := stbl.Stsc.Entries
	s := 0
	for e := range entries {
		first := int(entries[e].FirstChunk) - 1
		last := nChunks
		if e+1 < len(entries) {
			last = int(entries[e+1].FirstChunk) - 1
		}
		if first < 0 || last > nChunks || first > last {
			return nil, fmt.Errorf("%w: stsc", ErrBadMP4)
		}
		for c := first; c < last && s < n; c++ {
			off, ok := offsets(c)
			if !ok {
				return nil, fmt.Errorf("%w: chunk offset", ErrBadMP4)
			}
			for range entries[e].SamplesPerChunk {
				if s >= n {
					break
				}
				t.samples[s].offset = off
				off += int64(t.samples[s].size)
				s++
			}
		}
	}
	if s != n {
		return nil, fmt.Errorf("%w: chunks hold %d of %d samples", ErrBadMP4, s, n)
	}
	return t, nil
}

// mergeSamples interleaves the tracks by decoding time, video first at
// equal times.
func mergeSamples(vt, at *mp4Track) []mp4Sample {
	var v, a []mp4Sample
	if vt != nil {
		v = vt.samples
	}
	if at != nil {
		a = at.samples
	}
	out := make([]mp4Sample, 0, len(v)+len(a))
	for len(v) > 0 || len(a) > 0 {
		if len(a) == 0 || len(v) > 0 && v[0].ts <= a[0].ts {
			out = append(out, v[0])
			v = v[1:]
		} else {
			out = append(out, a[0])
			a = a[1:]
		}
	}
	return out
}

// mp4Source reads samples of an MP4 file as FLV tags.
type mp4Source struct {
	f interface {
		io.ReaderAt
		io.Closer
	}
	info *Info
	tab  *mp4Table
	pos  int // next sample
}

func (s *mp4Source) Info() *Info { return s.info }

func (s *mp4Source) SeekKeyframe(ms int64) (int64, bool, error) {
	keys := s.tab.keys
	i := sort.Search(len(keys), func(i int) bool { return int64(s.tab.samples[keys[i]].ts) > ms })
	if ms <= 0 || i == 0 {
		s.pos = 0
		return 0, true, nil // the sequence headers are not in the samples
	}
	s.pos = keys[i-1]
	return int64(s.tab.samples[s.pos].ts), true, nil
}

func (s *mp4Source) Next() (*flv.Tag, error) {
	if s.pos >= len(s.tab.samples) {
		return nil, io.EOF
	}
	smp := s.tab.samples[s.pos]
	if smp.size > maxSampleSize {
		return nil, fmt.Errorf("%w: sample of %d bytes", ErrBadMP4, smp.size)
	}
	if smp.offset+int64(smp.size) > s.tab.size {
		return nil, io.ErrUnexpectedEOF // the file ends inside the sample: nothing to allocate for
	}
	var head []byte
	switch {
	case smp.video && s.tab.hevc:
		ft := byte(0x20)
		if smp.key {
			ft = 0x10
		}
		head = []byte{0x80 | ft | 1, 'h', 'v', 'c', '1', byte(smp.cts >> 16), byte(smp.cts >> 8), byte(smp.cts)}
	case smp.video:
		ft := byte(0x27)
		if smp.key {
			ft = 0x17
		}
		head = []byte{ft, 1, byte(smp.cts >> 16), byte(smp.cts >> 8), byte(smp.cts)}
	default:
		head = []byte{0xaf, 1}
	}
	data := make([]byte, len(head)+int(smp.size))
	copy(data, head)
	if _, err := s.f.ReadAt(data[len(head):], smp.offset); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, io.ErrUnexpectedEOF
		}
		return nil, err
	}
	s.pos++
	typ := flv.TagAudio
	if smp.video {
		typ = flv.TagVideo
	}
	return &flv.Tag{Type: typ, Timestamp: smp.ts, Data: data}, nil
}

func (s *mp4Source) Close() { s.f.Close() }
