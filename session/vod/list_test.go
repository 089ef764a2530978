package vod

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestListStreamFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(rel string, age time.Duration) {
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		at := time.Now().Add(-age)
		os.Chtimes(p, at, at)
	}
	write("live/streams/_definst_/a.flv", 3*time.Hour)
	write("live/streams/room1/sub/b.mp4", time.Hour)
	write("live/streams/_definst_/notes.txt", 0) // not a stream file
	write("live/streams/top.flv", 0)             // beside the instances' folders
	write("vod/streams/_definst_/c.FLV", 2*time.Hour)
	write("vod/sharedobjects/_definst_/d.flv", 0) // not a streams folder
	os.Symlink(filepath.Join(dir, "live/streams/_definst_/a.flv"), filepath.Join(dir, "live/streams/_definst_/link.flv"))

	s := New(Config{DataDir: dir})
	got := s.List(100)
	want := []StoredFile{
		{App: "live", Instance: "room1", Name: "sub/b.mp4"},
		{App: "vod", Instance: "_definst_", Name: "c.FLV"},
		{App: "live", Instance: "_definst_", Name: "a.flv"},
	}
	if len(got) != len(want) {
		t.Fatalf("listed %+v, want %d files", got, len(want))
	}
	for i, w := range want {
		if got[i].App != w.App || got[i].Instance != w.Instance || got[i].Name != w.Name || got[i].Size != 1 || got[i].Recording {
			t.Errorf("file %d: %+v, want %+v (newest first)", i, got[i], w)
		}
	}
	if n := len(s.List(2)); n != 2 {
		t.Errorf("List(2) gave %d files", n)
	}
}
