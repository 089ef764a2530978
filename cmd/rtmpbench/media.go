package main

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/rtmphub/rtmphub/rtmp/message"
)

// AAC frames carry 1024 samples at 44.1 kHz.
const audioFrameRate = 44100.0 / 1024

// Fixed parts of the synthetic payloads.
const (
	videoHeaderLen = 5 // frame type/codec, AVC packet type, composition time (3)
	naluPrefixLen  = 4 // AVCC length prefix of the single NAL unit in a frame
	audioHeaderLen = 2 // sound format byte, AAC packet type
	minVideoFrame  = videoHeaderLen + naluPrefixLen + 1
	minAudioFrame  = audioHeaderLen + 1
)

// A real 320x240 baseline-profile SPS and PPS (from libx264), so that a server
// that parses the AVC sequence header for its dimensions finds sane values.
var (
	benchSPS = []byte{0x67, 0x42, 0xc0, 0x0d, 0xd9, 0x01, 0x41, 0xfb, 0x01, 0x10, 0x00, 0x00,
		0x03, 0x00, 0x10, 0x00, 0x00, 0x03, 0x03, 0x20, 0xf1, 0x42, 0xa4, 0x80}
	benchPPS = []byte{0x68, 0xcb, 0x83, 0xcb, 0x20}
)

// streamPlan is the synthetic live stream: the size of each kind of media
// message, chosen so that the media payload rate matches the target bitrate.
// Sizes are whole message payloads, FLV tag headers included (the 0x17 0x01
// ... bytes), RTMP chunk headers excluded.
type streamPlan struct {
	Bitrate      int     // target total media payload rate, bits per second
	AudioBitrate int     // the audio share of Bitrate
	VideoBitrate int     // the video share of Bitrate
	FPS          float64 // video frames per second
	GOPFrames    int     // frames from one keyframe to the next
	KeyFactor    int     // keyframe size as a multiple of an inter frame
	KeySize      int     // bytes of a keyframe message
	InterSize    int     // bytes of an inter frame message
	AudioSize    int     // bytes of an AAC frame message
}

// defaultAudioBitrate is the audio share of a stream of the given total
// bitrate when none is asked for: 64 kbps, or 30% of a stream under 213k.
func defaultAudioBitrate(bitrate int) int {
	return min(64000, bitrate*3/10)
}

// planStream sizes the frames of a stream of bitrate bits per second with
// audioBitrate of it audio, video at fps frames per second and a keyframe
// every gop, keyframes keyFactor times an inter frame.
func planStream(bitrate, audioBitrate int, fps float64, gop time.Duration, keyFactor int) (streamPlan, error) {
	p := streamPlan{Bitrate: bitrate, AudioBitrate: audioBitrate, FPS: fps, KeyFactor: keyFactor}
	if bitrate <= 0 || audioBitrate < 0 || audioBitrate >= bitrate {
		return p, fmt.Errorf("bitrate %d with audio %d: want 0 <= audio < total", bitrate, audioBitrate)
	}
	if fps <= 0 || fps > 1000 || math.IsNaN(fps) {
		return p, fmt.Errorf("fps %v out of range", fps)
	}
	if keyFactor < 1 {
		return p, fmt.Errorf("keyframe factor %d: want >= 1", keyFactor)
	}
	p.VideoBitrate = bitrate - audioBitrate
	p.GOPFrames = max(1, int(math.Round(gop.Seconds()*fps)))

	if audioBitrate > 0 {
		p.AudioSize = int(math.Round(float64(audioBitrate) / 8 / audioFrameRate))
		if p.AudioSize < minAudioFrame {
			return p, fmt.Errorf("audio bitrate %d too low for %.1f AAC frames/s", audioBitrate, audioFrameRate)
		}
	}
	gopBytes := float64(p.VideoBitrate) / 8 * float64(p.GOPFrames) / fps
	units := float64(p.GOPFrames - 1 + keyFactor)
	p.InterSize = int(math.Round(gopBytes / units))
	p.KeySize = int(math.Round(gopBytes)) - p.InterSize*(p.GOPFrames-1)
	if p.GOPFrames == 1 {
		p.InterSize = 0
	}
	if p.KeySize < minVideoFrame || (p.GOPFrames > 1 && p.InterSize < minVideoFrame) {
		return p, fmt.Errorf("video bitrate %d too low for %v fps", p.VideoBitrate, fps)
	}
	return p, nil
}

// ActualBitrate is the media payload rate the planned sizes produce, which
// differs from Bitrate only by rounding.
func (p streamPlan) ActualBitrate() float64 {
	audio := float64(p.AudioSize) * 8 * audioFrameRate
	gopBytes := float64(p.KeySize + p.InterSize*(p.GOPFrames-1))
	return audio + gopBytes*8*p.FPS/float64(p.GOPFrames)
}

func (p streamPlan) String() string {
	s := fmt.Sprintf("%s stream: video %s %g fps, keyframe every %d frames (%d B key, %d B inter)",
		formatBitrate(p.Bitrate), formatBitrate(p.VideoBitrate), p.FPS, p.GOPFrames, p.KeySize, p.InterSize)
	if p.AudioBitrate > 0 {
		s += fmt.Sprintf(", AAC %s (%d B frames)", formatBitrate(p.AudioBitrate), p.AudioSize)
	}
	return s
}

// frameKind is the kind of a media message in the synthetic stream.
type frameKind uint8

const (
	frameKey frameKind = iota
	frameInter
	frameAudio
)

// frameClock yields the media messages of the stream in timestamp order:
// video frame i at round(i*1000/fps) ms, AAC frame j at
// round(j*1024*1000/44100) ms, video first on a tie.
type frameClock struct {
	plan         streamPlan
	video, audio int
}

func (c *frameClock) videoTS() uint32 {
	return uint32(math.Round(float64(c.video) * 1000 / c.plan.FPS))
}

func (c *frameClock) audioTS() uint32 {
	return uint32(math.Round(float64(c.audio) * 1000 / audioFrameRate))
}

// next returns the next frame's kind and timestamp in milliseconds.
func (c *frameClock) next() (frameKind, uint32) {
	vts := c.videoTS()
	if c.plan.AudioSize > 0 {
		if ats := c.audioTS(); ats < vts {
			c.audio++
			return frameAudio, ats
		}
	}
	kind := frameInter
	if c.video%c.plan.GOPFrames == 0 {
		kind = frameKey
	}
	c.video++
	return kind, vts
}

// streamPayloads holds the message payloads of the synthetic stream, built
// once and shared by every message sent (they are never modified).
type streamPayloads struct {
	avcHeader, aacHeader []byte
	key, inter, audio    []byte
}

func buildPayloads(p streamPlan) streamPayloads {
	var s streamPayloads
	// AVC sequence header: AVCDecoderConfigurationRecord, 4-byte NAL lengths.
	s.avcHeader = []byte{0x17, 0x00, 0, 0, 0,
		1, benchSPS[1], benchSPS[2], benchSPS[3], 0xff, 0xe1, 0, byte(len(benchSPS))}
	s.avcHeader = append(s.avcHeader, benchSPS...)
	s.avcHeader = append(s.avcHeader, 1, 0, byte(len(benchPPS)))
	s.avcHeader = append(s.avcHeader, benchPPS...)
	// AAC sequence header: AudioSpecificConfig, AAC-LC 44.1 kHz stereo.
	s.aacHeader = []byte{0xaf, 0x00, 0x12, 0x10}

	var seed uint32 = 0x9e3779b9
	fill := func(b []byte) {
		for i := range b {
			seed = seed*1664525 + 1013904223
			b[i] = byte(seed >> 24)
		}
	}
	avcFrame := func(size int, flv, nal byte) []byte {
		b := make([]byte, size)
		b[0], b[1] = flv, 0x01
		n := size - videoHeaderLen - naluPrefixLen
		b[5], b[6], b[7], b[8] = byte(n>>24), byte(n>>16), byte(n>>8), byte(n)
		b[9] = nal
		fill(b[10:])
		return b
	}
	s.key = avcFrame(p.KeySize, 0x17, 0x65) // IDR slice
	if p.InterSize > 0 {
		s.inter = avcFrame(p.InterSize, 0x27, 0x41) // non-IDR slice
	}
	if p.AudioSize > 0 {
		s.audio = make([]byte, p.AudioSize)
		s.audio[0], s.audio[1] = 0xaf, 0x01
		fill(s.audio[2:])
	}
	return s
}

// message returns the media message for a frame of the given kind.
func (s *streamPayloads) message(kind frameKind, ts, streamID uint32) *message.Message {
	m := &message.Message{Type: message.TypeVideo, StreamID: streamID, Timestamp: ts}
	switch kind {
	case frameKey:
		m.Payload = s.key
	case frameInter:
		m.Payload = s.inter
	case frameAudio:
		m.Type, m.Payload = message.TypeAudio, s.audio
	}
	return m
}

// isKeyframe reports whether a video message payload (an FLV video tag's
// data) is a keyframe carrying coded data, not a sequence header: an AVC
// keyframe NALU (0x17 0x01), or an Enhanced RTMP keyframe (0x80 set, frame
// type 1) of packet type CodedFrames or CodedFramesX.
func isKeyframe(p []byte) bool {
	if len(p) < 2 {
		return false
	}
	if p[0]&0x80 != 0 { // Enhanced RTMP: IsExHeader, FrameType (3 bits), PacketType (4)
		pt := p[0] & 0x0f
		return (p[0]>>4)&7 == 1 && (pt == 1 || pt == 3)
	}
	return p[0]>>4 == 1 && p[0]&0x0f == 7 && p[1] == 1
}

// parseBitrate parses "232k", "1.5M", "800000" (bits per second).
func parseBitrate(s string) (int, error) {
	t := strings.TrimSpace(strings.ToLower(s))
	t = strings.TrimSuffix(strings.TrimSuffix(t, "bps"), "b")
	mult := 1.0
	switch {
	case strings.HasSuffix(t, "k"):
		mult, t = 1e3, t[:len(t)-1]
	case strings.HasSuffix(t, "m"):
		mult, t = 1e6, t[:len(t)-1]
	case strings.HasSuffix(t, "g"):
		mult, t = 1e9, t[:len(t)-1]
	}
	v, err := strconv.ParseFloat(t, 64)
	if err != nil || v <= 0 || math.IsInf(v, 0) || v*mult > 1e11 {
		return 0, fmt.Errorf("bad bitrate %q (want e.g. 232k, 1.5M, 800000)", s)
	}
	return int(math.Round(v * mult)), nil
}

// formatBitrate prints bits per second compactly: 232k, 1.5M.
func formatBitrate(bps int) string {
	switch {
	case bps >= 1e6 && bps%1e4 == 0:
		return strconv.FormatFloat(float64(bps)/1e6, 'f', -1, 64) + "M"
	case bps >= 1e3 && bps%10 == 0:
		return strconv.FormatFloat(float64(bps)/1e3, 'f', -1, 64) + "k"
	}
	return strconv.Itoa(bps)
}

// parsePlayers parses a comma-separated list of player counts.
func parsePlayers(s string) ([]int, error) {
	var out []int
	for f := range strings.SplitSeq(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("bad player count %q", f)
		}
		out = append(out, n)
	}
	if len(out) == 0 {
		return nil, errors.New("no player counts")
	}
	return out, nil
}

// parseRate parses a connect rate: "500/s", "500", "30/m".
func parseRate(s string) (float64, error) {
	t := strings.TrimSpace(s)
	per := time.Second
	if i := strings.IndexByte(t, '/'); i >= 0 {
		unit := t[i+1:]
		t = t[:i]
		switch unit {
		case "s":
		case "m", "min":
			per = time.Minute
		case "ms":
			per = time.Millisecond
		default:
			return 0, fmt.Errorf("bad rate unit in %q (want /s or /m)", s)
		}
	}
	v, err := strconv.ParseFloat(t, 64)
	if err != nil || v <= 0 || math.IsInf(v, 0) {
		return 0, fmt.Errorf("bad rate %q (want e.g. 500/s)", s)
	}
	return v / per.Seconds(), nil
}
