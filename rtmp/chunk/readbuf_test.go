package chunk

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"

	"github.com/rtmphub/rtmphub/rtmp/message"
)

// idleChecker is a source that fails the test when the Reader reads it
// while holding an empty buffer: a Reader must wait for its peer with no
// buffer borrowed.
type idleChecker struct {
	t  *testing.T
	rd **Reader
	r  io.Reader
}

func (c idleChecker) Read(p []byte) (int, error) {
	if b := &(*c.rd).br; b.buf != nil && b.r == b.w {
		c.t.Fatalf("read of %d bytes with an empty buffer held", len(p))
	}
	return c.r.Read(p)
}

// TestReaderBufferShapes: the same messages come out whatever pieces the
// bytes arrive in, whatever part came buffered from a handshake, and the
// Reader never waits for bytes holding an empty buffer.
func TestReaderBufferShapes(t *testing.T) {
	var msgs []*message.Message
	for i := range 8 {
		msgs = append(msgs,
			msg(3, message.TypeAck, 0, 0, pl(4, byte(i))),
			msg(7, tVideo, 1, 0x01000000+uint32(i)*33, pl(5000, byte(i))),
			msg(6, tAudio, 1, 0x01000000+uint32(i)*23, pl(300, byte(i))),
			msg(4, tAudio, 1, uint32(i), pl(20, byte(i))))
	}
	wire := encodeAll(t, msgs, true)
	shapes := map[string]func(io.Reader) io.Reader{
		"whole":    func(r io.Reader) io.Reader { return r },
		"one byte": iotest.OneByteReader,
		"half":     iotest.HalfReader,
		"data+err": iotest.DataErrReader,
	}
	for name, shape := range shapes {
		for _, k := range []int{0, 1, 5, 17, 1000, 6000} {
			var rd *Reader
			rd = NewReaderBuffered(idleChecker{t, &rd, shape(bytes.NewReader(wire[k:]))}, wire[:k], 0)
			var got []*message.Message
			for {
				m, err := rd.ReadMessage()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatalf("%s, %d buffered: %v", name, k, err)
				}
				got = append(got, m)
			}
			sameMessages(t, got, msgs)
			if rd.br.buf != nil {
				t.Fatalf("%s, %d buffered: a buffer held at the end", name, k)
			}
			if rd.BytesRead() != uint64(len(wire)) {
				t.Fatalf("%s, %d buffered: BytesRead %d, want %d", name, k, rd.BytesRead(), len(wire))
			}
		}
	}
}
