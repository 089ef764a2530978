// Package sharedobject keeps the remote shared objects of application
// instances, as Flash Media Server does: named objects whose slots every
// subscribed client sees, kept in step by the server.
//
// An Object belongs to one instance's Registry and is known there by its
// name (which may contain slashes: "rooms/lobby") and its persistence.
// It holds slots (properties): a key and an AMF value each, kept with its
// encoding as it arrived (AMF0 or AMF3), and a version, one more after
// each sync that changed something.
//
// Sync: clients subscribe (Use) and propose changes; the server applies a
// change at once, and at the end of the sync interval tells every
// subscriber in one message carrying all the changes of the interval and
// the new version. The requester of an accepted change gets Success for
// its key instead of Change. A subscriber joining (or using again) gets
// UseSuccess, Clear and every slot. The first writer of a slot in an
// interval wins; a later change of the same slot by another client in the
// same interval is refused, and the Change of the winning value, which
// every other subscriber gets too, reverts the loser's copy. All
// subscribers end in the same state. The server changes objects with Set,
// Delete, Clear and Send; its writes win over clients' in the same
// interval. Only writes a client had not been sent conflict with its
// change: one that used the object after a write of the interval got the
// slot's value with the object's state, and its change of that slot
// replaces it (a script's onAppStart writes, run by the first connect,
// are usually still in their interval when the first clients use the
// object). Lock holds every change back until Unlock.
//
// Persistence: a persistent object lives in
// <DataDir>/<app>/sharedobjects/<instance>/<name>.fso (store.go), loaded
// when it is first used and written atomically at most SaveInterval after
// a change and when it is unloaded; a temporary one lives while it has
// subscribers or server references. Deleted slots are remembered with the
// version of their deletion until purged (purge.go), as FMS does.
//
// The package knows clients only as a Member (an id, an object encoding, a
// never-dropping queue for encoded messages and a logger) with its Access
// rights; Subscriptions handles one member's shared object messages. The
// core (package session) binds them to its clients and instances.
//
// Locks: Registry before Object before a member's queue (Member.SendSO is
// called with an Object locked). Nothing calls out to application code
// (change, sync and send hooks) with either held.
//
// Hooks: a ChangeHook decides on a client's change before the object
// does (it may reject or modify it; the change may still lose to another
// one of its interval); a SyncHook is told of the changes the object
// made, in the order made, with their values, never of refused ones (a
// script's onSync hears those); a SendHook is told of clients' sends.
package sharedobject
