//go:build unix

package sockio

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

func tcpPair(t *testing.T) (a, b *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); s.Close() })
	return c.(*net.TCPConn), s.(*net.TCPConn)
}

// TestWritev: every byte of many pieces arrives in order, through a small
// socket buffer that makes the kernel take them a part at a time.
func TestWritev(t *testing.T) {
	a, b := tcpPair(t)
	a.SetWriteBuffer(4096)
	var bufs [][]byte
	var want []byte
	for i := range 2000 {
		p := bytes.Repeat([]byte{byte(i)}, 1+i%700)
		bufs = append(bufs, p, nil)
		want = append(want, p...)
	}
	got := make(chan []byte)
	go func() {
		all, _ := io.ReadAll(b)
		got <- all
	}()
	n, iov, err := Writev(RawConnOf(a), bufs, nil)
	if err != nil || n != len(want) {
		t.Fatalf("Writev = %d, %v; want %d", n, err, len(want))
	}
	for _, v := range iov[:cap(iov)] {
		if v.Base != nil {
			t.Fatal("iov keeps a pointer into the buffers")
		}
	}
	a.CloseWrite()
	if all := <-got; !bytes.Equal(all, want) {
		t.Fatalf("received %d bytes, differing from the %d written", len(all), len(want))
	}
}

// TestWritevDeadline: a peer that does not read fails the write at the
// write deadline, with a timeout.
func TestWritevDeadline(t *testing.T) {
	a, _ := tcpPair(t)
	a.SetWriteBuffer(4096)
	a.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
	big := make([]byte, 64<<20)
	n, _, err := Writev(RawConnOf(a), [][]byte{big}, nil)
	if !errors.Is(err, os.ErrDeadlineExceeded) || n >= len(big) {
		t.Fatalf("Writev = %d, %v; want a deadline error", n, err)
	}
}
