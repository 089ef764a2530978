package session

import (
	"errors"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/rtmphub/rtmphub/flv"
	"github.com/rtmphub/rtmphub/rtmp/message"
	"github.com/rtmphub/rtmphub/session/live"
	"github.com/rtmphub/rtmphub/session/outqueue"
	"github.com/rtmphub/rtmphub/session/vod"
)

// What server-side streams (a script's Stream) need from the core besides
// ServerPublisher (script_hook.go): recorded files to read, live streams
// of the instance to play, and a recording of what they publish. Nothing
// here changes how clients publish, play or record.

// --- recorded files ---

// StreamFile is a recorded stream file (FLV, or MP4 through the core's
// MP4 reader) opened for a server-side stream: its tags in FLV form.
type StreamFile struct {
	src vod.Source
}

// OpenStreamFile opens the file a play name names ("name", "flv:name",
// "mp4:name.mp4") in the instance's streams folder. Every failure to find
// one is ErrNotFound; a file that cannot be read is another error.
func (in *Instance) OpenStreamFile(name string) (*StreamFile, error) {
	f, err := in.srv.media.Find(in.app, in.name, name)
	if err != nil {
		return nil, ErrNotFound
	}
	src, err := in.srv.media.Open(f)
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
	ts, needSeq, err := f.src.SeekKeyframe(ms)
	if err != nil {
		return 0, nil, err
	}
	fi := f.src.Info()
	if fi.Meta != nil {
		prelude = append(prelude, &flv.Tag{Type: flv.TagScript, Data: fi.Meta})
	}
	if needSeq {
		prelude = append(prelude, fi.Seq...)
	}
	return ts, prelude, nil
}

// Next returns the next tag; io.EOF at the end of the file. A tag's Data
// is only valid until the next call.
func (f *StreamFile) Next() (*flv.Tag, error) {
	t, err := f.src.Next()
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, io.EOF // a file still being written: what is there
	}
	if err != nil {
		return nil, err
	}
	return t, nil
}

// Duration is the file's duration.
func (f *StreamFile) Duration() time.Duration { return f.src.Info().Duration }

// HasVideo reports whether the file has video.
func (f *StreamFile) HasVideo() bool { return f.src.Info().HasVideo() }

// Close closes the file.
func (f *StreamFile) Close() { f.src.Close() }

// LiveNow reports whether live stream name of the instance has a
// publisher (or one that vanished and may come back).
func (in *Instance) LiveNow(name string) bool { return in.liveNow(name) }

// --- playing a live stream from the server side ---

// ServerPlayer plays a live stream of an instance for the server itself
// (a script's Stream playing a live item): it is a reader of the stream
// like a client's player, with a queue of its own of the same bounds, so
// it gets what a client player gets, in the same order and with the same
// policy (start at a keyframe, the cached group of pictures on joining,
// skip to the next keyframe when it falls behind).
type ServerPlayer struct {
	id      uint64 // the clientid of its statuses
	name    string
	deliver func(msgs []message.Message)
	log     *slog.Logger
	q       *outqueue.Queue
	sub     *live.Subscription
	once    sync.Once
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
	sp := &ServerPlayer{id: in.srv.nextID.Add(1), name: name, deliver: deliver,
		log: in.srv.log.With("app", in.app, "instance", in.name, "server_player", name)}
	sp.q = outqueue.New(in.srv.cfg.queueLimits(), func() { go sp.drain() })
	in.withStream(name, func(st *live.Stream) {
		sp.sub = st.AddReader(sp, live.ReaderOptions{Log: sp.log})
	})
	return sp
}

// drain hands what is queued to deliver until nothing is left.
func (sp *ServerPlayer) drain() {
	var batch []message.Message
	for {
		if batch, _ = sp.q.Next(batch); batch == nil {
			return
		}
		sp.deliver(batch)
	}
}

// Send, Queue, Flush and Notify make the player a live.Reader.

func (sp *ServerPlayer) Send(pkt *live.Packet, ts uint32) {
	sp.send(streamMessage(serverPlayerMsid, pkt, ts))
}

func (sp *ServerPlayer) send(m message.Message) {
	if err := sp.q.Send(m); err != nil {
		sp.log.Warn("server-side player stopped: deliver too slow", "err", err.Error())
		sp.q.Close()
	}
}

func (sp *ServerPlayer) Queue(pkt *live.Packet, ts uint32, force bool) bool {
	return sp.q.QueueMedia(streamMessage(serverPlayerMsid, pkt, ts), force)
}

func (sp *ServerPlayer) Flush() { sp.q.Kick() }

func (sp *ServerPlayer) Notify(ev live.Event) {
	code, desc := notifyStatus(ev, sp.name)
	m, err := statusMessage(serverPlayerMsid, false, levelStatus, code, desc, sp.name, sp.id)
	if err != nil {
		sp.log.Error("encoding status", "err", err)
		return
	}
	sp.send(m)
}

// Close detaches the player. deliver may still be running (or run once
// more) while Close returns; it is never called after the batch under way.
func (sp *ServerPlayer) Close() {
	sp.once.Do(func() {
		sp.q.Close()
		sp.sub.Close()
	})
}

// --- recording what a server-side stream publishes ---

// StatusFunc is told of a server-side stream's status events (level
// "status", "warning" or "error", and an FMS code). It is called from a
// goroutine of the core and must not block for long.
type StatusFunc func(level, code, description string)

// Record starts recording what sp publishes to the stream's file
// (<name>.flv in the instance's streams folder), replacing it, or
// continuing it when appendTo. A recording under way is stopped first.
// Status events (NetStream.Record.Start, Stop, NoAccess, Failed) go to
// status. The recording starts with the stream's metadata and sequence
// headers, and its video at the next keyframe.
func (sp *ServerPublisher) Record(appendTo bool, status StatusFunc) {
	sp.StopRecord()
	in, st := sp.in, sp.p.Stream()
	sr := in.startRecording(st, st.Name(), appendTo, status,
		in.srv.log.With("app", in.app, "instance", in.name, "server_stream", st.Name()))
	if sr.Failed() {
		return
	}
	sp.mu.Lock()
	sp.rec = sr
	sp.mu.Unlock()
}

// StopRecord stops the recording, if any: what is queued is written and
// the file closed in the background, then NetStream.Record.Stop is told.
func (sp *ServerPublisher) StopRecord() {
	sp.mu.Lock()
	sr := sp.rec
	sp.rec = nil
	sp.mu.Unlock()
	if sr != nil {
		go sr.Stop(true)
	}
}

// Recording reports whether a recording is under way.
func (sp *ServerPublisher) Recording() bool {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	return sp.rec != nil && !sp.rec.Failed()
}
