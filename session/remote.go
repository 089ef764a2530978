package session

import (
	"cmp"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rtmphub/rtmphub/rtmp/amf"
	"github.com/rtmphub/rtmphub/rtmp/message"
)

// Applications across hubs (package cluster): the owner of an instance
// runs its application (main.asc); a client of another hub is served by
// its hub as an FMS edge serves one: media there, while its connect (the
// application's onConnect), its calls and the application's calls to it
// go to the owner and back. The owner knows it as a remote client: a
// Client whose transport is its hub (remoteTransport), in
// application.clients with the owner's own clients.

// AppRelay carries the application traffic of clients whose instance
// another hub owns (the edge side). Its methods are called on a client's
// reader goroutine; OpenRemote waits at most timeout, the others never
// block.
type AppRelay interface {
	// OpenRemote asks owner to run the application's onConnect for a
	// client here; an error is an owner that did not answer.
	OpenRemote(owner string, r RemoteConnect, timeout time.Duration) (ConnectDecision, error)
	// ForwardCommand sends a command of the client (a call, or its answer
	// to a call of the owner's application) to owner.
	ForwardCommand(owner, app, instance string, client uint64, m message.Message)
	// CloseRemote says the client left (or its owner changed): owner
	// ends its remote client.
	CloseRemote(owner, app, instance string, client uint64)
	// ForwardStream says the client started (publishing) or stopped
	// publishing the live stream name: owner runs the application's
	// onPublish or onUnpublish for its remote client. In order with the
	// client's other messages to owner.
	ForwardStream(owner, app, instance string, client uint64, stream string, publishing bool)
}

// OwnerMovedError is OpenRemote's answer when the hub asked no longer
// owns the instance: Owner does, or this hub when Here.
type OwnerMovedError struct {
	Owner string
	Here  bool
}

func (e *OwnerMovedError) Error() string {
	if e.Here {
		return "session: the instance's owner is this hub now"
	}
	return "session: the instance's owner is " + e.Owner + " now"
}

// RemoteConnect is a client's connect as its hub forwards it to the
// owner: who it is, and its connect command.
type RemoteConnect struct {
	App, Instance string
	Client        uint64
	IP, Protocol  string
	// Type and Payload are the connect command message.
	Type    uint8
	Payload []byte
}

// RemoteOut is where the owner's messages for a remote client go (its
// hub). Send gets commands only and must not block; Closed says the owner
// ended the client (not called when its hub ended it).
type RemoteOut interface {
	Send(msgs []message.Message)
	Closed()
}

// remoteCallBase is the first transaction id of the owner's calls to a
// remote client: the client's hub makes calls of its own (bandwidth
// checks) from low ids, and tells the two apart by the id.
const remoteCallBase = 1 << 30

// remoteTransport is a remote client's transport on the owner: what the
// core writes goes to the client's hub (commands only: media, control and
// shared object messages never do); nothing is read from it (its hub's
// messages are handled as they come, HandleRemote).
type remoteTransport struct {
	out     RemoteOut
	addr    net.Addr
	done    chan struct{}
	once    sync.Once
	byHub   atomic.Bool
	onClose func()
	written atomic.Uint64
}

func (t *remoteTransport) ReadMessage() (*message.Message, error) {
	<-t.done
	return nil, net.ErrClosed
}

func (t *remoteTransport) WriteMessages(msgs []message.Message) error {
	select {
	case <-t.done:
		return net.ErrClosed
	default:
	}
	var cmds []message.Message
	for _, m := range msgs {
		if m.Type == message.TypeCommandAMF0 || m.Type == message.TypeCommandAMF3 {
			cmds = append(cmds, m)
			t.written.Add(uint64(len(m.Payload)))
		}
	}
	if len(cmds) > 0 {
		t.out.Send(cmds)
	}
	return nil
}

func (t *remoteTransport) SetReadDeadline(time.Time) error { return nil }
func (t *remoteTransport) SetWriteTimeout(time.Duration)   {}
func (t *remoteTransport) RemoteAddr() net.Addr            { return t.addr }
func (t *remoteTransport) BytesRead() uint64               { return 0 }
func (t *remoteTransport) BytesWritten() uint64            { return t.written.Load() }

func (t *remoteTransport) Close() error {
	t.once.Do(func() {
		close(t.done)
		if !t.byHub.Load() {
			t.out.Closed()
		}
		if t.onClose != nil {
			go t.onClose()
		}
	})
	return nil
}

// AcceptRemote runs the connect of a client of hub here, the owner of its
// instance: the application's onConnect decides (its hub authorized the
// client already). It returns the remote client when accepted. It waits
// for a pending decision at most the call timeout.
func (s *Server) AcceptRemote(hub string, r RemoteConnect, out RemoteOut) (*Client, ConnectDecision) {
	m := message.Message{Type: message.Type(r.Type), Payload: r.Payload}
	cmd, err := message.DecodeCommand(&m)
	if err != nil || cmd.Name != "connect" {
		return nil, ConnectDecision{Description: "Bad connect from the client's hub."}
	}
	t := &remoteTransport{out: out, addr: &net.TCPAddr{IP: net.ParseIP(r.IP)}, done: make(chan struct{})}
	c := newClient(s, t, ConnInfo{Protocol: r.Protocol, RemoteIP: r.IP}, s.log.With("hub", hub, "hub_client", r.Client))
	c.cluster().hub = hub // before the client is shared
	c.rpc.next = remoteCallBase
	s.mu.Lock()
	s.clients[c.id] = c
	s.mu.Unlock()
	d := c.connectRemote(cmd, r)
	if !d.Accept {
		s.removeClient(c)
		t.byHub.Store(true)
		c.close(errors.New("connection rejected"))
		return nil, d
	}
	t.onClose = func() {
		c.finish()
		s.removeClient(c)
	}
	return c, d
}

// connectRemote is connect for a remote client: the core's checks of the
// names, then the application's decision; nothing is sent (its hub
// answers the client).
func (c *Client) connectRemote(cmd *message.Command, r RemoteConnect) ConnectDecision {
	obj, _ := cmd.Object.(amf.Object)
	get := func(k string) string {
		v, _ := obj.Get(k)
		s, _ := v.(string)
		return s
	}
	c.tcURL, c.agent, c.pageURL, c.swfURL = get("tcUrl"), get("flashVer"), get("pageUrl"), get("swfUrl")
	if v, ok := obj.Get("objectEncoding"); ok {
		if n, _ := amf.Number(v); n == 3 {
			c.amf3 = true
		}
	}
	app, inst, query := splitApp(get("app"))
	c.app, c.query = app, query
	if app != r.App || inst != r.Instance || !appNameRE.MatchString(app) || !instNameRE.MatchString(inst) ||
		strings.Contains(inst, "..") || app == ".." {
		return ConnectDecision{Description: fmt.Sprintf("Invalid application name (%s).", get("app"))}
	}
	c.inst = c.srv.instance(app, inst)
	c.inst.startApplication() // (it may be here without it: a pull's instance)
	c.inst.addClient(c)
	if desc, ai, _ := c.askConnect(cmd.Args); desc != "" {
		in := c.inst
		c.inst = nil
		in.removeClient(c)
		return ConnectDecision{Description: desc, Info: ai}
	}
	c.connected = true
	c.log = c.log.With("app", app, "instance", inst)
	c.log.Info("remote client connected", "ip", c.ip, "flashVer", c.agent)
	return ConnectDecision{Accept: true}
}

// HandleRemote handles a command of a remote client, from its hub: a
// call, or an answer to the application's call. The caller serializes the
// commands of one client (it is the client's reader goroutine).
func (c *Client) HandleRemote(m *message.Message) {
	if m.Type != message.TypeCommandAMF0 && m.Type != message.TypeCommandAMF3 {
		return
	}
	cmd, err := message.DecodeCommand(m)
	if err != nil {
		c.log.Warn("bad command from the client's hub", "err", err.Error())
		return
	}
	switch cmd.Name {
	case "_result", "_error":
		c.resolve(cmd)
	default:
		c.invoke(cmd)
	}
}

// StreamFromHub runs the application's onPublish (publishing) or
// onUnpublish for a remote client whose hub says it started or stopped
// publishing the live stream name, with the stream object a client of
// this hub gets. What the hub says twice (a reroute tells the streams
// again) is told once; nothing is told after the client ended. It never
// blocks; the caller serializes a client's messages.
func (c *Client) StreamFromHub(name string, publishing bool) {
	if c.remoteHub() == "" || name == "" || len(name) > maxStreamNameLen {
		return
	}
	ra := &c.cluster().app
	ra.mu.Lock()
	defer ra.mu.Unlock()
	if ra.ended || c.inst == nil || slices.Contains(ra.published, name) == publishing ||
		(publishing && len(ra.published) >= maxStreamsPerClient) {
		return
	}
	ra.published = trackPublished(ra.published, name, publishing)
	c.tellApplication("", name, publishing)
}

// endRemoteStreams runs onUnpublish for the streams a remote client
// published when it ends (its hub said it left, or the hub is gone),
// before onDisconnect, as for a client of this hub whose connection
// dropped.
func (c *Client) endRemoteStreams() {
	ra := &c.cluster().app
	ra.mu.Lock()
	defer ra.mu.Unlock()
	ra.ended = true
	for _, name := range ra.published {
		c.tellApplication("", name, false)
	}
	ra.published = nil
}

// CloseFromHub ends a remote client whose hub says it left.
func (c *Client) CloseFromHub(reason string) {
	if t, ok := c.t.(*remoteTransport); ok {
		t.byHub.Store(true)
	}
	c.close(errors.New(reason))
}

// --- the client's hub (edge) ---

// appOwner is the hub whose application serves the client ("": this
// hub's). It changes when the instance's owner does.
type appOwner struct {
	mu      sync.Mutex
	owner   string
	connect *message.Command // kept to connect again at a new owner
	moving  bool             // a reroute connects it again (AppReroute)
	// published are the live streams the client publishes, in the
	// order it started them (with a cluster only): on its hub, its own
	// publications, told again to each new owner's application; on the
	// owner, what its hub said, unpublished for the application when
	// the remote client ends. ended: the remote client ended (owner).
	published []string
	ended     bool
}

func (c *Client) appOwnerNow() string {
	cl := c.cl.Load()
	if cl == nil {
		return ""
	}
	cl.app.mu.Lock()
	defer cl.app.mu.Unlock()
	return cl.app.owner
}

// clientCluster is a client's state that only a cluster needs.
type clientCluster struct {
	hub string   // on an instance's owner: the hub of this remote client; set before the client is shared
	app appOwner // on the client's hub: the hub whose application serves it
}

// cluster is c's cluster state, made at first use (any goroutine: the
// first to store it wins).
func (c *Client) cluster() *clientCluster {
	if cl := c.cl.Load(); cl != nil {
		return cl
	}
	c.cl.CompareAndSwap(nil, new(clientCluster))
	return c.cl.Load()
}

// remoteHub is the hub of a remote client, "" for a client of this hub.
func (c *Client) remoteHub() string {
	if cl := c.cl.Load(); cl != nil {
		return cl.hub
	}
	return ""
}

// openAtOwner asks owner's application to accept the client; "" accepts,
// else the rejection's description and info object. An owner that moved
// (died, left) is followed once: to the hub that owns the instance now,
// or to this hub's application when this hub does.
func (c *Client) openAtOwner(owner string, cmd *message.Command) (string, any) {
	typ, p, err := message.EncodeCommand(cmd, false)
	if err != nil {
		return "Bad connect command.", nil
	}
	r := RemoteConnect{App: c.inst.app, Instance: c.inst.name, Client: c.id,
		IP: c.ip, Protocol: c.info.Protocol, Type: uint8(typ), Payload: p}
	d, err := c.srv.cfg.AppRelay.OpenRemote(owner, r, c.srv.cfg.CallTimeout+time.Second)
	var moved *OwnerMovedError
	if errors.As(err, &moved) {
		c.log.Info("the instance's owner moved", "from", owner, "to", cmp.Or(moved.Owner, "this hub"))
		if moved.Here {
			c.inst.startApplication()
			desc, ai, _ := c.askConnect(cmd.Args)
			if desc == "" {
				c.setAppOwner("", cmd)
			}
			return desc, ai
		}
		owner = moved.Owner
		d, err = c.srv.cfg.AppRelay.OpenRemote(owner, r, c.srv.cfg.CallTimeout+time.Second)
	}
	if err != nil {
		c.log.Warn("the instance's owner hub did not answer the connect", "owner", owner, "err", err.Error())
		return "The application's hub did not answer.", nil
	}
	if !d.Accept {
		if d.Description == "" {
			d.Description = "Connection rejected by the application."
		}
		return d.Description, d.Info
	}
	c.setAppOwner(owner, cmd)
	return "", nil
}

// setAppOwner makes owner's application ("": this hub's) the client's,
// cmd (when not nil) its connect to use at the next owner, and tells
// that application of the streams the client publishes (onPublish), as
// when it started them: a new owner learns of them when its clients are
// rerouted to it.
func (c *Client) setAppOwner(owner string, cmd *message.Command) {
	ra := &c.cluster().app
	ra.mu.Lock()
	defer ra.mu.Unlock()
	ra.owner = owner
	if cmd != nil {
		ra.connect = cmd
	}
	for _, name := range ra.published {
		c.tellApplication(owner, name, true)
	}
}

// streamEvent tells the application of the client's instance, on this
// hub or on its owner, that the client started (publishing) or stopped
// publishing the live stream name: FMS's application.onPublish and
// onUnpublish. With a cluster, the client's publications are kept to
// tell the next owner's application.
func (c *Client) streamEvent(name string, publishing bool) {
	if c.srv.cfg.Owners == nil || c.srv.cfg.AppRelay == nil {
		c.tellApplication("", name, publishing)
		return
	}
	ra := &c.cluster().app
	ra.mu.Lock()
	defer ra.mu.Unlock()
	ra.published = trackPublished(ra.published, name, publishing)
	c.tellApplication(ra.owner, name, publishing)
}

// tellApplication runs onPublish or onUnpublish for c in the application
// of owner ("": this hub's). It never blocks.
func (c *Client) tellApplication(owner, name string, publishing bool) {
	if owner != "" {
		c.srv.cfg.AppRelay.ForwardStream(owner, c.inst.app, c.inst.name, c.id, name, publishing)
		return
	}
	h, ok := c.inst.application().(StreamHandler)
	if !ok {
		return
	}
	if publishing {
		h.Publish(c, name)
	} else {
		h.Unpublish(c, name)
	}
}

// trackPublished adds name to (publishing) or removes it from the names
// published.
func trackPublished(names []string, name string, publishing bool) []string {
	i := slices.Index(names, name)
	switch {
	case publishing && i < 0:
		return append(names, name)
	case !publishing && i >= 0:
		return slices.Delete(names, i, i+1)
	}
	return names
}

// forwardCommand sends a call of the client, or its answer to the
// owner's call, to the owner.
func (c *Client) forwardCommand(owner string, cmd *message.Command) {
	typ, p, err := message.EncodeCommand(cmd, c.amf3)
	if err != nil {
		c.sendError(cmd.TransactionID, "NetConnection.Call.Failed", "Cannot forward the call: "+err.Error())
		return
	}
	c.srv.cfg.AppRelay.ForwardCommand(owner, c.inst.app, c.inst.name, c.id,
		message.Message{Type: typ, ChunkStreamID: message.CSIDCommand, Payload: p})
}

// DeliverRemote queues commands from the owner of the instance for one of
// its clients here (an answer to its call, a call of the application, a
// broadcast). Anything but a command is dropped.
func (s *Server) DeliverRemote(app, instance string, client uint64, msgs []message.Message) {
	c := s.instanceClient(app, instance, client)
	if c == nil {
		return
	}
	out := msgs[:0:0]
	for _, m := range msgs {
		if m.Type == message.TypeCommandAMF0 || m.Type == message.TypeCommandAMF3 {
			m.ChunkStreamID = message.CSIDCommand
			m.StreamID = 0
			out = append(out, m)
		}
	}
	if len(out) > 0 {
		c.send(out...)
	}
}

// CloseRemoteEnded ends a client here whose remote client the owner ended
// (the application disconnected it).
func (s *Server) CloseRemoteEnded(app, instance string, client uint64) {
	if c := s.instanceClient(app, instance, client); c != nil {
		c.close(errors.New("disconnected by the application (on its owner hub)"))
	}
}

func (s *Server) instanceClient(app, instance string, id uint64) *Client {
	in := s.loadedInstance(app, instance)
	if in == nil {
		return nil
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.clients[id]
}

// AppReroute follows a change of the instance's owner: the application
// runs here when this hub owns it (and stops when another does), and the
// clients here whose application is elsewhere are connected again to the
// owner's (onConnect runs there for them; a client it rejects, or when it
// cannot be asked, is disconnected). It runs on a goroutine of its own
// (the reconnects wait for the applications).
func (s *Server) AppReroute(app, instance string) {
	o, relay := s.cfg.Owners, s.cfg.AppRelay
	if o == nil || relay == nil {
		return
	}
	in := s.loadedInstance(app, instance)
	if in == nil {
		return
	}
	owner, here := o.InstanceOwner(app, instance)
	if here {
		owner = ""
		in.startApplication()
	} else if owner == "" {
		return
	}
	var wg sync.WaitGroup
	for _, c := range in.Clients() {
		if !c.accepted.Load() {
			continue
		}
		ra := &c.cluster().app
		ra.mu.Lock()
		if ra.moving || ra.owner == owner {
			// (One move at a time: two at once would connect it twice
			// to the same application. The move looks again when done.)
			ra.mu.Unlock()
			continue
		}
		ra.moving = true
		ra.mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.moveClient(c, in)
		}()
	}
	wg.Wait()
	if !here {
		in.stopApplication()
	}
}

// moveClient connects c again to the application of in's owner, until it
// is at the owner's (the owner may change meanwhile: three tries), or
// disconnects it when that application does not accept it.
func (s *Server) moveClient(c *Client, in *Instance) {
	ra := &c.cluster().app
	defer func() {
		ra.mu.Lock()
		ra.moving = false
		ra.mu.Unlock()
	}()
	relay := s.cfg.AppRelay
	for range 3 {
		owner, here := s.cfg.Owners.InstanceOwner(in.app, in.name)
		if here {
			owner = ""
		} else if owner == "" {
			return
		}
		ra.mu.Lock()
		was, cmd := ra.owner, ra.connect
		ra.mu.Unlock()
		if was == owner {
			return
		}
		if cmd == nil {
			// Not kept (it connected before this hub had a cluster):
			// rebuilt, without its connect arguments.
			cmd = c.connectCommand()
		}
		if was != "" {
			relay.CloseRemote(was, in.app, in.name, c.id)
		}
		var desc string
		if owner == "" {
			in.startApplication()
			desc, _, _ = c.askConnect(cmd.Args)
			if desc == "" {
				c.setAppOwner("", nil)
			}
		} else {
			desc, _ = c.openAtOwner(owner, cmd)
		}
		if desc != "" {
			c.log.Info("disconnected: the instance's new owner did not accept the client", "owner", owner, "reason", desc)
			c.close(errors.New("not accepted by the instance's new owner: " + desc))
			return
		}
		c.log.Info("connected again to the instance's new owner", "owner", cmp.Or(owner, "this hub"))
	}
}

// connectCommand rebuilds a client's connect command for a new owner's
// application: its identity, without the extra arguments.
func (c *Client) connectCommand() *message.Command {
	enc := 0.0
	if c.amf3 {
		enc = 3
	}
	app := c.inst.app + "/" + c.inst.name
	if c.query != "" {
		app += "?" + c.query
	}
	return &message.Command{Name: "connect", TransactionID: 1, Object: amf.Object{
		{Key: "app", Value: app}, {Key: "tcUrl", Value: c.tcURL}, {Key: "flashVer", Value: c.agent},
		{Key: "pageUrl", Value: c.pageURL}, {Key: "swfUrl", Value: c.swfURL}, {Key: "objectEncoding", Value: enc}}}
}
