package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"reflect"
	"strconv"
	"strings"

	"github.com/rtmphub/rtmphub/tunnel"
)

// The kinds of setting: each parses and checks its own text
// (encoding.TextUnmarshaler), so a row says what it holds and its checks
// come with it. A string row names its kind in its kind tag and keeps its
// plain type (the rest of the command reads it as a string); a byte size
// is a type of its own.
var kinds = map[string]reflect.Type{
	"address":           reflect.TypeFor[address](),
	"log-level":         reflect.TypeFor[logLevel](),
	"log-format":        reflect.TypeFor[logFormat](),
	"cidrs":             reflect.TypeFor[cidrList](),
	"http-url":          reflect.TypeFor[httpURL](),
	"rtmp-url":          reflect.TypeFor[rtmpURL](),
	"session-id-prefix": reflect.TypeFor[sessionIDPrefix](),
}

// address is a TCP or UDP listen address, host:port (host may be empty:
// all interfaces). Off is the empty address, for the rows that have it.
type address string

func (a *address) UnmarshalText(b []byte) error {
	if _, _, err := net.SplitHostPort(string(b)); err != nil {
		return errors.New("want host:port or :port")
	}
	*a = address(b)
	return nil
}

// logLevel is one of slog's levels by name.
type logLevel string

func (l *logLevel) UnmarshalText(b []byte) error {
	var level slog.Level
	if level.UnmarshalText(b) != nil {
		return errors.New("want debug, info, warn or error")
	}
	*l = logLevel(b)
	return nil
}

// logFormat is text or json.
type logFormat string

func (f *logFormat) UnmarshalText(b []byte) error {
	if s := string(b); s != "text" && s != "json" {
		return errors.New("want text or json")
	}
	*f = logFormat(b)
	return nil
}

// cidrList is comma-separated CIDRs or addresses (tunnel.ParsePrefixes).
type cidrList string

func (c *cidrList) UnmarshalText(b []byte) error {
	if _, err := tunnel.ParsePrefixes(string(b)); err != nil {
		return err
	}
	*c = cidrList(b)
	return nil
}

// httpURL is an http:// or https:// URL with a host.
type httpURL string

func (u *httpURL) UnmarshalText(b []byte) error {
	p, err := url.Parse(string(b))
	if err != nil || p.Scheme != "http" && p.Scheme != "https" || p.Host == "" {
		return errors.New("want an http:// or https:// URL")
	}
	*u = httpURL(b)
	return nil
}

// rtmpURL is rtmp://host[:port].
type rtmpURL string

func (u *rtmpURL) UnmarshalText(b []byte) error {
	p, err := url.Parse(string(b))
	if err != nil || p.Scheme != "rtmp" || p.Hostname() == "" {
		return errors.New("want rtmp://host[:port]")
	}
	*u = rtmpURL(b)
	return nil
}

// sessionIDPrefix starts every RTMPT session id (tunnel.ValidSessionIDPrefix).
type sessionIDPrefix string

func (p *sessionIDPrefix) UnmarshalText(b []byte) error {
	if !tunnel.ValidSessionIDPrefix(string(b)) {
		return fmt.Errorf("must be at most %d characters [A-Za-z0-9]", tunnel.MaxSessionIDPrefix)
	}
	*p = sessionIDPrefix(b)
	return nil
}

// byteSize is a number of bytes, written plain (8388608) or with a binary
// unit (8MiB, 64KiB, 1GiB; the unit in any case).
type byteSize int

func (s *byteSize) UnmarshalText(b []byte) error {
	text := string(b)
	mult := 1
	for _, u := range []struct {
		suffix string
		mult   int
	}{{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30}} {
		if strings.HasSuffix(strings.ToLower(text), u.suffix) {
			text, mult = text[:len(text)-len(u.suffix)], u.mult
			break
		}
	}
	n, err := strconv.Atoi(strings.TrimSpace(text))
	if err != nil || n < 0 || n > int(^uint(0)>>1)/mult {
		return errors.New("want a number of bytes such as 65536, 64KiB or 8MiB")
	}
	*s = byteSize(n * mult)
	return nil
}
