package session

import (
	"time"

	"github.com/rtmphub/rtmphub/session/sharedobject"
)

// Config holds the core's settings. The zero value of a field means its
// default, filled in by WithDefaults, the one place the defaults live
// (cmd shows them from DefaultConfig); only cmd parses the environment.
//
// Off has one spelling: a field whose default is on is turned off by a
// negative value (WriteMerge, PublisherGrace), since zero already means
// the default; a field whose default is off (ClientIdleTimeout,
// MaxConnectionsPerIP, the bandwidth limits) is off at zero. A boolean
// is named so that false, its zero value, is the default
// (DisableGOPCache, DisableBWCheck).
type Config struct {
	// DataDir is the applications folder: <DataDir>/<app>/...
	DataDir string
	// StrictApps rejects connections to applications that have no folder
	// under DataDir, as FMS does. When false any valid name is accepted.
	StrictApps bool

	MaxConnections int // all clients at once (default 10000)
	// MaxMessageSize bounds the messages accepted from a peer (default
	// 8 MiB, what the binary has always served with; RTMP's own limit is
	// 16 MiB − 1).
	MaxMessageSize uint32
	// MaxConnectionsPerIP bounds the clients at once from one address
	// (0 = no limit).
	MaxConnectionsPerIP int

	// Authorize, when set, is asked before every connect, publish and
	// play (see auth.go); AuthTimeout bounds each answer (default 5s).
	Authorize   Authorizer
	AuthTimeout time.Duration

	// ClientBandwidthOut and ClientBandwidthIn limit every client's
	// traffic, server to client and client to server, in bytes per
	// second (0 = no limit), as FMS's Client.setBandwidthLimit does for
	// one client (see Client.SetBandwidthLimit).
	ClientBandwidthOut int64
	ClientBandwidthIn  int64

	// PlayerQueue bounds a player's outbound queue in messages. Media
	// beyond it is dropped up to the next keyframe.
	PlayerQueue int
	// PlayerQueueBytes bounds the same queue in payload bytes, so that a
	// player stalled on a high-bitrate stream holds little memory.
	PlayerQueueBytes int
	// StallTimeout disconnects a client whose writes make no progress for
	// this long.
	StallTimeout time.Duration
	// GOPCache keeps the last group of pictures so a joining player starts
	// at once from its keyframe. Disabled when DisableGOPCache is set.
	DisableGOPCache bool
	// GOPCacheMaxBytes bounds the cached group; a longer one is not cached.
	GOPCacheMaxBytes int

	// WriteMerge is the longest time audio and data messages wait for the
	// next video frame, so that a player gets both in one write (fewer
	// system calls per player). Negative disables merging; 0 means the
	// default.
	WriteMerge time.Duration
	// MergedWrite is the merged-write window for large audiences (0:
	// off): a live player's media waits up to this long and leaves in one
	// write per window, a few system calls a second per player instead of
	// one per video frame, for that much more latency (see
	// live.Config.MergedWrite). Relays to other hubs, recorders and
	// muxers are not held.
	MergedWrite time.Duration

	// TCPNoDelay keeps TCP_NODELAY on for live players too. By default a
	// client that starts playing a live stream gets Nagle's algorithm back
	// (as every connection has in nginx-rtmp and SRS): the kernel then
	// coalesces the player's small writes while earlier data is
	// unacknowledged, which costs far less CPU per player (measured: 68% of
	// a core vs 44% at 2000 players of a 232 kbps stream) for at most a
	// round trip of added latency. Other clients (RPC, SharedObjects,
	// publishers) always keep TCP_NODELAY.
	TCPNoDelay bool

	OutChunkSize  uint32 // chunk size the server announces and writes with
	WindowAckSize uint32 // window the server asks peers to acknowledge

	HandshakeTimeout time.Duration // handshake and connect must finish within it
	// PublisherIdleTimeout drops a publisher that sends nothing for this long.
	PublisherIdleTimeout time.Duration
	// ClientIdleTimeout drops a connected client that sends nothing for
	// this long while it has no stream publishing or playing, no shared
	// object in use and no call in flight either way: it gets
	// NetConnection.Connect.IdleTimeout, as from FMS, and is closed (see
	// idle.go). 0 or negative is off (the default): RPC and SharedObject
	// clients may stay silent for ever.
	ClientIdleTimeout time.Duration
	// PublisherTakeover lets a new publisher take over a name whose current
	// publisher has sent nothing for this long (a reconnecting encoder whose
	// old connection is not yet known dead); players keep playing.
	PublisherTakeover time.Duration
	// PublisherGrace keeps a stream whose publisher vanished without
	// unpublishing for this long, so a reconnecting encoder resumes it and
	// players never see the interruption (default 3s; negative: off,
	// players are told at once).
	PublisherGrace time.Duration

	// VODBuffer is how far ahead of real time recorded streams are sent
	// to a client that has not set a buffer length (SetBufferLength);
	// otherwise its buffer length is.
	VODBuffer time.Duration
	// VODIndexCache bounds the stream files whose keyframe index,
	// metadata and sequence headers are kept in memory.
	VODIndexCache int
	// RecordQueueBytes bounds the media waiting to be written by a
	// recording; a disk that falls this far behind stops the recording
	// (NetStream.Record.Failed) while live streaming goes on.
	RecordQueueBytes int

	// Cluster, when set, is asked about live streams so that several hubs
	// serve as one (see cluster.go and package cluster); nil: this hub is
	// alone.
	Cluster Cluster
	// Owners, when set, is asked which hub owns each application
	// instance (see cluster.go); nil: every instance is this hub's.
	Owners InstanceOwners
	// SORelay, with Owners, forwards the shared object messages of
	// clients whose instance another hub owns (nil: they use this hub's
	// objects).
	SORelay SORelay
	// AppRelay, with Owners, runs the application of an instance another
	// hub owns there, for this hub's clients (remote.go); nil: every hub
	// runs its own.
	AppRelay AppRelay
	// SOStore, when set, keeps persistent shared objects instead of files
	// (several hubs: the cluster's store).
	SOStore sharedobject.Store

	// Application, when set, gives each application instance the
	// Application that answers its clients' calls (nil: none; calls the
	// core does not know then fail with NetConnection.Call.Failed).
	Application func(app, instance string) Application
	// CallTimeout fails a server-to-client call the client has not
	// answered in this long.
	CallTimeout time.Duration
	// DisableBWCheck turns off the native bandwidth check (checkBandwidth).
	DisableBWCheck bool

	// SOSyncInterval is the shared object sync period: changes within one
	// are sent in one message per subscriber.
	SOSyncInterval time.Duration
	// SOSaveInterval is the longest a changed persistent shared object
	// waits before it is written to disk (it is also written when its last
	// subscriber leaves).
	SOSaveInterval time.Duration
	// MaxSharedObjects bounds the shared objects in use per instance.
	MaxSharedObjects int
	// MaxSOSize bounds one shared object: bytes of keys and encoded values.
	MaxSOSize int
	// MaxSOProperties bounds the slots of one shared object.
	MaxSOProperties int
}

// DefaultConfig is the configuration the zero Config stands for: every
// default filled in.
func DefaultConfig() Config { return Config{}.WithDefaults() }

// WithDefaults returns c with every zero field set to its default, as
// NewServer runs with it.
func (c Config) WithDefaults() Config {
	if c.DataDir == "" {
		c.DataDir = "./data"
	}
	if c.MaxConnections <= 0 {
		c.MaxConnections = 10000
	}
	if c.MaxMessageSize == 0 {
		c.MaxMessageSize = 8 << 20
	}
	if c.PlayerQueue <= 0 {
		c.PlayerQueue = 512
	}
	if c.PlayerQueueBytes <= 0 {
		c.PlayerQueueBytes = 4 << 20
	}
	if c.StallTimeout <= 0 {
		c.StallTimeout = 10 * time.Second
	}
	if c.GOPCacheMaxBytes <= 0 {
		c.GOPCacheMaxBytes = 8 << 20
	}
	if c.WriteMerge == 0 {
		c.WriteMerge = 50 * time.Millisecond
	}
	if c.OutChunkSize == 0 {
		c.OutChunkSize = 4096
	}
	if c.WindowAckSize == 0 {
		c.WindowAckSize = 2500000
	}
	if c.HandshakeTimeout <= 0 {
		c.HandshakeTimeout = 10 * time.Second
	}
	if c.PublisherIdleTimeout <= 0 {
		c.PublisherIdleTimeout = 30 * time.Second
	}
	if c.PublisherTakeover <= 0 {
		c.PublisherTakeover = 2 * time.Second
	}
	if c.PublisherGrace < 0 {
		c.PublisherGrace = 0
	} else if c.PublisherGrace == 0 {
		c.PublisherGrace = 3 * time.Second
	}
	if c.VODBuffer <= 0 {
		c.VODBuffer = 2 * time.Second
	}
	if c.VODIndexCache <= 0 {
		c.VODIndexCache = 128
	}
	if c.AuthTimeout <= 0 {
		c.AuthTimeout = 5 * time.Second
	}
	if c.RecordQueueBytes <= 0 {
		c.RecordQueueBytes = 16 << 20
	}
	if c.CallTimeout <= 0 {
		c.CallTimeout = 30 * time.Second
	}
	if c.SOSyncInterval <= 0 {
		c.SOSyncInterval = 20 * time.Millisecond
	}
	if c.SOSaveInterval <= 0 {
		c.SOSaveInterval = time.Second
	}
	if c.MaxSharedObjects <= 0 {
		c.MaxSharedObjects = 1000
	}
	if c.MaxSOSize <= 0 {
		c.MaxSOSize = 1 << 20
	}
	if c.MaxSOProperties <= 0 {
		c.MaxSOProperties = 10000
	}
	return c
}
