package script

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/dop251/goja"
	"github.com/rtmphub/rtmphub/flv"
	"github.com/rtmphub/rtmphub/rtmp/message"
	"github.com/rtmphub/rtmphub/session"
)

// Server-side streams: Stream.get(name) is a live stream of the instance
// that the script feeds with a playlist of recorded FLV files
// (<data>/<app>/streams/<instance>/<file>.flv), paced in real time, so
// that every player sees the same point of the playlist whenever it
// joins, as FMS's server-side playlists did. Each Stream has one
// goroutine reading files and publishing; its events reach the script as
// onStatus on the loop.

const maxStreams = 64 // per instance

type playItem struct {
	name          string
	path          string
	start, length float64 // seconds; length < 0: to the end
}

type srvStream struct {
	a    *App
	name string
	obj  *goja.Object
	pub  *session.ServerPublisher // loop goroutine sets it once

	mu    sync.Mutex
	items []playItem
	gen   uint64 // bumped by reset / stop: the current item ends
	wake  chan struct{}

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
}

func (a *App) setupStream() {
	vm := a.vm
	ctor := vm.Get("Stream").(*goja.Object)
	p := ctor.Get("prototype").(*goja.Object)
	_ = ctor.Set("get", func(name string) goja.Value {
		if st := a.streams[name]; st != nil {
			return st.obj
		}
		if name == "" || strings.ContainsAny(name, "/\\?") {
			panic(vm.NewTypeError("bad stream name"))
		}
		if len(a.streams) >= maxStreams {
			panic(vm.NewGoError(errors.New("too many server-side streams")))
		}
		ss := &srvStream{a: a, name: name, obj: vm.NewObject(), wake: make(chan struct{}, 1), done: make(chan struct{})}
		ss.ctx, ss.cancel = context.WithCancel(context.Background())
		_ = ss.obj.SetPrototype(p)
		_ = ss.obj.Set("name", name)
		a.streams[name] = ss
		a.streamByObj[ss.obj] = ss
		return ss.obj
	})
	self := func(this goja.Value) *srvStream {
		o, ok := this.(*goja.Object)
		if !ok || a.streamByObj[o] == nil {
			panic(vm.NewTypeError("not an open Stream"))
		}
		return a.streamByObj[o]
	}
	// play(name, start, length, reset): start in seconds (default 0;
	// live sources are not supported), length in seconds (-1: all),
	// reset (default true) replaces the playlist. play(false) stops.
	_ = p.Set("play", func(call goja.FunctionCall) goja.Value {
		ss := self(call.This)
		if b, ok := call.Argument(0).Export().(bool); ok && !b {
			ss.reset(nil)
			return vm.ToValue(true)
		}
		name := call.Argument(0).String()
		start, length := 0.0, -1.0
		if v := call.Argument(1); !goja.IsUndefined(v) {
			start = max(v.ToFloat(), 0)
		}
		if v := call.Argument(2); !goja.IsUndefined(v) {
			length = v.ToFloat()
		}
		reset := true
		if v := call.Argument(3); !goja.IsUndefined(v) {
			reset = v.ToBoolean()
		}
		file := strings.TrimPrefix(name, "flv:")
		if !strings.HasSuffix(file, ".flv") {
			file += ".flv"
		}
		path := filepath.Join(a.cfg.DataDir, a.in.App(), "streams", a.in.Name(), filepath.Clean("/"+file))
		it := playItem{name: name, path: path, start: start, length: length}
		if ss.pub == nil {
			pub, err := a.in.PublishServer(ss.name)
			if err != nil {
				panic(vm.NewGoError(err))
			}
			ss.pub = pub
			go ss.run()
		}
		if reset {
			ss.reset([]playItem{it})
		} else {
			ss.add(it)
		}
		return vm.ToValue(true)
	})
	_ = p.Set("close", func(call goja.FunctionCall) goja.Value {
		ss := self(call.This)
		a.closeStream(ss)
		return vm.ToValue(true)
	})
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

func (ss *srvStream) reset(items []playItem) {
	ss.mu.Lock()
	ss.items = items
	ss.gen++
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

func (ss *srvStream) next() (playItem, uint64, bool) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if len(ss.items) == 0 {
		return playItem{}, ss.gen, false
	}
	it := ss.items[0]
	ss.items = ss.items[1:]
	return it, ss.gen, true
}

func (ss *srvStream) current(gen uint64) bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.gen == gen
}

// status posts stream.onStatus({level, code, description, details}).
func (ss *srvStream) status(level, code, desc string) {
	a := ss.a
	err := a.l.postWait(func() {
		fn, ok := goja.AssertFunction(ss.obj.Get("onStatus"))
		if !ok {
			return
		}
		o := a.vm.NewObject()
		_ = o.Set("level", level)
		_ = o.Set("code", code)
		_ = o.Set("description", desc)
		_ = o.Set("details", ss.name)
		if _, err := fn(ss.obj, o); err != nil {
			a.scriptError("Stream.onStatus", err)
		}
	}, 5*time.Second)
	if err != nil {
		a.log.Warn("Stream.onStatus not run", "stream", ss.name, "code", code, "err", err)
	}
}

// run is the stream's publishing goroutine: items play one after the
// other on one timeline paced by the wall clock.
func (ss *srvStream) run() {
	defer close(ss.done)
	clock := time.Now() // wire time 0
	var wire uint32     // the next item starts here
	for {
		it, gen, ok := ss.next()
		if !ok {
			select {
			case <-ss.wake:
				continue
			case <-ss.ctx.Done():
				return
			}
		}
		// After an idle gap the timeline continues at the wall clock.
		if now := uint32(time.Since(clock).Milliseconds()); now > wire {
			wire = now
		}
		end, err := ss.playFile(it, gen, clock, wire)
		if err != nil {
			if ss.ctx.Err() != nil {
				return
			}
			ss.a.log.Warn("server-side stream item failed", "stream", ss.name, "item", it.name, "err", err)
			ss.status("error", "NetStream.Play.StreamNotFound", fmt.Sprintf("Failed to play %s; %v.", it.name, err))
			continue
		}
		wire = end + 1
		ss.status("status", "NetStream.Play.Stop", "Stopped playing "+it.name+".")
	}
}

// setDataFrame prefixes an onMetaData body so that players joining later
// get it too.
var setDataFrame = []byte{0x02, 0x00, 0x0d, '@', 's', 'e', 't', 'D', 'a', 't', 'a', 'F', 'r', 'a', 'm', 'e'}

// playFile publishes one item from wire time base; it returns the wire
// time of its last message.
func (ss *srvStream) playFile(it playItem, gen uint64, clock time.Time, base uint32) (uint32, error) {
	f, err := os.Open(it.path)
	if err != nil {
		return 0, errors.New("stream not found")
	}
	defer f.Close()
	r, err := flv.NewReader(f)
	if err != nil {
		return 0, err
	}
	ss.status("status", "NetStream.Play.Start", "Started playing "+it.name+".")
	startMs := uint32(it.start * 1000)
	endMs := uint32(0)
	if it.length >= 0 {
		endMs = startMs + uint32(it.length*1000)
	}
	last := base
	started := false
	var t flv.Tag
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		if !ss.current(gen) || ss.ctx.Err() != nil {
			return last, nil
		}
		if err := r.ReadTag(&t); err != nil {
			if errors.Is(err, io.EOF) {
				return last, nil
			}
			return last, err
		}
		if t.Type == message.TypeDataAMF0 {
			if name, _, ok := message.DataName(t.Data); ok && name == "onMetaData" {
				p := append(append([]byte(nil), setDataFrame...), t.Data...)
				_ = ss.pub.Write(&message.Message{Type: message.TypeDataAMF0, Timestamp: last, Payload: p})
			}
			continue
		}
		if t.Type != message.TypeVideo && t.Type != message.TypeAudio {
			continue
		}
		if t.Timestamp < startMs {
			continue
		}
		if !started && t.Type == message.TypeVideo {
			// Begin on a keyframe (or a sequence header) so that the
			// first pictures decode.
			if vi, ok := message.ParseVideo(t.Data); !ok || !(vi.Keyframe || vi.SequenceHeader) {
				continue
			}
		}
		started = true
		if endMs > 0 && t.Timestamp > endMs {
			return last, nil
		}
		ts := base + (t.Timestamp - startMs)
		if d := time.Until(clock.Add(time.Duration(ts) * time.Millisecond)); d > 0 {
			timer.Reset(d)
			select {
			case <-timer.C:
			case <-ss.wake:
				ss.signal() // for next(): keep the wake-up
				if !ss.current(gen) {
					return last, nil
				}
				if dd := time.Until(clock.Add(time.Duration(ts) * time.Millisecond)); dd > 0 {
					timer.Reset(dd)
					select {
					case <-timer.C:
					case <-ss.ctx.Done():
						return last, nil
					}
				}
			case <-ss.ctx.Done():
				return last, nil
			}
		}
		data := append([]byte(nil), t.Data...)
		if err := ss.pub.Write(&message.Message{Type: t.Type, Timestamp: ts, Payload: data}); err != nil {
			return last, err
		}
		last = ts
	}
}
