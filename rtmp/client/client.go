// Package client is a small synchronous RTMP client: dial, handshake,
// connect, create streams, publish, play, call. The caller drives it by
// reading messages; it starts no goroutines and never logs. rtmphub uses
// it in tests, in the load tool and for server-to-server connections.
package client

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/rtmphub/rtmphub/rtmp"
	"github.com/rtmphub/rtmphub/rtmp/amf"
	"github.com/rtmphub/rtmphub/rtmp/message"
)

// Options tune a connection. The zero value connects like FFmpeg playing.
type Options struct {
	FlashVer       string  // default "LNX 9,0,124,2"
	ObjectEncoding float64 // 0 or 3
	Digest         bool    // Flash Player 9 handshake
	Extra          amf.Object
	ConnectArgs    []any
	// Dial opens the byte stream; default TCP. Tunnels plug in here.
	Dial           func(ctx context.Context, addr string) (net.Conn, error)
	MaxMessageSize uint32
}

// Conn is a connected client.
type Conn struct {
	*rtmp.Conn
	URL     *url.URL
	App     string
	Result  *message.Command // the connect _result or _error
	amf3    bool
	txid    float64
	backlog []*message.Message
}

// StatusError is an error-level onStatus or _error reply.
type StatusError struct {
	Code, Description string
}

func (e *StatusError) Error() string { return e.Code + ": " + e.Description }

// Dial connects to rawURL (rtmp://host[:port]/app[/instance]) and sends
// connect; it returns once the server accepted, or a *StatusError when it
// rejected. Every wait is bounded by ctx.
func Dial(ctx context.Context, rawURL string, opt Options) (*Conn, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, err
	}
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), "1935")
	}
	dial := opt.Dial
	if dial == nil {
		dial = func(ctx context.Context, addr string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "tcp", addr)
		}
	}
	nc, err := dial(ctx, host)
	if err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { nc.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if opt.MaxMessageSize == 0 {
		opt.MaxMessageSize = 16 << 20
	}
	rc, err := rtmp.Dial(nc, opt.Digest, opt.MaxMessageSize)
	if err != nil {
		nc.Close()
		return nil, err
	}
	c := &Conn{Conn: rc, URL: u, App: strings.TrimPrefix(u.Path, "/"), amf3: opt.ObjectEncoding == 3}
	if u.RawQuery != "" {
		c.App += "?" + u.RawQuery
	}
	if opt.FlashVer == "" {
		opt.FlashVer = "LNX 9,0,124,2"
	}
	tcURL := *u
	obj := amf.Object{
		{Key: "app", Value: c.App},
		{Key: "flashVer", Value: opt.FlashVer},
		{Key: "tcUrl", Value: tcURL.String()},
		{Key: "fpad", Value: false},
		{Key: "capabilities", Value: 15.0},
		{Key: "audioCodecs", Value: 4071.0},
		{Key: "videoCodecs", Value: 252.0},
		{Key: "videoFunction", Value: 1.0},
		{Key: "objectEncoding", Value: opt.ObjectEncoding},
	}
	obj = append(obj, opt.Extra...)
	res, err := c.call(ctx, &message.Command{Name: "connect", Object: obj, Args: opt.ConnectArgs}, 0)
	c.Result = res
	if err != nil {
		rc.Close()
		return nil, err
	}
	nc.SetDeadline(time.Time{})
	return c, nil
}

// WriteCommand sends cmd on stream msid in the connection's encoding.
func (c *Conn) WriteCommand(msid uint32, cmd *message.Command) error {
	typ, p, err := message.EncodeCommand(cmd, c.amf3)
	if err != nil {
		return err
	}
	return c.WriteMessages([]message.Message{{Type: typ, StreamID: msid, Payload: p}})
}

// Call invokes a method on the server and waits for its _result (the
// reply's arguments) or _error (a *StatusError).
func (c *Conn) Call(ctx context.Context, name string, args ...any) (*message.Command, error) {
	return c.call(ctx, &message.Command{Name: name, Args: args}, 0)
}

func (c *Conn) call(ctx context.Context, cmd *message.Command, msid uint32) (*message.Command, error) {
	c.txid++
	cmd.TransactionID = c.txid
	if err := c.WriteCommand(msid, cmd); err != nil {
		return nil, err
	}
	for {
		m, err := c.readCtx(ctx)
		if err != nil {
			return nil, err
		}
		if m.Type == message.TypeCommandAMF0 || m.Type == message.TypeCommandAMF3 {
			r, err := message.DecodeCommand(m)
			if err == nil && (r.Name == "_result" || r.Name == "_error") && r.TransactionID == cmd.TransactionID {
				if r.Name == "_error" {
					return r, statusOf(r)
				}
				return r, nil
			}
		}
		c.backlog = append(c.backlog, m)
	}
}

// statusOf returns the *StatusError of an _error or error-level onStatus.
func statusOf(r *message.Command) error {
	for _, a := range r.Args {
		if o, ok := a.(amf.Object); ok {
			code, _ := o.Get("code")
			desc, _ := o.Get("description")
			cs, _ := code.(string)
			ds, _ := desc.(string)
			return &StatusError{Code: cs, Description: ds}
		}
	}
	return &StatusError{Code: r.Name}
}

// CreateStream creates a message stream and returns its id.
func (c *Conn) CreateStream(ctx context.Context) (uint32, error) {
	r, err := c.Call(ctx, "createStream")
	if err != nil {
		return 0, err
	}
	id, ok := amf.Number(r.Arg(0))
	if !ok {
		return 0, fmt.Errorf("createStream result %v has no stream id", r.Args)
	}
	return uint32(id), nil
}

// Publish publishes name on stream msid (typ live, record or append) and
// waits for NetStream.Publish.Start.
func (c *Conn) Publish(ctx context.Context, msid uint32, name, typ string) error {
	if err := c.WriteCommand(msid, &message.Command{Name: "publish", Args: []any{name, typ}}); err != nil {
		return err
	}
	_, err := c.WaitStatus(ctx, msid, "NetStream.Publish.Start")
	return err
}

// Play sends play(name, start) on stream msid and waits for
// NetStream.Play.Start. start is in milliseconds as on the wire (-2000
// live or recorded, -1000 live only).
func (c *Conn) Play(ctx context.Context, msid uint32, name string, start float64) error {
	if err := c.WriteCommand(msid, &message.Command{Name: "play", Args: []any{name, start}}); err != nil {
		return err
	}
	_, err := c.WaitStatus(ctx, msid, "NetStream.Play.Start")
	return err
}

// WaitStatus reads until an onStatus with code arrives on msid and returns
// its info object; an error-level status first is returned as an error.
// Other messages are kept for ReadMessage.
func (c *Conn) WaitStatus(ctx context.Context, msid uint32, code string) (amf.Object, error) {
	var keep []*message.Message
	defer func() { c.backlog = append(c.backlog, keep...) }()
	for {
		m, err := c.readCtx(ctx)
		if err != nil {
			return nil, err
		}
		if (m.Type == message.TypeCommandAMF0 || m.Type == message.TypeCommandAMF3) && m.StreamID == msid {
			if r, err := message.DecodeCommand(m); err == nil && r.Name == "onStatus" {
				o, _ := r.Arg(0).(amf.Object)
				got, _ := o.Get("code")
				level, _ := o.Get("level")
				if got == code {
					return o, nil
				}
				if level == "error" {
					return o, statusOf(r)
				}
			}
		}
		keep = append(keep, m)
	}
}

// ReadMessage returns messages kept while waiting for replies first, then
// reads from the connection.
func (c *Conn) ReadMessage() (*message.Message, error) {
	if len(c.backlog) > 0 {
		m := c.backlog[0]
		c.backlog = c.backlog[1:]
		return m, nil
	}
	return c.Conn.ReadMessage()
}

// readCtx reads one message from the wire, bounded by ctx.
func (c *Conn) readCtx(ctx context.Context) (*message.Message, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		c.SetReadDeadline(dl)
		defer c.SetReadDeadline(time.Time{})
	}
	m, err := c.Conn.ReadMessage()
	if err != nil && ctx.Err() != nil {
		return nil, errors.Join(ctx.Err(), err)
	}
	return m, err
}
