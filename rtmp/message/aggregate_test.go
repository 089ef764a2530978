package message

import (
	"bytes"
	"encoding/binary"
	"reflect"
	"testing"
)

// sub is one sub-message of an aggregate as it sits in the payload.
type sub struct {
	typ      Type
	ts       uint32
	streamID uint32
	body     []byte
}

// aggregatePayload lays subs out as FMS does: header, body, back pointer
// (11 + body size).
func aggregatePayload(subs ...sub) []byte {
	var p []byte
	for _, s := range subs {
		p = append(p, byte(s.typ), byte(len(s.body)>>16), byte(len(s.body)>>8), byte(len(s.body)),
			byte(s.ts>>16), byte(s.ts>>8), byte(s.ts), byte(s.ts>>24),
			byte(s.streamID>>16), byte(s.streamID>>8), byte(s.streamID))
		p = append(p, s.body...)
		p = binary.BigEndian.AppendUint32(p, uint32(aggregateHeaderSize+len(s.body)))
	}
	return p
}

func agg(ts, streamID uint32, payload []byte) *Message {
	return &Message{Type: TypeAggregate, Timestamp: ts, StreamID: streamID, ChunkStreamID: 7, Payload: payload}
}

var (
	avcKey   = mustHex("17 01 000000 00000002 6588")
	aacFrame = mustHex("af 01 2146")
	metaData = mustHex("02000a6f6e4d65746144617461 0800000000 000009")
)

var aggregateCases = []struct {
	name string
	agg  *Message
	want []*Message // ignored when err
	err  bool
}{
	{
		name: "FMS VOD video and audio",
		agg:  agg(1000, 1, aggregatePayload(sub{TypeVideo, 5000, 1, avcKey}, sub{TypeAudio, 5000, 1, aacFrame}, sub{TypeAudio, 5023, 1, aacFrame})),
		want: []*Message{
			{Type: TypeVideo, StreamID: 1, Timestamp: 1000, Payload: avcKey},
			{Type: TypeAudio, StreamID: 1, Timestamp: 1000, Payload: aacFrame},
			{Type: TypeAudio, StreamID: 1, Timestamp: 1023, Payload: aacFrame},
		},
	},
	{
		name: "onMetaData first",
		agg:  agg(0, 1, aggregatePayload(sub{TypeDataAMF0, 0, 1, metaData}, sub{TypeVideo, 0, 1, avcKey})),
		want: []*Message{
			{Type: TypeDataAMF0, StreamID: 1, Payload: metaData},
			{Type: TypeVideo, StreamID: 1, Payload: avcKey},
		},
	},
	{
		name: "timestamp extension byte",
		agg:  agg(0x01000000, 1, aggregatePayload(sub{TypeVideo, 0x01000010, 1, avcKey}, sub{TypeVideo, 0x01000050, 1, avcKey})),
		want: []*Message{
			{Type: TypeVideo, StreamID: 1, Timestamp: 0x01000000, Payload: avcKey},
			{Type: TypeVideo, StreamID: 1, Timestamp: 0x01000040, Payload: avcKey},
		},
	},
	{
		name: "sub-timestamps wrap",
		agg:  agg(100, 1, aggregatePayload(sub{TypeAudio, 0xfffffff0, 1, aacFrame}, sub{TypeAudio, 0x10, 1, aacFrame})),
		want: []*Message{
			{Type: TypeAudio, StreamID: 1, Timestamp: 100, Payload: aacFrame},
			{Type: TypeAudio, StreamID: 1, Timestamp: 132, Payload: aacFrame},
		},
	},
	{
		name: "later sub-message with an earlier timestamp",
		agg:  agg(100, 1, aggregatePayload(sub{TypeVideo, 500, 1, avcKey}, sub{TypeAudio, 490, 1, aacFrame})),
		want: []*Message{
			{Type: TypeVideo, StreamID: 1, Timestamp: 100, Payload: avcKey},
			{Type: TypeAudio, StreamID: 1, Timestamp: 90, Payload: aacFrame},
		},
	},
	{
		name: "stream id taken from the aggregate",
		agg:  agg(0, 3, aggregatePayload(sub{TypeAudio, 0, 0, aacFrame})),
		want: []*Message{{Type: TypeAudio, StreamID: 3, Payload: aacFrame}},
	},
	{
		name: "empty body",
		agg:  agg(0, 1, aggregatePayload(sub{TypeAudio, 0, 1, nil})),
		want: []*Message{{Type: TypeAudio, StreamID: 1, Payload: []byte{}}},
	},
	{
		name: "last back pointer missing",
		agg:  agg(0, 1, aggregatePayload(sub{TypeAudio, 0, 1, aacFrame})[:aggregateHeaderSize+len(aacFrame)]),
		want: []*Message{{Type: TypeAudio, StreamID: 1, Payload: aacFrame}},
	},
	{
		name: "empty aggregate",
		agg:  agg(0, 1, nil),
		want: nil,
	},
	{name: "not an aggregate", agg: &Message{Type: TypeVideo, Payload: avcKey}, err: true},
	{name: "short header", agg: agg(0, 1, mustHex("09 000005 000000 00 0000")), err: true},
	{name: "body overruns", agg: agg(0, 1, aggregatePayload(sub{TypeAudio, 0, 1, aacFrame})[:aggregateHeaderSize+2]), err: true},
	{name: "2-byte back pointer", agg: agg(0, 1, aggregatePayload(sub{TypeAudio, 0, 1, aacFrame})[:aggregateHeaderSize+len(aacFrame)+2]), err: true},
	{name: "garbage after a sub-message", agg: agg(0, 1, append(aggregatePayload(sub{TypeAudio, 0, 1, aacFrame}), 1, 2, 3)), err: true},
	{name: "nested aggregate", agg: agg(0, 1, aggregatePayload(sub{TypeAggregate, 0, 1, aggregatePayload(sub{TypeAudio, 0, 1, aacFrame})})), err: true},
	{name: "command inside", agg: agg(0, 1, aggregatePayload(sub{TypeCommandAMF0, 0, 1, []byte{2, 0, 0}})), err: true},
	{name: "control inside", agg: agg(0, 1, aggregatePayload(sub{TypeSetChunkSize, 0, 1, []byte{0, 0, 16, 0}})), err: true},
}

func TestSplitAggregate(t *testing.T) {
	for _, tc := range aggregateCases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := SplitAggregate(tc.agg)
			if tc.err {
				if err == nil {
					t.Fatalf("got %v, want an error", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %d messages, want %d", len(got), len(tc.want))
			}
			for i := range got {
				if !reflect.DeepEqual(got[i], tc.want[i]) {
					t.Errorf("message %d: got %v %x, want %v %x", i, got[i], got[i].Payload, tc.want[i], tc.want[i].Payload)
				}
			}
		})
	}
}

func TestSplitAggregateAliasing(t *testing.T) {
	m := agg(0, 1, aggregatePayload(sub{TypeAudio, 0, 1, aacFrame}, sub{TypeAudio, 1, 1, aacFrame}))
	msgs, err := SplitAggregate(m)
	if err != nil {
		t.Fatal(err)
	}
	before := bytes.Clone(m.Payload)
	_ = append(msgs[0].Payload, 0xff, 0xff, 0xff, 0xff)
	if !bytes.Equal(m.Payload, before) {
		t.Fatal("appending to a sub-message payload changed the aggregate")
	}
}

func FuzzSplitAggregate(f *testing.F) {
	for _, tc := range aggregateCases {
		f.Add(tc.agg.Timestamp, tc.agg.Payload)
	}
	f.Fuzz(func(t *testing.T, ts uint32, p []byte) {
		msgs, err := SplitAggregate(agg(ts, 1, p))
		if err != nil {
			return
		}
		if len(msgs)*aggregateHeaderSize > len(p) {
			t.Fatalf("%d messages from %d bytes", len(msgs), len(p))
		}
		if len(msgs) > 0 && msgs[0].Timestamp != ts {
			t.Fatalf("first timestamp %d, want %d", msgs[0].Timestamp, ts)
		}
		// Laying the sub-messages out again and splitting gives the
		// same messages.
		subs := make([]sub, len(msgs))
		for i, m := range msgs {
			if m.StreamID != 1 || m.ChunkStreamID != 0 {
				t.Fatalf("message %d: %v", i, m)
			}
			subs[i] = sub{m.Type, m.Timestamp, 9, m.Payload}
		}
		again, err := SplitAggregate(agg(ts, 1, aggregatePayload(subs...)))
		if err != nil || !reflect.DeepEqual(again, msgs) {
			t.Fatalf("re-split: %v, %v; want %v", again, err, msgs)
		}
	})
}
