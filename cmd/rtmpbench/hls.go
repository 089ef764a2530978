package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// maxPlaylist bounds a playlist the HLS player reads.
const maxPlaylist = 1 << 20

// newHLSClient is the HTTP client a step's HLS players share: keep-alive
// connections, enough idle ones for every player's playlists (a video and
// an audio one each) to keep theirs.
func newHLSClient(players int, dialTimeout time.Duration) *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext:         (&net.Dialer{Timeout: dialTimeout}).DialContext,
		MaxIdleConnsPerHost: 2 * players,
		DisableCompression:  true,
		ForceAttemptHTTP2:   false,
	}}
}

// hlsURL is the multivariant playlist of the bench stream.
func hlsURL(cfg *playerConfig) string {
	return "http://" + cfg.addr + "/" + cfg.app + "/" + cfg.name + "/index.m3u8"
}

// runHLS plays the bench stream as LL-HLS: the multivariant playlist
// (index.m3u8; a media playlist there is followed as it is), then each
// media playlist of its first variant (video, and the default audio
// rendition) followed in a goroutine of its own until one fails or ctx
// ends. The player is streaming once the first variant's first part is
// in.
func (p *player) runHLS(ctx context.Context, cfg *playerConfig, ready func()) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	sent := time.Now()
	base, err := url.Parse(hlsURL(cfg))
	if err != nil {
		return err
	}
	text, err := p.get(ctx, cfg, base.String(), cfg.setupTimeout)
	if err != nil {
		return err
	}
	uris := []*url.URL{base}
	if isMultivariant(text) {
		mv, err := parseMultivariant(text)
		if err != nil {
			return fmt.Errorf("%s: %w", base.Path, err)
		}
		uris = uris[:0]
		for _, s := range mv.mediaURIs() {
			ref, err := url.Parse(s)
			if err != nil {
				return fmt.Errorf("%s: %w", base.Path, err)
			}
			uris = append(uris, base.ResolveReference(ref))
		}
		text = "" // the media playlists still have to be read
	}
	var wg sync.WaitGroup
	for i, u := range uris {
		f := &hlsFollower{p: p, cfg: cfg, url: u}
		if i == 0 {
			f.sent, f.first = sent, func() { p.streaming(ready) }
			f.text = text
		}
		wg.Go(func() { cancel(f.run(ctx)) })
	}
	wg.Wait()
	return context.Cause(ctx)
}

// hlsFollower follows one media playlist: from its last independent part
// on it downloads every part, asking for the playlist with the next part
// in it by a blocking reload (_HLS_msn, _HLS_part) when the server can
// block, else polling it every part target duration.
type hlsFollower struct {
	p    *player
	cfg  *playerConfig
	url  *url.URL
	text string // the playlist, when the caller has read it already

	// For the first variant's playlist: when the player asked, and what
	// to call once its first part is in.
	sent  time.Time
	first func()

	buf  []byte
	last *hlsPos // the last part downloaded
}

func (f *hlsFollower) run(ctx context.Context) error {
	timeout := f.cfg.setupTimeout
	for reload := f.url.String(); ; {
		text := f.text
		if text == "" {
			var err error
			if text, err = f.p.get(ctx, f.cfg, reload, timeout); err != nil {
				return err
			}
		}
		f.text = ""
		m, err := parseMedia(text)
		if err != nil {
			return fmt.Errorf("%s: %w", f.url.Path, err)
		}
		if m.partTarget == 0 {
			return fmt.Errorf("%s: not a low-latency playlist (no EXT-X-PART-INF)", f.url.Path)
		}
		if f.last == nil {
			if m.mapURI != "" {
				if err := f.download(ctx, m.mapURI, timeout); err != nil {
					return err
				}
			}
		}
		for _, part := range f.newParts(m) {
			if !part.gap {
				if err := f.download(ctx, part.uri, timeout); err != nil {
					return err
				}
			}
			f.last = &part.pos
			if f.first != nil {
				f.p.ttff = max(time.Since(f.sent), time.Nanosecond)
				if part.independent {
					f.p.ttfk = f.p.ttff
				}
				f.first()
				f.first = nil
			}
		}
		if m.endList {
			return errors.New("the playlist ended (EXT-X-ENDLIST)")
		}
		timeout = f.cfg.readTimeout
		if m.canBlockReload {
			reload = f.blockingReload(f.nextPos(m))
		} else {
			reload = f.url.String()
			t := time.NewTimer(m.partTarget)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			}
		}
	}
}

// newParts returns the parts of m to download: those after the last one
// downloaded, or at first those from the last independent part on (or the
// last part, when none is independent).
func (f *hlsFollower) newParts(m *hlsMedia) []hlsPart {
	if f.last == nil {
		start := len(m.parts) - 1
		for i := len(m.parts) - 1; i >= 0; i-- {
			if m.parts[i].independent {
				start = i
				break
			}
		}
		return m.parts[max(start, 0):]
	}
	for i, part := range m.parts {
		if f.last.before(part.pos) {
			return m.parts[i:]
		}
	}
	return nil
}

// nextPos is the part to wait for: the one after the last listed, or
// after the last downloaded when the playlist lists less (a server that
// started over), so that a reload never asks for what is already there.
func (f *hlsFollower) nextPos(m *hlsMedia) hlsPos {
	if f.last != nil && !f.last.before(m.next) {
		return hlsPos{msn: f.last.msn, part: f.last.part + 1}
	}
	return m.next
}

// blockingReload is the playlist's URL asking the server to hold the
// answer until the part at pos is listed.
func (f *hlsFollower) blockingReload(pos hlsPos) string {
	sep := "?"
	if f.url.RawQuery != "" {
		sep = "&"
	}
	return f.url.String() + sep + "_HLS_msn=" + strconv.FormatUint(pos.msn, 10) + "&_HLS_part=" + strconv.Itoa(pos.part)
}

// download fetches uri (relative to the playlist) and counts its body.
func (f *hlsFollower) download(ctx context.Context, uri string, timeout time.Duration) error {
	ref, err := url.Parse(uri)
	if err != nil {
		return err
	}
	u := f.url.ResolveReference(ref).String()
	if f.buf == nil {
		f.buf = make([]byte, f.cfg.readBuf)
	}
	return f.p.fetch(ctx, f.cfg, u, timeout, func(body io.Reader) error {
		for {
			n, err := body.Read(f.buf)
			f.p.bytes.Add(uint64(n))
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return err
			}
		}
	})
}

// get fetches a playlist.
func (p *player) get(ctx context.Context, cfg *playerConfig, u string, timeout time.Duration) (string, error) {
	var text string
	err := p.fetch(ctx, cfg, u, timeout, func(body io.Reader) error {
		b, err := io.ReadAll(io.LimitReader(body, maxPlaylist+1))
		if len(b) > maxPlaylist {
			return fmt.Errorf("playlist over %d bytes", maxPlaylist)
		}
		text = string(b)
		return err
	})
	return text, err
}

// fetch GETs u within timeout and hands a 200 answer's body to read.
func (p *player) fetch(ctx context.Context, cfg *playerConfig, u string, timeout time.Duration, read func(io.Reader) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	req.Header.Set("User-Agent", "rtmpbench")
	resp, err := cfg.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	path := req.URL.Path
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
		if msg := strings.TrimSpace(string(b)); msg != "" {
			return fmt.Errorf("GET %s: HTTP %s: %s", path, resp.Status, msg)
		}
		return fmt.Errorf("GET %s: HTTP %s", path, resp.Status)
	}
	if err := read(resp.Body); err != nil {
		return fmt.Errorf("GET %s: %w", path, err)
	}
	return nil
}
