package session

import (
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/rtmphub/rtmphub/flv"
	"github.com/rtmphub/rtmphub/rtmp/amf"
	"github.com/rtmphub/rtmphub/rtmp/message"
	"github.com/rtmphub/rtmphub/session/internal/confine"
)

// Stream files live in the FMS layout: <DataDir>/<app>/streams/<instance>/
// <name>.flv. mediaStore finds them, keeps what a player needs to start
// (keyframe index, onMetaData, sequence headers) per file in memory, and
// knows which files are being recorded.
type mediaStore struct {
	dataDir  string
	maxFiles int
	log      *slog.Logger

	mu         sync.Mutex
	files      map[string]*fileEntry // by real path
	bytes      int64                 // cost of the entries in files
	recordings map[string]*recorder  // by real path

	// openWriter opens a recording; tests replace it to simulate slow or
	// failing disks.
	openWriter func(path string, appendTo bool, hasAudio, hasVideo bool, meta amf.ECMAArray) (tagWriter, error)
}

func newMediaStore(cfg *Config, log *slog.Logger) *mediaStore {
	return &mediaStore{
		dataDir:    cfg.DataDir,
		maxFiles:   cfg.VODIndexCache,
		log:        log,
		files:      make(map[string]*fileEntry),
		recordings: make(map[string]*recorder),
		openWriter: openFLVWriter,
	}
}

// Kinds of stream file.
type fileKind int

const (
	kindFLV fileKind = iota
	kindMP4
)

// mp4Exts are the extensions a "mp4:" name may have.
var mp4Exts = []string{".mp4", ".f4v", ".m4v", ".m4a", ".mov"}

// fileName maps a play or publish name to a file name under the
// instance's streams folder: "name" and "flv:name" are name.flv (".flv"
// is not added twice), "mp4:name.ext" is an MP4 file (".mp4" added when
// the name has none of the MP4 extensions).
func fileName(name string) (string, fileKind) {
	switch {
	case strings.HasPrefix(name, "mp4:"):
		name = name[4:]
		ext := strings.ToLower(filepath.Ext(name))
		for _, e := range mp4Exts {
			if ext == e {
				return name, kindMP4
			}
		}
		return name + ".mp4", kindMP4
	case strings.HasPrefix(name, "flv:"):
		name = name[4:]
	}
	if strings.EqualFold(filepath.Ext(name), ".flv") {
		return name, kindFLV
	}
	return name + ".flv", kindFLV
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
func (ms *mediaStore) base() (string, error) {
	abs, err := filepath.Abs(ms.dataDir)
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

// errNotFound is what every failure to find a playable file becomes: the
// player only ever learns StreamNotFound.
var errNotFound = errors.New("stream file not found")

// locate finds the regular file rel under the data dir and returns its
// real path (symbolic links resolved, which must stay in the data dir).
func (ms *mediaStore) locate(rel string) (string, error) {
	base, err := ms.base()
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

// fileInfo is what a player needs of a file before it starts: shared by
// every player of the same file version, read-only.
type fileInfo struct {
	index    *flv.Index
	meta     []byte     // onMetaData for players; nil when the file has none
	seq      []*flv.Tag // sequence headers at the start of the file
	duration time.Duration
	// corrupt is set when the file has a corrupt tag: it plays up to it.
	corrupt error
	mp4     *mp4Table // MP4 files: the samples
	cost    int64     // memory held, for the cache's bound
}

type fileEntry struct {
	size  int64
	mtime time.Time
	used  time.Time     // guarded by mediaStore.mu
	cost  int64         // guarded by mediaStore.mu
	ready chan struct{} // closed when info or err is set
	info  *fileInfo
	err   error
}

// info returns the fileInfo of the open FLV file f at real path real,
// built once per size and modification time and kept for later players.
func (ms *mediaStore) info(real string, f *os.File) (*fileInfo, error) {
	return ms.infoWith(real, f, buildInfo)
}

// infoWith is info with the builder of a kind of file.
func (ms *mediaStore) infoWith(real string, f *os.File, build func(*os.File) (*fileInfo, error)) (*fileInfo, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	ms.mu.Lock()
	e := ms.files[real]
	if e != nil && e.size == fi.Size() && e.mtime.Equal(fi.ModTime()) {
		e.used = time.Now()
		ms.mu.Unlock()
		<-e.ready
		return e.info, e.err
	}
	e = &fileEntry{size: fi.Size(), mtime: fi.ModTime(), used: time.Now(), ready: make(chan struct{})}
	ms.files[real] = e
	ms.evictLocked()
	ms.mu.Unlock()

	start := time.Now()
	e.info, e.err = build(f)
	if e.info != nil {
		ms.mu.Lock()
		e.cost = e.info.cost
		ms.bytes += e.cost
		ms.evictLocked()
		ms.mu.Unlock()
	}
	close(e.ready)
	if e.err == nil {
		ms.log.Debug("vod file indexed", "file", real, "keyframes", e.info.keyframes(),
			"duration", e.info.duration.String(), "took", time.Since(start).Round(time.Microsecond).String())
	}
	return e.info, e.err
}

// keyframes counts the points where playback can start.
func (fi *fileInfo) keyframes() int {
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
func (ms *mediaStore) evictLocked() {
	for len(ms.files) > ms.maxFiles || ms.bytes > maxCacheBytes {
		var oldest string
		var at time.Time
		for k, e := range ms.files {
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
		ms.bytes -= ms.files[oldest].cost
		delete(ms.files, oldest)
	}
}

// maxSeqScan bounds the tags read from the start of a file looking for
// sequence headers.
const maxSeqScan = 256

// buildInfo indexes an FLV file and reads its metadata and the sequence
// headers at its start.
func buildInfo(f *os.File) (*fileInfo, error) {
	idx, err := flv.BuildIndex(f)
	if idx == nil {
		return nil, err
	}
	info := &fileInfo{index: idx, duration: idx.Duration, corrupt: err, cost: int64(len(idx.Keyframes)) * 16}
	if m, err := flv.ReadMetadata(f); err == nil {
		if b, err := m.Encode(); err == nil {
			info.meta = b
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
					info.seq = append(info.seq, t)
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
					info.seq = append(info.seq, t)
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

// isRecording reports whether a recording is writing the file real.
func (ms *mediaStore) isRecording(real string) bool {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	return ms.recordings[real] != nil
}

// streamLength returns the duration of the stream file a play name names,
// for getStreamLength; 0 when there is none.
func (c *Client) streamLength(name string) float64 {
	file, kind := fileName(streamName(name))
	rel, ok := streamRel(c.app, c.inst.name, file)
	if !ok {
		return 0
	}
	ms := c.srv.media
	real, err := ms.locate(rel)
	if err != nil {
		return 0
	}
	src, err := openSource(ms, real, kind)
	if err != nil {
		return 0
	}
	defer src.close()
	return src.fileInfo().duration.Seconds()
}

// mediaSource is a stream file as a player reads it: tags in FLV form.
type mediaSource interface {
	fileInfo() *fileInfo
	// seek moves to the keyframe at or before ms (the start of the file
	// for ms <= 0) and returns its time in milliseconds, and whether the
	// sequence headers must be sent before it (not at the start).
	seek(ms int64) (ts int64, needSeq bool, err error)
	// next returns the next tag; io.EOF at the end, io.ErrUnexpectedEOF
	// when the file ends inside a tag (it may still be growing).
	next() (*flv.Tag, error)
	close()
}

// openSource opens a located file of kind.
func openSource(ms *mediaStore, real string, kind fileKind) (mediaSource, error) {
	if kind == kindMP4 {
		return openMP4(ms, real)
	}
	f, err := openFile(real)
	if err != nil {
		return nil, err
	}
	info, err := ms.info(real, f)
	if err != nil {
		f.Close()
		return nil, err
	}
	r, err := flv.NewReader(f)
	if err != nil {
		f.Close()
		return nil, err
	}
	return &flvSource{ms: ms, real: real, f: f, r: r, info: info}, nil
}

// flvSource reads an FLV file.
type flvSource struct {
	ms   *mediaStore
	real string
	f    *os.File
	r    *flv.Reader
	info *fileInfo
}

func (s *flvSource) fileInfo() *fileInfo { return s.info }

func (s *flvSource) seek(ms int64) (int64, bool, error) {
	if s.ms.isRecording(s.real) {
		// A growing file: index what is there now (through a handle of
		// its own: the Reader owns the offset of s.f).
		if f, err := openFile(s.real); err == nil {
			if info, err := s.ms.info(s.real, f); err == nil {
				s.info = info
			}
			f.Close()
		}
	}
	idx := s.info.index
	if ms <= 0 {
		return 0, false, s.r.SeekTag(idx.Start)
	}
	k := idx.Lookup(time.Duration(ms) * time.Millisecond)
	if k.Pos <= idx.Start {
		return 0, false, s.r.SeekTag(idx.Start)
	}
	return int64(k.Time*1000 + 0.5), true, s.r.SeekTag(k.Pos)
}

func (s *flvSource) next() (*flv.Tag, error) {
	t, err := s.r.Next()
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, err
	}
	return t, err
}

func (s *flvSource) close() { s.f.Close() }
