package session

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rtmphub/rtmphub/rtmp/message"
	"github.com/rtmphub/rtmphub/session/live"
	"github.com/rtmphub/rtmphub/session/outqueue"
	"github.com/rtmphub/rtmphub/session/record"
	"github.com/rtmphub/rtmphub/session/vod"
)

// Client is one connected peer: its identity as FMS reports it, its
// streams, and its outbound queue.
type Client struct {
	srv  *Server
	t    Transport
	id   uint64
	info ConnInfo
	ip   string
	log  *slog.Logger

	connectedAt time.Time
	bytesIn     atomic.Uint64 // the transport's BytesRead, for readers on other goroutines
	pingRTT     atomic.Int64  // last ping round trip, ns; -1 before any answer
	bw          bandwidth     // limits (bandwidth.go)

	// Set by connect, read-only afterwards.
	connected      bool
	inst           *Instance
	app            string
	tcURL          string
	agent          string // flashVer
	pageURL        string
	swfURL         string
	query          string
	amf3           bool // objectEncoding 3
	enhanced       bool // the client sent a fourCcList
	bufferLength   atomic.Uint32
	streams        map[uint32]*netStream // reader goroutine only
	nextStreamID   uint32
	publishTimeout bool

	// Outbound queue, drained by a writer goroutine while it holds
	// messages (drain), or written inline by a publisher (writeNow); a
	// field rather than a pointer (see outqueue.Queue.Init).
	out     outqueue.Queue
	writers sync.WaitGroup

	closeOnce sync.Once
	reason    error

	rpc       rpcState    // server-to-client calls (rpc.go)
	idle      idleState   // Config.ClientIdleTimeout (idle.go)
	bwRunning atomic.Bool // a bandwidth check runs (bwcheck.go)
	accepted  atomic.Bool // the application accepted its connect (a reroute moves it)
	sos       soRoute     // shared objects in use (so_client.go)

	// What only a cluster needs (remote.go), made at first use: 88 bytes
	// that took a Client from 688 to 768 bytes, a malloc size class
	// bigger, for every player of a hub alone.
	cl atomic.Pointer[clientCluster]

	// FMS readAccess / writeAccess (access.go); nil is "/".
	readACL, writeACL atomic.Pointer[accessList]
}

// netStream is a message stream a client created: it publishes or plays.
type netStream struct {
	id     uint32
	pub    *live.Publication
	player *live.Subscription
	vod    *vod.Player      // playing recorded streams (play.go)
	rec    *record.Recorder // recording what pub publishes (record.go)
	name   string           // what it last published or played (stop commands by name)
}

const maxStreamsPerClient = 64

func newClient(s *Server, t Transport, info ConnInfo, log *slog.Logger) *Client {
	c := &Client{
		srv:         s,
		t:           t,
		id:          s.nextID.Add(1),
		info:        info,
		connectedAt: time.Now(),
		streams:     make(map[uint32]*netStream),
	}
	c.ip = info.RemoteIP
	if c.ip == "" {
		if host, _, err := net.SplitHostPort(t.RemoteAddr().String()); err == nil {
			c.ip = host
		} else {
			c.ip = t.RemoteAddr().String()
		}
	}
	c.pingRTT.Store(-1)
	c.log = log.With("client", c.id)
	c.out.Init(s.cfg.queueLimits(),
		func() {
			c.writers.Add(1)
			go c.drain(nil, false)
		})
	return c
}

// ID is the client's id, unique in this server's lifetime.
func (c *Client) ID() uint64 { return c.id }

// Protocol is how the client reached the server ("rtmp", "rtmpt", ...).
func (c *Client) Protocol() string { return c.info.Protocol }

// IP is the client's address.
func (c *Client) IP() string { return c.ip }

// run serves the client until it leaves. Its goroutine spends most of
// its life parked in ReadMessage (a player), so run and readLoop keep
// their frames small, with the work before and after in functions of
// their own: see Server.StartConn.
func (c *Client) run(ctx context.Context) error {
	stop := c.start(ctx)
	c.readLoop()
	stop()
	c.finish()
	return c.reason
}

// start prepares the transport and returns what stops the server's
// context from closing the client.
func (c *Client) start(ctx context.Context) (stop func() bool) {
	c.t.SetWriteTimeout(c.srv.cfg.StallTimeout)
	stop = context.AfterFunc(ctx, func() { c.close(fmt.Errorf("server stopping: %w", context.Cause(ctx))) })
	c.t.SetReadDeadline(time.Now().Add(c.srv.cfg.HandshakeTimeout))
	c.SetBandwidthLimit(c.srv.cfg.ClientBandwidthOut, c.srv.cfg.ClientBandwidthIn)
	return stop
}

// readLoop reads and handles messages until the client ends.
func (c *Client) readLoop() {
	var paced uint64
	idle := c.idleOn()
	for {
		m, err := c.t.ReadMessage()
		read := c.t.BytesRead()
		c.bytesIn.Store(read)
		if err != nil {
			if idle && c.idleExpired(err) {
				c.closeIdle()
				return
			}
			c.close(readError(err, c.connected))
			return
		}
		c.paceIn(read, &paced)
		if idle {
			c.idleBeforeMessage()
		}
		publishing := c.publishTimeout
		if err := c.handle(m); err != nil {
			c.close(err)
			return
		}
		if idle {
			c.idleAfterMessage()
		} else if publishing && !c.publishTimeout {
			// Stopped publishing: PublisherIdleTimeout's deadline, set at
			// its last media message, must not cut the client later.
			c.t.SetReadDeadline(time.Time{})
		}
	}
}

// finish detaches the client once its reading ended, waits for its
// writers and logs why it closed.
func (c *Client) finish() {
	c.cleanup()
	c.writers.Wait()
	attrs := []any{"reason", c.reason.Error(), "bytes_in", c.t.BytesRead(), "bytes_out", c.t.BytesWritten(),
		"duration", time.Since(c.connectedAt).Round(time.Millisecond).String()}
	if c.connected {
		attrs = append(attrs, "app", c.app)
	}
	c.log.Info("closed", attrs...)
	c.accessDisconnect()
}

// readError turns a transport read error into the reason logged.
func readError(err error, connected bool) error {
	switch {
	case errors.Is(err, io.EOF):
		return errors.New("client disconnected")
	case errors.Is(err, net.ErrClosed):
		return errors.New("connection closed")
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		if !connected {
			return errors.New("no connect command in time")
		}
		return errors.New("read timeout")
	}
	return fmt.Errorf("read: %w", err)
}

// close ends the client with reason; the first reason wins.
func (c *Client) close(reason error) {
	c.closeOnce.Do(func() {
		c.reason = reason
		c.out.Close()
		c.t.Close()
	})
}

// closeWhenWritten ends the client with reason once what is queued now
// has been written: its writer closes it then, or this does at once when
// the queue is written already.
func (c *Client) closeWhenWritten(reason error) {
	if c.out.CloseWhenWritten(reason) {
		c.close(reason)
	}
}

// Close disconnects the client.
func (c *Client) Close(reason string) { c.close(errors.New(reason)) }

// cleanup detaches the client's streams and leaves its instance. It runs on
// the reader goroutine after the read loop ends.
func (c *Client) cleanup() {
	for _, ns := range c.streams {
		c.closeNetStream(ns, false)
	}
	c.closeCalls()
	c.releaseSharedObjects()
	if owner := c.appOwnerNow(); owner != "" && c.inst != nil {
		c.srv.cfg.AppRelay.CloseRemote(owner, c.inst.app, c.inst.name, c.id)
	}
	if c.remoteHub() != "" && c.inst != nil {
		c.endRemoteStreams() // onUnpublish before onDisconnect (remote.go)
	}
	if c.inst != nil {
		if h, ok := c.inst.application().(DisconnectHandler); ok && c.connected {
			h.Disconnect(c)
		}
		c.inst.removeClient(c)
	}
}

// --- outbound queue ---

// hardQueueLimit bounds the messages that are never dropped (commands,
// status, control) on top of the media queue: a client that lets this many
// pile up is not reading and is disconnected.
const hardQueueLimit = 1024

// send queues messages that must not be dropped; a client that lets too
// many pile up is not reading and is disconnected.
func (c *Client) send(msgs ...message.Message) {
	if err := c.out.Send(msgs...); err != nil {
		c.srv.stats.SlowDisconnects.Add(1)
		c.close(fmt.Errorf("%w: client not reading", err))
	}
}

// inlineWriter is a transport that can write without ever blocking (see
// rtmp.Conn.TryWriteMessages).
type inlineWriter interface {
	TryWriteMessages(msgs []message.Message) (taken, more bool, err error)
}

// writeNow writes the queue on the caller's goroutine when the transport
// can do so without blocking, and hands over to a drain goroutine when it
// cannot (a full socket, another write under way). A publisher's goroutine
// uses it to reach its players without a goroutine switch per write.
func (c *Client) writeNow() {
	tw, ok := c.t.(inlineWriter)
	if !ok || c.outLimited() {
		c.out.Kick()
		return
	}
	batch := c.out.TakeInline()
	if batch == nil {
		return // the running drain takes it
	}
	taken, more, err := tw.TryWriteMessages(batch)
	switch {
	case err != nil:
		c.writeFailed(err)
		c.out.Release()
		return
	case !taken:
		c.writers.Add(1)
		go c.drain(batch, false)
		return
	}
	if c.out.DoneInline(batch, more) { // unwritten bytes, or messages queued meanwhile
		c.writers.Add(1)
		go c.drain(nil, more)
	}
}

// writeFailed ends the client after a failed write.
func (c *Client) writeFailed(err error) {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		c.srv.stats.SlowDisconnects.Add(1)
		c.close(fmt.Errorf("write stalled for %v: client too slow", c.srv.cfg.StallTimeout))
	} else {
		c.close(fmt.Errorf("write: %w", err))
	}
}

// drain writes the outbound queue until it is empty: everything queued
// since the last write goes out in one batch. It runs only while there is
// something to write, so an idle client holds no writer goroutine (and no
// stack). first is a batch already taken from the queue; flush asks it to
// finish the transport's unwritten bytes first. A batch that cannot be
// written within the stall timeout ends the client.
func (c *Client) drain(first []message.Message, flush bool) {
	defer c.writers.Done()
	batch := first
	var why error
	if batch == nil && !flush {
		batch, why = c.out.Next(nil)
	}
	for batch != nil || flush {
		flush = false
		if err := c.writeBatch(batch); err != nil {
			c.writeFailed(err)
			c.out.Release()
			return
		}
		batch, why = c.out.Next(batch)
	}
	if why != nil {
		c.close(why)
	}
}

// Ping sends the client a ping request (user control 6); its answer sets
// the round-trip time Stats reports. It returns false when the client is
// gone.
func (c *Client) Ping() bool {
	if c.out.Closed() {
		return false
	}
	ms := uint32(time.Since(c.connectedAt).Milliseconds())
	c.send(*message.UserControl{Event: message.UCPingRequest, StreamID: ms}.Message())
	return true
}

// pingAnswered records the round trip of a ping sent at ms after connect.
func (c *Client) pingAnswered(ms uint32) {
	rtt := time.Since(c.connectedAt) - time.Duration(ms)*time.Millisecond
	if rtt >= 0 && rtt < time.Hour {
		c.pingRTT.Store(int64(rtt))
	}
}

// ClientStats are a client's counters, as FMS's Client.getStats reports.
type ClientStats struct {
	BytesIn, BytesOut uint64
	PingRTT           time.Duration // -1 before a ping was answered
	Connected         time.Duration
}

// Stats returns the client's counters.
func (c *Client) Stats() ClientStats {
	// The transport's read count belongs to the reader goroutine; bytesIn
	// is its copy for other goroutines.
	return ClientStats{BytesIn: c.bytesIn.Load(), BytesOut: c.t.BytesWritten(),
		PingRTT: time.Duration(c.pingRTT.Load()), Connected: time.Since(c.connectedAt)}
}

// mediaSocket tunes the client's socket for a media player: unless
// Config.TCPNoDelay is set, Nagle's algorithm is turned back on so that
// the kernel coalesces the player's small writes (much less CPU per
// player, at most a round trip of latency). Other clients keep the
// default TCP_NODELAY, so that RPC replies and SharedObject updates are
// never held back.
func (c *Client) mediaSocket() {
	if c.srv.cfg.TCPNoDelay {
		return
	}
	if nd, ok := c.t.(interface{ SetNoDelay(bool) error }); ok {
		nd.SetNoDelay(false)
	}
}

// sendCommand encodes a command in the client's object encoding and queues it.
func (c *Client) sendCommand(msid uint32, cmd *message.Command) {
	typ, payload, err := message.EncodeCommand(cmd, c.amf3)
	if err != nil {
		c.log.Error("encoding command", "command", cmd.Name, "err", err)
		return
	}
	c.send(message.Message{Type: typ, StreamID: msid, ChunkStreamID: message.DefaultCSID(typ, msid), Payload: payload})
}

// sendData encodes a data message and queues it on stream msid.
func (c *Client) sendData(msid uint32, vals ...any) {
	typ, payload, err := message.EncodeData(c.amf3, vals...)
	if err != nil {
		c.log.Error("encoding data message", "err", err)
		return
	}
	c.send(message.Message{Type: typ, StreamID: msid, ChunkStreamID: message.CSIDStream, Payload: payload})
}
