package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// -server cluster: two rtmphub processes joined into one cluster by their
// embedded NATS servers. The bench publishes to hub A; an "origin" step
// attaches the players to A, an "edge" step to B, which pulls the stream
// once from A over RTMP and fans it out.
const (
	kindCluster       = "cluster"
	kindClusterOrigin = "origin" // players on the hub the publisher is on
	kindClusterEdge   = "edge"   // players on the other hub
)

// clusterSecret signs the hubs' pulls from each other.
const clusterSecret = "rtmpbench"

// isClusterKind reports whether a step's server is one of a cluster's hubs.
func isClusterKind(kind string) bool {
	return kind == kindClusterOrigin || kind == kindClusterEdge
}

// clusterHubArgs are the flags, after -rtmphub-args, of hub i of two whose
// embedded NATS servers listen for clients on client[i] and for routes on
// route[i].
func clusterHubArgs(i int, client, route [2]string) []string {
	return []string{
		"--node-name", fmt.Sprintf("rtmpbench-%c", 'a'+i),
		"--cluster-secret", clusterSecret,
		"--cluster-embedded", client[i],
		"--cluster-route-addr", route[i],
		"--cluster-routes", route[1-i],
		// Off: their default addresses are fixed, and the two hubs would
		// both want them.
		"--admin-addr=", "--quic-addr=",
	}
}

// startCluster starts hub A and hub B at once (a hub joins only when its
// embedded NATS server has routed to the other's) and returns when both
// have logged "cluster: joined". The caller stops both.
func startCluster(ctx context.Context, cfg *serverConfig) (a, b *serverProc, err error) {
	var client, route [2]string
	for i := range 2 {
		if client[i], err = freePort(); err != nil {
			return nil, nil, err
		}
		if route[i], err = freePort(); err != nil {
			return nil, nil, err
		}
	}
	var hubs [2]*serverProc
	var errs [2]error
	var wg sync.WaitGroup
	for i := range 2 {
		wg.Go(func() {
			hubs[i], errs[i] = startRtmphub(ctx, cfg, fmt.Sprintf("hub-%c", 'a'+i), clusterHubArgs(i, client, route), "cluster: joined")
			if errs[i] != nil {
				errs[i] = fmt.Errorf("hub %c: %w", 'A'+i, errs[i])
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs[0], errs[1]); err != nil {
		for _, h := range hubs {
			if h != nil {
				h.stop()
			}
		}
		return nil, nil, err
	}
	return hubs[0], hubs[1], nil
}

// startStepServers starts what a step measures: srv serves the players,
// the publisher publishes to pub, and peer (nil but in a cluster step) is
// the cluster's other hub, measured too.
func startStepServers(ctx context.Context, cfg *serverConfig, kind string) (srv, peer, pub *serverProc, err error) {
	if !isClusterKind(kind) {
		srv, err = startServer(ctx, kind, cfg)
		return srv, nil, srv, err
	}
	a, b, err := startCluster(ctx, cfg)
	if err != nil {
		return nil, nil, nil, err
	}
	if kind == kindClusterOrigin {
		return a, b, a, nil
	}
	return b, a, a, nil
}
