package script

import (
	"bytes"
	"reflect"
	"testing"
	"time"

	"github.com/dop251/goja"
	"github.com/rtmphub/rtmphub/rtmp/amf"
)

// wire encodes v in AMF0 or AMF3 and decodes it again, as a value goes
// from the script to a client and back.
func wire(t *testing.T, v any, amf3 bool) any {
	t.Helper()
	var b []byte
	var err error
	if amf3 {
		b, err = amf.Marshal3(v)
	} else {
		b, err = amf.Marshal0(v)
	}
	if err != nil {
		t.Fatalf("encode %#v: %v", v, err)
	}
	var vals []any
	if amf3 {
		vals, err = amf.Unmarshal3(b)
	} else {
		vals, err = amf.Unmarshal0(b)
	}
	if err != nil || len(vals) != 1 {
		t.Fatalf("decode %#v: %v %v", v, vals, err)
	}
	return vals[0]
}

// roundTrip: a client's value → JS → what the script sends back (the
// script returns what it got).
func roundTrip(t *testing.T, vm *goja.Runtime, in any, amf3 bool) any {
	t.Helper()
	return wire(t, toAMFFor(vm, toJS(vm, wire(t, in, amf3)), amf3), amf3)
}

func TestAMFRoundTrips(t *testing.T) {
	when := time.UnixMilli(1700000000123).UTC()
	for _, tc := range []struct {
		name string
		in   any
		want any // nil: in
		// only: "0" or "3" restricts the case to one encoding
		only string
	}{
		{name: "null", in: nil},
		{name: "undefined", in: amf.Undefined{}},
		{name: "number", in: 1.5},
		{name: "string", in: "héllo"},
		{name: "bool", in: true},
		{name: "date", in: when},
		{name: "object keeps order", in: amf.Object{{Key: "b", Value: 1.0}, {Key: "a", Value: "x"}, {Key: "n", Value: nil}}},
		{name: "nested", in: amf.Object{{Key: "list", Value: []any{1.0, amf.Object{{Key: "d", Value: when}}, []any{}}}}},
		{name: "empty object", in: amf.Object{}},
		{name: "strict array", in: []any{1.0, "two", nil, false}},
		{name: "typed object", in: amf.TypedObject{Class: "com.example.Point", Props: amf.Object{{Key: "x", Value: 1.0}, {Key: "y", Value: 2.0}}}},
		{name: "bytearray", in: amf.ByteArray{0, 1, 2, 255}, only: "3"},
		// ECMA arrays: Arrays in the script, ECMA arrays again in AMF0.
		{name: "ecma named", in: amf.ECMAArray{{Key: "duration", Value: 10.0}, {Key: "width", Value: 640.0}}, only: "0"},
		{name: "ecma indexes and names", in: amf.ECMAArray{{Key: "0", Value: "a"}, {Key: "1", Value: "b"}, {Key: "name", Value: "x"}}, only: "0"},
		{name: "ecma names before indexes", in: amf.ECMAArray{{Key: "name", Value: "x"}, {Key: "0", Value: "a"}},
			want: amf.ECMAArray{{Key: "0", Value: "a"}, {Key: "name", Value: "x"}}, only: "0"},
		{name: "ecma sparse", in: amf.ECMAArray{{Key: "0", Value: 1.0}, {Key: "5", Value: 6.0}}, only: "0"},
		{name: "ecma dense", in: amf.ECMAArray{{Key: "0", Value: "a"}, {Key: "1", Value: "b"}}, want: []any{"a", "b"}, only: "0"},
		{name: "ecma with length", in: amf.ECMAArray{{Key: "length", Value: 3.0}, {Key: "x", Value: 1.0}},
			want: amf.Object{{Key: "length", Value: 3.0}, {Key: "x", Value: 1.0}}, only: "0"},
		{name: "ecma non-index numeric keys", in: amf.ECMAArray{{Key: "01", Value: 1.0}, {Key: "-1", Value: 2.0}, {Key: "4294967295", Value: 3.0}}, only: "0"},
		{name: "ecma nested in object", in: amf.Object{{Key: "meta", Value: amf.ECMAArray{{Key: "0", Value: 1.0}, {Key: "k", Value: amf.ECMAArray{{Key: "z", Value: true}}}}}}, only: "0"},
		// AMF3 mixed arrays stay mixed arrays.
		{name: "mixed", in: amf.MixedArray{Dense: []any{"a", "b"}, Assoc: amf.Object{{Key: "name", Value: "x"}}}, only: "3"},
		{name: "mixed assoc only", in: amf.MixedArray{Dense: []any{}, Assoc: amf.Object{{Key: "k", Value: 1.0}}}, only: "3"},
		// An AMF0 ECMA array sent to an AMF3 client arrives as a mixed array.
		{name: "ecma to amf3", in: amf.ECMAArray{{Key: "0", Value: "a"}, {Key: "k", Value: 1.0}},
			want: amf.MixedArray{Dense: []any{"a"}, Assoc: amf.Object{{Key: "k", Value: 1.0}}}, only: "3"},
	} {
		for _, amf3 := range []bool{false, true} {
			enc := "0"
			if amf3 {
				enc = "3"
			}
			if tc.only != "" && tc.only != enc {
				continue
			}
			t.Run(tc.name+"/amf"+enc, func(t *testing.T) {
				vm := goja.New()
				want := tc.want
				if want == nil {
					want = wire(t, tc.in, amf3)
				} else {
					want = wire(t, want, amf3)
				}
				got := roundTrip(t, vm, tc.in, amf3)
				if !reflect.DeepEqual(got, want) {
					t.Errorf("got  %#v\nwant %#v", got, want)
				}
			})
		}
	}
}

// What scripts see of ECMA arrays, and what their own arrays become.
func TestAMFArraysInScripts(t *testing.T) {
	vm := goja.New()
	check := func(expr string, args ...any) goja.Value {
		t.Helper()
		fn, err := vm.RunString("(function (v) { return " + expr + "; })")
		if err != nil {
			t.Fatal(err)
		}
		call, _ := goja.AssertFunction(fn)
		vals := make([]goja.Value, len(args))
		for i, a := range args {
			vals[i] = toJS(vm, a)
		}
		r, err := call(goja.Undefined(), vals...)
		if err != nil {
			t.Fatalf("%s: %v", expr, err)
		}
		return r
	}
	ecma := amf.ECMAArray{{Key: "0", Value: "a"}, {Key: "1", Value: "b"}, {Key: "title", Value: "t"}}
	if r := check(`Array.isArray(v) && v.length === 2 && v[1] === "b" && v.title === "t"`, ecma); !r.ToBoolean() {
		t.Error("an ECMA array is not an Array with its elements and named members")
	}
	meta := amf.ECMAArray{{Key: "duration", Value: 12.5}}
	if r := check(`v.duration === 12.5 && v.length === 0`, meta); !r.ToBoolean() {
		t.Error("onMetaData-like ECMA array: named members not readable")
	}
	if r := check(`!Array.isArray(v) && v.length === 3`, amf.ECMAArray{{Key: "length", Value: 3.0}}); !r.ToBoolean() {
		t.Error("an ECMA array with a length member is not an Object")
	}

	// A script's array with named members.
	v, err := vm.RunString(`var a = ["x", "y"]; a.label = "l"; a`)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := toAMFFor(vm, v, false), (amf.ECMAArray{{Key: "0", Value: "x"}, {Key: "1", Value: "y"}, {Key: "label", Value: "l"}}); !reflect.DeepEqual(got, want) {
		t.Errorf("AMF0: %#v", got)
	}
	if got, want := toAMFFor(vm, v, true), (amf.MixedArray{Dense: []any{"x", "y"}, Assoc: amf.Object{{Key: "label", Value: "l"}}}); !reflect.DeepEqual(got, want) {
		t.Errorf("AMF3: %#v", got)
	}
	// Holes.
	v, _ = vm.RunString(`var h = []; h[0] = 1; h[3] = 4; h`)
	if got, want := toAMFFor(vm, v, false), (amf.ECMAArray{{Key: "0", Value: 1.0}, {Key: "3", Value: 4.0}}); !reflect.DeepEqual(got, want) {
		t.Errorf("holes AMF0: %#v", got)
	}
	if got, want := toAMFFor(vm, v, true), (amf.MixedArray{Dense: []any{1.0}, Assoc: amf.Object{{Key: "3", Value: 4.0}}}); !reflect.DeepEqual(got, want) {
		t.Errorf("holes AMF3: %#v", got)
	}
	// A huge sparse index costs nothing.
	v, _ = vm.RunString(`var s = []; s[4294967294] = 1; s`)
	if got := toAMFFor(vm, v, false); !reflect.DeepEqual(got, amf.ECMAArray{{Key: "4294967294", Value: 1.0}}) {
		t.Errorf("sparse: %#v", got)
	}
	// Functions are left out, Uint8Array and ArrayBuffer are ByteArrays.
	v, _ = vm.RunString(`({ f: function () {}, b: new Uint8Array([1, 2]), ab: new Uint8Array([3]).buffer })`)
	o, _ := toAMF(vm, v).(amf.Object)
	if len(o) != 2 || o[0].Key != "b" || !bytes.Equal(o[0].Value.(amf.ByteArray), []byte{1, 2}) || !bytes.Equal(o[1].Value.(amf.ByteArray), []byte{3}) {
		t.Errorf("functions and bytes: %#v", o)
	}
}
