package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Bounds shared by the suite. Every wait in these tests is bounded.
const (
	listenTimeout   = 10 * time.Second // server start → "listening" log line
	stopGrace       = 5 * time.Second  // SIGTERM → SIGKILL
	defaultProcWait = 60 * time.Second // default lifetime of an external command
)

var (
	serverBin   string // path of the binary under test
	buildErr    error  // why serverBin could not be built
	buildOutput string
	sharedDir   string // scratch space shared by all tests (clips), removed at exit
	raceServer  bool   // server built with -race
)

func TestMain(m *testing.M) { os.Exit(runMain(m)) }

func runMain(m *testing.M) int {
	flag.Parse()
	if testing.Short() || flagSet("test.list") {
		return m.Run() // every test skips itself, or nothing runs
	}
	dir, err := os.MkdirTemp("", "rtmphub-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	sharedDir = dir
	defer stopBrowsers() // before the removal above: its profile is in dir

	if p := os.Getenv("RTMPHUB_E2E_BIN"); p != "" {
		serverBin, buildErr = filepath.Abs(p)
	} else {
		start := time.Now()
		serverBin, buildOutput, buildErr = buildServer(dir)
		if buildErr == nil {
			fmt.Fprintf(os.Stderr, "e2e: built %s in %v\n", serverBin, time.Since(start).Round(time.Millisecond))
		}
	}
	return m.Run()
}

func flagSet(name string) bool {
	f := flag.Lookup(name)
	return f != nil && f.Value.String() != ""
}

// buildServer builds ./cmd/rtmphub from the module root into dir.
func buildServer(dir string) (bin, out string, err error) {
	root, err := moduleRoot()
	if err != nil {
		return "", "", err
	}
	// go test puts GOROOT/bin first on the PATH of the test binary.
	goTool, err := exec.LookPath("go")
	if err != nil {
		return "", "", err
	}
	bin = filepath.Join(dir, "rtmphub")
	args := []string{"build", "-o", bin}
	if os.Getenv("RTMPHUB_E2E_RACE") != "" {
		args = append(args, "-race")
		raceServer = true
	}
	args = append(args, "./cmd/rtmphub")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goTool, args...)
	cmd.Dir = root
	b, err := cmd.CombinedOutput()
	if err != nil {
		return "", string(b), fmt.Errorf("go %s (in %s): %w", strings.Join(args, " "), root, err)
	}
	return bin, string(b), nil
}

// moduleRoot walks up from the test's working directory (the e2e package)
// to the directory holding go.mod.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.mod not found above the e2e directory")
		}
		dir = parent
	}
}

// e2e marks a test as end-to-end: skipped with -short, failed when the
// server could not be built, run in parallel with the other e2e tests.
func e2e(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("e2e: skipped in -short mode")
	}
	if buildErr != nil {
		t.Fatalf("server binary not available: %v\n%s", buildErr, buildOutput)
	}
	t.Parallel()
}

// inCI reports whether missing tools must fail rather than skip.
func inCI() bool { return os.Getenv("CI") != "" }

// needTool returns the path of an external tool. A missing tool skips the
// test locally and fails it in CI: CI must never skip silently.
func needTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if inCI() {
			t.Fatalf("required tool %q not found in PATH (CI is set; run scripts/install-test-tools.sh)", name)
		}
		t.Skipf("tool %q not found in PATH; run scripts/install-test-tools.sh", name)
	}
	return p
}

var (
	ffmpegOnce sync.Once
	ffmpegErr  error
)

// needFFmpeg checks ffmpeg and ffprobe and the features the tests use.
func needFFmpeg(t testing.TB) {
	t.Helper()
	needTool(t, "ffmpeg")
	needTool(t, "ffprobe")
	ffmpegOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		var missing []string
		for _, q := range []struct{ flag, want string }{
			{"-encoders", "libx264"}, {"-encoders", " aac "}, {"-filters", "testsrc"},
			{"-filters", " sine "}, {"-muxers", "framemd5"}, {"-muxers", " tee "},
			{"-protocols", "rtmp"},
		} {
			out, err := exec.CommandContext(ctx, "ffmpeg", "-hide_banner", q.flag).CombinedOutput()
			if err != nil {
				ffmpegErr = fmt.Errorf("ffmpeg %s: %w", q.flag, err)
				return
			}
			if !bytes.Contains(out, []byte(q.want)) {
				missing = append(missing, strings.TrimSpace(q.want))
			}
		}
		if len(missing) > 0 {
			ffmpegErr = fmt.Errorf("ffmpeg lacks %s", strings.Join(missing, ", "))
		}
	})
	if ffmpegErr != nil {
		if inCI() {
			t.Fatal(ffmpegErr)
		}
		t.Skip(ffmpegErr)
	}
}

// ---------------------------------------------------------------------------
// Log capture

// logLine is one line of server output, parsed when it is JSON.
type logLine struct {
	At   time.Time
	Raw  string
	JSON map[string]any // nil when not JSON
}

func (l logLine) str(key string) string {
	if l.JSON == nil {
		return ""
	}
	s, _ := l.JSON[key].(string)
	return s
}

// lineLog collects lines written to it and lets tests wait for one.
type lineLog struct {
	mu      sync.Mutex
	partial []byte
	lines   []logLine
	changed chan struct{} // closed and replaced on every new line
}

func newLineLog() *lineLog { return &lineLog{changed: make(chan struct{})} }

func (l *lineLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.partial = append(l.partial, p...)
	added := false
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			break
		}
		l.addLocked(string(l.partial[:i]))
		l.partial = l.partial[i+1:]
		added = true
	}
	if added {
		close(l.changed)
		l.changed = make(chan struct{})
	}
	return len(p), nil
}

func (l *lineLog) addLocked(s string) {
	ln := logLine{At: time.Now(), Raw: s}
	if strings.HasPrefix(strings.TrimSpace(s), "{") {
		var m map[string]any
		if json.Unmarshal([]byte(s), &m) == nil {
			ln.JSON = m
		}
	}
	l.lines = append(l.lines, ln)
}

// snapshot returns the lines from index from on, and a channel closed when
// more arrive.
func (l *lineLog) snapshot(from int) ([]logLine, chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if from > len(l.lines) {
		from = len(l.lines)
	}
	return append([]logLine(nil), l.lines[from:]...), l.changed
}

// find returns the first line at or after index from that matches.
func (l *lineLog) find(from int, match func(logLine) bool) (logLine, bool) {
	lines, _ := l.snapshot(from)
	for _, ln := range lines {
		if match(ln) {
			return ln, true
		}
	}
	return logLine{}, false
}

// wait blocks until a line matching match appears, stop is closed, or the
// timeout passes.
func (l *lineLog) wait(match func(logLine) bool, timeout time.Duration, stop <-chan struct{}) (logLine, bool) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	next := 0
	for {
		lines, changed := l.snapshot(next)
		next += len(lines)
		for _, ln := range lines {
			if match(ln) {
				return ln, true
			}
		}
		select {
		case <-changed:
		case <-stop:
			// one last look at what arrived before the process ended
			if ln, ok := l.find(next, match); ok {
				return ln, true
			}
			return logLine{}, false
		case <-deadline.C:
			return logLine{}, false
		}
	}
}

func (l *lineLog) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.lines)
}

// tail returns the last n lines as text.
func (l *lineLog) tail(n int) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	start := max(0, len(l.lines)-n)
	var b strings.Builder
	if start > 0 {
		fmt.Fprintf(&b, "... (%d earlier lines omitted)\n", start)
	}
	for _, ln := range l.lines[start:] {
		b.WriteString(ln.Raw)
		b.WriteByte('\n')
	}
	if len(l.partial) > 0 {
		b.Write(l.partial)
		b.WriteString(" [no newline]\n")
	}
	return b.String()
}

// ---------------------------------------------------------------------------
// Server under test

type server struct {
	t       testing.TB
	cmd     *exec.Cmd
	Addr    string // 127.0.0.1:port
	Port    int
	DataDir string
	log     *lineLog
	start   time.Time

	done     chan struct{} // closed when the process has exited
	waitErr  error
	mu       sync.Mutex
	stopping bool // we sent the signal that ended it
}

// startServer starts the binary under test on a loopback port with a fresh
// data directory, and stops it when the test ends.
func startServer(t testing.TB, extra ...string) *server {
	t.Helper()
	s := &server{t: t, DataDir: t.TempDir(), log: newLineLog(), done: make(chan struct{})}
	args := append([]string{"serve",
		"--rtmp-addr", "127.0.0.1:0",
		"--http-addr", "127.0.0.1:0", // RTMPT: never the default :80 on all interfaces
		// QUIC (UDP :1935) and the admin API (127.0.0.1:1111) are off
		// unless a test asks for them with an address of its own (a later
		// flag wins): a test never binds a fixed port.
		"--quic-addr=", "--admin-addr=",
		"--data-dir", s.DataDir,
		"--log-format", "json",
		"--log-level", "debug",
	}, extra...)
	s.cmd = exec.Command(serverBin, args...)
	// Settings come from the flags above only, not from the caller's
	// RTMPHUB_* environment.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "RTMPHUB_") {
			s.cmd.Env = append(s.cmd.Env, kv)
		}
	}
	s.cmd.Stderr = s.log
	s.cmd.Stdout = s.log
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	s.cmd.WaitDelay = 2 * time.Second
	s.start = time.Now()
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start server: %v", err)
	}
	go func() {
		err := s.cmd.Wait()
		s.mu.Lock()
		s.waitErr = err
		s.mu.Unlock()
		close(s.done)
	}()
	t.Cleanup(s.cleanup)

	ln, ok := s.log.wait(func(l logLine) bool {
		return l.str("msg") == "listening" && l.str("transport") == "rtmp" && l.str("addr") != ""
	}, listenTimeout, s.done)
	if !ok {
		select {
		case <-s.done:
			t.Fatalf("server exited before listening: %v\nargs: %q\n%s", s.exitErr(), args, s.log.tail(100))
		default:
			t.Fatalf("server did not log {\"msg\":\"listening\",\"transport\":\"rtmp\"} within %v\nargs: %q\n%s",
				listenTimeout, args, s.log.tail(100))
		}
	}
	s.Addr = ln.str("addr")
	host, port, err := net.SplitHostPort(s.Addr)
	if err != nil || host != "127.0.0.1" {
		t.Fatalf("listening addr %q: want 127.0.0.1:<port> (err %v)", s.Addr, err)
	}
	s.Port, _ = strconv.Atoi(port)
	if s.Port == 0 {
		t.Fatalf("listening addr %q has port 0", s.Addr)
	}
	t.Logf("server pid %d listening on %s (started in %v)", s.cmd.Process.Pid, s.Addr, time.Since(s.start).Round(time.Millisecond))
	return s
}

func (s *server) exitErr() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.waitErr
}

// RTMPTAddr is the address of the RTMPT (RTMP over HTTP) listener, from
// the server's {"msg":"listening","transport":"rtmpt"} log line.
func (s *server) RTMPTAddr(t testing.TB) string {
	t.Helper()
	ln, ok := s.log.wait(func(l logLine) bool {
		return l.str("msg") == "listening" && l.str("transport") == "rtmpt" && l.str("addr") != ""
	}, listenTimeout, s.done)
	if !ok {
		t.Fatalf("server logged no rtmpt listening line")
	}
	return ln.str("addr")
}

// URL is the rtmp:// URL of a stream in application "live".
func (s *server) URL(stream string) string { return "rtmp://" + s.Addr + "/live/" + stream }

// Pid of the server process.
func (s *server) Pid() int { return s.cmd.Process.Pid }

// exited reports whether the process has ended.
func (s *server) exited() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// requireAlive fails the test when the server process has died.
func (s *server) requireAlive(t testing.TB) {
	t.Helper()
	if s.exited() {
		t.Fatalf("server process died: %v\n%s", s.exitErr(), s.log.tail(60))
	}
}

// signal sends sig and waits up to timeout for the process to exit. It
// returns the exit code (-1 when killed by a signal or still running) and
// how long the exit took.
func (s *server) signal(sig syscall.Signal, timeout time.Duration) (code int, took time.Duration, exited bool) {
	s.mu.Lock()
	s.stopping = true
	s.mu.Unlock()
	start := time.Now()
	_ = s.cmd.Process.Signal(sig)
	select {
	case <-s.done:
		return s.cmd.ProcessState.ExitCode(), time.Since(start), true
	case <-time.After(timeout):
		return -1, time.Since(start), false
	}
}

// kill ends the whole process group.
func (s *server) kill() {
	s.mu.Lock()
	s.stopping = true
	s.mu.Unlock()
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
	}
}

func (s *server) cleanup() {
	t := s.t
	s.mu.Lock()
	stopping := s.stopping
	s.mu.Unlock()
	if s.exited() && !stopping {
		t.Errorf("server exited on its own during the test: %v", s.exitErr())
	}
	if !s.exited() {
		if _, _, ok := s.signal(syscall.SIGTERM, stopGrace); !ok {
			t.Errorf("server did not exit within %v of SIGTERM; killing it", stopGrace)
			s.kill()
		}
	}
	// Crashes and races are failures whatever the test checked.
	if ln, ok := s.log.find(0, func(l logLine) bool {
		return strings.HasPrefix(l.Raw, "panic:") || strings.HasPrefix(l.Raw, "fatal error:") ||
			strings.Contains(l.Raw, "WARNING: DATA RACE")
	}); ok {
		t.Errorf("server output contains %q", ln.Raw)
	}
	if t.Failed() || testing.Verbose() && os.Getenv("RTMPHUB_E2E_LOG") != "" {
		t.Logf("server log (%d lines):\n%s", s.log.len(), s.log.tail(300))
	}
}

// RSS returns the resident set size of the server process in bytes.
func (s *server) RSS() (int64, error) {
	return procRSS(s.Pid())
}

func procRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 3 && f[0] == "VmRSS:" && f[2] == "kB" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			return kb * 1024, err
		}
	}
	return 0, errors.New("VmRSS not found")
}

// ---------------------------------------------------------------------------
// External commands

// syncBuffer is a goroutine-safe bytes.Buffer.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// proc is an external command in its own process group, killed when its
// timeout passes or the test ends.
type proc struct {
	t      testing.TB
	Name   string
	cmd    *exec.Cmd
	cancel context.CancelFunc
	Stdout *syncBuffer
	Stderr *syncBuffer
	start  time.Time

	done    chan struct{}
	err     error
	endedAt time.Time
}

// command prepares an external command with a hard timeout. Adjust
// p.cmd (Stdout, Stdin) before calling start.
func command(t testing.TB, timeout time.Duration, name string, args ...string) *proc {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	p := &proc{t: t, Name: name, cancel: cancel, Stdout: &syncBuffer{}, Stderr: &syncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.CommandContext(ctx, name, args...)
	p.cmd.Stdout = p.Stdout
	p.cmd.Stderr = p.Stderr
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	p.cmd.Cancel = func() error { return syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL) }
	p.cmd.WaitDelay = 3 * time.Second
	return p
}

// start starts the command; it is killed (with its whole process group) at
// the end of the test at the latest.
func (p *proc) startCmd() *proc {
	p.t.Helper()
	p.start = time.Now()
	if err := p.cmd.Start(); err != nil {
		p.cancel()
		p.t.Fatalf("start %s: %v", p.Name, err)
	}
	go func() {
		err := p.cmd.Wait()
		p.err = err
		p.endedAt = time.Now()
		close(p.done)
	}()
	p.t.Cleanup(func() {
		if !p.exited() {
			_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		}
		p.cancel()
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			p.t.Errorf("%s (pid %d) did not exit after SIGKILL", p.Name, p.cmd.Process.Pid)
		}
		if p.t.Failed() {
			p.t.Logf("%s %q\nstderr (tail):\n%s", p.Name, p.cmd.Args[1:], tailString(p.Stderr.String(), 3000))
		}
	})
	return p
}

// startProc = command + start with the default stdout/stderr buffers.
func startProc(t testing.TB, timeout time.Duration, name string, args ...string) *proc {
	t.Helper()
	return command(t, timeout, name, args...).startCmd()
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// wait waits up to timeout for the command to end and reports whether it did.
func (p *proc) wait(timeout time.Duration) bool {
	select {
	case <-p.done:
		return true
	case <-time.After(timeout):
		return false
	}
}

// exitErr is the command's result once it has ended.
func (p *proc) exitErr() error {
	<-p.done
	return p.err
}

// signal sends sig to the command's process group.
func (p *proc) signal(sig syscall.Signal) {
	if p.cmd.Process != nil && !p.exited() {
		_ = syscall.Kill(-p.cmd.Process.Pid, sig)
	}
}

// stop asks the command to finish (SIGINT: ffmpeg and rtmpdump then close
// their output cleanly), then kills it after grace.
func (p *proc) stop(grace time.Duration) {
	p.signal(syscall.SIGINT)
	if !p.wait(grace) {
		p.signal(syscall.SIGKILL)
		p.wait(5 * time.Second)
	}
}

// runtime of a finished command.
func (p *proc) took() time.Duration {
	if p.exited() {
		return p.endedAt.Sub(p.start)
	}
	return time.Since(p.start)
}

// run runs a command to completion and returns stdout; it fails the test
// when the command fails.
func run(t testing.TB, timeout time.Duration, name string, args ...string) string {
	t.Helper()
	p := startProc(t, timeout, name, args...)
	if !p.wait(timeout + 10*time.Second) {
		t.Fatalf("%s %q did not end", name, args)
	}
	if err := p.exitErr(); err != nil {
		t.Fatalf("%s %q: %v\nstderr:\n%s", name, args, err, tailString(p.Stderr.String(), 3000))
	}
	return p.Stdout.String()
}

func tailString(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}

// ---------------------------------------------------------------------------
// Small helpers

// lineWriter calls fn for every complete line written to it.
type lineWriter struct {
	mu      sync.Mutex
	partial []byte
	fn      func(string)
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.partial = append(w.partial, p...)
	for {
		i := bytes.IndexByte(w.partial, '\n')
		if i < 0 {
			return len(p), nil
		}
		w.fn(strings.TrimRight(string(w.partial[:i]), "\r"))
		w.partial = w.partial[i+1:]
	}
}

// tee writes to several writers.
func tee(ws ...io.Writer) io.Writer { return io.MultiWriter(ws...) }
