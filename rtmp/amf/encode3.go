package amf

import (
	"encoding/binary"
	"fmt"
	"math"
	"time"
)

// EncodeAMF3 appends the AMF3 encoding of v. Go integers in the 29-bit
// signed range encode as AMF3 integers, other numbers as doubles. On error
// nothing is appended and the tables are as before.
func (e *Encoder) EncodeAMF3(v any) error {
	c := e.mark()
	e.depth = 0
	if err := e.value3(v); err != nil {
		e.rollback(c)
		return fmt.Errorf("amf3: %w", err)
	}
	return nil
}

// Marshal3 returns the AMF3 encoding of each value, sharing the tables.
func Marshal3(vals ...any) ([]byte, error) {
	var e Encoder
	for _, v := range vals {
		if err := e.EncodeAMF3(v); err != nil {
			return nil, err
		}
	}
	return e.buf, nil
}

// appendU29 appends v (< 2^29) as a variable-length integer.
func appendU29(b []byte, v uint32) []byte {
	switch {
	case v < 0x80:
		return append(b, byte(v))
	case v < 0x4000:
		return append(b, byte(v>>7)|0x80, byte(v&0x7f))
	case v < 0x200000:
		return append(b, byte(v>>14)|0x80, byte(v>>7)|0x80, byte(v&0x7f))
	default:
		return append(b, byte(v>>22)|0x80, byte(v>>15)|0x80, byte(v>>8)|0x80, byte(v))
	}
}

func (e *Encoder) u29(v uint32) { e.buf = appendU29(e.buf, v) }

// inline writes the U29 header of an inline value of length or count n.
func (e *Encoder) inline(n int) error {
	if n < 0 || n > maxU28 {
		return fmt.Errorf("length %d: %w", n, ErrUnencodable)
	}
	e.u29(uint32(n)<<1 | 1)
	return nil
}

func (e *Encoder) int3(i int64) {
	if i >= minInt29 && i <= maxInt29 {
		e.u8(marker3Integer)
		e.u29(uint32(i) & 0x1fffffff)
		return
	}
	e.u8(marker3Double)
	e.f64(float64(i))
}

func (e *Encoder) uint3(u uint64) {
	if u <= maxInt29 {
		e.int3(int64(u))
		return
	}
	e.u8(marker3Double)
	e.f64(float64(u))
}

// str3 writes a UTF-8-vr, by reference when the string was written before.
func (e *Encoder) str3(s string) error {
	if s == "" {
		e.u8(0x01)
		return nil
	}
	if i, ok := e.strs[s]; ok {
		e.u29(uint32(i) << 1)
		return nil
	}
	if err := e.inline(len(s)); err != nil {
		return err
	}
	e.buf = append(e.buf, s...)
	if e.nstrs < maxU28 && !e.NoReferences {
		if e.strs == nil {
			e.strs = make(map[string]int)
		}
		e.strs[s] = e.nstrs
		e.nstrs++
	}
	return nil
}

// blob3 writes a marker, then bytes kept in the object table.
func (e *Encoder) blob3(marker byte, b []byte) error {
	e.u8(marker)
	if err := e.inline(len(b)); err != nil {
		return err
	}
	e.buf = append(e.buf, b...)
	e.nobjs++
	return nil
}

func (e *Encoder) blobString3(marker byte, s string) error {
	e.u8(marker)
	if err := e.inline(len(s)); err != nil {
		return err
	}
	e.buf = append(e.buf, s...)
	e.nobjs++
	return nil
}

func (e *Encoder) value3(v any) error {
	switch x := v.(type) {
	case nil:
		e.u8(marker3Null)
	case string:
		e.u8(marker3String)
		return e.str3(x)
	case float64:
		e.u8(marker3Double)
		e.f64(x)
	case bool:
		if x {
			e.u8(marker3True)
		} else {
			e.u8(marker3False)
		}
	case int:
		e.int3(int64(x))
	case int32:
		e.int3(int64(x))
	case int64:
		e.int3(x)
	case uint32:
		e.uint3(uint64(x))
	case int8:
		e.int3(int64(x))
	case int16:
		e.int3(int64(x))
	case uint:
		e.uint3(uint64(x))
	case uint8:
		e.uint3(uint64(x))
	case uint16:
		e.uint3(uint64(x))
	case uint64:
		e.uint3(x)
	case uintptr:
		e.uint3(uint64(x))
	case float32:
		e.u8(marker3Double)
		e.f64(float64(x))
	case Object:
		return e.object3(x)
	case *Object:
		if x == nil {
			e.u8(marker3Null)
			return nil
		}
		if e.pointerRef(x) {
			return nil
		}
		return e.object3(*x)
	case TypedObject:
		return e.typed3(x.Class, x.Props)
	case *TypedObject:
		if x == nil {
			e.u8(marker3Null)
			return nil
		}
		if e.pointerRef(x) {
			return nil
		}
		return e.typed3(x.Class, x.Props)
	case map[string]any:
		return e.object3(sortedProps(x))
	case []any:
		if err := e.enter(); err != nil {
			return err
		}
		if err := e.arrayHeader3(len(x)); err != nil {
			return err
		}
		e.u8(0x01) // no associative part
		for i, el := range x {
			if err := e.value3(el); err != nil {
				return e.wrapf(err, "element %d", i)
			}
		}
		e.depth--
	case []string:
		if err := e.arrayHeader3(len(x)); err != nil {
			return err
		}
		e.u8(0x01)
		for _, s := range x {
			e.u8(marker3String)
			if err := e.str3(s); err != nil {
				return err
			}
		}
	case []float64:
		if err := e.arrayHeader3(len(x)); err != nil {
			return err
		}
		e.u8(0x01)
		for _, f := range x {
			e.u8(marker3Double)
			e.f64(f)
		}
	case ECMAArray:
		return e.mixed3(nil, Object(x))
	case *ECMAArray:
		if x == nil {
			e.u8(marker3Null)
			return nil
		}
		return e.mixed3(nil, Object(*x))
	case MixedArray:
		return e.mixed3(x.Dense, x.Assoc)
	case time.Time:
		ms, err := dateMillis(x)
		if err != nil {
			return err
		}
		e.u8(marker3Date)
		e.u8(0x01)
		e.f64(ms)
		e.nobjs++
	case Undefined, Unsupported:
		e.u8(marker3Undefined)
	case ByteArray:
		return e.blob3(marker3ByteArray, x)
	case []byte:
		return e.blob3(marker3ByteArray, x)
	case XMLDocument:
		return e.blobString3(marker3XMLDocument, string(x))
	case XML:
		return e.blobString3(marker3XML, string(x))
	case VectorInt:
		e.u8(marker3VectorInt)
		if err := e.vectorHeader3(len(x.Items), x.Fixed); err != nil {
			return err
		}
		for _, i := range x.Items {
			e.u32(uint32(i))
		}
	case VectorUint:
		e.u8(marker3VectorUint)
		if err := e.vectorHeader3(len(x.Items), x.Fixed); err != nil {
			return err
		}
		for _, u := range x.Items {
			e.u32(u)
		}
	case VectorDouble:
		e.u8(marker3VectorDouble)
		if err := e.vectorHeader3(len(x.Items), x.Fixed); err != nil {
			return err
		}
		for _, f := range x.Items {
			e.buf = binary.BigEndian.AppendUint64(e.buf, math.Float64bits(f))
		}
	case VectorObject:
		if err := e.enter(); err != nil {
			return err
		}
		e.u8(marker3VectorObject)
		if err := e.vectorHeader3(len(x.Items), x.Fixed); err != nil {
			return err
		}
		if err := e.str3(x.Class); err != nil {
			return err
		}
		for i, el := range x.Items {
			if err := e.value3(el); err != nil {
				return e.wrapf(err, "element %d", i)
			}
		}
		e.depth--
	case Dictionary:
		return e.dictionary3(&x)
	case *Dictionary:
		if x == nil {
			e.u8(marker3Null)
			return nil
		}
		return e.dictionary3(x)
	case AVMPlus:
		return e.value3(x.Value)
	default:
		return fmt.Errorf("%w %T", ErrUnsupportedType, v)
	}
	return nil
}

// pointerRef writes an object reference if p was written before, and
// otherwise records that p is the next object.
func (e *Encoder) pointerRef(p any) bool {
	if e.NoReferences {
		return false
	}
	if i, ok := e.objs[p]; ok {
		e.u8(marker3Object)
		e.u29(uint32(i) << 1)
		return true
	}
	if e.nobjs < maxU28 {
		if e.objs == nil {
			e.objs = make(map[any]int)
		}
		e.objs[p] = e.nobjs
	}
	return false
}

func (e *Encoder) arrayHeader3(n int) error {
	e.u8(marker3Array)
	e.nobjs++
	return e.inline(n)
}

func (e *Encoder) vectorHeader3(n int, fixed bool) error {
	if err := e.inline(n); err != nil {
		return err
	}
	e.nobjs++
	if fixed {
		e.u8(1)
	} else {
		e.u8(0)
	}
	return nil
}

func (e *Encoder) mixed3(dense []any, assoc Object) error {
	if err := e.enter(); err != nil {
		return err
	}
	if err := e.arrayHeader3(len(dense)); err != nil {
		return err
	}
	for _, p := range assoc {
		if p.Key == "" {
			return fmt.Errorf("empty key in an associative array: %w", ErrUnencodable)
		}
		if err := e.str3(p.Key); err != nil {
			return err
		}
		if err := e.value3(p.Value); err != nil {
			return e.wrapf(err, "%q", short(p.Key))
		}
	}
	e.u8(0x01)
	for i, el := range dense {
		if err := e.value3(el); err != nil {
			return e.wrapf(err, "element %d", i)
		}
	}
	e.depth--
	return nil
}

func (e *Encoder) dictionary3(x *Dictionary) error {
	if err := e.enter(); err != nil {
		return err
	}
	e.u8(marker3Dictionary)
	if err := e.vectorHeader3(len(x.Entries), x.WeakKeys); err != nil {
		return err
	}
	for i, en := range x.Entries {
		if err := e.value3(en.Key); err != nil {
			return e.wrapf(err, "key %d", i)
		}
		if err := e.value3(en.Value); err != nil {
			return e.wrapf(err, "value %d", i)
		}
	}
	e.depth--
	return nil
}

// traitRef writes a traits reference for key if those traits were written
// before, and otherwise records them as the next traits.
func (e *Encoder) traitRef(key []byte) bool {
	if e.NoReferences {
		return false
	}
	if i, ok := e.traits[string(key)]; ok {
		e.u29(uint32(i)<<2 | 1)
		return true
	}
	if e.ntraits < 1<<26 {
		if e.traits == nil {
			e.traits = make(map[string]int)
		}
		e.traits[string(key)] = e.ntraits
		e.ntraits++
	}
	return false
}

// traitKey identifies traits: a kind byte, then each string with its length.
func (e *Encoder) traitKey(kind byte, class string, ps Object) []byte {
	k := append(e.scratch[:0], kind)
	k = binary.AppendUvarint(k, uint64(len(class)))
	k = append(k, class...)
	for _, p := range ps {
		k = binary.AppendUvarint(k, uint64(len(p.Key)))
		k = append(k, p.Key...)
	}
	e.scratch = k
	return k
}

// object3 writes an anonymous object with dynamic members, or with sealed
// members when a key is empty (a dynamic member name cannot be).
func (e *Encoder) object3(ps Object) error {
	for _, p := range ps {
		if p.Key == "" {
			return e.sealed3("", ps)
		}
	}
	if err := e.enter(); err != nil {
		return err
	}
	e.u8(marker3Object)
	e.nobjs++
	if e.anon > 0 {
		e.u29(uint32(e.anon-1)<<2 | 1)
	} else {
		e.buf = append(e.buf, 0x0B, 0x01) // inline dynamic traits, class ""
		if e.ntraits < 1<<26 && !e.NoReferences {
			e.anon = e.ntraits + 1
			e.ntraits++
		}
	}
	for _, p := range ps {
		if err := e.str3(p.Key); err != nil {
			return err
		}
		if err := e.value3(p.Value); err != nil {
			return e.wrapf(err, "%q", short(p.Key))
		}
	}
	e.u8(0x01)
	e.depth--
	return nil
}

func (e *Encoder) typed3(class string, ps Object) error {
	if class == "" {
		return e.object3(ps)
	}
	if key, ok := externalKey(class); ok && len(ps) == 1 && ps[0].Key == key {
		if err := e.enter(); err != nil {
			return err
		}
		e.u8(marker3Object)
		e.nobjs++
		if !e.traitRef(e.traitKey('E', class, nil)) {
			e.u8(0x07) // inline externalizable traits
			if err := e.str3(class); err != nil {
				return err
			}
		}
		if err := e.value3(ps[0].Value); err != nil {
			return e.wrapf(err, "%s", short(class))
		}
		e.depth--
		return nil
	}
	return e.sealed3(class, ps)
}

// sealed3 writes an object whose properties are all sealed members.
func (e *Encoder) sealed3(class string, ps Object) error {
	if err := e.enter(); err != nil {
		return err
	}
	if len(ps) >= 1<<25 {
		return fmt.Errorf("%d members: %w", len(ps), ErrUnencodable)
	}
	e.u8(marker3Object)
	e.nobjs++
	if !e.traitRef(e.traitKey('S', class, ps)) {
		e.u29(uint32(len(ps))<<4 | 0x03) // inline sealed traits
		if err := e.str3(class); err != nil {
			return err
		}
		for _, p := range ps {
			if err := e.str3(p.Key); err != nil {
				return err
			}
		}
	}
	for _, p := range ps {
		if err := e.value3(p.Value); err != nil {
			return e.wrapf(err, "%q", short(p.Key))
		}
	}
	e.depth--
	return nil
}
