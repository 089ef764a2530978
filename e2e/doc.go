// Package e2e holds end-to-end tests: they build the real rtmphub binary,
// start it on a loopback port and drive it with independent clients (ffmpeg,
// rtmpdump, GStreamer's rtmp2src and rtmp2sink, tshark and go-rtmp's chunk layer).
//
// Run with `go test ./e2e/` (or `make test`). Useful environment:
//
//	CI=1                  a missing external tool fails the test instead of skipping it
//	RTMPHUB_E2E_BIN=path  use a prebuilt server binary instead of building ./cmd/rtmphub
//	RTMPHUB_E2E_RACE=1    build the server with -race (slower; RSS bounds are relaxed)
//	RTMPHUB_E2E_LOG=1     with -v, print every server log, not only failing tests,
//	                      and Chromium's output
//
// The browser tests (browser_test.go) drive Debian's headless chromium
// through chromedp: one Chromium process for the package, a browser
// context per test (startBrowser), a tab per page (browser.open) whose
// console messages, uncaught exceptions and failed requests are collected
// (page.errors). Their screenshots go to t.ArtifactDir(): keep them with
// `go test -artifacts -outputdir DIR`.
//
// Servers bind 127.0.0.1 port 0 only (RTMP and RTMPT) and get their settings
// from flags alone: RTMPHUB_* variables are not passed to them.
//
// `go test -short` skips the package.
package e2e
