package e2e

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rtmphub/rtmphub/flv"
	"github.com/rtmphub/rtmphub/rtmp/client"
	"github.com/rtmphub/rtmphub/rtmp/message"
	"github.com/rtmphub/rtmphub/session/sessiontest"
)

// VOD and recording end to end: ffmpeg makes the files, ffmpeg and
// rtmpdump play them over RTMP, and every decoded video frame must be the
// file's, in order (framemd5 on both sides).

// vodFixture encodes a clip (H.264 + AAC, a keyframe every second) and
// installs it as <data>/live/streams/_definst_/<name>.flv.
func vodFixture(t *testing.T, srv *server, name string, seconds int) string {
	t.Helper()
	src := clip(t, clipSpec{Name: fmt.Sprintf("vod%ds", seconds), Size: "320x240", FPS: 25, GOP: 25, Seconds: seconds})
	dir := filepath.Join(srv.DataDir, "live", "streams", "_definst_")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(dir, name+".flv")
	if err := os.WriteFile(dst, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return dst
}

// probeDuration returns a media file's duration in seconds.
func probeDuration(t *testing.T, path string) float64 {
	t.Helper()
	out := run(t, time.Minute, "ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", path)
	d, err := strconv.ParseFloat(strings.TrimSpace(out), 64)
	if err != nil {
		t.Fatalf("ffprobe duration of %s: %q", path, out)
	}
	return d
}

// sameFrames checks that a player decoded exactly the reference's video
// frames, in order.
func sameFrames(t *testing.T, who string, ref, got *frameLog) {
	t.Helper()
	if len(got.Video) != len(ref.Video) {
		t.Errorf("%s: decoded %d video frames, the file has %d", who, len(got.Video), len(ref.Video))
	}
	for i := range min(len(got.Video), len(ref.Video)) {
		if got.Video[i] != ref.Video[i] {
			t.Errorf("%s: video frame %d differs from the file's", who, i)
			return
		}
	}
	// Audio within one video frame.
	if d := math.Abs(got.AudioSeconds - ref.AudioSeconds); d > 0.04 {
		t.Errorf("%s: %.3fs of audio, the file has %.3fs", who, got.AudioSeconds, ref.AudioSeconds)
	}
	t.Logf("%s: %d video frames identical to the file's, %.3fs of audio (file %.3fs)", who, len(got.Video), got.AudioSeconds, ref.AudioSeconds)
}

func TestVODFFmpegAndRtmpdumpPlay(t *testing.T) { testVODPlay(t, false) }

// The same over RTMPT on the HTTP port.
func TestVODFFmpegAndRtmpdumpPlayRTMPT(t *testing.T) { testVODPlay(t, true) }

func testVODPlay(t *testing.T, rtmpt bool) {
	e2e(t)
	needFFmpeg(t)
	needTool(t, "rtmpdump")
	srv := startServer(t)
	file := vodFixture(t, srv, "movie", 8)
	ref := decodeToMD5(t, file)
	dir := t.TempDir()
	url := srv.URL("movie")
	if rtmpt {
		url = "rtmpt://" + srv.RTMPTAddr(t) + "/live/movie"
	}

	// ffmpeg plays in real time (3 s buffer), rtmpdump downloads (its
	// buffer is 10 hours: as fast as it reads).
	ffOut := filepath.Join(dir, "ffmpeg.md5")
	ff := startFFmpegPlayer(t, "ffmpeg", url, ffOut, nil)
	rdOut := filepath.Join(dir, "rtmpdump.flv")
	rd := newPlayer(t, "rtmpdump", nil, "Starting download", "rtmpdump", "-r", url, "-o", rdOut)
	for _, p := range []*player{ff, rd} {
		if !p.wait(40 * time.Second) {
			t.Fatalf("%s did not end by itself (no Play.Complete / Play.Stop?)", p.Who)
		}
		t.Logf("%s ended after %v: %v", p.Who, p.took().Round(time.Millisecond), p.exitErr())
		err := p.exitErr()
		var ee *exec.ExitError
		if p == rd && errors.As(err, &ee) && ee.ExitCode() == 2 && strings.Contains(p.Stderr.String(), "downloaded about 99.") {
			// rtmpdump compares the timestamp of the last tag with the
			// metadata's duration, which includes the last frame's
			// length: a complete download of this file is 99.7%.
			err = nil
		}
		if err != nil {
			t.Errorf("%s: %v\n%s", p.Who, err, tailString(p.Stderr.String(), 1500))
		}
	}
	srv.requireAlive(t)
	if ff.took() < 4*time.Second {
		t.Errorf("ffmpeg played 8 s in %v: not paced", ff.took())
	}
	fl, err := parseFrameMD5(ffOut)
	if err != nil {
		t.Fatal(err)
	}
	sameFrames(t, "ffmpeg", ref, fl)
	sameFrames(t, "rtmpdump", ref, decodeToMD5(t, rdOut))
	if d, w := probeDuration(t, rdOut), probeDuration(t, file); math.Abs(d-w) > 0.04 {
		t.Errorf("rtmpdump's copy lasts %.3fs, the file %.3fs", d, w)
	}
}

// rtmpdump -A/-B send play's start and len: playback starts at the
// keyframe at or before start and stops before start+len.
func TestVODRtmpdumpStartLen(t *testing.T) {
	e2e(t)
	needFFmpeg(t)
	needTool(t, "rtmpdump")
	srv := startServer(t)
	file := vodFixture(t, srv, "movie", 8)
	ref := decodeToMD5(t, file)
	out := filepath.Join(t.TempDir(), "part.flv")
	p := newPlayer(t, "rtmpdump", nil, "Starting download", "rtmpdump", "-r", srv.URL("movie"), "-A", "2.5", "-B", "4.5", "-o", out)
	if !p.wait(40 * time.Second) {
		t.Fatal("rtmpdump did not end")
	}
	t.Logf("rtmpdump: %v", p.exitErr())
	got := decodeToMD5(t, out)
	index := map[string]int{}
	for i, h := range ref.Video {
		index[h] = i
	}
	if len(got.Video) == 0 {
		t.Fatalf("no video decoded\n%s", tailString(p.Stderr.String(), 1500))
	}
	first, ok1 := index[got.Video[0]]
	last, ok2 := index[got.Video[len(got.Video)-1]]
	t.Logf("start 2.5 s, len 2 s: decoded frames #%d..#%d (%d frames)", first, last, len(got.Video))
	if !ok1 || !ok2 {
		t.Fatal("decoded frames that are not the file's")
	}
	// Keyframes every 25 frames: start lands on frame 50 (about 2.0 s);
	// frames before 4.5 s are sent (ffmpeg's files start video at 23 ms:
	// frame 111).
	if first != 50 {
		t.Errorf("first frame #%d, want the keyframe #50 at or before 2.5 s", first)
	}
	if last < 110 || last > 112 {
		t.Errorf("last frame #%d, want #112, just before 4.5 s", last)
	}
	for i, h := range got.Video {
		if index[h] != first+i {
			t.Fatalf("frame %d is #%d, want #%d", i, index[h], first+i)
		}
	}
}

// flvTags reads FLV tags from a non-seekable stream (ffmpeg writing to a
// pipe) and calls fn for each.
func flvTags(r io.Reader, fn func(typ message.Type, ts uint32, data []byte) error) error {
	br := bufio.NewReaderSize(r, 64<<10)
	hdr := make([]byte, flv.HeaderSize+flv.PrevSizeSize)
	if _, err := io.ReadFull(br, hdr); err != nil {
		return fmt.Errorf("flv header: %w", err)
	}
	if string(hdr[:3]) != "FLV" {
		return errors.New("not an FLV stream")
	}
	if skip := int(binary.BigEndian.Uint32(hdr[5:9])) - flv.HeaderSize; skip > 0 {
		if _, err := br.Discard(skip); err != nil {
			return err
		}
	}
	th := make([]byte, flv.TagHeaderSize)
	for {
		if _, err := io.ReadFull(br, th); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		n := int(th[1])<<16 | int(th[2])<<8 | int(th[3])
		ts := uint32(th[7])<<24 | uint32(th[4])<<16 | uint32(th[5])<<8 | uint32(th[6])
		data := make([]byte, n+flv.PrevSizeSize)
		if _, err := io.ReadFull(br, data); err != nil {
			return err
		}
		if err := fn(message.Type(th[0]&0x1f), ts, data[:n]); err != nil {
			return err
		}
	}
}

// recordPublish publishes name with type typ through rtmphub's Go client
// and waits for NetStream.Record.Start.
func recordPublish(t *testing.T, srv *server, name, typ string) (*client.Conn, uint32) {
	t.Helper()
	p := sessiontest.Publish(t, "rtmp://"+srv.Addr+"/live", name, typ)
	if _, err := p.C.WaitStatus(sessiontest.Ctx(t, 10*time.Second), p.MsID, "NetStream.Record.Start"); err != nil {
		t.Fatal(err)
	}
	return p.C, p.MsID
}

// relay sends one FLV tag as the publisher's message: onMetaData as
// @setDataFrame, audio and video as they are.
func relay(c *client.Conn, id uint32, typ message.Type, ts uint32, data []byte) error {
	if typ == flv.TagScript {
		if name, _, ok := message.DataName(data); ok && name == "onMetaData" {
			_, p, _ := message.EncodeData(false, "@setDataFrame")
			data = append(p, data...)
		}
		typ = message.TypeDataAMF0
	}
	return c.WriteMessages([]message.Message{{Type: typ, StreamID: id, Timestamp: ts, Payload: data}})
}

// TestRecordFFmpegLive: ffmpeg encodes live; a Go client publishes its
// output with type "record". ffprobe validates the recording, its frames
// are what ffmpeg encoded, and ffmpeg plays it back over RTMP.
func TestRecordFFmpegLive(t *testing.T) {
	e2e(t)
	needFFmpeg(t)
	srv := startServer(t)
	dir := t.TempDir()
	ref := filepath.Join(dir, "published.flv")
	args := []string{"-nostdin", "-hide_banner", "-loglevel", "error", "-re",
		"-f", "lavfi", "-i", "testsrc=size=320x240:rate=25",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100",
		"-t", "6", "-map", "0:v", "-map", "1:a"}
	args = append(args, x264Args(25, "")...)
	args = append(args, "-c:a", "aac", "-b:a", "64k", "-flags", "+global_header",
		"-f", "tee", "[f=flv]pipe:1|[f=flv]"+ref)
	enc := command(t, time.Minute, "ffmpeg", args...)
	// Not cmd.StdoutPipe: the goroutine that waits for ffmpeg closes that
	// pipe as soon as ffmpeg exits, and a read of its last tags then
	// fails with "file already closed". Ours is read to its end.
	stdout, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer stdout.Close()
	enc.cmd.Stdout = pw
	c, id := recordPublish(t, srv, "rec", "record")
	enc.startCmd()
	pw.Close() // ffmpeg has its copy: the read ends when ffmpeg does
	if err := flvTags(stdout, func(typ message.Type, ts uint32, data []byte) error {
		return relay(c, id, typ, ts, data)
	}); err != nil {
		t.Fatalf("relaying ffmpeg's stream: %v", err)
	}
	if !enc.wait(30*time.Second) || enc.exitErr() != nil {
		t.Fatalf("ffmpeg: %v\n%s", enc.exitErr(), enc.Stderr.String())
	}
	if err := c.WriteCommand(id, &message.Command{Name: "publish", Args: []any{false}}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.WaitStatus(ctx, id, "NetStream.Record.Stop"); err != nil {
		t.Fatal(err)
	}

	rec := filepath.Join(srv.DataDir, "live", "streams", "_definst_", "rec.flv")
	out := run(t, time.Minute, "ffprobe", "-v", "error", "-count_frames", "-show_entries",
		"stream=codec_name,nb_read_frames:format=duration", "-of", "flat", rec)
	t.Logf("ffprobe %s:\n%s", rec, out)
	for _, want := range []string{`codec_name="h264"`, `codec_name="aac"`, `nb_read_frames="150"`} {
		if !strings.Contains(out, want) {
			t.Errorf("ffprobe: no %s", want)
		}
	}
	if d := probeDuration(t, rec); math.Abs(d-6) > 0.1 {
		t.Errorf("recording lasts %.3fs, want 6", d)
	}
	want := decodeToMD5(t, ref)
	sameFrames(t, "recording", want, decodeToMD5(t, rec))

	// Played back over RTMP (start -2000: the live stream is gone).
	md5 := filepath.Join(dir, "replay.md5")
	p := startFFmpegPlayer(t, "ffmpeg replay", srv.URL("rec"), md5, nil)
	if !p.wait(40*time.Second) || p.exitErr() != nil {
		t.Fatalf("replay: %v\n%s", p.exitErr(), tailString(p.Stderr.String(), 1500))
	}
	fl, err := parseFrameMD5(md5)
	if err != nil {
		t.Fatal(err)
	}
	sameFrames(t, "replay", want, fl)
}

// TestRecordKill9LeavesPlayableFile kills the server while it records:
// the file decodes up to its last complete tag, every time.
func TestRecordKill9LeavesPlayableFile(t *testing.T) {
	e2e(t)
	needFFmpeg(t)
	src := clip(t, clipSpec{Name: "vod8s", Size: "320x240", FPS: 25, GOP: 25, Seconds: 8})
	ref := decodeToMD5(t, src)
	index := map[string]int{}
	for i, h := range ref.Video {
		index[h] = i
	}
	for round := range 3 {
		srv := startServer(t)
		c, id := recordPublish(t, srv, "crash", "record")
		f, err := os.Open(src)
		if err != nil {
			t.Fatal(err)
		}
		// Publish faster than real time, and kill the server part way.
		sent := 0
		killAt := 60 + 40*round
		err = flvTags(f, func(typ message.Type, ts uint32, data []byte) error {
			if typ == flv.TagVideo {
				sent++
				time.Sleep(5 * time.Millisecond)
			}
			if sent == killAt {
				srv.kill()
				return io.EOF
			}
			return relay(c, id, typ, ts, data)
		})
		f.Close()
		if !errors.Is(err, io.EOF) {
			t.Fatalf("round %d: publishing: %v", round, err)
		}
		rec := filepath.Join(srv.DataDir, "live", "streams", "_definst_", "crash.flv")
		got := decodeToMD5(t, rec)
		if len(got.Video) < killAt/2 {
			t.Fatalf("round %d: killed after %d frames, the file decodes %d", round, killAt, len(got.Video))
		}
		for i, h := range got.Video {
			if index[h] != i {
				t.Fatalf("round %d: frame %d of the killed recording is not the source's", round, i)
			}
		}
		t.Logf("round %d: killed after sending %d frames; the file decodes %d frames, identical to the source", round, killAt, len(got.Video))
	}
}

// TestVODMP4FFmpegPlay: an MP4 made by ffmpeg (B-frames, moov at the
// end) played by ffmpeg as "mp4:movie.mp4" decodes to the file's frames.
func TestVODMP4FFmpegPlay(t *testing.T) {
	e2e(t)
	needFFmpeg(t)
	srv := startServer(t)
	dir := filepath.Join(srv.DataDir, "live", "streams", "_definst_")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "movie.mp4")
	run(t, 2*time.Minute, "ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error",
		"-f", "lavfi", "-i", "testsrc=size=320x240:rate=25", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100",
		"-t", "6", "-map", "0:v", "-map", "1:a", "-c:v", "libx264", "-preset", "ultrafast", "-bf", "2",
		"-g", "25", "-keyint_min", "25", "-sc_threshold", "0", "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "64k", "-y", file)
	ref := decodeToMD5(t, file)
	out := filepath.Join(t.TempDir(), "mp4.md5")
	p := startFFmpegPlayer(t, "ffmpeg", "rtmp://"+srv.Addr+"/live/mp4:movie.mp4", out, nil)
	if !p.wait(40*time.Second) || p.exitErr() != nil {
		t.Fatalf("ffmpeg: %v\n%s", p.exitErr(), tailString(p.Stderr.String(), 1500))
	}
	got, err := parseFrameMD5(out)
	if err != nil {
		t.Fatal(err)
	}
	// The MP4's edit list trims the AAC priming samples, which FLV cannot
	// say: the player decodes one more AAC frame (23 ms), within a video
	// frame of the file's duration.
	sameFrames(t, "ffmpeg mp4", ref, got)
}
