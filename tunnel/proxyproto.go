package tunnel

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// PROXY protocol (HAProxy's, versions 1 and 2) on inbound connections: a
// load balancer in front of rtmphub that is a trusted proxy may prefix a
// connection with a header naming the real client. Only trusted peers are
// asked for one; anyone else's bytes are served as they are.

var proxyV2Sig = []byte("\r\n\r\n\x00\r\nQUIT\n")

// proxyPeekLen is how much is peeked to tell a PROXY header from the
// protocols sniffed after it ("PROXY " against an HTTP "POST ").
const proxyPeekLen = 12

// readProxyHeader reads a PROXY protocol header from nc if one is there
// and returns nc with the client's address as its RemoteAddr. ok is false
// (and nothing was read) when nc does not start with a header. nc must be
// a socket: the header is recognized by peeking, so the bytes after it
// stay in the socket for the sniffer.
func readProxyHeader(nc net.Conn, timeout time.Duration) (out net.Conn, ok bool, err error) {
	nc.SetReadDeadline(time.Now().Add(timeout))
	defer nc.SetReadDeadline(time.Time{})
	var head [proxyPeekLen]byte
	n, err := peekAtLeast(nc, head[:], timeout)
	if err != nil || n == 0 {
		return nc, false, err
	}
	switch {
	case bytes.HasPrefix(head[:n], []byte("PROXY ")):
		src, err := readProxyV1(nc)
		if err != nil {
			return nil, true, err
		}
		return wrapRemote(nc, src), true, nil
	case n == proxyPeekLen && bytes.Equal(head[:], proxyV2Sig):
		src, err := readProxyV2(nc)
		if err != nil {
			return nil, true, err
		}
		return wrapRemote(nc, src), true, nil
	}
	return nc, false, nil
}

// peekAtLeast peeks up to len(buf) bytes, waiting (bounded) until that
// many have arrived or the peer paused: a proxy sends its header in one
// segment, so a short peek that stays short is the peer's real data.
func peekAtLeast(nc net.Conn, buf []byte, timeout time.Duration) (int, error) {
	deadline := time.Now().Add(min(timeout, 200*time.Millisecond))
	for {
		n, ok, err := peekSocketInto(nc, buf)
		if !ok || err != nil {
			return 0, err
		}
		if n >= len(buf) || time.Now().After(deadline) {
			return n, nil
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// readProxyV1 reads "PROXY TCP4|TCP6|UNKNOWN ... \r\n" (at most 107
// bytes), one byte at a time so that nothing after it is consumed.
func readProxyV1(r io.Reader) (net.Addr, error) {
	line := make([]byte, 0, 108)
	var b [1]byte
	for {
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return nil, fmt.Errorf("proxy protocol v1: %w", err)
		}
		line = append(line, b[0])
		if b[0] == '\n' {
			break
		}
		if len(line) >= 107 {
			return nil, errors.New("proxy protocol v1: header longer than 107 bytes")
		}
	}
	if !bytes.HasSuffix(line, []byte("\r\n")) {
		return nil, errors.New("proxy protocol v1: header does not end with CRLF")
	}
	f := strings.Fields(string(line[:len(line)-2]))
	if len(f) >= 2 && f[1] == "UNKNOWN" {
		return nil, nil // the proxy does not know: keep the peer's address
	}
	if len(f) != 6 || f[1] != "TCP4" && f[1] != "TCP6" {
		return nil, fmt.Errorf("proxy protocol v1: malformed header %q", line)
	}
	ip, err := netip.ParseAddr(f[2])
	if err != nil {
		return nil, fmt.Errorf("proxy protocol v1: source address: %w", err)
	}
	port, err := strconv.ParseUint(f[4], 10, 16)
	if err != nil {
		return nil, fmt.Errorf("proxy protocol v1: source port: %w", err)
	}
	return net.TCPAddrFromAddrPort(netip.AddrPortFrom(ip, uint16(port))), nil
}

// readProxyV2 reads a binary header: the signature, version and command,
// family, length, then the addresses (TLVs after them are skipped).
func readProxyV2(r io.Reader) (net.Addr, error) {
	var h [16]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return nil, fmt.Errorf("proxy protocol v2: %w", err)
	}
	if h[12]>>4 != 2 {
		return nil, fmt.Errorf("proxy protocol v2: version %d", h[12]>>4)
	}
	length := int(binary.BigEndian.Uint16(h[14:16]))
	if length > 1024 {
		return nil, fmt.Errorf("proxy protocol v2: %d bytes of addresses is too many", length)
	}
	body := make([]byte, length)
	if _, err := io.ReadFull(r, body); err != nil {
		return nil, fmt.Errorf("proxy protocol v2: %w", err)
	}
	switch h[12] & 0x0F {
	case 0: // LOCAL: the proxy's own connection (health check)
		return nil, nil
	case 1: // PROXY
	default:
		return nil, fmt.Errorf("proxy protocol v2: command %d", h[12]&0x0F)
	}
	switch h[13] {
	case 0x11, 0x12: // IPv4, TCP or UDP
		if len(body) < 12 {
			return nil, errors.New("proxy protocol v2: short IPv4 addresses")
		}
		ip := netip.AddrFrom4([4]byte(body[0:4]))
		return net.TCPAddrFromAddrPort(netip.AddrPortFrom(ip, binary.BigEndian.Uint16(body[8:10]))), nil
	case 0x21, 0x22: // IPv6
		if len(body) < 36 {
			return nil, errors.New("proxy protocol v2: short IPv6 addresses")
		}
		ip := netip.AddrFrom16([16]byte(body[0:16]))
		return net.TCPAddrFromAddrPort(netip.AddrPortFrom(ip, binary.BigEndian.Uint16(body[32:34]))), nil
	case 0x00, 0x31, 0x32: // UNSPEC or a unix socket: keep the peer's address
		return nil, nil
	}
	// The specification has receivers refuse other families and
	// transports.
	return nil, fmt.Errorf("proxy protocol v2: address family and transport %#02x", h[13])
}

// wrapRemote returns nc reporting src as its remote address (nc itself
// when src is nil). The wrapper keeps the socket reachable (SyscallConn)
// so that peeking and vectored writes still work.
func wrapRemote(nc net.Conn, src net.Addr) net.Conn {
	if src == nil {
		return nc
	}
	return &proxiedConn{Conn: nc, remote: src}
}

type proxiedConn struct {
	net.Conn
	remote net.Addr
}

func (c *proxiedConn) RemoteAddr() net.Addr { return c.remote }

func (c *proxiedConn) SyscallConn() (syscall.RawConn, error) {
	sc, ok := c.Conn.(syscall.Conn)
	if !ok {
		return nil, errors.New("not a socket")
	}
	return sc.SyscallConn()
}

// SetNoDelay reaches the TCP socket under the wrapper.
func (c *proxiedConn) SetNoDelay(on bool) error {
	if tc, ok := c.Conn.(interface{ SetNoDelay(bool) error }); ok {
		return tc.SetNoDelay(on)
	}
	return nil
}

// NetConn returns the connection under the wrapper.
func (c *proxiedConn) NetConn() net.Conn { return c.Conn }
