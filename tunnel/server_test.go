package tunnel

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"math/big"
	mrand "math/rand/v2"
	"net"
	"net/netip"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// testServer runs a Server on a loopback port until the test ends.
func testServer(t *testing.T, cfg Config, h ConnHandler) (string, *Server) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := NewServer(cfg, h)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Run did not return within 10s of its context ending")
		}
	})
	return ln.Addr().String(), s
}

// echo is a core that sends back what it reads.
func echo(ctx context.Context, nc net.Conn, info Info) {
	defer nc.Close()
	io.Copy(nc, nc)
}

// rawResponse is an HTTP response as read off the wire.
type rawResponse struct {
	statusLine string
	headers    []string // "Name: value", as sent
	body       []byte
}

func (r rawResponse) status() int {
	f := strings.Fields(r.statusLine)
	if len(f) < 2 {
		return 0
	}
	n, _ := strconv.Atoi(f[1])
	return n
}

func (r rawResponse) header(name string) (string, bool) {
	for _, h := range r.headers {
		k, v, _ := strings.Cut(h, ":")
		if strings.EqualFold(k, name) {
			return strings.TrimSpace(v), true
		}
	}
	return "", false
}

func readRawResponse(br *bufio.Reader) (rawResponse, error) {
	var r rawResponse
	line, err := br.ReadString('\n')
	if err != nil {
		return r, err
	}
	r.statusLine = strings.TrimRight(line, "\r\n")
	length := -1
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return r, err
		}
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			break
		}
		r.headers = append(r.headers, line)
		if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(k, "Content-Length") {
			length, _ = strconv.Atoi(strings.TrimSpace(v))
		}
	}
	if length < 0 {
		return r, errors.New("no Content-Length")
	}
	r.body = make([]byte, length)
	_, err = io.ReadFull(br, r.body)
	return r, err
}

// librtmpRequest is a request exactly as librtmp's HTTP_Post writes it.
func librtmpRequest(path, host string, body []byte) []byte {
	return append([]byte(fmt.Sprintf("POST %s HTTP/1.1\r\nHost: %s\r\nAccept: */*\r\nUser-Agent: Shockwave Flash\r\n"+
		"Connection: Keep-Alive\r\nCache-Control: no-cache\r\nContent-type: application/x-fcs\r\nContent-length: %d\r\n\r\n",
		path, host, len(body))), body...)
}

type rawConn struct {
	t    *testing.T
	nc   net.Conn
	br   *bufio.Reader
	host string
}

func dialRaw(t *testing.T, addr string) *rawConn {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(20 * time.Second))
	return &rawConn{t: t, nc: nc, br: bufio.NewReader(nc), host: addr}
}

func (c *rawConn) write(b []byte) {
	c.t.Helper()
	if _, err := c.nc.Write(b); err != nil {
		c.t.Fatal(err)
	}
}

func (c *rawConn) read() rawResponse {
	c.t.Helper()
	r, err := readRawResponse(c.br)
	if err != nil {
		c.t.Fatalf("reading response: %v (so far %+v)", err, r)
	}
	return r
}

func (c *rawConn) do(path string, body []byte) rawResponse {
	c.t.Helper()
	c.write(librtmpRequest(path, c.host, body))
	return c.read()
}

func (c *rawConn) open() string {
	c.t.Helper()
	r := c.do("/open/1", []byte{0})
	if r.status() != 200 || len(r.body) != sidLen+1 || r.body[sidLen] != '\n' || !validSID(string(r.body[:sidLen])) {
		c.t.Fatalf("open: %q %q", r.statusLine, r.body)
	}
	return string(r.body[:sidLen])
}

// checkReplyHeaders asserts the reply shape every RTMPT client accepts.
func checkReplyHeaders(t *testing.T, what string, r rawResponse) {
	t.Helper()
	if r.statusLine != "HTTP/1.1 200 OK" {
		t.Errorf("%s: status line %q, want exactly \"HTTP/1.1 200 OK\"", what, r.statusLine)
	}
	want := []string{
		"Content-Type: application/x-fcs",
		"Content-Length: " + strconv.Itoa(len(r.body)),
		"Cache-Control: no-cache",
		"Connection: Keep-Alive",
	}
	for _, w := range want {
		found := false
		for _, h := range r.headers {
			if h == w {
				found = true
			}
		}
		if !found {
			t.Errorf("%s: no header line %q in %q", what, w, r.headers)
		}
	}
	if _, ok := r.header("Transfer-Encoding"); ok {
		t.Errorf("%s: Transfer-Encoding in %q", what, r.headers)
	}
}

func TestReplyShapesAsClientsExpect(t *testing.T) {
	addr, _ := testServer(t, Config{HoldTime: 50 * time.Millisecond}, echo)
	c := dialRaw(t, addr)
	r := c.do("/open/1", []byte{0})
	checkReplyHeaders(t, "open", r)
	sid := strings.TrimSuffix(string(r.body), "\n")

	r = c.do("/send/"+sid+"/0", []byte("hello"))
	checkReplyHeaders(t, "send", r)
	got := r.body[1:]
	for len(got) < 5 {
		r = c.do("/idle/"+sid+"/"+strconv.Itoa(1), []byte{0})
		checkReplyHeaders(t, "idle", r)
		got = append(got, r.body[1:]...)
		break
	}
	if string(got) != "hello" {
		t.Fatalf("echo over RTMPT: %q", got)
	}
	r = c.do("/close/"+sid+"/2", []byte{0})
	checkReplyHeaders(t, "close", r)
	if string(r.body) != "\x00" {
		t.Fatalf("close reply %q, want a single 0", r.body)
	}
	// The connection stayed open through it all (keep-alive), and the
	// session is gone now.
	if r := c.do("/idle/"+sid+"/3", []byte{0}); r.status() != 404 {
		t.Fatalf("idle after close: %q", r.statusLine)
	}
}

func TestBadRequestsGet4xx(t *testing.T) {
	addr, _ := testServer(t, Config{MaxBodySize: 1000}, echo)
	cases := []struct {
		name string
		req  string
		want int
	}{
		{"GET", "GET /open/1 HTTP/1.1\r\nHost: x\r\n\r\n", 405},
		{"PUT", "PUT /open/1 HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\n\x00", 405},
		{"unknown path", "POST /index.html HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", 400},
		{"malformed sid", "POST /idle/a-b/1 HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\n\x00", 400},
		{"missing seq", "POST /send/abcdefgh12345678 HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\n\x00", 400},
		{"unknown session", "POST /idle/abcdefgh12345678/0 HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\n\x00", 404},
		{"unknown session close", "POST /close/abcdefgh12345678 HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", 404},
		{"ident2", "POST /fcs/ident2 HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\n\x00", 404},
		{"body too large", "POST /send/abcdefgh12345678/0 HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n" + strings.Repeat("x", 5000), 413},
		{"malformed request line", "POST\r\n\r\n", 400},
		{"bad content length", "POST /open/1 HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n", 400},
		{"huge header", "POST /open/1 HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("y", 9000) + "\r\n\r\n", 431},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := dialRaw(t, addr)
			c.write([]byte(tc.req))
			r := c.read()
			if r.status() != tc.want {
				t.Fatalf("status %q, want %d", r.statusLine, tc.want)
			}
		})
	}
}

func TestPipelinedRequestsLikeLibrtmp(t *testing.T) {
	addr, _ := testServer(t, Config{HoldTime: 200 * time.Millisecond}, echo)
	c := dialRaw(t, addr)
	sid := c.open()
	// librtmp writes every chunk as its own POST without waiting: a
	// partial handshake in two sends, then an idle, in one write.
	var batch []byte
	batch = append(batch, librtmpRequest("/send/"+sid+"/0", addr, []byte("C0C1-part1"))...)
	batch = append(batch, librtmpRequest("/send/"+sid+"/1", addr, []byte("-part2"))...)
	batch = append(batch, librtmpRequest("/idle/"+sid+"/2", addr, []byte{0})...)
	c.write(batch)
	var got []byte
	for range 3 {
		r := c.read()
		checkReplyHeaders(t, "pipelined", r)
		got = append(got, r.body[1:]...)
	}
	for seq := 3; len(got) < len("C0C1-part1-part2") && seq < 10; seq++ {
		got = append(got, c.do("/idle/"+sid+"/"+strconv.Itoa(seq), []byte{0}).body[1:]...)
	}
	if string(got) != "C0C1-part1-part2" {
		t.Fatalf("pipelined echo %q", got)
	}
}

func TestSessionLimits(t *testing.T) {
	trusted, _ := ParsePrefixes("127.0.0.0/8")
	addr, s := testServer(t, Config{MaxSessions: 3, MaxSessionsPerIP: 2, TrustedProxies: trusted}, echo)
	c := dialRaw(t, addr)
	openFrom := func(ip string) int {
		req := fmt.Sprintf("POST /open/1 HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: %s\r\nContent-Length: 1\r\n\r\n\x00", ip)
		c.write([]byte(req))
		return c.read().status()
	}
	for i, want := range []int{200, 200, 429} {
		if got := openFrom("192.0.2.1"); got != want {
			t.Fatalf("open %d from one address: %d, want %d", i, got, want)
		}
	}
	if got := openFrom("192.0.2.2"); got != 200 {
		t.Fatalf("open from a second address: %d", got)
	}
	if got := openFrom("192.0.2.3"); got != 429 {
		t.Fatalf("open over MaxSessions: %d", got)
	}
	if st := s.Stats(); st.Sessions != 3 || st.Refused != 2 {
		t.Fatalf("stats %+v", st)
	}
}

func TestForwardedClientAddress(t *testing.T) {
	infos := make(chan Info, 4)
	h := func(ctx context.Context, nc net.Conn, info Info) {
		infos <- info
		echo(ctx, nc, info)
	}
	for _, tc := range []struct {
		name    string
		trusted string
		header  string
		want    string
	}{
		{"untrusted peer: header ignored", "", "X-Forwarded-For: 203.0.113.9", ""},
		{"trusted peer: X-Forwarded-For", "127.0.0.1/32", "X-Forwarded-For: 203.0.113.9", "203.0.113.9"},
		{"trusted chain: nearest untrusted hop", "127.0.0.1/32, 10.0.0.0/8", "X-Forwarded-For: 198.51.100.7, 203.0.113.9, 10.1.2.3", "203.0.113.9"},
		{"Forwarded wins", "127.0.0.1", "Forwarded: for=\"[2001:db8::5]:4711\";proto=http\r\nX-Forwarded-For: 203.0.113.9", "2001:db8::5"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			trusted, err := ParsePrefixes(tc.trusted)
			if err != nil {
				t.Fatal(err)
			}
			addr, _ := testServer(t, Config{TrustedProxies: trusted}, h)
			c := dialRaw(t, addr)
			c.write([]byte("POST /open/1 HTTP/1.1\r\nHost: x\r\n" + tc.header + "\r\nContent-Length: 1\r\n\r\n\x00"))
			if r := c.read(); r.status() != 200 {
				t.Fatalf("open: %q", r.statusLine)
			}
			info := <-infos
			if info.RemoteIP != tc.want || info.Protocol != "rtmpt" || len(info.TunnelID) != sidLen {
				t.Fatalf("info %+v, want RemoteIP %q", info, tc.want)
			}
		})
	}
}

func TestClientIPRules(t *testing.T) {
	trusted, _ := ParsePrefixes("10.0.0.0/8,127.0.0.1")
	peer := netip.MustParseAddr("10.0.0.1")
	cases := []struct {
		name      string
		peer      netip.Addr
		fwd, xff  []string
		want      string
		forwarded bool
	}{
		{"no headers", peer, nil, nil, "10.0.0.1", false},
		{"untrusted peer", netip.MustParseAddr("192.0.2.1"), nil, []string{"203.0.113.1"}, "192.0.2.1", false},
		{"xff one hop", peer, nil, []string{"203.0.113.1"}, "203.0.113.1", true},
		{"xff two headers", peer, nil, []string{"198.51.100.1", "203.0.113.1, 10.9.9.9"}, "203.0.113.1", true},
		{"xff spoofed left part ignored", peer, nil, []string{"1.2.3.4, 203.0.113.1"}, "203.0.113.1", true},
		{"xff all trusted: leftmost", peer, nil, []string{"10.1.1.1, 10.2.2.2"}, "10.1.1.1", true},
		{"xff garbage", peer, nil, []string{"not-an-ip"}, "10.0.0.1", false},
		{"xff with port", peer, nil, []string{"203.0.113.1:5555"}, "203.0.113.1", true},
		{"forwarded quoted v6", peer, []string{`for="[2001:db8::1]:80"`}, nil, "2001:db8::1", true},
		{"forwarded several", peer, []string{"for=198.51.100.1, for=203.0.113.1;by=10.0.0.1"}, nil, "203.0.113.1", true},
		{"forwarded obfuscated", peer, []string{"for=_hidden"}, nil, "10.0.0.1", false},
		{"mapped peer", netip.MustParseAddr("::ffff:127.0.0.1"), nil, []string{"203.0.113.1"}, "203.0.113.1", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ip, fwd := clientIP(tc.peer, trusted, tc.fwd, tc.xff)
			if ip.String() != tc.want || fwd != tc.forwarded {
				t.Fatalf("clientIP = %v, %v; want %s, %v", ip, fwd, tc.want, tc.forwarded)
			}
		})
	}
	if _, err := ParsePrefixes("10.0.0.0/33"); err == nil {
		t.Fatal("bad CIDR accepted")
	}
}

func TestBogusRequestsLeaveMemoryFlat(t *testing.T) {
	addr, s := testServer(t, Config{MaxBodySize: 4096}, echo)
	bogus := []string{
		"POST /idle/%s/1 HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\n\x00",
		"POST /send/%s/9 HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc",
		"GET /idle/%s/1 HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST /nothing/%s HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
		"POST /fcs/ident2 HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\n\x00",
		"POST /close/%s HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
	}
	run := func(n int) {
		const conns, batch = 4, 50
		var wg sync.WaitGroup
		for w := range conns {
			wg.Add(1)
			go func() {
				defer wg.Done()
				nc, err := net.Dial("tcp", addr)
				if err != nil {
					t.Error(err)
					return
				}
				defer nc.Close()
				br := bufio.NewReader(nc)
				for i := 0; i < n/conns; i += batch {
					var b []byte
					for j := range batch {
						sid := newSessionID("")
						b = append(b, strings.ReplaceAll(bogus[(w+i+j)%len(bogus)], "%s", sid)...)
					}
					nc.SetDeadline(time.Now().Add(10 * time.Second))
					if _, err := nc.Write(b); err != nil {
						t.Error(err)
						return
					}
					for range batch {
						r, err := readRawResponse(br)
						if err != nil {
							t.Error(err)
							return
						}
						if st := r.status(); st < 400 || st >= 500 {
							t.Errorf("bogus request got %q", r.statusLine)
							return
						}
					}
				}
			}()
		}
		wg.Wait()
	}
	heap := func() uint64 {
		runtime.GC()
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	run(2000) // warm up pools
	before, gBefore := heap(), runtime.NumGoroutine()
	run(10000)
	time.Sleep(100 * time.Millisecond)
	after, gAfter := heap(), runtime.NumGoroutine()
	t.Logf("heap %d → %d bytes, goroutines %d → %d, stats %+v", before, after, gBefore, gAfter, s.Stats())
	if after > before+2<<20 {
		t.Errorf("heap grew by %d bytes over 10k bogus requests", after-before)
	}
	if gAfter > gBefore+8 {
		t.Errorf("goroutines grew from %d to %d", gBefore, gAfter)
	}
	if st := s.Stats(); st.Sessions != 0 {
		t.Errorf("%d sessions left by bogus requests", st.Sessions)
	}
}

func TestHTTPConnectionLimit(t *testing.T) {
	addr, _ := testServer(t, Config{MaxHTTPConns: 2}, echo)
	for range 2 {
		c := dialRaw(t, addr)
		c.write([]byte("POST /open/1 HTTP/1.1\r\n")) // half a request: held open
	}
	time.Sleep(100 * time.Millisecond)
	c := dialRaw(t, addr)
	c.write([]byte("POST /open/1 HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\n\x00"))
	if r := c.read(); r.status() != 429 {
		t.Fatalf("third connection: %q", r.statusLine)
	}
}

// --- sniffing and TLS ---

// testCert returns a self-signed certificate for 127.0.0.1 and a pool
// that trusts it.
func testCert(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "rtmphub test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:     []string{"localhost"},
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:         true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

func TestSniffingOnePort(t *testing.T) {
	cert, pool := testCert(t)
	type seen struct {
		info  Info
		first byte
	}
	got := make(chan seen, 8)
	h := func(ctx context.Context, nc net.Conn, info Info) {
		defer nc.Close()
		var b [1]byte
		nc.SetReadDeadline(time.Now().Add(5 * time.Second))
		io.ReadFull(nc, b[:])
		got <- seen{info, b[0]}
		nc.Write([]byte("ok"))
		io.Copy(io.Discard, nc)
	}
	addr, _ := testServer(t, Config{TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}}, SniffTimeout: 300 * time.Millisecond}, h)
	expect := func(proto string) {
		t.Helper()
		select {
		case s := <-got:
			if s.info.Protocol != proto || s.first != 0x03 {
				t.Fatalf("handler saw %+v first byte %#x, want %s and 0x03", s.info, s.first, proto)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no %s connection reached the handler", proto)
		}
	}
	readOK := func(nc net.Conn) {
		t.Helper()
		nc.SetReadDeadline(time.Now().Add(5 * time.Second))
		var b [2]byte
		if _, err := io.ReadFull(nc, b[:]); err != nil || string(b[:]) != "ok" {
			t.Fatalf("reply %q, %v", b, err)
		}
	}

	// Native RTMP: the handler gets the very socket, C0 unread.
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	nc.Write([]byte{0x03})
	expect("rtmp")
	readOK(nc)
	nc.Close()

	// RTMPT on the same port.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tc, err := DialRTMPT(ctx, "rtmpt://"+addr, DialOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tc.Write([]byte{0x03})
	expect("rtmpt")
	readOK(tc)
	tc.Close()

	// RTMPS: TLS, then RTMP inside.
	sc, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	sc.Write([]byte{0x03})
	expect("rtmps")
	readOK(sc)
	sc.Close()

	// RTMPTS: TLS, then HTTP inside.
	tsc, err := DialRTMPT(ctx, "rtmpts://"+addr, DialOptions{TLSConfig: &tls.Config{RootCAs: pool}})
	if err != nil {
		t.Fatal(err)
	}
	tsc.Write([]byte{0x03})
	expect("rtmpts")
	readOK(tsc)
	tsc.Close()

	// A silent connection is closed after the sniff timeout.
	silent, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	start := time.Now()
	silent.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := silent.Read(make([]byte, 1)); err == nil || errors.Is(err, errTimeout) {
		t.Fatalf("silent connection: %v", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("silent connection closed after %v", took)
	}
}

// --- the dialer ---

// exchangeData writes data through nc while reading it back (an echo
// core), and checks it arrives intact.
func exchangeData(t *testing.T, nc net.Conn, data []byte, chunk int) {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		for off := 0; off < len(data); off += chunk {
			end := min(off+chunk, len(data))
			nc.SetWriteDeadline(time.Now().Add(10 * time.Second))
			if _, err := nc.Write(data[off:end]); err != nil {
				errc <- err
				return
			}
		}
		errc <- nil
	}()
	got := make([]byte, len(data))
	nc.SetReadDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.ReadFull(nc, got); err != nil {
		t.Fatalf("read back: %v", err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("write: %v", err)
	}
	for i := range data {
		if got[i] != data[i] {
			t.Fatalf("byte %d differs (of %d)", i, len(data))
		}
	}
}

func TestDialerEcho(t *testing.T) {
	addr, s := testServer(t, Config{}, echo)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	nc, err := DialRTMPT(ctx, "rtmpt://"+addr+"/live", DialOptions{})
	if err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 3<<20)
	rand.Read(data)
	exchangeData(t, nc, data, 40000)
	// Read deadline with nothing to read: a timeout, no panic.
	nc.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	var ne net.Error
	if _, err := nc.Read(make([]byte, 1)); !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("read past deadline: %v", err)
	}
	reqs := nc.(*rtmptClient).Requests()
	nc.Close()
	t.Logf("3 MiB echoed in %d requests", reqs)
	if !eventually(2*time.Second, func() bool { return s.Stats().Sessions == 0 }) {
		t.Fatalf("session left after Close: %+v", s.Stats())
	}
}

// dyingConn is a TCP connection that breaks by itself, in the middle of
// whatever it carries, once budget bytes went through it either way.
type dyingConn struct {
	net.Conn
	mu     sync.Mutex
	budget int
	died   *atomic.Int64
}

func (c *dyingConn) spend(n int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.budget <= 0 {
		return false
	}
	c.budget -= n
	if c.budget <= 0 {
		c.died.Add(1)
		c.Conn.Close()
		return false
	}
	return true
}

func (c *dyingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 && !c.spend(n) {
		return n / 2, err // part of what came, then the connection is gone
	}
	return n, err
}

func (c *dyingConn) Write(p []byte) (int, error) {
	if !c.spend(len(p)) {
		n, _ := c.Conn.Write(p[:len(p)/2])
		return n, net.ErrClosed
	}
	return c.Conn.Write(p)
}

func TestDialerSurvivesDroppedConnections(t *testing.T) {
	addr, s := testServer(t, Config{MaxPending: 16 << 10}, echo)
	var died atomic.Int64
	var mu sync.Mutex
	rng := mrand.New(mrand.NewPCG(1, 2))
	dial := func(ctx context.Context, network, a string) (net.Conn, error) {
		nc, err := (&net.Dialer{}).DialContext(ctx, network, a)
		if err != nil {
			return nil, err
		}
		mu.Lock()
		budget := 2000 + rng.IntN(60000)
		mu.Unlock()
		return &dyingConn{Conn: nc, budget: budget, died: &died}, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	nc, err := DialRTMPT(ctx, "rtmpt://"+addr, DialOptions{Dial: dial, MaxSendBody: 4096, MaxPending: 16 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	data := make([]byte, 1<<20)
	rand.Read(data)
	exchangeData(t, nc, data, 8000)
	t.Logf("1 MiB echoed intact while %d TCP connections broke under it; %d requests", died.Load(), nc.(*rtmptClient).Requests())
	if died.Load() < 10 {
		t.Fatalf("only %d connections broke: the test did not test anything", died.Load())
	}
	if s.Stats().SessionsOpened != 1 {
		t.Fatalf("sessions opened %d, want the one session to survive", s.Stats().SessionsOpened)
	}
}

func TestRunStopsPromptly(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ended := make(chan error, 1)
	s := NewServer(Config{HoldTime: 2 * time.Second}, func(ctx context.Context, nc net.Conn, info Info) {
		defer nc.Close()
		_, err := io.Copy(io.Discard, nc)
		ended <- err
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, ln) }()
	dctx, dcancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer dcancel()
	nc, err := DialRTMPT(dctx, "rtmpt://"+ln.Addr().String(), DialOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	time.Sleep(100 * time.Millisecond) // an idle is held now
	start := time.Now()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return")
	}
	if took := time.Since(start); took > time.Second {
		t.Fatalf("Run took %v to stop with a held poll", took)
	}
	if err := <-ended; err != nil {
		t.Fatalf("core read %v, want a clean EOF", err)
	}
	if _, err := nc.Read(make([]byte, 1)); err == nil {
		t.Fatal("client read after server stop succeeded")
	}
}

// TestRunStopsWithASilentConnection: a connection that never sends its
// first byte (a browser's preconnect) does not hold up the server's stop
// until its sniff timeout.
func TestRunStopsWithASilentConnection(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := NewServer(Config{SniffTimeout: 30 * time.Second}, echo)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, ln) }()
	nc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	time.Sleep(50 * time.Millisecond) // accepted, sniffing
	start := time.Now()
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return within 10 s with a silent connection open")
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("Run took %v to stop with a silent connection open", took)
	}
}

func eventually(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}
