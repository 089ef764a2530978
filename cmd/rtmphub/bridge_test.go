package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestBridgeCommandSettings(t *testing.T) {
	for _, c := range []struct {
		name string
		args []string
		env  map[string]string
		code int
		err  string
	}{
		{"no hub", nil, nil, 2, "--to is required"},
		{"bad scheme", []string{"--to", "http://h"}, nil, 2, "scheme must be"},
		{"bad pin", []string{"--to", "quic://h", "--pin", "xyz"}, nil, 2, "bad certificate pin"},
		{"pin and insecure", []string{"--to", "quic://h", "--insecure", "--pin", strings.Repeat("a", 64)}, nil, 2, "exclude each other"},
		{"insecure from env", []string{"--to", "quic://h"}, map[string]string{"RTMPHUB_BRIDGE_INSECURE": "maybe"}, 2, "RTMPHUB_BRIDGE_INSECURE"},
		{"bad listen", []string{"--to", "rtmpt://h", "--listen", "256.0.0.1:x"}, nil, 1, "RTMPHUB_BRIDGE_LISTEN / --listen"},
		{"stray argument", []string{"--to", "rtmpt://h", "extra"}, nil, 2, "unexpected argument"},
	} {
		var out, errb bytes.Buffer
		env := c.env
		if env == nil {
			env = map[string]string{}
		}
		code := run(append([]string{"bridge"}, c.args...), env, &out, &errb)
		if code != c.code || !strings.Contains(errb.String(), c.err) {
			t.Errorf("%s: exit %d, stderr %q; want %d and %q", c.name, code, errb.String(), c.code, c.err)
		}
	}
	var out bytes.Buffer
	if code := run([]string{"bridge", "--help"}, map[string]string{}, &out, &out); code != 0 || !strings.Contains(out.String(), "RTMPHUB_BRIDGE_TO") {
		t.Errorf("help: exit %d, %q", code, out.String())
	}
}

func TestUpstreamSetting(t *testing.T) {
	for _, c := range []struct {
		env map[string]string
		ok  bool
	}{
		{map[string]string{"RTMPHUB_UPSTREAM": "rtmp://origin:1935"}, true},
		{map[string]string{"RTMPHUB_UPSTREAM": "rtmpt://origin"}, false},
		{map[string]string{"RTMPHUB_UPSTREAM_PROXY_PROTOCOL": "3"}, false},
		{map[string]string{"RTMPHUB_QUIC_IDLE_TIMEOUT": "10ms"}, false},
		{map[string]string{"RTMPHUB_QUIC_ADDR": ""}, true},
	} {
		_, err := loadConfig(nil, c.env, &bytes.Buffer{})
		if (err == nil) != c.ok {
			t.Errorf("%v: err %v, want ok %v", c.env, err, c.ok)
		}
	}
}
