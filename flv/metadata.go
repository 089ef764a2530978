package flv

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"

	"github.com/rtmphub/rtmphub/rtmp/amf"
	"github.com/rtmphub/rtmphub/rtmp/message"
)

// Metadata is an onMetaData script tag.
type Metadata struct {
	// Duration in seconds; 0 when absent.
	Duration float64
	// Width and Height in pixels, FrameRate in frames per second, FileSize
	// in bytes; 0 when absent.
	Width, Height, FrameRate, FileSize float64
	// VideoCodec and AudioCodec name the codecs as message.VideoInfo and
	// message.AudioInfo do ("avc1", "hvc1", "av01", "mp4a", ".mp3"...),
	// from a legacy codec id, an Enhanced RTMP FourCC number or a string;
	// "" when absent or unknown.
	VideoCodec, AudioCodec string
	// Raw is the value as the file has it, amf.ECMAArray or amf.Object,
	// keyframes included but without the padding this package's Writer
	// reserves room with.
	Raw any
	// Keyframes is the keyframes index ({times: [...], filepositions:
	// [...]}, as yamdi, flvtool2, ffmpeg and this package's Writer write
	// it), nil when absent or malformed. Nothing here checks that the
	// positions are right: BuildIndex does.
	Keyframes []Keyframe
	// Offset is the file position of the script tag's header; 0 when
	// parsed from bytes.
	Offset int64
	// Size is the DataSize of the script tag.
	Size uint32
}

// Property names this package reads and writes.
const (
	keyDuration     = "duration"
	keyFileSize     = "filesize"
	keyKeyframes    = "keyframes"
	keyTimes        = "times"
	keyPositions    = "filepositions"
	keyPadding      = "rtmphubpadding"
	keyLastTS       = "lasttimestamp"
	keyLastKeyTS    = "lastkeyframetimestamp"
	keyLastKeyPos   = "lastkeyframelocation"
	keyCreator      = "metadatacreator"
	onMetaData      = "onMetaData"
	metadataCreator = "rtmphub"
)

// ParseMetadata parses the data of a script tag holding onMetaData: the
// string "onMetaData" then an ECMA array or object. Bytes after them are
// ignored. Data that is not onMetaData is ErrNoMetadata.
func ParseMetadata(data []byte) (*Metadata, error) {
	m, err := parseMetadata(withoutPadding(data))
	if err != nil {
		m, err = parseMetadata(data)
	}
	if err != nil {
		return nil, err
	}
	m.Size = uint32(min(len(data), MaxDataSize))
	return m, nil
}

// Encode returns the data of a script tag (or RTMP data message) holding
// m.Raw as onMetaData: what a player should get, without the Writer's
// padding.
func (m *Metadata) Encode() ([]byte, error) {
	b, err := amf.Marshal0(onMetaData, m.Raw)
	if err != nil {
		return nil, fmt.Errorf("flv: onMetaData: %w", err)
	}
	return b, nil
}

// paddingKey is how the padding property the Writer adds starts.
var paddingKey = []byte("\x00" + string(rune(len(keyPadding))) + keyPadding + "\x0a")

// withoutPadding returns the data of an onMetaData tag up to the padding
// property, when that is the last property of an ECMA array at the end of
// data, so that decoding does not build a slice of the nulls (an ECMA
// array may end with the input). Otherwise it returns data.
func withoutPadding(data []byte) []byte {
	i := bytes.LastIndex(data, paddingKey)
	if i < 0 {
		return data
	}
	rest := data[i+len(paddingKey):]
	if len(rest) < 4 {
		return data
	}
	n := uint64(binary.BigEndian.Uint32(rest))
	rest = rest[4:]
	if uint64(len(rest)) != n+3 || string(rest[n:]) != "\x00\x00\x09" {
		return data
	}
	for _, c := range rest[:n] {
		if c != 0x05 {
			return data
		}
	}
	return data[:i]
}

func parseMetadata(data []byte) (*Metadata, error) {
	d := amf.NewDecoder(data)
	name, err := d.DecodeAMF0()
	if err != nil {
		return nil, fmt.Errorf("flv: script data name: %w: %w", err, ErrCorrupt)
	}
	if s, _ := name.(string); s != onMetaData {
		return nil, ErrNoMetadata
	}
	v, err := d.DecodeAMF0()
	if err != nil {
		return nil, fmt.Errorf("flv: onMetaData: %w: %w", err, ErrCorrupt)
	}
	var props []amf.Property
	switch x := v.(type) {
	case amf.ECMAArray:
		x.Delete(keyPadding)
		props, v = x, x
	case amf.Object:
		x.Delete(keyPadding)
		props, v = x, x
	default:
		return nil, fmt.Errorf("flv: onMetaData value is %T, not an object: %w", v, ErrCorrupt)
	}
	m := &Metadata{Raw: v}
	m.Duration = number(props, keyDuration)
	m.Width = number(props, "width")
	m.Height = number(props, "height")
	m.FrameRate = number(props, "framerate")
	if m.FrameRate == 0 {
		m.FrameRate = number(props, "videoframerate")
	}
	m.FileSize = number(props, keyFileSize)
	m.VideoCodec = codecName(get(props, "videocodecid"), true)
	m.AudioCodec = codecName(get(props, "audiocodecid"), false)
	m.Keyframes = keyframes(get(props, keyKeyframes))
	return m, nil
}

// ReadMetadata reads the onMetaData of the FLV file r: the first script tag
// named onMetaData before the first audio or video tag. It moves r's
// offset. A file without one is ErrNoMetadata.
func ReadMetadata(r io.ReadSeeker) (*Metadata, error) {
	fr, err := newReader(r, scanBufferSize)
	if err != nil {
		return nil, err
	}
	m, err := fr.metadata()
	if err != nil {
		return nil, err
	}
	return m, nil
}

// metadata reads tags from the start until the first audio or video tag
// and parses the first onMetaData among them.
func (r *Reader) metadata() (*Metadata, error) {
	if err := r.SeekTag(r.first); err != nil {
		return nil, err
	}
	var t Tag
	for {
		err := r.ReadTag(&t)
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, ErrNoMetadata
		}
		if err != nil {
			return nil, err
		}
		if t.Type != TagScript {
			return nil, ErrNoMetadata
		}
		m, err := ParseMetadata(t.Data)
		if errors.Is(err, ErrNoMetadata) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("flv: tag at offset %d: %w", t.Offset, err)
		}
		m.Offset = t.Offset
		return m, nil
	}
}

func get(props []amf.Property, key string) any {
	for i := range props {
		if props[i].Key == key {
			return props[i].Value
		}
	}
	return nil
}

// number returns a finite number property, or 0.
func number(props []amf.Property, key string) float64 {
	f, ok := amf.Number(get(props, key))
	if !ok || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0
	}
	return f
}

// codecName names the codec of a videocodecid or audiocodecid value: a
// legacy id (classified by message.ParseVideo or ParseAudio as the first
// byte of a payload would be), a FourCC as a number (Enhanced RTMP) or a
// string.
func codecName(v any, video bool) string {
	if s, ok := v.(string); ok {
		return s
	}
	f, ok := amf.Number(v)
	if !ok || f != math.Trunc(f) || f < 0 || f > math.MaxUint32 {
		return ""
	}
	id := uint32(f)
	if id < 16 {
		if video {
			info, _ := message.ParseVideo([]byte{0x10 | byte(id), 1})
			return info.Codec
		}
		info, _ := message.ParseAudio([]byte{byte(id) << 4, 1})
		return info.Codec
	}
	if id < 1<<24 {
		return ""
	}
	return string(binary.BigEndian.AppendUint32(nil, id))
}

// keyframes reads a keyframes object: times and filepositions, numeric
// arrays of the same length.
func keyframes(v any) []Keyframe {
	var props []amf.Property
	switch x := v.(type) {
	case amf.Object:
		props = x
	case amf.ECMAArray:
		props = x
	default:
		return nil
	}
	times, _ := get(props, keyTimes).([]any)
	pos, _ := get(props, keyPositions).([]any)
	if len(times) == 0 || len(times) != len(pos) {
		return nil
	}
	kfs := make([]Keyframe, len(times))
	for i := range times {
		t, ok1 := amf.Number(times[i])
		p, ok2 := amf.Number(pos[i])
		if !ok1 || !ok2 || math.IsNaN(t) || math.IsInf(t, 0) || p != math.Trunc(p) || p < 0 || p > 1<<53 {
			return nil
		}
		kfs[i] = Keyframe{Time: t, Pos: int64(p)}
	}
	return kfs
}
