package session_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/rtmphub/rtmphub/flv"
	"github.com/rtmphub/rtmphub/rtmp/amf"
	"github.com/rtmphub/rtmphub/rtmp/client"
	"github.com/rtmphub/rtmphub/rtmp/message"
	"github.com/rtmphub/rtmphub/session"
	"github.com/rtmphub/rtmphub/session/sessiontest"
)

// recordMeta is the onMetaData of the recorded streams.
var recordMeta = amf.ECMAArray{
	{Key: "width", Value: 320.0}, {Key: "height", Value: 240.0}, {Key: "videocodecid", Value: 7.0},
	{Key: "audiocodecid", Value: 10.0}, {Key: "duration", Value: 0.0}}

// unpublish ends the publication and waits for Unpublish.Success,
// returning the status codes that came first.
func unpublish(t *testing.T, p *sessiontest.Publisher) []string {
	t.Helper()
	if err := p.C.WriteCommand(0, &message.Command{Name: "FCUnpublish", TransactionID: 0, Args: []any{"x"}}); err != nil {
		t.Fatal(err)
	}
	if err := p.C.WriteCommand(p.MsID, &message.Command{Name: "publish", Args: []any{false}}); err != nil {
		t.Fatal(err)
	}
	var codes []string
	for {
		e := readEv(t, p.C, p.MsID, 10*time.Second)
		if e.kind == "status" {
			codes = append(codes, e.code)
			if e.code == "NetStream.Unpublish.Success" {
				return codes
			}
		}
	}
}

func waitStatus(t *testing.T, c *client.Conn, msid uint32, code string) {
	t.Helper()
	if _, err := c.WaitStatus(sessiontest.Ctx(t, 10*time.Second), msid, code); err != nil {
		t.Fatalf("waiting for %s: %v", code, err)
	}
}

// countTags counts the complete media tags of a file that may be
// being written.
func countTags(path string) int {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	r, err := flv.NewReader(f)
	if err != nil {
		return 0
	}
	n := 0
	for {
		tag, err := r.Next()
		if err != nil {
			return n
		}
		if tag.Type != flv.TagScript {
			n++
		}
	}
}

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
		tag, err := r.Next()
		if err != nil {
			break
		}
		if tag.Type != flv.TagScript {
			tags = append(tags, tag)
		}
	}
	return tags
}

// waitTags waits until the recording at path has n media tags.
func waitTags(t *testing.T, path string, n int) {
	t.Helper()
	sessiontest.Eventually(t, 5*time.Second, fmt.Sprintf("%d media tags in %s", n, path), func() bool { return countTags(path) >= n })
}

func TestRecordThenPlayBack(t *testing.T) {
	dir := t.TempDir()
	base, _, _ := startServer(t, session.Config{DataDir: dir})
	// A live player on the recorded stream gets it as usual.
	live, lid := sessiontest.Play(t, base+"/live", "rec")
	pub := sessiontest.Publish(t, base+"/live", "rec", "record")
	waitStatus(t, pub.C, pub.MsID, "NetStream.Record.Start")
	pub.Header(t, recordMeta)
	pub.Frames(t, 0, 60, 25)
	for {
		if m := sessiontest.NextMedia(t, live, lid); m.Type == message.TypeVideo && bytes.Equal(m.Payload, sessiontest.VideoFrame(59, 25)) {
			break
		}
	}
	// Playable while recording: start 0 plays the file, and follows it.
	path := filepath.Join(dir, "live", "streams", "_definst_", "rec.flv")
	waitTags(t, path, 2+2*60)
	c, id := vodPlayer(t, base, 60000, "rec", 0.0)
	untilEv(t, c, id, "data", "onMetaData", 5*time.Second)
	pub.Frames(t, 60, 75, 25)
	for {
		e := readEv(t, c, id, 5*time.Second)
		if e.kind == "video" && sessiontest.FrameIndex(e.data) == 74 {
			break
		}
	}
	codes := unpublish(t, pub)
	if len(codes) != 2 || codes[0] != "NetStream.Record.Stop" {
		t.Fatalf("unpublish statuses %v, want Record.Stop then Unpublish.Success", codes)
	}
	untilEv(t, c, id, "playstatus", "NetStream.Play.Complete", 5*time.Second)

	tags := readTags(t, path)
	if len(tags) != 2+2*75 {
		t.Fatalf("file has %d media tags, want %d", len(tags), 2+2*75)
	}
	for i := range 75 {
		v := tags[2+2*i]
		if v.Type != flv.TagVideo || !bytes.Equal(v.Data, sessiontest.VideoFrame(i, 25)) || v.Timestamp != uint32(i*40) {
			t.Fatalf("tag %d: %v ts %d", 2+2*i, v.Type, v.Timestamp)
		}
	}
	f, _ := os.Open(path)
	m, err := flv.ReadMetadata(f)
	f.Close()
	if err != nil || m.Width != 320 || m.Duration < 2.9 || m.Duration > 3.1 {
		t.Fatalf("recorded metadata %+v, %v", m, err)
	}

	// -2000 with the publisher gone plays the recording.
	c, id = vodPlayer(t, base, 60000, "rec", -2000.0)
	expectEvs(t, c, id, "uc:StreamIsRecorded")
	got := media(untilEv(t, c, id, "playstatus", "NetStream.Play.Complete", 5*time.Second))
	if len(got) != 2+2*75 {
		t.Fatalf("played back %d media messages, want %d", len(got), 2+2*75)
	}

	// record again replaces the file.
	pub = sessiontest.Publish(t, base+"/live", "rec", "record")
	waitStatus(t, pub.C, pub.MsID, "NetStream.Record.Start")
	pub.Header(t, recordMeta)
	pub.Frames(t, 0, 10, 25)
	unpublish(t, pub)
	if n := len(readTags(t, path)); n != 2+2*10 {
		t.Fatalf("after a second record the file has %d media tags, want %d", n, 2+2*10)
	}
}

func TestRecordAppendContinuesTimestamps(t *testing.T) {
	dir := t.TempDir()
	base, _, _ := startServer(t, session.Config{DataDir: dir})
	pub := sessiontest.Publish(t, base+"/live", "app", "append") // no file yet: starts one
	waitStatus(t, pub.C, pub.MsID, "NetStream.Record.Start")
	pub.Header(t, recordMeta)
	pub.Frames(t, 0, 50, 25)
	unpublish(t, pub)

	pub = sessiontest.Publish(t, base+"/live", "app", "append")
	waitStatus(t, pub.C, pub.MsID, "NetStream.Record.Start")
	pub.Header(t, recordMeta)
	pub.Frames(t, 0, 50, 25) // the encoder starts again at 0
	unpublish(t, pub)

	tags := readTags(t, filepath.Join(dir, "live", "streams", "_definst_", "app.flv"))
	var last uint32
	var video []uint32
	for i, tag := range tags {
		if tag.Timestamp < last && tag.Type == flv.TagVideo {
			t.Fatalf("tag %d: timestamp %d after %d", i, tag.Timestamp, last)
		}
		if tag.Type == flv.TagVideo {
			last = tag.Timestamp
			if tag.Data[1] == 1 {
				video = append(video, tag.Timestamp)
			}
		}
	}
	if len(video) != 100 {
		t.Fatalf("%d video frames, want 100", len(video))
	}
	// The first part ends at 49*40+20 (audio) + 20: the second starts
	// one audio interval later, within a frame.
	if video[50] < 49*40+40 || video[50] > 49*40+80 {
		t.Fatalf("appended part starts at %d, the first ended at %d", video[50], video[49])
	}
	c, id := vodPlayer(t, base, 60000, "app", 0.0)
	got := media(untilEv(t, c, id, "playstatus", "NetStream.Play.Complete", 5*time.Second))
	if len(got) != len(tags) {
		t.Fatalf("played %d of %d tags", len(got), len(tags))
	}
}

// An unwritable folder: the publisher gets Record.NoAccess and goes on
// streaming live.
func TestRecordNoAccessKeepsLive(t *testing.T) {
	dir := t.TempDir()
	// The instance's streams folder cannot be made: a file is in the way
	// (chmod would not stop root).
	os.MkdirAll(filepath.Join(dir, "live"), 0o755)
	os.WriteFile(filepath.Join(dir, "live", "streams"), []byte("x"), 0o644)
	base, _, logs := startServer(t, session.Config{DataDir: dir})
	live, lid := sessiontest.Play(t, base+"/live", "cam")
	pub := sessiontest.Publish(t, base+"/live", "cam", "record")
	_, err := pub.C.WaitStatus(sessiontest.Ctx(t, 5*time.Second), pub.MsID, "NetStream.Record.Start")
	var se *client.StatusError
	if !errors.As(err, &se) || se.Code != "NetStream.Record.NoAccess" {
		t.Fatalf("got %v, want NetStream.Record.NoAccess", err)
	}
	pub.Header(t, recordMeta)
	pub.Frames(t, 0, 30, 25)
	for {
		if m := sessiontest.NextMedia(t, live, lid); m.Type == message.TypeVideo && bytes.Equal(m.Payload, sessiontest.VideoFrame(29, 25)) {
			break
		}
	}
	if !bytes.Contains([]byte(logs.String()), []byte("recording failed")) {
		t.Error("no log line about the failed recording")
	}
	// A name that leaves the streams folder cannot be recorded either.
	pub2 := sessiontest.Publish(t, base+"/live", "../../../escape", "record")
	_, err = pub2.C.WaitStatus(sessiontest.Ctx(t, 5*time.Second), pub2.MsID, "NetStream.Record.Start")
	if !errors.As(err, &se) || se.Code != "NetStream.Record.NoAccess" {
		t.Fatalf("recording ../../../escape: got %v, want NetStream.Record.NoAccess", err)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(dir), "escape.flv")); err == nil {
		t.Fatal("a file was written outside the data folder")
	}
}

// A full disk: Record.Failed, live goes on, the file plays up to where
// the disk filled. Needs root for a small tmpfs.
func TestRecordDiskFull(t *testing.T) {
	dir := t.TempDir()
	if os.Getuid() != 0 {
		t.Skip("needs root to mount a small tmpfs")
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	base, _, _ := startServer(t, session.Config{DataDir: dir})
	live, lid := sessiontest.Play(t, base+"/live", "big")
	pub := sessiontest.Publish(t, base+"/live", "big", "record")
	waitStatus(t, pub.C, pub.MsID, "NetStream.Record.Start")
	pub.Header(t, recordMeta)
	frame := make([]byte, 20<<10)
	frame[0], frame[1] = 0x17, 1
	for i := range 60 { // 1.2 MB into 512 KB
		pub.Send(t, message.TypeVideo, uint32(i*40), frame)
	}
	got := 0
	for got < 60 {
		if m := sessiontest.NextMedia(t, live, lid); m.Type == message.TypeVideo && len(m.Payload) == len(frame) {
			got++
		}
	}
	// The recorder reports the full disk as it hits it, before the end.
	waitStatus(t, pub.C, pub.MsID, "NetStream.Record.Failed")
	codes := unpublish(t, pub)
	t.Logf("unpublish statuses after Record.Failed: %v", codes)
	if len(codes) != 1 {
		t.Fatalf("statuses after Record.Failed %v, want Unpublish.Success alone", codes)
	}
	c, id := vodPlayer(t, base, 60000, "big", 0.0)
	n := len(media(untilEv(t, c, id, "playstatus", "NetStream.Play.Complete", 5*time.Second)))
	t.Logf("the full-disk recording plays %d media messages", n)
	if n < 10 || n >= 62 {
		t.Fatalf("played %d messages from the full-disk recording", n)
	}
}

// A player of a file being recorded follows it, and seeks in it.
func TestVODSeekWhileRecording(t *testing.T) {
	dir := t.TempDir()
	base, _, _ := startServer(t, session.Config{DataDir: dir})
	pub := sessiontest.Publish(t, base+"/live", "grow", "record")
	waitStatus(t, pub.C, pub.MsID, "NetStream.Record.Start")
	pub.Header(t, recordMeta)
	pub.Frames(t, 0, 100, 25)
	path := filepath.Join(dir, "live", "streams", "_definst_", "grow.flv")
	waitTags(t, path, 2+2*100)
	c, id := vodPlayer(t, base, 60000, "grow", 0.0)
	for {
		if e := readEv(t, c, id, 5*time.Second); e.kind == "video" && sessiontest.FrameIndex(e.data) == 99 {
			break
		}
	}
	pub.Frames(t, 100, 150, 25)
	waitTags(t, path, 2+2*150) // the seek lands in what is on disk
	c.WriteCommand(id, &message.Command{Name: "seek", Args: []any{2100.0}})
	untilEv(t, c, id, "status", "NetStream.Seek.Notify", 5*time.Second)
	want := 50 // the keyframe at 2000
	for want < 150 {
		e := readEv(t, c, id, 5*time.Second)
		if e.kind != "video" || sessiontest.FrameIndex(e.data) < 0 {
			continue
		}
		if sessiontest.FrameIndex(e.data) != want || e.ts != uint32(want*40) {
			t.Fatalf("after the seek: frame %d at %d, want %d", sessiontest.FrameIndex(e.data), e.ts, want)
		}
		want++
	}
	pub.Frames(t, 150, 160, 25)
	for want < 160 {
		if e := readEv(t, c, id, 5*time.Second); e.kind == "video" && sessiontest.FrameIndex(e.data) >= 0 {
			if sessiontest.FrameIndex(e.data) != want {
				t.Fatalf("following: frame %d, want %d", sessiontest.FrameIndex(e.data), want)
			}
			want++
		}
	}
	unpublish(t, pub)
	untilEv(t, c, id, "playstatus", "NetStream.Play.Complete", 5*time.Second)
}
