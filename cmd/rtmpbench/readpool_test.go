package main

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// The pool counts what the server sends, acknowledges per the window,
// and ends a member when the server closes.
func TestReadPool(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()

	rp := newReadPool(5*time.Millisecond, 5*time.Second)
	defer rp.close()
	var n atomic.Uint64
	n.Store(100) // counted during setup
	errc := make(chan error, 1)
	go func() { errc <- rp.count(context.Background(), client, &n, 1000, 100) }()

	if _, err := server.Write(make([]byte, 1500)); err != nil {
		t.Fatal(err)
	}
	ack := make([]byte, 16)
	server.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(server, ack); err != nil {
		t.Fatalf("no ack: %v", err)
	}
	if ack[0] != 2 || ack[6] != 4 || ack[7] != 3 || binary.BigEndian.Uint32(ack[12:]) != 1600 {
		t.Errorf("ack chunk % x, want csid 2, length 4, type 3, 1600 bytes", ack)
	}
	if got := n.Load(); got != 1600 {
		t.Errorf("counted %d, want 1600", got)
	}
	server.Close()
	select {
	case err := <-errc:
		if err == nil || !strings.Contains(err.Error(), "server closed") {
			t.Errorf("after the server closed: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("member not ended after the server closed")
	}
}

// A player whose context ends leaves the pool at once.
func TestReadPoolStop(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	rp := newReadPool(time.Millisecond, time.Second)
	defer rp.close()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- rp.count(ctx, client, new(atomic.Uint64), 0, 0) }()
	time.Sleep(20 * time.Millisecond)
	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("got %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("not stopped")
	}
	// Its socket is closed: the server sees EOF.
	server.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := server.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Errorf("server read %v, want EOF", err)
	}
}

// An HTTP-FLV player counted by the pool: it counts what follows the
// keyframe, is stopped by its context, and sees a server's close as a drop.
func TestFLVPlayerPooled(t *testing.T) {
	body, _ := flvJoin(t)
	addr, _ := serveOnce(t, append([]byte(flvHead), body...), body[len(body)-30:])
	cfg := testPlayerConfig(addr)
	cfg.pool = newReadPool(5*time.Millisecond, 5*time.Second)
	defer cfg.pool.close()
	var p player
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	done := make(chan struct{})
	go func() { p.run(ctx, cfg, func() { close(ready) }); close(done) }()
	select {
	case <-ready:
	case <-time.After(5 * time.Second):
		t.Fatal("not ready")
	}
	want := uint64(len(flvHead) + len(body) + 300)
	deadline := time.Now().Add(5 * time.Second)
	for p.bytes.Load() < want && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := p.bytes.Load(); n < want {
		t.Errorf("counted %d bytes, want at least %d", n, want)
	}
	cancel()
	<-done
	if st := p.state.Load(); st != playerStopped {
		t.Errorf("state %d after the stop, err %v", st, p.err)
	}

	addr, _ = serveOnce(t, append([]byte(flvHead), body...), nil)
	cfg = testPlayerConfig(addr)
	cfg.pool = newReadPool(5*time.Millisecond, 5*time.Second)
	defer cfg.pool.close()
	var q player
	q.run(context.Background(), cfg, func() {})
	if st := q.state.Load(); st != playerDropped || q.err == nil || q.err.Error() != "server closed the connection" {
		t.Errorf("state %d, err %v; want dropped, server closed the connection", st, q.err)
	}
}
