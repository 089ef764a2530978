package amf

import (
	"encoding/binary"
	"fmt"
	"math"
)

// AMF3 type markers.
const (
	marker3Undefined    = 0x00
	marker3Null         = 0x01
	marker3False        = 0x02
	marker3True         = 0x03
	marker3Integer      = 0x04
	marker3Double       = 0x05
	marker3String       = 0x06
	marker3XMLDocument  = 0x07
	marker3Date         = 0x08
	marker3Array        = 0x09
	marker3Object       = 0x0A
	marker3XML          = 0x0B
	marker3ByteArray    = 0x0C
	marker3VectorInt    = 0x0D
	marker3VectorUint   = 0x0E
	marker3VectorDouble = 0x0F
	marker3VectorObject = 0x10
	marker3Dictionary   = 0x11
)

// AMF3 integers are 29-bit signed.
const (
	minInt29 = -1 << 28
	maxInt29 = 1<<28 - 1
	maxU28   = 1<<28 - 1 // largest length or index in a U29 with a flag bit
)

// DecodeAMF3 decodes the next AMF3 value.
func (d *Decoder) DecodeAMF3() (any, error) {
	d.top()
	v, err := d.value3()
	if err != nil {
		return nil, fmt.Errorf("amf3: %w", err)
	}
	return v, nil
}

// Unmarshal3 decodes every AMF3 value in b, sharing reference tables.
func Unmarshal3(b []byte) ([]any, error) {
	d := NewDecoder(b)
	var vals []any
	for d.Len() > 0 {
		v, err := d.DecodeAMF3()
		if err != nil {
			return vals, err
		}
		vals = append(vals, v)
	}
	return vals, nil
}

// u29 reads a variable-length unsigned 29-bit integer.
func (d *Decoder) u29() (uint32, error) {
	var v uint32
	for i := range 4 {
		c, err := d.u8()
		if err != nil {
			return 0, err
		}
		if i == 3 {
			return v<<8 | uint32(c), nil
		}
		v = v<<7 | uint32(c&0x7f)
		if c&0x80 == 0 {
			break
		}
	}
	return v, nil
}

// str3 reads a UTF-8-vr: an inline string or a string table reference.
// It does not count the string's logical size.
func (d *Decoder) str3() (string, error) {
	h, err := d.u29()
	if err != nil {
		return "", err
	}
	if h&1 == 0 {
		idx := int(h >> 1)
		if idx >= len(d.strs) {
			return "", fmt.Errorf("string reference %d out of range (%d strings)", idx, len(d.strs))
		}
		return d.strs[idx], nil
	}
	s, err := d.str(int(h >> 1))
	if err != nil || s == "" {
		return "", err
	}
	d.strs = append(d.strs, s)
	return s, nil
}

// objRef returns the object table entry a U29 reference header points to.
func (d *Decoder) objRef(h uint32) (any, error) {
	idx := int(h >> 1)
	if idx >= len(d.objs) {
		return nil, fmt.Errorf("object reference %d out of range (%d objects)", idx, len(d.objs))
	}
	e := d.objs[idx]
	if !e.done {
		return nil, fmt.Errorf("object reference %d refers to an object still being decoded", idx)
	}
	if err := d.grow(e.size - 1); err != nil {
		return nil, err
	}
	return e.v, nil
}

// addObj reserves an object table slot; finish fills it.
func (d *Decoder) addObj() int {
	d.objs = append(d.objs, entry{})
	return len(d.objs) - 1
}

func (d *Decoder) finish(idx, start int, v any) {
	d.objs[idx] = entry{v: v, size: d.size - start, done: true}
}

func (d *Decoder) value3() (any, error) {
	at := d.pos()
	m, err := d.u8()
	if err != nil {
		return nil, err
	}
	if err := d.grow(1); err != nil {
		return nil, err
	}
	start := d.size - 1
	switch m {
	case marker3Undefined:
		return Undefined{}, nil
	case marker3Null:
		return nil, nil
	case marker3False:
		return false, nil
	case marker3True:
		return true, nil
	case marker3Integer:
		u, err := d.u29()
		if err != nil {
			return nil, fmt.Errorf("integer at offset %d: %w", at, err)
		}
		return int32(u<<3) >> 3, nil // sign-extend 29 bits
	case marker3Double:
		f, err := d.f64()
		if err != nil {
			return nil, fmt.Errorf("double at offset %d: %w", at, err)
		}
		return f, nil
	case marker3String:
		s, err := d.str3()
		if err != nil {
			return nil, fmt.Errorf("string at offset %d: %w", at, err)
		}
		if err := d.grow(len(s)); err != nil {
			return nil, err
		}
		return s, nil
	case marker3XMLDocument, marker3XML, marker3ByteArray:
		return d.blob3(at, m, start)
	case marker3Date:
		h, err := d.u29()
		if err != nil {
			return nil, fmt.Errorf("date at offset %d: %w", at, err)
		}
		if h&1 == 0 {
			v, err := d.objRef(h)
			if err != nil {
				return nil, fmt.Errorf("date at offset %d: %w", at, err)
			}
			return v, nil
		}
		ms, err := d.f64()
		if err != nil {
			return nil, fmt.Errorf("date at offset %d: %w", at, err)
		}
		t, err := date(ms)
		if err != nil {
			return nil, fmt.Errorf("offset %d: %w", at, err)
		}
		d.finish(d.addObj(), start, t)
		return t, nil
	case marker3Array:
		v, err := d.array3(start)
		if err != nil {
			return nil, d.wrapf(err, "array at offset %d", at)
		}
		return v, nil
	case marker3Object:
		v, err := d.object3(start)
		if err != nil {
			return nil, d.wrapf(err, "object at offset %d", at)
		}
		return v, nil
	case marker3VectorInt, marker3VectorUint, marker3VectorDouble, marker3VectorObject:
		v, err := d.vector3(m, start)
		if err != nil {
			return nil, d.wrapf(err, "vector at offset %d", at)
		}
		return v, nil
	case marker3Dictionary:
		v, err := d.dictionary3(start)
		if err != nil {
			return nil, d.wrapf(err, "dictionary at offset %d", at)
		}
		return v, nil
	default:
		return nil, fmt.Errorf("offset %d: unknown AMF3 marker 0x%02x", at, m)
	}
}

// blob3 decodes the byte-length types kept in the object table: XML
// document, XML and ByteArray.
func (d *Decoder) blob3(at int, m byte, start int) (any, error) {
	name := "byte array"
	switch m {
	case marker3XMLDocument:
		name = "XML document"
	case marker3XML:
		name = "XML"
	}
	h, err := d.u29()
	if err != nil {
		return nil, fmt.Errorf("%s at offset %d: %w", name, at, err)
	}
	if h&1 == 0 {
		v, err := d.objRef(h)
		if err != nil {
			return nil, fmt.Errorf("%s at offset %d: %w", name, at, err)
		}
		return v, nil
	}
	b, err := d.bytes(int(h >> 1))
	if err != nil {
		return nil, fmt.Errorf("%s at offset %d: %w", name, at, err)
	}
	if err := d.grow(len(b)); err != nil {
		return nil, err
	}
	var v any
	switch m {
	case marker3XMLDocument:
		v = XMLDocument(b)
	case marker3XML:
		v = XML(b)
	default:
		v = ByteArray(append([]byte{}, b...))
	}
	d.finish(d.addObj(), start, v)
	return v, nil
}

func (d *Decoder) array3(start int) (any, error) {
	h, err := d.u29()
	if err != nil {
		return nil, err
	}
	if h&1 == 0 {
		return d.objRef(h)
	}
	if err := d.enter(); err != nil {
		return nil, err
	}
	defer d.leave()
	idx := d.addObj()
	start0 := len(d.stack)
	for {
		key, err := d.str3()
		if err != nil {
			return nil, fmt.Errorf("key: %w", err)
		}
		if key == "" {
			break
		}
		if err := d.grow(len(key)); err != nil {
			return nil, err
		}
		v, err := d.value3()
		if err != nil {
			return nil, d.wrapf(err, "%q", short(key))
		}
		d.stack = append(d.stack, Property{Key: key, Value: v})
	}
	var assoc Object
	if len(d.stack) > start0 {
		assoc = d.props(start0)
	}
	n := h >> 1
	if err := d.needCount(uint64(n), 1); err != nil {
		return nil, fmt.Errorf("count %d: %w", n, err)
	}
	dense := make([]any, 0, n)
	for i := range int(n) {
		v, err := d.value3()
		if err != nil {
			return nil, d.wrapf(err, "element %d", i)
		}
		dense = append(dense, v)
	}
	var v any = dense
	if len(assoc) > 0 {
		v = MixedArray{Dense: dense, Assoc: assoc}
	}
	d.finish(idx, start, v)
	return v, nil
}

func (d *Decoder) object3(start int) (any, error) {
	h, err := d.u29()
	if err != nil {
		return nil, err
	}
	if h&1 == 0 {
		return d.objRef(h)
	}
	if err := d.enter(); err != nil {
		return nil, err
	}
	defer d.leave()
	var tr traits3
	switch {
	case h&2 == 0: // traits reference
		ti := int(h >> 2)
		if ti >= len(d.traits) {
			return nil, fmt.Errorf("traits reference %d out of range (%d traits)", ti, len(d.traits))
		}
		tr = d.traits[ti]
	case h&4 != 0: // externalizable
		class, err := d.str3()
		if err != nil {
			return nil, fmt.Errorf("class name: %w", err)
		}
		tr = traits3{class: class, ext: true}
		d.traits = append(d.traits, tr)
	default:
		tr.dynamic = h&8 != 0
		n := h >> 4
		if tr.class, err = d.str3(); err != nil {
			return nil, fmt.Errorf("class name: %w", err)
		}
		if err := d.needCount(uint64(n), 1); err != nil {
			return nil, fmt.Errorf("sealed member count %d: %w", n, err)
		}
		tr.names = make([]string, 0, n)
		for range int(n) {
			name, err := d.str3()
			if err != nil {
				return nil, fmt.Errorf("sealed member name: %w", err)
			}
			tr.names = append(tr.names, name)
		}
		d.traits = append(d.traits, tr)
	}
	if err := d.grow(len(tr.class)); err != nil {
		return nil, err
	}
	idx := d.addObj()
	if tr.ext {
		key, ok := externalKey(tr.class)
		if !ok {
			return nil, fmt.Errorf("externalizable class %q is not supported", tr.class)
		}
		if err := d.grow(len(key)); err != nil {
			return nil, err
		}
		v, err := d.value3()
		if err != nil {
			return nil, d.wrapf(err, "%s", short(tr.class))
		}
		obj := TypedObject{Class: tr.class, Props: Object{{Key: key, Value: v}}}
		d.finish(idx, start, obj)
		return obj, nil
	}
	if err := d.needCount(uint64(len(tr.names)), 1); err != nil {
		return nil, fmt.Errorf("%d sealed members: %w", len(tr.names), err)
	}
	start0 := len(d.stack)
	for _, name := range tr.names {
		if err := d.grow(len(name)); err != nil {
			return nil, err
		}
		v, err := d.value3()
		if err != nil {
			return nil, d.wrapf(err, "%q", short(name))
		}
		d.stack = append(d.stack, Property{Key: name, Value: v})
	}
	if tr.dynamic {
		for {
			key, err := d.str3()
			if err != nil {
				return nil, fmt.Errorf("dynamic member name: %w", err)
			}
			if key == "" {
				break
			}
			if err := d.grow(len(key)); err != nil {
				return nil, err
			}
			v, err := d.value3()
			if err != nil {
				return nil, d.wrapf(err, "%q", short(key))
			}
			d.stack = append(d.stack, Property{Key: key, Value: v})
		}
	}
	props := d.props(start0)
	var v any = props
	if tr.class != "" {
		v = TypedObject{Class: tr.class, Props: props}
	}
	d.finish(idx, start, v)
	return v, nil
}

// externalKey returns, for the externalizable classes this package reads,
// the name of the one property their value is decoded into.
func externalKey(class string) (string, bool) {
	switch class {
	case ClassArrayCollection:
		return "source", true
	case ClassObjectProxy:
		return "object", true
	}
	return "", false
}

func (d *Decoder) vector3(m byte, start int) (any, error) {
	h, err := d.u29()
	if err != nil {
		return nil, err
	}
	if h&1 == 0 {
		return d.objRef(h)
	}
	n := uint64(h >> 1)
	fixedByte, err := d.u8()
	if err != nil {
		return nil, err
	}
	fixed := fixedByte != 0
	idx := d.addObj()
	var v any
	switch m {
	case marker3VectorInt, marker3VectorUint:
		if err := d.needCount(n, 4); err != nil {
			return nil, fmt.Errorf("count %d: %w", n, err)
		}
		b, _ := d.bytes(int(n) * 4)
		if m == marker3VectorInt {
			items := make([]int32, n)
			for i := range items {
				items[i] = int32(binary.BigEndian.Uint32(b[4*i:]))
			}
			v = VectorInt{Fixed: fixed, Items: items}
		} else {
			items := make([]uint32, n)
			for i := range items {
				items[i] = binary.BigEndian.Uint32(b[4*i:])
			}
			v = VectorUint{Fixed: fixed, Items: items}
		}
	case marker3VectorDouble:
		if err := d.needCount(n, 8); err != nil {
			return nil, fmt.Errorf("count %d: %w", n, err)
		}
		b, _ := d.bytes(int(n) * 8)
		items := make([]float64, n)
		for i := range items {
			items[i] = math.Float64frombits(binary.BigEndian.Uint64(b[8*i:]))
		}
		v = VectorDouble{Fixed: fixed, Items: items}
	default:
		if err := d.enter(); err != nil {
			return nil, err
		}
		defer d.leave()
		class, err := d.str3()
		if err != nil {
			return nil, fmt.Errorf("element type name: %w", err)
		}
		if err := d.grow(len(class)); err != nil {
			return nil, err
		}
		if err := d.needCount(n, 1); err != nil {
			return nil, fmt.Errorf("count %d: %w", n, err)
		}
		items := make([]any, 0, n)
		for i := range int(n) {
			e, err := d.value3()
			if err != nil {
				return nil, d.wrapf(err, "element %d", i)
			}
			items = append(items, e)
		}
		v = VectorObject{Fixed: fixed, Class: class, Items: items}
	}
	if m != marker3VectorObject {
		if err := d.grow(int(n)); err != nil {
			return nil, err
		}
	}
	d.finish(idx, start, v)
	return v, nil
}

func (d *Decoder) dictionary3(start int) (any, error) {
	h, err := d.u29()
	if err != nil {
		return nil, err
	}
	if h&1 == 0 {
		return d.objRef(h)
	}
	n := uint64(h >> 1)
	weak, err := d.u8()
	if err != nil {
		return nil, err
	}
	if err := d.enter(); err != nil {
		return nil, err
	}
	defer d.leave()
	idx := d.addObj()
	if err := d.needCount(n, 2); err != nil {
		return nil, fmt.Errorf("count %d: %w", n, err)
	}
	entries := make([]DictEntry, 0, n)
	for i := range int(n) {
		k, err := d.value3()
		if err != nil {
			return nil, d.wrapf(err, "key %d", i)
		}
		v, err := d.value3()
		if err != nil {
			return nil, d.wrapf(err, "value %d", i)
		}
		entries = append(entries, DictEntry{Key: k, Value: v})
	}
	v := Dictionary{WeakKeys: weak != 0, Entries: entries}
	d.finish(idx, start, v)
	return v, nil
}
