package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"sort"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Views of the cluster for the admin API and metrics.

// NodeInfo is a node as its last heartbeat describes it.
type NodeInfo struct {
	Name          string    `json:"name"`
	Advertise     string    `json:"advertise"`
	Load          int       `json:"load"`
	Pulls         int       `json:"pulls"`
	LastHeartbeat time.Time `json:"last_heartbeat"`
	Self          bool      `json:"self,omitempty"`
}

// StreamInfo is a stream of the directory.
type StreamInfo struct {
	App      string    `json:"app"`
	Instance string    `json:"instance"`
	Stream   string    `json:"stream"`
	Origin   string    `json:"origin"`
	Address  string    `json:"origin_address"`
	Since    time.Time `json:"since"`
}

// PullInfo is one of this hub's pulls.
type PullInfo struct {
	App       string `json:"app"`
	Instance  string `json:"instance"`
	Stream    string `json:"stream"`
	Origin    string `json:"origin,omitempty"`
	Address   string `json:"origin_address,omitempty"`
	Connected bool   `json:"connected"`
	// Waiting: no hub publishes the stream now; the pull waits for one
	// while local players wait.
	Waiting     bool      `json:"waiting,omitempty"`
	Connections int64     `json:"connections"`
	Messages    uint64    `json:"messages"`
	Readers     int       `json:"readers"`
	Started     time.Time `json:"started"`
}

// InstanceInfo is an application instance's owner, from its lease.
type InstanceInfo struct {
	App      string    `json:"app"`
	Instance string    `json:"instance"`
	Owner    string    `json:"owner"`
	Since    time.Time `json:"since"`
}

// Status is GET /api/v1/cluster.
type Status struct {
	Node      string         `json:"node"`
	Joined    bool           `json:"joined"`
	Nodes     []NodeInfo     `json:"nodes"`
	Streams   []StreamInfo   `json:"streams"`
	Pulls     []PullInfo     `json:"pulls"`
	Instances []InstanceInfo `json:"instances"`
}

// entries reads a bucket's current values.
func entries(ctx context.Context, kv jetstream.KeyValue) ([]jetstream.KeyValueEntry, error) {
	w, err := kv.WatchAll(ctx, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, err
	}
	defer w.Stop()
	var out []jetstream.KeyValueEntry
	for {
		select {
		case <-ctx.Done():
			return out, ctx.Err()
		case e, ok := <-w.Updates():
			if !ok {
				return out, errors.New("cluster: watch closed")
			}
			if e == nil {
				return out, nil // the current values are all in
			}
			out = append(out, e)
		}
	}
}

// Nodes lists the nodes alive (with a heartbeat record).
func (n *Node) Nodes(ctx context.Context) ([]NodeInfo, error) {
	if !n.ready.Load() {
		return nil, errors.New("cluster: not joined")
	}
	es, err := entries(ctx, n.nodesKV)
	if err != nil {
		return nil, err
	}
	out := make([]NodeInfo, 0, len(es))
	for _, e := range es {
		var r nodeRecord
		if json.Unmarshal(e.Value(), &r) != nil {
			continue
		}
		out = append(out, NodeInfo{Name: r.Name, Advertise: r.Advertise, Load: r.Load, Pulls: r.Pulls,
			LastHeartbeat: e.Created(), Self: r.Name == n.name})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Streams lists the directory.
func (n *Node) Streams(ctx context.Context) ([]StreamInfo, error) {
	if !n.ready.Load() {
		return nil, errors.New("cluster: not joined")
	}
	es, err := entries(ctx, n.strKV)
	if err != nil {
		return nil, err
	}
	out := make([]StreamInfo, 0, len(es))
	for _, e := range es {
		id, err := parseKey(e.Key())
		if err != nil {
			continue
		}
		var r claimRecord
		if json.Unmarshal(e.Value(), &r) != nil {
			continue
		}
		out = append(out, StreamInfo{App: id.App, Instance: id.Instance, Stream: id.Stream, Origin: r.Node, Address: r.Advertise, Since: r.Since})
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].App+"/"+out[i].Instance+"/"+out[i].Stream < out[j].App+"/"+out[j].Instance+"/"+out[j].Stream
	})
	return out, nil
}

// Instances lists the application instances that have an owner.
func (n *Node) Instances(ctx context.Context) ([]InstanceInfo, error) {
	if !n.ready.Load() {
		return nil, errors.New("cluster: not joined")
	}
	es, err := entries(ctx, n.ownKV)
	if err != nil {
		return nil, err
	}
	out := make([]InstanceInfo, 0, len(es))
	for _, e := range es {
		id, err := parseInstanceKey(e.Key())
		if err != nil {
			continue
		}
		var r leaseRecord
		if json.Unmarshal(e.Value(), &r) != nil {
			continue
		}
		out = append(out, InstanceInfo{App: id.App, Instance: id.Instance, Owner: r.Node, Since: r.Since})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].App+"/"+out[i].Instance < out[j].App+"/"+out[j].Instance })
	return out, nil
}

// Pulls lists this hub's pulls.
func (n *Node) Pulls() []PullInfo {
	n.mu.Lock()
	ps := make([]*pull, 0, len(n.pulls))
	for _, p := range n.pulls {
		ps = append(ps, p)
	}
	n.mu.Unlock()
	out := make([]PullInfo, 0, len(ps))
	for _, p := range ps {
		pi := PullInfo{App: p.id.App, Instance: p.id.Instance, Stream: p.id.Stream, Connected: p.up.Load(),
			Connections: p.attempts.Load(), Messages: p.messages.Load(), Started: p.started,
			Readers: n.hub.StreamReaders(p.id.App, p.id.Instance, p.id.Stream)}
		if o := p.origin.Load(); o != nil {
			pi.Origin, pi.Address = o.node, o.addr
		}
		pi.Waiting = !p.elsewhere()
		out = append(out, pi)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Stream < out[j].Stream })
	return out
}

// PullCount is the number of streams pulled from another hub now (not
// counting pulls waiting for a hub to publish their stream).
func (n *Node) PullCount() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	k := 0
	for _, p := range n.pulls {
		if p.elsewhere() {
			k++
		}
	}
	return k
}

// Status is the cluster as this hub sees it.
func (n *Node) Status(ctx context.Context) Status {
	st := Status{Node: n.name, Joined: n.ready.Load(), Pulls: n.Pulls()}
	if st.Joined {
		ctx, cancel := context.WithTimeout(ctx, opTimeout)
		defer cancel()
		st.Nodes, _ = n.Nodes(ctx)
		st.Streams, _ = n.Streams(ctx)
		st.Instances, _ = n.Instances(ctx)
	}
	return st
}

// PullsStarted counts the pulls this hub started.
func (n *Node) PullsStarted() uint64 { return n.pullsTotal.Load() }
