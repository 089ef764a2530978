package chunk

import (
	"encoding/binary"
	"encoding/hex"
	"io"
	"strings"

	"github.com/rtmphub/rtmphub/rtmp/message"
)

// wireCase is one row of the table that seeds the decode, encode, round
// trip and fuzz tests: messages and their exact bytes on the wire. Chunk
// sizes start at DefaultChunkSize and change with the SetChunkSize messages
// in msgs (the encoder follows them as a real sender does).
type wireCase struct {
	name string
	msgs []*message.Message
	wire []byte
	// decodeOnly marks bytes rtmphub's writer would encode differently:
	// other implementations' choices, interleaving, aborts.
	decodeOnly bool
	// err is what decoding ends with after msgs (errors.Is); nil means
	// io.EOF at the end of wire. Rows with err are decode-only.
	err error
	// maxMessageSize for the Reader; 0 means the default.
	maxMessageSize uint32
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

// pl returns n payload bytes that never start with an extended timestamp
// used in the table.
func pl(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = seed + byte(i*7)
	}
	return b
}

func be32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }

func msg(csid uint32, t message.Type, msid, ts uint32, p []byte) *message.Message {
	return &message.Message{Type: t, StreamID: msid, Timestamp: ts, ChunkStreamID: csid, Payload: p}
}

func setChunkSize(n uint32) *message.Message {
	return msg(2, message.TypeSetChunkSize, 0, 0, be32(n))
}

func abort(csid uint32) *message.Message {
	return msg(2, message.TypeAbort, 0, 0, be32(csid))
}

const (
	tCmd   = message.TypeCommandAMF0
	tAudio = message.TypeAudio
	tVideo = message.TypeVideo
	tUC    = message.TypeUserControl
)

// Payloads shared by several rows.
var (
	v300 = pl(300, 0x10)
	v130 = pl(130, 0x20)
	a10  = pl(10, 0x30)
	a4   = pl(4, 0x40)
)

var cases = []wireCase{
	// Header formats.
	{
		name: "format 0: command on chunk stream 3",
		msgs: []*message.Message{msg(3, tCmd, 0, 0, pl(5, 1))},
		wire: cat(hx("03 000000 000005 14 00000000"), pl(5, 1)),
	},
	{
		name: "format 1: length changes",
		msgs: []*message.Message{
			msg(3, tCmd, 0, 0, pl(5, 1)),
			msg(3, tCmd, 0, 10, pl(7, 2)),
		},
		wire: cat(
			hx("03 000000 000005 14 00000000"), pl(5, 1),
			hx("43 00000a 000007 14"), pl(7, 2)),
	},
	{
		name: "format 1: type changes",
		msgs: []*message.Message{
			msg(5, message.TypeDataAMF0, 1, 0, pl(5, 1)),
			msg(5, tCmd, 1, 0, pl(5, 2)),
		},
		wire: cat(
			hx("05 000000 000005 12 01000000"), pl(5, 1),
			hx("45 000000 000005 14"), pl(5, 2)),
	},
	{
		name: "format 2 then format 3 new messages reusing the delta",
		msgs: []*message.Message{
			msg(6, tAudio, 1, 0, a4),
			msg(6, tAudio, 1, 23, a4),
			msg(6, tAudio, 1, 46, a4),
			msg(6, tAudio, 1, 69, a4),
			msg(6, tAudio, 1, 93, a4),
		},
		wire: cat(
			hx("06 000000 000004 08 01000000"), a4,
			hx("86 000017"), a4,
			hx("c6"), a4,
			hx("c6"), a4,
			hx("86 000018"), a4),
	},
	{
		name: "format 0: message stream id changes",
		msgs: []*message.Message{
			msg(5, tCmd, 1, 0, pl(3, 1)),
			msg(5, tCmd, 2, 0, pl(3, 2)),
		},
		wire: cat(
			hx("05 000000 000003 14 01000000"), pl(3, 1),
			hx("05 000000 000003 14 02000000"), pl(3, 2)),
	},
	{
		name: "format 0: timestamp goes backwards",
		msgs: []*message.Message{
			msg(6, tAudio, 1, 1000, pl(2, 1)),
			msg(6, tAudio, 1, 500, pl(2, 2)),
		},
		wire: cat(
			hx("06 0003e8 000002 08 01000000"), pl(2, 1),
			hx("06 0001f4 000002 08 01000000"), pl(2, 2)),
	},
	{
		name: "zero-length messages in formats 0, 2 and 3",
		msgs: []*message.Message{
			msg(3, tCmd, 0, 0, nil),
			msg(3, tCmd, 0, 0, nil),
			msg(3, tCmd, 0, 0, nil),
		},
		wire: hx("03 000000 000000 14 00000000  83 000000  c3"),
	},

	// Basic header forms.
	{
		name: "2-byte basic header: chunk streams 64 and 319",
		msgs: []*message.Message{
			msg(64, tAudio, 1, 0, pl(1, 1)),
			msg(319, tVideo, 1, 0, pl(1, 2)),
			msg(64, tAudio, 1, 10, pl(1, 3)),
		},
		wire: cat(
			hx("00 00 000000 000001 08 01000000"), pl(1, 1),
			hx("00 ff 000000 000001 09 01000000"), pl(1, 2),
			hx("80 00 00000a"), pl(1, 3)),
	},
	{
		name: "3-byte basic header: chunk streams 320 and 65599, with continuation",
		msgs: []*message.Message{
			msg(320, tVideo, 1, 0, v130),
			msg(65599, tAudio, 1, 0, pl(1, 2)),
		},
		wire: cat(
			hx("01 00 01 000000 000082 09 01000000"), v130[:128],
			hx("c1 00 01"), v130[128:],
			hx("01 ff ff 000000 000001 08 01000000"), pl(1, 2)),
	},

	// Chunking.
	{
		name: "format 3 continuation: 300-byte video over 128-byte chunks",
		msgs: []*message.Message{msg(7, tVideo, 1, 0, v300)},
		wire: cat(
			hx("07 000000 00012c 09 01000000"), v300[:128],
			hx("c7"), v300[128:256],
			hx("c7"), v300[256:]),
	},
	{
		name: "audio/video interleave: audio chunks between a video message's chunks",
		msgs: []*message.Message{
			msg(6, tAudio, 1, 0, a10),
			msg(6, tAudio, 1, 23, a10),
			msg(7, tVideo, 1, 0, v300),
		},
		wire: cat(
			hx("07 000000 00012c 09 01000000"), v300[:128],
			hx("06 000000 00000a 08 01000000"), a10,
			hx("c7"), v300[128:256],
			hx("86 000017"), a10,
			hx("c7"), v300[256:]),
		decodeOnly: true,
	},
	{
		name: "SetChunkSize up and down",
		msgs: []*message.Message{
			setChunkSize(4096),
			msg(7, tVideo, 1, 0, v300),
			setChunkSize(100),
			msg(7, tVideo, 1, 40, v300),
		},
		wire: cat(
			hx("02 000000 000004 01 00000000 00001000"),
			hx("07 000000 00012c 09 01000000"), v300,
			hx("82 000000 00000064"),
			hx("87 000028"), v300[:100],
			hx("c7"), v300[100:200],
			hx("c7"), v300[200:]),
	},
	{
		name: "SetChunkSize between the chunks of a partial message",
		msgs: []*message.Message{
			setChunkSize(4096),
			msg(7, tVideo, 1, 0, v300),
		},
		wire: cat(
			hx("07 000000 00012c 09 01000000"), v300[:128],
			hx("02 000000 000004 01 00000000 00001000"),
			hx("c7"), v300[128:]),
		decodeOnly: true,
	},
	{
		name: "chunk size 1",
		msgs: []*message.Message{
			setChunkSize(1),
			msg(3, tCmd, 0, 0, pl(3, 9)),
		},
		wire: cat(
			hx("02 000000 000004 01 00000000 00000001"),
			hx("03 000000 000003 14 00000000"), pl(3, 9)[:1],
			hx("c3"), pl(3, 9)[1:2],
			hx("c3"), pl(3, 9)[2:]),
	},
	{
		name: "Abort discards the partial message, format 0 starts the next",
		msgs: []*message.Message{
			abort(7),
			msg(7, tVideo, 1, 100, pl(5, 3)),
		},
		wire: cat(
			hx("07 000000 00012c 09 01000000"), v300[:128],
			hx("02 000000 000004 02 00000000 00000007"),
			hx("07 000064 000005 09 01000000"), pl(5, 3)),
		decodeOnly: true,
	},
	{
		name: "Abort then a format-3 chunk starts a new message",
		msgs: []*message.Message{
			abort(7),
			msg(7, tVideo, 1, 0, v300),
		},
		wire: cat(
			hx("07 000000 00012c 09 01000000"), pl(128, 0x77),
			hx("02 000000 000004 02 00000000 00000007"),
			hx("c7"), v300[:128],
			hx("c7"), v300[128:256],
			hx("c7"), v300[256:]),
		decodeOnly: true,
	},
	{
		name: "Abort of an idle chunk stream is ignored",
		msgs: []*message.Message{
			abort(9),
			msg(3, tCmd, 0, 0, pl(5, 1)),
		},
		wire: cat(
			hx("02 000000 000004 02 00000000 00000009"),
			hx("03 000000 000005 14 00000000"), pl(5, 1)),
	},
	{
		name: "format 0 header in the middle of a message discards it",
		msgs: []*message.Message{msg(7, tVideo, 1, 50, pl(5, 3))},
		wire: cat(
			hx("07 000000 00012c 09 01000000"), v300[:128],
			hx("07 000032 000005 09 01000000"), pl(5, 3)),
		decodeOnly: true,
	},

	// Extended timestamps.
	{
		name: "extended timestamp: format 0",
		msgs: []*message.Message{msg(6, tAudio, 1, 0x01000000, a4)},
		wire: cat(hx("06 ffffff 000004 08 01000000 01000000"), a4),
	},
	{
		name: "extended timestamp: format 0 at exactly 0xFFFFFF",
		msgs: []*message.Message{msg(6, tAudio, 1, 0xFFFFFF, a4)},
		wire: cat(hx("06 ffffff 000004 08 01000000 00ffffff"), a4),
	},
	{
		name: "ffmpeg: type-3 continuation with extended timestamp",
		msgs: []*message.Message{msg(7, tVideo, 1, 0x12345678, v300)},
		wire: cat(
			hx("07 ffffff 00012c 09 01000000 12345678"), v300[:128],
			hx("c7 12345678"), v300[128:256],
			hx("c7 12345678"), v300[256:]),
	},
	{
		name: "extended timestamp repeated before a short last chunk",
		msgs: []*message.Message{msg(7, tVideo, 1, 0x12345678, v130)},
		wire: cat(
			hx("07 ffffff 000082 09 01000000 12345678"), v130[:128],
			hx("c7 12345678"), v130[128:]),
	},
	{
		name: "extended delta: format 1",
		msgs: []*message.Message{
			msg(6, tAudio, 1, 0, a4),
			msg(6, tAudio, 1, 0x01000000, pl(5, 5)),
		},
		wire: cat(
			hx("06 000000 000004 08 01000000"), a4,
			hx("46 ffffff 000005 08 01000000"), pl(5, 5)),
		decodeOnly: true,
	},
	{
		name: "extended delta: format 2 twice",
		msgs: []*message.Message{
			msg(6, tAudio, 1, 0, a4),
			msg(6, tAudio, 1, 0x01000000, a4),
			msg(6, tAudio, 1, 0x02000000, a4),
		},
		wire: cat(
			hx("06 000000 000004 08 01000000"), a4,
			hx("86 ffffff 01000000"), a4,
			hx("86 ffffff 01000000"), a4),
		decodeOnly: true,
	},
	{
		name: "extended delta: format 2 with continuation chunks",
		msgs: []*message.Message{
			msg(7, tVideo, 1, 0, v300),
			msg(7, tVideo, 1, 0x01000010, v300),
		},
		wire: cat(
			hx("07 000000 00012c 09 01000000"), v300[:128],
			hx("c7"), v300[128:256],
			hx("c7"), v300[256:],
			hx("87 ffffff 01000010"), v300[:128],
			hx("c7 01000010"), v300[128:256],
			hx("c7 01000010"), v300[256:]),
		decodeOnly: true,
	},
	{
		name: "delta of 0xFFFFFF or more: the writer sends format 0",
		msgs: []*message.Message{
			msg(7, tVideo, 1, 0, v130),
			msg(7, tVideo, 1, 0x01000010, v130),
			msg(7, tVideo, 1, 0x01000038, v130),
			msg(7, tVideo, 1, 0x01000060, v130),
		},
		wire: cat(
			hx("07 000000 000082 09 01000000"), v130[:128],
			hx("c7"), v130[128:],
			hx("07 ffffff 000082 09 01000000 01000010"), v130[:128],
			hx("c7 01000010"), v130[128:],
			hx("87 000028"), v130[:128],
			hx("c7"), v130[128:],
			hx("c7"), v130[:128],
			hx("c7"), v130[128:]),
	},
	{
		name: "ffmpeg: format-3 new message repeating an extended delta",
		msgs: []*message.Message{
			msg(6, tAudio, 1, 0, a4),
			msg(6, tAudio, 1, 0x01000000, a4),
			msg(6, tAudio, 1, 0x02000000, a4),
		},
		wire: cat(
			hx("06 000000 000004 08 01000000"), a4,
			hx("86 ffffff 01000000"), a4,
			hx("c6 01000000"), a4),
		decodeOnly: true,
	},
	{
		name: "audio/video interleave with extended timestamps on every chunk",
		msgs: []*message.Message{
			msg(6, tAudio, 1, 0x01000000, a10),
			msg(7, tVideo, 1, 0x01000000, v300),
			msg(6, tAudio, 1, 0x01000017, a10),
		},
		wire: cat(
			hx("07 ffffff 00012c 09 01000000 01000000"), v300[:128],
			hx("06 ffffff 00000a 08 01000000 01000000"), a10,
			hx("c7 01000000"), v300[128:256],
			hx("c7 01000000"), v300[256:],
			hx("86 000017"), a10),
		decodeOnly: true,
	},
	{
		name: "go-rtmp: continuation chunks without the extended timestamp",
		msgs: []*message.Message{msg(7, tVideo, 1, 0x12345678, v300)},
		wire: cat(
			hx("07 ffffff 00012c 09 01000000 12345678"), v300[:128],
			hx("c7"), v300[128:256],
			hx("c7"), v300[256:]),
		decodeOnly: true,
	},
	{
		name: "go-rtmp: short last chunk without the extended timestamp",
		msgs: []*message.Message{msg(7, tVideo, 1, 0x12345678, v130)},
		wire: cat(
			hx("07 ffffff 000082 09 01000000 12345678"), v130[:128],
			hx("c7"), v130[128:]),
		decodeOnly: true,
	},
	{
		name: "go-rtmp: short last chunk that starts like the extended timestamp",
		msgs: []*message.Message{msg(7, tVideo, 1, 0x12345678, cat(v130[:128], hx("12 34")))},
		wire: cat(
			hx("07 ffffff 000082 09 01000000 12345678"), v130[:128],
			hx("c7 1234")),
		decodeOnly: true,
	},

	// Timestamps across 24 and 32 bits.
	{
		name: "timestamp crosses 0xFFFFFF with small deltas",
		msgs: []*message.Message{
			msg(6, tAudio, 1, 0xFFFFF0, pl(2, 1)),
			msg(6, tAudio, 1, 0x01000010, pl(2, 2)),
			msg(6, tAudio, 1, 0x01000030, pl(2, 3)),
		},
		wire: cat(
			hx("06 fffff0 000002 08 01000000"), pl(2, 1),
			hx("86 000020"), pl(2, 2),
			hx("c6"), pl(2, 3)),
	},
	{
		name: "timestamp wraps at 2^32: format 0 again",
		msgs: []*message.Message{
			msg(6, tAudio, 1, 0xFFFFFFF0, pl(2, 1)),
			msg(6, tAudio, 1, 0x10, pl(2, 2)),
		},
		wire: cat(
			hx("06 ffffff 000002 08 01000000 fffffff0"), pl(2, 1),
			hx("06 000010 000002 08 01000000"), pl(2, 2)),
	},
	{
		name: "librtmp: delta across the 32-bit wrap",
		msgs: []*message.Message{
			msg(6, tAudio, 1, 0xFFFFFFF0, pl(2, 1)),
			msg(6, tAudio, 1, 0x10, pl(2, 2)),
		},
		wire: cat(
			hx("06 ffffff 000002 08 01000000 fffffff0"), pl(2, 1),
			hx("86 000020"), pl(2, 2)),
		decodeOnly: true,
	},

	// Other implementations' choices.
	{
		name: "FMLE: format-3 new message after format 0 adds the first timestamp",
		msgs: []*message.Message{
			msg(4, tAudio, 1, 26, a10),
			msg(4, tAudio, 1, 52, a10),
		},
		wire: cat(
			hx("04 00001a 00000a 08 01000000"), a10,
			hx("c4"), a10),
		decodeOnly: true,
	},
	{
		name: "ffmpeg: format 3 after format 0 with an equal timestamp",
		msgs: []*message.Message{
			msg(3, tCmd, 0, 0, pl(5, 1)),
			msg(3, tCmd, 0, 0, pl(5, 2)),
		},
		wire: cat(
			hx("03 000000 000005 14 00000000"), pl(5, 1),
			hx("c3"), pl(5, 2)),
		decodeOnly: true,
	},
	{
		name:       "librtmp: format-1 ping response on a fresh chunk stream 2",
		msgs:       []*message.Message{msg(2, tUC, 0, 0, hx("0007 00000d0f"))},
		wire:       hx("42 000000 000006 04 0007 00000d0f"),
		decodeOnly: true,
	},

	// Errors.
	{
		name:           "hostile: declared length above the limit",
		wire:           hx("06 000000 ffffff 08 01000000"),
		maxMessageSize: 1000,
		err:            ErrLimit,
	},
	{
		name: "hostile: partial messages over the budget",
		msgs: nil,
		wire: cat(
			hx("03 000000 0003e8 08 01000000"), pl(128, 1),
			hx("04 000000 0003e8 08 01000000"), pl(128, 2),
			hx("05 000000 0003e8 08 01000000"), pl(128, 3),
			hx("06 000000 0003e8 08 01000000"), pl(128, 4),
			hx("07 000000 0003e8 08 01000000"), pl(128, 5)),
		maxMessageSize: 1000,
		err:            ErrLimit,
	},
	tooManyChunkStreams(),
	{
		name: "SetChunkSize 0",
		wire: hx("02 000000 000004 01 00000000 00000000"),
		err:  ErrProtocol,
	},
	{
		name: "SetChunkSize above MaxChunkSize",
		wire: hx("02 000000 000004 01 00000000 01000000"),
		err:  ErrProtocol,
	},
	{
		name: "SetChunkSize with a short payload",
		wire: hx("02 000000 000002 01 00000000 0100"),
		err:  ErrProtocol,
	},
	{
		name: "Abort with a short payload",
		wire: hx("02 000000 000001 02 00000000 07"),
		err:  ErrProtocol,
	},
	{
		name: "format 2 on a fresh chunk stream",
		wire: cat(hx("86 000017"), a4),
		err:  ErrProtocol,
	},
	{
		name: "format 3 on a fresh chunk stream",
		wire: cat(hx("c6"), a4),
		err:  ErrProtocol,
	},
	{
		name: "truncated in the middle of a chunk",
		msgs: []*message.Message{msg(3, tCmd, 0, 0, pl(5, 1))},
		wire: cat(
			hx("03 000000 000005 14 00000000"), pl(5, 1),
			hx("07 000000 00012c 09 01000000"), v300[:100]),
		err: io.ErrUnexpectedEOF,
	},
	{
		name: "truncated in a basic header",
		wire: hx("01 00"),
		err:  io.ErrUnexpectedEOF,
	},
}

// tooManyChunkStreams opens one chunk stream more than a Reader tracks, each
// with an empty message.
func tooManyChunkStreams() wireCase {
	c := wireCase{name: "hostile: too many chunk streams", err: ErrLimit}
	for i := range MaxChunkStreams + 1 {
		csid := uint32(10 + i)
		if i < MaxChunkStreams {
			c.msgs = append(c.msgs, msg(csid, tCmd, 0, 0, nil))
		}
		switch {
		case csid < 64:
			c.wire = append(c.wire, byte(csid))
		default:
			c.wire = append(c.wire, 0, byte(csid-64))
		}
		c.wire = append(c.wire, hx("000000 000000 14 00000000")...)
	}
	return c
}
