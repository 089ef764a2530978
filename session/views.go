package session

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/rtmphub/rtmphub/rtmp/amf"
	"github.com/rtmphub/rtmphub/session/live"
	"github.com/rtmphub/rtmphub/session/vod"
)

// Admin views: the questions the admin API asks the core, as plain method
// calls returning snapshots. Each takes the locks it needs briefly and
// copies; nothing returned shares memory with the running server.

// ServerView is the server as a whole.
type ServerView struct {
	StartedAt       time.Time      `json:"started_at"`
	UptimeSeconds   float64        `json:"uptime_seconds"`
	Connections     int64          `json:"connections"`
	ByProtocol      map[string]int `json:"connections_by_protocol"`
	Accepted        uint64         `json:"connections_accepted"`
	Rejected        uint64         `json:"connections_rejected"`
	AuthDenied      uint64         `json:"auth_denied"`
	SlowDisconnects uint64         `json:"slow_disconnects"`
	DroppedMessages uint64         `json:"dropped_messages"`
	BytesIn         uint64         `json:"bytes_in"`
	BytesOut        uint64         `json:"bytes_out"`
	// Rates are bits per second over the time since the previous
	// Overview call (at least a second), or since the start.
	BitrateIn  float64 `json:"bitrate_in"`
	BitrateOut float64 `json:"bitrate_out"`
	Instances  int     `json:"instances"`
	Streams    int     `json:"streams"`
	// Viewers counts the readers that are not RTMP clients (HTTP-FLV,
	// WebSocket-FLV, HLS), by protocol.
	Viewers map[string]int `json:"viewers_by_protocol"`
}

// ClientView is one connected client.
type ClientView struct {
	ID          uint64             `json:"id"`
	IP          string             `json:"ip"`
	Protocol    string             `json:"protocol"`
	TunnelID    string             `json:"rtmpt_session_id,omitempty"`
	App         string             `json:"app,omitempty"`
	Instance    string             `json:"instance,omitempty"`
	Agent       string             `json:"agent,omitempty"`
	Connected   bool               `json:"connected"` // the connect command succeeded
	ConnectedAt time.Time          `json:"connected_at"`
	BytesIn     uint64             `json:"bytes_in"`
	BytesOut    uint64             `json:"bytes_out"`
	Streams     []ClientStreamView `json:"streams"`
}

// ClientStreamView is a live stream a client publishes or plays.
type ClientStreamView struct {
	Name string `json:"name"`
	Role string `json:"role"` // "publish" or "play"
}

// StreamView is one live stream of an instance.
type StreamView struct {
	App       string `json:"app"`
	Instance  string `json:"instance"`
	Name      string `json:"name"`
	Publisher uint64 `json:"publisher,omitempty"` // client id; 0 when none
	// Pulled: the stream is pulled from the hub that publishes it (a
	// cluster's edge; see GET /api/v1/cluster for its origin).
	Pulled      bool      `json:"pulled,omitempty"`
	PublishType string    `json:"publish_type,omitempty"`
	PublishedAt time.Time `json:"published_at,omitzero"`
	Recording   bool      `json:"recording"`
	VideoCodec  string    `json:"video_codec,omitempty"`
	AudioCodec  string    `json:"audio_codec,omitempty"`
	Width       int       `json:"width,omitempty"`
	Height      int       `json:"height,omitempty"`
	FPS         float64   `json:"fps,omitempty"`
	// Bitrate is the measured input in bits per second: over the time
	// since the previous Streams call (at least a second), or since the
	// publish started.
	Bitrate  float64  `json:"bitrate"`
	Bytes    uint64   `json:"bytes"`
	Messages uint64   `json:"messages"`
	Players  []uint64 `json:"players"` // client ids
	// Viewers counts the stream's readers by protocol: RTMP players under
	// their connection's (rtmp, rtmpt, rtmps, ...), the server's own
	// players under "server", and those Watch attached under theirs
	// (http-flv, ws-flv, hls).
	Viewers map[string]int `json:"viewers"`
}

// InstanceView is a running application instance.
type InstanceView struct {
	App     string `json:"app"`
	Name    string `json:"name"`
	Clients int    `json:"clients"`
	Streams int    `json:"streams"`
}

// AppView is an application with its running instances.
type AppView struct {
	Name      string         `json:"name"`
	Instances []InstanceView `json:"instances"`
}

// SharedObjectView is one SharedObject.
type SharedObjectView struct {
	App         string `json:"app"`
	Instance    string `json:"instance"`
	Name        string `json:"name"`
	Persistent  bool   `json:"persistent"`
	Version     uint32 `json:"version"`
	Subscribers int    `json:"subscribers"`
	Size        int    `json:"size"`
	// Slots are the current values, as JSON (AMF objects and arrays as
	// objects and arrays, undefined as null); only when asked for.
	Slots map[string]any `json:"slots,omitempty"`
}

// viewState keeps what the views need between calls: the start time and
// the previous samples that rates are measured against.
type viewState struct {
	startedAt time.Time

	mu      sync.Mutex
	server  rateSample
	streams map[*live.Publication]rateSample
}

type rateSample struct {
	at      time.Time
	in, out uint64
	rateIn  float64
	rateOut float64
}

// minRateWindow is the shortest interval a rate is measured over; calls
// closer together reuse the last measurement.
const minRateWindow = time.Second

// advance returns the rates from prev to (now, in, out) and the sample to
// keep for the next call.
func (prev rateSample) advance(now time.Time, in, out uint64) rateSample {
	d := now.Sub(prev.at)
	if d < minRateWindow && !prev.at.IsZero() && (prev.rateIn != 0 || prev.rateOut != 0) {
		return prev
	}
	if d <= 0 {
		return prev
	}
	s := rateSample{at: now, in: in, out: out}
	s.rateIn = float64(in-min(in, prev.in)) * 8 / d.Seconds()
	s.rateOut = float64(out-min(out, prev.out)) * 8 / d.Seconds()
	return s
}

func (s *Server) allClients() []*Client {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*Client, 0, len(s.clients))
	for _, c := range s.clients {
		out = append(out, c)
	}
	return out
}

func (s *Server) allInstances() []*Instance {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*Instance, 0, len(s.instances))
	for _, in := range s.instances {
		out = append(out, in)
	}
	slices.SortFunc(out, func(a, b *Instance) int {
		return strings.Compare(a.app+"/"+a.name, b.app+"/"+b.name)
	})
	return out
}

func (in *Instance) streamList() []*live.Stream {
	in.mu.Lock()
	defer in.mu.Unlock()
	out := make([]*live.Stream, 0, len(in.streams))
	for _, st := range in.streams {
		out = append(out, st)
	}
	slices.SortFunc(out, func(a, b *live.Stream) int { return strings.Compare(a.Name(), b.Name()) })
	return out
}

// Overview returns the server's totals.
func (s *Server) Overview() ServerView {
	now := time.Now()
	v := ServerView{
		StartedAt:       s.views.startedAt,
		UptimeSeconds:   now.Sub(s.views.startedAt).Seconds(),
		Connections:     s.stats.Connections.Load(),
		ByProtocol:      make(map[string]int),
		Accepted:        s.stats.Accepted.Load(),
		Rejected:        s.stats.Rejected.Load(),
		AuthDenied:      s.stats.AuthDenied.Load(),
		SlowDisconnects: s.stats.SlowDisconnects.Load(),
		DroppedMessages: s.stats.DroppedMessages.Load(),
		BytesIn:         s.stats.BytesIn.Load(),
		BytesOut:        s.stats.BytesOut.Load(),
		Viewers:         s.Viewers(),
	}
	for _, c := range s.allClients() {
		v.ByProtocol[c.info.Protocol]++
		v.BytesIn += c.bytesIn.Load()
		v.BytesOut += c.t.BytesWritten()
	}
	for _, in := range s.allInstances() {
		v.Instances++
		v.Streams += len(in.streamList())
	}
	s.views.mu.Lock()
	if s.views.server.at.IsZero() {
		s.views.server = rateSample{at: s.views.startedAt}
	}
	s.views.server = s.views.server.advance(now, v.BytesIn, v.BytesOut)
	v.BitrateIn, v.BitrateOut = s.views.server.rateIn, s.views.server.rateOut
	s.views.mu.Unlock()
	return v
}

// Clients returns every client, connected or still connecting, by id.
func (s *Server) Clients() []ClientView {
	roles := make(map[uint64][]ClientStreamView)
	type member struct {
		app, inst, agent string
	}
	members := make(map[uint64]member)
	for _, in := range s.allInstances() {
		// A client's app and agent are written before it joins its
		// instance and never after: reading them under the instance's
		// lock is safe.
		in.mu.Lock()
		for id, c := range in.clients {
			members[id] = member{in.app, in.name, c.agent}
		}
		in.mu.Unlock()
		for _, st := range in.streamList() {
			snap := st.Snapshot()
			if id, ok := publisherID(snap.Publication); ok {
				roles[id] = append(roles[id], ClientStreamView{Name: st.Name(), Role: "publish"})
			}
			for _, id := range playerIDs(snap.Readers) {
				roles[id] = append(roles[id], ClientStreamView{Name: st.Name(), Role: "play"})
			}
		}
	}
	clients := s.allClients()
	out := make([]ClientView, 0, len(clients))
	for _, c := range clients {
		v := ClientView{
			ID: c.id, IP: c.ip, Protocol: c.info.Protocol, TunnelID: c.info.TunnelID,
			ConnectedAt: c.connectedAt, BytesIn: c.bytesIn.Load(), BytesOut: c.t.BytesWritten(),
			Streams: roles[c.id],
		}
		if m, ok := members[c.id]; ok {
			v.Connected, v.App, v.Instance, v.Agent = true, m.app, m.inst, m.agent
		}
		if v.Streams == nil {
			v.Streams = []ClientStreamView{}
		}
		out = append(out, v)
	}
	slices.SortFunc(out, func(a, b ClientView) int {
		switch {
		case a.ID < b.ID:
			return -1
		case a.ID > b.ID:
			return 1
		}
		return 0
	})
	return out
}

// Streams returns every live stream of every instance.
func (s *Server) Streams() []StreamView {
	now := time.Now()
	var out []StreamView
	seen := make(map[*live.Publication]bool)
	s.views.mu.Lock()
	defer s.views.mu.Unlock()
	if s.views.streams == nil {
		s.views.streams = make(map[*live.Publication]rateSample)
	}
	for _, in := range s.allInstances() {
		for _, st := range in.streamList() {
			snap := st.Snapshot()
			v := StreamView{App: in.app, Instance: in.name, Name: st.Name(), Players: playerIDs(snap.Readers),
				Viewers: viewersByProtocol(snap.Readers)}
			if s.watching.extra != nil {
				for p, n := range s.watching.extra(in.app, in.name, st.Name()) {
					v.Viewers[p] += n
				}
			}
			v.VideoCodec = seqCodecs(snap.VideoSeq)
			v.AudioCodec = seqCodecs(snap.AudioSeq)
			if snap.Meta != nil {
				v.applyMetadata(snap.Meta)
			}
			if p := snap.Publication; p != nil {
				seen[p] = true
				v.PublishType, v.PublishedAt = p.Type(), p.StartedAt()
				v.Publisher, _ = publisherID(p) // 0: published by the server (script_hook.go) or pulled
				_, v.Pulled = p.Source().(*pullSource)
				v.Recording = v.PublishType == "record" || v.PublishType == "append"
				v.Messages, v.Bytes = p.Counts()
				prev, ok := s.views.streams[p]
				if !ok {
					prev = rateSample{at: p.StartedAt()}
				}
				cur := prev.advance(now, v.Bytes, 0)
				s.views.streams[p] = cur
				v.Bitrate = cur.rateIn
			}
			slices.Sort(v.Players)
			out = append(out, v)
		}
	}
	for p := range s.views.streams {
		if !seen[p] {
			delete(s.views.streams, p)
		}
	}
	if out == nil {
		out = []StreamView{}
	}
	return out
}

// seqCodecs names the codecs of a stream's sequence headers, keyed by
// track key and codec (see Stream.writePacket).
func seqCodecs(names []string) string {
	slices.Sort(names)
	return strings.Join(names, ",")
}

// publisherID is the id of the client that publishes p, if a client does.
func publisherID(p *live.Publication) (uint64, bool) {
	if p == nil {
		return 0, false
	}
	if pub, ok := p.Source().(*publisher); ok {
		return pub.c.id, true
	}
	return 0, false
}

// playerIDs are the ids of the players among readers, sorted: clients',
// and the server-side players', which have ids of the same series.
func playerIDs(readers []live.Reader) []uint64 {
	ids := make([]uint64, 0, len(readers))
	for _, r := range readers {
		switch pl := r.(type) {
		case *player:
			ids = append(ids, pl.c.id)
		case *ServerPlayer:
			ids = append(ids, pl.id)
		}
	}
	slices.Sort(ids)
	return ids
}

// viewersByProtocol counts readers by the protocol they watch with.
func viewersByProtocol(readers []live.Reader) map[string]int {
	m := make(map[string]int)
	for _, r := range readers {
		switch pl := r.(type) {
		case *player:
			m[pl.c.info.Protocol]++
		case *ServerPlayer:
			m["server"]++
		case *watcher:
			m[pl.protocol]++
		case Viewer:
			m[pl.Protocol()]++
		}
	}
	return m
}

// applyMetadata reads width, height, frame rate and, when no sequence
// header named them, the codecs from an onMetaData payload.
func (v *StreamView) applyMetadata(payload []byte) {
	d := amf.NewDecoder(payload)
	if _, err := d.DecodeAMF0(); err != nil { // "onMetaData"
		return
	}
	val, err := d.DecodeAMF0()
	if err != nil {
		return
	}
	var get func(string) (any, bool)
	switch o := val.(type) {
	case amf.ECMAArray:
		get = o.Get
	case amf.Object:
		get = o.Get
	default:
		return
	}
	num := func(k string) float64 {
		x, _ := get(k)
		n, _ := amf.Number(x)
		return n
	}
	v.Width, v.Height, v.FPS = int(num("width")), int(num("height")), num("framerate")
	if v.FPS == 0 {
		v.FPS = num("videoframerate")
	}
	if v.VideoCodec == "" {
		if x, ok := get("videocodecid"); ok {
			if s, ok := x.(string); ok {
				v.VideoCodec = s
			}
		}
	}
	if v.AudioCodec == "" {
		if x, ok := get("audiocodecid"); ok {
			if s, ok := x.(string); ok {
				v.AudioCodec = s
			}
		}
	}
}

// Apps returns the applications that have running instances.
func (s *Server) Apps() []AppView {
	var out []AppView
	for _, in := range s.allInstances() {
		in.mu.Lock()
		iv := InstanceView{App: in.app, Name: in.name, Clients: len(in.clients), Streams: len(in.streams)}
		in.mu.Unlock()
		if n := len(out); n == 0 || out[n-1].Name != in.app {
			out = append(out, AppView{Name: in.app})
		}
		out[len(out)-1].Instances = append(out[len(out)-1].Instances, iv)
	}
	if out == nil {
		out = []AppView{}
	}
	return out
}

// SharedObjects returns the SharedObjects of every instance, sorted by
// app, instance and name.
func (s *Server) SharedObjects() []SharedObjectView { return s.sharedObjects(false) }

// SharedObjectsWithSlots is SharedObjects with every object's slots.
func (s *Server) SharedObjectsWithSlots() []SharedObjectView { return s.sharedObjects(true) }

func (s *Server) sharedObjects(slots bool) []SharedObjectView {
	s.mu.Lock()
	ins := make([]*Instance, 0, len(s.instances))
	for _, in := range s.instances {
		ins = append(ins, in)
	}
	s.mu.Unlock()
	out := []SharedObjectView{}
	for _, in := range ins {
		for _, so := range in.so.Objects() {
			i := so.Info()
			v := SharedObjectView{App: in.app, Instance: in.name, Name: i.Name, Persistent: i.Persistent,
				Version: i.Version, Subscribers: i.Subscribers, Size: i.Size}
			if slots {
				v.Slots = make(map[string]any)
				for _, k := range so.Names() {
					if val, ok := so.Get(k); ok {
						v.Slots[k] = jsonValue(val, 0)
					}
				}
			}
			out = append(out, v)
		}
	}
	slices.SortFunc(out, func(a, b SharedObjectView) int {
		return cmp.Or(cmp.Compare(a.App, b.App), cmp.Compare(a.Instance, b.Instance), cmp.Compare(a.Name, b.Name))
	})
	return out
}

// ErrNotFound is returned by the admin actions for an unknown client,
// stream or instance.
var ErrNotFound = errors.New("session: not found")

// DisconnectClient ends client id with reason.
func (s *Server) DisconnectClient(id uint64, reason string) error {
	s.mu.Lock()
	c := s.clients[id]
	s.mu.Unlock()
	if c == nil {
		return ErrNotFound
	}
	c.close(errors.New(reason))
	return nil
}

// StopStream unpublishes the live stream app/inst/name: its players get
// NetStream.Play.UnpublishNotify at once (and stay attached for a later
// publisher, as in FMS), and its publisher is disconnected with reason so
// that the encoder stops sending. It returns ErrNotFound when the stream
// has no publisher.
func (s *Server) StopStream(app, inst, name, reason string) error {
	s.mu.Lock()
	in := s.instances[app+"/"+inst]
	s.mu.Unlock()
	if in == nil {
		return ErrNotFound
	}
	in.mu.Lock()
	st := in.streams[name]
	in.mu.Unlock()
	if st == nil {
		return ErrNotFound
	}
	p := st.Publication()
	if p == nil {
		return ErrNotFound
	}
	p.Close(true)
	if pub, ok := p.Source().(*publisher); ok {
		pub.c.close(errors.New(reason)) // its cleanup logs the unpublish
	}

	return nil
}

// UnloadInstance disconnects every client of instance app/inst; the
// instance stops when its last client has left. It returns the number of
// clients disconnected.
func (s *Server) UnloadInstance(app, inst, reason string) (int, error) {
	s.mu.Lock()
	in := s.instances[app+"/"+inst]
	s.mu.Unlock()
	if in == nil {
		return 0, ErrNotFound
	}
	in.mu.Lock()
	clients := make([]*Client, 0, len(in.clients))
	for _, c := range in.clients {
		clients = append(clients, c)
	}
	in.mu.Unlock()
	for _, c := range clients {
		c.close(errors.New(reason))
	}
	return len(clients), nil
}

// jsonValue turns an AMF value into one encoding/json writes plainly:
// objects and ECMA arrays as objects, undefined as null. depth bounds the
// recursion (a SharedObject's values are bounded in size, not in depth).
func jsonValue(v any, depth int) any {
	if depth > 32 {
		return nil
	}
	switch x := v.(type) {
	case amf.Object:
		m := make(map[string]any, len(x))
		for _, p := range x {
			m[p.Key] = jsonValue(p.Value, depth+1)
		}
		return m
	case amf.ECMAArray:
		m := make(map[string]any, len(x))
		for _, p := range x {
			m[p.Key] = jsonValue(p.Value, depth+1)
		}
		return m
	case amf.TypedObject:
		m, _ := jsonValue(x.Props, depth).(map[string]any)
		return m
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = jsonValue(e, depth+1)
		}
		return out
	case amf.Undefined:
		return nil
	case nil, bool, float64, string, int, int32, uint32, int64, time.Time:
		return x
	}
	return fmt.Sprint(v)
}

// maxListedFiles bounds the stream files Recordings lists.
const maxListedFiles = 1000

// Recordings lists the stream files in the applications' streams folders
// (recorded streams, and files put there to play), newest first, at most
// 1000; those being recorded now say so.
func (s *Server) Recordings() []vod.StoredFile {
	out := s.media.List(maxListedFiles)
	if out == nil {
		out = []vod.StoredFile{}
	}
	return out
}
