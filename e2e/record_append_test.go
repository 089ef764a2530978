package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rtmphub/rtmphub/flv"
	"github.com/rtmphub/rtmphub/rtmp/message"
)

// TestRecordKill9ThenAppend kills the server (SIGKILL) while it records
// x264 video with B-frames, starts another on the same data directory and
// appends a recording of the same clip to the file: at the join the
// appended tags' timestamps (decode times) follow the killed part's per
// stream, its video is presented after the killed part's last presented
// frame, and ffmpeg decodes the whole file without warning of "non
// monotonically increasing dts" (before the append started after the
// presentation end, 2 of the first 3 rounds did).
func TestRecordKill9ThenAppend(t *testing.T) {
	e2e(t)
	needFFmpeg(t)
	src := filepath.Join(t.TempDir(), "bframes.flv")
	run(t, 2*time.Minute, "ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error",
		"-f", "lavfi", "-i", "testsrc=size=320x240:rate=25", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100",
		"-t", "4", "-map", "0:v", "-map", "1:a", "-c:v", "libx264", "-preset", "veryfast", "-bf", "2",
		"-g", "25", "-keyint_min", "25", "-sc_threshold", "0", "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "64k", "-y", src)
	for round := range 5 {
		srv := startServer(t)
		c, id := recordPublish(t, srv, "crash", "record")
		killAt := 40 + 7*round // after different kinds of frame
		err := publishFileTo(src, func(typ message.Type, ts uint32, data []byte) error {
			return relay(c, id, typ, ts, data)
		}, func(sent int) bool {
			if sent == killAt {
				srv.kill()
				return true
			}
			return false
		})
		if !errors.Is(err, io.EOF) {
			t.Fatalf("round %d: publishing: %v", round, err)
		}
		rec := filepath.Join(srv.DataDir, "live", "streams", "_definst_", "crash.flv")
		killed := readTags(t, rec)

		srv2 := startServer(t, "--data-dir", srv.DataDir)
		c2, id2 := recordPublish(t, srv2, "crash", "append")
		if err := publishFileTo(src, func(typ message.Type, ts uint32, data []byte) error {
			return relay(c2, id2, typ, ts, data)
		}, nil); err != nil {
			t.Fatalf("round %d: appending: %v", round, err)
		}
		if err := c2.WriteCommand(id2, &message.Command{Name: "publish", Args: []any{false}}); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err = c2.WaitStatus(ctx, id2, "NetStream.Record.Stop")
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		all := readTags(t, rec)
		if f := joinProblem(all, len(killed)); f != "" {
			t.Errorf("round %d (killed after %d frames): %s", round, killAt, f)
		}
		warn := ffmpegWarnings(t, rec)
		if strings.Contains(warn, "non monotonically increasing dts") {
			t.Errorf("round %d: ffmpeg: %s", round, warn)
		}
		t.Logf("round %d: killed after %d video frames, %d tags kept, %d after the append", round, killAt, len(killed), len(all))
	}
}

// publishFileTo sends the tags of the FLV file src to send, pacing video,
// until stop (when not nil) says to stop before a tag, given how many
// video tags that makes: then it returns io.EOF.
func publishFileTo(src string, send func(typ message.Type, ts uint32, data []byte) error, stop func(videoFrames int) bool) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	sent := 0
	return flvTags(f, func(typ message.Type, ts uint32, data []byte) error {
		if typ == flv.TagVideo {
			sent++
			time.Sleep(2 * time.Millisecond)
		}
		if stop != nil && stop(sent) {
			return io.EOF
		}
		return send(typ, ts, data)
	})
}

// readTags reads the complete tags of an FLV file (a killed recording may
// end inside one).
func readTags(t *testing.T, path string) []*flv.Tag {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := flv.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	var tags []*flv.Tag
	for {
		tg, err := r.Next()
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return tags
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		tags = append(tags, tg)
	}
}

// joinProblem checks the join of a file's first n tags with the rest:
// per stream, increasing timestamps; the rest's video presented
// (timestamp plus composition time) after the first part's.
func joinProblem(tags []*flv.Tag, n int) string {
	last := map[message.Type]int64{}
	maxPTS := int64(-1)
	for _, tg := range tags[:n] {
		last[tg.Type] = max(last[tg.Type], int64(tg.Timestamp))
		if v, ok := message.ParseVideo(tg.Data); ok && tg.Type == flv.TagVideo && !v.SequenceHeader {
			maxPTS = max(maxPTS, int64(tg.Timestamp)+int64(v.CompositionTime))
		}
	}
	seen := map[message.Type]bool{}
	var problems []string
	for _, tg := range tags[n:] {
		if tg.Type == flv.TagScript {
			continue
		}
		if !seen[tg.Type] && int64(tg.Timestamp) <= last[tg.Type] {
			problems = append(problems, fmt.Sprintf("%v continues at %d after %d", tg.Type, tg.Timestamp, last[tg.Type]))
		}
		seen[tg.Type] = true
		if v, ok := message.ParseVideo(tg.Data); ok && tg.Type == flv.TagVideo && !v.SequenceHeader {
			if pts := int64(tg.Timestamp) + int64(v.CompositionTime); pts <= maxPTS {
				problems = append(problems, fmt.Sprintf("appended video frame at %d presented at %d, the killed part's last at %d", tg.Timestamp, pts, maxPTS))
			}
		}
	}
	return strings.Join(problems, "; ")
}

// ffmpegWarnings decodes a file and returns what ffmpeg warns of.
func ffmpegWarnings(t *testing.T, path string) string {
	t.Helper()
	p := startProc(t, time.Minute, "ffmpeg", "-nostdin", "-hide_banner", "-nostats", "-v", "warning", "-i", path, "-f", "null", "-")
	if !p.wait(70*time.Second) || p.exitErr() != nil {
		t.Fatalf("ffmpeg: %v\n%s", p.exitErr(), p.Stderr.String())
	}
	return strings.TrimSpace(p.Stderr.String())
}
