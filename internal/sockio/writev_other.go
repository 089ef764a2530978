//go:build !unix

package sockio

import (
	"net"
	"syscall"
)

// Iovec is a writev buffer descriptor (none on this system).
type Iovec struct{}

// RawConnOf returns nil: no non-blocking writes on this system.
func RawConnOf(net.Conn) syscall.RawConn { return nil }

// WritevNow is never called where RawConnOf returns nil.
func WritevNow(syscall.RawConn, [][]byte, []Iovec) (int, []Iovec, error) {
	return 0, nil, nil
}

// Writev is never called where RawConnOf returns nil.
func Writev(syscall.RawConn, [][]byte, []Iovec) (int, []Iovec, error) {
	return 0, nil, nil
}
