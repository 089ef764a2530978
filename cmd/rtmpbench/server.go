package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Server kinds.
const (
	kindRtmphub  = "rtmphub"
	kindNginx    = "nginx"
	kindExternal = "external"
	// -server aa: the same rtmphub twice per step, to show the noise.
	kindRtmphubA = "A"
	kindRtmphubB = "B"
)

// serverConfig is how the bench starts servers.
type serverConfig struct {
	rtmphubBin   string   // built from ./cmd/rtmphub when empty
	rtmphubArgs  []string // {datadir} and {addr} are substituted
	rtmphubArgsB []string // added for kindRtmphubB (-rtmphub-args-b)
	nginxBin     string
	nginxModule  string
	externalAddr string
	externalPID  int
	startTimeout time.Duration
	tmpRoot      string // a directory for this run's files
	cpus         []int  // -server-cpus: the servers' affinity; none: not pinned
}

// serverProc is one running server under test.
type serverProc struct {
	kind string
	addr string
	pid  int // 0 when unknown (external server without -server-pid)
	dir  string
	log  string // path of its captured output
	cpus []int  // the affinity it is started with; none: as the tool's

	cmd     *exec.Cmd
	exited  chan struct{} // closed when the process has been waited for
	waitErr error
}

// startServer starts a server of the given kind and waits until it accepts
// RTMP connections.
func startServer(ctx context.Context, kind string, cfg *serverConfig) (*serverProc, error) {
	switch kind {
	case kindExternal:
		s := &serverProc{kind: kind, addr: cfg.externalAddr, pid: cfg.externalPID}
		if err := waitAccepting(ctx, s.addr, cfg.startTimeout, nil); err != nil {
			return nil, err
		}
		return s, nil
	case kindRtmphub, kindRtmphubA:
		return startRtmphub(ctx, cfg, kind, nil, "")
	case kindRtmphubB:
		return startRtmphub(ctx, cfg, kind, cfg.rtmphubArgsB, "")
	case kindNginx:
		return startNginx(ctx, cfg)
	}
	return nil, fmt.Errorf("unknown server kind %q", kind)
}

func (s *serverProc) String() string {
	if s.pid != 0 {
		return fmt.Sprintf("%s at %s (pid %d)", s.kind, s.addr, s.pid)
	}
	return fmt.Sprintf("%s at %s", s.kind, s.addr)
}

// exec starts the server process with its output going to s.log. Every
// line of output is also handed to onLine (when not nil), from one
// goroutine, until the process ends.
func (s *serverProc) exec(bin string, args []string, onLine func(string)) error {
	f, err := os.Create(s.log)
	if err != nil {
		return err
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = s.dir
	cmd.Stdout = f
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	var pr *io.PipeReader
	var pw *io.PipeWriter
	if onLine != nil {
		pr, pw = io.Pipe()
		cmd.Stderr = io.MultiWriter(f, pw)
	} else {
		cmd.Stderr = f
	}
	if err := startPinned(cmd, s.cpus); err != nil {
		f.Close()
		return err
	}
	s.cmd, s.pid, s.exited = cmd, cmd.Process.Pid, make(chan struct{})
	go func() {
		s.waitErr = cmd.Wait()
		f.Close()
		if pw != nil {
			pw.Close()
		}
		close(s.exited)
	}()
	if onLine != nil {
		go func() {
			sc := bufio.NewScanner(pr)
			sc.Buffer(make([]byte, 64<<10), 1<<20)
			for sc.Scan() {
				onLine(sc.Text())
			}
			io.Copy(io.Discard, pr) // a line too long: keep draining
		}()
	}
	return nil
}

// stop ends the server: SIGTERM, then SIGKILL after 5 seconds.
func (s *serverProc) stop() error {
	if s.cmd == nil {
		return nil
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(5 * time.Second):
		s.cmd.Process.Kill()
		<-s.exited
		return fmt.Errorf("%s did not exit within 5s of SIGTERM; killed", s.kind)
	}
	return nil
}

// tail returns the last lines of the server's captured output.
func (s *serverProc) tail(n int) string {
	if s.log == "" {
		return ""
	}
	b, err := os.ReadFile(s.log)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// fail wraps a start-up error with the end of the server's output.
func (s *serverProc) fail(err error) error {
	if t := s.tail(15); t != "" {
		return fmt.Errorf("%w; its output ends:\n%s", err, t)
	}
	return err
}

// buildRtmphub builds ./cmd/rtmphub into dir.
func buildRtmphub(ctx context.Context, dir string) (string, error) {
	bin := filepath.Join(dir, "rtmphub")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/rtmphub")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build ./cmd/rtmphub (run from the module root, or pass -rtmphub-bin): %w\n%s", err, out)
	}
	return bin, nil
}

// listeningLine is rtmphub's JSON log line announcing a listener.
type listeningLine struct {
	Msg       string `json:"msg"`
	Transport string `json:"transport"`
	Addr      string `json:"addr"`
}

// startRtmphub starts rtmphub with cfg.rtmphubArgs and then extra, names
// it kind in reports and waits until it accepts RTMP connections and, when
// waitMsg is not empty, has logged a line with that msg (within
// cfg.startTimeout, or a minute if that is longer).
func startRtmphub(ctx context.Context, cfg *serverConfig, kind string, extra []string, waitMsg string) (*serverProc, error) {
	dir, err := os.MkdirTemp(cfg.tmpRoot, kind+"-")
	if err != nil {
		return nil, err
	}
	s := &serverProc{kind: kind, dir: dir, log: filepath.Join(dir, "rtmphub.log"), cpus: cfg.cpus}
	data := filepath.Join(dir, "data")
	if err := os.Mkdir(data, 0o755); err != nil {
		return nil, err
	}
	// {addr} means: a port picked here, readiness seen by connecting. With
	// a literal address (the default 127.0.0.1:0) the bound address is read
	// from the "listening" log line.
	var fixedAddr string
	args := make([]string, len(cfg.rtmphubArgs))
	for i, a := range cfg.rtmphubArgs {
		if strings.Contains(a, "{addr}") && fixedAddr == "" {
			if fixedAddr, err = freePort(); err != nil {
				return nil, err
			}
		}
		a = strings.ReplaceAll(a, "{datadir}", data)
		args[i] = strings.ReplaceAll(a, "{addr}", fixedAddr)
	}
	args = append(args, extra...)
	addrc := make(chan string, 1)
	waitc := make(chan struct{})
	var once, waitOnce sync.Once
	onLine := func(line string) {
		var l listeningLine
		if json.Unmarshal([]byte(line), &l) != nil {
			return
		}
		if l.Msg == "listening" && l.Transport == "rtmp" && l.Addr != "" {
			once.Do(func() { addrc <- l.Addr })
		}
		if waitMsg != "" && l.Msg == waitMsg {
			waitOnce.Do(func() { close(waitc) })
		}
	}
	if err := s.exec(cfg.rtmphubBin, args, onLine); err != nil {
		return nil, err
	}
	if fixedAddr != "" {
		s.addr = fixedAddr
	} else {
		t := time.NewTimer(cfg.startTimeout)
		defer t.Stop()
		select {
		case s.addr = <-addrc:
		case <-s.exited:
			return nil, s.fail(fmt.Errorf("rtmphub exited before listening: %v", s.waitErr)) //nolint:errorlint // nil for exit status 0, which %w would print as %!w(<nil>)
		case <-t.C:
			s.stop()
			return nil, s.fail(fmt.Errorf("rtmphub logged no {\"msg\":\"listening\",\"transport\":\"rtmp\"} line within %v (is --log-level info set?)", cfg.startTimeout))
		case <-ctx.Done():
			s.stop()
			return nil, ctx.Err()
		}
	}
	if err := waitAccepting(ctx, s.addr, cfg.startTimeout, s.exited); err != nil {
		s.stop()
		return nil, s.fail(fmt.Errorf("rtmphub: %w", err))
	}
	if waitMsg != "" {
		d := max(cfg.startTimeout, time.Minute)
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-waitc:
		case <-s.exited:
			return nil, s.fail(fmt.Errorf("rtmphub exited before logging %q: %v", waitMsg, s.waitErr)) //nolint:errorlint // see above
		case <-t.C:
			s.stop()
			return nil, s.fail(fmt.Errorf("rtmphub logged no %q within %v", waitMsg, d))
		case <-ctx.Done():
			s.stop()
			return nil, ctx.Err()
		}
	}
	return s, nil
}

// nginxConf is the nginx-rtmp configuration: one single-process worker, a
// live application, a vod application playing the files of a folder
// (-protocol vod, vod.go), chunk size 4096 as FMS uses. The keepalive ping is off:
// the bench's players stop parsing messages after the first keyframe and
// cannot answer pings, and nginx-rtmp would drop them 90 s after they last
// sent anything (ping 60s + ping_timeout 30s).
const nginxConf = `load_module %s;
daemon off;
master_process off;
worker_processes 1;
error_log %s warn;
pid %s;
events {
    worker_connections 10000;
}
rtmp {
    server {
        listen %s;
        chunk_size 4096;
        ping 0;
        application %s {
            live on;
        }
        application vod {
            play %s;
        }
    }
}
`

func writeNginxConf(path, module, dir, addr, app string) error {
	conf := fmt.Sprintf(nginxConf, module, filepath.Join(dir, "error.log"), filepath.Join(dir, "nginx.pid"), addr, app, nginxVODDir(dir))
	return os.WriteFile(path, []byte(conf), 0o644)
}

func startNginx(ctx context.Context, cfg *serverConfig) (*serverProc, error) {
	dir, err := os.MkdirTemp(cfg.tmpRoot, "nginx-")
	if err != nil {
		return nil, err
	}
	s := &serverProc{kind: kindNginx, dir: dir, log: filepath.Join(dir, "stderr.log"), cpus: cfg.cpus}
	if s.addr, err = freePort(); err != nil {
		return nil, err
	}
	conf := filepath.Join(dir, "nginx.conf")
	if err := writeNginxConf(conf, cfg.nginxModule, dir, s.addr, benchApp); err != nil {
		return nil, err
	}
	// -e: the error log before the configuration is read (default would be
	// /var/log/nginx/error.log).
	args := []string{"-c", conf, "-p", dir + "/", "-e", filepath.Join(dir, "error.log")}
	if err := s.exec(cfg.nginxBin, args, nil); err != nil {
		return nil, err
	}
	if err := waitAccepting(ctx, s.addr, cfg.startTimeout, s.exited); err != nil {
		s.stop()
		b, _ := os.ReadFile(filepath.Join(dir, "error.log"))
		return nil, s.fail(fmt.Errorf("nginx: %w\nerror.log: %s", err, b))
	}
	return s, nil
}

// freePort returns a loopback address with a port that was free a moment
// ago.
func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// waitAccepting dials addr until it accepts, the process exits (exited
// closes) or timeout passes.
func waitAccepting(ctx context.Context, addr string, timeout time.Duration, exited <-chan struct{}) error {
	deadline := time.Now().Add(timeout)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not accepting after %v: %w", addr, timeout, err)
		}
		select {
		case <-exited:
			return errors.New("process exited before accepting connections")
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}
