package vod

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/rtmphub/rtmphub/flv"
	"github.com/rtmphub/rtmphub/rtmp/message"
	"github.com/rtmphub/rtmphub/session/internal/confine"
)

// Store finds the stream files of a data dir, keeps what a player needs
// to start (keyframe index, onMetaData, sequence headers) per file in
// memory, and knows which files are being recorded. It is safe for
// concurrent use.
type Store struct {
	dataDir  string
	maxFiles int
	log      *slog.Logger

	mu         sync.Mutex
	files      map[string]*fileEntry    // by real path
	bytes      int64                    // cost of the entries in files
	recordings map[string]chan struct{} // by real path; closed when the recording ends
	builds     int                      // Infos built, for tests

	blocks *blockCache // FLV files' bytes, shared by their players
}

// Config is what a Store is made with.
type Config struct {
	// DataDir is the applications folder: stream files are under
	// <DataDir>/<app>/streams/<instance>/.
	DataDir string
	// MaxFiles bounds the files whose Info is kept in memory (as does
	// a bound of 256 MB on what they hold).
	MaxFiles int
	// Log gets a debug line per file indexed.
	Log *slog.Logger
}

// New returns a Store of the files under cfg.DataDir.
func New(cfg Config) *Store {
	log := cfg.Log
	if log == nil {
		log = slog.Default()
	}
	return &Store{
		dataDir:    cfg.DataDir,
		maxFiles:   cfg.MaxFiles,
		log:        log,
		files:      make(map[string]*fileEntry),
		recordings: make(map[string]chan struct{}),
		blocks:     newBlockCache(maxBlockBytes, blockIdle),
	}
}

// Kind is the format of a stream file.
type Kind int

// Kinds of stream file.
const (
	FLV Kind = iota
	MP4
)

// mp4Exts are the extensions a "mp4:" name may have.
var mp4Exts = []string{".mp4", ".f4v", ".m4v", ".m4a", ".mov"}

// FileName maps a play or publish name to a file name under the
// instance's streams folder: "name" and "flv:name" are name.flv (".flv"
// is not added twice), "mp4:name.ext" is an MP4 file (".mp4" added when
// the name has none of the MP4 extensions).
func FileName(name string) (string, Kind) {
	switch {
	case strings.HasPrefix(name, "mp4:"):
		name = name[4:]
		ext := strings.ToLower(filepath.Ext(name))
		for _, e := range mp4Exts {
			if ext == e {
				return name, MP4
			}
		}
		return name + ".mp4", MP4
	case strings.HasPrefix(name, "flv:"):
		name = name[4:]
	}
	if strings.EqualFold(filepath.Ext(name), ".flv") {
		return name, FLV
	}
	return name + ".flv", FLV
}

// streamRel returns the path of a stream file relative to the data dir,
// or false when the file name could leave the instance's streams folder
// lexically: empty, absolute, a ".." element, a NUL byte.
func streamRel(app, inst, file string) (string, bool) {
	if file == "" || strings.HasPrefix(file, "/") || strings.ContainsRune(file, 0) || strings.HasSuffix(file, "/") {
		return "", false
	}
	for _, part := range strings.Split(file, "/") {
		if part == ".." {
			return "", false
		}
	}
	if !filepath.IsLocal(file) {
		return "", false
	}
	return filepath.Join(app, "streams", inst, file), true
}

// base returns the data dir with symbolic links resolved.
func (s *Store) base() (string, error) {
	abs, err := filepath.Abs(s.dataDir)
	if err != nil {
		return "", err
	}
	return filepath.EvalSymlinks(abs)
}

// inside resolves the symbolic links of path and checks that the result
// is in the data dir base (confine.Path: the rule shared with shared
// object files and the scripts' files).
func inside(base, path string) (string, error) {
	return confine.Path(base, path)
}

// errNotFound is what every failure to find a playable file becomes.
var errNotFound = errors.New("stream file not found")

// File is a stream file found in the data dir.
type File struct {
	Rel  string // path under the data dir, as named
	Real string // path to open: symbolic links resolved, in the data dir
	Kind Kind
}

// Find locates the regular file a play name names ("name", "flv:name",
// "mp4:name.ext", see FileName) in the streams folder of instance inst of
// application app. Every failure to find one is the same error (a name
// that leaves the folder, a missing file, a link out of the data dir):
// a player only ever learns StreamNotFound.
func (s *Store) Find(app, inst, name string) (File, error) {
	file, kind := FileName(name)
	rel, ok := streamRel(app, inst, file)
	if !ok {
		return File{}, errNotFound
	}
	real, err := s.locate(rel)
	if err != nil {
		return File{}, err
	}
	return File{Rel: rel, Real: real, Kind: kind}, nil
}

// locate finds the regular file rel under the data dir and returns its
// real path (symbolic links resolved, which must stay in the data dir).
func (s *Store) locate(rel string) (string, error) {
	base, err := s.base()
	if err != nil {
		return "", errNotFound
	}
	real, err := inside(base, filepath.Join(base, rel))
	if err != nil {
		return "", errNotFound
	}
	fi, err := os.Stat(real)
	if err != nil || !fi.Mode().IsRegular() {
		return "", errNotFound
	}
	return real, nil
}

// Info is what a player needs of a file before it starts: shared by
// every player of the same file version, read-only.
type Info struct {
	Meta     []byte        // onMetaData for players; nil when the file has none
	Seq      []*flv.Tag    // sequence headers at the start of the file
	Duration time.Duration // of the file: to the end of its last frame

	index *flv.Index // FLV files: the keyframes
	// corrupt is set when the file has a corrupt tag: it plays up to it.
	corrupt error
	mp4     *mp4Table // MP4 files: the samples
	cost    int64     // memory held, for the cache's bound
	// size is the file's size in this version: the bytes before it are
	// read through the Store's shared blocks (blocks.go).
	size int64
}

type fileEntry struct {
	size  int64
	mtime time.Time
	used  time.Time     // guarded by Store.mu
	cost  int64         // guarded by Store.mu
	ready chan struct{} // closed when info or err is set
	info  *Info
	err   error
}

// info returns the Info of the open FLV file f at real path real,
// built once per size and modification time and kept for later players.
func (s *Store) info(real string, f *os.File) (*Info, error) {
	return s.infoWith(real, f, buildInfo)
}

// infoWith is info with the builder of a kind of file.
func (s *Store) infoWith(real string, f *os.File, build func(*os.File) (*Info, error)) (*Info, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	e := s.files[real]
	if e != nil && e.size == fi.Size() && e.mtime.Equal(fi.ModTime()) {
		e.used = time.Now()
		s.mu.Unlock()
		<-e.ready
		return e.info, e.err
	}
	if e != nil {
		// Another version (the file was rewritten, or a recording grew):
		// built again. Its cost leaves the bound with it; one being built
		// has none yet, and its builder finds it replaced.
		s.bytes -= e.cost
		e.cost = 0
	}
	e = &fileEntry{size: fi.Size(), mtime: fi.ModTime(), used: time.Now(), ready: make(chan struct{})}
	s.files[real] = e
	s.builds++
	s.evictLocked()
	s.mu.Unlock()

	start := time.Now()
	e.info, e.err = build(f)
	if e.info != nil {
		e.info.size = e.size
		s.mu.Lock()
		if s.files[real] == e {
			e.cost = e.info.cost
			s.bytes += e.cost
			s.evictLocked()
		}
		s.mu.Unlock()
	}
	close(e.ready)
	if e.err == nil {
		s.log.Debug("vod file indexed", "file", real, "keyframes", e.info.keyframes(),
			"duration", e.info.Duration.String(), "took", time.Since(start).Round(time.Microsecond).String())
	}
	return e.info, e.err
}

// keyframes counts the points where playback can start.
func (fi *Info) keyframes() int {
	switch {
	case fi.index != nil:
		return len(fi.index.Keyframes)
	case fi.mp4 != nil:
		return len(fi.mp4.keys)
	}
	return 0
}

// maxCacheBytes bounds the memory of the kept file entries (MP4 sample
// tables are the large ones).
const maxCacheBytes = 256 << 20

// evictLocked drops the least recently used ready entries beyond the
// cache's bounds.
func (s *Store) evictLocked() {
	for len(s.files) > s.maxFiles || s.bytes > maxCacheBytes {
		var oldest string
		var at time.Time
		for k, e := range s.files {
			select {
			case <-e.ready:
			default:
				continue // being built: someone waits for it
			}
			if oldest == "" || e.used.Before(at) {
				oldest, at = k, e.used
			}
		}
		if oldest == "" {
			return
		}
		s.bytes -= s.files[oldest].cost
		delete(s.files, oldest)
	}
}

// maxSeqScan bounds the tags read from the start of a file looking for
// sequence headers.
const maxSeqScan = 256

// buildInfo indexes an FLV file and reads its metadata and the sequence
// headers at its start.
func buildInfo(f *os.File) (*Info, error) {
	idx, err := flv.BuildIndex(f)
	if idx == nil {
		return nil, err
	}
	info := &Info{index: idx, Duration: idx.Duration, corrupt: err, cost: int64(len(idx.Keyframes)) * 16}
	if m, err := flv.ReadMetadata(f); err == nil {
		if b, err := m.Encode(); err == nil {
			info.Meta = b
			info.cost += int64(len(b))
		}
	}
	r, err := flv.NewReader(f)
	if err != nil {
		return nil, err
	}
	if err := r.SeekTag(idx.Start); err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var codedVideo, codedAudio bool
	for range maxSeqScan {
		t, err := r.Next()
		if err != nil {
			break
		}
		switch t.Type {
		case flv.TagVideo:
			v, ok := message.ParseVideo(t.Data)
			if !ok {
				continue
			}
			if v.SequenceHeader || v.Metadata {
				key := "v" + v.TrackKey + v.Codec
				if v.Metadata {
					key += "/meta"
				}
				if !seen[key] {
					seen[key] = true
					info.Seq = append(info.Seq, t)
					info.cost += int64(len(t.Data))
				}
			} else if !v.Command && !v.SequenceEnd {
				codedVideo = true
			}
		case flv.TagAudio:
			a, ok := message.ParseAudio(t.Data)
			if !ok {
				continue
			}
			if a.SequenceHeader || a.MultichannelConfig {
				key := "a" + a.TrackKey + a.Codec
				if a.MultichannelConfig {
					key += "/mc"
				}
				if !seen[key] {
					seen[key] = true
					info.Seq = append(info.Seq, t)
				}
			} else if !a.SequenceEnd {
				codedAudio = true
			}
		}
		h := r.Header()
		if (codedVideo || !h.HasVideo) && (codedAudio || !h.HasAudio) {
			break
		}
	}
	return info, nil
}

// openFile opens a located file for reading.
func openFile(real string) (*os.File, error) {
	f, err := os.Open(real)
	if err != nil {
		return nil, err
	}
	return f, nil
}

// Source is a stream file as a player reads it: tags in FLV form.
type Source interface {
	// Info is what the player needs of the file before it starts.
	Info() *Info
	// SeekKeyframe moves to the keyframe at or before ms (the start of
	// the file for ms <= 0) and returns its time in milliseconds, and
	// whether the sequence headers must be sent before it (not at the
	// start).
	SeekKeyframe(ms int64) (ts int64, needSeq bool, err error)
	// Next returns the next tag; io.EOF at the end, io.ErrUnexpectedEOF
	// when the file ends inside a tag (it may still be growing). The Tag
	// may be reused by the next call; its Data is the caller's to keep
	// (never written to again, and not to be written to).
	Next() (*flv.Tag, error)
	Close()
}

// Open opens a file Find located, for playing. A file that is
// not a valid file of its kind is an error that wraps flv.ErrCorrupt,
// ErrBadMP4 or io.ErrUnexpectedEOF (an FLV file shorter than its header:
// a recording may just be starting).
func (s *Store) Open(file File) (Source, error) {
	real := file.Real
	if file.Kind == MP4 {
		return openMP4(s, real)
	}
	f, err := openFile(real)
	if err != nil {
		return nil, err
	}
	info, err := s.info(real, f)
	if err != nil {
		f.Close()
		return nil, err
	}
	src := &flvSource{store: s, real: real, f: f, info: info}
	if err := src.readHeader(); err != nil {
		f.Close()
		return nil, err
	}
	return src, nil
}

// HasVideo reports whether the file has video keyframes to start at.
func (fi *Info) HasVideo() bool {
	for _, t := range fi.Seq {
		if t.Type == flv.TagVideo {
			return true
		}
	}
	return false
}
