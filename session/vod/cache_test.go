package vod

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rtmphub/rtmphub/flv"
	"github.com/rtmphub/rtmphub/rtmp/amf"
)

// writeBigFLV writes an FLV file whose tags cross block boundaries: n
// keyframes of key bytes, each followed by inter frames and audio.
func writeBigFLV(t *testing.T, path string, n, key int) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	w, err := flv.Create(path, true, true, amf.ECMAArray{{Key: "videocodecid", Value: 7.0}})
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
	frame := func(head []byte, size int, fill byte) []byte {
		b := bytes.Repeat([]byte{fill}, size)
		copy(b, head)
		return b
	}
	for s := range n {
		ts := uint32(s * 1000)
		must(w.WriteTag(flv.TagVideo, ts, frame([]byte{0x17, 1, 0, 0, 0}, key, byte(s))))
		for i := range 9 {
			must(w.WriteTag(flv.TagVideo, ts+uint32(i+1)*100, frame([]byte{0x27, 1, 0, 0, 0}, key/7+i, byte(i))))
			must(w.WriteTag(flv.TagAudio, ts+uint32(i+1)*100+5, frame([]byte{0xaf, 1}, 200, 0xBB)))
		}
	}
	must(w.Close())
}

// readAllTags reads the tags of src from the keyframe at or before ms to
// the end, copying each.
func readAllTags(src Source, ms int64) ([]flv.Tag, error) {
	if _, _, err := src.SeekKeyframe(ms); err != nil {
		return nil, err
	}
	var out []flv.Tag
	for {
		tg, err := src.Next()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		c := *tg
		out = append(out, c)
	}
}

// referenceTags reads the file with flv.Reader, from the first tag.
func referenceTags(t *testing.T, path string) []flv.Tag {
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
	var out []flv.Tag
	for {
		tg, err := r.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, *tg)
	}
}

func sameTags(t *testing.T, got, want []flv.Tag) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d tags, want %d", len(got), len(want))
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.Type != w.Type || g.Timestamp != w.Timestamp || g.Offset != w.Offset || !bytes.Equal(g.Data, w.Data) {
			t.Fatalf("tag %d: %v %d at %d (%d bytes), want %v %d at %d (%d bytes)", i,
				g.Type, g.Timestamp, g.Offset, len(g.Data), w.Type, w.Timestamp, w.Offset, len(w.Data))
		}
	}
}

// N players of a cold file: the Info is built once, every block of the
// file read once, and each player gets the tags flv.Reader reads.
func TestColdPlayersShareIndexAndBlocks(t *testing.T) {
	dir := t.TempDir()
	s := New(Config{DataDir: dir, MaxFiles: 8})
	path := filepath.Join(dir, "live", "streams", "_definst_", "a.flv")
	writeBigFLV(t, path, 6, 40<<10) // keyframes larger than a block
	want := referenceTags(t, path)
	f, err := s.Find("live", "_definst_", "a")
	if err != nil {
		t.Fatal(err)
	}
	const players = 50
	var wg sync.WaitGroup
	infos := make([]*Info, players)
	errs := make([]error, players)
	got := make([][]flv.Tag, players)
	start := make(chan struct{})
	for i := range players {
		wg.Go(func() {
			<-start
			src, err := s.Open(f)
			if err != nil {
				errs[i] = err
				return
			}
			defer src.Close()
			infos[i] = src.Info()
			got[i], errs[i] = readAllTags(src, 0)
		})
	}
	close(start)
	wg.Wait()
	for i := range players {
		if errs[i] != nil {
			t.Fatalf("player %d: %v", i, errs[i])
		}
		if infos[i] != infos[0] {
			t.Fatalf("player %d got an Info of its own", i)
		}
		sameTags(t, got[i], want)
	}
	if s.builds != 1 {
		t.Fatalf("Info built %d times for %d cold players", s.builds, players)
	}
	// As many reads as one player alone makes.
	alone := New(Config{DataDir: dir, MaxFiles: 8})
	src1, err := alone.Open(f)
	if err != nil {
		t.Fatal(err)
	}
	one, err := readAllTags(src1, 0)
	src1.Close()
	if err != nil {
		t.Fatal(err)
	}
	sameTags(t, one, want)
	reads1, _ := alone.blocks.stats()
	reads, shared := s.blocks.stats()
	fi, _ := os.Stat(path)
	if reads != reads1 || reads1 < fi.Size()/(64<<10) {
		t.Fatalf("%d players read %d ranges (%d shared), one alone %d, in a file of %d bytes", players, reads, shared, reads1, fi.Size())
	}

	// A seek lands on a keyframe and reads from there.
	src, err := s.Open(f)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	from3, err := readAllTags(src, 3500)
	if err != nil {
		t.Fatal(err)
	}
	if len(from3) == 0 || from3[0].Timestamp != 3000 {
		t.Fatalf("seek to 3500: first tag at %v", from3)
	}
	for i, w := range want {
		if w.Offset == from3[0].Offset {
			sameTags(t, from3, want[i:])
			break
		}
	}
}

// A file rewritten (size or modification time changed) is indexed again
// and read from its new bytes; one being built concurrently by many is
// built once.
func TestIndexRebuiltWhenFileChanges(t *testing.T) {
	dir := t.TempDir()
	s := New(Config{DataDir: dir, MaxFiles: 8})
	path := filepath.Join(dir, "live", "streams", "_definst_", "a.flv")
	writeBigFLV(t, path, 2, 1000)
	f, err := s.Find("live", "_definst_", "a")
	if err != nil {
		t.Fatal(err)
	}
	var built atomic.Int32
	slowBuild := func(fl *os.File) (*Info, error) {
		built.Add(1)
		time.Sleep(20 * time.Millisecond)
		return buildInfo(fl)
	}
	open := func() *Info {
		fl, err := os.Open(f.Real)
		if err != nil {
			t.Fatal(err)
		}
		defer fl.Close()
		info, err := s.infoWith(f.Real, fl, slowBuild)
		if err != nil {
			t.Fatal(err)
		}
		return info
	}
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() { open() })
	}
	wg.Wait()
	first := open()
	if built.Load() != 1 {
		t.Fatalf("built %d times", built.Load())
	}

	// Same size, another modification time: rebuilt.
	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(path, later, later); err != nil {
		t.Fatal(err)
	}
	if second := open(); second == first || built.Load() != 2 {
		t.Fatalf("after touching the file: rebuilt %d times, same Info %v", built.Load(), second == first)
	}
	// Rewritten with more keyframes: rebuilt, and a player reads the new
	// tags.
	writeBigFLV(t, path, 5, 1000)
	src, err := s.Open(f)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if src.Info().keyframes() != 5 {
		t.Fatalf("rewritten file: %d keyframes", src.Info().keyframes())
	}
	got, err := readAllTags(src, 0)
	if err != nil {
		t.Fatal(err)
	}
	sameTags(t, got, referenceTags(t, path))

	// The bytes of the kept entries are those of the entries in the map:
	// replaced versions left the bound.
	s.mu.Lock()
	var sum int64
	for _, e := range s.files {
		sum += e.cost
	}
	n, b := len(s.files), s.bytes
	s.mu.Unlock()
	if n != 1 || b != sum || b <= 0 {
		t.Fatalf("%d entries costing %d, bound counts %d", n, sum, b)
	}
}

// The Store keeps at most MaxFiles Infos, the least recently used out.
func TestIndexCacheBound(t *testing.T) {
	dir := t.TempDir()
	s := New(Config{DataDir: dir, MaxFiles: 3})
	open := func(name string) {
		t.Helper()
		f, err := s.Find("live", "_definst_", name)
		if err != nil {
			t.Fatal(err)
		}
		src, err := s.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		src.Close()
	}
	for _, n := range []string{"a", "b", "c", "d", "e"} {
		writeFLV(t, filepath.Join(dir, "live", "streams", "_definst_", n+".flv"), 2)
	}
	open("a")
	open("b")
	open("c")
	open("a") // used: b is now the oldest
	open("d")
	open("e")
	s.mu.Lock()
	var kept []string
	var sum int64
	for k, e := range s.files {
		kept = append(kept, filepath.Base(k))
		sum += e.cost
	}
	bytesCounted := s.bytes
	s.mu.Unlock()
	if len(kept) != 3 || bytesCounted != sum {
		t.Fatalf("kept %v (cost %d, counted %d), want 3 entries", kept, sum, bytesCounted)
	}
	for _, k := range kept {
		if k == "b.flv" || k == "c.flv" {
			t.Fatalf("kept %v: b and c were the least recently used", kept)
		}
	}
	if s.builds != 5 {
		t.Fatalf("%d builds for 5 files opened 6 times", s.builds)
	}
}

// The block cache keeps no more than its bound in bytes, nor blocks idle
// for longer than its idle time; a block in use stays valid after it is
// dropped.
func TestBlockCacheBound(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789abcdef"), 10*blockSize/16)
	ver := &Info{size: int64(len(data))}
	r := bytes.NewReader(data)
	c := newBlockCache(3*blockSize, time.Hour)
	b0, err := c.get(ver, r, 0)
	if err != nil || len(b0) != blockSize {
		t.Fatalf("block 0: %d bytes, %v", len(b0), err)
	}
	for n := range int64(10) {
		if _, err := c.get(ver, r, n); err != nil {
			t.Fatal(err)
		}
	}
	c.mu.Lock()
	kept, used := len(c.m), c.bytes
	c.mu.Unlock()
	if kept != 3 || used != 3*blockSize {
		t.Fatalf("%d blocks, %d bytes kept; want 3", kept, used)
	}
	if !bytes.Equal(b0, data[:blockSize]) {
		t.Fatal("a dropped block changed")
	}
	reads, _ := c.stats()
	c.get(ver, r, 9) // kept: not read again
	c.get(ver, r, 0) // dropped: read again
	if r2, _ := c.stats(); r2 != reads+1 {
		t.Fatalf("%d reads after a kept and a dropped block, want %d", r2, reads+1)
	}

	// Idle blocks go at the next get.
	c = newBlockCache(1<<30, time.Millisecond)
	c.get(ver, r, 0)
	c.get(ver, r, 1)
	time.Sleep(5 * time.Millisecond)
	c.get(ver, r, 2)
	c.mu.Lock()
	kept = len(c.m)
	c.mu.Unlock()
	if kept != 1 {
		t.Fatalf("%d blocks kept, want the one just read", kept)
	}
}

// A player of a file that grows past the version it opened reads on past
// it (directly): io.ErrUnexpectedEOF inside a partial tag, then the tag
// once it is whole.
func TestFLVSourceFollowsGrowingFile(t *testing.T) {
	dir := t.TempDir()
	s := New(Config{DataDir: dir, MaxFiles: 8})
	path := filepath.Join(dir, "live", "streams", "_definst_", "g.flv")
	writeBigFLV(t, path, 2, 20<<10)
	want := referenceTags(t, path)
	f, err := s.Find("live", "_definst_", "g")
	if err != nil {
		t.Fatal(err)
	}
	src, err := s.Open(f)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	got, err := readAllTags(src, 0)
	if err != nil {
		t.Fatal(err)
	}
	sameTags(t, got, want)

	// Append a tag of 30000 bytes in two writes.
	tag := make([]byte, 0, 30000+15)
	data := bytes.Repeat([]byte{0x27, 1, 0, 0, 0, 9}, 5000)
	tag = append(tag, byte(flv.TagVideo), 0, 0x75, 0x30, 0, 0x27, 0x10, 0, 0, 0, 0)
	tag = append(tag, data...)
	tag = append(tag, 0, 0, 0x75, 0x3b)
	fw, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer fw.Close()
	if _, err := fw.Write(tag[:20000]); err != nil {
		t.Fatal(err)
	}
	if _, err := src.Next(); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("partial tag: %v, want io.ErrUnexpectedEOF", err)
	}
	if _, err := fw.Write(tag[20000:]); err != nil {
		t.Fatal(err)
	}
	tg, err := src.Next()
	if err != nil || tg.Timestamp != 10000 || !bytes.Equal(tg.Data, data) {
		t.Fatalf("appended tag: %+v, %v", tg, err)
	}
	if _, err := src.Next(); !errors.Is(err, io.EOF) {
		t.Fatalf("after the appended tag: %v, want io.EOF", err)
	}
}
