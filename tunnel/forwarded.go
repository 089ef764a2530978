package tunnel

import (
	"fmt"
	"net/netip"
	"strings"
)

// ParsePrefixes parses a comma-separated list of CIDR prefixes or single
// addresses ("10.0.0.0/8, 192.168.1.7, ::1"); an empty string is an empty
// list.
func ParsePrefixes(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if strings.Contains(f, "/") {
			p, err := netip.ParsePrefix(f)
			if err != nil {
				return nil, fmt.Errorf("bad CIDR %q: %w", f, err)
			}
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(f)
		if err != nil {
			return nil, fmt.Errorf("bad address %q: %w", f, err)
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

func trustedAddr(a netip.Addr, trusted []netip.Prefix) bool {
	a = a.Unmap()
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// clientIP decides the client's address of an HTTP request that came from
// peer. Only when peer is a trusted proxy are the forwarding headers
// believed: the Forwarded header's for= parameters when there is one, else
// X-Forwarded-For. The list is read from the right (the hop nearest to us)
// and trusted proxies are skipped; the first address that is not a trusted
// proxy is the client. fromHeader reports whether it came from a header.
func clientIP(peer netip.Addr, trusted []netip.Prefix, forwarded, xff []string) (ip netip.Addr, fromHeader bool) {
	peer = peer.Unmap()
	if len(trusted) == 0 || !trustedAddr(peer, trusted) {
		return peer, false
	}
	var hops []string
	if len(forwarded) > 0 {
		hops = forwardedFor(forwarded)
	} else {
		for _, h := range xff {
			for _, f := range strings.Split(h, ",") {
				hops = append(hops, strings.TrimSpace(f))
			}
		}
	}
	found := false
	for i := len(hops) - 1; i >= 0; i-- {
		a, ok := parseHop(hops[i])
		if !ok {
			break // an unreadable hop: nothing left of it can be believed
		}
		ip, found = a, true
		if !trustedAddr(a, trusted) {
			return a, true
		}
	}
	if found {
		return ip, true
	}
	return peer, false
}

// forwardedFor returns the for= values of Forwarded headers (RFC 7239), in
// order, one per element.
func forwardedFor(headers []string) []string {
	var out []string
	for _, h := range headers {
		for _, elem := range splitQuoted(h, ',') {
			for _, pair := range splitQuoted(elem, ';') {
				k, v, ok := strings.Cut(strings.TrimSpace(pair), "=")
				if ok && strings.EqualFold(strings.TrimSpace(k), "for") {
					out = append(out, strings.Trim(strings.TrimSpace(v), `"`))
				}
			}
		}
	}
	return out
}

// splitQuoted splits s at sep outside double quotes.
func splitQuoted(s string, sep byte) []string {
	var out []string
	quoted := false
	start := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '"':
			quoted = !quoted
		case sep:
			if !quoted {
				out = append(out, s[start:i])
				start = i + 1
			}
		}
	}
	return append(out, s[start:])
}

// parseHop reads one forwarded address: "192.0.2.1", "192.0.2.1:4711",
// "2001:db8::1", "[2001:db8::1]:4711". Obfuscated identifiers ("_hidden")
// and "unknown" are not addresses.
func parseHop(s string) (netip.Addr, bool) {
	if s == "" {
		return netip.Addr{}, false
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap(), true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap(), true
	}
	if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		if a, err := netip.ParseAddr(s[1 : len(s)-1]); err == nil {
			return a.Unmap(), true
		}
	}
	return netip.Addr{}, false
}

// ClientIP is the client's address of an HTTP request served elsewhere
// (a WebListener connection) that came from peer, by the rules RTMPT's
// requests follow: the Forwarded, else X-Forwarded-For, headers are
// believed only from a trusted proxy.
func ClientIP(peer netip.Addr, trusted []netip.Prefix, forwarded, xff []string) netip.Addr {
	ip, _ := clientIP(peer, trusted, forwarded, xff)
	return ip
}

// ForwardedTLS reports whether a trusted proxy (peer) says the client
// reached it over TLS: the Forwarded header's proto= when there is one,
// else X-Forwarded-Proto, each read from its last value, the one the
// nearest proxy wrote (a client can send either header, and a proxy that
// appends keeps what the client wrote first). From any other peer the
// headers are not believed.
func ForwardedTLS(peer netip.Addr, trusted []netip.Prefix, forwarded, xfp []string) bool {
	if len(trusted) == 0 || !trustedAddr(peer.Unmap(), trusted) {
		return false
	}
	proto := ""
	if len(forwarded) > 0 {
		for _, h := range forwarded {
			for _, elem := range splitQuoted(h, ',') {
				for _, pair := range splitQuoted(elem, ';') {
					k, v, ok := strings.Cut(strings.TrimSpace(pair), "=")
					if ok && strings.EqualFold(strings.TrimSpace(k), "proto") {
						proto = strings.Trim(strings.TrimSpace(v), `"`)
					}
				}
			}
		}
	} else {
		for _, h := range xfp {
			for _, f := range strings.Split(h, ",") {
				if f = strings.TrimSpace(f); f != "" {
					proto = f
				}
			}
		}
	}
	return strings.EqualFold(proto, "https") || strings.EqualFold(proto, "wss")
}
