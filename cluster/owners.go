package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Application instances: each app/instance has one owner hub at a time,
// the holder of its lease in the rtmphub_owners bucket. A hub takes the
// lease with Create (only if absent) when a client connects to an
// instance nobody owns, and renews it with Update at the revision it
// holds (compare-and-set) every OwnerTTL/3; the bucket's TTL (OwnerTTL)
// removes a lease its owner stopped renewing. The other hubs with clients
// of the instance follow it: every OwnerTTL/6 they look the lease up, and
// the first of them to find it gone creates it (one Create wins). An
// owner whose instance ended deletes its lease at the revision it holds;
// a hub that leaves deletes its leases (its followers take over at once).

// InstanceID names an application instance across the hubs.
type InstanceID struct {
	App, Instance string
}

func (i InstanceID) String() string { return i.App + "/" + i.Instance }

// key is the instance's key in the owners bucket (see StreamID.key).
func (i InstanceID) key() string {
	part := func(p string) string {
		if p == "" {
			return "="
		}
		return b64.EncodeToString([]byte(p))
	}
	return part(i.App) + "." + part(i.Instance)
}

func parseInstanceKey(k string) (InstanceID, error) {
	parts := strings.Split(k, ".")
	if len(parts) != 2 {
		return InstanceID{}, errors.New("cluster: bad instance key " + k)
	}
	var out [2]string
	for j, p := range parts {
		if p == "=" {
			continue
		}
		b, err := b64.DecodeString(p)
		if err != nil {
			return InstanceID{}, errors.New("cluster: bad instance key " + k)
		}
		out[j] = string(b)
	}
	return InstanceID{out[0], out[1]}, nil
}

// lease is an instance this hub owns.
type lease struct {
	// rev is the revision of the lease record this hub wrote last; 0: not
	// written (the store could not be reached: this hub serves the
	// instance and takes the lease when it can).
	rev     uint64
	since   time.Time
	touched time.Time // last OwnInstance: the instance is in use
}

// leaseRecord is an instance's lease.
type leaseRecord struct {
	Node  string    `json:"node"`
	Since time.Time `json:"since"`
}

// ownerSettle is how long a lease is kept, after a client asked for it,
// without the hub reporting the instance loaded (the instance is made
// just after the ask).
const ownerSettle = time.Second

// OwnInstance is asked when a client connects to an instance here (see
// session.InstanceOwners): it answers from what this hub knows when it
// owns or follows the instance, and otherwise takes the lease, or learns
// who holds it. When the store cannot be reached this hub owns the
// instance at once (the lease is taken when it can).
func (n *Node) OwnInstance(app, instance string) (owner string, here bool) {
	id := InstanceID{app, instance}
	now := time.Now()
	n.imu.Lock()
	if l := n.leases[id]; l != nil {
		l.touched = now
		n.imu.Unlock()
		return n.name, true
	}
	if o, ok := n.follows[id]; ok {
		n.imu.Unlock()
		return o, false
	}
	n.imu.Unlock()
	if !n.storeUp() {
		n.trouble("ownership of "+id.String()+" (this hub serves it)", errDisconnected)
		n.addLease(id, 0)
		return n.name, true
	}
	ctx, cancel := context.WithTimeout(n.ctx, opTimeout)
	defer cancel()
	owner, rev, err := n.takeInstance(ctx, id)
	if err != nil {
		if n.ctx.Err() == nil {
			n.trouble("ownership of "+id.String()+" (this hub serves it)", err)
		}
		n.addLease(id, 0)
		return n.name, true
	}
	n.trouble("ownership", nil)
	if owner == n.name {
		n.addLease(id, rev)
		return n.name, true
	}
	n.follow(id, owner)
	return owner, false
}

// takeInstance takes id's lease for this hub unless another hub holds
// it: it answers the holder and, when it is this hub, the revision of
// its lease.
func (n *Node) takeInstance(ctx context.Context, id InstanceID) (owner string, rev uint64, err error) {
	key := id.key()
	rec, _ := json.Marshal(leaseRecord{Node: n.name, Since: time.Now().UTC()})
	for range 3 {
		rev, err := n.ownKV.Create(ctx, key, rec)
		if err == nil {
			return n.name, rev, nil
		}
		if !conflict(err) {
			return "", 0, err
		}
		e, err := n.ownKV.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue // lapsed or released meanwhile: create again
		}
		if err != nil {
			return "", 0, err
		}
		var lr leaseRecord
		if err := json.Unmarshal(e.Value(), &lr); err != nil || lr.Node == "" {
			// Not a lease (no hub writes this): replaced below, with
			// compare-and-set like any takeover.
			n.log.Warn("cluster: malformed instance lease replaced", "instance", id.String(), "revision", e.Revision())
		} else if lr.Node != n.name {
			return lr.Node, 0, nil
		}
		// Ours (written before a restart of this hub's view, or by a
		// concurrent ask): renew it at its revision.
		rev, err = n.ownKV.Update(ctx, key, rec, e.Revision())
		if err == nil {
			return n.name, rev, nil
		}
		if !conflict(err) {
			return "", 0, err
		}
	}
	return "", 0, errors.New("cluster: lease of " + id.String() + " contended")
}

func (n *Node) addLease(id InstanceID, rev uint64) {
	now := time.Now()
	n.imu.Lock()
	defer n.imu.Unlock()
	delete(n.follows, id)
	l := n.leases[id]
	if l == nil {
		l = &lease{since: now}
		n.leases[id] = l
	}
	l.rev = max(l.rev, rev)
	l.touched = now
}

func (n *Node) follow(id InstanceID, owner string) {
	n.imu.Lock()
	defer n.imu.Unlock()
	if _, owned := n.leases[id]; owned {
		return
	}
	n.follows[id] = owner
}

// InstanceEnded is told that the instance ended here (see
// session.InstanceOwners): its lease, if this hub holds it, is deleted
// in the background.
func (n *Node) InstanceEnded(app, instance string) {
	id := InstanceID{app, instance}
	n.imu.Lock()
	_, owned := n.leases[id]
	delete(n.follows, id)
	n.imu.Unlock()
	if owned {
		n.spawn(func() {
			for range 2 {
				if n.releaseIfEnded(id) {
					return
				}
				// Kept for ownerSettle after a client asked for it: wait
				// that out once rather than for the renewal loop.
				n.imu.Lock()
				var wait time.Duration
				if l := n.leases[id]; l != nil {
					wait = ownerSettle - time.Since(l.touched)
				}
				n.imu.Unlock()
				if wait <= 0 {
					return
				}
				select {
				case <-n.ctx.Done():
					return
				case <-time.After(wait):
				}
			}
		})
	}
}

// releaseIfEnded deletes id's lease when the instance no longer runs
// here; it reports whether it did.
func (n *Node) releaseIfEnded(id InstanceID) bool {
	if loaded, _ := n.hub.InstanceLoaded(id.App, id.Instance); loaded {
		return false
	}
	n.imu.Lock()
	l := n.leases[id]
	if l == nil || time.Since(l.touched) < ownerSettle {
		// Asked for again (a client is on its way to it): the renewal
		// loop looks again.
		n.imu.Unlock()
		return false
	}
	delete(n.leases, id)
	rev := l.rev
	n.imu.Unlock()
	if rev != 0 && n.ready.Load() {
		ctx, cancel := context.WithTimeout(n.ctx, opTimeout)
		err := n.ownKV.Delete(ctx, id.key(), jetstream.LastRevision(rev))
		cancel()
		n.log.Debug("cluster: instance released", "instance", id.String(), "err", errString(err))
	}
	return true
}

// runOwners renews this hub's leases every OwnerTTL/3 and looks up the
// instances it follows every OwnerTTL/6.
func (n *Node) runOwners() {
	defer n.wg.Done()
	t := time.NewTicker(n.cfg.OwnerTTL / 6)
	defer t.Stop()
	for i := 0; ; i++ {
		if i%2 == 0 {
			n.renewLeases()
			n.sweepRemotes()
		}
		n.checkFollowed()
		select {
		case <-n.ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (n *Node) renewLeases() {
	n.imu.Lock()
	ids := make([]InstanceID, 0, len(n.leases))
	for id := range n.leases {
		ids = append(ids, id)
	}
	n.imu.Unlock()
	for _, id := range ids {
		if n.ctx.Err() != nil {
			return
		}
		n.renewLease(id)
	}
}

func (n *Node) renewLease(id InstanceID) {
	if n.releaseIfEnded(id) {
		return
	}
	if !n.storeUp() {
		// This hub keeps serving what it owns; the lease is renewed (or
		// found taken) when NATS is back.
		return
	}
	n.imu.Lock()
	l := n.leases[id]
	if l == nil {
		n.imu.Unlock()
		return
	}
	rev := l.rev
	n.imu.Unlock()
	ctx, cancel := context.WithTimeout(n.ctx, opTimeout)
	defer cancel()
	var err error
	if rev != 0 {
		rec, _ := json.Marshal(leaseRecord{Node: n.name, Since: l.since.UTC()})
		var nrev uint64
		if nrev, err = n.ownKV.Update(ctx, id.key(), rec, rev); err == nil {
			n.imu.Lock()
			if n.leases[id] == l && l.rev == rev {
				l.rev = nrev
			}
			n.imu.Unlock()
			n.trouble("lease renewal", nil)
			return
		}
		if !conflict(err) && !errors.Is(err, jetstream.ErrKeyNotFound) {
			if n.ctx.Err() == nil {
				n.trouble("lease renewal of "+id.String(), err)
			}
			return
		}
	}
	// Never written (NATS was unreachable), lapsed (an outage longer
	// than the TTL) or taken: take it again, which says which.
	owner, nrev, err := n.takeInstance(ctx, id)
	switch {
	case err != nil:
		if n.ctx.Err() == nil {
			n.trouble("lease of "+id.String(), err)
		}
	case owner == n.name:
		n.imu.Lock()
		if n.leases[id] == l {
			l.rev = max(l.rev, nrev)
		}
		n.imu.Unlock()
	default:
		n.log.Warn("cluster: another hub owns the instance now", "instance", id.String(), "owner", owner)
		n.imu.Lock()
		if n.leases[id] == l {
			delete(n.leases, id)
			n.follows[id] = owner
		}
		n.imu.Unlock()
		n.ownerChanged(id)
	}
}

// checkFollowed looks up the lease of each instance this hub follows:
// when its owner is gone, a hub with clients of it takes it over.
func (n *Node) checkFollowed() {
	if !n.storeUp() {
		return
	}
	n.imu.Lock()
	ids := make(map[InstanceID]string, len(n.follows))
	for id, o := range n.follows {
		ids[id] = o
	}
	n.imu.Unlock()
	for id, was := range ids {
		if n.ctx.Err() != nil {
			return
		}
		loaded, clients := n.hub.InstanceLoaded(id.App, id.Instance)
		if !loaded {
			n.imu.Lock()
			if n.follows[id] == was {
				delete(n.follows, id)
			}
			n.imu.Unlock()
			continue
		}
		ctx, cancel := context.WithTimeout(n.ctx, opTimeout)
		owner, found, err := n.instanceOwner(ctx, id)
		if err == nil && !found && clients > 0 {
			var rev uint64
			owner, rev, err = n.takeInstance(ctx, id)
			if err == nil && owner == n.name {
				n.takeovers.Add(1)
				n.log.Info("cluster: instance taken over", "instance", id.String(), "from", was)
				n.addLease(id, rev)
				cancel()
				n.ownerChanged(id)
				continue
			}
			found = err == nil
		}
		cancel()
		if err != nil {
			if n.ctx.Err() == nil {
				n.trouble("lookup of "+id.String()+"'s owner", err)
			}
			continue
		}
		if found && owner != was {
			n.imu.Lock()
			moved := n.follows[id] == was
			if moved {
				n.follows[id] = owner
			}
			n.imu.Unlock()
			if moved {
				n.ownerChanged(id)
			}
		}
	}
}

// storeUp reports whether the buckets can be asked now: joined, connected,
// and not waiting for the buckets to be made again after an outage (a
// restarted server lost them: a request to one would wait for its
// timeout).
func (n *Node) storeUp() bool {
	return n.ready.Load() && n.nc.IsConnected() && !n.rebuild.Load()
}

// instanceOwner reads id's lease.
func (n *Node) instanceOwner(ctx context.Context, id InstanceID) (owner string, found bool, err error) {
	e, err := n.ownKV.Get(ctx, id.key())
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	var lr leaseRecord
	if err := json.Unmarshal(e.Value(), &lr); err != nil || lr.Node == "" {
		return "", false, errors.New("cluster: malformed lease of " + id.String())
	}
	return lr.Node, true, nil
}

// InstanceOwner is the owner of app/instance as this hub knows it, without
// asking the store: here when this hub owns it; "" when this hub neither
// owns nor follows it.
func (n *Node) InstanceOwner(app, instance string) (owner string, here bool) {
	id := InstanceID{app, instance}
	n.imu.Lock()
	defer n.imu.Unlock()
	if _, ok := n.leases[id]; ok {
		return n.name, true
	}
	return n.follows[id], false
}

// OwnedCount is the number of instances this hub owns.
func (n *Node) OwnedCount() int {
	n.imu.Lock()
	defer n.imu.Unlock()
	return len(n.leases)
}

// Takeovers counts the instances this hub took over from a hub whose
// lease lapsed.
func (n *Node) Takeovers() uint64 { return n.takeovers.Load() }
