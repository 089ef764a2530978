package confine

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

func TestPath(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	out := filepath.Join(dir, "out")
	for _, d := range []string{filepath.Join(root, "sub"), out} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for name, target := range map[string]string{
		"in-rel": "sub", "in-abs": filepath.Join(root, "sub"), "out-rel": "../out", "out-abs": out,
		"dangling": filepath.Join(out, "nothing"), "loop": "loop",
	} {
		if err := os.Symlink(target, filepath.Join(root, name)); err != nil {
			t.Fatal(err)
		}
	}
	realRoot, _ := filepath.EvalSymlinks(root)
	for _, tc := range []struct {
		path    string
		want    string // "" for an error
		outside bool
	}{
		{"sub", filepath.Join(realRoot, "sub"), false},
		{"sub/new/deeper.txt", filepath.Join(realRoot, "sub/new/deeper.txt"), false},
		{"in-rel/x", filepath.Join(realRoot, "sub/x"), false},
		{"in-abs/x", filepath.Join(realRoot, "sub/x"), false},
		{".", realRoot, false},
		{"out-rel/x", "", true},
		{"out-abs", "", true},
		{"out-abs/new/x", "", true},
		{"../out/x", "", true},
		{"dangling", "", false},
		{"loop/x", "", false},
	} {
		got, err := Path(root, filepath.Join(root, tc.path))
		if got != tc.want || (err == nil) != (tc.want != "") || errors.Is(err, ErrOutside) != tc.outside {
			t.Errorf("%s: %q, %v; want %q (outside %v)", tc.path, got, err, tc.want, tc.outside)
		}
		if tc.path == "dangling" && errors.Is(err, fs.ErrNotExist) {
			t.Errorf("a dangling link reads as a missing file: %v", err)
		}
	}
	if _, err := Path(filepath.Join(dir, "none"), filepath.Join(dir, "none", "x")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing root: %v", err)
	}
}
