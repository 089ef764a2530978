package client

import (
	"context"

	"github.com/rtmphub/rtmphub/rtmp/message"
)

// Remote shared objects and server-to-client calls. The caller drives the
// connection: these write one message, or read until the message wanted
// arrives (others are kept for ReadMessage).

// WriteSO sends a shared object message in the connection's encoding
// (type 16 with AMF3 values when connected with objectEncoding 3).
func (c *Conn) WriteSO(so *message.SharedObjectMessage) error {
	p, err := message.EncodeSharedObject(nil, so, c.amf3)
	if err != nil {
		return err
	}
	typ := message.TypeSharedObjectAMF0
	if c.amf3 {
		typ = message.TypeSharedObjectAMF3
	}
	return c.WriteMessages([]message.Message{{Type: typ, Payload: p}})
}

// UseSO subscribes to a shared object; the server answers with UseSuccess,
// Clear and the slots (see ReadSO).
func (c *Conn) UseSO(name string, persistent bool, version uint32) error {
	return c.WriteSO(&message.SharedObjectMessage{Name: name, Persistent: persistent, Version: version,
		Events: []message.SOEvent{{Type: message.SOUse}}})
}

// ReleaseSO unsubscribes from a shared object.
func (c *Conn) ReleaseSO(name string, persistent bool) error {
	return c.WriteSO(&message.SharedObjectMessage{Name: name, Persistent: persistent,
		Events: []message.SOEvent{{Type: message.SORelease}}})
}

// SetSO asks the server to change slots (RequestChange events, in order).
func (c *Conn) SetSO(name string, persistent bool, version uint32, kv ...message.SOEvent) error {
	evs := make([]message.SOEvent, len(kv))
	for i, e := range kv {
		evs[i] = message.SOEvent{Type: message.SORequestChange, Key: e.Key, Value: e.Value}
	}
	return c.WriteSO(&message.SharedObjectMessage{Name: name, Persistent: persistent, Version: version, Events: evs})
}

// RemoveSO asks the server to remove a slot.
func (c *Conn) RemoveSO(name string, persistent bool, key string) error {
	return c.WriteSO(&message.SharedObjectMessage{Name: name, Persistent: persistent,
		Events: []message.SOEvent{{Type: message.SORequestRemove, Key: key}}})
}

// SendSO calls handler(args...) on every subscriber of the object.
func (c *Conn) SendSO(name string, persistent bool, handler string, args ...any) error {
	return c.WriteSO(&message.SharedObjectMessage{Name: name, Persistent: persistent,
		Events: []message.SOEvent{{Type: message.SOSendMessage, Handler: handler, Args: args}}})
}

// ReadSO reads until a shared object message for name arrives ("" for
// any) and returns it decoded.
func (c *Conn) ReadSO(ctx context.Context, name string) (*message.SharedObjectMessage, error) {
	var keep []*message.Message
	defer func() { c.backlog = append(c.backlog, keep...) }()
	for {
		m, err := c.next(ctx)
		if err != nil {
			return nil, err
		}
		if m.Type == message.TypeSharedObjectAMF0 || m.Type == message.TypeSharedObjectAMF3 {
			so, err := message.DecodeSharedObject(m.Payload, m.Type == message.TypeSharedObjectAMF3)
			if err != nil {
				return nil, err
			}
			if name == "" || so.Name == name {
				return so, nil
			}
		}
		keep = append(keep, m)
	}
}

// ReadCall reads until the server calls method ("" for any command that
// is not a _result or _error) and returns the call.
func (c *Conn) ReadCall(ctx context.Context, method string) (*message.Command, error) {
	var keep []*message.Message
	defer func() { c.backlog = append(c.backlog, keep...) }()
	for {
		m, err := c.next(ctx)
		if err != nil {
			return nil, err
		}
		if m.Type == message.TypeCommandAMF0 || m.Type == message.TypeCommandAMF3 {
			cmd, err := message.DecodeCommand(m)
			if err == nil && (cmd.Name == method || method == "" && cmd.Name != "_result" && cmd.Name != "_error") {
				return cmd, nil
			}
		}
		keep = append(keep, m)
	}
}

// Reply answers a server call with _result(txid, null, value).
func (c *Conn) Reply(txid float64, value any) error {
	return c.WriteCommand(0, &message.Command{Name: "_result", TransactionID: txid, Args: []any{value}})
}

// ReplyError answers a server call with _error(txid, null, info).
func (c *Conn) ReplyError(txid float64, info any) error {
	return c.WriteCommand(0, &message.Command{Name: "_error", TransactionID: txid, Args: []any{info}})
}

// next returns a message kept earlier (oldest first) or reads one.
func (c *Conn) next(ctx context.Context) (*message.Message, error) {
	if len(c.backlog) > 0 {
		m := c.backlog[0]
		c.backlog = c.backlog[1:]
		return m, nil
	}
	return c.readCtx(ctx)
}
