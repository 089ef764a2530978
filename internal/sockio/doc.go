// Package sockio makes non-blocking vectored writes on sockets: a server
// that writes to many peers from one goroutine (a publisher fanning a
// frame out to its native players in rtmp.Conn.TryWriteMessages, and to its
// RTMPT players' polls in tunnel) writes what the kernel takes at once and
// hands the rest to a goroutine that may wait, instead of needing a
// goroutine per write.
package sockio
