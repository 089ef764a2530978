package script

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/dop251/goja"
	"github.com/rtmphub/rtmphub/flv"
	"github.com/rtmphub/rtmphub/rtmp/amf"
	"github.com/rtmphub/rtmphub/rtmp/message"
	"github.com/rtmphub/rtmphub/session"
)

// Server-side streams: Stream.get(name) is a live stream of the instance
// that the script feeds with a playlist of recorded files
// (<data>/<app>/streams/<instance>/, FLV or "mp4:" files) and live
// streams of the same instance, paced in real time on one timeline, so
// that every player sees the same point of the playlist whenever it
// joins, as FMS's server-side playlists did. Each Stream has one
// goroutine that plays the playlist's items one after the other; a live
// item is fed by a server-side player of the live stream (a goroutine of
// the core). Writes to the stream's publication (files, live items,
// Stream.send) are serialized by the stream's write lock. What the stream
// publishes can be recorded (Stream.record). Events reach the script as
// the stream's onStatus on the loop (application.onStatus when the stream
// has none).

const maxStreams = 64 // per instance

type playItem struct {
	name string
	// start in seconds: >= 0 recorded (from that point), -1 live only,
	// -2 live when published, else recorded, else live when published;
	// the sentinels also in milliseconds (session.PlayStartMode).
	start  float64
	length float64 // seconds; < 0 to the end; 0 a single frame
}

type srvStream struct {
	a    *App
	name string
	obj  *goja.Object
	pub  *session.ServerPublisher // set once by the loop, before run starts

	// The playlist.
	mu      sync.Mutex
	items   []playItem
	stopped chan struct{} // closed when the item playing must end (reset, stop)
	wake    chan struct{} // items were added

	// The timeline and the writes to pub.
	wmu      sync.Mutex
	clock    time.Time // wire time 0
	last     uint32    // wire time of the last media written
	haveLast bool
	playing  bool      // an item is playing
	live     *liveFeed // the live item being played, if any

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{} // run has ended
}

func (a *App) setupStream() {
	vm := a.vm
	ctor := vm.Get("Stream").(*goja.Object)
	p := ctor.Get("prototype").(*goja.Object)
	_ = ctor.Set("get", func(name string) goja.Value {
		if st := a.streams[name]; st != nil {
			return st.obj
		}
		if name == "" || strings.ContainsAny(name, "/\\?") || len(name) > 1024 {
			panic(vm.NewTypeError("bad stream name"))
		}
		if len(a.streams) >= maxStreams {
			panic(vm.NewGoError(errors.New("too many server-side streams")))
		}
		ss := &srvStream{a: a, name: name, obj: vm.NewObject(), wake: make(chan struct{}, 1),
			stopped: make(chan struct{}), done: make(chan struct{})}
		ss.ctx, ss.cancel = context.WithCancel(context.Background())
		_ = ss.obj.SetPrototype(p)
		_ = ss.obj.Set("name", name)
		a.streams[name] = ss
		a.streamByObj[ss.obj] = ss
		return ss.obj
	})
	// Stream.length(name): the duration in seconds of a recorded stream,
	// 0 when there is none.
	// (A function's own length is configurable: it can be replaced.)
	length := vm.ToValue(func(name string) float64 {
		f, err := a.in.OpenStreamFile(name)
		if err != nil {
			return 0
		}
		defer f.Close()
		return f.Duration().Seconds()
	})
	if err := ctor.DefineDataProperty("length", length, goja.FLAG_TRUE, goja.FLAG_FALSE, goja.FLAG_TRUE); err != nil {
		panic(err)
	}
	self := func(this goja.Value) *srvStream {
		o, ok := this.(*goja.Object)
		if !ok || a.streamByObj[o] == nil {
			panic(vm.NewTypeError("not an open Stream"))
		}
		return a.streamByObj[o]
	}
	// Stream.destroy(stream) closes it, as FMS's.
	_ = ctor.Set("destroy", func(call goja.FunctionCall) goja.Value {
		o, ok := call.Argument(0).(*goja.Object)
		if !ok || a.streamByObj[o] == nil {
			return vm.ToValue(false)
		}
		a.closeStream(a.streamByObj[o])
		return vm.ToValue(true)
	})
	// play(name, start, length, reset): start in seconds (default -2:
	// live when published, else recorded; -1 live only; >= 0 recorded
	// from there), length in seconds (-1: all; 0: one frame), reset
	// (default true) replaces the playlist, false appends. play(false)
	// stops.
	_ = p.Set("play", func(call goja.FunctionCall) goja.Value {
		ss := self(call.This)
		if b, ok := call.Argument(0).Export().(bool); ok && !b {
			ss.reset(nil)
			return vm.ToValue(true)
		}
		name := call.Argument(0).String()
		if name == "" || len(name) > 1024 {
			panic(vm.NewTypeError("bad stream name"))
		}
		it := playItem{name: name, start: -2, length: -1}
		if v := call.Argument(1); !goja.IsUndefined(v) && !goja.IsNull(v) {
			it.start = v.ToFloat()
		}
		if v := call.Argument(2); !goja.IsUndefined(v) && !goja.IsNull(v) {
			it.length = v.ToFloat()
		}
		reset := true
		if v := call.Argument(3); !goja.IsUndefined(v) {
			reset = v.ToBoolean()
		}
		ss.ensurePub()
		if reset {
			ss.reset([]playItem{it})
			ss.postStatus("status", "NetStream.Play.Reset", "Playing and resetting "+name+".")
		} else {
			ss.add(it)
		}
		return vm.ToValue(true)
	})
	// record("record" | "append") records what the stream publishes to
	// <name>.flv; record(false) or record("off") stops.
	_ = p.Set("record", func(call goja.FunctionCall) goja.Value {
		ss := self(call.This)
		mode := "record"
		switch v := call.Argument(0); {
		case goja.IsUndefined(v):
		case isBool(v):
			if !v.ToBoolean() {
				mode = "off"
			}
		default:
			mode = strings.ToLower(v.String())
		}
		switch mode {
		case "off", "false":
			if ss.pub != nil {
				ss.pub.StopRecord()
			}
			return vm.ToValue(true)
		case "record", "append":
		default:
			panic(vm.NewTypeError(`record mode must be "record", "append" or false`))
		}
		ss.ensurePub()
		ss.pub.Record(mode == "append", func(level, code, desc string) { ss.status(level, code, desc) })
		return vm.ToValue(true)
	})
	// send(handler, ...args): a data message to every player of the
	// stream, which calls handler on their NetStream (recorded too).
	_ = p.Set("send", func(call goja.FunctionCall) goja.Value {
		ss := self(call.This)
		handler := call.Argument(0).String()
		if handler == "" || goja.IsUndefined(call.Argument(0)) {
			panic(vm.NewTypeError("send needs a handler name"))
		}
		vals := []any{handler}
		if len(call.Arguments) > 1 {
			vals = append(vals, amfArgs(vm, call.Arguments[1:])...)
		}
		body, err := amf.Marshal0(vals...)
		if err != nil {
			panic(vm.NewGoError(err))
		}
		ss.ensurePub()
		ss.wmu.Lock()
		ts := ss.last
		if !ss.playing || !ss.haveLast {
			ts = max(ts, ss.nowLocked())
		}
		err = ss.pub.Write(&message.Message{Type: message.TypeDataAMF0, Timestamp: ts, Payload: body})
		ss.wmu.Unlock()
		return vm.ToValue(err == nil)
	})
	_ = p.Set("close", func(call goja.FunctionCall) goja.Value {
		ss := self(call.This)
		a.closeStream(ss)
		return vm.ToValue(true)
	})
}

func isBool(v goja.Value) bool {
	_, ok := v.Export().(bool)
	return ok
}

// ensurePub starts the stream's publication and its goroutine (loop
// goroutine).
func (ss *srvStream) ensurePub() {
	if ss.pub != nil {
		return
	}
	pub, err := ss.a.in.PublishServer(ss.name)
	if err != nil {
		panic(ss.a.vm.NewGoError(err))
	}
	ss.pub = pub
	ss.clock = time.Now()
	go ss.run()
}

func (a *App) closeStream(ss *srvStream) {
	delete(a.streams, ss.name)
	delete(a.streamByObj, ss.obj)
	ss.cancel()
	if ss.pub == nil {
		return
	}
	go func() { // the publishing goroutine ends, then the publication
		<-ss.done
		ss.pub.Close()
	}()
}

// reset replaces the playlist and ends the item playing.
func (ss *srvStream) reset(items []playItem) {
	ss.mu.Lock()
	ss.items = items
	close(ss.stopped)
	ss.stopped = make(chan struct{})
	ss.mu.Unlock()
	ss.signal()
}

func (ss *srvStream) add(it playItem) {
	ss.mu.Lock()
	ss.items = append(ss.items, it)
	ss.mu.Unlock()
	ss.signal()
}

func (ss *srvStream) signal() {
	select {
	case ss.wake <- struct{}{}:
	default:
	}
}

// next takes the first item, with the channel that says it must stop.
func (ss *srvStream) next() (playItem, <-chan struct{}, bool) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if len(ss.items) == 0 {
		return playItem{}, nil, false
	}
	it := ss.items[0]
	ss.items = ss.items[1:]
	return it, ss.stopped, true
}

// infoObject is an FMS status info object.
func (a *App) infoObject(level, code, desc, details string) *goja.Object {
	o := a.vm.NewObject()
	_ = o.Set("level", level)
	_ = o.Set("code", code)
	_ = o.Set("description", desc)
	if details != "" {
		_ = o.Set("details", details)
	}
	return o
}

// onStatus calls the stream's onStatus (loop goroutine), or
// application.onStatus when it has none.
func (ss *srvStream) onStatus(level, code, desc string) {
	a := ss.a
	o := a.infoObject(level, code, desc, ss.name)
	fn, ok := goja.AssertFunction(ss.obj.Get("onStatus"))
	if !ok {
		a.appStatus(o)
		return
	}
	if _, err := fn(ss.obj, o); err != nil {
		a.scriptError("Stream.onStatus", err)
	}
}

// status posts onStatus to the loop, waiting a while for room (stream
// goroutines).
func (ss *srvStream) status(level, code, desc string) {
	a := ss.a
	err := a.l.postWait(func() { ss.onStatus(level, code, desc) }, 5*time.Second)
	if err != nil && !errors.Is(err, errStopped) {
		a.log.Warn("Stream.onStatus not run", "stream", ss.name, "code", code, "err", err)
	}
}

// postStatus posts onStatus without waiting (the loop itself, and the
// core's goroutines feeding live items).
func (ss *srvStream) postStatus(level, code, desc string) {
	a := ss.a
	if err := a.l.post(func() { ss.onStatus(level, code, desc) }); err != nil && !errors.Is(err, errStopped) {
		a.log.Warn("Stream.onStatus not run", "stream", ss.name, "code", code, "err", err)
	}
}

// --- the timeline (wmu held) ---

func (ss *srvStream) nowLocked() uint32 { return uint32(time.Since(ss.clock).Milliseconds()) }

// nextBaseLocked is where the next item starts: after what was written,
// and not before the wall clock (after an idle gap).
func (ss *srvStream) nextBaseLocked() uint32 {
	b := ss.nowLocked()
	if ss.haveLast && int32(ss.last+1-b) > 0 {
		b = ss.last + 1
	}
	return b
}

func (ss *srvStream) writeLocked(typ message.Type, ts uint32, payload []byte) {
	_ = ss.pub.Write(&message.Message{Type: typ, Timestamp: ts, Payload: payload})
	if (typ == message.TypeAudio || typ == message.TypeVideo) && (!ss.haveLast || int32(ts-ss.last) > 0) {
		ss.last, ss.haveLast = ts, true
	}
}

func (ss *srvStream) setPlaying(on bool) {
	ss.wmu.Lock()
	ss.playing = on
	ss.wmu.Unlock()
}

// run is the stream's goroutine: the playlist's items one after the
// other.
func (ss *srvStream) run() {
	defer close(ss.done)
	switching := false // the previous item ended by itself: the next switches
	for {
		it, stopped, ok := ss.next()
		if !ok {
			switching = false
			ss.setPlaying(false)
			select {
			case <-ss.wake:
				continue
			case <-ss.ctx.Done():
				return
			}
		}
		ended := ss.playItem(it, stopped, switching)
		if ss.ctx.Err() != nil {
			return
		}
		switching = ended
	}
}

// playItem plays one item; it reports whether the item ended by itself
// (rather than by a reset or a stop).
func (ss *srvStream) playItem(it playItem, stopped <-chan struct{}, switching bool) bool {
	f, live, err := ss.choose(it)
	if err != nil {
		ss.a.log.Info("server-side stream item not found", "stream", ss.name, "item", it.name, "start", it.start, "err", err)
		ss.status("error", "NetStream.Play.StreamNotFound", fmt.Sprintf("Failed to play %s; %v.", it.name, err))
		return false
	}
	if switching {
		ss.status("status", "NetStream.Play.Switch", "Switching to "+it.name+".")
	}
	ss.status("status", "NetStream.Play.Start", "Started playing "+it.name+".")
	ss.setPlaying(true)
	var ended bool
	if live {
		ended = ss.playLive(it, stopped)
	} else {
		ended = ss.playFile(f, it, stopped)
		f.Close()
	}
	if ss.ctx.Err() == nil {
		ss.status("status", "NetStream.Play.Stop", "Stopped playing "+it.name+".")
	}
	return ended
}

var errSelf = errors.New("a stream cannot play itself")

// choose applies FMS's start semantics: a recorded file, or the live
// stream of that name (which may not be published yet).
func (ss *srvStream) choose(it playItem) (*session.StreamFile, bool, error) {
	in := ss.a.in
	mode := session.PlayStartMode(it.start) // -1000/-2000 as -1/-2
	recordedOnly := mode == session.StartRecorded || strings.HasPrefix(it.name, "mp4:")
	liveOnly := !recordedOnly && mode == session.StartLiveOnly
	live := liveOnly || !recordedOnly && in.LiveNow(it.name)
	if !live {
		f, err := in.OpenStreamFile(it.name)
		switch {
		case err == nil:
			return f, false, nil
		case recordedOnly:
			if errors.Is(err, session.ErrNotFound) {
				err = errors.New("stream not found")
			}
			return nil, false, err
		}
		// -2 with no file: wait for a publisher (live).
	}
	if it.name == ss.name {
		return nil, false, errSelf
	}
	return nil, true, nil
}

// setDataFrame prefixes an onMetaData body so that players joining later
// get it too.
var setDataFrame = []byte{0x02, 0x00, 0x0d, '@', 's', 'e', 't', 'D', 'a', 't', 'a', 'F', 'r', 'a', 'm', 'e'}

func metaFrame(body []byte) []byte {
	return append(append(make([]byte, 0, len(setDataFrame)+len(body)), setDataFrame...), body...)
}

// playFile plays a recorded file from the item's start, paced by the wall
// clock from where the timeline is.
func (ss *srvStream) playFile(f *session.StreamFile, it playItem, stopped <-chan struct{}) bool {
	startMs := int64(0)
	if it.start > 0 {
		startMs = int64(it.start * 1000)
	}
	fileTs, prelude, err := f.SeekTo(startMs)
	if err != nil {
		ss.a.log.Warn("server-side stream item failed", "stream", ss.name, "item", it.name, "err", err)
		return true
	}
	single := it.length == 0
	hasEnd := it.length > 0
	endMs := startMs + int64(it.length*1000)
	hasVideo := f.HasVideo()

	ss.wmu.Lock()
	base := ss.nextBaseLocked()
	for _, t := range prelude {
		if t.Type == flv.TagScript {
			ss.writeLocked(message.TypeDataAMF0, base, metaFrame(t.Data))
		} else {
			ss.writeLocked(t.Type, base, t.Data)
		}
	}
	ss.wmu.Unlock()

	anchor := time.Now()
	started := false
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		select {
		case <-stopped:
			return false
		case <-ss.ctx.Done():
			return false
		default:
		}
		t, err := f.Next()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				ss.a.log.Warn("server-side stream item ends early", "stream", ss.name, "item", it.name, "err", err)
			}
			return true
		}
		typ := t.Type
		switch typ {
		case flv.TagScript:
			if name, _, ok := message.DataName(t.Data); !ok || name == "onMetaData" {
				continue // the file's metadata went first
			}
			typ = message.TypeDataAMF0
		case flv.TagVideo:
			vi, ok := message.ParseVideo(t.Data)
			if !ok {
				continue
			}
			if !started && !vi.SequenceHeader && !vi.Metadata {
				// Begin on a keyframe so that the first pictures decode.
				if !vi.Keyframe || vi.Command {
					continue
				}
				started = true
			}
		case flv.TagAudio:
		default:
			continue
		}
		media := typ == message.TypeAudio || typ == message.TypeVideo
		if media && hasEnd && int64(t.Timestamp) >= endMs {
			return true
		}
		rel := max(int64(t.Timestamp)-fileTs, 0)
		if d := time.Until(anchor.Add(time.Duration(rel) * time.Millisecond)); d > 0 {
			timer.Reset(d)
			select {
			case <-timer.C:
			case <-stopped:
				return false
			case <-ss.ctx.Done():
				return false
			}
		}
		data := append([]byte(nil), t.Data...)
		ss.wmu.Lock()
		ss.writeLocked(typ, base+uint32(rel), data)
		ss.wmu.Unlock()
		if single && media && (typ == message.TypeVideo && started || !hasVideo) {
			return true
		}
	}
}

// liveFeed is a live item being played: the core's server-side player
// hands it what it plays (deliver, on a goroutine of the core).
type liveFeed struct {
	ss     *srvStream
	single bool

	// guarded by ss.wmu
	based bool
	base  uint32

	once    sync.Once
	ended   chan struct{} // the live stream was unpublished (or one frame played)
	media   chan struct{} // the first audio or video arrived
	onceMed sync.Once
}

func (lf *liveFeed) end() { lf.once.Do(func() { close(lf.ended) }) }

// playLive plays a live stream of the instance until it is unpublished,
// until length seconds after its first media, or until the playlist is
// reset or stopped.
func (ss *srvStream) playLive(it playItem, stopped <-chan struct{}) bool {
	lf := &liveFeed{ss: ss, single: it.length == 0, ended: make(chan struct{}), media: make(chan struct{})}
	ss.wmu.Lock()
	ss.live = lf
	ss.wmu.Unlock()
	sp := ss.a.in.PlayServer(it.name, lf.deliver)
	defer func() {
		ss.wmu.Lock()
		ss.live = nil
		ss.wmu.Unlock()
		sp.Close()
	}()
	var limit <-chan time.Time
	media := lf.media
	for {
		select {
		case <-stopped:
			return false
		case <-ss.ctx.Done():
			return false
		case <-lf.ended:
			return true
		case <-limit:
			return true
		case <-media:
			media = nil
			if it.length > 0 {
				t := time.NewTimer(time.Duration(it.length * float64(time.Second)))
				defer t.Stop() //nolint:revive // runs once: media is nil from here on
				limit = t.C
			}
		}
	}
}

// deliver takes what the server-side player plays: media and data go to
// the stream on its timeline, publish events to the script.
func (lf *liveFeed) deliver(msgs []message.Message) {
	ss := lf.ss
	for i := range msgs {
		m := &msgs[i]
		switch m.Type {
		case message.TypeAudio, message.TypeVideo:
			lf.write(m.Type, m.Timestamp, m.Payload)
		case message.TypeDataAMF0, message.TypeDataAMF3:
			body := m.Payload
			if m.Type == message.TypeDataAMF3 {
				body = message.AMF3Body(body)
			}
			name, _, ok := message.DataName(body)
			switch {
			case !ok, name == "|RtmpSampleAccess", name == "onStatus":
			case name == "onMetaData":
				lf.write(message.TypeDataAMF0, m.Timestamp, metaFrame(body))
			default:
				lf.write(message.TypeDataAMF0, m.Timestamp, body)
			}
		case message.TypeCommandAMF0, message.TypeCommandAMF3:
			cmd, err := message.DecodeCommand(m)
			if err != nil || cmd.Name != "onStatus" {
				continue
			}
			info, _ := cmd.Arg(0).(amf.Object)
			code, _ := info.GetString("code")
			desc, _ := info.GetString("description")
			switch code {
			case "NetStream.Play.PublishNotify":
				ss.postStatus("status", code, desc)
			case "NetStream.Play.UnpublishNotify":
				ss.postStatus("status", code, desc)
				lf.end()
			}
		}
	}
}

func (lf *liveFeed) write(typ message.Type, ts uint32, payload []byte) {
	ss := lf.ss
	ss.wmu.Lock()
	if ss.live != lf {
		ss.wmu.Unlock()
		return // the item has ended
	}
	if !lf.based {
		lf.base, lf.based = ss.nextBaseLocked(), true
	}
	ss.writeLocked(typ, lf.base+ts, payload)
	ss.wmu.Unlock()
	if typ == message.TypeAudio || typ == message.TypeVideo {
		lf.onceMed.Do(func() { close(lf.media) })
		if lf.single && typ == message.TypeVideo {
			if vi, ok := message.ParseVideo(payload); ok && vi.Keyframe && !vi.SequenceHeader {
				lf.end()
			}
		}
	}
}
