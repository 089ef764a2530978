package main

import (
	"os"
	"testing"
	"time"
)

func TestParseProcStatCPU(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want uint64
	}{
		{"nginx", "4242 (nginx) S 1 4242 4242 0 -1 4194560 1203 0 0 0 151 37 0 0 20 0 1 0 123456 12345678 2345 18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 0 17 1 0 0 0 0 0", 188},
		// A command name with spaces and parentheses: fields count from the last ')'.
		{"odd name", "77 (a) b (c)) R 1 77 77 0 -1 0 0 0 0 0 1000 2000 0 0 20 0 4 0 1 1 1", 3000},
	}
	for _, tc := range tests {
		got, err := parseProcStatCPU([]byte(tc.in))
		if err != nil || got != tc.want {
			t.Errorf("%s: got %d, %v; want %d", tc.name, got, err, tc.want)
		}
	}
	for _, in := range []string{"", "12 nginx S 1", "12 (x) S 1 2 3", "12 (x) S 1 2 3 4 5 6 7 8 9 10 x 2 3"} {
		if _, err := parseProcStatCPU([]byte(in)); err == nil {
			t.Errorf("%q: no error", in)
		}
	}
}

func TestParseStatusRSS(t *testing.T) {
	in := "Name:\tnginx\nVmPeak:\t   20000 kB\nVmRSS:\t    5432 kB\nRssAnon:\t 1000 kB\n"
	if got, err := parseStatusRSS([]byte(in)); err != nil || got != 5432 {
		t.Errorf("got %d, %v; want 5432", got, err)
	}
	for _, in := range []string{"Name:\tkthreadd\n", "VmRSS:\t12 MB\n", "VmRSS:\n"} {
		if _, err := parseStatusRSS([]byte(in)); err == nil {
			t.Errorf("%q: no error", in)
		}
	}
}

func TestParseHostStat(t *testing.T) {
	in := "cpu  100 5 50 800 20 3 2 0 7 0\ncpu0 50 2 25 400 10 1 1 0 0 0\ncpu1 50 3 25 400 10 2 1 0 0 0\nintr 1 2 3\nctxt 99\n"
	h, err := parseHostStat([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	// busy: user+nice+system+irq+softirq+steal; guest (7) is inside user.
	if h.Busy != 160 || h.Total != 980 || h.CPUs != 2 {
		t.Errorf("got %+v, want busy 160 total 980 cpus 2", h)
	}
	if _, err := parseHostStat([]byte("intr 1\n")); err == nil {
		t.Error("no cpu line: no error")
	}
}

// The readers work on this very process.
func TestProcSelf(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	pid := os.Getpid()
	if _, err := processCPU(pid); err != nil {
		t.Error(err)
	}
	if kib, err := processRSS(pid); err != nil || kib <= 0 {
		t.Errorf("rss %d, %v", kib, err)
	}
	h, err := readHostCPU()
	if err != nil || h.CPUs < 1 || h.Total == 0 {
		t.Errorf("host %+v, %v", h, err)
	}
}

func TestCPUPercent(t *testing.T) {
	if got := cpuPercent(5*time.Second, 20*time.Second); got != 25 {
		t.Errorf("got %v, want 25", got)
	}
	if got := cpuPercent(time.Second, 0); got != 0 {
		t.Errorf("zero window: got %v", got)
	}
}
