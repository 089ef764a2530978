package message

import "fmt"

// aggregateHeaderSize is the size of a sub-message header in an aggregate:
// type u8, size u24, timestamp u24, timestamp extension u8, stream id u24.
const aggregateHeaderSize = 11

// SplitAggregate splits an Aggregate message (type 22) into its
// sub-messages. Each sub-message in the payload is a header (type u8, size
// u24, timestamp u24 plus its upper 8 bits, stream id u24), the body, and a
// u32 back pointer to the start of the header (FLV's PreviousTagSize),
// whose value is not checked; a back pointer missing after the last
// sub-message is tolerated.
//
// The timestamps are rebased: the first sub-message gets agg.Timestamp and
// the others keep their offset from the first (modulo 2^32). StreamID is
// agg.StreamID whatever the sub-header says; ChunkStreamID is left 0, so a
// writer picks DefaultCSID. Only audio, video and data (AMF0 or AMF3)
// sub-messages are accepted. Payloads alias agg.Payload (capacity-limited,
// so appending to one never overwrites the next). An empty aggregate yields
// no messages; truncated or oversized framing is an error.
func SplitAggregate(agg *Message) ([]*Message, error) {
	if agg.Type != TypeAggregate {
		return nil, fmt.Errorf("aggregate: message type %v", agg.Type)
	}
	p := agg.Payload
	var (
		msgs    []*Message
		firstTS uint32
	)
	for off := 0; off < len(p); {
		if len(p)-off < aggregateHeaderSize {
			return nil, fmt.Errorf("aggregate: %d bytes left at offset %d, want a %d-byte sub-message header", len(p)-off, off, aggregateHeaderSize)
		}
		h := p[off : off+aggregateHeaderSize]
		typ := Type(h[0])
		size := int(h[1])<<16 | int(h[2])<<8 | int(h[3])
		ts := uint32(h[7])<<24 | uint32(h[4])<<16 | uint32(h[5])<<8 | uint32(h[6])
		switch typ {
		case TypeAudio, TypeVideo, TypeDataAMF0, TypeDataAMF3:
		default:
			return nil, fmt.Errorf("aggregate: sub-message of type %v at offset %d", typ, off)
		}
		body := off + aggregateHeaderSize
		end := body + size
		if end > len(p) {
			return nil, fmt.Errorf("aggregate: sub-message of %d bytes at offset %d overruns the %d-byte payload", size, off, len(p))
		}
		if len(msgs) == 0 {
			firstTS = ts
		}
		msgs = append(msgs, &Message{
			Type:      typ,
			StreamID:  agg.StreamID,
			Timestamp: agg.Timestamp + (ts - firstTS),
			Payload:   p[body:end:end],
		})
		switch left := len(p) - end; {
		case left == 0:
			off = end // last sub-message without a back pointer
		case left < 4:
			return nil, fmt.Errorf("aggregate: %d bytes after the sub-message at offset %d, want a 4-byte back pointer", left, off)
		default:
			off = end + 4 // skip the back pointer
		}
	}
	return msgs, nil
}
