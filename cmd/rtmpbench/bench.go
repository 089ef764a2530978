package main

import (
	"context"
	"fmt"
	"log"
	"regexp"
	"slices"
	"sort"
	"sync"
	"time"
)

// Names the bench publishes and plays.
const (
	benchApp    = "live"
	benchStream = "bench"
)

// benchConfig is one run's parameters.
type benchConfig struct {
	plan         streamPlan
	players      []int
	duration     time.Duration // the measuring window
	warmup       time.Duration // after the last player is ready, before the window
	settle       time.Duration // publisher alone before the baseline RSS
	rampRate     float64       // player connects per second
	setupTimeout time.Duration
	readTimeout  time.Duration
	readBuf      int
	batch        time.Duration // stream time a player lets the kernel buffer before waking it
	readPool     bool          // count streaming RTMP and HTTP-FLV players from one goroutine (readpool.go)
	probes       int           // RTMP players per step that measure latency (stamp.go); 0: none, the publisher stamps nothing
	toolCores    int           // CPUs the tool is pinned to; 0: not pinned
	server       serverConfig
}

// step is one measurement: a fresh server of a kind, its players all of
// one protocol.
type step struct {
	server   string // kindRtmphub, kindNginx, kindExternal, kindClusterOrigin or kindClusterEdge
	protocol string // protoRTMP, protoHTTPFLV, protoHLS or protoVOD
	players  int
}

func (s step) String() string {
	return fmt.Sprintf("%s %s %d players", s.server, s.protocol, s.players)
}

// stepResult is what one server did with one player count.
type stepResult struct {
	Server   string `json:"server"`
	Protocol string `json:"protocol"`
	Players  int    `json:"players"`
	Round    int    `json:"round,omitempty"` // with -rounds: 1, 2, ...
	Error    string `json:"error,omitempty"`
	// ServerCPUs is the Cpus_allowed_list of the server's process (and
	// PeerCPUs the cluster peer's), read at the start: the pinning as the
	// kernel applied it.
	ServerCPUs string `json:"server_cpus_allowed,omitempty"`
	PeerCPUs   string `json:"peer_cpus_allowed,omitempty"`

	OK      int `json:"ok"`      // streaming when the window started
	Failed  int `json:"failed"`  // never got to streaming
	Dropped int `json:"dropped"` // streamed, then lost the connection before the end

	WindowSec     float64 `json:"window_sec"`
	ExpectedMbps  float64 `json:"expected_mbps"`  // players × stream bitrate
	DeliveredMbps float64 `json:"delivered_mbps"` // bytes all players received in the window
	MinPlayerPct  float64 `json:"min_player_pct"` // slowest streaming player vs the bitrate

	ServerCPUPct float64 `json:"server_cpu_pct,omitempty"` // % of one core, the hub serving the players in a cluster step
	// CPUUsPerPlayerSec is server CPU seconds / (streaming players ×
	// window seconds), in µs: the unit the targets are stated in.
	CPUUsPerPlayerSec float64 `json:"cpu_us_per_player_sec,omitempty"`
	RSSIdleKiB        int64   `json:"rss_idle_kib,omitempty"`
	RSSBaseKiB        int64   `json:"rss_base_kib,omitempty"` // publisher only
	RSSEndKiB         int64   `json:"rss_end_kib,omitempty"`
	RSSPerPlayerKiB   float64 `json:"rss_per_player_kib,omitempty"`

	TTFF latencyStats `json:"ttff_ms"` // play → first video message
	TTFK latencyStats `json:"ttfk_ms"` // play → first keyframe

	// Cluster steps: the other hub (in an edge step the origin, which
	// then serves only the edge's pull; in an origin step the idle edge).
	PeerCPUPct    float64 `json:"peer_cpu_pct,omitempty"`
	PeerRSSEndKiB int64   `json:"peer_rss_end_kib,omitempty"`
	// With latency probes: publisher write → probe read of the stamped
	// video frames read within the window, over all probes.
	Probes int       `json:"probes,omitempty"`
	Lag    *lagStats `json:"lag_ms,omitempty"`

	ToolCPUPct  float64 `json:"tool_cpu_pct"`         // this process, % of one core
	ToolCores   int     `json:"tool_cores,omitempty"` // CPUs the tool was pinned to
	HostBusyPct float64 `json:"host_busy_pct"`        // whole machine, % of all cores
	HostCPUs    int     `json:"host_cpus"`
	// OtherCPUPct is the CPU the rest of the machine used in the window
	// (host busy minus server minus tool), % of one core: when it is large
	// the server and the players competed with something else.
	OtherCPUPct     float64 `json:"other_cpu_pct"`
	PublisherLateMs float64 `json:"publisher_late_ms"` // worst frame lateness
	RampSec         float64 `json:"ramp_sec"`          // first connect to last player ready

	PlayerErrors []string `json:"player_errors,omitempty"` // distinct, with counts
	Warnings     []string `json:"warnings,omitempty"`      // reasons to distrust the numbers
}

// latencyStats summarises per-player latencies in milliseconds.
type latencyStats struct {
	N   int     `json:"n"`
	P50 float64 `json:"p50"`
	P95 float64 `json:"p95"`
	Max float64 `json:"max"`
}

// summarize returns nearest-rank percentiles of ds.
func summarize(ds []time.Duration) latencyStats {
	if len(ds) == 0 {
		return latencyStats{}
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	return latencyStats{
		N:   len(s),
		P50: ms(s[rank(len(s), 50)]),
		P95: ms(s[rank(len(s), 95)]),
		Max: ms(s[len(s)-1]),
	}
}

// rank is the nearest-rank index of percentile p in n sorted values.
func rank(n int, p float64) int {
	r := int(float64(n)*p/100+0.999999999) - 1
	return min(max(r, 0), n-1)
}

// addrPattern matches IPv4 socket addresses in error texts.
var addrPattern = regexp.MustCompile(`\d{1,3}(?:\.\d{1,3}){3}:\d+`)

// countErrors groups error strings, with socket addresses blanked out, most
// frequent first.
func countErrors(errs []string) []string {
	counts := map[string]int{}
	for _, e := range errs {
		counts[addrPattern.ReplaceAllString(e, "<addr>")]++
	}
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if counts[keys[i]] != counts[keys[j]] {
			return counts[keys[i]] > counts[keys[j]]
		}
		return keys[i] < keys[j]
	})
	out := make([]string, 0, min(len(keys), 5))
	for _, k := range keys[:min(len(keys), 5)] {
		out = append(out, fmt.Sprintf("%d× %s", counts[k], k))
	}
	return out
}

// sleepCtx sleeps for d or until ctx ends; it reports whether d passed.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// runStep starts a fresh server of the step's kind, publishes, attaches
// the step's players and measures one window.
func runStep(ctx context.Context, cfg *benchConfig, st step) stepResult {
	n := st.players
	res := stepResult{Server: st.server, Protocol: st.protocol, Players: n}
	fail := func(err error) stepResult {
		res.Error = err.Error()
		return res
	}
	logf := func(format string, args ...any) {
		log.Printf("%v: "+format, append([]any{st}, args...)...)
	}

	srv, peer, pubSrv, err := startStepServers(ctx, &cfg.server, st.server)
	if err != nil {
		return fail(fmt.Errorf("start: %w", err))
	}
	defer func() {
		if err := srv.stop(); err != nil {
			logf("%v", err)
		}
		if peer != nil {
			if err := peer.stop(); err != nil {
				logf("%v", err)
			}
		}
	}()
	if srv.pid != 0 {
		if res.ServerCPUs, err = processCPUs(srv.pid); err != nil {
			logf("server cpus: %v", err)
		}
	}
	if peer != nil {
		if res.PeerCPUs, err = processCPUs(peer.pid); err != nil {
			logf("peer cpus: %v", err)
		}
		logf("server %v (players), peer %v, publisher on %v", srv, peer, pubSrv.kind)
	} else {
		logf("server %v, CPUs %s", srv, res.ServerCPUs)
	}
	rss := func() int64 {
		if srv.pid == 0 {
			return 0
		}
		kib, err := processRSS(srv.pid)
		if err != nil {
			logf("rss: %v", err)
		}
		return kib
	}
	res.RSSIdleKiB = rss()

	probes := map[int]bool{}
	if st.protocol == protoRTMP {
		probes = probeIndexes(n, cfg.probes)
	}
	res.Probes = len(probes)
	var pub *publisher
	if st.protocol == protoVOD {
		pub, err = prepareVOD(srv, cfg, n) // vod.go: the file instead of a publisher
	} else {
		pub, err = startPublisher(ctx, pubSrv.addr, benchApp, benchStream, cfg.plan, cfg.setupTimeout, len(probes) > 0)
	}
	if err != nil {
		return fail(pubSrv.fail(err))
	}
	defer pub.stop()
	if !sleepCtx(ctx, cfg.settle) {
		return fail(ctx.Err())
	}
	if err := pub.Err(); err != nil {
		return fail(err)
	}
	res.RSSBaseKiB = rss()

	// Players, connecting at a bounded rate.
	pcfg := &playerConfig{
		protocol: st.protocol, addr: srv.addr, app: stepApp(st), name: benchStream,
		setupTimeout: cfg.setupTimeout, readTimeout: cfg.readTimeout, readBuf: cfg.readBuf,
		rcvLowat: rcvLowat(cfg.plan.Bitrate, cfg.batch, cfg.readBuf),
	}
	if st.protocol == protoHLS {
		pcfg.http = newHLSClient(n, cfg.setupTimeout)
		defer pcfg.http.CloseIdleConnections()
	}
	if cfg.readPool && cfg.batch > 0 {
		pcfg.pool = newReadPool(cfg.batch, cfg.readTimeout)
		defer pcfg.pool.close()
	}
	players := make([]player, n)
	for i := range players {
		players[i].probe = probes[i]
	}
	pctx, stopPlayers := context.WithCancel(ctx)
	defer stopPlayers()
	var running, ready sync.WaitGroup
	ready.Add(n)
	rampStart := time.Now()
	first := 0
	if peer != nil {
		// The first player, retried until it streams: the edge learns of
		// the stream and reaches the origin through NATS, which may take a
		// moment after the hubs joined.
		if err := firstPlayer(ctx, pctx, &players[0], pcfg, &running, cfg.setupTimeout+20*time.Second); err != nil {
			return fail(srv.fail(err))
		}
		ready.Done()
		first = 1
		rampStart = time.Now()
	}
	interval := time.Duration(float64(time.Second) / cfg.rampRate)
	started := first
	for i := first; i < n; i++ {
		if d := time.Until(rampStart.Add(time.Duration(i-first) * interval)); d > 0 && !sleepCtx(ctx, d) {
			break
		}
		running.Go(func() { players[i].run(pctx, pcfg, ready.Done) })
		started++
	}
	for range n - started {
		ready.Done()
	}
	allReady := make(chan struct{})
	go func() { ready.Wait(); close(allReady) }()
	readyTimeout := cfg.setupTimeout + 5*time.Second
	select {
	case <-allReady:
	case <-time.After(readyTimeout):
		logf("not all players ready %v after the last connect", readyTimeout)
	case <-ctx.Done():
	}
	res.RampSec = time.Since(rampStart).Seconds()
	logf("players ready after %.1fs; warming up %v", res.RampSec, cfg.warmup)
	if !sleepCtx(ctx, cfg.warmup) {
		return fail(ctx.Err())
	}

	// The window.
	startBytes := make([]uint64, n)
	startState := make([]int32, n)
	for i := range players {
		startState[i] = players[i].state.Load()
		startBytes[i] = players[i].bytes.Load()
	}
	var cpu0, peerCPU0 time.Duration
	if srv.pid != 0 {
		if cpu0, err = processCPU(srv.pid); err != nil {
			return fail(srv.fail(fmt.Errorf("server cpu: %w", err)))
		}
	}
	if peer != nil {
		if peerCPU0, err = processCPU(peer.pid); err != nil {
			return fail(peer.fail(fmt.Errorf("peer cpu: %w", err)))
		}
	}
	tool0 := selfCPU()
	host0, hostErr := readHostCPU()
	t0 := time.Now()
	logf("measuring %v", cfg.duration)
	if !sleepCtx(ctx, cfg.duration) {
		return fail(ctx.Err())
	}
	t1 := time.Now()
	window := t1.Sub(t0)
	var cpu1, peerCPU1 time.Duration
	if srv.pid != 0 {
		if cpu1, err = processCPU(srv.pid); err != nil {
			return fail(srv.fail(fmt.Errorf("server cpu: %w", err)))
		}
	}
	if peer != nil {
		if peerCPU1, err = processCPU(peer.pid); err != nil {
			return fail(peer.fail(fmt.Errorf("peer cpu: %w", err)))
		}
		if res.PeerRSSEndKiB, err = processRSS(peer.pid); err != nil {
			logf("peer rss: %v", err)
		}
	}
	tool1 := selfCPU()
	host1, hostErr1 := readHostCPU()
	endBytes := make([]uint64, n)
	for i := range players {
		endBytes[i] = players[i].bytes.Load()
	}
	res.RSSEndKiB = rss()
	pubErr := pub.Err()

	// Stop everything, bounded.
	stopPlayers()
	done := make(chan struct{})
	go func() { running.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		logf("players did not all stop within 10s")
	}

	// Results.
	res.WindowSec = window.Seconds()
	res.ExpectedMbps = float64(n) * float64(cfg.plan.Bitrate) / 1e6
	var total uint64
	perPlayerExpected := float64(cfg.plan.Bitrate) / 8 * window.Seconds()
	res.MinPlayerPct = -1
	var ttff, ttfk []time.Duration
	var lags []lagSample
	var errs []string
	for i := range players {
		p := &players[i]
		total += endBytes[i] - startBytes[i]
		st := p.state.Load()
		switch startState[i] {
		case playerStreaming:
			res.OK++
			pct := 100 * float64(endBytes[i]-startBytes[i]) / perPlayerExpected
			if res.MinPlayerPct < 0 || pct < res.MinPlayerPct {
				res.MinPlayerPct = pct
			}
		case playerDropped:
			// Lost before the window: counted as dropped below.
		default:
			res.Failed++
			if startState[i] == playerStarting {
				errs = append(errs, "not streaming when the window started")
			}
		}
		if st == playerDropped {
			res.Dropped++
		}
		if p.probe {
			lags = append(lags, p.lagSamples()...)
		}
		if p.ttff > 0 && startState[i] != playerFailed && startState[i] != playerStarting {
			ttff = append(ttff, p.ttff)
		}
		if p.ttfk > 0 && startState[i] != playerFailed && startState[i] != playerStarting {
			ttfk = append(ttfk, p.ttfk)
		}
		if (st == playerFailed && startState[i] != playerStarting || st == playerDropped) && p.err != nil {
			errs = append(errs, p.err.Error())
		}
	}
	if res.MinPlayerPct < 0 {
		res.MinPlayerPct = 0
	}
	res.DeliveredMbps = float64(total) * 8 / window.Seconds() / 1e6
	res.TTFF = summarize(ttff)
	res.TTFK = summarize(ttfk)
	if res.Probes > 0 {
		lag := summarizeLag(lags, t0, t1)
		res.Lag = &lag
	}
	res.PlayerErrors = countErrors(errs)
	if srv.pid != 0 {
		res.ServerCPUPct = cpuPercent(cpu1-cpu0, window)
		if res.OK > 0 {
			res.CPUUsPerPlayerSec = (cpu1 - cpu0).Seconds() * 1e6 / (float64(res.OK) * window.Seconds())
		}
		if res.OK > 0 && res.RSSEndKiB > 0 {
			res.RSSPerPlayerKiB = float64(res.RSSEndKiB-res.RSSBaseKiB) / float64(res.OK)
		}
	}
	if peer != nil {
		res.PeerCPUPct = cpuPercent(peerCPU1-peerCPU0, window)
	}
	res.ToolCPUPct = cpuPercent(tool1-tool0, window)
	res.ToolCores = cfg.toolCores
	if hostErr == nil && hostErr1 == nil && host1.Total > host0.Total {
		res.HostBusyPct = 100 * float64(host1.Busy-host0.Busy) / float64(host1.Total-host0.Total)
		res.HostCPUs = host1.CPUs
		if srv.pid != 0 {
			res.OtherCPUPct = max(0, res.HostBusyPct*float64(res.HostCPUs)-res.ServerCPUPct-res.PeerCPUPct-res.ToolCPUPct)
		}
	}
	res.PublisherLateMs = float64(pub.maxLate.Load()) / 1e6
	if pubErr != nil {
		res.Error = "publisher: " + pubErr.Error()
	}
	res.Warnings = stepWarnings(&res)
	logf("done: %.2f of %.2f Mbps, server cpu %.1f%% (%.1f µs/pl·s), tool cpu %.1f%%, others %.0f%%", res.DeliveredMbps, res.ExpectedMbps, res.ServerCPUPct, res.CPUUsPerPlayerSec, res.ToolCPUPct, res.OtherCPUPct)
	if res.Lag != nil {
		logf("latency p50 %.1f ms, p99 %.1f ms (%d frames, %d probes); peer cpu %.1f%%", res.Lag.P50, res.Lag.P99, res.Lag.N, res.Probes, res.PeerCPUPct)
	}
	return res
}

// firstPlayer starts p and waits until it streams, starting it again
// (after half a second) each time it fails to, until timeout. Its
// goroutine joins running.
func firstPlayer(ctx, pctx context.Context, p *player, cfg *playerConfig, running *sync.WaitGroup, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	probe := p.probe
	for attempt := 1; ; attempt++ {
		*p = player{probe: probe}
		readyc := make(chan struct{})
		done := make(chan struct{})
		running.Go(func() {
			defer close(done)
			p.run(pctx, cfg, func() { close(readyc) })
		})
		select {
		case <-readyc:
		case <-ctx.Done():
			return ctx.Err()
		}
		if p.state.Load() == playerStreaming {
			return nil
		}
		<-done
		if time.Now().After(deadline) {
			return fmt.Errorf("the first player did not stream within %v (%d attempts): %w", timeout, attempt, p.err)
		}
		if !sleepCtx(ctx, 500*time.Millisecond) {
			return ctx.Err()
		}
	}
}

// rcvLowat is the SO_RCVLOWAT that lets batch worth of a stream of bitrate
// bits per second accumulate, at most half the read buffer; 0 when batching
// is off.
func rcvLowat(bitrate int, batch time.Duration, readBuf int) int {
	if batch <= 0 {
		return 0
	}
	n := int(float64(bitrate) / 8 * batch.Seconds())
	return max(1, min(n, readBuf/2))
}

// stepWarnings lists what makes a step's numbers doubtful.
func stepWarnings(r *stepResult) []string {
	var w []string
	if r.OtherCPUPct > 25 {
		w = append(w, fmt.Sprintf("other processes used %.0f%% of a core during the window; the server and players competed with them", r.OtherCPUPct))
	}
	if r.ToolCores > 0 && r.ToolCPUPct > 70*float64(r.ToolCores) {
		w = append(w, fmt.Sprintf("the tool used %.0f%% of its %d pinned core(s): players and probes may have read late", r.ToolCPUPct, r.ToolCores))
	}
	if r.PublisherLateMs > 100 {
		w = append(w, fmt.Sprintf("the publisher fell up to %.0f ms behind real time", r.PublisherLateMs))
	}
	if r.OK > 0 && r.MinPlayerPct > 110 {
		w = append(w, fmt.Sprintf("even the slowest player got %.0f%% of the stream rate: the window caught up a backlog from before it", r.MinPlayerPct))
	}
	if r.Failed > 0 || r.Dropped > 0 {
		w = append(w, fmt.Sprintf("%d players failed to start and %d dropped", r.Failed, r.Dropped))
	}
	return w
}
