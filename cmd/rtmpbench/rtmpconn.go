package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rtmphub/rtmphub/rtmp/amf"
	"github.com/rtmphub/rtmphub/rtmp/chunk"
	"github.com/rtmphub/rtmphub/rtmp/handshake"
	"github.com/rtmphub/rtmphub/rtmp/message"
)

// maxMessageSize bounds one incoming message; the largest the bench sees is
// a keyframe of the synthetic stream.
const maxMessageSize = 16 << 20

// User control events the clients answer or note.
const (
	ucPingRequest  = 6
	ucPingResponse = 7
)

// countingReader counts every byte read through it into n.
type countingReader struct {
	r io.Reader
	n *atomic.Uint64
}

func (c countingReader) Read(p []byte) (int, error) {
	k, err := c.r.Read(p)
	c.n.Add(uint64(k))
	return k, err
}

// clientConn is the client side of one RTMP connection while it is set up:
// chunked messages both ways, acknowledgements per the server's window, and
// answers to pings. Writes are serialised, so a reader goroutine may answer
// while another goroutine sends media.
type clientConn struct {
	conn net.Conn
	r    *chunk.Reader
	in   *atomic.Uint64 // bytes received after the handshake

	wmu sync.Mutex
	w   *chunk.Writer

	ackWindow uint64 // the server's WindowAckSize; 0 until it sends one
	lastAck   uint64 // the byte count last acknowledged
	tx        float64
}

// dialRTMP connects to addr and completes a simple handshake. The
// connection's deadline is set to now+timeout; callers move it on.
func dialRTMP(ctx context.Context, addr string, timeout time.Duration, in *atomic.Uint64) (*clientConn, error) {
	d := net.Dialer{Timeout: timeout}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	if err := conn.SetDeadline(time.Now().Add(timeout)); err != nil {
		conn.Close()
		return nil, err
	}
	if err := handshake.Client(conn, false); err != nil {
		conn.Close()
		return nil, fmt.Errorf("handshake: %w", err)
	}
	if in == nil {
		in = new(atomic.Uint64)
	}
	return &clientConn{
		conn: conn,
		r:    chunk.NewReader(countingReader{conn, in}, maxMessageSize),
		w:    chunk.NewWriter(conn),
		in:   in,
	}, nil
}

func (c *clientConn) write(m *message.Message) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.w.WriteMessage(m)
}

// setChunkSize announces and adopts an outgoing chunk size.
func (c *clientConn) setChunkSize(n uint32) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := c.w.WriteMessage(controlMessage(message.TypeSetChunkSize, n)); err != nil {
		return err
	}
	c.w.SetChunkSize(n)
	return nil
}

// call sends command name with the next transaction id and returns the id.
func (c *clientConn) call(streamID uint32, name string, obj any, args ...any) (float64, error) {
	c.tx++
	typ, p, err := message.EncodeCommand(&message.Command{
		Name: name, TransactionID: c.tx, Object: obj, Args: args,
	}, false)
	if err != nil {
		return 0, fmt.Errorf("encode %s: %w", name, err)
	}
	if err := c.write(&message.Message{Type: typ, StreamID: streamID, Payload: p}); err != nil {
		return 0, fmt.Errorf("send %s: %w", name, err)
	}
	return c.tx, nil
}

// readMessage reads the next message, acknowledges received bytes when the
// server's window is crossed, records WindowAckSize and answers pings.
func (c *clientConn) readMessage() (*message.Message, error) {
	m, err := c.r.ReadMessage()
	if err != nil {
		return nil, err
	}
	switch m.Type {
	case message.TypeWindowAckSize:
		if len(m.Payload) >= 4 {
			c.ackWindow = uint64(binary.BigEndian.Uint32(m.Payload))
		}
	case message.TypeUserControl:
		if len(m.Payload) >= 6 && binary.BigEndian.Uint16(m.Payload) == ucPingRequest {
			p := make([]byte, 6)
			binary.BigEndian.PutUint16(p, ucPingResponse)
			copy(p[2:], m.Payload[2:6])
			if err := c.write(&message.Message{Type: message.TypeUserControl, Payload: p}); err != nil {
				return nil, fmt.Errorf("send ping response: %w", err)
			}
		}
	}
	if err := c.maybeAck(c.in.Load()); err != nil {
		return nil, err
	}
	return m, nil
}

// maybeAck sends an Acknowledgement when total bytes received have moved a
// whole window past the last one acknowledged (RTMP 1.0, 5.4.3).
func (c *clientConn) maybeAck(total uint64) error {
	if c.ackWindow == 0 || total-c.lastAck < c.ackWindow {
		return nil
	}
	c.lastAck = total
	if err := c.write(controlMessage(message.TypeAck, uint32(total))); err != nil {
		return fmt.Errorf("send ack: %w", err)
	}
	return nil
}

// statusError is an onStatus or _error reply of level "error".
type statusError struct {
	Command string
	Code    string
	Desc    string
}

func (e *statusError) Error() string {
	if e.Desc != "" {
		return fmt.Sprintf("%s %s: %s", e.Command, e.Code, e.Desc)
	}
	return e.Command + " " + e.Code
}

// infoField returns a string field of an AMF info object.
func infoField(v any, key string) string {
	var s string
	switch o := v.(type) {
	case amf.Object:
		s, _ = o.GetString(key)
	case amf.ECMAArray:
		s, _ = o.GetString(key)
	}
	return s
}

// commandError returns the error a command reports: _error, or an onStatus
// whose info object has level "error".
func commandError(cmd *message.Command) error {
	info := cmd.Arg(0)
	switch {
	case cmd.Name == "_error":
		return &statusError{Command: cmd.Name, Code: infoField(info, "code"), Desc: infoField(info, "description")}
	case cmd.Name == "onStatus" && infoField(info, "level") == "error":
		return &statusError{Command: cmd.Name, Code: infoField(info, "code"), Desc: infoField(info, "description")}
	}
	return nil
}

// waitResult reads until the _result or _error of transaction tx, failing on
// any error status on the way. Other messages are dropped.
func (c *clientConn) waitResult(tx float64) (*message.Command, error) {
	for {
		m, err := c.readMessage()
		if err != nil {
			return nil, err
		}
		if m.Type != message.TypeCommandAMF0 && m.Type != message.TypeCommandAMF3 {
			continue
		}
		cmd, err := message.DecodeCommand(m)
		if err != nil {
			return nil, err
		}
		if cmd.Name == "_result" || cmd.Name == "_error" {
			if cmd.TransactionID != tx {
				continue
			}
			return cmd, commandError(cmd)
		}
		if err := commandError(cmd); err != nil {
			return nil, err
		}
	}
}

// waitStatus reads until an onStatus with the given code.
func (c *clientConn) waitStatus(code string) error {
	for {
		m, err := c.readMessage()
		if err != nil {
			return err
		}
		if m.Type != message.TypeCommandAMF0 && m.Type != message.TypeCommandAMF3 {
			continue
		}
		cmd, err := message.DecodeCommand(m)
		if err != nil {
			return err
		}
		if err := commandError(cmd); err != nil {
			return err
		}
		if cmd.Name == "onStatus" && infoField(cmd.Arg(0), "code") == code {
			return nil
		}
	}
}

// connect sends connect for app with the given extra command object
// properties and waits for its result.
func (c *clientConn) connect(addr, app string, props ...amf.Property) error {
	obj := amf.Object{
		{Key: "app", Value: app},
		{Key: "tcUrl", Value: "rtmp://" + addr + "/" + app},
	}
	obj = append(obj, props...)
	tx, err := c.call(0, "connect", obj)
	if err != nil {
		return err
	}
	if _, err := c.waitResult(tx); err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	return nil
}

// createStream creates a message stream and returns its id.
func (c *clientConn) createStream() (uint32, error) {
	tx, err := c.call(0, "createStream", nil)
	if err != nil {
		return 0, err
	}
	res, err := c.waitResult(tx)
	if err != nil {
		return 0, fmt.Errorf("createStream: %w", err)
	}
	// The reply is _result, txid, null, id. Take the first number after the
	// command object so that a server that sends extra nulls still gets
	// measured, but say so once.
	for i, v := range res.Args {
		id, ok := amf.Number(v)
		if !ok {
			continue
		}
		if id < 0 || id > 1<<24 {
			break
		}
		if i > 0 {
			oddCreateStream.Do(func() {
				log.Printf("warning: the server's createStream _result has %d value(s) between the null command object and the stream id: %#v", i, res.Args)
			})
		}
		return uint32(id), nil
	}
	return 0, fmt.Errorf("createStream: result %#v (object %#v) holds no stream id", res.Args, res.Object)
}

var oddCreateStream sync.Once

// controlMessage builds a protocol control message with one 32-bit value.
func controlMessage(t message.Type, v uint32) *message.Message {
	p := make([]byte, 4)
	binary.BigEndian.PutUint32(p, v)
	return &message.Message{Type: t, Payload: p}
}
