package session

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/rtmphub/rtmphub/rtmp/amf"
	"github.com/rtmphub/rtmphub/rtmp/message"
	"github.com/rtmphub/rtmphub/session/live"
)

// handle processes one message from the client on its reader goroutine. An
// error ends the client.
func (c *Client) handle(m *message.Message) error {
	switch m.Type {
	case message.TypeCommandAMF0, message.TypeCommandAMF3:
		cmd, err := message.DecodeCommand(m)
		if err != nil {
			return fmt.Errorf("bad command message: %w", err)
		}
		return c.command(m.StreamID, cmd)
	case message.TypeAudio, message.TypeVideo, message.TypeDataAMF0, message.TypeDataAMF3:
		ns := c.streams[m.StreamID]
		if ns == nil || ns.pub == nil {
			return nil // media or data on a stream that does not publish: ignored, as FMS does
		}
		if c.publishTimeout {
			c.t.SetReadDeadline(time.Now().Add(c.srv.cfg.PublisherIdleTimeout))
		}
		ns.pub.Write(m)
		return nil
	case message.TypeAggregate:
		subs, err := message.SplitAggregate(m)
		if err != nil {
			return fmt.Errorf("bad aggregate message: %w", err)
		}
		for _, sm := range subs {
			if sm.Type == message.TypeAggregate {
				return errors.New("nested aggregate message")
			}
			if err := c.handle(sm); err != nil {
				return err
			}
		}
		return nil
	case message.TypeUserControl:
		uc, err := message.DecodeUserControl(m.Payload)
		if err != nil {
			return fmt.Errorf("bad user control message: %w", err)
		}
		switch uc.Event {
		case message.UCPingRequest:
			c.send(*message.UserControl{Event: message.UCPingResponse, StreamID: uc.StreamID}.Message())
		case message.UCPingResponse:
			c.pingAnswered(uc.StreamID)
		case message.UCSetBufferLength:
			c.bufferLength.Store(uc.BufferLength)
		}
		return nil
	case message.TypeSharedObjectAMF0, message.TypeSharedObjectAMF3:
		return c.sharedObjectMessage(m)
	default:
		// Chunk-level control (chunk size, abort, acks, window) is handled
		// by the transport.
		return nil
	}
}

// command dispatches a command. Before connect only connect is accepted.
func (c *Client) command(msid uint32, cmd *message.Command) error {
	if !c.connected {
		if cmd.Name != "connect" {
			return fmt.Errorf("%q before connect", cmd.Name)
		}
		return c.connect(cmd)
	}
	switch cmd.Name {
	case "connect":
		c.sendError(cmd.TransactionID, "NetConnection.Connect.Rejected", "Already connected.")
	case "createStream":
		c.createStream(cmd)
	case "releaseStream":
		c.sendResult(cmd.TransactionID, amf.Undefined{})
	case "FCPublish":
		name, _ := cmd.Arg(0).(string)
		c.sendResult(cmd.TransactionID, amf.Undefined{})
		c.sendCommand(0, &message.Command{Name: "onFCPublish", Args: []any{info(levelStatus, "NetStream.Publish.Start", streamName(name)+" is now published.", amf.Property{Key: "details", Value: streamName(name)})}})
	case "FCUnpublish":
		name, _ := cmd.Arg(0).(string)
		c.sendResult(cmd.TransactionID, amf.Undefined{})
		c.sendCommand(0, &message.Command{Name: "onFCUnpublish", Args: []any{info(levelStatus, "NetStream.Unpublish.Success", streamName(name)+" is now unpublished.", amf.Property{Key: "details", Value: streamName(name)})}})
		c.fcUnpublish(streamName(name))
	case "FCSubscribe":
		name, _ := cmd.Arg(0).(string)
		c.sendResult(cmd.TransactionID, amf.Undefined{})
		c.sendCommand(0, &message.Command{Name: "onFCSubscribe", Args: []any{info(levelStatus, "NetStream.Play.Start", "Started playing "+streamName(name)+".")}})
	case "FCUnsubscribe":
		c.sendResult(cmd.TransactionID, amf.Undefined{})
	case "getStreamLength":
		name, _ := cmd.Arg(0).(string)
		c.sendResult(cmd.TransactionID, c.streamLength(name))
	case "_checkbw":
		c.sendResult(cmd.TransactionID, amf.Undefined{})
	case "publish":
		return c.publish(msid, cmd)
	case "play":
		return c.play(msid, cmd)
	case "deleteStream":
		c.deleteStream(cmd)
	case "closeStream":
		c.closeStream(msid, cmd)
	case "pause", "pauseRaw":
		c.pause(msid, cmd)
	case "seek":
		if ns := c.streams[msid]; ns != nil && ns.vod != nil {
			ms, _ := amf.Number(cmd.Arg(0))
			ns.vod.SeekTo(int64(max(0, min(ms, math.MaxInt32))))
			break
		}
		c.sendStatus(msid, levelError, "NetStream.Seek.Failed", "Seeking is not supported on a live stream.", "")
	case "receiveAudio", "receiveVideo":
		if ns := c.streams[msid]; ns != nil && ns.player != nil {
			on, _ := cmd.Arg(0).(bool)
			ns.player.SetReceive(cmd.Name == "receiveVideo", on)
		} else if ns != nil && ns.vod != nil {
			on, _ := cmd.Arg(0).(bool)
			ns.vod.SetReceive(cmd.Name == "receiveVideo", on)
		}
	case "_result", "_error":
		c.resolve(cmd) // replies to server-to-client calls (rpc.go)
	case "onBWCheck", "onBWDone":
	case "checkBandwidth":
		if c.srv.cfg.DisableBWCheck {
			c.invoke(cmd)
			break
		}
		c.sendResult(cmd.TransactionID, nil)
		c.checkBandwidth()
	default:
		c.invoke(cmd) // the application's methods (rpc.go)
	}
	return nil
}

var (
	appNameRE  = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]*$`)
	instNameRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]*(/[A-Za-z0-9_][A-Za-z0-9_.-]*)*$`)
)

// splitApp splits a connect app field "app[/instance][?query]".
func splitApp(s string) (app, inst, query string) {
	if i := strings.IndexByte(s, '?'); i >= 0 {
		s, query = s[:i], s[i+1:]
	}
	s = strings.Trim(s, "/")
	app, inst, _ = strings.Cut(s, "/")
	if inst == "" {
		inst = "_definst_"
	}
	return app, inst, query
}

// connect answers the connect command as FMS does.
func (c *Client) connect(cmd *message.Command) error {
	obj, _ := cmd.Object.(amf.Object)
	get := func(k string) string {
		v, _ := obj.Get(k)
		s, _ := v.(string)
		return s
	}
	rawApp := get("app")
	c.tcURL = get("tcUrl")
	c.agent = get("flashVer")
	c.pageURL = get("pageUrl")
	c.swfURL = get("swfUrl")
	if v, ok := obj.Get("objectEncoding"); ok {
		if n, _ := amf.Number(v); n == 3 {
			c.amf3 = true
		}
	}
	if _, ok := obj.Get("fourCcList"); ok {
		c.enhanced = true
	}
	app, inst, query := splitApp(rawApp)
	c.app, c.query = app, query
	log := c.log.With("app", app, "instance", inst)

	var appInfo any // the application's rejection info object (script_hook.go)
	reject := func(desc string) error {
		c.srv.stats.Rejected.Add(1)
		c.sendCommand(0, &message.Command{Name: "_error", TransactionID: cmd.TransactionID, Args: []any{
			rejectInfo(desc, appInfo)}})
		c.closeWhenWritten(errors.New("connection rejected"))
		log.Info("connect rejected", "reason", desc, "tcUrl", c.tcURL)
		c.accessLog("connect", "instance", inst, "allowed", false, "reason", desc)
		return nil
	}
	if !appNameRE.MatchString(app) || !instNameRE.MatchString(inst) || strings.Contains(inst, "..") || app == ".." {
		return reject(fmt.Sprintf("Invalid application name (%s).", rawApp))
	}
	if c.srv.cfg.StrictApps {
		if fi, err := os.Stat(filepath.Join(c.srv.cfg.DataDir, app)); err != nil || !fi.IsDir() {
			return reject(fmt.Sprintf("Application (%s) is not defined.", app))
		}
	}
	if desc := c.authorize(AuthRequest{Action: AuthConnect, App: app, Instance: inst, Query: query}); desc != "" {
		return reject(desc)
	}

	remoteOwner := ""
	if o := c.srv.cfg.Owners; o != nil {
		// Several hubs: the instance gets an owner (this hub, when no
		// live hub owns it). Bounded, and this hub when the cluster
		// cannot be reached. Another hub's instance runs its
		// application there (remote.go).
		owner, here := o.OwnInstance(app, inst)
		log.Debug("instance owner", "owner", owner, "here", here)
		if !here && owner != "" && c.srv.cfg.AppRelay != nil {
			remoteOwner = owner
		}
	}
	c.inst = c.srv.instanceFor(app, inst, remoteOwner == "")
	if remoteOwner == "" {
		// (The instance may be here already without its application:
		// another hub owned it, or only a pull or a reader used it.)
		c.inst.startApplication()
	}
	c.inst.addClient(c)
	var desc string
	var ai any
	if remoteOwner != "" {
		desc, ai = c.openAtOwner(remoteOwner, cmd)
	} else {
		desc, ai, _ = c.askConnect(cmd.Args)
	}
	if desc != "" {
		in := c.inst
		c.inst = nil
		in.removeClient(c)
		appInfo = ai
		return reject(desc)
	}
	c.connected = true
	c.t.SetReadDeadline(time.Time{})
	c.log = log
	if c.srv.cfg.Owners != nil {
		ra := &c.cluster().app
		ra.mu.Lock()
		if ra.connect == nil {
			ra.connect = cmd // to connect again when another hub owns the instance (remote.go)
		}
		ra.mu.Unlock()
	}
	c.accepted.Store(true) // after connect is kept: a reroute may read it once accepted

	cfg := c.srv.cfg
	enc := 0.0
	if c.amf3 {
		enc = 3
	}
	props := amf.Object{
		{Key: "fmsVer", Value: FMSVersion},
		{Key: "capabilities", Value: 31.0},
		{Key: "mode", Value: 1.0},
	}
	if c.enhanced {
		props = append(props,
			amf.Property{Key: "fourCcList", Value: []any{"*"}},
			amf.Property{Key: "videoFourCcInfoMap", Value: amf.Object{{Key: "*", Value: 4.0}}},
			amf.Property{Key: "audioFourCcInfoMap", Value: amf.Object{{Key: "*", Value: 4.0}}},
			amf.Property{Key: "capsEx", Value: 0.0})
	}
	result := info(levelStatus, "NetConnection.Connect.Success", "Connection succeeded.",
		amf.Property{Key: "data", Value: amf.ECMAArray{{Key: "version", Value: FMSDataVersion}}},
		amf.Property{Key: "clientid", Value: float64(c.id)},
		amf.Property{Key: "objectEncoding", Value: enc})

	c.send(
		*message.WindowAckSize(cfg.WindowAckSize),
		*message.SetPeerBandwidth(cfg.WindowAckSize, 2),
		*message.UserControl{Event: message.UCStreamBegin, StreamID: 0}.Message(),
		*message.SetChunkSize(cfg.OutChunkSize),
	)
	c.sendCommand(0, &message.Command{Name: "_result", TransactionID: cmd.TransactionID, Object: props, Args: []any{result}})
	c.sendCommand(0, &message.Command{Name: "onBWDone", Args: nil})
	log.Info("connected", "flashVer", c.agent, "tcUrl", c.tcURL, "objectEncoding", enc)
	c.accessLog("connect", "allowed", true, "agent", c.agent, "tcUrl", c.tcURL)
	return nil
}

// FMS identity reported in connect replies.
const (
	FMSVersion     = "FMS/3,5,7,7009"
	FMSDataVersion = "3,5,7,7009"
)

func (c *Client) createStream(cmd *message.Command) {
	if len(c.streams) >= maxStreamsPerClient {
		c.sendError(cmd.TransactionID, "NetConnection.Call.Failed", "Too many streams on this connection.")
		return
	}
	for {
		c.nextStreamID++
		if c.nextStreamID == 0 {
			c.nextStreamID = 1
		}
		if c.streams[c.nextStreamID] == nil {
			break
		}
	}
	id := c.nextStreamID
	c.streams[id] = &netStream{id: id}
	c.sendResult(cmd.TransactionID, float64(id))
}

// streamQuery returns the query string of a stream name, "" when none.
func streamQuery(s string) string {
	if i := strings.IndexByte(s, '?'); i >= 0 {
		return s[i+1:]
	}
	return ""
}

// streamName strips a query string from a stream name.
func streamName(s string) string {
	if i := strings.IndexByte(s, '?'); i >= 0 {
		return s[:i]
	}
	return s
}

const maxStreamNameLen = 1024

// netStreamFor returns the stream msid, creating it for clients that
// publish or play on a stream id they did not create (Flash allows msid 0
// replies in some flows; FFmpeg always creates one).
func (c *Client) netStreamFor(msid uint32) *netStream {
	ns := c.streams[msid]
	if ns == nil && msid != 0 && len(c.streams) < maxStreamsPerClient {
		ns = &netStream{id: msid}
		c.streams[msid] = ns
	}
	return ns
}

func (c *Client) publish(msid uint32, cmd *message.Command) error {
	ns := c.netStreamFor(msid)
	if ns == nil {
		return fmt.Errorf("publish on stream %d, which was not created", msid)
	}
	raw, ok := cmd.Arg(0).(string)
	if !ok || raw == "" {
		// publish(false) or publish(null): stop publishing.
		c.closeNetStream(ns, true)
		return nil
	}
	name := streamName(raw)
	typ, _ := cmd.Arg(1).(string)
	if typ == "" {
		typ = "live"
	}
	if name == "" || len(name) > maxStreamNameLen || (typ != "live" && typ != "record" && typ != "append") {
		c.sendStatus(msid, levelError, "NetStream.Publish.BadName", fmt.Sprintf("Invalid stream name or type (%s, %s).", raw, typ), raw)
		return nil
	}
	if !c.mayPublish(name) { // Client.writeAccess (access.go)
		desc := noAccess("write", "stream", name)
		c.sendStatus(msid, levelError, "NetStream.Publish.BadName", desc, name)
		c.accessDenied("publish", name, desc)
		return nil
	}
	if desc := c.authorize(AuthRequest{Action: AuthPublish, App: c.app, Instance: c.inst.name, Stream: name, PublishType: typ, Query: streamQuery(raw)}); desc != "" {
		c.sendStatus(msid, levelError, "NetStream.Publish.BadName", desc, name)
		c.accessDenied("publish", name, desc)
		return nil
	}
	if ns.pub != nil || ns.player != nil || ns.vod != nil {
		c.closeNetStream(ns, true)
	}
	if cl := c.srv.cfg.Cluster; cl != nil {
		// The name is published once across the hubs (cluster.go).
		if err := cl.Claim(c.app, c.inst.name, name); err != nil {
			c.sendStatus(msid, levelError, "NetStream.Publish.BadName", err.Error(), name)
			c.log.Info("publish refused", "stream", name, "reason", err.Error())
			c.accessDenied("publish", name, err.Error())
			return nil
		}
	}
	var err error
	c.inst.withStream(name, func(st *live.Stream) {
		ns.pub, err = st.Publish(&publisher{c: c, msid: msid, name: name}, live.PublishOptions{Type: typ})
	})
	ns.name = name
	if err != nil {
		c.sendStatus(msid, levelError, "NetStream.Publish.BadName", err.Error(), name)
		c.log.Info("publish refused", "stream", name, "reason", err.Error())
		c.accessDenied("publish", name, err.Error())
		return nil
	}
	c.publishTimeout = true
	c.t.SetReadDeadline(time.Now().Add(c.srv.cfg.PublisherIdleTimeout))
	c.send(*message.UserControl{Event: message.UCStreamBegin, StreamID: msid}.Message())
	c.sendStatus(msid, levelStatus, "NetStream.Publish.Start", name+" is now published.", name)
	c.log.Info("publish", "stream", name, "type", typ, "takeover", ns.pub.TookOver())
	c.streamEvent(name, true) // onPublish, here or on the instance's owner (remote.go)
	c.accessLog("publish", "stream", name, "allowed", true, "type", typ)
	if record, appendTo := recordType(typ); record {
		ns.rec = c.startRecording(msid, ns.pub.Stream(), name, appendTo)
	}
	return nil
}

func (c *Client) play(msid uint32, cmd *message.Command) error {
	ns := c.netStreamFor(msid)
	if ns == nil {
		return fmt.Errorf("play on stream %d, which was not created", msid)
	}
	raw, ok := cmd.Arg(0).(string)
	if !ok || raw == "" {
		// play(false): stop playing.
		c.closeNetStream(ns, true)
		return nil
	}
	name := streamName(raw)
	start := float64(startAny)
	if v, ok := amf.Number(cmd.Arg(1)); ok {
		start = NormalizeStart(v) // -2 and -1 in seconds (GStreamer)
	}
	length := -1.0
	if v, ok := amf.Number(cmd.Arg(2)); ok {
		length = v
	}
	reset, burst := true, false
	switch v := cmd.Arg(3).(type) {
	case bool:
		reset = v
	case float64:
		// 0 queue, 1 replace; 2 and 3 the same without pacing.
		reset, burst = v != 0 && v != 2, v == 2 || v == 3
	}
	if name == "" || len(name) > maxStreamNameLen {
		c.sendStatus(msid, levelError, "NetStream.Play.StreamNotFound", fmt.Sprintf("Failed to play %s; stream not found.", raw), raw)
		return nil
	}
	if !c.mayPlay(name) { // Client.readAccess (access.go)
		desc := noAccess("read", "stream", name)
		c.sendStatus(msid, levelError, "NetStream.Play.Failed", desc, name)
		c.accessDenied("play", name, desc)
		return nil
	}
	if desc := c.authorize(AuthRequest{Action: AuthPlay, App: c.app, Instance: c.inst.name, Stream: name, Query: streamQuery(raw)}); desc != "" {
		c.sendStatus(msid, levelError, "NetStream.Play.Failed", desc, name)
		c.accessDenied("play", name, desc)
		return nil
	}
	item, choice := c.chooseVOD(name, start, length, reset)
	if choice == choiceNotFound {
		c.sendStatus(msid, levelError, "NetStream.Play.StreamNotFound", fmt.Sprintf("Failed to play %s; stream not found.", name), name)
		c.log.Info("play: stream not found", "stream", name, "start", start)
		return nil
	}
	if choice == choiceVOD && !reset && ns.vod != nil {
		ns.vod.Add(item) // a playlist: after what plays now
		c.log.Info("play queued", "stream", name, "start", start, "len", length)
		return nil
	}
	if ns.pub != nil || ns.player != nil || ns.vod != nil {
		c.closeNetStream(ns, true)
	}
	if choice == choiceVOD {
		ns.vod, ns.name = c.startVOD(msid, item, burst), name
		c.log.Info("play", "stream", name, "start", start, "len", length, "recorded", true)
		c.accessLog("play", "stream", name, "allowed", true, "recorded", true)
		return nil
	}
	// A relay to another hub's players is written as it comes: neither
	// Nagle's delay nor the merged-write window is added once per hub on
	// the way.
	cl := c.srv.cfg.Cluster
	relay := cl != nil && cl.Relay(c.app, c.inst.name, name, streamQuery(raw))
	if !relay {
		c.mediaSocket()
	}
	if cl != nil && !c.inst.liveNow(name) {
		// Another hub may publish it, now or later: the cluster pulls it
		// here.
		app, inst, q := c.app, c.inst.name, streamQuery(raw)
		go cl.Want(app, inst, name, q, true)
	}
	c.inst.withStream(name, func(st *live.Stream) {
		// The replies are queued with the stream locked, so that no media
		// can come between them and the player's first packets.
		ns.name = name
		ns.player = c.playLive(st, msid, !relay, func() {
			c.send(*message.UserControl{Event: message.UCStreamBegin, StreamID: msid}.Message())
			if reset {
				c.sendStatus(msid, levelStatus, "NetStream.Play.Reset", "Playing and resetting "+name+".", name)
			}
			c.sendStatus(msid, levelStatus, "NetStream.Play.Start", "Started playing "+name+".", name)
			c.sendData(msid, "|RtmpSampleAccess", true, true)
			c.sendData(msid, "onStatus", info(levelStatus, "NetStream.Data.Start", "Data start."))
		})
	})
	c.log.Info("play", "stream", name, "start", start)
	c.accessLog("play", "stream", name, "allowed", true, "recorded", false)
	return nil
}

// closeNetStream stops what ns publishes or plays. graceful is false when
// the connection dropped, which lets a vanished publisher's stream wait for
// it to come back.
func (c *Client) closeNetStream(ns *netStream, graceful bool) {
	if ns.pub != nil {
		pub := ns.pub
		ns.pub = nil
		c.publishTimeout = false
		if ns.rec != nil {
			ns.rec.Stop(graceful && c.inst != nil)
			ns.rec = nil
		}
		pub.Close(graceful)
		name := pub.Stream().Name()
		if cl := c.srv.cfg.Cluster; cl != nil && c.inst != nil {
			cl.Released(c.app, c.inst.name, name)
		}
		if graceful && c.inst != nil {
			c.sendStatus(ns.id, levelStatus, "NetStream.Unpublish.Success", name+" is now unpublished.", name)
		}
		c.log.Info("unpublish", "stream", name, "graceful", graceful)
		if c.inst != nil {
			c.streamEvent(name, false)
		}
		reason := "unpublished"
		if !graceful {
			reason = "disconnected"
		}
		c.accessUnpublish(pub, reason)
	}
	if ns.player != nil {
		p := ns.player
		ns.player = nil
		p.Close()
		c.log.Debug("stop playing", "stream", p.Stream().Name())
	}
	if ns.vod != nil {
		ns.vod.Close()
		ns.vod = nil
	}
}

// deleteStream(id) closes stream id and forgets it (FMS, ffmpeg and librtmp
// send it on message stream 0). GStreamer's rtmp2sink sends the stream's
// name instead: its stop-commands (FCUnpublish and deleteStream by default,
// closeStream on request) go on message stream 0 with transaction 0, a null
// and the name. A name closes and forgets the client's streams that publish
// or play it, so that players hear UnpublishNotify at once rather than
// after the publisher grace of a connection that dropped.
func (c *Client) deleteStream(cmd *message.Command) {
	if name, ok := cmd.Arg(0).(string); ok {
		for _, ns := range c.streamsNamed(streamName(name)) {
			c.closeNetStream(ns, true)
			delete(c.streams, ns.id)
		}
		return
	}
	if id, ok := amf.Number(cmd.Arg(0)); ok {
		if ns := c.streams[uint32(id)]; ns != nil {
			c.closeNetStream(ns, true)
			delete(c.streams, ns.id)
		}
	}
}

// closeStream closes the stream the command came on. GStreamer's
// closeStream(name) comes on message stream 0: a name there closes the
// client's streams that publish or play it (see deleteStream).
func (c *Client) closeStream(msid uint32, cmd *message.Command) {
	if ns := c.streams[msid]; ns != nil {
		c.closeNetStream(ns, true)
		return
	}
	if name, ok := cmd.Arg(0).(string); ok {
		for _, ns := range c.streamsNamed(streamName(name)) {
			c.closeNetStream(ns, true)
		}
	}
}

// streamsNamed returns the client's streams that publish or play name, in
// the order of their ids.
func (c *Client) streamsNamed(name string) []*netStream {
	var out []*netStream
	for _, ns := range c.streams {
		if name != "" && ns.name == name && (ns.pub != nil || ns.player != nil || ns.vod != nil) {
			out = append(out, ns)
		}
	}
	slices.SortFunc(out, func(a, b *netStream) int { return cmp.Compare(a.id, b.id) })
	return out
}

// fcUnpublish ends the publication of name on any of the client's streams.
func (c *Client) fcUnpublish(name string) {
	for _, ns := range c.streams {
		if ns.pub != nil && ns.pub.Stream().Name() == name {
			c.closeNetStream(ns, true)
		}
	}
}

func (c *Client) pause(msid uint32, cmd *message.Command) {
	ns := c.streams[msid]
	if ns != nil && ns.vod != nil {
		paused, ok := cmd.Arg(0).(bool)
		ns.vod.Pause(paused, ok)
		return
	}
	if ns == nil || ns.player == nil {
		return
	}
	paused, ok := cmd.Arg(0).(bool)
	if !ok {
		paused = !ns.player.Paused()
	}
	name := ns.player.Stream().Name()
	if paused {
		ns.player.SetPaused(true)
		c.sendStatus(msid, levelStatus, "NetStream.Pause.Notify", "Pausing "+name+".", name)
		c.send(*message.UserControl{Event: message.UCStreamEOF, StreamID: msid}.Message())
	} else {
		c.send(*message.UserControl{Event: message.UCStreamBegin, StreamID: msid}.Message())
		c.sendStatus(msid, levelStatus, "NetStream.Unpause.Notify", "Unpausing "+name+".", name)
		ns.player.SetPaused(false)
	}
}
