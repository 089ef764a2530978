package tunnel

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func proxyV2Header(src [4]byte, sport uint16) []byte {
	h := append([]byte(nil), proxyV2Sig...)
	h = append(h, 0x21, 0x11, 0, 12) // v2 PROXY, TCP over IPv4, 12 bytes
	h = append(h, src[:]...)
	h = append(h, 127, 0, 0, 1)
	h = binary.BigEndian.AppendUint16(h, sport)
	return binary.BigEndian.AppendUint16(h, 1935)
}

// A trusted load balancer's PROXY header names the client for native RTMP
// and for RTMPT; a malformed one closes the connection.
func TestInboundProxyProtocol(t *testing.T) {
	type seen struct {
		info   Info
		remote string
		first  []byte
	}
	for _, tc := range []struct {
		name       string
		trusted    string
		prefix     []byte
		then       string // what follows the header
		wantRemote string // "" = the connection is closed
		wantProto  string
	}{
		{"v1 tcp4, rtmp", "127.0.0.1/32", []byte("PROXY TCP4 203.0.113.7 127.0.0.1 40000 1935\r\n"), "\x03hello", "203.0.113.7:40000", "rtmp"},
		{"v1 tcp6, rtmp", "127.0.0.1/32", []byte("PROXY TCP6 2001:db8::9 ::1 40001 1935\r\n"), "\x03hello", "[2001:db8::9]:40001", "rtmp"},
		{"v2 tcp4, rtmp", "127.0.0.1/32", proxyV2Header([4]byte{198, 51, 100, 4}, 5555), "\x03hello", "198.51.100.4:5555", "rtmp"},
		{"v1 unknown keeps the peer", "127.0.0.1/32", []byte("PROXY UNKNOWN\r\n"), "\x03hello", "127.0.0.1", "rtmp"},
		{"malformed v1 closes", "127.0.0.1/32", []byte("PROXY TCP4 nonsense\r\n"), "\x03", "", ""},
		{"trusted peer without header", "127.0.0.1/32", nil, "\x03hello", "127.0.0.1", "rtmp"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := make(chan seen, 1)
			h := func(ctx context.Context, nc net.Conn, info Info) {
				defer nc.Close()
				b := make([]byte, 6)
				nc.SetReadDeadline(time.Now().Add(5 * time.Second))
				n, _ := io.ReadFull(nc, b)
				got <- seen{info, nc.RemoteAddr().String(), b[:n]}
			}
			trusted, err := ParsePrefixes(tc.trusted)
			if err != nil {
				t.Fatal(err)
			}
			addr, _ := testServer(t, Config{TrustedProxies: trusted}, h)
			c := dialRaw(t, addr)
			c.write(append(append([]byte(nil), tc.prefix...), tc.then...))
			select {
			case s := <-got:
				if tc.wantRemote == "" {
					t.Fatalf("a malformed header was served: %+v", s)
				}
				if !strings.HasPrefix(s.remote, tc.wantRemote) || s.info.Protocol != tc.wantProto {
					t.Fatalf("remote %s protocol %q, want %s %q", s.remote, s.info.Protocol, tc.wantRemote, tc.wantProto)
				}
				if tc.then != "" && tc.prefix != nil && tc.trusted != "" && string(s.first) != tc.then[:min(len(tc.then), 6)] {
					t.Fatalf("core read %q after the header, want %q", s.first, tc.then)
				}
			case <-time.After(5 * time.Second):
				if tc.wantRemote != "" {
					t.Fatal("connection not served")
				}
				c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
				if _, err := c.nc.Read(make([]byte, 1)); err == nil {
					t.Fatal("malformed header: connection still open")
				}
			}
		})
	}
}

// An untrusted peer's PROXY header is not believed: starting with a letter,
// it is taken for HTTP and refused.
func TestInboundProxyProtocolUntrusted(t *testing.T) {
	served := make(chan struct{}, 1)
	h := func(ctx context.Context, nc net.Conn, info Info) { served <- struct{}{}; nc.Close() }
	addr, _ := testServer(t, Config{}, h)
	c := dialRaw(t, addr)
	c.write([]byte("PROXY TCP4 203.0.113.7 127.0.0.1 40000 1935\r\n\x03hello"))
	if r := c.read(); r.status() != 400 {
		t.Fatalf("untrusted PROXY header answered %q", r.statusLine)
	}
	select {
	case <-served:
		t.Fatal("the core served an untrusted PROXY connection")
	default:
	}
}

// A trusted proxy's PROXY header also names the client of an RTMPT
// session on the same port.
func TestInboundProxyProtocolRTMPT(t *testing.T) {
	infos := make(chan string, 1)
	h := func(ctx context.Context, nc net.Conn, info Info) {
		infos <- nc.RemoteAddr().String()
		echo(ctx, nc, info)
	}
	trusted, _ := ParsePrefixes("127.0.0.1/32")
	addr, _ := testServer(t, Config{TrustedProxies: trusted}, h)
	c := dialRaw(t, addr)
	c.write([]byte("PROXY TCP4 203.0.113.50 127.0.0.1 41000 80\r\nPOST /open/1 HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\n\x00"))
	if r := c.read(); r.status() != 200 {
		t.Fatalf("open: %q", r.statusLine)
	}
	select {
	case remote := <-infos:
		if !strings.HasPrefix(remote, "203.0.113.50:") {
			t.Fatalf("session remote %s", remote)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no session")
	}
}

func FuzzProxyV1(f *testing.F) {
	f.Add("PROXY TCP4 203.0.113.7 127.0.0.1 40000 1935\r\n")
	f.Add("PROXY UNKNOWN\r\n")
	f.Add("PROXY TCP6 ::1 ::1 1 2\r\n")
	f.Fuzz(func(t *testing.T, s string) {
		readProxyV1(bufio.NewReader(strings.NewReader(s)))
	})
}

// proxyV2 builds a v2 header: version/command byte, family/transport
// byte, then body (addresses and TLVs) with its length.
func proxyV2(verCmd, fam byte, body ...[]byte) []byte {
	var b []byte
	for _, p := range body {
		b = append(b, p...)
	}
	h := append(append([]byte(nil), proxyV2Sig...), verCmd, fam)
	h = binary.BigEndian.AppendUint16(h, uint16(len(b)))
	return append(h, b...)
}

// tlv encodes one PROXY v2 TLV.
func tlv(typ byte, v string) []byte {
	return append(binary.BigEndian.AppendUint16([]byte{typ}, uint16(len(v))), v...)
}

var (
	v2TCP4 = []byte{198, 51, 100, 4, 127, 0, 0, 1, 0x15, 0xb3, 0x07, 0x8f} // 198.51.100.4:5555 → 127.0.0.1:1935
	v2TCP6 = append(append(append([]byte{0x20, 0x01, 0x0d, 0xb8, 15: 9}, make([]byte, 15)...), 1),
		0x9c, 0x41, 0x07, 0x8f) // [2001:db8::9]:40001 → [::1]:1935
	v2Unix = append(append([]byte("/run/client.sock"), make([]byte, 108-16)...), append([]byte("/run/rtmphub.sock"), make([]byte, 108-17)...)...)
)

// proxyV2Cases are valid and invalid v2 headers; want is the source
// address ("" for none: the peer's address is kept), or "error".
var proxyV2Cases = []struct {
	name   string
	header []byte
	want   string
}{
	{"tcp4", proxyV2(0x21, 0x11, v2TCP4), "198.51.100.4:5555"},
	{"tcp6", proxyV2(0x21, 0x21, v2TCP6), "[2001:db8::9]:40001"},
	{"udp4", proxyV2(0x21, 0x12, v2TCP4), "198.51.100.4:5555"},
	{"unix", proxyV2(0x21, 0x31, v2Unix), ""},
	{"unspec", proxyV2(0x21, 0x00), ""},
	{"local", proxyV2(0x20, 0x00), ""},
	{"local with addresses", proxyV2(0x20, 0x11, v2TCP4), ""},
	{"tcp4 with TLVs", proxyV2(0x21, 0x11, v2TCP4, tlv(0x01, "rtmp"), tlv(0x02, "live.example.com"), tlv(0x04, "")), "198.51.100.4:5555"},
	{"tcp6 with a TLV", proxyV2(0x21, 0x21, v2TCP6, tlv(0x05, "\x00\x01\x02\x03")), "[2001:db8::9]:40001"},
	{"tcp4 short", proxyV2(0x21, 0x11, v2TCP4[:11]), "error"},
	{"tcp6 short", proxyV2(0x21, 0x21, v2TCP6[:35]), "error"},
	{"truncated header", proxyV2(0x21, 0x11, v2TCP4)[:15], "error"},
	{"truncated body", proxyV2(0x21, 0x11, v2TCP4)[:20], "error"},
	{"oversized", proxyV2(0x21, 0x11, v2TCP4, tlv(0xEE, strings.Repeat("x", 1100))), "error"},
	{"version 1", proxyV2(0x11, 0x11, v2TCP4), "error"},
	{"command 2", proxyV2(0x22, 0x11, v2TCP4), "error"},
	{"family 4", proxyV2(0x21, 0x41, v2TCP4), "error"},
	{"transport 3", proxyV2(0x21, 0x13, v2TCP4), "error"},
}

// countingReader counts what is read from it.
type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

func TestProxyV2(t *testing.T) {
	for _, c := range proxyV2Cases {
		t.Run(c.name, func(t *testing.T) {
			r := &countingReader{r: bytes.NewReader(append(bytes.Clone(c.header), "\x03after"...))}
			addr, err := readProxyV2(r)
			got := ""
			switch {
			case err != nil:
				got = "error"
			case addr != nil:
				got = addr.String()
			}
			if got != c.want {
				t.Fatalf("got %q (%v), want %q", got, err, c.want)
			}
			if err == nil && r.n != len(c.header) {
				t.Fatalf("read %d bytes of a %d byte header", r.n, len(c.header))
			}
		})
	}
}

// FuzzProxyV2: readProxyV2 never panics, never reads past the length the
// header declares (and on success reads exactly the header), and a
// source address is the one at its place in the header, of a PROXY
// command over IPv4 or IPv6.
func FuzzProxyV2(f *testing.F) {
	for _, c := range proxyV2Cases {
		f.Add(c.header)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r := &countingReader{r: bytes.NewReader(b)}
		addr, err := readProxyV2(r)
		declared := -1 // bytes of a header of this length field
		if len(b) >= 16 {
			declared = 16 + int(binary.BigEndian.Uint16(b[14:16]))
		}
		if r.n > max(declared, 16) {
			t.Fatalf("read %d bytes, the header declares %d", r.n, declared)
		}
		if err != nil {
			if addr != nil {
				t.Fatalf("address %v and error %v", addr, err)
			}
			return
		}
		if r.n != declared || b[12]>>4 != 2 || b[12]&0x0F > 1 {
			t.Fatalf("accepted version/command %#02x, read %d of %d bytes", b[12], r.n, declared)
		}
		if addr == nil {
			return
		}
		ta, ok := addr.(*net.TCPAddr)
		if !ok || b[12]&0x0F != 1 {
			t.Fatalf("address %T %v from command %#02x", addr, addr, b[12])
		}
		body := b[16:declared]
		var ip netip.Addr
		var port []byte
		switch b[13] >> 4 {
		case 1:
			ip, port = netip.AddrFrom4([4]byte(body[:4])), body[8:10]
		case 2:
			ip, port = netip.AddrFrom16([16]byte(body[:16])), body[32:34]
		default:
			t.Fatalf("address %v from family %#02x", addr, b[13])
		}
		if ta.AddrPort() != netip.AddrPortFrom(ip, binary.BigEndian.Uint16(port)) {
			t.Fatalf("address %v, header has %v port % x", ta, ip, port)
		}
	})
}
