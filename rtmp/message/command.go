package message

import (
	"errors"
	"fmt"

	"github.com/rtmphub/rtmphub/rtmp/amf"
)

// Command is a decoded command message (types 20 and 17): a procedure name,
// a transaction id (0 means no reply is wanted), a command object (usually
// null) and the arguments.
type Command struct {
	Name          string
	TransactionID float64
	Object        any
	Args          []any
}

// Arg returns argument i, or nil when there are fewer arguments.
func (c *Command) Arg(i int) any {
	if i < len(c.Args) {
		return c.Args[i]
	}
	return nil
}

// ErrNotCommand is returned when a message is not a command message.
var ErrNotCommand = errors.New("message: not a command message")

// amf3Body strips the format selector byte of AMF3 command and data
// messages (types 17 and 15): the body that follows is AMF0 with AVM+
// switches. A body whose first byte is an AMF0 string marker is taken as
// having no selector, as some encoders omit it.
func amf3Body(p []byte) []byte {
	if len(p) > 0 && p[0] == 0x00 {
		return p[1:]
	}
	return p
}

// DecodeCommand decodes an AMF0 (20) or AMF3 (17) command message.
func DecodeCommand(m *Message) (*Command, error) {
	p := m.Payload
	switch m.Type {
	case TypeCommandAMF0:
	case TypeCommandAMF3:
		p = amf3Body(p)
	default:
		return nil, ErrNotCommand
	}
	d := amf.NewDecoder(p)
	name, err := d.DecodeAMF0()
	if err != nil {
		return nil, fmt.Errorf("command name: %w", err)
	}
	c := &Command{}
	var ok bool
	if c.Name, ok = name.(string); !ok {
		return nil, fmt.Errorf("command name is %T, not a string", name)
	}
	if d.Len() == 0 { // some peers send a bare name
		return c, nil
	}
	tx, err := d.DecodeAMF0()
	if err != nil {
		return nil, fmt.Errorf("command %q transaction id: %w", c.Name, err)
	}
	if c.TransactionID, ok = amf.Number(tx); !ok {
		return nil, fmt.Errorf("command %q transaction id is %T", c.Name, tx)
	}
	if d.Len() == 0 {
		return c, nil
	}
	if c.Object, err = d.DecodeAMF0(); err != nil {
		return nil, fmt.Errorf("command %q object: %w", c.Name, err)
	}
	for d.Len() > 0 {
		v, err := d.DecodeAMF0()
		if err != nil {
			return nil, fmt.Errorf("command %q argument %d: %w", c.Name, len(c.Args), err)
		}
		c.Args = append(c.Args, v)
	}
	return c, nil
}

// EncodeCommand encodes c for a peer using AMF0 (type 20) or, when amf3 is
// set, AMF3 (type 17: a zero selector byte, the name and transaction id in
// AMF0, other values switched to AMF3 except null and undefined).
func EncodeCommand(c *Command, amf3 bool) (Type, []byte, error) {
	// Each AVM+-switched value is written without references: whether a
	// peer's AMF3 reference tables span switches is not settled, and a
	// value without references reads the same either way.
	e := amf.Encoder{NoReferences: true}
	var out []byte
	if amf3 {
		out = append(out, 0x00)
	}
	if err := e.EncodeAMF0(c.Name); err != nil {
		return 0, nil, err
	}
	if err := e.EncodeAMF0(c.TransactionID); err != nil {
		return 0, nil, err
	}
	vals := make([]any, 0, 1+len(c.Args))
	vals = append(vals, c.Object)
	vals = append(vals, c.Args...)
	for i, v := range vals {
		if err := encodeValue(&e, v, amf3); err != nil {
			return 0, nil, fmt.Errorf("command %q value %d: %w", c.Name, i, err)
		}
	}
	out = append(out, e.Bytes()...)
	if amf3 {
		return TypeCommandAMF3, out, nil
	}
	return TypeCommandAMF0, out, nil
}

func encodeValue(e *amf.Encoder, v any, amf3 bool) error {
	if !amf3 {
		return e.EncodeAMF0(v)
	}
	switch v.(type) {
	case nil, amf.Undefined, amf.Unsupported, string, float64, bool, int:
		// Scalars stay AMF0 so that every decoder reads them directly.
		return e.EncodeAMF0(v)
	}
	return e.EncodeAMF0(amf.AVMPlus{Value: v})
}

// DecodeData decodes a data message (types 18 and 15) into its values.
func DecodeData(m *Message) ([]any, error) {
	p := m.Payload
	switch m.Type {
	case TypeDataAMF0:
	case TypeDataAMF3:
		p = amf3Body(p)
	default:
		return nil, fmt.Errorf("message: %v is not a data message", m.Type)
	}
	d := amf.NewDecoder(p)
	var vals []any
	for d.Len() > 0 {
		v, err := d.DecodeAMF0()
		if err != nil {
			return vals, fmt.Errorf("data value %d: %w", len(vals), err)
		}
		vals = append(vals, v)
	}
	return vals, nil
}

// EncodeData encodes values as a data message, AMF0 (18) or AMF3 (15).
func EncodeData(amf3 bool, vals ...any) (Type, []byte, error) {
	e := amf.Encoder{NoReferences: true}
	for i, v := range vals {
		if err := encodeValue(&e, v, amf3); err != nil {
			return 0, nil, fmt.Errorf("data value %d: %w", i, err)
		}
	}
	if amf3 {
		return TypeDataAMF3, append([]byte{0x00}, e.Bytes()...), nil
	}
	return TypeDataAMF0, append([]byte(nil), e.Bytes()...), nil
}

// DataName returns the leading string of an AMF0 data or command body and
// the offset of the value after it, without decoding anything else; ok is
// false when the body does not start with an AMF0 short string.
func DataName(body []byte) (name string, next int, ok bool) {
	if len(body) < 3 || body[0] != 0x02 {
		return "", 0, false
	}
	n := int(body[1])<<8 | int(body[2])
	if 3+n > len(body) {
		return "", 0, false
	}
	return string(body[3 : 3+n]), 3 + n, true
}

// AMF3Body returns the AMF0-with-switches body of a type 15 or 17 payload.
func AMF3Body(p []byte) []byte { return amf3Body(p) }
