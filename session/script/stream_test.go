package script_test

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/rtmphub/rtmphub/flv"
	"github.com/rtmphub/rtmphub/rtmp/amf"
	"github.com/rtmphub/rtmphub/rtmp/client"
	"github.com/rtmphub/rtmphub/rtmp/message"
	"github.com/rtmphub/rtmphub/session/sessiontest"
)

// markedClip is seconds of 25 fps video (a keyframe a second) whose
// frames carry mark in their fourth byte, with metadata.
func markedClip(t *testing.T, seconds int, mark byte) string {
	t.Helper()
	b := flv.AppendHeader(nil, flv.Header{Version: 1, HasVideo: true})
	meta, err := amf.Marshal0("onMetaData", amf.ECMAArray{{Key: "duration", Value: float64(seconds)}})
	if err != nil {
		t.Fatal(err)
	}
	b, _ = flv.AppendTag(b, &flv.Tag{Type: message.TypeDataAMF0, Data: meta})
	for i := 0; i < seconds*25; i++ {
		b, err = flv.AppendTag(b, &flv.Tag{Type: message.TypeVideo, Timestamp: uint32(i * 40), Data: frame(i, mark)})
		if err != nil {
			t.Fatal(err)
		}
	}
	return string(b)
}

// frame is a video frame (Sorenson H.263 as FLV says it; nobody decodes
// it) numbered i, a keyframe every 25.
func frame(i int, mark byte) []byte {
	f := []byte{0x22, byte(i >> 8), byte(i), mark}
	if i%25 == 0 {
		f[0] = 0x12
	}
	return f
}

// waitFor polls cond until it holds, failing the test after d with what
// it waited for.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline.C:
			if cond() {
				return
			}
			t.Fatalf("waited %v for %s", d, what)
		case <-tick.C:
		}
	}
}

// waitLog waits until the log contains s, failing the test after d.
func waitLog(t *testing.T, logs *sessiontest.LogBuffer, s string, d time.Duration) {
	t.Helper()
	waitFor(t, d, fmt.Sprintf("the log to contain %q", s), func() bool { return strings.Contains(logs.String(), s) })
}

// livePublisher publishes live stream name with frames marked mark, 25 a
// second, until stop is closed; then it unpublishes.
func livePublisher(t *testing.T, base, name string, mark byte, stop <-chan struct{}) <-chan error {
	t.Helper()
	c := mustDial(t, base, client.Options{})
	ctx := ctxT(t, 5*time.Second)
	id, err := c.CreateStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Publish(ctx, id, name, "live"); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		tick := time.NewTicker(40 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-stop:
				done <- c.WriteCommand(0, &message.Command{Name: "deleteStream", Args: []any{float64(id)}})
				return
			case <-tick.C:
			}
			if err := c.WriteMessages([]message.Message{{Type: message.TypeVideo, StreamID: id, Timestamp: uint32(i * 40), Payload: frame(i, mark)}}); err != nil {
				done <- err
				return
			}
		}
	}()
	return done
}

// A server-side playlist of a file, a live stream of the instance and
// another file: players of the server-side stream see the three in
// order on one timeline; the live item ends when its publisher stops;
// Stream.send reaches the players as a data message.
func TestServerSideStreamLiveItemAndSend(t *testing.T) {
	base, logs := start(t, map[string]map[string]string{"mix": {
		"streams/_definst_/intro.flv": markedClip(t, 1, 'I'),
		"streams/_definst_/outro.flv": markedClip(t, 1, 'O'),
		"main.asc": `
var tv;
application.onAppStart = function () {
	tv = Stream.get("tv");
	tv.onStatus = function (info) { trace("tv: " + info.code); };
};
Client.prototype.startShow = function () {
	tv.play("intro", 0, -1, true);
	tv.play("cam", -1, -1, false); // live only: plays until unpublished
	tv.play("outro", 0, -1, false);
	return true;
};
Client.prototype.cue = function (text) { return tv.send("onCue", { text: text }, 7); };
`}}, time.Second)
	stop := make(chan struct{})
	pubDone := livePublisher(t, base+"/mix", "cam", 'L', stop)
	stopped := false
	defer func() {
		if !stopped {
			close(stop)
		}
	}()

	ctrl := mustDial(t, base+"/mix", client.Options{})
	ctx := ctxT(t, 15*time.Second)
	p := mustDial(t, base+"/mix", client.Options{})
	msid, err := p.CreateStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Play(ctx, msid, "tv", -1000); err != nil {
		t.Fatal(err)
	}
	if _, err := ctrl.Call(ctx, "startShow"); err != nil {
		t.Fatal(err)
	}
	var marks []byte
	var lastTs uint32
	cueSent, cued := false, false
	deadline := time.Now().Add(12 * time.Second)
	for time.Now().Before(deadline) {
		p.SetReadDeadline(deadline)
		m, err := p.ReadMessage()
		if err != nil {
			t.Fatalf("player: %v (marks so far %q, cue sent %v, cue seen %v)", err, marks, cueSent, cued)
		}
		switch m.Type {
		case message.TypeVideo:
			if len(m.Payload) < 4 {
				continue
			}
			if m.Timestamp < lastTs {
				t.Errorf("timestamp went back: %d after %d (mark %c)", m.Timestamp, lastTs, m.Payload[3])
			}
			lastTs = m.Timestamp
			mark := m.Payload[3]
			if len(marks) == 0 || marks[len(marks)-1] != mark {
				marks = append(marks, mark)
			}
			if mark == 'L' && !cueSent {
				// The live item plays: send a cue.
				if r, err := ctrl.Call(ctx, "cue", "hello"); err != nil || r.Arg(0) != true {
					t.Fatalf("cue: %v %v", r, err)
				}
				cueSent = true
			}
		case message.TypeDataAMF0, message.TypeDataAMF3:
			vals, err := message.DecodeData(m)
			if err == nil && len(vals) == 3 && vals[0] == "onCue" {
				o, _ := vals[1].(amf.Object)
				if s, _ := o.GetString("text"); s == "hello" && vals[2] == 7.0 {
					cued = true
				}
			}
		}
		if cued && !stopped {
			// The cue reached the player during the live item: stop
			// the publisher, which ends the item.
			close(stop)
			stopped = true
		}
		if len(marks) > 0 && marks[len(marks)-1] == 'O' {
			break
		}
	}
	if string(marks) != "ILO" {
		t.Errorf("items seen by the player: %q, want \"ILO\"\n%s", marks, logs)
	}
	if !cued {
		t.Errorf("Stream.send did not reach the player")
	}
	if err := <-pubDone; err != nil {
		t.Errorf("publisher: %v", err)
	}
	waitLog(t, logs, "tv: NetStream.Play.UnpublishNotify", 5*time.Second)
	l := logs.String()
	for _, want := range []string{"tv: NetStream.Play.Reset", "tv: NetStream.Play.Start", "tv: NetStream.Play.Switch", "tv: NetStream.Play.Stop"} {
		if !strings.Contains(l, want) {
			t.Errorf("log lacks %q", want)
		}
	}
}

// Stream.record records what a server-side stream publishes into an FLV
// file that starts at a keyframe; Record.Start and Record.Stop reach
// onStatus. A stream without onStatus, and script errors, go to
// application.onStatus.
func TestServerSideStreamRecordAndAppStatus(t *testing.T) {
	base, logs := start(t, map[string]map[string]string{"rec": {
		"streams/_definst_/clip.flv": markedClip(t, 3, 'C'),
		"main.asc": `
var s;
application.onAppStart = function () {
	s = Stream.get("taped");
	s.onStatus = function (info) { trace("taped: " + info.code); };
	s.play("clip", 0, -1);
	setTimeout(function () { s.record("record"); }, 300);   // mid-GOP
	setTimeout(function () { s.record(false); }, 1500);
	trace("clip lasts " + Stream.length("clip") + "s, nosuch " + Stream.length("nosuch") + "s");
	var lost = Stream.get("lost");
	lost.play("nosuchfile", 0);
};
application.onStatus = function (info) {
	trace("app status: " + info.level + " " + info.code + " (" + info.description + ")");
};
Client.prototype.boom = function () { return null.x; };
`}}, time.Second)
	c := mustDial(t, base+"/rec", client.Options{})
	_, err := c.Call(ctxT(t, 5*time.Second), "boom")
	var se *client.StatusError
	if !errors.As(err, &se) {
		t.Fatalf("boom: %v", err)
	}
	waitLog(t, logs, "clip lasts 3s, nosuch 0s", 5*time.Second)
	waitLog(t, logs, "app status: error Application.Script.Error (TypeError", 5*time.Second)
	waitLog(t, logs, "app status: error NetStream.Play.StreamNotFound", 5*time.Second)
	waitLog(t, logs, "taped: NetStream.Record.Start", 5*time.Second)
	waitLog(t, logs, "taped: NetStream.Record.Stop", 5*time.Second)

	path := logPath(t, logs, "record stop", "file")
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := flv.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	var video, meta int
	var first, last uint32
	var tag flv.Tag
	for {
		if err := r.ReadTag(&tag); err != nil {
			if !errors.Is(err, io.EOF) {
				t.Fatal(err)
			}
			break
		}
		switch tag.Type {
		case message.TypeDataAMF0:
			if name, _, _ := message.DataName(tag.Data); name == "onMetaData" {
				meta++
			}
		case message.TypeVideo:
			if video == 0 {
				first = tag.Timestamp
				if tag.Data[0]>>4 != 1 || tag.Data[3] != 'C' {
					t.Errorf("recording starts with % x, not a keyframe of the clip", tag.Data)
				}
			}
			if tag.Timestamp < last {
				t.Errorf("timestamp %d after %d", tag.Timestamp, last)
			}
			last = tag.Timestamp
			video++
		}
	}
	t.Logf("recording: %d video tags, %d..%d ms", video, first, last)
	if video < 10 || meta == 0 || first > 40 {
		t.Errorf("recording: %d video tags, %d onMetaData, first at %d ms", video, meta, first)
	}
}

// logPath returns attribute key of the first log line containing msg.
func logPath(t *testing.T, logs *sessiontest.LogBuffer, msg, key string) string {
	t.Helper()
	for _, line := range strings.Split(logs.String(), "\n") {
		if !strings.Contains(line, "msg=\""+msg+"\"") && !strings.Contains(line, "msg="+msg) {
			continue
		}
		i := strings.Index(line, " "+key+"=")
		if i < 0 {
			continue
		}
		v := line[i+len(key)+2:]
		if strings.HasPrefix(v, "\"") {
			v = v[1:]
			return v[:strings.IndexByte(v, '"')]
		}
		if j := strings.IndexByte(v, ' '); j >= 0 {
			v = v[:j]
		}
		return v
	}
	t.Fatalf("no log line %q with %s", msg, key)
	return ""
}

// The remote server's calls to a script's NetConnection run the methods
// defined on the object; their return value (or error) is the answer.
func TestNetConnectionAnswersRemoteCalls(t *testing.T) {
	base, logs := start(t, map[string]map[string]string{
		"hub": {"main.asc": `
application.onConnect = function (client) {
	setTimeout(function () {
		client.call("double", new Responder(function (r) { trace("hub: double gave " + r); },
			function (info) { trace("hub: double failed " + info.code); }), 21);
		client.call("nosuch", new Responder(function (r) { trace("hub: nosuch gave " + r); },
			function (info) { trace("hub: nosuch failed " + info.code); }));
		client.call("thrower", new Responder(function (r) { trace("hub: thrower gave " + r); },
			function (info) { trace("hub: thrower failed " + info.description); }));
		client.call("notify", null, "fire and forget");
	}, 10);
	return true;
};
`},
		"relay": {"main.asc": `
var nc = new NetConnection();
nc.double = function (x) { return x * 2; };
nc.thrower = function () { throw new Error("nope"); };
nc.notify = function (s) { trace("relay: notified " + s); };
nc.onStatus = function (info) { trace("relay nc: " + info.code); };
application.onConnect = function (client, url) { nc.connect(url); return true; };
`},
	}, time.Second)
	mustDial(t, base+"/relay", client.Options{ConnectArgs: []any{base + "/hub"}})
	waitLog(t, logs, "relay nc: NetConnection.Connect.Success", 5*time.Second)
	waitLog(t, logs, "hub: double gave 42", 5*time.Second)
	waitLog(t, logs, "hub: nosuch failed NetConnection.Call.Failed", 5*time.Second)
	waitLog(t, logs, "hub: thrower failed Error: nope", 5*time.Second)
	waitLog(t, logs, "relay: notified fire and forget", 5*time.Second)
}

// Stream.play's start: -2 plays the live stream when it is published,
// else the recorded file; -1 only live (waiting for a publisher); 0 and
// above only the file, even while the live stream is published.
func TestServerSideStreamStartSemantics(t *testing.T) {
	base, srv, logs := startServer(t, map[string]map[string]string{"sel": {
		"streams/_definst_/cam.flv": markedClip(t, 2, 'F'),
		"main.asc": `
var s;
application.onAppStart = function () {
	s = Stream.get("out");
	s.onStatus = function (i) { trace("out: " + i.code); };
};
Client.prototype.go = function (start) { s.play("cam", start, -1, true); return true; };
`}}, time.Second)
	ctx := ctxT(t, 15*time.Second)
	ctrl := mustDial(t, base+"/sel", client.Options{})
	p := mustDial(t, base+"/sel", client.Options{})
	msid, err := p.CreateStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Play(ctx, msid, "out", -1000); err != nil {
		t.Fatal(err)
	}
	// waitMark reads the player until a frame marked mark arrives.
	waitMark := func(mark byte) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			p.SetReadDeadline(deadline)
			m, err := p.ReadMessage()
			if err != nil {
				t.Fatalf("waiting for a frame marked %c: %v\n%s", mark, err, logs)
			}
			if m.Type == message.TypeVideo && len(m.Payload) >= 4 && m.Payload[3] == mark {
				return
			}
		}
	}
	if _, err := ctrl.Call(ctx, "go", -2.0); err != nil {
		t.Fatal(err)
	}
	waitMark('F') // not published: the file
	if _, err := ctrl.Call(ctx, "go", -1.0); err != nil {
		t.Fatal(err)
	}
	// The live item starts on the stream's own goroutine: publish once
	// it waits as a player of cam, so that it hears PublishNotify.
	waitFor(t, 5*time.Second, "the server-side stream to wait for cam", func() bool {
		for _, v := range srv.Streams() {
			if v.App == "sel" && v.Name == "cam" && len(v.Players) > 0 {
				return true
			}
		}
		return false
	})
	stop := make(chan struct{})
	defer close(stop)
	livePublisher(t, base+"/sel", "cam", 'L', stop)
	waitMark('L') // live only: waited for the publisher
	waitLog(t, logs, "out: NetStream.Play.PublishNotify", 5*time.Second)
	if _, err := ctrl.Call(ctx, "go", 0.0); err != nil {
		t.Fatal(err)
	}
	waitMark('F') // recorded only, though published
	if _, err := ctrl.Call(ctx, "go", -2.0); err != nil {
		t.Fatal(err)
	}
	waitMark('L') // published: live
}

// Stream.play's start also takes the sentinels in milliseconds, as client
// plays do (session.NormalizeStart): -1000 is live only, not "below -1.5".
func TestServerSideStreamStartInMilliseconds(t *testing.T) {
	base, srv, logs := startServer(t, map[string]map[string]string{"selms": {
		"streams/_definst_/cam.flv": markedClip(t, 2, 'F'),
		"main.asc": `
var s;
application.onAppStart = function () {
	s = Stream.get("out");
	s.onStatus = function (i) { trace("out: " + i.code); };
};
Client.prototype.go = function (start) { s.play("cam", start, -1, true); return true; };
`}}, time.Second)
	ctx := ctxT(t, 15*time.Second)
	ctrl := mustDial(t, base+"/selms", client.Options{})
	p := mustDial(t, base+"/selms", client.Options{})
	msid, err := p.CreateStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Play(ctx, msid, "out", -1000); err != nil {
		t.Fatal(err)
	}
	if _, err := ctrl.Call(ctx, "go", -1000.0); err != nil {
		t.Fatal(err)
	}
	// Live only: the server-side stream waits as a player of cam; the file
	// is not played.
	waitFor(t, 5*time.Second, "the server-side stream to wait for cam", func() bool {
		for _, v := range srv.Streams() {
			if v.App == "selms" && v.Name == "cam" && len(v.Players) > 0 {
				return true
			}
		}
		return false
	})
	p.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	for {
		m, err := p.ReadMessage()
		if err != nil {
			break
		}
		if m.Type == message.TypeVideo {
			t.Fatalf("start -1000 played the file\n%s", logs)
		}
	}
	if _, err := ctrl.Call(ctx, "go", -2000.0); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		p.SetReadDeadline(deadline)
		m, err := p.ReadMessage()
		if err != nil {
			t.Fatalf("start -2000 with no publisher: no frame of the file: %v\n%s", err, logs)
		}
		if m.Type == message.TypeVideo && len(m.Payload) >= 4 && m.Payload[3] == 'F' {
			break
		}
	}
}
