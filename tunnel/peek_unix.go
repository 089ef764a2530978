//go:build unix

package tunnel

import (
	"errors"
	"io"
	"net"
	"syscall"
)

// peekSocket reads the first byte waiting on a socket without taking it
// (MSG_PEEK), so the connection goes on untouched — with its vectored
// writes — to whoever serves it. It honours the read deadline set on nc.
// ok is false when nc is not a socket.
func peekSocket(nc net.Conn) (b byte, ok bool, err error) {
	sc, isSock := nc.(syscall.Conn)
	if !isSock {
		return 0, false, nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return 0, false, nil
	}
	var buf [1]byte
	var n int
	var rerr error
	err = rc.Read(func(fd uintptr) bool {
		for {
			n, _, rerr = syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK)
			if !errors.Is(rerr, syscall.EINTR) {
				break
			}
		}
		return !errors.Is(rerr, syscall.EAGAIN)
	})
	if err != nil {
		return 0, true, err
	}
	if rerr != nil {
		return 0, true, rerr
	}
	if n == 0 {
		return 0, true, io.EOF
	}
	return buf[0], true, nil
}

// peekSocketInto peeks up to len(buf) bytes waiting on a socket without
// taking them. It returns at once with what is there (at least one byte,
// waiting for the first under nc's read deadline). ok is false when nc is
// not a socket.
func peekSocketInto(nc net.Conn, buf []byte) (n int, ok bool, err error) {
	sc, isSock := nc.(syscall.Conn)
	if !isSock {
		return 0, false, nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return 0, false, nil
	}
	var rerr error
	err = rc.Read(func(fd uintptr) bool {
		for {
			n, _, rerr = syscall.Recvfrom(int(fd), buf, syscall.MSG_PEEK)
			if !errors.Is(rerr, syscall.EINTR) {
				break
			}
		}
		return !errors.Is(rerr, syscall.EAGAIN)
	})
	if err != nil {
		return 0, true, err
	}
	if rerr != nil {
		return 0, true, rerr
	}
	if n == 0 {
		return 0, true, io.EOF
	}
	return n, true, nil
}
