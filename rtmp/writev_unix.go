//go:build unix

package rtmp

import (
	"errors"
	"net"
	"syscall"
	"unsafe"
)

// maxIovecs is the most buffers one writev takes (IOV_MAX on Linux).
const maxIovecs = 1024

// rawConnOf returns the raw socket of nc for non-blocking writes, or nil.
func rawConnOf(nc net.Conn) syscall.RawConn {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return rc
}

// writevNow writes bufs with one writev that never waits for the socket
// to become writable: it returns how many bytes the kernel took, which may
// be 0 (a full socket buffer) or fewer than asked. iov is scratch space.
func writevNow(rc syscall.RawConn, bufs [][]byte, iov []syscall.Iovec) (int, []syscall.Iovec, error) {
	iov = iov[:0]
	for _, b := range bufs {
		if len(b) == 0 {
			continue
		}
		if len(iov) == maxIovecs {
			break
		}
		v := syscall.Iovec{Base: &b[0]}
		v.SetLen(len(b))
		iov = append(iov, v)
	}
	if len(iov) == 0 {
		return 0, iov, nil
	}
	var n int
	var werr error
	err := rc.Write(func(fd uintptr) bool {
		for {
			r, _, e := syscall.Syscall(syscall.SYS_WRITEV, fd, uintptr(unsafe.Pointer(&iov[0])), uintptr(len(iov)))
			if e == syscall.EINTR {
				continue
			}
			if e != 0 {
				if e != syscall.EAGAIN {
					werr = e
				}
				n = 0
			} else {
				n = int(r)
			}
			return true // done: never wait for the socket here
		}
	})
	clear(iov) // keep no pointers into payloads
	if err == nil {
		err = werr
	}
	if errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET) {
		err = &net.OpError{Op: "writev", Net: "tcp", Err: err}
	}
	return n, iov, err
}
