package rtmpquic

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

func TestRoQRDatagramFraming(t *testing.T) {
	for _, c := range roqrCases {
		b := AppendRoQRFrame(nil, c.flow, &c.m)
		flow, m, err := ParseRoQRDatagram(b, 0)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		want := c.m
		if want.ChunkStreamID == 0 {
			want.ChunkStreamID = message.DefaultCSID(want.Type, want.StreamID)
		}
		if flow != c.flow || m.Type != want.Type || m.StreamID != want.StreamID || m.Timestamp != want.Timestamp ||
			m.ChunkStreamID != want.ChunkStreamID || !bytes.Equal(m.Payload, want.Payload) {
			t.Errorf("%s: datagram decoded flow %d %v, want %d %v", c.name, flow, m, c.flow, &want)
		}
		// Exactly one frame: every truncation and any trailing byte is an
		// error.
		for i := range len(b) {
			if _, _, err := ParseRoQRDatagram(b[:i], 0); err == nil {
				t.Errorf("%s cut at %d: accepted", c.name, i)
			}
		}
		if _, _, err := ParseRoQRDatagram(append(b[:len(b):len(b)], 0), 0); err == nil {
			t.Errorf("%s with a trailing byte: accepted", c.name)
		}
		if _, _, err := ParseRoQRDatagram(append(b[:len(b):len(b)], b...), 0); err == nil {
			t.Errorf("%s: two frames in one datagram accepted", c.name)
		}
	}
	// The message type is one byte, as the draft has it, also above 63
	// (where a varint would take two).
	m := message.Message{Type: 0x80, StreamID: 1, ChunkStreamID: 3, Payload: []byte{1}}
	b := AppendRoQRFrame(nil, 0, &m)
	if want := []byte{0, 0, 0x80, 1, 3, 1, 1}; !bytes.Equal(b, want) {
		t.Errorf("type 0x80 encoded % x, want % x", b, want)
	}
	if _, got, err := ParseRoQRDatagram(b, 0); err != nil || got.Type != 0x80 {
		t.Errorf("type 0x80 decoded %v, %v", got, err)
	}
	if _, got, err := ReadRoQRFrame(bufio.NewReader(bytes.NewReader(b)), 0); err != nil || got.Type != 0x80 {
		t.Errorf("type 0x80 read %v, %v", got, err)
	}
	big := AppendRoQRFrame(nil, 0, &message.Message{Type: message.TypeVideo, Payload: make([]byte, 2000)})
	if _, _, err := ParseRoQRDatagram(big, 1024); err == nil {
		t.Error("a datagram over the message limit was accepted")
	}
}

func FuzzRoQRDatagram(f *testing.F) {
	for _, c := range roqrCases {
		f.Add(AppendRoQRFrame(nil, c.flow, &c.m))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		flow, m, err := ParseRoQRDatagram(b, 1<<16)
		if err != nil {
			return
		}
		// What parses is exactly one frame that re-encodes the same.
		if again := AppendRoQRFrame(nil, flow, m); m.ChunkStreamID != 0 && !bytes.Equal(again, b) && len(again) >= len(b) {
			// Varints need not be minimal on the wire, so only a longer
			// re-encoding would be wrong.
			t.Fatalf("re-encode of % x: % x", b, again)
		}
	})
}

// Media payloads for the classification table.
var (
	avcSeq     = []byte{0x17, 0, 0, 0, 0, 1, 0x64}
	avcKey     = []byte{0x17, 1, 0, 0, 0, 0, 0, 0, 1, 0x65}
	avcInter   = []byte{0x27, 1, 0, 0, 0, 0, 0, 0, 1, 0x41}
	avcDispos  = []byte{0x37, 1, 0, 0, 0, 0, 0, 0, 1, 0x01}
	avcEnd     = []byte{0x17, 2, 0, 0, 0}
	vidCommand = []byte{0x57, 0}
	aacSeq     = []byte{0xAF, 0, 0x12, 0x10}
	aacRaw     = []byte{0xAF, 1, 0x21, 0x10}
	mp3Frame   = []byte{0x2F, 0xFF, 0xFB}
	exHevcSeq  = []byte{0x90, 'h', 'v', 'c', '1', 1}
	exHevcKey  = []byte{0x91, 'h', 'v', 'c', '1', 0, 0, 0, 1}
	exHevcP    = []byte{0xA1, 'h', 'v', 'c', '1', 0, 0, 0, 1}
	exHevcPX   = []byte{0xA3, 'h', 'v', 'c', '1', 1}
	exOpusSeq  = []byte{0x90, 'O', 'p', 'u', 's', 1}
	exOpusRaw  = []byte{0x91, 'O', 'p', 'u', 's', 1}
)

func TestRoQRClassify(t *testing.T) {
	cases := []struct {
		name string
		typ  message.Type
		p    []byte
		want roqrMedia
	}{
		{"avc sequence header", message.TypeVideo, avcSeq, roqrMedia{config: true}},
		{"avc keyframe", message.TypeVideo, avcKey, roqrMedia{keyframe: true}},
		{"avc inter frame", message.TypeVideo, avcInter, roqrMedia{lossy: true}},
		{"avc disposable inter frame", message.TypeVideo, avcDispos, roqrMedia{lossy: true}},
		{"avc end of sequence", message.TypeVideo, avcEnd, roqrMedia{}},
		{"video command frame", message.TypeVideo, vidCommand, roqrMedia{}},
		{"empty video", message.TypeVideo, nil, roqrMedia{}},
		{"aac sequence header", message.TypeAudio, aacSeq, roqrMedia{config: true, needConfig: true}},
		{"aac frame", message.TypeAudio, aacRaw, roqrMedia{lossy: true, needConfig: true}},
		{"mp3 frame", message.TypeAudio, mp3Frame, roqrMedia{lossy: true}},
		{"empty audio", message.TypeAudio, nil, roqrMedia{}},
		{"e-rtmp hevc sequence start", message.TypeVideo, exHevcSeq, roqrMedia{config: true}},
		{"e-rtmp hevc keyframe", message.TypeVideo, exHevcKey, roqrMedia{keyframe: true}},
		{"e-rtmp hevc inter frame", message.TypeVideo, exHevcP, roqrMedia{lossy: true}},
		{"e-rtmp hevc inter frame, no cts", message.TypeVideo, exHevcPX, roqrMedia{lossy: true}},
		{"e-rtmp opus sequence start", message.TypeAudio, exOpusSeq, roqrMedia{config: true, needConfig: true}},
		{"e-rtmp opus frame", message.TypeAudio, exOpusRaw, roqrMedia{lossy: true, needConfig: true}},
		{"metadata", message.TypeDataAMF0, []byte{2, 0, 10}, roqrMedia{}},
	}
	for _, c := range cases {
		if got := classifyRoQR(&message.Message{Type: c.typ, Payload: c.p}); got != c.want {
			t.Errorf("%s: %+v, want %+v", c.name, got, c.want)
		}
	}
}

// TestRoQRDatagramQueueBound: the receive queue keeps the newest messages,
// by count and by bytes, and notes the tracks that lost some.
func TestRoQRDatagramQueueBound(t *testing.T) {
	d := &roqrDatagrams{notify: make(chan struct{}, 1), tracks: make(map[roqrTrackKey]*roqrRecvTrack)}
	for i := range roqrDatagramQueue + 44 {
		d.push(&message.Message{Type: message.TypeVideo, StreamID: 1, Timestamp: uint32(i), Payload: avcInter})
	}
	if d.n != roqrDatagramQueue || d.stats.overflow.Load() != 44 {
		t.Fatalf("queued %d, overflow %d", d.n, d.stats.overflow.Load())
	}
	d.tracks[roqrTrackKey{1, message.TypeVideo}] = &roqrRecvTrack{keyed: true}
	m, _ := d.pop()
	if m.Timestamp != 44 {
		t.Errorf("oldest kept is %d, want 44", m.Timestamp)
	}
	if tr := d.tracks[roqrTrackKey{1, message.TypeVideo}]; tr.keyed || !tr.gap {
		t.Error("a video track that lost datagrams is not waiting for a keyframe")
	}
	for d.n > 0 {
		d.pop()
	}
	big := make([]byte, 300<<10)
	for i := range 5 {
		d.push(&message.Message{Type: message.TypeAudio, StreamID: 1, Timestamp: uint32(i), Payload: big})
	}
	if d.bytes > roqrDatagramQueueBytes || d.n != 3 {
		t.Errorf("%d messages, %d bytes queued: want 3, ≤ %d", d.n, d.bytes, roqrDatagramQueueBytes)
	}
}
