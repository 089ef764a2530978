package hls

import (
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bluenviron/gohlslib/v2"
	"github.com/bluenviron/gohlslib/v2/pkg/codecs"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"

	"github.com/rtmphub/rtmphub/rtmp/message"
	"github.com/rtmphub/rtmphub/session/live"
)

// A muxer is the HLS side of one live stream: a live.Reader whose methods
// only queue (bounded, never blocking the publisher), and a goroutine, run,
// that drains the queue into a gohlslib.Muxer (an instance).
//
// Instances: run starts one once it knows the tracks (from the sequence
// headers; see maybeStart). A video sequence header of the same codec with
// new parameter sets goes to gohlslib in band (it starts a segment with a
// new init file); any other change of the codecs or of the set of tracks
// (an AAC configuration, H.264 to HEVC, a second track) replaces the
// instance by a new one, under a new segment prefix, with its media
// sequence numbers starting over: players get 404 for the old segments
// and must load the playlists again. The muxer itself ends,
// detaching its reader, when the stream is unpublished (readers hear of it
// after the stream's grace period; a publisher that takes over within it
// continues the timeline and needs nothing here), when no request came for
// Config.Idle, when its queue lost a sequence header, and on Manager.Close.
// A request for an ended muxer's stream attaches a new one, or gets 404
// when the stream is no longer live.
type muxer struct {
	mgr *Manager
	cfg *Config
	key string
	log *slog.Logger

	// The queue, filled by the stream's goroutines (Reader methods) and
	// drained by run. qMedia and qBytes count what Queue bounds; sequence
	// headers and events are bounded by maxControl apart, and one that
	// does not fit ends the muxer (qLost).
	qmu     sync.Mutex
	q       []item
	spare   []item
	qMedia  int
	qBytes  int
	qCtl    int
	qLost   bool
	wake    chan struct{} // capacity 1
	refused atomic.Uint64 // media refused: the stream skipped to a keyframe

	// Guarded by the stream's lock (Reader methods): the last sequence
	// header queued of each kind, and the first bad one, for run to log.
	lastVSeq, lastASeq []byte
	badSeq             atomic.Pointer[badSeq]

	stop     chan struct{} // closed to end run
	stopOnce sync.Once
	done     chan struct{} // closed when run ended and the reader is detached

	// attached is closed once attach returned; attachErr is its error.
	attached  chan struct{}
	attachErr error
	detach    func()

	lastReq  atomic.Int64 // unix nanoseconds of the last request
	inflight atomic.Int32 // requests being answered

	// The current instance, nil while there is none; instC is closed and
	// replaced whenever inst changes.
	imu   sync.Mutex
	inst  *instance
	instC chan struct{}

	// run's own state.
	video      *videoConfig // current decoder configurations
	aconf      *audioConfig
	pending    []item // media waiting for the tracks to be known
	au         [][]byte
	warned     map[string]bool
	lastEncLog time.Time
	encErrs    uint64
	unwrap     tsUnwrap
}

// item is one entry of a muxer's queue: a packet (with its timestamp on
// the reader's timeline), a sequence header parsed already, or, when all
// are nil, an event.
type item struct {
	pkt   *live.Packet
	ts    uint32
	vconf *videoConfig
	aconf *audioConfig
	ev    live.Event
}

// maxControl bounds the sequence headers and events queued at once; a
// publisher sends a handful per publication.
const maxControl = 64

// trackWait is how much media (by timestamps) a muxer holds while it
// waits for the sequence header of a second track before it starts with
// one: an audio-only or video-only stream starts this late.
const trackWait = time.Second

// blockTimeout bounds a request's wait for a playlist or a part: the
// first playlist of a muxer, and LL-HLS blocking reloads and preload
// hints, wait for media up to this long (or the request's context).
const blockTimeout = 10 * time.Second

// maxHandlers bounds the gohlslib handler goroutines of one muxer (the
// multivariant playlist, and the media playlists of the variants without
// parts; LL-HLS media playlists have none, see state.go): a request
// whose client left keeps its goroutine until gohlslib answers or the
// instance closes.
const maxHandlers = 1024

// encodeLogInterval is the shortest time between two log lines of one
// muxer's encode errors.
const encodeLogInterval = 10 * time.Second

// newMuxer makes the muxer of the stream key; Manager.muxer attaches it
// and starts run.
func newMuxer(mgr *Manager, key string) *muxer {
	return &muxer{
		mgr:      mgr,
		cfg:      &mgr.cfg,
		key:      key,
		log:      mgr.cfg.Log.With("stream", key),
		wake:     make(chan struct{}, 1),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
		attached: make(chan struct{}),
		instC:    make(chan struct{}),
		warned:   make(map[string]bool),
	}
}

// Send takes sequence headers (other data, metadata included, is of no
// use to HLS). It parses them here, on the publisher's goroutine (they
// are rare and small), so that a publisher repeating the same one, or
// sending garbage, queues nothing. It never blocks: a queue full of
// sequence headers ends the muxer.
func (mx *muxer) Send(pkt *live.Packet, ts uint32) {
	if pkt.Type != message.TypeAudio && pkt.Type != message.TypeVideo {
		return
	}
	if !pkt.Seq {
		mx.Queue(pkt, ts, true)
		return
	}
	video := pkt.Type == message.TypeVideo
	last := &mx.lastASeq
	if video {
		last = &mx.lastVSeq
	}
	if *last != nil && string(*last) == string(pkt.Payload) {
		return
	}
	it := item{ts: ts}
	var err error
	if video {
		var t videoTag
		if t, err = parseVideo(pkt.Payload); err == nil {
			if t.kind != kindConfig {
				return
			}
			it.vconf, err = parseVideoConfig(t.codec, t.data)
		}
	} else {
		var t audioTag
		if t, err = parseAudio(pkt.Payload); err == nil {
			if t.kind != kindConfig {
				return
			}
			it.aconf, err = parseAudioConfig(t.data)
		}
	}
	if err != nil {
		mx.mgr.badInput.Add(1)
		mx.badSeq.CompareAndSwap(nil, &badSeq{video, err})
		return
	}
	*last = pkt.Payload
	mx.push(it, true)
}

// Queue takes an audio or video packet unless the queue is full; force
// (the join burst, bounded by the stream's cache) always fits.
func (mx *muxer) Queue(pkt *live.Packet, ts uint32, force bool) bool {
	mx.qmu.Lock()
	if !force && (mx.qMedia >= mx.cfg.Queue || mx.qBytes+len(pkt.Payload) > mx.cfg.QueueBytes) {
		mx.qmu.Unlock()
		mx.refused.Add(1)
		mx.mgr.refused.Add(1)
		return false
	}
	mx.q = append(mx.q, item{pkt: pkt, ts: ts})
	mx.qMedia++
	mx.qBytes += len(pkt.Payload)
	mx.qmu.Unlock()
	return true
}

// Flush wakes run.
func (mx *muxer) Flush() {
	select {
	case mx.wake <- struct{}{}:
	default:
	}
}

// Notify queues the event behind the packets before it.
func (mx *muxer) Notify(ev live.Event) {
	mx.lastVSeq, mx.lastASeq = nil, nil
	mx.push(item{ev: ev}, true)
}

// badSeq is a sequence header Send could not use.
type badSeq struct {
	video bool
	err   error
}

// push queues a sequence header or an event and wakes run.
func (mx *muxer) push(it item, wake bool) {
	mx.qmu.Lock()
	if mx.qCtl >= maxControl {
		mx.qLost = true
	} else {
		mx.q = append(mx.q, it)
		mx.qCtl++
	}
	mx.qmu.Unlock()
	if wake {
		mx.Flush()
	}
}

// take returns what is queued, and whether something was lost.
func (mx *muxer) take() ([]item, bool) {
	mx.qmu.Lock()
	defer mx.qmu.Unlock()
	q := mx.q
	mx.q = mx.spare[:0]
	mx.spare = nil
	mx.qMedia, mx.qBytes, mx.qCtl = 0, 0, 0
	return q, mx.qLost
}

// giveBack returns take's slice for reuse, cleared so that it holds no
// payload.
func (mx *muxer) giveBack(q []item) {
	clear(q)
	mx.qmu.Lock()
	if mx.spare == nil && cap(q) <= 4*mx.cfg.Queue {
		mx.spare = q[:0]
	}
	mx.qmu.Unlock()
}

// end asks run to end.
func (mx *muxer) end() { mx.stopOnce.Do(func() { close(mx.stop) }) }

// touch records a request.
func (mx *muxer) touch() { mx.lastReq.Store(time.Now().UnixNano()) }

// run drains the queue into gohlslib until the muxer ends, then detaches
// the reader and closes the instance.
func (mx *muxer) run() {
	why := mx.loop()
	mx.mgr.forget(mx)
	if mx.detach != nil {
		mx.detach()
	}
	mx.setInstance(nil)
	q, _ := mx.take()
	clear(q)
	clear(mx.pending)
	mx.pending = nil
	mx.log.Info("HLS muxer closed", "reason", why, "refused", mx.refused.Load(), "encode_errors", mx.encErrs)
	close(mx.done)
}

// loop is run's body; it returns why the muxer ends.
func (mx *muxer) loop() string {
	tick := time.NewTicker(min(max(mx.cfg.Idle/4, 10*time.Millisecond), time.Second))
	defer tick.Stop()
	for {
		select {
		case <-mx.stop:
			return "closed"
		case <-tick.C:
			if mx.inflight.Load() == 0 && time.Since(time.Unix(0, mx.lastReq.Load())) >= mx.cfg.Idle {
				return "idle"
			}
			continue
		case <-mx.wake:
		}
		q, lost := mx.take()
		if lost {
			mx.giveBack(q)
			return "queue full of sequence headers"
		}
		for i := range q {
			if why := mx.handle(&q[i]); why != "" {
				mx.giveBack(q)
				return why
			}
		}
		mx.giveBack(q)
	}
}

// handle processes one queued item; it returns why the muxer ends, or "".
func (mx *muxer) handle(it *item) string {
	if b := mx.badSeq.Load(); b != nil && !mx.warned["bad seq"] {
		mx.warned["bad seq"] = true
		kind := "audio"
		if b.video {
			kind = "video"
		}
		mx.log.Warn(kind+" sequence header skipped", "error", b.err, "note", "logged once per muxer")
	}
	if it.vconf != nil || it.aconf != nil {
		mx.config(it)
		return ""
	}
	if it.pkt == nil {
		switch it.ev {
		case live.Unpublished:
			return "unpublished"
		case live.Published:
			mx.restart("published again")
			mx.video, mx.aconf = nil, nil
		}
		return ""
	}
	if mx.currentInstance() == nil {
		if len(mx.pending) >= mx.cfg.Queue {
			clear(mx.pending[:1])
			mx.pending = append(mx.pending[:0], mx.pending[1:]...)
		}
		mx.pending = append(mx.pending, *it)
		mx.maybeStart()
		return ""
	}
	mx.write(it)
	return ""
}

// config takes a sequence header: a new configuration replaces the
// instance that muxes with another, or without that track.
func (mx *muxer) config(it *item) {
	inst := mx.currentInstance()
	if c := it.vconf; c != nil {
		if mx.video != nil && string(mx.video.raw) == string(c.raw) {
			return
		}
		mx.video = c
		switch {
		case inst == nil:
		case inst.vconf != nil && isH264(inst.vconf.codec) == isH264(c.codec):
			// Same codec, new parameter sets: they go in band in front of
			// the next keyframe (withParameterSets), where gohlslib sees
			// them, starts a segment and makes a new init file. Players
			// keep their playlist.
			inst.vconf = c
			mx.log.Info("new video parameters, carried in band")
		default:
			mx.restart("new video sequence header")
		}
		return
	}
	c := it.aconf
	if mx.aconf != nil && string(mx.aconf.raw) == string(c.raw) {
		return
	}
	mx.aconf = c
	if inst != nil {
		mx.restart("new audio sequence header")
	}
}

// restart closes the current instance; the next media starts another.
func (mx *muxer) restart(why string) {
	if mx.currentInstance() == nil {
		return
	}
	mx.log.Info("HLS muxer restarts", "reason", why)
	mx.mgr.restarts.Add(1)
	mx.setInstance(nil)
}

// maybeStart starts an instance once the tracks are known: both
// sequence headers are in, or trackWait of media (or a full queue's
// worth) came with only one.
func (mx *muxer) maybeStart() {
	first, last := mx.pending[0].ts, mx.pending[len(mx.pending)-1].ts
	both := mx.video != nil && mx.aconf != nil
	waited := time.Duration(int32(last-first))*time.Millisecond >= trackWait || len(mx.pending) >= mx.cfg.Queue
	if !both && !waited {
		return
	}
	if mx.video == nil && mx.aconf == nil {
		mx.warn("no config", "media without a sequence header skipped", errors.New("no AVC, HEVC or AAC sequence header"))
		clear(mx.pending)
		mx.pending = mx.pending[:0]
		return
	}
	mx.warnMissingTrack()
	inst, err := mx.newInstance()
	if err != nil {
		mx.warn("start", "HLS muxer not started", err)
		clear(mx.pending)
		mx.pending = mx.pending[:0]
		return
	}
	mx.setInstance(inst)
	for i := range mx.pending {
		mx.write(&mx.pending[i])
	}
	clear(mx.pending)
	mx.pending = mx.pending[:0]
}

// warnMissingTrack says (once) why media the muxer waited with is left
// out: audio or video of a codec it does not mux (MP3, Opus, VP6, AV1...)
// or without a sequence header.
func (mx *muxer) warnMissingTrack() {
	for i := range mx.pending {
		pkt := mx.pending[i].pkt
		video := pkt.Type == message.TypeVideo
		if video && mx.video != nil || !video && mx.aconf != nil {
			continue
		}
		var err error
		if video {
			_, err = parseVideo(pkt.Payload)
		} else {
			_, err = parseAudio(pkt.Payload)
		}
		if err == nil {
			err = errors.New("no sequence header")
		}
		if video {
			mx.warn("video track", "video left out of HLS", err)
		} else {
			mx.warn("audio track", "audio left out of HLS", err)
		}
	}
}

// newInstance starts a gohlslib muxer with the known tracks.
func (mx *muxer) newInstance() (*instance, error) {
	inst := &instance{ready: make(chan struct{}), closed: make(chan struct{}), made: &mx.mgr.playlists, log: mx.log}
	hm := &gohlslib.Muxer{
		Variant:            mx.cfg.Variant,
		SegmentCount:       mx.cfg.SegmentCount,
		SegmentMinDuration: mx.cfg.SegmentMinDuration,
		PartMinDuration:    mx.cfg.PartMinDuration,
		SegmentMaxSize:     mx.cfg.SegmentMaxSize,
		OnEncodeError:      mx.encodeError,
	}
	if mx.video != nil {
		inst.vtrack = &gohlslib.Track{Codec: cloneVideoCodec(mx.video.codec), ClockRate: 90000}
		inst.vconf = mx.video
		hm.Tracks = append(hm.Tracks, inst.vtrack)
		inst.lead = "video1_stream.m3u8"
	}
	if mx.aconf != nil {
		c := *mx.aconf.codec
		inst.atrack = &gohlslib.Track{Codec: &c, ClockRate: c.SampleRate}
		inst.aconf = mx.aconf
		hm.Tracks = append(hm.Tracks, inst.atrack)
		if inst.lead == "" {
			inst.lead = "audio1_stream.m3u8"
		}
	}
	if mx.cfg.Variant == gohlslib.MuxerVariantMPEGTS {
		inst.lead = "main_stream.m3u8" // one stream of all tracks
	}
	inst.sentVconf = inst.vconf
	if err := hm.Start(); err != nil {
		return nil, err
	}
	inst.hm = hm
	inst.lowLatency = mx.cfg.Variant == gohlslib.MuxerVariantLowLatency
	inst.wall = time.Now()
	mx.mgr.instances.Add(1)
	go inst.waitReady()
	mx.log.Info("HLS muxer started", "video", inst.vtrack != nil, "audio", inst.atrack != nil)
	return inst, nil
}

// cloneVideoCodec copies a codec description: gohlslib updates the one it
// is given when parameter sets change in the stream.
func cloneVideoCodec(c codecs.Codec) codecs.Codec {
	switch c := c.(type) {
	case *codecs.H264:
		d := *c
		return &d
	case *codecs.H265:
		d := *c
		return &d
	}
	return c
}

// write hands one audio or video packet to the current instance.
func (mx *muxer) write(it *item) {
	inst := mx.currentInstance()
	pkt := it.pkt
	if len(pkt.Payload) > int(mx.cfg.SegmentMaxSize/2) {
		mx.warn("huge", "frame too large for a segment skipped", errors.New("frame of "+strconv.Itoa(len(pkt.Payload))+" bytes"))
		return
	}
	ms := mx.unwrap.ms(it.ts)
	if !inst.started {
		inst.started, inst.base = true, ms
	}
	rel := ms - inst.base
	ntp := inst.wall.Add(time.Duration(rel) * time.Millisecond)
	var err error
	if pkt.Type == message.TypeVideo {
		if inst.vtrack == nil {
			return
		}
		t, perr := parseVideo(pkt.Payload)
		if perr != nil {
			mx.warn("video", "video frame skipped", perr)
			return
		}
		if t.kind != kindFrame {
			return
		}
		if (t.codec == "avc1") != isH264(inst.vtrack.Codec) {
			mx.warn("video codec", "video frame skipped", errors.New("codec "+t.codec+" differs from its sequence header's"))
			return
		}
		mx.au, err = splitNALUs(mx.au[:0], t.data, inst.vconf.lengthSize)
		if err != nil {
			mx.warn("video", "video frame skipped", err)
			return
		}
		if len(mx.au) == 0 {
			return
		}
		mx.au = withParameterSets(mx.au, inst.vconf.codec)
		if len(mx.au) == 0 {
			return
		}
		pts := (rel + int64(t.cts)) * 90
		// An AU that brings gohlslib new parameter sets (the first
		// keyframe after a new sequence header) makes it change the
		// codec's description without its lock, which the multivariant
		// playlist reads under it (gohlslib v2.2.0, a data race the race
		// detector found): that write excludes playlist requests.
		newSets := inst.vconf != inst.sentVconf && len(mx.au) > 0 && isParameterSet(mx.au[0])
		if newSets {
			inst.codecMu.Lock()
		}
		if isH264(inst.vtrack.Codec) {
			err = inst.hm.WriteH264(inst.vtrack, ntp, pts, mx.au)
		} else {
			err = inst.hm.WriteH265(inst.vtrack, ntp, pts, mx.au)
		}
		if newSets {
			inst.sentVconf = inst.vconf
			inst.codecMu.Unlock()
		}
		clear(mx.au)
		if err == nil && inst.vtrack != nil {
			mx.probe(inst)
		}
	} else {
		if inst.atrack == nil {
			return
		}
		t, perr := parseAudio(pkt.Payload)
		if perr != nil {
			mx.warn("audio", "audio frame skipped", perr)
			return
		}
		if t.kind != kindFrame || len(t.data) == 0 {
			return
		}
		pts := inst.audioPTS(rel)
		err = inst.hm.WriteMPEG4Audio(inst.atrack, ntp, pts, [][]byte{t.data})
		if err == nil && inst.vtrack == nil {
			mx.probe(inst)
		}
	}
	if err != nil {
		mx.encodeError(err)
	}
}

// withParameterSets makes the sequence header the one source of
// parameter sets: it drops those in band and puts the sequence header's in
// front of every random access AU. gohlslib reads parameter sets in band
// only (its DTS extractor, and a change starts a segment with a new init
// file), RTMP encoders send them out of band, and junk ones in band would
// change the codec's description (a SPS of garbage that parsed once gave
// a playlist RESOLUTION=16x64). An encoder that changes its parameter
// sets in band only, without a sequence header, is not followed.
func withParameterSets(au [][]byte, c codecs.Codec) [][]byte {
	n := 0
	random := false
	switch c := c.(type) {
	case *codecs.H264:
		for _, nalu := range au {
			switch h264.NALUType(nalu[0] & 0x1f) {
			case h264.NALUTypeSPS, h264.NALUTypePPS:
				continue
			case h264.NALUTypeIDR:
				random = true
			}
			au[n] = nalu
			n++
		}
		clear(au[n:])
		au = au[:n]
		if random {
			au = append(au, nil, nil)
			copy(au[2:], au)
			au[0], au[1] = c.SPS, c.PPS
		}
	case *codecs.H265:
		for _, nalu := range au {
			switch typ := h265.NALUType((nalu[0] >> 1) & 0x3f); {
			case typ == h265.NALUType_VPS_NUT || typ == h265.NALUType_SPS_NUT || typ == h265.NALUType_PPS_NUT:
				continue
			case typ >= h265.NALUType_BLA_W_LP && typ <= h265.NALUType_CRA_NUT:
				random = true
			}
			au[n] = nalu
			n++
		}
		clear(au[n:])
		au = au[:n]
		if random {
			au = append(au, nil, nil, nil)
			copy(au[3:], au)
			au[0], au[1], au[2] = c.VPS, c.SPS, c.PPS
		}
	}
	return au
}

// audioPTS returns the PTS, in samples (the track's clock), of an AAC
// frame at rel ms. FLV timestamps are whole milliseconds: a frame of 1024
// samples at 44.1 kHz lasts 23.2 ms and comes 23 or 24 ms after the
// previous one. A frame within 20 ms of where the previous one ends is
// put there, so that every frame lasts exactly its samples (fMP4 sample
// durations, and LL-HLS parts of audio-only streams, come out even); one
// further off (a gap, or drift past 20 ms) keeps its timestamp.
func (inst *instance) audioPTS(rel int64) int64 {
	rate := int64(inst.atrack.ClockRate)
	pts := rel * rate / 1000
	if inst.audioStarted {
		samples := int64(1024)
		if inst.aconf.codec.FrameLengthFlag {
			samples = 960
		}
		next := inst.lastAudioPTS + samples
		switch d := pts - next; {
		case d > -rate/50 && d < rate/50:
			pts = next
		case pts <= inst.lastAudioPTS:
			pts = inst.lastAudioPTS + 1 // never back in time
		}
	}
	inst.lastAudioPTS, inst.audioStarted = pts, true
	return pts
}

// isParameterSet tells whether an H.264 or HEVC NAL unit is a parameter
// set; withParameterSets puts them first in a random access AU.
func isParameterSet(nalu []byte) bool {
	return h264.NALUType(nalu[0]&0x1f) == h264.NALUTypeSPS ||
		h265.NALUType((nalu[0]>>1)&0x3f) == h265.NALUType_VPS_NUT
}

// isH264 tells H.264 from HEVC.
func isH264(c codecs.Codec) bool {
	_, ok := c.(*codecs.H264)
	return ok
}

// encodeError counts an error of gohlslib and logs at most every
// encodeLogInterval.
func (mx *muxer) encodeError(err error) {
	mx.encErrs++
	mx.mgr.encodeErrors.Add(1)
	if now := time.Now(); now.Sub(mx.lastEncLog) >= encodeLogInterval {
		mx.log.Warn("HLS encode error", "error", err, "errors", mx.encErrs)
		mx.lastEncLog = now
	}
}

// warn counts bad input and logs the first of each kind.
func (mx *muxer) warn(kind, msg string, err error) {
	mx.mgr.badInput.Add(1)
	if !mx.warned[kind] {
		mx.warned[kind] = true
		mx.log.Warn(msg, "error", err, "note", "logged once per muxer")
	}
}

// probe learns, after a write to the leading track, whether a part was
// finished (LL-HLS only): the requests that wait for it are answered
// from the new state. It reads one playlist per frame of the leading
// track.
func (mx *muxer) probe(inst *instance) {
	if !inst.lowLatency {
		return
	}
	select {
	case <-inst.ready:
		inst.update()
	default:
	}
}

// currentInstance returns the instance, nil when there is none.
func (mx *muxer) currentInstance() *instance {
	mx.imu.Lock()
	defer mx.imu.Unlock()
	return mx.inst
}

// setInstance replaces the instance (closing the old one) and wakes the
// requests that wait for one.
func (mx *muxer) setInstance(inst *instance) {
	mx.imu.Lock()
	old := mx.inst
	mx.inst = inst
	close(mx.instC)
	mx.instC = make(chan struct{})
	mx.imu.Unlock()
	if old != nil {
		old.close()
	}
}

// instanceOrWait returns the instance, or the channel closed when it
// changes.
func (mx *muxer) instanceOrWait() (*instance, <-chan struct{}) {
	mx.imu.Lock()
	defer mx.imu.Unlock()
	return mx.inst, mx.instC
}

// tsUnwrap extends the reader's 32-bit millisecond timestamps to 64 bits.
type tsUnwrap struct {
	started bool
	last    uint32
	ext     int64
}

// ms returns ts extended, taking a step back of up to 2^31 ms as one.
func (u *tsUnwrap) ms(ts uint32) int64 {
	if !u.started {
		u.started, u.last, u.ext = true, ts, int64(ts)
		return u.ext
	}
	u.ext += int64(int32(ts - u.last))
	u.last = ts
	return u.ext
}

// instance is one gohlslib muxer of a muxer, with what requests need
// to know of it without blocking in gohlslib.
type instance struct {
	hm             *gohlslib.Muxer
	vtrack, atrack *gohlslib.Track
	vconf          *videoConfig
	aconf          *audioConfig
	lead           string         // media playlist of the leading stream
	made           *atomic.Uint64 // the Manager's count of playlists made for requests
	log            *slog.Logger

	// sentVconf is the video configuration whose parameter sets gohlslib
	// has (run's own); codecMu excludes multivariant playlist requests
	// (read lock) while gohlslib takes new ones (see write).
	sentVconf  *videoConfig
	codecMu    sync.RWMutex
	lowLatency bool
	wall       time.Time // wall clock of base, for EXT-X-PROGRAM-DATE-TIME

	// run's own.
	started      bool
	base         int64 // ms of the first packet written
	lastAudioPTS int64
	audioStarted bool

	ready  chan struct{} // closed once gohlslib has a playlist
	closed chan struct{} // closed with hm

	// st is the LL-HLS state (see state.go), replaced under pmu when
	// the preload hint grows; nil before the instance is ready.
	pmu sync.Mutex
	st  atomic.Pointer[state]

	// parts holds the bytes of recent complete parts, by name (parts.go).
	partsMu sync.Mutex
	parts   map[string]*partEntry

	handlers atomic.Int32 // gohlslib handler goroutines running
	closeMu  sync.Once
}

// waitReady asks gohlslib for the leading media playlist, which it
// answers once the first segment exists (as the multivariant one), or when
// closed: it blocks in gohlslib (which ignores the request's context), so
// requests wait on ready rather than in gohlslib. The media playlist does
// not read the codec's description, which needs codecMu, which must not
// be held while waiting for media. An LL-HLS instance has its first state
// before it is ready.
func (inst *instance) waitReady() {
	rec := &bufferWriter{header: make(http.Header)}
	inst.hm.Handle(rec, internalRequest(inst.lead))
	if rec.code == http.StatusOK {
		if inst.lowLatency {
			inst.publish(rec.body.Bytes())
		}
		close(inst.ready)
	}
}

// close closes the gohlslib muxer: requests waiting in it get 500.
func (inst *instance) close() {
	inst.closeMu.Do(func() {
		inst.hm.Close()
		close(inst.closed)
	})
}

// preloadHint returns the part number of a playlist's
// EXT-X-PRELOAD-HINT, -1 when it has none.
func preloadHint(pl string) int64 {
	i := strings.Index(pl, "#EXT-X-PRELOAD-HINT:")
	if i < 0 {
		return -1
	}
	line := pl[i:]
	if j := strings.IndexByte(line, '\n'); j >= 0 {
		line = line[:j]
	}
	j := strings.Index(line, "URI=\"")
	if j < 0 {
		return -1
	}
	uri := line[j+5:]
	if k := strings.IndexAny(uri, "\"?"); k >= 0 {
		uri = uri[:k]
	}
	if _, n, ok := partName(uri); ok {
		return n
	}
	return -1
}

// partName splits the name of an LL-HLS part, "<prefix>_<stream>_part<N>.mp4"
// as gohlslib names them, into its stream id and number.
func partName(file string) (stream string, n int64, ok bool) {
	base, found := strings.CutSuffix(file, ".mp4")
	if !found {
		return "", 0, false
	}
	i := strings.LastIndex(base, "_part")
	if i < 0 {
		return "", 0, false
	}
	n, err := strconv.ParseInt(base[i+5:], 10, 64)
	if err != nil || n < 0 {
		return "", 0, false
	}
	head := base[:i]
	j := strings.IndexByte(head, '_')
	if j < 0 {
		return "", 0, false
	}
	return head[j+1:], n, true
}

// internalRequest is a GET of file for the muxer's own questions to
// gohlslib.
func internalRequest(file string) *http.Request {
	return &http.Request{Method: http.MethodGet, URL: &url.URL{Path: "/" + file}, Header: make(http.Header)}
}
