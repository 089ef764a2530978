package session

import (
	"math"
	"time"

	"github.com/rtmphub/rtmphub/rtmp/message"
	"github.com/rtmphub/rtmphub/session/vod"
)

// The binding of plays to what they play: the start value of play chooses
// between the live stream (package live, live.go) and the recorded one
// (package vod), and a client's stream msid is the vod.Output of the
// vod.Player that plays recorded streams on it.

// vodOutput is a client's stream msid as the output of a vod.Player.
type vodOutput struct {
	c    *Client
	msid uint32
}

// startVOD starts a player of item on stream msid; burst turns pacing off.
func (c *Client) startVOD(msid uint32, item *vod.Item, burst bool) *vod.Player {
	return c.srv.media.Play(vodOutput{c: c, msid: msid}, item, vod.PlayOptions{StreamID: msid, Burst: burst, Log: c.log})
}

func (o vodOutput) SendWait(msgs []message.Message, limit int, stop <-chan struct{}) bool {
	return o.c.out.SendWait(msgs, limit, stop)
}

func (o vodOutput) Status(level, code, desc, details string) {
	o.c.sendStatus(o.msid, level, code, desc, details)
}

func (o vodOutput) Data(vals ...any) { o.c.sendData(o.msid, vals...) }

func (o vodOutput) Control(ev message.UserControlEvent) {
	o.c.send(*message.UserControl{Event: ev, StreamID: o.msid}.Message())
}

// BufferLength is the client's buffer length, or Config.VODBuffer when it
// has not set one.
func (o vodOutput) BufferLength() time.Duration {
	ms := o.c.bufferLength.Load()
	if ms == 0 {
		return o.c.srv.cfg.VODBuffer
	}
	return time.Duration(ms) * time.Millisecond
}

// liveNow reports whether the live stream name has a publisher, or one
// that vanished and may come back.
func (in *Instance) liveNow(name string) bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	st := in.streams[name]
	if st == nil {
		return false
	}
	return st.Live()
}

// Start values of play, in milliseconds as ffmpeg and librtmp send them.
const (
	startLiveOnly = -1000 // live only
	startAny      = -2000 // live, else recorded
)

// NormalizeStart returns the start value of a play (client play or
// server-side Stream.play) with its live/recorded sentinel in milliseconds.
// ffmpeg sends -2000, -1000 or an offset of 0 and up, librtmp -1000 or 0 and
// up; but Adobe's RTMP specification (7.2.2.1) and server-side Stream.play
// give start in seconds, -2 live then recorded and -1 live only, and
// GStreamer's rtmp2src and node-media-server's client send -2. No client
// sends a millisecond start between -1000 and 0, so a value there is a
// sentinel in seconds: -1.5 and below becomes -2000, above it -1000 (both
// outside that range, so normalizing twice changes nothing). Anything else is
// returned as it is: offsets of 0 and up keep the unit of whoever sent them.
func NormalizeStart(start float64) float64 {
	switch {
	case start <= startLiveOnly || start >= 0 || math.IsNaN(start):
		return start
	case start <= -1.5:
		return startAny
	}
	return startLiveOnly
}

// StartMode is what the start value of a play asks for.
type StartMode uint8

const (
	// StartLiveOrRecorded (-2, -2000 and below -1500 ms) plays the live
	// stream when it is published, else the recorded one when its file
	// exists, else waits for a publisher.
	StartLiveOrRecorded StartMode = iota
	// StartLiveOnly (-1, -1000: from -1500 ms up to 0) plays only live.
	StartLiveOnly
	// StartRecorded (0 and up) plays only the recorded stream, from there.
	StartRecorded
)

// PlayStartMode classifies a start value after NormalizeStart.
func PlayStartMode(start float64) StartMode {
	switch start = NormalizeStart(start); {
	case start >= 0:
		return StartRecorded
	case start > (startAny+startLiveOnly)/2:
		return StartLiveOnly
	}
	return StartLiveOrRecorded
}

// vodChoice is what a play asks for.
type vodChoice int

const (
	choiceLive vodChoice = iota
	choiceVOD
	choiceNotFound
)

// chooseVOD applies FMS start semantics (PlayStartMode) to a play of name
// with start already normalized. "mp4:" names are recorded only.
func (c *Client) chooseVOD(name string, start, length float64, reset bool) (*vod.Item, vodChoice) {
	_, kind := vod.FileName(name)
	mode := PlayStartMode(start)
	recordedOnly := mode == StartRecorded || kind == vod.MP4
	if !recordedOnly && mode == StartLiveOnly {
		return nil, choiceLive
	}
	if !recordedOnly && c.inst.liveNow(name) {
		return nil, choiceLive
	}
	item, ok := c.vodItem(name, start, length, reset)
	switch {
	case ok:
		return item, choiceVOD
	case recordedOnly:
		return nil, choiceNotFound
	}
	return nil, choiceLive
}

// vodItem locates the file of a play; false when there is none.
func (c *Client) vodItem(name string, start, length float64, reset bool) (*vod.Item, bool) {
	f, err := c.srv.media.Find(c.app, c.inst.name, name)
	if err != nil {
		return nil, false
	}
	it := &vod.Item{Name: name, File: f, Start: 0, Length: -1, Reset: reset}
	if start > 0 && start < math.MaxInt32 {
		it.Start = int64(start)
	}
	if length >= 0 && length < math.MaxInt32 {
		it.Length = int64(length)
	}
	return it, true
}

// streamLength returns the duration of the stream file a play name names,
// for getStreamLength; 0 when there is none.
func (c *Client) streamLength(name string) float64 {
	f, err := c.srv.media.Find(c.app, c.inst.name, streamName(name))
	if err != nil {
		return 0
	}
	src, err := c.srv.media.Open(f)
	if err != nil {
		return 0
	}
	defer src.Close()
	return src.Info().Duration.Seconds()
}
