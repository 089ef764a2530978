//go:build !unix

package rtmp

import (
	"net"
	"syscall"
)

func rawConnOf(net.Conn) syscall.RawConn { return nil }

func writevNow(syscall.RawConn, [][]byte, []syscall.Iovec) (int, []syscall.Iovec, error) {
	return 0, nil, nil
}
