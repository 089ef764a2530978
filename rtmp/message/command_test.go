package message

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/rtmphub/rtmphub/rtmp/amf"
)

// FuzzDecodeCommand decodes command (20, 17) and data (18, 15) message
// payloads: decoding never panics, DataName agrees with the decoded
// name, and encoding what was decoded reaches a fixed point after one
// round (decode, encode, decode, encode gives the same bytes twice: the
// first encoding may normalize, e.g. AMF3 integers to AMF0 numbers).
func FuzzDecodeCommand(f *testing.F) {
	for _, amf3 := range []bool{false, true} {
		for _, c := range []*Command{
			{Name: "connect", TransactionID: 1, Object: amf.Object{{Key: "app", Value: "live"}, {Key: "objectEncoding", Value: 3.0}}},
			{Name: "play", TransactionID: 0, Args: []any{"stream", -2.0, -1.0, true}},
			{Name: "_result", TransactionID: 2, Object: amf.Object{{Key: "fmsVer", Value: "FMS/3,5"}},
				Args: []any{amf.Object{{Key: "code", Value: "NetConnection.Connect.Success"}, {Key: "data", Value: amf.ECMAArray{{Key: "v", Value: "1"}}}}}},
			{Name: "call", TransactionID: 3, Args: []any{amf.VectorInt{Items: []int32{1, 2}}, amf.ByteArray{1}, []any{nil, amf.Undefined{}}}},
		} {
			typ, b, err := EncodeCommand(c, amf3)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(uint8(typ), b)
		}
		typ, b, err := EncodeData(amf3, "@setDataFrame", "onMetaData", amf.ECMAArray{{Key: "width", Value: 320.0}})
		if err != nil {
			f.Fatal(err)
		}
		f.Add(uint8(typ), b)
	}
	f.Add(uint8(TypeCommandAMF0), []byte("\x02\x00\x04play")) // a bare name
	f.Fuzz(func(t *testing.T, typ uint8, p []byte) {
		m := &Message{Type: Type(typ), Payload: p}
		switch m.Type {
		case TypeCommandAMF0, TypeCommandAMF3:
			c, err := DecodeCommand(m)
			if err != nil {
				return
			}
			if name, _, ok := DataName(AMF3Body(p)); ok && name != c.Name {
				t.Fatalf("DataName %q, decoded name %q", name, c.Name)
			}
			amf3 := m.Type == TypeCommandAMF3
			typ1, e1, err := EncodeCommand(c, amf3)
			if errors.Is(err, amf.ErrUnencodable) {
				return
			}
			if err != nil || typ1 != m.Type {
				t.Fatalf("encoding %+v: %v, %v", c, typ1, err)
			}
			c2, err := DecodeCommand(&Message{Type: typ1, Payload: e1})
			if err != nil {
				t.Fatalf("re-encoded %+v does not decode: %v", c, err)
			}
			_, e2, err := EncodeCommand(c2, amf3)
			if err != nil || !bytes.Equal(e1, e2) {
				t.Fatalf("%+v re-encodes to % x, then %+v to % x (%v)", c, e1, c2, e2, err)
			}
		case TypeDataAMF0, TypeDataAMF3:
			vals, err := DecodeData(m)
			if err != nil {
				return
			}
			amf3 := m.Type == TypeDataAMF3
			typ1, e1, err := EncodeData(amf3, vals...)
			if errors.Is(err, amf.ErrUnencodable) {
				return
			}
			if err != nil || typ1 != m.Type {
				t.Fatalf("encoding %v: %v, %v", vals, typ1, err)
			}
			vals2, err := DecodeData(&Message{Type: typ1, Payload: e1})
			if err != nil || len(vals2) != len(vals) {
				t.Fatalf("re-encoded %v decodes to %v, %v", vals, vals2, err)
			}
			_, e2, err := EncodeData(amf3, vals2...)
			if err != nil || !bytes.Equal(e1, e2) {
				t.Fatalf("%s re-encodes to % x, then to % x (%v)", fmt.Sprint(vals), e1, e2, err)
			}
		default:
			if _, err := DecodeCommand(m); err != ErrNotCommand {
				t.Fatalf("type %d: %v", typ, err)
			}
			if _, err := DecodeData(m); err == nil {
				t.Fatalf("type %d decoded as data", typ)
			}
		}
	})
}
