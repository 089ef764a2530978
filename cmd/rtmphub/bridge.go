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
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/rtmphub/rtmphub/bridge"
)

// bridgeSetting is one setting of rtmphub bridge: a flag, and the
// environment variable RTMPHUB_BRIDGE_<NAME> (flag > environment >
// default).
type bridgeSetting struct {
	flag, env, def, help string
	isBool               bool
}

var bridgeSettings = []bridgeSetting{
	{"listen", "RTMPHUB_BRIDGE_LISTEN", "127.0.0.1:1935", "local TCP address RTMP clients connect to", false},
	{"to", "RTMPHUB_BRIDGE_TO", "", "the hub: rtmpt://host[:80], rtmpts://host[:443], quic://host[:1935] (bytes on QUIC, ALPN rtmp-quic), roqr://host[:1935] (RTMP messages on QUIC, ALPN roqr), rtmps://host[:443] or rtmp://host[:1935]", false},
	{"insecure", "RTMPHUB_BRIDGE_INSECURE", "false", "accept any TLS certificate (rtmpts, rtmps, quic, roqr)", true},
	{"pin", "RTMPHUB_BRIDGE_PIN", "", "accept only the hub certificate with this SHA-256 (hex, as the hub logs it)", false},
	{"timeout", "RTMPHUB_BRIDGE_TIMEOUT", "10s", "longest connection set-up to the hub", false},
	{"roqr-datagrams", "RTMPHUB_BRIDGE_ROQR_DATAGRAMS", "false", "roqr://: offer QUIC DATAGRAMs; with a hub that offers them too, inter frames and audio frames travel in datagrams both ways (a lost one is dropped, not waited for)", true},
	{"log-level", "RTMPHUB_LOG_LEVEL", "info", "debug, info, warn or error", false},
	{"log-format", "RTMPHUB_LOG_FORMAT", "text", "text or json", false},
}

// runBridge is the bridge subcommand: local TCP RTMP clients carried to a
// hub over the transport of --to.
func runBridge(args []string, environ map[string]string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("rtmphub bridge", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	vals := make(map[string]*string)
	for _, s := range bridgeSettings {
		v := s.def
		if e, ok := environ[s.env]; ok {
			v = e
		}
		p := new(string)
		*p = v
		vals[s.flag] = p
		if s.isBool {
			fs.Var(boolString{p}, s.flag, s.help)
		} else {
			fs.StringVar(p, s.flag, v, s.help)
		}
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			bridgeUsage(stdout)
			return 0
		}
		fmt.Fprintln(stderr, "rtmphub bridge:", err)
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "rtmphub bridge: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	insecure, err := strconv.ParseBool(*vals["insecure"])
	if err != nil {
		fmt.Fprintln(stderr, "rtmphub bridge: bad RTMPHUB_BRIDGE_INSECURE / --insecure: want true or false")
		return 2
	}
	datagrams, err := strconv.ParseBool(*vals["roqr-datagrams"])
	if err != nil {
		fmt.Fprintln(stderr, "rtmphub bridge: bad RTMPHUB_BRIDGE_ROQR_DATAGRAMS / --roqr-datagrams: want true or false")
		return 2
	}
	timeout, err := time.ParseDuration(*vals["timeout"])
	if err != nil || timeout <= 0 {
		fmt.Fprintln(stderr, "rtmphub bridge: bad RTMPHUB_BRIDGE_TIMEOUT / --timeout: want a positive duration")
		return 2
	}
	cfg := &config{LogLevel: *vals["log-level"], LogFormat: *vals["log-format"]}
	var level slog.Level
	if level.UnmarshalText([]byte(cfg.LogLevel)) != nil || cfg.LogFormat != "text" && cfg.LogFormat != "json" {
		fmt.Fprintln(stderr, "rtmphub bridge: bad --log-level or --log-format")
		return 2
	}
	if *vals["to"] == "" {
		fmt.Fprintln(stderr, "rtmphub bridge: RTMPHUB_BRIDGE_TO / --to is required (see rtmphub bridge --help)")
		return 2
	}
	if *vals["listen"] == "" { // as the server's settings: empty is not the default, and no off
		fmt.Fprintln(stderr, "rtmphub bridge: RTMPHUB_BRIDGE_LISTEN / --listen must not be empty: unset it for the default", bridgeSettings[0].def)
		return 2
	}
	if insecure && *vals["pin"] != "" {
		fmt.Fprintln(stderr, "rtmphub bridge: --insecure and --pin exclude each other")
		return 2
	}
	dcfg := bridge.DialConfig{URL: *vals["to"], Insecure: insecure, PinSHA256: *vals["pin"], Timeout: timeout}
	dcfg.QUIC.RoQRDatagrams = datagrams
	c := &bridge.Client{}
	if strings.HasPrefix(dcfg.URL, "roqr://") {
		c.DialRoQR, err = bridge.NewRoQRDialer(dcfg)
	} else {
		c.Dial, err = bridge.NewDialer(dcfg)
	}
	if err != nil {
		fmt.Fprintln(stderr, "rtmphub bridge: RTMPHUB_BRIDGE_TO / --to:", err)
		return 2
	}
	log := newLogger(cfg, stderr)
	ln, err := listen("tcp", *vals["listen"], "RTMPHUB_BRIDGE_LISTEN / --listen")
	if err != nil {
		fmt.Fprintln(stderr, "rtmphub bridge:", err)
		return 1
	}
	if datagrams && c.DialRoQR == nil {
		log.Warn("--roqr-datagrams applies to roqr:// hubs only; ignored", "to", *vals["to"])
	}
	log.Info("listening", "transport", "bridge", "addr", ln.Addr().String(), "to", *vals["to"])
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	c.Logger = log
	if err := c.Serve(ctx, ln); err != nil {
		fmt.Fprintln(stderr, "rtmphub bridge:", err)
		return 1
	}
	log.Info("stopped")
	return 0
}

func bridgeUsage(w io.Writer) {
	fmt.Fprintf(w, "Usage: rtmphub bridge --to URL [--listen ADDR] [--insecure | --pin SHA256]\n\n"+
		"Carries each local TCP RTMP connection to the hub over the transport of --to.\n\n"+
		"Settings (flag > environment > default):\n")
	for _, s := range bridgeSettings {
		fmt.Fprintf(w, "  --%-14s %-29s default %-18q %s\n", s.flag, s.env, s.def, s.help)
	}
}

// boolString is a boolean flag kept as its text.
type boolString struct{ p *string }

func (b boolString) String() string {
	if b.p == nil {
		return ""
	}
	return *b.p
}
func (b boolString) Set(s string) error {
	if _, err := strconv.ParseBool(s); err != nil {
		return errors.New("want true or false")
	}
	*b.p = strings.ToLower(s)
	return nil
}
func (b boolString) IsBoolFlag() bool { return true }
