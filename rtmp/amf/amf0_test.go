package amf

import (
	"bytes"
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

var longString = strings.Repeat("x", 70000)

// amf0Rows seeds the AMF0 decode, encode, round-trip and fuzz tests.
var amf0Rows = []row{
	{name: "number", vals: vals(1.5), wire: hx("00 3FF8000000000000")},
	{name: "number zero", vals: vals(0.0), wire: hx("00 0000000000000000")},
	{name: "number NaN", vals: vals(math.NaN()), wire: hx("00 7FF8000000000001")},
	{name: "boolean true", vals: vals(true), wire: hx("01 01")},
	{name: "boolean false", vals: vals(false), wire: hx("01 00")},
	{name: "boolean nonzero", vals: vals(true), wire: hx("01 7F"), decodeOnly: true},
	{name: "string", vals: vals("foo"), wire: hx("02 0003 666F6F")},
	{name: "empty string", vals: vals(""), wire: hx("02 0000")},
	{name: "utf-8 string", vals: vals("héllo"), wire: hx("02 0006 68C3A96C6C6F")},
	{name: "long string", vals: vals(longString), wire: cat(hx("0C 00011170"), []byte(longString))},
	{name: "short long string", vals: vals("ab"), wire: hx("0C 00000002 6162"), decodeOnly: true},
	{name: "null", vals: vals(nil), wire: hx("05")},
	{name: "undefined", vals: vals(Undefined{}), wire: hx("06")},
	{name: "unsupported", vals: vals(Unsupported{}), wire: hx("0D")},
	{name: "empty object", vals: vals(Object{}), wire: hx("03 000009")},
	{
		name: "object",
		vals: vals(Object{{"a", 1.0}, {"b", "x"}}),
		wire: cat([]byte{3}, k0("a"), n0(1), k0("b"), s0("x"), end0),
	},
	{
		name: "object with empty key",
		vals: vals(Object{{"", true}}),
		wire: cat([]byte{3}, k0(""), b0(true), end0),
	},
	{
		name: "nested object",
		vals: vals(Object{{"o", Object{{"p", nil}}}}),
		wire: cat([]byte{3}, k0("o"), []byte{3}, k0("p"), []byte{5}, end0, end0),
	},
	{name: "empty ECMA array", vals: vals(ECMAArray{}), wire: hx("08 00000000 000009")},
	{
		name: "ECMA array",
		vals: vals(ECMAArray{{"0", "a"}, {"1", "b"}}),
		wire: cat(hx("08 00000002"), k0("0"), s0("a"), k0("1"), s0("b"), end0),
	},
	{
		name: "ECMA array, wrong count",
		vals: vals(ECMAArray{{"k", 1.0}}),
		wire: cat(hx("08 00000063"), k0("k"), n0(1), end0), decodeOnly: true,
	},
	{
		name: "ECMA array, end marker missing at end of input",
		vals: vals(ECMAArray{{"k", 1.0}}),
		wire: cat(hx("08 00000001"), k0("k"), n0(1)), decodeOnly: true,
	},
	{name: "empty strict array", vals: vals([]any{}), wire: hx("0A 00000000")},
	{
		name: "strict array",
		vals: vals([]any{1.0, "a", nil, Undefined{}}),
		wire: cat(hx("0A 00000004"), n0(1), s0("a"), hx("05 06")),
	},
	{
		name: "date",
		vals: vals(time.UnixMilli(1700000000123).UTC()),
		wire: cat([]byte{0x0B}, f64b(1700000000123), hx("0000")),
	},
	{
		name: "date with time zone and fraction",
		vals: vals(time.UnixMilli(1000).UTC()),
		wire: cat([]byte{0x0B}, f64b(1000.7), hx("FF88")), decodeOnly: true,
	},
	{name: "XML document", vals: vals(XMLDocument("<a/>")), wire: hx("0F 00000004 3C612F3E")},
	{
		name: "typed object",
		vals: vals(TypedObject{Class: "com.example.P", Props: Object{{"x", 1.0}}}),
		wire: cat([]byte{0x10}, k0("com.example.P"), k0("x"), n0(1), end0),
	},
	{
		name: "typed object, no members",
		vals: vals(TypedObject{Class: "C", Props: Object{}}),
		wire: cat([]byte{0x10}, k0("C"), end0),
	},
	{
		name:       "reference to an earlier object",
		vals:       vals([]any{Object{{"a", 1.0}}, Object{{"a", 1.0}}}),
		wire:       cat(hx("0A 00000002"), []byte{3}, k0("a"), n0(1), end0, hx("07 0001")),
		decodeOnly: true,
	},
	{
		name: "reference across values",
		vals: vals(Object{}, Object{}),
		wire: hx("03 000009 07 0000"), decodeOnly: true,
	},
	{name: "AVM+ integer", vals: vals(int32(5)), wire: hx("11 04 05"), decodeOnly: true},
	{name: "AVM+ byte array", vals: vals(ByteArray{1, 2}), wire: hx("11 0C 05 0102")},
	{name: "AVM+ XML", vals: vals(XML("<a/>")), wire: hx("11 0B 09 3C612F3E")},
	{
		name: "AVM+ vector int",
		vals: vals(VectorInt{Items: []int32{1, -1}}),
		wire: hx("11 0D 05 00 00000001 FFFFFFFF"),
	},
	{
		name: "AVM+ dictionary",
		vals: vals(Dictionary{Entries: []DictEntry{{"k", true}}}),
		wire: cat(hx("11 11 03 00"), s3("k"), hx("03")),
	},
	{
		name: "AVM+ mixed array",
		vals: vals(MixedArray{Dense: []any{}, Assoc: Object{{"k", int32(1)}}}),
		wire: cat(hx("11 09 01"), []byte{3, 'k'}, hx("04 01 01")),
	},
	{
		name: "AVM+ string tables shared across switches",
		vals: vals(VectorObject{Class: "k", Items: []any{}}, MixedArray{Dense: []any{}, Assoc: Object{{"k", nil}}}),
		wire: hx("11 10 01 00 03 6B   11 09 01 00 01 01"),
	},
	{
		name: "AVM+ object",
		vals: vals(Object{{"a", int32(1)}}),
		wire: hx("11 0A 0B 01 03 61 04 01 01"), decodeOnly: true,
	},
	{
		// ffmpeg (rtmpproto.c gen_connect) playing rtmp://localhost/live/x.
		name: "ffmpeg connect, play",
		vals: vals("connect", 1.0, Object{
			{"app", "live"},
			{"flashVer", "LNX 9,0,124,2"},
			{"tcUrl", "rtmp://localhost:1935/live"},
			{"fpad", false},
			{"capabilities", 15.0},
			{"audioCodecs", 4071.0},
			{"videoCodecs", 252.0},
			{"videoFunction", 1.0},
		}),
		wire: hx(`
			02 0007 636F6E6E656374
			00 3FF0000000000000
			03
			0003 617070 02 0004 6C697665
			0008 666C61736856657202 000D 4C4E5820392C302C3132342C32
			0005 746355726C 02 001A 72746D703A2F2F6C6F63616C686F73743A313933352F6C697665
			0004 66706164 01 00
			000C 6361706162696C6974696573 00 402E000000000000
			000B 617564696F436F64656373 00 40AFCE0000000000
			000B 766964656F436F64656373 00 406F800000000000
			000D 766964656F46756E6374696F6E 00 3FF0000000000000
			000009`),
	},
	{
		// ffmpeg publishing: type and an FMLE flashVer, no capabilities.
		name: "ffmpeg connect, publish",
		vals: vals("connect", 1.0, Object{
			{"app", "live"},
			{"type", "nonprivate"},
			{"flashVer", "FMLE/3.0 (compatible; Lavf61.1.100)"},
			{"tcUrl", "rtmp://localhost:1935/live"},
		}),
		wire: cat(s0("connect"), n0(1), []byte{3},
			k0("app"), s0("live"),
			k0("type"), s0("nonprivate"),
			k0("flashVer"), s0("FMLE/3.0 (compatible; Lavf61.1.100)"),
			k0("tcUrl"), s0("rtmp://localhost:1935/live"),
			end0),
	},
	{
		// The data message an encoder sends before media.
		name: "@setDataFrame onMetaData",
		vals: vals("@setDataFrame", "onMetaData", metaData),
		wire: cat(s0("@setDataFrame"), s0("onMetaData"), hx("08 0000000D"),
			k0("duration"), n0(0),
			k0("width"), n0(1280),
			k0("height"), n0(720),
			k0("videodatarate"), n0(2500),
			k0("framerate"), n0(30),
			k0("videocodecid"), n0(7),
			k0("audiodatarate"), n0(160),
			k0("audiosamplerate"), n0(44100),
			k0("audiosamplesize"), n0(16),
			k0("stereo"), b0(true),
			k0("audiocodecid"), n0(10),
			k0("encoder"), s0("Lavf61.1.100"),
			k0("filesize"), n0(0),
			end0),
	},
	{
		name: "_result of connect",
		vals: vals("_result", 1.0,
			Object{{"fmsVer", "FMS/3,5,5,2004"}, {"capabilities", 31.0}, {"mode", 1.0}},
			Object{
				{"level", "status"},
				{"code", "NetConnection.Connect.Success"},
				{"description", "Connection succeeded."},
				{"data", ECMAArray{{"version", "3,5,5,2004"}}},
				{"objectEncoding", 0.0},
			}),
		wire: cat(s0("_result"), n0(1),
			[]byte{3}, k0("fmsVer"), s0("FMS/3,5,5,2004"), k0("capabilities"), n0(31), k0("mode"), n0(1), end0,
			[]byte{3}, k0("level"), s0("status"), k0("code"), s0("NetConnection.Connect.Success"),
			k0("description"), s0("Connection succeeded."),
			k0("data"), hx("08 00000001"), k0("version"), s0("3,5,5,2004"), end0,
			k0("objectEncoding"), n0(0), end0),
	},
}

var metaData = ECMAArray{
	{"duration", 0.0},
	{"width", 1280.0},
	{"height", 720.0},
	{"videodatarate", 2500.0},
	{"framerate", 30.0},
	{"videocodecid", 7.0},
	{"audiodatarate", 160.0},
	{"audiosamplerate", 44100.0},
	{"audiosamplesize", 16.0},
	{"stereo", true},
	{"audiocodecid", 10.0},
	{"encoder", "Lavf61.1.100"},
	{"filesize", 0.0},
}

// amf0EncodeRows are Go values that only encode (they decode as other types).
var amf0EncodeRows = []row{
	{name: "int", vals: vals(7), wire: n0(7)},
	{name: "int64", vals: vals(int64(-3)), wire: n0(-3)},
	{name: "uint8", vals: vals(uint8(200)), wire: n0(200)},
	{name: "float32", vals: vals(float32(0.5)), wire: n0(0.5)},
	{name: "int32", vals: vals(int32(5)), wire: n0(5)},
	{name: "[]byte", vals: vals([]byte{9}), wire: hx("11 0C 03 09")},
	{name: "[]string", vals: vals([]string{"a"}), wire: cat(hx("0A 00000001"), s0("a"))},
	{name: "[]float64", vals: vals([]float64{2}), wire: cat(hx("0A 00000001"), n0(2))},
	{
		name: "map, keys sorted",
		vals: vals(map[string]any{"b": 2, "a": "x"}),
		wire: cat([]byte{3}, k0("a"), s0("x"), k0("b"), n0(2), end0),
	},
	{name: "*Object", vals: vals(&Object{{"a", nil}}), wire: cat([]byte{3}, k0("a"), []byte{5}, end0)},
	{name: "nil *Object", vals: vals((*Object)(nil)), wire: hx("05")},
	{
		name: "*TypedObject",
		vals: vals(&TypedObject{Class: "C"}),
		wire: cat([]byte{0x10}, k0("C"), end0),
	},
	{name: "AVMPlus string", vals: vals(AVMPlus{"ab"}), wire: hx("11 06 05 6162")},
	{name: "AVMPlus nil", vals: vals(AVMPlus{}), wire: hx("11 01")},
	{name: "local time as UTC", vals: vals(time.UnixMilli(5).In(time.FixedZone("X", 3600))), wire: cat([]byte{0x0B}, f64b(5), hx("0000"))},
}

var amf0ErrRows = []errRow{
	{name: "empty", wire: nil, want: ErrTruncated},
	{name: "truncated number", wire: hx("00 3FF0"), want: ErrTruncated},
	{name: "truncated boolean", wire: hx("01"), want: ErrTruncated},
	{name: "truncated string length", wire: hx("02 00"), want: ErrTruncated},
	{name: "truncated string", wire: hx("02 0005 6162"), want: ErrTruncated},
	{name: "long string length beyond input", wire: hx("0C FFFFFFFF 6162"), want: ErrTruncated},
	{name: "XML document length beyond input", wire: hx("0F 7FFFFFFF"), want: ErrTruncated},
	{name: "object without end", wire: cat([]byte{3}, k0("a"), n0(1)), want: ErrTruncated},
	{name: "object key truncated", wire: hx("03 00"), want: ErrTruncated},
	{name: "strict array count 1e9, 20 bytes left", wire: cat(hx("0A 3B9ACA00"), bytes.Repeat([]byte{5}, 20)), want: ErrTruncated},
	{name: "strict array count 2^32-1", wire: hx("0A FFFFFFFF 05"), want: ErrTruncated},
	{name: "strict array short", wire: hx("0A 00000002 05"), want: ErrTruncated},
	{name: "date truncated", wire: hx("0B 0000000000000000 00"), want: ErrTruncated},
	{name: "date NaN", wire: hx("0B 7FF8000000000000 0000")},
	{name: "date out of range", wire: cat([]byte{0x0B}, f64b(1e300), hx("0000"))},
	{name: "typed object class truncated", wire: hx("10 0009 41"), want: ErrTruncated},
	{name: "movieclip", wire: hx("04")},
	{name: "recordset", wire: hx("0E")},
	{name: "object end alone", wire: hx("09")},
	{name: "unknown marker", wire: hx("12")},
	{name: "unknown marker 0xFF", wire: hx("FF")},
	{name: "reference with empty table", wire: hx("07 0000")},
	{name: "reference out of range", wire: hx("0A 00000001 07 0001")},
	{name: "reference to itself", wire: hx("0A 00000001 07 0000")},
	{name: "reference truncated", wire: hx("07 00"), want: ErrTruncated},
	{name: "AVM+ switch truncated", wire: hx("11"), want: ErrTruncated},
	{name: "AVM+ bad AMF3", wire: hx("11 FF")},
	{name: "nesting 65 deep", wire: cat(bytes.Repeat(hx("0A 00000001"), 65), hx("05")), want: ErrDepth},
	{name: "nested objects 100 deep", wire: bytes.Repeat(cat([]byte{3}, k0("a")), 100), want: ErrDepth},
	{name: "references doubling 40 times", wire: doublingRefs0(40), want: ErrTooLarge},
}

// doublingRefs0 builds a strict array whose element i is a two-element
// strict array referencing element i-1 twice: few bytes, 2^levels values.
func doublingRefs0(levels int) []byte {
	// The outer array is reference 0; element 0 (reference 1) holds a
	// string; element i (reference i+1) refers to element i-1 twice.
	b := cat(hx("0A"), u32(uint32(levels+1)), hx("0A 00000001"), s0(strings.Repeat("z", 100)))
	for i := 1; i <= levels; i++ {
		r := []byte{marker0Reference, byte(i >> 8), byte(i)}
		b = cat(b, hx("0A 00000002"), r, r)
	}
	return b
}

func TestDecodeAMF0(t *testing.T) {
	for _, r := range amf0Rows {
		if r.encodeOnly {
			continue
		}
		t.Run(r.name, func(t *testing.T) {
			got, err := Unmarshal0(r.wire)
			if err != nil {
				t.Fatalf("Unmarshal0: %v", err)
			}
			if !equalValues(got, r.vals, false) {
				t.Fatalf("got  %#v\nwant %#v", got, r.vals)
			}
		})
	}
}

func TestEncodeAMF0(t *testing.T) {
	for _, r := range append(amf0Rows[:len(amf0Rows):len(amf0Rows)], amf0EncodeRows...) {
		if r.decodeOnly {
			continue
		}
		t.Run(r.name, func(t *testing.T) {
			got, err := Marshal0(r.vals...)
			if err != nil {
				t.Fatalf("Marshal0: %v", err)
			}
			if !bytes.Equal(got, r.wire) {
				t.Fatalf("got  % X\nwant % X", got, r.wire)
			}
		})
	}
}

func TestRoundTripAMF0(t *testing.T) {
	for _, r := range amf0Rows {
		t.Run(r.name, func(t *testing.T) {
			b, err := Marshal0(r.vals...)
			if err != nil {
				t.Fatalf("Marshal0: %v", err)
			}
			got, err := Unmarshal0(b)
			if err != nil {
				t.Fatalf("Unmarshal0: %v", err)
			}
			if !equalValues(got, r.vals, true) {
				t.Fatalf("got  %#v\nwant %#v", got, r.vals)
			}
		})
	}
}

func TestDecodeAMF0Errors(t *testing.T) {
	for _, r := range amf0ErrRows {
		t.Run(r.name, func(t *testing.T) {
			v, err := Unmarshal0(r.wire)
			if r.wire == nil {
				// Unmarshal0 of nothing is no values; a Decoder asked for
				// one value must fail.
				_, err = NewDecoder(nil).DecodeAMF0()
			}
			if err == nil {
				t.Fatalf("decoded %#v, want an error", v)
			}
			if r.want != nil && !errors.Is(err, r.want) {
				t.Fatalf("error %v, want %v", err, r.want)
			}
			if !strings.HasPrefix(err.Error(), "amf0: ") {
				t.Fatalf("error %q lacks the amf0 prefix", err)
			}
		})
	}
}

func TestEncodeAMF0Errors(t *testing.T) {
	type custom struct{}
	cyclic := &Object{}
	*cyclic = Object{{"self", cyclic}}
	for _, c := range []struct {
		name string
		v    any
		want error
	}{
		{"unsupported type", custom{}, ErrUnsupportedType},
		{"unsupported nested", Object{{"a", []int{1}}}, ErrUnsupportedType},
		{"key too long", Object{{strings.Repeat("k", 70000), 1}}, ErrUnencodable},
		{"class too long", TypedObject{Class: strings.Repeat("c", 70000)}, ErrUnencodable},
		{"cycle", cyclic, ErrDepth},
		{"AVM+ empty key", AVMPlus{ECMAArray{{"", 1}}}, ErrUnencodable},
		{"date beyond ActionScript", time.Date(300000, 1, 1, 0, 0, 0, 0, time.UTC), ErrUnencodable},
	} {
		t.Run(c.name, func(t *testing.T) {
			var e Encoder
			e.Write([]byte{0xAA})
			err := e.EncodeAMF0(c.v)
			if !errors.Is(err, c.want) {
				t.Fatalf("error %v, want %v", err, c.want)
			}
			if !bytes.Equal(e.Bytes(), []byte{0xAA}) {
				t.Fatalf("failed encode left % X", e.Bytes())
			}
		})
	}
	if err := new(Encoder).EncodeAMF0(struct{}{}); err == nil || !strings.Contains(err.Error(), "struct {}") {
		t.Fatalf("error %v does not name the type", err)
	}
}

// A Decoder keeps AMF0 reference tables across calls; Reset clears them.
func TestDecoderTablesAcrossCalls(t *testing.T) {
	d := NewDecoder(hx("03 000009 07 0000"))
	if _, err := d.DecodeAMF0(); err != nil {
		t.Fatal(err)
	}
	if _, err := d.DecodeAMF0(); err != nil {
		t.Fatalf("reference to the previous call's object: %v", err)
	}
	d.Reset(hx("07 0000"))
	if _, err := d.DecodeAMF0(); err == nil {
		t.Fatal("reference survived Reset")
	}
	if d.Len() != 0 {
		t.Fatalf("Len = %d after a truncated read", d.Len())
	}
}

func TestDecoderLimits(t *testing.T) {
	d := NewDecoder(cat(bytes.Repeat(hx("0A 00000001"), 3), hx("05")))
	d.MaxDepth = 2
	if _, err := d.DecodeAMF0(); !errors.Is(err, ErrDepth) {
		t.Fatalf("MaxDepth 2: %v", err)
	}
	d = NewDecoder(s0(strings.Repeat("s", 100)))
	d.MaxSize = 50
	if _, err := d.DecodeAMF0(); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("MaxSize 50: %v", err)
	}
	// Doubling references stay within the limit for a few levels.
	if _, err := Unmarshal0(doublingRefs0(8)); err != nil {
		t.Fatalf("8 levels: %v", err)
	}
}

func TestObjectMethods(t *testing.T) {
	o := Object{{"a", 1.0}, {"b", "x"}, {"a", 2.0}}
	if v, ok := o.Get("a"); !ok || v != 1.0 {
		t.Fatalf("Get a = %v %v", v, ok)
	}
	if s, ok := o.GetString("b"); !ok || s != "x" {
		t.Fatalf("GetString b = %q %v", s, ok)
	}
	if _, ok := o.GetString("a"); ok {
		t.Fatal("GetString of a number")
	}
	if n, ok := o.GetNumber("a"); !ok || n != 1 {
		t.Fatalf("GetNumber a = %v %v", n, ok)
	}
	o.Set("b", "y")
	o.Set("c", true)
	if !o.Delete("a") || o.Delete("zz") {
		t.Fatal("Delete")
	}
	want := Object{{"b", "y"}, {"c", true}}
	if !equalValues(o, want, false) {
		t.Fatalf("got %v, want %v", o, want)
	}
	var a ECMAArray
	a.Set("k", int32(3))
	if n, ok := a.GetNumber("k"); !ok || n != 3 {
		t.Fatalf("ECMAArray GetNumber = %v %v", n, ok)
	}
	if !a.Delete("k") || len(a) != 0 {
		t.Fatalf("ECMAArray Delete: %v", a)
	}
}

func TestNumber(t *testing.T) {
	for _, v := range []any{int(3), int8(3), int16(3), int32(3), int64(3), uint(3), uint8(3),
		uint16(3), uint32(3), uint64(3), uintptr(3), float32(3), float64(3)} {
		if f, ok := Number(v); !ok || f != 3 {
			t.Errorf("Number(%T) = %v %v", v, f, ok)
		}
	}
	for _, v := range []any{nil, "3", true, Undefined{}} {
		if _, ok := Number(v); ok {
			t.Errorf("Number(%T) ok", v)
		}
	}
}
