package flv

import (
	"encoding/binary"
	"encoding/hex"
	"io"
	"strings"

	"github.com/rtmphub/rtmphub/rtmp/message"
)

// fileCase is one row of the table that seeds the decode, encode and fuzz
// tests: the bytes of a file and what a Reader makes of them.
type fileCase struct {
	name string
	file []byte
	// newErr is what NewReader fails with (errors.Is); then nothing else
	// is checked.
	newErr error
	hdr    Header
	tags   []Tag // Offset included
	// err is what reading ends with after tags (errors.Is); nil means
	// io.EOF.
	err error
	// decodeOnly marks files whose bytes AppendHeader and AppendTag would
	// not reproduce (header bits and fields the Reader ignores).
	decodeOnly bool
	// maxTagSize for the Reader; 0 means the default.
	maxTagSize uint32
}

// hx decodes hex digits, ignoring spaces.
func hx(s string) []byte {
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		panic(err)
	}
	return b
}

func cat(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

func be32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }

// Headers and bodies shared by several rows.
var (
	hdrAV    = hx("464c5601 05 00000009 00000000") // audio and video
	hdrV     = hx("464c5601 01 00000009 00000000")
	avHeader = Header{Version: 1, HasAudio: true, HasVideo: true, DataOffset: 9}

	// AAC sequence header and a raw AAC frame.
	aacSeq   = hx("af00 1210")
	aacFrame = hx("af01 21 1b94 05")
	// AVC sequence header, keyframe (NALU, composition time 0) and
	// inter frame.
	avcSeq   = hx("1700 000000 01640028ffe1000467640028")
	avcKey   = hx("1701 000000 00000005 65888400")
	avcInter = hx("2701 000028 00000004 41e002")
	// Enhanced RTMP: HEVC SequenceStart and CodedFrames keyframe, AV1
	// CodedFrames keyframe, a multitrack HEVC keyframe (one track), and
	// an Opus audio frame (sound format 9, CodedFrames).
	hevcSeq   = cat(hx("90"), []byte("hvc1"), hx("0101600000"))
	hevcKey   = cat(hx("91"), []byte("hvc1"), hx("000000 00000003 2601af"))
	av1Key    = cat(hx("91"), []byte("av01"), hx("12000a0b"))
	mtHEVCKey = cat(hx("96 01"), []byte("hvc1"), hx("00 000000 00000003 2601af"))
	opusFrame = cat(hx("91"), []byte("Opus"), hx("fcff fe"))
	// onMetaData with duration 2.5 and width 320, in an ECMA array.
	metaBody = hx("02000a6f6e4d65746144617461 08 00000002" +
		"0008 6475726174696f6e 00 4004000000000000" +
		"0005 7769647468 00 4074000000000000" +
		"000009")
)

// tag encodes a tag the way the specification lays it out, independently
// of AppendTag.
func tag(typ byte, ts uint32, data []byte) []byte {
	n := len(data)
	b := []byte{typ, byte(n >> 16), byte(n >> 8), byte(n), byte(ts >> 16), byte(ts >> 8), byte(ts), byte(ts >> 24), 0, 0, 0}
	b = append(b, data...)
	return append(b, be32(uint32(11+n))...)
}

// tags lays out tags after a 13-byte header (one per (typ, ts, data)),
// filling in their offsets.
func tags(ts ...Tag) []Tag {
	off := int64(13)
	for i := range ts {
		ts[i].Offset = off
		off += int64(15 + len(ts[i].Data))
	}
	return ts
}

func tg(typ message.Type, ts uint32, data []byte) Tag {
	return Tag{Type: typ, Timestamp: ts, Data: data}
}

var fileCases = []fileCase{
	{
		name: "header only",
		file: hdrAV,
		hdr:  avHeader,
	},
	{
		name: "video only header flag",
		file: hdrV,
		hdr:  Header{Version: 1, HasVideo: true, DataOffset: 9},
	},
	{
		name: "metadata, AVC and AAC",
		file: cat(hdrAV, tag(18, 0, metaBody), tag(9, 0, avcSeq), tag(8, 0, aacSeq),
			tag(9, 0, avcKey), tag(8, 23, aacFrame), tag(9, 40, avcInter)),
		hdr: avHeader,
		tags: tags(tg(TagScript, 0, metaBody), tg(TagVideo, 0, avcSeq), tg(TagAudio, 0, aacSeq),
			tg(TagVideo, 0, avcKey), tg(TagAudio, 23, aacFrame), tg(TagVideo, 40, avcInter)),
	},
	{
		name: "extended timestamp",
		file: cat(hdrAV, hx("09 00000d 345678 12 000000"), avcKey, be32(24)),
		hdr:  avHeader,
		tags: tags(tg(TagVideo, 0x12345678, avcKey)),
	},
	{
		name: "Enhanced RTMP HEVC, AV1, multitrack and Opus pass through",
		file: cat(hdrAV, tag(9, 0, hevcSeq), tag(9, 0, hevcKey), tag(9, 1000, av1Key),
			tag(9, 2000, mtHEVCKey), tag(8, 2010, opusFrame)),
		hdr: avHeader,
		tags: tags(tg(TagVideo, 0, hevcSeq), tg(TagVideo, 0, hevcKey), tg(TagVideo, 1000, av1Key),
			tg(TagVideo, 2000, mtHEVCKey), tg(TagAudio, 2010, opusFrame)),
	},
	{
		name: "stream id is kept",
		file: cat(hdrAV, hx("08 000002 000064 00 abcdef af01"), be32(13)),
		hdr:  avHeader,
		tags: tags(Tag{Type: TagAudio, Timestamp: 100, StreamID: 0xabcdef, Data: hx("af01")}),
	},
	{
		name: "empty tags",
		file: cat(hdrAV, tag(8, 5, nil), tag(9, 6, nil)),
		hdr:  avHeader,
		tags: tags(tg(TagAudio, 5, nil), tg(TagVideo, 6, nil)),
	},
	{
		name: "unknown tag type passes through",
		file: cat(hdrAV, tag(15, 7, hx("0102")), tag(9, 8, avcInter)),
		hdr:  avHeader,
		tags: tags(tg(15, 7, hx("0102")), tg(TagVideo, 8, avcInter)),
	},
	{
		name: "cut in a tag header",
		file: cat(hdrAV, tag(9, 0, avcKey), hx("08 000007 00")),
		hdr:  avHeader,
		tags: tags(tg(TagVideo, 0, avcKey)),
		err:  io.ErrUnexpectedEOF,
	},
	{
		name: "cut in tag data",
		file: cat(hdrAV, tag(9, 0, avcKey), tag(9, 40, avcInter)[:20]),
		hdr:  avHeader,
		tags: tags(tg(TagVideo, 0, avcKey)),
		err:  io.ErrUnexpectedEOF,
	},
	{
		name: "cut in a PreviousTagSize",
		file: cat(hdrAV, tag(9, 0, avcKey), tag(8, 23, aacFrame)[:11+7+2]),
		hdr:  avHeader,
		tags: tags(tg(TagVideo, 0, avcKey)),
		err:  io.ErrUnexpectedEOF,
	},
	{
		name: "PreviousTagSize missing at the end",
		file: cat(hdrAV, tag(8, 23, aacFrame)[:11+7]),
		hdr:  avHeader,
		err:  io.ErrUnexpectedEOF,
	},
	{
		name: "DataSize beyond the end of the file is a cut, not an allocation",
		file: cat(hdrAV, hx("09 ffffff 000000 00 000000 17"), tag(9, 0, avcKey)),
		hdr:  avHeader,
		err:  io.ErrUnexpectedEOF,
	},
	{
		name: "PreviousTagSize mismatch",
		file: cat(hdrAV, tag(9, 0, avcKey), hx("08 000002 000000 00 000000 af01 00000011"), tag(9, 40, avcInter)),
		hdr:  avHeader,
		tags: tags(tg(TagVideo, 0, avcKey)),
		err:  ErrCorrupt,
	},
	{
		// Some old writers stored DataSize alone; the specification says
		// 11 + DataSize, and so does this package.
		name: "PreviousTagSize without the header size",
		file: cat(hdrAV, hx("08 000002 000000 00 000000 af01 00000002")),
		hdr:  avHeader,
		err:  ErrCorrupt,
	},
	{
		name: "encrypted tag",
		file: cat(hdrAV, tag(0x29, 0, avcKey)),
		hdr:  avHeader,
		err:  ErrCorrupt,
	},
	{
		name: "reserved bits in the tag type",
		file: cat(hdrAV, tag(9, 0, avcKey), tag(0x48, 0, aacFrame)),
		hdr:  avHeader,
		tags: tags(tg(TagVideo, 0, avcKey)),
		err:  ErrCorrupt,
	},
	{
		name:       "tag over MaxTagSize",
		file:       cat(hdrAV, tag(8, 0, aacFrame), tag(9, 0, avcKey)),
		hdr:        avHeader,
		tags:       tags(tg(TagAudio, 0, aacFrame)),
		err:        ErrTagTooLarge,
		maxTagSize: 10,
	},
	{
		name: "DataOffset beyond 9 skips unknown header bytes",
		file: cat(hx("464c5601 05 0000000d cafebabe 00000000"), tag(8, 0, aacFrame)),
		hdr:  Header{Version: 1, HasAudio: true, HasVideo: true, DataOffset: 13},
		tags: []Tag{{Type: TagAudio, Data: aacFrame, Offset: 17}},
		// AppendHeader always writes DataOffset 9.
		decodeOnly: true,
	},
	{
		name:       "PreviousTagSize0 and reserved header flags are ignored",
		file:       cat(hx("464c5602 ff 00000009 00000017"), tag(8, 0, aacFrame)),
		hdr:        Header{Version: 2, HasAudio: true, HasVideo: true, DataOffset: 9},
		tags:       tags(tg(TagAudio, 0, aacFrame)),
		decodeOnly: true,
	},
	{
		name:   "not FLV",
		file:   hx("464c5801 05 00000009 00000000"),
		newErr: ErrCorrupt,
	},
	{
		name:   "DataOffset below 9",
		file:   hx("464c5601 05 00000008 00000000"),
		newErr: ErrCorrupt,
	},
	{
		name:   "cut in the header",
		file:   hx("464c5601 05 0000"),
		newErr: io.ErrUnexpectedEOF,
	},
	{
		name:   "cut in PreviousTagSize0",
		file:   hx("464c5601 05 00000009 0000"),
		newErr: io.ErrUnexpectedEOF,
	},
	{
		name:   "empty file",
		file:   nil,
		newErr: io.ErrUnexpectedEOF,
	},
}
