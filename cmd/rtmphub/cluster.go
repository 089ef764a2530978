package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rtmphub/rtmphub/cluster"
)

// startCluster joins the cluster the settings name; nil (and no NATS at
// all) when they name none.
func startCluster(cfg *config, log *slog.Logger) (*cluster.Node, error) {
	if cfg.Cluster == "" && cfg.ClusterEmbedded == "" {
		return nil, nil
	}
	cc := cluster.Config{Servers: splitList(cfg.Cluster), Name: cfg.NodeName, Secret: cfg.ClusterSecret,
		Advertise: cfg.ClusterAdvertise, Grace: cfg.PublisherGrace, TTL: cfg.ClusterTTL, OwnerTTL: cfg.ClusterOwnerTTL, Log: log.With("component", "cluster")}
	if cfg.ClusterEmbedded != "" {
		name := cfg.NodeName
		if name == "" {
			name, _ = os.Hostname()
		}
		routeAddr := cfg.ClusterRouteAddr
		routes := splitList(cfg.ClusterRoutes)
		if routeAddr == "" && len(routes) > 0 {
			h, p, _ := net.SplitHostPort(cfg.ClusterEmbedded)
			n, _ := strconv.Atoi(p)
			routeAddr = net.JoinHostPort(h, strconv.Itoa(n+2000))
		}
		cc.Embedded = &cluster.Embedded{Listen: cfg.ClusterEmbedded, RouteListen: routeAddr, Routes: routes,
			StoreDir: filepath.Join(cfg.DataDir, ".cluster", name)}
		// Replicated buckets survive a hub: three copies once three
		// servers are routed together.
		cc.Replicas = min(3, 1+len(routes))
	}
	if cfg.ClusterSecret == "" {
		log.Warn("cluster without --cluster-secret: pulls between hubs are authorized as any play")
	}
	n, err := cluster.New(cc)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cfg.name(&cfg.Cluster), err)
	}
	return n, nil
}

// advertiseAddr is the address other hubs pull from: the setting, else
// the RTMP listener's with an unspecified host replaced by this
// machine's first non-loopback address (127.0.0.1 when it has none).
func advertiseAddr(cfg *config, ln net.Addr) string {
	if cfg.ClusterAdvertise != "" {
		return cfg.ClusterAdvertise
	}
	h, p, err := net.SplitHostPort(ln.String())
	if err != nil {
		return ln.String()
	}
	if ip := net.ParseIP(h); ip != nil && !ip.IsUnspecified() {
		return ln.String()
	}
	h = "127.0.0.1"
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if in, ok := a.(*net.IPNet); ok && !in.IP.IsLoopback() && in.IP.To4() != nil {
				h = in.IP.String()
				break
			}
		}
	}
	return net.JoinHostPort(h, p)
}

// clusterCollector exports rtmphub_cluster_* metrics.
type clusterCollector struct {
	n                   *cluster.Node
	pulls, nodes, total *prometheus.Desc
	owned, takeovers    *prometheus.Desc
	soFwd, soDel, bad   *prometheus.Desc
	remote, calls       *prometheus.Desc
}

func newClusterCollector(n *cluster.Node) *clusterCollector {
	d := prometheus.NewDesc
	return &clusterCollector{n: n,
		pulls:     d("cluster_pulls", "Streams this hub pulls from other hubs now (one upstream connection each; pulls waiting for a hub to publish their stream not counted).", nil, nil),
		nodes:     d("cluster_nodes", "Hubs alive in the cluster, this one included, at the last heartbeat.", nil, nil),
		total:     d("cluster_pulls_started_total", "Pulls this hub started.", nil, nil),
		owned:     d("cluster_instances_owned", "Application instances this hub owns now (holds their lease).", nil, nil),
		takeovers: d("cluster_instance_takeovers_total", "Application instances this hub took over after their owner's lease lapsed.", nil, nil),
		soFwd:     d("cluster_so_forwarded_total", "Shared object messages of other hubs' clients this hub applied as their instance's owner.", nil, nil),
		soDel:     d("cluster_so_delivered_total", "Shared object messages from owner hubs this hub delivered to its clients (one per group of clients).", nil, nil),
		bad:       d("cluster_bad_messages_total", "Malformed messages from other hubs this hub dropped.", nil, nil),
		remote:    d("cluster_remote_clients", "Clients of other hubs that this hub's applications serve now (this hub owns their instance).", nil, nil),
		calls:     d("cluster_forwarded_calls_total", "Calls and call answers of this hub's clients forwarded to the owner of their instance.", nil, nil),
	}
}

func (c *clusterCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.pulls
	ch <- c.nodes
	ch <- c.total
	ch <- c.owned
	ch <- c.takeovers
	ch <- c.soFwd
	ch <- c.soDel
	ch <- c.bad
	ch <- c.remote
	ch <- c.calls
}

func (c *clusterCollector) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(c.pulls, prometheus.GaugeValue, float64(c.n.PullCount()))
	ch <- prometheus.MustNewConstMetric(c.nodes, prometheus.GaugeValue, float64(c.n.NodeCount()))
	ch <- prometheus.MustNewConstMetric(c.total, prometheus.CounterValue, float64(c.n.PullsStarted()))
	ch <- prometheus.MustNewConstMetric(c.owned, prometheus.GaugeValue, float64(c.n.OwnedCount()))
	ch <- prometheus.MustNewConstMetric(c.takeovers, prometheus.CounterValue, float64(c.n.Takeovers()))
	ch <- prometheus.MustNewConstMetric(c.soFwd, prometheus.CounterValue, float64(c.n.SOForwarded()))
	ch <- prometheus.MustNewConstMetric(c.soDel, prometheus.CounterValue, float64(c.n.SODelivered()))
	ch <- prometheus.MustNewConstMetric(c.bad, prometheus.CounterValue, float64(c.n.SODropped()))
	ch <- prometheus.MustNewConstMetric(c.remote, prometheus.GaugeValue, float64(c.n.RemoteClients()))
	ch <- prometheus.MustNewConstMetric(c.calls, prometheus.CounterValue, float64(c.n.AppForwarded()))
}

// clusterStatus answers GET /api/v1/cluster.
func clusterStatus(n *cluster.Node) func(ctx context.Context) any {
	return func(ctx context.Context) any { return n.Status(ctx) }
}
