package tunnel

import (
	"io"
	"net"
	"time"
)

// sniffByte returns the first byte a connection sends, waiting at most
// timeout, and a connection that still yields that byte first. On a
// socket the byte is peeked and nc itself is returned; otherwise it is
// read and replayed by a wrapper.
func sniffByte(nc net.Conn, timeout time.Duration) (byte, net.Conn, error) {
	if err := nc.SetReadDeadline(time.Now().Add(timeout)); err != nil {
		return 0, nil, err
	}
	b, peeked, err := peekSocket(nc)
	out := nc
	if !peeked {
		var buf [1]byte
		if _, err = io.ReadFull(nc, buf[:]); err == nil {
			b = buf[0]
			out = &prefixConn{Conn: nc, prefix: buf[:]}
		}
	}
	if err != nil {
		return 0, nil, err
	}
	if err := nc.SetReadDeadline(time.Time{}); err != nil {
		return 0, nil, err
	}
	return b, out, nil
}

// prefixConn yields prefix before what Conn yields.
type prefixConn struct {
	net.Conn
	prefix []byte
}

func (c *prefixConn) Read(p []byte) (int, error) {
	if len(c.prefix) > 0 {
		n := copy(p, c.prefix)
		c.prefix = c.prefix[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}
