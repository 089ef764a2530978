package chunk

import (
	"fmt"
	"io"
	"net"
	"testing"

	"github.com/rtmphub/rtmphub/rtmp/message"
)

// loopback returns the client side of a loopback TCP connection whose
// server side is drained until the test ends.
func loopback(b *testing.B) *net.TCPConn {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Skip("no loopback TCP:", err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		io.Copy(io.Discard, c)
		c.Close()
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		c.Close()
		ln.Close()
		<-done
	})
	return c.(*net.TCPConn)
}

// benchWrite queues a 4 KB video and a 300-byte audio message and flushes,
// per op, as a player's writer does for live media.
func benchWrite(b *testing.B, dst io.Writer, chunkSize uint32, copyBelow int) {
	w := NewWriter(dst)
	w.SetChunkSize(chunkSize)
	w.copyBelow = copyBelow
	video := &message.Message{Type: message.TypeVideo, StreamID: 1, Payload: make([]byte, 4096)}
	audio := &message.Message{Type: message.TypeAudio, StreamID: 1, Payload: make([]byte, 300)}
	b.SetBytes(int64(len(video.Payload) + len(audio.Payload)))
	b.ReportAllocs()
	for b.Loop() {
		video.Timestamp += 33
		audio.Timestamp += 23
		if err := w.Queue(video); err != nil {
			b.Fatal(err)
		}
		if err := w.Queue(audio); err != nil {
			b.Fatal(err)
		}
		if err := w.Flush(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkWriter(b *testing.B) {
	for _, cs := range []uint32{4096, 128} {
		b.Run(fmt.Sprintf("discard/chunk=%d", cs), func(b *testing.B) {
			benchWrite(b, io.Discard, cs, copyBelow)
		})
		b.Run(fmt.Sprintf("tcp/chunk=%d", cs), func(b *testing.B) {
			benchWrite(b, loopback(b), cs, copyBelow)
		})
	}
}

// BenchmarkWriterCopyThreshold compares thresholds for copying small
// payload pieces next to their headers instead of referencing them.
func BenchmarkWriterCopyThreshold(b *testing.B) {
	for _, cs := range []uint32{4096, 128} {
		for _, th := range []int{0, 128, 256, 512, 1024} {
			b.Run(fmt.Sprintf("tcp/chunk=%d/copyBelow=%d", cs, th), func(b *testing.B) {
				benchWrite(b, loopback(b), cs, th)
			})
		}
	}
}

// loopReader repeats b forever.
type loopReader struct {
	b   []byte
	off int
}

func (l *loopReader) Read(p []byte) (int, error) {
	n := copy(p, l.b[l.off:])
	l.off = (l.off + n) % len(l.b)
	return n, nil
}

// BenchmarkReader reads one message per op from a stream of alternating
// 4 KB video and 300-byte audio messages.
func BenchmarkReader(b *testing.B) {
	for _, cs := range []uint32{4096, 128} {
		b.Run(fmt.Sprintf("chunk=%d", cs), func(b *testing.B) {
			msgs := []*message.Message{setChunkSize(cs)}
			for i := range 32 {
				msgs = append(msgs,
					msg(7, tVideo, 1, uint32(i)*33, make([]byte, 4096)),
					msg(6, tAudio, 1, uint32(i)*23, make([]byte, 300)))
			}
			wire := encodeAll(b, msgs, false)
			r := NewReader(&loopReader{b: wire}, 0)
			b.SetBytes(int64(len(wire) / len(msgs)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := r.ReadMessage(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
