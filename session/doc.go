// Package session is rtmphub's core: application instances, clients and
// the FMS command set, over any transport that yields RTMP messages. It
// binds to clients the packages that hold the rest: live streams and
// their sources and readers (live, bound in live.go), a client's outbound
// queue (outqueue), recordings (record, record.go), recorded streams on
// disk and their player (vod, play.go) and shared objects (sharedobject,
// so_client.go).
//
// A transport (chunked RTMP over a net.Conn, RoQR over QUIC) only delivers
// and accepts messages; everything a Flash Media Server user sees on a
// connection — connect, createStream, publish, play, onStatus — is decided
// here, once, for every transport.
//
// Concurrency: each client has one reader goroutine, which runs its
// commands in order, and a bounded outbound queue. A publisher hands each
// media message to its stream's readers, and an RTMP player queues it on
// its client's queue, without ever blocking, then writes
// each player's queue with one non-blocking vectored write from its own
// goroutine, after releasing the stream's lock; only when a socket is full
// (or the transport cannot write without blocking, as RTMPT) does a drain
// goroutine take over for that client, and it exits once the queue is
// empty, so an idle client holds no writer goroutine. A player whose queue
// is full (in messages or bytes) skips to the next keyframe, and one whose
// writes stall past the configured limit is disconnected. Audio waits for
// the next video frame (at most the merge window) so both leave in one
// write. VOD players have a pacing goroutine each; a recording writes its
// file on its own goroutine behind a bounded queue. Locks are taken in the
// order instance, stream, client queue.
//
// Calls a client makes that the core does not answer go to the instance's
// Application (rpc.go); the server calls clients back with Client.Call,
// whose transactions are tracked per connection, and Instance.Broadcast.
// Remote shared objects (package sharedobject, so_client.go) are kept per
// instance, synced to subscribers in batches, one message per subscriber
// per sync interval, through the same never-dropping queue as commands;
// persistent ones are written atomically under the data folder.
package session
