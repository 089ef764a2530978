package main

import (
	"math"
	"testing"
	"time"
)

func TestPlanStream(t *testing.T) {
	tests := []struct {
		name                     string
		bitrate, audio           int
		fps                      float64
		gop                      time.Duration
		keyFactor                int
		wantGOP, wantKey, wantIn int
		wantAudio                int
	}{
		// 168 kbps video = 21000 B/s; a 1 s GOP of 25 frames is 24 inter
		// frames plus a keyframe worth 5: 29 units of 724 B.
		{"232k default", 232000, 64000, 25, time.Second, 5, 25, 21000 - 724*24, 724, 186},
		{"1M 30fps 2s gop", 1000000, 128000, 30, 2 * time.Second, 5, 60, 0, 0, 372},
		{"all keyframes", 500000, 0, 10, 0, 5, 1, 6250, 0, 0},
		{"no audio", 232000, 0, 25, time.Second, 5, 25, 0, 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := planStream(tc.bitrate, tc.audio, tc.fps, tc.gop, tc.keyFactor)
			if err != nil {
				t.Fatal(err)
			}
			if p.GOPFrames != tc.wantGOP {
				t.Errorf("GOPFrames = %d, want %d", p.GOPFrames, tc.wantGOP)
			}
			if tc.wantKey != 0 && p.KeySize != tc.wantKey {
				t.Errorf("KeySize = %d, want %d", p.KeySize, tc.wantKey)
			}
			if tc.wantIn != 0 && p.InterSize != tc.wantIn {
				t.Errorf("InterSize = %d, want %d", p.InterSize, tc.wantIn)
			}
			if p.AudioSize != tc.wantAudio {
				t.Errorf("AudioSize = %d, want %d", p.AudioSize, tc.wantAudio)
			}
			if p.GOPFrames > 1 {
				if r := float64(p.KeySize) / float64(p.InterSize); math.Abs(r-float64(tc.keyFactor)) > 0.1 {
					t.Errorf("key/inter = %.2f, want ~%d", r, tc.keyFactor)
				}
			}
			if got := p.ActualBitrate(); math.Abs(got-float64(tc.bitrate))/float64(tc.bitrate) > 0.002 {
				t.Errorf("ActualBitrate = %.0f, want %d ±0.2%%", got, tc.bitrate)
			}
		})
	}
}

func TestPlanStreamErrors(t *testing.T) {
	bad := []struct {
		name           string
		bitrate, audio int
		fps            float64
	}{
		{"zero", 0, 0, 25},
		{"audio >= total", 64000, 64000, 25},
		{"fps 0", 232000, 64000, 0},
		{"video too small", 64100, 64000, 25},
		{"audio too small", 100000, 500, 25},
	}
	for _, tc := range bad {
		if _, err := planStream(tc.bitrate, tc.audio, tc.fps, time.Second, 5); err == nil {
			t.Errorf("%s: no error", tc.name)
		}
	}
}

// The frames the clock yields over a long stretch carry the planned bitrate,
// in timestamp order, with a keyframe every GOP.
func TestFrameClockBitrate(t *testing.T) {
	for _, br := range []int{64000, 232000, 1500000, 6000000} {
		p, err := planStream(br, defaultAudioBitrate(br), 25, time.Second, 5)
		if err != nil {
			t.Fatal(err)
		}
		s := buildPayloads(p)
		c := frameClock{plan: p}
		var bytes int
		var last uint32
		var videos, keys, audios int
		const seconds = 60
		for {
			kind, ts := c.next()
			if ts >= seconds*1000 {
				break
			}
			if ts < last {
				t.Fatalf("timestamp went back: %d after %d", ts, last)
			}
			last = ts
			m := s.message(kind, ts, 1)
			bytes += len(m.Payload)
			switch kind {
			case frameKey:
				if !isKeyframe(m.Payload) {
					t.Fatalf("keyframe payload starts % x", m.Payload[:2])
				}
				if videos%p.GOPFrames != 0 {
					t.Fatalf("keyframe at video frame %d, GOP %d", videos, p.GOPFrames)
				}
				keys++
				videos++
			case frameInter:
				if isKeyframe(m.Payload) || m.Payload[0] != 0x27 {
					t.Fatalf("inter payload starts % x", m.Payload[:2])
				}
				videos++
			case frameAudio:
				if m.Payload[0] != 0xaf || m.Payload[1] != 1 {
					t.Fatalf("audio payload starts % x", m.Payload[:2])
				}
				audios++
			}
		}
		if videos != 25*seconds || keys != seconds {
			t.Errorf("%d: %d video frames, %d keyframes in %ds", br, videos, keys, seconds)
		}
		if want := int(math.Floor(audioFrameRate * seconds)); audios < want || audios > want+1 {
			t.Errorf("%d: %d audio frames in %ds, want %d", br, audios, seconds, want)
		}
		got := float64(bytes) * 8 / seconds
		if math.Abs(got-float64(br))/float64(br) > 0.005 {
			t.Errorf("%d: stream carries %.0f bps", br, got)
		}
	}
}

func TestPayloads(t *testing.T) {
	p, err := planStream(232000, 64000, 25, time.Second, 5)
	if err != nil {
		t.Fatal(err)
	}
	s := buildPayloads(p)
	if s.avcHeader[0] != 0x17 || s.avcHeader[1] != 0 || s.avcHeader[5] != 1 {
		t.Errorf("AVC sequence header starts % x", s.avcHeader[:6])
	}
	if isKeyframe(s.avcHeader) {
		t.Error("sequence header taken for a keyframe")
	}
	if len(s.key) != p.KeySize || len(s.inter) != p.InterSize || len(s.audio) != p.AudioSize {
		t.Errorf("sizes %d/%d/%d, plan %d/%d/%d", len(s.key), len(s.inter), len(s.audio), p.KeySize, p.InterSize, p.AudioSize)
	}
	// The AVCC length prefix covers the rest of the frame.
	for _, f := range [][]byte{s.key, s.inter} {
		n := int(f[5])<<24 | int(f[6])<<16 | int(f[7])<<8 | int(f[8])
		if n != len(f)-9 {
			t.Errorf("NAL length %d in a %d-byte frame", n, len(f))
		}
	}
	if s.key[9]&0x1f != 5 || s.inter[9]&0x1f != 1 {
		t.Errorf("NAL types %d, %d", s.key[9]&0x1f, s.inter[9]&0x1f)
	}
}

func TestParseBitrate(t *testing.T) {
	good := map[string]int{"232k": 232000, "1.5M": 1500000, "800000": 800000, "64kbps": 64000, " 2m ": 2000000}
	for in, want := range good {
		if got, err := parseBitrate(in); err != nil || got != want {
			t.Errorf("parseBitrate(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "k", "-1k", "abc", "1e20", "0"} {
		if _, err := parseBitrate(in); err == nil {
			t.Errorf("parseBitrate(%q): no error", in)
		}
	}
	for bps, want := range map[int]string{232000: "232k", 1500000: "1.5M", 999: "999", 64000: "64k"} {
		if got := formatBitrate(bps); got != want {
			t.Errorf("formatBitrate(%d) = %q, want %q", bps, got, want)
		}
	}
}

func TestParsePlayersAndRate(t *testing.T) {
	ps, err := parsePlayers("100, 500,2000")
	if err != nil || len(ps) != 3 || ps[0] != 100 || ps[2] != 2000 {
		t.Errorf("parsePlayers = %v, %v", ps, err)
	}
	for _, in := range []string{"", "0", "10,x", "-5"} {
		if _, err := parsePlayers(in); err == nil {
			t.Errorf("parsePlayers(%q): no error", in)
		}
	}
	for in, want := range map[string]float64{"500/s": 500, "500": 500, "60/m": 1, "2/ms": 2000} {
		if got, err := parseRate(in); err != nil || got != want {
			t.Errorf("parseRate(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "0/s", "5/h", "x"} {
		if _, err := parseRate(in); err == nil {
			t.Errorf("parseRate(%q): no error", in)
		}
	}
}

func TestDefaultAudioBitrate(t *testing.T) {
	for br, want := range map[int]int{232000: 64000, 1500000: 64000, 100000: 30000} {
		if got := defaultAudioBitrate(br); got != want {
			t.Errorf("defaultAudioBitrate(%d) = %d, want %d", br, got, want)
		}
	}
}

func TestIsKeyframe(t *testing.T) {
	for _, tc := range []struct {
		p    []byte
		want bool
	}{
		{[]byte{0x17, 0x01, 0, 0, 0}, true},  // AVC keyframe NALU
		{[]byte{0x17, 0x00, 0, 0, 0}, false}, // AVC sequence header
		{[]byte{0x27, 0x01, 0, 0, 0}, false}, // AVC inter frame
		{[]byte{0x17, 0x02}, false},          // AVC end of sequence
		{[]byte{0x12, 0x00}, false},          // Sorenson keyframe: not what the bench publishes
		{[]byte{0x17}, false},
		{nil, false},
		{[]byte{0x91, 'h', 'v', 'c', '1'}, true},  // Enhanced RTMP keyframe, CodedFrames
		{[]byte{0x93, 'h', 'v', 'c', '1'}, true},  // keyframe, CodedFramesX
		{[]byte{0x90, 'h', 'v', 'c', '1'}, false}, // SequenceStart
		{[]byte{0xa1, 'h', 'v', 'c', '1'}, false}, // inter frame, CodedFrames
		{[]byte{0xd0, 'a', 'v', '0', '1'}, false}, // command frame (5), SequenceStart
		{[]byte{0x95, 'a', 'v', '0', '1'}, false}, // keyframe, MPEG2TSSequenceStart
	} {
		if got := isKeyframe(tc.p); got != tc.want {
			t.Errorf("isKeyframe(% x) = %v, want %v", tc.p, got, tc.want)
		}
	}
}
