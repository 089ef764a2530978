//go:build !linux

package tunnel

import "syscall"

const handOffLowat = 1

// setRcvLowat does nothing here: readiness events follow every byte.
func setRcvLowat(syscall.RawConn, int) {}
