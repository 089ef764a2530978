package main

import (
	"bytes"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rtmphub/rtmphub/bridge"
	"github.com/rtmphub/rtmphub/session"
	"github.com/rtmphub/rtmphub/session/script"
	"github.com/rtmphub/rtmphub/tunnel"
	"github.com/rtmphub/rtmphub/tunnel/rtmpquic"
)

// helpDefaults is the default column of rtmphub help, by flag.
func helpDefaults(t *testing.T) map[string]string {
	t.Helper()
	var out bytes.Buffer
	if code := run([]string{"help"}, nil, &out, &out); code != 0 {
		t.Fatalf("help: exit %d", code)
	}
	row := regexp.MustCompile(`^  --(\S+)\s+RTMPHUB_\S+\s+default ("(?:[^"\\]|\\.)*")`)
	defs := make(map[string]string)
	for _, line := range strings.Split(out.String(), "\n") {
		if m := row.FindStringSubmatch(line); m != nil {
			v, err := strconv.Unquote(m[2])
			if err != nil {
				t.Fatalf("help line %q: %v", line, err)
			}
			defs[m[1]] = v
		}
	}
	if n := len(settings(&config{})); len(defs) != n {
		t.Fatalf("help shows %d settings, the table has %d", len(defs), n)
	}
	return defs
}

// dataFields is v's fields that hold settings, without the wiring
// (callbacks, loggers, TLS), which serve sets.
func dataFields(v any) map[string]any {
	rv := reflect.ValueOf(v)
	m := make(map[string]any)
	for i := range rv.NumField() {
		switch rv.Field(i).Kind() {
		case reflect.Func, reflect.Pointer, reflect.Interface:
			continue
		}
		m[rv.Type().Field(i).Name] = rv.Field(i).Interface()
	}
	return m
}

func diffFields(t *testing.T, what string, got, want any, skip ...string) {
	t.Helper()
	g, w := dataFields(got), dataFields(want)
	for name, wv := range w {
		if !reflect.DeepEqual(g[name], wv) && !slices.Contains(skip, name) {
			t.Errorf("%s.%s: the defaults rtmphub help shows give %v, the library's default is %v", what, name, g[name], wv)
		}
	}
}

// The defaults rtmphub help shows are the ones the server runs with:
// every default, given back as a flag, makes the libraries' configuration
// equal to the one they fill in for a zero Config. A default written in
// the command that drifted from its library's (MaxMessageSize was 8 MiB
// here and 16 MiB in session), a flag that maps to its field in the
// wrong sense, or a help line that does not parse back would fail here.
func TestHelpDefaultsAreTheServers(t *testing.T) {
	defs := helpDefaults(t)
	var args []string
	for flag, v := range defs {
		args = append(args, "--"+flag+"="+v)
	}
	c, err := loadConfig(args, nil, &bytes.Buffer{})
	if err != nil {
		t.Fatalf("the defaults help shows, given as flags: %v", err)
	}
	checkLibraryDefaults(t, c.libraryConfigs())

	// Left unset, the same.
	c, err = loadConfig(nil, nil, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	libs := c.libraryConfigs()
	checkLibraryDefaults(t, libs)
	if got := libs.session.MaxMessageSize; got != 8<<20 {
		t.Errorf("MaxMessageSize %d: the binary has always served with 8 MiB", got)
	}
}

// checkLibraryDefaults compares what the default settings give each
// library with its own defaults. A field a row feeds without taking its
// default from it (links' feeds) is the command's choice, and skipped.
func checkLibraryDefaults(t *testing.T, libs *libraries) {
	t.Helper()
	diffFields(t, "session.Config", libs.session.WithDefaults(), session.DefaultConfig())
	diffFields(t, "tunnel.Config", libs.tunnel.WithDefaults(), tunnel.DefaultConfig())
	diffFields(t, "rtmpquic.Config", libs.quic.WithDefaults(), rtmpquic.DefaultConfig(), "MaxMessageSize", "RoQRDatagrams")
	diffFields(t, "script.Config", libs.script.WithDefaults(), script.DefaultConfig())
	diffFields(t, "bridge.GatewayConfig", libs.gateway.WithDefaults(), bridge.DefaultGatewayConfig(), "StallTimeout")
}

// Off crosses to the libraries in their spelling (negative), and a
// setting that is on crosses as their Disable or No field.
func TestSettingsReachTheLibraries(t *testing.T) {
	c, err := loadConfig([]string{"--write-merge=0", "--publisher-grace=", "--rtmpt-hold=0", "--gop-cache=false", "--bw-check=false",
		"--rtmpt-direct=false", "--trusted-proxies=10.0.0.0/8", "--max-message-size=1MiB", "--client-bandwidth-out=64KiB",
		"--quic-keepalive=0", "--roqr-datagrams=false", "--stall-timeout=7s", "--upstream=rtmp://origin"}, nil, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	libs := c.libraryConfigs()
	s, tc := libs.session.WithDefaults(), libs.tunnel.WithDefaults()
	if s.WriteMerge >= 0 || s.PublisherGrace != 0 || tc.HoldTime != 0 {
		t.Errorf("off: write merge %v, publisher grace %v, hold %v", s.WriteMerge, s.PublisherGrace, tc.HoldTime)
	}
	if !s.DisableGOPCache || !s.DisableBWCheck || !tc.NoDirect {
		t.Errorf("booleans: %v %v %v", s.DisableGOPCache, s.DisableBWCheck, tc.NoDirect)
	}
	if len(tc.TrustedProxies) != 1 || tc.TrustedProxies[0].String() != "10.0.0.0/8" {
		t.Errorf("trusted proxies %v", tc.TrustedProxies)
	}
	if s.MaxMessageSize != 1<<20 || s.ClientBandwidthOut != 64<<10 {
		t.Errorf("sizes %d %d", s.MaxMessageSize, s.ClientBandwidthOut)
	}
	// A row that feeds several libraries reaches them all.
	q, g := libs.quic.WithDefaults(), libs.gateway.WithDefaults()
	if q.KeepAlive != 0 || q.RoQRDatagrams || q.MaxMessageSize != 1<<20 {
		t.Errorf("quic: keep-alive %v, datagrams %v, max message %d", q.KeepAlive, q.RoQRDatagrams, q.MaxMessageSize)
	}
	if g.StallTimeout != 7*time.Second || s.StallTimeout != 7*time.Second || g.Upstream != "rtmp://origin" {
		t.Errorf("gateway %+v, session stall %v", g, s.StallTimeout)
	}
}

// Each kind of setting parses and checks itself, and its errors name the
// setting from the table.
func TestSettingKinds(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		args []string
		ok   func(*config) bool // nil: an error containing want
		want string
	}{
		{map[string]string{"RTMPHUB_PLAYER_QUEUE_BYTES": "8MiB"}, nil, func(c *config) bool { return c.PlayerQueueBytes == 8<<20 }, ""},
		{nil, []string{"--rtmpt-max-body=64kib"}, func(c *config) bool { return c.RTMPTMaxBody == 64<<10 }, ""},
		{nil, []string{"--rtmpt-max-body=64KB"}, nil, "RTMPHUB_RTMPT_MAX_BODY / --rtmpt-max-body = \"64KB\": want a number of bytes"},
		{nil, []string{"--max-message-size=16MiB"}, nil, "RTMPHUB_MAX_MESSAGE_SIZE / --max-message-size = \"16777216\": must be from 1024 to 16777215 (the largest RTMP message length)"},
		{nil, []string{"--rtmp-addr=1935"}, nil, "RTMPHUB_RTMP_ADDR / --rtmp-addr = \"1935\": want host:port"},
		{map[string]string{"RTMPHUB_QUIC_ADDR": "1935"}, nil, nil, "RTMPHUB_QUIC_ADDR / --quic-addr = \"1935\": want host:port"},
		{map[string]string{"RTMPHUB_LOG_LEVEL": "loud"}, nil, nil, "RTMPHUB_LOG_LEVEL / --log-level = \"loud\": want debug, info, warn or error"},
		{nil, []string{"--auth-url=ftp://x"}, nil, "RTMPHUB_AUTH_URL / --auth-url = \"ftp://x\": want an http:// or https:// URL"},
		{nil, []string{"--client-idle-timeout=500ms"}, nil, "must be 0 (off) or at least 1s"},
		{nil, []string{"--write-merge=2s"}, nil, "RTMPHUB_WRITE_MERGE / --write-merge = \"2s\": must be from 0 to 1s"},
		{nil, []string{"--write-merge=-1s"}, nil, "must be from 0 to 1s"},
		{nil, []string{"--quic-keepalive=-1s"}, nil, "RTMPHUB_QUIC_KEEPALIVE / --quic-keepalive = \"-1s\": must not be negative"},
		{nil, []string{"--call-timeout=0"}, nil, "RTMPHUB_CALL_TIMEOUT / --call-timeout = \"0\": must be positive"},
		{nil, []string{"--rtmpt-max-conns-per-ip=0"}, func(c *config) bool { return c.RTMPTConnsPerIP == 0 }, ""},
		{nil, []string{"--rtmpt-max-conns-per-ip=-1"}, nil, "must not be negative"},
		{nil, []string{"--auth-timeout=2m"}, nil, "must be from 1ms to 1m"},
		{nil, []string{"--rtmpt-max-buffered=1MiB", "--rtmpt-max-body=2MiB"}, nil,
			"RTMPHUB_RTMPT_MAX_BUFFERED / --rtmpt-max-buffered = \"1048576\": must be at least RTMPHUB_RTMPT_MAX_BODY / --rtmpt-max-body"},
		{nil, []string{"--admin-addr=0.0.0.0:1111"}, nil, "needs a token (RTMPHUB_ADMIN_TOKEN / --admin-token)"},
		{nil, []string{"--cluster=nats://a:4222, nats://b:4222"}, func(c *config) bool { return len(splitList(c.Cluster)) == 2 }, ""},
		{nil, []string{"--cluster=http://a:4222"}, nil, "RTMPHUB_CLUSTER / --cluster = \"http://a:4222\": want comma-separated nats:// URLs"},
		{nil, []string{"--cluster-routes=b:6222"}, nil, "routes need an embedded NATS server (RTMPHUB_CLUSTER_EMBEDDED / --cluster-embedded)"},
		{nil, []string{"--cluster-embedded=4222"}, nil, "want host:port"},
		{nil, []string{"--cluster-embedded=127.0.0.1:4222", "--cluster-routes=b:6222"}, func(c *config) bool { return c.ClusterRoutes == "b:6222" }, ""},
	} {
		c, err := loadConfig(tc.args, tc.env, &bytes.Buffer{})
		if tc.ok != nil {
			if err != nil || !tc.ok(c) {
				t.Errorf("%v %v: %v", tc.env, tc.args, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v %v: want an error containing %q, got %v", tc.env, tc.args, tc.want, err)
		}
	}
	if got := formatDuration(90 * time.Second); got != "1m30s" {
		t.Errorf("formatDuration: %s", got)
	}
}

// The README's settings tables say what rtmphub help says: every setting,
// with its variable and its default.
func TestREADMESettingsMatchHelp(t *testing.T) {
	defs := helpDefaults(t)
	envs := make(map[string]string)
	for _, s := range settings(&config{}) {
		envs[s.flag] = s.env
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile("^\\| `--([a-z0-9-]+)` \\| `(RTMPHUB_[A-Z0-9_]+)` \\| ([^|]*) \\|")
	seen := make(map[string]bool)
	for _, line := range strings.Split(string(readme), "\n") {
		m := row.FindStringSubmatch(line)
		if m == nil || strings.HasPrefix(m[2], "RTMPHUB_BRIDGE_") {
			continue
		}
		flag, env, cell := m[1], m[2], strings.TrimSpace(m[3])
		def, ok := defs[flag]
		if !ok {
			t.Errorf("README has --%s, rtmphub help does not", flag)
			continue
		}
		seen[flag] = true
		if env != envs[flag] {
			t.Errorf("README: --%s is %s, help says %s", flag, env, envs[flag])
		}
		if def == "" && cell != "(off)" && cell != "(none)" || def != "" && !strings.HasPrefix(cell, "`"+def+"`") {
			t.Errorf("README: --%s defaults to %s, help says %q", flag, cell, def)
		}
	}
	for flag := range defs {
		if !seen[flag] {
			t.Errorf("README lacks --%s", flag)
		}
	}
}
