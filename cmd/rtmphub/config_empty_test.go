package main

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"
)

// An empty value is "off" or an error, never the default: a second hub
// started with RTMPHUB_QUIC_ADDR= must not bind UDP :1935.
func TestEmptySettingIsOffOrError(t *testing.T) {
	cases := []struct {
		name    string
		env     map[string]string
		args    []string
		want    func(*config) bool // nil: an error naming wantErr
		wantErr string
	}{
		{"quic addr env", map[string]string{"RTMPHUB_QUIC_ADDR": ""}, nil, func(c *config) bool { return c.QUICAddr == "" && c.explicit["QUICAddr"] }, ""},
		{"http addr env", map[string]string{"RTMPHUB_HTTP_ADDR": ""}, nil, func(c *config) bool { return c.HTTPAddr == "" }, ""},
		{"tls addr env", map[string]string{"RTMPHUB_TLS_ADDR": ""}, nil, func(c *config) bool { return c.TLSAddr == "" }, ""},
		{"admin addr env", map[string]string{"RTMPHUB_ADMIN_ADDR": ""}, nil, func(c *config) bool { return c.AdminAddr == "" }, ""},
		{"all four env", map[string]string{"RTMPHUB_QUIC_ADDR": "", "RTMPHUB_HTTP_ADDR": "", "RTMPHUB_TLS_ADDR": "", "RTMPHUB_ADMIN_ADDR": ""}, nil,
			func(c *config) bool {
				return c.QUICAddr == "" && c.HTTPAddr == "" && c.TLSAddr == "" && c.AdminAddr == ""
			}, ""},
		{"quic addr flag", nil, []string{"--quic-addr="}, func(c *config) bool { return c.QUICAddr == "" }, ""},
		{"quic addr flag over env", map[string]string{"RTMPHUB_QUIC_ADDR": ":2935"}, []string{"--quic-addr", ""}, func(c *config) bool { return c.QUICAddr == "" }, ""},
		{"env empty, flag sets", map[string]string{"RTMPHUB_QUIC_ADDR": ""}, []string{"--quic-addr=:2935"}, func(c *config) bool { return c.QUICAddr == ":2935" }, ""},
		{"number with off env", map[string]string{"RTMPHUB_MAX_CONNECTIONS_PER_IP": "", "RTMPHUB_QUIC_KEEPALIVE": ""}, nil,
			func(c *config) bool { return c.MaxConnectionsPerIP == 0 && c.QUICKeepAlive == 0 }, ""},
		{"duration with off flag", nil, []string{"--write-merge="}, func(c *config) bool { return c.WriteMerge == 0 }, ""},
		{"rtmp addr env", map[string]string{"RTMPHUB_RTMP_ADDR": ""}, nil, nil, "RTMPHUB_RTMP_ADDR / --rtmp-addr"},
		{"rtmp addr flag", nil, []string{"--rtmp-addr="}, nil, "RTMPHUB_RTMP_ADDR / --rtmp-addr"},
		{"data dir env", map[string]string{"RTMPHUB_DATA_DIR": ""}, nil, nil, "RTMPHUB_DATA_DIR / --data-dir"},
		{"timeout env", map[string]string{"RTMPHUB_STALL_TIMEOUT": ""}, nil, nil, "RTMPHUB_STALL_TIMEOUT / --stall-timeout"},
		{"bool env", map[string]string{"RTMPHUB_GOP_CACHE": ""}, nil, nil, "RTMPHUB_GOP_CACHE / --gop-cache"},
		{"bool flag", nil, []string{"--gop-cache="}, nil, "RTMPHUB_GOP_CACHE / --gop-cache"},
		{"number flag", nil, []string{"--max-connections="}, nil, "RTMPHUB_MAX_CONNECTIONS / --max-connections"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			c, err := loadConfig(tc.args, environ(), &bytes.Buffer{})
			if tc.want == nil {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), "must not be empty") {
					t.Fatalf("want an error naming %s, got %v", tc.wantErr, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tc.want(c) {
				t.Fatalf("unexpected config %+v", c)
			}
		})
	}
}

// Every row follows the one rule: off when it has an off value, an error
// naming it otherwise, from the environment and from a flag alike.
func TestEveryEmptySettingFollowsTheRule(t *testing.T) {
	for _, s := range settings(&config{}) {
		off, canOff := s.offValue()
		for _, via := range []string{"env", "flag"} {
			t.Run(s.flag+"/"+via, func(t *testing.T) {
				var args []string
				if via == "env" {
					t.Setenv(s.env, "")
				} else {
					args = []string{"--" + s.flag + "="}
				}
				c, err := loadConfig(args, environ(), &bytes.Buffer{})
				if !canOff {
					if err == nil || !strings.Contains(err.Error(), s.env+" / --"+s.flag) {
						t.Fatalf("empty %s: want an error naming it, got %v", s.env, err)
					}
					return
				}
				if err != nil {
					t.Fatalf("empty %s: %v", s.env, err)
				}
				got := ""
				for _, cs := range settings(c) {
					if cs.field.Name == s.field.Name {
						got = fmt.Sprint(cs.value.Interface())
						if d, ok := cs.value.Interface().(time.Duration); ok && d == 0 {
							got = "0"
						}
					}
				}
				if got != off || !c.explicit[s.field.Name] {
					t.Fatalf("empty %s: value %q (want %q), explicit %v", s.env, got, off, c.explicit[s.field.Name])
				}
			})
		}
	}
}

func TestHelpSaysWhichSettingsEmptyTurnsOff(t *testing.T) {
	var out bytes.Buffer
	if code := run([]string{"help"}, nil, &out, &out); code != 0 {
		t.Fatalf("help: %d", code)
	}
	for _, line := range strings.Split(out.String(), "\n") {
		for _, name := range []string{"--quic-addr", "--http-addr", "--tls-addr", "--admin-addr", "--debug-addr"} {
			if strings.HasPrefix(strings.TrimSpace(line), name+" ") && !strings.Contains(line, "[empty = off]") {
				t.Errorf("help line of %s does not say empty = off: %q", name, line)
			}
		}
		if strings.HasPrefix(strings.TrimSpace(line), "--rtmp-addr ") && strings.Contains(line, "[empty") {
			t.Errorf("help line of --rtmp-addr offers empty: %q", line)
		}
	}
}

// The bridge's empty listen address would bind a random port.
func TestBridgeEmptyListenIsAnError(t *testing.T) {
	for _, c := range []struct {
		args []string
		env  map[string]string
	}{
		{[]string{"--to", "rtmpt://h", "--listen="}, map[string]string{}},
		{[]string{"--to", "rtmpt://h"}, map[string]string{"RTMPHUB_BRIDGE_LISTEN": ""}},
	} {
		var out, errb bytes.Buffer
		code := run(append([]string{"bridge"}, c.args...), c.env, &out, &errb)
		if code != 2 || !strings.Contains(errb.String(), "RTMPHUB_BRIDGE_LISTEN / --listen must not be empty") {
			t.Errorf("%v %v: exit %d, stderr %q", c.args, c.env, code, errb.String())
		}
	}
}

func TestClientIdleTimeoutSetting(t *testing.T) {
	for _, tc := range []struct {
		env  string
		want time.Duration
		ok   bool
	}{
		{"", 0, true}, {"90s", 90 * time.Second, true}, {"0", 0, true}, {"500ms", 0, false}, {"-1s", 0, false},
	} {
		t.Setenv("RTMPHUB_CLIENT_IDLE_TIMEOUT", tc.env)
		c, err := loadConfig(nil, environ(), &bytes.Buffer{})
		if tc.ok && (err != nil || c.ClientIdleTimeout != tc.want) || !tc.ok && (err == nil || !strings.Contains(err.Error(), "--client-idle-timeout")) {
			t.Errorf("%q: %v, %v", tc.env, c, err)
		}
	}
	if c, err := loadConfig(nil, nil, &bytes.Buffer{}); err != nil || c.ClientIdleTimeout != 0 {
		t.Errorf("default: %v %v", c, err)
	}
}
