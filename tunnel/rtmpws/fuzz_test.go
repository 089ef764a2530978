package rtmpws

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"testing"
	"time"
)

// bytesConn is a net.Conn that reads a fixed input and swallows writes.
type bytesConn struct {
	r *bytes.Reader
}

func (c *bytesConn) Read(p []byte) (int, error)       { return c.r.Read(p) }
func (c *bytesConn) Write(p []byte) (int, error)      { return len(p), nil }
func (c *bytesConn) Close() error                     { return nil }
func (c *bytesConn) LocalAddr() net.Addr              { return wsAddr{} }
func (c *bytesConn) RemoteAddr() net.Addr             { return wsAddr{} }
func (c *bytesConn) SetDeadline(time.Time) error      { return nil }
func (c *bytesConn) SetReadDeadline(time.Time) error  { return nil }
func (c *bytesConn) SetWriteDeadline(time.Time) error { return nil }

// FuzzServerFrames feeds anything to the server's frame reader: it never
// panics, never hands out more bytes than came in, and ends.
func FuzzServerFrames(f *testing.F) {
	f.Add(frame(opBinary, true, false, []byte("hello")))
	f.Add(append(frame(opBinary, false, false, []byte("he")), append(frame(opPing, true, false, []byte("p")), frame(opCont, true, false, []byte("llo"))...)...))
	f.Add(frame(opText, true, false, []byte("x")))
	f.Add(frame(opClose, true, false, []byte{3, 232}))
	f.Add(frame(opBinary, true, true, []byte("unmasked")))
	f.Add([]byte{0x82, 0xff, 0, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4})
	f.Fuzz(func(t *testing.T, in []byte) {
		raw := &bytesConn{bytes.NewReader(in)}
		c := newServerConn(raw, bufio.NewReader(raw), "", 1<<16, nil)
		defer c.closeRaw()
		got, buf := 0, make([]byte, 512)
		for range len(in) + 2 { // each Read consumes at least one byte or ends
			n, err := c.Read(buf)
			got += n
			if err != nil {
				break
			}
		}
		if got > len(in) {
			t.Fatalf("read %d payload bytes out of %d input bytes", got, len(in))
		}
		_, err := c.Read(buf)
		if err == nil || err == io.ErrNoProgress {
			t.Fatalf("Read after the end: %v", err)
		}
	})
}
