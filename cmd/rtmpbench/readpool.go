package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// readPool counts the bytes of many streaming players from one goroutine
// (-read-pool): every -batch it reads each player's socket once,
// non-blocking, into one shared buffer. A player goroutine per socket
// costs, per wakeup, a netpoll event, a goroutine switch, the read and a
// second read that finds the socket empty and parks; the pool pays one
// read per player per tick and one timer wakeup for all of them. Measured
// pinned at 1000 and 3000 players of 232 kbps the tool's CPU stayed about
// the same (15% and 36% of its core, against 17% and 30% with a goroutine
// each while the server delivered less): most of it is the kernel's
// receive path (copies, window updates, and, over loopback, the
// server's socket processing the acks), not the wakeups. It is kept for
// the goroutines and wakeups it saves (bench/README.md); with the reads
// spread over the interval (phases) the tool needed 42% of its core at
// 3000 rtmphub players, 52-68% at 3000 nginx-rtmp ones.
// Counting players' sockets are taken out of the Go runtime's poller (the
// fd is duplicated and the net.Conn closed), so their data wakes nothing.
type readPool struct {
	interval    time.Duration
	readTimeout time.Duration

	mu      sync.Mutex
	members map[int]*pooled // by fd
	// Members are read in poolPhases groups, one group each interval /
	// poolPhases, so a tick's reads (a third of the tool's core or more
	// at 3000 players) are not one burst of tens of ms that would delay
	// the probes and the publisher sharing the core (not measured apart).
	phases  [poolPhases]map[int]*pooled
	next    int // phase of the next member
	stopped bool
	done    chan struct{}
}

const poolPhases = 10

// pooled is one player's socket in the pool.
type pooled struct {
	fd        int
	phase     int
	bytes     *atomic.Uint64
	ackWindow uint64 // RTMP: acknowledge each time this many bytes came; 0: never
	lastAck   uint64
	lastData  time.Time
	end       chan error // gets the reason the socket left the pool, once
}

func newReadPool(interval, readTimeout time.Duration) *readPool {
	rp := &readPool{interval: interval, readTimeout: readTimeout, members: map[int]*pooled{}, done: make(chan struct{})}
	for i := range rp.phases {
		rp.phases[i] = map[int]*pooled{}
	}
	go rp.run()
	return rp
}

// close ends the pool's goroutine; the sockets still in it are closed and
// their players told they were stopped.
func (rp *readPool) close() {
	rp.mu.Lock()
	if rp.stopped {
		rp.mu.Unlock()
		return
	}
	rp.stopped = true
	for fd, m := range rp.members {
		rp.remove(fd, m, errors.New("stopped"))
	}
	rp.mu.Unlock()
	close(rp.done)
}

// count hands conn to the pool and waits until its stream ends (the error
// says why) or ctx is done. bytes gets every byte read; ackWindow and
// lastAck continue an RTMP connection's acknowledgements (0: none).
func (rp *readPool) count(ctx context.Context, conn net.Conn, bytes *atomic.Uint64, ackWindow, lastAck uint64) error {
	fd := -1
	var derr error
	if err := controlFD(conn, func(f uintptr) { fd, derr = syscall.Dup(int(f)) }); err != nil {
		return err
	}
	if derr != nil {
		return fmt.Errorf("dup: %w", derr)
	}
	// The duplicate shares the socket and its O_NONBLOCK; closing the
	// original takes the socket out of the runtime's poller.
	conn.Close()
	m := &pooled{fd: fd, bytes: bytes, ackWindow: ackWindow, lastAck: lastAck, lastData: time.Now(), end: make(chan error, 1)}
	rp.mu.Lock()
	if rp.stopped {
		rp.mu.Unlock()
		syscall.Close(fd)
		return errors.New("stopped")
	}
	m.phase = rp.next
	rp.next = (rp.next + 1) % poolPhases
	rp.members[fd] = m
	rp.phases[m.phase][fd] = m
	rp.mu.Unlock()
	select {
	case err := <-m.end:
		return err
	case <-ctx.Done():
		rp.mu.Lock()
		if rp.members[fd] == m {
			rp.remove(fd, m, ctx.Err())
		}
		rp.mu.Unlock()
		return ctx.Err()
	}
}

// remove closes a member's socket and tells its player why; rp.mu is held.
func (rp *readPool) remove(fd int, m *pooled, why error) {
	delete(rp.members, fd)
	delete(rp.phases[m.phase], fd)
	syscall.Close(fd)
	m.end <- why
}

func (rp *readPool) run() {
	t := time.NewTicker(max(rp.interval/poolPhases, time.Millisecond))
	defer t.Stop()
	buf := make([]byte, 64<<10)
	for phase := 0; ; phase = (phase + 1) % poolPhases {
		select {
		case <-rp.done:
			return
		case <-t.C:
		}
		rp.mu.Lock()
		now := time.Now()
		for fd, m := range rp.phases[phase] {
			if err := m.read(buf, now, rp.readTimeout); err != nil {
				rp.remove(fd, m, err)
			}
		}
		rp.mu.Unlock()
	}
}

// read drains what the socket holds (a few reads at most: the buffer is
// larger than a tick's worth of a stream of some Mbit/s) and acknowledges.
func (m *pooled) read(buf []byte, now time.Time, readTimeout time.Duration) error {
	for range 8 {
		n, err := syscall.Read(m.fd, buf)
		switch {
		case err == syscall.EAGAIN || err == syscall.EINTR:
			if now.Sub(m.lastData) > readTimeout {
				return fmt.Errorf("no data for %v", readTimeout)
			}
			return nil
		case err != nil:
			return err
		case n == 0:
			return errors.New("server closed the connection")
		}
		m.lastData = now
		total := m.bytes.Add(uint64(n))
		if m.ackWindow > 0 && total-m.lastAck >= m.ackWindow {
			m.lastAck = total
			if err := writeFull(m.fd, ackChunk(uint32(total))); err != nil {
				return fmt.Errorf("send ack: %w", err)
			}
		}
		if n < len(buf) {
			return nil
		}
	}
	return nil
}

// ackChunk is an RTMP Acknowledgement of total bytes as one chunk with a
// full (type 0) header on chunk stream 2: valid whatever was sent before.
func ackChunk(total uint32) []byte {
	b := make([]byte, 16)
	b[0] = 2 // fmt 0, csid 2
	// timestamp 0 (b[1:4]), length 4, type 3, message stream 0 (b[8:12])
	b[6] = 4
	b[7] = 3
	binary.BigEndian.PutUint32(b[12:], total)
	return b
}

// writeFull writes b to a non-blocking socket, waiting a little when its
// send buffer is full (an ack is 16 bytes: it practically never is).
func writeFull(fd int, b []byte) error {
	for tries := 0; len(b) > 0; tries++ {
		n, err := syscall.Write(fd, b)
		switch {
		case err == syscall.EAGAIN || err == syscall.EINTR:
			if tries > 100 {
				return errors.New("send buffer full for 100 ms")
			}
			time.Sleep(time.Millisecond)
		case err != nil:
			return err
		default:
			b = b[n:]
		}
	}
	return nil
}
