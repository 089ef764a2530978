package message

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/rtmphub/rtmphub/rtmp/amf"
)

// SOEventType is the type of one shared object event.
type SOEventType uint8

// Shared object event types. "c→s" events come from clients, "s→c" from
// the server.
const (
	SOUse           SOEventType = 1  // c→s: subscribe; no body
	SORelease       SOEventType = 2  // c→s: unsubscribe; no body
	SORequestChange SOEventType = 3  // c→s: Key, Value
	SOChange        SOEventType = 4  // s→c: Key, Value
	SOSuccess       SOEventType = 5  // s→c: Key; the requester's change was accepted
	SOSendMessage   SOEventType = 6  // both: Handler, Args
	SOStatus        SOEventType = 7  // s→c: Code, Level
	SOClear         SOEventType = 8  // s→c: no body
	SORemove        SOEventType = 9  // s→c: Key
	SORequestRemove SOEventType = 10 // c→s: Key
	SOUseSuccess    SOEventType = 11 // s→c: no body
)

var soEventNames = [...]string{
	SOUse:           "Use",
	SORelease:       "Release",
	SORequestChange: "RequestChange",
	SOChange:        "Change",
	SOSuccess:       "Success",
	SOSendMessage:   "SendMessage",
	SOStatus:        "Status",
	SOClear:         "Clear",
	SORemove:        "Remove",
	SORequestRemove: "RequestRemove",
	SOUseSuccess:    "UseSuccess",
}

func (t SOEventType) String() string {
	if int(t) < len(soEventNames) && soEventNames[t] != "" {
		return soEventNames[t]
	}
	return fmt.Sprintf("SOEventType(%d)", uint8(t))
}

// SOEvent is one event of a shared object message. Which fields count
// depends on Type (see the constants).
type SOEvent struct {
	Type SOEventType
	// Key is the slot name of RequestChange, Change, Success, Remove and
	// RequestRemove events.
	Key string
	// Value is the slot value of RequestChange and Change events. A
	// Success, Remove or RequestRemove event read with a value after its
	// key keeps it here, and one with a non-nil Value is written with it.
	Value any
	// Handler and Args are the method name and arguments of SendMessage.
	Handler string
	Args    []any
	// Code and Level are the status code and level of Status events.
	Code, Level string
	// Raw is the body of an event type this package does not know, or the
	// unexpected body of an event that has none. It is written back as is.
	Raw []byte
}

// SharedObjectMessage is the payload of a shared object message (types 19
// and 16).
type SharedObjectMessage struct {
	Name    string
	Version uint32
	// Persistent mirrors bit value 2 of Flags: reading sets it from Flags,
	// writing sets or clears that bit from it.
	Persistent bool
	// Flags is the raw flags word. The reserved word after it is read and
	// ignored, and written as zero.
	Flags  uint32
	Events []SOEvent
}

// soPersistent is the flag bit of a persistent shared object.
const soPersistent = 2

// soHeaderLen is the fixed part of the header after the name: version,
// flags and the reserved word.
const soHeaderLen = 12

var errSOTruncated = fmt.Errorf("sharedobject: %w", amf.ErrTruncated)

// DecodeSharedObject decodes a shared object message payload. For type 16
// (amf3 set) the payload starts with one selector byte, which is skipped,
// and values are AMF3; if the message does not read that way it is read
// again with AMF0 values (AMF3 values behind AVM+ switches), which some
// peers send. Event keys, status strings and the name are always plain
// u16-length strings. Reference tables are shared by all values of one
// message. An event whose body holds several key/value pairs (Change,
// RequestChange) becomes one event per pair.
func DecodeSharedObject(payload []byte, amf3 bool) (*SharedObjectMessage, error) {
	if !amf3 {
		return decodeSO(payload, false)
	}
	if len(payload) == 0 {
		return nil, errSOTruncated
	}
	so, err := decodeSO(payload[1:], true)
	if err != nil {
		if so0, err0 := decodeSO(payload[1:], false); err0 == nil {
			return so0, nil
		}
	}
	return so, err
}

// soReader reads one message; d decodes every value of it.
type soReader struct {
	p    []byte
	off  int
	d    *amf.Decoder
	amf3 bool
}

func (r *soReader) left() int { return len(r.p) - r.off }

func (r *soReader) u8() (byte, error) {
	if r.left() < 1 {
		return 0, amf.ErrTruncated
	}
	r.off++
	return r.p[r.off-1], nil
}

func (r *soReader) u32() (uint32, error) {
	if r.left() < 4 {
		return 0, amf.ErrTruncated
	}
	r.off += 4
	return binary.BigEndian.Uint32(r.p[r.off-4:]), nil
}

// str reads a u16-length string, within end.
func (r *soReader) str(end int) (string, error) {
	if end-r.off < 2 {
		return "", amf.ErrTruncated
	}
	n := int(binary.BigEndian.Uint16(r.p[r.off:]))
	if end-r.off-2 < n {
		return "", amf.ErrTruncated
	}
	r.off += 2 + n
	return string(r.p[r.off-n : r.off]), nil
}

// value decodes one AMF value from p[r.off:end].
func (r *soReader) value(end int) (any, error) {
	r.d.SetInput(r.p[r.off:end])
	var v any
	var err error
	if r.amf3 {
		v, err = r.d.DecodeAMF3()
	} else {
		v, err = r.d.DecodeAMF0()
	}
	r.off = end - r.d.Len()
	return v, err
}

// handler decodes the SendMessage method name: an AMF0 string, or in AMF3
// messages possibly an AMF3 one.
func (r *soReader) handler(end int) (string, error) {
	var v any
	var err error
	if r.off < end && (r.p[r.off] == 0x02 || r.p[r.off] == 0x0C) { // AMF0 string, long string
		r.d.SetInput(r.p[r.off:end])
		v, err = r.d.DecodeAMF0()
		r.off = end - r.d.Len()
	} else {
		v, err = r.value(end)
	}
	if err != nil {
		return "", err
	}
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("handler is %T, not a string", v)
	}
	return s, nil
}

func decodeSO(p []byte, amf3 bool) (*SharedObjectMessage, error) {
	r := &soReader{p: p, d: amf.NewDecoder(nil), amf3: amf3}
	name, err := r.str(len(p))
	if err != nil {
		return nil, fmt.Errorf("sharedobject: name: %w", err)
	}
	if r.left() < soHeaderLen {
		return nil, fmt.Errorf("sharedobject %q: header: %w", name, amf.ErrTruncated)
	}
	so := &SharedObjectMessage{Name: name}
	so.Version, _ = r.u32()
	so.Flags, _ = r.u32()
	r.u32() // reserved
	so.Persistent = so.Flags&soPersistent != 0
	for r.left() > 0 {
		at := r.off
		t, _ := r.u8()
		n, err := r.u32()
		if err == nil && uint64(n) > uint64(r.left()) {
			err = amf.ErrTruncated
		}
		if err != nil {
			return nil, fmt.Errorf("sharedobject %q: event %d at offset %d: %w", name, len(so.Events), at, err)
		}
		if err := r.event(so, SOEventType(t), r.off+int(n)); err != nil {
			return nil, fmt.Errorf("sharedobject %q: %v event %d at offset %d: %w",
				name, SOEventType(t), len(so.Events), at, err)
		}
	}
	return so, nil
}

// event decodes the body p[r.off:end] of an event of type t into so.
func (r *soReader) event(so *SharedObjectMessage, t SOEventType, end int) error {
	ev := SOEvent{Type: t}
	var err error
	switch t {
	case SOUse, SORelease, SOClear, SOUseSuccess:
		if end > r.off {
			ev.Raw = append([]byte{}, r.p[r.off:end]...)
			r.off = end
		}
	case SORequestChange, SOChange:
		for {
			if ev.Key, err = r.str(end); err != nil {
				return fmt.Errorf("key: %w", err)
			}
			if ev.Value, err = r.value(end); err != nil {
				return fmt.Errorf("value of %q: %w", ev.Key, err)
			}
			if r.off == end {
				break
			}
			so.Events = append(so.Events, ev)
			ev = SOEvent{Type: t}
		}
	case SOSuccess, SORemove, SORequestRemove:
		if ev.Key, err = r.str(end); err != nil {
			return fmt.Errorf("key: %w", err)
		}
		if r.off < end {
			if ev.Value, err = r.value(end); err != nil {
				return fmt.Errorf("value of %q: %w", ev.Key, err)
			}
		}
	case SOSendMessage:
		if ev.Handler, err = r.handler(end); err != nil {
			return fmt.Errorf("handler: %w", err)
		}
		for r.off < end {
			v, err := r.value(end)
			if err != nil {
				return fmt.Errorf("%s argument %d: %w", ev.Handler, len(ev.Args), err)
			}
			ev.Args = append(ev.Args, v)
		}
	case SOStatus:
		if ev.Code, err = r.str(end); err != nil {
			return fmt.Errorf("code: %w", err)
		}
		if ev.Level, err = r.str(end); err != nil {
			return fmt.Errorf("level: %w", err)
		}
	default:
		ev.Raw = append([]byte{}, r.p[r.off:end]...)
		r.off = end
	}
	if r.off != end {
		return fmt.Errorf("%d bytes left in the event body", end-r.off)
	}
	so.Events = append(so.Events, ev)
	return nil
}

// errSOString reports a name, key or status string too long for its u16
// length.
var errSOString = errors.New("sharedobject: string longer than 65535 bytes")

// EncodeSharedObject appends the payload of so to dst: for type 16 (amf3
// set) a zero selector byte, then AMF3 values; otherwise AMF0 values.
// AMF3 values are written without references, which every peer reads
// whatever the scope of its reference tables. The SendMessage handler is
// an AMF0 string in both. On error dst is returned unchanged in length.
func EncodeSharedObject(dst []byte, so *SharedObjectMessage, amf3 bool) ([]byte, error) {
	start := len(dst)
	e := amf.Encoder{NoReferences: true}
	e.ResetTo(dst)
	fail := func(err error) ([]byte, error) { return dst[:start], err }
	if amf3 {
		e.Write([]byte{0})
	}
	if err := soString(&e, so.Name); err != nil {
		return fail(fmt.Errorf("sharedobject: name: %w", err))
	}
	flags := so.Flags &^ soPersistent
	if so.Persistent {
		flags |= soPersistent
	}
	var hdr [soHeaderLen]byte
	binary.BigEndian.PutUint32(hdr[0:], so.Version)
	binary.BigEndian.PutUint32(hdr[4:], flags)
	e.Write(hdr[:])
	for i := range so.Events {
		ev := &so.Events[i]
		e.Write([]byte{byte(ev.Type), 0, 0, 0, 0})
		mark := e.Len()
		if err := soEvent(&e, ev, amf3); err != nil {
			return fail(fmt.Errorf("sharedobject %q: %v event %d: %w", so.Name, ev.Type, i, err))
		}
		n := e.Len() - mark
		if uint64(n) > math.MaxUint32 {
			return fail(fmt.Errorf("sharedobject %q: event %d of %d bytes is too long", so.Name, i, n))
		}
		binary.BigEndian.PutUint32(e.Bytes()[mark-4:], uint32(n))
	}
	return e.Bytes(), nil
}

func soString(e *amf.Encoder, s string) error {
	if len(s) > math.MaxUint16 {
		return errSOString
	}
	e.Write([]byte{byte(len(s) >> 8), byte(len(s))})
	e.WriteString(s)
	return nil
}

func soValue(e *amf.Encoder, v any, amf3 bool) error {
	if amf3 {
		return e.EncodeAMF3(v)
	}
	return e.EncodeAMF0(v)
}

func soEvent(e *amf.Encoder, ev *SOEvent, amf3 bool) error {
	switch ev.Type {
	case SORequestChange, SOChange:
		if err := soString(e, ev.Key); err != nil {
			return err
		}
		return soValue(e, ev.Value, amf3)
	case SOSuccess, SORemove, SORequestRemove:
		if err := soString(e, ev.Key); err != nil {
			return err
		}
		if ev.Value != nil {
			return soValue(e, ev.Value, amf3)
		}
	case SOSendMessage:
		if err := e.EncodeAMF0(ev.Handler); err != nil {
			return err
		}
		for i, a := range ev.Args {
			if err := soValue(e, a, amf3); err != nil {
				return fmt.Errorf("argument %d: %w", i, err)
			}
		}
	case SOStatus:
		if err := soString(e, ev.Code); err != nil {
			return err
		}
		return soString(e, ev.Level)
	default: // Use, Release, Clear, UseSuccess and unknown types
		e.Write(ev.Raw)
	}
	return nil
}
