package e2e

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rtmphub/rtmphub/session/sessiontest"
)

// Media helpers: an ffmpeg publisher that also keeps a local copy of exactly
// what it sent, ffmpeg/rtmpdump players that decode to framemd5, and the
// analysis that maps every decoded player frame back to the publisher's frame
// index by its MD5. H.264 decoding is deterministic, so a frame decoded by a
// player hashes the same as the same frame decoded from the publisher's copy;
// no timing or timestamp assumption is needed to know which frames arrived.

// ---------------------------------------------------------------------------
// framemd5

// frameLog is a parsed framemd5 file.
type frameLog struct {
	Video        []string // hash of every decoded video frame, in output order
	AudioFrames  int
	AudioSeconds float64
}

func parseFrameMD5(path string) (*frameLog, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	kinds := map[string]string{}  // stream index → video|audio
	rates := map[string]float64{} // stream index → time base denominator / numerator
	var audioTicks = map[string]int64{}
	fl := &frameLog{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			// "#media_type 0: video", "#tb 1: 1/44100", "#codec_id 0: rawvideo"
			key, rest, ok := strings.Cut(strings.TrimPrefix(line, "#"), " ")
			if !ok {
				continue
			}
			idx, val, ok := strings.Cut(rest, ":")
			if !ok {
				continue
			}
			idx, val = strings.TrimSpace(idx), strings.TrimSpace(val)
			switch key {
			case "media_type":
				kinds[idx] = val
			case "codec_id":
				if _, set := kinds[idx]; !set {
					switch {
					case val == "rawvideo":
						kinds[idx] = "video"
					case strings.HasPrefix(val, "pcm_"):
						kinds[idx] = "audio"
					}
				}
			case "tb":
				num, den, ok := strings.Cut(val, "/")
				n, err1 := strconv.ParseFloat(num, 64)
				d, err2 := strconv.ParseFloat(den, 64)
				if ok && err1 == nil && err2 == nil && n > 0 {
					rates[idx] = d / n
				}
			}
			continue
		}
		fields := strings.Split(line, ",")
		if len(fields) < 6 {
			continue
		}
		idx := strings.TrimSpace(fields[0])
		switch kinds[idx] {
		case "video":
			fl.Video = append(fl.Video, strings.TrimSpace(fields[5]))
		case "audio":
			fl.AudioFrames++
			d, _ := strconv.ParseInt(strings.TrimSpace(fields[3]), 10, 64)
			audioTicks[idx] += d
		}
	}
	for idx, ticks := range audioTicks {
		if r := rates[idx]; r > 0 {
			fl.AudioSeconds += float64(ticks) / r
		}
	}
	return fl, sc.Err()
}

// decodeToMD5 decodes a media file with ffmpeg into a framemd5 log.
func decodeToMD5(t testing.TB, in string) *frameLog {
	t.Helper()
	out := in + ".md5"
	run(t, 2*time.Minute, "ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error",
		"-i", in, "-fps_mode", "passthrough", "-f", "framemd5", "-y", out)
	fl, err := parseFrameMD5(out)
	if err != nil {
		t.Fatalf("parse %s: %v", out, err)
	}
	return fl
}

// ---------------------------------------------------------------------------
// Reference: what the publisher sent

type reference struct {
	Path      string
	Frames    int            // video frames sent
	index     map[string]int // video frame hash → frame index (first occurrence)
	Dups      int            // frames whose hash repeats an earlier frame
	Keyframes map[int]bool   // indices of video keyframes
	AudioSecs float64
	FPS       float64
}

var refCache sync.Map // path → *reference

// loadReference decodes the FLV the publisher sent and indexes its frames.
func loadReference(t testing.TB, flv string, fps float64) *reference {
	t.Helper()
	if r, ok := refCache.Load(flv); ok {
		return r.(*reference)
	}
	fl := decodeToMD5(t, flv)
	r := &reference{Path: flv, Frames: len(fl.Video), index: map[string]int{}, Keyframes: map[int]bool{},
		AudioSecs: fl.AudioSeconds, FPS: fps}
	for i, h := range fl.Video {
		if _, dup := r.index[h]; dup {
			r.Dups++
			continue
		}
		r.index[h] = i
	}
	// Packet flags in decode order; these encodes have no B-frames, so decode
	// order is display order.
	out := run(t, time.Minute, "ffprobe", "-v", "error", "-select_streams", "v:0",
		"-show_entries", "packet=flags", "-of", "csv=p=0", flv)
	i := 0
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if l = strings.TrimSpace(l); l == "" {
			continue
		}
		if strings.HasPrefix(l, "K") {
			r.Keyframes[i] = true
		}
		i++
	}
	if r.Frames == 0 || i != r.Frames {
		t.Fatalf("reference %s: %d decoded video frames, %d video packets", flv, r.Frames, i)
	}
	if r.Dups > r.Frames/100 {
		t.Fatalf("reference %s: %d of %d frames have duplicate hashes; the source must change every frame", flv, r.Dups, r.Frames)
	}
	refCache.Store(flv, r)
	return r
}

// playResult says which of the publisher's frames a player decoded.
type playResult struct {
	Decoded   int     // video frames decoded by the player
	Matched   int     // of which identical to a frame the publisher sent
	Unmatched int     // decoded frames that match nothing: corruption
	First     int     // publisher index of the first matched frame, -1 if none
	Last      int     // publisher index of the last matched frame, -1 if none
	InWindow  int     // distinct publisher frames ≥ window start that were decoded
	Window    int     // publisher frames ≥ window start
	AudioSecs float64 // seconds of audio decoded
}

func (p playResult) String() string {
	return fmt.Sprintf("decoded %d video frames (matched %d, corrupt %d), first #%d last #%d, window %d/%d (%.1f%%), audio %.2fs",
		p.Decoded, p.Matched, p.Unmatched, p.First, p.Last, p.InWindow, p.Window, p.ratio()*100, p.AudioSecs)
}

func (p playResult) ratio() float64 {
	if p.Window == 0 {
		return 0
	}
	return float64(p.InWindow) / float64(p.Window)
}

// analyze maps a player's decoded frames onto the reference. The window is
// [windowStart, Frames): frames the publisher sent after the player started.
func (r *reference) analyze(fl *frameLog, windowStart int) playResult {
	res := playResult{Decoded: len(fl.Video), First: -1, Last: -1, AudioSecs: fl.AudioSeconds}
	seen := map[int]bool{}
	for _, h := range fl.Video {
		i, ok := r.index[h]
		if !ok {
			res.Unmatched++
			continue
		}
		res.Matched++
		if res.First < 0 {
			res.First = i
		}
		res.Last = i
		if i >= windowStart && !seen[i] {
			seen[i] = true
			res.InWindow++
		}
	}
	res.Window = max(0, r.Frames-windowStart)
	return res
}

// checkPlayer asserts the 90% rule and audio presence for one player.
func checkPlayer(t testing.TB, who string, ref *reference, fl *frameLog, windowStart int) playResult {
	t.Helper()
	res := ref.analyze(fl, windowStart)
	t.Logf("%s: %v", who, res)
	if res.Window < 25 {
		t.Fatalf("%s: window of %d frames is too short to judge (publisher ended too early?)", who, res.Window)
	}
	if res.ratio() < 0.90 {
		t.Errorf("%s: decoded %d of the %d video frames sent after it started (%.1f%% < 90%%): %v",
			who, res.InWindow, res.Window, res.ratio()*100, res)
	}
	if res.Matched > 0 && res.Unmatched*100 > res.Matched {
		t.Errorf("%s: %d decoded frames match nothing the publisher sent (corrupted or reordered media)", who, res.Unmatched)
	}
	windowSecs := float64(res.Window) / ref.FPS
	if res.AudioSecs < 0.9*windowSecs {
		t.Errorf("%s: decoded %.2fs of audio, want ≥ 90%% of the %.2fs window", who, res.AudioSecs, windowSecs)
	}
	return res
}

// ---------------------------------------------------------------------------
// Clips: pre-encoded sources for publishers that stream-copy (no encoding
// CPU during the test).

type clipSpec struct {
	Name    string
	Size    string // WxH
	FPS     int
	GOP     int
	Seconds int
	Bitrate string // e.g. "4M"; empty = encoder default
	Noise   bool   // add temporal noise so the encoder really needs the bitrate
}

type clipResult struct {
	once sync.Once
	path string
	err  error
	out  string
}

var clips sync.Map // name → *clipResult

// clip encodes spec once per test binary and returns the FLV path.
func clip(t testing.TB, spec clipSpec) string {
	t.Helper()
	needFFmpeg(t)
	v, _ := clips.LoadOrStore(spec.Name, &clipResult{})
	c := v.(*clipResult)
	c.once.Do(func() {
		c.path = filepath.Join(sharedDir, "clip-"+spec.Name+".flv")
		src := fmt.Sprintf("testsrc=size=%s:rate=%d", spec.Size, spec.FPS)
		if spec.Noise {
			src += ",noise=alls=25:allf=t"
		}
		args := []string{"-nostdin", "-hide_banner", "-loglevel", "error",
			"-f", "lavfi", "-i", src,
			"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100",
			"-t", strconv.Itoa(spec.Seconds), "-map", "0:v", "-map", "1:a"}
		args = append(args, x264Args(spec.GOP, spec.Bitrate)...)
		args = append(args, "-c:a", "aac", "-b:a", "64k", "-f", "flv", "-y", c.path)
		p := startProc(t, 3*time.Minute, "ffmpeg", args...)
		if !p.wait(4 * time.Minute) {
			c.err = fmt.Errorf("encoding clip %s timed out", spec.Name)
			return
		}
		c.err, c.out = p.exitErr(), p.Stderr.String()
	})
	if c.err != nil {
		t.Fatalf("encode clip %s: %v\n%s", spec.Name, c.err, c.out)
	}
	return c.path
}

func x264Args(gop int, bitrate string) []string {
	a := []string{"-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency",
		"-g", strconv.Itoa(gop), "-keyint_min", strconv.Itoa(gop), "-sc_threshold", "0",
		"-pix_fmt", "yuv420p"}
	if bitrate != "" {
		a = append(a, "-b:v", bitrate, "-maxrate", bitrate, "-bufsize", bitrate)
	}
	return a
}

// ---------------------------------------------------------------------------
// ffmpeg publisher

type pubOpts struct {
	// Live encoding (used when Clip is empty).
	Size    string // default 320x240
	FPS     int    // default 25
	GOP     int    // default 25
	Seconds int
	Bitrate string
	Source  string // lavfi video source (default testsrc)
	// Clip, when set, is streamed with -re -c copy instead.
	Clip string
}

type ffPublisher struct {
	*proc
	URL    string
	Ref    string // local copy of exactly what was published
	FPS    float64
	frames atomic.Int64 // video frames handed to the muxer so far (ffmpeg -progress)
	ended  atomic.Bool  // ffmpeg reported progress=end
}

// startPublisher starts ffmpeg publishing to url in real time (-re).
func startPublisher(t testing.TB, url string, o pubOpts) *ffPublisher {
	t.Helper()
	needFFmpeg(t)
	if o.Size == "" {
		o.Size = "320x240"
	}
	if o.FPS == 0 {
		o.FPS = 25
	}
	if o.GOP == 0 {
		o.GOP = 25
	}
	if o.Source == "" {
		o.Source = "testsrc"
	}
	p := &ffPublisher{URL: url, FPS: float64(o.FPS)}
	args := []string{"-nostdin", "-hide_banner", "-loglevel", "warning", "-re"}
	if o.Clip != "" {
		p.Ref = o.Clip
		args = append(args, "-i", o.Clip, "-map", "0", "-c", "copy",
			"-progress", "pipe:1", "-stats_period", "0.1", "-flush_packets", "1", "-f", "flv", url)
	} else {
		p.Ref = filepath.Join(t.TempDir(), "published.flv")
		args = append(args,
			"-f", "lavfi", "-i", fmt.Sprintf("%s=size=%s:rate=%d", o.Source, o.Size, o.FPS),
			"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100",
			"-map", "0:v", "-map", "1:a")
		args = append(args, x264Args(o.GOP, o.Bitrate)...)
		args = append(args, "-c:a", "aac", "-b:a", "64k", "-flags", "+global_header",
			"-t", strconv.Itoa(o.Seconds),
			"-progress", "pipe:1", "-stats_period", "0.1",
			"-f", "tee", "[f=flv:onfail=abort:flush_packets=1]"+url+"|[f=flv]"+p.Ref)
	}
	timeout := time.Duration(o.Seconds)*time.Second + time.Minute
	if o.Clip != "" {
		timeout = 3 * time.Minute
	}
	p.proc = command(t, timeout, "ffmpeg", args...)
	p.cmd.Stdout = tee(p.Stdout, &lineWriter{fn: func(l string) {
		if v, ok := strings.CutPrefix(l, "frame="); ok {
			if n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil {
				p.frames.Store(n)
			}
		}
		if l == "progress=end" {
			p.ended.Store(true)
		}
	}})
	p.startCmd()
	return p
}

// Frames is the number of video frames the publisher has sent so far (a
// slight underestimate: ffmpeg reports every 100ms).
func (p *ffPublisher) Frames() int { return int(p.frames.Load()) }

// waitFrames waits until the publisher has sent n video frames.
func (p *ffPublisher) waitFrames(t testing.TB, n int, timeout time.Duration) {
	t.Helper()
	if !sessiontest.Poll(timeout, func() bool { return p.Frames() >= n || p.exited() }) || p.Frames() < n {
		t.Fatalf("publisher %s: sent %d frames, want %d within %v (exited %v)\nstderr:\n%s",
			p.URL, p.Frames(), n, timeout, p.exited(), tailString(p.Stderr.String(), 2000))
	}
}

// finish waits for the publisher to end on its own and checks it succeeded.
func (p *ffPublisher) finish(t testing.TB, timeout time.Duration) {
	t.Helper()
	if !p.wait(timeout) {
		t.Errorf("publisher %s still running after %v; stopping it", p.URL, timeout)
		p.stop(5 * time.Second)
		return
	}
	if err := p.exitErr(); err != nil {
		t.Errorf("publisher %s failed after %v: %v\nstderr:\n%s", p.URL, p.took().Round(time.Millisecond), err,
			tailString(p.Stderr.String(), 2000))
	}
}

// ---------------------------------------------------------------------------
// Players

// player is an external player process. It notes the publisher's frame
// count at the moment the player reports, on stderr, that it has sent play:
// that is where its window starts, however long the process took to start.
type player struct {
	*proc
	Who       string
	launched  int          // publisher frames when the process was started
	joinFrame atomic.Int64 // publisher frames when the player started playing; -1 until then
}

// JoinFrame is the first frame of the player's window.
func (p *player) JoinFrame(t testing.TB) int {
	t.Helper()
	if j := p.joinFrame.Load(); j >= 0 {
		return int(j)
	}
	t.Logf("%s never reported playing on stderr; its window starts at its launch (frame %d)", p.Who, p.launched)
	return p.launched
}

func newPlayer(t testing.TB, who string, frames func() int, marker, name string, args ...string) *player {
	t.Helper()
	pl := &player{Who: who}
	pl.joinFrame.Store(-1)
	if frames == nil {
		frames = func() int { return 0 }
	}
	pl.launched = frames()
	pl.proc = command(t, 3*time.Minute, name, args...)
	pl.cmd.Stderr = tee(pl.Stderr, &lineWriter{fn: func(l string) {
		if strings.Contains(l, marker) {
			pl.joinFrame.CompareAndSwap(-1, int64(frames()))
		}
	}})
	pl.startCmd()
	return pl
}

// startFFmpegPlayer starts an ffmpeg player decoding url into a framemd5
// file; extra goes between the input and the output options. frames, when
// not nil, counts the publisher's frames (for the player's window).
func startFFmpegPlayer(t testing.TB, who, url, out string, frames func() int, extra ...string) *player {
	t.Helper()
	// -loglevel debug: ffmpeg logs "Sending play command" only at debug level.
	args := []string{"-nostdin", "-hide_banner", "-loglevel", "debug", "-i", url}
	args = append(args, extra...)
	args = append(args, "-fps_mode", "passthrough", "-flush_packets", "1", "-f", "framemd5", "-y", out)
	marker := "Sending play command"
	if strings.HasPrefix(url, "http") {
		marker = "request: GET " // HTTP-FLV, HLS: the request for the stream
	}
	return newPlayer(t, who, frames, marker, "ffmpeg", args...)
}

// startRtmpdump starts rtmpdump recording a live stream into an FLV file
// ("-" for stdout: set the proc's Stdout).
func startRtmpdump(t testing.TB, who, url, out string, frames func() int) *player {
	t.Helper()
	return newPlayer(t, who, frames, "Starting Live Stream", "rtmpdump", "--live", "-r", url, "-o", out)
}

// awaitPlayerEnd waits for a player to end by itself after its publisher
// ended (the server must tell it: UnpublishNotify / Play.Stop), and stops
// it with SIGINT otherwise, reporting that as an error.
func awaitPlayerEnd(t testing.TB, p *player, timeout time.Duration) {
	t.Helper()
	if !p.wait(timeout) {
		t.Errorf("%s did not end within %v after the publisher ended (no NetStream.Play.UnpublishNotify / Play.Stop?)", p.Who, timeout)
		p.stop(5 * time.Second)
	}
}
