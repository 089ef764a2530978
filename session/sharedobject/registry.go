package sharedobject

import (
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"time"
)

// Config is what the objects of an instance are bound by. Every field
// must be set (the core fills in its defaults).
type Config struct {
	// DataDir is the data folder: persistent objects live beneath it, and
	// never out of it (confine.Path).
	DataDir string
	// SyncInterval is the sync period: the changes within one go out in
	// one message per subscriber.
	SyncInterval time.Duration
	// SaveInterval is the longest a changed persistent object waits before
	// it is written.
	SaveInterval time.Duration
	// MaxObjects bounds the objects in use in the instance.
	MaxObjects int
	// MaxSize bounds one object: bytes of keys and encoded values.
	MaxSize int
	// MaxProperties bounds the slots of one object (and its record of
	// deleted slots).
	MaxProperties int
	// Store, when set, keeps persistent objects instead of files under
	// DataDir (several hubs: the cluster's store, so that the next owner
	// of an instance loads them). Optional.
	Store Store
}

// Store keeps persistent objects, each as its encoded state (the format
// of a file, store.go). Its methods are called with the registry locked,
// or from a save timer: they must answer within a bounded time.
type Store interface {
	// Load returns the state of an object; found is false when it has
	// none.
	Load(app, instance, name string) (data []byte, found bool, err error)
	// Save replaces the state of an object.
	Save(app, instance, name string, data []byte) error
}

// Status codes sent to a client in Status events, and names' limits.
const (
	codeNoReadAccess         = "SharedObject.NoReadAccess"
	codeNoWriteAccess        = "SharedObject.NoWriteAccess"
	codeObjectCreationFailed = "SharedObject.ObjectCreationFailed"
	codeBadPersistence       = "SharedObject.BadPersistence"
	statusLevelError         = "error"
	maxNameLen               = 255
)

var nameRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]*(/[A-Za-z0-9_][A-Za-z0-9_.-]*)*$`)

// Registry holds the shared objects of one application instance: it
// loads or creates them when they are first used and unloads them (a
// persistent one written first) when nothing holds them any more.
type Registry struct {
	cfg      Config
	app      string
	instance string
	log      *slog.Logger

	mu  sync.Mutex
	sos map[string]*Object
}

// NewRegistry returns the registry of instance of app; log is the
// server's (errors loading and saving are logged with the app, instance
// and object names).
func NewRegistry(cfg Config, app, instance string, log *slog.Logger) *Registry {
	return &Registry{cfg: cfg, app: app, instance: instance, log: log}
}

// Len is the number of objects in use.
func (r *Registry) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.sos)
}

// Objects returns the objects in use, in no particular order.
func (r *Registry) Objects() []*Object {
	r.mu.Lock()
	defer r.mu.Unlock()
	sos := make([]*Object, 0, len(r.sos))
	for _, so := range r.sos {
		sos = append(sos, so)
	}
	return sos
}

// Acquire returns the object name, loading or creating it, and holds it
// until Object.Release: a temporary one lives while it has subscribers or
// server references. This is the server side's way in (scripts and Go
// applications); clients come through Subscriptions.
func (r *Registry) Acquire(name string, persistent bool) (*Object, error) {
	return r.acquire(name, persistent, nil, nil)
}

// statusError is a refusal sent to a client as a Status event.
type statusError struct{ code, desc string }

func (e *statusError) Error() string { return e.code + ": " + e.desc }

// acquire returns the object name, loading or creating it, with m counted
// as a subscriber (m != nil, with its access rights a) or as a server
// reference.
func (r *Registry) acquire(name string, persistent bool, m Member, a Access) (*Object, error) {
	if len(name) > maxNameLen || !nameRE.MatchString(name) || strings.Contains(name, "..") {
		return nil, &statusError{codeObjectCreationFailed, fmt.Sprintf("Invalid shared object name (%s).", name)}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	so := r.sos[name]
	if so == nil {
		if len(r.sos) >= r.cfg.MaxObjects {
			return nil, &statusError{codeObjectCreationFailed, fmt.Sprintf("Too many shared objects (limit %d).", r.cfg.MaxObjects)}
		}
		path := r.path(name)
		stored, data, err := r.stored(name, path)
		if err != nil && !persistent {
			// A temporary object needs the store only to check that no
			// persistent one has its name: a store that cannot be reached
			// (a cluster's, NATS down) does not hold it up.
			stored, err = false, nil
		}
		if err != nil {
			r.log.Error("loading shared object", "app", r.app, "instance", r.instance, "so", name, "err", err.Error())
			return nil, &statusError{codeObjectCreationFailed, "Cannot load the shared object."}
		}
		if !persistent && stored {
			return nil, &statusError{codeBadPersistence, fmt.Sprintf("%s is a persistent shared object.", name)}
		}
		if m != nil && !a.MayWrite(name) && !(persistent && stored) {
			// Creating one takes write access (FMS writeAccess).
			return nil, &statusError{codeNoWriteAccess, fmt.Sprintf("No write access to create shared object %s.", name)}
		}
		so = &Object{reg: r, name: name, persistent: persistent, props: make(map[string]soValue), subs: make(map[Member]struct{})}
		if persistent {
			so.path = path
			load := so.load
			if r.cfg.Store != nil {
				load = func() error { return so.loadData(data) }
			}
			if err := load(); err != nil {
				r.log.Error("loading shared object", "app", r.app, "instance", r.instance, "so", name, "err", err.Error())
				return nil, &statusError{codeObjectCreationFailed, "Cannot load the shared object."}
			}
		}
		if r.sos == nil {
			r.sos = make(map[string]*Object)
		}
		r.sos[name] = so
	} else if so.persistent != persistent {
		return nil, &statusError{codeBadPersistence, fmt.Sprintf("%s exists with another persistence.", name)}
	}
	so.mu.Lock()
	if m != nil {
		so.subs[m] = struct{}{}
	} else {
		so.refs++
	}
	so.mu.Unlock()
	return so, nil
}

// stored reports whether a persistent object name is stored, with its
// state when it is in a Store.
func (r *Registry) stored(name, path string) (bool, []byte, error) {
	if r.cfg.Store == nil {
		return fileExists(path), nil, nil
	}
	data, found, err := r.cfg.Store.Load(r.app, r.instance, name)
	return found, data, err
}

// release drops a subscriber (m != nil) or a server reference, and
// unloads the object when nothing holds it: a persistent one is written
// first.
func (r *Registry) release(so *Object, m Member) {
	r.mu.Lock()
	so.mu.Lock()
	if m != nil {
		delete(so.subs, m)
		delete(so.extra, m)
		delete(so.seen, m)
	} else if so.refs > 0 {
		so.refs--
	}
	last := len(so.subs) == 0 && so.refs == 0 && !so.closed
	if last {
		so.closed = true
		if r.sos[so.name] == so {
			delete(r.sos, so.name)
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
	// Saved with the registry locked, so that the object cannot be loaded
	// again from an older file meanwhile.
	if last && so.persistent {
		so.saveNow()
	}
	r.mu.Unlock()
}
