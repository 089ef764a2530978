package hls

import (
	"log/slog"
	"time"

	"github.com/bluenviron/gohlslib/v2"
)

// Config tunes the HLS muxers. A zero field takes its default (see
// populate, the one place defaults live).
type Config struct {
	// Variant is gohlslib's variant: MuxerVariantLowLatency (the
	// default, fMP4 with parts; plain HLS players read the same playlist
	// and ignore the parts), MuxerVariantFMP4, or MuxerVariantMPEGTS
	// (H.264 and AAC only).
	Variant gohlslib.MuxerVariant
	// SegmentCount is how many segments a playlist keeps (default 7, the
	// LL-HLS minimum gohlslib accepts).
	SegmentCount int
	// SegmentMinDuration is the shortest segment; a segment ends at the
	// first keyframe after it (default 1s).
	SegmentMinDuration time.Duration
	// PartMinDuration is the shortest LL-HLS part (default 200ms).
	PartMinDuration time.Duration
	// SegmentMaxSize bounds one segment in bytes (default 50 MiB, as
	// gohlslib); a larger segment is an encode error and the frames that
	// would overflow it are lost.
	SegmentMaxSize uint64
	// Idle closes a muxer, and detaches its reader, once no request has
	// come for this long (default 15s).
	Idle time.Duration
	// MaxMuxers bounds the muxers at once (default 256); a request that
	// needs one more is answered 503.
	MaxMuxers int
	// Queue bounds the audio and video packets waiting for a muxer's
	// goroutine (default 512, about 7 s of 25 fps video with AAC audio); a
	// full queue refuses media and the stream skips the muxer to the next
	// keyframe.
	Queue int
	// QueueBytes bounds the payload bytes of those packets (default 64
	// MiB), the same way: packets share the stream's payloads, but a
	// queue that holds them keeps them alive.
	QueueBytes int
	// Log is where muxers report; per-muxer lines carry the stream key.
	Log *slog.Logger
}

// Defaults.
const (
	defaultSegmentCount       = 7
	defaultSegmentMinDuration = time.Second
	defaultPartMinDuration    = 200 * time.Millisecond
	defaultSegmentMaxSize     = 50 << 20
	defaultIdle               = 15 * time.Second
	defaultMaxMuxers          = 256
	defaultQueue              = 512
	defaultQueueBytes         = 64 << 20
)

// populate fills in the defaults.
func (c Config) populate() Config {
	if c.Variant == 0 {
		c.Variant = gohlslib.MuxerVariantLowLatency
	}
	if c.SegmentCount <= 0 {
		c.SegmentCount = defaultSegmentCount
	}
	if c.Variant == gohlslib.MuxerVariantLowLatency && c.SegmentCount < 7 {
		c.SegmentCount = 7 // gohlslib refuses fewer for LL-HLS
	}
	if c.SegmentCount < 3 {
		c.SegmentCount = 3 // and fewer than 3 for the others
	}
	if c.SegmentMinDuration <= 0 {
		c.SegmentMinDuration = defaultSegmentMinDuration
	}
	if c.PartMinDuration <= 0 {
		c.PartMinDuration = defaultPartMinDuration
	}
	if c.SegmentMaxSize == 0 {
		c.SegmentMaxSize = defaultSegmentMaxSize
	}
	if c.Idle <= 0 {
		c.Idle = defaultIdle
	}
	if c.MaxMuxers <= 0 {
		c.MaxMuxers = defaultMaxMuxers
	}
	if c.Queue <= 0 {
		c.Queue = defaultQueue
	}
	if c.QueueBytes <= 0 {
		c.QueueBytes = defaultQueueBytes
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	return c
}

// DefaultConfig is the configuration the zero Config stands for: every
// default filled in.
func DefaultConfig() Config { return Config{}.populate() }

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config { return c.populate() }
