package live

import (
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/rtmphub/rtmphub/rtmp/message"
)

// Source is what feeds a stream: an RTMP or RoQR publisher, a script's
// server-side stream, a pull from another hub.
type Source interface {
	// Log is the source's logger.
	Log() *slog.Logger
	// Evict ends a source whose stream another one (by) took over after
	// it had sent nothing for idle. It runs with the stream locked and
	// must not call back into the stream: the source's own cleanup later
	// finds it no longer publishes.
	Evict(by Source, idle time.Duration)
}

// PublishOptions describe a publication.
type PublishOptions struct {
	// Type is the publish type as the publisher asked ("live", "record",
	// "append"), for views and logs.
	Type string
	// Pinned publications neither take over a stream nor are taken over:
	// a server-side stream, whose source never falls silent by accident.
	Pinned bool
}

// Publication is one source's hold on a stream.
type Publication struct {
	stream    *Stream
	src       Source
	opt       PublishOptions
	takeover  bool // took over from a previous publisher
	startedAt time.Time
	rebase    bool // the next packet sets the timeline offset; stream's lock
	lastInput atomic.Int64
	messages  atomic.Uint64
	bytes     atomic.Uint64
	// noFrameType is set once the source sent video without a valid frame
	// type (and was told about in the log).
	noFrameType atomic.Bool
}

// Stream is the stream published.
func (p *Publication) Stream() *Stream { return p.stream }

// Source is what publishes.
func (p *Publication) Source() Source { return p.src }

// Type is the publish type.
func (p *Publication) Type() string { return p.opt.Type }

// TookOver reports whether the publication took the stream over from a
// previous one (a takeover or a return within the grace period).
func (p *Publication) TookOver() bool { return p.takeover }

// StartedAt is when the publication started.
func (p *Publication) StartedAt() time.Time { return p.startedAt }

// Counts returns the messages and payload bytes written so far.
func (p *Publication) Counts() (messages, bytes uint64) { return p.messages.Load(), p.bytes.Load() }

// Publish makes src the publisher of st, or says why not (the error text
// is FMS's description of NetStream.Publish.BadName). The owner calls it
// with the lock that guards its set of streams held, so that a stream
// found unused and forgotten is never published.
func (st *Stream) Publish(src Source, opt PublishOptions) (*Publication, error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	p := &Publication{stream: st, src: src, opt: opt, startedAt: time.Now()}
	p.lastInput.Store(time.Now().UnixNano())
	switch {
	case st.pub != nil:
		idle := time.Since(time.Unix(0, st.pub.lastInput.Load()))
		if idle < st.cfg.Takeover || opt.Pinned || st.pub.opt.Pinned {
			//nolint:revive,staticcheck // FMS's description of NetStream.Publish.BadName, word for word
			return nil, fmt.Errorf("Stream %s is already being published.", st.name)
		}
		old := st.pub
		st.pub = p
		p.takeover, p.rebase = true, st.haveLast
		// The old source is silent and presumably dead: end it.
		old.src.Evict(src, idle)
	case st.orphanedAt != nil:
		st.orphanedAt.Stop()
		st.orphanedAt = nil
		st.pub = p
		p.takeover, p.rebase = true, st.haveLast
	default:
		st.pub = p
		p.rebase = st.haveLast
		for _, sub := range st.readers {
			sub.r.Notify(Published)
		}
	}
	return p, nil
}

// Close ends the publication. When the source vanished (not graceful),
// the stream waits Config.Grace for a publisher to take it over before
// its readers are told.
func (p *Publication) Close(graceful bool) { p.stream.unpublish(p, graceful) }

// Write takes one audio, video or data message from the source and hands
// it to every reader. It never blocks on a reader. Messages of a
// publication that was taken over or closed are ignored. Not safe for
// concurrent use: a source writes from one goroutine.
func (p *Publication) Write(m *message.Message) {
	p.lastInput.Store(time.Now().UnixNano())
	p.messages.Add(1)
	p.bytes.Add(uint64(len(m.Payload)))
	pkt := &Packet{Type: m.Type, Payload: m.Payload}
	switch m.Type {
	case message.TypeVideo:
		vi, ok := message.ParseVideo(m.Payload)
		if !ok {
			return // empty video messages carry nothing
		}
		if vi.NoFrameType && !p.noFrameType.Load() {
			p.warnNoFrameType(&vi, m.Payload[0])
		}
		pkt.Video, pkt.Key, pkt.Seq = true, vi.Keyframe && !vi.SequenceHeader && !vi.Command, vi.SequenceHeader
		p.stream.writePacket(p, m.Timestamp, pkt, vi.TrackKey+vi.Codec)
	case message.TypeAudio:
		ai, ok := message.ParseAudio(m.Payload)
		if !ok {
			return
		}
		pkt.Seq = ai.SequenceHeader
		p.stream.writePacket(p, m.Timestamp, pkt, ai.TrackKey+ai.Codec)
	default:
		p.writeData(m)
	}
}

// writeData handles a data message: @setDataFrame stores metadata (sent as
// onMetaData, to readers now and to every reader that joins later),
// @clearDataFrame clears it, anything else is relayed to readers.
func (p *Publication) writeData(m *message.Message) {
	body := m.Payload
	if m.Type == message.TypeDataAMF3 {
		body = message.AMF3Body(body)
	}
	name, next, ok := message.DataName(body)
	if !ok {
		return
	}
	pkt := &Packet{Type: message.TypeDataAMF0, Payload: body}
	switch name {
	case "@setDataFrame":
		pkt.Payload = body[next:]
		if n, _, ok := message.DataName(pkt.Payload); !ok || n != "onMetaData" {
			return
		}
		p.stream.setMeta(p, pkt)
		return
	case "@clearDataFrame":
		p.stream.clearMeta(p)
		return
	}
	p.stream.writePacket(p, m.Timestamp, pkt, "")
}

// warnNoFrameType says once per publication that its video has frame type
// 0 (or another undefined one), which some E-RTMP publishers write for
// every frame (gortmplib up to v1.0.1, OBS before its fix): readers start
// at keyframes that message.ParseVideo finds in the codec's data, and
// before it did they got sequence headers and then nothing.
func (p *Publication) warnNoFrameType(vi *message.VideoInfo, b byte) {
	if p.noFrameType.Swap(true) {
		return
	}
	log := p.stream.opt.Log
	if l := p.src.Log(); l != nil {
		log = l
	}
	ft := b >> 4
	msg := "publisher sends video with frame type 0: keyframes detected from the bitstream"
	if vi.Enhanced {
		ft &= 0x07
		msg = "publisher sends E-RTMP video with frame type 0: keyframes detected from the bitstream"
	}
	log.Warn(msg, "stream", p.stream.name, "codec", vi.Codec, "frame_type", ft)
}
