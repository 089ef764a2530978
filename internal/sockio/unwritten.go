package sockio

// AppendUnwritten appends to dst what of bufs lies past their first n
// bytes: the tail a short write left, copied, since the buffers may be
// reused or released once the write returns.
func AppendUnwritten(dst []byte, bufs [][]byte, n int) []byte {
	for _, b := range bufs {
		if n >= len(b) {
			n -= len(b)
			continue
		}
		dst = append(dst, b[n:]...)
		n = 0
	}
	return dst
}
