package outqueue

import (
	"errors"
	"testing"
	"testing/synctest"

	"github.com/rtmphub/rtmphub/rtmp/message"
)

func msg(n int) message.Message {
	return message.Message{Type: message.TypeVideo, Payload: make([]byte, n)}
}

// wakes counts the calls of a queue's wake callback.
type wakes struct{ n int }

func (w *wakes) fn() { w.n++ }

func TestQueueMediaBoundsInMessagesAndBytes(t *testing.T) {
	var w wakes
	q := New(Limits{Media: 4, MediaBytes: 1000, Hard: 8}, w.fn)
	cases := []struct {
		name  string
		msg   message.Message
		force bool
		want  bool
	}{
		{"first", msg(400), false, true},
		{"second", msg(400), false, true},
		{"over the byte bound", msg(400), false, false},
		{"small one fits", msg(100), false, true},
		{"join burst ignores bounds", msg(5000), true, true},
		{"message bound", msg(1), false, false},
	}
	for _, tc := range cases {
		if got := q.QueueMedia(tc.msg, tc.force); got != tc.want {
			n, b := q.Len()
			t.Fatalf("%s: queued %v, want %v (queue %d messages, %d bytes)", tc.name, got, tc.want, n, b)
		}
	}
	if w.n != 0 {
		t.Fatalf("QueueMedia woke the writer %d times; the caller decides when", w.n)
	}
	q.Kick()
	if w.n != 1 {
		t.Fatalf("Kick woke the writer %d times, want 1", w.n)
	}
	batch, _ := q.Next(nil)
	if len(batch) != 4 {
		t.Fatalf("the writer took %d messages, want the 4 queued", len(batch))
	}
	if n, b := q.Len(); n != 0 || b != 0 {
		t.Fatalf("after a take: %d messages, %d bytes", n, b)
	}
	if !q.QueueMedia(msg(900), false) {
		t.Fatal("an emptied queue refused a message")
	}
}

func TestSendWakesOneWriterUntilItStops(t *testing.T) {
	var w wakes
	q := New(Limits{Media: 4, MediaBytes: 1000, Hard: 8}, w.fn)
	for range 3 {
		if err := q.Send(msg(10)); err != nil {
			t.Fatal(err)
		}
	}
	if w.n != 1 {
		t.Fatalf("three sends woke %d writers, want 1 (it holds the queue until Next returns nothing)", w.n)
	}
	if batch, _ := q.Next(nil); len(batch) != 3 {
		t.Fatalf("the writer took %d messages, want 3 in one batch", len(batch))
	}
	if err := q.Send(msg(10)); err != nil || w.n != 1 {
		t.Fatalf("a send while the writer runs: err %v, %d wakes (want none new)", err, w.n)
	}
	if batch, _ := q.Next(nil); len(batch) != 1 {
		t.Fatalf("took %d, want 1", len(batch))
	}
	if batch, why := q.Next(nil); batch != nil || why != nil {
		t.Fatalf("an empty queue gave %d messages, close reason %v", len(batch), why)
	}
	if err := q.Send(msg(10)); err != nil || w.n != 2 {
		t.Fatalf("a send after the writer stopped: err %v, %d wakes (want 2)", err, w.n)
	}
}

func TestSendOverflowsBeyondTheHardBound(t *testing.T) {
	var w wakes
	q := New(Limits{Media: 2, MediaBytes: 1 << 20, Hard: 3}, w.fn)
	for i := range 5 {
		if err := q.Send(msg(1)); err != nil {
			t.Fatalf("send %d of 5 (the bound): %v", i+1, err)
		}
	}
	err := q.Send(msg(1), msg(1))
	if !errors.Is(err, ErrOverflow) {
		t.Fatalf("send beyond Media+Hard: %v, want ErrOverflow", err)
	}
	if n, _ := q.Len(); n != 5 {
		t.Fatalf("an overflowing send queued something: %d messages", n)
	}
}

func TestInlineWriterAndDrainShareOneHold(t *testing.T) {
	var w wakes
	q := New(Limits{Media: 8, MediaBytes: 1 << 20, Hard: 8}, w.fn)
	q.QueueMedia(msg(1), false)
	batch := q.TakeInline()
	if len(batch) != 1 {
		t.Fatalf("inline take got %d, want 1", len(batch))
	}
	q.QueueMedia(msg(1), false)
	if again := q.TakeInline(); again != nil {
		t.Fatal("a second inline writer got a batch while the first holds the queue")
	}
	if err := q.Send(msg(1)); err != nil || w.n != 0 {
		t.Fatalf("send during an inline write: err %v, %d wakes (the inline writer holds the queue)", err, w.n)
	}
	if !q.DoneInline(batch, false) {
		t.Fatal("DoneInline reported nothing to write with 2 messages queued meanwhile")
	}
	if b, _ := q.Next(nil); len(b) != 2 {
		t.Fatalf("the writer started after DoneInline took %d, want 2", len(b))
	}
	if b, _ := q.Next(nil); b != nil {
		t.Fatal("Next gave a batch of an empty queue")
	}
	q.QueueMedia(msg(1), false)
	b := q.TakeInline()
	if len(b) != 1 {
		t.Fatal("the hold was not given back when the writer stopped")
	}
	if q.DoneInline(b, false) {
		t.Fatal("DoneInline asked for a writer with nothing queued")
	}
	q.QueueMedia(msg(1), false)
	b = q.TakeInline()
	if !q.DoneInline(b, true) {
		t.Fatal("DoneInline with bytes left in the transport did not ask for a writer")
	}
	q.QueueMedia(msg(1), false)
	if again := q.TakeInline(); again != nil {
		t.Fatal("an inline writer got a batch while the writer finishing the transport's bytes holds the queue")
	}
	if b2, _ := q.Next(nil); len(b2) != 1 {
		t.Fatalf("the writer finishing the transport's bytes then took %d, want 1", len(b2))
	}
	q.Next(nil)
	q.QueueMedia(msg(1), false)
	b = q.TakeInline()
	q.Release() // a failed write
	q.QueueMedia(msg(1), false)
	if b2 := q.TakeInline(); len(b) != 1 || len(b2) != 1 {
		t.Fatal("Release did not give the hold back")
	}
}

func TestWrittenBatchesAreReusedUnlessLarge(t *testing.T) {
	q := New(Limits{Media: 64, MediaBytes: 1 << 20, Hard: 8}, func() {})
	q.QueueMedia(msg(1), false)
	small, _ := q.Next(nil)
	q.QueueMedia(msg(1), false)
	next, _ := q.Next(small) // small is kept for the messages queued after this take
	q.QueueMedia(msg(1), false)
	if b, _ := q.Next(next); &b[:1][0] != &small[:1][0] {
		t.Error("a small batch's memory was not reused")
	}
	for range DefaultKeepBatch + 1 {
		q.QueueMedia(msg(1), true)
	}
	big, _ := q.Next(nil)
	q.QueueMedia(msg(1), false)
	next, _ = q.Next(big)
	q.QueueMedia(msg(1), false)
	if b, _ := q.Next(next); &b[:1][0] == &big[:1][0] {
		t.Error("a batch grown by a burst was kept")
	}
	for i := range big[:cap(big)] {
		if big[:cap(big)][i].Payload != nil {
			t.Fatal("a handed-back batch still references a payload")
		}
	}
	q.QueueMedia(msg(1), false)
	inline := q.TakeInline()
	q.DoneInline(inline, false)
	if inline[:1][0].Payload != nil {
		t.Fatal("DoneInline left a payload referenced")
	}
}

func TestSendWaitWaitsForTheWriter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var w wakes
		q := New(Limits{Media: 2, MediaBytes: 1 << 20, Hard: 8}, w.fn)
		q.QueueMedia(msg(1), false)
		q.QueueMedia(msg(1), false)
		done := make(chan bool)
		go func() { done <- q.SendWait([]message.Message{msg(1), msg(1)}, 64, nil) }()
		synctest.Wait()
		select {
		case <-done:
			t.Fatal("SendWait queued into a full queue")
		default:
		}
		if w.n != 1 {
			t.Fatalf("a waiting producer woke %d writers, want 1", w.n)
		}
		if b, _ := q.Next(nil); len(b) != 2 {
			t.Fatalf("took %d, want 2", len(b))
		}
		synctest.Wait()
		select {
		case ok := <-done:
			if !ok {
				t.Fatal("SendWait failed on an open queue")
			}
		default:
			t.Fatal("SendWait still waits after the writer took a batch")
		}
		if n, _ := q.Len(); n != 2 {
			t.Fatalf("%d messages queued, want the 2 sent", n)
		}
	})
}

func TestSendWaitEndsOnStopAndClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := New(Limits{Media: 1, MediaBytes: 1 << 20, Hard: 8}, func() {})
		q.QueueMedia(msg(1), false)
		stop := make(chan struct{})
		res := make(chan bool, 2)
		go func() { res <- q.SendWait([]message.Message{msg(1)}, 64, stop) }()
		go func() { res <- q.SendWait([]message.Message{msg(1)}, 64, nil) }()
		synctest.Wait()
		close(stop)
		synctest.Wait()
		if ok := <-res; ok {
			t.Fatal("SendWait queued after its stop closed")
		}
		q.Close()
		synctest.Wait()
		if ok := <-res; ok {
			t.Fatal("SendWait queued into a closed queue")
		}
	})
}

func TestCloseWhenWritten(t *testing.T) {
	why := errors.New("connection rejected")
	q := New(Limits{Media: 4, MediaBytes: 1 << 20, Hard: 8}, func() {})
	if !q.CloseWhenWritten(why) {
		t.Fatal("an empty queue with no writer is not written")
	}

	q = New(Limits{Media: 4, MediaBytes: 1 << 20, Hard: 8}, func() {})
	if err := q.Send(msg(1)); err != nil {
		t.Fatal(err)
	}
	if q.CloseWhenWritten(why) {
		t.Fatal("a queue holding a message reported written")
	}
	if b, w := q.Next(nil); len(b) != 1 || w != nil {
		t.Fatalf("first batch: %d messages, reason %v", len(b), w)
	}
	if b, w := q.Next(nil); b != nil || !errors.Is(w, why) {
		t.Fatalf("after the last batch: %d messages, reason %v, want %v", len(b), w, why)
	}
}

func TestClosedQueueTakesNothing(t *testing.T) {
	var w wakes
	q := New(Limits{Media: 4, MediaBytes: 1 << 20, Hard: 8}, w.fn)
	q.QueueMedia(msg(1), false)
	q.Close()
	if !q.Closed() {
		t.Fatal("Closed is false after Close")
	}
	if err := q.Send(msg(1)); err != nil {
		t.Fatalf("send to a closed queue: %v (dropped silently)", err)
	}
	if q.QueueMedia(msg(1), true) {
		t.Fatal("a closed queue took media")
	}
	if b, _ := q.Next(nil); b != nil {
		t.Fatal("a closed queue gave a batch")
	}
	if n, b := q.Len(); n != 0 || b != 0 || w.n != 0 {
		t.Fatalf("closed queue: %d messages, %d bytes, %d wakes", n, b, w.n)
	}
}
