package rtmpquic

// The RoQR datagram profile: media a decoder can lose in QUIC DATAGRAMs,
// everything else on the stream (see the comment at the top of
// roqr.go for the rules).

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/rtmphub/rtmphub/rtmp/message"
	"github.com/rtmphub/rtmphub/tunnel/internal/deadline"
)

const (
	// roqrDatagramQueue and roqrDatagramQueueBytes bound the received
	// datagrams waiting for ReadMessage; when full, the oldest is dropped.
	roqrDatagramQueue      = 256
	roqrDatagramQueueBytes = 1 << 20
	// roqrMaxHeld bounds the datagrams waiting for a stream frame of their
	// track that is partly received.
	roqrMaxHeld = 64
	// roqrMaxTracks bounds the (message stream id, type) pairs whose order
	// is followed, each way.
	roqrMaxTracks = 64
	// roqrReorderGuard: a frame goes in a datagram only this long after
	// the last stream-carried frame of its track was put in packets, so
	// that the receiver has read that frame before the datagram arrives
	// (a DATAGRAM is packed ahead of queued stream data). Real-time media
	// has 16-40ms between frames; a burst (a player's start at the last
	// keyframe) stays on the stream.
	roqrReorderGuard = 15 * time.Millisecond
	// roqrTooLargeMemory is how long a "too large" answer is remembered
	// before sizes above it are tried again (the path MTU can grow).
	roqrTooLargeMemory = 2 * time.Second
	// roqrBadLogEvery rate-limits the log line about bad datagrams.
	roqrBadLogEvery = time.Minute
)

// RoQRDatagramStats counts the DATAGRAM traffic of one RoQR connection.
type RoQRDatagramStats struct {
	Sent     uint64 // media messages sent in datagrams
	TooLarge uint64 // media messages that did not fit one datagram and went on the stream
	Received uint64 // datagrams received
	// Delivered counts the received datagram messages ReadMessage
	// returned.
	Delivered uint64
	// Stale counts media dropped for being older than media already
	// delivered on its track (datagrams, and stream frames overtaken by
	// datagrams).
	Stale uint64
	// Unsynced counts media dropped while its track waited for a keyframe
	// or decoder configuration from the stream.
	Unsynced uint64
	Overflow uint64 // datagrams dropped, oldest first, from a full receive queue
	// Bad counts datagrams dropped for being malformed or carrying a
	// command or control message.
	Bad uint64
}

// DatagramStats returns the connection's DATAGRAM counters; on is false
// when the connection does not use the datagram profile.
func (c *RoQRConn) DatagramStats() (s RoQRDatagramStats, on bool) {
	if c.dg == nil {
		return s, false
	}
	st := &c.dg.stats
	return RoQRDatagramStats{
		Sent: st.sent.Load(), TooLarge: st.tooLarge.Load(), Received: st.received.Load(), Delivered: st.delivered.Load(),
		Stale: st.stale.Load(), Unsynced: st.unsynced.Load(), Overflow: st.overflow.Load(), Bad: st.bad.Load(),
	}, true
}

// roqrMedia is what the datagram profile needs to know of a message.
type roqrMedia struct {
	// lossy: a decoder can lose it (video inter frames, coded audio
	// frames), so it may travel in a DATAGRAM.
	lossy bool
	// keyframe: a video keyframe, where a decoder can start.
	keyframe bool
	// config: a decoder configuration (sequence header).
	config bool
	// needConfig: audio of a codec that cannot be decoded before its
	// configuration (AAC, Enhanced RTMP audio).
	needConfig bool
}

// classifyRoQR classifies an audio or video message with the media
// helpers of package message. Anything it cannot parse is not lossy.
func classifyRoQR(m *message.Message) (r roqrMedia) {
	switch m.Type {
	case message.TypeVideo:
		vi, ok := message.ParseVideo(m.Payload)
		if !ok {
			return r
		}
		r.config = vi.SequenceHeader
		r.keyframe = vi.Keyframe && !vi.SequenceHeader && !vi.SequenceEnd && !vi.Metadata && !vi.Command
		if vi.Keyframe || vi.SequenceHeader || vi.SequenceEnd || vi.Metadata || vi.Command {
			return r
		}
		// Frame types 2 (inter) and 3 (disposable inter) only: 4 is a
		// generated keyframe, 5 a command.
		ft := m.Payload[0] >> 4 & 0x07
		r.lossy = ft == 2 || ft == 3
	case message.TypeAudio:
		ai, ok := message.ParseAudio(m.Payload)
		if !ok {
			return r
		}
		r.config = ai.SequenceHeader
		r.needConfig = ai.Codec == "mp4a" || ai.Enhanced
		r.lossy = !ai.SequenceHeader && !ai.SequenceEnd && !ai.MultichannelConfig
	}
	return r
}

// roqrDatagramType reports whether a message of type t is taken from a
// DATAGRAM. Commands, protocol and user control and shared object
// messages change session state and must come in order, on the stream.
func roqrDatagramType(t message.Type) bool {
	switch t {
	case message.TypeSetChunkSize, message.TypeAbort, message.TypeAck, message.TypeUserControl,
		message.TypeWindowAckSize, message.TypeSetPeerBandwidth,
		message.TypeCommandAMF0, message.TypeCommandAMF3, message.TypeSharedObjectAMF0, message.TypeSharedObjectAMF3:
		return false
	}
	return true
}

type roqrTrackKey struct {
	msid uint32
	typ  message.Type
}

func roqrKey(m *message.Message) roqrTrackKey { return roqrTrackKey{m.StreamID, m.Type} }

// roqrRecvTrack is the receive state of one track.
type roqrRecvTrack struct {
	last       uint32 // timestamp of the newest media delivered
	have       bool   // last is set
	dgSeen     bool   // a datagram was delivered on the track
	keyed      bool   // video: a keyframe came from the stream since the start or the last gap
	gap        bool   // video: media was lost; inter frames are dropped until a keyframe
	configured bool   // audio: the decoder configuration came from the stream
}

// roqrSendTrack is the send state of one track.
type roqrSendTrack struct {
	pending  bool      // a frame of the track is in stream bytes not yet written
	streamAt time.Time // when the last stream-carried frame was put in packets
}

// roqrStreamRead is one result of the stream reader.
type roqrStreamRead struct {
	m   *message.Message
	seq uint64
	err error
}

// roqrInflight is the stream frame being read, once its header is in.
type roqrInflight struct {
	seq uint64
	key roqrTrackKey
	ts  uint32
}

// roqrDatagrams is the datagram side of a RoQRConn. The stream is read by
// a goroutine of its own, so that ReadMessage can wait for a stream frame
// and a datagram at once; datagrams are received by another.
type roqrDatagrams struct {
	c       *RoQRConn
	log     *slog.Logger
	ctx     context.Context // ends with Close or the QUIC connection
	cancel  context.CancelFunc
	closing chan struct{} // closed by Close
	once    sync.Once
	rdl     *deadline.Deadline

	streamCh chan roqrStreamRead
	notify   chan struct{} // a datagram was queued
	readyCh  chan struct{} // the stream reader became ready

	mu       sync.Mutex
	ring     [roqrDatagramQueue]*message.Message
	head, n  int
	bytes    int
	inflight roqrInflight
	// cur is the stream frame the reader works on; ready says it has
	// read that frame's header, or found nothing buffered and waits for
	// the network.
	cur        uint64
	ready      bool
	overflowed []roqrTrackKey // tracks that lost a datagram to the full queue

	// ReadMessage's goroutine only.
	held      []*message.Message
	tracks    map[roqrTrackKey]*roqrRecvTrack
	delivered uint64 // seq of the last stream frame taken
	rerr      error

	// Under c.wmu.
	sendTracks map[roqrTrackKey]*roqrSendTrack
	pending    []*roqrSendTrack
	scratch    []byte
	tooLarge   int
	tooLargeAt time.Time
	timer      *time.Timer
	req        chan []byte
	res        chan error
	busy       bool // a timed-out SendDatagram may still be running

	stats struct {
		sent, tooLarge, received, delivered, stale, unsynced, overflow, bad atomic.Uint64
	}
	badLogged atomic.Int64
}

func newRoQRDatagrams(c *RoQRConn, log *slog.Logger) *roqrDatagrams {
	ctx, cancel := context.WithCancel(c.qc.Context())
	d := &roqrDatagrams{c: c, log: log, ctx: ctx, cancel: cancel, closing: make(chan struct{}), rdl: deadline.New(),
		streamCh: make(chan roqrStreamRead), notify: make(chan struct{}, 1), readyCh: make(chan struct{}, 1),
		tracks: make(map[roqrTrackKey]*roqrRecvTrack), sendTracks: make(map[roqrTrackKey]*roqrSendTrack)}
	go d.readStream()
	go d.receive()
	return d
}

// stop ends the goroutines (the stream reader once the stream is
// cancelled) and logs the counters, once.
func (d *roqrDatagrams) stop() {
	d.once.Do(func() {
		close(d.closing)
		d.cancel()
		d.rdl.Stop()
		s, _ := d.c.DatagramStats()
		d.log.Debug("roqr datagrams", "sent", s.Sent, "too_large", s.TooLarge, "received", s.Received, "delivered", s.Delivered,
			"stale", s.Stale, "unsynced", s.Unsynced, "overflow", s.Overflow, "bad", s.Bad)
	})
}

// readStream reads stream frames and hands them to ReadMessage one at a
// time (the stream keeps its flow control), until a read fails (Close
// cancels the stream; the end of the QUIC connection fails it). Before
// reading an audio or video payload it publishes the frame's header, so
// that newer datagrams of that track wait for it; ReadMessage takes no
// datagram while the reader has bytes of a header it has not parsed.
func (d *roqrDatagrams) readStream() {
	c := d.c
	for seq := uint64(1); ; seq++ {
		idle := c.r.Buffered() == 0
		d.setReady(seq, idle, nil)
		h, err := readRoQRHeader(c.r, c.maxSize)
		var m *message.Message
		if err == nil {
			var in *roqrInflight
			if t := message.Type(h.typ); t == message.TypeAudio || t == message.TypeVideo {
				in = &roqrInflight{seq: seq, key: roqrTrackKey{uint32(h.msid), t}, ts: uint32(h.ts)}
			}
			d.setReady(seq, true, in)
			m, err = readRoQRPayload(c.r, &h)
		} else {
			d.setReady(seq, true, nil)
		}
		select {
		case d.streamCh <- roqrStreamRead{m: m, seq: seq, err: err}:
		case <-d.closing:
			return
		}
		if err != nil {
			return
		}
	}
}

func (d *roqrDatagrams) setReady(seq uint64, ready bool, in *roqrInflight) {
	d.mu.Lock()
	d.cur, d.ready = seq, ready
	if in != nil {
		d.inflight = *in
	}
	d.mu.Unlock()
	if ready {
		select {
		case d.readyCh <- struct{}{}:
		default:
		}
	}
}

// readerReady reports whether the stream reader has looked at the frame
// after the last one taken: datagrams can then be ordered against it.
func (d *roqrDatagrams) readerReady() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cur > d.delivered && d.ready
}

// receive queues the connection's datagrams for ReadMessage, dropping
// the oldest when the queue is full; it never blocks on the reader.
func (d *roqrDatagrams) receive() {
	for {
		b, err := d.c.qc.ReceiveDatagram(d.ctx)
		if err != nil {
			return
		}
		d.stats.received.Add(1)
		_, m, err := ParseRoQRDatagram(b, d.c.maxSize)
		if err == nil && !roqrDatagramType(m.Type) {
			err = fmt.Errorf("roqr datagram: %v message (belongs on the stream)", m.Type)
		}
		if err != nil {
			d.bad(err)
			continue
		}
		d.push(m)
	}
}

func (d *roqrDatagrams) bad(err error) {
	n := d.stats.bad.Add(1)
	now := time.Now().UnixNano()
	last := d.badLogged.Load()
	if (last == 0 || now-last >= int64(roqrBadLogEvery)) && d.badLogged.CompareAndSwap(last, now) {
		d.log.Warn("dropped a bad datagram", "err", err.Error(), "bad_datagrams", n)
	}
}

func (d *roqrDatagrams) push(m *message.Message) {
	d.mu.Lock()
	for d.n > 0 && (d.n == len(d.ring) || d.bytes+len(m.Payload) > roqrDatagramQueueBytes) {
		old := d.ring[d.head]
		d.ring[d.head] = nil
		d.head = (d.head + 1) % len(d.ring)
		d.n--
		d.bytes -= len(old.Payload)
		d.stats.overflow.Add(1)
		if k := roqrKey(old); len(d.overflowed) < roqrMaxTracks && !slices.Contains(d.overflowed, k) {
			d.overflowed = append(d.overflowed, k)
		}
	}
	d.ring[(d.head+d.n)%len(d.ring)] = m
	d.n++
	d.bytes += len(m.Payload)
	d.mu.Unlock()
	select {
	case d.notify <- struct{}{}:
	default:
	}
}

// pop takes the oldest queued datagram (nil if none), the header of the
// stream frame being read, and marks the tracks that lost datagrams to
// overflow.
func (d *roqrDatagrams) pop() (*message.Message, roqrInflight) {
	d.mu.Lock()
	var m *message.Message
	if d.n > 0 {
		m = d.ring[d.head]
		d.ring[d.head] = nil
		d.head = (d.head + 1) % len(d.ring)
		d.n--
		d.bytes -= len(m.Payload)
	}
	in := d.inflight
	lost := d.overflowed
	d.overflowed = nil
	d.mu.Unlock()
	for _, k := range lost {
		if tr := d.tracks[k]; tr != nil {
			tr.lose(k)
		}
	}
	return m, in
}

// readMessage is ReadMessage in the datagram profile: stream frames
// first, then datagrams, else wait for either.
func (d *roqrDatagrams) readMessage() (*message.Message, error) {
	c := d.c
	if d.rerr != nil {
		return nil, d.rerr
	}
	for {
		if d.rdl.Expired() {
			return nil, opError("read", "roqr", c.RemoteAddr(), errTimeout)
		}
		select {
		case r := <-d.streamCh:
			if m, err := d.fromStream(r); m != nil || err != nil {
				return m, err
			}
			continue
		default:
		}
		if !d.readerReady() {
			select {
			case r := <-d.streamCh:
				if m, err := d.fromStream(r); m != nil || err != nil {
					return m, err
				}
			case <-d.readyCh:
			case <-d.rdl.Wait():
			case <-d.closing:
				return nil, opError("read", "roqr", c.RemoteAddr(), net.ErrClosed)
			}
			continue
		}
		if m := d.nextDatagram(); m != nil {
			return m, nil
		}
		select {
		case r := <-d.streamCh:
			if m, err := d.fromStream(r); m != nil || err != nil {
				return m, err
			}
		case <-d.notify:
		case <-d.rdl.Wait():
		case <-d.closing:
			return nil, opError("read", "roqr", c.RemoteAddr(), net.ErrClosed)
		}
	}
}

// fromStream takes one stream frame: the message to deliver, nil if it
// was dropped, or the read error.
func (d *roqrDatagrams) fromStream(r roqrStreamRead) (*message.Message, error) {
	if r.err != nil {
		d.rerr = d.c.mapReadErr(r.err)
		return nil, d.rerr
	}
	d.delivered = r.seq
	if !d.admit(r.m, false) {
		return nil, nil
	}
	d.c.in.Add(uint64(len(r.m.Payload)))
	return r.m, nil
}

// nextDatagram returns the next datagram message to deliver, or nil.
func (d *roqrDatagrams) nextDatagram() *message.Message {
	d.mu.Lock()
	in := d.inflight
	d.mu.Unlock()
	for i := 0; i < len(d.held); {
		m := d.held[i]
		if d.waits(m, in) {
			i++
			continue
		}
		d.held = slices.Delete(d.held, i, i+1)
		if d.admit(m, true) {
			return d.deliverDatagram(m)
		}
	}
	for {
		m, in := d.pop()
		if m == nil {
			return nil
		}
		if d.waits(m, in) {
			if len(d.held) == roqrMaxHeld {
				old := d.held[0]
				d.held = slices.Delete(d.held, 0, 1)
				d.stats.overflow.Add(1)
				if tr := d.tracks[roqrKey(old)]; tr != nil {
					tr.lose(roqrKey(old))
				}
			}
			d.held = append(d.held, m)
			continue
		}
		if d.admit(m, true) {
			return d.deliverDatagram(m)
		}
	}
}

func (d *roqrDatagrams) deliverDatagram(m *message.Message) *message.Message {
	d.stats.delivered.Add(1)
	d.c.in.Add(uint64(len(m.Payload)))
	return m
}

// waits reports whether datagram m must wait for the stream frame being
// read: same track, and m not older.
func (d *roqrDatagrams) waits(m *message.Message, in roqrInflight) bool {
	return in.seq > d.delivered && in.key == roqrKey(m) && int32(m.Timestamp-in.ts) >= 0
}

func (d *roqrDatagrams) track(k roqrTrackKey) *roqrRecvTrack {
	tr := d.tracks[k]
	if tr == nil && len(d.tracks) < roqrMaxTracks {
		tr = &roqrRecvTrack{}
		d.tracks[k] = tr
	}
	return tr
}

// lose notes that media of the track was lost: video is discontinuous
// until the next keyframe.
func (tr *roqrRecvTrack) lose(k roqrTrackKey) {
	if k.typ == message.TypeVideo {
		tr.keyed, tr.gap = false, true
	}
}

// admit applies the receive rules to a message from the stream or a
// datagram, updates its track and reports whether to deliver it.
func (d *roqrDatagrams) admit(m *message.Message, viaDatagram bool) bool {
	if m.Type != message.TypeAudio && m.Type != message.TypeVideo {
		return true
	}
	k := roqrKey(m)
	tr := d.track(k)
	if tr == nil { // too many tracks to follow: only the stream's
		if viaDatagram {
			d.stats.unsynced.Add(1)
		}
		return !viaDatagram
	}
	cl := classifyRoQR(m)
	stale := tr.have && int32(m.Timestamp-tr.last) < 0
	switch {
	case viaDatagram:
		switch {
		case stale:
			d.stats.stale.Add(1)
			tr.lose(k)
			return false
		case m.Type == message.TypeVideo && !tr.keyed,
			m.Type == message.TypeAudio && cl.needConfig && !tr.configured:
			d.stats.unsynced.Add(1)
			return false
		}
		tr.dgSeen = true
	case cl.lossy:
		// A stream frame too large for a datagram, overtaken by a
		// datagram: delivering it now would reorder the track.
		if tr.dgSeen && stale {
			d.stats.stale.Add(1)
			tr.lose(k)
			return false
		}
		if tr.gap {
			d.stats.unsynced.Add(1)
			return false
		}
	case cl.keyframe || cl.config:
		// A decoder (re)starts here: the track's timeline restarts too
		// (a republish may start again from 0).
		if cl.keyframe {
			tr.keyed, tr.gap = true, false
		} else if m.Type == message.TypeVideo {
			tr.keyed = false // a new configuration needs a new keyframe
		} else {
			tr.configured = true
		}
		tr.last, tr.have = m.Timestamp, true
		return true
	}
	if !tr.have || int32(m.Timestamp-tr.last) > 0 {
		tr.last = m.Timestamp
	}
	tr.have = true
	return true
}

func (d *roqrDatagrams) sendTrack(k roqrTrackKey) *roqrSendTrack {
	tr := d.sendTracks[k]
	if tr == nil && len(d.sendTracks) < roqrMaxTracks {
		tr = &roqrSendTrack{}
		d.sendTracks[k] = tr
	}
	return tr
}

// writeMessages is WriteMessages in the datagram profile (c.wmu held).
// Stream bytes written before a datagram are in packets before the
// datagram is queued.
func (d *roqrDatagrams) writeMessages(msgs []message.Message) error {
	c := d.c
	b := c.wbuf[:0]
	n := 0
	flush := func() error {
		if len(b) == 0 {
			return nil
		}
		err := c.writeStream(b, true)
		b = b[:0]
		if err != nil {
			return err
		}
		now := time.Now()
		for _, tr := range d.pending {
			tr.pending, tr.streamAt = false, now
		}
		clear(d.pending)
		d.pending = d.pending[:0]
		return nil
	}
	for i := range msgs {
		m := &msgs[i]
		n += len(m.Payload)
		if m.Type != message.TypeAudio && m.Type != message.TypeVideo {
			b = AppendRoQRFrame(b, 0, m)
			continue
		}
		tr := d.sendTrack(roqrKey(m))
		if tr != nil && !tr.pending && time.Since(tr.streamAt) >= roqrReorderGuard && classifyRoQR(m).lossy {
			frame := AppendRoQRFrame(d.scratch[:0], 0, m)
			if cap(frame) <= 64<<10 {
				d.scratch = frame
			}
			if d.tooLarge == 0 || len(frame) <= d.tooLarge || time.Since(d.tooLargeAt) > roqrTooLargeMemory {
				if err := flush(); err != nil {
					return err
				}
				err := d.send(frame)
				if err == nil {
					d.stats.sent.Add(1)
					continue
				}
				var tl *quic.DatagramTooLargeError
				if !errors.As(err, &tl) {
					return err
				}
				d.tooLarge, d.tooLargeAt = int(tl.MaxDatagramPayloadSize), time.Now()
			}
			d.stats.tooLarge.Add(1)
			b = append(b, frame...)
		} else {
			b = AppendRoQRFrame(b, 0, m)
		}
		if tr != nil && !tr.pending {
			tr.pending = true
			d.pending = append(d.pending, tr)
		}
	}
	err := flush()
	c.keepWbuf(b)
	if err != nil {
		return err
	}
	c.out.Add(uint64(n))
	return nil
}

// send queues one datagram. SendDatagram blocks while quic-go's send
// queue is full and takes no deadline, so under a write timeout it runs
// on a helper goroutine and the wait is bounded here.
func (d *roqrDatagrams) send(p []byte) error {
	c := d.c
	to := time.Duration(c.wtimeout.Load())
	if to <= 0 && !d.busy {
		return d.mapSendErr(c.qc.SendDatagram(p))
	}
	if d.req == nil {
		d.req, d.res = make(chan []byte), make(chan error, 1)
		d.timer = time.NewTimer(time.Hour)
		go d.sender()
	}
	if to <= 0 {
		to = time.Hour
	}
	d.timer.Reset(to)
	defer d.timer.Stop()
	if d.busy {
		select {
		case <-d.res:
			d.busy = false
		case <-d.timer.C:
			return opError("write", "roqr", c.RemoteAddr(), errTimeout)
		case <-d.ctx.Done():
			return opError("write", "roqr", c.RemoteAddr(), net.ErrClosed)
		}
	}
	select {
	case d.req <- p:
	case <-d.ctx.Done():
		return opError("write", "roqr", c.RemoteAddr(), net.ErrClosed)
	}
	select {
	case err := <-d.res:
		return d.mapSendErr(err)
	case <-d.timer.C:
		d.busy = true
		d.scratch = nil // the helper may still read p
		return opError("write", "roqr", c.RemoteAddr(), errTimeout)
	}
}

func (d *roqrDatagrams) mapSendErr(err error) error {
	var tl *quic.DatagramTooLargeError
	if err == nil || errors.As(err, &tl) {
		return err
	}
	if d.c.closed.Load() {
		return opError("write", "roqr", d.c.RemoteAddr(), net.ErrClosed)
	}
	return opError("write", "roqr", d.c.RemoteAddr(), err)
}

func (d *roqrDatagrams) sender() {
	for {
		select {
		case p := <-d.req:
			d.res <- d.c.qc.SendDatagram(p)
		case <-d.ctx.Done():
			return
		}
	}
}
