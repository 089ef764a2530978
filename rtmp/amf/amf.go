// Package amf implements the AMF0 and AMF3 codecs used by RTMP commands,
// data messages and shared objects. It never logs and starts no goroutines.
//
// # Values
//
// Decoded values are plain Go values:
//
//	AMF0 number, AMF3 double        float64
//	AMF3 integer                    int32
//	boolean                         bool
//	string, long string             string
//	null                            nil
//	undefined                       Undefined
//	unsupported (AMF0 0x0D)         Unsupported
//	anonymous object                Object (properties in wire order)
//	typed object                    TypedObject
//	ECMA array (AMF0)               ECMAArray
//	strict array, dense AMF3 array  []any
//	AMF3 array with named members   MixedArray
//	date                            time.Time (UTC, millisecond precision)
//	XML document                    XMLDocument
//	E4X XML (AMF3)                  XML
//	ByteArray (AMF3)                ByteArray
//	Vector.<int|uint|Number|*>      VectorInt, VectorUint, VectorDouble, VectorObject
//	Dictionary (AMF3)               Dictionary
//
// An AMF0 AVM+ switch (0x11) decodes to the AMF3 value it carries; AVMPlus
// only exists to ask the encoder for one. Decoded containers are never nil
// (an empty object is Object{}, an empty array []any{}).
//
// AMF3 externalizable objects carry data only their class knows how to
// read, so only two classes are understood, each wrapping one value:
// flex.messaging.io.ArrayCollection decodes as
// TypedObject{Class: ClassArrayCollection, Props: Object{{"source", v}}} and
// flex.messaging.io.ObjectProxy as
// TypedObject{Class: ClassObjectProxy, Props: Object{{"object", v}}}.
// Encoding such a TypedObject (exactly that one property) writes the
// externalizable form again. Any other externalizable class is an error.
//
// # References
//
// Values reached through a reference (AMF0 0x07, AMF3 object references)
// are shared with the first occurrence: the same slice backs both. A
// reference to an object that is still being decoded (a cycle) is an error,
// since Go values cannot hold one. The reference tables of a Decoder, and
// the AMF3 string, object and trait tables of an Encoder, live across calls
// until Reset: use one Decoder or Encoder per message unless the peer
// expects otherwise. The AMF3 tables are also kept across AVM+ switches.
//
// # Hostile input
//
// Decoding never panics, checks every count against the bytes left before
// allocating, limits nesting depth, and limits the logical size of a
// decoded value (its size if every reference were written out in full), so
// that a few bytes of references cannot become gigabytes for whoever walks
// or re-encodes the result.
package amf

import "errors"

// Limits applied when a Decoder's fields are zero, and by every Encoder.
const (
	// DefaultMaxDepth is the deepest nesting of containers allowed.
	DefaultMaxDepth = 64
	// DefaultMaxSize bounds the logical size of one decoded top-level
	// value: one unit per value plus the bytes of its strings, keys and byte
	// arrays, counting a referenced value again at each reference. It is
	// four times the largest RTMP message.
	DefaultMaxSize = 64 << 20
)

// Class names of the externalizable AMF3 classes this package understands.
const (
	ClassArrayCollection = "flex.messaging.io.ArrayCollection"
	ClassObjectProxy     = "flex.messaging.io.ObjectProxy"
)

var (
	// ErrTruncated reports input that ends inside a value, or a count
	// larger than the bytes left could hold.
	ErrTruncated = errors.New("amf: truncated input")
	// ErrDepth reports nesting deeper than the limit.
	ErrDepth = errors.New("amf: nesting too deep")
	// ErrTooLarge reports a decoded value whose logical size exceeds the
	// limit, which only references can cause.
	ErrTooLarge = errors.New("amf: value too large once references are expanded")
	// ErrUnsupportedType reports a Go value the encoder does not know.
	ErrUnsupportedType = errors.New("amf: unsupported Go type")
	// ErrUnencodable reports a value of a known type that the chosen
	// encoding cannot represent (a key longer than 65535 bytes in AMF0, a
	// length beyond 2^28-1 in AMF3, an empty key in an AMF3 array...).
	ErrUnencodable = errors.New("amf: value cannot be represented")
)

// Undefined is the ActionScript undefined value (AMF0 0x06, AMF3 0x00).
// A nil interface stands for null.
type Undefined struct{}

// Unsupported is the AMF0 unsupported marker (0x0D), sent for values the
// sender could not serialize. It encodes as undefined in AMF3.
type Unsupported struct{}

// Property is one named member of an object or associative array.
type Property struct {
	Key   string
	Value any
}

// Object is an anonymous ActionScript object (AMF0 0x03, AMF3 dynamic
// object without a class name). Property order is kept.
type Object []Property

// Get returns the value of the first property named key.
func (o Object) Get(key string) (any, bool) { return getProp(o, key) }

// GetString returns the property named key if it is a string.
func (o Object) GetString(key string) (string, bool) { return getString(o, key) }

// GetNumber returns the property named key if it is a number (see Number).
func (o Object) GetNumber(key string) (float64, bool) { return getNumber(o, key) }

// Set replaces the value of the first property named key, or appends one.
func (o *Object) Set(key string, v any) { *o = setProp(*o, key, v) }

// Delete removes every property named key and reports whether there was one.
func (o *Object) Delete(key string) bool {
	var ok bool
	*o, ok = deleteProp(*o, key)
	return ok
}

// ECMAArray is an AMF0 ECMA (associative) array, 0x08. In AMF3 it encodes
// as an array with an associative part only, which decodes as MixedArray.
type ECMAArray []Property

// Get returns the value of the first property named key.
func (a ECMAArray) Get(key string) (any, bool) { return getProp(a, key) }

// GetString returns the property named key if it is a string.
func (a ECMAArray) GetString(key string) (string, bool) { return getString(a, key) }

// GetNumber returns the property named key if it is a number (see Number).
func (a ECMAArray) GetNumber(key string) (float64, bool) { return getNumber(a, key) }

// Set replaces the value of the first property named key, or appends one.
func (a *ECMAArray) Set(key string, v any) { *a = setProp(*a, key, v) }

// Delete removes every property named key and reports whether there was one.
func (a *ECMAArray) Delete(key string) bool {
	var ok bool
	*a, ok = deleteProp(*a, key)
	return ok
}

// TypedObject is an object with a registered class name (AMF0 0x10, AMF3
// object with a class name). Decoding AMF3 puts sealed members first, then
// dynamic ones; encoding AMF3 writes every property as a sealed member.
type TypedObject struct {
	Class string
	Props Object
}

// MixedArray is an AMF3 array with a non-empty associative part.
type MixedArray struct {
	Dense []any
	Assoc Object
}

// ByteArray is an AMF3 flash.utils.ByteArray (0x0C). A []byte encodes the
// same way. Decoded byte arrays are copies, never views of the input.
type ByteArray []byte

// XMLDocument is a legacy flash.xml.XMLDocument (AMF0 0x0F, AMF3 0x07).
type XMLDocument string

// XML is an E4X XML value (AMF3 0x0B).
type XML string

// VectorInt is a Vector.<int> (AMF3 0x0D).
type VectorInt struct {
	Fixed bool
	Items []int32
}

// VectorUint is a Vector.<uint> (AMF3 0x0E).
type VectorUint struct {
	Fixed bool
	Items []uint32
}

// VectorDouble is a Vector.<Number> (AMF3 0x0F).
type VectorDouble struct {
	Fixed bool
	Items []float64
}

// VectorObject is a Vector of any other element type (AMF3 0x10); Class is
// the element type name ("" or "*" for untyped).
type VectorObject struct {
	Fixed bool
	Class string
	Items []any
}

// DictEntry is one key/value pair of a Dictionary.
type DictEntry struct {
	Key, Value any
}

// Dictionary is a flash.utils.Dictionary (AMF3 0x11); keys may be any value.
type Dictionary struct {
	WeakKeys bool
	Entries  []DictEntry
}

// AVMPlus asks the AMF0 encoder to write Value in AMF3 behind an AVM+ switch
// (0x11). In AMF3 it is Value itself. Decoding never produces it.
type AVMPlus struct {
	Value any
}

// Number converts any Go numeric value, including the AMF number types
// float64 and int32, to float64.
func Number(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case int32:
		return float64(x), true
	case int:
		return float64(x), true
	case int8:
		return float64(x), true
	case int16:
		return float64(x), true
	case int64:
		return float64(x), true
	case uint:
		return float64(x), true
	case uint8:
		return float64(x), true
	case uint16:
		return float64(x), true
	case uint32:
		return float64(x), true
	case uint64:
		return float64(x), true
	case uintptr:
		return float64(x), true
	case float32:
		return float64(x), true
	}
	return 0, false
}

func getProp(ps []Property, key string) (any, bool) {
	for i := range ps {
		if ps[i].Key == key {
			return ps[i].Value, true
		}
	}
	return nil, false
}

func getString(ps []Property, key string) (string, bool) {
	v, _ := getProp(ps, key)
	s, ok := v.(string)
	return s, ok
}

func getNumber(ps []Property, key string) (float64, bool) {
	v, ok := getProp(ps, key)
	if !ok {
		return 0, false
	}
	return Number(v)
}

func setProp[S ~[]Property](ps S, key string, v any) S {
	for i := range ps {
		if ps[i].Key == key {
			ps[i].Value = v
			return ps
		}
	}
	return append(ps, Property{Key: key, Value: v})
}

func deleteProp[S ~[]Property](ps S, key string) (S, bool) {
	out := ps[:0]
	for _, p := range ps {
		if p.Key != key {
			out = append(out, p)
		}
	}
	removed := len(out) != len(ps)
	clear(ps[len(out):])
	return out, removed
}
