package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/rtmphub/rtmphub/flv"
	"github.com/rtmphub/rtmphub/rtmp/amf"
	"github.com/rtmphub/rtmphub/rtmp/message"
)

// VOD players (-protocol vod): before the step the tool writes the
// synthetic stream (the publisher's media: same plan, same payloads) as
// an FLV file where the server looks for the recorded stream "bench" of
// application vod: <data dir>/vod/streams/_definst_/bench.flv for rtmphub,
// <dir>/vod/bench.flv for nginx-rtmp (application vod { play <dir>/vod; }
// in its configuration); there is no publisher. The players connect to
// app vod, createStream and play "bench" with start 0 (recorded only),
// parse until the first keyframe, then count bytes like live players.
// rtmphub sends a recorded stream ahead of real time by the client's
// buffer length (the players set none: the server's --vod-buffer, 2 s by
// default) and then at real time, so after the warm-up a player receives
// the file's bitrate: expected is players × bitrate, as for live players.
const protoVOD = "vod"

var vodLength = flag.Duration("vod-length", 0, "-protocol vod: length of the file the players play (0: long enough for the ramp, warm-up and window, plus a minute)")

// vodApp is the application VOD players connect to.
const vodApp = "vod"

// stepApp is the application a step's players connect to.
func stepApp(st step) string {
	if st.protocol == protoVOD {
		return vodApp
	}
	return benchApp
}

// nginxVODDir is the folder nginx-rtmp's application vod plays from.
func nginxVODDir(dir string) string { return filepath.Join(dir, vodApp) }

// vodFile is where the VOD step's file goes for server srv.
func vodFile(srv *serverProc) (string, error) {
	switch {
	case srv.dir == "":
	case srv.kind == kindRtmphub:
		return filepath.Join(srv.dir, "data", vodApp, "streams", "_definst_", benchStream+".flv"), nil
	case srv.kind == kindNginx:
		return filepath.Join(nginxVODDir(srv.dir), benchStream+".flv"), nil
	}
	return "", fmt.Errorf("-protocol vod: only a server the tool starts (-server rtmphub, nginx or both) has a folder to write the file into")
}

// vodFileLength is the length of the file a step of n players plays: it
// must not end before the window does (a player at the end of the file
// gets nothing more and would count as dropped).
func vodFileLength(cfg *benchConfig, n int) time.Duration {
	if *vodLength > 0 {
		return *vodLength
	}
	ramp := time.Duration(float64(n) / cfg.rampRate * float64(time.Second))
	return ramp + cfg.setupTimeout + cfg.warmup + cfg.duration + time.Minute
}

// prepareVOD writes the step's file where srv looks for it and returns
// a publisher that publishes nothing, so that the step runs as a live one
// does.
func prepareVOD(srv *serverProc, cfg *benchConfig, n int) (*publisher, error) {
	path, err := vodFile(srv)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	if err := writeVODFile(path, cfg.plan, vodFileLength(cfg, n)); err != nil {
		return nil, fmt.Errorf("vod file: %w", err)
	}
	return &publisher{cancel: func() {}}, nil
}

// writeVODFile writes length of the synthetic stream of plan as an FLV
// file: onMetaData, the sequence headers, then the frames in the order and
// with the timestamps the publisher sends them.
func writeVODFile(path string, plan streamPlan, length time.Duration) error {
	meta := amf.ECMAArray{
		{Key: "width", Value: 320.0},
		{Key: "height", Value: 240.0},
		{Key: "videodatarate", Value: float64(plan.VideoBitrate) / 1000},
		{Key: "framerate", Value: plan.FPS},
		{Key: "videocodecid", Value: 7.0},
		{Key: "encoder", Value: "rtmpbench"},
	}
	if plan.AudioSize > 0 {
		meta = append(meta,
			amf.Property{Key: "audiodatarate", Value: float64(plan.AudioBitrate) / 1000},
			amf.Property{Key: "audiosamplerate", Value: 44100.0},
			amf.Property{Key: "audiosamplesize", Value: 16.0},
			amf.Property{Key: "stereo", Value: true},
			amf.Property{Key: "audiocodecid", Value: 10.0},
		)
	}
	w, err := flv.Create(path, plan.AudioSize > 0, true, meta)
	if err != nil {
		return err
	}
	payloads := buildPayloads(plan)
	werr := w.WriteTag(message.TypeVideo, 0, payloads.avcHeader)
	if werr == nil && plan.AudioSize > 0 {
		werr = w.WriteTag(message.TypeAudio, 0, payloads.aacHeader)
	}
	clock := frameClock{plan: plan}
	end := uint32(length.Milliseconds())
	for werr == nil {
		kind, ts := clock.next()
		if ts >= end {
			break
		}
		m := payloads.message(kind, ts, 1)
		werr = w.WriteTag(m.Type, ts, m.Payload)
	}
	if err := w.Close(); werr == nil {
		werr = err
	}
	return werr
}
