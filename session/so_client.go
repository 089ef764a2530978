package session

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/rtmphub/rtmphub/rtmp/message"
	"github.com/rtmphub/rtmphub/session/sharedobject"
)

// Shared objects (package sharedobject) bound to the core: each instance
// has a Registry of them, and a client uses them as a Member, through its
// Subscriptions.

// soConfig is what the server's configuration says of shared objects.
func (s *Server) soConfig() sharedobject.Config {
	return sharedobject.Config{
		DataDir:       s.cfg.DataDir,
		SyncInterval:  s.cfg.SOSyncInterval,
		SaveInterval:  s.cfg.SOSaveInterval,
		MaxObjects:    s.cfg.MaxSharedObjects,
		MaxSize:       s.cfg.MaxSOSize,
		MaxProperties: s.cfg.MaxSOProperties,
		Store:         s.cfg.SOStore,
	}
}

// SharedObject returns the instance's shared object name, loading or
// creating it, and holds it until Release: a temporary one lives while it
// has subscribers or server references.
func (in *Instance) SharedObject(name string, persistent bool) (*sharedobject.Object, error) {
	return in.so.Acquire(name, persistent)
}

// soMember is a client as its shared objects see it (sharedobject.Member
// and Access). It is the Client itself under another type, so that a
// client is one and the same member however often it is converted.
type soMember Client

func (m *soMember) ID() uint64                 { return m.id }
func (m *soMember) AMF3() bool                 { return m.amf3 }
func (m *soMember) Logger() *slog.Logger       { return m.log }
func (m *soMember) SendSO(msg message.Message) { (*Client)(m).send(msg) }

// MayRead and MayWrite are the client's readAccess and writeAccess
// (access.go).
func (m *soMember) MayRead(name string) bool  { return (*Client)(m).mayReadSO(name) }
func (m *soMember) MayWrite(name string) bool { return (*Client)(m).mayWriteSO(name) }

// soRoute is where a client's shared objects are: in its instance's
// registry here (this hub owns the instance, or is alone), or at the
// instance's owner hub, which its messages are forwarded to (SORelay). Its
// lock is taken by the client's reader goroutine and by a reroute when
// the instance's owner changed (never while an object is locked).
type soRoute struct {
	mu     sync.Mutex
	subs   *sharedobject.Subscriptions // here
	owner  string                      // the hub the objects are at; "": here
	inst   *Instance                   // the instance they are of, when at owner
	remote map[string]bool             // objects used at owner: name → persistent
}

// soInUse is the number of shared objects the client uses.
func (c *Client) soInUse() int {
	r := &c.sos
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.owner != "" {
		return len(r.remote)
	}
	if r.subs == nil {
		return 0
	}
	return r.subs.Len()
}

// soOwner is the hub owning instance in when another hub does and shared
// objects are forwarded to it; "" otherwise.
func (s *Server) soOwner(in *Instance) string {
	o, relay := s.cfg.Owners, s.cfg.SORelay
	if o == nil || relay == nil {
		return ""
	}
	owner, here := o.InstanceOwner(in.app, in.name)
	if here {
		return ""
	}
	return owner
}

// sharedObjectMessage handles a shared object message from the client.
func (c *Client) sharedObjectMessage(m *message.Message) error {
	if !c.connected {
		return errors.New("shared object message before connect")
	}
	r := &c.sos
	r.mu.Lock()
	defer r.mu.Unlock()
	c.rerouteLocked(c.inst, c.srv.soOwner(c.inst), false)
	if r.owner != "" {
		return c.forwardSOLocked(c.inst, m)
	}
	if r.subs == nil {
		r.subs = sharedobject.NewSubscriptions(c.inst.so, (*soMember)(c), (*soMember)(c))
	}
	return r.subs.Handle(m)
}

// forwardSOLocked sends a shared object message to the instance's owner,
// noting the objects the client uses there.
func (c *Client) forwardSOLocked(in *Instance, m *message.Message) error {
	r := &c.sos
	amf3 := m.Type == message.TypeSharedObjectAMF3
	msg, err := message.DecodeSharedObject(m.Payload, amf3)
	if err != nil {
		return fmt.Errorf("bad shared object message: %w", err)
	}
	read, write := c.mayReadSO(msg.Name), c.mayWriteSO(msg.Name)
	for _, ev := range msg.Events {
		switch ev.Type {
		case message.SOUse:
			if read && len(r.remote) < maxRemoteSOs {
				if r.remote == nil {
					r.remote = make(map[string]bool)
				}
				if _, ok := r.remote[msg.Name]; !ok {
					r.remote[msg.Name] = msg.Persistent
				}
			}
		case message.SORelease:
			delete(r.remote, msg.Name)
		}
	}
	c.srv.cfg.SORelay.ForwardSO(r.owner, in.app, in.name, RemoteSO{Client: c.id, AMF3: c.amf3, Read: read, Write: write}, *m)
	return nil
}

// maxRemoteSOs bounds the objects noted for one client at another hub (the
// owner bounds what it holds for it as for its own clients).
const maxRemoteSOs = 256

// rerouteLocked moves the client's objects to owner ("": here) when they
// are elsewhere: it leaves them where they are and uses them again where
// they go, which sends the client each object's state as a new
// subscriber gets it. force uses them again where they are (the owner
// lost messages for this hub). in is the client's instance. It may run
// on another goroutine than the client's: it reads only what was set
// before the client joined its instance.
func (c *Client) rerouteLocked(in *Instance, owner string, force bool) {
	r := &c.sos
	if owner == r.owner && !force {
		return
	}
	var uses map[string]bool
	if r.owner == "" {
		if r.subs != nil {
			uses = r.subs.Uses()
			r.subs.ReleaseAll()
		}
	} else {
		uses = r.remote
		if owner != r.owner {
			c.srv.cfg.SORelay.ForwardGone(r.owner, in.app, in.name, c.id)
		}
	}
	r.owner, r.remote, r.inst = owner, nil, in
	if len(uses) > 0 {
		c.srv.log.Info("shared objects moved", "client", c.id, "app", in.app, "instance", in.name,
			"to", cmp.Or(owner, "this hub"), "objects", len(uses), "resync", force)
	}
	for name, persistent := range uses {
		use, err := encodeUse(name, persistent, c.amf3)
		if err != nil {
			continue
		}
		if owner != "" {
			c.forwardSOLocked(in, &use)
			continue
		}
		if r.subs == nil {
			r.subs = sharedobject.NewSubscriptions(in.so, (*soMember)(c), (*soMember)(c))
		}
		r.subs.Handle(&use)
	}
}

// encodeUse is the Use message a client sends for an object.
func encodeUse(name string, persistent, amf3 bool) (message.Message, error) {
	p, err := message.EncodeSharedObject(nil, &message.SharedObjectMessage{Name: name, Persistent: persistent,
		Events: []message.SOEvent{{Type: message.SOUse}}}, amf3)
	typ := message.TypeSharedObjectAMF0
	if amf3 {
		typ = message.TypeSharedObjectAMF3
	}
	return message.Message{Type: typ, ChunkStreamID: message.CSIDSharedOb, Payload: p}, err
}

// releaseSharedObjects leaves every shared object when the client goes.
func (c *Client) releaseSharedObjects() {
	r := &c.sos
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.subs != nil {
		r.subs.ReleaseAll()
	}
	if r.owner != "" && r.inst != nil {
		// (c.inst may be gone: a connect refused after a reroute
		// pointed the client's objects at the owner.)
		c.srv.cfg.SORelay.ForwardGone(r.owner, r.inst.app, r.inst.name, c.id)
	}
	r.owner, r.remote, r.inst = "", nil, nil
}
