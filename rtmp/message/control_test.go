package message

import (
	"bytes"
	"encoding/hex"
	"reflect"
	"strings"
	"testing"
)

func mustHex(s string) []byte {
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		panic(err)
	}
	return b
}

// controlCases seed the decode, encode and fuzz tests of protocol control
// messages. Encode builds the message from the value.
var controlCases = []struct {
	name   string
	typ    Type
	n      uint32
	limit  uint8
	encode func() *Message
	bytes  string
}{
	{"SetChunkSize 4096 (FMS)", TypeSetChunkSize, 4096, 0, func() *Message { return SetChunkSize(4096) }, "00001000"},
	{"SetChunkSize 60000 (OBS)", TypeSetChunkSize, 60000, 0, func() *Message { return SetChunkSize(60000) }, "0000ea60"},
	{"SetChunkSize max", TypeSetChunkSize, 0x7fffffff, 0, func() *Message { return SetChunkSize(0x7fffffff) }, "7fffffff"},
	{"Abort csid 6", TypeAbort, 6, 0, func() *Message { return Abort(6) }, "00000006"},
	{"Ack 2.5 MB", TypeAck, 2500000, 0, func() *Message { return Ack(2500000) }, "002625a0"},
	{"Ack wrapped", TypeAck, 0xffffffff, 0, func() *Message { return Ack(0xffffffff) }, "ffffffff"},
	{"WindowAckSize 2.5 MB (FMS)", TypeWindowAckSize, 2500000, 0, func() *Message { return WindowAckSize(2500000) }, "002625a0"},
	{"SetPeerBandwidth hard", TypeSetPeerBandwidth, 2500000, LimitHard, func() *Message { return SetPeerBandwidth(2500000, LimitHard) }, "002625a0 00"},
	{"SetPeerBandwidth soft", TypeSetPeerBandwidth, 5000000, LimitSoft, func() *Message { return SetPeerBandwidth(5000000, LimitSoft) }, "004c4b40 01"},
	{"SetPeerBandwidth dynamic", TypeSetPeerBandwidth, 2500000, LimitDynamic, func() *Message { return SetPeerBandwidth(2500000, LimitDynamic) }, "002625a0 02"},
}

func decodeControl(typ Type, p []byte) (n uint32, limit uint8, err error) {
	switch typ {
	case TypeSetChunkSize:
		n, err = DecodeSetChunkSize(p)
	case TypeSetPeerBandwidth:
		n, limit, err = DecodeSetPeerBandwidth(p)
	default:
		n, err = DecodeUint32(p)
	}
	return
}

func TestControlEncode(t *testing.T) {
	for _, tc := range controlCases {
		t.Run(tc.name, func(t *testing.T) {
			m := tc.encode()
			want := &Message{Type: tc.typ, ChunkStreamID: CSIDControl, Payload: mustHex(tc.bytes)}
			if !reflect.DeepEqual(m, want) {
				t.Fatalf("got %v %x, want %v %x", m, m.Payload, want, want.Payload)
			}
		})
	}
}

func TestControlDecode(t *testing.T) {
	for _, tc := range controlCases {
		t.Run(tc.name, func(t *testing.T) {
			n, limit, err := decodeControl(tc.typ, mustHex(tc.bytes))
			if err != nil || n != tc.n || limit != tc.limit {
				t.Fatalf("got %d %d %v, want %d %d", n, limit, err, tc.n, tc.limit)
			}
		})
	}
}

func TestControlDecodeErrors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		typ   Type
		bytes string
	}{
		{"empty", TypeAck, ""},
		{"3 bytes", TypeWindowAckSize, "000010"},
		{"chunk size top bit", TypeSetChunkSize, "80001000"},
		{"chunk size 0", TypeSetChunkSize, "00000000"},
		{"peer bandwidth without limit", TypeSetPeerBandwidth, "002625a0"},
		{"peer bandwidth limit 3", TypeSetPeerBandwidth, "002625a0 03"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if n, limit, err := decodeControl(tc.typ, mustHex(tc.bytes)); err == nil {
				t.Fatalf("got %d %d, want an error", n, limit)
			}
		})
	}
}

// userControlCases seed the user control decode, encode and fuzz tests.
var userControlCases = []struct {
	name  string
	value UserControl
	bytes string
}{
	{"StreamBegin 0 (after connect)", UserControl{Event: UCStreamBegin}, "0000 00000000"},
	{"StreamBegin 1", UserControl{Event: UCStreamBegin, StreamID: 1}, "0000 00000001"},
	{"StreamEOF 1", UserControl{Event: UCStreamEOF, StreamID: 1}, "0001 00000001"},
	{"StreamDry 1", UserControl{Event: UCStreamDry, StreamID: 1}, "0002 00000001"},
	{"SetBufferLength 3000 ms (librtmp)", UserControl{Event: UCSetBufferLength, StreamID: 1, BufferLength: 3000}, "0003 00000001 00000bb8"},
	{"SetBufferLength on stream 0 (ffmpeg)", UserControl{Event: UCSetBufferLength, BufferLength: 3000}, "0003 00000000 00000bb8"},
	{"StreamIsRecorded 1", UserControl{Event: UCStreamIsRecorded, StreamID: 1}, "0004 00000001"},
	{"PingRequest", UserControl{Event: UCPingRequest, StreamID: 0x01020304}, "0006 01020304"},
	{"PingResponse", UserControl{Event: UCPingResponse, StreamID: 0x01020304}, "0007 01020304"},
	{"SWFVerifyRequest", UserControl{Event: UCSWFVerifyRequest, Data: []byte{}}, "001a"},
	{"SWFVerifyResponse", UserControl{Event: UCSWFVerifyResponse, Data: mustHex("0101 00001000 00001000" + strings.Repeat("ab", 32))},
		"001b 0101 00001000 00001000" + strings.Repeat("ab", 32)},
	{"BufferEmpty 1 (FMS 3.5)", UserControl{Event: UCBufferEmpty, StreamID: 1}, "001f 00000001"},
	{"BufferReady 1 (FMS 3.5)", UserControl{Event: UCBufferReady, StreamID: 1}, "0020 00000001"},
	{"unknown event 5", UserControl{Event: 5, Data: []byte{1, 2}}, "0005 0102"},
}

func TestUserControlDecode(t *testing.T) {
	for _, tc := range userControlCases {
		t.Run(tc.name, func(t *testing.T) {
			u, err := DecodeUserControl(mustHex(tc.bytes))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(u, tc.value) {
				t.Fatalf("got %+v, want %+v", u, tc.value)
			}
		})
	}
}

func TestUserControlEncode(t *testing.T) {
	for _, tc := range userControlCases {
		t.Run(tc.name, func(t *testing.T) {
			m := tc.value.Message()
			if m.Type != TypeUserControl || m.ChunkStreamID != CSIDControl || m.StreamID != 0 || m.Timestamp != 0 {
				t.Fatalf("header %v", m)
			}
			if want := mustHex(tc.bytes); !bytes.Equal(m.Payload, want) {
				t.Fatalf("got %x, want %x", m.Payload, want)
			}
		})
	}
}

func TestUserControlDecodeErrors(t *testing.T) {
	for _, tc := range []struct{ name, bytes string }{
		{"empty", ""},
		{"one byte", "00"},
		{"StreamBegin without id", "0000"},
		{"StreamBegin short id", "0000 000001"},
		{"SetBufferLength without length", "0003 00000001"},
		{"PingRequest short", "0006 0102"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if u, err := DecodeUserControl(mustHex(tc.bytes)); err == nil {
				t.Fatalf("got %+v, want an error", u)
			}
		})
	}
}

func TestUserControlEventString(t *testing.T) {
	for e, want := range map[UserControlEvent]string{
		UCStreamBegin: "StreamBegin", UCPingResponse: "PingResponse", UCBufferReady: "BufferReady",
		UCSWFVerifyResponse: "SWFVerifyResponse", 99: "UserControlEvent(99)",
	} {
		if got := e.String(); got != want {
			t.Errorf("%d: got %q, want %q", uint16(e), got, want)
		}
	}
}

func FuzzDecodeControl(f *testing.F) {
	for _, tc := range controlCases {
		f.Add(uint8(tc.typ), mustHex(tc.bytes))
	}
	f.Fuzz(func(t *testing.T, typ uint8, p []byte) {
		typ = typ%6 + 1
		if Type(typ) == TypeUserControl {
			return
		}
		n, limit, err := decodeControl(Type(typ), p)
		if err != nil {
			return
		}
		var m *Message
		switch Type(typ) {
		case TypeSetChunkSize:
			m = SetChunkSize(n)
		case TypeAbort:
			m = Abort(n)
		case TypeAck:
			m = Ack(n)
		case TypeWindowAckSize:
			m = WindowAckSize(n)
		case TypeSetPeerBandwidth:
			m = SetPeerBandwidth(n, limit)
		}
		if !bytes.HasPrefix(p, m.Payload) {
			t.Fatalf("re-encoded %x is not a prefix of %x", m.Payload, p)
		}
	})
}

func FuzzDecodeUserControl(f *testing.F) {
	for _, tc := range userControlCases {
		f.Add(mustHex(tc.bytes))
	}
	f.Fuzz(func(t *testing.T, p []byte) {
		u, err := DecodeUserControl(p)
		if err != nil {
			return
		}
		enc := u.Message().Payload
		if !bytes.HasPrefix(p, enc) {
			t.Fatalf("re-encoded %x is not a prefix of %x", enc, p)
		}
		u2, err := DecodeUserControl(enc)
		if err != nil || !reflect.DeepEqual(u, u2) {
			t.Fatalf("round trip: %+v -> %x -> %+v, %v", u, enc, u2, err)
		}
	})
}
