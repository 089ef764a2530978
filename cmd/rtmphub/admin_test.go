package main

import (
	"bytes"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
)

func TestAdminTokenRequiredOffLoopback(t *testing.T) {
	for _, tc := range []struct {
		args []string
		env  map[string]string
		ok   bool
	}{
		{nil, nil, true}, // default 127.0.0.1:1111
		{[]string{"--admin-addr", ""}, nil, true},
		{[]string{"--admin-addr", "[::1]:1111"}, nil, true},
		{[]string{"--admin-addr", ":1111"}, nil, false},
		{[]string{"--admin-addr", "0.0.0.0:1111"}, nil, false},
		{nil, map[string]string{"RTMPHUB_ADMIN_ADDR": "10.0.0.1:1111"}, false},
		{[]string{"--admin-addr", ":1111", "--admin-token", "t"}, nil, true},
		{[]string{"--admin-addr", ":1111"}, map[string]string{"RTMPHUB_ADMIN_TOKEN": "t"}, true},
		{[]string{"--auth-url", "ftp://x"}, nil, false},
		{[]string{"--auth-url", "http://127.0.0.1:9/auth", "--auth-fail-open"}, nil, true},
		{[]string{"--max-connections-per-ip", "-1"}, nil, false},
	} {
		_, err := loadConfig(tc.args, tc.env, &bytes.Buffer{})
		if (err == nil) != tc.ok {
			t.Errorf("%q %v: err %v", tc.args, tc.env, err)
		}
		if err != nil && !tc.ok && strings.Contains(strings.Join(tc.args, " ")+mapString(tc.env), "1111") &&
			!strings.Contains(err.Error(), "RTMPHUB_ADMIN_TOKEN") {
			t.Errorf("error does not name the token setting: %v", err)
		}
	}
}

func mapString(m map[string]string) string {
	var b strings.Builder
	for k, v := range m {
		b.WriteString(k + "=" + v)
	}
	return b.String()
}

// The default admin address, when taken, is skipped with a warning; one
// set explicitly must bind.
func TestAdminDefaultPortTaken(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cfg, err := loadConfig(nil, nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	cfg.AdminAddr = ln.Addr().String() // as if it were the default
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	a, err := startAdmin(cfg, nil, "", nil, nil, log)
	if err != nil || a.h != nil {
		t.Fatalf("default taken: %v %+v", err, a)
	}
	if !strings.Contains(logs.String(), "default admin port not available") {
		t.Errorf("no warning: %s", logs.String())
	}
	cfg.explicit["AdminAddr"] = true
	if _, err := startAdmin(cfg, nil, "", nil, nil, log); err == nil || !strings.Contains(err.Error(), "--admin-addr") {
		t.Errorf("explicit taken: %v", err)
	}
}
