package chunk

import (
	"io"
	"sync"
)

const (
	// pooledReadSize is the size of the read buffers a readBuf borrows.
	pooledReadSize = 4096
	// idleReadSize is how much a readBuf reads with no buffer borrowed:
	// a player's acknowledgement or ping answer (12 to 18 bytes) fits.
	idleReadSize = 32
	// maxEmptyReads is how many (0, nil) reads in a row fail a read, as
	// in bufio.
	maxEmptyReads = 100
)

// readPool holds the read buffers of the Readers that have bytes buffered.
var readPool = sync.Pool{New: func() any { return new([pooledReadSize]byte) }}

// readBuf is the buffered reader under a Reader: a bufio.Reader that
// holds a buffer only while it has bytes in it. A Reader waits for its
// peer with no buffer borrowed, reading the first bytes into a small
// array of its own, so that thousands of idle players (which send a few
// bytes now and then) share a few buffers instead of holding one each, as
// net/http does with its connections' buffers while they are idle.
type readBuf struct {
	src   io.Reader
	buf   *[pooledReadSize]byte // nil while empty
	r, w  int                   // buf[r:w] is unread
	err   error                 // from src, returned once the bytes before it are read
	small [idleReadSize]byte
}

// Buffered is the number of bytes that can be read without reading src.
func (b *readBuf) Buffered() int { return b.w - b.r }

// readErr returns the pending error and clears it (and gives back an
// empty buffer: the caller may wait a long time before reading again).
func (b *readBuf) readErr() error {
	b.release()
	err := b.err
	b.err = nil
	return err
}

// release gives the buffer back when it is empty.
func (b *readBuf) release() {
	if b.buf != nil && b.r == b.w {
		readPool.Put(b.buf)
		b.buf, b.r, b.w = nil, 0, 0
	}
}

// fill reads once more from src (after an empty buffer is given back,
// into the small array, whose bytes then move to a borrowed buffer).
func (b *readBuf) fill() {
	b.release()
	if b.buf == nil {
		for range maxEmptyReads {
			n, err := b.src.Read(b.small[:])
			if n > 0 {
				b.buf = readPool.Get().(*[pooledReadSize]byte)
				b.w = copy(b.buf[:], b.small[:n])
			}
			if err != nil {
				b.err = err
			}
			if n > 0 || err != nil {
				return
			}
		}
		b.err = io.ErrNoProgress
		return
	}
	if b.r > 0 {
		copy(b.buf[:], b.buf[b.r:b.w])
		b.w -= b.r
		b.r = 0
	}
	for range maxEmptyReads {
		n, err := b.src.Read(b.buf[b.w:])
		b.w += n
		if err != nil {
			b.err = err
		}
		if n > 0 || err != nil {
			return
		}
	}
	b.err = io.ErrNoProgress
}

// ReadByte reads one byte.
func (b *readBuf) ReadByte() (byte, error) {
	for b.r == b.w {
		if b.err != nil {
			return 0, b.readErr()
		}
		b.fill()
	}
	c := b.buf[b.r]
	b.r++
	return c, nil
}

// Peek returns the next n (at most pooledReadSize) bytes without
// consuming them; fewer, with the error, when src ends or fails first.
func (b *readBuf) Peek(n int) ([]byte, error) {
	for b.w-b.r < n && b.err == nil {
		b.fill()
	}
	if b.w-b.r < n {
		if b.r == b.w {
			return nil, b.readErr()
		}
		p := b.buf[b.r:b.w]
		return p, b.readErr()
	}
	return b.buf[b.r : b.r+n], nil
}

// Discard skips n buffered bytes (after Peek).
func (b *readBuf) Discard(n int) (int, error) {
	n = min(n, b.w-b.r)
	b.r += n
	return n, nil
}

// Read reads into p: the buffered bytes, or, when there are none, straight
// from src (a payload is read into its message's buffer, not copied
// through this one).
func (b *readBuf) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if b.r == b.w {
		if b.err != nil {
			return 0, b.readErr()
		}
		b.release()
		if len(p) >= idleReadSize {
			return b.src.Read(p)
		}
		b.fill()
		if b.r == b.w {
			return 0, b.readErr()
		}
	}
	n := copy(p, b.buf[b.r:b.w])
	b.r += n
	return n, nil
}
