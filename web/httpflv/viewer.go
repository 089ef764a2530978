// Package httpflv serves a live stream as one FLV byte stream: HTTP-FLV
// (a GET answered with an endless video/x-flv body) and WebSocket-FLV (the
// same bytes in binary frames), what mpegts.js, ffmpeg and VLC play.
//
// A Viewer is a live.Reader over its own bounded outbound queue
// (session/outqueue), like an RTMP player: it gets the join burst
// (metadata, sequence headers, the cached group of pictures) and then the
// stream, and a viewer that does not keep up skips to the next keyframe
// under the same rule. Like an RTMP client it holds no goroutine while
// nothing waits to be written: on plain TCP the publisher's goroutine
// writes its tags with one non-blocking writev, and a writer goroutine is
// started only for what the socket does not take at once (or, without a
// non-blocking path, for each batch). A viewer ends when its stream does,
// when a write fails or stalls, or when it is stopped.
package httpflv

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rtmphub/rtmphub/flv"
	"github.com/rtmphub/rtmphub/internal/sockio"
	"github.com/rtmphub/rtmphub/rtmp/message"
	"github.com/rtmphub/rtmphub/session/live"
	"github.com/rtmphub/rtmphub/session/outqueue"
)

// Errors a viewer ends with.
var (
	// ErrUnpublished: the stream ended (its publisher left for good).
	ErrUnpublished = errors.New("httpflv: stream unpublished")
	// ErrTooSlow: the viewer let more than the queue's hard bound of
	// messages that cannot be skipped pile up.
	ErrTooSlow = errors.New("httpflv: viewer too slow")
)

// Sink is where a viewer's FLV goes: one call per batch of tags, bounded
// by the deadline: a viewer whose connection takes nothing for the stall
// timeout is dropped (while it only reads slowly, the queue's bounds skip
// it to the next keyframe instead).
type Sink interface {
	WriteFLV(p []byte, deadline time.Time) error
}

// Inline is a Sink that can also write without blocking (a plain TCP
// socket). The publisher's goroutine then writes the viewer's tags itself
// when it flushes the viewer, as it does for an RTMP player, with one
// non-blocking writev of the tag headers and the shared payloads, and the
// viewer's goroutine is woken only to finish what the socket did not take.
type Inline interface {
	Sink
	// TryWritev writes bufs, in order, with one system call that never
	// waits, and returns the bytes the socket took.
	TryWritev(bufs [][]byte) (int, error)
}

// keptBuffer is the largest write buffer a viewer keeps between writes.
const keptBuffer = 8 << 10

// Viewer is one HTTP-FLV or WebSocket-FLV viewer of a live stream.
type Viewer struct {
	sub   live.Subscription // first: the stream reaches it for every packet, then q
	q     outqueue.Queue
	proto string
	sink  Sink
	stall time.Duration
	ended func(error)

	// The inline writer (Inline): set by the first writer once the FLV
	// header is out. Its scratch (iov, hdrs), buf and pending, the bytes
	// of a batch the socket did not take, belong to whoever holds the
	// queue's writer hold.
	inline  atomic.Pointer[inlineSink]
	iov     [][]byte
	hdrs    []byte
	pending []byte
	buf     []byte // a writer goroutine's batches
	started bool   // the FLV header is written

	once  sync.Once
	done  chan struct{} // closed when the viewer ended
	mu    sync.Mutex
	err   error // why it ended
	bytes atomic.Uint64
}

// New returns a viewer writing to s, whose queue has lim's bounds (an
// RTMP player's), dropped when a write makes no progress for stall.
// ended, when not nil, is called once, on a goroutine of its own, when
// the viewer ends; the caller then detaches it from its stream and closes
// its connection. Attach the viewer to its stream after New: writing
// starts with the join burst.
func New(lim outqueue.Limits, stall time.Duration, s Sink, ended func(error)) *Viewer {
	v := &Viewer{sink: s, stall: stall, ended: ended, done: make(chan struct{}), proto: "http-flv"}
	v.q.Init(lim, v.wake)
	return v
}

// Subscription is the viewer's own subscription, unused until the
// viewer is attached with it (session.Viewer: Watch attaches it so, and
// the stream's per-packet work stays in the viewer's memory).
func (v *Viewer) Subscription() *live.Subscription { return &v.sub }

// Protocol is what views count the viewer under: "http-flv", or what
// SetProtocol set.
func (v *Viewer) Protocol() string { return v.proto }

// SetProtocol names the viewer's protocol ("ws-flv"), before it is
// attached.
func (v *Viewer) SetProtocol(p string) { v.proto = p }

// wake starts a writer goroutine, which holds the queue until it is
// empty (outqueue's wake: it runs with the queue locked and must not
// block).
func (v *Viewer) wake() { go v.drain() }

// Done is closed when the viewer has ended; Err then says why.
func (v *Viewer) Done() <-chan struct{} { return v.done }

// Err is why the viewer ended (nil before).
func (v *Viewer) Err() error {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.err
}

// Stop ends the viewer with why (once; later calls do nothing).
func (v *Viewer) Stop(why error) { v.end(why) }

// end ends the viewer with why, once. It may run with the stream locked
// (Notify): the rest is left to ended's own goroutine.
func (v *Viewer) end(why error) {
	v.once.Do(func() {
		v.mu.Lock()
		v.err = why
		v.mu.Unlock()
		v.q.Close()
		close(v.done)
		if v.ended != nil {
			go v.ended(why)
		}
	})
}

func message1(pkt *live.Packet, ts uint32) message.Message {
	return message.Message{Type: pkt.Type, Timestamp: ts, Payload: pkt.Payload}
}

// Send, Queue, Flush and Notify make the viewer a live.Reader.

func (v *Viewer) Send(pkt *live.Packet, ts uint32) {
	if err := v.q.Send(message1(pkt, ts)); err != nil {
		v.end(fmt.Errorf("%w: %w", ErrTooSlow, err))
	}
}

func (v *Viewer) Queue(pkt *live.Packet, ts uint32, force bool) bool {
	return v.q.QueueMedia(message1(pkt, ts), force)
}

func (v *Viewer) Flush() {
	in := v.inline.Load()
	if in == nil {
		v.q.Kick()
		return
	}
	batch := v.q.TakeInline()
	if batch == nil {
		return // Run holds the queue, or nothing waits
	}
	unfinished, err := v.tryWrite(in.Inline, batch)
	if err != nil {
		v.q.Release()
		v.end(err)
		return
	}
	if v.q.DoneInline(batch, unfinished) {
		go v.drain() // it keeps the hold: the rest of the batch, then what came meanwhile
	}
}

type inlineSink struct{ Inline }

// tryWrite writes batch as FLV tags with one non-blocking writev, the
// payloads straight from the stream, and keeps what the socket did not
// take in v.pending (unfinished).
func (v *Viewer) tryWrite(in Inline, batch []message.Message) (unfinished bool, err error) {
	// Room for every tag's head up front: the iovecs point into hdrs, so
	// it must not move while it grows.
	const head = flv.TagHeaderSize + 4
	hdrs := slices.Grow(v.hdrs[:0], head*len(batch))
	iov := v.iov[:0]
	total := 0
	for i := range batch {
		m := &batch[i]
		if !flvType(m.Type) || len(m.Payload) > flv.MaxDataSize {
			continue
		}
		at := len(hdrs)
		hdrs = appendTagHead(hdrs, m)
		iov = append(iov, hdrs[at:at+flv.TagHeaderSize], m.Payload, hdrs[at+flv.TagHeaderSize:at+head])
		total += head + len(m.Payload)
	}
	v.hdrs, v.iov = hdrs, iov
	defer clear(v.iov) // no payload references kept
	if total == 0 {
		return false, nil
	}
	n, err := in.TryWritev(iov)
	if err != nil {
		return false, err
	}
	v.addBytes(n)
	if n == total {
		return false, nil
	}
	v.pending = sockio.AppendUnwritten(v.pending, iov, n)
	return true, nil
}

// appendTagHead appends the tag header of m and, after it, its
// PreviousTagSize.
func appendTagHead(b []byte, m *message.Message) []byte {
	n := len(m.Payload)
	ts := m.Timestamp
	return append(b, byte(m.Type), byte(n>>16), byte(n>>8), byte(n),
		byte(ts>>16), byte(ts>>8), byte(ts), byte(ts>>24), 0, 0, 0,
		byte((n+flv.TagHeaderSize)>>24), byte((n+flv.TagHeaderSize)>>16), byte((n+flv.TagHeaderSize)>>8), byte(n+flv.TagHeaderSize))
}

// flvType reports whether messages of type t have an FLV tag.
func flvType(t message.Type) bool {
	return t == message.TypeAudio || t == message.TypeVideo || t == message.TypeDataAMF0
}

func (v *Viewer) Notify(ev live.Event) {
	if ev == live.Unpublished {
		v.end(ErrUnpublished)
	}
}

// Bytes returns the bytes written to the viewer so far.
func (v *Viewer) Bytes() uint64 { return v.bytes.Load() }

func (v *Viewer) addBytes(n int) { v.bytes.Add(uint64(n)) }

// Run ends the viewer when ctx does, and returns why the viewer ended
// (for a caller that serves it on a goroutine of its own, a WebSocket's).
func (v *Viewer) Run(ctx context.Context) error {
	select {
	case <-ctx.Done():
		v.end(context.Cause(ctx))
	case <-v.done:
	}
	return v.Err()
}

// drain is a writer goroutine: it holds the queue's writer hold, writes
// the rest of a batch the publisher's goroutine could not finish, then
// what waits, until nothing does. The first writer writes the FLV header
// and the join burst, then lets the publisher's goroutine write (Inline).
func (v *Viewer) drain() {
	if len(v.pending) > 0 {
		err := v.sink.WriteFLV(v.pending, time.Now().Add(v.stall))
		if err != nil {
			v.q.Release()
			v.end(err)
			return
		}
		v.addBytes(len(v.pending))
		if cap(v.pending) > keptBuffer {
			v.pending = nil
		} else {
			v.pending = v.pending[:0]
		}
	}
	var batch []message.Message
	for {
		batch, _ = v.q.Next(batch)
		if batch == nil {
			return
		}
		if err := v.write(batch, v.sink); err != nil {
			v.q.Release()
			v.end(err)
			return
		}
		if in, ok := v.sink.(Inline); ok && v.inline.Load() == nil {
			v.inline.Store(&inlineSink{in})
		}
	}
}

// write encodes batch as FLV tags, after the file header on the first
// call, and writes them in one piece.
func (v *Viewer) write(batch []message.Message, s Sink) error {
	b := v.buf[:0]
	if !v.started {
		v.started = true
		b = flv.AppendHeader(b, header(batch))
	}
	for i := range batch {
		m := &batch[i]
		if !flvType(m.Type) {
			continue // AMF3 data and commands have no FLV tag
		}
		var err error
		if b, err = flv.AppendTag(b, &flv.Tag{Type: m.Type, Timestamp: m.Timestamp, Data: m.Payload}); err != nil {
			continue // larger than a tag can be: cannot come from RTMP's 24-bit lengths
		}
	}
	// A large batch (the join burst) is not kept: on plain TCP the
	// publisher's goroutine writes from then on, and the buffer would
	// stay with the viewer for as long as it watches.
	if cap(b) > keptBuffer {
		v.buf = nil
	} else {
		v.buf = b
	}
	if len(b) == 0 {
		return nil
	}
	if err := s.WriteFLV(b, time.Now().Add(v.stall)); err != nil {
		return err
	}
	v.addBytes(len(b))
	return nil
}

// header is the FLV header of a stream whose first batch is batch: the
// join burst, which starts with the sequence headers of the tracks the
// stream has. A stream not yet started claims both.
func header(batch []message.Message) flv.Header {
	h := flv.Header{Version: 1}
	for i := range batch {
		switch batch[i].Type {
		case message.TypeAudio:
			h.HasAudio = true
		case message.TypeVideo:
			h.HasVideo = true
		}
	}
	if !h.HasAudio && !h.HasVideo {
		h.HasAudio, h.HasVideo = true, true
	}
	return h
}
