package tunnel

import (
	"bufio"
	"bytes"
	"io"
	"testing"

	"github.com/rtmphub/rtmphub/rtmp/message"
)

// roqrCases seed both the round-trip test and the fuzz test.
var roqrCases = []struct {
	name string
	flow uint64
	m    message.Message
	// wire is the frame's exact encoding, when given.
	wire []byte
}{
	{"small command", 0, message.Message{Type: message.TypeCommandAMF0, StreamID: 0, Timestamp: 0, ChunkStreamID: 3, Payload: []byte{2, 0, 1, 'x'}},
		[]byte{0, 0, 20, 0, 3, 4, 2, 0, 1, 'x'}},
	{"video, two-byte varints", 1, message.Message{Type: message.TypeVideo, StreamID: 1, Timestamp: 1000, ChunkStreamID: 6, Payload: []byte{0x17, 1}},
		[]byte{1, 0x43, 0xE8, 9, 1, 6, 2, 0x17, 1}},
	{"default chunk stream", 0, message.Message{Type: message.TypeAudio, StreamID: 1, Timestamp: 0xFFFFFFFF, Payload: bytes.Repeat([]byte{0xAF}, 300)}, nil},
	{"empty payload", 7, message.Message{Type: message.TypeDataAMF0, StreamID: 1, ChunkStreamID: 65599}, nil},
}

func TestRoQRFrameRoundTrip(t *testing.T) {
	for _, c := range roqrCases {
		b := AppendRoQRFrame(nil, c.flow, &c.m)
		if c.wire != nil && !bytes.Equal(b, c.wire) {
			t.Errorf("%s: encoded % x, want % x", c.name, b, c.wire)
		}
		flow, m, err := ReadRoQRFrame(bufio.NewReader(bytes.NewReader(b)), 0)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		want := c.m
		if want.ChunkStreamID == 0 {
			want.ChunkStreamID = message.DefaultCSID(want.Type, want.StreamID)
		}
		if flow != c.flow || m.Type != want.Type || m.StreamID != want.StreamID || m.Timestamp != want.Timestamp ||
			m.ChunkStreamID != want.ChunkStreamID || !bytes.Equal(m.Payload, want.Payload) {
			t.Errorf("%s: decoded flow %d %v, want %d %v", c.name, flow, m, c.flow, &want)
		}
		// Every truncation is an error, never a short message.
		for i := 1; i < len(b); i++ {
			_, _, err := ReadRoQRFrame(bufio.NewReader(bytes.NewReader(b[:i])), 0)
			if err != io.ErrUnexpectedEOF {
				t.Errorf("%s cut at %d: %v, want unexpected EOF", c.name, i, err)
			}
		}
	}
	if _, _, err := ReadRoQRFrame(bufio.NewReader(bytes.NewReader(nil)), 0); err != io.EOF {
		t.Errorf("empty input: %v, want EOF", err)
	}
	big := AppendRoQRFrame(nil, 0, &message.Message{Type: message.TypeVideo, Payload: make([]byte, 2000)})
	if _, _, err := ReadRoQRFrame(bufio.NewReader(bytes.NewReader(big)), 1024); err == nil {
		t.Error("a message over the limit was accepted")
	}
}

func FuzzRoQRFrame(f *testing.F) {
	for _, c := range roqrCases {
		f.Add(AppendRoQRFrame(nil, c.flow, &c.m))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bufio.NewReader(bytes.NewReader(b))
		for {
			flow, m, err := ReadRoQRFrame(r, 1<<16)
			if err != nil {
				return
			}
			// What decodes re-encodes to a frame that decodes the same.
			again, m2, err := ReadRoQRFrame(bufio.NewReader(bytes.NewReader(AppendRoQRFrame(nil, flow, m))), 1<<16)
			if err != nil || again != flow || m2.Type != m.Type || m2.Timestamp != m.Timestamp ||
				m2.StreamID != m.StreamID || m2.ChunkStreamID != m.ChunkStreamID && m.ChunkStreamID != 0 || !bytes.Equal(m2.Payload, m.Payload) {
				t.Fatalf("re-encode of %v: %v %v", m, m2, err)
			}
		}
	})
}
