package bridge

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"sync/atomic"
	"time"
)

// GatewayConfig configures a Gateway.
type GatewayConfig struct {
	// Upstream is the origin, rtmp://host[:1935] (a path is ignored).
	Upstream string
	// ProxyProtocol sends a PROXY protocol header of this version (1 or
	// 2) to the origin before the client's bytes, so that it sees the
	// client's address; 0 sends none.
	ProxyProtocol int
	// DialTimeout bounds the connection to the origin (default 5s); a
	// client whose origin connection fails is closed at once.
	DialTimeout time.Duration
	// Linger bounds the wait for the second direction once the first has
	// ended (default 10s).
	Linger time.Duration
	// StallTimeout ends a connection when a write to either side cannot
	// finish for this long: a client (or origin) that stopped reading does
	// not hold its relay for ever (default 30s).
	StallTimeout time.Duration
	Logger       *slog.Logger
}

// Gateway forwards each connection it is handed to the upstream RTMP
// origin: RTMP bytes byte for byte (Serve), RoQR clients, which carry
// messages, message by message over its own RTMP connection (ServeRoQR).
type Gateway struct {
	cfg  GatewayConfig
	addr string
	log  *slog.Logger
	ids  atomic.Uint64
}

// NewGateway checks cfg.
func NewGateway(cfg GatewayConfig) (*Gateway, error) {
	u, err := url.Parse(cfg.Upstream)
	if err != nil || u.Scheme != "rtmp" || u.Hostname() == "" {
		return nil, fmt.Errorf("bad upstream %q: want rtmp://host[:port]", cfg.Upstream)
	}
	if cfg.ProxyProtocol < 0 || cfg.ProxyProtocol > 2 {
		return nil, fmt.Errorf("bad PROXY protocol version %d: want 0 (off), 1 or 2", cfg.ProxyProtocol)
	}
	port := u.Port()
	if port == "" {
		port = "1935"
	}
	cfg = cfg.WithDefaults()
	return &Gateway{cfg: cfg, addr: net.JoinHostPort(u.Hostname(), port), log: cfg.Logger}, nil
}

// DefaultGatewayConfig is the configuration the zero GatewayConfig stands
// for: every default filled in (there is no default upstream).
func DefaultGatewayConfig() GatewayConfig { return GatewayConfig{}.WithDefaults() }

// WithDefaults returns c with every zero field set to its default, the one
// place the defaults live.
func (c GatewayConfig) WithDefaults() GatewayConfig {
	if c.DialTimeout <= 0 {
		c.DialTimeout = 5 * time.Second
	}
	if c.Linger <= 0 {
		c.Linger = defaultLinger
	}
	if c.StallTimeout <= 0 {
		c.StallTimeout = defaultStall
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Addr is the origin's host:port.
func (g *Gateway) Addr() string { return g.addr }

// Serve forwards nc (which reached the hub over protocol) to the origin
// until either end closes. remoteIP, when set, is the client's address as
// a trusted proxy named it; otherwise nc's remote address is the client's.
// It owns nc and closes it.
func (g *Gateway) Serve(ctx context.Context, nc net.Conn, protocol, remoteIP string) {
	start := time.Now()
	log := g.log.With("proto", protocol, "gw", g.ids.Add(1), "client", nc.RemoteAddr().String())
	up, err := g.dial(ctx, clientAddr(nc.RemoteAddr(), remoteIP), log)
	if err != nil {
		nc.Close()
		return
	}
	log.Debug("forwarding", "upstream", g.addr, "setup", time.Since(start).Round(time.Microsecond).String())
	stop := context.AfterFunc(ctx, func() { nc.Close(); up.Close() })
	defer stop()
	st, err := Pipe(nc, up, g.cfg.Linger, g.cfg.StallTimeout)
	attrs := []any{"upstream", g.addr, "sent", st.AToB, "received", st.BToA,
		"duration", time.Since(start).Round(time.Millisecond).String()}
	if err != nil {
		attrs = append(attrs, "err", err.Error())
	}
	log.Info("forwarded", attrs...)
}

// dial connects to the origin and sends the PROXY protocol header naming
// client, when configured, within DialTimeout. A failure is logged: the
// caller refuses its client.
func (g *Gateway) dial(ctx context.Context, client netip.AddrPort, log *slog.Logger) (net.Conn, error) {
	d := net.Dialer{Timeout: g.cfg.DialTimeout}
	up, err := d.DialContext(ctx, "tcp", g.addr)
	if err != nil {
		log.Warn("upstream unreachable, refusing client", "upstream", g.addr, "err", err.Error())
		return nil, err
	}
	if v := g.cfg.ProxyProtocol; v != 0 {
		hdr := proxyHeader(v, client, up.LocalAddr(), up.RemoteAddr())
		up.SetWriteDeadline(time.Now().Add(g.cfg.DialTimeout))
		_, err := up.Write(hdr)
		up.SetWriteDeadline(time.Time{})
		if err != nil {
			log.Warn("upstream refused the PROXY header, refusing client", "upstream", g.addr, "err", err.Error())
			up.Close()
			return nil, err
		}
	}
	return up, nil
}

// clientAddr is the client's address and port: the forwarded address (no
// port known: 0) or the connection's own (remote).
func clientAddr(remote net.Addr, remoteIP string) netip.AddrPort {
	if remoteIP != "" {
		if a, err := netip.ParseAddr(remoteIP); err == nil {
			return netip.AddrPortFrom(a.Unmap(), 0)
		}
	}
	return addrPort(remote)
}

func addrPort(a net.Addr) netip.AddrPort {
	switch a := a.(type) {
	case *net.TCPAddr:
		ap := a.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	case *net.UDPAddr:
		ap := a.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	if ap, err := netip.ParseAddrPort(a.String()); err == nil {
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	return netip.AddrPort{}
}

// proxySig opens every PROXY protocol v2 header.
var proxySig = []byte{0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A}

// proxyHeader is the PROXY protocol header (version 1 text or version 2
// binary) naming src as the client and the hub's end of the origin
// connection as the destination. A client address of another family than
// the destination, or unknown, is sent as UNKNOWN (v1) / LOCAL (v2).
func proxyHeader(version int, src netip.AddrPort, local, _ net.Addr) []byte {
	dst := addrPort(local)
	known := src.Addr().IsValid() && dst.Addr().IsValid() && src.Addr().Is4() == dst.Addr().Is4()
	if version == 1 {
		if !known {
			return []byte("PROXY UNKNOWN\r\n")
		}
		fam := "TCP4"
		if !src.Addr().Is4() {
			fam = "TCP6"
		}
		return []byte("PROXY " + fam + " " + src.Addr().String() + " " + dst.Addr().String() + " " +
			strconv.Itoa(int(src.Port())) + " " + strconv.Itoa(int(dst.Port())) + "\r\n")
	}
	var b bytes.Buffer
	b.Write(proxySig)
	if !known {
		b.WriteByte(0x20) // version 2, LOCAL
		b.WriteByte(0x00) // UNSPEC
		b.Write([]byte{0, 0})
		return b.Bytes()
	}
	b.WriteByte(0x21) // version 2, PROXY
	var addrs []byte
	if src.Addr().Is4() {
		b.WriteByte(0x11) // TCP over IPv4
		s, d := src.Addr().As4(), dst.Addr().As4()
		addrs = append(append(addrs, s[:]...), d[:]...)
	} else {
		b.WriteByte(0x21) // TCP over IPv6
		s, d := src.Addr().As16(), dst.Addr().As16()
		addrs = append(append(addrs, s[:]...), d[:]...)
	}
	addrs = binary.BigEndian.AppendUint16(addrs, src.Port())
	addrs = binary.BigEndian.AppendUint16(addrs, dst.Port())
	b.Write(binary.BigEndian.AppendUint16(nil, uint16(len(addrs))))
	b.Write(addrs)
	return b.Bytes()
}
