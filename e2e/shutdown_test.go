package e2e

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/rtmphub/rtmphub/session/sessiontest"
)

const shutdownBound = 10 * time.Second

// TestGracefulShutdown: SIGTERM during a live session makes the server exit
// 0 within a bounded time, and every client sees its connection end.
func TestGracefulShutdown(t *testing.T) {
	e2e(t)
	needFFmpeg(t)
	srv := startServer(t)
	dir := t.TempDir()
	url := srv.URL("sd")

	pub := startPublisher(t, url, pubOpts{Seconds: 60, GOP: 25})
	pub.waitFrames(t, 25, 20*time.Second)
	md5 := filepath.Join(dir, "player.md5")
	ffp := startFFmpegPlayer(t, "ffmpeg player", url, md5, nil)
	gp := dialRTMP(t, "go-rtmp player", srv.Addr, dialOpts{OnMedia: func(rxMsg) {}})
	if _, err := gp.play("live", "sd"); err != nil {
		t.Fatal(err)
	}
	if !sessiontest.Poll(15*time.Second, func() bool {
		st, err := os.Stat(md5)
		return err == nil && st.Size() > 2048 && gp.mediaBytes.Load() > 0
	}) {
		t.Fatalf("players did not start receiving (go-rtmp player got %d bytes)", gp.mediaBytes.Load())
	}

	code, took, exited := srv.signal(syscall.SIGTERM, shutdownBound)
	if !exited {
		t.Fatalf("server still running %v after SIGTERM", shutdownBound)
	}
	t.Logf("server exited with code %d %v after SIGTERM", code, took.Round(time.Millisecond))
	if code != 0 {
		t.Errorf("server exit code %d after SIGTERM, want 0", code)
	}

	for _, p := range []struct {
		who string
		p   *proc
	}{{"ffmpeg publisher", pub.proc}, {"ffmpeg player", ffp.proc}} {
		if !p.p.wait(shutdownBound) {
			t.Errorf("%s still running %v after the server exited", p.who, shutdownBound)
		} else {
			t.Logf("%s ended: %v", p.who, p.p.exitErr())
		}
	}
	if !sessiontest.Poll(shutdownBound, func() bool { ended, _ := gp.ended(); return ended }) {
		t.Errorf("go-rtmp player's connection still open after the server exited")
	}
	if c, err := tryDialRTMP(t, "late client", srv.Addr, dialOpts{}); err == nil {
		c.Close()
		t.Errorf("server still accepts connections after exiting")
	}
}
