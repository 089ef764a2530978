package main

import (
	"bytes"
	"net"
	"strings"
	"testing"
	"time"
)

func TestConfigPrecedence(t *testing.T) {
	cases := []struct {
		name string
		env  map[string]string
		args []string
		want func(*config) bool
	}{
		{"defaults", nil, nil, func(c *config) bool {
			return c.RTMPAddr == ":1935" && c.DataDir == "./data" && c.GOPCache && c.PlayerQueue == 512 && c.StallTimeout == 10*time.Second
		}},
		{"env over default", map[string]string{"RTMPHUB_RTMP_ADDR": "127.0.0.1:2000", "RTMPHUB_GOP_CACHE": "false"}, nil, func(c *config) bool {
			return c.RTMPAddr == "127.0.0.1:2000" && !c.GOPCache
		}},
		{"flag over env", map[string]string{"RTMPHUB_RTMP_ADDR": "127.0.0.1:2000", "RTMPHUB_PLAYER_QUEUE": "100"},
			[]string{"--rtmp-addr", "127.0.0.1:3000", "--player-queue=64", "--gop-cache=false"}, func(c *config) bool {
				return c.RTMPAddr == "127.0.0.1:3000" && c.PlayerQueue == 64 && !c.GOPCache
			}},
		{"duration flag", nil, []string{"--stall-timeout", "3s"}, func(c *config) bool { return c.StallTimeout == 3*time.Second }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := loadConfig(tc.args, tc.env, &bytes.Buffer{})
			if err != nil {
				t.Fatal(err)
			}
			if !tc.want(c) {
				t.Fatalf("unexpected config %+v", c)
			}
		})
	}
}

func TestConfigErrorsNameVariableAndFlag(t *testing.T) {
	cases := []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"bad env int", map[string]string{"RTMPHUB_MAX_CONNECTIONS": "many"}, nil, "RTMPHUB_MAX_CONNECTIONS / --max-connections"},
		{"bad env duration", map[string]string{"RTMPHUB_STALL_TIMEOUT": "10"}, nil, "RTMPHUB_STALL_TIMEOUT / --stall-timeout"},
		{"bad flag", nil, []string{"--player-queue", "x"}, "RTMPHUB_PLAYER_QUEUE / --player-queue"},
		{"out of range", nil, []string{"--chunk-size", "64"}, "RTMPHUB_CHUNK_SIZE / --chunk-size"},
		{"bad log format", map[string]string{"RTMPHUB_LOG_FORMAT": "xml"}, nil, "RTMPHUB_LOG_FORMAT / --log-format"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var stderr bytes.Buffer
			code := run(append([]string{"serve"}, tc.args...), tc.env, &bytes.Buffer{}, &stderr)
			if code == 0 {
				t.Fatal("exit code 0 for a bad setting")
			}
			out := stderr.String()
			if !strings.Contains(out, tc.want) || strings.Count(strings.TrimSpace(out), "\n") != 0 {
				t.Fatalf("want one line naming %q, got %q", tc.want, out)
			}
		})
	}
}

func TestPortInUseSaysWhich(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var stderr bytes.Buffer
	code := run([]string{"serve", "--rtmp-addr", ln.Addr().String(), "--data-dir", t.TempDir()}, nil, &bytes.Buffer{}, &stderr)
	if code == 0 || !strings.Contains(stderr.String(), "RTMPHUB_RTMP_ADDR / --rtmp-addr "+ln.Addr().String()+": port already in use") {
		t.Fatalf("exit %d, stderr %q", code, stderr.String())
	}
}

func TestSubcommands(t *testing.T) {
	var out bytes.Buffer
	if code := run([]string{"version"}, nil, &out, &out); code != 0 || !strings.HasPrefix(out.String(), "rtmphub ") {
		t.Fatalf("version: %d %q", code, out.String())
	}
	out.Reset()
	if code := run([]string{"help"}, nil, &out, &out); code != 0 || !strings.Contains(out.String(), "RTMPHUB_RTMP_ADDR") {
		t.Fatalf("help: %d %q", code, out.String())
	}
	out.Reset()
	if code := run([]string{"frobnicate"}, nil, &out, &out); code != 2 {
		t.Fatalf("unknown command exit %d", code)
	}
}
