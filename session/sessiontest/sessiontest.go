// Package sessiontest runs a session core for tests of the core and of the
// packages built on it (admin API, scripts), and drives it as RTMP clients
// do: dial, publish, play, and wait for what a test expects to happen.
//
// Start serves the core on a loopback TCP port; StartPipe serves it over
// in-memory connections, for tests inside a testing/synctest bubble.
package sessiontest

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/rtmphub/rtmphub/session"
	"github.com/rtmphub/rtmphub/tunnel"
)

// LogBuffer collects a server's log for assertions; safe for concurrent use.
type LogBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *LogBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *LogBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// QuietLogger logs nothing: for benchmarks, where a debug log would cost
// more than what they measure.
func QuietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// newServer makes the server of Start and StartPipe: mk gets the server's
// logger and returns the configuration; an empty DataDir becomes a
// temporary folder.
func newServer(t testing.TB, mk func(log *slog.Logger) session.Config) (*session.Server, *slog.Logger, *LogBuffer) {
	logs := &LogBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cfg := mk(log)
	if cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
	}
	srv := session.NewServer(cfg, log)
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(logs.String())
		}
	})
	return srv, log, logs
}

// Start runs a core serving RTMP on 127.0.0.1:0 until the test ends and
// returns its rtmp:// base URL, the server and its debug log (printed when
// the test fails). mk gets the server's logger, for settings that log on
// their own (an Application), and returns the configuration; an empty
// DataDir becomes a temporary folder.
func Start(t testing.TB, mk func(log *slog.Logger) session.Config) (string, *session.Server, *LogBuffer) {
	t.Helper()
	srv, log, logs := newServer(t, mk)
	return serve(t, srv, log), srv, logs
}

// Serve serves srv on 127.0.0.1:0 until the test ends and returns its
// rtmp:// base URL; the listener logs nothing.
func Serve(t testing.TB, srv *session.Server) string {
	t.Helper()
	return serve(t, srv, QuietLogger())
}

func serve(t testing.TB, srv *session.Server, log *slog.Logger) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		// StartConn, as rtmphub serve does: a client's session goes on
		// after the handler returns, until Shutdown.
		tunnel.Serve(ctx, ln, "rtmp", log, func(ctx context.Context, nc net.Conn, proto string) {
			srv.StartConn(ctx, nc, session.ConnInfo{Protocol: proto})
		})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Error("server did not stop")
		}
		stop, stopped := context.WithTimeout(context.Background(), 5*time.Second)
		defer stopped()
		if err := srv.Shutdown(stop); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return "rtmp://" + ln.Addr().String()
}

// Config returns an mk for Start that ignores the logger.
func Config(cfg session.Config) func(*slog.Logger) session.Config {
	return func(*slog.Logger) session.Config { return cfg }
}
