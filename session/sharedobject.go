package session

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/rtmphub/rtmphub/rtmp/amf"
	"github.com/rtmphub/rtmphub/rtmp/message"
)

// Remote shared objects.
//
// A SharedObject belongs to an application instance and is known by its
// name (which may contain slashes: "rooms/lobby") and its persistence.
// Clients subscribe with Use and propose changes; the server applies them
// at once and tells every subscriber at the end of the sync interval, in
// one message per subscriber that carries every change of the interval
// and the new version (one more than the last). The requester of an
// accepted change gets Success for its key instead of Change.
//
// Conflicts: the first writer of a slot in a sync interval wins; a later
// change to the same slot by another client in the same interval is
// refused, and its sender, like every other subscriber, gets the Change
// carrying the winning value, which reverts its local copy. All
// subscribers end in the same state.
//
// Locks: soSpace.mu before SharedObject.mu before a client's queue lock.
// Nothing calls out to application code with either held.

// SOStatus codes sent in Status events.
const (
	soNoReadAccess          = "SharedObject.NoReadAccess"
	soNoWriteAccess         = "SharedObject.NoWriteAccess"
	soObjectCreationFailed  = "SharedObject.ObjectCreationFailed"
	soBadPersistence        = "SharedObject.BadPersistence"
	soStatusLevelError      = "error"
	maxSONameLen            = 255
	maxSOSubscriptionsPerCl = 256
)

var soNameRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]*(/[A-Za-z0-9_][A-Za-z0-9_.-]*)*$`)

// ErrSOClosed is returned by a SharedObject that is no longer in use (no
// subscribers and no server reference).
var ErrSOClosed = errors.New("session: shared object closed")

// SOChange is a client's request to change or remove a slot, as a change
// hook sees it. The hook may set Value (and Modified) or Remove to apply
// something else than what was asked.
type SOChange struct {
	Client   *Client
	Key      string
	Value    any
	Remove   bool
	Modified bool // set by a hook that replaced Value or Remove
}

// SOChangeHook decides on a client's change: nil accepts it (as modified
// by the hook, if so), an error rejects it: the client's slot is reverted
// to the current value. It runs on the client's reader goroutine.
type SOChangeHook func(ch *SOChange) error

// soValue is a slot value with its AMF encoding, as kept on disk.
type soValue struct {
	v    any
	raw  []byte
	amf3 bool
}

// soOp is one change of the current sync interval.
type soOp struct {
	kind    message.SOEventType // SOChange (change or remove: see props), SOClear, SOSendMessage
	key     string
	handler string
	args    []any
}

// SharedObject is a remote shared object of an application instance.
type SharedObject struct {
	sp         *soSpace
	name       string
	persistent bool
	path       string // the file of a persistent one

	mu      sync.Mutex
	version uint32
	props   map[string]soValue
	size    int // bytes of keys and encoded values
	subs    map[*Client]struct{}
	refs    int // server-side references
	closed  bool
	hook    SOChangeHook
	sendHk  SOSendHook // script_hook.go
	locked  int
	timer   *time.Timer
	ops     []soOp
	opIndex map[string]int     // key → its op in ops
	writers map[string]*Client // slot → first writer this interval (nil: the server)
	extra   map[*Client][]message.SOEvent
	deleted map[string]uint32 // deleted slot → version of its deletion (so_purge.go)

	dirty     bool
	saveTimer *time.Timer
	saveMu    sync.Mutex
	savedVer  uint32
	saved     bool
}

// soSpace holds the shared objects of one instance.
type soSpace struct {
	in  *Instance
	mu  sync.Mutex
	sos map[string]*SharedObject
}

func (sp *soSpace) idle() bool {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	return len(sp.sos) == 0
}

func (sp *soSpace) cfg() *Config { return &sp.in.srv.cfg }

// soError is a refusal sent to a client as an SO Status event.
type soError struct{ code, desc string }

func (e *soError) Error() string { return e.code + ": " + e.desc }

// acquire returns the shared object name, loading or creating it, with
// the caller counted as a subscriber (c != nil) or a server reference.
func (sp *soSpace) acquire(name string, persistent bool, c *Client) (*SharedObject, error) {
	if len(name) > maxSONameLen || !soNameRE.MatchString(name) || strings.Contains(name, "..") {
		return nil, &soError{soObjectCreationFailed, fmt.Sprintf("Invalid shared object name (%s).", name)}
	}
	sp.mu.Lock()
	defer sp.mu.Unlock()
	so := sp.sos[name]
	if so == nil {
		if len(sp.sos) >= sp.cfg().MaxSharedObjects {
			return nil, &soError{soObjectCreationFailed, fmt.Sprintf("Too many shared objects (limit %d).", sp.cfg().MaxSharedObjects)}
		}
		path := sp.path(name)
		if !persistent && fileExists(path) {
			return nil, &soError{soBadPersistence, fmt.Sprintf("%s is a persistent shared object.", name)}
		}
		if c != nil && !c.mayWriteSO(name) && !(persistent && fileExists(path)) {
			// Creating one takes write access (Client.writeAccess, access.go).
			return nil, &soError{soNoWriteAccess, fmt.Sprintf("No write access to create shared object %s.", name)}
		}
		so = &SharedObject{sp: sp, name: name, persistent: persistent, props: make(map[string]soValue), subs: make(map[*Client]struct{})}
		if persistent {
			so.path = path
			if err := so.load(); err != nil {
				sp.in.srv.log.Error("loading shared object", "app", sp.in.app, "instance", sp.in.name, "so", name, "err", err.Error())
				return nil, &soError{soObjectCreationFailed, "Cannot load the shared object."}
			}
		}
		if sp.sos == nil {
			sp.sos = make(map[string]*SharedObject)
		}
		sp.sos[name] = so
	} else if so.persistent != persistent {
		return nil, &soError{soBadPersistence, fmt.Sprintf("%s exists with another persistence.", name)}
	}
	so.mu.Lock()
	if c != nil {
		so.subs[c] = struct{}{}
	} else {
		so.refs++
	}
	so.mu.Unlock()
	return so, nil
}

// release drops a subscriber (c != nil) or a server reference, and
// unloads the object when nothing holds it: a persistent one is written
// first.
func (sp *soSpace) release(so *SharedObject, c *Client) {
	sp.mu.Lock()
	so.mu.Lock()
	if c != nil {
		delete(so.subs, c)
		delete(so.extra, c)
	} else if so.refs > 0 {
		so.refs--
	}
	last := len(so.subs) == 0 && so.refs == 0 && !so.closed
	if last {
		so.closed = true
		if sp.sos[so.name] == so {
			delete(sp.sos, so.name)
		}
		so.flushLocked()
		if so.timer != nil {
			so.timer.Stop()
			so.timer = nil
		}
		if so.saveTimer != nil {
			so.saveTimer.Stop()
			so.saveTimer = nil
		}
	}
	so.mu.Unlock()
	// Saved with the space locked, so that the object cannot be loaded
	// again from an older file meanwhile.
	if last && so.persistent {
		so.saveNow()
	}
	sp.mu.Unlock()
}

// --- client side ---

// sharedObjectMessage handles a shared object message from the client.
func (c *Client) sharedObjectMessage(m *message.Message) error {
	if !c.connected {
		return errors.New("shared object message before connect")
	}
	amf3 := m.Type == message.TypeSharedObjectAMF3
	msg, err := message.DecodeSharedObject(m.Payload, amf3)
	if err != nil {
		return fmt.Errorf("bad shared object message: %w", err)
	}
	so := c.sos[msg.Name]
	for i := range msg.Events {
		ev := &msg.Events[i]
		switch ev.Type {
		case message.SOUse:
			if !c.mayReadSO(msg.Name) { // Client.readAccess (access.go)
				c.log.Info("shared object refused", "so", msg.Name, "reason", "no read access")
				c.sendSOStatus(msg.Name, msg.Persistent, soNoReadAccess)
				continue
			}
			if so != nil && so.persistent != msg.Persistent {
				c.sendSOStatus(msg.Name, msg.Persistent, soBadPersistence)
				continue
			}
			if so != nil {
				so.sendState(c) // a second Use: sync again
				continue
			}
			so = c.useSO(msg.Name, msg.Persistent)
		case message.SORelease:
			if so != nil {
				delete(c.sos, msg.Name)
				so.sp.release(so, c)
				so = nil
			}
		case message.SORequestChange, message.SORequestRemove:
			if so == nil {
				break
			}
			if !c.mayWriteSO(msg.Name) { // Client.writeAccess (access.go)
				so.revert(c, ev.Key, soNoWriteAccess)
				break
			}
			if ev.Type == message.SORequestRemove {
				so.request(c, ev.Key, nil, true, amf3)
			} else {
				so.request(c, ev.Key, ev.Value, false, amf3)
			}
		case message.SOSendMessage:
			if so != nil {
				so.Send(ev.Handler, ev.Args...)
				so.callSendHook(c, ev.Handler, ev.Args)
			}
		default:
			c.log.Debug("shared object event ignored", "so", msg.Name, "event", ev.Type.String())
		}
	}
	return nil
}

func (c *Client) useSO(name string, persistent bool) *SharedObject {
	if len(c.sos) >= maxSOSubscriptionsPerCl {
		c.sendSOStatus(name, persistent, soObjectCreationFailed)
		return nil
	}
	so, err := c.inst.so.acquire(name, persistent, c)
	if err != nil {
		var se *soError
		code := soObjectCreationFailed
		if errors.As(err, &se) {
			code = se.code
		}
		c.log.Info("shared object refused", "so", name, "persistent", persistent, "reason", err.Error())
		c.sendSOStatus(name, persistent, code)
		return nil
	}
	if c.sos == nil {
		c.sos = make(map[string]*SharedObject)
	}
	c.sos[name] = so
	so.sendState(c)
	return so
}

// releaseSharedObjects leaves every shared object when the client goes.
func (c *Client) releaseSharedObjects() {
	for name, so := range c.sos {
		so.sp.release(so, c)
		delete(c.sos, name)
	}
}

// sendSO encodes a shared object message in the client's encoding and
// queues it; it never drops (see send).
func (c *Client) sendSO(so *message.SharedObjectMessage) {
	m, err := encodeSOMessage(so, c.amf3)
	if err != nil {
		c.log.Error("encoding shared object message", "so", so.Name, "err", err)
		return
	}
	c.send(m)
}

func encodeSOMessage(so *message.SharedObjectMessage, amf3 bool) (message.Message, error) {
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

func (c *Client) sendSOStatus(name string, persistent bool, code string) {
	c.sendSO(&message.SharedObjectMessage{Name: name, Persistent: persistent, Events: []message.SOEvent{
		{Type: message.SOStatus, Code: code, Level: soStatusLevelError}}})
}

// --- the object ---

// sendState sends a subscriber the whole object: UseSuccess, Clear, then
// a Change per slot, with the current version.
func (so *SharedObject) sendState(c *Client) {
	so.mu.Lock()
	defer so.mu.Unlock()
	evs := make([]message.SOEvent, 0, 2+len(so.props))
	evs = append(evs, message.SOEvent{Type: message.SOUseSuccess}, message.SOEvent{Type: message.SOClear})
	for _, k := range so.sortedKeysLocked() {
		evs = append(evs, message.SOEvent{Type: message.SOChange, Key: k, Value: so.props[k].v})
	}
	c.sendSO(&message.SharedObjectMessage{Name: so.name, Version: so.version, Persistent: so.persistent, Events: evs})
}

func (so *SharedObject) sortedKeysLocked() []string {
	keys := make([]string, 0, len(so.props))
	for k := range so.props {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// encodeValue encodes v as it is kept: AMF3 when it came from an AMF3
// peer, otherwise AMF0 (AMF3-only types behind an AVM+ switch).
func encodeSOValue(v any, amf3 bool) ([]byte, error) {
	e := amf.Encoder{NoReferences: true}
	var err error
	if amf3 {
		err = e.EncodeAMF3(v)
	} else {
		err = e.EncodeAMF0(v)
	}
	return e.Bytes(), err
}

// request applies a client's change or removal of a slot.
func (so *SharedObject) request(c *Client, key string, value any, remove, amf3 bool) {
	so.mu.Lock()
	hook := so.hook
	so.mu.Unlock()
	ch := &SOChange{Client: c, Key: key, Value: value, Remove: remove}
	if hook != nil {
		if err := safeHook(c, hook, ch); err != nil {
			c.log.Debug("shared object change rejected", "so", so.name, "key", key, "reason", err.Error())
			so.revert(c, key, "")
			return
		}
	}
	var raw []byte
	if !ch.Remove {
		var err error
		if raw, err = encodeSOValue(ch.Value, amf3); err != nil {
			so.revert(c, key, "")
			return
		}
	}
	so.mu.Lock()
	defer so.mu.Unlock()
	if so.closed {
		return
	}
	if w, ok := so.writers[key]; ok && w != c {
		// Somebody else wrote this slot first in this interval: the
		// change is refused; the Change of the winning value (sent to
		// every subscriber but the winner) reverts the loser's copy.
		so.touchLocked(key)
		return
	}
	if err := so.setLocked(key, ch.Value, raw, amf3, ch.Remove); err != nil {
		c.log.Info("shared object change refused", "so", so.name, "key", key, "reason", err.Error())
		so.revertLocked(c, key, soNoWriteAccess)
		return
	}
	if ch.Modified {
		so.writers[key] = nil // everyone, the requester too, gets the new value
	} else {
		so.writers[key] = c
	}
}

func safeHook(c *Client, hook SOChangeHook, ch *SOChange) (err error) {
	defer func() {
		if r := recover(); r != nil {
			c.log.Error("shared object change hook panicked", "panic", fmt.Sprint(r))
			err = errors.New("change hook failed")
		}
	}()
	return hook(ch)
}

// revert tells c the current value of key (or its absence), with a
// Status event of code first when code is set, at the next sync.
func (so *SharedObject) revert(c *Client, key, code string) {
	so.mu.Lock()
	defer so.mu.Unlock()
	so.revertLocked(c, key, code)
}

func (so *SharedObject) revertLocked(c *Client, key, code string) {
	if so.closed {
		return
	}
	if so.extra == nil {
		so.extra = make(map[*Client][]message.SOEvent)
	}
	if code != "" {
		so.extra[c] = append(so.extra[c], message.SOEvent{Type: message.SOStatus, Code: code, Level: soStatusLevelError})
	}
	if v, ok := so.props[key]; ok {
		so.extra[c] = append(so.extra[c], message.SOEvent{Type: message.SOChange, Key: key, Value: v.v})
	} else {
		so.extra[c] = append(so.extra[c], message.SOEvent{Type: message.SORemove, Key: key})
	}
	if len(so.extra[c]) >= maxSOEventsPerSync && so.locked == 0 {
		so.flushLocked()
		return
	}
	so.scheduleLocked()
}

// setLocked applies a change, within the limits, and records it for the
// next sync.
func (so *SharedObject) setLocked(key string, v any, raw []byte, amf3, remove bool) error {
	cfg := so.sp.cfg()
	old, had := so.props[key]
	oldSize := 0
	if had {
		oldSize = len(key) + len(old.raw)
	}
	if remove {
		if had {
			delete(so.props, key)
			so.size -= oldSize
			so.markDeletedLocked(key)
		}
	} else {
		if !had && len(so.props) >= cfg.MaxSOProperties {
			return fmt.Errorf("too many properties (limit %d)", cfg.MaxSOProperties)
		}
		if n := so.size - oldSize + len(key) + len(raw); n > cfg.MaxSOSize {
			return fmt.Errorf("shared object too large (%d bytes, limit %d)", n, cfg.MaxSOSize)
		}
		so.props[key] = soValue{v: v, raw: raw, amf3: amf3}
		so.size += len(key) + len(raw) - oldSize
		delete(so.deleted, key)
	}
	so.touchLocked(key)
	return nil
}

// touchLocked records that key changed in this interval.
func (so *SharedObject) touchLocked(key string) {
	if so.opIndex == nil {
		so.opIndex = make(map[string]int)
		so.writers = make(map[string]*Client)
	}
	if _, ok := so.opIndex[key]; !ok {
		so.opIndex[key] = len(so.ops)
		so.ops = append(so.ops, soOp{kind: message.SOChange, key: key})
	}
	so.scheduleLocked()
}

// maxSOEventsPerSync bounds the events one sync interval collects: a
// client flooding an object makes it sync early rather than grow.
const maxSOEventsPerSync = 4096

func (so *SharedObject) scheduleLocked() {
	if so.locked == 0 && !so.closed && len(so.ops) >= maxSOEventsPerSync {
		so.flushLocked()
		return
	}
	if so.timer == nil && so.locked == 0 && !so.closed {
		so.timer = time.AfterFunc(so.sp.cfg().SOSyncInterval, so.flush)
	}
}

func (so *SharedObject) flush() {
	so.mu.Lock()
	defer so.mu.Unlock()
	so.timer = nil
	if so.locked == 0 {
		so.flushLocked()
	}
}

// flushLocked sends the interval's changes to every subscriber: one
// message each, shared between subscribers that get the same events.
func (so *SharedObject) flushLocked() {
	if so.timer != nil {
		so.timer.Stop()
		so.timer = nil
	}
	if len(so.ops) == 0 && len(so.extra) == 0 {
		return
	}
	changed := false
	for _, op := range so.ops {
		if op.kind != message.SOSendMessage {
			changed = true
			break
		}
	}
	if changed {
		so.version++
		so.dirty = true
	}
	common := so.eventsFor(nil)
	var shared [2]*message.Message
	for c := range so.subs {
		own := so.extra[c]
		wrote := false
		for _, w := range so.writers {
			if w == c {
				wrote = true
				break
			}
		}
		if !wrote && len(own) == 0 {
			if len(common) == 0 {
				continue
			}
			i := 0
			if c.amf3 {
				i = 1
			}
			if shared[i] == nil {
				m, err := encodeSOMessage(&message.SharedObjectMessage{Name: so.name, Version: so.version, Persistent: so.persistent, Events: common}, c.amf3)
				if err != nil {
					c.log.Error("encoding shared object message", "so", so.name, "err", err)
					continue
				}
				shared[i] = &m
			}
			c.send(*shared[i])
			continue
		}
		evs := so.eventsFor(c)
		evs = append(evs, own...)
		if len(evs) > 0 {
			c.sendSO(&message.SharedObjectMessage{Name: so.name, Version: so.version, Persistent: so.persistent, Events: evs})
		}
	}
	so.ops = so.ops[:0]
	clear(so.opIndex)
	clear(so.writers)
	clear(so.extra)
	if so.persistent && so.dirty && so.saveTimer == nil && !so.closed {
		so.saveTimer = time.AfterFunc(so.sp.cfg().SOSaveInterval, func() {
			so.mu.Lock()
			so.saveTimer = nil
			so.mu.Unlock()
			so.saveNow()
		})
	}
}

// eventsFor builds the interval's events as subscriber c sees them (nil:
// a subscriber that wrote nothing).
func (so *SharedObject) eventsFor(c *Client) []message.SOEvent {
	evs := make([]message.SOEvent, 0, len(so.ops))
	for _, op := range so.ops {
		switch op.kind {
		case message.SOClear:
			evs = append(evs, message.SOEvent{Type: message.SOClear})
		case message.SOSendMessage:
			evs = append(evs, message.SOEvent{Type: message.SOSendMessage, Handler: op.handler, Args: op.args})
		default:
			if w, ok := so.writers[op.key]; ok && w == c && c != nil {
				evs = append(evs, message.SOEvent{Type: message.SOSuccess, Key: op.key})
			} else if v, ok := so.props[op.key]; ok {
				evs = append(evs, message.SOEvent{Type: message.SOChange, Key: op.key, Value: v.v})
			} else {
				evs = append(evs, message.SOEvent{Type: message.SORemove, Key: op.key})
			}
		}
	}
	return evs
}

// --- server-side API (for scripts and Go applications) ---

// SharedObject returns the instance's shared object name, loading or
// creating it, and holds it until Release: a temporary one lives while it
// has subscribers or server references.
func (in *Instance) SharedObject(name string, persistent bool) (*SharedObject, error) {
	return in.so.acquire(name, persistent, nil)
}

// Release drops the reference SharedObject returned.
func (so *SharedObject) Release() { so.sp.release(so, nil) }

// Name and Persistent identify the object.
func (so *SharedObject) Name() string     { return so.name }
func (so *SharedObject) Persistent() bool { return so.persistent }

// Version is the object's version: one more after each sync that changed
// it.
func (so *SharedObject) Version() uint32 {
	so.mu.Lock()
	defer so.mu.Unlock()
	return so.version
}

// Subscribers is the number of clients using the object.
func (so *SharedObject) Subscribers() int {
	so.mu.Lock()
	defer so.mu.Unlock()
	return len(so.subs)
}

// Get returns the value of a slot.
func (so *SharedObject) Get(key string) (any, bool) {
	so.mu.Lock()
	defer so.mu.Unlock()
	v, ok := so.props[key]
	return v.v, ok
}

// Names returns the slot names, sorted.
func (so *SharedObject) Names() []string {
	so.mu.Lock()
	defer so.mu.Unlock()
	return so.sortedKeysLocked()
}

// Set sets a slot; subscribers get it at the next sync. A server write
// wins over clients' writes of the same interval. A nil value is null; use
// Delete to remove a slot.
func (so *SharedObject) Set(key string, v any) error {
	raw, err := encodeSOValue(v, false)
	if err != nil {
		return err
	}
	return so.write(key, v, raw, false)
}

// Delete removes a slot.
func (so *SharedObject) Delete(key string) error { return so.write(key, nil, nil, true) }

func (so *SharedObject) write(key string, v any, raw []byte, remove bool) error {
	so.mu.Lock()
	defer so.mu.Unlock()
	if so.closed {
		return ErrSOClosed
	}
	if err := so.setLocked(key, v, raw, false, remove); err != nil {
		return err
	}
	so.writers[key] = nil
	return nil
}

// Clear removes every slot.
func (so *SharedObject) Clear() error {
	so.mu.Lock()
	defer so.mu.Unlock()
	if so.closed {
		return ErrSOClosed
	}
	clear(so.props)
	clear(so.deleted) // (so_purge.go)
	so.size = 0
	so.ops = append(so.ops[:0], soOp{kind: message.SOClear})
	if so.opIndex == nil {
		so.opIndex = make(map[string]int)
		so.writers = make(map[string]*Client)
	}
	clear(so.opIndex)
	clear(so.writers)
	so.scheduleLocked()
	return nil
}

// Send calls handler with args on every subscriber (SendMessage), at the
// next sync, in order with the changes.
func (so *SharedObject) Send(handler string, args ...any) error {
	so.mu.Lock()
	defer so.mu.Unlock()
	if so.closed {
		return ErrSOClosed
	}
	so.ops = append(so.ops, soOp{kind: message.SOSendMessage, handler: handler, args: args})
	so.scheduleLocked()
	return nil
}

// Lock holds every change back until the matching Unlock, which sends
// them in one sync.
func (so *SharedObject) Lock() {
	so.mu.Lock()
	so.locked++
	so.mu.Unlock()
}

// Unlock ends a Lock; the last one sends what was held back.
func (so *SharedObject) Unlock() {
	so.mu.Lock()
	defer so.mu.Unlock()
	if so.locked > 0 {
		so.locked--
	}
	if so.locked == 0 {
		so.flushLocked()
	}
}

// Flush sends pending changes now and, for a persistent object, writes it
// to disk before returning.
func (so *SharedObject) Flush() error {
	so.mu.Lock()
	if so.locked == 0 {
		so.flushLocked()
	}
	so.mu.Unlock()
	if so.persistent {
		return so.saveNow()
	}
	return nil
}

// SetChangeHook installs the hook deciding on clients' changes (nil
// removes it).
func (so *SharedObject) SetChangeHook(h SOChangeHook) {
	so.mu.Lock()
	so.hook = h
	so.mu.Unlock()
}
