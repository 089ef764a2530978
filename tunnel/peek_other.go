//go:build !unix

package tunnel

import "net"

// peekSocket is not available here: callers read and replay the byte.
func peekSocket(net.Conn) (byte, bool, error) { return 0, false, nil }

func peekSocketInto(net.Conn, []byte) (int, bool, error) { return 0, false, nil }
