package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
)

// spread is a value over rounds: median, min and max of the rounds that
// had it.
type spread struct {
	N      int     `json:"n"`
	Median float64 `json:"median"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
}

// spreadOf summarises vs; the median of an even count is the mean of the
// middle two.
func spreadOf(vs []float64) spread {
	if len(vs) == 0 {
		return spread{}
	}
	s := slices.Clone(vs)
	slices.Sort(s)
	n := len(s)
	med := s[n/2]
	if n%2 == 0 {
		med = (s[n/2-1] + s[n/2]) / 2
	}
	return spread{N: n, Median: med, Min: s[0], Max: s[n-1]}
}

// summaryRow is one line of the summary over rounds: a (server, protocol,
// players) of every round, or (Ratio) a ratio row of every round, where
// each value is a's over b's of the same round (lag: a − b, ms).
type summaryRow struct {
	Server   string `json:"server"` // a ratio row: its label, e.g. rtmphub/nginx
	Protocol string `json:"protocol"`
	Players  int    `json:"players"`
	Ratio    bool   `json:"ratio,omitempty"`
	Rounds   int    `json:"rounds"` // rounds without an error that went into the row

	CPUPct        spread  `json:"server_cpu_pct"`
	CPUUs         spread  `json:"cpu_us_per_player_sec"`
	RSSPerPlayer  spread  `json:"rss_per_player_kib"`
	DeliveredMbps spread  `json:"delivered_mbps"`
	ExpectedMbps  float64 `json:"expected_mbps,omitempty"`
	ToolCPUPct    spread  `json:"tool_cpu_pct"`
	OtherCPUPct   spread  `json:"other_cpu_pct"`
	LagP50        *spread `json:"lag_p50_ms,omitempty"`
	LagP99        *spread `json:"lag_p99_ms,omitempty"`
}

// summarizeRounds summarises the results of all rounds: one row per
// (server, protocol, players) in the order first run, each followed by the
// ratio rows of its player count once the last step of that count is
// listed. Steps with an error are left out.
func summarizeRounds(results []stepResult) []summaryRow {
	type key struct {
		server, proto string
		players       int
	}
	var keys []key
	groups := map[key][]*stepResult{}
	for i := range results {
		r := &results[i]
		k := key{r.Server, r.protocol(), r.Players}
		if _, ok := groups[k]; !ok {
			keys = append(keys, k)
			groups[k] = nil
		}
		if r.Error == "" && r.WindowSec > 0 {
			groups[k] = append(groups[k], r)
		}
	}
	var rows []summaryRow
	for ki, k := range keys {
		g := groups[k]
		row := summaryRow{Server: k.server, Protocol: k.proto, Players: k.players, Rounds: len(g)}
		var cpu, us, rss, mbps, tool, other, p50, p99 []float64
		for _, r := range g {
			cpu = append(cpu, r.ServerCPUPct)
			if r.CPUUsPerPlayerSec > 0 {
				us = append(us, r.CPUUsPerPlayerSec)
			}
			if r.RSSPerPlayerKiB != 0 {
				rss = append(rss, r.RSSPerPlayerKiB)
			}
			mbps = append(mbps, r.DeliveredMbps)
			row.ExpectedMbps = r.ExpectedMbps
			tool = append(tool, r.ToolCPUPct)
			other = append(other, r.OtherCPUPct)
			if r.Lag != nil && r.Lag.N > 0 {
				p50 = append(p50, r.Lag.P50)
				p99 = append(p99, r.Lag.P99)
			}
		}
		row.CPUPct, row.CPUUs, row.RSSPerPlayer = spreadOf(cpu), spreadOf(us), spreadOf(rss)
		row.DeliveredMbps, row.ToolCPUPct, row.OtherCPUPct = spreadOf(mbps), spreadOf(tool), spreadOf(other)
		row.LagP50, row.LagP99 = spreadPtr(p50), spreadPtr(p99)
		rows = append(rows, row)
		if ki+1 == len(keys) || keys[ki+1].players != k.players {
			rows = append(rows, summarizeRatios(results, k.players)...)
		}
	}
	return rows
}

func spreadPtr(vs []float64) *spread {
	if len(vs) == 0 {
		return nil
	}
	s := spreadOf(vs)
	return &s
}

// summarizeRatios are the ratio rows of a player count over the rounds:
// for each pair compared() makes within a round, the ratio of that round,
// then median and spread of those ratios.
func summarizeRatios(results []stepResult, players int) []summaryRow {
	type key struct{ label, proto string }
	var keys []key
	type vals struct{ cpu, us, rss, mbps, p50, p99 []float64 }
	groups := map[key]*vals{}
	for i := range results {
		a := &results[i]
		if a.Players != players {
			continue
		}
		for j := range results {
			b := &results[j]
			if a.Round != b.Round {
				continue
			}
			label, proto, ok := compared(a, b)
			if !ok || a.WindowSec == 0 || b.WindowSec == 0 {
				continue
			}
			k := key{label, proto}
			v := groups[k]
			if v == nil {
				v = &vals{}
				groups[k] = v
				keys = append(keys, k)
			}
			add := func(dst *[]float64, x, y float64) {
				if x > 0 && y > 0 {
					*dst = append(*dst, x/y)
				}
			}
			add(&v.cpu, a.ServerCPUPct, b.ServerCPUPct)
			add(&v.us, a.CPUUsPerPlayerSec, b.CPUUsPerPlayerSec)
			add(&v.rss, a.RSSPerPlayerKiB, b.RSSPerPlayerKiB)
			add(&v.mbps, a.DeliveredMbps, b.DeliveredMbps)
			if a.Lag != nil && b.Lag != nil && a.Lag.N > 0 && b.Lag.N > 0 {
				v.p50 = append(v.p50, a.Lag.P50-b.Lag.P50)
				v.p99 = append(v.p99, a.Lag.P99-b.Lag.P99)
			}
		}
	}
	var rows []summaryRow
	for _, k := range keys {
		v := groups[k]
		rows = append(rows, summaryRow{
			Server: k.label, Protocol: k.proto, Players: players, Ratio: true, Rounds: len(v.mbps),
			CPUPct: spreadOf(v.cpu), CPUUs: spreadOf(v.us), RSSPerPlayer: spreadOf(v.rss), DeliveredMbps: spreadOf(v.mbps),
			LagP50: spreadPtr(v.p50), LagP99: spreadPtr(v.p99),
		})
	}
	return rows
}

// writeSummary prints the summary rows as a table: each cell is the median
// and, in brackets, min–max over the rounds.
func writeSummary(w io.Writer, rows []summaryRow) error {
	lag := slices.ContainsFunc(rows, func(r summaryRow) bool { return r.LagP50 != nil })
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	head := "players\tserver\tproto\trounds\tCPU%\tµs/pl·s\tRSS/pl\tMbps got\texpected\ttool%\tother%\t"
	if lag {
		head += "lag p50\tp99\t"
	}
	fmt.Fprintln(tw, head)
	for _, r := range rows {
		cells := []string{fmt.Sprint(r.Players), r.Server, r.Protocol, fmt.Sprint(r.Rounds)}
		if r.Ratio {
			x := func(v float64) string { return fmt.Sprintf("%.2f×", v) }
			cells = append(cells, formatSpread(r.CPUPct, x), formatSpread(r.CPUUs, x), formatSpread(r.RSSPerPlayer, x),
				formatSpread(r.DeliveredMbps, x), "", "", "")
			if lag {
				d := func(v float64) string { return fmt.Sprintf("%+.1f", v) }
				cells = append(cells, formatSpreadPtr(r.LagP50, d), formatSpreadPtr(r.LagP99, d))
			}
		} else {
			f1 := func(v float64) string { return fmt.Sprintf("%.1f", v) }
			expected := "-"
			if r.ExpectedMbps > 0 {
				expected = fmt.Sprintf("%.2f", r.ExpectedMbps)
			}
			cells = append(cells, formatSpread(r.CPUPct, f1), formatSpread(r.CPUUs, formatUs), formatSpread(r.RSSPerPlayer, formatKiB),
				formatSpread(r.DeliveredMbps, func(v float64) string { return fmt.Sprintf("%.2f", v) }), expected,
				formatSpread(r.ToolCPUPct, f1), formatSpread(r.OtherCPUPct, func(v float64) string { return fmt.Sprintf("%.0f", v) }))
			if lag {
				cells = append(cells, formatSpreadPtr(r.LagP50, formatMs), formatSpreadPtr(r.LagP99, formatMs))
			}
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t")+"\t")
	}
	return tw.Flush()
}

// formatSpread prints "median [min–max]", or just the value of one round.
func formatSpread(s spread, f func(float64) string) string {
	switch s.N {
	case 0:
		return "-"
	case 1:
		return f(s.Median)
	}
	return fmt.Sprintf("%s [%s–%s]", f(s.Median), f(s.Min), f(s.Max))
}

func formatSpreadPtr(s *spread, f func(float64) string) string {
	if s == nil {
		return "-"
	}
	return formatSpread(*s, f)
}
