package session

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/rtmphub/rtmphub/rtmp/message"
	"github.com/rtmphub/rtmphub/session/live"
	"github.com/rtmphub/rtmphub/session/outqueue"
)

// The binding of live streams (package live) to RTMP clients: a client
// publishing is a live.Source, a client playing a live.Reader of its
// stream msid.

// liveConfig is the configuration of the server's live streams.
func (c *Config) liveConfig() live.Config {
	return live.Config{
		Takeover:         c.PublisherTakeover,
		Grace:            c.PublisherGrace,
		NoGOPCache:       c.DisableGOPCache,
		GOPCacheMaxBytes: c.GOPCacheMaxBytes,
		WriteMerge:       c.WriteMerge,
		MergedWrite:      c.MergedWrite,
	}
}

// queueLimits bounds a player's outbound queue: a client's, or a
// server-side player's.
func (c *Config) queueLimits() outqueue.Limits {
	lim := outqueue.Limits{Media: c.PlayerQueue, MediaBytes: c.PlayerQueueBytes, Hard: hardQueueLimit}
	if c.MergedWrite > 0 {
		// A window's messages in every write: 64 hold a second of 60 fps
		// video with its audio. (2.5 KiB a batch; the queue keeps two.)
		lim.KeepBatch = 64
	}
	return lim
}

// newStream makes the instance's live stream name.
func (in *Instance) newStream(name string) *live.Stream {
	return live.New(name, live.Options{
		Config:      &in.srv.live,
		Log:         in.srv.log,
		MaybeUnused: in.removeStreamIfUnused,
		Dropped:     &in.srv.stats.DroppedMessages,
	})
}

// publisher is a client publishing on its stream msid.
type publisher struct {
	c    *Client
	msid uint32
	name string
}

func (p *publisher) Log() *slog.Logger { return p.c.log }

// Evict ends a publisher that fell silent and was taken over.
func (p *publisher) Evict(by live.Source, idle time.Duration) {
	p.c.log.Info("publisher taken over", "stream", p.name, "idle", idle.Round(time.Millisecond).String(), "by", sourceID(by))
	p.c.close(fmt.Errorf("stream %s taken over by client %v", p.name, sourceID(by)))
}

// sourceID is the client id of a source, or its kind. (A server-side
// source is pinned: it never takes a stream over.)
func sourceID(src live.Source) any {
	if s, ok := src.(*publisher); ok {
		return s.c.id
	}
	return fmt.Sprintf("%T", src)
}

// player is a client playing a live stream on its stream msid: it sends
// what the stream delivers as RTMP messages on that stream.
type player struct {
	c    *Client
	msid uint32
	sub  live.Subscription // its state in the stream (see live.Stream.Attach)
}

// playLive attaches a player on stream msid of c to st; merge lets its
// media wait for the merged-write window (Config.MergedWrite).
func (c *Client) playLive(st *live.Stream, msid uint32, merge bool, prelude func()) *live.Subscription {
	pl := &player{c: c, msid: msid}
	return st.Attach(&pl.sub, pl, live.ReaderOptions{Log: c.log, Prelude: prelude, Merge: merge})
}

// streamMessage is pkt as an RTMP message on stream msid.
func streamMessage(msid uint32, pkt *live.Packet, ts uint32) message.Message {
	csid := message.CSIDStream
	switch pkt.Type {
	case message.TypeAudio:
		csid = message.CSIDAudio
	case message.TypeVideo:
		csid = message.CSIDVideo
	}
	return message.Message{Type: pkt.Type, StreamID: msid, Timestamp: ts, ChunkStreamID: csid, Payload: pkt.Payload}
}

func (pl *player) Send(pkt *live.Packet, ts uint32) { pl.c.send(streamMessage(pl.msid, pkt, ts)) }

func (pl *player) Queue(pkt *live.Packet, ts uint32, force bool) bool {
	return pl.c.out.QueueMedia(streamMessage(pl.msid, pkt, ts), force)
}

// Flush writes the queue on the publisher's goroutine when that cannot
// block (see Client.writeNow).
func (pl *player) Flush() { pl.c.writeNow() }

func (pl *player) Notify(ev live.Event) {
	name := pl.sub.Stream().Name()
	code, desc := notifyStatus(ev, name)
	pl.c.sendStatus(pl.msid, levelStatus, code, desc, name)
}

// notifyStatus is the status a player of stream name gets for ev.
func notifyStatus(ev live.Event, name string) (code, desc string) {
	if ev == live.Unpublished {
		return "NetStream.Play.UnpublishNotify", name + " is now unpublished."
	}
	return "NetStream.Play.PublishNotify", name + " is now published."
}

// serverSource is the source of a script's server-side stream.
type serverSource struct{ log *slog.Logger }

func (s *serverSource) Log() *slog.Logger { return s.log }

// Evict is never called: a server-side publication is pinned.
func (s *serverSource) Evict(live.Source, time.Duration) {}
