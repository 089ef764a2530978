package flv

import (
	"errors"
	"fmt"
	"io"
	"math"
	"os"

	"github.com/rtmphub/rtmphub/rtmp/amf"
	"github.com/rtmphub/rtmphub/rtmp/message"
)

// DefaultIndexCapacity is the number of keyframes the onMetaData tag of a
// file made by Create has room for: at one keyframe every two seconds,
// about two hours and a quarter. A recording with more keyframes gets an
// evenly subsampled index (see Writer.Close).
const DefaultIndexCapacity = 4096

// keyframeCost is what one keyframe adds to the onMetaData tag: a number
// in times and one in filepositions.
const keyframeCost = 2 * 9

// Writer records tags to an FLV file.
//
// Every tag and its PreviousTagSize go to the file in one write at the
// position after the last complete tag, so a process killed at any moment
// leaves a file whose complete tags all play; the onMetaData tag at the
// start has a fixed size and is only rewritten in place. A failed write
// (disk full) is cut off again, so that a later write or Close continues
// from the last complete tag.
//
// Writes go to the operating system without buffering and without
// fsync, which Close and Sync do: a killed process loses nothing, a power
// failure what was not synced.
//
// A Writer is not safe for concurrent use.
type Writer struct {
	f     *os.File
	buf   []byte
	pos   int64  // end of the last complete tag: where the next one goes
	base  uint32 // added to WriteTag's timestamps (Append)
	last  uint32 // largest timestamp in the file
	dirty bool   // a failed write may have left bytes after pos

	vEnd, aEnd streamEnd
	keyframes  []Keyframe

	// The onMetaData tag rewritten on Close; metaOff 0 when there is
	// none that can be rewritten.
	metaOff  int64
	metaSize int
	props    []amf.Property // caller's properties, without ours
	object   bool           // write an Object rather than an ECMAArray

	closed bool
}

// Properties the Writer owns: taken out of the caller's metadata and
// written from what it recorded.
var ownedKeys = []string{keyDuration, keyFileSize, keyLastTS, keyLastKeyTS, keyLastKeyPos, keyKeyframes, keyPadding}

// Create creates (or truncates) the file at path and writes the file
// header and a placeholder onMetaData tag: meta's properties (except
// duration, filesize, lasttimestamp, lastkeyframetimestamp,
// lastkeyframelocation and keyframes, which are the Writer's) and padding
// that reserves room for the Writer's properties and an index of
// DefaultIndexCapacity keyframes, which Close fills in. Until then the
// file has no duration in its metadata, so that a player (ffmpeg) finds it
// from the file itself, even after a kill.
func Create(path string, hasAudio, hasVideo bool, meta amf.ECMAArray) (*Writer, error) {
	return create(path, hasAudio, hasVideo, meta, DefaultIndexCapacity)
}

func create(path string, hasAudio, hasVideo bool, meta amf.ECMAArray, capacity int) (*Writer, error) {
	w := &Writer{props: ownProps(meta)}
	base, err := w.metadata(metaState{final: true}, nil, 0)
	if err != nil {
		return nil, fmt.Errorf("flv: onMetaData: %w", err)
	}
	w.metaSize = len(base) + capacity*keyframeCost + padOverhead
	if w.metaSize > MaxDataSize {
		return nil, fmt.Errorf("flv: onMetaData of %d bytes is too large", w.metaSize)
	}
	w.metaOff = HeaderSize + PrevSizeSize
	body, err := w.fit(metaState{}, nil)
	if err != nil {
		return nil, fmt.Errorf("flv: onMetaData: %w", err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, fmt.Errorf("flv: %w", err)
	}
	w.f = f
	b := AppendHeader(nil, Header{Version: 1, HasAudio: hasAudio, HasVideo: hasVideo})
	b, _ = AppendTag(b, &Tag{Type: TagScript, Data: body})
	if _, err := f.WriteAt(b, 0); err != nil {
		f.Close()
		return nil, fmt.Errorf("flv: %w", err)
	}
	w.pos = int64(len(b))
	return w, nil
}

// Append opens the FLV file at path to record more tags at its end. It
// scans the file (see BuildIndex): a tag cut short at the end (a recording
// that was killed) is removed; a corrupt tag is an error and the file is
// left as it is. Timestamps given to WriteTag then count from Base, where
// the file's media ended, so that they continue the file's: after the
// last decode timestamp and after the last presentation time of every
// stream, one frame on (see Base).
//
// The file's onMetaData tag (the first one, before any audio or video) is
// rewritten to the placeholder state of Create at once, so that a file
// whose Append was killed does not claim an old duration or an index that
// misses the end, and again on Close, when the new properties fit in its
// size. A file written by Create always has room; another writer's
// metadata that has too little is left as it is.
func Append(path string) (*Writer, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("flv: %w", err)
	}
	w, err := appendTo(f)
	if err != nil {
		f.Close()
		return nil, err
	}
	return w, nil
}

func appendTo(f *os.File) (*Writer, error) {
	r, err := newReader(f, scanBufferSize)
	if err != nil {
		return nil, err
	}
	w := &Writer{f: f}
	m, err := r.metadata()
	switch {
	case err == nil:
		switch x := m.Raw.(type) {
		case amf.ECMAArray:
			w.props = ownProps(x)
		case amf.Object:
			w.props, w.object = ownProps(amf.ECMAArray(x)), true
		}
		w.metaOff, w.metaSize = m.Offset, int(m.Size)
	case errors.Is(err, ErrNoMetadata):
	case errors.Is(err, ErrCorrupt), errors.Is(err, ErrTagTooLarge):
		// A corrupt onMetaData tag: left alone, and the scan decides.
	default:
		return nil, err
	}
	s := r.scan()
	if s.err != nil {
		return nil, s.err
	}
	w.pos = s.end
	if s.truncated {
		if err := f.Truncate(s.end); err != nil {
			return nil, fmt.Errorf("flv: cutting off the incomplete last tag: %w", err)
		}
	}
	w.keyframes = s.video
	w.vEnd, w.aEnd = s.vEnd, s.aEnd
	w.last = s.last
	w.base = s.appendBase()
	if w.metaOff != 0 {
		if _, err := w.fit(metaState{final: true}, nil); err != nil {
			w.metaOff = 0 // another writer's metadata, too small
		}
	}
	if w.metaOff != 0 {
		body, err := w.fit(metaState{}, nil)
		if err != nil {
			return nil, fmt.Errorf("flv: onMetaData: %w", err)
		}
		if _, err := f.WriteAt(body, w.metaOff+TagHeaderSize); err != nil {
			return nil, fmt.Errorf("flv: %w", err)
		}
	}
	if err := f.Sync(); err != nil {
		return nil, fmt.Errorf("flv: %w", err)
	}
	return w, nil
}

// Base returns what WriteTag adds to timestamps: 0 for Create, the end of
// the file's media for Append: per stream, its last timestamp plus its
// smallest interval between timestamps (as Index.Duration), and for AVC
// and HEVC with composition times (B-frames), the last presentation time
// (timestamp plus composition time, legacy or Enhanced RTMP) plus the
// video's frame interval, whichever is latest, rounded up to the video's
// frame grid. A stream starting again at 0 then continues with increasing
// decode times and presents its first frame after the file's last: one
// frame later, plus that frame's own composition time (as ffmpeg's concat
// demuxer joins files, at the presentation end). Continuing from the last
// decode time instead presented an appended keyframe among the file's last
// frames whenever a kill cut the file after a P-frame (32 of 50 cuts of a
// stream with two B-frames), and ffmpeg warned of "non monotonically
// increasing dts" decoding 8 of 68 such joins of an x264 recording.
func (w *Writer) Base() uint32 { return w.base }

// LastTimestamp returns the largest timestamp in the file, in
// milliseconds: after Append, where the file ended.
func (w *Writer) LastTimestamp() uint32 { return w.last }

// Size returns the size of the file: the end of the last complete tag.
func (w *Writer) Size() int64 { return w.pos }

// WriteTag appends a tag of type typ (TagAudio, TagVideo or TagScript) with
// timestamp Base()+ts and data, which it does not keep. Enhanced RTMP
// payloads are data like any other; video keyframes (as BuildIndex
// classifies them) go into the index.
func (w *Writer) WriteTag(typ message.Type, ts uint32, data []byte) error {
	if w.closed {
		return fmt.Errorf("flv: write: %w", os.ErrClosed)
	}
	if typ != TagAudio && typ != TagVideo && typ != TagScript {
		return fmt.Errorf("flv: tag type %v cannot be written", typ)
	}
	if len(data) > MaxDataSize {
		return fmt.Errorf("flv: tag data of %d bytes, at most %d fit", len(data), MaxDataSize)
	}
	if w.dirty && w.f.Truncate(w.pos) == nil {
		w.dirty = false
	}
	ts += w.base
	b := appendTagHeader(w.buf[:0], typ, len(data), ts, 0)
	b = append(b, data...)
	b = append(b, 0, 0, 0, 0)
	n := TagHeaderSize + len(data)
	b[len(b)-4], b[len(b)-3], b[len(b)-2], b[len(b)-1] = byte(n>>24), byte(n>>16), byte(n>>8), byte(n)
	w.buf = b
	if _, err := w.f.WriteAt(b, w.pos); err != nil {
		// Cut off what part of the tag made it, so that the file ends
		// with a complete tag; if that fails too, Close tries again.
		w.dirty = w.f.Truncate(w.pos) != nil
		return fmt.Errorf("flv: %w", err)
	}
	switch typ {
	case TagVideo:
		w.vEnd.add(ts)
		t := float64(ts) / 1000
		if isSeekPoint(data) && (len(w.keyframes) == 0 || t >= w.keyframes[len(w.keyframes)-1].Time) {
			w.keyframes = append(w.keyframes, Keyframe{Time: t, Pos: w.pos})
		}
	case TagAudio:
		w.aEnd.add(ts)
	}
	w.last = max(w.last, ts)
	w.pos += int64(len(b))
	if cap(w.buf) > 1<<20 {
		w.buf = nil // do not hold on to one huge tag's buffer
	}
	return nil
}

// Sync commits the file to stable storage.
func (w *Writer) Sync() error {
	if w.closed {
		return fmt.Errorf("flv: sync: %w", os.ErrClosed)
	}
	if err := w.f.Sync(); err != nil {
		return fmt.Errorf("flv: %w", err)
	}
	return nil
}

// Close finishes the file: it syncs the tags, rewrites the onMetaData tag
// in place with duration (the end of the media, as Index.Duration),
// filesize, lasttimestamp, lastkeyframetimestamp, lastkeyframelocation and
// the keyframes index, syncs again and closes the file. When the keyframes
// do not all fit, the index keeps as many as fit: the first, the last and
// evenly spaced ones between (BuildIndex then lands seeks on an earlier
// keyframe than a scan would). Calling Close again does nothing.
func (w *Writer) Close() error {
	if w.closed {
		return nil
	}
	w.closed = true
	var errs []error
	if w.dirty {
		if err := w.f.Truncate(w.pos); err != nil {
			errs = append(errs, err)
		}
	}
	// The tags first: the metadata must never describe tags that a crash
	// could still lose.
	if err := w.f.Sync(); err != nil {
		errs = append(errs, err)
	}
	if w.metaOff != 0 && len(errs) == 0 {
		st := metaState{
			final:    true,
			duration: float64(max(w.vEnd.end(), w.aEnd.end())) / 1000,
			fileSize: w.pos,
			lastTS:   float64(w.last) / 1000,
		}
		if n := len(w.keyframes); n > 0 {
			st.lastKeyTS, st.lastKeyPos = w.keyframes[n-1].Time, w.keyframes[n-1].Pos
		}
		body, err := w.fit(st, w.keyframes)
		if err == nil {
			_, err = w.f.WriteAt(body, w.metaOff+TagHeaderSize)
		}
		if err == nil {
			err = w.f.Sync()
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	if err := w.f.Close(); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("flv: close: %w", err)
	}
	return nil
}

// ownProps copies meta without the properties the Writer owns.
func ownProps(meta amf.ECMAArray) []amf.Property {
	props := make([]amf.Property, 0, len(meta))
	for _, p := range meta {
		owned := false
		for _, k := range ownedKeys {
			if p.Key == k {
				owned = true
			}
		}
		if !owned {
			props = append(props, p)
		}
	}
	return props
}

// metaState is what the Writer writes about the recording.
type metaState struct {
	// final is false for the placeholder, which has none of the
	// Writer's properties (padding takes their room): while recording,
	// and after a kill, players find the duration from the file itself
	// rather than believe a 0.
	final      bool
	duration   float64 // seconds
	fileSize   int64
	lastTS     float64 // seconds
	lastKeyTS  float64 // seconds
	lastKeyPos int64
}

// Padding is one property named keyPadding whose value is a strict array
// of nulls: any size from padOverhead bytes up, ignored by ffmpeg (which
// cannot skip long strings) and cut off before decoding by ParseMetadata.
const padOverhead = 2 + len(keyPadding) + 1 + 4

// metadata encodes the onMetaData tag data: "onMetaData", then the
// caller's properties, the Writer's, the keyframes index and pad bytes of
// padding properties (none when pad is 0 or less; pad must be 0 or at least
// padOverhead).
func (w *Writer) metadata(st metaState, kfs []Keyframe, pad int) ([]byte, error) {
	props := make([]amf.Property, len(w.props), len(w.props)+8)
	copy(props, w.props)
	if st.final {
		times := make([]float64, len(kfs))
		pos := make([]float64, len(kfs))
		for i, k := range kfs {
			times[i], pos[i] = k.Time, float64(k.Pos)
		}
		props = append(props,
			amf.Property{Key: keyDuration, Value: st.duration},
			amf.Property{Key: keyFileSize, Value: float64(st.fileSize)},
			amf.Property{Key: keyLastTS, Value: st.lastTS},
			amf.Property{Key: keyLastKeyTS, Value: st.lastKeyTS},
			amf.Property{Key: keyLastKeyPos, Value: float64(st.lastKeyPos)},
			// ffmpeg reads only an index whose object holds nothing but
			// these two arrays.
			amf.Property{Key: keyKeyframes, Value: amf.Object{
				{Key: keyTimes, Value: times},
				{Key: keyPositions, Value: pos},
			}},
		)
	}
	var e amf.Encoder
	if err := e.EncodeAMF0(onMetaData); err != nil {
		return nil, err
	}
	var v any = amf.ECMAArray(props)
	if w.object {
		v = amf.Object(props)
	}
	if err := e.EncodeAMF0(v); err != nil {
		return nil, err
	}
	if pad <= 0 {
		return e.Bytes(), nil
	}
	// Splice the padding in before the object end marker (00 00 09).
	b := e.Bytes()
	end := len(b) - 3
	out := make([]byte, 0, len(b)+pad)
	out = append(out, b[:end]...)
	out = appendPadding(out, pad)
	return append(out, b[end:]...), nil
}

// appendPadding appends a padding property of n bytes (n >= padOverhead).
func appendPadding(b []byte, n int) []byte {
	nulls := n - padOverhead
	b = append(b, 0, byte(len(keyPadding)))
	b = append(b, keyPadding...)
	b = append(b, 0x0a, byte(nulls>>24), byte(nulls>>16), byte(nulls>>8), byte(nulls))
	for range nulls {
		b = append(b, 0x05)
	}
	return b
}

// errNoRoom reports metadata that does not fit in the onMetaData tag.
var errNoRoom = errors.New("metadata does not fit in the onMetaData tag")

// fit encodes the metadata in exactly w.metaSize bytes with as many of the
// keyframes as fit (all, or the first, the last and evenly spaced ones
// between).
func (w *Writer) fit(st metaState, kfs []Keyframe) ([]byte, error) {
	base, err := w.metadata(st, nil, 0)
	if err != nil {
		return nil, err
	}
	room := w.metaSize - len(base)
	if room < 0 {
		return nil, errNoRoom
	}
	// The most keyframes that leave either no bytes over or enough for a
	// padding property.
	n := min(len(kfs), room/keyframeCost)
	for n > 0 {
		if rest := room - n*keyframeCost; rest == 0 || rest >= padOverhead {
			break
		}
		n--
	}
	if rest := room - n*keyframeCost; rest != 0 && rest < padOverhead {
		return nil, errNoRoom
	}
	body, err := w.metadata(st, subsample(kfs, n), room-n*keyframeCost)
	if err != nil {
		return nil, err
	}
	if len(body) != w.metaSize {
		return nil, fmt.Errorf("onMetaData of %d bytes, want %d", len(body), w.metaSize)
	}
	return body, nil
}

// subsample returns n of kfs: all of them, or the first, the last and
// evenly spaced ones between.
func subsample(kfs []Keyframe, n int) []Keyframe {
	if n >= len(kfs) {
		return kfs
	}
	if n <= 1 {
		return kfs[:n]
	}
	out := make([]Keyframe, n)
	for i := range out {
		out[i] = kfs[int(math.Round(float64(i)*float64(len(kfs)-1)/float64(n-1)))]
	}
	return out
}

var _ io.Closer = (*Writer)(nil)
