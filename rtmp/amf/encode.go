package amf

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"time"
)

// Encoder appends AMF0 and AMF3 values to a buffer. The zero value is ready
// to use. The AMF3 string, object and trait tables live across calls until
// Reset, so one Encoder should serve one message (or one AMF3 stream).
//
// AMF0 output never uses references. AMF3 output uses string and trait
// references, and object references for a *Object or *TypedObject written
// again through the same pointer, unless NoReferences is set.
type Encoder struct {
	// NoReferences makes AMF3 output write every string, trait and object
	// inline. Any peer reads that correctly whatever the scope of its own
	// reference tables (per value, per message or per connection).
	NoReferences bool

	buf   []byte
	depth int

	strs    map[string]int // AMF3 string table
	nstrs   int
	objs    map[any]int // pointers already written, by object index
	nobjs   int
	traits  map[string]int // typed and sealed traits, by traitKey
	ntraits int
	anon    int    // 1 + index of the anonymous dynamic trait, 0 if none
	scratch []byte // trait keys under construction
}

// Bytes returns the encoded bytes. They alias the Encoder's buffer, valid
// until the next call that changes it.
func (e *Encoder) Bytes() []byte { return e.buf }

// Len returns the number of bytes encoded so far.
func (e *Encoder) Len() int { return len(e.buf) }

// Reset empties the buffer, keeping its memory, and clears the AMF3 tables.
func (e *Encoder) Reset() {
	e.buf = e.buf[:0]
	e.resetTables()
}

// ResetTo is Reset, after which output is appended to b instead (b's
// contents stay in front of it). It lets a caller encode straight into a
// buffer it owns, such as a message payload with a header.
func (e *Encoder) ResetTo(b []byte) {
	e.Reset()
	e.buf = b
}

// Write appends p unchanged, for framing between values. It never fails.
func (e *Encoder) Write(p []byte) (int, error) {
	e.buf = append(e.buf, p...)
	return len(p), nil
}

// WriteString appends s unchanged. It never fails.
func (e *Encoder) WriteString(s string) (int, error) {
	e.buf = append(e.buf, s...)
	return len(s), nil
}

func (e *Encoder) resetTables() {
	clear(e.strs)
	clear(e.objs)
	clear(e.traits)
	e.nstrs, e.nobjs, e.ntraits, e.anon = 0, 0, 0, 0
}

// checkpoint is the Encoder state a failed call rolls back to, so that the
// tables never name anything that was not written.
type checkpoint struct{ n, strs, objs, traits, anon int }

func (e *Encoder) mark() checkpoint {
	return checkpoint{len(e.buf), e.nstrs, e.nobjs, e.ntraits, e.anon}
}

func (e *Encoder) rollback(c checkpoint) {
	e.buf = e.buf[:c.n]
	if e.nstrs != c.strs {
		for k, i := range e.strs {
			if i >= c.strs {
				delete(e.strs, k)
			}
		}
	}
	if e.nobjs != c.objs {
		for k, i := range e.objs {
			if i >= c.objs {
				delete(e.objs, k)
			}
		}
	}
	if e.ntraits != c.traits {
		for k, i := range e.traits {
			if i >= c.traits {
				delete(e.traits, k)
			}
		}
	}
	e.nstrs, e.nobjs, e.ntraits, e.anon = c.strs, c.objs, c.traits, c.anon
}

// EncodeAMF0 appends the AMF0 encoding of v. Types only AMF3 has (ByteArray,
// []byte, XML, MixedArray, vectors, Dictionary) go through an AVM+ switch.
// On error nothing is appended.
func (e *Encoder) EncodeAMF0(v any) error {
	c := e.mark()
	e.depth = 0
	if err := e.value0(v); err != nil {
		e.rollback(c)
		return fmt.Errorf("amf0: %w", err)
	}
	return nil
}

// Marshal0 returns the AMF0 encoding of each value, one after the other.
func Marshal0(vals ...any) ([]byte, error) {
	var e Encoder
	for _, v := range vals {
		if err := e.EncodeAMF0(v); err != nil {
			return nil, err
		}
	}
	return e.buf, nil
}

func (e *Encoder) enter() error {
	e.depth++
	if e.depth > DefaultMaxDepth {
		return ErrDepth
	}
	return nil
}

func (e *Encoder) u8(c byte)    { e.buf = append(e.buf, c) }
func (e *Encoder) u16(v uint16) { e.buf = binary.BigEndian.AppendUint16(e.buf, v) }
func (e *Encoder) u32(v uint32) { e.buf = binary.BigEndian.AppendUint32(e.buf, v) }
func (e *Encoder) f64(f float64) {
	e.buf = binary.BigEndian.AppendUint64(e.buf, math.Float64bits(f))
}

func (e *Encoder) number0(f float64) {
	e.u8(marker0Number)
	e.f64(f)
}

// key0 writes a u16-length string without marker (keys, class names).
func (e *Encoder) key0(s string) error {
	if len(s) > math.MaxUint16 {
		return fmt.Errorf("key of %d bytes: %w", len(s), ErrUnencodable)
	}
	e.u16(uint16(len(s)))
	e.buf = append(e.buf, s...)
	return nil
}

func (e *Encoder) string0(s string) error {
	if len(s) <= math.MaxUint16 {
		e.u8(marker0String)
		e.u16(uint16(len(s)))
	} else {
		if uint64(len(s)) > math.MaxUint32 {
			return fmt.Errorf("string of %d bytes: %w", len(s), ErrUnencodable)
		}
		e.u8(marker0LongString)
		e.u32(uint32(len(s)))
	}
	e.buf = append(e.buf, s...)
	return nil
}

func (e *Encoder) value0(v any) error {
	switch x := v.(type) {
	case nil:
		e.u8(marker0Null)
	case string:
		return e.string0(x)
	case float64:
		e.number0(x)
	case bool:
		e.u8(marker0Boolean)
		if x {
			e.u8(1)
		} else {
			e.u8(0)
		}
	case int:
		e.number0(float64(x))
	case int32:
		e.number0(float64(x))
	case int64:
		e.number0(float64(x))
	case uint32:
		e.number0(float64(x))
	case int8:
		e.number0(float64(x))
	case int16:
		e.number0(float64(x))
	case uint:
		e.number0(float64(x))
	case uint8:
		e.number0(float64(x))
	case uint16:
		e.number0(float64(x))
	case uint64:
		e.number0(float64(x))
	case uintptr:
		e.number0(float64(x))
	case float32:
		e.number0(float64(x))
	case Object:
		return e.object0(marker0Object, "", x)
	case *Object:
		if x == nil {
			e.u8(marker0Null)
			return nil
		}
		return e.object0(marker0Object, "", *x)
	case ECMAArray:
		return e.object0(marker0ECMAArray, "", Object(x))
	case *ECMAArray:
		if x == nil {
			e.u8(marker0Null)
			return nil
		}
		return e.object0(marker0ECMAArray, "", Object(*x))
	case TypedObject:
		return e.object0(marker0TypedObject, x.Class, x.Props)
	case *TypedObject:
		if x == nil {
			e.u8(marker0Null)
			return nil
		}
		return e.object0(marker0TypedObject, x.Class, x.Props)
	case map[string]any:
		return e.object0(marker0Object, "", sortedProps(x))
	case []any:
		if err := e.enter(); err != nil {
			return err
		}
		if err := e.arrayHeader0(len(x)); err != nil {
			return err
		}
		for i, el := range x {
			if err := e.value0(el); err != nil {
				return e.wrapf(err, "element %d", i)
			}
		}
		e.depth--
	case []string:
		if err := e.arrayHeader0(len(x)); err != nil {
			return err
		}
		for _, s := range x {
			if err := e.string0(s); err != nil {
				return err
			}
		}
	case []float64:
		if err := e.arrayHeader0(len(x)); err != nil {
			return err
		}
		for _, f := range x {
			e.number0(f)
		}
	case time.Time:
		ms, err := dateMillis(x)
		if err != nil {
			return err
		}
		e.u8(marker0Date)
		e.f64(ms)
		e.u16(0)
	case Undefined:
		e.u8(marker0Undefined)
	case Unsupported:
		e.u8(marker0Unsupported)
	case XMLDocument:
		if uint64(len(x)) > math.MaxUint32 {
			return fmt.Errorf("XML document of %d bytes: %w", len(x), ErrUnencodable)
		}
		e.u8(marker0XMLDocument)
		e.u32(uint32(len(x)))
		e.buf = append(e.buf, x...)
	case AVMPlus:
		e.u8(marker0AVMPlus)
		return e.value3(x.Value)
	case ByteArray, []byte, XML, MixedArray, VectorInt, VectorUint, VectorDouble,
		VectorObject, Dictionary, *Dictionary:
		e.u8(marker0AVMPlus)
		return e.value3(v)
	default:
		return fmt.Errorf("%w %T", ErrUnsupportedType, v)
	}
	return nil
}

func (e *Encoder) arrayHeader0(n int) error {
	if uint64(n) > math.MaxUint32 {
		return fmt.Errorf("array of %d elements: %w", n, ErrUnencodable)
	}
	e.u8(marker0StrictArray)
	e.u32(uint32(n))
	return nil
}

// object0 writes an object, ECMA array or typed object (per marker).
func (e *Encoder) object0(marker byte, class string, ps Object) error {
	if err := e.enter(); err != nil {
		return err
	}
	e.u8(marker)
	switch marker {
	case marker0ECMAArray:
		e.u32(uint32(len(ps)))
	case marker0TypedObject:
		if err := e.key0(class); err != nil {
			return fmt.Errorf("class name: %w", err)
		}
	}
	for _, p := range ps {
		if err := e.key0(p.Key); err != nil {
			return err
		}
		if err := e.value0(p.Value); err != nil {
			return e.wrapf(err, "%q", short(p.Key))
		}
	}
	e.buf = append(e.buf, 0, 0, marker0ObjectEnd)
	e.depth--
	return nil
}

// sortedProps turns a map into properties sorted by key.
func sortedProps(m map[string]any) Object {
	ps := make(Object, 0, len(m))
	for k, v := range m {
		ps = append(ps, Property{Key: k, Value: v})
	}
	slices.SortFunc(ps, func(a, b Property) int {
		switch {
		case a.Key < b.Key:
			return -1
		case a.Key > b.Key:
			return 1
		}
		return 0
	})
	return ps
}

// wrapf adds context to an error from a nested value, in the outer levels.
func (e *Encoder) wrapf(err error, format string, a ...any) error {
	if e.depth > 3 {
		return err
	}
	return fmt.Errorf(format+": %w", append(a, err)...)
}

// dateMillis returns t in milliseconds since the epoch, if ActionScript can
// hold it.
func dateMillis(t time.Time) (float64, error) {
	if sec := t.Unix(); sec < 1e13 && sec > -1e13 { // UnixMilli cannot overflow
		if ms := t.UnixMilli(); ms <= maxDateMillis && ms >= -maxDateMillis {
			return float64(ms), nil
		}
	}
	return 0, fmt.Errorf("date %v: %w", t, ErrUnencodable)
}
