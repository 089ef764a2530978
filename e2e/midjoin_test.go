package e2e

import (
	"path/filepath"
	"testing"
	"time"
)

// TestMidStreamJoin: with a 5 s GOP, a player joining 2.5 s after a keyframe
// starts with the cached GOP: its first decoded frame is a keyframe the
// publisher had sent before the player was even started. With
// --gop-cache=false the same player's first frame is the next keyframe,
// sent after it started. Frames are identified by content (MD5 of the
// decoded picture against the publisher's own copy), not by timing.
func TestMidStreamJoin(t *testing.T) {
	e2e(t)
	needFFmpeg(t)
	for _, tc := range []struct {
		name   string
		flags  []string
		cached bool
	}{
		{"gop-cache-default", nil, true},
		{"gop-cache-false", []string{"--gop-cache=false"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			const gop = 125 // 5 s at 25 fps
			srv := startServer(t, tc.flags...)
			pub := startPublisher(t, srv.URL("join"), pubOpts{Seconds: 14, GOP: gop})
			pub.waitFrames(t, gop/2, 20*time.Second) // 2.5 s after keyframe #0

			launchedAt := pub.Frames() // the publisher had sent at least this many frames
			out := filepath.Join(t.TempDir(), "first.md5")
			start := time.Now()
			player := startFFmpegPlayer(t, "player", srv.URL("join"), out, pub.Frames, "-frames:v", "1")
			if !player.wait(20 * time.Second) {
				t.Fatalf("player did not decode a frame within 20s")
			}
			firstFrameAfter := time.Since(start)
			if err := player.exitErr(); err != nil {
				t.Fatalf("player: %v", err)
			}
			// Stop the publisher (cleanly: the reference file gets its trailer).
			pub.stop(10 * time.Second)
			srv.requireAlive(t)

			ref := loadReference(t, pub.Ref, pub.FPS)
			fl, err := parseFrameMD5(out)
			if err != nil || len(fl.Video) == 0 {
				t.Fatalf("player decoded no video frame (%v)", err)
			}
			idx, ok := ref.index[fl.Video[0]]
			if !ok {
				t.Fatalf("player's first frame matches no frame the publisher sent (corrupt start)")
			}
			t.Logf("player launched when the publisher had sent %d frames, sent play at frame %d; first decoded frame is #%d (keyframe %v), %v after launch",
				launchedAt, player.JoinFrame(t), idx, ref.Keyframes[idx], firstFrameAfter.Round(time.Millisecond))
			if !ref.Keyframes[idx] {
				t.Errorf("first decoded frame #%d is not a keyframe", idx)
			}
			if tc.cached && idx > launchedAt {
				t.Errorf("GOP cache on: first frame #%d was sent after the player started (frame %d): the player waited for the next keyframe instead of getting the cached GOP", idx, launchedAt)
			}
			if joined := player.JoinFrame(t); !tc.cached && idx <= joined {
				t.Errorf("--gop-cache=false: first frame #%d was sent before the player sent play (frame %d): it came from a cache", idx, joined)
			}
		})
	}
}
