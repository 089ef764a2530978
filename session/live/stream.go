package live

import (
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rtmphub/rtmphub/rtmp/message"
)

// Packet is one message of a live stream as its readers receive it: built
// once by the publisher's goroutine, shared read-only by every reader.
type Packet struct {
	Type      message.Type
	Timestamp uint32 // on the stream's timeline
	Payload   []byte
	Video     bool
	Key       bool // a video keyframe: a point where a reader can start
	Seq       bool // a sequence header (decoder configuration)
}

// Config tunes live streams. The owner fills in its defaults.
type Config struct {
	// Takeover lets a new publisher take over a stream whose publisher has
	// sent nothing for this long.
	Takeover time.Duration
	// Grace keeps a stream whose publisher vanished (not a graceful
	// unpublish) for this long before its readers are told; 0 tells them
	// at once.
	Grace time.Duration
	// NoGOPCache turns the cache of the current group of pictures off.
	NoGOPCache bool
	// GOPCacheMaxBytes bounds the cached group; a longer one is not cached.
	GOPCacheMaxBytes int
	// WriteMerge is the longest time audio and data wait for the next
	// video frame, so that both leave in one write; 0 or less: no wait.
	WriteMerge time.Duration
	// MergedWrite is the merged-write window for large audiences (SRS's
	// mw_latency): when set, media for the readers that allow it
	// (ReaderOptions.Merge) waits on the stream up to this long, and each
	// of them gets everything of the window in one write, a few writes a
	// second instead of one per video frame. 0 or less: off.
	MergedWrite time.Duration
}

// Options are what a Stream needs from its owner.
type Options struct {
	Config *Config // shared by the owner's streams, read-only
	// Log is the owner's logger, for events of no particular reader.
	Log *slog.Logger
	// MaybeUnused is called, with no lock of the stream held, when the
	// stream lost its publisher or a reader: the owner forgets it when
	// Unused reports true (under the owner's own lock).
	MaybeUnused func(*Stream)
	// Dropped counts the media messages skipped for slow readers.
	Dropped *atomic.Uint64
}

// Stream is a live stream: at most one publication, any number of
// readers, and the state a joining reader needs (metadata, sequence
// headers, the current group of pictures).
type Stream struct {
	name string
	opt  Options
	cfg  *Config

	mu      sync.Mutex
	pub     *Publication
	readers []*Subscription

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
	// next video frame so that both leave in one write per reader.
	flushTimer *time.Timer
	flushArmed bool
	flushAt    time.Time // when the armed timer fires
	quickDue   time.Time // audio of readers that do not merge waits until then (zero: none waits)
	mergeDue   time.Time // the merged-write window ends then (zero: none waits)
	flushList  []Reader  // reused by flushLocked and write
}

// New makes the stream called name.
func New(name string, opt Options) *Stream {
	if opt.Dropped == nil {
		opt.Dropped = new(atomic.Uint64)
	}
	if opt.MaybeUnused == nil {
		opt.MaybeUnused = func(*Stream) {}
	}
	if opt.Log == nil {
		opt.Log = slog.New(slog.DiscardHandler)
	}
	return &Stream{name: name, opt: opt, cfg: opt.Config}
}

// Name is the stream's name.
func (st *Stream) Name() string { return st.name }

// Unused reports whether the stream has no publication, no publisher that
// may come back and no reader.
func (st *Stream) Unused() bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.pub == nil && st.orphanedAt == nil && len(st.readers) == 0
}

// Live reports whether the stream has a publisher, or one that vanished
// and may come back.
func (st *Stream) Live() bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.pub != nil || st.orphanedAt != nil
}

// Publication returns the current publication, nil when there is none.
func (st *Stream) Publication() *Publication {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.pub
}

// Snapshot is what views of a stream show.
type Snapshot struct {
	Publication *Publication // nil: not published
	Readers     []Reader     // in the order they joined
	VideoSeq    []string     // track and codec of each video sequence header
	AudioSeq    []string
	Meta        []byte // the onMetaData data message, nil when none
}

// Snapshot returns the stream's state for views.
func (st *Stream) Snapshot() Snapshot {
	st.mu.Lock()
	defer st.mu.Unlock()
	s := Snapshot{Publication: st.pub, Readers: make([]Reader, 0, len(st.readers))}
	for _, sub := range st.readers {
		s.Readers = append(s.Readers, sub.r)
	}
	for k := range st.videoSeq {
		s.VideoSeq = append(s.VideoSeq, k)
	}
	for k := range st.audioSeq {
		s.AudioSeq = append(s.AudioSeq, k)
	}
	if st.meta != nil {
		s.Meta = st.meta.Payload
	}
	return s
}

func (st *Stream) unpublish(p *Publication, graceful bool) {
	st.mu.Lock()
	if st.pub != p {
		st.mu.Unlock()
		return
	}
	st.pub = nil
	if !graceful && st.cfg.Grace > 0 && len(st.readers) > 0 {
		st.orphanedAt = time.AfterFunc(st.cfg.Grace, st.endOrphan)
		st.mu.Unlock()
		return
	}
	st.endLocked()
	st.mu.Unlock()
	st.opt.MaybeUnused(st)
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
	st.opt.MaybeUnused(st)
}

// endLocked tells readers the stream is unpublished and forgets the state
// of the publication; readers stay attached for a republish, as in FMS.
func (st *Stream) endLocked() {
	for _, sub := range st.readers {
		// What waits for a merge window goes first: a reader may end
		// when it hears of the end (an HTTP-FLV viewer's body does).
		sub.flush()
		sub.r.Notify(Unpublished)
		sub.unpublished()
	}
	st.meta, st.videoSeq, st.audioSeq, st.gop, st.gopBytes, st.hasVideo = nil, nil, nil, nil, 0, false
}

func (st *Stream) setMeta(p *Publication, pkt *Packet) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.pub != p {
		return
	}
	st.meta = pkt
	for _, sub := range st.readers {
		sub.deliver(pkt, 0)
	}
}

func (st *Stream) clearMeta(p *Publication) {
	st.mu.Lock()
	if st.pub == p {
		st.meta = nil
	}
	st.mu.Unlock()
}

func (st *Stream) writePacket(p *Publication, ts uint32, pkt *Packet, seqKey string) {
	cfg := st.cfg
	st.mu.Lock()
	if st.pub != p {
		st.mu.Unlock()
		return // taken over
	}
	if p.rebase {
		// A new publisher continues the timeline one millisecond after
		// the last packet readers saw.
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
	case cfg.NoGOPCache:
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
	for _, sub := range st.readers {
		sub.deliver(pkt, 0)
	}
	readers := st.flushLocked(pkt.Video || pkt.Seq || cfg.WriteMerge <= 0)
	st.mu.Unlock()
	st.write(readers)
}

// flushLocked returns the readers whose queued media is to be written now
// by write (after the stream is unlocked, so that the writes never hold
// up joins), and arms the flush timer for the media that waits: audio and
// data up to Config.WriteMerge for the next video frame (now is false),
// and, in merged-write mode, the media of the readers that allow it up
// to Config.MergedWrite after the first of their window.
func (st *Stream) flushLocked(now bool) []Reader {
	if !now && st.cfg.MergedWrite <= 0 {
		st.schedule(true, false) // (no need to look at the readers)
		return nil
	}
	return st.takeLocked(!now, true)
}

// takeLocked returns the readers whose pending media is to be written now
// (nil for none) and schedules the flush timer for the media that waits:
// in merged-write mode, that of the readers that merge while holdMerge;
// that of the other readers while holdQuick.
func (st *Stream) takeLocked(holdQuick, holdMerge bool) []Reader {
	merged := st.cfg.MergedWrite > 0
	readers := st.flushList[:0]
	st.flushList = nil
	quick, merge := false, false
	for _, sub := range st.readers {
		switch {
		case !sub.pending:
		case merged && sub.merge && holdMerge:
			merge = true
		case holdQuick:
			quick = true
		default:
			sub.pending = false
			readers = append(readers, sub.r)
		}
	}
	st.schedule(quick, merge)
	if len(readers) == 0 {
		st.flushList = readers
		return nil
	}
	return readers
}

// schedule arms the flush timer for the earliest media that waits:
// quick, the audio of readers that do not merge (due Config.WriteMerge
// after it came), and merge, that of readers that do (due
// Config.MergedWrite after the first of the window); it stops the timer
// when nothing waits.
func (st *Stream) schedule(quick, merge bool) {
	if !quick {
		st.quickDue = time.Time{}
	}
	if !merge {
		st.mergeDue = time.Time{}
	}
	if !quick && !merge {
		if st.flushArmed {
			st.flushArmed = false
			st.flushTimer.Stop()
		}
		return
	}
	var now time.Time
	if quick && st.quickDue.IsZero() {
		now = time.Now()
		st.quickDue = now.Add(st.cfg.WriteMerge)
	}
	if merge && st.mergeDue.IsZero() {
		if now.IsZero() {
			now = time.Now()
		}
		st.mergeDue = now.Add(st.cfg.MergedWrite)
	}
	due := st.mergeDue
	if quick && (due.IsZero() || st.quickDue.Before(due)) {
		due = st.quickDue
	}
	if st.flushArmed && due.Equal(st.flushAt) {
		return
	}
	if now.IsZero() {
		now = time.Now()
	}
	st.flushAt, st.flushArmed = due, true
	if st.flushTimer == nil {
		st.flushTimer = time.AfterFunc(due.Sub(now), st.flushDeferred)
	} else {
		st.flushTimer.Reset(due.Sub(now))
	}
}

// write flushes readers and gives the list back for reuse.
func (st *Stream) write(readers []Reader) {
	if readers == nil {
		return
	}
	for _, r := range readers {
		r.Flush()
	}
	clear(readers)
	st.mu.Lock()
	if st.flushList == nil {
		st.flushList = readers[:0]
	}
	st.mu.Unlock()
}

// flushDeferred is the flush timer's: the media of readers that do not
// merge goes, and that of readers that do once their window is over.
func (st *Stream) flushDeferred() {
	st.mu.Lock()
	if !st.flushArmed {
		st.mu.Unlock()
		return
	}
	st.flushArmed = false
	// An early run (the timer was moved for quick media) leaves the
	// merging readers' media waiting for the end of their window.
	windowOver := !st.mergeDue.IsZero() && !time.Now().Before(st.mergeDue)
	readers := st.takeLocked(false, !windowOver)
	st.mu.Unlock()
	st.write(readers)
}
