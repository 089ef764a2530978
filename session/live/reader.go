package live

import (
	"log/slog"
	"time"

	"github.com/rtmphub/rtmphub/rtmp/message"
)

// Reader is a destination of a live stream: an RTMP player, a recorder, a
// script's server-side player. Its methods are called with the stream
// locked, mostly on the publisher's goroutine: they must never block, and
// must not call back into the stream. ts is the packet's timestamp on the
// reader's own timeline (0 where it started); the packet and its payload
// are shared between readers and must not be changed.
type Reader interface {
	// Send takes a packet the reader must not drop (metadata, sequence
	// headers, data messages) and starts writing it.
	Send(pkt *Packet, ts uint32)
	// Queue takes an audio or video packet unless the reader's queue is
	// full, and reports whether it did; a refusal skips the reader to the
	// next keyframe. force is set for the join burst (the cached group of
	// pictures), which the cache's own bound limits: a reader takes it
	// whole. Queued media waits for Flush.
	Queue(pkt *Packet, ts uint32, force bool) bool
	// Flush writes what Queue took. The stream calls it for the readers
	// that took media, after the packet went to every reader, so that
	// media close in time leave in one write.
	Flush()
	// Notify tells the reader what happened to the stream's publication.
	Notify(ev Event)
}

// Event is a change of a stream's publication that its readers hear of.
type Event int

// The events readers hear of (NetStream.Play.PublishNotify and
// UnpublishNotify in RTMP).
const (
	Published Event = iota + 1
	Unpublished
)

// ReaderOptions tune a Subscription.
type ReaderOptions struct {
	// Log is where the slow-reader rule reports skips.
	Log *slog.Logger
	// Prelude runs, with the stream locked, just before the join burst:
	// what it sends cannot be overtaken by media (an RTMP player's
	// NetStream.Play.Start).
	Prelude func()
	// NoBurst starts the reader at the next keyframe rather than at the
	// cached one (a recording started mid-stream starts at the moment it
	// was asked for). Metadata and sequence headers still come first.
	NoBurst bool
	// Merge lets the reader's media wait for the stream's merged-write
	// window (Config.MergedWrite), when it is set: a player of a large
	// audience. Readers that feed something else (a relay to another
	// hub, a recorder, a muxer) leave it false and get every frame as it
	// comes.
	Merge bool
}

// Subscription is one Reader's attachment to a stream, and the policy of
// delivering to it. Its fields are guarded by the stream's lock; deliver
// runs on the publisher's goroutine and never blocks.
type Subscription struct {
	stream *Stream
	r      Reader
	log    *slog.Logger

	started  bool   // base is set
	base     uint32 // stream timestamp that is 0 for this reader
	lastTs   uint32 // stream timestamp of the last media packet queued
	waitKey  bool   // not started yet: wait for a keyframe (no GOP cache)
	skipping bool   // queue overflowed: drop media up to the next keyframe
	paused   bool
	pending  bool // media queued since the reader was last flushed
	merge    bool // ReaderOptions.Merge

	receiveAudio, receiveVideo bool

	dropped    uint64 // media packets skipped, ever
	loggedDrop uint64 // dropped count at the last log line
	lastLog    time.Time
}

// Delivery flags. flagForce marks packets a reader must get even when
// skipping: metadata and sequence headers. flagJoin marks the join burst
// (the cached group of pictures), which may exceed the queue's bounds.
const (
	flagForce = 1 << iota
	flagJoin
)

// dropLogInterval is the shortest time between two log lines of one
// reader's skips.
const dropLogInterval = 10 * time.Second

// AddReader attaches r to the stream. A reader joining a live stream gets
// metadata, sequence headers and the cached group of pictures at once,
// right after what opt.Prelude sends. The owner calls it with the lock
// that guards its set of streams held (see Publish).
func (st *Stream) AddReader(r Reader, opt ReaderOptions) *Subscription {
	return st.Attach(new(Subscription), r, opt)
}

// Attach is AddReader with a Subscription the caller allocated, unused,
// as a field of the reader itself, so that the two share cache lines: a
// stream reaches every reader's state and then the reader itself for
// every packet, twice (deliver, then Flush). With the RTMP player's
// subscription in the player and the client's queue in the client, the
// load tool (1000 players) measured the core at 6% more CPU than before
// the core had readers and a queue type, against 11% with both apart
// (medians of 3 to 6 runs that each vary by about 10%).
func (st *Stream) Attach(sub *Subscription, r Reader, opt ReaderOptions) *Subscription {
	st.mu.Lock()
	defer st.mu.Unlock()
	if opt.Prelude != nil {
		opt.Prelude()
	}
	log := opt.Log
	if log == nil {
		log = st.opt.Log
	}
	*sub = Subscription{stream: st, r: r, log: log, merge: opt.Merge, receiveAudio: true, receiveVideo: true}
	st.readers = append(st.readers, sub)
	st.joinLocked(sub, !opt.NoBurst)
	return sub
}

// joinLocked starts sub at the live point.
func (st *Stream) joinLocked(sub *Subscription, burst bool) {
	sub.started, sub.skipping = false, false
	sub.waitKey = st.hasVideo
	if st.pub == nil && st.orphanedAt == nil {
		return
	}
	if st.meta != nil {
		sub.deliver(st.meta, flagForce)
	}
	for _, s := range st.videoSeq {
		sub.deliver(s, flagForce)
	}
	for _, s := range st.audioSeq {
		sub.deliver(s, flagForce)
	}
	if burst {
		for _, pkt := range st.gop {
			sub.deliver(pkt, flagJoin)
		}
	}
	sub.flush()
}

// Close detaches the reader; nothing more is delivered to it once Close
// returns.
func (sub *Subscription) Close() {
	st := sub.stream
	st.mu.Lock()
	for i, s := range st.readers {
		if s == sub {
			last := len(st.readers) - 1
			st.readers[i] = st.readers[last]
			st.readers[last] = nil
			st.readers = st.readers[:last]
			break
		}
	}
	st.mu.Unlock()
	st.opt.MaybeUnused(st)
}

// Stream is the stream read.
func (sub *Subscription) Stream() *Stream { return sub.stream }

func (sub *Subscription) rebase(ts uint32) uint32 {
	if !sub.started {
		return 0
	}
	d := ts - sub.base
	if int32(d) < 0 {
		return 0
	}
	return d
}

// deliver hands pkt to the reader, applying pause, receiveAudio/Video,
// the start at a keyframe and the slow-reader rule. Media waits for
// flush; metadata, sequence headers and data go out at once.
func (sub *Subscription) deliver(pkt *Packet, flags int) {
	if sub.paused {
		return
	}
	isAudio := pkt.Type == message.TypeAudio
	if (pkt.Video && !sub.receiveVideo || isAudio && !sub.receiveAudio) && !pkt.Seq {
		return
	}
	if pkt.Seq || flags&flagForce != 0 || !pkt.Video && !isAudio {
		// Metadata, sequence headers and data are small and never skipped.
		sub.r.Send(pkt, sub.rebase(pkt.Timestamp))
		return
	}
	keyframe := pkt.Video && pkt.Key
	if !sub.started {
		if sub.waitKey && !keyframe {
			return
		}
		sub.started, sub.base = true, pkt.Timestamp
	}
	if sub.skipping && !keyframe && sub.stream.hasVideo {
		sub.drop()
		return
	}
	if !sub.r.Queue(pkt, sub.rebase(pkt.Timestamp), flags&flagJoin != 0) {
		sub.skipping = true
		sub.drop()
		return
	}
	sub.skipping, sub.lastTs, sub.pending = false, pkt.Timestamp, true
}

// flush writes the reader's queued media.
func (sub *Subscription) flush() {
	if sub.pending {
		sub.pending = false
		sub.r.Flush()
	}
}

func (sub *Subscription) drop() {
	sub.dropped++
	sub.stream.opt.Dropped.Add(1)
	if now := time.Now(); now.Sub(sub.lastLog) >= dropLogInterval {
		sub.log.Warn("player too slow, skipping to the next keyframe",
			"stream", sub.stream.name, "discarded", sub.dropped-sub.loggedDrop, "discarded_total", sub.dropped)
		sub.lastLog, sub.loggedDrop = now, sub.dropped
	}
}

// unpublished prepares the reader for a later publisher: it resumes at
// that publisher's first keyframe, on the same timeline.
func (sub *Subscription) unpublished() {
	if sub.started {
		sub.skipping = true
	} else {
		sub.waitKey = true
	}
}

// Paused reports whether delivery is paused.
func (sub *Subscription) Paused() bool {
	sub.stream.mu.Lock()
	defer sub.stream.mu.Unlock()
	return sub.paused
}

// SetPaused pauses or resumes delivery; a live stream resumes at the live
// point, from the cached group of pictures when there is one.
func (sub *Subscription) SetPaused(paused bool) {
	st := sub.stream
	st.mu.Lock()
	defer st.mu.Unlock()
	if sub.paused == paused {
		return
	}
	sub.paused = paused
	if !paused {
		sub.resumeLocked()
	}
}

// resumeLocked restarts delivery at the cached keyframe when it is newer
// than what the reader has, or else at the next keyframe.
func (sub *Subscription) resumeLocked() {
	st := sub.stream
	sub.skipping = st.hasVideo
	if len(st.gop) == 0 || sub.started && int32(st.gop[0].Timestamp-sub.lastTs) <= 0 {
		return
	}
	for _, pkt := range st.gop {
		sub.deliver(pkt, flagJoin)
	}
	sub.flush()
}

// SetReceive turns audio (video false) or video delivery on or off
// (NetStream.receiveAudio, receiveVideo); video turned back on resumes at
// a keyframe.
func (sub *Subscription) SetReceive(video, on bool) {
	st := sub.stream
	st.mu.Lock()
	defer st.mu.Unlock()
	if video {
		if on && !sub.receiveVideo {
			sub.receiveVideo = true
			sub.resumeLocked()
		}
		sub.receiveVideo = on
	} else {
		sub.receiveAudio = on
	}
}
