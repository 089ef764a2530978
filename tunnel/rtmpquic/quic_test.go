package rtmpquic

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/rtmphub/rtmphub/tunnel"
)

// quicServer listens on loopback with a self-signed certificate made in a
// temporary dir and hands every accepted stream to h.
func quicServer(t *testing.T, h func(net.Conn)) (ln *Listener, url, pin string) {
	t.Helper()
	dir := t.TempDir()
	cert, created, err := LoadOrCreateSelfSigned(dir)
	if err != nil || !created {
		t.Fatalf("self-signed: created %v, err %v", created, err)
	}
	again, created, err := LoadOrCreateSelfSigned(dir)
	if err != nil || created || !bytes.Equal(again.Certificate[0], cert.Certificate[0]) {
		t.Fatalf("second load: created %v, err %v, same %v", created, err, err == nil && bytes.Equal(again.Certificate[0], cert.Certificate[0]))
	}
	ln, err = Listen("127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}},
		Config{IdleTimeout: 5 * time.Second, KeepAlive: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func(ln *Listener) { // not the named result, which return writes
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go h(c)
		}
	}(ln)
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		ln.Shutdown(sctx)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Error("accept loop did not end")
		}
	})
	return ln, "quic://" + ln.Addr().String(), tunnel.Fingerprint(cert.Certificate[0])
}

func quicEcho(c net.Conn) {
	io.Copy(c, c)
	c.(*Conn).CloseWrite()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	io.Copy(io.Discard, c)
	c.Close()
}

func dialTest(t *testing.T, url string, opts DialOptions) *Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := Dial(ctx, url, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c.(*Conn)
}

func TestQUICEchoPinnedHalfClose(t *testing.T) {
	_, url, pin := quicServer(t, quicEcho)
	// The pin in upper case with colons, as some tools print it.
	var colons []string
	for i := 0; i < len(pin); i += 2 {
		colons = append(colons, strings.ToUpper(pin[i:i+2]))
	}
	c := dialTest(t, url, DialOptions{PinSHA256: strings.Join(colons, ":")})
	if got := c.ConnectionState().NegotiatedProtocol; got != ALPN {
		t.Errorf("ALPN %q, want %q", got, ALPN)
	}
	msg := bytes.Repeat([]byte("rtmp bytes "), 100000) // ~1.1 MB: beyond the initial flow window
	go func() {
		c.Write(msg)
		c.CloseWrite()
	}()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if !bytes.Equal(got, msg) {
		t.Fatalf("echo: got %d bytes, want %d", len(got), len(msg))
	}
	if err := c.Close(); err != nil {
		t.Errorf("close: %v", err)
	}
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
		t.Errorf("read after close: %v, want net.ErrClosed", err)
	}
	if _, err := c.Write([]byte{1}); !errors.Is(err, net.ErrClosed) {
		t.Errorf("write after close: %v, want net.ErrClosed", err)
	}
	if err := c.Close(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("second close: %v, want net.ErrClosed", err)
	}
}

func TestQUICPinMismatchAndVerify(t *testing.T) {
	_, url, _ := quicServer(t, quicEcho)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := Dial(ctx, url, DialOptions{PinSHA256: strings.Repeat("ab", 32)})
	if err == nil || !strings.Contains(err.Error(), "does not match the pin") {
		t.Errorf("wrong pin: err %v, want a pin mismatch", err)
	}
	// Without pin or insecure, a self-signed certificate is refused.
	if _, err := Dial(ctx, url, DialOptions{}); err == nil {
		t.Error("unverified self-signed certificate accepted")
	}
	if _, err := Dial(ctx, url, DialOptions{PinSHA256: "nothex"}); err == nil || !strings.Contains(err.Error(), "bad certificate pin") {
		t.Errorf("bad pin: %v", err)
	}
	c := dialTest(t, url, DialOptions{Insecure: true})
	if _, err := c.Write([]byte("x")); err != nil {
		t.Error(err)
	}
}

func TestQUICDeadlines(t *testing.T) {
	hold := make(chan struct{})
	t.Cleanup(func() { close(hold) })
	_, url, pin := quicServer(t, func(c net.Conn) {
		// Read nothing, send nothing: the client's reads wait and, once
		// the flow-control windows are full, its writes block.
		<-hold
		c.Close()
	})
	c := dialTest(t, url, DialOptions{PinSHA256: pin})
	isTimeout := func(err error) bool {
		var ne net.Error
		return errors.As(err, &ne) && ne.Timeout() && errors.Is(err, os.ErrDeadlineExceeded)
	}

	// A deadline in the past fails a read at once.
	c.SetReadDeadline(time.Now().Add(-time.Second))
	start := time.Now()
	if _, err := c.Read(make([]byte, 1)); !isTimeout(err) {
		t.Fatalf("read with past deadline: %v, want a timeout", err)
	}
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Errorf("past deadline took %v", d)
	}
	// A future deadline fires on time, and stays expired.
	c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	start = time.Now()
	if _, err := c.Read(make([]byte, 1)); !isTimeout(err) {
		t.Fatalf("read: %v, want a timeout", err)
	}
	if d := time.Since(start); d < 80*time.Millisecond || d > 2*time.Second {
		t.Errorf("100ms deadline fired after %v", d)
	}
	// Moving the deadline while a read waits: the later one applies.
	c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	go func() {
		time.Sleep(10 * time.Millisecond)
		c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	}()
	start = time.Now()
	if _, err := c.Read(make([]byte, 1)); !isTimeout(err) {
		t.Fatalf("read: %v, want a timeout", err)
	}
	if d := time.Since(start); d < 250*time.Millisecond {
		t.Errorf("extended deadline fired after %v", d)
	}
	// A write blocked by flow control times out.
	c.SetWriteDeadline(time.Now().Add(300 * time.Millisecond))
	start = time.Now()
	_, err := c.Write(make([]byte, 64<<20))
	if !isTimeout(err) {
		t.Fatalf("blocked write: %v, want a timeout", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("write deadline fired after %v", d)
	}
	// Clearing the deadline: a small read now waits until Close ends it.
	c.SetDeadline(time.Time{})
	errc := make(chan error, 1)
	go func() {
		_, err := c.Read(make([]byte, 1))
		errc <- err
	}()
	select {
	case err := <-errc:
		t.Fatalf("read without deadline returned %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	c.Close()
	select {
	case err := <-errc:
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("read ended by close: %v, want net.ErrClosed", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("close did not unblock a read")
	}
}

func TestQUICMigration(t *testing.T) {
	remotes := make(chan net.Addr, 4)
	_, url, pin := quicServer(t, func(c net.Conn) {
		buf := make([]byte, 4)
		for {
			if _, err := io.ReadFull(c, buf); err != nil {
				c.Close()
				return
			}
			remotes <- c.RemoteAddr()
			if _, err := c.Write(buf); err != nil {
				c.Close()
				return
			}
		}
	})
	c := dialTest(t, url, DialOptions{PinSHA256: pin})
	ping := func(s string) net.Addr {
		t.Helper()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write([]byte(s)); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 4)
		if _, err := io.ReadFull(c, buf); err != nil || string(buf) != s {
			t.Fatalf("ping %q: got %q, %v", s, buf, err)
		}
		return <-remotes
	}
	before := ping("one!")
	local := c.LocalAddr().String()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	// The server moves to the new path once it has validated it (a
	// PATH_CHALLENGE round trip), which may come after the first packets
	// on it: it answers those from the path it knows. Ping until it sees
	// the new address, a bounded number of times.
	var after net.Addr
	for i := 0; i < 50; i++ {
		if after = ping("two!"); after.String() != before.String() {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if before.String() == after.String() {
		t.Errorf("server still sees %v a second after migration", after)
	}
	t.Logf("client %s → server saw %v, then %v (local now %s)", local, before, after, c.LocalAddr())
}

// TestQUICListenerCloseKeepsConns: closing the listener stops new
// connections but lets accepted RTMP connections finish, as with TCP;
// Shutdown then ends the rest within its deadline.
func TestQUICListenerCloseKeepsConns(t *testing.T) {
	got := make(chan net.Conn, 1)
	ln, url, pin := quicServer(t, func(c net.Conn) { got <- c })
	c := dialTest(t, url, DialOptions{PinSHA256: pin})
	c.Write([]byte("hi"))
	var sc net.Conn
	select {
	case sc = <-got:
	case <-time.After(5 * time.Second):
		t.Fatal("no stream accepted")
	}
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := ln.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("accept after close: %v", err)
	}
	// The accepted connection still works both ways.
	sc.SetDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 2)
	if _, err := io.ReadFull(sc, buf); err != nil || string(buf) != "hi" {
		t.Fatalf("server read %q, %v", buf, err)
	}
	if _, err := sc.Write([]byte("yo")); err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "yo" {
		t.Fatalf("client read %q, %v", buf, err)
	}
	// New connections are refused.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if c2, err := Dial(ctx, url, DialOptions{PinSHA256: pin, Config: Config{HandshakeTimeout: time.Second}}); err == nil {
		c2.Write([]byte{3})
		c2.SetReadDeadline(time.Now().Add(2 * time.Second))
		if _, err := c2.Read(buf); err == nil {
			t.Error("a new connection was served after Close")
		}
		c2.Close()
	}
	// Shutdown ends the client's connection within its deadline.
	sctx, scancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer scancel()
	start := time.Now()
	ln.Shutdown(sctx)
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("shutdown took %v", d)
	}
	c.SetReadDeadline(time.Now().Add(3 * time.Second))
	if _, err := c.Read(buf); err == nil {
		t.Error("client still reads after shutdown")
	} else {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Errorf("client read timed out instead of seeing the close: %v", err)
		}
	}
	sc.Close()
}
