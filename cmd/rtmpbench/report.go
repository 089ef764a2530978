package main

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// report is everything one run produced.
type report struct {
	Started  time.Time    `json:"started"`
	Stream   string       `json:"stream"`
	Plan     streamPlan   `json:"plan"`
	Warmup   string       `json:"warmup"`
	Duration string       `json:"duration"`
	Ramp     float64      `json:"ramp_per_sec"`
	HostCPUs int          `json:"host_cpus"`
	RcvLowat int          `json:"player_rcvlowat"` // SO_RCVLOWAT of counting players, 0 = default
	Probes   int          `json:"latency_probes,omitempty"`
	Pinning  pinning      `json:"pinning"`
	ReadPool bool         `json:"read_pool,omitempty"` // counting players read by one goroutine (readpool.go)
	Rounds   int          `json:"rounds,omitempty"`
	ArgsB    string       `json:"rtmphub_args_b,omitempty"` // -server aa: what B's command adds (an A/B run)
	Results  []stepResult `json:"results"`                  // all rounds, in the order run; Round says which
	// Summary is over the rounds: per (server, protocol, players), then per
	// ratio row (see summarizeRounds).
	Summary []summaryRow `json:"summary,omitempty"`
}

func (r *report) writeJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// writeTable prints the results as a table, one row per step (server,
// protocol, player count), with ratio rows after each player count's steps
// (see ratioRows).
func (r *report) writeTable(w io.Writer) error {
	fmt.Fprintf(w, "%s\n", r.Plan)
	reads := fmt.Sprintf("read with SO_RCVLOWAT %d", max(1, r.RcvLowat))
	if r.ReadPool {
		reads = "read by one goroutine every -batch once streaming"
	}
	fmt.Fprintf(w, "window %s after %s warmup; players connect at %g/s, %s; host has %d CPUs; %v\n",
		r.Duration, r.Warmup, r.Ramp, reads, r.HostCPUs, r.Pinning)
	if cpus := r.allowedCPUs(); cpus != "" {
		fmt.Fprintf(w, "servers' Cpus_allowed_list as the kernel reported it: %s\n", cpus)
	}
	io.WriteString(w, `CPU% = server CPU over the window, % of one core; µs/pl·s = server CPU µs per streaming player per second of the window;
RSS/pl = (RSS at end − RSS with publisher only) / streaming players;
Mbps = bytes received by all players (RTMP chunk headers, HTTP and FLV framing included) vs players × stream bitrate; min% = slowest player;
TTFF = play or GET sent → first video message or tag, key = → first keyframe (ms); tool% = this process; other% = the rest
of the machine (host busy − server − tool, % of one core): large values mean the run competed with something else.

`)
	extra := r.hasExtra()
	switch {
	case r.hasAA() && r.ArgsB != "":
		fmt.Fprintf(w, "A = the rtmphub command, B = the same command with %s added (-server aa -rtmphub-args-b): B/A shows that setting's effect.\n\n", r.ArgsB)
	case r.hasAA():
		io.WriteString(w, "A, B = the same rtmphub command started twice per step (-server aa): B/A shows the noise of the method.\n\n")
	}
	if extra {
		fmt.Fprintf(w, `CPU/pl = CPU%% / streaming players; peer%% = the cluster's other hub's CPU (edge step: the origin, serving the pull);
lag = publisher write → player read of stamped video frames in the window, %d probe players (ms); in an edge/origin row: edge − origin (ms),
and peer%% = both hubs' CPU, edge step over origin step.

`, r.Probes)
	}
	rounds := r.roundResults()
	for i, results := range rounds {
		if len(rounds) > 1 {
			fmt.Fprintf(w, "round %d of %d\n", i+1, len(rounds))
		}
		if err := writeResults(w, results, extra); err != nil {
			return err
		}
		if len(rounds) > 1 {
			io.WriteString(w, "\n")
		}
	}
	if len(rounds) > 1 && len(r.Summary) > 0 {
		fmt.Fprintf(w, "summary over %d rounds: median [min–max]\n", len(rounds))
		if err := writeSummary(w, r.Summary); err != nil {
			return err
		}
	}
	for _, res := range r.Results {
		name := res.Server + " " + res.protocol()
		if res.Round > 0 && r.Rounds > 1 {
			name = fmt.Sprintf("round %d, %s", res.Round, name)
		}
		if res.Error != "" {
			fmt.Fprintf(w, "\n%s, %d players: ERROR %s\n", name, res.Players, res.Error)
		}
		if len(res.PlayerErrors) > 0 {
			fmt.Fprintf(w, "\n%s, %d players, player errors:\n  %s\n", name, res.Players, strings.Join(res.PlayerErrors, "\n  "))
		}
		if len(res.Warnings) > 0 {
			fmt.Fprintf(w, "\n%s, %d players (*), doubtful:\n  %s\n", name, res.Players, strings.Join(res.Warnings, "\n  "))
		}
	}
	return nil
}

// writeResults prints one table of results (one round), with ratio rows
// after each player count's steps.
func writeResults(w io.Writer, results []stepResult, extra bool) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	head := "players\tserver\tproto\tok/fail/drop\tMbps got\texpected\tmin%\tCPU%\tµs/pl·s\tRSS base\tRSS/pl\tTTFF p50\tp95\tmax\tkey p50\tp95\ttool%\tother%\t"
	if extra {
		head += "CPU/pl\tpeer%\tlag p50\tp99\tmax\t"
	}
	fmt.Fprintln(tw, head)
	for i, res := range results {
		row := resultRow(res)
		if extra {
			row += extraCols(res)
		}
		fmt.Fprintln(tw, row)
		if i+1 == len(results) || results[i+1].Players != res.Players {
			for _, row := range ratioRows(results, res.Players, extra) {
				fmt.Fprintln(tw, row)
			}
		}
	}
	return tw.Flush()
}

// roundResults splits the results by round, in round order; results of
// reports without rounds are one round.
func (r *report) roundResults() [][]stepResult {
	var out [][]stepResult
	for _, res := range r.Results {
		i := max(res.Round, 1) - 1
		for len(out) <= i {
			out = append(out, nil)
		}
		out[i] = append(out[i], res)
	}
	return slices.DeleteFunc(out, func(rs []stepResult) bool { return len(rs) == 0 })
}

// allowedCPUs lists the distinct Cpus_allowed_list values of the servers
// measured, by server.
func (r *report) allowedCPUs() string {
	var seen []string
	for _, res := range r.Results {
		if res.ServerCPUs == "" {
			continue
		}
		s := res.Server + " " + res.ServerCPUs
		if res.PeerCPUs != "" {
			s += " (peer " + res.PeerCPUs + ")"
		}
		if !slices.Contains(seen, s) {
			seen = append(seen, s)
		}
	}
	return strings.Join(seen, ", ")
}

// hasAA says whether the report holds -server aa steps.
func (r *report) hasAA() bool {
	for _, res := range r.Results {
		if res.Server == kindRtmphubA || res.Server == kindRtmphubB {
			return true
		}
	}
	return false
}

// hasExtra says whether the table has the columns of latency probes and
// cluster steps.
func (r *report) hasExtra() bool {
	for _, res := range r.Results {
		if res.Lag != nil || isClusterKind(res.Server) {
			return true
		}
	}
	return false
}

// extraCols are a result's cells in the columns hasExtra adds.
func extraCols(r stepResult) string {
	if r.WindowSec == 0 {
		return "\t\t\t\t\t"
	}
	cpuPl := "-"
	if r.OK > 0 && r.RSSEndKiB > 0 {
		cpuPl = fmt.Sprintf("%.3f", r.ServerCPUPct/float64(r.OK))
	}
	peer := "-"
	if isClusterKind(r.Server) {
		peer = fmt.Sprintf("%.1f", r.PeerCPUPct)
	}
	lag := []string{"-", "-", "-"}
	if r.Lag != nil && r.Lag.N > 0 {
		lag = []string{formatMs(r.Lag.P50), formatMs(r.Lag.P99), formatMs(r.Lag.Max)}
	}
	return strings.Join(append([]string{cpuPl, peer}, lag...), "\t") + "\t"
}

// cpuPerPlayer is CPU% per streaming player, 0 when unknown.
func (r *stepResult) cpuPerPlayer() float64 {
	if r.OK == 0 {
		return 0
	}
	return r.ServerCPUPct / float64(r.OK)
}

// lagDiff prints a − b in ms, signed.
func lagDiff(a, b *lagStats, f func(*lagStats) float64) string {
	if a == nil || b == nil || a.N == 0 || b.N == 0 {
		return "-"
	}
	return fmt.Sprintf("%+.1f", f(a)-f(b))
}

func resultRow(r stepResult) string {
	if r.Error != "" && r.WindowSec == 0 {
		return fmt.Sprintf("%d\t%s\t%s\t%s\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t", r.Players, r.Server, r.protocol(), "error")
	}
	dash := func(ok bool, s string) string {
		if !ok {
			return "-"
		}
		return s
	}
	hasProc := r.RSSEndKiB > 0
	star := ""
	if len(r.Warnings) > 0 {
		star = "*"
	}
	return strings.Join([]string{
		fmt.Sprint(r.Players),
		r.Server + star,
		r.protocol(),
		fmt.Sprintf("%d/%d/%d", r.OK, r.Failed, r.Dropped),
		fmt.Sprintf("%.2f", r.DeliveredMbps),
		fmt.Sprintf("%.2f", r.ExpectedMbps),
		fmt.Sprintf("%.1f", r.MinPlayerPct),
		dash(hasProc, fmt.Sprintf("%.1f", r.ServerCPUPct)),
		dash(hasProc && r.CPUUsPerPlayerSec > 0, formatUs(r.CPUUsPerPlayerSec)),
		dash(hasProc, formatKiB(float64(r.RSSBaseKiB))),
		dash(hasProc && r.OK > 0, formatKiB(r.RSSPerPlayerKiB)),
		dash(r.TTFF.N > 0, formatMs(r.TTFF.P50)),
		dash(r.TTFF.N > 0, formatMs(r.TTFF.P95)),
		dash(r.TTFF.N > 0, formatMs(r.TTFF.Max)),
		dash(r.TTFK.N > 0, formatMs(r.TTFK.P50)),
		dash(r.TTFK.N > 0, formatMs(r.TTFK.P95)),
		fmt.Sprintf("%.1f", r.ToolCPUPct),
		dash(r.HostCPUs > 0 && hasProc, fmt.Sprintf("%.0f", r.OtherCPUPct)),
	}, "\t") + "\t"
}

// protocol is the players' protocol; rtmp in reports written before there
// was a choice.
func (r *stepResult) protocol() string {
	if r.Protocol == "" {
		return protoRTMP
	}
	return r.Protocol
}

// compared says whether a ratio row divides a's numbers by b's, and labels
// it in the server and protocol columns: results of the same player count
// that differ in one thing, rtmphub over nginx with the same protocol, or
// another protocol over RTMP on the same server.
func compared(a, b *stepResult) (server, proto string, ok bool) {
	switch {
	case a.Players != b.Players || a.Error != "" || b.Error != "":
	case a.Server == kindRtmphub && b.Server == kindNginx && a.protocol() == b.protocol():
		return "rtmphub/nginx", a.protocol(), true
	case a.Server == b.Server && a.protocol() != protoRTMP && b.protocol() == protoRTMP:
		return a.Server, a.protocol() + "/rtmp", true
	case a.Server == kindClusterEdge && b.Server == kindClusterOrigin && a.protocol() == b.protocol():
		return "edge/origin", a.protocol(), true
	case a.Server == kindRtmphubB && b.Server == kindRtmphubA && a.protocol() == b.protocol():
		return "B/A", a.protocol(), true
	}
	return "", "", false
}

// ratioRows are the ratio rows of a player count: one for each pair of
// results compared() pairs, a's value divided by b's; with extra, also
// the cells of hasExtra's columns (latencies as differences).
func ratioRows(results []stepResult, players int, extra bool) []string {
	var rows []string
	for i := range results {
		a := &results[i]
		if a.Players != players {
			continue
		}
		for j := range results {
			b := &results[j]
			server, proto, ok := compared(a, b)
			if !ok {
				continue
			}
			rows = append(rows, strings.Join([]string{
				fmt.Sprint(a.Players),
				server,
				proto,
				"",
				ratio(a.DeliveredMbps, b.DeliveredMbps),
				"",
				"",
				ratio(a.ServerCPUPct, b.ServerCPUPct),
				ratio(a.CPUUsPerPlayerSec, b.CPUUsPerPlayerSec),
				ratio(float64(a.RSSBaseKiB), float64(b.RSSBaseKiB)),
				ratio(a.RSSPerPlayerKiB, b.RSSPerPlayerKiB),
				ratio(a.TTFF.P50, b.TTFF.P50),
				ratio(a.TTFF.P95, b.TTFF.P95),
				ratio(a.TTFF.Max, b.TTFF.Max),
				ratio(a.TTFK.P50, b.TTFK.P50),
				ratio(a.TTFK.P95, b.TTFK.P95),
				"",
				"",
			}, "\t")+"\t"+ratioExtra(a, b, extra))
		}
	}
	return rows
}

// ratioExtra are a ratio row's cells in hasExtra's columns.
func ratioExtra(a, b *stepResult, extra bool) string {
	if !extra {
		return ""
	}
	peer := ""
	if isClusterKind(a.Server) && isClusterKind(b.Server) {
		peer = ratio(a.ServerCPUPct+a.PeerCPUPct, b.ServerCPUPct+b.PeerCPUPct)
	}
	return strings.Join([]string{
		ratio(a.cpuPerPlayer(), b.cpuPerPlayer()),
		peer,
		lagDiff(a.Lag, b.Lag, func(l *lagStats) float64 { return l.P50 }),
		lagDiff(a.Lag, b.Lag, func(l *lagStats) float64 { return l.P99 }),
		lagDiff(a.Lag, b.Lag, func(l *lagStats) float64 { return l.Max }),
	}, "\t") + "\t"
}

func ratio(a, b float64) string {
	if b <= 0 || a < 0 {
		return "-"
	}
	if r := a / b; r < 0.01 {
		return "<0.01×"
	}
	return fmt.Sprintf("%.2f×", a/b)
}

// formatKiB prints a size given in KiB with a unit that keeps it short.
func formatKiB(kib float64) string {
	switch {
	case kib >= 1024 || kib <= -1024:
		return fmt.Sprintf("%.1fM", kib/1024)
	case kib >= 100 || kib <= -100:
		return fmt.Sprintf("%.0fK", kib)
	}
	return fmt.Sprintf("%.1fK", kib)
}

// formatUs prints microseconds: two decimals below 10, one below 100.
func formatUs(us float64) string {
	switch {
	case us < 10:
		return fmt.Sprintf("%.2f", us)
	case us < 100:
		return fmt.Sprintf("%.1f", us)
	}
	return fmt.Sprintf("%.0f", us)
}

// formatMs prints milliseconds: one decimal below 10 ms, none above.
func formatMs(ms float64) string {
	if ms < 10 {
		return fmt.Sprintf("%.1f", ms)
	}
	return fmt.Sprintf("%.0f", ms)
}
