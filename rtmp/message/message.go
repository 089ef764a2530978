// Package message defines RTMP messages, the unit the rest of rtmphub works
// on, and the codecs of their payloads: protocol control, user control,
// commands, data, media headers and aggregates.
//
// The package is transport-agnostic: chunked RTMP (package chunk) and RoQR
// both carry these messages. It never logs and never starts goroutines.
package message

import "fmt"

// Type is an RTMP message type id.
type Type uint8

// Message types (RTMP specification 1.0, section 5.4 and 7.1).
const (
	TypeSetChunkSize     Type = 1
	TypeAbort            Type = 2
	TypeAck              Type = 3
	TypeUserControl      Type = 4
	TypeWindowAckSize    Type = 5
	TypeSetPeerBandwidth Type = 6
	TypeAudio            Type = 8
	TypeVideo            Type = 9
	TypeDataAMF3         Type = 15
	TypeSharedObjectAMF3 Type = 16
	TypeCommandAMF3      Type = 17
	TypeDataAMF0         Type = 18
	TypeSharedObjectAMF0 Type = 19
	TypeCommandAMF0      Type = 20
	TypeAggregate        Type = 22
)

var typeNames = map[Type]string{
	TypeSetChunkSize:     "SetChunkSize",
	TypeAbort:            "Abort",
	TypeAck:              "Acknowledgement",
	TypeUserControl:      "UserControl",
	TypeWindowAckSize:    "WindowAckSize",
	TypeSetPeerBandwidth: "SetPeerBandwidth",
	TypeAudio:            "Audio",
	TypeVideo:            "Video",
	TypeDataAMF3:         "DataAMF3",
	TypeSharedObjectAMF3: "SharedObjectAMF3",
	TypeCommandAMF3:      "CommandAMF3",
	TypeDataAMF0:         "DataAMF0",
	TypeSharedObjectAMF0: "SharedObjectAMF0",
	TypeCommandAMF0:      "CommandAMF0",
	TypeAggregate:        "Aggregate",
}

func (t Type) String() string {
	if s, ok := typeNames[t]; ok {
		return s
	}
	return fmt.Sprintf("Type(%d)", uint8(t))
}

// IsControl reports whether t is a protocol control message (types 1-6),
// which travel on chunk stream 2 and message stream 0.
func (t Type) IsControl() bool { return t >= TypeSetChunkSize && t <= TypeSetPeerBandwidth }

// Well-known chunk stream ids used when writing. Any id from 2 up is valid
// on the wire; these keep control, commands and media apart so that chunk
// header compression works per kind.
const (
	CSIDControl uint32 = 2 // protocol control and user control
	CSIDCommand uint32 = 3 // commands on message stream 0
	CSIDStream  uint32 = 5 // commands and data on a media stream
	CSIDAudio   uint32 = 6
	CSIDVideo   uint32 = 7

	// CSIDSharedOb carries shared object messages (types 19 and 16): chunk
	// stream 3, with the commands of message stream 0. Flash Player and
	// librtmp (RTMP_ClientPacket switches on the message type) take them
	// on any chunk stream, and FMS itself answered a Use on 4 (Adobe Media
	// Server 5's bytes in HaishinKit.swift issue #21); but Red5
	// (RTMPConnection.sendSharedObjectMessage and ClientSharedObject write
	// to channel 3) and FluorineFx (SharedObject.SendUpdates,
	// SendSOCreationFailed: GetChannel(3)) send them on 3, and client
	// libraries written against those read commands only from chunk
	// streams 2 and 3 and silently dropped ours on 4. No client is known
	// to require 4, so 3 reaches both kinds.
	CSIDSharedOb = CSIDCommand
)

// DefaultCSID returns the chunk stream id rtmphub writes a message of type t
// on, given whether it belongs to a media stream (streamID != 0).
func DefaultCSID(t Type, streamID uint32) uint32 {
	switch {
	case t.IsControl():
		return CSIDControl
	case t == TypeAudio:
		return CSIDAudio
	case t == TypeVideo:
		return CSIDVideo
	case t == TypeSharedObjectAMF0 || t == TypeSharedObjectAMF3:
		return CSIDSharedOb
	case streamID != 0:
		return CSIDStream
	default:
		return CSIDCommand
	}
}

// Message is one RTMP message. Timestamp is the absolute 32-bit timestamp in
// milliseconds (it wraps). ChunkStreamID is the id it arrived on; when
// writing, zero means DefaultCSID.
//
// A Message handed to a writer must not be modified until the write
// returns; payloads shared between many connections are never modified.
type Message struct {
	Type          Type
	StreamID      uint32
	Timestamp     uint32
	ChunkStreamID uint32
	Payload       []byte
}

func (m *Message) String() string {
	return fmt.Sprintf("%v csid=%d msid=%d ts=%d len=%d", m.Type, m.ChunkStreamID, m.StreamID, m.Timestamp, len(m.Payload))
}
