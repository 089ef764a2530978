package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"syscall"
	"time"
)

// clockTick is the unit of the CPU times in /proc/<pid>/stat: USER_HZ,
// which is 100 on every Linux architecture Go supports.
const clockTick = 10 * time.Millisecond

// parseProcStatCPU returns utime+stime, in clock ticks, from the contents
// of /proc/<pid>/stat. The command name (field 2) may hold spaces and
// parentheses, so fields are counted from the last ')'.
func parseProcStatCPU(b []byte) (uint64, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("proc stat: no command name")
	}
	f := bytes.Fields(b[i+1:])
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("proc stat: %d fields after the name, want >= 13", len(f))
	}
	ut, err1 := strconv.ParseUint(string(f[11]), 10, 64)
	st, err2 := strconv.ParseUint(string(f[12]), 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("proc stat: %w", err)
	}
	return ut + st, nil
}

// processCPU returns the CPU time (user + system, all threads) used so far
// by process pid.
func processCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	t, err := parseProcStatCPU(b)
	return time.Duration(t) * clockTick, err
}

// parseStatusRSS returns VmRSS in KiB from the contents of
// /proc/<pid>/status.
func parseStatusRSS(b []byte) (int64, error) {
	for line := range bytes.SplitSeq(b, []byte{'\n'}) {
		rest, ok := bytes.CutPrefix(line, []byte("VmRSS:"))
		if !ok {
			continue
		}
		f := bytes.Fields(rest)
		if len(f) != 2 || string(f[1]) != "kB" {
			return 0, fmt.Errorf("proc status: odd VmRSS line %q", line)
		}
		return strconv.ParseInt(string(f[0]), 10, 64)
	}
	return 0, errors.New("proc status: no VmRSS (process gone or a kernel thread)")
}

// processRSS returns the resident set size of process pid in KiB.
func processRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	return parseStatusRSS(b)
}

// hostCPU is the aggregate "cpu" line of /proc/stat, in clock ticks.
type hostCPU struct {
	Busy, Total uint64
	CPUs        int
}

// parseHostStat parses /proc/stat: busy is everything but idle and iowait;
// guest time is already included in user and nice, so it is not added.
func parseHostStat(b []byte) (hostCPU, error) {
	var h hostCPU
	found := false
	for line := range bytes.SplitSeq(b, []byte{'\n'}) {
		f := bytes.Fields(line)
		if len(f) == 0 {
			continue
		}
		name := string(f[0])
		if name == "cpu" {
			if len(f) < 5 {
				return h, fmt.Errorf("proc stat: short cpu line %q", line)
			}
			for i, v := range f[1:min(len(f), 9)] { // user nice system idle iowait irq softirq steal
				n, err := strconv.ParseUint(string(v), 10, 64)
				if err != nil {
					return h, fmt.Errorf("proc stat: %w", err)
				}
				h.Total += n
				if i != 3 && i != 4 {
					h.Busy += n
				}
			}
			found = true
		} else if len(name) > 3 && name[:3] == "cpu" {
			h.CPUs++
		}
	}
	if !found {
		return h, errors.New("proc stat: no cpu line")
	}
	return h, nil
}

func readHostCPU() (hostCPU, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return hostCPU{}, err
	}
	return parseHostStat(b)
}

// selfCPU returns the CPU time (user + system) used so far by this process.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// raiseNofile raises this process's open-file limit to its hard maximum.
// Calling Setrlimit explicitly (rather than relying on the runtime's own
// raise) makes child processes inherit the raised limit as well.
func raiseNofile() (uint64, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, err
	}
	lim.Cur = lim.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, err
	}
	return lim.Cur, nil
}

// cpuPercent is CPU time used over a wall-clock window as a percentage of
// one core.
func cpuPercent(used, window time.Duration) float64 {
	if window <= 0 {
		return 0
	}
	return 100 * used.Seconds() / window.Seconds()
}

// hostBusy samples the host's busy share (% of all CPUs) over d.
func hostBusy(ctx context.Context, d time.Duration) (float64, error) {
	a, err := readHostCPU()
	if err != nil {
		return 0, err
	}
	if !sleepCtx(ctx, d) {
		return 0, ctx.Err()
	}
	b, err := readHostCPU()
	if err != nil {
		return 0, err
	}
	if b.Total <= a.Total {
		return 0, nil
	}
	return 100 * float64(b.Busy-a.Busy) / float64(b.Total-a.Total), nil
}

// waitIdle waits until the host is less than maxBusy % busy over a 3-second
// sample, for at most maxWait. It reports the last sample.
func waitIdle(ctx context.Context, maxBusy float64, maxWait time.Duration) (float64, error) {
	deadline := time.Now().Add(maxWait)
	for {
		busy, err := hostBusy(ctx, 3*time.Second)
		if err != nil || busy < maxBusy || time.Now().After(deadline) {
			return busy, err
		}
	}
}

// reniceSelf sets the nice value of every thread of this process. Linux
// keeps priorities per thread; threads and processes started later inherit
// the value of the thread that creates them, so the servers the bench
// starts run at it too.
func reniceSelf(n int) error {
	return eachThread(func(tid int) error { return syscall.Setpriority(syscall.PRIO_PROCESS, tid, n) })
}

// eachThread calls fn with the id of every thread of this process; a
// thread that ended meanwhile (ESRCH) is not an error.
func eachThread(fn func(tid int) error) error {
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return err
	}
	for _, t := range tasks {
		tid, err := strconv.Atoi(t.Name())
		if err != nil {
			continue
		}
		if err := fn(tid); err != nil && !errors.Is(err, syscall.ESRCH) {
			return err
		}
	}
	return nil
}
