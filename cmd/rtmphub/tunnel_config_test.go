package main

import (
	"bytes"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"
)

func TestTunnelSettings(t *testing.T) {
	c, err := loadConfig(nil, nil, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTPAddr != ":80" || c.TLSAddr != ":443" || c.RTMPTHold != 500*time.Millisecond || c.RTMPTTimeout != 15*time.Second ||
		c.RTMPTMaxPending != 1<<20 || c.TrustedProxies != "" || len(c.explicit) != 0 {
		t.Fatalf("defaults: %+v", c)
	}
	c, err = loadConfig([]string{"--http-addr", "127.0.0.1:0", "--rtmpt-hold=0"},
		map[string]string{"RTMPHUB_TRUSTED_PROXIES": "10.0.0.0/8, 127.0.0.1", "RTMPHUB_RTMPT_ID_PREFIX": "a1"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if !c.explicit["HTTPAddr"] || !c.explicit["TrustedProxies"] || !c.explicit["RTMPTHold"] || c.explicit["TLSAddr"] || c.RTMPTHold != 0 {
		t.Fatalf("explicit settings %v, hold %v", c.explicit, c.RTMPTHold)
	}
	// An explicitly empty address is explicit too (it turns RTMPT off).
	c, err = loadConfig(nil, map[string]string{"RTMPHUB_HTTP_ADDR": ""}, &bytes.Buffer{})
	if err != nil || c.HTTPAddr != "" && !c.explicit["HTTPAddr"] {
		t.Fatalf("empty HTTP addr: %v %+v", err, c)
	}
}

func TestTunnelSettingErrors(t *testing.T) {
	cases := []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"bad proxy CIDR", map[string]string{"RTMPHUB_TRUSTED_PROXIES": "10.0.0.0/40"}, nil, "RTMPHUB_TRUSTED_PROXIES / --trusted-proxies"},
		{"key without cert", nil, []string{"--tls-key", "k.pem"}, "RTMPHUB_TLS_CERT / --tls-cert"},
		{"cert without key", nil, []string{"--tls-cert", "c.pem"}, "RTMPHUB_TLS_KEY / --tls-key"},
		{"hold too long", nil, []string{"--rtmpt-hold", "40s"}, "RTMPHUB_RTMPT_HOLD / --rtmpt-hold"},
		{"timeout under hold", nil, []string{"--rtmpt-hold", "2s", "--rtmpt-timeout", "3s"}, "RTMPHUB_RTMPT_TIMEOUT / --rtmpt-timeout"},
		{"bad id prefix", nil, []string{"--rtmpt-id-prefix", "a-b"}, "RTMPHUB_RTMPT_ID_PREFIX / --rtmpt-id-prefix"},
		{"small pending", nil, []string{"--rtmpt-max-pending", "100"}, "RTMPHUB_RTMPT_MAX_PENDING / --rtmpt-max-pending"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var stderr bytes.Buffer
			code := run(append([]string{"serve"}, tc.args...), tc.env, &bytes.Buffer{}, &stderr)
			if code == 0 || !strings.Contains(stderr.String(), tc.want) {
				t.Fatalf("exit %d, stderr %q, want it to name %q", code, stderr.String(), tc.want)
			}
		})
	}
}

func TestOptionalPortFallsBackOnlyWhenDefault(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	var logs bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logs, nil))

	// Left at its default: skipped with a warning.
	l, err := listenOptional(busy.Addr().String(), "RTMPHUB_HTTP_ADDR / --http-addr", "rtmpt", false, "127.0.0.1:1935", log)
	if err != nil || l != nil {
		t.Fatalf("default address in use: %v, %v", l, err)
	}
	if !strings.Contains(logs.String(), `"level":"WARN"`) || !strings.Contains(logs.String(), "rtmpt stays available on the RTMP port") {
		t.Fatalf("no warning: %s", logs.String())
	}
	// Set explicitly: an error naming the setting.
	_, err = listenOptional(busy.Addr().String(), "RTMPHUB_HTTP_ADDR / --http-addr", "rtmpt", true, "127.0.0.1:1935", log)
	if err == nil || !strings.Contains(err.Error(), "RTMPHUB_HTTP_ADDR / --http-addr "+busy.Addr().String()+": port already in use") {
		t.Fatalf("explicit address in use: %v", err)
	}
	// Through run: an explicit HTTP address in use stops the server.
	var stderr bytes.Buffer
	code := run([]string{"serve", "--rtmp-addr", "127.0.0.1:0", "--http-addr", busy.Addr().String(), "--data-dir", t.TempDir()}, nil, &bytes.Buffer{}, &stderr)
	if code == 0 || !strings.Contains(stderr.String(), "RTMPHUB_HTTP_ADDR / --http-addr") {
		t.Fatalf("exit %d, stderr %q", code, stderr.String())
	}
}
