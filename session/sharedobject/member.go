package sharedobject

import (
	"errors"
	"fmt"
	"log/slog"

	"github.com/rtmphub/rtmphub/rtmp/message"
)

// Member is a client subscribed to shared objects, as the objects see it.
// Members are compared as interface values: one client must always be the
// same Member (a pointer).
type Member interface {
	// ID identifies the member (to hooks).
	ID() uint64
	// AMF3 is the member's object encoding: shared object messages go to
	// it as AMF3 (type 16) or AMF0 (type 19).
	AMF3() bool
	// SendSO queues an encoded shared object message (chunk stream 3) for
	// the member. It must never drop one (a member that does not read is
	// disconnected instead) and must not block: it is called with an
	// Object locked.
	SendSO(m message.Message)
	// Logger is the member's logger, for what goes wrong with its
	// messages.
	Logger() *slog.Logger
}

// Access is a member's rights on object names (FMS readAccess and
// writeAccess): reading is needed to use an object, writing to change it
// or to create it.
type Access interface {
	MayRead(name string) bool
	MayWrite(name string) bool
}

// maxSubscriptions bounds the objects one member uses.
const maxSubscriptions = 256

// Subscriptions are the objects one member uses, by name, and what its
// shared object messages do to them. Not safe for concurrent use: the
// member's reader goroutine owns it.
type Subscriptions struct {
	reg *Registry
	m   Member
	a   Access
	sos map[string]*Object
}

// NewSubscriptions returns the (empty) subscriptions of m to the objects
// of r.
func NewSubscriptions(r *Registry, m Member, a Access) *Subscriptions {
	return &Subscriptions{reg: r, m: m, a: a}
}

// Len is the number of objects the member uses.
func (s *Subscriptions) Len() int { return len(s.sos) }

// ReleaseAll leaves every object, when the member goes.
func (s *Subscriptions) ReleaseAll() {
	for name, so := range s.sos {
		so.reg.release(so, s.m)
		delete(s.sos, name)
	}
}

// Handle handles a shared object message (type 16 or 19) from the member.
// An error is a message that does not decode.
func (s *Subscriptions) Handle(m *message.Message) error {
	amf3 := m.Type == message.TypeSharedObjectAMF3
	msg, err := message.DecodeSharedObject(m.Payload, amf3)
	if err != nil {
		return fmt.Errorf("bad shared object message: %w", err)
	}
	c := s.m
	so := s.sos[msg.Name]
	for i := range msg.Events {
		ev := &msg.Events[i]
		switch ev.Type {
		case message.SOUse:
			if !s.a.MayRead(msg.Name) {
				c.Logger().Info("shared object refused", "so", msg.Name, "reason", "no read access")
				sendStatus(c, msg.Name, msg.Persistent, codeNoReadAccess)
				continue
			}
			if so != nil && so.persistent != msg.Persistent {
				sendStatus(c, msg.Name, msg.Persistent, codeBadPersistence)
				continue
			}
			if so != nil {
				so.sendState(c) // a second Use: sync again
				continue
			}
			so = s.use(msg.Name, msg.Persistent)
		case message.SORelease:
			if so != nil {
				delete(s.sos, msg.Name)
				so.reg.release(so, c)
				so = nil
			}
		case message.SORequestChange, message.SORequestRemove:
			if so == nil {
				break
			}
			if !s.a.MayWrite(msg.Name) {
				so.revert(c, ev.Key, codeNoWriteAccess)
				break
			}
			if ev.Type == message.SORequestRemove {
				so.request(c, ev.Key, nil, true, amf3)
			} else {
				so.request(c, ev.Key, ev.Value, false, amf3)
			}
		case message.SOSendMessage:
			if so != nil && so.Send(ev.Handler, ev.Args...) == nil {
				so.callSendHook(c, ev.Handler, ev.Args)
			}
		default:
			c.Logger().Debug("shared object event ignored", "so", msg.Name, "event", ev.Type.String())
		}
	}
	return nil
}

func (s *Subscriptions) use(name string, persistent bool) *Object {
	c := s.m
	if len(s.sos) >= maxSubscriptions {
		sendStatus(c, name, persistent, codeObjectCreationFailed)
		return nil
	}
	so, err := s.reg.acquire(name, persistent, c, s.a)
	if err != nil {
		var se *statusError
		code := codeObjectCreationFailed
		if errors.As(err, &se) {
			code = se.code
		}
		c.Logger().Info("shared object refused", "so", name, "persistent", persistent, "reason", err.Error())
		sendStatus(c, name, persistent, code)
		return nil
	}
	if s.sos == nil {
		s.sos = make(map[string]*Object)
	}
	s.sos[name] = so
	so.sendState(c)
	return so
}

// send encodes a shared object message in c's encoding and queues it; it
// never drops (Member.SendSO).
func send(c Member, so *message.SharedObjectMessage) {
	m, err := encodeMessage(so, c.AMF3())
	if err != nil {
		c.Logger().Error("encoding shared object message", "so", so.Name, "err", err)
		return
	}
	c.SendSO(m)
}

func encodeMessage(so *message.SharedObjectMessage, amf3 bool) (message.Message, error) {
	p, err := message.EncodeSharedObject(nil, so, amf3)
	if err != nil {
		return message.Message{}, err
	}
	typ := message.TypeSharedObjectAMF0
	if amf3 {
		typ = message.TypeSharedObjectAMF3
	}
	return message.Message{Type: typ, ChunkStreamID: message.CSIDSharedOb, Payload: p}, nil
}

func sendStatus(c Member, name string, persistent bool, code string) {
	send(c, &message.SharedObjectMessage{Name: name, Persistent: persistent, Events: []message.SOEvent{
		{Type: message.SOStatus, Code: code, Level: statusLevelError}}})
}

// Uses returns the objects the member uses: name → persistent.
func (s *Subscriptions) Uses() map[string]bool {
	out := make(map[string]bool, len(s.sos))
	for name, so := range s.sos {
		out[name] = so.persistent
	}
	return out
}
