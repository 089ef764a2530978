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
// an FLV file, <data dir>/live/streams/_definst_/bench.flv, where rtmphub
// looks for the recorded stream "bench" of application live; there is no
// publisher. The players connect, createStream and play "bench" with
// start 0 (recorded only), parse until the first keyframe, then count
// bytes like live players. rtmphub sends a recorded stream ahead of real
// time by the client's buffer length (the players set none: the server's
// --vod-buffer, 2 s by default) and then at real time, so after the
// warm-up a player receives the file's bitrate: expected is players ×
// bitrate, as for live players.
const protoVOD = "vod"

var vodLength = flag.Duration("vod-length", 0, "-protocol vod: length of the file the players play (0: long enough for the ramp, warm-up and window, plus a minute)")

// vodFile is where the VOD step's file goes under a data dir.
func vodFile(dataDir string) string {
	return filepath.Join(dataDir, benchApp, "streams", "_definst_", benchStream+".flv")
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

// prepareVOD writes the step's file into the data dir of srv and returns
// a publisher that publishes nothing, so that the step runs as a live one
// does.
func prepareVOD(srv *serverProc, cfg *benchConfig, n int) (*publisher, error) {
	if srv.kind != kindRtmphub || srv.dir == "" {
		return nil, fmt.Errorf("-protocol vod: only a server the tool starts (-server rtmphub) has a data dir to write the file into")
	}
	path := vodFile(filepath.Join(srv.dir, "data"))
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
