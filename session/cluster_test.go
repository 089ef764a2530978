package session_test

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rtmphub/rtmphub/rtmp/client"
	"github.com/rtmphub/rtmphub/rtmp/message"
	"github.com/rtmphub/rtmphub/session"
	"github.com/rtmphub/rtmphub/session/live"
	"github.com/rtmphub/rtmphub/session/sessiontest"
)

// fakeCluster records what the core asks and answers as told.
type fakeCluster struct {
	mu       sync.Mutex
	claimErr error
	want     bool
	relay    string // the play query of another hub's pull
	calls    []string
}

func (f *fakeCluster) note(s string) {
	f.mu.Lock()
	f.calls = append(f.calls, s)
	f.mu.Unlock()
}

func (f *fakeCluster) has(s string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.calls {
		if c == s {
			return true
		}
	}
	return false
}

func (f *fakeCluster) Claim(app, inst, stream string) error {
	f.note("claim " + app + "/" + inst + "/" + stream)
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.claimErr
}
func (f *fakeCluster) Released(app, inst, stream string) {
	f.note("released " + app + "/" + inst + "/" + stream)
}
func (f *fakeCluster) Relay(_, _, _, query string) bool { return f.relay != "" && query == f.relay }

func (f *fakeCluster) Want(app, inst, stream, query string, waits bool) bool {
	f.note(fmt.Sprintf("want %s/%s/%s?%s %v", app, inst, stream, query, waits))
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.want
}

// The core claims before a publish and refuses it with the cluster's
// reason; it says when a publication ended.
func TestClusterClaimAndRelease(t *testing.T) {
	fc := &fakeCluster{}
	base, srv, _ := startServer(t, session.Config{Cluster: fc})
	p := sessiontest.Publish(t, base+"/live", "cam", "live")
	if !fc.has("claim live/_definst_/cam") || !srv.PublishedHere("live", "_definst_", "cam") {
		t.Fatalf("calls %v, published here %v", fc.calls, srv.PublishedHere("live", "_definst_", "cam"))
	}
	p.C.Close()
	sessiontest.Eventually(t, 5*time.Second, "released", func() bool { return fc.has("released live/_definst_/cam") })

	fc.mu.Lock()
	//nolint:revive // a BadName description, as cluster.TakenError writes it
	fc.claimErr = errors.New("Stream cam2 is already being published (on hub b).")
	fc.mu.Unlock()
	c := sessiontest.Dial(t, base+"/live", clientOpts())
	ctx := sessiontest.Ctx(t, 5*time.Second)
	id, err := c.CreateStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	err = c.Publish(ctx, id, "cam2", "live")
	if err == nil || !strings.Contains(err.Error(), "NetStream.Publish.BadName") || !strings.Contains(err.Error(), "on hub b") {
		t.Fatalf("publish of a name another hub has: %v", err)
	}
	if srv.PublishedHere("live", "_definst_", "cam2") {
		t.Fatal("refused publish is published here")
	}
}

// countReader counts what a stream delivers.
type countReader struct {
	media     atomic.Int64
	published atomic.Int64
}

func (r *countReader) Send(*live.Packet, uint32) {}
func (r *countReader) Queue(*live.Packet, uint32, bool) bool {
	r.media.Add(1)
	return true
}
func (r *countReader) Flush() {}
func (r *countReader) Notify(ev live.Event) {
	if ev == live.Published {
		r.published.Add(1)
	}
}

type testSource struct{}

func (testSource) Log() *slog.Logger                { return nil }
func (testSource) Evict(live.Source, time.Duration) {}

// A play or a watch of a stream nobody publishes here asks the cluster;
// a watch the cluster will feed waits for the pull, which PublishPull
// publishes and PublishedHere tells from a client's publication.
func TestClusterWantAndPull(t *testing.T) {
	fc := &fakeCluster{}
	base, srv, _ := startServer(t, session.Config{Cluster: fc})
	// Nobody has it anywhere: Watch says not live, as alone.
	req := session.WatchRequest{App: "live", Stream: "far", Protocol: "http-flv"}
	if _, _, err := srv.Watch(req, &countReader{}, live.ReaderOptions{}); !errors.Is(err, session.ErrNotLive) {
		t.Fatalf("watch: %v", err)
	}
	if !fc.has("want live/_definst_/far? false") {
		t.Fatalf("watch asked %v", fc.calls)
	}
	// An RTMP play asks too, and waits as alone.
	c, _ := sessiontest.Play(t, base+"/live", "far2?x=1")
	defer c.Close()
	sessiontest.Eventually(t, 5*time.Second, "want on play", func() bool { return fc.has("want live/_definst_/far2?x=1 true") })

	// Another hub has it: the viewer waits for the pull.
	fc.mu.Lock()
	fc.want = true
	fc.mu.Unlock()
	r := &countReader{}
	_, detach, err := srv.Watch(req, r, live.ReaderOptions{})
	if err != nil {
		t.Fatalf("watch of a stream another hub has: %v", err)
	}
	defer detach()
	if n := srv.StreamReaders("live", "_definst_", "far"); n != 1 {
		t.Fatalf("%d readers", n)
	}
	pub, err := srv.PublishPull("live", "_definst_", "far", testSource{})
	if err != nil {
		t.Fatal(err)
	}
	pub.Write(&message.Message{Type: message.TypeVideo, Payload: sessiontest.AVCSeq})
	pub.Write(&message.Message{Type: message.TypeVideo, Timestamp: 40, Payload: sessiontest.VideoFrame(0, 25)})
	if r.published.Load() != 1 || r.media.Load() != 1 {
		t.Fatalf("reader: published %d, media %d", r.published.Load(), r.media.Load())
	}
	if srv.PublishedHere("live", "_definst_", "far") {
		t.Fatal("a pull counts as published here")
	}
	pulled := false
	for _, v := range srv.Streams() {
		if v.Name == "far" {
			pulled = v.Pulled
		}
	}
	if !pulled {
		t.Error("the stream view does not say the stream is pulled")
	}
	// A client's publish of the name is asked of the cluster (which
	// refuses it while the owner lives), never taken over silently.
	fc.mu.Lock()
	fc.claimErr = errors.New("taken")
	fc.mu.Unlock()
	pc := sessiontest.Dial(t, base+"/live", clientOpts())
	ctx := sessiontest.Ctx(t, 5*time.Second)
	id, _ := pc.CreateStream(ctx)
	if err := pc.Publish(ctx, id, "far", "live"); err == nil {
		t.Fatal("publish over a pull")
	}
	pub.Close(true)
	detach()
	if n := srv.StreamReaders("live", "_definst_", "far"); n != 0 {
		t.Fatalf("%d readers after detach", n)
	}
}

func clientOpts() client.Options { return client.Options{} }

// In merged-write mode a player's media waits for the window, and leaves
// in one burst; another hub's pull (a relay to its players) gets every
// message at once, so the window is not paid once per hub.
func TestMergedWriteHoldsPlayersNotRelays(t *testing.T) {
	const window = 1500 * time.Millisecond
	fc := &fakeCluster{relay: "pulltoken=x"}
	base, _, _ := startServer(t, session.Config{Cluster: fc, MergedWrite: window})
	pub := sessiontest.Publish(t, base+"/live", "cam", "live")
	pub.Header(t, nil)
	pub.Frames(t, 0, 1, 25) // a keyframe: the players' join burst
	pub.Sync(t)
	player, pmsid := sessiontest.Play(t, base+"/live", "cam")
	relay, rmsid := sessiontest.Play(t, base+"/live", "cam?pulltoken=x")
	for _, c := range []struct {
		c    *client.Conn
		msid uint32
	}{{player, pmsid}, {relay, rmsid}} {
		// The join burst: data, metadata, sequence headers, then the
		// cached keyframe and its audio.
		for m := sessiontest.NextMedia(t, c.c, c.msid); m.Type != message.TypeAudio || m.Timestamp != 20; {
			m = sessiontest.NextMedia(t, c.c, c.msid)
		}
	}

	start := time.Now()
	pub.Frames(t, 1, 11, 25)
	pub.Sync(t)
	for i := range 20 {
		if m := sessiontest.NextMedia(t, relay, rmsid); i == 0 && m.Type != message.TypeVideo {
			t.Fatalf("relay: first message after the burst is %v, want video", m.Type)
		}
	}
	if took := time.Since(start); took > window*2/3 {
		t.Fatalf("the relay got the 20 messages after %v: held for the window", took)
	}
	sessiontest.NextMedia(t, player, pmsid)
	first := time.Since(start)
	for range 19 {
		sessiontest.NextMedia(t, player, pmsid)
	}
	last := time.Since(start)
	t.Logf("relay: all at once; player: first after %v, last after %v", first.Round(time.Millisecond), last.Round(time.Millisecond))
	if first < window*2/3 || last-first > window/3 {
		t.Fatalf("player got the messages from %v to %v, want them in one burst about %v after they were sent", first, last, window)
	}
}
