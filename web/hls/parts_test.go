package hls

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"regexp"
	"strconv"
	"testing"
	"time"
)

var partURI = regexp.MustCompile(`#EXT-X-PART:[^\n]*URI="([^"]+)"`)

func TestPartsFromBytes(t *testing.T) {
	// A complete part is answered from a copy of gohlslib's bytes, with
	// its length; the copies of parts well behind the edge are dropped.
	e, tail, pl := atLiveEdge(t, false)
	parts := partURI.FindAllStringSubmatch(pl, -1)
	if len(parts) == 0 {
		t.Fatalf("no parts:\n%s", pl)
	}
	part := parts[len(parts)-1][1]

	e.m.mu.Lock()
	mx := e.m.muxers["live/cam"]
	e.m.mu.Unlock()
	inst := mx.currentInstance()
	direct := &bufferWriter{header: make(http.Header)}
	inst.hm.Handle(direct, internalRequest(part))
	if direct.code != http.StatusOK || direct.body.Len() == 0 {
		t.Fatalf("gohlslib's %s: %d, %d bytes", part, direct.code, direct.body.Len())
	}
	for i := range 2 {
		resp, err := http.Get(e.url(part))
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		_, _ = b.ReadFrom(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !bytes.Equal(b.Bytes(), direct.body.Bytes()) {
			t.Fatalf("GET %s (%d): %d, %d bytes, want gohlslib's %d", part, i, resp.StatusCode, b.Len(), direct.body.Len())
		}
		if cl := resp.Header.Get("Content-Length"); cl != strconv.Itoa(b.Len()) {
			t.Errorf("Content-Length %q for %d bytes", cl, b.Len())
		}
		if resp.Header.Get("Content-Type") != "video/mp4" || resp.Header.Get("Date") == "" {
			t.Errorf("headers: %v", resp.Header)
		}
	}
	resp, err := http.Head(e.url(part))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.ContentLength != int64(direct.body.Len()) {
		t.Errorf("HEAD %s: %d, length %d", part, resp.StatusCode, resp.ContentLength)
	}
	// A name of another instance (another prefix) is not kept.
	if code, _ := get(t, e.url("0000"+part[4:]), 2*time.Second); code != http.StatusNotFound {
		t.Errorf("part of another prefix: %d, want 404", code)
	}
	inst.partsMu.Lock()
	if inst.parts["0000"+part[4:]] != nil {
		t.Error("a part gohlslib does not have is kept")
	}
	inst.partsMu.Unlock()

	e.feed(tail, 0)
	time.Sleep(200 * time.Millisecond)
	inst.partsMu.Lock()
	_, kept := inst.parts[part]
	inst.partsMu.Unlock()
	if kept {
		t.Errorf("%s still kept %d parts later", part, inst.currentState().hint)
	}
}

func TestLazyDeadline(t *testing.T) {
	l := newLazyDeadline(context.Background(), time.Hour)
	l.stop()
	select {
	case <-l.Done():
	default:
		t.Error("a stopped deadline is not done")
	}
	if l.ctx != canceled || !errors.Is(l.Err(), context.Canceled) {
		t.Errorf("stopped without waiting: a timer was made, or Err %v", l.Err())
	}

	l = newLazyDeadline(context.Background(), 30*time.Millisecond)
	defer l.stop()
	if d, ok := l.Deadline(); !ok || time.Until(d) > 30*time.Millisecond {
		t.Errorf("deadline %v %v", d, ok)
	}
	select {
	case <-l.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("deadline never came")
	}
	if !errors.Is(l.Err(), context.DeadlineExceeded) {
		t.Errorf("Err %v", l.Err())
	}
}
