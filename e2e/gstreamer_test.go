package e2e

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rtmphub/rtmphub/session/sessiontest"
)

// GStreamer's RTMP elements (gst-plugins-bad's rtmp2) differ from ffmpeg
// and librtmp where it matters here: rtmp2src plays with start -2 (seconds,
// as Adobe's specification writes it), and rtmp2sink ends a publication with
// its stop-commands, FCUnpublish and deleteStream by default, each carrying
// the stream's name on message stream 0.

var (
	gstOnce sync.Once
	gstErr  error
	gstVEnc []string // H.264 encoder and its settings: a keyframe a second
	gstAEnc string   // AAC encoder
)

// needGStreamer checks gst-launch-1.0 and the elements the tests use, and
// picks the encoders: what Debian 12's -bad has (openh264enc, voaacenc), or
// x264enc and avenc_aac where those are installed.
func needGStreamer(t testing.TB) {
	t.Helper()
	needTool(t, "gst-launch-1.0")
	needTool(t, "gst-inspect-1.0")
	gstOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		has := func(el string) bool { return exec.CommandContext(ctx, "gst-inspect-1.0", el).Run() == nil }
		var missing []string
		for _, el := range []string{"rtmp2sink", "rtmp2src", "flvmux", "videotestsrc", "audiotestsrc",
			"audioconvert", "h264parse", "aacparse", "filesink"} {
			if !has(el) {
				missing = append(missing, el)
			}
		}
		switch {
		case has("x264enc"):
			gstVEnc = []string{"x264enc", "tune=zerolatency", "speed-preset=ultrafast", "key-int-max=25"}
		case has("openh264enc"):
			gstVEnc = []string{"openh264enc", "gop-size=25"}
		default:
			missing = append(missing, "x264enc or openh264enc")
		}
		for _, el := range []string{"voaacenc", "avenc_aac", "fdkaacenc"} {
			if has(el) {
				gstAEnc = el
				break
			}
		}
		if gstAEnc == "" {
			missing = append(missing, "an AAC encoder (voaacenc, avenc_aac or fdkaacenc)")
		}
		if len(missing) > 0 {
			gstErr = fmt.Errorf("GStreamer lacks %s (gstreamer1.0-plugins-base, -good, -bad)", strings.Join(missing, ", "))
		}
	})
	if gstErr != nil {
		if inCI() {
			t.Fatal(gstErr)
		}
		t.Skip(gstErr)
	}
}

// gstPublish starts gst-launch-1.0 publishing frames video frames (25 fps)
// and as long an audio tone to url through rtmp2sink, with stopCommands
// ("" for the element's default); it ends by itself (EOS) after the last
// frame.
func gstPublish(t testing.TB, url string, frames int, stopCommands string) *proc {
	t.Helper()
	sink := []string{"rtmp2sink", "location=" + url}
	if stopCommands != "" {
		sink = append(sink, "stop-commands="+stopCommands)
	}
	audioBuffers := frames*40*44100/1024/1000 + 1 // 1024 samples a buffer at 44.1 kHz
	args := []string{"-q",
		"videotestsrc", "is-live=true", "pattern=ball", "num-buffers=" + strconv.Itoa(frames), "!",
		"video/x-raw,width=320,height=240,framerate=25/1", "!"}
	args = append(args, gstVEnc...)
	args = append(args, "!", "h264parse", "!", "flvmux", "name=m", "streamable=true", "!")
	args = append(args, sink...)
	args = append(args, "audiotestsrc", "is-live=true", "num-buffers="+strconv.Itoa(audioBuffers), "!",
		"audioconvert", "!", gstAEnc, "!", "aacparse", "!", "m.")
	return startProc(t, 60*time.Second, "gst-launch-1.0", args...)
}

// gstPlay starts rtmp2src writing the FLV stream it receives to out. -e:
// on SIGINT it sends EOS, so that the file is complete.
func gstPlay(t testing.TB, url, out string) *proc {
	t.Helper()
	return startProc(t, 60*time.Second, "gst-launch-1.0", "-e", "rtmp2src", "location="+url, "!", "filesink", "location="+out)
}

// countFLVTags counts the H.264 frames (video tags other than sequence
// headers and ends) and the audio tags of an FLV file, stopping at a
// truncated last tag.
func countFLVTags(t testing.TB, path string) (video, audio int) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < 13 || string(b[:3]) != "FLV" {
		t.Fatalf("%s: not an FLV stream (%d bytes)", path, len(b))
	}
	for p := int(binary.BigEndian.Uint32(b[5:9])) + 4; p+11 <= len(b); {
		n := int(b[p+1])<<16 | int(b[p+2])<<8 | int(b[p+3])
		if p+11+n > len(b) {
			break
		}
		switch b[p] & 0x1f {
		case 9:
			if n >= 2 && b[p+11]&0x0f == 7 && b[p+12] == 1 { // AVC NALUs
				video++
			}
		case 8:
			audio++
		}
		p += 11 + n + 4
	}
	return video, audio
}

// waitPlays waits until the server has logged n plays of stream.
func waitPlays(t testing.TB, srv *server, stream string, n int) {
	t.Helper()
	if !sessiontest.Poll(10*time.Second, func() bool {
		count := 0
		lines, _ := srv.log.snapshot(0)
		for _, l := range lines {
			if l.str("msg") == "play" && l.str("stream") == stream {
				count++
			}
		}
		return count >= n
	}) {
		t.Fatalf("the server logged fewer than %d plays of %s\n%s", n, stream, srv.log.tail(40))
	}
}

// TestGStreamerPublishAndPlay: rtmp2sink publishes a live stream that ffmpeg
// and rtmp2src play; when gst-launch ends (EOS, then its stop-commands and
// a close), the players hear of the unpublish at once, not after the
// minute of --publisher-grace a dropped publisher gets. Each variant of
// stop-commands carries the stream's name: FCUnpublish and deleteStream (the
// default), deleteStream alone, closeStream alone.
func TestGStreamerPublishAndPlay(t *testing.T) {
	e2e(t)
	needGStreamer(t)
	needFFmpeg(t)
	const grace = time.Minute
	srv := startServer(t, "--publisher-grace", grace.String())
	for _, stop := range []string{"", "deletestream", "closestream"} {
		name := "gst-" + stop
		if stop == "" {
			name = "gst-default"
		}
		t.Run(name, func(t *testing.T) {
			url := srv.URL(name)
			dir := t.TempDir()
			// Both players play before the publisher comes, and wait for
			// it (PublishNotify): none can miss the first frames.
			ff := startFFmpegPlayer(t, "ffmpeg", url, filepath.Join(dir, "ff.md5"), nil)
			src := gstPlay(t, url, filepath.Join(dir, "src.flv"))
			waitPlays(t, srv, name, 2)

			const frames = 50 // 2 s
			pub := gstPublish(t, url, frames, stop)
			if !pub.wait(20 * time.Second) {
				t.Fatalf("gst-launch did not end after %d frames\n%s", frames, pub.Stderr.String())
			}
			if err := pub.exitErr(); err != nil {
				t.Fatalf("gst-launch publisher: %v\n%s", err, pub.Stderr.String())
			}
			ended := time.Now()

			// ffmpeg ends on UnpublishNotify; after the grace it would take
			// a minute.
			if !ff.wait(5 * time.Second) {
				t.Fatalf("ffmpeg still plays 5 s after the publisher ended (grace %v): the unpublish was taken for a dropped connection\n%s",
					grace, srv.log.tail(30))
			}
			t.Logf("ffmpeg ended %v after gst-launch", ff.endedAt.Sub(ended).Round(time.Millisecond))
			if _, ok := srv.log.find(0, func(l logLine) bool {
				return l.str("msg") == "unpublish" && l.str("stream") == name && l.JSON["graceful"] == true
			}); !ok {
				t.Errorf("no graceful unpublish of %s logged\n%s", name, srv.log.tail(30))
			}
			fl, err := parseFrameMD5(filepath.Join(dir, "ff.md5"))
			if err != nil {
				t.Fatal(err)
			}
			if len(fl.Video) < frames*8/10 || fl.AudioFrames == 0 {
				t.Errorf("ffmpeg decoded %d of %d video frames and %d audio frames", len(fl.Video), frames, fl.AudioFrames)
			}

			// rtmp2src does not end on UnpublishNotify: stop it and count
			// what it received.
			src.signal(syscall.SIGINT)
			if !src.wait(10 * time.Second) {
				t.Fatal("rtmp2src did not stop on SIGINT")
			}
			v, a := countFLVTags(t, filepath.Join(dir, "src.flv"))
			if v < frames*8/10 || a == 0 {
				t.Errorf("rtmp2src received %d video frames (of %d) and %d audio tags\n%s", v, frames, a, src.Stderr.String())
			}
			t.Logf("ffmpeg: %d video frames; rtmp2src: %d video frames and %d audio tags", len(fl.Video), v, a)
		})
	}
}

// TestGStreamerPlaysRecorded: rtmp2src plays with start -2 (live, else
// recorded), which must find a recorded file as -2000 does, and ends with it.
func TestGStreamerPlaysRecorded(t *testing.T) {
	e2e(t)
	needGStreamer(t)
	srv := startServer(t)
	file := vodFixture(t, srv, "gstclip", 2)
	want, _ := countFLVTags(t, file)

	out := filepath.Join(t.TempDir(), "vod.flv")
	src := gstPlay(t, srv.URL("gstclip"), out)
	if !src.wait(15 * time.Second) {
		src.signal(syscall.SIGINT)
		src.wait(5 * time.Second)
		v, _ := countFLVTags(t, out)
		t.Fatalf("rtmp2src did not end by itself within 15 s; it got %d of %d video frames\n%s", v, want, srv.log.tail(20))
	}
	if err := src.exitErr(); err != nil {
		t.Fatalf("rtmp2src: %v\n%s", err, src.Stderr.String())
	}
	if _, ok := srv.log.find(0, func(l logLine) bool {
		return l.str("msg") == "play" && l.str("stream") == "gstclip" && l.JSON["recorded"] == true
	}); !ok {
		t.Errorf("the server logged no recorded play of gstclip\n%s", srv.log.tail(20))
	}
	v, a := countFLVTags(t, out)
	if v != want || a == 0 {
		t.Errorf("rtmp2src received %d video frames (the file has %d) and %d audio tags", v, want, a)
	}
	t.Logf("rtmp2src: %d video frames and %d audio tags in %v", v, a, src.took().Round(time.Millisecond))
}
