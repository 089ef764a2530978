package vod

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/rtmphub/rtmphub/flv"
	"github.com/rtmphub/rtmphub/rtmp/amf"
	"github.com/rtmphub/rtmphub/rtmp/message"
)

// The files a recording writes: where it goes (PrepareRecording), one
// recording per file at a time (Register), and players that follow a file
// while it grows (IsRecording). What is recorded, and when, is the
// caller's.

// TagWriter is what a recording writes to: an flv.Writer.
type TagWriter interface {
	WriteTag(typ message.Type, ts uint32, data []byte) error
	Close() error
}

// OpenWriter opens the recording at path: flv.Append for an existing
// file when appendTo, otherwise flv.Create with meta.
func OpenWriter(path string, appendTo bool, hasAudio, hasVideo bool, meta amf.ECMAArray) (TagWriter, error) {
	if appendTo {
		return flv.Append(path)
	}
	return flv.Create(path, hasAudio, hasVideo, meta)
}

// PrepareRecording makes the instance's streams folder and returns the
// real path of the recording of file, which must stay in the data dir and
// be writable.
func (s *Store) PrepareRecording(app, inst, file string) (string, error) {
	rel, ok := streamRel(app, inst, file)
	if !ok {
		return "", fmt.Errorf("invalid stream name %q", file)
	}
	if err := os.MkdirAll(s.dataDir, 0o755); err != nil {
		return "", err
	}
	base, err := s.base()
	if err != nil {
		return "", err
	}
	root, err := os.OpenRoot(base)
	if err != nil {
		return "", err
	}
	defer root.Close()
	dir := filepath.Dir(rel)
	if err := root.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	realDir, err := inside(base, filepath.Join(base, dir))
	if err != nil {
		return "", err
	}
	path := filepath.Join(realDir, filepath.Base(rel))
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&os.ModeSymlink != 0 {
		if path, err = inside(base, path); err != nil {
			return "", err
		}
	}
	// Check that the file can be written without creating it: players
	// must never find an empty file where the recording will be.
	switch fi, err := os.Stat(path); {
	case err == nil && !fi.Mode().IsRegular():
		return "", fmt.Errorf("%s is not a regular file", path)
	case err == nil:
		f, err := os.OpenFile(path, os.O_WRONLY, 0)
		if err != nil {
			return "", err
		}
		f.Close()
	default:
		f, err := os.CreateTemp(realDir, ".rtmphub-probe-*")
		if err != nil {
			return "", err
		}
		f.Close()
		os.Remove(f.Name())
	}
	return path, nil
}

// Register makes the caller the recording of path (a path from
// PrepareRecording), waiting up to wait for an earlier recording of it to
// finish; false when it does not. Once true, release ends the
// registration, when the file is closed.
func (s *Store) Register(path string, wait time.Duration) (release func(), ok bool) {
	deadline := time.Now().Add(wait)
	for {
		s.mu.Lock()
		prev := s.recordings[path]
		if prev == nil {
			done := make(chan struct{})
			s.recordings[path] = done
			s.mu.Unlock()
			return sync.OnceFunc(func() { s.unregister(path, done) }), true
		}
		s.mu.Unlock()
		d := time.Until(deadline)
		if d <= 0 {
			return nil, false
		}
		t := time.NewTimer(d)
		select {
		case <-prev:
		case <-t.C:
		}
		t.Stop()
	}
}

func (s *Store) unregister(path string, done chan struct{}) {
	s.mu.Lock()
	if s.recordings[path] == done {
		delete(s.recordings, path)
	}
	s.mu.Unlock()
	close(done)
}

// IsRecording reports whether a recording is writing the file at real
// path real (a File.Real, or a path from PrepareRecording).
func (s *Store) IsRecording(real string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.recordings[real] != nil
}
