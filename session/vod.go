package session

import (
	"errors"
	"fmt"
	"io"
	"math"
	"sync"
	"time"

	"github.com/rtmphub/rtmphub/flv"
	"github.com/rtmphub/rtmphub/rtmp/amf"
	"github.com/rtmphub/rtmphub/rtmp/message"
	"github.com/rtmphub/rtmphub/session/vod"
)

// Video on demand: a player of recorded streams (a playlist of files) runs
// on a goroutine of its own that reads tags from the file, sends them
// ahead of real time by the client's buffer length and then at real time,
// and waits for room in the client's outbound queue rather than drop
// anything. The client's reader goroutine only posts commands to it
// (another item, seek, pause, receiveAudio/Video, stop); every message of
// the stream, statuses included, is queued by the player's goroutine, so
// their order on the wire is exactly the order of events.

// vodItem is one entry of a playlist.
type vodItem struct {
	name   string   // as played, for statuses and logs
	file   vod.File // found by Store.Find
	start  int64    // milliseconds into the file
	length int64    // milliseconds to play; < 0: to the end, 0: one frame
	reset  bool     // play sent reset: Play.Reset precedes Play.Start
}

// Limits of a VOD player.
const (
	// vodQueueMessages is how full a client's outbound queue may be before
	// a VOD player waits for its writer (a bound on the memory a player
	// holds, well under PlayerQueue).
	vodQueueMessages = 64
	// vodBatch is the most messages queued at once.
	vodBatch = 32
	// maxPlaylist bounds the items queued with reset=false.
	maxPlaylist = 64
	// maxVODOps bounds the commands waiting for the player's goroutine.
	maxVODOps = 256
	// followPoll is how often a player at the end of a file that is being
	// recorded looks for more.
	followPoll = 100 * time.Millisecond
	// vodTick is how early a paced message may leave, so that the
	// messages of one tick share a wakeup and a write.
	vodTick = 40 * time.Millisecond
	// maxOpenRetries bounds the polls for the header of a file whose
	// recording is just starting.
	maxOpenRetries = 20
	// maxBurst stands for "no pacing" (reset 2 and 3, or a buffer longer
	// than any file).
	maxBurst = time.Duration(math.MaxInt64 / 4)
)

type vodOpKind int

const (
	opAdd vodOpKind = iota
	opSeek
	opPause
	opReceiveAudio
	opReceiveVideo
)

type vodOp struct {
	kind   vodOpKind
	item   *vodItem
	ms     int64
	on     bool // pause: paused; receive: on
	toggle bool // pause without an argument
}

// vodPlayer is a client's VOD stream msid.
type vodPlayer struct {
	c     *Client
	msid  uint32
	burst bool

	mu   sync.Mutex
	ops  []vodOp
	wake chan struct{} // capacity 1: ops were posted
	stop chan struct{}
	done chan struct{}
}

// startVOD starts a VOD player on stream msid with item.
func (c *Client) startVOD(msid uint32, item *vodItem, burst bool) *vodPlayer {
	v := &vodPlayer{c: c, msid: msid, burst: burst,
		wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	v.ops = append(v.ops, vodOp{kind: opAdd, item: item})
	go v.run()
	return v
}

// post hands a command to the player's goroutine. Commands beyond the
// bound are dropped (a client flooding seeks gets the latest ones).
func (v *vodPlayer) post(op vodOp) {
	v.mu.Lock()
	if len(v.ops) >= maxVODOps {
		v.mu.Unlock()
		v.c.log.Warn("vod: too many pending commands, command ignored", "stream_id", v.msid)
		return
	}
	v.ops = append(v.ops, op)
	v.mu.Unlock()
	select {
	case v.wake <- struct{}{}:
	default:
	}
}

func (v *vodPlayer) add(item *vodItem)  { v.post(vodOp{kind: opAdd, item: item}) }
func (v *vodPlayer) seek(ms int64)      { v.post(vodOp{kind: opSeek, ms: ms}) }
func (v *vodPlayer) pause(on, set bool) { v.post(vodOp{kind: opPause, on: on, toggle: !set}) }
func (v *vodPlayer) setReceive(video, on bool) {
	k := opReceiveAudio
	if video {
		k = opReceiveVideo
	}
	v.post(vodOp{kind: k, on: on})
}

// close stops the player and waits for its goroutine, so that nothing
// more is queued on the stream once it returns.
func (v *vodPlayer) close() {
	close(v.stop)
	<-v.done
}

// vodRun is the state of a player's goroutine.
type vodRun struct {
	v    *vodPlayer
	c    *Client
	ms   *vod.Store
	msid uint32

	playlist []*vodItem
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
	item   *vodItem
	src    vod.Source
	info   *vod.Info
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

func (v *vodPlayer) run() {
	defer close(v.done)
	r := &vodRun{v: v, c: v.c, ms: v.c.srv.media, msid: v.msid, receiveAudio: true, receiveVideo: true,
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
		case <-v.stop:
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
func (r *vodRun) applyOps() bool {
	r.v.mu.Lock()
	ops := r.v.ops
	r.v.ops = nil
	r.v.mu.Unlock()
	for i, op := range ops {
		ops[i] = vodOp{}
		switch op.kind {
		case opAdd:
			if len(r.playlist) >= maxPlaylist {
				r.c.log.Warn("vod: playlist full, item dropped", "stream", op.item.name)
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
func (r *vodRun) startNext() bool {
	next := r.playlist[0]
	r.playlist[0] = nil
	r.playlist = r.playlist[1:]
	return r.startItem(next)
}

// wait blocks until until (never when zero), a command, or stop; it
// reports false on stop.
func (r *vodRun) wait(until time.Time) bool {
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
	case <-r.v.stop:
		return false
	case <-r.v.wake:
	case <-tc:
	}
	return true
}

// ahead is how far ahead of real time media is sent: the client's buffer
// length, or the configured default when it has not set one.
func (r *vodRun) ahead() time.Duration {
	if r.v.burst {
		return maxBurst
	}
	ms := r.c.bufferLength.Load()
	if ms == 0 {
		return r.c.srv.cfg.VODBuffer
	}
	return time.Duration(ms) * time.Millisecond
}

// --- statuses and queueing ---

func (r *vodRun) name() string {
	if r.cur != nil {
		return r.cur.item.name
	}
	return ""
}

// status sends onStatus after the media queued so far.
func (r *vodRun) status(level, code, desc string) bool {
	if !r.flush() {
		return false
	}
	r.c.sendStatus(r.msid, level, code, desc, r.name())
	return true
}

// control sends a user control event about the stream, after the media
// queued so far.
func (r *vodRun) control(ev message.UserControlEvent) bool {
	if !r.flush() {
		return false
	}
	r.c.send(*message.UserControl{Event: ev, StreamID: r.msid}.Message())
	return true
}

// playStatus sends the data message onPlayStatus with code.
func (r *vodRun) playStatus(code string, extra ...amf.Property) bool {
	if !r.flush() {
		return false
	}
	o := amf.Object{{Key: "level", Value: levelStatus}, {Key: "code", Value: code}}
	r.c.sendData(r.msid, "onPlayStatus", append(o, extra...))
	return true
}

// queue adds a message to the batch, queueing the batch when it is full.
func (r *vodRun) queue(typ message.Type, ts int64, payload []byte) bool {
	csid := message.CSIDStream
	switch typ {
	case message.TypeAudio:
		csid = message.CSIDAudio
	case message.TypeVideo:
		csid = message.CSIDVideo
	}
	r.batch = append(r.batch, message.Message{Type: typ, StreamID: r.msid, Timestamp: wireTs(ts), ChunkStreamID: csid, Payload: payload})
	if len(r.batch) >= vodBatch {
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
func (r *vodRun) flush() bool {
	if len(r.batch) == 0 {
		return true
	}
	ok := r.c.out.SendWait(r.batch, vodQueueMessages, r.v.stop)
	clear(r.batch)
	r.batch = r.batch[:0]
	return ok
}

// --- items ---

// startItem opens item and sends what precedes its media: on a fresh
// start StreamIsRecorded, StreamBegin, Play.Reset (reset), Play.Start,
// |RtmpSampleAccess and Data.Start; on a switch from a playing item
// onPlayStatus Play.Switch and Play.Start. Then onMetaData.
func (r *vodRun) startItem(item *vodItem) bool {
	switching := r.cur != nil && r.cur.ended && !r.stopped
	fresh := r.cur == nil || r.stopped
	if r.cur != nil {
		r.nextBase = r.endWire()
		r.cur.src.Close()
		r.cur = nil
	}
	src, err := r.ms.Open(item.file)
	for try := 0; err != nil && errors.Is(err, io.ErrUnexpectedEOF) && try < maxOpenRetries && r.ms.IsRecording(item.file.Real); try++ {
		// A recording that is just starting: its header is on the way.
		if !r.wait(time.Now().Add(followPoll)) {
			return false
		}
		src, err = r.ms.Open(item.file)
	}
	if err != nil {
		return r.failItem(item, err, switching)
	}
	fi := src.Info()
	o := &openItem{item: item, src: src, info: fi, endTs: -1}
	startTs, needSeq, err := src.SeekKeyframe(item.start)
	if err != nil {
		src.Close()
		return r.failItem(item, err, switching)
	}
	if item.length == 0 {
		o.single = true
	} else if item.length > 0 {
		o.endTs = max(item.start, 0) + item.length
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
		if item.reset && !r.status(levelStatus, "NetStream.Play.Reset", "Playing and resetting "+item.name+".") {
			return false
		}
	}
	if !r.status(levelStatus, "NetStream.Play.Start", "Started playing "+item.name+".") {
		return false
	}
	if fresh {
		r.c.sendData(r.msid, "|RtmpSampleAccess", true, true)
		r.c.sendData(r.msid, "onStatus", info(levelStatus, "NetStream.Data.Start", "Data start."))
	}
	r.c.log.Info("vod play", "stream", item.name, "file", item.file.Rel, "start", item.start, "len", item.length,
		"duration", fi.Duration.Round(time.Millisecond).String())
	return r.prelude(startTs+o.offset, needSeq)
}

// failItem reports an item that cannot be played and goes on with the
// playlist.
func (r *vodRun) failItem(item *vodItem, err error, switching bool) bool {
	if !r.flush() {
		return false
	}
	code, desc := "NetStream.Play.StreamNotFound", "Failed to play "+item.name+"; stream not found."
	if errors.Is(err, flv.ErrCorrupt) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, vod.ErrBadMP4) {
		code, desc = "NetStream.Play.FileStructureInvalid", "Failed to play "+item.name+"; the file structure is invalid."
	}
	r.c.log.Info("vod play failed", "stream", item.name, "file", item.file.Rel, "err", err.Error())
	r.c.sendStatus(r.msid, levelError, code, desc, item.name)
	if switching {
		// Nothing plays now: the next item starts afresh, and without one
		// the stream ends here.
		r.stopped = true
		if len(r.playlist) == 0 {
			return r.playStatus("NetStream.Play.Complete") &&
				r.status(levelStatus, "NetStream.Play.Stop", "Stopped playing "+item.name+".") &&
				r.control(message.UCStreamEOF)
		}
	}
	return true
}

// prelude queues onMetaData and, when playback starts at a keyframe past
// the start of the file, the sequence headers, all at wire time ts.
func (r *vodRun) prelude(ts int64, needSeq bool) bool {
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
func (r *vodRun) endWire() int64 {
	end := r.lastWire + 1
	if o := r.cur; o != nil && o.endTs < 0 && !o.single {
		end = max(end, o.info.Duration.Milliseconds()+o.offset)
	}
	return max(end, 0)
}

// finish ends the current item: the next playlist item follows, or the
// stream ends with onPlayStatus Play.Complete, Play.Stop and StreamEOF.
func (r *vodRun) finish() bool {
	o := r.cur
	o.ended = true
	o.pending = nil
	if len(r.playlist) > 0 {
		return true // startItem switches
	}
	r.stopped = true
	r.nextBase = r.endWire()
	r.c.log.Info("vod complete", "stream", o.item.name, "frames", o.frames, "bytes", o.bytes)
	return r.playStatus("NetStream.Play.Complete",
		amf.Property{Key: "duration", Value: o.info.Duration.Seconds()},
		amf.Property{Key: "bytes", Value: float64(o.bytes)}) &&
		r.status(levelStatus, "NetStream.Play.Stop", "Stopped playing "+o.item.name+".") &&
		r.control(message.UCStreamEOF)
}

// seek moves the current item to the keyframe at or before ms: StreamEOF,
// StreamBegin, Seek.Notify, Play.Start, then onMetaData, the sequence
// headers and the media from there. A paused stream stays paused.
func (r *vodRun) seek(ms int64) bool {
	o := r.cur
	if o == nil {
		return r.status(levelError, "NetStream.Seek.Failed", "Seeking is not possible now.")
	}
	ms = max(ms, 0)
	ts, needSeq, err := o.src.SeekKeyframe(ms)
	if err != nil {
		r.c.log.Warn("vod seek failed", "stream", o.item.name, "to", ms, "err", err.Error())
		return r.status(levelError, "NetStream.Seek.Failed", fmt.Sprintf("Seeking %d failed.", ms))
	}
	o.ended, o.pending, o.anchored = false, nil, false
	r.stopped = false
	clear(r.batch) // not yet queued: superseded
	r.batch = r.batch[:0]
	if !r.control(message.UCStreamEOF) || !r.control(message.UCStreamBegin) ||
		!r.status(levelStatus, "NetStream.Seek.Notify", fmt.Sprintf("Seeking %d (stream ID: %d).", ms, r.msid)) ||
		!r.status(levelStatus, "NetStream.Play.Start", "Started playing "+o.item.name+".") {
		return false
	}
	r.c.log.Debug("vod seek", "stream", o.item.name, "to", ms, "keyframe", ts)
	if r.receiveVideo {
		r.videoWaitKey = false
	}
	return r.prelude(ts+o.offset, needSeq)
}

// setPaused pauses (Pause.Notify, StreamEOF) or resumes (StreamBegin,
// Unpause.Notify) the stream. Resuming continues with the first message
// not yet sent, again ahead of real time by the buffer length.
func (r *vodRun) setPaused(paused bool) bool {
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
func (r *vodRun) step() bool {
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
		// Messages due within vodTick go out together: one wakeup per
		// tick rather than per message.
		due := o.anchorWall.Add(time.Duration(wire-o.anchorTs)*time.Millisecond - ahead - vodTick)
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
func (r *vodRun) send(t *flv.Tag, ts int64) bool {
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
func (r *vodRun) atEnd(err error) bool {
	o := r.cur
	if (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)) && r.ms.IsRecording(o.item.file.Real) {
		return r.flush() && r.wait(time.Now().Add(followPoll))
	}
	if !errors.Is(err, io.EOF) {
		r.c.log.Warn("vod: file ends early", "stream", o.item.name, "file", o.item.file.Rel, "err", err.Error())
	}
	return r.finish()
}

// liveNow reports whether the live stream name has a publisher, or one
// that vanished and may come back.
func (in *Instance) liveNow(name string) bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	st := in.streams[name]
	if st == nil {
		return false
	}
	return st.Live()
}

// Start values of play, in milliseconds as ffmpeg and librtmp send them.
const (
	startLiveOnly = -1000 // live only
	startAny      = -2000 // live, else recorded
)

// NormalizeStart returns the start value of a play (client play or
// server-side Stream.play) with its live/recorded sentinel in milliseconds.
// ffmpeg sends -2000, -1000 or an offset of 0 and up, librtmp -1000 or 0 and
// up; but Adobe's RTMP specification (7.2.2.1) and server-side Stream.play
// give start in seconds, -2 live then recorded and -1 live only, and
// GStreamer's rtmp2src and node-media-server's client send -2. No client
// sends a millisecond start between -1000 and 0, so a value there is a
// sentinel in seconds: -1.5 and below becomes -2000, above it -1000 (both
// outside that range, so normalizing twice changes nothing). Anything else is
// returned as it is: offsets of 0 and up keep the unit of whoever sent them.
func NormalizeStart(start float64) float64 {
	switch {
	case start <= startLiveOnly || start >= 0 || math.IsNaN(start):
		return start
	case start <= -1.5:
		return startAny
	}
	return startLiveOnly
}

// StartMode is what the start value of a play asks for.
type StartMode uint8

const (
	// StartLiveOrRecorded (-2, -2000 and below -1500 ms) plays the live
	// stream when it is published, else the recorded one when its file
	// exists, else waits for a publisher.
	StartLiveOrRecorded StartMode = iota
	// StartLiveOnly (-1, -1000: from -1500 ms up to 0) plays only live.
	StartLiveOnly
	// StartRecorded (0 and up) plays only the recorded stream, from there.
	StartRecorded
)

// PlayStartMode classifies a start value after NormalizeStart.
func PlayStartMode(start float64) StartMode {
	switch start = NormalizeStart(start); {
	case start >= 0:
		return StartRecorded
	case start > (startAny+startLiveOnly)/2:
		return StartLiveOnly
	}
	return StartLiveOrRecorded
}

// vodChoice is what a play asks for.
type vodChoice int

const (
	choiceLive vodChoice = iota
	choiceVOD
	choiceNotFound
)

// chooseVOD applies FMS start semantics (PlayStartMode) to a play of name
// with start already normalized. "mp4:" names are recorded only.
func (c *Client) chooseVOD(name string, start, length float64, reset bool) (*vodItem, vodChoice) {
	_, kind := vod.FileName(name)
	mode := PlayStartMode(start)
	recordedOnly := mode == StartRecorded || kind == vod.MP4
	if !recordedOnly && mode == StartLiveOnly {
		return nil, choiceLive
	}
	if !recordedOnly && c.inst.liveNow(name) {
		return nil, choiceLive
	}
	item, ok := c.vodItem(name, start, length, reset)
	switch {
	case ok:
		return item, choiceVOD
	case recordedOnly:
		return nil, choiceNotFound
	}
	return nil, choiceLive
}

// vodItem locates the file of a play; false when there is none.
func (c *Client) vodItem(name string, start, length float64, reset bool) (*vodItem, bool) {
	f, err := c.srv.media.Find(c.app, c.inst.name, name)
	if err != nil {
		return nil, false
	}
	it := &vodItem{name: name, file: f, start: 0, length: -1, reset: reset}
	if start > 0 && start < math.MaxInt32 {
		it.start = int64(start)
	}
	if length >= 0 && length < math.MaxInt32 {
		it.length = int64(length)
	}
	return it, true
}

// streamLength returns the duration of the stream file a play name names,
// for getStreamLength; 0 when there is none.
func (c *Client) streamLength(name string) float64 {
	f, err := c.srv.media.Find(c.app, c.inst.name, streamName(name))
	if err != nil {
		return 0
	}
	src, err := c.srv.media.Open(f)
	if err != nil {
		return 0
	}
	defer src.Close()
	return src.Info().Duration.Seconds()
}
