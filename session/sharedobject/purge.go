package sharedobject

import "slices"

// Deleted slots of a shared object (FMS SharedObject.purge).
//
// FMS keeps a deleted property, with the version it was deleted at, until
// it is purged (SharedObject.purge(version), or resyncDepth), so that a
// client resynchronizing from an older version can be told of the
// deletion. An Object keeps the same record: a removed slot is kept
// as deleted at the version of the sync that carries its removal (one
// more than the version when it was removed), until Purge drops it, the
// slot is set again, or Clear runs. The record is bounded by
// Config.MaxProperties (past it, deletions already synced are dropped
// first) and is not kept in a persistent object's file.
//
// This server resynchronizes every Use with Clear and the whole object, so
// the record changes nothing on the wire: Purge bounds it, and
// DeletedVersion shows it.

// markDeletedLocked records key as deleted by the coming sync.
func (so *Object) markDeletedLocked(key string) {
	if so.deleted == nil {
		so.deleted = make(map[string]uint32)
	}
	if _, ok := so.deleted[key]; !ok && len(so.deleted) >= so.reg.cfg.MaxProperties {
		// Full: drop the deletions clients already have.
		for k, v := range so.deleted {
			if v <= so.version {
				delete(so.deleted, k)
			}
		}
		if len(so.deleted) >= so.reg.cfg.MaxProperties {
			return // all of this interval: this one goes unrecorded
		}
	}
	so.deleted[key] = so.version + 1
}

// Purge drops the deleted slots whose deletion is older than version
// (deleted at a version below it), as FMS's SharedObject.purge does, and
// returns how many it dropped.
func (so *Object) Purge(version uint32) (int, error) {
	so.mu.Lock()
	defer so.mu.Unlock()
	if so.closed {
		return 0, ErrClosed
	}
	n := 0
	for k, v := range so.deleted {
		if v < version {
			delete(so.deleted, k)
			n++
		}
	}
	return n, nil
}

// DeletedVersion returns the version key was deleted at, if it is a
// deleted slot not yet purged.
func (so *Object) DeletedVersion(key string) (uint32, bool) {
	so.mu.Lock()
	defer so.mu.Unlock()
	v, ok := so.deleted[key]
	return v, ok
}

// DeletedNames returns the deleted slots not yet purged, sorted.
func (so *Object) DeletedNames() []string {
	so.mu.Lock()
	defer so.mu.Unlock()
	names := make([]string, 0, len(so.deleted))
	for k := range so.deleted {
		names = append(names, k)
	}
	slices.Sort(names)
	return names
}
