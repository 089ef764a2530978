package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/rtmphub/rtmphub/rtmp/chunk"
	"github.com/rtmphub/rtmphub/rtmp/handshake"
)

// protoRTMPT: RTMP tunnelled in HTTP POST polls, played as librtmp
// (rtmpdump) plays rtmpt:// (see ../shared/RTMPT-NOTES.md and librtmp's
// rtmp.c: HTTP_Post, HTTP_read, ReadN, WriteN):
//
//   - one keep-alive HTTP/1.1 connection for the whole session;
//   - POST /open/1 (a body of one zero byte), whose reply is the session
//     id and a newline; then every request is /send/<id>/<seq> or
//     /idle/<id>/<seq>, seq counting from 0;
//   - a write becomes a /send carrying it, sent without waiting for the
//     replies before it (librtmp pipelines; it gathers the chunks of one
//     RTMP packet into one write, and this player gathers the writes made
//     between two reads, the handshake's C2 and connect together as
//     Flash Player sends them);
//   - a read takes the bytes of the reply being read; when none is left
//     and no request is outstanding it POSTs /idle (one zero byte) at once
//     and reads that reply: back-to-back polls, the server's hold making
//     them long polls. librtmp ignores the interval byte that starts each
//     reply (it keeps it in m_polling and never reads it), and so does
//     this player.
//
// Bytes counted are the RTMP bytes after the handshake, as an RTMP
// player's: reply bodies less their interval byte; HTTP heads are not.
const protoRTMPT = "rtmpt"

// rtmptSources spreads RTMPT players over loopback source addresses
// (127.1.x.y), one each, so that the server's per-address limits on RTMPT
// sessions and HTTP connections (100 and 256 by default) do not refuse a
// thousand players from one address, as they would not refuse a thousand
// real clients.
var rtmptSources atomic.Uint32

// runRTMPT plays over RTMPT until the session ends or ctx is done.
func (p *player) runRTMPT(ctx context.Context, cfg *playerConfig, ready func()) error {
	tc, err := dialRTMPT(ctx, cfg.addr, cfg.setupTimeout)
	if err != nil {
		return err
	}
	stopClose := context.AfterFunc(ctx, func() { tc.Close() })
	defer stopClose()
	defer tc.Close()
	if err := tc.SetDeadline(time.Now().Add(cfg.setupTimeout)); err != nil {
		return err
	}
	if err := handshake.Client(tc, false); err != nil {
		return fmt.Errorf("handshake: %w", err)
	}
	c := &clientConn{
		conn: tc,
		r:    chunk.NewReader(countingReader{tc, &p.bytes}, maxMessageSize),
		w:    chunk.NewWriter(tc),
		in:   &p.bytes,
	}
	if err := p.setup(c, cfg); err != nil {
		return err
	}
	p.streaming(ready)
	c.r = nil
	var ack func(total uint64) error
	if c.ackWindow > 0 {
		ack = func(total uint64) error {
			if total-c.lastAck < c.ackWindow {
				return nil
			}
			if err := tc.SetWriteDeadline(time.Now().Add(cfg.readTimeout)); err != nil {
				return err
			}
			return c.maybeAck(total)
		}
	}
	// The socket's low-water mark does not apply: every reply must be read
	// for the next poll to go out.
	counting := *cfg
	counting.rcvLowat = 0
	return p.count(tc, &counting, ack)
}

// rtmptConn is the RTMP byte stream of one RTMPT session, as a net.Conn
// used by one goroutine (Close may come from another).
type rtmptConn struct {
	net.Conn // the HTTP connection: addresses, deadlines, Close
	br       *bufio.Reader
	host     string
	sid      string
	seq      uint64
	unacked  int    // requests sent whose replies are not read yet
	left     int    // bytes of the current reply's body not read yet
	pending  []byte // written since the last read: the next /send's body
	req      []byte // request scratch
}

// dialRTMPT connects to addr (from a loopback source address of its own
// when addr is a loopback one) and opens a session.
func dialRTMPT(ctx context.Context, addr string, timeout time.Duration) (*rtmptConn, error) {
	d := net.Dialer{Timeout: timeout}
	if ap, err := netip.ParseAddrPort(addr); err == nil && ap.Addr().Is4() && ap.Addr().IsLoopback() {
		i := rtmptSources.Add(1) - 1
		src := netip.AddrFrom4([4]byte{127, 1, byte(i / 250 % 250), byte(i%250 + 1)})
		d.LocalAddr = net.TCPAddrFromAddrPort(netip.AddrPortFrom(src, 0))
	}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	c := &rtmptConn{Conn: conn, br: bufio.NewReaderSize(conn, 16<<10), host: addr}
	if err := conn.SetDeadline(time.Now().Add(timeout)); err != nil {
		conn.Close()
		return nil, err
	}
	if err := c.post("/open/1", []byte{0}); err != nil {
		conn.Close()
		return nil, fmt.Errorf("rtmpt open: %w", err)
	}
	n, err := c.readHead()
	if err == nil && (n < 2 || n > 65) {
		err = fmt.Errorf("session id reply of %d bytes", n)
	}
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("rtmpt open: %w", err)
	}
	// librtmp keeps Content-Length − 1 bytes as the id.
	body := make([]byte, n)
	if _, err := io.ReadFull(c.br, body); err != nil {
		conn.Close()
		return nil, fmt.Errorf("rtmpt open: %w", err)
	}
	c.unacked--
	c.sid = string(body[:n-1])
	return c, nil
}

// post sends one request with body, as librtmp's HTTP_Post words it.
func (c *rtmptConn) post(path string, body []byte) error {
	b := append(c.req[:0], "POST "...)
	b = append(b, path...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, c.host...)
	b = append(b, "\r\nAccept: */*\r\nUser-Agent: Shockwave Flash\r\nConnection: Keep-Alive\r\nCache-Control: no-cache\r\nContent-type: application/x-fcs\r\nContent-length: "...)
	b = strconv.AppendInt(b, int64(len(body)), 10)
	b = append(b, "\r\n\r\n"...)
	b = append(b, body...)
	c.req = b
	if _, err := c.Conn.Write(b); err != nil {
		return err
	}
	c.unacked++
	return nil
}

// command posts /send or /idle with the session's next sequence number.
func (c *rtmptConn) command(cmd string, body []byte) error {
	b := make([]byte, 0, 48)
	b = append(b, '/')
	b = append(b, cmd...)
	b = append(b, '/')
	b = append(b, c.sid...)
	b = append(b, '/')
	b = strconv.AppendUint(b, c.seq, 10)
	c.seq++
	return c.post(string(b), body)
}

// readHead reads the head of the next reply: it must be 200 with a
// Content-Length, and keep the connection; it returns the body's length.
func (c *rtmptConn) readHead() (int, error) {
	line, err := c.br.ReadSlice('\n')
	if err != nil {
		return 0, err
	}
	if !bytes.HasPrefix(line, []byte("HTTP/1.1 200 ")) {
		return 0, fmt.Errorf("reply %q", bytes.TrimSpace(line))
	}
	n := -1
	for {
		line, err := c.br.ReadSlice('\n')
		if err != nil {
			return 0, err
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			break
		}
		name, value, _ := bytes.Cut(line, []byte{':'})
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			if n, err = strconv.Atoi(string(value)); err != nil || n < 0 {
				return 0, fmt.Errorf("Content-Length %q", value)
			}
		case bytes.EqualFold(name, []byte("Connection")) && bytes.EqualFold(value, []byte("close")):
			return 0, errors.New("reply with Connection: close")
		}
	}
	if n < 0 {
		return 0, errors.New("reply without Content-Length")
	}
	return n, nil
}

// SetReadDeadline bounds the requests a read sends too: polling is part
// of reading.
func (c *rtmptConn) SetReadDeadline(t time.Time) error { return c.Conn.SetDeadline(t) }

// Write keeps p for the next /send, which goes out at the next read.
func (c *rtmptConn) Write(p []byte) (int, error) {
	c.pending = append(c.pending, p...)
	return len(p), nil
}

// Read returns bytes of the replies: it sends what was written, or an
// idle poll when no request is outstanding, and reads replies until one
// carries RTMP bytes.
func (c *rtmptConn) Read(p []byte) (int, error) {
	for c.left == 0 {
		switch {
		case len(c.pending) > 0:
			err := c.command("send", c.pending)
			c.pending = c.pending[:0]
			if err != nil {
				return 0, err
			}
		case c.unacked == 0:
			if err := c.command("idle", []byte{0}); err != nil {
				return 0, err
			}
		}
		n, err := c.readHead()
		if err != nil {
			return 0, err
		}
		if n == 0 {
			return 0, errors.New("reply without its interval byte")
		}
		interval, err := c.br.ReadByte()
		if err != nil {
			return 0, err
		}
		c.unacked--
		if interval == 0 && n == 1 {
			return 0, io.EOF // the server closed the session
		}
		c.left = n - 1
	}
	n, err := c.br.Read(p[:min(len(p), c.left)])
	c.left -= n
	return n, err
}
