package rtmpquic

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/rtmphub/rtmphub/rtmp/message"
	"github.com/rtmphub/rtmphub/tunnel"
)

// roqrServer listens for RoQR on loopback and hands out its clients.
func roqrServer(t *testing.T, datagrams bool) (ln *Listener, pin string, conns <-chan *RoQRConn) {
	t.Helper()
	cert, _, err := LoadOrCreateSelfSigned(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ln, err = Listen("127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}},
		Config{IdleTimeout: 5 * time.Second, KeepAlive: time.Second, RoQR: true, RoQRDatagrams: datagrams})
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan *RoQRConn, 4)
	done := make(chan struct{})
	go func(ln *Listener) { // not the named result, which return writes
		defer close(done)
		for {
			c, err := ln.AcceptRoQR()
			if err != nil {
				return
			}
			ch <- c
		}
	}(ln)
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		ln.Shutdown(sctx)
		<-done
		close(ch)
		for c := range ch {
			c.Close()
		}
	})
	return ln, tunnel.Fingerprint(cert.Certificate[0]), ch
}

func acceptRoQR(t *testing.T, conns <-chan *RoQRConn) *RoQRConn {
	t.Helper()
	select {
	case c := <-conns:
		t.Cleanup(func() { c.Close() })
		return c
	case <-time.After(5 * time.Second):
		t.Fatal("no RoQR client accepted")
		return nil
	}
}

// rawRoQR is a RoQR client written on quic-go directly, to see which
// frames come on the stream and which in datagrams, and to send anything.
type rawRoQR struct {
	qc  *quic.Conn
	str *quic.Stream
	r   *bufio.Reader
}

func dialRawRoQR(t *testing.T, addr string, datagrams bool) *rawRoQR {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	qc, err := quic.DialAddr(ctx, addr, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{RoQRALPN}},
		&quic.Config{EnableDatagrams: datagrams, MaxIdleTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { qc.CloseWithError(0, "") })
	str, err := qc.OpenStreamSync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return &rawRoQR{qc: qc, str: str, r: bufio.NewReader(str)}
}

func (r *rawRoQR) write(t *testing.T, msgs ...message.Message) {
	t.Helper()
	var b []byte
	for i := range msgs {
		b = AppendRoQRFrame(b, 0, &msgs[i])
	}
	if _, err := r.str.Write(b); err != nil {
		t.Fatal(err)
	}
}

func (r *rawRoQR) datagram(t *testing.T, m message.Message) {
	t.Helper()
	if err := r.qc.SendDatagram(AppendRoQRFrame(nil, 0, &m)); err != nil {
		t.Fatal(err)
	}
}

func vid(ts uint32, p []byte) message.Message {
	return message.Message{Type: message.TypeVideo, StreamID: 1, Timestamp: ts, Payload: p}
}

func aud(ts uint32, p []byte) message.Message {
	return message.Message{Type: message.TypeAudio, StreamID: 1, Timestamp: ts, Payload: p}
}

func command(name string) message.Message {
	typ, p, _ := message.EncodeCommand(&message.Command{Name: name, TransactionID: 1}, false)
	return message.Message{Type: typ, Payload: p}
}

// readRoQRMessage reads one message with a bounded wait.
func readRoQRMessage(t *testing.T, c *RoQRConn) *message.Message {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	m, err := c.ReadMessage()
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return m
}

// TestRoQRDatagramRouting: with datagrams negotiated, the server sends
// inter frames and coded audio in datagrams; commands, metadata, sequence
// headers, keyframes and a frame too large for a datagram on the stream,
// in order; a frame right after a stream-carried frame of its track stays
// on the stream.
func TestRoQRDatagramRouting(t *testing.T) {
	ln, _, conns := roqrServer(t, true)
	raw := dialRawRoQR(t, ln.Addr().String(), true)
	raw.write(t, command("connect"))
	sc := acceptRoQR(t, conns)
	if m := readRoQRMessage(t, sc); m.Type != message.TypeCommandAMF0 {
		t.Fatalf("first message %v", m)
	}
	if _, on := sc.DatagramStats(); !on {
		t.Fatal("datagrams not in use although both ends offered them")
	}
	sc.SetWriteTimeout(5 * time.Second)
	meta := message.Message{Type: message.TypeDataAMF0, StreamID: 1, Payload: []byte{2, 0, 10, 'o', 'n', 'M', 'e', 't', 'a', 'D', 'a', 't', 'a'}}
	bigInter := append(slices.Clone(avcInter), make([]byte, 4000)...)
	write := func(msgs ...message.Message) {
		t.Helper()
		if err := sc.WriteMessages(msgs); err != nil {
			t.Fatal(err)
		}
	}
	// One batch: after the keyframe, the inter frame of the same batch
	// stays on the stream; the audio frame after the AAC configuration
	// too.
	write(command("onStatus"), meta, vid(0, avcSeq), aud(0, aacSeq), vid(0, avcKey), vid(40, avcInter), aud(23, aacRaw))
	time.Sleep(3 * roqrReorderGuard)
	write(vid(80, avcInter)) // datagram
	write(aud(46, aacRaw))   // datagram
	write(vid(120, bigInter))
	time.Sleep(3 * roqrReorderGuard)
	write(vid(160, avcDispos), aud(69, mp3Frame)) // datagrams
	write(command("end"))

	wantStream := []uint32{0, 0, 0, 0, 0, 40, 23, 120, 0} // timestamps, in order
	var stream []*message.Message
	for len(stream) < len(wantStream) {
		raw.str.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, m, err := ReadRoQRFrame(raw.r, 0)
		if err != nil {
			t.Fatalf("stream after %d frames: %v", len(stream), err)
		}
		stream = append(stream, m)
	}
	var ts []uint32
	for _, m := range stream {
		ts = append(ts, m.Timestamp)
	}
	if !slices.Equal(ts, wantStream) || stream[2].Type != message.TypeVideo || !bytes.Equal(stream[2].Payload, avcSeq) ||
		!bytes.Equal(stream[4].Payload, avcKey) || len(stream[7].Payload) != len(bigInter) {
		t.Errorf("stream carried %v", stream)
	}
	var dg []uint32
	for len(dg) < 4 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		b, err := raw.qc.ReceiveDatagram(ctx)
		cancel()
		if err != nil {
			t.Fatalf("datagrams after %v: %v", dg, err)
		}
		_, m, err := ParseRoQRDatagram(b, 0)
		if err != nil || !classifyRoQR(m).lossy {
			t.Fatalf("datagram %v: %v", m, err)
		}
		dg = append(dg, m.Timestamp)
	}
	slices.Sort(dg)
	if !slices.Equal(dg, []uint32{46, 69, 80, 160}) {
		t.Errorf("datagrams carried %v", dg)
	}
	if s, _ := sc.DatagramStats(); s.Sent != 4 || s.TooLarge != 1 {
		t.Errorf("stats %+v, want 4 sent, 1 too large", s)
	}
}

// TestRoQRDatagramNegotiation: datagrams are used only when both ends
// offer them; otherwise every message goes on the stream.
func TestRoQRDatagramNegotiation(t *testing.T) {
	for _, c := range []struct {
		server, client, want bool
	}{{true, true, true}, {true, false, false}, {false, true, false}, {false, false, false}} {
		ln, pin, conns := roqrServer(t, c.server)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		cc, err := DialRoQR(ctx, "roqr://"+ln.Addr().String(), DialOptions{PinSHA256: pin, Config: Config{RoQRDatagrams: c.client}})
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		if err := cc.WriteMessages([]message.Message{command("connect")}); err != nil {
			t.Fatal(err)
		}
		sc := acceptRoQR(t, conns)
		readRoQRMessage(t, sc)
		_, son := sc.DatagramStats()
		_, con := cc.DatagramStats()
		if son != c.want || con != c.want {
			t.Errorf("server %v client %v: in use on the server %v, on the client %v; want %v", c.server, c.client, son, con, c.want)
		}
		// Media goes through either way.
		if err := sc.WriteMessages([]message.Message{vid(0, avcKey), vid(40, avcInter)}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(3 * roqrReorderGuard)
		if err := sc.WriteMessages([]message.Message{vid(80, avcInter)}); err != nil {
			t.Fatal(err)
		}
		for _, want := range []uint32{0, 40, 80} {
			if m := readRoQRMessage(t, cc); m.Timestamp != want {
				t.Errorf("got %v, want timestamp %d", m, want)
			}
		}
		if s, _ := sc.DatagramStats(); c.want && s.Sent != 1 {
			t.Errorf("server sent %d datagrams, want 1", s.Sent)
		}
		cc.Close()
	}
}

// TestRoQRDatagramReceive: the receive rules. Bad datagrams are dropped
// and counted, the connection goes on; video datagrams wait for a keyframe
// from the stream, AAC for its configuration; stale media is dropped; a
// datagram newer than a stream frame of its track still being received
// waits for it.
func TestRoQRDatagramReceive(t *testing.T) {
	ln, _, conns := roqrServer(t, true)
	raw := dialRawRoQR(t, ln.Addr().String(), true)
	raw.write(t, command("connect"))
	sc := acceptRoQR(t, conns)
	readRoQRMessage(t, sc)

	// Garbage, a frame with a trailing byte, a command: all dropped.
	raw.qc.SendDatagram([]byte{0x40})
	raw.qc.SendDatagram(append(AppendRoQRFrame(nil, 0, &message.Message{Type: message.TypeVideo, StreamID: 1, Payload: avcInter}), 0))
	cmd := command("deleteStream")
	raw.datagram(t, cmd)
	// Media before the track can be decoded: dropped.
	raw.datagram(t, vid(10, avcInter))
	raw.datagram(t, aud(10, aacRaw))
	// An MP3 frame needs nothing first: delivered.
	raw.datagram(t, message.Message{Type: message.TypeAudio, StreamID: 2, Timestamp: 10, Payload: mp3Frame})
	if m := readRoQRMessage(t, sc); m.StreamID != 2 || m.Timestamp != 10 {
		t.Fatalf("got %v, want the mp3 frame", m)
	}
	waitStats(t, sc, func(s RoQRDatagramStats) bool { return s.Received == 6 })

	raw.write(t, vid(0, avcSeq), aud(0, aacSeq), vid(20, avcKey))
	for _, want := range []uint32{0, 0, 20} {
		if m := readRoQRMessage(t, sc); m.Timestamp != want {
			t.Fatalf("got %v, want timestamp %d", m, want)
		}
	}
	raw.datagram(t, vid(60, avcInter))
	if m := readRoQRMessage(t, sc); m.Timestamp != 60 {
		t.Fatalf("got %v, want the inter frame at 60", m)
	}
	raw.datagram(t, vid(40, avcInter)) // older than 60: dropped
	raw.datagram(t, aud(30, aacRaw))
	if m := readRoQRMessage(t, sc); m.Type != message.TypeAudio || m.Timestamp != 30 {
		t.Fatalf("got %v, want the audio frame at 30", m)
	}
	// The stale video datagram was a gap: video inter frames wait for
	// the next keyframe, from the stream or not.
	raw.datagram(t, vid(80, avcInter))
	waitStats(t, sc, func(s RoQRDatagramStats) bool { return s.Received == 10 })
	raw.write(t, vid(100, avcInter))
	raw.write(t, cmd)
	if m := readRoQRMessage(t, sc); m.Type != message.TypeCommandAMF0 {
		t.Fatalf("got %v, want the command (inter frames dropped until a keyframe)", m)
	}

	// A keyframe whose payload is still coming: a newer inter frame
	// waits for it, an audio frame does not.
	key := append(slices.Clone(avcKey), make([]byte, 3000)...)
	frame := AppendRoQRFrame(nil, 0, &message.Message{Type: message.TypeVideo, StreamID: 1, Timestamp: 200, Payload: key})
	if _, err := raw.str.Write(frame[:100]); err != nil {
		t.Fatal(err)
	}
	if !eventuallyTrue(5*time.Second, func() bool {
		sc.dg.mu.Lock()
		defer sc.dg.mu.Unlock()
		return sc.dg.inflight.ts == 200
	}) {
		t.Fatal("the stream reader did not take the keyframe's header")
	}
	raw.datagram(t, vid(240, avcInter))
	raw.datagram(t, aud(210, aacRaw))
	if m := readRoQRMessage(t, sc); m.Type != message.TypeAudio || m.Timestamp != 210 {
		t.Fatalf("got %v, want the audio frame at 210", m)
	}
	if _, err := raw.str.Write(frame[100:]); err != nil {
		t.Fatal(err)
	}
	for _, want := range []uint32{200, 240} {
		if m := readRoQRMessage(t, sc); m.Type != message.TypeVideo || m.Timestamp != want {
			t.Fatalf("got %v, want video at %d", m, want)
		}
	}
	s, _ := sc.DatagramStats()
	if s.Bad != 3 || s.Unsynced != 4 || s.Stale != 1 || s.Delivered != 5 {
		t.Errorf("stats %+v: want 3 bad, 4 unsynced, 1 stale, 5 delivered", s)
	}
	// The connection is intact both ways.
	if err := sc.WriteMessages([]message.Message{command("_result")}); err != nil {
		t.Fatal(err)
	}
	raw.str.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, m, err := ReadRoQRFrame(raw.r, 0); err != nil || m.Type != message.TypeCommandAMF0 {
		t.Fatalf("reply: %v %v", m, err)
	}
	// The peer closing the connection ends ReadMessage cleanly.
	raw.qc.CloseWithError(0, "")
	sc.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := sc.ReadMessage(); err != io.EOF {
		t.Errorf("after the peer closed: %v, want EOF", err)
	}
}

// TestRoQRDatagramClose: Close ends a ReadMessage waiting in the datagram
// profile, and the deadline bounds it.
func TestRoQRDatagramClose(t *testing.T) {
	ln, _, conns := roqrServer(t, true)
	raw := dialRawRoQR(t, ln.Addr().String(), true)
	raw.write(t, command("connect"))
	sc := acceptRoQR(t, conns)
	readRoQRMessage(t, sc)
	sc.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	var ne interface{ Timeout() bool }
	if _, err := sc.ReadMessage(); !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("past the deadline: %v", err)
	}
	sc.SetReadDeadline(time.Time{})
	errc := make(chan error, 1)
	go func() {
		_, err := sc.ReadMessage()
		errc <- err
	}()
	time.Sleep(20 * time.Millisecond)
	sc.Close()
	select {
	case err := <-errc:
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("after Close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not end ReadMessage")
	}
	if err := sc.WriteMessages([]message.Message{vid(0, avcInter)}); !errors.Is(err, net.ErrClosed) {
		t.Errorf("write after Close: %v", err)
	}
}

func waitStats(t *testing.T, c *RoQRConn, ok func(RoQRDatagramStats) bool) {
	t.Helper()
	if !eventuallyTrue(5*time.Second, func() bool { s, _ := c.DatagramStats(); return ok(s) }) {
		s, _ := c.DatagramStats()
		t.Fatalf("datagram stats %+v", s)
	}
}

func eventuallyTrue(d time.Duration, cond func() bool) bool {
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		if cond() {
			return true
		}
		time.Sleep(2 * time.Millisecond)
	}
	return cond()
}
