package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rtmphub/rtmphub/flv"
	"github.com/rtmphub/rtmphub/rtmp/client"
	"github.com/rtmphub/rtmphub/rtmp/message"
)

// Latency from a publisher to what a browser shows. The clip's frames
// carry their number as a barcode (barcodeClip); a publisher here sends
// the clip in real time and notes when it wrote each frame (pacedPub);
// the page reads the number off the frame the video element shows
// (barcodeJS) and the time it read it. Latency = read time − write time
// of that frame: encoder latency excluded (the clip is encoded ahead),
// the server, the player's buffering, decoding and the page's
// compositing included. Publisher and browser share the host's clock.

// barcodeBits is how many bits of the frame number a frame carries, in
// blocks of barcodeBlock pixels from the left of its top 40 rows: white
// for 1, black for 0, least significant first.
const (
	barcodeBits  = 12
	barcodeBlock = 20
)

// barcodeClip encodes (once per test binary) a 320x240 H.264+AAC clip of
// seconds at 25 fps, a keyframe every gop frames, whose frames carry their
// number in a barcode.
func barcodeClip(t testing.TB, seconds, gop int) string {
	t.Helper()
	needFFmpeg(t)
	name := fmt.Sprintf("barcode-%ds-g%d", seconds, gop)
	v, _ := clips.LoadOrStore(name, &clipResult{})
	c := v.(*clipResult)
	c.once.Do(func() {
		c.path = filepath.Join(sharedDir, "clip-"+name+".flv")
		// A black bar, and a white block over it for each bit set:
		// drawbox is some eight times cheaper than the same with geq,
		// which matters on a machine shared with browsers.
		vf := fmt.Sprintf("drawbox=x=0:y=0:w=%d:h=40:color=black:t=fill", barcodeBits*barcodeBlock)
		for b := range barcodeBits {
			vf += fmt.Sprintf(",drawbox=x=%d:y=0:w=%d:h=40:color=white:t=fill:enable='mod(floor(n/%d),2)'",
				b*barcodeBlock, barcodeBlock, 1<<b)
		}
		args := []string{"-nostdin", "-hide_banner", "-loglevel", "error",
			"-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25",
			"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100",
			"-t", strconv.Itoa(seconds), "-map", "0:v", "-map", "1:a", "-vf", vf}
		args = append(args, x264Args(gop, "")...)
		args = append(args, "-c:a", "aac", "-b:a", "64k", "-f", "flv", "-y", c.path)
		p := startProc(t, 3*time.Minute, "ffmpeg", args...)
		if !p.wait(4 * time.Minute) {
			c.err = errors.New("encoding the barcode clip timed out")
			return
		}
		c.err, c.out = p.exitErr(), p.Stderr.String()
	})
	if c.err != nil {
		t.Fatalf("encode %s: %v\n%s", name, c.err, c.out)
	}
	return c.path
}

// barcodeJS reads the frame number off what the page's video element
// shows: {n, at} with at the page's clock (ms since the epoch), or n = -1
// before the first frame.
const barcodeJS = `(() => {
  const v = document.querySelector('video');
  if (!v || v.readyState < 2 || !v.videoWidth) return {n: -1, at: Date.now()};
  const c = window.__barcode || (window.__barcode = document.createElement('canvas'));
  c.width = 320; c.height = 40;
  const g = c.getContext('2d', {willReadFrequently: true});
  g.drawImage(v, 0, 0, v.videoWidth, v.videoHeight * 40 / 240, 0, 0, 320, 40);
  const at = Date.now();
  const d = g.getImageData(0, 0, 320, 40).data;
  let n = 0;
  for (let b = 0; b < ` + "12" + `; b++) {
    const i = (20 * 320 + b * 20 + 10) * 4;
    if (d[i] > 128) n |= 1 << b;
  }
  return {n, at};
})()`

// pacedPub publishes an FLV clip over RTMP in real time from a Go client,
// noting when each video frame was written.
type pacedPub struct {
	sent    []atomic.Int64 // unix ms at which video frame i was written; 0 before
	frames  atomic.Int64   // video frames written
	started time.Time
	done    chan error
}

// startPacedPub connects to url (rtmp://host/app/stream) and publishes
// the clip's tags at their timestamps, from now, until the clip ends or
// the test does.
func startPacedPub(t testing.TB, url, clipPath string) *pacedPub {
	t.Helper()
	f, err := os.Open(clipPath)
	if err != nil {
		t.Fatal(err)
	}
	r, err := flv.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	var tags []flv.Tag
	for {
		tag, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		tags = append(tags, *tag)
	}
	f.Close()
	video := 0
	for _, tg := range tags {
		if tg.Type == message.TypeVideo && len(tg.Data) > 1 && tg.Data[1] == 1 {
			video++
		}
	}
	base, stream := url[:len(url)-len(filepath.Base(url))-1], filepath.Base(url)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	dctx, dcancel := context.WithTimeout(ctx, 10*time.Second)
	defer dcancel()
	c, err := client.Dial(dctx, base, client.Options{FlashVer: "FMLE/3.0 (compatible; rtmphub-e2e)"})
	if err != nil {
		t.Fatalf("paced publisher: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	id, err := c.CreateStream(dctx)
	if err == nil {
		err = c.Publish(dctx, id, stream, "live")
	}
	if err != nil {
		t.Fatalf("paced publisher: %v", err)
	}
	p := &pacedPub{sent: make([]atomic.Int64, video), done: make(chan error, 1), started: time.Now()}
	go func() {
		n := 0
		for _, tg := range tags {
			if tg.Type == message.TypeDataAMF0 {
				// onMetaData goes as @setDataFrame, as encoders send it.
				tg.Data = append(append([]byte{}, setDataFrame...), tg.Data...)
			}
			if wait := time.Until(p.started.Add(time.Duration(tg.Timestamp) * time.Millisecond)); wait > 0 {
				select {
				case <-time.After(wait):
				case <-ctx.Done():
					p.done <- ctx.Err()
					return
				}
			}
			if err := c.WriteMessages([]message.Message{{Type: tg.Type, StreamID: id, Timestamp: tg.Timestamp, Payload: tg.Data}}); err != nil {
				p.done <- err
				return
			}
			if tg.Type == message.TypeVideo && len(tg.Data) > 1 && tg.Data[1] == 1 {
				p.sent[n].Store(time.Now().UnixMilli())
				n++
				p.frames.Store(int64(n))
			}
		}
		p.done <- nil
	}()
	return p
}

// setDataFrame is "@setDataFrame" in AMF0.
var setDataFrame = []byte{0x02, 0x00, 0x0d, '@', 's', 'e', 't', 'D', 'a', 't', 'a', 'F', 'r', 'a', 'm', 'e'}

// latencies turns barcode readings into latencies (ms), skipping
// readings before the first frame or of frames not sent yet (a misread).
type barcodeReading struct {
	N  int   `json:"n"`
	At int64 `json:"at"`
}

func (p *pacedPub) latencies(rs []barcodeReading) (ms []float64, misread int) {
	for _, r := range rs {
		if r.N < 0 {
			continue
		}
		if r.N >= len(p.sent) {
			misread++
			continue
		}
		s := p.sent[r.N].Load()
		if s == 0 || s > r.At {
			misread++
			continue
		}
		ms = append(ms, float64(r.At-s))
	}
	return ms, misread
}

// percentile is the p-th percentile (0..100) of xs, by nearest rank.
func percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	i := int(p/100*float64(len(s))+0.5) - 1
	return s[min(max(i, 0), len(s)-1)]
}
