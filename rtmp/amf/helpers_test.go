package amf

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"math"
	"reflect"
	"strings"
	"time"
)

// row is one case of a codec table: values and their exact wire bytes.
type row struct {
	name string
	vals []any
	wire []byte
	// decodeOnly: wire is not what the encoder writes for vals (references,
	// non-canonical input). encodeOnly: vals do not come back as written.
	decodeOnly, encodeOnly bool
}

// errRow is input that must fail to decode.
type errRow struct {
	name string
	wire []byte
	want error // checked with errors.Is when set
}

// hx parses hex, ignoring spaces and newlines.
func hx(s string) []byte {
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		panic(err)
	}
	return b
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func vals(v ...any) []any { return v }

// AMF0 wire builders, independent of the encoder.

func k0(s string) []byte { return append(binary.BigEndian.AppendUint16(nil, uint16(len(s))), s...) }
func s0(s string) []byte { return append([]byte{marker0String}, k0(s)...) }
func n0(f float64) []byte {
	return binary.BigEndian.AppendUint64([]byte{marker0Number}, math.Float64bits(f))
}
func b0(v bool) []byte {
	if v {
		return []byte{marker0Boolean, 1}
	}
	return []byte{marker0Boolean, 0}
}
func u32(n uint32) []byte { return binary.BigEndian.AppendUint32(nil, n) }

var end0 = []byte{0, 0, marker0ObjectEnd}

// AMF3 wire builder for a short inline string value (< 64 bytes).
func s3(s string) []byte { return append([]byte{marker3String, byte(len(s)<<1 | 1)}, s...) }

func f64b(f float64) []byte { return binary.BigEndian.AppendUint64(nil, math.Float64bits(f)) }

// equalValues compares decoded values. NaN equals NaN; with loose set,
// numbers of any type compare by value (AMF0 turns AMF3 integers into
// doubles) and an AMF3 integer-valued double equals the integer.
func equalValues(a, b any, loose bool) bool {
	if loose {
		fa, oka := Number(a)
		fb, okb := Number(b)
		if oka || okb {
			return oka && okb && (fa == fb || math.IsNaN(fa) && math.IsNaN(fb))
		}
	}
	switch x := a.(type) {
	case float64:
		y, ok := b.(float64)
		return ok && (x == y || math.IsNaN(x) && math.IsNaN(y))
	case time.Time:
		y, ok := b.(time.Time)
		return ok && x.Equal(y)
	case []any:
		y, ok := b.([]any)
		return ok && equalSlices(x, y, loose)
	case Object:
		y, ok := b.(Object)
		return ok && equalProps(x, y, loose)
	case ECMAArray:
		y, ok := b.(ECMAArray)
		return ok && equalProps(Object(x), Object(y), loose)
	case TypedObject:
		y, ok := b.(TypedObject)
		return ok && x.Class == y.Class && equalProps(x.Props, y.Props, loose)
	case MixedArray:
		y, ok := b.(MixedArray)
		return ok && equalSlices(x.Dense, y.Dense, loose) && equalProps(x.Assoc, y.Assoc, loose)
	case VectorDouble:
		y, ok := b.(VectorDouble)
		if !ok || x.Fixed != y.Fixed || len(x.Items) != len(y.Items) {
			return false
		}
		for i := range x.Items {
			if !equalValues(x.Items[i], y.Items[i], false) {
				return false
			}
		}
		return true
	case VectorObject:
		y, ok := b.(VectorObject)
		return ok && x.Fixed == y.Fixed && x.Class == y.Class && equalSlices(x.Items, y.Items, loose)
	case Dictionary:
		y, ok := b.(Dictionary)
		if !ok || x.WeakKeys != y.WeakKeys || len(x.Entries) != len(y.Entries) {
			return false
		}
		for i := range x.Entries {
			if !equalValues(x.Entries[i].Key, y.Entries[i].Key, loose) ||
				!equalValues(x.Entries[i].Value, y.Entries[i].Value, loose) {
				return false
			}
		}
		return true
	}
	return reflect.DeepEqual(a, b)
}

func equalSlices(x, y []any, loose bool) bool {
	if len(x) != len(y) || (x == nil) != (y == nil) {
		return false
	}
	for i := range x {
		if !equalValues(x[i], y[i], loose) {
			return false
		}
	}
	return true
}

func equalProps(x, y Object, loose bool) bool {
	if len(x) != len(y) || (x == nil) != (y == nil) {
		return false
	}
	for i := range x {
		if x[i].Key != y[i].Key || !equalValues(x[i].Value, y[i].Value, loose) {
			return false
		}
	}
	return true
}
