package flv

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"time"

	"github.com/rtmphub/rtmphub/rtmp/message"
)

// Keyframe is an entry of a keyframes index: a point where playback can
// start.
type Keyframe struct {
	Time float64 // seconds
	Pos  int64   // file position of the tag header
}

// AudioIndexInterval is the spacing of the entries of the index of a file
// without video keyframes (audio only): the first audio tag at or after
// each multiple of it.
const AudioIndexInterval = time.Second

// Index lists the keyframes of a file, in file order with times that never
// decrease, for seeking.
type Index struct {
	Keyframes []Keyframe
	// Duration is the end of the media: per audio and video stream, its
	// largest timestamp plus its smallest interval between timestamps
	// (the length of its last frame, or less), whichever stream ends
	// later. An index from the metadata takes the metadata's duration
	// unless that ends before the last tag.
	Duration time.Duration
	// Start is the position of the first tag, where playback from the
	// beginning starts (metadata and sequence headers included).
	Start int64
	// Size is the file size the index was made for. A cached index is
	// stale when the file's size (or modification time, which the caller
	// keeps) differs.
	Size int64
}

// maxVerify bounds how many entries of a metadata index BuildIndex
// checks against the file; larger indexes are checked at evenly spaced
// entries.
const maxVerify = 1024

// BuildIndex returns the keyframe index of the FLV file r. It moves r's
// offset.
//
// The onMetaData keyframes index is used when it is sane: the metadata's
// filesize (when present) is the file's size, the file ends with a
// complete tag, positions strictly increase and times never decrease, and
// every entry (up to 1024 evenly spaced ones in a larger index) is the
// header of a complete video keyframe tag whose timestamp is the entry's
// time to the millisecond. Otherwise the file is scanned once, reading tag
// headers and the first bytes of audio and video data, seeking over the
// rest. Video keyframes are those message.ParseVideo reports as keyframes
// that are not sequence headers, ends of sequence, or command or metadata
// frames, in the legacy and Enhanced RTMP layouts alike; a keyframe with a
// timestamp below the previous one is left out. A file without any gets
// an audio index (see AudioIndexInterval).
//
// A file cut short (a recording that was killed) is indexed up to its last
// complete tag, without error. A corrupt tag stops the scan with an error
// wrapping ErrCorrupt, and the index of the tags before it.
func BuildIndex(r io.ReadSeeker) (*Index, error) {
	fr, err := newReader(r, scanBufferSize)
	if err != nil {
		return nil, err
	}
	if m, err := fr.metadata(); err == nil && m.Keyframes != nil {
		if idx, ok := fr.metadataIndex(m); ok {
			return idx, nil
		}
	}
	s := fr.scan()
	return s.index(fr), s.err
}

// Lookup returns the last keyframe at or before t, or, when t is before
// the first keyframe, the start of the file at time 0.
func (x *Index) Lookup(t time.Duration) Keyframe {
	kfs := x.Keyframes
	i := sort.Search(len(kfs), func(i int) bool { return seconds(kfs[i].Time) > t })
	if i == 0 {
		return Keyframe{Pos: x.Start}
	}
	return kfs[i-1]
}

// seconds converts seconds to a Duration, rounding to the nanosecond so
// that times from milliseconds compare exactly.
func seconds(s float64) time.Duration {
	return time.Duration(math.Round(s * 1e9))
}

// metadataIndex checks m's keyframes against the file (see BuildIndex)
// and returns the index they make.
func (r *Reader) metadataIndex(m *Metadata) (*Index, bool) {
	if err := r.refreshSize(); err != nil {
		return nil, false
	}
	if m.FileSize != 0 && m.FileSize != float64(r.size) {
		return nil, false
	}
	last, ok := r.lastTimestamp()
	if !ok {
		return nil, false
	}
	kfs := m.Keyframes
	minPos := m.Offset + TagHeaderSize + int64(m.Size) + PrevSizeSize
	for i, k := range kfs {
		if k.Pos < minPos || k.Pos+TagHeaderSize+PrevSizeSize > r.size || k.Time < 0 || k.Time > math.MaxUint32/1000.0 {
			return nil, false
		}
		if i > 0 && (k.Pos <= kfs[i-1].Pos || k.Time < kfs[i-1].Time) {
			return nil, false
		}
	}
	n := len(kfs)
	verify := min(n, maxVerify)
	for i := range verify {
		j := i
		if n > maxVerify {
			j = int(math.Round(float64(i) * float64(n-1) / float64(maxVerify-1)))
		}
		if !r.isKeyframeAt(kfs[j]) {
			return nil, false
		}
	}
	d := time.Duration(last) * time.Millisecond
	if m.Duration*1000 > float64(last) && m.Duration < math.MaxUint32/1000.0 {
		d = seconds(m.Duration)
	}
	return &Index{Keyframes: kfs, Duration: d, Start: r.first, Size: r.size}, true
}

// isKeyframeAt reports whether a complete video keyframe tag with k's
// time (to the millisecond) starts at k.Pos.
func (r *Reader) isKeyframeAt(k Keyframe) bool {
	if err := r.SeekTag(k.Pos); err != nil {
		return false
	}
	h, err := r.header()
	if err != nil || h.typ != TagVideo {
		return false
	}
	if d := float64(h.ts) - k.Time*1000; d > 1 || d < -1 {
		return false
	}
	p, v, ok := r.peekVideo(int(h.size))
	ok = seekPoint(p, v, ok)
	r.synced = false
	if !ok {
		return false
	}
	// The tag must be whole: its PreviousTagSize follows its data and
	// matches (a header alone let a forged index point playback at a tag
	// that Next then refuses as corrupt).
	var t [PrevSizeSize]byte
	if _, err := r.rs.Seek(k.Pos+TagHeaderSize+int64(h.size), io.SeekStart); err != nil {
		return false
	}
	if _, err := io.ReadFull(r.rs, t[:]); err != nil {
		return false
	}
	return binary.BigEndian.Uint32(t[:]) == TagHeaderSize+h.size
}

// lastTimestamp reads the timestamp of the last tag, found through the
// PreviousTagSize that ends the file. It fails unless that tag is complete
// and its header valid.
func (r *Reader) lastTimestamp() (uint32, bool) {
	if r.size < r.first+TagHeaderSize+PrevSizeSize {
		return 0, false
	}
	var p [PrevSizeSize]byte
	if _, err := r.rs.Seek(r.size-PrevSizeSize, io.SeekStart); err != nil {
		return 0, false
	}
	r.synced = false
	if _, err := io.ReadFull(r.rs, p[:]); err != nil {
		return 0, false
	}
	n := int64(binary.BigEndian.Uint32(p[:]))
	pos := r.size - PrevSizeSize - n
	if n < TagHeaderSize || pos < r.first {
		return 0, false
	}
	if err := r.SeekTag(pos); err != nil {
		return 0, false
	}
	h, err := r.header()
	r.synced = false
	if err != nil || int64(h.size)+TagHeaderSize != n {
		return 0, false
	}
	return h.ts, true
}

// peekSize is how much of an audio or video payload a scan classifies: the
// legacy and Enhanced RTMP headers fit in it unless ModEx data is larger,
// in which case the frame type decides.
const peekSize = 64

// peekVideo peeks at the start of the video payload of size n at the
// reader's position and classifies it (message.ParseVideo): peekSize
// bytes, or for a frame without a valid frame type
// (message.VideoInfo.NoFrameType) that these do not show to be a
// keyframe, as much as the buffer holds (4 KiB when scanning), as such a
// keyframe is told from the codec's data, where parameter sets and SEI
// (x265 writes 2 KB of it) come before the picture.
func (r *Reader) peekVideo(n int) ([]byte, message.VideoInfo, bool) {
	p, _ := r.br.Peek(min(n, peekSize))
	v, ok := message.ParseVideo(p)
	if n > len(p) && len(p) == peekSize && v.NoFrameType && !v.Keyframe {
		p, _ = r.br.Peek(min(n, r.br.Size()))
		v, ok = message.ParseVideo(p)
	}
	return p, v, ok
}

// streamEnd follows the timestamps of one stream (audio or video) to find
// where it ends: its largest timestamp plus the smallest interval between
// increasing timestamps (the length of a frame, or less).
type streamEnd struct {
	seen   bool
	last   uint32 // timestamp of the last tag
	max    uint32
	minGap uint32
}

func (s *streamEnd) add(ts uint32) {
	if s.seen && ts > s.last {
		if g := ts - s.last; s.minGap == 0 || g < s.minGap {
			s.minGap = g
		}
	}
	s.seen, s.last = true, ts
	s.max = max(s.max, ts)
}

// end returns the end of the stream in milliseconds, 0 for none.
func (s *streamEnd) end() uint32 {
	return uint32(min(uint64(s.max)+uint64(s.minGap), math.MaxUint32))
}

// scanResult is what a scan of the whole file finds.
type scanResult struct {
	video, audio []Keyframe
	vEnd, aEnd   streamEnd
	// frames follows the timestamps of video frames only (not sequence
	// headers and the like): their interval is the frame rate's.
	frames streamEnd
	// presented is the largest presentation time of a video frame with
	// a positive composition time (timestamp plus composition time), 0
	// for none.
	presented uint32
	last      uint32 // largest timestamp of any tag
	end       int64  // position after the last complete tag
	truncated bool   // the file ends inside a tag
	err       error  // a corrupt tag, or a read error
}

// endTime is the largest stream end, in milliseconds.
func (s *scanResult) endTime() uint32 { return max(s.vEnd.end(), s.aEnd.end()) }

// appendBase is where media appended to the file starts: endTime, or
// when a video frame is presented later than the video's last timestamp
// (B-frames: a composition time), one frame after the last presentation,
// so that appended frames are neither decoded nor presented before the
// file's last ones. With video it is then rounded up to the video's frame
// grid (a whole number of frame intervals after its last timestamp): when
// audio ends later than video (a kill cut the video first), an appended
// part shifted off the grid made ffmpeg guess a frame rate of 24.8 rather
// than 25 and warn of "non monotonically increasing dts" when decoding (17
// of 68 joins of a recording without B-frames).
func (s *scanResult) appendBase() uint32 {
	end := uint64(s.endTime())
	v := &s.frames
	if !v.seen || v.minGap == 0 {
		return uint32(end)
	}
	if s.presented > 0 {
		end = max(end, uint64(s.presented)+uint64(v.minGap))
	}
	if end > uint64(v.max) {
		if r := (end - uint64(v.max)) % uint64(v.minGap); r != 0 {
			end += uint64(v.minGap) - r
		}
	}
	return uint32(min(end, math.MaxUint32))
}

func (s *scanResult) index(r *Reader) *Index {
	kfs := s.video
	if len(kfs) == 0 {
		kfs = s.audio
	}
	return &Index{
		Keyframes: kfs,
		Duration:  time.Duration(s.endTime()) * time.Millisecond,
		Start:     r.first,
		Size:      r.size,
	}
}

// scan reads every tag header from the first tag on.
func (r *Reader) scan() *scanResult {
	s := &scanResult{end: r.first}
	if err := r.SeekTag(r.first); err != nil {
		s.err = err
		return s
	}
	var nextAudio time.Duration
	for {
		h, err := r.header()
		if err != nil {
			switch {
			case errors.Is(err, io.EOF):
			case errors.Is(err, io.ErrUnexpectedEOF):
				s.truncated = true
			default:
				s.err = err
			}
			return s
		}
		n := int(h.size)
		var p []byte
		var v message.VideoInfo
		var vok bool
		switch h.typ {
		case TagAudio:
			p, _ = r.br.Peek(min(n, peekSize))
		case TagVideo:
			p, v, vok = r.peekVideo(n)
		}
		kf := Keyframe{Time: float64(h.ts) / 1000, Pos: r.pos}
		var key, audio bool
		var pts uint32
		var frame bool
		switch h.typ {
		case TagVideo:
			key = seekPoint(p, v, vok) && (len(s.video) == 0 || kf.Time >= s.video[len(s.video)-1].Time)
			frame = vok && !v.SequenceHeader && !v.SequenceEnd && !v.Command && !v.Metadata
			if v.CompositionTime > 0 {
				pts = uint32(min(uint64(h.ts)+uint64(v.CompositionTime), math.MaxUint32))
			}
		case TagAudio:
			a, ok := message.ParseAudio(p)
			audio = ok && !a.SequenceHeader && !a.SequenceEnd && !a.MultichannelConfig &&
				time.Duration(h.ts)*time.Millisecond >= nextAudio
		}
		if err := r.skipData(n); err != nil {
			s.err = err
			return s
		}
		if err := r.trailer(h); err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) {
				s.truncated = true
			} else {
				s.err = err
			}
			return s
		}
		switch h.typ {
		case TagVideo:
			s.vEnd.add(h.ts)
			if frame {
				s.frames.add(h.ts)
			}
			s.presented = max(s.presented, pts)
			if key {
				s.video = append(s.video, kf)
			}
		case TagAudio:
			s.aEnd.add(h.ts)
			if audio {
				s.audio = append(s.audio, kf)
				nextAudio = (time.Duration(h.ts) * time.Millisecond).Truncate(AudioIndexInterval) + AudioIndexInterval
			}
		}
		s.last = max(s.last, h.ts)
		r.pos += int64(TagHeaderSize + n + PrevSizeSize)
		s.end = r.pos
	}
}

// Binary form of an Index (MarshalBinary): magic, version, Start, Size,
// Duration in nanoseconds, count, then per keyframe the float64 bits of
// Time and Pos, all big-endian.
const (
	indexMagic   = "FLVX"
	indexVersion = 1
	indexHead    = 4 + 1 + 8 + 8 + 8 + 4
)

// MarshalBinary encodes the index for a cache file.
func (x *Index) MarshalBinary() ([]byte, error) {
	b := make([]byte, 0, indexHead+16*len(x.Keyframes))
	b = append(b, indexMagic...)
	b = append(b, indexVersion)
	b = binary.BigEndian.AppendUint64(b, uint64(x.Start))
	b = binary.BigEndian.AppendUint64(b, uint64(x.Size))
	b = binary.BigEndian.AppendUint64(b, uint64(x.Duration))
	b = binary.BigEndian.AppendUint32(b, uint32(len(x.Keyframes)))
	for _, k := range x.Keyframes {
		b = binary.BigEndian.AppendUint64(b, math.Float64bits(k.Time))
		b = binary.BigEndian.AppendUint64(b, uint64(k.Pos))
	}
	return b, nil
}

// UnmarshalBinary decodes what MarshalBinary encoded.
func (x *Index) UnmarshalBinary(b []byte) error {
	if len(b) < indexHead || string(b[:4]) != indexMagic || b[4] != indexVersion {
		return errors.New("flv: not an index of this version")
	}
	n := binary.BigEndian.Uint32(b[29:])
	if uint64(len(b)-indexHead) != 16*uint64(n) {
		return fmt.Errorf("flv: index of %d keyframes in %d bytes", n, len(b))
	}
	x.Start = int64(binary.BigEndian.Uint64(b[5:]))
	x.Size = int64(binary.BigEndian.Uint64(b[13:]))
	x.Duration = time.Duration(binary.BigEndian.Uint64(b[21:]))
	x.Keyframes = nil
	if n > 0 {
		x.Keyframes = make([]Keyframe, n)
	}
	p := b[indexHead:]
	for i := range x.Keyframes {
		x.Keyframes[i] = Keyframe{
			Time: math.Float64frombits(binary.BigEndian.Uint64(p)),
			Pos:  int64(binary.BigEndian.Uint64(p[8:])),
		}
		p = p[16:]
	}
	return nil
}
