// Command rtmpbench is the load tool: it publishes one synthetic live
// stream of a chosen bitrate to an RTMP server, attaches N players over
// loopback and reports delivered Mbps, server CPU and RSS per player, and
// time to first frame. It can start rtmphub and nginx-rtmp itself and
// measure both in one run, so the report compares them.
// With -server cluster it starts two rtmphub processes joined over NATS and
// compares players on an edge hub with players on the origin, with
// publisher → player latency measured from send times stamped into the
// video frames.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"os/signal"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strings"
	"syscall"
	"time"
)

const usageText = `rtmpbench publishes one synthetic live stream to an RTMP server, attaches
N players over loopback and measures the server.

Usage:
  rtmpbench [flags]

Examples (from the module root):
  go run ./cmd/rtmpbench -server nginx -players 100,500,2000 -bitrate 232k
  go run ./cmd/rtmpbench -server both -players 100,500,2000 -bitrate 232k
  go run ./cmd/rtmpbench -server addr=127.0.0.1:1935 -server-pid 1234 -players 50
  # HTTP-FLV viewers against RTMP players of the same rtmphub, with a ratio row
  go run ./cmd/rtmpbench -server rtmphub -protocol rtmp,http-flv -players 100,1000
  # a player on an edge hub vs on the origin: two hubs in one cluster
  go run ./cmd/rtmpbench -server cluster -players 100,1000 -bitrate 232k
  # on a shared host: higher priority, and wait for other work to calm down
  go run ./cmd/rtmpbench -server both -nice -10 -wait-idle 30 -wait-idle-max 2m -out bench/r.json
  # rtmphub against nginx-rtmp, 3 interleaved rounds, medians and spread
  go run ./cmd/rtmpbench -server both -players 1000,3000 -rounds 3 -nice -10 -wait-idle 40 -wait-idle-max 1m
  # the noise of the method: one rtmphub against itself
  go run ./cmd/rtmpbench -server aa -players 1000 -rounds 3

Servers (-server):
  rtmphub   builds ./cmd/rtmphub (or runs -rtmphub-bin) with -rtmphub-args and
            reads its RTMP address from the JSON log line
            {"msg":"listening","transport":"rtmp","addr":...}
  nginx     writes an nginx.conf for nginx-rtmp (one process, master_process
            off, chunk_size 4096, ping 0, application live { live on; }) and
            runs nginx -c <conf> -p <tmp>; ping is off because the players
            stop parsing after the first keyframe and cannot answer pings
  both      rtmphub and nginx, one after the other for each player count,
            with a ratio row rtmphub/nginx
  aa        (or rtmphub,rtmphub) the same rtmphub command twice per player
            count, labelled A and B, with a ratio row B/A: an A/A run, to
            show how far two measurements of one server differ; with
            -rtmphub-args-b, B gets those arguments too (an A/B run of two
            settings, e.g. -rtmphub-args-b "--merged-write 350ms")
  cluster   two rtmphub processes (-rtmphub-args, then --node-name
            rtmpbench-a|b, --cluster-secret, --cluster-embedded,
            --cluster-route-addr, --cluster-routes) joined into one cluster
            by their embedded NATS servers, each started once it logs
            "cluster: joined". The publisher is always on hub A. For each
            player count two steps, each on a fresh cluster: "origin", the
            players on A; "edge", the players on B, which pulls the stream
            once from A over RTMP and fans it out. The first player is
            retried until it streams (the edge may take a moment to learn
            of the stream), then the others ramp up. CPU%, RSS are the hub
            serving the players; peer% is the other hub's CPU (in an edge
            step the origin serving only the pull, in an origin step the
            idle edge). The ratio row edge/origin divides CPU, RSS and
            CPU/pl, shows added latency (edge − origin, ms) in the lag
            columns, and (edge+origin)/(origin+edge) of both hubs' CPU in
            the peer% column. Latency probes are on (-latency-probes)
  addr=H:P  an already running server (not restarted between steps); CPU
            and RSS only with -server-pid

Players (-protocol):
  rtmp      connect, createStream, play (live), as described below
  http-flv  GET /live/bench.flv on the server's RTMP address (rtmphub tells
            HTTP from RTMP by the first byte); wants 200 and video/x-flv,
            parses FLV tags until the first video keyframe, then counts
            bytes like an RTMP player, with nothing to acknowledge. rtmphub
            or addr= only: nginx-rtmp serves no HTTP-FLV
  hls       LL-HLS: GET /live/bench/index.m3u8 on the RTMP address, then
            the media playlists of its first variant (video, and the
            default audio rendition), each from its last INDEPENDENT part
            on: every new EXT-X-PART is downloaded after a blocking reload
            (_HLS_msn/_HLS_part of the next part) when the playlist says
            CAN-BLOCK-RELOAD=YES, else after polling every PART-TARGET.
            The players share one keep-alive HTTP client. Bytes are the init
            sections and parts (playlists not counted); TTFF = index.m3u8
            asked → first part in, key = the same when it is INDEPENDENT.
            rtmphub or addr= only
  rtmpt     RTMP tunnelled in HTTP POST polls on the RTMP address, as
            librtmp (rtmpdump) plays rtmpt://: one keep-alive connection,
            /open/1, each write a pipelined /send, back-to-back /idle polls
            when nothing is outstanding, the interval byte ignored; then
            connect, createStream, play and counting as an RTMP player
            (RTMP bytes of the replies). Each player dials from its own
            127.1.x.y source address (per-address limits). rtmphub or addr=
  vod       RTMP players of a recorded stream: the tool writes the
            synthetic stream (-vod-length of it) as an FLV file and
            publishes nothing; the players connect to app vod, play "bench"
            with start 0 and count bytes like rtmp players. The file is
            vod/streams/_definst_/bench.flv in the data dir of the rtmphub
            the tool starts, or <dir>/vod/bench.flv for nginx (application
            vod { play <dir>/vod; }). rtmphub paces a file at real time after
            its VOD buffer (2 s), nginx-rtmp after the client's buffer, so
            expected is players × bitrate as for live. rtmphub or nginx
  a,b       each player count with each protocol, one after the other (a
            fresh server each), with a ratio row b/rtmp when one is rtmp

Each (server, protocol, player count) step starts a fresh server, publishes
rtmp://addr/live/bench like ffmpeg (FMLE connect, releaseStream, FCPublish,
createStream, publish live; @setDataFrame onMetaData, AVC and AAC sequence
headers, then keyframes every -gop and inter frames at -fps plus AAC frames
at 44100/1024 per second, paced in real time), lets it run -settle, then
connects the players at -ramp. A player connects, creates a stream, plays,
parses messages until the first keyframe and from then on only counts
bytes, acknowledging per the server's window. Counting players are read
by one goroutine (-read-pool) that reads each socket once every -batch of
the stream (RTMP acknowledgements are written by it too), so thousands of
players cost one timer wakeup per -batch and, over loopback, the server's
sends do not pay for a player wakeup per message; with -read-pool=false
each player has its goroutine, woken by the kernel (SO_RCVLOWAT) once
-batch of the stream is buffered. At 3000 players of 232 kbps the tool
needed 42% of its core with rtmphub and 52-68% with nginx-rtmp (more,
smaller segments to receive). After -warmup the window of -duration is
measured:

  Mbps got  bytes all players received in the window (RTMP chunk headers,
            FLV tag headers included, so a few % over the media rate) / window
  expected  players × bitrate (media payload)
  min%      the slowest player's bytes vs the stream bitrate
  CPU%      server utime+stime over the window, % of one core
  µs/pl·s   server CPU seconds / (streaming players × window seconds), in
            µs: what one player costs the server per second of streaming
  RSS base  server VmRSS with the publisher only; RSS/pl = (VmRSS at the
            end of the window − RSS base) / streaming players
  TTFF      play (or GET) sent → first video message or tag (p50/p95/max,
            ms); key = play sent → first keyframe carrying coded data (a
            server without a GOP cache makes players wait up to -gop for it)
  tool%     this process's CPU over the window, % of one core (the players
            and the publisher share the machine with the server)
  other%    CPU the rest of the machine used in the window (host busy −
            server − peer − tool), % of one core; large values spoil the run

With latency probes (-latency-probes K > 0, RTMP players only; the
default with -server cluster) the publisher stamps each video frame with
the wall-clock time it writes it (after the NAL header: "RBTS" and the Unix
time in ns; the shared frame is copied, never modified), and K of the N
players, spread over the connect order, parse every message without
SO_RCVLOWAT and note read time − stamp for each frame (one machine, one
clock: valid over loopback; it includes the tool's own scheduling delay,
the same for every step). The table then has more columns:

  CPU/pl    CPU% / streaming players
  peer%     cluster steps: the other hub's CPU over the window
  lag p50, p99, max
            publisher write → probe read of the stamped frames read in the
            window, over all probes (ms)

Pinning (-pin, on by default when this process may use two or more
CPUs): every server process the tool starts (rtmphub, nginx, both cluster
hubs) runs on one CPU (-server-cpus, default the first allowed) and the
tool, players and publisher, on another (-tool-cpus, default the second).
The servers' affinity is set on the thread that forks them, so it holds
from their first instruction and a Go server's runtime sizes GOMAXPROCS to
it (1); the tool pins all its threads at start and sets its GOMAXPROCS to
match. The header and the JSON say how the servers were placed, with the
kernel's Cpus_allowed_list of each server. -pin=false leaves placement to
the kernel (the old behaviour: server and tool float over all cores).

Rounds (-rounds N): the whole list of steps runs N times, interleaved
(round 1: every step, round 2: every step, ...), each round printed as a
table; then a summary, each cell the median and [min–max] over the
rounds, of CPU%, µs/pl·s, RSS/pl, Mbps got, tool%, other% and, with
probes, lag p50 and p99; a ratio row's cells are the median and spread of
each round's own ratio (lag: of each round's difference), not ratios of
medians.

Runs on one host take turns (an flock on $TMPDIR/rtmpbench.lock): two at
once would spoil each other's numbers. The server and the tool share the host, and over loopback part of the
receiving side's kernel work is charged to the sender: compare servers
within one run, on an otherwise idle machine.

Flags:
`

func main() {
	log.SetFlags(log.Ltime)
	log.SetPrefix("rtmpbench: ")
	if err := run(); err != nil {
		log.Fatal(err)
	}
}

func run() error {
	var (
		serverFlag   = flag.String("server", "both", "rtmphub, nginx, both, aa (rtmphub against itself), cluster, or addr=host:port")
		protoFlag    = flag.String("protocol", protoRTMP, "players' protocol: rtmp, http-flv, hls, rtmpt or vod, or several comma-separated (each player count runs with each, e.g. rtmp,http-flv)")
		serverPID    = flag.Int("server-pid", 0, "with -server addr=: the server's pid, for CPU and RSS")
		playersFlag  = flag.String("players", "100,500,2000", "player counts to run, comma-separated")
		bitrateFlag  = flag.String("bitrate", "232k", "stream bitrate (media payload), e.g. 232k, 1.5M")
		audioFlag    = flag.String("audio-bitrate", "", "audio share of -bitrate (default 64k, or 30% of a stream under 213k; 0: no audio)")
		fps          = flag.Float64("fps", 25, "video frames per second")
		gop          = flag.Duration("gop", time.Second, "keyframe interval")
		keyFactor    = flag.Int("keyframe-factor", 5, "keyframe size as a multiple of an inter frame")
		duration     = flag.Duration("duration", 20*time.Second, "measuring window")
		warmup       = flag.Duration("warmup", 5*time.Second, "wait after the last player is ready, before the window")
		settle       = flag.Duration("settle", 2*time.Second, "publisher alone before the baseline RSS and the players")
		rampFlag     = flag.String("ramp", "500/s", "player connect rate")
		rtmphubBin   = flag.String("rtmphub-bin", "", "rtmphub binary (default: go build ./cmd/rtmphub)")
		rtmphubArgsB = flag.String("rtmphub-args-b", "", "with -server aa: arguments added to B's command (an A/B run of two settings of one binary)")
		rtmphubArgs  = flag.String("rtmphub-args", "serve --rtmp-addr 127.0.0.1:0 --http-addr= --data-dir {datadir} --log-format json --log-level info", "rtmphub arguments, space-separated; {datadir} is a fresh directory, {addr} a free 127.0.0.1 port (then readiness is seen by connecting instead of from the log)")
		nginxBin     = flag.String("nginx-bin", "nginx", "nginx binary")
		nginxModule  = flag.String("nginx-module", "/usr/lib/nginx/modules/ngx_rtmp_module.so", "nginx-rtmp dynamic module (load_module)")
		setupTimeout = flag.Duration("setup-timeout", 10*time.Second, "bound on dial through first keyframe, per player and for the publisher")
		readTimeout  = flag.Duration("read-timeout", 10*time.Second, "a streaming player with no data for this long counts as dropped")
		readBuf      = flag.Int("read-buf", 16<<10, "player read buffer, bytes")
		batch        = flag.Duration("batch", 100*time.Millisecond, "once counting, a player is read every this much of the stream (-read-pool; without it the kernel wakes the player when this much is buffered, SO_RCVLOWAT, at most -read-buf/2); 0: on every segment, a goroutine each")
		jsonOut      = flag.Bool("json", false, "print the report as JSON on stdout instead of a table")
		outFile      = flag.String("out", "", "also write the JSON report to this file")
		keepTmp      = flag.Bool("keep-tmp", false, "keep the temporary directory (server configs and logs)")
		idleBusy     = flag.Float64("wait-idle", 0, "before each step wait (up to -wait-idle-max) until the host is less than this % busy; 0: don't wait")
		idleMax      = flag.Duration("wait-idle-max", 10*time.Minute, "longest wait for an idle host per step")
		cpuProfile   = flag.String("cpuprofile", "", "write this process's CPU profile (the players' and the publisher's side) to this file")
		probesFlag   = flag.Int("latency-probes", -1, "RTMP players per step that parse every message and measure publisher → player latency from send times the publisher stamps into the video frames (-1: 10 with -server cluster, else 0; 0: none)")
		niceness     = flag.Int("nice", 0, "run the tool and the servers it starts at this nice value (e.g. -10 on a shared host; needs root to go below 0)")
		pinFlag      = flag.Bool("pin", true, "pin every server the tool starts to one CPU and the tool to another (the first two this process may use; only when there are two or more); -pin=false: leave placement to the kernel")
		serverCPUs   = flag.String("server-cpus", "", "with -pin: the servers' CPUs, e.g. 0 or 0-1 (with -tool-cpus)")
		toolCPUs     = flag.String("tool-cpus", "", "with -pin: the tool's CPUs, e.g. 1 (with -server-cpus)")
		readPool     = flag.Bool("read-pool", true, "count streaming RTMP and HTTP-FLV players from one goroutine that reads every socket once per -batch, instead of a goroutine per player woken by SO_RCVLOWAT; -read-pool=false: a goroutine each")
		roundsFlag   = flag.Int("rounds", 1, "run the whole list of steps this many times, interleaved (round 1: every step, round 2: every step, ...), then print medians and spread over the rounds")
	)
	flag.Usage = func() {
		fmt.Fprint(flag.CommandLine.Output(), usageText)
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q (see -h)", flag.Args())
	}
	// First, before the runtime starts more threads: every later thread
	// inherits the affinity of the one that starts it.
	pin, err := planPinning(*pinFlag, *serverCPUs, *toolCPUs)
	if err != nil {
		return fmt.Errorf("-pin: %w", err)
	}
	if pin.on() {
		if err := pinSelf(pin.Tool); err != nil {
			return fmt.Errorf("-pin: %w", err)
		}
		log.Printf("%v", pin)
	}
	if *roundsFlag < 1 {
		return fmt.Errorf("-rounds %d: want at least 1", *roundsFlag)
	}
	if os.Getenv("GOGC") == "" {
		// The players' heap is small and churns (HLS: thousands of
		// requests a second) while thousands of goroutines make each
		// collection dear: collect less often. The tool's memory is not
		// what is measured.
		debug.SetGCPercent(400)
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}

	bitrate, err := parseBitrate(*bitrateFlag)
	if err != nil {
		return err
	}
	audio := defaultAudioBitrate(bitrate)
	if *audioFlag != "" {
		if *audioFlag == "0" {
			audio = 0
		} else if audio, err = parseBitrate(*audioFlag); err != nil {
			return err
		}
	}
	plan, err := planStream(bitrate, audio, *fps, *gop, *keyFactor)
	if err != nil {
		return err
	}
	players, err := parsePlayers(*playersFlag)
	if err != nil {
		return err
	}
	ramp, err := parseRate(*rampFlag)
	if err != nil {
		return err
	}
	if *duration <= 0 || *warmup < 0 || *settle < 0 || *setupTimeout <= 0 || *readTimeout <= 0 || *readBuf < 512 {
		return fmt.Errorf("durations must be positive and -read-buf >= 512")
	}

	cfg := &benchConfig{
		plan: plan, players: players, duration: *duration, warmup: *warmup, settle: *settle,
		rampRate: ramp, setupTimeout: *setupTimeout, readTimeout: *readTimeout, readBuf: *readBuf, batch: *batch, readPool: *readPool,
		server: serverConfig{
			rtmphubBin:   *rtmphubBin,
			rtmphubArgs:  strings.Fields(*rtmphubArgs),
			rtmphubArgsB: strings.Fields(*rtmphubArgsB),
			nginxBin:     *nginxBin,
			nginxModule:  *nginxModule,
			externalPID:  *serverPID,
			startTimeout: 15 * time.Second,
			cpus:         pin.Server,
		},
		toolCores: len(pin.Tool),
	}
	var kinds []string
	switch s := *serverFlag; {
	case s == kindRtmphub, s == kindNginx:
		kinds = []string{s}
	case s == "both":
		kinds = []string{kindRtmphub, kindNginx}
	case s == "aa", s == "rtmphub,rtmphub":
		kinds = []string{kindRtmphubA, kindRtmphubB}
		if *rtmphubArgsB != "" {
			log.Printf("A/B run: B is started with %q added", *rtmphubArgsB)
		}
	case s == kindCluster:
		kinds = []string{kindClusterOrigin, kindClusterEdge}
	case strings.HasPrefix(s, "addr="):
		cfg.server.externalAddr = strings.TrimPrefix(s, "addr=")
		kinds = []string{kindExternal}
	default:
		return fmt.Errorf("bad -server %q: want rtmphub, nginx, both, aa, cluster or addr=host:port", s)
	}
	if *rtmphubArgsB != "" && kinds[0] != kindRtmphubA {
		return fmt.Errorf("-rtmphub-args-b needs -server aa")
	}
	cfg.probes = *probesFlag
	if cfg.probes < 0 {
		cfg.probes = 0
		if *serverFlag == kindCluster {
			cfg.probes = 10
		}
	}
	protocols, err := parseProtocols(*protoFlag, kinds)
	if err != nil {
		return err
	}
	steps := planSteps(players, kinds, protocols)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	if *niceness != 0 {
		// Twice: a thread started during the first pass by a thread not yet
		// reniced would keep the old value.
		if err := errors.Join(reniceSelf(*niceness), reniceSelf(*niceness)); err != nil {
			return fmt.Errorf("-nice %d: %w", *niceness, err)
		}
	}
	nofile, err := raiseNofile()
	if err != nil {
		log.Printf("raising the open-file limit: %v", err)
	}
	if need := uint64(slices.Max(players)*2 + 64); nofile < need {
		log.Printf("warning: open-file limit %d; %d players over loopback need about %d (server and tool together)", nofile, slices.Max(players), need)
	}

	release, err := benchLock(ctx)
	if err != nil {
		return err
	}
	defer release()

	tmp, err := os.MkdirTemp("", "rtmpbench-")
	if err != nil {
		return err
	}
	cfg.server.tmpRoot = tmp
	if *keepTmp {
		log.Printf("keeping %s", tmp)
	} else {
		defer os.RemoveAll(tmp)
	}

	for _, k := range kinds {
		switch k {
		case kindRtmphub, kindRtmphubA, kindRtmphubB, kindClusterOrigin, kindClusterEdge:
			if cfg.server.rtmphubBin == "" {
				log.Printf("building ./cmd/rtmphub")
				if cfg.server.rtmphubBin, err = buildRtmphub(ctx, tmp); err != nil {
					return err
				}
			}
		case kindNginx:
			if cfg.server.nginxBin, err = exec.LookPath(cfg.server.nginxBin); err != nil {
				return fmt.Errorf("nginx: %w", err)
			}
			if _, err := os.Stat(cfg.server.nginxModule); err != nil {
				return fmt.Errorf("nginx-rtmp module: %w (apt-get install libnginx-mod-rtmp, or -nginx-module)", err)
			}
		}
	}

	host, _ := readHostCPU()
	rep := &report{
		Started: time.Now(), Stream: formatBitrate(bitrate), Plan: plan,
		Warmup: warmup.String(), Duration: duration.String(), Ramp: ramp, HostCPUs: host.CPUs,
		RcvLowat: rcvLowat(bitrate, *batch, *readBuf), Probes: cfg.probes,
		Pinning: pin, Rounds: *roundsFlag, ReadPool: *readPool && *batch > 0, ArgsB: *rtmphubArgsB,
	}
	log.Printf("%v", plan)
	for round := 1; round <= *roundsFlag; round++ {
		for _, st := range steps {
			if ctx.Err() != nil {
				break
			}
			if *roundsFlag > 1 {
				log.Printf("round %d of %d: %v", round, *roundsFlag, st)
			}
			if *idleBusy > 0 {
				busy, err := waitIdle(ctx, *idleBusy, *idleMax)
				switch {
				case ctx.Err() != nil:
					continue
				case err != nil:
					log.Printf("waiting for an idle host: %v", err)
				case busy >= *idleBusy:
					log.Printf("host still %.0f%% busy after %v; running anyway", busy, *idleMax)
				}
			}
			res := runStep(ctx, cfg, st)
			res.Round = round
			if res.Error != "" {
				log.Printf("%v: %s", st, res.Error)
			}
			rep.Results = append(rep.Results, res)
		}
	}
	rep.Summary = summarizeRounds(rep.Results)

	if *outFile != "" {
		f, err := os.Create(*outFile)
		if err != nil {
			return err
		}
		if err := rep.writeJSON(f); err != nil {
			f.Close()
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
	}
	if *jsonOut {
		err = rep.writeJSON(os.Stdout)
	} else {
		err = rep.writeTable(os.Stdout)
	}
	if err != nil {
		return err
	}
	return ctx.Err()
}

// parseProtocols parses -protocol: rtmp, http-flv, hls, or a
// comma-separated list of them. Only rtmphub (or a server at addr=, taken
// to be one) serves HTTP-FLV and HLS.
func parseProtocols(s string, kinds []string) ([]string, error) {
	var protos []string
	for p := range strings.SplitSeq(s, ",") {
		p = strings.TrimSpace(p)
		switch p {
		case protoRTMP, protoHTTPFLV, protoHLS, protoRTMPT, protoVOD:
		default:
			return nil, fmt.Errorf("bad -protocol %q: want rtmp, http-flv, hls, rtmpt or vod, or a comma-separated list of them", p)
		}
		if slices.Contains(protos, p) {
			return nil, fmt.Errorf("-protocol %q lists %s twice", s, p)
		}
		if p != protoRTMP && p != protoVOD && slices.Contains(kinds, kindNginx) {
			return nil, fmt.Errorf("-protocol %s: nginx-rtmp does not serve %s; use -server rtmphub or addr=host:port", p, p)
		}
		protos = append(protos, p)
	}
	return protos, nil
}

// planSteps orders a run's steps: for each player count, each server, each
// protocol, so the steps a ratio compares run close together.
func planSteps(players []int, kinds, protocols []string) []step {
	var steps []step
	for _, n := range players {
		for _, k := range kinds {
			for _, p := range protocols {
				steps = append(steps, step{server: k, protocol: p, players: n})
			}
		}
	}
	return steps
}
