package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
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

// player is one cheap subscriber: it parses messages only until the first
// keyframe, then reads raw bytes into a buffer and counts them, sending an
// Acknowledgement each time the server's window is crossed.
type player struct {
	bytes atomic.Uint64 // bytes received after the handshake
	state atomic.Int32

	// Set by the player's goroutine before state leaves playerStarting.
	ttff time.Duration // play sent → first video message
	ttfk time.Duration // play sent → first keyframe (coded data, not a header)
	// Set before state becomes playerFailed or playerDropped.
	err error
}

// playerConfig is what every player of a step shares.
type playerConfig struct {
	addr, app, name string
	setupTimeout    time.Duration // dial through first keyframe
	readTimeout     time.Duration // longest silence tolerated while streaming
	readBuf         int
	rcvLowat        int // SO_RCVLOWAT while counting; 0 leaves the default (1)
}

// run is the player's goroutine. ready is called once when the player
// leaves playerStarting.
func (p *player) run(ctx context.Context, cfg *playerConfig, ready func()) {
	readyOnce := sync.OnceFunc(ready)
	defer readyOnce()
	c, err := dialRTMP(ctx, cfg.addr, cfg.setupTimeout, &p.bytes)
	if err != nil {
		p.err = err
		p.state.Store(playerFailed)
		return
	}
	stopClose := context.AfterFunc(ctx, func() { c.conn.Close() })
	defer stopClose()
	defer c.conn.Close()

	if err := p.setup(c, cfg); err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("stopped during setup: %w", err)
		}
		p.err = err
		p.state.Store(playerFailed)
		return
	}
	p.state.Store(playerStreaming)
	readyOnce()

	err = p.count(c, cfg)
	if ctx.Err() != nil {
		p.state.Store(playerStopped)
		return
	}
	p.err = err
	p.state.Store(playerDropped)
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
	// Live only (-1000 ms), as librtmp asks for live streams.
	if _, err := c.call(id, "play", nil, cfg.name, -1000.0); err != nil {
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

// count reads and discards everything the server sends, counting it, until
// the connection ends. It acknowledges per the window the server set at
// connect (later changes are not seen: messages are no longer parsed).
func (p *player) count(c *clientConn, cfg *playerConfig) error {
	if cfg.rcvLowat > 1 {
		if err := setRcvLowat(c.conn, cfg.rcvLowat); err != nil {
			return fmt.Errorf("SO_RCVLOWAT: %w", err)
		}
	}
	// Bytes the chunk reader buffered past the keyframe were counted when
	// they were read; the reader itself is not needed any more.
	c.r = nil
	buf := make([]byte, cfg.readBuf)
	var deadlineSet time.Time
	for {
		if now := time.Now(); now.Sub(deadlineSet) > time.Second {
			if err := c.conn.SetReadDeadline(now.Add(cfg.readTimeout)); err != nil {
				return err
			}
			deadlineSet = now
		}
		n, err := c.conn.Read(buf)
		if n > 0 {
			total := p.bytes.Add(uint64(n))
			if c.ackWindow > 0 && total-c.lastAck >= c.ackWindow {
				if err := c.conn.SetWriteDeadline(time.Now().Add(cfg.readTimeout)); err != nil {
					return err
				}
				if err := c.maybeAck(total); err != nil {
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
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return fmt.Errorf("%T has no file descriptor", conn)
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := raw.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVLOWAT, n)
	}); err != nil {
		return err
	}
	return serr
}
