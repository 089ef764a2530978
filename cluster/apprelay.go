package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/rtmphub/rtmphub/rtmp/amf"
	"github.com/rtmphub/rtmphub/rtmp/message"
	"github.com/rtmphub/rtmphub/session"
)

// Applications across hubs: the owner of an instance runs its
// application (main.asc); the other hubs' clients reach it through their
// hub, over the hubs' inboxes (see sorelay.go):
//
//   - "open" (request/reply, bounded by the call timeout): a client's
//     connect; the owner makes it a remote client (session.AcceptRemote),
//     whose onConnect decides, and answers the decision.
//   - "cmd": a remote client's call, or its answer to the application's
//     call; "stream": it started or stopped publishing a live stream (the
//     application's onPublish, onUnpublish); "close": it left. Handled on
//     the owner's inbox goroutine, in order: no goroutine per remote
//     client.
//   - "out" (owner to hub): commands for the client (answers to its calls,
//     the application's calls, broadcasts); "ended": the application
//     disconnected it.
//
// When the owner changes, each hub connects its clients again to the new
// owner's application (session.AppReroute); an owner forgets the remote
// clients of hubs that left.

// AppHub is what the application relay needs of the hub (a
// *session.Server).
type AppHub interface {
	AcceptRemote(hub string, r session.RemoteConnect, out session.RemoteOut) (*session.Client, session.ConnectDecision)
	DeliverRemote(app, instance string, client uint64, msgs []message.Message)
	CloseRemoteEnded(app, instance string, client uint64)
	AppReroute(app, instance string)
}

// appWire is an "open" request and its answer, or an "out" batch.
type appWire struct {
	Kind    string                 `json:"k"`
	From    string                 `json:"f"`
	Connect *session.RemoteConnect `json:"connect,omitempty"`
	Accept  bool                   `json:"accept,omitempty"`
	Desc    string                 `json:"desc,omitempty"`
	Info    []byte                 `json:"info,omitempty"` // AMF0
	App     string                 `json:"a,omitempty"`
	Inst    string                 `json:"i,omitempty"`
	Client  uint64                 `json:"c,omitempty"`
	Msgs    []wireMsg              `json:"m,omitempty"`
	Stream  string                 `json:"s,omitempty"` // "stream": its name
	Pub     bool                   `json:"pub,omitempty"`
}

type wireMsg struct {
	Type    uint8  `json:"t"`
	Payload []byte `json:"p"`
}

func commandType(t uint8) bool {
	return message.Type(t) == message.TypeCommandAMF0 || message.Type(t) == message.TypeCommandAMF3
}

// OpenRemote asks owner's application to accept a client of this hub
// (see session.AppRelay).
func (n *Node) OpenRemote(owner string, r session.RemoteConnect, timeout time.Duration) (session.ConnectDecision, error) {
	b, _ := json.Marshal(appWire{Kind: "open", From: n.name, Connect: &r})
	msg, err := n.nc.Request(inbox(owner), b, timeout)
	if errors.Is(err, nats.ErrNoResponders) {
		// owner is gone (this hub has not seen it yet): who owns the
		// instance now? Nobody: this hub takes it.
		if moved := n.ownerNow(InstanceID{r.App, r.Instance}, owner); moved != nil {
			return session.ConnectDecision{}, moved
		}
	}
	if err != nil {
		return session.ConnectDecision{}, err
	}
	var w appWire
	if err := json.Unmarshal(msg.Data, &w); err != nil || w.Kind != "opened" {
		n.bad("bad answer to open", "from", owner)
		return session.ConnectDecision{}, errors.New("cluster: bad answer from the owner")
	}
	d := session.ConnectDecision{Accept: w.Accept, Description: w.Desc}
	if len(w.Info) > 0 {
		if v, err := amf.NewDecoder(w.Info).DecodeAMF0(); err == nil {
			d.Info = v
		}
	}
	return d, nil
}

// ownerNow looks the lease of id up after its owner (was) did not answer:
// the owner that moved, or nil when none other can be named now.
func (n *Node) ownerNow(id InstanceID, was string) *session.OwnerMovedError {
	if !n.storeUp() {
		return nil
	}
	ctx, cancel := context.WithTimeout(n.ctx, opTimeout)
	defer cancel()
	owner, found, err := n.instanceOwner(ctx, id)
	if err != nil {
		return nil
	}
	if !found {
		var rev uint64
		if owner, rev, err = n.takeInstance(ctx, id); err != nil {
			return nil
		}
		if owner == n.name {
			n.takeovers.Add(1)
			n.log.Info("cluster: instance taken over", "instance", id.String(), "from", was)
			n.addLease(id, rev)
			n.spawn(func() { n.ownerChanged(id) })
			return &session.OwnerMovedError{Here: true}
		}
	}
	if owner == was {
		return nil
	}
	if owner == n.name {
		return &session.OwnerMovedError{Here: true}
	}
	n.imu.Lock()
	moved := false
	if _, owned := n.leases[id]; !owned && n.follows[id] != owner {
		n.follows[id] = owner
		moved = true
	}
	n.imu.Unlock()
	if moved {
		n.spawn(func() { n.ownerChanged(id) })
	}
	return &session.OwnerMovedError{Owner: owner}
}

// ForwardCommand sends a client's command to owner (see
// session.AppRelay).
func (n *Node) ForwardCommand(owner, app, instance string, client uint64, m message.Message) {
	b, _ := json.Marshal(appWire{Kind: "cmd", From: n.name, App: app, Inst: instance, Client: client,
		Msgs: []wireMsg{{Type: uint8(m.Type), Payload: m.Payload}}})
	if err := n.nc.Publish(inbox(owner), b); err != nil {
		n.trouble("forwarding a call", err)
	}
	n.appFwd.Add(1)
}

// CloseRemote says a client left (see session.AppRelay).
func (n *Node) CloseRemote(owner, app, instance string, client uint64) {
	b, _ := json.Marshal(appWire{Kind: "close", From: n.name, App: app, Inst: instance, Client: client})
	if err := n.nc.Publish(inbox(owner), b); err != nil {
		n.trouble("forwarding a client's leaving", err)
	}
}

// ForwardStream says a client started or stopped publishing a live
// stream (see session.AppRelay).
func (n *Node) ForwardStream(owner, app, instance string, client uint64, stream string, publishing bool) {
	b, _ := json.Marshal(appWire{Kind: "stream", From: n.name, App: app, Inst: instance, Client: client,
		Stream: stream, Pub: publishing})
	if err := n.nc.Publish(inbox(owner), b); err != nil {
		n.trouble("forwarding a stream event", err)
	}
}

// onAppWire handles the application kinds of the inbox; false: not one.
func (n *Node) onAppWire(msg *nats.Msg, kind string) bool {
	switch kind {
	case "open", "cmd", "stream", "close", "out", "ended":
	default:
		return false
	}
	ah, ok := n.hub.(AppHub)
	if !ok {
		return true
	}
	var w appWire
	if err := json.Unmarshal(msg.Data, &w); err != nil || w.From == "" {
		n.bad("bad application message", "kind", kind)
		return true
	}
	switch kind {
	case "open":
		n.openRemote(ah, msg, &w)
	case "cmd":
		c := n.remoteClient(w.key())
		if c == nil {
			n.log.Debug("cluster: call of an unknown remote client", "hub", w.From, "client", w.Client)
			return true
		}
		for _, m := range w.Msgs {
			if !commandType(m.Type) {
				n.bad("not a command", "from", w.From)
				continue
			}
			c.HandleRemote(&message.Message{Type: message.Type(m.Type), ChunkStreamID: message.CSIDCommand, Payload: m.Payload})
		}
	case "stream":
		c := n.remoteClient(w.key())
		if c == nil {
			n.log.Debug("cluster: stream event of an unknown remote client", "hub", w.From, "client", w.Client)
			return true
		}
		c.StreamFromHub(w.Stream, w.Pub)
	case "close":
		key := w.key()
		n.so.mu.Lock()
		c := n.so.apps[key]
		delete(n.so.apps, key)
		n.so.mu.Unlock()
		if c != nil {
			c.CloseFromHub("left (on hub " + w.From + ")")
		}
	case "out":
		var msgs []message.Message
		for _, m := range w.Msgs {
			if commandType(m.Type) {
				msgs = append(msgs, message.Message{Type: message.Type(m.Type), ChunkStreamID: message.CSIDCommand, Payload: m.Payload})
			} else {
				n.bad("not a command", "from", w.From)
			}
		}
		if len(msgs) > 0 {
			ah.DeliverRemote(w.App, w.Inst, w.Client, msgs)
		}
	case "ended":
		ah.CloseRemoteEnded(w.App, w.Inst, w.Client)
	}
	return true
}

// openRemote runs a client's connect here, the owner, on a goroutine of
// its own (onConnect may leave it pending up to the call timeout), and
// answers.
func (n *Node) openRemote(ah AppHub, msg *nats.Msg, w *appWire) {
	r := w.Connect
	if r == nil || r.App == "" || r.Instance == "" || !commandType(r.Type) || msg.Reply == "" {
		n.bad("bad open", "from", w.From)
		return
	}
	answer := func(d session.ConnectDecision) {
		a := appWire{Kind: "opened", From: n.name, Accept: d.Accept, Desc: d.Description}
		if d.Info != nil {
			e := amf.Encoder{}
			if e.EncodeAMF0(d.Info) == nil {
				a.Info = e.Bytes()
			}
		}
		b, _ := json.Marshal(a)
		msg.Respond(b)
	}
	id := InstanceID{r.App, r.Instance}
	if _, here := n.InstanceOwner(id.App, id.Instance); !here {
		answer(session.ConnectDecision{Description: "This hub does not own the application instance."})
		return
	}
	key := remoteKey{w.From, id, r.Client}
	from := w.From
	started := n.spawn(func() {
		out := &remoteOut{n: n, hub: from, key: key}
		c, d := ah.AcceptRemote(from, *r, out)
		if c != nil {
			n.so.mu.Lock()
			old := n.so.apps[key]
			if len(n.so.apps) >= maxRemoteClients {
				n.so.mu.Unlock()
				c.CloseFromHub("too many remote clients")
				answer(session.ConnectDecision{Description: "Too many clients."})
				return
			}
			n.so.apps[key] = c
			n.so.mu.Unlock()
			if old != nil {
				old.CloseFromHub("connected again")
			}
		}
		answer(d)
	})
	if !started {
		answer(session.ConnectDecision{Description: "The application's hub is shutting down."})
	}
}

// remoteOut sends the owner's commands for a remote client to its hub.
type remoteOut struct {
	n   *Node
	hub string
	key remoteKey
}

func (o *remoteOut) Send(msgs []message.Message) {
	w := appWire{Kind: "out", From: o.n.name, App: o.key.inst.App, Inst: o.key.inst.Instance, Client: o.key.client}
	for _, m := range msgs {
		w.Msgs = append(w.Msgs, wireMsg{Type: uint8(m.Type), Payload: m.Payload})
	}
	b, _ := json.Marshal(w)
	if err := o.n.nc.Publish(inbox(o.hub), b); err != nil {
		o.n.trouble("sending a remote client's commands", err)
	}
}

func (o *remoteOut) Closed() {
	n := o.n
	n.so.mu.Lock()
	delete(n.so.apps, o.key)
	n.so.mu.Unlock()
	b, _ := json.Marshal(appWire{Kind: "ended", From: n.name, App: o.key.inst.App, Inst: o.key.inst.Instance, Client: o.key.client})
	if err := n.nc.Publish(inbox(o.hub), b); err != nil {
		n.trouble("ending a remote client", err)
	}
}

// closeApps ends the remote clients sel selects.
func (n *Node) closeApps(sel func(remoteKey) bool, why string) {
	n.so.mu.Lock()
	var cs []*session.Client
	for k, c := range n.so.apps {
		if sel(k) {
			delete(n.so.apps, k)
			cs = append(cs, c)
		}
	}
	n.so.mu.Unlock()
	for _, c := range cs {
		c.CloseFromHub(why)
	}
}

// RemoteClients is the number of clients of other hubs this hub's
// applications serve; AppForwarded counts the calls this hub forwarded to
// owners.
func (n *Node) RemoteClients() int {
	n.so.mu.Lock()
	defer n.so.mu.Unlock()
	return len(n.so.apps)
}

func (n *Node) AppForwarded() uint64 { return n.appFwd.Load() }

// key names the remote client a message of another hub is about.
func (w *appWire) key() remoteKey {
	return remoteKey{w.From, InstanceID{w.App, w.Inst}, w.Client}
}

// remoteClient is the remote client of this hub's application that key
// names, nil when there is none (it ended, or never was).
func (n *Node) remoteClient(key remoteKey) *session.Client {
	n.so.mu.Lock()
	defer n.so.mu.Unlock()
	return n.so.apps[key]
}
