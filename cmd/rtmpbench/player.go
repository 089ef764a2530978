package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/rtmphub/rtmphub/rtmp/amf"
	"github.com/rtmphub/rtmphub/rtmp/message"
)

// Player states.
const (
	playerStarting  int32 = iota // connecting, or waiting for the first keyframe
	playerStreaming              // counting bytes
	playerFailed                 // never got to streaming
	playerDropped                // streamed, then the connection ended before the stop
	playerStopped                // streamed until told to stop
)

// Player protocols (-protocol).
const (
	protoRTMP    = "rtmp"
	protoHTTPFLV = "http-flv"
	protoHLS     = "hls"
)

// player is one cheap subscriber. Over RTMP or HTTP-FLV it parses the
// stream only until the first keyframe, then reads raw bytes into a buffer
// and counts them (an RTMP player also sends an Acknowledgement each time
// the server's window is crossed). An HLS player follows the LL-HLS
// playlists and downloads each new part (hls.go).
type player struct {
	bytes atomic.Uint64 // bytes received: after the RTMP handshake, the whole HTTP-FLV response, or HLS init sections and parts
	state atomic.Int32

	// Set by the player's goroutine before state leaves playerStarting.
	ttff time.Duration // play or GET sent → first video message or tag, or HLS part
	ttfk time.Duration // play or GET sent → first keyframe (coded data, not a header)
	// Set before state becomes playerFailed or playerDropped.
	err error

	// probe: an RTMP player that parses every message, without
	// SO_RCVLOWAT, and notes the latency of each stamped video frame.
	probe bool
	lagMu sync.Mutex
	lags  []lagSample
}

// lagSamples returns a copy of the probe's samples so far.
func (p *player) lagSamples() []lagSample {
	p.lagMu.Lock()
	defer p.lagMu.Unlock()
	return slices.Clone(p.lags)
}

// playerConfig is what every player of a step shares.
type playerConfig struct {
	protocol        string       // protoRTMP, protoHTTPFLV or protoHLS
	http            *http.Client // HLS: shared by the step's players
	addr, app, name string
	setupTimeout    time.Duration // dial through first keyframe
	readTimeout     time.Duration // longest silence tolerated while streaming
	readBuf         int
	rcvLowat        int // SO_RCVLOWAT while counting; 0 leaves the default (1)
	// pool, when not nil, counts RTMP and HTTP-FLV players' bytes once
	// they stream, instead of a goroutine each (-read-pool).
	pool *readPool
}

// run is the player's goroutine. ready is called once when the player
// leaves playerStarting.
func (p *player) run(ctx context.Context, cfg *playerConfig, ready func()) {
	readyOnce := sync.OnceFunc(ready)
	defer readyOnce()
	var err error
	switch cfg.protocol {
	case protoHTTPFLV:
		err = p.runFLV(ctx, cfg, readyOnce)
	case protoHLS:
		err = p.runHLS(ctx, cfg, readyOnce)
	case protoRTMPT:
		err = p.runRTMPT(ctx, cfg, readyOnce)
	default:
		err = p.runRTMP(ctx, cfg, readyOnce)
	}
	switch {
	case p.state.Load() == playerStarting:
		if ctx.Err() != nil {
			err = fmt.Errorf("stopped during setup: %w", err)
		}
		p.err = err
		p.state.Store(playerFailed)
	case ctx.Err() != nil:
		p.state.Store(playerStopped)
	default:
		p.err = err
		p.state.Store(playerDropped)
	}
}

// streaming marks the end of the player's setup.
func (p *player) streaming(ready func()) {
	p.state.Store(playerStreaming)
	ready()
}

// runRTMP plays over RTMP until the connection ends or ctx is done.
func (p *player) runRTMP(ctx context.Context, cfg *playerConfig, ready func()) error {
	c, err := dialRTMP(ctx, cfg.addr, cfg.setupTimeout, &p.bytes)
	if err != nil {
		return err
	}
	stopClose := context.AfterFunc(ctx, func() { c.conn.Close() })
	defer stopClose()
	defer c.conn.Close()

	if err := p.setup(c, cfg); err != nil {
		return err
	}
	p.streaming(ready)
	if p.probe {
		return p.probeLag(c, cfg)
	}
	// Bytes the chunk reader buffered past the keyframe were counted when
	// they were read; the reader itself is not needed any more.
	c.r = nil
	if cfg.pool != nil {
		return cfg.pool.count(ctx, c.conn, &p.bytes, c.ackWindow, c.lastAck)
	}
	// Acknowledge per the window the server set at connect (later changes
	// are not seen: messages are no longer parsed).
	var ack func(total uint64) error
	if c.ackWindow > 0 {
		ack = func(total uint64) error {
			if total-c.lastAck < c.ackWindow {
				return nil
			}
			if err := c.conn.SetWriteDeadline(time.Now().Add(cfg.readTimeout)); err != nil {
				return err
			}
			return c.maybeAck(total)
		}
	}
	return p.count(c.conn, cfg, ack)
}

// probeLag reads and parses messages until the connection ends, noting
// receive time − the publisher's stamp of each stamped video frame. Bytes
// are counted by the connection's counting reader, acknowledgements and
// pings answered by readMessage.
func (p *player) probeLag(c *clientConn, cfg *playerConfig) error {
	for {
		if err := c.conn.SetReadDeadline(time.Now().Add(cfg.readTimeout)); err != nil {
			return err
		}
		m, err := c.readMessage()
		if err != nil {
			switch {
			case errors.Is(err, io.EOF):
				return errors.New("server closed the connection")
			case errors.Is(err, os.ErrDeadlineExceeded):
				return fmt.Errorf("no data for %v", cfg.readTimeout)
			}
			return err
		}
		if m.Type != message.TypeVideo {
			continue
		}
		now := time.Now()
		if sent, ok := readStamp(m.Payload); ok {
			p.lagMu.Lock()
			p.lags = append(p.lags, lagSample{at: now, lag: now.Sub(sent)})
			p.lagMu.Unlock()
		}
	}
}

// setup connects, creates a stream, plays the bench stream and reads until
// the first keyframe, noting when the first video message and the first
// keyframe arrived.
func (p *player) setup(c *clientConn, cfg *playerConfig) error {
	err := c.connect(cfg.addr, cfg.app,
		amf.Property{Key: "flashVer", Value: "LNX 9,0,124,2"},
		amf.Property{Key: "fpad", Value: false},
		amf.Property{Key: "capabilities", Value: 15.0},
		amf.Property{Key: "audioCodecs", Value: 4071.0},
		amf.Property{Key: "videoCodecs", Value: 252.0},
		amf.Property{Key: "videoFunction", Value: 1.0},
	)
	if err != nil {
		return err
	}
	id, err := c.createStream()
	if err != nil {
		return err
	}
	// Live only (-1000 ms), as librtmp asks for live streams; VOD players
	// the recorded stream only, from its start (0).
	start := -1000.0
	if cfg.protocol == protoVOD {
		start = 0
	}
	if _, err := c.call(id, "play", nil, cfg.name, start); err != nil {
		return err
	}
	sent := time.Now()
	for {
		m, err := c.readMessage()
		if err != nil {
			if p.ttff == 0 {
				return fmt.Errorf("waiting for the first video message: %w", err)
			}
			return fmt.Errorf("waiting for the first keyframe: %w", err)
		}
		switch m.Type {
		case message.TypeVideo:
			if p.ttff == 0 {
				p.ttff = max(time.Since(sent), time.Nanosecond)
			}
			if isKeyframe(m.Payload) {
				p.ttfk = max(time.Since(sent), time.Nanosecond)
				return nil
			}
		case message.TypeCommandAMF0, message.TypeCommandAMF3:
			cmd, err := message.DecodeCommand(m)
			if err != nil {
				return err
			}
			if err := commandError(cmd); err != nil {
				return fmt.Errorf("play: %w", err)
			}
		}
	}
}

// count reads and discards everything the server sends on conn, counting
// it, until the connection ends. After each read that got data, ack (when
// not nil) is given the total count so far.
func (p *player) count(conn net.Conn, cfg *playerConfig, ack func(total uint64) error) error {
	if cfg.rcvLowat > 1 {
		if err := setRcvLowat(conn, cfg.rcvLowat); err != nil {
			return fmt.Errorf("SO_RCVLOWAT: %w", err)
		}
	}
	buf := make([]byte, cfg.readBuf)
	var deadlineSet time.Time
	for {
		if now := time.Now(); now.Sub(deadlineSet) > time.Second {
			if err := conn.SetReadDeadline(now.Add(cfg.readTimeout)); err != nil {
				return err
			}
			deadlineSet = now
		}
		n, err := conn.Read(buf)
		if n > 0 {
			total := p.bytes.Add(uint64(n))
			if ack != nil {
				if err := ack(total); err != nil {
					return err
				}
			}
		}
		if err != nil {
			switch {
			case errors.Is(err, io.EOF):
				return errors.New("server closed the connection")
			case errors.Is(err, os.ErrDeadlineExceeded):
				return fmt.Errorf("no data for %v", cfg.readTimeout)
			}
			return err
		}
	}
}

// setRcvLowat sets SO_RCVLOWAT: the kernel wakes the reader only once n
// bytes are buffered (a non-blocking read still returns what there is), so
// a player costs a few wakeups a second instead of one per message.
func setRcvLowat(conn net.Conn, n int) error {
	var serr error
	if err := controlFD(conn, func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVLOWAT, n)
	}); err != nil {
		return err
	}
	return serr
}

// controlFD calls fn with conn's file descriptor (see syscall.RawConn's
// Control).
func controlFD(conn net.Conn, fn func(fd uintptr)) error {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return fmt.Errorf("%T has no file descriptor", conn)
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return err
	}
	return raw.Control(fn)
}
