// Package live holds the live streams of an application instance: what
// feeds them and what reads them.
//
// A Stream is fed through a Publication, the hold of one Source on it (an
// RTMP or RoQR publisher, a script's server-side stream, next a pull from
// another hub): whatever the source, its messages take the same path,
// Publication.Write, and the same rules apply to it: one publisher at a
// time, takeover of a silent publisher, a grace period for one that
// vanished, one timeline across publishers.
//
// A Stream delivers to Readers (an RTMP player, a recorder, a script's
// server-side player, next HTTP-FLV viewers and relays to other hubs). A
// Reader is only a destination with a bounded queue: the policy of live
// delivery lives here, once, in the Subscription that attaches a Reader
// to a Stream: the join burst (metadata, sequence headers, the cached
// group of pictures), the start at a keyframe, the reader's own timeline,
// pause and receiveAudio/receiveVideo, and the slow-reader rule (a reader
// whose queue refuses media skips to the next keyframe, counted and
// logged at most every ten seconds).
//
// The path of one video message: Publication.Write parses it into a
// Packet once, Stream.writePacket caches it in the group of pictures and
// offers it to every Subscription, which queues it on its Reader
// (Reader.Queue); once the stream is unlocked, the readers that took
// media are flushed (Reader.Flush) on the publisher's goroutine, and
// audio and data wait up to Config.WriteMerge for the next video frame so
// that both leave in one write. In merged-write mode (Config.MergedWrite,
// for large audiences) the media of the readers that allow it
// (ReaderOptions.Merge) waits for the stream's window instead, and the
// stream's timer flushes them all once per window.
package live
