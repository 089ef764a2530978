package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestSpreadOf(t *testing.T) {
	for _, tc := range []struct {
		in   []float64
		want spread
	}{
		{nil, spread{}},
		{[]float64{7}, spread{N: 1, Median: 7, Min: 7, Max: 7}},
		{[]float64{3, 1, 2}, spread{N: 3, Median: 2, Min: 1, Max: 3}},
		{[]float64{4, 1, 3, 2}, spread{N: 4, Median: 2.5, Min: 1, Max: 4}}, // even: mean of the middle two
		{[]float64{5, 5, 1, 9, 5}, spread{N: 5, Median: 5, Min: 1, Max: 9}},
	} {
		in := append([]float64(nil), tc.in...)
		if got := spreadOf(tc.in); got != tc.want {
			t.Errorf("spreadOf(%v) = %+v, want %+v", tc.in, got, tc.want)
		}
		for i := range in {
			if in[i] != tc.in[i] {
				t.Errorf("spreadOf sorted its input: %v", tc.in)
			}
		}
	}
}

// roundsReport is three rounds of rtmphub against nginx at 100 players,
// rtmphub's CPU 15, 30, 12 % against nginx's 10, 20, 12 % (ratios 1.5,
// 1.5, 1.0), and an error in round 3 of a second count.
func roundsReport() *report {
	rep := sampleReport()
	a, b := rep.Results[0], rep.Results[1]
	var results []stepResult
	for i, cpu := range [][2]float64{{15, 10}, {30, 20}, {12, 12}} {
		ra, rb := a, b
		ra.Round, rb.Round = i+1, i+1
		ra.ServerCPUPct, rb.ServerCPUPct = cpu[0], cpu[1]
		// 100 players: CPU% × 1e4 / 100 µs per player-second.
		ra.CPUUsPerPlayerSec, rb.CPUUsPerPlayerSec = cpu[0]*100, cpu[1]*100
		ra.RSSPerPlayerKiB = 30 + float64(i)
		ra.Lag = &lagStats{N: 100, P50: 10 + float64(i), P99: 50}
		rb.Lag = &lagStats{N: 100, P50: 8, P99: 40 + float64(i)}
		results = append(results, ra, rb)
	}
	bad := stepResult{Server: kindNginx, Players: 500, Round: 3, Error: "start: boom"}
	results = append(results, bad)
	rep.Results, rep.Rounds, rep.Probes = results, 3, 5
	rep.Pinning = pinning{Server: []int{0}, Tool: []int{1}}
	rep.Summary = summarizeRounds(rep.Results)
	return rep
}

func TestSummarizeRounds(t *testing.T) {
	rows := roundsReport().Summary
	if len(rows) != 4 {
		t.Fatalf("want rtmphub, nginx, rtmphub/nginx (100) and nginx (500), got %+v", rows)
	}
	hub, ngx, rat, bad := rows[0], rows[1], rows[2], rows[3]
	if hub.Server != kindRtmphub || hub.Rounds != 3 || hub.CPUPct != (spread{N: 3, Median: 15, Min: 12, Max: 30}) {
		t.Errorf("rtmphub row %+v", hub)
	}
	if hub.CPUUs != (spread{N: 3, Median: 1500, Min: 1200, Max: 3000}) {
		t.Errorf("rtmphub µs/pl·s %+v", hub.CPUUs)
	}
	if hub.RSSPerPlayer != (spread{N: 3, Median: 31, Min: 30, Max: 32}) || hub.ExpectedMbps != 23.2 {
		t.Errorf("rtmphub RSS/expected %+v", hub)
	}
	if hub.LagP50 == nil || *hub.LagP50 != (spread{N: 3, Median: 11, Min: 10, Max: 12}) {
		t.Errorf("rtmphub lag p50 %+v", hub.LagP50)
	}
	if ngx.Server != kindNginx || ngx.CPUPct.Median != 12 {
		t.Errorf("nginx row %+v", ngx)
	}
	if !rat.Ratio || rat.Server != "rtmphub/nginx" || rat.Rounds != 3 {
		t.Fatalf("ratio row %+v", rat)
	}
	// Ratios of each round (1.5, 1.5, 1.0), then their median: not the
	// ratio of the medians (15/12 = 1.25).
	if rat.CPUPct != (spread{N: 3, Median: 1.5, Min: 1, Max: 1.5}) || rat.CPUUs.Median != 1.5 {
		t.Errorf("ratio CPU %+v, µs %+v", rat.CPUPct, rat.CPUUs)
	}
	// Lag as differences: p50 (10, 11, 12) − 8, p99 50 − (40, 41, 42).
	if rat.LagP50 == nil || *rat.LagP50 != (spread{N: 3, Median: 3, Min: 2, Max: 4}) ||
		rat.LagP99 == nil || *rat.LagP99 != (spread{N: 3, Median: 9, Min: 8, Max: 10}) {
		t.Errorf("ratio lag %+v %+v", rat.LagP50, rat.LagP99)
	}
	if bad.Players != 500 || bad.Rounds != 0 || bad.CPUPct.N != 0 {
		t.Errorf("a step with only errors: %+v", bad)
	}
}

func TestSummarizeAA(t *testing.T) {
	rep := roundsReport()
	for i := range rep.Results {
		switch rep.Results[i].Server {
		case kindRtmphub:
			rep.Results[i].Server = kindRtmphubB
		case kindNginx:
			rep.Results[i].Server = kindRtmphubA
		}
	}
	rows := summarizeRounds(rep.Results)
	if len(rows) < 3 || rows[2].Server != "B/A" || rows[2].CPUPct.Median != 1.5 {
		t.Errorf("A/A ratio row: %+v", rows)
	}
}

func TestWriteTableRounds(t *testing.T) {
	rep := roundsReport()
	var buf bytes.Buffer
	if err := rep.writeTable(&buf); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{
		"servers pinned to CPU 0, the tool to CPU 1",
		"round 1 of 3", "round 3 of 3",
		"summary over 3 rounds: median [min–max]",
		"15.0 [12.0–30.0]",    // rtmphub CPU%
		"1500 [1200–3000]",    // rtmphub µs/pl·s
		"1.50× [1.00×–1.50×]", // ratio CPU
		"+3.0 [+2.0–+4.0]",    // lag p50 difference
		"µs/pl·s",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	// The summary's rows are of one width.
	_, sum, _ := strings.Cut(out, "summary over")
	var widths []int
	for _, l := range strings.Split(sum, "\n")[1:] {
		if strings.TrimSpace(l) == "" {
			break
		}
		widths = append(widths, utf8.RuneCountInString(l))
	}
	for _, w := range widths {
		if w != widths[0] {
			t.Errorf("ragged summary %v:\n%s", widths, sum)
			break
		}
	}

	buf.Reset()
	if err := rep.writeJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var back report
	if err := json.Unmarshal(buf.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if len(back.Summary) != 4 || back.Summary[2].CPUPct.Median != 1.5 || back.Rounds != 3 || back.Results[4].Round != 3 ||
		len(back.Pinning.Server) != 1 || back.Pinning.Tool[0] != 1 {
		t.Errorf("round trip lost data: %+v", back)
	}
}

func TestParseCPUs(t *testing.T) {
	for in, want := range map[string]string{"1": "1", "0,2": "0,2", "0-3": "0,1,2,3", "3,1-2,1": "1,2,3"} {
		got, err := parseCPUs(in)
		if err != nil || formatCPUs(got) != want {
			t.Errorf("parseCPUs(%q) = %v, %v; want %s", in, got, err, want)
		}
	}
	for _, in := range []string{"", "x", "2-1", "-1", "5000"} {
		if _, err := parseCPUs(in); err == nil {
			t.Errorf("parseCPUs(%q): no error", in)
		}
	}
}

func TestFormatUs(t *testing.T) {
	for us, want := range map[float64]string{2.345: "2.35", 12.34: "12.3", 250.4: "250"} {
		if got := formatUs(us); got != want {
			t.Errorf("formatUs(%v) = %q, want %q", us, got, want)
		}
	}
}

func TestToolWarning(t *testing.T) {
	r := stepResult{OK: 10, MinPlayerPct: 100, ToolCPUPct: 65, ToolCores: 1}
	if w := stepWarnings(&r); len(w) != 0 {
		t.Errorf("tool at 65%% of its core warned: %q", w)
	}
	r.ToolCPUPct = 80
	if w := stepWarnings(&r); len(w) != 1 || !strings.Contains(w[0], "80% of its 1 pinned core") {
		t.Errorf("tool at 80%% of its core: %q", w)
	}
	r.ToolCores = 0 // not pinned: the tool may use more than a core
	if w := stepWarnings(&r); len(w) != 0 {
		t.Errorf("unpinned tool warned: %q", w)
	}
}
