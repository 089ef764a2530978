// Command rtmphub is the rtmphub server: a Flash Media Server successor
// for RTMP clients. Subcommands: serve (the default), version, help.
//
// The runtime's default updatemaxprocs=1 stays: its once-a-second check
// of the cgroup CPU limit runs only while sysmon is awake for something
// else, so it never wakes an idle hub (measured: bench/memory-idle.txt),
// and it follows a container's CPU limit resized in place.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
)

// serveGCPercent is the collector's GOGC for a serving hub, unless the
// environment sets GOGC. Most of a live player's memory was not its own
// state but the heap's headroom over the live heap: with Go's default of
// 100 the heap grows to twice what is live before a collection, and the
// pages it grows into stay in RSS. Measured with rtmpbench, pinned, the
// same binary with and without (bench/gogc-50.txt): RSS per player 30.3
// -> 16.3-16.6 KiB at 100 players, 16.0-16.6 -> 12.8-13.1 at 1000, 15.7
// -> 12.4 at 3000, and CPU per player the same within the rounds' noise
// (the live path allocates little: messages are shared, buffers pooled).
const serveGCPercent = 50

func main() {
	os.Exit(run(os.Args[1:], environ(), os.Stdout, os.Stderr))
}

func environ() map[string]string {
	m := make(map[string]string)
	for _, kv := range os.Environ() {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return m
}

func run(args []string, env map[string]string, stdout, stderr io.Writer) int {
	cmd := "serve"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		cfg, err := loadConfig(args, env, stdout)
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		if err != nil {
			fmt.Fprintln(stderr, "rtmphub:", strings.ReplaceAll(err.Error(), "\n", "; "))
			return 2
		}
		if _, set := env["GOGC"]; !set {
			debug.SetGCPercent(serveGCPercent)
		}
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		if err := serve(ctx, cfg, newLogger(cfg, stderr)); err != nil {
			fmt.Fprintln(stderr, "rtmphub:", err)
			return 1
		}
		return 0
	case "bridge":
		return runBridge(args, env, stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "rtmphub", version())
		return 0
	case "help", "-h", "--help":
		usage(stdout)
		return 0
	default:
		fmt.Fprintf(stderr, "rtmphub: unknown command %q (see rtmphub help)\n", cmd)
		return 2
	}
}

func usage(w io.Writer) {
	fmt.Fprintf(w, `rtmphub %s — a Flash Media Server successor: RTMP live streaming hub.

Usage:
  rtmphub [serve] [flags]   run the server (the default)
  rtmphub bridge --to URL   carry local RTMP clients to a hub over RTMPT, QUIC... (bridge --help)
  rtmphub version           print the version
  rtmphub help              this text

`, version())
	printSettings(w)
}

// version is set at link time (-X main.buildVersion=...) or read from the
// module build information.
var buildVersion string

func version() string {
	if buildVersion != "" {
		return buildVersion
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			return bi.Main.Version
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				return "devel-" + s.Value[:12]
			}
		}
	}
	return "devel"
}

func newLogger(cfg *config, w io.Writer) *slog.Logger {
	var level slog.Level
	level.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
