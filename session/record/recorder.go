// Package record records live streams to FLV files: a Recorder is a
// reader of a live stream (live.Reader) that writes what it reads to a
// file of the vod.Store, on a goroutine of its own.
package record

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rtmphub/rtmphub/flv"
	"github.com/rtmphub/rtmphub/rtmp/amf"
	"github.com/rtmphub/rtmphub/rtmp/message"
	"github.com/rtmphub/rtmphub/session/live"
	"github.com/rtmphub/rtmphub/session/vod"
)

// Recording: publish type "record" writes the stream to
// <DataDir>/<app>/streams/<instance>/<name>.flv, replacing the file;
// "append" continues it, its timestamps following the file's: after its
// last decode and presentation times, also when a kill cut it (see
// flv.Writer.Base). The recorder reads the stream as its players do, from
// the moment it starts (metadata and sequence headers first, video from
// the next keyframe), and only queues what it reads (bounded in bytes); a
// goroutine per recording writes it, so a slow disk never stalls the
// publisher or its players. When the disk
// cannot keep up and the queue overflows, or a write fails (disk full),
// the recording stops with NetStream.Record.Failed and live streaming goes
// on. The file plays while it is being recorded (players follow its end).

const (
	// recordOverhead is what a queued message costs beyond its payload.
	recordOverhead = 64
	// recordStopWait bounds how long an unpublish waits for its recording
	// to write what is queued and close the file.
	recordStopWait = 5 * time.Second
	// recordBusyWait bounds how long a recording waits for an earlier one
	// of the same file to finish.
	recordBusyWait = 5 * time.Second
)

// Config describes a recording.
type Config struct {
	Store               *vod.Store
	App, Instance, Name string // the file is under the instance's streams folder
	Append              bool   // continue the file rather than replace it
	// QueueBytes bounds what waits for the disk; more fails the recording.
	QueueBytes int
	// Status tells the publisher (NetStream.Record.*, level "status" or
	// "error"); it must not block for long.
	Status func(level, code, desc string)
	Log    *slog.Logger
	// Open opens the file; nil is vod.OpenWriter.
	Open func(path string, appendTo bool, hasAudio, hasVideo bool, meta amf.ECMAArray) (vod.TagWriter, error)
}

// Status levels of the statuses a recorder tells.
const (
	levelStatus = "status"
	levelError  = "error"
)

// Recorder records one live stream: a client's publication (publish with
// record or append) or a script's server-side stream (Stream.record).
type Recorder struct {
	ms        *vod.Store
	app, inst string
	name      string
	file      string
	appendTo  bool
	limit     int
	status    func(level, code, desc string)
	log       *slog.Logger
	open      func(path string, appendTo bool, hasAudio, hasVideo bool, meta amf.ECMAArray) (vod.TagWriter, error)
	sub       *live.Subscription

	mu     sync.Mutex
	queue  []message.Message
	bytes  int
	closed bool // no more input
	wake   chan struct{}
	done   chan struct{}

	failed atomic.Bool
	path   string // real path, once prepared (goroutine)
	tags   int
	wrote  int64
}

// Start starts recording st: the recorder reads it from now on. It is
// refused (and told so through Status) when the name is not an FLV file.
// The owner calls it as it calls live.Stream.AddReader.
func Start(st *live.Stream, cfg Config) *Recorder {
	file, kind := vod.FileName(cfg.Name)
	r := &Recorder{ms: cfg.Store, open: cfg.Open, app: cfg.App, inst: cfg.Instance, name: cfg.Name, file: file,
		appendTo: cfg.Append, limit: cfg.QueueBytes, status: cfg.Status, log: cfg.Log,
		wake: make(chan struct{}, 1), done: make(chan struct{})}
	if r.open == nil {
		r.open = vod.OpenWriter
	}
	if kind != vod.FLV {
		r.fail("NetStream.Record.NoAccess", "Recording to MP4 is not supported.", nil)
		close(r.done)
		return r
	}
	go r.run()
	r.sub = st.AddReader(r, live.ReaderOptions{Log: r.log, NoBurst: true})
	return r
}

// Failed reports whether the recording failed (or was refused).
func (r *Recorder) Failed() bool { return r.failed.Load() }

// Send, Queue, Flush and Notify make the recorder a live.Reader.

// Send queues metadata, a sequence header or a data message.
func (r *Recorder) Send(pkt *live.Packet, ts uint32) { r.push(pkt, ts) }

// Queue queues audio or video. It never refuses: a recording that cannot
// keep up fails as a whole (push) rather than skip frames.
func (r *Recorder) Queue(pkt *live.Packet, ts uint32, _ bool) bool {
	r.push(pkt, ts)
	return true
}

// Flush does nothing: push wakes the writer.
func (r *Recorder) Flush() {}

// Notify does nothing: the recording ends with its publication (Stop).
func (r *Recorder) Notify(live.Event) {}

// push queues a packet of the stream; it never blocks.
func (r *Recorder) push(pkt *live.Packet, ts uint32) {
	if r.failed.Load() {
		return
	}
	n := len(pkt.Payload) + recordOverhead
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return
	}
	if r.bytes+n > r.limit {
		clear(r.queue)
		r.queue, r.bytes, r.closed = nil, 0, true
		r.mu.Unlock()
		r.fail("NetStream.Record.Failed", "Recording stopped: the disk is too slow.",
			fmt.Errorf("record queue overflow: more than %d bytes waiting for the disk", r.limit))
		r.signal()
		return
	}
	r.queue = append(r.queue, message.Message{Type: pkt.Type, Timestamp: ts, Payload: pkt.Payload})
	r.bytes += n
	r.mu.Unlock()
	r.signal()
}

func (r *Recorder) signal() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// fail stops the recording once, telling the publisher with code.
func (r *Recorder) fail(code, desc string, err error) {
	if !r.failed.CompareAndSwap(false, true) {
		return
	}
	r.status(levelError, code, desc)
	attrs := []any{"stream", r.name, "file", r.file, "code", code}
	if err != nil {
		attrs = append(attrs, "err", err.Error())
	}
	r.log.Warn("recording failed", attrs...)
}

// Stop ends the recording: it reads no more of the stream, what is queued
// is written and the file closed (waiting up to recordStopWait), then,
// when graceful and nothing failed, the publisher gets
// NetStream.Record.Stop.
func (r *Recorder) Stop(graceful bool) {
	if r.sub != nil {
		r.sub.Close()
	}
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	r.signal()
	t := time.NewTimer(recordStopWait)
	defer t.Stop()
	select {
	case <-r.done:
	case <-t.C:
		r.log.Warn("recording still writing after it stopped; it finishes in the background", "stream", r.name, "file", r.file)
	}
	if graceful && !r.failed.Load() {
		r.status(levelStatus, "NetStream.Record.Stop", "Stopped recording "+r.name+".")
	}
}

func (r *Recorder) run() {
	defer close(r.done)
	path, err := r.ms.PrepareRecording(r.app, r.inst, r.file)
	if err != nil {
		r.fail("NetStream.Record.NoAccess", "No access to record "+r.name+".", err)
		r.drop()
		return
	}
	release, ok := r.ms.Register(path, recordBusyWait)
	if !ok {
		r.fail("NetStream.Record.NoAccess", "The file of "+r.name+" is being recorded.", errors.New("an earlier recording of the file is still writing"))
		r.drop()
		return
	}
	r.path = path
	defer release()

	if r.failed.Load() {
		// The queue overflowed while the file was being prepared: the
		// publisher was told NetStream.Record.Failed, and no Start after it.
		r.drop()
		return
	}
	var w vod.TagWriter
	if r.appendTo {
		if fi, err := os.Stat(path); err == nil && fi.Size() > 0 {
			if w, err = r.open(path, true, true, true, nil); err != nil {
				r.fail("NetStream.Record.Failed", "Cannot append to "+r.name+".", err)
				r.drop()
				return
			}
		}
	}
	r.status(levelStatus, "NetStream.Record.Start", "Recording "+r.name+".")
	r.log.Info("record start", "stream", r.name, "file", path, "append", r.appendTo)
	started := time.Now()
	rw := recordWriter{r: r, w: w}
	defer func() {
		if err := rw.close(); err != nil {
			r.fail("NetStream.Record.Failed", "Recording of "+r.name+" failed.", err)
		}
		r.log.Info("record stop", "stream", r.name, "file", path, "tags", r.tags, "bytes", r.wrote,
			"duration", time.Since(started).Round(time.Millisecond).String(), "failed", r.failed.Load())
	}()
	var batch []message.Message
	for {
		r.mu.Lock()
		batch, r.queue = r.queue, batch[:0]
		r.bytes = 0
		closed := r.closed
		r.mu.Unlock()
		for i := range batch {
			if r.failed.Load() {
				break
			}
			if err := rw.write(&batch[i]); err != nil {
				r.fail("NetStream.Record.Failed", "Recording of "+r.name+" failed.", err)
			}
		}
		clear(batch)
		if r.failed.Load() {
			r.drop()
			return
		}
		if closed && len(batch) == 0 {
			return
		}
		if len(batch) == 0 {
			<-r.wake
		}
	}
}

// drop discards the queue and refuses more input.
func (r *Recorder) drop() {
	r.mu.Lock()
	clear(r.queue)
	r.queue, r.bytes, r.closed = nil, 0, true
	r.mu.Unlock()
}

// recordWriter turns what the recorder read into tags. The stream hands
// a reader data messages in AMF0, with @setDataFrame already turned into
// onMetaData and @clearDataFrame kept to itself, and timestamps on the
// reader's own timeline, which starts at 0.
type recordWriter struct {
	r    *Recorder
	w    vod.TagWriter
	meta amf.ECMAArray
}

func (rw *recordWriter) write(m *message.Message) error {
	r := rw.r
	typ, data := m.Type, m.Payload
	if typ == message.TypeDataAMF0 {
		typ = flv.TagScript
		name, _, ok := message.DataName(data)
		if !ok {
			return nil
		}
		switch name {
		case "onMetaData":
			if rw.w == nil && rw.meta == nil {
				if md, err := flv.ParseMetadata(data); err == nil {
					switch x := md.Raw.(type) {
					case amf.ECMAArray:
						rw.meta = x
					case amf.Object:
						rw.meta = amf.ECMAArray(x)
					}
				}
			}
			return nil // the file's onMetaData is the writer's
		case "|RtmpSampleAccess":
			return nil
		}
	} else if len(data) == 0 {
		return nil
	}
	if rw.w == nil {
		if err := rw.create(); err != nil {
			return err
		}
	}
	if err := rw.w.WriteTag(typ, m.Timestamp, data); err != nil {
		return err
	}
	r.tags++
	r.wrote += int64(len(data))
	return nil
}

// create starts the file with the metadata the publisher sent first.
func (rw *recordWriter) create() error {
	hasAudio, hasVideo := true, true
	if rw.meta != nil {
		_, v := rw.meta.Get("videocodecid")
		_, a := rw.meta.Get("audiocodecid")
		if a || v {
			hasAudio, hasVideo = a, v
		}
	}
	w, err := rw.r.open(rw.r.path, false, hasAudio, hasVideo, rw.meta)
	if err != nil {
		return err
	}
	rw.w = w
	return nil
}

// close finishes the file; a recording that got no media still replaces
// the file with an empty recording.
func (rw *recordWriter) close() error {
	if rw.w == nil {
		if rw.r.failed.Load() {
			return nil
		}
		if err := rw.create(); err != nil {
			return err
		}
	}
	return rw.w.Close()
}
