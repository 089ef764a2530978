package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// The stream directory: one claim per published stream name.

// Claim is asked before a client publishes a stream on this hub (see
// session.Cluster): it claims the name in the directory, or refuses it
// while another live hub holds it. A claim this hub holds already is
// refreshed; a claim of a node whose heartbeat expired is taken over. When
// the directory cannot be reached the publish is allowed (the refresh
// loop claims it later) and a warning logged.
func (n *Node) Claim(app, instance, stream string) error {
	id := StreamID{app, instance, stream}
	if !n.ready.Load() {
		if !n.warnedUnrdy.Swap(true) {
			n.log.Warn("cluster: not joined yet; publishes are not checked across hubs", "stream", id.String())
		}
		n.addClaim(id, 0)
		return nil
	}
	if !n.nc.IsConnected() {
		// NATS is unreachable: a publisher is never held up by it. The
		// refresh loop claims the name once NATS is back.
		n.trouble("claim of "+id.String()+" (publish allowed)", errDisconnected)
		n.addClaim(id, 0)
		return nil
	}
	ctx, cancel := context.WithTimeout(n.ctx, opTimeout)
	defer cancel()
	err := n.claim(ctx, id)
	var taken *TakenError
	switch {
	case err == nil:
		n.trouble("claim", nil)
		n.handOver(id) // this hub pulled it: its publisher came here
		return nil
	case errors.As(err, &taken):
		return err
	default:
		n.trouble("claim of "+id.String()+" (publish allowed)", err)
		n.addClaim(id, 0)
		return nil
	}
}

var errDisconnected = errors.New("cluster: not connected to NATS")

// TakenError refuses a publish: another hub publishes the stream.
type TakenError struct {
	Stream, Node string
	addr         string // the owner's advertise address
}

// Error is FMS's BadName description, with the hub that has the stream.
func (e *TakenError) Error() string {
	return fmt.Sprintf("Stream %s is already being published (on hub %s).", e.Stream, e.Node)
}

func (n *Node) record(vanished bool) []byte {
	b, _ := json.Marshal(claimRecord{Node: n.name, Advertise: n.cfg.Advertise, Since: time.Now().UTC(), Vanished: vanished})
	return b
}

// claim claims id for this node: nil when it holds it, a *TakenError when
// a live node does, another error when the directory failed.
func (n *Node) claim(ctx context.Context, id StreamID) error {
	key := id.key()
	for range 3 {
		rev, err := n.strKV.Create(ctx, key, n.record(false))
		if err == nil {
			n.addClaim(id, rev)
			return nil
		}
		if !conflict(err) {
			return err
		}
		e, err := n.strKV.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue // expired or deleted meanwhile: create again
		}
		if err != nil {
			return err
		}
		var cr claimRecord
		json.Unmarshal(e.Value(), &cr)
		if cr.Node != n.name && !cr.Vanished && n.alive(ctx, cr.Node) {
			return &TakenError{Stream: id.Stream, Node: cr.Node, addr: cr.Advertise}
		}
		// Ours already, its owner's publisher vanished (and reconnected
		// here), or its owner's heartbeat expired: take it with
		// compare-and-set, so that of two hubs doing so one wins.
		rev, err = n.strKV.Update(ctx, key, n.record(false), e.Revision())
		if err == nil {
			if cr.Node != n.name {
				why := "its node is gone"
				if cr.Vanished {
					why = "its publisher reconnected here"
				}
				n.log.Info("cluster: stream taken over", "stream", id.String(), "from", cr.Node, "why", why)
			}
			n.addClaim(id, rev)
			return nil
		}
		if !conflict(err) {
			return err
		}
	}
	return errors.New("cluster: claim contended")
}

func (n *Node) addClaim(id StreamID, rev uint64) {
	n.mu.Lock()
	if _, ok := n.claims[id]; !ok {
		n.claimedAt[id] = time.Now()
	}
	n.claims[id] = rev
	n.mu.Unlock()
}

// claimSettle is how long a new claim is kept without a publication (the
// publish it was made for has not reached the stream yet).
const claimSettle = time.Second

// Released is told that a client's publication here ended (see
// session.Cluster): the claim goes when no publication holds the stream
// here any more.
func (n *Node) Released(app, instance, stream string) {
	id := StreamID{app, instance, stream}
	n.mu.Lock()
	_, ok := n.claims[id]
	n.mu.Unlock()
	if ok {
		go n.refreshClaim(id)
	}
}

// refreshClaims refreshes this hub's claims and drops those of streams
// it no longer publishes.
func (n *Node) refreshClaims() {
	n.mu.Lock()
	ids := make([]StreamID, 0, len(n.claims))
	for id := range n.claims {
		ids = append(ids, id)
	}
	n.mu.Unlock()
	for _, id := range ids {
		n.refreshClaim(id)
	}
}

func (n *Node) refreshClaim(id StreamID) {
	if !n.ready.Load() {
		return
	}
	ctx, cancel := context.WithTimeout(n.ctx, opTimeout)
	defer cancel()
	n.mu.Lock()
	rev, ok := n.claims[id]
	n.mu.Unlock()
	if !ok {
		return
	}
	if !n.hub.PublishedHere(id.App, id.Instance, id.Stream) {
		n.mu.Lock()
		if time.Since(n.claimedAt[id]) < claimSettle {
			n.mu.Unlock()
			return // the next refresh looks again
		}
		if n.claims[id] == rev {
			delete(n.claims, id)
			delete(n.claimedAt, id)
		}
		n.mu.Unlock()
		var err error
		if rev != 0 {
			err = n.strKV.Delete(ctx, id.key(), jetstream.LastRevision(rev))
		}
		n.log.Debug("cluster: stream released", "stream", id.String(), "err", errString(err))
		n.keepReaders(id, nil)
		return
	}
	vanished := n.hub.PublisherVanished(id.App, id.Instance, id.Stream)
	var err error
	if rev == 0 {
		err = n.claim(ctx, id)
	} else {
		var nrev uint64
		nrev, err = n.strKV.Update(ctx, id.key(), n.record(vanished), rev)
		if err == nil {
			n.mu.Lock()
			if _, ok := n.claims[id]; ok {
				n.claims[id] = nrev
			}
			n.mu.Unlock()
			return
		}
		// Expired (a NATS outage longer than the TTL) or taken: claim
		// again, which says which.
		err = n.claim(ctx, id)
	}
	var taken *TakenError
	if errors.As(err, &taken) {
		n.log.Info("cluster: another hub took the stream over", "stream", id.String(), "owner", taken.Node, "vanished_here", vanished)
		n.mu.Lock()
		delete(n.claims, id)
		delete(n.claimedAt, id)
		n.mu.Unlock()
		n.keepReaders(id, &originInfo{node: taken.Node, addr: taken.addr})
	} else if n.ctx.Err() == nil {
		n.trouble("claim refresh of "+id.String(), err)
	}
}

// Owner returns the node that publishes id and its advertise address;
// found is false when no hub does.
func (n *Node) Owner(ctx context.Context, id StreamID) (node, addr string, found bool, err error) {
	cr, _, found, err := n.owner(ctx, id)
	return cr.Node, cr.Advertise, found, err
}

// owner returns id's claim and its revision.
func (n *Node) owner(ctx context.Context, id StreamID) (cr claimRecord, rev uint64, found bool, err error) {
	if !n.ready.Load() {
		return cr, 0, false, errors.New("cluster: not joined")
	}
	e, err := n.strKV.Get(ctx, id.key())
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return cr, 0, false, nil
	}
	if err != nil {
		return cr, 0, false, err
	}
	if err := json.Unmarshal(e.Value(), &cr); err != nil {
		return cr, 0, false, err
	}
	return cr, e.Revision(), true, nil
}

// conflict reports whether err is a lost create or compare-and-set.
func conflict(err error) bool {
	return errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch)
}

// watchDirectory tells the pulls when their stream's owner changes: a
// pull waiting for a publisher starts at once, one whose stream moved
// reconnects to the new owner. (A claim that expires leaves no trace a
// watcher sees: the pulls also look the owner up when their upstream
// ends, and now and then while they wait.)
func (n *Node) watchDirectory() {
	defer n.wg.Done()
	for n.ctx.Err() == nil {
		w, err := n.strKV.WatchAll(n.ctx, jetstream.UpdatesOnly())
		if err != nil {
			select {
			case <-n.ctx.Done():
				return
			case <-time.After(time.Second):
			}
			continue
		}
		for e := range w.Updates() {
			if e == nil {
				continue
			}
			id, err := parseKey(e.Key())
			if err != nil {
				continue
			}
			p := n.pullOf(id)
			if p == nil {
				continue
			}
			var o *originInfo
			if e.Operation() == jetstream.KeyValuePut {
				var cr claimRecord
				if json.Unmarshal(e.Value(), &cr) == nil {
					o = &originInfo{node: cr.Node, addr: cr.Advertise}
				}
			}
			p.ownerChanged(o)
		}
		w.Stop()
	}
}

// keepReaders pulls a stream this hub no longer publishes for the local
// readers still attached to it: from its new owner o, or (nil) from
// whichever hub publishes it next.
func (n *Node) keepReaders(id StreamID, o *originInfo) {
	if n.ctx.Err() != nil || n.hub.StreamReaders(id.App, id.Instance, id.Stream) == 0 {
		return
	}
	n.startPull(id, o)
}
