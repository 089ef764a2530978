package amf

import (
	"bytes"
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

const acName = "flex.messaging.io.ArrayCollection" // 33 bytes: U29 0x43

// amf3Rows seeds the AMF3 decode, encode, round-trip and fuzz tests. Each
// row is a sequence of values sharing one set of reference tables.
var amf3Rows = []row{
	{name: "undefined", vals: vals(Undefined{}), wire: hx("00")},
	{name: "null", vals: vals(nil), wire: hx("01")},
	{name: "false", vals: vals(false), wire: hx("02")},
	{name: "true", vals: vals(true), wire: hx("03")},
	{name: "integer 0", vals: vals(int32(0)), wire: hx("04 00")},
	{name: "integer 127", vals: vals(int32(127)), wire: hx("04 7F")},
	{name: "integer 128", vals: vals(int32(128)), wire: hx("04 81 00")},
	{name: "integer 16383", vals: vals(int32(16383)), wire: hx("04 FF 7F")},
	{name: "integer 16384", vals: vals(int32(16384)), wire: hx("04 81 80 00")},
	{name: "integer 2097151", vals: vals(int32(2097151)), wire: hx("04 FF FF 7F")},
	{name: "integer 2097152", vals: vals(int32(2097152)), wire: hx("04 80 C0 80 00")},
	{name: "integer max", vals: vals(int32(1<<28 - 1)), wire: hx("04 BF FF FF FF")},
	{name: "integer -1", vals: vals(int32(-1)), wire: hx("04 FF FF FF FF")},
	{name: "integer min", vals: vals(int32(-1 << 28)), wire: hx("04 C0 80 80 00")},
	{name: "integer, long form of 1", vals: vals(int32(1)), wire: hx("04 80 80 01"), decodeOnly: true},
	{name: "double", vals: vals(1.5), wire: hx("05 3FF8000000000000")},
	{name: "double NaN", vals: vals(math.NaN()), wire: hx("05 7FF8000000000001")},
	{name: "double -0", vals: vals(math.Copysign(0, -1)), wire: hx("05 8000000000000000")},
	{name: "empty string", vals: vals(""), wire: hx("06 01")},
	{name: "string", vals: vals("foo"), wire: hx("06 07 666F6F")},
	{
		name: "string references",
		vals: vals([]any{"foo", "foo", "bar", "foo", ""}),
		wire: hx("09 0B 01  06 07 666F6F  06 00  06 07 626172  06 00  06 01"),
	},
	{
		name: "string references across values",
		vals: vals("foo", "bar", "foo", "bar"),
		wire: hx("06 07 666F6F  06 07 626172  06 00  06 02"),
	},
	{
		name: "string of 200 bytes",
		vals: vals(strings.Repeat("s", 200)),
		wire: cat(hx("06 83 11"), []byte(strings.Repeat("s", 200))),
	},
	{name: "XML document", vals: vals(XMLDocument("<a/>")), wire: hx("07 09 3C612F3E")},
	{name: "XML", vals: vals(XML("<a/>")), wire: hx("0B 09 3C612F3E")},
	{
		name: "date",
		vals: vals(time.UnixMilli(1700000000123).UTC()),
		wire: cat(hx("08 01"), f64b(1700000000123)),
	},
	{
		name:       "date reference",
		vals:       vals([]any{time.UnixMilli(0).UTC(), time.UnixMilli(0).UTC()}),
		wire:       cat(hx("09 05 01 08 01"), f64b(0), hx("08 02")),
		decodeOnly: true,
	},
	{name: "empty array", vals: vals([]any{}), wire: hx("09 01 01")},
	{
		name: "dense array",
		vals: vals([]any{int32(1), "a", nil}),
		wire: hx("09 07 01 04 01 06 03 61 01"),
	},
	{
		name: "mixed array",
		vals: vals(MixedArray{Dense: []any{int32(7)}, Assoc: Object{{"k", "v"}}}),
		wire: hx("09 03 03 6B 06 03 76 01 04 07"),
	},
	{
		name: "associative array",
		vals: vals(MixedArray{Dense: []any{}, Assoc: Object{{"k", int32(1)}}}),
		wire: hx("09 01 03 6B 04 01 01"),
	},
	{
		name:       "array reference",
		vals:       vals([]any{[]any{}, []any{}}),
		wire:       hx("09 05 01 09 01 01 09 02"),
		decodeOnly: true,
	},
	{name: "empty anonymous object", vals: vals(Object{}), wire: hx("0A 0B 01 01")},
	{
		name: "anonymous object",
		vals: vals(Object{{"a", int32(1)}, {"b", "x"}}),
		wire: hx("0A 0B 01 03 61 04 01 03 62 06 03 78 01"),
	},
	{
		name: "trait reference, anonymous objects",
		vals: vals([]any{Object{{"a", int32(1)}}, Object{{"a", int32(2)}}}),
		wire: hx("09 05 01  0A 0B 01 03 61 04 01 01  0A 01 00 04 02 01"),
	},
	{
		name: "typed objects with sealed members and a trait reference",
		vals: vals([]any{
			TypedObject{Class: "P", Props: Object{{"x", int32(1)}, {"y", int32(2)}}},
			TypedObject{Class: "P", Props: Object{{"x", int32(3)}, {"y", int32(4)}}},
		}),
		wire: hx("09 05 01  0A 23 03 50 03 78 03 79 04 01 04 02  0A 01 04 03 04 04"),
	},
	{
		name: "trait reference across values",
		vals: vals(Object{{"a", nil}}, Object{{"a", nil}}),
		wire: hx("0A 0B 01 03 61 01 01  0A 01 00 01 01"),
	},
	{
		name:       "typed object, sealed and dynamic members",
		vals:       vals(TypedObject{Class: "P", Props: Object{{"x", int32(1)}, {"d", true}}}),
		wire:       hx("0A 1B 03 50 03 78 04 01 03 64 03 01"),
		decodeOnly: true,
	},
	{
		name:       "anonymous object, sealed members",
		vals:       vals(Object{{"x", int32(1)}}),
		wire:       hx("0A 13 01 03 78 04 01"),
		decodeOnly: true,
	},
	{
		name: "anonymous object with an empty key",
		vals: vals(Object{{"", int32(1)}}),
		wire: hx("0A 13 01 01 04 01"),
	},
	{
		name:       "object reference",
		vals:       vals([]any{Object{}, Object{}}),
		wire:       hx("09 05 01 0A 0B 01 01 0A 02"),
		decodeOnly: true,
	},
	{
		name: "ArrayCollection",
		vals: vals(TypedObject{Class: acName, Props: Object{{"source", []any{int32(1)}}}}),
		wire: cat(hx("0A 07 43"), []byte(acName), hx("09 03 01 04 01")),
	},
	{
		name: "ArrayCollection twice, trait and string references",
		vals: vals(
			TypedObject{Class: acName, Props: Object{{"source", []any{}}}},
			TypedObject{Class: acName, Props: Object{{"source", []any{}}}},
		),
		wire: cat(hx("0A 07 43"), []byte(acName), hx("09 01 01  0A 01 09 01 01")),
	},
	{
		name: "ObjectProxy",
		vals: vals(TypedObject{Class: "flex.messaging.io.ObjectProxy", Props: Object{{"object", Object{}}}}),
		wire: cat(hx("0A 07 3B"), []byte("flex.messaging.io.ObjectProxy"), hx("0A 0B 01 01")),
	},
	{name: "byte array", vals: vals(ByteArray{1, 2, 3}), wire: hx("0C 07 010203")},
	{name: "empty byte array", vals: vals(ByteArray{}), wire: hx("0C 01")},
	{
		name: "vector int",
		vals: vals(VectorInt{Items: []int32{1, -1}}),
		wire: hx("0D 05 00 00000001 FFFFFFFF"),
	},
	{
		name: "fixed vector uint",
		vals: vals(VectorUint{Fixed: true, Items: []uint32{0xFFFFFFFF}}),
		wire: hx("0E 03 01 FFFFFFFF"),
	},
	{
		name: "vector double",
		vals: vals(VectorDouble{Items: []float64{1.5}}),
		wire: hx("0F 03 00 3FF8000000000000"),
	},
	{
		name: "vector object",
		vals: vals(VectorObject{Class: "*", Items: []any{"a", int32(1)}}),
		wire: hx("10 05 00 03 2A 06 03 61 04 01"),
	},
	{name: "empty vector int", vals: vals(VectorInt{Items: []int32{}}), wire: hx("0D 01 00")},
	{
		name: "dictionary",
		vals: vals(Dictionary{Entries: []DictEntry{{"k", int32(1)}, {int32(2), []any{}}}}),
		wire: hx("11 05 00  06 03 6B 04 01  04 02 09 01 01"),
	},
	{
		name: "weak dictionary, object key",
		vals: vals(Dictionary{WeakKeys: true, Entries: []DictEntry{{Object{}, nil}}}),
		wire: hx("11 03 01 0A 0B 01 01 01"),
	},
	{
		// What a Flash client sends as a shared object slot value.
		name: "nested structure",
		vals: vals(Object{
			{"user", TypedObject{Class: "User", Props: Object{{"name", "ann"}, {"age", int32(30)}}}},
			{"tags", []any{"a", "b"}},
			{"when", time.UnixMilli(86400000).UTC()},
			{"score", 2.5},
		}),
		wire: cat(hx("0A 0B 01"),
			hx("09 75736572"), hx("0A 23 09 55736572 09 6E616D65 07 616765"), s3("ann"), hx("04 1E"),
			hx("09 74616773 09 05 01"), s3("a"), s3("b"),
			hx("09 7768656E 08 01"), f64b(86400000),
			hx("0B 73636F7265 05"), f64b(2.5),
			hx("01")),
	},
}

// amf3EncodeRows are Go values that only encode.
var amf3EncodeRows = []row{
	{name: "int", vals: vals(5), wire: hx("04 05")},
	{name: "int -1", vals: vals(-1), wire: hx("04 FF FF FF FF")},
	{name: "int beyond 29 bits", vals: vals(1 << 28), wire: cat(hx("05"), f64b(1<<28))},
	{name: "int below 29 bits", vals: vals(-1<<28 - 1), wire: cat(hx("05"), f64b(-1<<28-1))},
	{name: "uint64 max", vals: vals(uint64(math.MaxUint64)), wire: cat(hx("05"), f64b(math.MaxUint64))},
	{name: "uint32", vals: vals(uint32(300)), wire: hx("04 82 2C")},
	{name: "float32", vals: vals(float32(2)), wire: cat(hx("05"), f64b(2))},
	{name: "float64 integral stays double", vals: vals(2.0), wire: cat(hx("05"), f64b(2))},
	{name: "[]byte", vals: vals([]byte{7}), wire: hx("0C 03 07")},
	{name: "[]string", vals: vals([]string{"a", "a"}), wire: hx("09 05 01 06 03 61 06 00")},
	{name: "[]float64", vals: vals([]float64{1}), wire: cat(hx("09 03 01 05"), f64b(1))},
	{name: "map", vals: vals(map[string]any{"b": nil, "a": nil}), wire: hx("0A 0B 01 03 61 01 03 62 01 01")},
	{name: "ECMA array", vals: vals(ECMAArray{{"k", 1}}), wire: hx("09 01 03 6B 04 01 01")},
	{name: "Unsupported", vals: vals(Unsupported{}), wire: hx("00")},
	{name: "AVMPlus", vals: vals(AVMPlus{true}), wire: hx("03")},
	{name: "typed object, empty class", vals: vals(TypedObject{Props: Object{{"a", nil}}}), wire: hx("0A 0B 01 03 61 01 01")},
	{
		name: "ObjectProxy with other members is sealed",
		vals: vals(TypedObject{Class: "flex.messaging.io.ObjectProxy", Props: Object{{"x", nil}}}),
		wire: cat(hx("0A 13 3B"), []byte("flex.messaging.io.ObjectProxy"), hx("03 78 01")),
	},
	{
		name: "same pointer twice is an object reference",
		vals: func() []any {
			p := &Object{{"a", nil}}
			return vals([]any{p, p, Object{}})
		}(),
		wire: hx("09 07 01  0A 0B 01 03 61 01 01  0A 02  0A 01 01"),
	},
	{
		name: "same *TypedObject twice",
		vals: func() []any {
			p := &TypedObject{Class: "C"}
			return vals(p, p)
		}(),
		wire: hx("0A 03 03 43  0A 00"),
	},
	{name: "nil pointers", vals: vals((*Object)(nil), (*TypedObject)(nil), (*ECMAArray)(nil), (*Dictionary)(nil)), wire: hx("01 01 01 01")},
	{name: "*Dictionary", vals: vals(&Dictionary{}), wire: hx("11 01 00")},
}

var amf3ErrRows = []errRow{
	{name: "empty", wire: nil, want: ErrTruncated},
	{name: "unknown marker", wire: hx("12")},
	{name: "integer truncated", wire: hx("04 80"), want: ErrTruncated},
	{name: "double truncated", wire: hx("05 00"), want: ErrTruncated},
	{name: "string truncated", wire: hx("06 07 61"), want: ErrTruncated},
	{name: "string length 2^28-1", wire: hx("06 FF FF FF FF 61"), want: ErrTruncated},
	{name: "string reference with empty table", wire: hx("06 00")},
	{name: "string reference out of range", wire: hx("09 05 01 06 03 61 06 02")},
	{name: "date truncated", wire: hx("08 01 00"), want: ErrTruncated},
	{name: "date NaN", wire: hx("08 01 7FF8000000000000")},
	{name: "array count 1e8, 20 bytes left", wire: cat(hx("09"), appendU29(nil, 1e8<<1|1), hx("01"), bytes.Repeat([]byte{1}, 20)), want: ErrTruncated},
	{name: "array count max", wire: hx("09 FF FF FF FF 01 01"), want: ErrTruncated},
	{name: "array assoc without end", wire: hx("09 01 03 6B 01"), want: ErrTruncated},
	{name: "object reference with empty table", wire: hx("0A 00")},
	{name: "object reference to itself", wire: hx("09 03 01 09 00")},
	{name: "object reference out of range", wire: hx("09 03 01 0A 02")},
	{name: "trait reference with empty table", wire: hx("0A 01")},
	{name: "trait reference out of range", wire: hx("09 05 01 0A 0B 01 01 0A 05")},
	{name: "sealed count 2^25-1, little input", wire: hx("0A FF FF FF F3 01 01"), want: ErrTruncated},
	{name: "sealed values missing", wire: hx("0A 23 03 50 03 78 03 79 04 01"), want: ErrTruncated},
	{name: "trait reference with many sealed members, little input", wire: cat(hx("09 05 01 0A 43 01"), bytes.Repeat(hx("03 61"), 4), hx("01 01 01 01"), hx("0A 01 01")), want: ErrTruncated},
	{name: "dynamic member without end", wire: hx("0A 0B 01 03 61 01"), want: ErrTruncated},
	{name: "unknown externalizable class", wire: hx("0A 07 03 58 01")},
	{name: "externalizable truncated", wire: cat(hx("0A 07 43"), []byte(acName)), want: ErrTruncated},
	{name: "byte array length beyond input", wire: hx("0C FF FF FF FF 00"), want: ErrTruncated},
	{name: "XML truncated", wire: hx("0B 09 3C"), want: ErrTruncated},
	{name: "vector int count 2^28-1", wire: hx("0D FF FF FF FF 00 00000001"), want: ErrTruncated},
	{name: "vector uint short", wire: hx("0E 05 00 00000001"), want: ErrTruncated},
	{name: "vector double count 1e6, 8 bytes", wire: cat(hx("0F"), appendU29(nil, 1e6<<1|1), hx("00"), f64b(1)), want: ErrTruncated},
	{name: "vector object count huge", wire: hx("10 FF FF FF FF 00 01 01"), want: ErrTruncated},
	{name: "vector fixed flag missing", wire: hx("0D 03"), want: ErrTruncated},
	{name: "dictionary count huge", wire: hx("11 FF FF FF FF 00 01 01"), want: ErrTruncated},
	{name: "dictionary value missing", wire: hx("11 03 00 01"), want: ErrTruncated},
	{name: "nesting 65 deep", wire: cat(bytes.Repeat(hx("09 03 01"), 65), hx("01")), want: ErrDepth},
	{name: "objects nested 100 deep", wire: cat(hx("0A 0B 01 03 61"), bytes.Repeat(hx("0A 01 00"), 100)), want: ErrDepth},
	{name: "object references doubling 40 times", wire: doublingRefs3(40), want: ErrTooLarge},
	{name: "string references to a long string", wire: stringRefs3(1<<20, 100), want: ErrTooLarge},
}

// doublingRefs3 builds an array whose element i is an array referencing
// element i-1 twice.
func doublingRefs3(levels int) []byte {
	b := cat(hx("09"), appendU29(nil, uint32(levels+1)<<1|1), hx("01  09 03 01"), s3("zzzz"))
	for i := 1; i <= levels; i++ {
		r := appendU29([]byte{marker3Array}, uint32(i)<<1) // element i-1 is object i
		b = cat(b, hx("09 05 01"), r, r)
	}
	return b
}

// stringRefs3 builds an array of one string of size bytes and n references.
func stringRefs3(n, size int) []byte {
	b := cat(hx("09"), appendU29(nil, uint32(n+1)<<1|1), hx("01 06"), appendU29(nil, uint32(size)<<1|1), bytes.Repeat([]byte{'x'}, size))
	return cat(b, bytes.Repeat(hx("06 00"), n))
}

func TestDecodeAMF3(t *testing.T) {
	for _, r := range amf3Rows {
		if r.encodeOnly {
			continue
		}
		t.Run(r.name, func(t *testing.T) {
			got, err := Unmarshal3(r.wire)
			if err != nil {
				t.Fatalf("Unmarshal3: %v", err)
			}
			if !equalValues(got, r.vals, false) {
				t.Fatalf("got  %#v\nwant %#v", got, r.vals)
			}
		})
	}
}

func TestEncodeAMF3(t *testing.T) {
	for _, r := range append(amf3Rows[:len(amf3Rows):len(amf3Rows)], amf3EncodeRows...) {
		if r.decodeOnly {
			continue
		}
		t.Run(r.name, func(t *testing.T) {
			got, err := Marshal3(r.vals...)
			if err != nil {
				t.Fatalf("Marshal3: %v", err)
			}
			if !bytes.Equal(got, r.wire) {
				t.Fatalf("got  % X\nwant % X", got, r.wire)
			}
		})
	}
}

func TestRoundTripAMF3(t *testing.T) {
	for _, r := range amf3Rows {
		t.Run(r.name, func(t *testing.T) {
			b, err := Marshal3(r.vals...)
			if err != nil {
				t.Fatalf("Marshal3: %v", err)
			}
			got, err := Unmarshal3(b)
			if err != nil {
				t.Fatalf("Unmarshal3: %v", err)
			}
			if !equalValues(got, r.vals, false) {
				t.Fatalf("got  %#v\nwant %#v", got, r.vals)
			}
			// The same values behind AVM+ switches in AMF0.
			var e Encoder
			for _, v := range r.vals {
				if err := e.EncodeAMF0(AVMPlus{v}); err != nil {
					t.Fatalf("EncodeAMF0: %v", err)
				}
			}
			got, err = Unmarshal0(e.Bytes())
			if err != nil {
				t.Fatalf("Unmarshal0: %v", err)
			}
			if !equalValues(got, r.vals, false) {
				t.Fatalf("through AVM+: got  %#v\nwant %#v", got, r.vals)
			}
		})
	}
}

func TestDecodeAMF3Errors(t *testing.T) {
	for _, r := range amf3ErrRows {
		t.Run(r.name, func(t *testing.T) {
			v, err := NewDecoder(r.wire).DecodeAMF3()
			if err == nil {
				t.Fatalf("decoded %#v, want an error", v)
			}
			if r.want != nil && !errors.Is(err, r.want) {
				t.Fatalf("error %v, want %v", err, r.want)
			}
			if !strings.HasPrefix(err.Error(), "amf3: ") || len(err.Error()) > 400 {
				t.Fatalf("error %q: want the amf3 prefix and a short message", err)
			}
		})
	}
}

func TestEncodeAMF3Errors(t *testing.T) {
	for _, c := range []struct {
		name string
		v    any
		want error
	}{
		{"unsupported type", struct{}{}, ErrUnsupportedType},
		{"unsupported in a vector", VectorObject{Items: []any{[]int{}}}, ErrUnsupportedType},
		{"empty key in ECMA array", ECMAArray{{"", 1}}, ErrUnencodable},
		{"empty key in mixed array", MixedArray{Assoc: Object{{"", 1}}}, ErrUnencodable},
		{"deep", deepArray(70), ErrDepth},
	} {
		t.Run(c.name, func(t *testing.T) {
			var e Encoder
			if err := e.EncodeAMF3("kept"); err != nil {
				t.Fatal(err)
			}
			before := bytes.Clone(e.Bytes())
			err := e.EncodeAMF3(Object{{"new", "strings"}, {"x", c.v}})
			if !errors.Is(err, c.want) {
				t.Fatalf("error %v, want %v", err, c.want)
			}
			if !bytes.Equal(e.Bytes(), before) {
				t.Fatalf("failed encode left % X", e.Bytes())
			}
			// The tables were rolled back: "strings" is written inline,
			// "kept" by reference, and the anonymous traits inline again.
			if err := e.EncodeAMF3(vals("strings", "kept", Object{})); err != nil {
				t.Fatal(err)
			}
			want := cat(before, hx("09 07 01"), s3("strings"), hx("06 00 0A 0B 01 01"))
			if !bytes.Equal(e.Bytes(), want) {
				t.Fatalf("after rollback got % X\nwant % X", e.Bytes(), want)
			}
		})
	}
}

func deepArray(n int) any {
	var v any
	for range n {
		v = []any{v}
	}
	return v
}

// Encoder tables live across calls until Reset.
func TestEncoderTables(t *testing.T) {
	var e Encoder
	e.EncodeAMF3("abc")
	e.EncodeAMF3("abc")
	if want := hx("06 07 616263 06 00"); !bytes.Equal(e.Bytes(), want) {
		t.Fatalf("got % X, want % X", e.Bytes(), want)
	}
	e.Reset()
	e.EncodeAMF3("abc")
	if want := hx("06 07 616263"); !bytes.Equal(e.Bytes(), want) {
		t.Fatalf("after Reset got % X, want % X", e.Bytes(), want)
	}
	buf := []byte{0xEE}
	e.ResetTo(buf)
	e.EncodeAMF0(nil)
	if want := hx("EE 05"); !bytes.Equal(e.Bytes(), want) {
		t.Fatalf("after ResetTo got % X, want % X", e.Bytes(), want)
	}
}

func TestEncoderNoReferences(t *testing.T) {
	p := &Object{{"k", "k"}}
	v := []any{p, p, TypedObject{Class: "C"}, TypedObject{Class: "C"}}
	e := Encoder{NoReferences: true}
	if err := e.EncodeAMF3(v); err != nil {
		t.Fatal(err)
	}
	want := hx(`09 09 01
		0A 0B 01 03 6B 06 03 6B 01
		0A 0B 01 03 6B 06 03 6B 01
		0A 03 03 43
		0A 03 03 43`)
	if !bytes.Equal(e.Bytes(), want) {
		t.Fatalf("got  % X\nwant % X", e.Bytes(), want)
	}
	got, err := Unmarshal3(e.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	wantV := []any{[]any{Object{{"k", "k"}}, Object{{"k", "k"}}, TypedObject{Class: "C", Props: Object{}}, TypedObject{Class: "C", Props: Object{}}}}
	if !equalValues(got, wantV, false) {
		t.Fatalf("got %#v", got)
	}
}

// Decoded byte arrays do not alias the input.
func TestByteArrayCopied(t *testing.T) {
	in := hx("0C 03 07")
	v, err := NewDecoder(in).DecodeAMF3()
	if err != nil {
		t.Fatal(err)
	}
	in[2] = 0
	if v.(ByteArray)[0] != 7 {
		t.Fatal("byte array aliases the input")
	}
}

// SetInput keeps the tables, as shared object events need.
func TestDecoderSetInput(t *testing.T) {
	d := NewDecoder(hx("06 07 616263"))
	if _, err := d.DecodeAMF3(); err != nil {
		t.Fatal(err)
	}
	d.SetInput(hx("06 00"))
	v, err := d.DecodeAMF3()
	if err != nil || v != "abc" {
		t.Fatalf("got %v, %v", v, err)
	}
}
