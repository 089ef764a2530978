// Package pull plays a live stream from another hub over RTMP and hands
// its messages to a local publication: the data path of an edge's pull.
// It starts no goroutines and never logs; the caller (package cluster)
// runs it, retries it and logs.
package pull

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/rtmphub/rtmphub/rtmp/amf"
	"github.com/rtmphub/rtmphub/rtmp/client"
	"github.com/rtmphub/rtmphub/rtmp/message"
)

// Sink takes the pulled stream's messages, on Run's goroutine.
type Sink interface {
	// Start is called before the first message: the origin publishes.
	Start() error
	// Write takes one audio, video or data message ("@setDataFrame"
	// onMetaData for metadata, as a publisher sends it).
	Write(m *message.Message)
}

// Options describe one pull.
type Options struct {
	// URL is the origin's connect URL, rtmp://host:port/app/instance[?query].
	URL string
	// Stream is the play name, with its query (the pull token).
	Stream string
	// Dial opens the byte stream; default TCP.
	Dial func(ctx context.Context, addr string) (net.Conn, error)
	// ConnectTimeout bounds dial, connect, createStream and play (default 5s).
	ConnectTimeout time.Duration
	// IdleTimeout ends a pull that received nothing for this long
	// (default 10s): the origin or its publisher is gone.
	IdleTimeout time.Duration
	// Started, when set, is called once the play started.
	Started func()
}

// ErrUnpublished ends a pull whose origin says the stream was unpublished.
var ErrUnpublished = errors.New("pull: stream unpublished at the origin")

// Run connects to the origin, plays the stream and writes what it
// receives to sink until ctx ends, the origin unpublishes the stream
// (ErrUnpublished) or the connection fails. It returns the number of
// media messages it wrote.
func Run(ctx context.Context, opt Options, sink Sink) (int, error) {
	if opt.ConnectTimeout <= 0 {
		opt.ConnectTimeout = 5 * time.Second
	}
	if opt.IdleTimeout <= 0 {
		opt.IdleTimeout = 10 * time.Second
	}
	cctx, cancel := context.WithTimeout(ctx, opt.ConnectTimeout)
	defer cancel()
	c, err := client.Dial(cctx, opt.URL, client.Options{Dial: opt.Dial, FlashVer: "LNX 9,0,124,2 rtmphub-pull"})
	if err != nil {
		return 0, fmt.Errorf("connect: %w", err)
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	msid, err := c.CreateStream(cctx)
	if err != nil {
		return 0, fmt.Errorf("createStream: %w", err)
	}
	// start -1000: live only (never a recording of the same name).
	if err := c.Play(cctx, msid, opt.Stream, -1000); err != nil {
		return 0, fmt.Errorf("play: %w", err)
	}
	if opt.Started != nil {
		opt.Started()
	}
	started := false
	n := 0
	for {
		c.SetReadDeadline(time.Now().Add(opt.IdleTimeout))
		m, err := c.ReadMessage()
		if err != nil {
			if ctx.Err() != nil {
				return n, ctx.Err()
			}
			return n, err
		}
		if m.StreamID != msid {
			continue
		}
		switch m.Type {
		case message.TypeAudio, message.TypeVideo:
		case message.TypeDataAMF0, message.TypeDataAMF3:
			if m = metadata(m); m == nil {
				continue
			}
		case message.TypeCommandAMF0, message.TypeCommandAMF3:
			if unpublished(m) {
				return n, ErrUnpublished
			}
			continue
		default:
			continue
		}
		if !started {
			if err := sink.Start(); err != nil {
				return n, err
			}
			started = true
		}
		sink.Write(m)
		if m.Type != message.TypeDataAMF0 {
			n++
		}
	}
}

// setDataFrame is "@setDataFrame" as an AMF0 string.
var setDataFrame = append([]byte{0x02, 0, 13}, "@setDataFrame"...)

// metadata returns the data message a publisher would have sent for m,
// which the origin sent to its player: onMetaData becomes "@setDataFrame"
// onMetaData (kept for readers who join the edge later); what the origin
// says to its players alone (|RtmpSampleAccess, onStatus) is dropped (nil).
func metadata(m *message.Message) *message.Message {
	body := m.Payload
	if m.Type == message.TypeDataAMF3 {
		body = message.AMF3Body(body)
	}
	name, _, ok := message.DataName(body)
	switch {
	case !ok || name == "|RtmpSampleAccess" || name == "onStatus":
		return nil
	case name == "onMetaData":
		p := make([]byte, 0, len(setDataFrame)+len(body))
		p = append(append(p, setDataFrame...), body...)
		return &message.Message{Type: message.TypeDataAMF0, StreamID: m.StreamID, Timestamp: m.Timestamp, Payload: p}
	}
	return &message.Message{Type: message.TypeDataAMF0, StreamID: m.StreamID, Timestamp: m.Timestamp, Payload: body}
}

// unpublished reports whether m is onStatus NetStream.Play.UnpublishNotify.
func unpublished(m *message.Message) bool {
	cmd, err := message.DecodeCommand(m)
	if err != nil || cmd.Name != "onStatus" {
		return false
	}
	for _, a := range cmd.Args { // the info object (after a null, from some servers)
		if o, ok := a.(amf.Object); ok {
			code, _ := o.GetString("code")
			return code == "NetStream.Play.UnpublishNotify"
		}
	}
	return false
}
