//go:build unix

package sockio

import (
	"errors"
	"net"
	"syscall"
	"unsafe"
)

// Iovec is a writev buffer descriptor.
type Iovec = syscall.Iovec

// MaxIovecs is the most buffers one writev takes (IOV_MAX on Linux).
const MaxIovecs = 1024

// RawConnOf returns the raw socket of nc for non-blocking writes, or nil.
func RawConnOf(nc net.Conn) syscall.RawConn {
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

// WritevNow writes bufs with one writev that never waits for the socket
// to become writable: it returns how many bytes the kernel took, which may
// be 0 (a full socket buffer) or fewer than asked. iov is scratch space.
func WritevNow(rc syscall.RawConn, bufs [][]byte, iov []Iovec) (int, []Iovec, error) {
	iov = iov[:0]
	for _, b := range bufs {
		if len(b) == 0 {
			continue
		}
		if len(iov) == MaxIovecs {
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
