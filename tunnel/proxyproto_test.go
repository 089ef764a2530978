package tunnel

import (
	"bufio"
	"context"
	"encoding/binary"
	"io"
	"net"
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
