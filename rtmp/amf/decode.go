package amf

import (
	"encoding/binary"
	"fmt"
	"math"
	"time"
)

// AMF0 type markers.
const (
	marker0Number      = 0x00
	marker0Boolean     = 0x01
	marker0String      = 0x02
	marker0Object      = 0x03
	marker0MovieClip   = 0x04
	marker0Null        = 0x05
	marker0Undefined   = 0x06
	marker0Reference   = 0x07
	marker0ECMAArray   = 0x08
	marker0ObjectEnd   = 0x09
	marker0StrictArray = 0x0A
	marker0Date        = 0x0B
	marker0LongString  = 0x0C
	marker0Unsupported = 0x0D
	marker0RecordSet   = 0x0E
	marker0XMLDocument = 0x0F
	marker0TypedObject = 0x10
	marker0AVMPlus     = 0x11
)

// maxDateMillis is the ECMAScript time range: ±100,000,000 days.
const maxDateMillis = 8.64e15

// Decoder reads AMF0 and AMF3 values from a byte slice. Its reference
// tables live across calls until Reset.
type Decoder struct {
	// MaxDepth and MaxSize override DefaultMaxDepth and DefaultMaxSize
	// when positive.
	MaxDepth int
	MaxSize  int

	b     []byte
	off   int
	base  int // offset of b[0] in the caller's view, for error messages
	depth int
	size  int // logical size of the current top-level value

	text  string     // d.b as a string, when small enough to share
	stack []Property // properties of the objects being decoded

	refs0  []entry   // AMF0 complex objects, for 0x07
	strs   []string  // AMF3 string table
	objs   []entry   // AMF3 object table
	traits []traits3 // AMF3 trait table
}

// entry is one slot of an object reference table.
type entry struct {
	v    any
	size int  // logical size of v
	done bool // false while v is still being decoded
}

// traits3 describes the members of an AMF3 object class.
type traits3 struct {
	class   string
	names   []string // sealed member names
	dynamic bool
	ext     bool // externalizable
}

// NewDecoder returns a Decoder reading b. It never modifies b and keeps no
// reference to it in decoded values.
func NewDecoder(b []byte) *Decoder { return &Decoder{b: b} }

// Len returns the number of bytes not yet decoded.
func (d *Decoder) Len() int { return len(d.b) - d.off }

// Reset makes d read b from its start with empty reference tables.
func (d *Decoder) Reset(b []byte) {
	d.b, d.off, d.base, d.text = b, 0, 0, ""
	clear(d.refs0)
	clear(d.strs)
	clear(d.objs)
	clear(d.traits)
	clear(d.stack)
	d.refs0, d.strs, d.objs, d.traits = d.refs0[:0], d.strs[:0], d.objs[:0], d.traits[:0]
	d.stack = d.stack[:0]
}

// SetInput makes b the bytes left to decode but keeps the reference tables,
// for formats that interleave AMF values with their own framing (shared
// object events). Offsets in errors count from the previous input's start
// plus what it consumed, which is only exact when b follows it.
func (d *Decoder) SetInput(b []byte) {
	d.base += d.off
	d.b, d.off, d.text = b, 0, ""
}

func (d *Decoder) maxDepth() int {
	if d.MaxDepth > 0 {
		return d.MaxDepth
	}
	return DefaultMaxDepth
}

func (d *Decoder) maxSize() int {
	if d.MaxSize > 0 {
		return d.MaxSize
	}
	return DefaultMaxSize
}

// pos is the current offset for error messages.
func (d *Decoder) pos() int { return d.base + d.off }

// grow adds n to the logical size of the current top-level value.
func (d *Decoder) grow(n int) error {
	d.size += n
	if d.size > d.maxSize() {
		return fmt.Errorf("offset %d: %w", d.pos(), ErrTooLarge)
	}
	return nil
}

func (d *Decoder) enter() error {
	d.depth++
	if d.depth > d.maxDepth() {
		return fmt.Errorf("offset %d: %w", d.pos(), ErrDepth)
	}
	return nil
}

func (d *Decoder) leave() { d.depth-- }

// need checks that n more bytes are there.
func (d *Decoder) need(n int) error {
	if n < 0 || n > len(d.b)-d.off {
		return ErrTruncated
	}
	return nil
}

// needCount checks that count items of at least size bytes each can fit
// in what is left, before anything is allocated for them.
func (d *Decoder) needCount(count uint64, size uint64) error {
	if count*size > uint64(len(d.b)-d.off) || count > math.MaxInt32 {
		return ErrTruncated
	}
	return nil
}

func (d *Decoder) u8() (byte, error) {
	if d.off >= len(d.b) {
		return 0, ErrTruncated
	}
	c := d.b[d.off]
	d.off++
	return c, nil
}

func (d *Decoder) peek() (byte, bool) {
	if d.off >= len(d.b) {
		return 0, false
	}
	return d.b[d.off], true
}

func (d *Decoder) u16() (uint16, error) {
	if err := d.need(2); err != nil {
		return 0, err
	}
	v := binary.BigEndian.Uint16(d.b[d.off:])
	d.off += 2
	return v, nil
}

func (d *Decoder) u32() (uint32, error) {
	if err := d.need(4); err != nil {
		return 0, err
	}
	v := binary.BigEndian.Uint32(d.b[d.off:])
	d.off += 4
	return v, nil
}

func (d *Decoder) f64() (float64, error) {
	if err := d.need(8); err != nil {
		return 0, err
	}
	v := math.Float64frombits(binary.BigEndian.Uint64(d.b[d.off:]))
	d.off += 8
	return v, nil
}

func (d *Decoder) bytes(n int) ([]byte, error) {
	if err := d.need(n); err != nil {
		return nil, err
	}
	b := d.b[d.off : d.off+n : d.off+n]
	d.off += n
	return b, nil
}

// str16 reads a u16-length UTF-8 string (AMF0 string body and keys).
func (d *Decoder) str16() (string, error) {
	n, err := d.u16()
	if err != nil {
		return "", err
	}
	return d.str(int(n))
}

// str32 reads a u32-length UTF-8 string (AMF0 long string, XML document).
func (d *Decoder) str32() (string, error) {
	n, err := d.u32()
	if err != nil {
		return "", err
	}
	if uint64(n) > uint64(d.Len()) {
		return "", ErrTruncated
	}
	return d.str(int(n))
}

// shareLimit is the largest input whose strings are cut from one string
// holding all of it: one allocation instead of one per string, at the cost
// of keeping up to this many bytes alive while any of them is.
const shareLimit = 4096

// str reads n bytes as a string.
func (d *Decoder) str(n int) (string, error) {
	if err := d.need(n); err != nil {
		return "", err
	}
	var s string
	if len(d.b) <= shareLimit {
		if d.text == "" {
			d.text = string(d.b)
		}
		s = d.text[d.off : d.off+n]
	} else {
		s = string(d.b[d.off : d.off+n])
	}
	d.off += n
	return s, nil
}

// props returns a copy of the properties pushed on the stack since start
// and pops them.
func (d *Decoder) props(start int) Object {
	ps := make(Object, len(d.stack)-start)
	copy(ps, d.stack[start:])
	clear(d.stack[start:])
	d.stack = d.stack[:start]
	return ps
}

// top resets the per-value state at the start of a top-level call.
func (d *Decoder) top() {
	d.depth, d.size = 0, 0
	clear(d.stack)
	d.stack = d.stack[:0]
}

// date converts milliseconds since the epoch to a UTC time.
func date(ms float64) (time.Time, error) {
	if math.IsNaN(ms) || ms > maxDateMillis || ms < -maxDateMillis {
		return time.Time{}, fmt.Errorf("date %v out of range", ms)
	}
	return time.UnixMilli(int64(ms)).UTC(), nil
}

// DecodeAMF0 decodes the next AMF0 value.
func (d *Decoder) DecodeAMF0() (any, error) {
	d.top()
	v, err := d.value0()
	if err != nil {
		return nil, fmt.Errorf("amf0: %w", err)
	}
	return v, nil
}

// Unmarshal0 decodes every AMF0 value in b.
func Unmarshal0(b []byte) ([]any, error) {
	d := NewDecoder(b)
	var vals []any
	for d.Len() > 0 {
		v, err := d.DecodeAMF0()
		if err != nil {
			return vals, err
		}
		vals = append(vals, v)
	}
	return vals, nil
}

func (d *Decoder) value0() (any, error) {
	at := d.pos()
	m, err := d.u8()
	if err != nil {
		return nil, err
	}
	if err := d.grow(1); err != nil {
		return nil, err
	}
	switch m {
	case marker0Number:
		f, err := d.f64()
		if err != nil {
			return nil, fmt.Errorf("number at offset %d: %w", at, err)
		}
		return f, nil
	case marker0Boolean:
		c, err := d.u8()
		if err != nil {
			return nil, fmt.Errorf("boolean at offset %d: %w", at, err)
		}
		return c != 0, nil
	case marker0String:
		s, err := d.str16()
		if err != nil {
			return nil, fmt.Errorf("string at offset %d: %w", at, err)
		}
		if err := d.grow(len(s)); err != nil {
			return nil, err
		}
		return s, nil
	case marker0LongString:
		s, err := d.str32()
		if err != nil {
			return nil, fmt.Errorf("long string at offset %d: %w", at, err)
		}
		if err := d.grow(len(s)); err != nil {
			return nil, err
		}
		return s, nil
	case marker0XMLDocument:
		s, err := d.str32()
		if err != nil {
			return nil, fmt.Errorf("XML document at offset %d: %w", at, err)
		}
		if err := d.grow(len(s)); err != nil {
			return nil, err
		}
		return XMLDocument(s), nil
	case marker0Null:
		return nil, nil
	case marker0Undefined:
		return Undefined{}, nil
	case marker0Unsupported:
		return Unsupported{}, nil
	case marker0Date:
		ms, err := d.f64()
		if err == nil {
			_, err = d.u16() // time zone, unused by every player
		}
		if err != nil {
			return nil, fmt.Errorf("date at offset %d: %w", at, err)
		}
		t, err := date(ms)
		if err != nil {
			return nil, fmt.Errorf("offset %d: %w", at, err)
		}
		return t, nil
	case marker0Object:
		return d.complex0(at, m)
	case marker0ECMAArray:
		return d.complex0(at, m)
	case marker0StrictArray:
		return d.complex0(at, m)
	case marker0TypedObject:
		return d.complex0(at, m)
	case marker0Reference:
		idx, err := d.u16()
		if err != nil {
			return nil, fmt.Errorf("reference at offset %d: %w", at, err)
		}
		if int(idx) >= len(d.refs0) {
			return nil, fmt.Errorf("reference at offset %d: index %d out of range (%d objects)", at, idx, len(d.refs0))
		}
		e := d.refs0[idx]
		if !e.done {
			return nil, fmt.Errorf("reference at offset %d: object %d refers to itself", at, idx)
		}
		if err := d.grow(e.size - 1); err != nil {
			return nil, err
		}
		return e.v, nil
	case marker0AVMPlus:
		return d.value3()
	case marker0ObjectEnd:
		return nil, fmt.Errorf("offset %d: object end marker outside an object", at)
	case marker0MovieClip:
		return nil, fmt.Errorf("offset %d: movieclip type is not supported", at)
	case marker0RecordSet:
		return nil, fmt.Errorf("offset %d: recordset type is not supported", at)
	default:
		return nil, fmt.Errorf("offset %d: unknown marker 0x%02x", at, m)
	}
}

// complex0 decodes the AMF0 types that take a reference table slot. The
// marker has been read and counted.
func (d *Decoder) complex0(at int, m byte) (any, error) {
	if err := d.enter(); err != nil {
		return nil, err
	}
	defer d.leave()
	idx := len(d.refs0)
	d.refs0 = append(d.refs0, entry{})
	start := d.size - 1
	var v any
	var err error
	switch m {
	case marker0Object:
		var ps []Property
		ps, err = d.props0(false)
		v = Object(ps)
		if err != nil {
			err = d.wrapf(err, "object at offset %d", at)
		}
	case marker0ECMAArray:
		if _, err = d.u32(); err != nil { // count: a hint, often wrong
			err = fmt.Errorf("ECMA array at offset %d: %w", at, err)
			break
		}
		var ps []Property
		ps, err = d.props0(true)
		v = ECMAArray(ps)
		if err != nil {
			err = d.wrapf(err, "ECMA array at offset %d", at)
		}
	case marker0TypedObject:
		var class string
		if class, err = d.str16(); err != nil {
			err = fmt.Errorf("typed object at offset %d: class name: %w", at, err)
			break
		}
		if err = d.grow(len(class)); err != nil {
			break
		}
		var ps []Property
		ps, err = d.props0(false)
		v = TypedObject{Class: class, Props: Object(ps)}
		if err != nil {
			err = d.wrapf(err, "typed object %q at offset %d", short(class), at)
		}
	case marker0StrictArray:
		v, err = d.strictArray0()
		if err != nil {
			err = d.wrapf(err, "strict array at offset %d", at)
		}
	}
	if err != nil {
		return nil, err
	}
	d.refs0[idx] = entry{v: v, size: d.size - start, done: true}
	return v, nil
}

// props0 reads key/value pairs up to the object end marker. An ECMA array
// may also end with the input, as some encoders leave the marker out.
func (d *Decoder) props0(ecma bool) ([]Property, error) {
	start := len(d.stack)
	for {
		if ecma && d.Len() == 0 {
			return d.props(start), nil
		}
		key, err := d.str16()
		if err != nil {
			return nil, fmt.Errorf("key: %w", err)
		}
		if key == "" {
			if m, ok := d.peek(); ok && m == marker0ObjectEnd {
				d.off++
				return d.props(start), nil
			}
		}
		if err := d.grow(len(key)); err != nil {
			return nil, err
		}
		v, err := d.value0()
		if err != nil {
			return nil, d.wrapf(err, "%q", short(key))
		}
		d.stack = append(d.stack, Property{Key: key, Value: v})
	}
}

func (d *Decoder) strictArray0() ([]any, error) {
	n, err := d.u32()
	if err != nil {
		return nil, err
	}
	if err := d.needCount(uint64(n), 1); err != nil {
		return nil, fmt.Errorf("count %d: %w", n, err)
	}
	vs := make([]any, 0, n)
	for i := range int(n) {
		v, err := d.value0()
		if err != nil {
			return nil, d.wrapf(err, "element %d", i)
		}
		vs = append(vs, v)
	}
	return vs, nil
}

// wrapf adds context to an error from a nested value, but only in the
// outer levels so that hostile nesting cannot make huge error strings.
func (d *Decoder) wrapf(err error, format string, a ...any) error {
	if d.depth > 3 {
		return err
	}
	return fmt.Errorf(format+": %w", append(a, err)...)
}

// short cuts a peer-supplied name down for an error message.
func short(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}
