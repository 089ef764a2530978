package message

import (
	"encoding/binary"
	"fmt"
)

// controlMessage returns a protocol control or user control message ready
// to send: chunk stream 2, message stream 0, timestamp 0.
func controlMessage(t Type, payload []byte) *Message {
	return &Message{Type: t, ChunkStreamID: CSIDControl, Payload: payload}
}

func uint32Message(t Type, n uint32) *Message {
	return controlMessage(t, binary.BigEndian.AppendUint32(make([]byte, 0, 4), n))
}

// SetChunkSize returns a Set Chunk Size message (type 1) announcing the
// chunk size n (1 to 0x7FFFFFFF) for the messages that follow.
func SetChunkSize(n uint32) *Message { return uint32Message(TypeSetChunkSize, n) }

// Abort returns an Abort message (type 2) that discards the partly received
// message on chunk stream csid.
func Abort(csid uint32) *Message { return uint32Message(TypeAbort, csid) }

// Ack returns an Acknowledgement (type 3) carrying sequence, the number of
// bytes received so far (it wraps at 2^32).
func Ack(sequence uint32) *Message { return uint32Message(TypeAck, sequence) }

// WindowAckSize returns a Window Acknowledgement Size message (type 5): the
// peer acknowledges every n bytes it receives.
func WindowAckSize(n uint32) *Message { return uint32Message(TypeWindowAckSize, n) }

// Limit types of Set Peer Bandwidth.
const (
	LimitHard    uint8 = 0
	LimitSoft    uint8 = 1
	LimitDynamic uint8 = 2
)

// SetPeerBandwidth returns a Set Peer Bandwidth message (type 6): window n
// with limit type limit (LimitHard, LimitSoft or LimitDynamic).
func SetPeerBandwidth(n uint32, limit uint8) *Message {
	p := binary.BigEndian.AppendUint32(make([]byte, 0, 5), n)
	return controlMessage(TypeSetPeerBandwidth, append(p, limit))
}

// DecodeUint32 decodes the payload of Abort, Acknowledgement and Window
// Acknowledgement Size (types 2, 3 and 5), and of Set Chunk Size (type 1)
// without its checks (see DecodeSetChunkSize). Bytes after the first four
// are ignored.
func DecodeUint32(payload []byte) (uint32, error) {
	if len(payload) < 4 {
		return 0, fmt.Errorf("control message: payload of %d bytes, want 4", len(payload))
	}
	return binary.BigEndian.Uint32(payload), nil
}

// DecodeSetChunkSize decodes a Set Chunk Size payload (type 1): the top bit
// must be 0 and the size at least 1.
func DecodeSetChunkSize(payload []byte) (uint32, error) {
	n, err := DecodeUint32(payload)
	if err != nil {
		return 0, err
	}
	if n&0x80000000 != 0 || n == 0 {
		return 0, fmt.Errorf("control message: invalid chunk size %#x", n)
	}
	return n, nil
}

// DecodeSetPeerBandwidth decodes a Set Peer Bandwidth payload (type 6).
func DecodeSetPeerBandwidth(payload []byte) (n uint32, limit uint8, err error) {
	if len(payload) < 5 {
		return 0, 0, fmt.Errorf("control message: SetPeerBandwidth payload of %d bytes, want 5", len(payload))
	}
	n, limit = binary.BigEndian.Uint32(payload), payload[4]
	if limit > LimitDynamic {
		return 0, 0, fmt.Errorf("control message: SetPeerBandwidth limit type %d", limit)
	}
	return n, limit, nil
}

// UserControlEvent is the event type of a User Control message (type 4).
type UserControlEvent uint16

// User control events (RTMP specification 1.0 section 7.1.7, and the
// events Flash Player and FMS use beyond it).
const (
	UCStreamBegin       UserControlEvent = 0  // stream id: the stream is ready
	UCStreamEOF         UserControlEvent = 1  // stream id: playback is over
	UCStreamDry         UserControlEvent = 2  // stream id: no more data for now
	UCSetBufferLength   UserControlEvent = 3  // stream id, buffer length in ms
	UCStreamIsRecorded  UserControlEvent = 4  // stream id: a recorded stream
	UCPingRequest       UserControlEvent = 6  // server timestamp
	UCPingResponse      UserControlEvent = 7  // timestamp echoed from the request
	UCSWFVerifyRequest  UserControlEvent = 26 // no data
	UCSWFVerifyResponse UserControlEvent = 27 // 42 bytes: 1, 1, size, size, HMAC
	UCBufferEmpty       UserControlEvent = 31 // stream id (FMS 3.5 VOD pacing)
	UCBufferReady       UserControlEvent = 32 // stream id
)

var userControlNames = map[UserControlEvent]string{
	UCStreamBegin:       "StreamBegin",
	UCStreamEOF:         "StreamEOF",
	UCStreamDry:         "StreamDry",
	UCSetBufferLength:   "SetBufferLength",
	UCStreamIsRecorded:  "StreamIsRecorded",
	UCPingRequest:       "PingRequest",
	UCPingResponse:      "PingResponse",
	UCSWFVerifyRequest:  "SWFVerifyRequest",
	UCSWFVerifyResponse: "SWFVerifyResponse",
	UCBufferEmpty:       "BufferEmpty",
	UCBufferReady:       "BufferReady",
}

func (e UserControlEvent) String() string {
	if s, ok := userControlNames[e]; ok {
		return s
	}
	return fmt.Sprintf("UserControlEvent(%d)", uint16(e))
}

// hasUint32 reports whether the event's data is a single 32-bit value:
// a stream id, or the timestamp of a ping.
func (e UserControlEvent) hasUint32() bool {
	switch e {
	case UCStreamBegin, UCStreamEOF, UCStreamDry, UCStreamIsRecorded,
		UCPingRequest, UCPingResponse, UCBufferEmpty, UCBufferReady:
		return true
	}
	return false
}

// UserControl is a decoded User Control message (type 4).
type UserControl struct {
	Event UserControlEvent
	// StreamID is the stream id the event is about, or the timestamp of
	// PingRequest and PingResponse.
	StreamID uint32
	// BufferLength is the client's buffer in milliseconds
	// (SetBufferLength only).
	BufferLength uint32
	// Data is the raw event data of SWFVerifyRequest, SWFVerifyResponse
	// and unknown events; nil for the others.
	Data []byte
}

// DecodeUserControl decodes a User Control payload. Events with a stream
// id or a timestamp need 4 data bytes, SetBufferLength 8; extra bytes are
// ignored. The Data of other events aliases payload.
func DecodeUserControl(payload []byte) (UserControl, error) {
	if len(payload) < 2 {
		return UserControl{}, fmt.Errorf("user control: payload of %d bytes", len(payload))
	}
	u := UserControl{Event: UserControlEvent(binary.BigEndian.Uint16(payload))}
	data := payload[2:]
	switch {
	case u.Event == UCSetBufferLength:
		if len(data) < 8 {
			return UserControl{}, fmt.Errorf("user control: %v with %d data bytes, want 8", u.Event, len(data))
		}
		u.StreamID = binary.BigEndian.Uint32(data)
		u.BufferLength = binary.BigEndian.Uint32(data[4:])
	case u.Event.hasUint32():
		if len(data) < 4 {
			return UserControl{}, fmt.Errorf("user control: %v with %d data bytes, want 4", u.Event, len(data))
		}
		u.StreamID = binary.BigEndian.Uint32(data)
	default:
		u.Data = data[:len(data):len(data)]
	}
	return u, nil
}

// Message returns u encoded as a User Control message ready to send: chunk
// stream 2, message stream 0, timestamp 0.
func (u UserControl) Message() *Message {
	p := make([]byte, 2, 10+len(u.Data))
	binary.BigEndian.PutUint16(p, uint16(u.Event))
	switch {
	case u.Event == UCSetBufferLength:
		p = binary.BigEndian.AppendUint32(p, u.StreamID)
		p = binary.BigEndian.AppendUint32(p, u.BufferLength)
	case u.Event.hasUint32():
		p = binary.BigEndian.AppendUint32(p, u.StreamID)
	default:
		p = append(p, u.Data...)
	}
	return controlMessage(TypeUserControl, p)
}
