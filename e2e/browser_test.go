package e2e

// A headless Chromium driven over the DevTools protocol (chromedp), for the
// tests that play streams in a browser the way viewers will: HTTP-FLV and
// WebSocket-FLV through mpegts.js, LL-HLS through hls.js, and the console.
//
// One Chromium process serves the whole package: it starts with the first
// test that asks for it and is stopped when the package's tests end
// (stopBrowsers, from runMain). A start takes 0.3 to 0.8 s here, with a
// dozen processes; a tab costs little (three tabs each decode a 640×360
// 25 fps clip at full rate at once on this machine's two cores). Each test
// gets a browser context of its own (no cookies, storage or cache shared
// with another test) and each page a tab in a window of its own, so that no
// page is a hidden background tab, which Chromium may throttle.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// Bounds of the browser helpers.
const (
	browserStartTimeout = 30 * time.Second // process start → first tab attached
	browserStopGrace    = 5 * time.Second  // Browser.close → SIGKILL
	pageOpenTimeout     = 30 * time.Second // new tab + navigation until the load event
	evalTimeout         = 10 * time.Second // one page.eval
	clickTimeout        = 10 * time.Second // page.click, including the wait for the element
	shotTimeout         = 10 * time.Second // page.screenshot
)

// chromiumFlags are the switches Chromium runs with here (see
// /work/.library/env/machines/go.md): headless without a sandbox (tests
// run as root), no GPU, and no connection to Google's services, which this
// machine's closed network refuses many at a time. Muted media may start
// without a user gesture, and nothing throttles a page that has no focus.
func chromiumFlags() []chromedp.ExecAllocatorOption {
	return []chromedp.ExecAllocatorOption{
		chromedp.Flag("headless", "new"),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("autoplay-policy", "no-user-gesture-required"),
		chromedp.Flag("disable-background-timer-throttling", true),
		chromedp.Flag("disable-backgrounding-occluded-windows", true),
		chromedp.Flag("disable-renderer-backgrounding", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.WindowSize(1280, 800),
	}
}

// chromium is the package's Chromium process.
type chromium struct {
	pid      int
	proc     *os.Process // nil if it never started
	dataDir  string
	alloc    context.CancelFunc // ends the allocator: kills the process
	root     context.Context    // chromedp context of the first tab; parent of every test's
	rootStop context.CancelFunc
	out      *syncBuffer // Chromium's stdout and stderr
	started  time.Time
}

var (
	chromeMu sync.Mutex
	chrome   *chromium // nil until a test asks, or after it died
)

// browser is one test's view of Chromium: a browser context of its own.
type browser struct {
	proc *chromium
	ctx  context.Context // chromedp context in the test's browser context
}

// startBrowser returns Chromium for t, starting the package's process when
// there is none (or it died). The test's browser context and its tabs are
// closed when t ends; the process is killed when the package's tests end.
func startBrowser(t *testing.T) *browser {
	t.Helper()
	path := needTool(t, "chromium")
	proc, err := sharedChromium(path)
	if err != nil {
		t.Fatalf("chromium: %v", err)
	}
	return newBrowser(t, proc)
}

// startPrivateBrowser starts a Chromium process of t's own with extra
// switches added to chromiumFlags (such as a certificate to accept), so
// that the package's shared process, and the other tests, keep theirs. It
// costs a process start (0.3 to 0.8 s) and is killed when t ends.
func startPrivateBrowser(t *testing.T, extra ...chromedp.ExecAllocatorOption) *browser {
	t.Helper()
	path := needTool(t, "chromium")
	proc, err := launchChromium(path, extra...)
	if err != nil {
		t.Fatalf("chromium: %v", err)
	}
	t.Cleanup(proc.stop) // after the browser context's cleanup (LIFO)
	return newBrowser(t, proc)
}

// newBrowser makes t's browser context in proc.
func newBrowser(t *testing.T, proc *chromium) *browser {
	t.Helper()
	ctx, cancel := chromedp.NewContext(proc.root, chromedp.WithNewBrowserContext())
	// The first Run creates the browser context (and a blank tab in it)
	// with ctx, which then owns them: it must not carry a timeout.
	if err := bounded(browserStartTimeout, cancel, func() error {
		return chromedp.Do(ctx)
	}); err != nil {
		cancel()
		t.Fatalf("chromium: new browser context: %v\n%s", err, proc.outputTail())
	}
	t.Cleanup(cancel)
	return &browser{proc: proc, ctx: ctx}
}

// bounded runs fn and gives up after timeout, calling abort (which must
// make fn return) before it returns the timeout error.
func bounded(timeout time.Duration, abort func(), fn func() error) error {
	done := make(chan error, 1)
	go func() { done <- fn() }()
	select {
	case err := <-done:
		return err
	case <-time.After(timeout):
		abort()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
		}
		return fmt.Errorf("no answer within %v", timeout)
	}
}

// sharedChromium returns the running package Chromium or starts one.
func sharedChromium(path string) (*chromium, error) {
	chromeMu.Lock()
	defer chromeMu.Unlock()
	if chrome != nil {
		select {
		case <-chrome.root.Done(): // crashed or lost: start another
			chrome.stop()
			chrome = nil
		default:
			return chrome, nil
		}
	}
	c, err := launchChromium(path)
	if err != nil {
		return nil, err
	}
	chrome = c
	return c, nil
}

// launchChromium starts a Chromium process with chromiumFlags and extra.
func launchChromium(path string, extra ...chromedp.ExecAllocatorOption) (*chromium, error) {
	base := sharedDir
	if base == "" {
		base = os.TempDir()
	}
	dataDir, err := os.MkdirTemp(base, "chromium-profile-")
	if err != nil {
		return nil, err
	}
	if err := os.Mkdir(filepath.Join(dataDir, "xdg-runtime"), 0o700); err != nil {
		return nil, err
	}
	c := &chromium{dataDir: dataDir, out: &syncBuffer{}, started: time.Now()}
	opts := append(append(chromiumFlags(), extra...),
		chromedp.ExecPath(path),
		chromedp.UserDataDir(dataDir),
		// Debian's build always starts crashpad handlers, which leave the
		// process group and keep their "Crash Reports" under the XDG
		// config directory, not the profile; PulseAudio's client makes
		// a /tmp/pulse-* runtime directory without XDG_RUNTIME_DIR. Keep
		// all of it in the profile: out of $HOME and /tmp, and on the
		// handlers' command lines, where killProfileUsers finds them.
		chromedp.Env("XDG_CONFIG_HOME="+filepath.Join(dataDir, "xdg-config"),
			"XDG_CACHE_HOME="+filepath.Join(dataDir, "xdg-cache"),
			"XDG_RUNTIME_DIR="+filepath.Join(dataDir, "xdg-runtime")),
		chromedp.CombinedOutput(c.out),
		chromedp.ModifyCmdFunc(func(cmd *exec.Cmd) {
			// Its own process group, so that its helpers (zygotes,
			// renderers, GPU and network processes) die with it; killed by
			// the kernel if the thread that started it (locked by chromedp
			// for the process's life) ends.
			if cmd.SysProcAttr == nil {
				cmd.SysProcAttr = &syscall.SysProcAttr{}
			}
			cmd.SysProcAttr.Setpgid = true
			cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
		}),
	)
	allocCtx, allocCancel := chromedp.NewExecAllocator(context.Background(), opts...)
	c.alloc = allocCancel
	c.root, c.rootStop = chromedp.NewContext(allocCtx)
	err = bounded(browserStartTimeout, c.rootStop, func() error { return chromedp.Do(c.root) })
	if cc := chromedp.FromContext(c.root); cc != nil && cc.Browser != nil && cc.Browser.Process() != nil {
		c.proc = cc.Browser.Process()
		c.pid = c.proc.Pid
	}
	if err != nil {
		out := c.outputTail()
		c.stop()
		return nil, fmt.Errorf("start %s: %w\n%s", path, err, out)
	}
	fmt.Fprintf(os.Stderr, "e2e: chromium pid %d started in %v (profile %s)\n",
		c.pid, time.Since(c.started).Round(time.Millisecond), dataDir)
	return c, nil
}

// stop closes Chromium, then kills what is left of it: its process group
// while its leader runs (so the group ID cannot have been reused), then,
// by PID, any process still naming its profile directory.
func (c *chromium) stop() {
	if c.root != nil {
		// Browser.close, waiting up to browserStopGrace for the process
		// to end; then the context is canceled whatever happened.
		ctx, cancel := context.WithTimeout(c.root, browserStopGrace)
		_ = chromedp.Cancel(ctx)
		cancel()
		waitDone(c.rootStop, 10*time.Second)
	}
	// os.Process knows (by pidfd) whether the process was reaped:
	// Signal fails then, and nothing is sent to a reused PID.
	if c.proc != nil && c.proc.Signal(syscall.Signal(0)) == nil {
		_ = syscall.Kill(-c.pid, syscall.SIGKILL)
		_ = c.proc.Kill()
	}
	killProfileUsers(c.dataDir)
	if c.alloc != nil {
		waitDone(c.alloc, 10*time.Second) // the allocator reaps the process
	}
	_ = os.RemoveAll(c.dataDir)
}

// waitDone calls f, giving up after timeout.
func waitDone(f func(), timeout time.Duration) {
	done := make(chan struct{})
	go func() { f(); close(done) }()
	select {
	case <-done:
	case <-time.After(timeout):
	}
}

// killProfileUsers SIGKILLs, by PID, the processes whose command line names
// dir or a path in it (--user-data-dir=dir, crashpad's --database=dir/…):
// Chromium helpers that left its group. dir is a fresh temporary
// directory, so only processes this package started match.
func killProfileUsers(dir string) {
	if dir == "" {
		return
	}
	for range 3 {
		entries, _ := os.ReadDir("/proc")
		n := 0
		for _, e := range entries {
			pid, err := strconv.Atoi(e.Name())
			if err != nil || pid == os.Getpid() {
				continue
			}
			cmdline, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
			if err == nil && namesDir(string(cmdline), dir) {
				_ = syscall.Kill(pid, syscall.SIGKILL)
				n++
			}
		}
		if n == 0 {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// namesDir reports whether an argument of the NUL-separated cmdline is dir,
// a path under it, or a --flag=dir… switch.
func namesDir(cmdline, dir string) bool {
	for arg := range strings.SplitSeq(cmdline, "\x00") {
		if _, v, ok := strings.Cut(arg, "="); ok && strings.HasPrefix(arg, "--") {
			arg = v
		}
		if arg == dir || strings.HasPrefix(arg, dir+"/") {
			return true
		}
	}
	return false
}

func (c *chromium) outputTail() string {
	return "chromium output (tail):\n" + tailString(c.out.String(), 3000)
}

// stopBrowsers stops the package's Chromium; runMain calls it once the
// tests have run.
func stopBrowsers() {
	chromeMu.Lock()
	defer chromeMu.Unlock()
	if chrome != nil {
		if testing.Verbose() && os.Getenv("RTMPHUB_E2E_LOG") != "" {
			fmt.Fprintf(os.Stderr, "e2e: chromium pid %d, %s\n", chrome.pid, chrome.outputTail())
		}
		chrome.stop()
		chrome = nil
	}
}

// ---------------------------------------------------------------------------
// Pages

// consoleMsg is one thing a page reported: a console API call, an uncaught
// exception, an entry of the browser log (network and security errors,
// media errors…) or a failed request.
type consoleMsg struct {
	At     time.Time
	Kind   string // "console", "exception", "log" or "network"
	Level  string // "debug", "info", "log", "warning" or "error"
	Source string // console API type (log, error, assert…), log source (network, security…) or resource type
	Text   string
	URL    string
	Line   int64
}

func (m consoleMsg) String() string {
	s := fmt.Sprintf("[%s %s/%s] %s", m.Level, m.Kind, m.Source, m.Text)
	switch {
	case m.URL != "" && (m.Kind == "console" || m.Kind == "exception"):
		s += fmt.Sprintf(" (%s:%d)", m.URL, m.Line+1)
	case m.URL != "":
		s += " (" + m.URL + ")"
	}
	return s
}

// page is one tab.
type page struct {
	b      *browser
	url    string
	ctx    context.Context // the tab's chromedp context
	cancel context.CancelFunc

	mu   sync.Mutex
	msgs []consoleMsg
	reqs map[network.RequestID]string // request → URL, to name failed requests
}

// open opens pageURL in a new tab (in a window of its own) and waits for its
// load event. Everything the page reports from then on is collected; the
// tab is closed when t ends, and its messages are logged if t failed.
func (b *browser) open(t *testing.T, pageURL string) *page {
	t.Helper()
	p := &page{b: b, url: pageURL, reqs: map[network.RequestID]string{}}
	p.ctx, p.cancel = chromedp.NewContext(b.ctx, chromedp.WithListener(p.onEvent))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("page %s: %d console messages:\n%s", p.url, len(p.messages()), p.dump())
		}
		p.cancel()
	})
	// The first Run attaches the tab with p.ctx, which must carry no
	// timeout of its own (the tab lives as long as that context).
	if err := bounded(pageOpenTimeout, p.cancel, func() error { return chromedp.Do(p.ctx) }); err != nil {
		t.Fatalf("open tab for %s: %v\n%s", pageURL, err, b.proc.outputTail())
	}
	ctx, cancel := context.WithTimeout(p.ctx, pageOpenTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Navigate(pageURL)); err != nil {
		t.Fatalf("navigate to %s: %v\nconsole:\n%s", pageURL, err, p.dump())
	}
	return p
}

// onEvent runs on the tab's reading goroutine: it must be quick and must
// not call into chromedp.
func (p *page) onEvent(ev any) {
	var m consoleMsg
	switch ev := ev.(type) {
	case *runtime.EventConsoleAPICalled:
		m = consoleMsg{Kind: "console", Source: string(ev.Type), Text: consoleArgs(ev.Args)}
		switch ev.Type {
		case runtime.ConsoleAPICalledTypeError, runtime.ConsoleAPICalledTypeAssert:
			m.Level = "error"
		case runtime.ConsoleAPICalledTypeWarning:
			m.Level = "warning"
		case runtime.ConsoleAPICalledTypeDebug:
			m.Level = "debug"
		case runtime.ConsoleAPICalledTypeInfo:
			m.Level = "info"
		default:
			m.Level = "log"
		}
		if st := ev.StackTrace; st != nil && len(st.CallFrames) > 0 {
			m.URL, m.Line = st.CallFrames[0].URL, st.CallFrames[0].LineNumber
		}
	case *runtime.EventExceptionThrown:
		d := ev.ExceptionDetails
		m = consoleMsg{Kind: "exception", Level: "error", Source: "uncaught", Text: d.Text, URL: d.URL, Line: d.LineNumber}
		if d.Exception != nil {
			desc := d.Exception.Description
			if desc == "" {
				desc = string(d.Exception.Value)
			}
			desc, _, _ = strings.Cut(desc, "\n    at ")
			m.Text = strings.TrimSpace(d.Text + " " + desc)
		}
	case *log.EventEntryAdded:
		e := ev.Entry
		m = consoleMsg{Kind: "log", Level: string(e.Level), Source: string(e.Source), Text: e.Text, URL: e.URL, Line: e.LineNumber}
		switch {
		case e.Level == log.EntryLevelVerbose:
			m.Level = "debug"
		case e.Level == log.EntryLevelError && isFavicon(e.URL):
			// Chromium asks every origin for /favicon.ico on its own; a
			// 404 there is the browser's, not the page's error.
			m.Level = "warning"
		}
	case *network.EventRequestWillBeSent:
		if ev.Request != nil {
			p.mu.Lock()
			p.reqs[ev.RequestID] = ev.Request.URL
			p.mu.Unlock()
		}
		return
	case *network.EventLoadingFailed:
		// A canceled request (a player aborting a fetch it no longer
		// needs, a page closing) is not a failure.
		m = consoleMsg{Kind: "network", Level: "error", Source: string(ev.Type), Text: ev.ErrorText}
		if ev.Canceled {
			m.Level = "info"
			m.Text += " (canceled)"
		}
		if ev.BlockedReason != "" {
			m.Text += " blocked: " + string(ev.BlockedReason)
		}
		if ev.CorsErrorStatus != nil {
			m.Text += fmt.Sprintf(" CORS: %s %s", ev.CorsErrorStatus.CorsError, ev.CorsErrorStatus.FailedParameter)
		}
		p.mu.Lock()
		m.URL = p.reqs[ev.RequestID]
		p.mu.Unlock()
		if m.Level == "error" && isFavicon(m.URL) {
			m.Level = "warning"
		}
	default:
		return
	}
	m.At = time.Now()
	p.mu.Lock()
	p.msgs = append(p.msgs, m)
	p.mu.Unlock()
}

// isFavicon reports whether u is an origin's /favicon.ico.
func isFavicon(u string) bool {
	pu, err := url.Parse(u)
	return err == nil && pu.Path == "/favicon.ico"
}

// consoleArgs renders console API arguments roughly as DevTools does.
func consoleArgs(args []*runtime.RemoteObject) string {
	parts := make([]string, 0, len(args))
	for _, a := range args {
		switch {
		case a == nil:
		case a.Type == runtime.RemoteObjectTypeString:
			var s string
			if json.Unmarshal(a.Value, &s) == nil {
				parts = append(parts, s)
			}
		case len(a.Value) > 0:
			parts = append(parts, string(a.Value))
		case a.UnserializableValue != "":
			parts = append(parts, string(a.UnserializableValue))
		case a.Description != "":
			parts = append(parts, a.Description)
		default:
			parts = append(parts, string(a.Type))
		}
	}
	return strings.Join(parts, " ")
}

// messages returns everything the page reported so far, in order.
func (p *page) messages() []consoleMsg {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]consoleMsg(nil), p.msgs...)
}

// errors returns the error-level messages: console.error and failed
// console.assert calls, uncaught exceptions and unhandled rejections,
// error entries of the browser log (a failed resource load, a CORS or
// media error) and requests that failed without being canceled. A failed
// /favicon.ico, which Chromium requests by itself, is only a warning.
func (p *page) errors() []consoleMsg {
	var errs []consoleMsg
	for _, m := range p.messages() {
		if m.Level == "error" {
			errs = append(errs, m)
		}
	}
	return errs
}

// noErrors fails t when the page reported an error-level message.
func (p *page) noErrors(t *testing.T) {
	t.Helper()
	if errs := p.errors(); len(errs) > 0 {
		var b strings.Builder
		for _, m := range errs {
			b.WriteString(m.String())
			b.WriteByte('\n')
		}
		t.Errorf("page %s reported %d errors:\n%s", p.url, len(errs), b.String())
	}
}

func (p *page) dump() string {
	var b strings.Builder
	for _, m := range p.messages() {
		b.WriteString("  ")
		b.WriteString(m.String())
		b.WriteByte('\n')
	}
	return b.String()
}

// evalErr evaluates js (an expression; a promise is awaited) and decodes
// its JSON value into out, unless out is nil.
func (p *page) evalErr(js string, out any, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(p.ctx, timeout)
	defer cancel()
	raw, err := chromedp.Run(ctx, chromedp.Evaluate[[]byte](js, chromedp.EvalAwaitPromise))
	if err != nil {
		return err
	}
	if out == nil {
		return nil
	}
	if len(raw) == 0 {
		raw = []byte("null") // undefined
	}
	return json.Unmarshal(raw, out)
}

// eval evaluates the expression js in the page, awaiting a promise, and
// stores its JSON value in out (nil: ignore it). An exception or a result
// that does not fit out fails t.
func (p *page) eval(t *testing.T, js string, out any) {
	t.Helper()
	if err := p.evalErr(js, out, evalTimeout); err != nil {
		t.Fatalf("eval %s: %v", abbrev(js), err)
	}
}

// waitFor polls the boolean expression js every 100 ms until it is true,
// and fails t (after a screenshot) when timeout passes first. Exceptions
// count as false: the page may not have built what js looks at yet.
func (p *page) waitFor(t *testing.T, js string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last string
	for {
		left := time.Until(deadline)
		var ok bool
		err := p.evalErr("Boolean("+js+")", &ok, min(max(left, 100*time.Millisecond), evalTimeout))
		if err == nil && ok {
			return
		}
		if err != nil {
			last = err.Error()
		} else {
			last = "false"
		}
		if time.Now().After(deadline) {
			p.shotOnFailure(t, "waitFor-timeout")
			t.Fatalf("waitFor %s: still %s after %v\nconsole:\n%s", abbrev(js), last, timeout, p.dump())
		}
		time.Sleep(min(100*time.Millisecond, max(time.Until(deadline), 0)))
	}
}

// click clicks (with the mouse, at its centre) the first element matching
// the CSS selector, waiting up to clickTimeout for it to be visible.
func (p *page) click(t *testing.T, selector string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, clickTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(selector))); err != nil {
		p.shotOnFailure(t, "click-failed")
		t.Fatalf("click %q: %v", selector, err)
	}
}

// screenshot saves the visible part of the page as <name>.png in t's
// artifact directory and returns the path. That directory is kept only
// with `go test -artifacts` (under -outputdir); otherwise it is removed
// when t ends.
func (p *page) screenshot(t *testing.T, name string) string {
	t.Helper()
	path, err := p.saveScreenshot(t, name)
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	t.Logf("screenshot: %s", path)
	return path
}

func (p *page) saveScreenshot(t *testing.T, name string) (string, error) {
	ctx, cancel := context.WithTimeout(p.ctx, shotTimeout)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		return "", err
	}
	path := filepath.Join(t.ArtifactDir(), safeName(name)+".png")
	return path, os.WriteFile(path, png, 0o644)
}

// shotOnFailure is a best-effort screenshot for a failure message.
func (p *page) shotOnFailure(t *testing.T, name string) {
	if path, err := p.saveScreenshot(t, name); err == nil {
		t.Logf("screenshot: %s", path)
	} else {
		t.Logf("screenshot %s failed: %v", name, err)
	}
}

var unsafeChars = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

func safeName(s string) string { return unsafeChars.ReplaceAllString(s, "_") }

func abbrev(js string) string {
	js = strings.Join(strings.Fields(js), " ")
	if len(js) > 200 {
		js = js[:200] + "…"
	}
	return js
}

// ---------------------------------------------------------------------------
// Video

// videoSample is what the page's first <video> shows at one moment.
type videoSample struct {
	Frames  int     `json:"frames"`  // getVideoPlaybackQuality().totalVideoFrames
	Dropped int     `json:"dropped"` // droppedVideoFrames
	Time    float64 `json:"time"`    // currentTime
	Paused  bool    `json:"paused"`
	Ready   int     `json:"ready"` // readyState
	Error   string  `json:"error"` // MediaError message, if any
}

const videoSampleJS = `(() => {
	const v = document.querySelector('video');
	if (!v) return null;
	const q = v.getVideoPlaybackQuality();
	return {frames: q.totalVideoFrames, dropped: q.droppedVideoFrames, time: v.currentTime,
		paused: v.paused, ready: v.readyState,
		error: v.error ? (v.error.code + ': ' + v.error.message) : ''};
})()`

func (p *page) videoSample(t *testing.T) videoSample {
	t.Helper()
	var s *videoSample
	p.eval(t, videoSampleJS, &s)
	if s == nil {
		t.Fatalf("page %s has no <video>", p.url)
	}
	return *s
}

// videoStats returns the frames the page's first <video> has decoded
// (getVideoPlaybackQuality().totalVideoFrames) and its currentTime.
func (p *page) videoStats(t *testing.T) (frames int, currentTime float64) {
	t.Helper()
	s := p.videoSample(t)
	return s.Frames, s.Time
}

// watchPlayback samples the page's first <video> every 250 ms for dur and
// returns the frames decoded and the media time advanced in that span. It
// logs the span's dropped frames and its longest stall (no advance of
// currentTime).
func (p *page) watchPlayback(t *testing.T, dur time.Duration) (frames int, advanced float64) {
	t.Helper()
	first := p.videoSample(t)
	start := time.Now()
	last, lastMove, stall := first, start, time.Duration(0)
	for time.Since(start) < dur {
		time.Sleep(min(250*time.Millisecond, dur-time.Since(start)))
		s := p.videoSample(t)
		now := time.Now()
		if s.Time != last.Time {
			lastMove = now
		}
		stall = max(stall, now.Sub(lastMove))
		last = s
	}
	took := time.Since(start)
	frames, advanced = last.Frames-first.Frames, last.Time-first.Time
	t.Logf("playback over %v: %d frames decoded (%.1f/s), %d dropped, currentTime %.3f → %.3f (+%.3f s), longest stall %v, paused=%v readyState=%d%s",
		took.Round(time.Millisecond), frames, float64(frames)/took.Seconds(), last.Dropped-first.Dropped,
		first.Time, last.Time, advanced, stall.Round(time.Millisecond), last.Paused, last.Ready,
		map[bool]string{true: " error=" + last.Error, false: ""}[last.Error != ""])
	return frames, advanced
}
