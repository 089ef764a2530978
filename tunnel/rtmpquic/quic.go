package rtmpquic

// RTMP over QUIC, byte-stream mapping ("rtmpq").
//
// A client opens a QUIC connection with the ALPN "rtmp-quic" (ALPN) and
// then one bidirectional stream per RTMP connection. The stream
// carries exactly the bytes a TCP connection would carry — the RTMP
// handshake (C0/C1/C2, S0/S1/S2) and then the chunk stream — so any RTMP
// implementation works over it unchanged. Closing the write side of the
// stream (FIN) is the end of the client's bytes, like a TCP half-close.
// The server reports such a client with the protocol name "rtmpq".
//
// A QUIC connection may carry several RTMP connections (one per stream);
// the client bridge opens one QUIC connection per RTMP connection, so a
// lost packet of one never delays another.

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/rtmphub/rtmphub/tunnel"
)

// ALPN is the TLS application protocol of the byte-stream mapping.
const ALPN = "rtmp-quic"

// Protocol is the protocol name of a client that came over QUIC.
const Protocol = "rtmpq"

// Config tunes Listen and Dial. The zero value of a field
// means its default.
type Config struct {
	// IdleTimeout closes a QUIC connection that received nothing for this
	// long (default 30s).
	IdleTimeout time.Duration
	// KeepAlive sends a keep-alive packet after this long of silence
	// (default 10s; negative disables). It is capped at half the idle
	// timeout.
	KeepAlive time.Duration
	// HandshakeTimeout bounds the QUIC/TLS handshake (default 10s).
	HandshakeTimeout time.Duration
	// MaxStreams is the number of RTMP connections one QUIC connection
	// may carry at once (default 16).
	MaxStreams int64
	// Linger is how long the server keeps a QUIC connection whose RTMP
	// connections have all ended, waiting for the client to close it
	// (default 5s).
	Linger time.Duration
	// RoQR also offers the ALPN "roqr" (messages framed directly on
	// QUIC); its clients come from AcceptRoQR, which must then be served.
	RoQR bool
	// MaxMessageSize bounds a RoQR message read (default 16 MiB − 1).
	MaxMessageSize int
	// RoQRDatagrams offers the QUIC DATAGRAM extension on RoQR
	// connections; where the peer offers it too, media a decoder can
	// lose travels in datagrams (see roqr.go).
	RoQRDatagrams bool

	Logger *slog.Logger
}

// DefaultConfig is the configuration the zero Config stands for:
// every default filled in.
func DefaultConfig() Config { return Config{}.WithDefaults() }

// WithDefaults returns c with every zero field set to its default, the one
// place the defaults live. A field whose default is on is turned off by a
// negative value (KeepAlive).
func (c Config) WithDefaults() Config {
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = 30 * time.Second
	}
	if c.KeepAlive == 0 {
		c.KeepAlive = 10 * time.Second
	} else if c.KeepAlive < 0 {
		c.KeepAlive = 0
	}
	if c.HandshakeTimeout <= 0 {
		c.HandshakeTimeout = 10 * time.Second
	}
	if c.MaxStreams <= 0 {
		c.MaxStreams = 16
	}
	if c.Linger <= 0 {
		c.Linger = 5 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

func (c Config) quic() *quic.Config {
	return &quic.Config{
		HandshakeIdleTimeout:  c.HandshakeTimeout,
		MaxIdleTimeout:        c.IdleTimeout,
		KeepAlivePeriod:       c.KeepAlive,
		MaxIncomingStreams:    c.MaxStreams,
		MaxIncomingUniStreams: -1,
		EnableDatagrams:       c.RoQRDatagrams,
	}
}

// Listener accepts RTMP connections carried on QUIC streams. It is a
// net.Listener: Accept returns one *Conn per stream.
type Listener struct {
	cfg  Config
	ln   *quic.Listener
	udp  *net.UDPConn
	tr   *quic.Transport
	ctx  context.Context
	stop context.CancelFunc
	out  chan net.Conn
	roqr chan *RoQRConn
	wg   sync.WaitGroup

	mu    sync.Mutex
	conns map[*quic.Conn]struct{}
}

// Listen binds addr (UDP) and accepts QUIC connections whose TLS
// handshake uses tlsCfg (its certificates; NextProtos is set here).
func Listen(addr string, tlsCfg *tls.Config, cfg Config) (*Listener, error) {
	cfg = cfg.WithDefaults()
	cfg.RoQRDatagrams = cfg.RoQRDatagrams && cfg.RoQR
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, err
	}
	udp, err := net.ListenUDP("udp", ua)
	if err != nil {
		return nil, err
	}
	tc := tlsCfg.Clone()
	tc.NextProtos = []string{ALPN}
	if cfg.RoQR {
		tc.NextProtos = append(tc.NextProtos, RoQRALPN)
	}
	tc.MinVersion = tls.VersionTLS13
	tr := &quic.Transport{Conn: udp}
	ln, err := tr.Listen(tc, cfg.quic())
	if err != nil {
		tr.Close()
		udp.Close()
		return nil, err
	}
	ctx, stop := context.WithCancel(context.Background())
	l := &Listener{cfg: cfg, ln: ln, udp: udp, tr: tr, ctx: ctx, stop: stop,
		out: make(chan net.Conn), roqr: make(chan *RoQRConn), conns: make(map[*quic.Conn]struct{})}
	l.wg.Add(1)
	go l.acceptConns()
	return l, nil
}

func (l *Listener) acceptConns() {
	defer l.wg.Done()
	for {
		qc, err := l.ln.Accept(l.ctx)
		if err != nil {
			return
		}
		l.mu.Lock()
		if l.ctx.Err() != nil {
			l.mu.Unlock()
			qc.CloseWithError(0, "server stopping")
			return
		}
		l.conns[qc] = struct{}{}
		l.mu.Unlock()
		l.wg.Add(1)
		go l.acceptStreams(qc)
	}
}

// acceptStreams hands each stream of qc to Accept. Once every stream has
// ended, the connection is closed after Linger unless the client opens
// another stream or closes it first (as it does once it has read the end
// of its streams: closing at once could lose the last bytes in flight).
func (l *Listener) acceptStreams(qc *quic.Conn) {
	defer l.wg.Done()
	var active atomic.Int64
	ended := make(chan struct{}, 1)
	idle := func() {
		select {
		case ended <- struct{}{}:
		default:
		}
	}
	// The watcher owns qc's end: it is bounded by qc's lifetime, which
	// the idle timeout, the linger timer or Shutdown bounds.
	go func() {
		var t *time.Timer
		defer func() {
			if t != nil {
				t.Stop()
			}
			l.mu.Lock()
			delete(l.conns, qc)
			l.mu.Unlock()
		}()
		for {
			select {
			case <-qc.Context().Done():
				return
			case <-ended:
				if active.Load() != 0 {
					continue
				}
				if t != nil {
					t.Stop()
				}
				t = time.AfterFunc(l.cfg.Linger, func() {
					if active.Load() == 0 {
						qc.CloseWithError(0, "rtmp connections ended")
					}
				})
			}
		}
	}()
	defer idle() // the listener closed: a connection without streams lingers out
	roqr := qc.ConnectionState().TLS.NegotiatedProtocol == RoQRALPN
	first := true // a RoQR connection's datagrams are its first stream's
	for {
		str, err := qc.AcceptStream(l.ctx)
		if err != nil {
			return
		}
		active.Add(1)
		done := func() {
			active.Add(-1)
			idle()
		}
		var (
			closer io.Closer
			out    = l.out
			rout   chan *RoQRConn
			c      *Conn
			rc     *RoQRConn
		)
		if roqr {
			rc = newRoQRConn(qc, str, l.cfg, first, done)
			closer, out, rout = rc, nil, l.roqr
		} else {
			c = newConn(qc, str, done)
			closer = c
		}
		first = false
		select {
		case out <- c:
		case rout <- rc:
		case <-l.ctx.Done():
			closer.Close()
			return
		case <-qc.Context().Done():
			closer.Close()
			return
		}
	}
}

// AcceptRoQR returns the next RoQR client (Config.RoQR).
func (l *Listener) AcceptRoQR() (*RoQRConn, error) {
	select {
	case c := <-l.roqr:
		return c, nil
	case <-l.ctx.Done():
		return nil, opError("accept", "quic", l.Addr(), net.ErrClosed)
	}
}

// Accept returns the next RTMP connection (one QUIC stream).
func (l *Listener) Accept() (net.Conn, error) {
	select {
	case c := <-l.out:
		return c, nil
	case <-l.ctx.Done():
		return nil, opError("accept", "quic", l.Addr(), net.ErrClosed)
	}
}

// Close stops accepting QUIC connections and streams. RTMP connections
// already accepted carry on (as accepted TCP connections outlive their
// listener); each QUIC connection is closed once its streams have ended.
// Shutdown releases the UDP socket.
func (l *Listener) Close() error {
	l.mu.Lock()
	if l.ctx.Err() != nil {
		l.mu.Unlock()
		return nil
	}
	l.stop()
	l.mu.Unlock()
	err := l.ln.Close()
	l.wg.Wait()
	return err
}

// Shutdown closes the listener, waits until the clients have closed
// their QUIC connections (a client does once it has read the end of its
// streams) or ctx ends, closes those left and releases the UDP socket.
func (l *Listener) Shutdown(ctx context.Context) error {
	l.Close()
	for {
		l.mu.Lock()
		var qc *quic.Conn
		for c := range l.conns {
			qc = c
			break
		}
		l.mu.Unlock()
		if qc == nil {
			break
		}
		select {
		case <-qc.Context().Done():
			l.mu.Lock()
			delete(l.conns, qc)
			l.mu.Unlock()
			continue
		case <-ctx.Done():
		}
		break
	}
	l.mu.Lock()
	conns := make([]*quic.Conn, 0, len(l.conns))
	for qc := range l.conns {
		conns = append(conns, qc)
	}
	l.conns = make(map[*quic.Conn]struct{})
	l.mu.Unlock()
	for _, qc := range conns {
		qc.CloseWithError(0, "server stopping")
	}
	l.tr.Close()
	return l.udp.Close()
}

// Addr is the UDP address the listener is bound to.
func (l *Listener) Addr() net.Addr { return l.udp.LocalAddr() }

// Conn is one RTMP connection on a QUIC stream, as a net.Conn. Its
// deadlines are the stream's; its addresses are the QUIC connection's
// current ones (they change when the client migrates).
type Conn struct {
	quicStream

	mu    sync.Mutex
	paths []*quicPath // dialer side: sockets the connection migrated from/to
}

type quicPath struct {
	udp *net.UDPConn
	tr  *quic.Transport
}

func newConn(qc *quic.Conn, str *quic.Stream, onClose func()) *Conn {
	return &Conn{quicStream: quicStream{qc: qc, str: str, onClose: onClose}}
}

func (c *Conn) mapErr(op string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, io.EOF) {
		return io.EOF // unwrapped: io.Reader's contract
	}
	if c.closed.Load() {
		return opError(op, "quic", c.RemoteAddr(), net.ErrClosed)
	}
	var ae *quic.ApplicationError
	if errors.As(err, &ae) && ae.Remote && ae.ErrorCode == 0 {
		return io.EOF // the peer closed the whole QUIC connection cleanly
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return opError(op, "quic", c.RemoteAddr(), errTimeout)
	}
	return opError(op, "quic", c.RemoteAddr(), err)
}

// Read reads the peer's bytes; io.EOF once the peer closed its side.
func (c *Conn) Read(p []byte) (int, error) {
	if c.closed.Load() {
		return 0, opError("read", "quic", c.RemoteAddr(), net.ErrClosed)
	}
	n, err := c.str.Read(p)
	return n, c.mapErr("read", err)
}

// Write writes to the stream, blocking under flow control.
func (c *Conn) Write(p []byte) (int, error) {
	if c.closed.Load() {
		return 0, opError("write", "quic", c.RemoteAddr(), net.ErrClosed)
	}
	n, err := c.str.Write(p)
	return n, c.mapErr("write", err)
}

// CloseWrite ends the bytes sent (FIN) and keeps reading, as
// (*net.TCPConn).CloseWrite.
func (c *Conn) CloseWrite() error {
	if c.closed.Load() {
		return opError("close", "quic", c.RemoteAddr(), net.ErrClosed)
	}
	return c.str.Close()
}

// Close ends both directions of the stream: bytes already written are
// still delivered, unread bytes from the peer are discarded. On the
// dialer side it closes the QUIC connection as well.
func (c *Conn) Close() error { return c.close("quic") }

// quicStream is what the two QUIC mappings' connections share: one
// bidirectional stream of a QUIC connection, closed once.
type quicStream struct {
	qc      *quic.Conn
	str     *quic.Stream
	closed  atomic.Bool
	once    sync.Once
	onClose func()
}

// close ends the stream both ways (bytes written are still delivered,
// unread bytes from the peer are discarded) and runs onClose, once; later
// calls get net.ErrClosed.
func (s *quicStream) close(proto string) error {
	first := false
	s.once.Do(func() {
		first = true
		s.closed.Store(true)
		s.str.CancelRead(0)
		s.str.Close()
		if s.onClose != nil {
			s.onClose()
		}
	})
	if !first {
		return opError("close", proto, s.RemoteAddr(), net.ErrClosed)
	}
	return nil
}

func (s *quicStream) LocalAddr() net.Addr  { return s.qc.LocalAddr() }
func (s *quicStream) RemoteAddr() net.Addr { return s.qc.RemoteAddr() }

func (c *Conn) SetDeadline(t time.Time) error      { return c.str.SetDeadline(t) }
func (c *Conn) SetReadDeadline(t time.Time) error  { return c.str.SetReadDeadline(t) }
func (c *Conn) SetWriteDeadline(t time.Time) error { return c.str.SetWriteDeadline(t) }

// ConnectionState is the TLS state of the QUIC connection.
func (c *Conn) ConnectionState() tls.ConnectionState { return c.qc.ConnectionState().TLS }

// Migrate moves a dialed connection to a new local UDP socket (a new
// address, as when a client changes networks): it probes the new path
// and switches to it once the server validated it. The RTMP connection
// carries on. Only the dialer side can migrate.
func (c *Conn) Migrate(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.paths == nil {
		return errors.New("quic: only a dialed connection can migrate")
	}
	old := c.paths[len(c.paths)-1]
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: old.udp.LocalAddr().(*net.UDPAddr).IP})
	if err != nil {
		return fmt.Errorf("quic migrate: %w", err)
	}
	tr := &quic.Transport{Conn: udp}
	p, err := c.qc.AddPath(tr)
	if err != nil {
		tr.Close()
		udp.Close()
		return fmt.Errorf("quic migrate: %w", err)
	}
	if err := p.Probe(ctx); err != nil {
		p.Close()
		tr.Close()
		udp.Close()
		return fmt.Errorf("quic migrate: probe: %w", err)
	}
	if err := p.Switch(); err != nil {
		p.Close()
		tr.Close()
		udp.Close()
		return fmt.Errorf("quic migrate: switch: %w", err)
	}
	c.paths = append(c.paths, &quicPath{udp: udp, tr: tr})
	return nil
}

// DialOptions tune Dial.
type DialOptions struct {
	// Insecure accepts any server certificate.
	Insecure bool
	// PinSHA256 accepts only the server certificate whose DER encoding
	// has this SHA-256 (hex, colons allowed), whoever signed it.
	PinSHA256 string
	// TLSConfig overrides the TLS settings (roots, server name) when
	// neither Insecure nor PinSHA256 is set.
	TLSConfig *tls.Config
	Config
}

// Dial opens a QUIC connection to rawURL ("quic://host[:port]",
// default port 1935) and one stream on it, returned as a net.Conn that
// carries RTMP bytes, handshake not done yet. Closing it closes the QUIC
// connection. The conn is a *Conn (CloseWrite, Migrate).
func Dial(ctx context.Context, rawURL string, opts DialOptions) (net.Conn, error) {
	qc, str, udp, tr, err := dialQUICStream(ctx, rawURL, "quic", ALPN, opts)
	if err != nil {
		return nil, err
	}
	c := newConn(qc, str, nil)
	c.paths = []*quicPath{{udp: udp, tr: tr}}
	c.onClose = func() {
		qc.CloseWithError(0, "")
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, p := range c.paths {
			p.tr.Close()
			p.udp.Close()
		}
	}
	return c, nil
}

// DialRoQR opens a RoQR connection to rawURL ("roqr://host[:port]",
// default port 1935): RTMP messages framed on one QUIC stream, no RTMP
// handshake. Closing it closes the QUIC connection.
func DialRoQR(ctx context.Context, rawURL string, opts DialOptions) (*RoQRConn, error) {
	qc, str, udp, tr, err := dialQUICStream(ctx, rawURL, "roqr", RoQRALPN, opts)
	if err != nil {
		return nil, err
	}
	return newRoQRConn(qc, str, opts.Config.WithDefaults(), true, func() {
		qc.CloseWithError(0, "")
		tr.Close()
		udp.Close()
	}), nil
}

func dialQUICStream(ctx context.Context, rawURL, scheme, alpn string, opts DialOptions) (*quic.Conn, *quic.Stream, *net.UDPConn, *quic.Transport, error) {
	fail := func(err error) (*quic.Conn, *quic.Stream, *net.UDPConn, *quic.Transport, error) {
		return nil, nil, nil, nil, err
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return fail(fmt.Errorf("%s: %w", scheme, err))
	}
	if u.Scheme != scheme {
		return fail(fmt.Errorf("%s: unsupported scheme %q (want %s)", scheme, u.Scheme, scheme))
	}
	if u.Hostname() == "" {
		return fail(fmt.Errorf("%s: no host in %q", scheme, rawURL))
	}
	port := u.Port()
	if port == "" {
		port = "1935"
	}
	tc, err := tunnel.ClientTLSConfig(u.Hostname(), opts.Insecure, opts.PinSHA256, opts.TLSConfig)
	if err != nil {
		return fail(err)
	}
	tc.NextProtos = []string{alpn}
	tc.MinVersion = tls.VersionTLS13
	cfg := opts.Config.WithDefaults()
	cfg.RoQRDatagrams = cfg.RoQRDatagrams && alpn == RoQRALPN

	raddr, err := net.ResolveUDPAddr("udp", net.JoinHostPort(u.Hostname(), port))
	if err != nil {
		return fail(fmt.Errorf("%s: %w", scheme, err))
	}
	udp, err := net.ListenUDP("udp", nil)
	if err != nil {
		return fail(fmt.Errorf("%s: %w", scheme, err))
	}
	tr := &quic.Transport{Conn: udp}
	dctx, cancel := context.WithTimeout(ctx, cfg.HandshakeTimeout)
	defer cancel()
	qc, err := tr.Dial(dctx, raddr, tc, cfg.quic())
	if err != nil {
		tr.Close()
		udp.Close()
		return fail(fmt.Errorf("%s: dial %s: %w", scheme, raddr, err))
	}
	str, err := qc.OpenStreamSync(dctx)
	if err != nil {
		qc.CloseWithError(0, "")
		tr.Close()
		udp.Close()
		return fail(fmt.Errorf("%s: open stream: %w", scheme, err))
	}
	return qc, str, udp, tr, nil
}

// opError wraps err as the net package does, so that callers testing for
// net.Error, os.ErrDeadlineExceeded or net.ErrClosed find what they expect.
func opError(op, network string, addr net.Addr, err error) error {
	return &net.OpError{Op: op, Net: network, Addr: addr, Err: err}
}

// errTimeout is returned by reads and writes whose deadline has passed; it
// is a net.Error with Timeout() true.
var errTimeout = os.ErrDeadlineExceeded
