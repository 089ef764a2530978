package session

import (
	"github.com/rtmphub/rtmphub/rtmp/message"
	"github.com/rtmphub/rtmphub/session/live"
	"github.com/rtmphub/rtmphub/session/sharedobject"
)

// Several hubs serving as one (package cluster): the core asks a Cluster
// about live streams at three points, and a cluster feeds the streams it
// pulls from other hubs through PublishPull. A nil Config.Cluster is a
// hub alone: none of this runs.

// Cluster is what the core asks of the hubs it serves with. Its methods
// run on a client's reader goroutine (or a web request's): they must
// answer within a bounded time, and fail open when the cluster cannot be
// reached (a publisher is never held up by it).
type Cluster interface {
	// Claim is asked before a client publishes a live stream here: nil
	// lets the publish go on; an error refuses it with
	// NetStream.Publish.BadName and the error's text.
	Claim(app, instance, stream string) error
	// Released says a client's publication of the stream here ended; the
	// cluster asks PublishedHere whether another one (a takeover, a
	// publisher that may come back) still holds it.
	Released(app, instance, stream string)
	// Want says a local reader wants a live stream nobody publishes
	// here. It reports whether another hub publishes it: a pull is then
	// on its way. waits says the reader waits for a publisher anyway (an
	// RTMP player does; a Watch does not): the cluster then feeds it
	// when a hub publishes the stream later. query is the reader's (a
	// pull from another hub is never pulled on).
	Want(app, instance, stream, query string, waits bool) bool
	// Relay reports whether a play, by its query, is another hub's pull
	// of the stream (its token valid): that player relays to the other
	// hub's players, and its socket keeps TCP_NODELAY, so that Nagle's
	// delay is not added once per hub on the way.
	Relay(app, instance, stream, query string) bool
}

// InstanceOwners is what the core asks of the hubs about application
// instances: each app/instance has one owner hub at a time (it will run
// main.asc and hold the shared objects); the other hubs serve their
// clients as an FMS edge does. Its methods run on a client's reader
// goroutine (or, InstanceEnded, with the server locked): they answer
// within a bounded time, and fail open (this hub owns what it cannot ask
// about) when the cluster cannot be reached.
type InstanceOwners interface {
	// OwnInstance is asked when a client connects to the instance on this
	// hub (authorized, before the application's onConnect): the cluster
	// makes this hub the owner when no live hub owns it, and answers the
	// owner's name and whether it is this hub.
	OwnInstance(app, instance string) (owner string, here bool)
	// InstanceEnded says the instance ended here (idle: no clients, no
	// streams, no shared objects): this hub's ownership of it goes. It
	// must not block.
	InstanceEnded(app, instance string)
	// InstanceOwner is the owner as this hub knows it now, without
	// asking anyone: here when it is this hub (or nobody is known).
	InstanceOwner(app, instance string) (owner string, here bool)
}

// SORelay carries the shared object messages of clients whose instance
// another hub owns to that hub, which holds the objects; it delivers the
// owner's messages for them with DeliverSO. Its methods are called on a
// client's reader goroutine and must not block (a message that cannot be
// sent is dropped with a log line: the client is resynced when the owner
// changes or asks for it).
type SORelay interface {
	// ForwardSO sends a client's shared object message to owner.
	ForwardSO(owner, app, instance string, c RemoteSO, m message.Message)
	// ForwardGone says the client no longer uses objects at owner (it
	// left, or its objects moved): owner releases them.
	ForwardGone(owner, app, instance string, client uint64)
}

// RemoteSO is a client of another hub as the owner's objects see it: its
// id on its hub, its object encoding, and its access to the object its
// message names (its hub checks its readAccess and writeAccess).
type RemoteSO struct {
	Client      uint64
	AMF3        bool
	Read, Write bool
}

// SOSubscriptions returns new subscriptions of m, a client of another
// hub, to the shared objects of app/instance here (the owner), starting
// the instance if needed.
func (s *Server) SOSubscriptions(app, instance string, m sharedobject.Member, a sharedobject.Access) *sharedobject.Subscriptions {
	return sharedobject.NewSubscriptions(s.instance(app, instance).so, m, a)
}

// DeliverSO queues an encoded shared object message, from the instance's
// owner hub, for the listed clients of app/instance here (those gone are
// skipped).
func (s *Server) DeliverSO(app, instance string, clients []uint64, m message.Message) {
	in := s.loadedInstance(app, instance)
	if in == nil {
		return
	}
	cs := make([]*Client, 0, len(clients))
	in.mu.Lock()
	for _, id := range clients {
		if c := in.clients[id]; c != nil {
			cs = append(cs, c)
		}
	}
	in.mu.Unlock()
	for _, c := range cs {
		c.send(m)
	}
}

// SOReroute moves the shared objects of the instance's clients here to
// the instance's owner, when it changed; force uses them again at the
// owner even when it did not (it lost messages for this hub), which sends
// each client the objects' state.
func (s *Server) SOReroute(app, instance string, force bool) {
	in := s.loadedInstance(app, instance)
	if in == nil {
		return
	}
	in.mu.Lock()
	cs := make([]*Client, 0, len(in.clients))
	for _, c := range in.clients {
		cs = append(cs, c)
	}
	in.mu.Unlock()
	owner := s.soOwner(in)
	for _, c := range cs {
		c.sos.mu.Lock()
		// Forced only where the objects are at the same owner (one that
		// lost messages for this hub); here, nothing was lost.
		c.rerouteLocked(in, owner, force && owner != "" && c.sos.owner == owner)
		c.sos.mu.Unlock()
	}
}

// InstanceLoaded reports whether the instance runs on this hub, and how
// many clients it has here.
func (s *Server) InstanceLoaded(app, instance string) (loaded bool, clients int) {
	in := s.loadedInstance(app, instance)
	if in == nil {
		return false, 0
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	return true, len(in.clients)
}

// pullSource marks a publication made by PublishPull.
type pullSource struct{ live.Source }

// PublishPull makes src, a pull of the stream from another hub, the
// publisher of the live stream app/instance/stream here. It is not a
// client's publication: the cluster never claims it (PublishedHere is
// false for it), and a client's publish of the name takes it over only
// when the cluster lets the client claim the name.
func (s *Server) PublishPull(app, instance, stream string, src live.Source) (*live.Publication, error) {
	// Not the application: a pull is no client of the instance, whose
	// owner runs it (a client connecting here starts it, handle.go).
	in := s.instanceFor(app, instance, false)
	var p *live.Publication
	var err error
	in.withStream(stream, func(st *live.Stream) {
		p, err = st.Publish(&pullSource{src}, live.PublishOptions{Type: "live"})
	})
	if err != nil {
		in.removeStreamIfUnusedByName(stream)
		s.dropInstanceIfIdle(in)
		return nil, err
	}
	return p, nil
}

// PublishedHere reports whether a client of this hub publishes the live
// stream (or one that vanished may still come back to it), rather than a
// pull from another hub.
func (s *Server) PublishedHere(app, instance, stream string) bool {
	st := s.liveStream(app, instance, stream)
	if st == nil || !st.Live() {
		return false
	}
	if p := st.Publication(); p != nil {
		_, pulled := p.Source().(*pullSource)
		return !pulled
	}
	return true // a vanished publisher's grace (see PublisherVanished)
}

// PublisherVanished reports whether the live stream waits, within
// Config.PublisherGrace, for a client publisher whose connection dropped
// to come back (a pull's publication never does: it ends gracefully).
func (s *Server) PublisherVanished(app, instance, stream string) bool {
	st := s.liveStream(app, instance, stream)
	return st != nil && st.Live() && st.Publication() == nil
}

// StreamReaders counts the local readers of the live stream: players,
// viewers, HLS muxers, recordings.
func (s *Server) StreamReaders(app, instance, stream string) int {
	st := s.liveStream(app, instance, stream)
	if st == nil {
		return 0
	}
	return len(st.Snapshot().Readers)
}

// liveStream returns the live stream app/instance/stream, nil when the
// instance or the stream does not exist.
func (s *Server) liveStream(app, instance, stream string) *live.Stream {
	if instance == "" {
		instance = "_definst_"
	}
	in := s.loadedInstance(app, instance)
	if in == nil {
		return nil
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.streams[stream]
}

// DropIdleInstance unloads the instance when nothing uses it any more (a
// pull's instance, which no client of this hub may have connected to).
func (s *Server) DropIdleInstance(app, instance string) {
	in := s.loadedInstance(app, instance)
	if in != nil {
		s.dropInstanceIfIdle(in)
	}
}

// loadedInstance returns the instance app/instance when it is loaded
// here, nil otherwise; unlike instance, it never creates one.
func (s *Server) loadedInstance(app, instance string) *Instance {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.instances[app+"/"+instance]
}
