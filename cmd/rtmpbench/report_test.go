package main

import (
	"bytes"
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestSummarize(t *testing.T) {
	var ds []time.Duration
	for i := 100; i >= 1; i-- { // unsorted on purpose
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	got := summarize(ds)
	want := latencyStats{N: 100, P50: 50, P95: 95, Max: 100}
	if got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
	if ds[0] != 100*time.Millisecond {
		t.Error("summarize sorted its input")
	}
	if got := summarize(nil); got != (latencyStats{}) {
		t.Errorf("empty: %+v", got)
	}
	if got := summarize([]time.Duration{3 * time.Millisecond}); got.P50 != 3 || got.P95 != 3 || got.Max != 3 {
		t.Errorf("one value: %+v", got)
	}
}

func TestRank(t *testing.T) {
	for _, tc := range []struct {
		n    int
		p    float64
		want int
	}{{1, 50, 0}, {2, 50, 0}, {3, 50, 1}, {10, 95, 9}, {20, 95, 18}, {2000, 95, 1899}, {100, 100, 99}, {5, 0, 0}} {
		if got := rank(tc.n, tc.p); got != tc.want {
			t.Errorf("rank(%d, %v) = %d, want %d", tc.n, tc.p, got, tc.want)
		}
	}
}

func TestCountErrors(t *testing.T) {
	got := countErrors([]string{"b", "a", "b", "c", "b", "a"})
	want := []string{"3× b", "2× a", "1× c"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("got %q, want %q", got, want)
	}
	got = countErrors([]string{
		"connect: read tcp 127.0.0.1:39244->127.0.0.1:46459: i/o timeout",
		"connect: read tcp 127.0.0.1:39260->127.0.0.1:46459: i/o timeout",
	})
	if len(got) != 1 || got[0] != "2× connect: read tcp <addr>-><addr>: i/o timeout" {
		t.Errorf("addresses not merged: %q", got)
	}
}

func sampleReport() *report {
	p, _ := planStream(232000, 64000, 25, time.Second, 5)
	base := stepResult{
		Players: 100, OK: 100, WindowSec: 20, ExpectedMbps: 23.2, DeliveredMbps: 23.7, MinPlayerPct: 101.5,
		ServerCPUPct: 10, RSSIdleKiB: 8000, RSSBaseKiB: 9000, RSSEndKiB: 11000, RSSPerPlayerKiB: 20,
		TTFF: latencyStats{N: 100, P50: 20, P95: 40, Max: 60}, TTFK: latencyStats{N: 100, P50: 500, P95: 950, Max: 990},
		ToolCPUPct: 5, HostBusyPct: 12, HostCPUs: 2,
	}
	a, b := base, base
	a.Server, b.Server = kindRtmphub, kindNginx
	a.ServerCPUPct, a.RSSPerPlayerKiB, a.TTFF.P50 = 15, 30, 10
	c := stepResult{Server: kindNginx, Players: 500, Error: "start: boom"}
	return &report{
		Started: time.Unix(0, 0), Stream: "232k", Plan: p, Warmup: "5s", Duration: "20s", Ramp: 500, HostCPUs: 2,
		Results: []stepResult{a, b, c},
	}
}

func TestWriteTable(t *testing.T) {
	var buf bytes.Buffer
	if err := sampleReport().writeTable(&buf); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{
		"232k stream: video 168k 25 fps",
		"rtmphub/nginx",
		"1.50×", // CPU 15 vs 10
		"0.50×", // TTFF p50 10 vs 20
		"100/0/0",
		"23.70",
		"8.8M", // RSS base 9000 KiB
		"nginx rtmp, 500 players: ERROR start: boom",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	// The ratio row follows the pair it compares, before the next count.
	if i, j := strings.Index(out, "rtmphub/nginx"), regexp.MustCompile(`\n +500 +nginx`).FindStringIndex(out)[0]; i < 0 || j < 0 || i > j {
		t.Errorf("ratio row misplaced:\n%s", out)
	}
	// Every table row has the same number of columns.
	var widths []int
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "100") || strings.HasPrefix(strings.TrimSpace(l), "players") {
			widths = append(widths, utf8.RuneCountInString(l))
		}
	}
	for _, w := range widths[1:] {
		if w != widths[0] {
			t.Errorf("ragged table %v:\n%s", widths, out)
			break
		}
	}
}

func TestWriteJSON(t *testing.T) {
	var buf bytes.Buffer
	if err := sampleReport().writeJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var back report
	if err := json.Unmarshal(buf.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if len(back.Results) != 3 || back.Results[0].TTFF.P50 != 10 || back.Results[2].Error != "start: boom" || back.Plan.KeySize == 0 {
		t.Errorf("round trip lost data: %+v", back)
	}
}

func TestFormatKiB(t *testing.T) {
	for kib, want := range map[float64]string{12.34: "12.3K", 512: "512K", 9000: "8.8M", 20480: "20.0M", -300: "-300K", 0: "0.0K"} {
		if got := formatKiB(kib); got != want {
			t.Errorf("formatKiB(%v) = %q, want %q", kib, got, want)
		}
	}
}

func TestNginxConf(t *testing.T) {
	dir := t.TempDir()
	path := dir + "/nginx.conf"
	if err := writeNginxConf(path, "/m.so", dir, "127.0.0.1:5555", "live"); err != nil {
		t.Fatal(err)
	}
	b, err := readFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"load_module /m.so;", "master_process off;", "listen 127.0.0.1:5555;", "application live {", "worker_connections 10000;", "error_log " + dir + "/error.log", "application vod {", "play " + dir + "/vod;"} {
		if !strings.Contains(b, want) {
			t.Errorf("conf lacks %q:\n%s", want, b)
		}
	}
}

func readFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	return string(b), err
}

func TestRcvLowat(t *testing.T) {
	for _, tc := range []struct {
		bitrate int
		batch   time.Duration
		readBuf int
		want    int
	}{
		{232000, 100 * time.Millisecond, 16384, 2900},
		{232000, 0, 16384, 0},
		{6000000, 100 * time.Millisecond, 16384, 8192}, // capped at half the buffer
		{8, time.Millisecond, 16384, 1},
	} {
		if got := rcvLowat(tc.bitrate, tc.batch, tc.readBuf); got != tc.want {
			t.Errorf("rcvLowat(%d, %v, %d) = %d, want %d", tc.bitrate, tc.batch, tc.readBuf, got, tc.want)
		}
	}
}

func TestStepWarnings(t *testing.T) {
	r := stepResult{OK: 10, MinPlayerPct: 99, OtherCPUPct: 5, PublisherLateMs: 20}
	if w := stepWarnings(&r); len(w) != 0 {
		t.Errorf("clean step warned: %q", w)
	}
	r = stepResult{OK: 10, MinPlayerPct: 137, OtherCPUPct: 150, PublisherLateMs: 900, Failed: 3}
	if w := stepWarnings(&r); len(w) != 4 {
		t.Errorf("want 4 warnings, got %q", w)
	}
	rep := sampleReport()
	rep.Results[1].Warnings = stepWarnings(&r)
	var buf bytes.Buffer
	if err := rep.writeTable(&buf); err != nil {
		t.Fatal(err)
	}
	if out := buf.String(); !strings.Contains(out, "nginx*") || !strings.Contains(out, "nginx rtmp, 100 players (*), doubtful:") {
		t.Errorf("warnings not shown:\n%s", out)
	}
}

// A run of -server rtmphub -protocol rtmp,http-flv gets an http-flv/rtmp
// row per player count, and no rtmphub/nginx row.
func TestProtocolRatioRow(t *testing.T) {
	rep := sampleReport()
	a, b := rep.Results[0], rep.Results[0]
	a.Protocol, b.Protocol = protoRTMP, protoHTTPFLV
	b.ServerCPUPct, b.RSSPerPlayerKiB = 18, 33 // vs 15 and 30
	c, d := a, b
	c.Players, d.Players = 500, 500
	d.Error = "start: boom"
	rep.Results = []stepResult{a, b, c, d}
	var buf bytes.Buffer
	if err := rep.writeTable(&buf); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	rows := regexp.MustCompile(`(?m)^ +(\d+) +rtmphub +http-flv/rtmp .*$`).FindAllStringSubmatch(out, -1)
	if len(rows) != 1 || rows[0][1] != "100" {
		t.Fatalf("want one ratio row, for 100 players:\n%s", out)
	}
	for _, want := range []string{"1.20×", "1.10×"} { // CPU, RSS/pl
		if !strings.Contains(rows[0][0], want) {
			t.Errorf("ratio row lacks %q: %s", want, rows[0][0])
		}
	}
	if strings.Contains(out, "rtmphub/nginx") {
		t.Errorf("server ratio without nginx:\n%s", out)
	}
	if !strings.Contains(out, "rtmphub http-flv, 500 players: ERROR start: boom") {
		t.Errorf("error of the http-flv step not named by its protocol:\n%s", out)
	}
	// The ratio row comes before the next count's rows.
	if i, j := strings.Index(out, "http-flv/rtmp"), regexp.MustCompile(`\n +500 +rtmphub`).FindStringIndex(out)[0]; i > j {
		t.Errorf("ratio row misplaced:\n%s", out)
	}
}

func TestCompared(t *testing.T) {
	r := func(server, proto string) *stepResult {
		return &stepResult{Server: server, Protocol: proto, Players: 10}
	}
	for _, tc := range []struct {
		a, b          *stepResult
		server, proto string
	}{
		{r(kindRtmphub, protoRTMP), r(kindNginx, protoRTMP), "rtmphub/nginx", "rtmp"},
		{r(kindRtmphub, ""), r(kindNginx, ""), "rtmphub/nginx", "rtmp"}, // reports from before -protocol
		{r(kindRtmphub, protoHTTPFLV), r(kindRtmphub, protoRTMP), "rtmphub", "http-flv/rtmp"},
		{r(kindExternal, protoHTTPFLV), r(kindExternal, protoRTMP), "external", "http-flv/rtmp"},
		{r(kindRtmphub, protoRTMP), r(kindRtmphub, protoHTTPFLV), "", ""},
		{r(kindRtmphub, protoHTTPFLV), r(kindNginx, protoRTMP), "", ""},
		{r(kindNginx, protoRTMP), r(kindRtmphub, protoRTMP), "", ""},
		{r(kindRtmphub, protoRTMP), r(kindRtmphub, protoRTMP), "", ""},
		{r(kindClusterEdge, protoRTMP), r(kindClusterOrigin, protoRTMP), "edge/origin", "rtmp"},
		{r(kindClusterOrigin, protoRTMP), r(kindClusterEdge, protoRTMP), "", ""},
		{r(kindClusterEdge, protoHTTPFLV), r(kindClusterOrigin, protoRTMP), "", ""},
	} {
		server, proto, ok := compared(tc.a, tc.b)
		if ok != (tc.server != "") || server != tc.server || proto != tc.proto {
			t.Errorf("compared(%s %s, %s %s) = %q %q %v", tc.a.Server, tc.a.Protocol, tc.b.Server, tc.b.Protocol, server, proto, ok)
		}
	}
	other := r(kindNginx, protoRTMP)
	other.Players = 20
	if _, _, ok := compared(r(kindRtmphub, protoRTMP), other); ok {
		t.Error("compared different player counts")
	}
}

func TestWriteTableCluster(t *testing.T) {
	rep := sampleReport()
	var buf bytes.Buffer
	if err := rep.writeTable(&buf); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(buf.String(), "lag p50") || strings.Contains(buf.String(), "peer%") {
		t.Errorf("a run without probes or a cluster has the extra columns:\n%s", buf.String())
	}

	o, e := rep.Results[0], rep.Results[0]
	o.Server, e.Server = kindClusterOrigin, kindClusterEdge
	o.ServerCPUPct, o.PeerCPUPct, o.Probes = 10, 1, 10
	e.ServerCPUPct, e.PeerCPUPct, e.Probes = 12, 2, 10
	o.Lag = &lagStats{N: 5000, P50: 1.0, P95: 3, P99: 5.0, Max: 9}
	e.Lag = &lagStats{N: 5000, P50: 2.5, P95: 4, P99: 8.0, Max: 20}
	rep.Results, rep.Probes = []stepResult{o, e}, 10
	buf.Reset()
	if err := rep.writeTable(&buf); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{
		"lag p50", "peer%", "CPU/pl",
		"edge/origin",
		"0.100", // origin CPU/pl: 10% / 100 players
		"0.120",
		"1.20×", // CPU and CPU/pl 12 vs 10
		"1.27×", // both hubs: (12+2)/(10+1)
		"+1.5",  // lag p50 2.5 − 1.0
		"+3.0",  // p99
		"+11.0", // max
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	var widths []int
	for _, l := range strings.Split(out, "\n") {
		if f := strings.TrimSpace(l); strings.HasPrefix(f, "100") || strings.HasPrefix(f, "players") {
			widths = append(widths, utf8.RuneCountInString(l))
		}
	}
	if len(widths) != 4 || slices.Min(widths) != slices.Max(widths) {
		t.Errorf("rows of unequal width %v:\n%s", widths, out)
	}
}
