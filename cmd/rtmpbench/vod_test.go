package main

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rtmphub/rtmphub/flv"
)

// The VOD file holds the publisher's stream: its sequence headers, then
// length of frames at the plan's bitrate, a keyframe first.
func TestWriteVODFile(t *testing.T) {
	plan, err := planStream(232000, 64000, 25, time.Second, 5)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "bench.flv")
	if err := writeVODFile(path, plan, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := flv.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	var media, last int
	var tags []*flv.Tag
	for {
		tg, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		tags = append(tags, tg)
		if tg.Type != flv.TagScript {
			media += len(tg.Data)
			last = int(tg.Timestamp)
		}
	}
	if len(tags) < 4 || tags[0].Type != flv.TagScript || tags[1].Type != flv.TagVideo || tags[2].Type != flv.TagAudio || !isKeyframe(tags[3].Data) {
		t.Fatalf("file starts with %d tags: want onMetaData, the sequence headers, a keyframe", len(tags))
	}
	if last < 9900 || last >= 10000 {
		t.Fatalf("last frame at %d ms, want just under 10 s", last)
	}
	if bps := float64(media) * 8 / 10; bps < 0.98*plan.ActualBitrate() || bps > 1.02*plan.ActualBitrate() {
		t.Fatalf("%.0f bps in the file, plan %.0f", bps, plan.ActualBitrate())
	}
}
