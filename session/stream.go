package session

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rtmphub/rtmphub/rtmp/message"
)

// Packet is one message of a live stream as its players receive it: built
// once by the publisher's goroutine, shared read-only by every player.
type Packet struct {
	Type      message.Type
	Timestamp uint32 // on the stream's timeline
	Payload   []byte
	Video     bool
	Key       bool // a video keyframe: a point where a player can start
	Seq       bool // a sequence header (decoder configuration)
}

// Stream is a live stream of an instance: at most one publisher, any
// number of players, and the state a joining player needs (metadata,
// sequence headers, the current group of pictures).
type Stream struct {
	in   *Instance
	name string

	mu      sync.Mutex
	pub     *publication
	players []*player

	meta     *Packet
	videoSeq map[string]*Packet // per codec/track
	audioSeq map[string]*Packet
	hasVideo bool
	gop      []*Packet // from the last keyframe on; nil when not cacheable
	gopBytes int

	// Timeline: a publisher's timestamps plus offset; a publisher that
	// takes over continues where the previous one stopped.
	offset     uint32
	last       uint32
	haveLast   bool
	orphanedAt *time.Timer // running while a vanished publisher may come back

	// Write merging: audio and data wait up to the merge window for the
	// next video frame so that both leave in one write per player.
	flushTimer *time.Timer
	flushArmed bool
	flushList  []*Client // reused by flushLocked and write
}

func newStream(in *Instance, name string) *Stream {
	return &Stream{in: in, name: name}
}

// Name is the stream's name.
func (st *Stream) Name() string { return st.name }

func (st *Stream) unused() bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.pub == nil && st.orphanedAt == nil && len(st.players) == 0
}

// publication is one publisher's hold on a stream.
type publication struct {
	stream    *Stream
	client    *Client
	msid      uint32
	typ       string
	takeover  bool // took over from a previous publisher
	startedAt time.Time
	rebase    bool // the next packet sets the timeline offset
	lastInput atomic.Int64
	messages  atomic.Uint64
	bytes     atomic.Uint64
	// noFrameType is set once the publisher sent video without a valid
	// frame type (and was told about in the log).
	noFrameType atomic.Bool
}

// publish makes c the publisher of st, or says why not. The instance is
// locked by the caller.
func (st *Stream) publish(c *Client, msid uint32, typ string) (*publication, error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	p := &publication{stream: st, client: c, msid: msid, typ: typ, startedAt: time.Now()}
	p.lastInput.Store(time.Now().UnixNano())
	switch {
	case st.pub != nil:
		idle := time.Since(time.Unix(0, st.pub.lastInput.Load()))
		// A server-side publisher (script_hook.go, client nil) neither
		// takes over nor is taken over.
		if idle < st.in.srv.cfg.PublisherTakeover || c == nil || st.pub.client == nil {
			//nolint:revive,staticcheck // FMS's description of NetStream.Publish.BadName, word for word
			return nil, fmt.Errorf("Stream %s is already being published.", st.name)
		}
		old := st.pub
		st.pub = p
		p.takeover, p.rebase = true, st.haveLast
		// The old connection is silent and presumably dead: end it. Its
		// cleanup finds it no longer publishes this stream.
		old.client.log.Info("publisher taken over", "stream", st.name, "idle", idle.Round(time.Millisecond).String(), "by", c.id)
		old.client.close(fmt.Errorf("stream %s taken over by client %d", st.name, c.id))
	case st.orphanedAt != nil:
		st.orphanedAt.Stop()
		st.orphanedAt = nil
		st.pub = p
		p.takeover, p.rebase = true, st.haveLast
	default:
		st.pub = p
		p.rebase = st.haveLast
		for _, pl := range st.players {
			pl.client.sendStatus(pl.msid, levelStatus, "NetStream.Play.PublishNotify", st.name+" is now published.", st.name)
		}
	}
	return p, nil
}

// unpublish ends publication p. When the publisher vanished (not
// graceful), the stream waits PublisherGrace for a publisher to take it
// over before its players are told.
func (st *Stream) unpublish(p *publication, graceful bool) {
	st.mu.Lock()
	if st.pub != p {
		st.mu.Unlock()
		return
	}
	st.pub = nil
	if !graceful && st.in.srv.cfg.PublisherGrace > 0 && len(st.players) > 0 {
		st.orphanedAt = time.AfterFunc(st.in.srv.cfg.PublisherGrace, st.endOrphan)
		st.mu.Unlock()
		return
	}
	st.endLocked()
	st.mu.Unlock()
	st.in.removeStreamIfUnused(st)
}

func (st *Stream) endOrphan() {
	st.mu.Lock()
	if st.orphanedAt == nil || st.pub != nil {
		st.mu.Unlock()
		return
	}
	st.orphanedAt = nil
	st.endLocked()
	st.mu.Unlock()
	st.in.removeStreamIfUnused(st)
}

// endLocked tells players the stream is unpublished and forgets the state
// of the publication; players stay attached for a republish, as in FMS.
func (st *Stream) endLocked() {
	for _, pl := range st.players {
		pl.client.sendStatus(pl.msid, levelStatus, "NetStream.Play.UnpublishNotify", st.name+" is now unpublished.", st.name)
		pl.unpublished()
	}
	st.meta, st.videoSeq, st.audioSeq, st.gop, st.gopBytes, st.hasVideo = nil, nil, nil, nil, 0, false
}

// write takes one audio, video or data message from publication p and
// hands it to every player. It never blocks on a player.
func (p *publication) write(m *message.Message) error {
	p.lastInput.Store(time.Now().UnixNano())
	p.messages.Add(1)
	p.bytes.Add(uint64(len(m.Payload)))
	pkt := &Packet{Type: m.Type, Payload: m.Payload}
	switch m.Type {
	case message.TypeVideo:
		vi, ok := message.ParseVideo(m.Payload)
		if !ok {
			return nil // empty video messages carry nothing
		}
		if vi.NoFrameType && !p.noFrameType.Load() {
			p.warnNoFrameType(&vi, m.Payload[0])
		}
		pkt.Video, pkt.Key, pkt.Seq = true, vi.Keyframe && !vi.SequenceHeader && !vi.Command, vi.SequenceHeader
		return p.stream.writePacket(p, m.Timestamp, pkt, vi.TrackKey+vi.Codec)
	case message.TypeAudio:
		ai, ok := message.ParseAudio(m.Payload)
		if !ok {
			return nil
		}
		pkt.Seq = ai.SequenceHeader
		return p.stream.writePacket(p, m.Timestamp, pkt, ai.TrackKey+ai.Codec)
	default:
		return p.stream.writeData(p, m)
	}
}

// warnNoFrameType says once per publication that its video has frame type
// 0 (or another undefined one), which some E-RTMP publishers write for
// every frame (gortmplib up to v1.0.1, OBS before its fix): players start
// at keyframes that message.ParseVideo finds in the codec's data, and
// before it did they got sequence headers and then nothing.
func (p *publication) warnNoFrameType(vi *message.VideoInfo, b byte) {
	if p.noFrameType.Swap(true) {
		return
	}
	log := p.stream.in.srv.log
	if p.client != nil {
		log = p.client.log
	}
	ft := b >> 4
	msg := "publisher sends video with frame type 0: keyframes detected from the bitstream"
	if vi.Enhanced {
		ft &= 0x07
		msg = "publisher sends E-RTMP video with frame type 0: keyframes detected from the bitstream"
	}
	log.Warn(msg, "stream", p.stream.name, "codec", vi.Codec, "frame_type", ft)
}

// writeData handles a data message: @setDataFrame stores metadata (sent as
// onMetaData, to players now and to every player that joins later),
// @clearDataFrame clears it, anything else is relayed to players.
func (st *Stream) writeData(p *publication, m *message.Message) error {
	body := m.Payload
	if m.Type == message.TypeDataAMF3 {
		body = message.AMF3Body(body)
	}
	name, next, ok := message.DataName(body)
	if !ok {
		return nil
	}
	pkt := &Packet{Type: message.TypeDataAMF0, Payload: body}
	switch name {
	case "@setDataFrame":
		pkt.Payload = body[next:]
		if n, _, ok := message.DataName(pkt.Payload); !ok || n != "onMetaData" {
			return nil
		}
		st.mu.Lock()
		defer st.mu.Unlock()
		if st.pub != p {
			return nil
		}
		st.meta = pkt
		for _, pl := range st.players {
			pl.deliver(pkt, 0)
		}
		return nil
	case "@clearDataFrame":
		st.mu.Lock()
		if st.pub == p {
			st.meta = nil
		}
		st.mu.Unlock()
		return nil
	}
	return st.writePacket(p, m.Timestamp, pkt, "")
}

func (st *Stream) writePacket(p *publication, ts uint32, pkt *Packet, seqKey string) error {
	cfg := &st.in.srv.cfg
	st.mu.Lock()
	if st.pub != p {
		st.mu.Unlock()
		return nil // taken over
	}
	if p.rebase {
		// A new publisher continues the timeline one millisecond after
		// the last packet players saw.
		st.offset = st.last + 1 - ts
		p.rebase = false
	}
	pkt.Timestamp = ts + st.offset
	if !st.haveLast || int32(pkt.Timestamp-st.last) > 0 {
		st.last, st.haveLast = pkt.Timestamp, true
	}

	switch {
	case pkt.Seq && pkt.Video:
		if st.videoSeq == nil {
			st.videoSeq = make(map[string]*Packet, 1)
		}
		st.videoSeq[seqKey] = pkt
		st.hasVideo = true
	case pkt.Seq:
		if st.audioSeq == nil {
			st.audioSeq = make(map[string]*Packet, 1)
		}
		st.audioSeq[seqKey] = pkt
	case cfg.DisableGOPCache:
	case pkt.Video && pkt.Key:
		st.hasVideo = true
		clear(st.gop)
		st.gop = append(st.gop[:0], pkt)
		st.gopBytes = len(pkt.Payload)
	case st.gop != nil && pkt.Type != message.TypeDataAMF0:
		if st.gopBytes+len(pkt.Payload) > cfg.GOPCacheMaxBytes {
			st.gop, st.gopBytes = nil, 0 // too long to cache: wait for the next keyframe
		} else {
			st.gop = append(st.gop, pkt)
			st.gopBytes += len(pkt.Payload)
		}
	}
	if pkt.Video {
		st.hasVideo = true
	}
	for _, pl := range st.players {
		pl.deliver(pkt, 0)
	}
	clients := st.flushLocked(pkt.Video || pkt.Seq || cfg.WriteMerge <= 0)
	st.mu.Unlock()
	st.write(clients)
	return nil
}

// flushLocked returns the clients whose players have media queued, to be
// written now by write (after the stream is unlocked, so that the writes
// never hold up joins), or, for messages that may wait (audio, data),
// arms the merge timer and returns nil.
func (st *Stream) flushLocked(now bool) []*Client {
	if !now {
		if !st.flushArmed {
			st.flushArmed = true
			if st.flushTimer == nil {
				st.flushTimer = time.AfterFunc(st.in.srv.cfg.WriteMerge, st.flushDeferred)
			} else {
				st.flushTimer.Reset(st.in.srv.cfg.WriteMerge)
			}
		}
		return nil
	}
	clients := st.flushList[:0]
	st.flushList = nil
	for _, pl := range st.players {
		if pl.pending {
			pl.pending = false
			clients = append(clients, pl.client)
		}
	}
	if st.flushArmed {
		st.flushArmed = false
		st.flushTimer.Stop()
	}
	return clients
}

// write writes the queued media of clients, on the caller's goroutine
// where that cannot block, and gives the list back for reuse.
func (st *Stream) write(clients []*Client) {
	if clients == nil {
		return
	}
	for _, c := range clients {
		c.writeNow()
	}
	clear(clients)
	st.mu.Lock()
	if st.flushList == nil {
		st.flushList = clients[:0]
	}
	st.mu.Unlock()
}

func (st *Stream) flushDeferred() {
	st.mu.Lock()
	var clients []*Client
	if st.flushArmed {
		clients = st.flushLocked(true)
	}
	st.mu.Unlock()
	st.write(clients)
}

// addPlayer attaches a player on stream msid of c. A player joining a
// live stream gets metadata, sequence headers and the cached group of
// pictures at once, right after what prelude queues.
func (st *Stream) addPlayer(c *Client, msid uint32, prelude func()) *player {
	c.mediaSocket()
	st.mu.Lock()
	defer st.mu.Unlock()
	prelude()
	pl := &player{stream: st, client: c, msid: msid, receiveAudio: true, receiveVideo: true}
	st.players = append(st.players, pl)
	st.joinLocked(pl)
	return pl
}

// joinLocked starts (or restarts, after a pause) pl at the live point.
func (st *Stream) joinLocked(pl *player) {
	pl.started, pl.skipping = false, false
	pl.waitKey = st.hasVideo
	if st.pub == nil && st.orphanedAt == nil {
		return
	}
	if st.meta != nil {
		pl.deliver(st.meta, flagForce)
	}
	for _, s := range st.videoSeq {
		pl.deliver(s, flagForce)
	}
	for _, s := range st.audioSeq {
		pl.deliver(s, flagForce)
	}
	for _, pkt := range st.gop {
		pl.deliver(pkt, flagJoin)
	}
	pl.flush()
}

func (st *Stream) removePlayer(pl *player) {
	st.mu.Lock()
	for i, p := range st.players {
		if p == pl {
			last := len(st.players) - 1
			st.players[i] = st.players[last]
			st.players[last] = nil
			st.players = st.players[:last]
			break
		}
	}
	st.mu.Unlock()
	st.in.removeStreamIfUnused(st)
}
