package session

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rtmphub/rtmphub/flv"
	"github.com/rtmphub/rtmphub/rtmp/message"
)

// What server-side streams (a script's Stream) need from the core besides
// ServerPublisher (script_hook.go): recorded files to read, live streams
// of the instance to play, and a recording of what they publish. Nothing
// here changes how clients publish, play or record.

// --- recorded files ---

// StreamFile is a recorded stream file (FLV, or MP4 through the core's
// MP4 reader) opened for a server-side stream: its tags in FLV form.
type StreamFile struct {
	src mediaSource
}

// OpenStreamFile opens the file a play name names ("name", "flv:name",
// "mp4:name.mp4") in the instance's streams folder. Every failure to find
// one is ErrNotFound; a file that cannot be read is another error.
func (in *Instance) OpenStreamFile(name string) (*StreamFile, error) {
	file, kind := fileName(name)
	rel, ok := streamRel(in.app, in.name, file)
	if !ok {
		return nil, ErrNotFound
	}
	real, err := in.srv.media.locate(rel)
	if err != nil {
		return nil, ErrNotFound
	}
	src, err := openSource(in.srv.media, real, kind)
	if err != nil {
		return nil, err
	}
	return &StreamFile{src: src}, nil
}

// SeekTo moves to the keyframe at or before ms (the start for ms <= 0) and
// returns its time in milliseconds and what must go before it: the file's
// onMetaData (a script tag), and the sequence headers when the file's own
// are not on the way.
func (f *StreamFile) SeekTo(ms int64) (ts int64, prelude []*flv.Tag, err error) {
	ts, needSeq, err := f.src.seek(ms)
	if err != nil {
		return 0, nil, err
	}
	fi := f.src.fileInfo()
	if fi.meta != nil {
		prelude = append(prelude, &flv.Tag{Type: flv.TagScript, Data: fi.meta})
	}
	if needSeq {
		prelude = append(prelude, fi.seq...)
	}
	return ts, prelude, nil
}

// Next returns the next tag; io.EOF at the end of the file. A tag's Data
// is only valid until the next call.
func (f *StreamFile) Next() (*flv.Tag, error) {
	t, err := f.src.next()
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, io.EOF // a file still being written: what is there
	}
	if err != nil {
		return nil, err
	}
	return t, nil
}

// Duration is the file's duration.
func (f *StreamFile) Duration() time.Duration { return f.src.fileInfo().duration }

// HasVideo reports whether the file has video.
func (f *StreamFile) HasVideo() bool { return f.src.fileInfo().hasVideo() }

// Close closes the file.
func (f *StreamFile) Close() { f.src.close() }

// LiveNow reports whether live stream name of the instance has a
// publisher (or one that vanished and may come back).
func (in *Instance) LiveNow(name string) bool { return in.liveNow(name) }

// --- playing a live stream from the server side ---

// ServerPlayer plays a live stream of an instance for the server itself
// (a script's Stream playing a live item): it is a player of the stream
// like a client's, on a connection that never leaves the process, so it
// gets what a client player gets, in the same order and with the same
// policy (start at a keyframe, the cached group of pictures on joining,
// skip to the next keyframe when it falls behind).
type ServerPlayer struct {
	c    *Client
	st   *Stream
	pl   *player
	once sync.Once
}

// serverPlayerMsid is the message stream a server-side player uses.
const serverPlayerMsid = 1

// PlayServer attaches a server-side player to live stream name, which
// need not be published yet (the player then waits for a publisher, as a
// client's does). deliver gets what a client's player would receive on
// its stream, in order, from one goroutine of the core at a time: onStatus
// commands (PublishNotify, UnpublishNotify), data messages (onMetaData),
// audio and video, timestamps starting at 0 where the player started.
// deliver must not block for long, and must copy the slice (not the
// payloads, which are shared and read-only) to keep messages.
func (in *Instance) PlayServer(name string, deliver func(msgs []message.Message)) *ServerPlayer {
	t := &loopback{deliver: deliver}
	log := in.srv.log.With("app", in.app, "instance", in.name, "server_player", name)
	c := newClient(in.srv, t, ConnInfo{Protocol: "server", RemoteIP: "127.0.0.1"}, log)
	c.app = in.app
	sp := &ServerPlayer{c: c}
	in.withStream(name, func(st *Stream) {
		sp.st = st
		sp.pl = st.addPlayer(c, serverPlayerMsid, func() {})
	})
	return sp
}

// Close detaches the player. deliver may still be running (or run once
// more) while Close returns; it is never called after the batch under way.
func (sp *ServerPlayer) Close() {
	sp.once.Do(func() {
		sp.c.close(errors.New("server-side player closed"))
		sp.st.removePlayer(sp.pl)
	})
}

// loopback is the transport of a server-side player: written messages go
// to a function.
type loopback struct {
	deliver func([]message.Message)
	closed  atomic.Bool
	written atomic.Uint64
}

func (l *loopback) ReadMessage() (*message.Message, error) { return nil, net.ErrClosed }

func (l *loopback) WriteMessages(msgs []message.Message) error {
	if l.closed.Load() {
		return net.ErrClosed
	}
	l.deliver(msgs)
	var n uint64
	for i := range msgs {
		n += uint64(len(msgs[i].Payload))
	}
	l.written.Add(n)
	return nil
}

func (l *loopback) SetReadDeadline(time.Time) error { return nil }
func (l *loopback) SetWriteTimeout(time.Duration)   {}
func (l *loopback) Close() error                    { l.closed.Store(true); return nil }
func (l *loopback) RemoteAddr() net.Addr            { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)} }
func (l *loopback) BytesRead() uint64               { return 0 }
func (l *loopback) BytesWritten() uint64            { return l.written.Load() }

// --- recording what a server-side stream publishes ---

// StatusFunc is told of a server-side stream's status events (level
// "status", "warning" or "error", and an FMS code). It is called from a
// goroutine of the core and must not block for long.
type StatusFunc func(level, code, description string)

// serverRecording records a ServerPublisher's stream into the instance's
// streams folder as a client's recording does (record.go): a bounded
// queue, and a goroutine that writes it. Its recorder holds the queue, is
// the file's entry in the table of recordings and counts what was
// written; its client is nil, so none of the client recorder's methods
// are used on it.
type serverRecording struct {
	r       *recorder
	app     string
	inst    string
	log     *slog.Logger
	status  StatusFunc
	waitKey bool // guarded by r.mu: video waits for a keyframe
}

// Record starts recording what sp publishes to the stream's file
// (<name>.flv in the instance's streams folder), replacing it, or
// continuing it when appendTo. A recording under way is stopped first.
// Status events (NetStream.Record.Start, Stop, NoAccess, Failed) go to
// status. The recording starts with the stream's metadata and sequence
// headers, and its video at the next keyframe.
func (sp *ServerPublisher) Record(appendTo bool, status StatusFunc) {
	sp.StopRecord()
	st := sp.p.stream
	in := st.in
	file, kind := fileName(st.name)
	r := &recorder{ms: in.srv.media, name: st.name, file: file, appendTo: appendTo,
		limit: in.srv.cfg.RecordQueueBytes, wake: make(chan struct{}, 1), done: make(chan struct{})}
	sr := &serverRecording{r: r, app: in.app, inst: in.name, status: status, waitKey: true,
		log: in.srv.log.With("app", in.app, "instance", in.name, "server_stream", st.name)}
	if kind != kindFLV {
		sr.fail("NetStream.Record.NoAccess", "Recording to MP4 is not supported.", nil)
		close(r.done)
		return
	}
	sp.mu.Lock()
	defer sp.mu.Unlock()
	// What players joining now would get first, at the current time, so
	// that the file decodes from its start.
	st.mu.Lock()
	var prelude []*Packet
	if st.pub == sp.p {
		if st.meta != nil {
			prelude = append(prelude, st.meta)
		}
		for _, p := range st.videoSeq {
			prelude = append(prelude, p)
		}
		for _, p := range st.audioSeq {
			prelude = append(prelude, p)
		}
	}
	st.mu.Unlock()
	for _, p := range prelude {
		sr.push(&message.Message{Type: p.Type, Timestamp: sp.lastTs, Payload: p.Payload})
	}
	sp.rec = sr
	go sr.run()
}

// StopRecord stops the recording, if any: what is queued is written and
// the file closed in the background, then NetStream.Record.Stop is told.
func (sp *ServerPublisher) StopRecord() {
	sp.mu.Lock()
	sr := sp.rec
	sp.rec = nil
	sp.mu.Unlock()
	if sr != nil {
		go sr.stop()
	}
}

// Recording reports whether a recording is under way.
func (sp *ServerPublisher) Recording() bool {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	return sp.rec != nil && !sp.rec.r.failed.Load()
}

func (sr *serverRecording) push(m *message.Message) {
	r := sr.r
	if r.failed.Load() {
		return
	}
	switch m.Type {
	case message.TypeVideo:
		vi, ok := message.ParseVideo(m.Payload)
		if !ok {
			return
		}
		r.mu.Lock()
		if sr.waitKey && !vi.SequenceHeader && !vi.Metadata {
			if !vi.Keyframe || vi.Command {
				r.mu.Unlock()
				return
			}
			sr.waitKey = false
		}
		r.mu.Unlock()
	case message.TypeAudio, message.TypeDataAMF0, message.TypeDataAMF3:
	default:
		return
	}
	n := len(m.Payload) + recordOverhead
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return
	}
	if r.bytes+n > r.limit {
		clear(r.queue)
		r.queue, r.bytes, r.closed = nil, 0, true
		r.mu.Unlock()
		sr.fail("NetStream.Record.Failed", "Recording stopped: the disk is too slow.",
			fmt.Errorf("record queue overflow: more than %d bytes waiting for the disk", r.limit))
		r.signal()
		return
	}
	r.queue = append(r.queue, *m)
	r.bytes += n
	r.mu.Unlock()
	r.signal()
}

func (sr *serverRecording) fail(code, desc string, err error) {
	if !sr.r.failed.CompareAndSwap(false, true) {
		return
	}
	sr.status(levelError, code, desc)
	attrs := []any{"stream", sr.r.name, "file", sr.r.file, "code", code}
	if err != nil {
		attrs = append(attrs, "err", err.Error())
	}
	sr.log.Warn("recording failed", attrs...)
}

func (sr *serverRecording) stop() {
	r := sr.r
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	r.signal()
	t := time.NewTimer(recordStopWait)
	defer t.Stop()
	select {
	case <-r.done:
	case <-t.C:
		sr.log.Warn("recording still writing after stop; it finishes in the background", "stream", r.name, "file", r.file)
	}
	if !r.failed.Load() {
		sr.status(levelStatus, "NetStream.Record.Stop", "Stopped recording "+r.name+".")
	}
}

// run writes the queue (see recorder.run, its twin for clients).
func (sr *serverRecording) run() {
	r := sr.r
	defer close(r.done)
	path, err := r.ms.prepareRecording(sr.app, sr.inst, r.file)
	if err != nil {
		sr.fail("NetStream.Record.NoAccess", "No access to record "+r.name+".", err)
		r.drop()
		return
	}
	if !r.ms.register(path, r) {
		sr.fail("NetStream.Record.NoAccess", "The file of "+r.name+" is being recorded.", errors.New("an earlier recording of the file is still writing"))
		r.drop()
		return
	}
	r.path = path
	defer r.ms.unregister(path, r)

	var w tagWriter
	if r.appendTo {
		if fi, err := os.Stat(path); err == nil && fi.Size() > 0 {
			if w, err = r.ms.openWriter(path, true, true, true, nil); err != nil {
				sr.fail("NetStream.Record.Failed", "Cannot append to "+r.name+".", err)
				r.drop()
				return
			}
		}
	}
	sr.status(levelStatus, "NetStream.Record.Start", "Recording "+r.name+".")
	sr.log.Info("record start", "stream", r.name, "file", path, "append", r.appendTo)
	started := time.Now()
	rw := recordWriter{r: r, w: w}
	defer func() {
		if err := rw.close(); err != nil {
			sr.fail("NetStream.Record.Failed", "Recording of "+r.name+" failed.", err)
		}
		sr.log.Info("record stop", "stream", r.name, "file", path, "tags", r.tags, "bytes", r.wrote,
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
				sr.fail("NetStream.Record.Failed", "Recording of "+r.name+" failed.", err)
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
