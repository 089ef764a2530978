package session

import (
	"errors"
	"log/slog"

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

// sharedObjectMessage handles a shared object message from the client.
func (c *Client) sharedObjectMessage(m *message.Message) error {
	if !c.connected {
		return errors.New("shared object message before connect")
	}
	if c.sos == nil {
		c.sos = sharedobject.NewSubscriptions(c.inst.so, (*soMember)(c), (*soMember)(c))
	}
	return c.sos.Handle(m)
}

// releaseSharedObjects leaves every shared object when the client goes.
func (c *Client) releaseSharedObjects() {
	if c.sos != nil {
		c.sos.ReleaseAll()
	}
}
