package e2e

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/yutopp/go-rtmp/handshake"
)

const garbageCloseBound = 10 * time.Second

// TestRandomBytes: connections that send garbage (from the first byte, after
// a valid C0, after a valid handshake) are closed by the server within a
// bounded time, while a normal publish + play keeps working during and after.
func TestRandomBytes(t *testing.T) {
	e2e(t)
	srv := startServer(t)

	// A session that runs while the garbage arrives.
	during := startRelayCheck(t, srv, "during")

	cases := []struct {
		name    string
		prelude func(t *testing.T, c net.Conn) // what to send before the garbage
	}{
		{"random from the first byte", func(t *testing.T, c net.Conn) {}},
		{"valid C0 then random", func(t *testing.T, c net.Conn) { write(t, c, []byte{0x03}) }},
		{"version 0x06 (RTMPE) then random", func(t *testing.T, c net.Conn) { write(t, c, []byte{0x06}) }},
		{"valid handshake then random chunks", func(t *testing.T, c net.Conn) {
			_ = c.SetDeadline(time.Now().Add(10 * time.Second))
			if err := handshake.HandshakeWithServer(c, c, &handshake.Config{}); err != nil {
				t.Fatalf("handshake: %v", err)
			}
			_ = c.SetDeadline(time.Time{})
		}},
		{"valid handshake then chunk header claiming a 16MB message", func(t *testing.T, c net.Conn) {
			_ = c.SetDeadline(time.Now().Add(10 * time.Second))
			if err := handshake.HandshakeWithServer(c, c, &handshake.Config{}); err != nil {
				t.Fatalf("handshake: %v", err)
			}
			_ = c.SetDeadline(time.Time{})
			// fmt 0, csid 3, ts 0, length 0xffffff, type 20 (command), msid 0
			write(t, c, []byte{0x03, 0, 0, 0, 0xff, 0xff, 0xff, 20, 0, 0, 0, 0})
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := net.DialTimeout("tcp", srv.Addr, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			tc.prelude(t, c)
			garbage := make([]byte, 64<<10)
			_, _ = rand.Read(garbage)
			start := time.Now()
			// The server may close while we write: a reset or broken pipe
			// is an acceptable way to be refused.
			_ = c.SetWriteDeadline(time.Now().Add(garbageCloseBound))
			_, werr := c.Write(garbage)
			closed, rerr := readUntilClosed(c, start.Add(garbageCloseBound))
			if !closed {
				t.Errorf("server kept the connection open %v after 64 KiB of garbage (write: %v, read: %v)",
					time.Since(start).Round(time.Millisecond), werr, rerr)
				return
			}
			t.Logf("closed after %v (write: %v, read: %v)", time.Since(start).Round(time.Millisecond), werr, rerr)
		})
	}

	// Many garbage connections at once.
	var many sync.WaitGroup
	errs := make(chan error, 32)
	for i := 0; i < 32; i++ {
		many.Add(1)
		go func() {
			defer many.Done()
			c, err := net.DialTimeout("tcp", srv.Addr, 5*time.Second)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			b := make([]byte, 8<<10)
			_, _ = rand.Read(b)
			_ = c.SetWriteDeadline(time.Now().Add(garbageCloseBound))
			_, _ = c.Write(b)
			if closed, err := readUntilClosed(c, time.Now().Add(garbageCloseBound)); !closed {
				errs <- errors.Join(errors.New("garbage connection not closed"), err)
			}
		}()
	}
	many.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent garbage: %v", err)
	}

	during.wait(t)
	srv.requireAlive(t)
	after := startRelayCheck(t, srv, "after")
	after.wait(t)
}

func write(t *testing.T, c net.Conn, b []byte) {
	t.Helper()
	_ = c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write(b); err != nil {
		t.Fatalf("write: %v", err)
	}
}

// readUntilClosed discards input until the peer closes (EOF or reset) or the
// deadline passes; it reports whether the peer closed.
func readUntilClosed(c net.Conn, deadline time.Time) (bool, error) {
	_ = c.SetReadDeadline(deadline)
	_, err := io.Copy(io.Discard, c)
	if err == nil { // EOF
		return true, nil
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return false, err
	}
	return true, err // reset by peer and the like
}

// relayCheck is a small go-rtmp publish + play session proving the server
// still relays media.
type relayCheck struct {
	name string
	done chan struct{}
	err  error
}

func startRelayCheck(t *testing.T, srv *server, name string) *relayCheck {
	t.Helper()
	rc := &relayCheck{name: name, done: make(chan struct{})}
	player, err := tryDialRTMP(t, name+" player", srv.Addr, dialOpts{})
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	pubc, err := tryDialRTMP(t, name+" publisher", srv.Addr, dialOpts{})
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	go func() {
		defer close(rc.done)
		stream := "check-" + name
		if _, err := player.play("live", stream); err != nil {
			rc.err = err
			return
		}
		sid, err := pubc.publish("live", stream)
		if err != nil {
			rc.err = err
			return
		}
		const frames = 50
		_ = pubc.sendVideo(sid, 0, avcSeqHeader())
		for i := 0; i < frames; i++ {
			if err := pubc.sendVideo(sid, uint32(i*40), avcFrame(i%25 == 0, uint32(i), 2000, 0x33)); err != nil {
				rc.err = err
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		deadline := time.After(10 * time.Second)
		got := 0
		for got < frames+1 {
			select {
			case m := <-player.media:
				if m.Type == 9 {
					got++
				}
			case <-deadline:
				rc.err = fmt.Errorf("player received %d of %d video messages", got, frames+1)
				return
			}
		}
		pubc.unpublish(sid, stream)
	}()
	return rc
}

func (rc *relayCheck) wait(t *testing.T) {
	t.Helper()
	select {
	case <-rc.done:
	case <-time.After(30 * time.Second):
		t.Fatalf("%s publish+play did not finish", rc.name)
	}
	if rc.err != nil {
		t.Errorf("%s publish+play: %v", rc.name, rc.err)
	}
}
