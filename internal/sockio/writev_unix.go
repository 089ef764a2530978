//go:build unix

package sockio

import (
	"errors"
	"io"
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

// appendIovecs appends to iov the non-empty buffers of bufs, the first
// from its byte off, at most MaxIovecs in all.
func appendIovecs(iov []Iovec, bufs [][]byte, off int) []Iovec {
	for i, b := range bufs {
		if i == 0 {
			b = b[off:]
		}
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
	return iov
}

// WritevNow writes bufs with one writev that never waits for the socket
// to become writable: it returns how many bytes the kernel took, which may
// be 0 (a full socket buffer) or fewer than asked. iov is scratch space.
func WritevNow(rc syscall.RawConn, bufs [][]byte, iov []Iovec) (int, []Iovec, error) {
	iov = appendIovecs(iov[:0], bufs, 0)
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

// Writev writes all of bufs with writev, waiting for the socket to take
// them (within its write deadline) as a net.Conn's Write does. Unlike
// net.Buffers.WriteTo, which leaves an iovec array on the socket for the
// rest of its life, it keeps nothing: iov is the caller's scratch space,
// so that thousands of sockets can share a few. It returns the bytes
// written.
func Writev(rc syscall.RawConn, bufs [][]byte, iov []Iovec) (int, []Iovec, error) {
	total, off := 0, 0 // off: bytes of bufs[0] already written
	for {
		for len(bufs) > 0 && off == len(bufs[0]) {
			bufs, off = bufs[1:], 0
		}
		if len(bufs) == 0 {
			clear(iov[:cap(iov)]) // a later round may have used fewer
			return total, iov[:0], nil
		}
		iov = appendIovecs(iov[:0], bufs, off)
		var n int
		var werr error
		err := rc.Write(func(fd uintptr) bool {
			for {
				r, _, e := syscall.Syscall(syscall.SYS_WRITEV, fd, uintptr(unsafe.Pointer(&iov[0])), uintptr(len(iov)))
				switch e {
				case 0:
					n = int(r)
					return true
				case syscall.EINTR:
					continue
				case syscall.EAGAIN:
					return false // wait until the socket is writable
				default:
					werr = e
					return true
				}
			}
		})
		if err == nil {
			err = werr
		}
		if err == nil && n == 0 {
			err = io.ErrShortWrite
		}
		if err != nil {
			clear(iov[:cap(iov)])
			iov = iov[:0]
			if errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET) {
				err = &net.OpError{Op: "writev", Net: "tcp", Err: err}
			}
			return total, iov, err
		}
		total += n
		for n > 0 {
			if k := len(bufs[0]) - off; n >= k {
				n -= k
				bufs, off = bufs[1:], 0
			} else {
				off += n
				n = 0
			}
		}
	}
}
