package chunk

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"testing"
	"testing/iotest"

	"github.com/rtmphub/rtmphub/rtmp/message"
)

// decodeAll reads messages from wire until an error.
func decodeAll(r io.Reader, maxMessageSize uint32) ([]*message.Message, *Reader, error) {
	cr := NewReader(r, maxMessageSize)
	var msgs []*message.Message
	for {
		m, err := cr.ReadMessage()
		if err != nil {
			return msgs, cr, err
		}
		msgs = append(msgs, m)
	}
}

// encodeAll writes msgs with a fresh Writer, following SetChunkSize
// messages as a sender does. flushEach flushes after every message.
func encodeAll(t testing.TB, msgs []*message.Message, flushEach bool) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := NewWriter(&buf)
	for _, m := range msgs {
		if err := w.Queue(m); err != nil {
			t.Fatalf("Queue(%v): %v", m, err)
		}
		if m.Type == message.TypeSetChunkSize && len(m.Payload) >= 4 {
			w.SetChunkSize(binary.BigEndian.Uint32(m.Payload))
		}
		if flushEach {
			if err := w.Flush(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if n := w.Buffered(); !flushEach && n != buf.Len() && buf.Len() != 0 {
		t.Fatalf("Buffered() = %d before Flush with %d bytes already written", n, buf.Len())
	}
	queued := w.Buffered()
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if !flushEach && queued != buf.Len() {
		t.Fatalf("Buffered() = %d, Flush wrote %d", queued, buf.Len())
	}
	if w.Buffered() != 0 {
		t.Fatalf("Buffered() = %d after Flush", w.Buffered())
	}
	return buf.Bytes()
}

func sameMessages(t testing.TB, got, want []*message.Message) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d messages, want %d:\n got %v\nwant %v", len(got), len(want), got, want)
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.Type != w.Type || g.StreamID != w.StreamID || g.Timestamp != w.Timestamp ||
			g.ChunkStreamID != w.ChunkStreamID || !bytes.Equal(g.Payload, w.Payload) {
			t.Fatalf("message %d:\n got %v ts=%#x payload %x\nwant %v ts=%#x payload %x",
				i, g, g.Timestamp, g.Payload, w, w.Timestamp, w.Payload)
		}
	}
}

func TestDecode(t *testing.T) {
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			readers := map[string]func([]byte) io.Reader{
				"whole":   func(b []byte) io.Reader { return bytes.NewReader(b) },
				"onebyte": func(b []byte) io.Reader { return iotest.OneByteReader(bytes.NewReader(b)) },
			}
			for rname, mk := range readers {
				msgs, r, err := decodeAll(mk(c.wire), c.maxMessageSize)
				sameMessages(t, msgs, c.msgs)
				want := c.err
				if want == nil {
					want = io.EOF
				}
				if !errors.Is(err, want) {
					t.Fatalf("%s: error %v, want %v", rname, err, want)
				}
				if c.err == nil && r.BytesRead() != uint64(len(c.wire)) {
					t.Fatalf("%s: BytesRead() = %d, want %d", rname, r.BytesRead(), len(c.wire))
				}
				if c.err != nil && c.err != io.ErrUnexpectedEOF {
					// Protocol and limit errors are sticky.
					if _, err2 := r.ReadMessage(); err2 != err {
						t.Fatalf("%s: second ReadMessage error %v, want %v again", rname, err2, err)
					}
				}
			}
		})
	}
}

func TestEncode(t *testing.T) {
	for _, c := range cases {
		if c.decodeOnly || c.err != nil {
			continue
		}
		t.Run(c.name, func(t *testing.T) {
			for _, flushEach := range []bool{false, true} {
				got := encodeAll(t, c.msgs, flushEach)
				if !bytes.Equal(got, c.wire) {
					t.Fatalf("flushEach=%v:\n got %x\nwant %x", flushEach, got, c.wire)
				}
			}
		})
	}
}

// TestRoundTrip decodes every row, encodes what decoded and decodes that
// again.
func TestRoundTrip(t *testing.T) {
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			checkRoundTrip(t, c.wire, c.maxMessageSize)
		})
	}
}

func checkRoundTrip(t testing.TB, wire []byte, maxMessageSize uint32) {
	t.Helper()
	msgs, _, _ := decodeAll(bytes.NewReader(wire), maxMessageSize)
	again := encodeAll(t, msgs, false)
	msgs2, r, err := decodeAll(bytes.NewReader(again), maxMessageSize)
	if err != io.EOF {
		t.Fatalf("decoding the re-encoded %d messages: %v\nwire %x", len(msgs), err, again)
	}
	if r.BytesRead() != uint64(len(again)) {
		t.Fatalf("BytesRead() = %d, want %d", r.BytesRead(), len(again))
	}
	sameMessages(t, msgs2, msgs)
}

func FuzzReader(f *testing.F) {
	for _, c := range cases {
		f.Add(c.wire)
	}
	f.Fuzz(func(t *testing.T, wire []byte) {
		_, r, err := decodeAll(bytes.NewReader(wire), 1<<12)
		checkInvariants(t, r)
		if err == io.EOF && r.BytesRead() != uint64(len(wire)) {
			t.Fatalf("io.EOF after %d of %d bytes", r.BytesRead(), len(wire))
		}
		checkRoundTrip(t, wire, 1<<16)
	})
}

// checkInvariants verifies the Reader's accounting of partial messages.
func checkInvariants(t testing.TB, r *Reader) {
	t.Helper()
	var partial uint64
	var ahead int
	for _, s := range r.streams {
		if s.active {
			partial += uint64(s.length)
			ahead += cap(s.buf) - len(s.buf)
			if uint32(cap(s.buf)) > s.length {
				t.Fatalf("chunk stream %d: buffer of %d for a %d-byte message", s.csid, cap(s.buf), s.length)
			}
		} else if s.buf != nil {
			t.Fatalf("chunk stream %d: idle with a buffer", s.csid)
		}
	}
	if partial != r.partial || ahead != r.ahead {
		t.Fatalf("partial %d (counted %d), ahead %d (counted %d)", r.partial, partial, r.ahead, ahead)
	}
	if partial > r.maxPartial || len(r.streams) > MaxChunkStreams {
		t.Fatalf("limits exceeded: partial %d, %d chunk streams", partial, len(r.streams))
	}
}

// TestLongStream runs interleaved audio and video with continuation chunks
// through 0xFFFFFF (4h40m) and the 32-bit wrap (49.7 days).
func TestLongStream(t *testing.T) {
	for _, start := range []uint32{0xFFFF00, 0xFFFFFF - 33*3, 0xFFFFFFFF - 2000} {
		for _, cs := range []uint32{128, 4096} {
			t.Run(fmt.Sprintf("start=%#x/chunk=%d", start, cs), func(t *testing.T) {
				var msgs []*message.Message
				if cs != DefaultChunkSize {
					msgs = append(msgs, setChunkSize(cs))
				}
				vts, ats := start, start
				for i := range 400 {
					if i%3 == 0 {
						msgs = append(msgs, msg(7, tVideo, 1, vts, pl(200+i*37%5000, byte(i))))
						vts += 33
					} else {
						msgs = append(msgs, msg(6, tAudio, 1, ats, pl(300, byte(i))))
						ats += 23
					}
				}
				wire := encodeAll(t, msgs, false)
				got, _, err := decodeAll(bytes.NewReader(wire), 0)
				if err != io.EOF {
					t.Fatal(err)
				}
				sameMessages(t, got, msgs)
				got, _, err = decodeAll(iotest.HalfReader(bytes.NewReader(wire)), 0)
				if err != io.EOF {
					t.Fatal(err)
				}
				sameMessages(t, got, msgs)
			})
		}
	}
}

// TestWriterExtendedEveryChunk: every continuation chunk of a message with
// an extended timestamp repeats it.
func TestWriterExtendedEveryChunk(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf)
	p := pl(1000, 3)
	if err := w.WriteMessage(msg(7, tVideo, 1, 0xABCDEF01, p)); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	if !bytes.Equal(b[:16], hx("07 ffffff 0003e8 09 01000000 abcdef01")) {
		t.Fatalf("header %x", b[:16])
	}
	b = b[16+128:]
	for len(b) > 0 {
		if !bytes.Equal(b[:5], hx("c7 abcdef01")) {
			t.Fatalf("continuation header %x", b[:5])
		}
		b = b[min(len(b), 5+128):]
	}
}

func TestWriterRejects(t *testing.T) {
	w := NewWriter(io.Discard)
	if err := w.Queue(msg(1, tCmd, 0, 0, nil)); err == nil {
		t.Error("chunk stream 1 accepted")
	}
	if err := w.Queue(msg(65600, tCmd, 0, 0, nil)); err == nil {
		t.Error("chunk stream 65600 accepted")
	}
	if err := w.Queue(msg(3, tCmd, 0, 0, make([]byte, MaxMessageSize+1))); err == nil {
		t.Error("oversized message accepted")
	}
	if w.Buffered() != 0 {
		t.Errorf("rejected messages queued %d bytes", w.Buffered())
	}
}

func TestWriterDefaultCSID(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf)
	m := &message.Message{Type: tVideo, StreamID: 1, Payload: pl(3, 0)}
	if err := w.WriteMessage(m); err != nil {
		t.Fatal(err)
	}
	if m.ChunkStreamID != 0 {
		t.Fatal("Queue modified the message")
	}
	got, _, _ := decodeAll(bytes.NewReader(buf.Bytes()), 0)
	if len(got) != 1 || got[0].ChunkStreamID != message.DefaultCSID(tVideo, 1) {
		t.Fatalf("got %v", got)
	}
}

func TestWriterSetChunkSizeClamps(t *testing.T) {
	w := NewWriter(io.Discard)
	for in, want := range map[uint32]uint32{0: 1, 1: 1, 4096: 4096, MaxChunkSize: MaxChunkSize, 0x7FFFFFFF: MaxChunkSize} {
		w.SetChunkSize(in)
		if got := w.ChunkSize(); got != want {
			t.Errorf("SetChunkSize(%d): ChunkSize() = %d, want %d", in, got, want)
		}
	}
}

// TestWriterReferencesLargePayloads checks that large payload pieces are
// written from the caller's slice, not copied.
func TestWriterReferencesLargePayloads(t *testing.T) {
	var rec recordWriter
	w := NewWriter(&rec)
	w.SetChunkSize(4096)
	video := pl(10000, 1)
	audio := pl(300, 2)
	w.Queue(msg(7, tVideo, 1, 0, video))
	w.Queue(msg(6, tAudio, 1, 0, audio))
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	// header | 4096 | c7 | 4096 | c7 | 1808 | audio header + audio
	if len(rec.writes) != 7 {
		t.Fatalf("%d pieces written, want 7", len(rec.writes))
	}
	for i, off := range []int{0, 4096, 8192} {
		if &rec.writes[1+2*i][0] != &video[off] {
			t.Errorf("video piece %d was copied", i)
		}
	}
	if got := rec.writes[6]; len(got) != 12+300 {
		t.Errorf("last piece has %d bytes, want the audio header and audio copied together", len(got))
	}
}

type recordWriter struct{ writes [][]byte }

func (r *recordWriter) Write(p []byte) (int, error) {
	r.writes = append(r.writes, p)
	return len(p), nil
}

func TestWriterReleasesBurstMemory(t *testing.T) {
	w := NewWriter(io.Discard)
	for i := range 2000 {
		w.Queue(msg(6, tAudio, 1, uint32(i)*23, pl(300, 1)))
	}
	if w.Buffered() < 2000*300 {
		t.Fatalf("Buffered() = %d", w.Buffered())
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if cap(w.scratch) > maxKeptScratch || cap(w.segs) > maxKeptSegments || cap(w.iov) > maxKeptSegments {
		t.Fatalf("after a burst: scratch %d, segs %d, iov %d", cap(w.scratch), cap(w.segs), cap(w.iov))
	}
	w.Queue(msg(7, tVideo, 1, 0, pl(5000, 1)))
	w.Flush()
	for _, sg := range w.segs[:cap(w.segs)] {
		if sg.ext != nil {
			t.Fatal("Flush kept a reference to a payload")
		}
	}
	for _, b := range w.iov[:cap(w.iov)] {
		if b != nil {
			t.Fatal("Flush kept a reference to a payload")
		}
	}
}

func TestWriterSteadyStateAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops buffers under the race detector")
	}
	w := NewWriter(io.Discard)
	w.SetChunkSize(4096)
	video := msg(7, tVideo, 1, 0, make([]byte, 4096))
	audio := msg(6, tAudio, 1, 0, make([]byte, 300))
	step := func() {
		video.Timestamp += 33
		audio.Timestamp += 23
		w.Queue(video)
		w.Queue(audio)
		w.Flush()
	}
	step()
	if n := testing.AllocsPerRun(100, step); n != 0 {
		t.Fatalf("%v allocs per flush, want 0", n)
	}
}

// TestReaderIncrementalAllocation: a declared 16 MB message costs memory
// only as its bytes arrive.
func TestReaderIncrementalAllocation(t *testing.T) {
	wire := cat(
		hx("02 000000 000004 01 00000000 00ffffff"),
		hx("07 000000 ffffff 09 01000000"), pl(1000, 1))
	r := NewReader(bytes.NewReader(wire), 0)
	if _, err := r.ReadMessage(); err != nil {
		t.Fatal(err)
	}
	if _, err := r.ReadMessage(); err != io.ErrUnexpectedEOF {
		t.Fatalf("err %v", err)
	}
	s, _ := r.stream(7)
	if cap(s.buf) > firstAlloc {
		t.Fatalf("allocated %d bytes for 1000 received", cap(s.buf))
	}
}

// TestReaderManyPartials: many partial messages without data get small
// buffers once 1 MiB is allocated ahead.
func TestReaderManyPartials(t *testing.T) {
	wire := hx("02 000000 000004 01 00000000 00000001")
	for csid := byte(3); csid < 63; csid++ {
		wire = append(wire, csid)
		wire = append(wire, hx("000000 00ffff 09 01000000")...)
		wire = append(wire, 1)
	}
	r := NewReader(bytes.NewReader(wire), 0xFFFF)
	r.maxPartial = 1 << 30 // this test is about allocation, not the budget
	if _, err := r.ReadMessage(); err != nil {
		t.Fatal(err)
	}
	if _, err := r.ReadMessage(); err != io.EOF {
		t.Fatalf("err %v", err)
	}
	var total int
	for _, s := range r.streams {
		total += cap(s.buf)
	}
	if total > aheadLimit+firstAlloc+60*smallAlloc {
		t.Fatalf("%d bytes allocated for 60 received", total)
	}
	if r.ahead != total-60 {
		t.Fatalf("ahead = %d, want %d", r.ahead, total-60)
	}
}

// TestReaderRetryAtChunkBoundary: an error before a chunk's first byte (a
// read deadline while idle) does not break the Reader.
func TestReaderRetryAtChunkBoundary(t *testing.T) {
	c := cases[1] // two messages on chunk stream 3
	first := c.wire[:12+5]
	rest := c.wire[12+5:]
	timeout := errors.New("i/o timeout")
	rd := io.MultiReader(bytes.NewReader(first), &errOnce{err: timeout}, bytes.NewReader(rest))
	r := NewReader(rd, 0)
	if _, err := r.ReadMessage(); err != nil {
		t.Fatal(err)
	}
	if _, err := r.ReadMessage(); err != timeout {
		t.Fatalf("err %v, want the timeout", err)
	}
	m, err := r.ReadMessage()
	if err != nil {
		t.Fatal(err)
	}
	sameMessages(t, []*message.Message{m}, c.msgs[1:])
}

type errOnce struct {
	err  error
	done bool
}

func (e *errOnce) Read(p []byte) (int, error) {
	if e.done {
		return 0, io.EOF
	}
	e.done = true
	return 0, e.err
}

func TestReaderChunkSize(t *testing.T) {
	r := NewReader(bytes.NewReader(hx("02 000000 000004 01 00000000 00001000")), 0)
	if r.ChunkSize() != DefaultChunkSize {
		t.Fatal(r.ChunkSize())
	}
	if _, err := r.ReadMessage(); err != nil {
		t.Fatal(err)
	}
	if r.ChunkSize() != 4096 {
		t.Fatal(r.ChunkSize())
	}
}

// TestReaderUsesCallerBufio: bytes buffered by the caller's bufio.Reader
// (for example during the handshake) are read.
func TestReaderUsesCallerBufio(t *testing.T) {
	c := cases[0]
	br := bufio.NewReaderSize(bytes.NewReader(append([]byte{0xAA}, c.wire...)), 16)
	if b, _ := br.ReadByte(); b != 0xAA {
		t.Fatal(b)
	}
	msgs, _, err := decodeAll(br, 0)
	if err != io.EOF {
		t.Fatal(err)
	}
	sameMessages(t, msgs, c.msgs)
}

// TestReaderAllocs: reading costs the Message and its payload, nothing
// per chunk, also with extended timestamps repeated on every chunk.
func TestReaderAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops buffers under the race detector")
	}
	var msgs []*message.Message
	for i := range 16 {
		msgs = append(msgs,
			msg(7, tVideo, 1, 0x01000000+uint32(i)*33, make([]byte, 4096)),
			msg(6, tAudio, 1, 0x01000000+uint32(i)*23, make([]byte, 300)))
	}
	wire := encodeAll(t, msgs, false)
	r := NewReader(&loopReader{b: wire}, 0)
	if n := testing.AllocsPerRun(1000, func() {
		if _, err := r.ReadMessage(); err != nil {
			t.Fatal(err)
		}
	}); n > 2 {
		t.Fatalf("%v allocs per message, want 2", n)
	}
	checkInvariants(t, r)
}

// FuzzWriter encodes message sequences built from the input (chunk stream
// ids of every basic header size, timestamps that repeat, go back, jump by
// 0xFFFFFF and wrap, chunk size changes) and checks that they decode to the
// same messages.
func FuzzWriter(f *testing.F) {
	f.Add([]byte{0, 8, 1, 0, 10, 100, 0, 8, 1, 0, 10, 100, 0, 8, 1, 0, 10, 100})
	f.Add([]byte{4, 9, 1, 3, 1, 200, 4, 9, 1, 0, 33, 200, 4, 255, 0, 0, 7, 0, 3, 8, 1, 2, 5, 10})
	f.Add([]byte{8, 20, 0, 3, 0, 0, 8, 20, 0, 3, 0, 0, 5, 18, 2, 1, 0, 250})
	csids := []uint32{2, 3, 4, 6, 7, 64, 319, 320, 65599}
	f.Fuzz(func(t *testing.T, in []byte) {
		var msgs []*message.Message
		var ts uint32
		for ; len(in) >= 6; in = in[6:] {
			if in[1] == 255 {
				msgs = append(msgs, setChunkSize(1+uint32(in[3])<<8|uint32(in[4])))
				continue
			}
			typ := message.Type(in[1] % 23)
			if typ == message.TypeSetChunkSize || typ == message.TypeAbort {
				typ = tAudio
			}
			switch in[3] % 4 {
			case 0:
				ts += uint32(in[4])
			case 1:
				ts -= uint32(in[4])
			case 2:
				ts += extendedMark - 128 + uint32(in[4])
			case 3:
				ts = 0xFFFFFFFF - uint32(in[4])
			}
			msgs = append(msgs, msg(csids[int(in[0])%len(csids)], typ, uint32(in[2]%3), ts, pl(int(in[5])*3, in[5])))
		}
		wire := encodeAll(t, msgs, len(msgs)%2 == 0)
		got, r, err := decodeAll(bytes.NewReader(wire), 0)
		if err != io.EOF {
			t.Fatalf("decode: %v", err)
		}
		sameMessages(t, got, msgs)
		checkInvariants(t, r)
	})
}

// TestScratchNeed: Queue never writes more scratch bytes than it reserved.
func TestScratchNeed(t *testing.T) {
	for _, cs := range []uint32{1, 2, 100, 128, 511, 512, 513, 4096} {
		for _, csid := range []uint32{3, 64, 320} {
			for _, ts := range []uint32{0, 0xFFFFFF} {
				for _, n := range []int{0, 1, 127, 128, 129, 511, 512, 513, 1000, 5000} {
					w := NewWriter(io.Discard)
					w.SetChunkSize(cs)
					need := w.scratchNeed(uint32(n), csid, ts >= extendedMark)
					w.Queue(msg(csid, tVideo, 1, ts, make([]byte, n)))
					if len(w.scratch) > need {
						t.Errorf("chunk %d csid %d ts %#x length %d: wrote %d, reserved %d", cs, csid, ts, n, len(w.scratch), need)
					}
				}
			}
		}
	}
}
