package e2e

import (
	"io"
	"net"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// ---------------------------------------------------------------------------
// Browser playback: HTTP-FLV, WebSocket-FLV, LL-HLS (package web)

// TestHTTPFLVFFmpegPlayers: ffmpeg publishes over RTMP; ffmpeg plays the
// stream as HTTP-FLV from the HTTP port, from the RTMP port (a GET there
// is sniffed as HTTP) and over HTTPS from the TLS port. Each decodes ≥ 90%
// of the frames sent after it joined, identical to what was published,
// and ends by itself when the publisher does (the body ends).
func TestHTTPFLVFFmpegPlayers(t *testing.T) {
	e2e(t)
	needFFmpeg(t)
	cert, key := writeTestCert(t)
	srv := startServer(t, "--tls-cert", cert, "--tls-key", key, "--tls-addr", "127.0.0.1:0")
	tlsAddr, httpAddr := listenAddr(t, srv, "tls"), srv.RTMPTAddr(t)
	dir := t.TempDir()
	const seconds = 14
	pub := startPublisher(t, srv.URL("s1"), pubOpts{Seconds: seconds, GOP: 25})
	pub.waitFrames(t, 50, 30*time.Second)
	players := []playerOut{
		ffPlay(t, pub, dir, "ffmpeg http-flv on the HTTP port", "http://"+httpAddr+"/live/s1.flv"),
		ffPlay(t, pub, dir, "ffmpeg http-flv on the RTMP port", "http://"+srv.Addr+"/live/s1.flv"),
		ffPlay(t, pub, dir, "ffmpeg https-flv on the TLS port", "https://"+tlsAddr+"/live/s1.flv"),
	}
	pub.finish(t, seconds*time.Second+40*time.Second)
	checkPlayers(t, pub, players)
	if n := logCount(srv, "access", map[string]string{"event": "watch", "protocol": "http-flv"}); n != 3 {
		t.Errorf("%d http-flv viewers logged, want 3", n)
	}
	if n := logCount(srv, "access", map[string]string{"event": "watch_end", "protocol": "http-flv"}); n != 3 {
		t.Errorf("%d http-flv viewers logged leaving, want 3", n)
	}
}

// TestLLHLSFFmpegPlayer: ffmpeg publishes over RTMP; ffmpeg reads the
// stream's LL-HLS playlist (fMP4: ffmpeg plays it as plain HLS, ignoring
// the parts) from the HTTP port, and ffprobe names its codecs. The player
// decodes ≥ 90% of the frames sent after it joined, identical to what was
// published, and ends by itself once the stream is gone.
func TestLLHLSFFmpegPlayer(t *testing.T) {
	e2e(t)
	needFFmpeg(t)
	srv := startServer(t)
	httpAddr := srv.RTMPTAddr(t)
	dir := t.TempDir()
	const seconds = 22 // the last segment, which the end of the stream cuts short, is lost: about 1 s
	pub := startPublisher(t, srv.URL("s1"), pubOpts{Seconds: seconds, GOP: 25})
	pub.waitFrames(t, 50, 30*time.Second)
	url := "http://" + httpAddr + "/live/s1/index.m3u8"
	probe := command(t, 30*time.Second, "ffprobe", "-v", "error", "-show_entries", "stream=codec_name", "-of", "csv=p=0", url)
	probe.startCmd()
	if !probe.wait(30*time.Second) || probe.exitErr() != nil {
		t.Fatalf("ffprobe %s: %v\n%s", url, probe.exitErr(), probe.Stderr.String())
	}
	if got := strings.Fields(probe.Stdout.String()); !slices.Contains(got, "h264") || !slices.Contains(got, "aac") {
		t.Fatalf("ffprobe found codecs %q, want h264 and aac", got)
	}
	players := []playerOut{ffPlay(t, pub, dir, "ffmpeg ll-hls on the HTTP port", url)}
	pub.finish(t, seconds*time.Second+40*time.Second)
	checkPlayers(t, pub, players)
	if n := logCount(srv, "access", map[string]string{"event": "watch", "protocol": "hls-muxer"}); n != 1 {
		t.Errorf("%d HLS muxers started, want 1 (one per stream, whoever asks)", n)
	}
	if n := logCount(srv, "access", map[string]string{"event": "watch", "protocol": "hls"}); n < 1 {
		t.Errorf("no access line for the HLS viewer")
	}
}

// TestSlowHTTPFLVViewer: an HTTP-FLV viewer that reads nothing (its
// socket's receive buffer shrunk) is skipped to the next keyframe, then
// dropped after --stall-timeout, while an ffmpeg HTTP-FLV player of the
// same stream decodes ≥ 90% of the frames and the publisher keeps its
// pace.
func TestSlowHTTPFLVViewer(t *testing.T) {
	e2e(t)
	needFFmpeg(t)
	const seconds = 12
	// 9 MB in 12 s: more than the kernel buffers of a connection hold.
	hd := clip(t, clipSpec{Name: "720p-6M-noise", Size: "1280x720", FPS: 25, GOP: 50, Seconds: seconds, Bitrate: "6M", Noise: true})
	srv := startServer(t, "--player-queue", "256", "--stall-timeout", "4s")
	httpAddr := srv.RTMPTAddr(t)
	dir := t.TempDir()
	pub := startPublisher(t, srv.URL("s1"), pubOpts{Clip: hd, Seconds: seconds})
	pub.waitFrames(t, 25, 30*time.Second)

	d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		c.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
		return serr
	}}
	nc, err := d.Dial("tcp", httpAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if _, err := io.WriteString(nc, "GET /live/s1.flv HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	players := []playerOut{ffPlay(t, pub, dir, "ffmpeg http-flv beside a stalled viewer", "http://"+httpAddr+"/live/s1.flv")}
	pub.finish(t, seconds*time.Second+40*time.Second)
	if took := pub.took(); took > seconds*time.Second+5*time.Second {
		t.Errorf("publishing %d s took %v: the stalled viewer slowed the publisher", seconds, took)
	}
	checkPlayers(t, pub, players)
	if n := logCount(srv, "player too slow, skipping to the next keyframe", map[string]string{"protocol": "http-flv"}); n == 0 {
		t.Errorf("the stalled viewer was never skipped")
	}
	stalled := 0
	lines, _ := srv.log.snapshot(0)
	for _, l := range lines {
		if l.str("event") == "watch_end" && strings.Contains(l.str("reason"), "timeout") {
			stalled++
		}
	}
	if stalled != 1 {
		t.Errorf("%d viewers dropped for a stalled write, want 1 (the one that read nothing)", stalled)
	}
}
