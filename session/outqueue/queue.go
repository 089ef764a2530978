// Package outqueue is the bounded outbound queue of a client of the core:
// the messages waiting for its writer, in the order they are to be
// written.
//
// Three kinds of producer share a queue: messages that must never be
// dropped (commands, statuses, control; Send), live media that a full
// queue refuses so that the player skips to the next keyframe (QueueMedia),
// and recorded media whose producer waits for room instead (SendWait). One
// writer at a time takes everything queued as one batch (TakeInline or
// Next), so that messages close in time leave in one write. The queue
// owns its state behind its own lock and tells its owner to start a
// writer through the wake callback; it never starts goroutines or writes
// itself.
package outqueue

import (
	"errors"
	"fmt"
	"sync"

	"github.com/rtmphub/rtmphub/rtmp/message"
)

// Limits bound a queue.
type Limits struct {
	// Media is the most messages queued that QueueMedia still adds to, and
	// the most SendWait waits under.
	Media int
	// MediaBytes is the most payload bytes queued that QueueMedia and
	// SendWait still add to.
	MediaBytes int
	// Hard is how many messages beyond Media Send accepts: a client that
	// lets more pile up is not reading.
	Hard int
	// KeepBatch is the largest batch (in messages) whose memory the queue
	// keeps for the next one; 0: DefaultKeepBatch. A player whose media
	// waits for a merged-write window gets a window's messages per batch,
	// and would otherwise allocate a batch per write.
	KeepBatch int
}

// ErrOverflow is what Send returns (wrapped, with the count) when the
// queue holds more than Media+Hard messages.
var ErrOverflow = errors.New("outbound queue overflow")

// DefaultKeepBatch is the largest batch (in messages) kept for reuse by
// default; a join burst grows one past it, and that memory is given back.
const DefaultKeepBatch = 16

// Queue is an outbound queue. Its zero value is not usable; see New.
type Queue struct {
	lim  Limits
	wake func()

	mu         sync.Mutex
	msgs       []message.Message
	bytes      int               // payload bytes in msgs
	spare      []message.Message // an empty batch to swap in
	writing    bool              // a writer holds the queue
	closed     bool              // nothing more is queued or written
	room       chan struct{}     // closed when a batch is taken (see SendWait)
	closeAfter bool              // close once everything is written
	closeWhy   error
}

// New makes a queue bounded by lim. wake is called when messages wait and
// no writer holds the queue: it starts a writer, which takes batches with
// Next until it returns none. wake runs with the queue locked, so that it
// is ordered with Close (an owner that waits for its writers after Close
// never misses one): it must start the writer and return, never call the
// queue.
func New(lim Limits, wake func()) *Queue {
	q := new(Queue)
	q.Init(lim, wake)
	return q
}

// Init makes q, which must be unused, a queue bounded by lim (see New),
// for a queue that is a field of its owner: a publisher reaches every
// player's queue for every message, and one object less per player
// keeps them closer in the cache (see live.Stream.Attach).
func (q *Queue) Init(lim Limits, wake func()) {
	if lim.KeepBatch <= 0 {
		lim.KeepBatch = DefaultKeepBatch
	}
	q.lim, q.wake = lim, wake
}

// Send queues messages that must not be dropped and wakes the writer. It
// returns an error wrapping ErrOverflow, and queues nothing, when the
// queue is full beyond its hard bound; messages sent to a closed queue
// are dropped silently.
func (q *Queue) Send(msgs ...message.Message) error {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return nil
	}
	if n := len(q.msgs); n+len(msgs) > q.lim.Media+q.lim.Hard {
		q.mu.Unlock()
		return fmt.Errorf("%w (%d messages)", ErrOverflow, n)
	}
	q.appendLocked(msgs)
	q.wakeLocked()
	q.mu.Unlock()
	return nil
}

// QueueMedia queues a live media message unless the queue is full (in
// messages or in payload bytes) or closed, and reports whether it did;
// force queues it regardless of the bounds (a join burst, which its own
// cache bound limits). It does not wake the writer: the caller decides
// when (Kick, or a writer of its own through TakeInline), so that
// messages close in time share one write.
func (q *Queue) QueueMedia(m message.Message, force bool) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed || !force && (len(q.msgs) >= q.lim.Media || q.bytes+len(m.Payload) > q.lim.MediaBytes) {
		return false
	}
	q.msgs = append(q.msgs, m)
	q.bytes += len(m.Payload)
	return true
}

// SendWait queues msgs once the queue holds fewer than limit messages (at
// most Limits.Media) and fewer than MediaBytes payload bytes, waiting for
// the writer to take a batch while it does not; it never drops. It
// returns false, queueing nothing, when the queue is closed or stop is.
func (q *Queue) SendWait(msgs []message.Message, limit int, stop <-chan struct{}) bool {
	limit = min(limit, q.lim.Media)
	for {
		q.mu.Lock()
		if q.closed {
			q.mu.Unlock()
			return false
		}
		if len(q.msgs) < limit && q.bytes < q.lim.MediaBytes {
			q.appendLocked(msgs)
			q.wakeLocked()
			q.mu.Unlock()
			return true
		}
		if q.room == nil {
			q.room = make(chan struct{})
		}
		room := q.room
		q.wakeLocked()
		q.mu.Unlock()
		select {
		case <-room:
		case <-stop:
			return false
		}
	}
}

// Kick wakes the writer when messages wait and none holds the queue.
func (q *Queue) Kick() {
	q.mu.Lock()
	q.wakeLocked()
	q.mu.Unlock()
}

// TakeInline takes the queued messages for a writer that writes them on
// the caller's goroutine, and makes it the queue's writer; it returns nil
// when another writer holds the queue, or nothing waits. After writing,
// the caller hands the batch back with DoneInline (or, when the write
// failed, calls Release).
func (q *Queue) TakeInline() []message.Message {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.writing || q.closed || len(q.msgs) == 0 {
		return nil
	}
	q.writing = true
	return q.takeLocked()
}

// DoneInline ends an inline write of written, whose memory the queue
// keeps for a later batch. It reports true, and the caller must start a
// writer (which takes batches with Next) that keeps the hold, when
// messages were queued meanwhile or when unfinished says that the
// transport still holds bytes of the batch to write; otherwise the queue
// has no writer any more. One lock for both: a publisher does this for
// every player after every video frame.
func (q *Queue) DoneInline(written []message.Message, unfinished bool) (more bool) {
	clear(written) // drop payload references
	q.mu.Lock()
	defer q.mu.Unlock()
	q.keepLocked(written)
	if unfinished || len(q.msgs) > 0 && !q.closed {
		return true
	}
	q.writing = false
	return false
}

// Next takes back written, the writer's last batch (nil for none), and
// gives the writer everything queued since as one batch. When nothing is
// left (or the queue is closed) it returns nil and the writer must stop:
// the queue has no writer any more. closeWhy is set when everything is
// written and CloseWhenWritten asked for the connection to close then.
func (q *Queue) Next(written []message.Message) (batch []message.Message, closeWhy error) {
	clear(written)
	q.mu.Lock()
	defer q.mu.Unlock()
	q.keepLocked(written)
	if len(q.msgs) == 0 || q.closed {
		q.writing = false
		if q.closeAfter && !q.closed {
			return nil, q.closeWhy
		}
		return nil, nil
	}
	return q.takeLocked(), nil
}

// Release gives up the writer's hold after a failed write.
func (q *Queue) Release() {
	q.mu.Lock()
	q.writing = false
	q.mu.Unlock()
}

// keepLocked keeps a written batch's memory for the next one, unless a
// burst made it large.
func (q *Queue) keepLocked(batch []message.Message) {
	if batch != nil && cap(batch) <= q.lim.KeepBatch {
		q.spare = batch[:0]
	}
}

// CloseWhenWritten asks the writer to report why (see Next) once
// everything queued is written. It reports whether that is already the
// case (nothing queued, no writer), and the caller must then close now.
func (q *Queue) CloseWhenWritten(why error) (written bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.closeAfter, q.closeWhy = true, why
	return !q.writing && len(q.msgs) == 0
}

// Close drops what is queued and refuses more; writers waiting in
// SendWait return false.
func (q *Queue) Close() {
	q.mu.Lock()
	q.closed = true
	clear(q.msgs) // drop payload references
	q.msgs, q.bytes = q.msgs[:0], 0
	q.wakeRoomLocked()
	q.mu.Unlock()
}

// Closed reports whether Close was called.
func (q *Queue) Closed() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.closed
}

// Len returns the messages and payload bytes queued.
func (q *Queue) Len() (msgs, bytes int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.msgs), q.bytes
}

func (q *Queue) appendLocked(msgs []message.Message) {
	q.msgs = append(q.msgs, msgs...)
	for i := range msgs {
		q.bytes += len(msgs[i].Payload)
	}
}

// wakeLocked wakes a writer when messages wait and none holds the queue.
func (q *Queue) wakeLocked() {
	if q.writing || q.closed || len(q.msgs) == 0 {
		return
	}
	q.writing = true
	q.wake()
}

func (q *Queue) takeLocked() []message.Message {
	batch := q.msgs
	q.msgs, q.spare, q.bytes = q.spare, nil, 0
	q.wakeRoomLocked()
	return batch
}

// wakeRoomLocked tells producers waiting in SendWait that the queue has
// room (or is closed).
func (q *Queue) wakeRoomLocked() {
	if q.room != nil {
		close(q.room)
		q.room = nil
	}
}
