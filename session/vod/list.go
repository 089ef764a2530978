package vod

import (
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// StoredFile is a stream file in an instance's streams folder.
type StoredFile struct {
	App       string    `json:"app"`
	Instance  string    `json:"instance"`
	Name      string    `json:"name"` // the file's path under the streams folder
	Size      int64     `json:"size"`
	Modified  time.Time `json:"modified"`
	Recording bool      `json:"recording"` // a recording is writing it now
}

// List returns the stream files (.flv, .mp4, .f4v, .m4v, .mov) in the
// streams folders of every application, <data>/<app>/streams/<instance>/,
// newest first, at most max of them (the walk stops there). Symbolic
// links are not followed.
func (s *Store) List(max int) []StoredFile {
	base, err := s.base()
	if err != nil {
		return nil
	}
	apps, _ := filepath.Glob(filepath.Join(base, "*", "streams"))
	var out []StoredFile
	for _, dir := range apps {
		app := filepath.Base(filepath.Dir(dir))
		filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil || len(out) >= max {
				return fs.SkipDir
			}
			if !d.Type().IsRegular() || !streamExt(p) {
				return nil
			}
			rel, err := filepath.Rel(dir, p)
			if err != nil {
				return nil
			}
			inst, name, ok := strings.Cut(filepath.ToSlash(rel), "/")
			if !ok {
				return nil // a file beside the instances' folders
			}
			fi, err := d.Info()
			if err != nil {
				return nil
			}
			out = append(out, StoredFile{App: app, Instance: inst, Name: name, Size: fi.Size(),
				Modified: fi.ModTime(), Recording: s.IsRecording(p)})
			return nil
		})
	}
	slices.SortFunc(out, func(a, b StoredFile) int { return b.Modified.Compare(a.Modified) })
	return out
}

func streamExt(p string) bool {
	switch strings.ToLower(filepath.Ext(p)) {
	case ".flv", ".mp4", ".f4v", ".m4v", ".mov":
		return true
	}
	return false
}
