// Package httpflv serves a live stream as one FLV byte stream: HTTP-FLV
// (a GET answered with an endless video/x-flv body) and WebSocket-FLV (the
// same bytes in binary frames), what mpegts.js, ffmpeg and VLC play.
//
// A Viewer is a live.Reader over its own bounded outbound queue
// (session/outqueue), like an RTMP player: it gets the join burst
// (metadata, sequence headers, the cached group of pictures) and then the
// stream, and a viewer that does not keep up skips to the next keyframe
// under the same rule. Its writer is the goroutine serving its request,
// woken when messages wait; it turns each batch into FLV tags and writes
// them in one piece.
package httpflv

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/rtmphub/rtmphub/flv"
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

// WriteTimeout bounds one write to a viewer: a viewer whose connection
// takes nothing for this long is dropped (while it only reads slowly, the
// queue's bounds skip it to the next keyframe instead).
const WriteTimeout = 15 * time.Second

// Sink is where a viewer's FLV goes: one call per batch of tags, bounded
// by the deadline.
type Sink interface {
	WriteFLV(p []byte, deadline time.Time) error
}

// Viewer is one HTTP-FLV or WebSocket-FLV viewer of a live stream.
type Viewer struct {
	q    outqueue.Queue
	wake chan struct{} // a batch waits; capacity 1

	once  sync.Once
	done  chan struct{} // closed when the viewer must end
	mu    sync.Mutex
	ended error // why, once done is closed

	buf     []byte
	started bool // the FLV header is written
	bytes   uint64
}

// New returns a viewer whose queue has the bounds of an RTMP player's.
func New(lim outqueue.Limits) *Viewer {
	v := &Viewer{wake: make(chan struct{}, 1), done: make(chan struct{})}
	v.q.Init(lim, v.kick)
	return v
}

// kick wakes the writer (outqueue's wake: it runs with the queue locked
// and must not block).
func (v *Viewer) kick() {
	select {
	case v.wake <- struct{}{}:
	default:
	}
}

// end makes the viewer stop with why, once.
func (v *Viewer) end(why error) {
	v.once.Do(func() {
		v.mu.Lock()
		v.ended = why
		v.mu.Unlock()
		close(v.done)
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

func (v *Viewer) Flush() { v.q.Kick() }

func (v *Viewer) Notify(ev live.Event) {
	if ev == live.Unpublished {
		v.end(ErrUnpublished)
	}
}

// Bytes returns the bytes written to the viewer so far.
func (v *Viewer) Bytes() uint64 {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.bytes
}

// Run writes the stream to s until ctx ends, the stream is unpublished,
// the viewer falls too far behind or a write fails, and returns why. It
// closes the viewer's queue; the caller detaches the viewer from its
// stream.
func (v *Viewer) Run(ctx context.Context, s Sink) error {
	defer v.q.Close()
	var batch []message.Message
	for {
		var stop bool
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-v.wake:
		case <-v.done:
			stop = true
		}
		// What was queued before the end is written first: Notify comes
		// after the stream's last packets.
		for {
			batch, _ = v.q.Next(batch)
			if batch == nil {
				break
			}
			if err := v.write(batch, s); err != nil {
				v.q.Release()
				return err
			}
		}
		if stop {
			v.mu.Lock()
			defer v.mu.Unlock()
			return v.ended
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
		switch m.Type {
		case message.TypeAudio, message.TypeVideo, message.TypeDataAMF0:
		default:
			continue // AMF3 data and commands have no FLV tag
		}
		var err error
		if b, err = flv.AppendTag(b, &flv.Tag{Type: m.Type, Timestamp: m.Timestamp, Data: m.Payload}); err != nil {
			continue // larger than a tag can be: cannot come from RTMP's 24-bit lengths
		}
	}
	if cap(b) > 4<<20 {
		v.buf = nil // a join burst made it large: give it back
	} else {
		v.buf = b
	}
	if len(b) == 0 {
		return nil
	}
	if err := s.WriteFLV(b, time.Now().Add(WriteTimeout)); err != nil {
		return err
	}
	v.mu.Lock()
	v.bytes += uint64(len(b))
	v.mu.Unlock()
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
