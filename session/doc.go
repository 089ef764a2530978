// Package session is rtmphub's core: application instances, clients,
// live streams with fan-out, and the FMS command set, over any transport
// that yields RTMP messages.
//
// A transport (chunked RTMP over a net.Conn, RoQR over QUIC) only delivers
// and accepts messages; everything a Flash Media Server user sees on a
// connection — connect, createStream, publish, play, onStatus — is decided
// here, once, for every transport.
//
// Concurrency: each client has one reader goroutine, which runs its
// commands in order, and one writer goroutine, which drains the client's
// bounded outbound queue in batches (one vectored write per batch). A
// publisher hands each media message to its players' queues without ever
// blocking: a player whose queue is full skips to the next keyframe, and one
// whose writes stall past the configured limit is disconnected. Locks are
// taken in the order instance, stream, client queue.
package session
