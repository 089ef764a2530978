package vod

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/rtmphub/rtmphub/flv"
	"github.com/rtmphub/rtmphub/rtmp/amf"
	"github.com/rtmphub/rtmphub/rtmp/message"
)

// A Player plays recorded streams (a playlist of files) on a goroutine of
// its own that reads tags from the file, sends them ahead of real time by
// the client's buffer length and then at real time, and waits for room in
// the client's outbound queue rather than drop anything. The client's
// reader goroutine only posts commands to it (another item, seek, pause,
// receiveAudio/Video, stop); every message of the stream, statuses
// included, is queued by the player's goroutine, so their order on the
// wire is exactly the order of events.

// Output is the message stream a Player plays on: a client's stream. Its
// methods are called on the player's goroutine only, in the order of
// events, and must keep that order on the wire: media and the rest share
// one queue.
type Output interface {
	// SendWait queues media messages once the queue holds fewer than
	// limit, waiting for room rather than dropping anything
	// (outqueue.Queue.SendWait); it returns false, queueing nothing, when
	// the output is closed or stop is. msgs is reused after it returns.
	SendWait(msgs []message.Message, limit int, stop <-chan struct{}) bool
	// Status sends onStatus with an FMS info object whose details name
	// the stream.
	Status(level, code, desc, details string)
	// Data sends a data message (onPlayStatus, |RtmpSampleAccess, ...).
	Data(vals ...any)
	// Control sends user control event ev about the stream.
	Control(ev message.UserControlEvent)
	// BufferLength is how far ahead of real time media is sent: the
	// client's buffer length, or a default when it has not set one.
	BufferLength() time.Duration
}

// PlayOptions are what a Player is started with besides its first item.
type PlayOptions struct {
	// StreamID is the message stream played on: the messages' stream id,
	// and the one NetStream.Seek.Notify names.
	StreamID uint32
	// Burst sends the files without pacing (play with reset 2 or 3).
	Burst bool
	// Log gets the player's lines (play, complete, failures).
	Log *slog.Logger
}

// Item is one entry of a playlist.
type Item struct {
	Name   string // as played, for statuses and logs
	File   File   // found by Store.Find
	Start  int64  // milliseconds into the file
	Length int64  // milliseconds to play; < 0: to the end, 0: one frame
	Reset  bool   // play sent reset: Play.Reset precedes Play.Start
}

// Status levels of FMS info objects.
const (
	levelStatus = "status"
	levelError  = "error"
)

// Limits of a player.
const (
	// queueMessages is how full a client's outbound queue may be before
	// a player waits for its writer (a bound on the memory a player
	// holds, well under the session's PlayerQueue).
	queueMessages = 64
	// batchSize is the most messages queued at once.
	batchSize = 32
	// maxPlaylist bounds the items queued with reset=false.
	maxPlaylist = 64
	// maxOps bounds the commands waiting for the player's goroutine.
	maxOps = 256
	// followPoll is how often a player at the end of a file that is being
	// recorded looks for more.
	followPoll = 100 * time.Millisecond
	// tick is how early a paced message may leave, so that the
	// messages of one tick share a wakeup and a write.
	tick = 40 * time.Millisecond
	// maxOpenRetries bounds the polls for the header of a file whose
	// recording is just starting.
	maxOpenRetries = 20
	// maxBurst stands for "no pacing" (reset 2 and 3, or a buffer longer
	// than any file).
	maxBurst = time.Duration(math.MaxInt64 / 4)
)

type opKind int

const (
	opAdd opKind = iota
	opSeek
	opPause
	opReceiveAudio
	opReceiveVideo
)

type playerOp struct {
	kind   opKind
	item   *Item
	ms     int64
	on     bool // pause: paused; receive: on
	toggle bool // pause without an argument
}

// Player plays recorded streams on an Output. Its methods post commands
// to its goroutine and return at once; Close stops it.
type Player struct {
	store *Store
	out   Output
	opts  PlayOptions

	mu   sync.Mutex
	ops  []playerOp
	wake chan struct{} // capacity 1: ops were posted
	stop chan struct{}
	done chan struct{}
}

// Play starts a Player on out that plays item, a file of s, and then the
// items Add queues.
func (s *Store) Play(out Output, item *Item, opts PlayOptions) *Player {
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	p := &Player{store: s, out: out, opts: opts,
		wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	p.ops = append(p.ops, playerOp{kind: opAdd, item: item})
	go p.run()
	return p
}

// post hands a command to the player's goroutine. Commands beyond the
// bound are dropped (a client flooding seeks gets the latest ones).
func (p *Player) post(o playerOp) {
	p.mu.Lock()
	if len(p.ops) >= maxOps {
		p.mu.Unlock()
		p.opts.Log.Warn("vod: too many pending commands, command ignored", "stream_id", p.opts.StreamID)
		return
	}
	p.ops = append(p.ops, o)
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// Add queues item after what plays (play with reset false: a playlist).
func (p *Player) Add(item *Item) { p.post(playerOp{kind: opAdd, item: item}) }

// SeekTo moves to the keyframe at or before ms of the item playing (the
// seek command; not io.Seeker's Seek).
func (p *Player) SeekTo(ms int64) { p.post(playerOp{kind: opSeek, ms: ms}) }

// Pause pauses (on) or resumes the stream; set false toggles (a pause
// command without its flag).
func (p *Player) Pause(on, set bool) { p.post(playerOp{kind: opPause, on: on, toggle: !set}) }

// SetReceive turns the video (video) or the audio of the stream on or
// off (receiveVideo, receiveAudio).
func (p *Player) SetReceive(video, on bool) {
	k := opReceiveAudio
	if video {
		k = opReceiveVideo
	}
	p.post(playerOp{kind: k, on: on})
}

// Close stops the player and waits for its goroutine, so that nothing
// more is queued on the stream once it returns.
func (p *Player) Close() {
	close(p.stop)
	<-p.done
}

// runner is the state of a player's goroutine.
type runner struct {
	p    *Player
	out  Output
	log  *slog.Logger
	ms   *Store
	msid uint32

	playlist []*Item
	cur      *openItem
	// stopped: the last item ended and Play.Stop was sent; the next item
	// starts the stream again rather than switching to it.
	stopped bool
	paused  bool

	receiveAudio, receiveVideo bool
	videoWaitKey               bool // video back on: from the next keyframe

	batch    []message.Message
	timer    *time.Timer
	lastWire int64 // timestamp of the last media message sent; -1 before any
	nextBase int64 // where the next playlist item's timestamps start
}

// openItem is the item being played.
type openItem struct {
	item   *Item
	src    Source
	info   *Info
	offset int64 // wire timestamp = file timestamp + offset
	endTs  int64 // file time where the item ends; -1: the end of the file
	single bool  // len 0: one frame

	anchored   bool
	anchorWall time.Time
	anchorTs   int64 // wire timestamp sent at anchorWall

	pending *flv.Tag // read, not yet due
	ended   bool     // reached its end
	bytes   uint64
	frames  int
}

func (p *Player) run() {
	defer close(p.done)
	r := &runner{p: p, out: p.out, log: p.opts.Log, ms: p.store, msid: p.opts.StreamID, receiveAudio: true, receiveVideo: true,
		timer: time.NewTimer(time.Hour), lastWire: -1}
	r.timer.Stop()
	defer func() {
		r.timer.Stop()
		if r.cur != nil {
			r.cur.src.Close()
		}
		clear(r.batch)
	}()
	for {
		select {
		case <-p.stop:
			return
		default:
		}
		if !r.applyOps() {
			return
		}
		if r.cur == nil || r.cur.ended {
			if len(r.playlist) > 0 {
				if !r.startNext() {
					return
				}
				continue
			}
			if !r.flush() || !r.wait(time.Time{}) {
				return
			}
			continue
		}
		if r.paused {
			if !r.flush() || !r.wait(time.Time{}) {
				return
			}
			continue
		}
		if !r.step() {
			return
		}
	}
}

// applyOps runs the commands posted since the last call.
func (r *runner) applyOps() bool {
	r.p.mu.Lock()
	ops := r.p.ops
	r.p.ops = nil
	r.p.mu.Unlock()
	for i, op := range ops {
		ops[i] = playerOp{}
		switch op.kind {
		case opAdd:
			if len(r.playlist) >= maxPlaylist {
				r.log.Warn("vod: playlist full, item dropped", "stream", op.item.Name)
				continue
			}
			r.playlist = append(r.playlist, op.item)
			// Nothing plays: start it now, so that the commands after it
			// (a seek right after play) apply to it.
			if (r.cur == nil || r.cur.ended) && !r.startNext() {
				return false
			}
		case opSeek:
			if !r.seek(op.ms) {
				return false
			}
		case opPause:
			paused := op.on
			if op.toggle {
				paused = !r.paused
			}
			if !r.setPaused(paused) {
				return false
			}
		case opReceiveAudio:
			r.receiveAudio = op.on
		case opReceiveVideo:
			if op.on && !r.receiveVideo {
				r.videoWaitKey = true
			}
			r.receiveVideo = op.on
		}
	}
	return true
}

// startNext starts the first item of the playlist.
func (r *runner) startNext() bool {
	next := r.playlist[0]
	r.playlist[0] = nil
	r.playlist = r.playlist[1:]
	return r.startItem(next)
}

// wait blocks until until (never when zero), a command, or stop; it
// reports false on stop.
func (r *runner) wait(until time.Time) bool {
	var tc <-chan time.Time
	if !until.IsZero() {
		d := time.Until(until)
		if d <= 0 {
			return true
		}
		r.timer.Reset(d)
		tc = r.timer.C
		defer r.timer.Stop()
	}
	select {
	case <-r.p.stop:
		return false
	case <-r.p.wake:
	case <-tc:
	}
	return true
}

// ahead is how far ahead of real time media is sent: the client's buffer
// length, or the configured default when it has not set one.
func (r *runner) ahead() time.Duration {
	if r.p.opts.Burst {
		return maxBurst
	}
	return r.out.BufferLength()
}

// --- statuses and queueing ---

func (r *runner) name() string {
	if r.cur != nil {
		return r.cur.item.Name
	}
	return ""
}

// status sends onStatus after the media queued so far.
func (r *runner) status(level, code, desc string) bool {
	if !r.flush() {
		return false
	}
	r.out.Status(level, code, desc, r.name())
	return true
}

// control sends a user control event about the stream, after the media
// queued so far.
func (r *runner) control(ev message.UserControlEvent) bool {
	if !r.flush() {
		return false
	}
	r.out.Control(ev)
	return true
}

// playStatus sends the data message onPlayStatus with code.
func (r *runner) playStatus(code string, extra ...amf.Property) bool {
	if !r.flush() {
		return false
	}
	o := amf.Object{{Key: "level", Value: levelStatus}, {Key: "code", Value: code}}
	r.out.Data("onPlayStatus", append(o, extra...))
	return true
}

// queue adds a message to the batch, queueing the batch when it is full.
func (r *runner) queue(typ message.Type, ts int64, payload []byte) bool {
	csid := message.CSIDStream
	switch typ {
	case message.TypeAudio:
		csid = message.CSIDAudio
	case message.TypeVideo:
		csid = message.CSIDVideo
	}
	r.batch = append(r.batch, message.Message{Type: typ, StreamID: r.msid, Timestamp: wireTs(ts), ChunkStreamID: csid, Payload: payload})
	if len(r.batch) >= batchSize {
		return r.flush()
	}
	return true
}

func wireTs(ts int64) uint32 {
	if ts < 0 {
		return 0
	}
	return uint32(ts)
}

// flush queues the batch on the client, waiting for room when its queue
// is full; false when the client ended or the player stopped.
func (r *runner) flush() bool {
	if len(r.batch) == 0 {
		return true
	}
	ok := r.out.SendWait(r.batch, queueMessages, r.p.stop)
	clear(r.batch)
	r.batch = r.batch[:0]
	return ok
}

// --- items ---

// startItem opens item and sends what precedes its media: on a fresh
// start StreamIsRecorded, StreamBegin, Play.Reset (reset), Play.Start,
// |RtmpSampleAccess and Data.Start; on a switch from a playing item
// onPlayStatus Play.Switch and Play.Start. Then onMetaData.
func (r *runner) startItem(item *Item) bool {
	switching := r.cur != nil && r.cur.ended && !r.stopped
	fresh := r.cur == nil || r.stopped
	if r.cur != nil {
		r.nextBase = r.endWire()
		r.cur.src.Close()
		r.cur = nil
	}
	src, err := r.ms.Open(item.File)
	for try := 0; err != nil && errors.Is(err, io.ErrUnexpectedEOF) && try < maxOpenRetries && r.ms.IsRecording(item.File.Real); try++ {
		// A recording that is just starting: its header is on the way.
		if !r.wait(time.Now().Add(followPoll)) {
			return false
		}
		src, err = r.ms.Open(item.File)
	}
	if err != nil {
		return r.failItem(item, err, switching)
	}
	fi := src.Info()
	o := &openItem{item: item, src: src, info: fi, endTs: -1}
	startTs, needSeq, err := src.SeekKeyframe(item.Start)
	if err != nil {
		src.Close()
		return r.failItem(item, err, switching)
	}
	if item.Length == 0 {
		o.single = true
	} else if item.Length > 0 {
		o.endTs = max(item.Start, 0) + item.Length
	}
	if r.lastWire >= 0 {
		// Later items continue the timeline of the earlier ones.
		o.offset = r.nextBase - startTs
	}
	if switching {
		if !r.playStatus("NetStream.Play.Switch") {
			src.Close()
			return false
		}
	}
	r.cur = o
	r.stopped = false
	if fresh {
		if !r.control(message.UCStreamIsRecorded) || !r.control(message.UCStreamBegin) {
			return false
		}
		if item.Reset && !r.status(levelStatus, "NetStream.Play.Reset", "Playing and resetting "+item.Name+".") {
			return false
		}
	}
	if !r.status(levelStatus, "NetStream.Play.Start", "Started playing "+item.Name+".") {
		return false
	}
	if fresh {
		r.out.Data("|RtmpSampleAccess", true, true)
		r.out.Data("onStatus", amf.Object{{Key: "level", Value: levelStatus}, {Key: "code", Value: "NetStream.Data.Start"},
			{Key: "description", Value: "Data start."}})
	}
	r.log.Info("vod play", "stream", item.Name, "file", item.File.Rel, "start", item.Start, "len", item.Length,
		"duration", fi.Duration.Round(time.Millisecond).String())
	return r.prelude(startTs+o.offset, needSeq)
}

// failItem reports an item that cannot be played and goes on with the
// playlist.
func (r *runner) failItem(item *Item, err error, switching bool) bool {
	if !r.flush() {
		return false
	}
	code, desc := "NetStream.Play.StreamNotFound", "Failed to play "+item.Name+"; stream not found."
	if errors.Is(err, flv.ErrCorrupt) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, ErrBadMP4) {
		code, desc = "NetStream.Play.FileStructureInvalid", "Failed to play "+item.Name+"; the file structure is invalid."
	}
	r.log.Info("vod play failed", "stream", item.Name, "file", item.File.Rel, "err", err.Error())
	r.out.Status(levelError, code, desc, item.Name)
	if switching {
		// Nothing plays now: the next item starts afresh, and without one
		// the stream ends here.
		r.stopped = true
		if len(r.playlist) == 0 {
			return r.playStatus("NetStream.Play.Complete") &&
				r.status(levelStatus, "NetStream.Play.Stop", "Stopped playing "+item.Name+".") &&
				r.control(message.UCStreamEOF)
		}
	}
	return true
}

// prelude queues onMetaData and, when playback starts at a keyframe past
// the start of the file, the sequence headers, all at wire time ts.
func (r *runner) prelude(ts int64, needSeq bool) bool {
	o := r.cur
	if o.info.Meta != nil && !r.queue(message.TypeDataAMF0, ts, o.info.Meta) {
		return false
	}
	if needSeq {
		for _, t := range o.info.Seq {
			if !r.queue(t.Type, ts, t.Data) {
				return false
			}
		}
	}
	return true
}

// endWire is where the timeline of an item that ended leaves off for the
// next one: after the last message sent, or at the end of the file when
// it played to the end.
func (r *runner) endWire() int64 {
	end := r.lastWire + 1
	if o := r.cur; o != nil && o.endTs < 0 && !o.single {
		end = max(end, o.info.Duration.Milliseconds()+o.offset)
	}
	return max(end, 0)
}

// finish ends the current item: the next playlist item follows, or the
// stream ends with onPlayStatus Play.Complete, Play.Stop and StreamEOF.
func (r *runner) finish() bool {
	o := r.cur
	o.ended = true
	o.pending = nil
	if len(r.playlist) > 0 {
		return true // startItem switches
	}
	r.stopped = true
	r.nextBase = r.endWire()
	r.log.Info("vod complete", "stream", o.item.Name, "frames", o.frames, "bytes", o.bytes)
	return r.playStatus("NetStream.Play.Complete",
		amf.Property{Key: "duration", Value: o.info.Duration.Seconds()},
		amf.Property{Key: "bytes", Value: float64(o.bytes)}) &&
		r.status(levelStatus, "NetStream.Play.Stop", "Stopped playing "+o.item.Name+".") &&
		r.control(message.UCStreamEOF)
}

// seek moves the current item to the keyframe at or before ms: StreamEOF,
// StreamBegin, Seek.Notify, Play.Start, then onMetaData, the sequence
// headers and the media from there. A paused stream stays paused.
func (r *runner) seek(ms int64) bool {
	o := r.cur
	if o == nil {
		return r.status(levelError, "NetStream.Seek.Failed", "Seeking is not possible now.")
	}
	ms = max(ms, 0)
	ts, needSeq, err := o.src.SeekKeyframe(ms)
	if err != nil {
		r.log.Warn("vod seek failed", "stream", o.item.Name, "to", ms, "err", err.Error())
		return r.status(levelError, "NetStream.Seek.Failed", fmt.Sprintf("Seeking %d failed.", ms))
	}
	o.ended, o.pending, o.anchored = false, nil, false
	r.stopped = false
	clear(r.batch) // not yet queued: superseded
	r.batch = r.batch[:0]
	if !r.control(message.UCStreamEOF) || !r.control(message.UCStreamBegin) ||
		!r.status(levelStatus, "NetStream.Seek.Notify", fmt.Sprintf("Seeking %d (stream ID: %d).", ms, r.msid)) ||
		!r.status(levelStatus, "NetStream.Play.Start", "Started playing "+o.item.Name+".") {
		return false
	}
	r.log.Debug("vod seek", "stream", o.item.Name, "to", ms, "keyframe", ts)
	if r.receiveVideo {
		r.videoWaitKey = false
	}
	return r.prelude(ts+o.offset, needSeq)
}

// setPaused pauses (Pause.Notify, StreamEOF) or resumes (StreamBegin,
// Unpause.Notify) the stream. Resuming continues with the first message
// not yet sent, again ahead of real time by the buffer length.
func (r *runner) setPaused(paused bool) bool {
	r.paused = paused
	name := r.name()
	if paused {
		return r.status(levelStatus, "NetStream.Pause.Notify", "Pausing "+name+".") && r.control(message.UCStreamEOF)
	}
	if r.cur != nil {
		r.cur.anchored = false
	}
	return r.control(message.UCStreamBegin) && r.status(levelStatus, "NetStream.Unpause.Notify", "Unpausing "+name+".")
}

// step sends the next tag when it is due, or waits until it is.
func (r *runner) step() bool {
	o := r.cur
	t := o.pending
	if t == nil {
		var err error
		t, err = o.src.Next()
		if err != nil {
			return r.atEnd(err)
		}
	}
	o.pending = nil
	isMedia := t.Type == flv.TagAudio || t.Type == flv.TagVideo
	if isMedia && o.endTs >= 0 && int64(t.Timestamp) >= o.endTs {
		return r.finish()
	}
	wire := int64(t.Timestamp) + o.offset
	now := time.Now()
	if !o.anchored {
		o.anchored, o.anchorWall, o.anchorTs = true, now, wire
	}
	if ahead := r.ahead(); ahead < maxBurst {
		// Messages due within tick go out together: one wakeup per
		// tick rather than per message.
		due := o.anchorWall.Add(time.Duration(wire-o.anchorTs)*time.Millisecond - ahead - tick)
		if due.After(now) {
			o.pending = t
			return r.flush() && r.wait(due)
		}
	}
	if !r.send(t, wire) {
		return false
	}
	if o.single && o.frames > 0 && (t.Type == flv.TagVideo || !o.info.HasVideo()) {
		return r.finish()
	}
	return true
}

// send queues tag t at wire time ts, applying receiveAudio/Video and
// leaving out onMetaData (sent from the file's metadata before).
func (r *runner) send(t *flv.Tag, ts int64) bool {
	o := r.cur
	switch t.Type {
	case flv.TagVideo:
		v, ok := message.ParseVideo(t.Data)
		if !ok {
			return true
		}
		if !v.SequenceHeader {
			if !r.receiveVideo {
				return true
			}
			if r.videoWaitKey {
				if !v.Keyframe || v.Command {
					return true
				}
				r.videoWaitKey = false
			}
			if !v.Command && !v.Metadata && !v.SequenceEnd {
				o.frames++
			}
		}
	case flv.TagAudio:
		a, ok := message.ParseAudio(t.Data)
		if !ok {
			return true
		}
		if !r.receiveAudio && !a.SequenceHeader {
			return true
		}
		if !a.SequenceHeader && !o.info.HasVideo() {
			o.frames++
		}
	case flv.TagScript:
		if name, _, ok := message.DataName(t.Data); !ok || name == "onMetaData" {
			return true
		}
	default:
		return true
	}
	o.bytes += uint64(len(t.Data))
	if t.Type != flv.TagScript {
		r.lastWire = max(r.lastWire, ts)
	}
	return r.queue(t.Type, ts, t.Data)
}

// atEnd handles the end of the file, or an error reading it: a file
// that is being recorded is followed; otherwise the item ends.
func (r *runner) atEnd(err error) bool {
	o := r.cur
	if (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)) && r.ms.IsRecording(o.item.File.Real) {
		return r.flush() && r.wait(time.Now().Add(followPoll))
	}
	if !errors.Is(err, io.EOF) {
		r.log.Warn("vod: file ends early", "stream", o.item.Name, "file", o.item.File.Rel, "err", err.Error())
	}
	return r.finish()
}
