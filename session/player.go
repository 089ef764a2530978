package session

import (
	"time"

	"github.com/rtmphub/rtmphub/rtmp/message"
)

// player is one subscription to a live stream: a client's stream msid.
// Its fields are guarded by the stream's lock; deliver runs on the
// publisher's goroutine and never blocks.
type player struct {
	stream *Stream
	client *Client
	msid   uint32

	started  bool   // base is set
	base     uint32 // stream timestamp that is 0 for this player
	lastTs   uint32 // stream timestamp of the last media message queued
	waitKey  bool   // not started yet: wait for a keyframe (no GOP cache)
	skipping bool   // queue overflowed: drop media up to the next keyframe
	paused   bool
	pending  bool // media queued since the writer was last woken

	receiveAudio, receiveVideo bool

	dropped    uint64 // media messages skipped, ever
	loggedDrop uint64 // dropped count at the last log line
	lastLog    time.Time
}

// Delivery flags. flagForce marks messages a player must get even when
// skipping: metadata and sequence headers. flagJoin marks the join burst
// (the cached group of pictures), which may exceed the queue's bounds.
const (
	flagForce = 1 << iota
	flagJoin
)

const dropLogInterval = 10 * time.Second

func (pl *player) rebase(ts uint32) uint32 {
	if !pl.started {
		return 0
	}
	d := ts - pl.base
	if int32(d) < 0 {
		return 0
	}
	return d
}

func (pl *player) message(pkt *Packet, ts uint32) message.Message {
	csid := message.CSIDStream
	switch pkt.Type {
	case message.TypeAudio:
		csid = message.CSIDAudio
	case message.TypeVideo:
		csid = message.CSIDVideo
	}
	return message.Message{Type: pkt.Type, StreamID: pl.msid, Timestamp: ts, ChunkStreamID: csid, Payload: pkt.Payload}
}

// deliver queues pkt for the player, applying pause, receiveAudio/Video,
// the start at a keyframe and the slow-player policy. Media waits for
// flush; metadata and sequence headers go out at once.
func (pl *player) deliver(pkt *Packet, flags int) {
	if pl.paused {
		return
	}
	isAudio := pkt.Type == message.TypeAudio
	if (pkt.Video && !pl.receiveVideo || isAudio && !pl.receiveAudio) && !pkt.Seq {
		return
	}
	if pkt.Seq || flags&flagForce != 0 || !pkt.Video && !isAudio {
		// Metadata, sequence headers and data are small and never skipped.
		pl.client.send(pl.message(pkt, pl.rebase(pkt.Timestamp)))
		return
	}
	keyframe := pkt.Video && pkt.Key
	if !pl.started {
		if pl.waitKey && !keyframe {
			return
		}
		pl.started, pl.base = true, pkt.Timestamp
	}
	if pl.skipping && !keyframe && pl.stream.hasVideo {
		pl.drop()
		return
	}
	if !pl.client.queueMedia(pl.message(pkt, pl.rebase(pkt.Timestamp)), flags&flagJoin != 0) {
		pl.skipping = true
		pl.drop()
		return
	}
	pl.skipping, pl.lastTs, pl.pending = false, pkt.Timestamp, true
}

// flush writes the player's queued media, on the caller's goroutine when
// that cannot block (see Client.writeNow).
func (pl *player) flush() {
	if pl.pending {
		pl.pending = false
		pl.client.writeNow()
	}
}

func (pl *player) drop() {
	pl.dropped++
	pl.client.srv.stats.DroppedMessages.Add(1)
	if now := time.Now(); now.Sub(pl.lastLog) >= dropLogInterval {
		pl.client.log.Warn("player too slow, skipping to the next keyframe",
			"stream", pl.stream.name, "discarded", pl.dropped-pl.loggedDrop, "discarded_total", pl.dropped)
		pl.lastLog, pl.loggedDrop = now, pl.dropped
	}
}

// unpublished prepares the player for a later publisher: it resumes at that
// publisher's first keyframe, on the same timeline.
func (pl *player) unpublished() {
	if pl.started {
		pl.skipping = true
	} else {
		pl.waitKey = true
	}
}

func (pl *player) isPaused() bool {
	pl.stream.mu.Lock()
	defer pl.stream.mu.Unlock()
	return pl.paused
}

// setPaused pauses or resumes delivery; a live stream resumes at the live
// point, from the cached group of pictures when there is one.
func (pl *player) setPaused(paused bool) {
	st := pl.stream
	st.mu.Lock()
	defer st.mu.Unlock()
	if pl.paused == paused {
		return
	}
	pl.paused = paused
	if !paused {
		pl.resumeLocked()
	}
}

// resumeLocked restarts delivery at the cached keyframe when it is newer
// than what the player has, or else at the next keyframe.
func (pl *player) resumeLocked() {
	st := pl.stream
	pl.skipping = st.hasVideo
	if len(st.gop) == 0 || pl.started && int32(st.gop[0].Timestamp-pl.lastTs) <= 0 {
		return
	}
	for _, pkt := range st.gop {
		pl.deliver(pkt, flagJoin)
	}
	pl.flush()
}

// setReceive implements receiveAudio and receiveVideo.
func (pl *player) setReceive(video, on bool) {
	st := pl.stream
	st.mu.Lock()
	defer st.mu.Unlock()
	if video {
		if on && !pl.receiveVideo {
			pl.receiveVideo = true
			pl.resumeLocked()
		}
		pl.receiveVideo = on
	} else {
		pl.receiveAudio = on
	}
}
