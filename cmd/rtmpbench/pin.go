package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"unsafe"
)

// Pinning (-pin, -server-cpus, -tool-cpus): on a 2-core host the server
// and the load generator otherwise float over both cores and steal from
// each other at random, which is most of the run-to-run noise. Pinned, the
// server has one core to itself (and, being started on it, a Go server
// sizes GOMAXPROCS to it), the tool the other.

// pinning is how a run places the servers and the tool.
type pinning struct {
	Server []int `json:"server_cpus,omitempty"` // every server process the tool starts
	Tool   []int `json:"tool_cpus,omitempty"`   // this process, all its threads
}

func (p pinning) on() bool { return len(p.Server) > 0 }

func (p pinning) String() string {
	if !p.on() {
		return "not pinned"
	}
	return fmt.Sprintf("servers pinned to CPU %s, the tool to CPU %s", formatCPUs(p.Server), formatCPUs(p.Tool))
}

// parseCPUs parses a CPU list like taskset's: "1", "0,2", "0-3".
func parseCPUs(s string) ([]int, error) {
	var cpus []int
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil || a < 0 {
			return nil, fmt.Errorf("bad CPU list %q", s)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil || b < a {
				return nil, fmt.Errorf("bad CPU list %q", s)
			}
		}
		if b >= len(cpuMask{})*64 {
			return nil, fmt.Errorf("CPU %d in %q: at most %d CPUs", b, s, len(cpuMask{})*64)
		}
		for c := a; c <= b; c++ {
			if !slices.Contains(cpus, c) {
				cpus = append(cpus, c)
			}
		}
	}
	slices.Sort(cpus)
	return cpus, nil
}

// formatCPUs prints a CPU list as parseCPUs reads it.
func formatCPUs(cpus []int) string {
	s := make([]string, len(cpus))
	for i, c := range cpus {
		s[i] = strconv.Itoa(c)
	}
	return strings.Join(s, ",")
}

// planPinning decides the placement: explicit lists win; else, with pin
// and at least two CPUs allowed to this process, the first allowed CPU
// for the servers and the second for the tool.
func planPinning(pin bool, serverCPUs, toolCPUs string) (pinning, error) {
	if !pin {
		return pinning{}, nil
	}
	var set cpuMask
	if err := schedGetaffinity(0, &set); err != nil {
		return pinning{}, fmt.Errorf("sched_getaffinity: %w", err)
	}
	var allowed []int
	for c := range 1024 {
		if set.isSet(c) {
			allowed = append(allowed, c)
		}
	}
	var p pinning
	var err error
	switch {
	case serverCPUs != "" && toolCPUs != "":
		if p.Server, err = parseCPUs(serverCPUs); err != nil {
			return p, err
		}
		if p.Tool, err = parseCPUs(toolCPUs); err != nil {
			return p, err
		}
	case serverCPUs != "" || toolCPUs != "":
		return p, errors.New("-server-cpus and -tool-cpus go together")
	case len(allowed) < 2:
		return pinning{}, nil // one CPU: nothing to separate
	default:
		p.Server, p.Tool = allowed[:1], allowed[1:2]
	}
	for _, c := range slices.Concat(p.Server, p.Tool) {
		if !slices.Contains(allowed, c) {
			return p, fmt.Errorf("CPU %d is not among those this process may use (%s)", c, formatCPUs(allowed))
		}
	}
	for _, c := range p.Server {
		if slices.Contains(p.Tool, c) {
			return p, fmt.Errorf("CPU %d is in both -server-cpus and -tool-cpus", c)
		}
	}
	return p, nil
}

func cpuSet(cpus []int) *cpuMask {
	var set cpuMask
	for _, c := range cpus {
		set.set(c)
	}
	return &set
}

// pinSelf pins every thread of this process to cpus; threads started later
// inherit the affinity of the thread that starts them. Twice, as reniceSelf:
// a thread started during the first pass by one not yet pinned would keep
// the old affinity. GOMAXPROCS is set to match, so the scheduler does not
// run more Ps than the cores it has.
func pinSelf(cpus []int) error {
	set := cpuSet(cpus)
	for range 2 {
		if err := eachThread(func(tid int) error {
			if err := schedSetaffinity(tid, set); err != nil {
				return fmt.Errorf("sched_setaffinity(%d): %w", tid, err)
			}
			return nil
		}); err != nil {
			return err
		}
	}
	runtime.GOMAXPROCS(len(cpus))
	return nil
}

// startMu serialises startPinned: the calling thread's affinity is
// changed for the moment of the fork.
var startMu sync.Mutex

// startPinned starts cmd with its affinity set to cpus (none: as this
// process's). The child inherits the affinity of the thread that forks
// it, so the starting goroutine is locked to its thread, that thread is
// moved to cpus for the fork and moved back after: the affinity is in
// place before the child's first instruction, so a Go server's runtime
// sizes GOMAXPROCS to it (a taskset run after the start would be too
// late). Threads the runtime starts meanwhile come from its template
// thread, not from this locked one.
func startPinned(cmd *exec.Cmd, cpus []int) error {
	if len(cpus) == 0 {
		return cmd.Start()
	}
	startMu.Lock()
	defer startMu.Unlock()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var old cpuMask
	if err := schedGetaffinity(0, &old); err != nil {
		return fmt.Errorf("sched_getaffinity: %w", err)
	}
	if err := schedSetaffinity(0, cpuSet(cpus)); err != nil {
		return fmt.Errorf("sched_setaffinity: %w", err)
	}
	err := cmd.Start()
	if rerr := schedSetaffinity(0, &old); rerr != nil {
		// The thread stays locked (and is dropped when the goroutine
		// ends) rather than running other goroutines on the server's CPU.
		runtime.LockOSThread()
		return errors.Join(err, fmt.Errorf("restoring the affinity: %w", rerr))
	}
	return err
}

// processCPUs returns Cpus_allowed_list of process pid, as the kernel
// prints it ("1", "0-1").
func processCPUs(pid int) (string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return "", err
	}
	return parseStatusField(b, "Cpus_allowed_list:")
}

func parseStatusField(b []byte, key string) (string, error) {
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, key); ok {
			return strings.TrimSpace(rest), nil
		}
	}
	return "", fmt.Errorf("proc status: no %s", strings.TrimSuffix(key, ":"))
}

// cpuMask is a kernel cpu_set_t of 1024 CPUs.
type cpuMask [16]uint64

func (m *cpuMask) set(c int)        { m[c/64] |= 1 << (c % 64) }
func (m *cpuMask) isSet(c int) bool { return m[c/64]&(1<<(c%64)) != 0 }

// schedGetaffinity and schedSetaffinity act on thread tid (0: the calling
// thread). The syscall package has no wrapper, and golang.org/x/sys is not
// a direct dependency of the module.
func schedGetaffinity(tid int, m *cpuMask) error {
	_, _, e := syscall.RawSyscall(syscall.SYS_SCHED_GETAFFINITY, uintptr(tid), unsafe.Sizeof(*m), uintptr(unsafe.Pointer(m)))
	if e != 0 {
		return e
	}
	return nil
}

func schedSetaffinity(tid int, m *cpuMask) error {
	_, _, e := syscall.RawSyscall(syscall.SYS_SCHED_SETAFFINITY, uintptr(tid), unsafe.Sizeof(*m), uintptr(unsafe.Pointer(m)))
	if e != 0 {
		return e
	}
	return nil
}
