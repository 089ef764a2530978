package vod

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/rtmphub/rtmphub/flv"
	"github.com/rtmphub/rtmphub/rtmp/amf"
)

// writeFLV writes an H.264/AAC file of n seconds at path: sequence
// headers, then a keyframe each second and an inter frame and an audio
// frame between.
func writeFLV(t *testing.T, path string, n int) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	w, err := flv.Create(path, true, true, amf.ECMAArray{{Key: "videocodecid", Value: 7.0}, {Key: "audiocodecid", Value: 10.0}})
	if err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(w.WriteTag(flv.TagVideo, 0, []byte{0x17, 0, 0, 0, 0, 1, 0x64}))
	must(w.WriteTag(flv.TagAudio, 0, []byte{0xaf, 0, 0x12, 0x10}))
	for s := range n {
		ts := uint32(s * 1000)
		must(w.WriteTag(flv.TagVideo, ts, []byte{0x17, 1, 0, 0, 0, 0xAA}))
		must(w.WriteTag(flv.TagAudio, ts+10, []byte{0xaf, 1, 0xBB}))
		must(w.WriteTag(flv.TagVideo, ts+500, []byte{0x27, 1, 0, 0, 0, 0xCC}))
	}
	must(w.Close())
}

func TestFindNames(t *testing.T) {
	dir := t.TempDir()
	s := New(Config{DataDir: dir, MaxFiles: 8})
	writeFLV(t, filepath.Join(dir, "live", "streams", "_definst_", "a.flv"), 1)
	if err := os.WriteFile(filepath.Join(dir, "secret.flv"), []byte("FLV"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(dir, "secret.flv"), filepath.Join(dir, "live", "streams", "_definst_", "in.flv")); err != nil {
		t.Fatal(err)
	}
	outside := filepath.Join(t.TempDir(), "out.flv")
	writeFLV(t, outside, 1)
	if err := os.Symlink(outside, filepath.Join(dir, "live", "streams", "_definst_", "out.flv")); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"a", "a.flv", "flv:a", "flv:a.flv", "in"} {
		f, err := s.Find("live", "_definst_", name)
		if err != nil || f.Kind != FLV || !filepath.IsAbs(f.Real) {
			t.Errorf("Find(%q) = %+v, %v", name, f, err)
		}
	}
	for _, name := range []string{"b", "../../secret", "/etc/passwd", "out", "mp4:a", "a/", ""} {
		if f, err := s.Find("live", "_definst_", name); !errors.Is(err, errNotFound) {
			t.Errorf("Find(%q) = %+v, %v; want errNotFound", name, f, err)
		}
	}
	for name, want := range map[string]string{"mp4:x": "x.mp4", "mp4:x.MOV": "x.MOV", "mp4:x.m4a": "x.m4a", "flv:y.flv": "y.flv", "z": "z.flv"} {
		if got, _ := FileName(name); got != want {
			t.Errorf("FileName(%q) = %q, want %q", name, got, want)
		}
	}
}

func TestOpenFLVCachesInfo(t *testing.T) {
	dir := t.TempDir()
	s := New(Config{DataDir: dir, MaxFiles: 1})
	path := filepath.Join(dir, "live", "streams", "_definst_", "a.flv")
	writeFLV(t, path, 3)
	f, err := s.Find("live", "_definst_", "a")
	if err != nil {
		t.Fatal(err)
	}
	src, err := s.Open(f)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	info := src.Info()
	if len(info.Seq) != 2 || info.Meta == nil || !info.HasVideo() || info.keyframes() != 3 {
		t.Fatalf("info: %d sequence headers, meta %v, %d keyframes", len(info.Seq), info.Meta != nil, info.keyframes())
	}
	ts, needSeq, err := src.SeekKeyframe(2200)
	if err != nil || ts != 2000 || !needSeq {
		t.Fatalf("SeekKeyframe(2200) = %d, %v, %v", ts, needSeq, err)
	}
	var got []uint32
	for {
		tg, err := src.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, tg.Timestamp)
	}
	if len(got) != 3 || got[0] != 2000 {
		t.Fatalf("tags from 2000 ms: %v", got)
	}

	// The same file version shares its Info; another version gets its own.
	src2, err := s.Open(f)
	if err != nil {
		t.Fatal(err)
	}
	src2.Close()
	if src2.Info() != info {
		t.Fatal("second open built the Info again")
	}
	writeFLV(t, path, 4)
	src3, err := s.Open(f)
	if err != nil {
		t.Fatal(err)
	}
	src3.Close()
	if src3.Info() == info || src3.Info().keyframes() != 4 {
		t.Fatalf("rewritten file: %d keyframes", src3.Info().keyframes())
	}

	// MaxFiles 1: opening another file evicts the first.
	writeFLV(t, filepath.Join(dir, "live", "streams", "_definst_", "b.flv"), 1)
	fb, err := s.Find("live", "_definst_", "b")
	if err != nil {
		t.Fatal(err)
	}
	srcB, err := s.Open(fb)
	if err != nil {
		t.Fatal(err)
	}
	srcB.Close()
	s.mu.Lock()
	n, kept := len(s.files), s.files[f.Real] != nil
	s.mu.Unlock()
	if n != 1 || kept {
		t.Fatalf("%d files kept (a.flv among them: %v), want b.flv only", n, kept)
	}
}

func TestRecordingRegistry(t *testing.T) {
	dir := t.TempDir()
	s := New(Config{DataDir: dir, MaxFiles: 8})
	if _, err := s.PrepareRecording("live", "_definst_", "../x.flv"); err == nil {
		t.Fatal("PrepareRecording accepted ../x.flv")
	}
	path, err := s.PrepareRecording("live", "_definst_", "rec.flv")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("PrepareRecording left a file at %s: %v", path, err)
	}
	if fi, err := os.Stat(filepath.Dir(path)); err != nil || !fi.IsDir() {
		t.Fatalf("streams folder: %v", err)
	}
	release, ok := s.Register(path, 0)
	if !ok || !s.IsRecording(path) {
		t.Fatal("first registration refused")
	}
	if _, ok := s.Register(path, 0); ok {
		t.Fatal("a second recording of the file registered")
	}
	release()
	release() // once only
	if s.IsRecording(path) {
		t.Fatal("still recording after release")
	}
	release, ok = s.Register(path, 0)
	if !ok {
		t.Fatal("registration after release refused")
	}
	release()
}
