package message

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/rtmphub/rtmphub/rtmp/amf"
)

func soHex(s string) []byte {
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		panic(err)
	}
	return b
}

func soCat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// soStr is a u16-length string.
func soStr(s string) []byte { return append(binary.BigEndian.AppendUint16(nil, uint16(len(s))), s...) }

// soHdr is a header: name, version, flags, reserved zero.
func soHdr(name string, version, flags uint32) []byte {
	b := soStr(name)
	b = binary.BigEndian.AppendUint32(b, version)
	b = binary.BigEndian.AppendUint32(b, flags)
	return binary.BigEndian.AppendUint32(b, 0)
}

// soEv is an event: type, body length, body.
func soEv(t SOEventType, body ...[]byte) []byte {
	b := soCat(body...)
	return soCat([]byte{byte(t)}, binary.BigEndian.AppendUint32(nil, uint32(len(b))), b)
}

func amf0Str(s string) []byte { return append([]byte{0x02}, soStr(s)...) }
func amf0Num(f float64) []byte {
	return binary.BigEndian.AppendUint64([]byte{0x00}, math.Float64bits(f))
}

type soRow struct {
	name       string
	amf3       bool
	msg        *SharedObjectMessage
	wire       []byte
	decodeOnly bool // wire is not what the encoder writes for msg
}

var soRows = []soRow{
	{
		name: "Use from a client",
		msg:  &SharedObjectMessage{Name: "chat", Events: []SOEvent{{Type: SOUse}}},
		wire: soHex("0004 63686174 00000000 00000000 00000000 01 00000000"),
	},
	{
		name: "Release",
		msg:  &SharedObjectMessage{Name: "chat", Version: 3, Events: []SOEvent{{Type: SORelease}}},
		wire: soCat(soHdr("chat", 3, 0), soEv(SORelease)),
	},
	{
		name: "RequestChange",
		msg: &SharedObjectMessage{Name: "so", Version: 1, Events: []SOEvent{
			{Type: SORequestChange, Key: "foo", Value: "bar"},
		}},
		wire: soCat(soHdr("so", 1, 0), soHex("03 0000000B 0003 666F6F 02 0003 626172")),
	},
	{
		name: "Use reply: UseSuccess, Clear, Changes, persistent",
		msg: &SharedObjectMessage{Name: "room", Version: 7, Persistent: true, Flags: 2, Events: []SOEvent{
			{Type: SOUseSuccess},
			{Type: SOClear},
			{Type: SOChange, Key: "topic", Value: "hello"},
			{Type: SOChange, Key: "count", Value: 2.0},
			{Type: SOChange, Key: "user", Value: amf.Object{{Key: "name", Value: "ann"}}},
		}},
		wire: soCat(soHdr("room", 7, 2), soEv(SOUseSuccess), soEv(SOClear),
			soEv(SOChange, soStr("topic"), amf0Str("hello")),
			soEv(SOChange, soStr("count"), amf0Num(2)),
			soEv(SOChange, soStr("user"), []byte{0x03}, soStr("name"), amf0Str("ann"), soHex("000009"))),
	},
	{
		name: "Success",
		msg:  &SharedObjectMessage{Name: "so", Version: 2, Events: []SOEvent{{Type: SOSuccess, Key: "foo"}}},
		wire: soCat(soHdr("so", 2, 0), soEv(SOSuccess, soStr("foo"))),
	},
	{
		name: "Success with a value",
		msg:  &SharedObjectMessage{Name: "so", Events: []SOEvent{{Type: SOSuccess, Key: "foo", Value: true}}},
		wire: soCat(soHdr("so", 0, 0), soEv(SOSuccess, soStr("foo"), soHex("01 01"))),
	},
	{
		name: "SendMessage",
		msg: &SharedObjectMessage{Name: "chat", Events: []SOEvent{
			{Type: SOSendMessage, Handler: "newMessage", Args: []any{"hi", 1.0, nil}},
		}},
		wire: soCat(soHdr("chat", 0, 0), soEv(SOSendMessage, amf0Str("newMessage"), amf0Str("hi"), amf0Num(1), []byte{0x05})),
	},
	{
		name: "SendMessage without arguments",
		msg:  &SharedObjectMessage{Name: "chat", Events: []SOEvent{{Type: SOSendMessage, Handler: "ping"}}},
		wire: soCat(soHdr("chat", 0, 0), soEv(SOSendMessage, amf0Str("ping"))),
	},
	{
		name: "Status NoWriteAccess",
		msg: &SharedObjectMessage{Name: "so", Version: 4, Events: []SOEvent{
			{Type: SOStatus, Code: "SharedObject.NoWriteAccess", Level: "error"},
		}},
		wire: soCat(soHdr("so", 4, 0), soEv(SOStatus, soStr("SharedObject.NoWriteAccess"), soStr("error"))),
	},
	{
		// A reply captured from a production server to a Use of an
		// unknown object: empty name, status event of 35 bytes.
		name: "captured server Status NoObjectFound",
		msg: &SharedObjectMessage{Events: []SOEvent{
			{Type: SOStatus, Code: "SharedObject.NoObjectFound", Level: "error"},
		}},
		wire: soHex(`0000 00000000 00000000 00000000
			07 00000023 001A 5368617265644F626A6563742E4E6F4F626A656374466F756E64 0005 6572726F72`),
	},
	{
		name: "Remove and RequestRemove",
		msg: &SharedObjectMessage{Name: "so", Flags: 0x30, Events: []SOEvent{
			{Type: SORemove, Key: "a"},
			{Type: SORequestRemove, Key: "b"},
		}},
		wire: soCat(soHdr("so", 0, 0x30), soEv(SORemove, soStr("a")), soEv(SORequestRemove, soStr("b"))),
	},
	{
		name: "unknown event type kept raw",
		msg: &SharedObjectMessage{Name: "so", Events: []SOEvent{
			{Type: 12, Raw: soHex("0003 666F6F 00000001")},
		}},
		wire: soCat(soHdr("so", 0, 0), soHex("0C 00000009 0003 666F6F 00000001")),
	},
	{
		name: "Use with an unexpected body kept raw",
		msg:  &SharedObjectMessage{Name: "so", Events: []SOEvent{{Type: SOUse, Raw: []byte{1, 2}}}},
		wire: soCat(soHdr("so", 0, 0), soEv(SOUse, []byte{1, 2})),
	},
	{
		name: "Change holding two pairs",
		msg: &SharedObjectMessage{Name: "so", Events: []SOEvent{
			{Type: SOChange, Key: "a", Value: 1.0},
			{Type: SOChange, Key: "b", Value: 2.0},
		}},
		wire:       soCat(soHdr("so", 0, 0), soEv(SOChange, soStr("a"), amf0Num(1), soStr("b"), amf0Num(2))),
		decodeOnly: true,
	},
	{
		name:       "reserved word ignored",
		msg:        &SharedObjectMessage{Name: "so", Events: []SOEvent{{Type: SOClear}}},
		wire:       soCat(soStr("so"), soHex("00000000 00000000 DEADBEEF"), soEv(SOClear)),
		decodeOnly: true,
	},
	{
		name: "persistent flag from Persistent alone",
		msg:  &SharedObjectMessage{Name: "p", Persistent: true, Flags: 2},
		wire: soHdr("p", 0, 2),
	},
	{
		name: "AVM+ value in AMF0",
		msg: &SharedObjectMessage{Name: "so", Events: []SOEvent{
			{Type: SOChange, Key: "k", Value: amf.ByteArray{1}},
		}},
		wire: soCat(soHdr("so", 0, 0), soEv(SOChange, soStr("k"), soHex("11 0C 03 01"))),
	},
	{
		name: "AMF3: RequestChange and SendMessage",
		amf3: true,
		msg: &SharedObjectMessage{Name: "so", Version: 1, Events: []SOEvent{
			{Type: SORequestChange, Key: "k", Value: amf.Object{{Key: "a", Value: int32(1)}}},
			{Type: SORequestChange, Key: "k2", Value: amf.Object{{Key: "a", Value: "a"}}},
			{Type: SOSendMessage, Handler: "msg", Args: []any{"hi", int32(-1)}},
		}},
		wire: soCat([]byte{0}, soHdr("so", 1, 0),
			soEv(SORequestChange, soStr("k"), soHex("0A 0B 01 03 61 04 01 01")),
			// no references across values, even to strings and traits
			soEv(SORequestChange, soStr("k2"), soHex("0A 0B 01 03 61 06 03 61 01")),
			soEv(SOSendMessage, amf0Str("msg"), soHex("06 05 6869 04 FF FF FF FF"))),
	},
	{
		name: "AMF3: references across events are read",
		amf3: true,
		msg: &SharedObjectMessage{Name: "so", Events: []SOEvent{
			{Type: SOChange, Key: "x", Value: "abc"},
			{Type: SOChange, Key: "y", Value: "abc"},
		}},
		wire:       soCat([]byte{0}, soHdr("so", 0, 0), soEv(SOChange, soStr("x"), soHex("06 07 616263")), soEv(SOChange, soStr("y"), soHex("06 00"))),
		decodeOnly: true,
	},
	{
		name:       "AMF3: handler as an AMF3 string",
		amf3:       true,
		msg:        &SharedObjectMessage{Name: "so", Events: []SOEvent{{Type: SOSendMessage, Handler: "go", Args: []any{true}}}},
		wire:       soCat([]byte{0}, soHdr("so", 0, 0), soEv(SOSendMessage, soHex("06 05 676F 03"))),
		decodeOnly: true,
	},
	{
		name: "AMF3 message with AMF0 values and AVM+ switches",
		amf3: true,
		msg: &SharedObjectMessage{Name: "so", Events: []SOEvent{
			{Type: SOChange, Key: "n", Value: 5.0},
			{Type: SOChange, Key: "o", Value: amf.Object{{Key: "a", Value: int32(1)}}},
			{Type: SOSendMessage, Handler: "h", Args: []any{"s"}},
		}},
		wire: soCat([]byte{0}, soHdr("so", 0, 0),
			soEv(SOChange, soStr("n"), amf0Num(5)),
			soEv(SOChange, soStr("o"), soHex("11 0A 0B 01 03 61 04 01 01")),
			soEv(SOSendMessage, amf0Str("h"), amf0Str("s"))),
		decodeOnly: true,
	},
}

var soErrRows = []struct {
	name string
	amf3 bool
	wire []byte
}{
	{"empty", false, nil},
	{"empty AMF3", true, nil},
	{"name truncated", false, soHex("0005 6162")},
	{"header truncated", false, soCat(soStr("so"), soHex("00000000 00000000"))},
	{"event length truncated", false, soCat(soHdr("so", 0, 0), soHex("04 0000"))},
	{"event length beyond input", false, soCat(soHdr("so", 0, 0), soHex("04 FFFFFFFF 0001 61"))},
	{"RequestChange without value", false, soCat(soHdr("so", 0, 0), soEv(SORequestChange, soStr("k")))},
	{"Change with empty body", false, soCat(soHdr("so", 0, 0), soEv(SOChange))},
	{"key beyond body", false, soCat(soHdr("so", 0, 0), soEv(SORemove, soHex("0009 61")))},
	{"value beyond body", false, soCat(soHdr("so", 0, 0), soHex("04 00000004 0001 61 00"), soHex("3FF0000000000000"))},
	{"Status level missing", false, soCat(soHdr("so", 0, 0), soEv(SOStatus, soStr("c")))},
	{"Status trailing bytes", false, soCat(soHdr("so", 0, 0), soEv(SOStatus, soStr("c"), soStr("l"), []byte{0}))},
	{"Remove trailing bytes after value", false, soCat(soHdr("so", 0, 0), soEv(SORemove, soStr("k"), soHex("05 05")))},
	{"handler not a string", false, soCat(soHdr("so", 0, 0), soEv(SOSendMessage, amf0Num(1)))},
	{"SendMessage empty", false, soCat(soHdr("so", 0, 0), soEv(SOSendMessage))},
	{"bad AMF value", false, soCat(soHdr("so", 0, 0), soEv(SOChange, soStr("k"), []byte{0x04}))},
	{"bad value in both encodings", true, soCat([]byte{0}, soHdr("so", 0, 0), soEv(SOChange, soStr("k"), []byte{0x12}))},
	{"hostile array count", false, soCat(soHdr("so", 0, 0), soEv(SOChange, soStr("k"), soHex("0A 7FFFFFFF 05")))},
}

func TestDecodeSharedObject(t *testing.T) {
	for _, r := range soRows {
		t.Run(r.name, func(t *testing.T) {
			got, err := DecodeSharedObject(r.wire, r.amf3)
			if err != nil {
				t.Fatalf("DecodeSharedObject: %v", err)
			}
			if !reflect.DeepEqual(got, r.msg) {
				t.Fatalf("got  %+v\nwant %+v", got, r.msg)
			}
		})
	}
}

func TestEncodeSharedObject(t *testing.T) {
	for _, r := range soRows {
		if r.decodeOnly {
			continue
		}
		t.Run(r.name, func(t *testing.T) {
			prefix := []byte{0xAB}
			got, err := EncodeSharedObject(prefix, r.msg, r.amf3)
			if err != nil {
				t.Fatalf("EncodeSharedObject: %v", err)
			}
			if want := soCat(prefix, r.wire); !bytes.Equal(got, want) {
				t.Fatalf("got  % X\nwant % X", got, want)
			}
		})
	}
}

func TestRoundTripSharedObject(t *testing.T) {
	for _, r := range soRows {
		t.Run(r.name, func(t *testing.T) {
			b, err := EncodeSharedObject(nil, r.msg, r.amf3)
			if err != nil {
				t.Fatalf("EncodeSharedObject: %v", err)
			}
			got, err := DecodeSharedObject(b, r.amf3)
			if err != nil {
				t.Fatalf("DecodeSharedObject: %v", err)
			}
			if !reflect.DeepEqual(got, r.msg) {
				t.Fatalf("got  %+v\nwant %+v", got, r.msg)
			}
		})
	}
}

func TestDecodeSharedObjectErrors(t *testing.T) {
	for _, r := range soErrRows {
		t.Run(r.name, func(t *testing.T) {
			so, err := DecodeSharedObject(r.wire, r.amf3)
			if err == nil {
				t.Fatalf("decoded %+v, want an error", so)
			}
			if !strings.HasPrefix(err.Error(), "sharedobject") {
				t.Fatalf("error %q lacks the sharedobject prefix", err)
			}
		})
	}
	_, err := DecodeSharedObject(soCat(soHdr("so", 0, 0), soHex("04 FFFFFFFF")), false)
	if !errors.Is(err, amf.ErrTruncated) {
		t.Fatalf("error %v does not wrap amf.ErrTruncated", err)
	}
}

func TestEncodeSharedObjectErrors(t *testing.T) {
	long := strings.Repeat("x", 70000)
	for _, c := range []struct {
		name string
		msg  *SharedObjectMessage
	}{
		{"name too long", &SharedObjectMessage{Name: long}},
		{"key too long", &SharedObjectMessage{Events: []SOEvent{{Type: SOChange, Key: long}}}},
		{"code too long", &SharedObjectMessage{Events: []SOEvent{{Type: SOStatus, Code: long}}}},
		{"unsupported value", &SharedObjectMessage{Events: []SOEvent{{Type: SOChange, Key: "k", Value: struct{}{}}}}},
		{"unsupported argument", &SharedObjectMessage{Events: []SOEvent{{Type: SOSendMessage, Handler: "h", Args: []any{[]int{}}}}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			dst := []byte{1, 2}
			got, err := EncodeSharedObject(dst, c.msg, false)
			if err == nil {
				t.Fatal("no error")
			}
			if !bytes.Equal(got, []byte{1, 2}) {
				t.Fatalf("failed encode returned % X", got)
			}
		})
	}
}

func TestSOEventTypeString(t *testing.T) {
	if s := SOUseSuccess.String(); s != "UseSuccess" {
		t.Errorf("SOUseSuccess = %q", s)
	}
	if s := SOEventType(0).String(); s != "SOEventType(0)" {
		t.Errorf("0 = %q", s)
	}
	if s := SOEventType(200).String(); s != "SOEventType(200)" {
		t.Errorf("200 = %q", s)
	}
}

// FuzzDecodeSharedObject checks that decoding never panics and that
// decoding is stable: once a message is decoded and re-encoded, decoding
// and encoding that again gives the same bytes.
func FuzzDecodeSharedObject(f *testing.F) {
	for _, r := range soRows {
		f.Add(r.wire, r.amf3)
	}
	for _, r := range soErrRows {
		f.Add(r.wire, r.amf3)
	}
	f.Fuzz(func(t *testing.T, b []byte, amf3 bool) {
		so, err := DecodeSharedObject(b, amf3)
		if err != nil {
			return
		}
		b1, err := EncodeSharedObject(nil, so, amf3)
		if errors.Is(err, amf.ErrUnencodable) {
			return // e.g. an empty key from AMF0 in an AMF3 array
		}
		if err != nil {
			t.Fatalf("re-encoding %+v: %v", so, err)
		}
		so1, err := DecodeSharedObject(b1, amf3)
		if err != nil {
			t.Fatalf("decoding the re-encoding % X: %v", b1, err)
		}
		b2, err := EncodeSharedObject(nil, so1, amf3)
		if err != nil {
			t.Fatalf("encoding again: %v", err)
		}
		if !bytes.Equal(b1, b2) {
			t.Fatalf("not stable:\n% X\n% X", b1, b2)
		}
	})
}
