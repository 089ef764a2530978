package sharedobject

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/rtmphub/rtmphub/rtmp/amf"
	"github.com/rtmphub/rtmphub/rtmp/message"
)

// ErrClosed is returned by an Object that is no longer in use (no
// subscribers and no server reference). Its text is the one scripts have
// always been shown.
var ErrClosed = errors.New("session: shared object closed")

// Change is a client's request to change or remove a slot, as a change
// hook sees it. The hook may set Value (and Modified) or Remove to apply
// something else than what was asked.
type Change struct {
	Member   Member
	Key      string
	Value    any
	Remove   bool
	Modified bool // set by a hook that replaced Value or Remove
}

// ChangeHook decides on a client's change: nil accepts it (as modified
// by the hook, if so), an error rejects it: the client's slot is reverted
// to the current value. It runs on the client's reader goroutine, before
// the object decides between simultaneous changes: a change the hook
// accepts may still be refused (see SyncHook for the changes made).
type ChangeHook func(ch *Change) error

// Synced is a client's change the object made: its slot's value before
// (Old, HadOld) and after (Value, or Remove), as the hooks left it.
type Synced struct {
	Member Member
	Key    string
	Value  any
	Remove bool
	Old    any
	HadOld bool
}

// SyncHook is told of clients' changes the object accepted, never of
// refused ones (a conflict lost in the sync interval, a limit, a
// ChangeHook's rejection), in the order they were made. It is called
// without the object's lock, on the reader goroutine of one of the
// clients whose changes it reports; calls do not overlap. It may use the
// object, but must not block for long: it holds up clients' changes.
type SyncHook func(s Synced)

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

// Object is a remote shared object of an application instance.
type Object struct {
	reg        *Registry
	name       string
	persistent bool
	path       string // the file of a persistent one

	mu      sync.Mutex
	version uint32
	props   map[string]soValue
	size    int // bytes of keys and encoded values
	subs    map[Member]struct{}
	refs    int // server-side references
	closed  bool
	hook    ChangeHook
	sendHk  SendHook
	syncHk  SyncHook
	synced  []Synced   // accepted changes not yet told to syncHk (deliverSynced)
	syncMu  sync.Mutex // held while telling syncHk, so that it hears changes in order
	locked  int
	timer   *time.Timer
	ops     []soOp
	opIndex map[string]int    // key → its op in ops
	writers map[string]Member // slot → first writer this interval (nil: the server)
	// A write conflicts with an earlier one of the interval only when the
	// writer had not seen it: writes numbers the interval's writes, wrote
	// is the number of each slot's last write, and seen the number of
	// the last write that the whole state a member was sent (sendState,
	// at its use) included.
	writes  uint64
	wrote   map[string]uint64
	seen    map[Member]uint64
	extra   map[Member][]message.SOEvent
	deleted map[string]uint32 // deleted slot → version of its deletion (purge.go)

	dirty     bool
	saveTimer *time.Timer
	saveMu    sync.Mutex
	savedVer  uint32
	saved     bool
}

// sendState sends a subscriber the whole object: UseSuccess, Clear, then
// a Change per slot, with the current version.
func (so *Object) sendState(c Member) {
	so.mu.Lock()
	defer so.mu.Unlock()
	evs := make([]message.SOEvent, 0, 2+len(so.props))
	evs = append(evs, message.SOEvent{Type: message.SOUseSuccess}, message.SOEvent{Type: message.SOClear})
	for _, k := range so.sortedKeysLocked() {
		evs = append(evs, message.SOEvent{Type: message.SOChange, Key: k, Value: so.props[k].v})
	}
	send(c, &message.SharedObjectMessage{Name: so.name, Version: so.version, Persistent: so.persistent, Events: evs})
	if so.writes > 0 {
		// c now holds this interval's writes so far: a change it asks
		// for later is made over them, not against them (see request).
		if so.seen == nil {
			so.seen = make(map[Member]uint64)
		}
		so.seen[c] = so.writes
	}
}

func (so *Object) sortedKeysLocked() []string {
	keys := make([]string, 0, len(so.props))
	for k := range so.props {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// encodeSOValue encodes v as it is kept: AMF3 when it came from an AMF3
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
func (so *Object) request(c Member, key string, value any, remove, amf3 bool) {
	so.mu.Lock()
	hook := so.hook
	so.mu.Unlock()
	ch := &Change{Member: c, Key: key, Value: value, Remove: remove}
	if hook != nil {
		if err := safeHook(c, hook, ch); err != nil {
			c.Logger().Debug("shared object change rejected", "so", so.name, "key", key, "reason", err.Error())
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
	if so.apply(c, key, ch, raw, amf3) {
		so.deliverSynced()
	}
}

// apply makes a change a ChangeHook accepted, unless it conflicts or
// breaks a limit; it reports whether a SyncHook has it to hear.
func (so *Object) apply(c Member, key string, ch *Change, raw []byte, amf3 bool) bool {
	so.mu.Lock()
	defer so.mu.Unlock()
	if so.closed {
		return false
	}
	if w, ok := so.writers[key]; ok && w != c && so.wrote[key] > so.seen[c] {
		// Somebody else wrote this slot first in this interval, and c
		// had not been sent that value: the change is refused; the
		// Change of the winning value (sent to every subscriber but the
		// winner) reverts the loser's copy. A member that used the
		// object after that write got its value with the object's
		// state: its change comes after it and replaces it.
		so.touchLocked(key)
		return false
	}
	old, had := so.props[key]
	if err := so.setLocked(key, ch.Value, raw, amf3, ch.Remove); err != nil {
		c.Logger().Info("shared object change refused", "so", so.name, "key", key, "reason", err.Error())
		so.revertLocked(c, key, codeNoWriteAccess)
		return false
	}
	if ch.Modified {
		so.writers[key] = nil // everyone, the requester too, gets the new value
	} else {
		so.writers[key] = c
	}
	if so.syncHk == nil {
		return false
	}
	// Queued under the lock, in the order the changes are made; told
	// after it (deliverSynced).
	so.synced = append(so.synced, Synced{Member: c, Key: key, Value: ch.Value, Remove: ch.Remove, Old: old.v, HadOld: had})
	return true
}

// deliverSynced tells the SyncHook the accepted changes queued so far,
// in order, without the object's lock: syncMu keeps the calls in order
// and apart (a change queued while another goroutine tells is told by
// that goroutine, or by this one after it).
func (so *Object) deliverSynced() {
	so.syncMu.Lock()
	defer so.syncMu.Unlock()
	for {
		so.mu.Lock()
		batch, h := so.synced, so.syncHk
		so.synced = nil
		so.mu.Unlock()
		if len(batch) == 0 || h == nil {
			return
		}
		for _, s := range batch {
			so.safeSyncHook(h, s)
		}
	}
}

func (so *Object) safeSyncHook(h SyncHook, s Synced) {
	defer func() {
		if r := recover(); r != nil {
			s.Member.Logger().Error("shared object sync hook panicked", "so", so.name, "panic", fmt.Sprint(r))
		}
	}()
	h(s)
}

func safeHook(c Member, hook ChangeHook, ch *Change) (err error) {
	defer func() {
		if r := recover(); r != nil {
			c.Logger().Error("shared object change hook panicked", "panic", fmt.Sprint(r))
			err = errors.New("change hook failed")
		}
	}()
	return hook(ch)
}

// revert tells c the current value of key (or its absence), with a
// Status event of code first when code is set, at the next sync.
func (so *Object) revert(c Member, key, code string) {
	so.mu.Lock()
	defer so.mu.Unlock()
	so.revertLocked(c, key, code)
}

func (so *Object) revertLocked(c Member, key, code string) {
	if so.closed {
		return
	}
	if so.extra == nil {
		so.extra = make(map[Member][]message.SOEvent)
	}
	if code != "" {
		so.extra[c] = append(so.extra[c], message.SOEvent{Type: message.SOStatus, Code: code, Level: statusLevelError})
	}
	if v, ok := so.props[key]; ok {
		so.extra[c] = append(so.extra[c], message.SOEvent{Type: message.SOChange, Key: key, Value: v.v})
	} else {
		so.extra[c] = append(so.extra[c], message.SOEvent{Type: message.SORemove, Key: key})
	}
	if len(so.extra[c]) >= maxEventsPerSync && so.locked == 0 {
		so.flushLocked()
		return
	}
	so.scheduleLocked()
}

// setLocked applies a change, within the limits, and records it for the
// next sync.
func (so *Object) setLocked(key string, v any, raw []byte, amf3, remove bool) error {
	cfg := &so.reg.cfg
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
		if !had && len(so.props) >= cfg.MaxProperties {
			return fmt.Errorf("too many properties (limit %d)", cfg.MaxProperties)
		}
		if n := so.size - oldSize + len(key) + len(raw); n > cfg.MaxSize {
			return fmt.Errorf("shared object too large (%d bytes, limit %d)", n, cfg.MaxSize)
		}
		so.props[key] = soValue{v: v, raw: raw, amf3: amf3}
		so.size += len(key) + len(raw) - oldSize
		delete(so.deleted, key)
	}
	so.touchLocked(key)
	if so.wrote == nil {
		so.wrote = make(map[string]uint64)
	}
	so.writes++
	so.wrote[key] = so.writes
	return nil
}

// touchLocked records that key changed in this interval.
func (so *Object) touchLocked(key string) {
	if so.opIndex == nil {
		so.opIndex = make(map[string]int)
		so.writers = make(map[string]Member)
	}
	if _, ok := so.opIndex[key]; !ok {
		so.opIndex[key] = len(so.ops)
		so.ops = append(so.ops, soOp{kind: message.SOChange, key: key})
	}
	so.scheduleLocked()
}

// maxEventsPerSync bounds the events one sync interval collects: a
// client flooding an object makes it sync early rather than grow.
const maxEventsPerSync = 4096

func (so *Object) scheduleLocked() {
	if so.locked == 0 && !so.closed && len(so.ops) >= maxEventsPerSync {
		so.flushLocked()
		return
	}
	if so.timer == nil && so.locked == 0 && !so.closed {
		so.timer = time.AfterFunc(so.reg.cfg.SyncInterval, so.flush)
	}
}

func (so *Object) flush() {
	so.mu.Lock()
	defer so.mu.Unlock()
	so.timer = nil
	if so.locked == 0 {
		so.flushLocked()
	}
}

// flushLocked sends the interval's changes to every subscriber: one
// message each, shared between subscribers that get the same events.
func (so *Object) flushLocked() {
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
			if c.AMF3() {
				i = 1
			}
			if shared[i] == nil {
				m, err := encodeMessage(&message.SharedObjectMessage{Name: so.name, Version: so.version, Persistent: so.persistent, Events: common}, c.AMF3())
				if err != nil {
					c.Logger().Error("encoding shared object message", "so", so.name, "err", err)
					continue
				}
				shared[i] = &m
			}
			c.SendSO(*shared[i])
			continue
		}
		evs := so.eventsFor(c)
		evs = append(evs, own...)
		if len(evs) > 0 {
			send(c, &message.SharedObjectMessage{Name: so.name, Version: so.version, Persistent: so.persistent, Events: evs})
		}
	}
	so.ops = so.ops[:0]
	clear(so.opIndex)
	clear(so.writers)
	clear(so.extra)
	so.writes = 0
	clear(so.wrote)
	clear(so.seen)
	if so.persistent && so.dirty && so.saveTimer == nil && !so.closed {
		so.saveTimer = time.AfterFunc(so.reg.cfg.SaveInterval, func() {
			so.mu.Lock()
			so.saveTimer = nil
			so.mu.Unlock()
			so.saveNow()
		})
	}
}

// eventsFor builds the interval's events as subscriber c sees them (nil:
// a subscriber that wrote nothing).
func (so *Object) eventsFor(c Member) []message.SOEvent {
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

// Release drops the reference Registry.Acquire returned.
func (so *Object) Release() { so.reg.release(so, nil) }

// Name and Persistent identify the object.
func (so *Object) Name() string     { return so.name }
func (so *Object) Persistent() bool { return so.persistent }

// Version is the object's version: one more after each sync that changed
// it.
func (so *Object) Version() uint32 {
	so.mu.Lock()
	defer so.mu.Unlock()
	return so.version
}

// Info is what an admin view shows of an object, taken at one moment.
type Info struct {
	Name        string
	Persistent  bool
	Version     uint32
	Subscribers int
	Size        int // bytes of keys and encoded values
}

// Info returns the object's name, version, subscribers and size.
func (so *Object) Info() Info {
	so.mu.Lock()
	defer so.mu.Unlock()
	return Info{Name: so.name, Persistent: so.persistent, Version: so.version, Subscribers: len(so.subs), Size: so.size}
}

// Subscribers is the number of clients using the object.
func (so *Object) Subscribers() int {
	so.mu.Lock()
	defer so.mu.Unlock()
	return len(so.subs)
}

// Get returns the value of a slot.
func (so *Object) Get(key string) (any, bool) {
	so.mu.Lock()
	defer so.mu.Unlock()
	v, ok := so.props[key]
	return v.v, ok
}

// Names returns the slot names, sorted.
func (so *Object) Names() []string {
	so.mu.Lock()
	defer so.mu.Unlock()
	return so.sortedKeysLocked()
}

// Set sets a slot; subscribers get it at the next sync. A server write
// wins over clients' writes of the same interval. A nil value is null; use
// Delete to remove a slot.
func (so *Object) Set(key string, v any) error {
	raw, err := encodeSOValue(v, false)
	if err != nil {
		return err
	}
	return so.write(key, v, raw, false)
}

// Delete removes a slot.
func (so *Object) Delete(key string) error { return so.write(key, nil, nil, true) }

func (so *Object) write(key string, v any, raw []byte, remove bool) error {
	so.mu.Lock()
	defer so.mu.Unlock()
	if so.closed {
		return ErrClosed
	}
	if err := so.setLocked(key, v, raw, false, remove); err != nil {
		return err
	}
	so.writers[key] = nil
	return nil
}

// Clear removes every slot.
func (so *Object) Clear() error {
	so.mu.Lock()
	defer so.mu.Unlock()
	if so.closed {
		return ErrClosed
	}
	clear(so.props)
	clear(so.deleted) // (purge.go)
	so.size = 0
	so.ops = append(so.ops[:0], soOp{kind: message.SOClear})
	if so.opIndex == nil {
		so.opIndex = make(map[string]int)
		so.writers = make(map[string]Member)
	}
	clear(so.opIndex)
	clear(so.writers)
	so.scheduleLocked()
	return nil
}

// Send calls handler with args on every subscriber (SendMessage), at the
// next sync, in order with the changes.
func (so *Object) Send(handler string, args ...any) error {
	so.mu.Lock()
	defer so.mu.Unlock()
	if so.closed {
		return ErrClosed
	}
	so.ops = append(so.ops, soOp{kind: message.SOSendMessage, handler: handler, args: args})
	so.scheduleLocked()
	return nil
}

// Lock holds every change back until the matching Unlock, which sends
// them in one sync.
func (so *Object) Lock() {
	so.mu.Lock()
	so.locked++
	so.mu.Unlock()
}

// Unlock ends a Lock; the last one sends what was held back.
func (so *Object) Unlock() {
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
func (so *Object) Flush() error {
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
func (so *Object) SetChangeHook(h ChangeHook) {
	so.mu.Lock()
	so.hook = h
	so.mu.Unlock()
}

// SetSyncHook installs the hook told of the clients' changes the object
// made (nil removes it, and drops the changes not yet told).
func (so *Object) SetSyncHook(h SyncHook) {
	so.mu.Lock()
	so.syncHk = h
	if h == nil {
		so.synced = nil
	}
	so.mu.Unlock()
}

// SendHook is told of a client's SendMessage on a shared object (after
// it went to the subscribers), on the client's reader goroutine; it must
// not block for long.
type SendHook func(c Member, handler string, args []any)

// SetSendHook installs the hook told of clients' SendMessage (nil: none).
func (so *Object) SetSendHook(h SendHook) {
	so.mu.Lock()
	so.sendHk = h
	so.mu.Unlock()
}

func (so *Object) callSendHook(c Member, handler string, args []any) {
	so.mu.Lock()
	h := so.sendHk
	so.mu.Unlock()
	if h == nil {
		return
	}
	defer func() {
		if r := recover(); r != nil {
			c.Logger().Error("shared object send hook panicked", "so", so.name, "panic", r)
		}
	}()
	h(c, handler, args)
}
