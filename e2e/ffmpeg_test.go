package e2e

import (
	"path/filepath"
	"testing"
	"time"
)

// TestFFmpegPublishFFmpegAndRtmpdumpPlay: ffmpeg publishes H.264/AAC live;
// two ffmpeg players and one rtmpdump player join while it is live. Each must
// decode at least 90% of the video frames sent after it started, frame for
// frame identical to what was published, plus the audio of that window, and
// must end by itself when the publisher ends.
func TestFFmpegPublishFFmpegAndRtmpdumpPlay(t *testing.T) {
	e2e(t)
	needFFmpeg(t)
	needTool(t, "rtmpdump")
	srv := startServer(t)
	dir := t.TempDir()

	const seconds = 16
	pub := startPublisher(t, srv.URL("s1"), pubOpts{Seconds: seconds, GOP: 25})
	pub.waitFrames(t, 75, 20*time.Second) // ~3s in: live, with a GOP cached

	// A player's window: every frame the publisher sends after the player
	// reported sending play (ffmpeg: "Sending play command", rtmpdump:
	// "Starting Live Stream") until the end of the stream.
	ff1 := startFFmpegPlayer(t, "ffmpeg player 1", srv.URL("s1"), filepath.Join(dir, "ff1.md5"), pub.Frames)
	ff2 := startFFmpegPlayer(t, "ffmpeg player 2", srv.URL("s1"), filepath.Join(dir, "ff2.md5"), pub.Frames)
	rdFLV := filepath.Join(dir, "rtmpdump.flv")
	rd := startRtmpdump(t, "rtmpdump", srv.URL("s1"), rdFLV, pub.Frames)

	pub.finish(t, seconds*time.Second+30*time.Second)
	t.Logf("publisher sent %d frames in %v", pub.Frames(), pub.took().Round(time.Millisecond))
	srv.requireAlive(t)
	for _, p := range []*player{ff1, ff2, rd} {
		awaitPlayerEnd(t, p, 15*time.Second)
		t.Logf("%s: launched at publisher frame %d, playing from frame %d, ended after %v: %v",
			p.Who, p.launched, p.JoinFrame(t), p.took().Round(time.Millisecond), p.exitErr())
	}

	ref := loadReference(t, pub.Ref, pub.FPS)
	if ref.Frames < seconds*25*9/10 {
		t.Fatalf("publisher sent only %d video frames, want about %d", ref.Frames, seconds*25)
	}
	for _, p := range []struct {
		p   *player
		md5 string
	}{{ff1, filepath.Join(dir, "ff1.md5")}, {ff2, filepath.Join(dir, "ff2.md5")}} {
		fl, err := parseFrameMD5(p.md5)
		if err != nil {
			t.Errorf("%s: %v", p.p.Who, err)
			continue
		}
		checkPlayer(t, p.p.Who, ref, fl, p.p.JoinFrame(t))
		if err := p.p.exitErr(); err != nil {
			t.Errorf("%s exited with %v, want success", p.p.Who, err)
		}
	}
	checkPlayer(t, "rtmpdump", ref, decodeToMD5(t, rdFLV), rd.JoinFrame(t))
}
