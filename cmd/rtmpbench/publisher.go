package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rtmphub/rtmphub/rtmp/amf"
	"github.com/rtmphub/rtmphub/rtmp/message"
)

// publishChunkSize is the chunk size the publisher announces, as encoders
// commonly do.
const publishChunkSize = 4096

// publisher sends the synthetic stream to the server in real time, paced
// by timestamps, the way an encoder such as ffmpeg publishes.
type publisher struct {
	c        *clientConn
	streamID uint32
	plan     streamPlan
	payloads streamPayloads
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	stamp    bool // write the send time into each video frame (stamp.go)

	sent    atomic.Uint64 // media payload bytes sent
	maxLate atomic.Int64  // worst lateness of a frame behind its due time, ns

	errMu sync.Mutex
	err   error // first error that ended the publisher
}

// startPublisher connects, publishes stream name in app and starts sending
// media. It returns once the server has answered NetStream.Publish.Start.
// With stamp, each video frame carries the time it was sent (stamp.go).
func startPublisher(ctx context.Context, addr, app, name string, plan streamPlan, timeout time.Duration, stamp bool) (*publisher, error) {
	c, err := dialRTMP(ctx, addr, timeout, nil)
	if err != nil {
		return nil, fmt.Errorf("publisher: %w", err)
	}
	p := &publisher{c: c, plan: plan, payloads: buildPayloads(plan), stamp: stamp}
	if err := p.setup(addr, app, name); err != nil {
		c.conn.Close()
		return nil, fmt.Errorf("publisher: %w", err)
	}
	if err := c.conn.SetDeadline(time.Time{}); err != nil {
		c.conn.Close()
		return nil, fmt.Errorf("publisher: %w", err)
	}
	ctx, p.cancel = context.WithCancel(ctx)
	context.AfterFunc(ctx, func() { c.conn.Close() })
	p.wg.Add(2)
	go p.readLoop(ctx)
	go p.sendLoop(ctx)
	return p, nil
}

// setup runs connect, releaseStream, FCPublish, createStream and publish
// like ffmpeg: the three stream calls pipelined, publish on the new stream.
func (p *publisher) setup(addr, app, name string) error {
	c := p.c
	if err := c.setChunkSize(publishChunkSize); err != nil {
		return err
	}
	if err := c.connect(addr, app,
		amf.Property{Key: "type", Value: "nonprivate"},
		amf.Property{Key: "flashVer", Value: "FMLE/3.0 (compatible; rtmpbench)"},
	); err != nil {
		return err
	}
	if _, err := c.call(0, "releaseStream", nil, name); err != nil {
		return err
	}
	if _, err := c.call(0, "FCPublish", nil, name); err != nil {
		return err
	}
	id, err := c.createStream()
	if err != nil {
		return err
	}
	p.streamID = id
	if _, err := c.call(id, "publish", nil, name, "live"); err != nil {
		return err
	}
	if err := c.waitStatus("NetStream.Publish.Start"); err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	return nil
}

func (p *publisher) fail(err error) {
	p.errMu.Lock()
	if p.err == nil {
		p.err = err
	}
	p.errMu.Unlock()
	p.cancel()
}

// Err returns the error that stopped the publisher, if it stopped before
// being told to.
func (p *publisher) Err() error {
	p.errMu.Lock()
	defer p.errMu.Unlock()
	return p.err
}

// readLoop consumes what the server sends the publisher (acks, pings,
// status), answering as needed, until the connection closes.
func (p *publisher) readLoop(ctx context.Context) {
	defer p.wg.Done()
	for {
		m, err := p.c.readMessage()
		if err != nil {
			if ctx.Err() == nil {
				p.fail(fmt.Errorf("publisher read: %w", err))
			}
			return
		}
		if m.Type == message.TypeCommandAMF0 {
			if cmd, err := message.DecodeCommand(m); err == nil {
				if err := commandError(cmd); err != nil {
					p.fail(fmt.Errorf("publisher: server said %w", err))
					return
				}
			}
		}
	}
}

// sendLoop sends metadata and sequence headers, then frames paced at real
// time by their timestamps.
func (p *publisher) sendLoop(ctx context.Context) {
	defer p.wg.Done()
	meta, err := p.metadata()
	if err != nil {
		p.fail(err)
		return
	}
	headers := []*message.Message{
		meta,
		{Type: message.TypeVideo, StreamID: p.streamID, Payload: p.payloads.avcHeader},
	}
	if p.plan.AudioSize > 0 {
		headers = append(headers, &message.Message{Type: message.TypeAudio, StreamID: p.streamID, Payload: p.payloads.aacHeader})
	}
	for _, m := range headers {
		if err := p.send(m); err != nil {
			p.fail(err)
			return
		}
	}

	clock := frameClock{plan: p.plan}
	start := time.Now()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		kind, ts := clock.next()
		due := start.Add(time.Duration(ts) * time.Millisecond)
		if d := time.Until(due); d > 0 {
			timer.Reset(d)
			select {
			case <-ctx.Done():
				return
			case <-timer.C:
			}
		} else if ctx.Err() != nil {
			return
		}
		m := p.payloads.message(kind, ts, p.streamID)
		if p.stamp && m.Type == message.TypeVideo {
			m.Payload = stampFrame(m.Payload, time.Now())
		}
		if err := p.send(m); err != nil {
			if ctx.Err() == nil {
				p.fail(err)
			}
			return
		}
		p.sent.Add(uint64(len(m.Payload)))
		if late := int64(time.Since(due)); late > p.maxLate.Load() {
			p.maxLate.Store(late)
		}
	}
}

func (p *publisher) send(m *message.Message) error {
	if err := p.c.conn.SetWriteDeadline(time.Now().Add(10 * time.Second)); err != nil {
		return err
	}
	if err := p.c.write(m); err != nil {
		return fmt.Errorf("publisher send %v: %w", m.Type, err)
	}
	return nil
}

// metadata is the @setDataFrame onMetaData message an encoder sends first.
func (p *publisher) metadata() (*message.Message, error) {
	meta := amf.ECMAArray{
		{Key: "duration", Value: 0.0},
		{Key: "width", Value: 320.0},
		{Key: "height", Value: 240.0},
		{Key: "videodatarate", Value: float64(p.plan.VideoBitrate) / 1000},
		{Key: "framerate", Value: p.plan.FPS},
		{Key: "videocodecid", Value: 7.0},
		{Key: "encoder", Value: "rtmpbench"},
	}
	if p.plan.AudioSize > 0 {
		meta = append(meta,
			amf.Property{Key: "audiodatarate", Value: float64(p.plan.AudioBitrate) / 1000},
			amf.Property{Key: "audiosamplerate", Value: 44100.0},
			amf.Property{Key: "audiosamplesize", Value: 16.0},
			amf.Property{Key: "stereo", Value: true},
			amf.Property{Key: "audiocodecid", Value: 10.0},
		)
	}
	typ, b, err := message.EncodeData(false, "@setDataFrame", "onMetaData", meta)
	if err != nil {
		return nil, fmt.Errorf("encode metadata: %w", err)
	}
	return &message.Message{Type: typ, StreamID: p.streamID, Payload: b}, nil
}

// stop ends publishing and waits for the publisher's goroutines.
func (p *publisher) stop() {
	p.cancel()
	done := make(chan struct{})
	go func() { p.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		p.fail(errors.New("publisher did not stop within 5s"))
	}
}
