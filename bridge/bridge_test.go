package bridge

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"
)

func TestProxyHeader(t *testing.T) {
	local := &net.TCPAddr{IP: net.IPv4(10, 0, 0, 2), Port: 40000}
	src := netip.MustParseAddrPort("192.0.2.7:51000")
	for _, c := range []struct {
		name    string
		version int
		src     netip.AddrPort
		local   net.Addr
		want    []byte
	}{
		{"v1 ipv4", 1, src, local, []byte("PROXY TCP4 192.0.2.7 10.0.0.2 51000 40000\r\n")},
		{"v1 ipv6", 1, netip.MustParseAddrPort("[2001:db8::1]:5"), &net.TCPAddr{IP: net.ParseIP("2001:db8::2"), Port: 6},
			[]byte("PROXY TCP6 2001:db8::1 2001:db8::2 5 6\r\n")},
		{"v1 mixed families", 1, netip.MustParseAddrPort("[2001:db8::1]:5"), local, []byte("PROXY UNKNOWN\r\n")},
		{"v2 ipv4", 2, src, local, append(append([]byte{}, proxySig...),
			0x21, 0x11, 0, 12, 192, 0, 2, 7, 10, 0, 0, 2, 0xC7, 0x38, 0x9C, 0x40)},
		{"v2 unknown", 2, netip.AddrPort{}, local, append(append([]byte{}, proxySig...), 0x20, 0, 0, 0)},
	} {
		if got := proxyHeader(c.version, c.src, c.local, nil); !bytes.Equal(got, c.want) {
			t.Errorf("%s: got %q, want %q", c.name, got, c.want)
		}
	}
}

// tcpPair is a connected pair of loopback TCP connections.
func tcpPair(t *testing.T) (net.Conn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c1, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c2, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c1.Close(); c2.Close() })
	return c1, c2
}

// TestPipeHalfClose: the client sends and half-closes; the far end reads
// to EOF, then answers and closes; the client gets the whole answer and
// EOF, and Pipe returns with both counts.
func TestPipeHalfClose(t *testing.T) {
	client, a := tcpPair(t)
	b, server := tcpPair(t)
	res := make(chan Stats, 1)
	go func() {
		st, _ := Pipe(a, b, 5*time.Second, 0)
		res <- st
	}()
	req := bytes.Repeat([]byte("q"), 100000)
	client.Write(req)
	client.(*net.TCPConn).CloseWrite()
	server.SetReadDeadline(time.Now().Add(5 * time.Second))
	got, err := io.ReadAll(server)
	if err != nil || len(got) != len(req) {
		t.Fatalf("server read %d bytes, %v", len(got), err)
	}
	server.Write([]byte("answer"))
	server.Close()
	client.SetReadDeadline(time.Now().Add(5 * time.Second))
	ans, err := io.ReadAll(client)
	if err != nil || string(ans) != "answer" {
		t.Fatalf("client read %q, %v", ans, err)
	}
	select {
	case st := <-res:
		if st.AToB != int64(len(req)) || st.BToA != 6 {
			t.Errorf("stats %+v", st)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Pipe did not return")
	}
}

// TestPipeLingerBound: a far end that never closes after the client's EOF
// is cut after the linger time.
func TestPipeLingerBound(t *testing.T) {
	client, a := tcpPair(t)
	b, _ := tcpPair(t)
	done := make(chan struct{})
	go func() {
		Pipe(a, b, 200*time.Millisecond, 0)
		close(done)
	}()
	client.Close()
	select {
	case <-done:
	case <-time.After(3 * time.Second):
		t.Fatal("Pipe waited past its linger")
	}
}

// TestPipeStallBound: a far end that stops reading while the client keeps
// sending ends the relay once a write has waited the stall time (an idle
// but reading pair is not cut: TestPipe's pairs sit idle longer).
func TestPipeStallBound(t *testing.T) {
	client, a := tcpPair(t)
	b, _ := tcpPair(t) // its far end never reads
	done := make(chan error, 1)
	go func() {
		_, err := Pipe(a, b, time.Second, 300*time.Millisecond)
		done <- err
	}()
	go func() {
		chunk := make([]byte, 64<<10)
		for {
			client.SetWriteDeadline(time.Now().Add(5 * time.Second))
			if _, err := client.Write(chunk); err != nil {
				return
			}
		}
	}()
	select {
	case err := <-done:
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			t.Fatalf("Pipe ended with %v, want a write timeout", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Pipe kept a stalled write past its bound")
	}
}

func TestGatewayUpstreamDownRefusesAtOnce(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	g, err := NewGateway(GatewayConfig{Upstream: "rtmp://" + dead})
	if err != nil {
		t.Fatal(err)
	}
	client, nc := tcpPair(t)
	start := time.Now()
	g.Serve(context.Background(), nc, "rtmp", "")
	if d := time.Since(start); d > time.Second {
		t.Errorf("refusal took %v", d)
	}
	client.SetReadDeadline(time.Now().Add(2 * time.Second))
	if n, err := client.Read(make([]byte, 1)); n != 0 || err == nil {
		t.Errorf("client read %d, %v: want the connection closed", n, err)
	}
}

func TestGatewayForwardsWithProxyV1(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	g, err := NewGateway(GatewayConfig{Upstream: "rtmp://" + ln.Addr().String(), ProxyProtocol: 1})
	if err != nil {
		t.Fatal(err)
	}
	client, nc := tcpPair(t)
	go g.Serve(context.Background(), nc, "rtmp", "203.0.113.9")
	up, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	up.SetReadDeadline(time.Now().Add(5 * time.Second))
	client.Write([]byte{3, 1, 2, 3})
	r := bufio.NewReader(up)
	line, err := r.ReadString('\n')
	if err != nil || !bytes.HasPrefix([]byte(line), []byte("PROXY TCP4 203.0.113.9 127.0.0.1 0 ")) {
		t.Fatalf("PROXY line %q, %v", line, err)
	}
	body := make([]byte, 4)
	if _, err := io.ReadFull(r, body); err != nil || !bytes.Equal(body, []byte{3, 1, 2, 3}) {
		t.Fatalf("forwarded %v, %v", body, err)
	}
	up.Write([]byte("back"))
	client.SetReadDeadline(time.Now().Add(5 * time.Second))
	back := make([]byte, 4)
	if _, err := io.ReadFull(client, back); err != nil || string(back) != "back" {
		t.Fatalf("client got %q, %v", back, err)
	}
	if _, err := NewGateway(GatewayConfig{Upstream: "http://x"}); err == nil {
		t.Error("http upstream accepted")
	}
}
