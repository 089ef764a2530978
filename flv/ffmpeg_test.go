package flv

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rtmphub/rtmphub/rtmp/amf"
)

// The fixtures are made by ffmpeg at test time, once per test binary, in a
// directory TestMain removes.
var fixtures struct {
	sync.Mutex
	dir   string
	files map[string]string
}

// Environment of the child process of TestKillDuringRecording.
const (
	envRecordSource = "FLV_TEST_RECORD_SOURCE"
	envRecordOutput = "FLV_TEST_RECORD_OUTPUT"
)

func TestMain(m *testing.M) {
	if src := os.Getenv(envRecordSource); src != "" {
		os.Exit(recordChild(src, os.Getenv(envRecordOutput)))
	}
	code := m.Run()
	if fixtures.dir != "" {
		os.RemoveAll(fixtures.dir)
	}
	os.Exit(code)
}

// needFFmpeg skips the test when ffmpeg or ffprobe is missing, unless CI is
// set, when it fails.
func needFFmpeg(t testing.TB) {
	t.Helper()
	for _, tool := range []string{"ffmpeg", "ffprobe"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s is required in CI: %v", tool, err)
			}
			t.Skipf("%s not installed", tool)
		}
	}
}

// fixture returns the path of a file ffmpeg makes with args (the output
// path is appended), making it on first use.
func fixture(t testing.TB, name string, args ...string) string {
	t.Helper()
	needFFmpeg(t)
	fixtures.Lock()
	defer fixtures.Unlock()
	if p, ok := fixtures.files[name]; ok {
		return p
	}
	if fixtures.dir == "" {
		dir, err := os.MkdirTemp("", "flv-fixtures-")
		if err != nil {
			t.Fatal(err)
		}
		fixtures.dir, fixtures.files = dir, map[string]string{}
	}
	p := filepath.Join(fixtures.dir, name)
	run(t, "ffmpeg", append(append([]string{"-hide_banner", "-loglevel", "error", "-y"}, args...), p)...)
	fixtures.files[name] = p
	return p
}

// source is the fixture the brief describes: 5 s of 160x120 H.264 at 25
// fps with a keyframe every second, and AAC.
func source(t testing.TB) string {
	return fixture(t, "x.flv", "-f", "lavfi", "-i", "testsrc=size=160x120:rate=25", "-f", "lavfi", "-i", "sine",
		"-t", "5", "-c:v", "libx264", "-g", "25", "-c:a", "aac", "-f", "flv")
}

func run(t testing.TB, name string, args ...string) []byte {
	t.Helper()
	var stderr bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.Bytes())
	}
	return out
}

type probe struct {
	Format struct {
		Duration  string `json:"duration"`
		NbStreams int    `json:"nb_streams"`
	} `json:"format"`
	Packets []struct {
		CodecType string `json:"codec_type"`
		DTS       int64  `json:"dts"`
		Pos       string `json:"pos"`
		Flags     string `json:"flags"`
	} `json:"packets"`
}

func ffprobe(t testing.TB, path string, packets bool) (p probe, duration float64) {
	t.Helper()
	args := []string{"-v", "error", "-of", "json", "-show_format"}
	if packets {
		args = append(args, "-show_entries", "packet=codec_type,dts,pos,flags")
	}
	out := run(t, "ffprobe", append(args, path)...)
	if err := json.Unmarshal(out, &p); err != nil {
		t.Fatal(err)
	}
	if p.Format.Duration == "" {
		return p, math.NaN() // N/A
	}
	d, err := strconv.ParseFloat(p.Format.Duration, 64)
	if err != nil {
		t.Fatalf("ffprobe duration %q: %v", p.Format.Duration, err)
	}
	return p, d
}

// framemd5 decodes the streams map selects ("0:v", "0:a") and returns
// ffmpeg's framemd5 listing.
func framemd5(t testing.TB, path, streams string) string {
	t.Helper()
	return string(run(t, "ffmpeg", "-v", "error", "-i", path, "-map", streams, "-f", "framemd5", "-"))
}

func TestFFmpegRead(t *testing.T) {
	path := source(t)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	hdr, tags, err := readAll(b, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !hdr.HasAudio || !hdr.HasVideo {
		t.Errorf("header %+v", hdr)
	}
	// Every packet ffprobe finds is a tag at the same position with the
	// same timestamp; the other tags are onMetaData and sequence headers.
	p, _ := ffprobe(t, path, true)
	byPos := map[int64]Tag{}
	for _, tg := range tags {
		byPos[tg.Offset] = tg
	}
	var keys []int64
	for _, pk := range p.Packets {
		pos, _ := strconv.ParseInt(pk.Pos, 10, 64)
		tg, ok := byPos[pos]
		if !ok {
			t.Fatalf("no tag at %d for %+v", pos, pk)
		}
		if want := map[string]any{"video": TagVideo, "audio": TagAudio}[pk.CodecType]; tg.Type != want || int64(tg.Timestamp) != pk.DTS {
			t.Errorf("tag at %d: %v %d, ffprobe %+v", pos, tg.Type, tg.Timestamp, pk)
		}
		if pk.CodecType == "video" && strings.HasPrefix(pk.Flags, "K") {
			keys = append(keys, pos)
		}
		delete(byPos, pos)
	}
	for pos, tg := range byPos {
		if tg.Type == TagScript {
			continue
		}
		if !isSequenceHeader(tg) {
			t.Errorf("tag at %d (%v, % x) is no ffprobe packet", pos, tg.Type, tg.Data[:min(len(tg.Data), 4)])
		}
	}
	if len(tags) < 300 {
		t.Errorf("only %d tags", len(tags))
	}

	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	idx, err := BuildIndex(f)
	if err != nil {
		t.Fatal(err)
	}
	var times []float64
	var pos []int64
	for _, k := range idx.Keyframes {
		times = append(times, k.Time)
		pos = append(pos, k.Pos)
	}
	if !reflect.DeepEqual(times, []float64{0, 1, 2, 3, 4}) || !reflect.DeepEqual(pos, keys) {
		t.Errorf("keyframes %v at %v, ffprobe's at %v", times, pos, keys)
	}
	if math.Abs(idx.Duration.Seconds()-5) > 0.1 {
		t.Errorf("index duration %v", idx.Duration)
	}
	m, err := ReadMetadata(f)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(m.Duration-5) > 0.1 || m.Width != 160 || m.Height != 120 || m.FrameRate != 25 ||
		m.VideoCodec != "avc1" || m.AudioCodec != "mp4a" {
		t.Errorf("metadata %+v", m)
	}
}

// isSequenceHeader reports an AVC or AAC sequence header, or an AVC end of
// sequence: tags that are no packets for ffmpeg.
func isSequenceHeader(tg Tag) bool {
	return len(tg.Data) >= 2 &&
		(tg.Type == TagVideo && tg.Data[0]&0x0f == 7 && (tg.Data[1] == 0 || tg.Data[1] == 2) ||
			tg.Type == TagAudio && tg.Data[0]>>4 == 10 && tg.Data[1] == 0)
}

// ffmpeg's own keyframes index (-flvflags add_keyframe_index) passes the
// checks and gives what a scan gives.
func TestFFmpegKeyframeIndex(t *testing.T) {
	path := fixture(t, "xi.flv", "-i", source(t), "-c", "copy", "-flvflags", "add_keyframe_index", "-f", "flv")
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := newReader(f, scanBufferSize)
	if err != nil {
		t.Fatal(err)
	}
	m, err := r.metadata()
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Keyframes) != 5 {
		t.Fatalf("metadata keyframes %v", m.Keyframes)
	}
	idx, ok := r.metadataIndex(m)
	if !ok {
		t.Fatal("ffmpeg's index rejected")
	}
	s := r.scan()
	if scanned := s.index(r); !reflect.DeepEqual(idx.Keyframes, scanned.Keyframes) {
		t.Errorf("metadata %v, scan %v", idx.Keyframes, scanned.Keyframes)
	}
}

// copyTags records the audio and video tags of the file at src into a new
// file at dst, with src's metadata, and returns how many it wrote.
func copyTags(t testing.TB, src, dst string) int {
	t.Helper()
	f, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, err := ReadMetadata(f)
	if err != nil {
		t.Fatal(err)
	}
	r, err := NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	w, err := Create(dst, true, true, m.Raw.(amf.ECMAArray))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for {
		tg, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if tg.Type == TagScript {
			continue
		}
		if err := w.WriteTag(tg.Type, tg.Timestamp, tg.Data); err != nil {
			t.Fatal(err)
		}
		n++
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestFFmpegWriter(t *testing.T) {
	src := source(t)
	dst := filepath.Join(t.TempDir(), "out.flv")
	copyTags(t, src, dst)
	ps, ds := ffprobe(t, src, false)
	po, do := ffprobe(t, dst, false)
	if math.Abs(do-ds) > 0.040 {
		t.Errorf("duration %v, source %v: more than a frame apart", do, ds)
	}
	if po.Format.NbStreams != ps.Format.NbStreams || po.Format.NbStreams != 2 {
		t.Errorf("%d streams, source %d", po.Format.NbStreams, ps.Format.NbStreams)
	}
	for _, streams := range []string{"0:v", "0:a"} {
		if got, want := framemd5(t, dst, streams), framemd5(t, src, streams); got != want {
			t.Errorf("%s framemd5 differs:\n%s\nsource:\n%s", streams, got, want)
		}
	}
	idx := indexOf(t, dst)
	if len(idx.Keyframes) != 5 {
		t.Errorf("index %v", idx.Keyframes)
	}
}

// Record 2 s, then Append 2 s more: timestamps continue, and ffprobe finds
// 4 s.
func TestFFmpegAppend(t *testing.T) {
	src := source(t)
	f, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	var first2s []*Tag
	for {
		tg, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if tg.Type != TagScript && tg.Timestamp < 2000 {
			first2s = append(first2s, tg)
		}
	}
	dst := filepath.Join(t.TempDir(), "rec.flv")
	record := func(w *Writer) {
		for _, tg := range first2s {
			if err := w.WriteTag(tg.Type, tg.Timestamp, tg.Data); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
	w, err := Create(dst, true, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	record(w)
	w, err = Append(dst)
	if err != nil {
		t.Fatal(err)
	}
	// x264's B-frames: the last frame is presented after the last
	// decode time, and the appended part starts one frame (40 ms) after
	// that.
	var maxPTS int64
	for _, tg := range first2s {
		if pts, ok := presentation(*tg); ok {
			maxPTS = max(maxPTS, pts)
		}
	}
	base := w.Base()
	if maxPTS < 1960 || int64(base) != maxPTS+40 {
		t.Errorf("Base %d, last presentation %d", base, maxPTS)
	}
	record(w)

	_, tags := readFile(t, dst)
	// Per stream, timestamps never go back and jump by at most one
	// frame (40 ms of video, a 23 ms AAC frame, with slack), at the seam
	// by at most the last frame's composition time more.
	last := map[any]uint32{}
	for _, tg := range tags[1:] {
		limit := uint32(80)
		if tg.Timestamp == base {
			limit += uint32(maxPTS) - 1960
		}
		if prev, ok := last[tg.Type]; ok && (tg.Timestamp < prev || tg.Timestamp-prev > limit) {
			t.Errorf("%v timestamp %d after %d", tg.Type, tg.Timestamp, prev)
		}
		last[tg.Type] = tg.Timestamp
	}
	if f := joinFault(tags, len(first2s)+1, 40); f != "" {
		t.Error(f)
	}
	_, d := ffprobe(t, dst, false)
	if math.Abs(d-4) > 0.1 {
		t.Errorf("ffprobe duration %v, want about 4", d)
	}
	run(t, "ffmpeg", "-v", "error", "-xerror", "-i", dst, "-f", "null", "-")
	var times []float64
	for _, k := range indexOf(t, dst).Keyframes {
		times = append(times, math.Round(k.Time*10)/10)
	}
	b := math.Round(float64(base)/100) / 10
	if !reflect.DeepEqual(times, []float64{0, 1, b, b + 1}) {
		t.Errorf("keyframes at %v", times)
	}
}

// A recording of x264 video cut by a kill in one of 20 tags of its second
// second, then appended to (the same 2 s again), joins with increasing
// decode times and with presentation times after the file's, by our
// reading and by ffmpeg's: decoding it warns of no "non monotonically
// increasing dts". Before the appended part started after the
// presentation end, on the video's frame grid, 2 of these 20 joins (8 of
// all 68) with B-frames did, and 17 of 68 without B-frames.
func TestFFmpegAppendAfterKill(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	for _, c := range []struct {
		name string
		src  func(testing.TB) string
	}{
		{"B-frames", source},
		{"no B-frames", func(t testing.TB) string {
			return fixture(t, "nob.flv", "-f", "lavfi", "-i", "testsrc=size=160x120:rate=25", "-f", "lavfi", "-i", "sine",
				"-t", "5", "-c:v", "libx264", "-bf", "0", "-g", "25", "-c:a", "aac", "-f", "flv")
		}},
	} {
		t.Run(c.name, func(t *testing.T) { appendAfterKill(t, c.src(t), 20) })
	}
}

func appendAfterKill(t *testing.T, src string, joins int) {
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	_, srcTags, err := readAll(b, 0)
	if err != nil {
		t.Fatal(err)
	}
	var first2s []Tag
	for _, tg := range srcTags {
		if tg.Type != TagScript && tg.Timestamp < 2000 {
			first2s = append(first2s, tg)
		}
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "rec.flv")
	w, err := Create(path, true, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	writeAll(t, w, first2s)
	w.f.Close() // killed: no Close
	if b, err = os.ReadFile(path); err != nil {
		t.Fatal(err)
	}
	_, recorded, err := readAll(b, 0)
	if err != nil {
		t.Fatal(err)
	}
	var candidates []int
	for i, tg := range recorded {
		if tg.Timestamp >= 1000 && tg.Type != TagScript {
			candidates = append(candidates, i)
		}
	}
	faults, warned := 0, 0
	for j := range joins {
		i := candidates[j*len(candidates)/joins]
		tg := recorded[i]
		cut := filepath.Join(dir, fmt.Sprintf("cut%d.flv", i))
		if err := os.WriteFile(cut, b[:tg.Offset+8+int64(len(tg.Data))/2], 0o644); err != nil {
			t.Fatal(err)
		}
		w, err := Append(cut)
		if err != nil {
			t.Fatal(err)
		}
		writeAll(t, w, first2s)
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		_, got := readFile(t, cut)
		if f := joinFault(got, i, 40); f != "" {
			faults++
			t.Errorf("cut in tag %d (%v at %d): %s", i, tg.Type, tg.Timestamp, f)
		}
		out, err := exec.Command("ffmpeg", "-hide_banner", "-nostats", "-v", "warning", "-threads", "1", "-i", cut, "-f", "null", "-").CombinedOutput()
		if err != nil {
			t.Fatalf("ffmpeg: %v\n%s", err, out)
		}
		if bytes.Contains(out, []byte("non monotonically increasing dts")) {
			warned++
			t.Errorf("cut in tag %d (%v at %d): ffmpeg: %s", i, tg.Type, tg.Timestamp, out)
		}
	}
	t.Logf("%d of %d joins faulty, %d with ffmpeg warnings", faults, joins, warned)
}

// recordChild is the process TestKillDuringRecording kills: it records the
// tags of src again and again into dst, paced so that the kill lands while
// it writes, and then waits to be killed.
func recordChild(src, dst string) int {
	fail := func(err error) int {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	b, err := os.ReadFile(src)
	if err != nil {
		return fail(err)
	}
	_, tags, err := readAll(b, 0)
	if err != nil {
		return fail(err)
	}
	w, err := Create(dst, true, true, nil)
	if err != nil {
		return fail(err)
	}
	for loop := range 20 {
		for _, tg := range tags {
			if tg.Type == TagScript || loop > 0 && isSequenceHeader(tg) {
				continue
			}
			if err := w.WriteTag(tg.Type, uint32(loop)*5100+tg.Timestamp, tg.Data); err != nil {
				return fail(err)
			}
			time.Sleep(100 * time.Microsecond)
		}
	}
	time.Sleep(time.Minute)
	return 0
}

// A recording killed with SIGKILL at random moments reads up to its last
// complete tag, indexes, decodes with ffmpeg, and can be appended to.
func TestKillDuringRecording(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	src := source(t)
	dir := t.TempDir()
	truncated := 0
	for i := range 5 {
		dst := filepath.Join(dir, fmt.Sprintf("killed%d.flv", i))
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), envRecordSource+"="+src, envRecordOutput+"="+dst)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Wait for the recording to be under way, then a random moment.
		deadline := time.Now().Add(10 * time.Second)
		for {
			if st, err := os.Stat(dst); err == nil && st.Size() > 150<<10 {
				break
			}
			if time.Now().After(deadline) {
				cmd.Process.Kill()
				cmd.Wait()
				t.Fatalf("the child did not record: %s", stderr.Bytes())
			}
			time.Sleep(time.Millisecond)
		}
		time.Sleep(time.Duration(rand.IntN(300)) * time.Millisecond)
		if err := cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		cmd.Wait()
		if stderr.Len() > 0 {
			t.Fatalf("child: %s", stderr.Bytes())
		}

		b, err := os.ReadFile(dst)
		if err != nil {
			t.Fatal(err)
		}
		if checkKilled(t, dst, b) {
			truncated++
		}
		// A kill rarely lands inside the single write of a small tag, so
		// cut the file again at a random byte of its last tag, as such a
		// kill would.
		_, tags, _ := readAll(b, 0)
		last := tags[len(tags)-1]
		cut := filepath.Join(dir, fmt.Sprintf("cut%d.flv", i))
		if err := os.WriteFile(cut, b[:last.Offset+1+rand.Int64N(int64(len(last.Data)+14))], 0o644); err != nil {
			t.Fatal(err)
		}
		b, _ = os.ReadFile(cut)
		if !checkKilled(t, cut, b) {
			t.Errorf("kill %d: cutting the last tag did not cut it", i)
		}
	}
	t.Logf("%d of 5 kills cut a tag", truncated)
}

// checkKilled checks a recording that was cut short, whose bytes are b:
// it reads up to its last complete tag, indexes, decodes with ffmpeg, and
// can be appended to. It reports whether the file ended inside a tag.
func checkKilled(t *testing.T, path string, b []byte) (cut bool) {
	t.Helper()
	_, tags, err := readAll(b, 0)
	switch {
	case err == nil:
	case errors.Is(err, io.ErrUnexpectedEOF):
		cut = true
		// Only the tail: what follows the last tag read is less than the
		// tag its header announces.
		last := tags[len(tags)-1]
		tail := b[last.Offset+int64(15+len(last.Data)):]
		if len(tail) >= 11 {
			if size := int(tail[1])<<16 | int(tail[2])<<8 | int(tail[3]); 15+size <= len(tail) {
				t.Errorf("%s: stopped before a complete tag of %d bytes (tail %d)", path, size, len(tail))
			}
		}
	default:
		t.Fatalf("%s: %v after %d tags", path, err, len(tags))
	}
	if len(tags) < 100 {
		t.Errorf("%s: only %d tags", path, len(tags))
	}
	idx := indexOf(t, path)
	if len(idx.Keyframes) < 5 {
		t.Errorf("%s: index %v", path, idx.Keyframes)
	}
	// ffmpeg decodes it (to its last complete frame). The placeholder
	// onMetaData has no duration, so ffprobe finds it from the last tag,
	// unless that is cut (then it reports none).
	run(t, "ffmpeg", "-v", "error", "-i", path, "-f", "null", "-")
	if _, d := ffprobe(t, path, false); !cut && !(d >= 4) || cut && !math.IsNaN(d) && d < 4 {
		t.Errorf("%s: ffprobe duration %v", path, d)
	}
	// And the recording can go on: Append repairs the file, Close
	// writes the metadata.
	w, err := Append(path)
	if err != nil {
		t.Fatalf("%s: Append: %v", path, err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	readFile(t, path)
	if _, d := ffprobe(t, path, false); !(d >= 4) {
		t.Errorf("%s: ffprobe duration %v after Append and Close", path, d)
	}
	t.Logf("%s: %d tags, %d bytes, cut %v", filepath.Base(path), len(tags), len(b), cut)
	return cut
}
