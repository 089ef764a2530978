// Package sockio makes non-blocking vectored writes on sockets: a server
// that writes to many peers from one goroutine (a publisher's fan-out, a
// tunnel's replies) writes what the kernel takes at once and hands the
// rest to a goroutine that may wait, instead of a goroutine per write.
package sockio
