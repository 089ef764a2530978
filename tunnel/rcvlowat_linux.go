//go:build linux

package tunnel

import "syscall"

// handOffLowat is the receive low-water mark of a connection whose
// requests a writer reads (see handOff): Linux raises no readiness event
// for fewer bytes, so a poll arriving there wakes no thread. A
// non-blocking read still returns what there is.
const handOffLowat = 16 << 10

// setRcvLowat sets the connection's SO_RCVLOWAT (1 is the default).
func setRcvLowat(rc syscall.RawConn, n int) {
	rc.Control(func(fd uintptr) {
		syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVLOWAT, n)
	})
}
