// Package confine keeps file paths inside a folder: the one rule for every
// file the server opens on a client's or a script's behalf (recordings and
// played files in the data folder, shared object files, the scripts' File
// class and load() in the application folder). A symbolic link may point
// anywhere inside the folder, never out of it.
//
// os.Root enforces nearly the same, race-free, but it also refuses every
// absolute symbolic link, even one that stays inside; data folders set up
// with absolute links (streams/<instance> -> /srv/media/...) keep working
// here as before.
package confine

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// ErrOutside is what a path leading out of its folder fails with.
var ErrOutside = errors.New("outside the folder")

// Path resolves the symbolic links of path, which must lie lexically in
// root, and checks that it stays in root. path need not exist: its deepest
// existing ancestor must resolve inside root, and the rest is appended to
// that. An entry that exists but does not resolve (a dangling link, a link
// loop) is an error, since creating the file would follow it. The result
// is absolute, with the links resolved.
func Path(root, path string) (string, error) {
	root, err := filepath.Abs(root)
	if err != nil {
		return "", err
	}
	realRoot, err := filepath.EvalSymlinks(root)
	if err != nil {
		return "", err
	}
	path, err = filepath.Abs(path)
	if err != nil {
		return "", err
	}
	if !within(root, path) {
		return "", fmt.Errorf("%s: %w %s", path, ErrOutside, root)
	}
	probe, rest := path, ""
	for {
		real, err := filepath.EvalSymlinks(probe)
		if err == nil {
			if !within(realRoot, real) {
				return "", fmt.Errorf("%s leads to %s, %w %s", probe, real, ErrOutside, realRoot)
			}
			return filepath.Join(real, rest), nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return "", err
		}
		if _, lerr := os.Lstat(probe); lerr == nil {
			// Not wrapped: this is no "file not found" to create.
			return "", fmt.Errorf("%s is a symbolic link that does not resolve (%v)", probe, err) //nolint:errorlint // see above
		}
		parent := filepath.Dir(probe)
		if parent == probe {
			return "", err
		}
		rest = filepath.Join(filepath.Base(probe), rest)
		probe = parent
	}
}

// within reports whether path is dir or beneath it (both absolute and
// clean).
func within(dir, path string) bool {
	rel, err := filepath.Rel(dir, path)
	return err == nil && (rel == "." || filepath.IsLocal(rel))
}
