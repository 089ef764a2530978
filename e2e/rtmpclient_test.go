package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	amf0 "github.com/yutopp/go-amf0"
	rtmp "github.com/yutopp/go-rtmp"
	"github.com/yutopp/go-rtmp/handshake"
	"github.com/yutopp/go-rtmp/message"
)

// A minimal RTMP client built on go-rtmp's handshake, chunk streamer and
// message/AMF0 codecs: an implementation independent of rtmphub's. go-rtmp's
// high-level ClientConn cannot play, so the command flow is driven here.

const (
	csidControl = 2
	csidCommand = 3
	csidAudio   = 4
	csidData    = 5
	csidVideo   = 6
)

// rxMsg is a message received from the server.
type rxMsg struct {
	At       time.Time
	Type     message.TypeID
	StreamID uint32
	CSID     int
	TS       uint32
	Name     string // command or data name
	TxID     int64
	Args     []any  // AMF0 values after the name (and transaction id)
	Payload  []byte // audio/video payload
}

// code returns info.code of an onStatus / _result / _error, or "".
func (m rxMsg) code() string {
	for _, a := range m.Args {
		if obj, ok := asMap(a); ok {
			if c, ok := obj["code"].(string); ok {
				return c
			}
		}
	}
	return ""
}

// asMap accepts AMF0 objects and ECMA arrays.
func asMap(v any) (map[string]any, bool) {
	switch m := v.(type) {
	case map[string]any:
		return m, true
	case amf0.ECMAArray:
		return m, true
	}
	return nil, false
}

func (m rxMsg) String() string {
	switch m.Type {
	case message.TypeIDAudioMessage, message.TypeIDVideoMessage:
		return fmt.Sprintf("type %d msid %d ts %d len %d", m.Type, m.StreamID, m.TS, len(m.Payload))
	}
	if c := m.code(); c != "" {
		return fmt.Sprintf("%s(%d) msid %d code %s", m.Name, m.TxID, m.StreamID, c)
	}
	return fmt.Sprintf("%s(%d) msid %d %v", m.Name, m.TxID, m.StreamID, m.Args)
}

// countingReader counts bytes read from the connection and remembers the
// first transport error.
type countingReader struct {
	r   io.Reader
	n   atomic.Uint64
	mu  sync.Mutex
	err error
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(uint64(n))
	if err != nil {
		c.mu.Lock()
		if c.err == nil {
			c.err = err
		}
		c.mu.Unlock()
	}
	return n, err
}

func (c *countingReader) transportErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

type rtmpClient struct {
	t    testing.TB
	name string
	addr string
	conn net.Conn
	cr   *countingReader
	cs   *rtmp.ChunkStreamer

	wmu    sync.Mutex // one writer at a time into the chunk streamer
	nextTx atomic.Int64

	cmds    chan rxMsg  // commands, in arrival order
	media   chan rxMsg  // audio, video and data messages, in arrival order
	onMedia func(rxMsg) // dialOpts.OnMedia
	hmu     sync.Mutex
	history []rxMsg  // commands consumed by waitCmd
	ucs     []uint16 // user control event types received

	paused  atomic.Bool
	resume  chan struct{}
	closing chan struct{}
	done    chan struct{} // read loop ended
	readErr error

	ackWindow    atomic.Uint32
	lastAck      uint64
	decodeErrors atomic.Int64
	firstDecErr  atomic.Value
	mediaBytes   atomic.Int64
	closeOnce    sync.Once
}

type dialOpts struct {
	RecvBuf   int    // SO_RCVBUF before connecting (0 = default)
	ChunkSize uint32 // outgoing chunk size to announce (0 = 128)
	// OnMedia, when set, is called from the read loop for every audio,
	// video and data message instead of queueing it on the media channel.
	OnMedia func(rxMsg)
}

// dialRTMP connects and completes the handshake; it fails the test on error.
func dialRTMP(t testing.TB, name, addr string, o dialOpts) *rtmpClient {
	t.Helper()
	c, err := tryDialRTMP(t, name, addr, o)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return c
}

func tryDialRTMP(t testing.TB, name, addr string, o dialOpts) (*rtmpClient, error) {
	d := net.Dialer{Timeout: 5 * time.Second}
	if o.RecvBuf > 0 {
		d.Control = func(_, _ string, rc syscall.RawConn) error {
			var serr error
			err := rc.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, o.RecvBuf)
			})
			return errors.Join(err, serr)
		}
	}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("dial: %w", err)
	}
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if err := handshake.HandshakeWithServer(conn, conn, &handshake.Config{}); err != nil {
		conn.Close()
		return nil, fmt.Errorf("handshake: %w", err)
	}
	_ = conn.SetDeadline(time.Time{})

	c := &rtmpClient{t: t, name: name, addr: addr, conn: conn,
		cmds: make(chan rxMsg, 1024), media: make(chan rxMsg, 1<<15), onMedia: o.OnMedia,
		resume: make(chan struct{}), closing: make(chan struct{}), done: make(chan struct{})}
	c.cr = &countingReader{r: conn}
	c.cs = rtmp.NewChunkStreamer(c.cr, &flushWriter{conn: conn}, nil)
	if o.ChunkSize > 0 {
		// Before anything else is queued: the size applies to the chunking
		// of every later message.
		if err := c.cs.SelfState().SetChunkSize(o.ChunkSize); err != nil {
			conn.Close()
			return nil, err
		}
		if err := c.write(csidControl, 0, 0, &message.SetChunkSize{ChunkSize: o.ChunkSize}); err != nil {
			conn.Close()
			return nil, err
		}
	}
	go c.readLoop()
	t.Cleanup(c.Close)
	return c, nil
}

// flushWriter makes every chunk go out immediately (go-rtmp flushes only a
// *bufio.Writer; a plain net.Conn needs nothing).
type flushWriter struct{ conn net.Conn }

func (w *flushWriter) Write(p []byte) (int, error) {
	_ = w.conn.SetWriteDeadline(time.Now().Add(20 * time.Second))
	return w.conn.Write(p)
}

func (c *rtmpClient) Close() {
	c.closeOnce.Do(func() {
		close(c.closing)
		c.conn.Close()
		_ = c.cs.Close()
		select {
		case <-c.done:
		case <-time.After(5 * time.Second):
		}
	})
}

func (c *rtmpClient) write(csid int, ts uint32, streamID uint32, msg message.Message) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	select {
	case <-c.cs.Done(): // the chunk writer loop has ended; a write would block forever
		return fmt.Errorf("%s: connection closed for writing: %v", c.name, c.cs.Err()) //nolint:errorlint // nil when the writer loop ended on Close
	default:
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return c.cs.Write(ctx, csid, ts, &rtmp.ChunkMessage{StreamID: streamID, Message: msg})
}

// flushCommands waits until every queued command has been written. The
// command chunk stream cannot be used afterwards: call it just before Close.
func (c *rtmpClient) flushCommands() {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, _ = c.cs.NewChunkWriter(ctx, csidCommand)
}

func (c *rtmpClient) readLoop() {
	defer close(c.done)
	for {
		if c.paused.Load() {
			select {
			case <-c.resume:
			case <-c.closing:
				return
			}
		}
		var cm rtmp.ChunkMessage
		csid, ts, err := c.readMessage(&cm)
		var rp *readPanic
		if errors.As(err, &rp) {
			// go-rtmp panics on some inputs (a zero-length message): report
			// it as this connection's end instead of crashing the tests.
			c.readErr = err
			return
		}
		if err != nil {
			if terr := c.cr.transportErr(); terr != nil {
				c.readErr = terr
				return
			}
			// The whole message was consumed; only its body did not
			// decode (go-rtmp lacks AMF3 and aggregates). Keep going.
			c.decodeErrors.Add(1)
			c.firstDecErr.CompareAndSwap(nil, err.Error())
			continue
		}
		now := time.Now()
		switch m := cm.Message.(type) {
		case *message.SetChunkSize:
			if err := c.cs.PeerState().SetChunkSize(m.ChunkSize); err != nil {
				c.readErr = err
				return
			}
		case *message.WinAckSize:
			c.ackWindow.Store(uint32(m.Size))
		case *message.SetPeerBandwidth, *message.Ack, *message.AbortMessage:
		case *message.UserCtrl:
			c.hmu.Lock()
			switch e := m.Event.(type) {
			case *message.UserCtrlEventStreamBegin:
				c.ucs = append(c.ucs, 0)
			case *message.UserCtrlEventStreamEOF:
				c.ucs = append(c.ucs, 1)
			case *message.UserCtrlEventPingRequest:
				c.ucs = append(c.ucs, 6)
				go c.write(csidControl, 0, 0, &message.UserCtrl{Event: &message.UserCtrlEventPingResponse{Timestamp: e.Timestamp}})
			}
			c.hmu.Unlock()
		case *message.AudioMessage, *message.VideoMessage:
			var r io.Reader
			if a, ok := m.(*message.AudioMessage); ok {
				r = a.Payload
			} else {
				r = m.(*message.VideoMessage).Payload
			}
			p, _ := io.ReadAll(r)
			c.mediaBytes.Add(int64(len(p)))
			c.deliverMedia(rxMsg{At: now, Type: cm.Message.TypeID(), StreamID: cm.StreamID, CSID: csid, TS: ts, Payload: p})
		case *message.DataMessage:
			args, _ := decodeAMF0(m.Body)
			c.deliverMedia(rxMsg{At: now, Type: m.TypeID(), StreamID: cm.StreamID, CSID: csid, TS: ts, Name: m.Name, Args: args})
		case *message.CommandMessage:
			args, _ := decodeAMF0(m.Body)
			msg := rxMsg{At: now, Type: m.TypeID(), StreamID: cm.StreamID, CSID: csid, TS: ts, Name: m.CommandName, TxID: m.TransactionID, Args: args}
			select {
			case c.cmds <- msg:
			case <-c.closing:
				return
			}
		}
		c.maybeAck()
	}
}

// readPanic is a panic inside go-rtmp's chunk reader.
type readPanic struct{ v any }

func (p *readPanic) Error() string { return fmt.Sprintf("go-rtmp chunk reader panicked: %v", p.v) }

func (c *rtmpClient) readMessage(cm *rtmp.ChunkMessage) (csid int, ts uint32, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &readPanic{r}
		}
	}()
	return c.cs.Read(cm)
}

func (c *rtmpClient) deliverMedia(m rxMsg) {
	if c.onMedia != nil {
		c.onMedia(m)
		return
	}
	select {
	case c.media <- m:
	case <-c.closing:
	}
}

// maybeAck acknowledges received bytes every half window, as ffmpeg does.
func (c *rtmpClient) maybeAck() {
	w := uint64(c.ackWindow.Load())
	if w == 0 {
		return
	}
	n := c.cr.n.Load()
	if n-c.lastAck >= w/2 {
		c.lastAck = n
		go c.write(csidControl, 0, 0, &message.Ack{SequenceNumber: uint32(n)})
	}
}

func decodeAMF0(r io.Reader) ([]any, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	br := bytes.NewReader(b)
	dec := message.NewAMFDecoder(br, message.EncodingTypeAMF0)
	var out []any
	for br.Len() > 0 {
		var v any
		if err := dec.Decode(&v); err != nil {
			return out, err
		}
		out = append(out, v)
	}
	return out, nil
}

// amfArgs lets a plain value list be encoded by go-rtmp.
type amfArgs []any

func (a amfArgs) FromArgs(args ...any) error                 { return nil }
func (a amfArgs) ToArgs(message.EncodingType) ([]any, error) { return a, nil }

func (c *rtmpClient) sendCommand(streamID uint32, name string, txid int64, args ...any) error {
	buf := new(bytes.Buffer)
	if err := message.EncodeBodyAnyValues(message.NewAMFEncoder(buf, message.EncodingTypeAMF0), amfArgs(args)); err != nil {
		return err
	}
	return c.write(csidCommand, 0, streamID, &message.CommandMessage{
		CommandName: name, TransactionID: txid, Encoding: message.EncodingTypeAMF0, Body: buf,
	})
}

// waitCmd returns the first command matching pred, keeping every command it
// reads in the history.
func (c *rtmpClient) waitCmd(timeout time.Duration, what string, pred func(rxMsg) bool) (rxMsg, error) {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		select {
		case m := <-c.cmds:
			c.hmu.Lock()
			c.history = append(c.history, m)
			c.hmu.Unlock()
			if pred(m) {
				return m, nil
			}
		case <-c.done:
			// drain what is already queued
			select {
			case m := <-c.cmds:
				c.hmu.Lock()
				c.history = append(c.history, m)
				c.hmu.Unlock()
				if pred(m) {
					return m, nil
				}
				continue
			default:
			}
			return rxMsg{}, fmt.Errorf("%s: connection ended waiting for %s: %v (commands so far: %v)", c.name, what, c.readErr, c.History()) //nolint:errorlint // nil when the client closed itself
		case <-timer.C:
			return rxMsg{}, fmt.Errorf("%s: no %s within %v (commands so far: %v)", c.name, what, timeout, c.History())
		}
	}
}

// History returns the commands consumed so far.
func (c *rtmpClient) History() []string {
	c.hmu.Lock()
	defer c.hmu.Unlock()
	var s []string
	for _, m := range c.history {
		s = append(s, m.String())
	}
	return s
}

func (c *rtmpClient) call(streamID uint32, name string, args ...any) (rxMsg, error) {
	tx := c.nextTx.Add(1)
	if err := c.sendCommand(streamID, name, tx, args...); err != nil {
		return rxMsg{}, fmt.Errorf("%s: send %s: %w", c.name, name, err)
	}
	m, err := c.waitCmd(10*time.Second, fmt.Sprintf("reply to %s (tx %d)", name, tx), func(m rxMsg) bool {
		return (m.Name == "_result" || m.Name == "_error") && m.TxID == tx
	})
	if err != nil {
		return m, err
	}
	if m.Name == "_error" {
		return m, fmt.Errorf("%s: %s rejected: %v", c.name, name, m.Args)
	}
	return m, nil
}

func (c *rtmpClient) connect(app string) error {
	c.nextTx.Store(0)
	m, err := c.call(0, "connect", map[string]any{
		"app":            app,
		"type":           "nonprivate",
		"flashVer":       "LNX 9,0,124,2",
		"tcUrl":          "rtmp://" + c.addr + "/" + app,
		"fpad":           false,
		"capabilities":   15.0,
		"audioCodecs":    4071.0,
		"videoCodecs":    252.0,
		"videoFunction":  1.0,
		"objectEncoding": 0.0,
	})
	if err != nil {
		return err
	}
	if m.code() != "NetConnection.Connect.Success" {
		return fmt.Errorf("%s: connect: code %q, want NetConnection.Connect.Success (%v)", c.name, m.code(), m.Args)
	}
	return nil
}

func (c *rtmpClient) createStream() (uint32, error) {
	m, err := c.call(0, "createStream", nil)
	if err != nil {
		return 0, err
	}
	for _, a := range m.Args {
		if f, ok := a.(float64); ok && f > 0 {
			return uint32(f), nil
		}
	}
	return 0, fmt.Errorf("%s: createStream result without a stream id: %v", c.name, m.Args)
}

// waitStatus waits for an onStatus with one of the given codes on msid;
// any level "error" status fails.
func (c *rtmpClient) waitStatus(msid uint32, timeout time.Duration, codes ...string) (rxMsg, error) {
	var bad rxMsg
	m, err := c.waitCmd(timeout, "onStatus "+strings.Join(codes, "|"), func(m rxMsg) bool {
		if m.Name != "onStatus" {
			return false
		}
		for _, a := range m.Args {
			if obj, ok := asMap(a); ok && obj["level"] == "error" {
				bad = m
				return true
			}
		}
		for _, code := range codes {
			if m.code() == code {
				return true
			}
		}
		return false
	})
	if err != nil {
		return m, err
	}
	if bad.Name != "" {
		return m, fmt.Errorf("%s: error status %s (waiting for %v)", c.name, bad, codes)
	}
	if m.StreamID != msid {
		return m, fmt.Errorf("%s: %s arrived on message stream %d, want %d", c.name, m.code(), m.StreamID, msid)
	}
	return m, nil
}

// publish does connect, createStream and publish(name, "live").
func (c *rtmpClient) publish(app, name string) (uint32, error) {
	if err := c.connect(app); err != nil {
		return 0, err
	}
	sid, err := c.createStream()
	if err != nil {
		return 0, err
	}
	if err := c.sendCommand(sid, "publish", 0, nil, name, "live"); err != nil {
		return 0, err
	}
	if _, err := c.waitStatus(sid, 10*time.Second, "NetStream.Publish.Start"); err != nil {
		return 0, err
	}
	return sid, nil
}

// play does connect, createStream and play(name, -2000) (live or recorded).
func (c *rtmpClient) play(app, name string) (uint32, error) {
	if err := c.connect(app); err != nil {
		return 0, err
	}
	sid, err := c.createStream()
	if err != nil {
		return 0, err
	}
	if err := c.sendCommand(sid, "play", 0, nil, name, -2000.0); err != nil {
		return 0, err
	}
	_ = c.write(csidControl, 0, 0, &message.UserCtrl{Event: &message.UserCtrlEventSetBufferLength{StreamID: sid, LengthMs: 3000}})
	if _, err := c.waitStatus(sid, 10*time.Second, "NetStream.Play.Start"); err != nil {
		return 0, err
	}
	return sid, nil
}

// unpublish ends a publication like ffmpeg does.
func (c *rtmpClient) unpublish(sid uint32, name string) {
	_ = c.sendCommand(0, "FCUnpublish", c.nextTx.Add(1), nil, name)
	_ = c.sendCommand(0, "deleteStream", c.nextTx.Add(1), nil, float64(sid))
	c.flushCommands()
}

func (c *rtmpClient) sendVideo(sid, ts uint32, p []byte) error {
	return c.write(csidVideo, ts, sid, &message.VideoMessage{Payload: bytes.NewReader(p)})
}

func (c *rtmpClient) sendAudio(sid, ts uint32, p []byte) error {
	return c.write(csidAudio, ts, sid, &message.AudioMessage{Payload: bytes.NewReader(p)})
}

func (c *rtmpClient) sendMetadata(sid uint32, meta map[string]any) error {
	buf := new(bytes.Buffer)
	enc := message.NewAMFEncoder(buf, message.EncodingTypeAMF0)
	if err := enc.Encode("onMetaData"); err != nil {
		return err
	}
	if err := enc.Encode(meta); err != nil {
		return err
	}
	return c.write(csidData, 0, sid, &message.DataMessage{Name: "@setDataFrame", Encoding: message.EncodingTypeAMF0, Body: buf})
}

// pause stops reading from the socket (after the message being read).
func (c *rtmpClient) pause() { c.paused.Store(true) }

// ended reports whether the read side has ended, and why.
func (c *rtmpClient) ended() (bool, error) {
	select {
	case <-c.done:
		return true, c.readErr
	default:
		return false, nil
	}
}

// decodeErr describes messages go-rtmp could not decode, if any.
func (c *rtmpClient) decodeErr() string {
	n := c.decodeErrors.Load()
	if n == 0 {
		return ""
	}
	first, _ := c.firstDecErr.Load().(string)
	return fmt.Sprintf("%d undecodable messages, first: %s", n, first)
}

// ---------------------------------------------------------------------------
// Synthetic media: FLV video/audio tag bodies with valid headers.

// avcSeqHeader is an AVC sequence header (FLV: keyframe|AVC, packet type 0)
// with a real AVCDecoderConfigurationRecord for 320x240 baseline.
func avcSeqHeader() []byte {
	sps := []byte{0x67, 0x42, 0xc0, 0x0d, 0xda, 0x05, 0x07, 0xec, 0x04, 0x40, 0x00, 0x00, 0x03, 0x00, 0x40, 0x00, 0x00, 0x0c, 0x83, 0xc5, 0x0a, 0xa8}
	pps := []byte{0x68, 0xce, 0x0f, 0x2c, 0x80}
	b := []byte{0x17, 0x00, 0, 0, 0, // keyframe+AVC, seq header, cts 0
		0x01, sps[1], sps[2], sps[3], 0xff, 0xe1}
	b = append(b, byte(len(sps)>>8), byte(len(sps)))
	b = append(b, sps...)
	b = append(b, 0x01, byte(len(pps)>>8), byte(len(pps)))
	return append(b, pps...)
}

// aacSeqHeader is an AAC sequence header: AAC-LC 44.1kHz stereo.
func aacSeqHeader() []byte { return []byte{0xaf, 0x00, 0x12, 0x10} }

// avcFrame builds an FLV AVC NALU packet of about size bytes whose body
// carries seq so every frame is distinct.
func avcFrame(key bool, seq uint32, size int, fill byte) []byte {
	if size < 16 {
		size = 16
	}
	nalLen := size - 9
	b := make([]byte, size)
	if key {
		b[0] = 0x17
	} else {
		b[0] = 0x27
	}
	b[1] = 0x01 // NALU, cts 0
	b[5], b[6], b[7], b[8] = byte(nalLen>>24), byte(nalLen>>16), byte(nalLen>>8), byte(nalLen)
	if key {
		b[9] = 0x65 // IDR slice
	} else {
		b[9] = 0x41 // non-IDR slice
	}
	b[10], b[11], b[12], b[13] = byte(seq>>24), byte(seq>>16), byte(seq>>8), byte(seq)
	for i := 14; i < size; i++ {
		b[i] = fill + byte(i*7) + byte(seq)
	}
	return b
}

// aacFrame builds an FLV AAC raw packet carrying seq.
func aacFrame(seq uint32, size int) []byte {
	b := make([]byte, max(size, 8))
	b[0], b[1] = 0xaf, 0x01
	b[2], b[3], b[4], b[5] = byte(seq>>24), byte(seq>>16), byte(seq>>8), byte(seq)
	for i := 6; i < len(b); i++ {
		b[i] = byte(i) ^ byte(seq*31)
	}
	return b
}
