// Package bridge carries RTMP connections between transports: the gateway
// forwards every client a hub accepts (RTMP, RTMPT, RTMPS, RTMPTS, QUIC)
// byte for byte to an upstream RTMP origin, and the client bridge carries
// local TCP RTMP connections to a hub over RTMPT, RTMPTS, QUIC or plain
// RTMP, byte for byte. RoQR carries whole messages instead of bytes: both
// relay those messages (msgpipe.go), dechunking and chunking RTMP on the
// TCP side, with the per-hop control messages kept to their hop.
package bridge

import (
	"errors"
	"io"
	"net"
	"sync"
	"time"
)

// closeWriter is a connection that can end its outgoing bytes and keep
// reading (TCP, TLS, QUIC streams).
type closeWriter interface{ CloseWrite() error }

// Stats counts the bytes a Pipe moved each way.
type Stats struct {
	AToB, BToA int64
}

// Pipe copies a→b and b→a until both directions end, then closes both.
// When one direction reaches EOF, the other side's write half is closed
// (if it supports half-close) and the other direction keeps going for at
// most linger; a direction that fails with an error closes both at once.
// A write that cannot finish within stall (a side that stopped reading)
// fails and closes both; stall 0 waits for ever. It returns the byte
// counts and the first error other than EOF or a close Pipe made itself.
func Pipe(a, b net.Conn, linger, stall time.Duration) (Stats, error) {
	var (
		st       Stats
		once     sync.Once
		firstErr error
		errMu    sync.Mutex
		wg       sync.WaitGroup
	)
	closeBoth := func() {
		once.Do(func() {
			a.Close()
			b.Close()
		})
	}
	setErr := func(err error) {
		errMu.Lock()
		if firstErr == nil {
			firstErr = err
		}
		errMu.Unlock()
	}
	var (
		doneMu   sync.Mutex
		finished int
		timer    *time.Timer
	)
	copyDir := func(dst, src net.Conn, n *int64) {
		defer wg.Done()
		var err error
		*n, err = copyStall(dst, src, stall)
		if err != nil && !errors.Is(err, net.ErrClosed) {
			setErr(err)
			closeBoth()
			return
		}
		doneMu.Lock()
		finished++
		last := finished == 2
		doneMu.Unlock()
		if last {
			closeBoth()
			return
		}
		if cw, ok := dst.(closeWriter); ok && err == nil {
			if cw.CloseWrite() == nil {
				// The other direction may still carry the peer's last
				// bytes; give it a bounded time to end by itself.
				doneMu.Lock()
				timer = time.AfterFunc(linger, closeBoth)
				doneMu.Unlock()
				return
			}
		}
		closeBoth()
	}
	wg.Add(2)
	go copyDir(b, a, &st.AToB)
	go copyDir(a, b, &st.BToA)
	wg.Wait()
	doneMu.Lock()
	if timer != nil {
		timer.Stop()
	}
	doneMu.Unlock()
	closeBoth()
	return st, firstErr
}

// copyStall is io.Copy, with a write deadline stall ahead of every write
// (moved only when a quarter of it has passed: a deadline is a timer
// update). It gives up the kernel's splice between two TCP sockets, which
// RTMP's rates do not need.
func copyStall(dst, src net.Conn, stall time.Duration) (int64, error) {
	if stall <= 0 {
		return io.Copy(dst, src)
	}
	buf := make([]byte, 32<<10)
	var total int64
	var set time.Time
	for {
		n, rerr := src.Read(buf)
		if n > 0 {
			if now := time.Now(); now.Sub(set) >= stall/4 {
				dst.SetWriteDeadline(now.Add(stall))
				set = now
			}
			w, werr := dst.Write(buf[:n])
			total += int64(w)
			if werr != nil {
				return total, werr
			}
		}
		if errors.Is(rerr, io.EOF) {
			return total, nil
		}
		if rerr != nil {
			return total, rerr
		}
	}
}
