package handshake

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"testing"
	"testing/iotest"
	"time"
)

// conn joins a reader and a writer into an io.ReadWriter.
type conn struct {
	io.Reader
	io.Writer
}

// patternReader yields the fixed stream byte(k*13+5), k = 0, 1, ...
type patternReader struct{ k int }

func (r *patternReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(r.k*13 + 5)
		r.k++
	}
	return len(p), nil
}

func fixedEnv(t uint32) env {
	return env{rand: &patternReader{}, now: func() uint32 { return t }}
}

// patternC1 builds a C1 with time 01020304, version 9.0.124.2 and bytes
// byte(i*7+3); with a scheme >= 0 it carries a Flash Player digest.
func patternC1(scheme int) []byte {
	p := make([]byte, packetSize)
	copy(p, []byte{1, 2, 3, 4, 9, 0, 124, 2})
	for i := 8; i < packetSize; i++ {
		p[i] = byte(i*7 + 3)
	}
	if scheme >= 0 {
		imprintDigest(p, scheme, playerKeyText)
	}
	return p
}

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The expected values below were computed independently of this package
// (a short Python script with hmac/hashlib over the same byte patterns).
var digestVectors = []struct {
	name     string
	scheme   int
	c1Off    int // (sum of C1[8:12] mod 728) + 12, or (sum of C1[772:776] mod 728) + 776
	c1Digest string
	s1Off    int
	s1Digest string
	s2Sig    string
}{
	{
		name:     "scheme 0 (FFmpeg, Flash Player 9+)",
		scheme:   0,
		c1Off:    290, // 59+66+73+80 = 278; 278+12
		c1Digest: "02b501f762a66efbab6ba60b603fe042a0c48fd3ddfc0f5227674870cc9f355c",
		s1Off:    110, // 5+18+31+44 = 98; 98+12
		s1Digest: "1220ae1ec8e964a19b5bae286e411bd56d0d0fd6a958069499af1c7fe79c7aab",
		s2Sig:    "2a4320e32cd3b829c80169cb48c02b99570db7dbc15229ce728c443fd0695c80",
	},
	{
		name:     "scheme 1 (Flash Player 10 style)",
		scheme:   1,
		c1Off:    942,
		c1Digest: "1fef719bde97eb5b5f9ff2678e9076f0ad77a06a62a6716de49cd843f9d7ffa4",
		s1Off:    962,
		s1Digest: "4aec5cf9de08da8a6e88623c098e32b91e87fde3a0fee01a8342b8c5cc642c0b",
		s2Sig:    "c2fc60d2fae0cc97fb083faa45888ee9c9f3e4016576ba014aa54d5ae80b01c3",
	},
}

func TestDigestVectors(t *testing.T) {
	for _, v := range digestVectors {
		t.Run(v.name, func(t *testing.T) {
			c1 := patternC1(v.scheme)
			if off := digestOffset(c1, v.scheme); off != v.c1Off {
				t.Fatalf("C1 digest offset = %d, want %d", off, v.c1Off)
			}
			if got := c1[v.c1Off : v.c1Off+digestSize]; !bytes.Equal(got, unhex(t, v.c1Digest)) {
				t.Fatalf("C1 digest = %x, want %s", got, v.c1Digest)
			}

			in := append([]byte{3}, c1...)
			in = append(in, make([]byte, packetSize)...) // C2
			var out bytes.Buffer
			info, err := server(conn{bytes.NewReader(in), &out}, fixedEnv(0x0a0b0c0d))
			if err != nil {
				t.Fatal(err)
			}
			want := Info{ClientVersion: [4]byte{9, 0, 124, 2}, Digest: true, Scheme: v.scheme, ClientTime: 0x01020304}
			if *info != want {
				t.Fatalf("info = %+v, want %+v", *info, want)
			}
			b := out.Bytes()
			if len(b) != 1+2*packetSize || b[0] != 3 {
				t.Fatalf("S0S1S2: %d bytes, S0 %d", len(b), b[0])
			}
			s1, s2 := b[1:1+packetSize], b[1+packetSize:]
			if !bytes.Equal(s1[:8], []byte{0x0a, 0x0b, 0x0c, 0x0d, 3, 5, 1, 1}) {
				t.Fatalf("S1 time/version = %x", s1[:8])
			}
			if off := digestOffset(s1, v.scheme); off != v.s1Off {
				t.Fatalf("S1 digest offset = %d, want %d", off, v.s1Off)
			}
			if got := s1[v.s1Off : v.s1Off+digestSize]; !bytes.Equal(got, unhex(t, v.s1Digest)) {
				t.Fatalf("S1 digest = %x, want %s", got, v.s1Digest)
			}
			if got := s2[signatureAt:]; !bytes.Equal(got, unhex(t, v.s2Sig)) {
				t.Fatalf("S2 signature = %x, want %s", got, v.s2Sig)
			}
			// The rest of S1 and S2 is the random stream.
			r := &patternReader{}
			rnd := make([]byte, 1528+1504)
			r.Read(rnd)
			s1rest := append(append([]byte{}, s1[8:v.s1Off]...), s1[v.s1Off+digestSize:]...)
			wantRest := append(append([]byte{}, rnd[:v.s1Off-8]...), rnd[v.s1Off-8+digestSize:1528]...)
			if !bytes.Equal(s1rest, wantRest) || !bytes.Equal(s2[:signatureAt], rnd[1528:]) {
				t.Fatal("S1/S2 random part differs from the random source")
			}
		})
	}
}

func TestServerSimple(t *testing.T) {
	noDigest := patternC1(-1) // version 9.0.124.2 but no valid digest
	zeroVersion := patternC1(-1)
	copy(zeroVersion[4:8], []byte{0, 0, 0, 0})
	// librtmp (plain rtmp://) sends a zero version; a C1 with a
	// version but a wrong digest also gets the simple handshake.
	for _, tc := range []struct {
		name    string
		c1      []byte
		version [4]byte
	}{
		{"librtmp, zero version", zeroVersion, [4]byte{}},
		{"version without digest", noDigest, [4]byte{9, 0, 124, 2}},
		{"digest in the wrong key", func() []byte {
			p := patternC1(-1)
			imprintDigest(p, 0, serverKeyText)
			return p
		}(), [4]byte{9, 0, 124, 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := append([]byte{3}, tc.c1...)
			in = append(in, bytes.Repeat([]byte{0xee}, packetSize)...)
			var out bytes.Buffer
			info, err := server(conn{bytes.NewReader(in), &out}, fixedEnv(7))
			if err != nil {
				t.Fatal(err)
			}
			if info.Digest || info.Scheme != -1 || info.ClientVersion != tc.version || info.ClientTime != 0x01020304 {
				t.Fatalf("info = %+v", *info)
			}
			b := out.Bytes()
			s1, s2 := b[1:1+packetSize], b[1+packetSize:]
			if !bytes.Equal(s1[:8], []byte{0, 0, 0, 7, 0, 0, 0, 0}) {
				t.Fatalf("S1 time/version = %x, want zero version", s1[:8])
			}
			if !bytes.Equal(s2, tc.c1) {
				t.Fatal("S2 is not an echo of C1")
			}
		})
	}
}

func TestServerBadC0(t *testing.T) {
	for _, tc := range []struct {
		name  string
		c0    byte
		rtmpe bool
	}{
		{"RTMPE", 0x06, true},
		{"RTMPE XTEA", 0x08, true},
		{"RTMPE Blowfish", 0x09, true},
		{"HTTP GET", 'G', false},
		{"version 0", 0, false},
		{"TLS ClientHello", 0x16, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := append([]byte{tc.c0}, patternC1(0)...)
			var out bytes.Buffer
			_, err := Server(conn{bytes.NewReader(in), &out})
			var ve *VersionError
			if !errors.As(err, &ve) || ve.Version != tc.c0 || ve.Packet != "C0" {
				t.Fatalf("err = %v, want *VersionError for 0x%02x", err, tc.c0)
			}
			if got := bytes.Contains([]byte(err.Error()), []byte("RTMPE")); got != tc.rtmpe {
				t.Fatalf("error %q mentions RTMPE: %v, want %v", err, got, tc.rtmpe)
			}
			if out.Len() != 0 {
				t.Fatalf("wrote %d bytes after a bad C0", out.Len())
			}
		})
	}
}

func TestServerTruncated(t *testing.T) {
	full := append([]byte{3}, patternC1(0)...)
	full = append(full, make([]byte, packetSize)...)
	for _, tc := range []struct {
		name  string
		n     int
		wrote bool // S0S1S2 written before the input ran out
	}{
		{"empty", 0, false},
		{"C0 only", 1, false},
		{"half C1", 1 + packetSize/2, false},
		{"C1 short by one", packetSize, false},
		{"no C2", 1 + packetSize, true},
		{"C2 short by one", 2 * packetSize, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			_, err := Server(conn{iotest.HalfReader(bytes.NewReader(full[:tc.n])), &out})
			if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("err = %v, want EOF", err)
			}
			if wrote := out.Len() == 1+2*packetSize; wrote != tc.wrote {
				t.Fatalf("wrote %d bytes", out.Len())
			}
		})
	}
}

// HTTP tunnels deliver the handshake a few bytes at a time.
func TestServerTinyReads(t *testing.T) {
	for _, scheme := range []int{-1, 0, 1} {
		in := append([]byte{3}, patternC1(scheme)...)
		in = append(in, make([]byte, packetSize)...)
		info, err := Server(conn{iotest.OneByteReader(bytes.NewReader(in)), io.Discard})
		if err != nil {
			t.Fatalf("scheme %d: %v", scheme, err)
		}
		if info.Digest != (scheme >= 0) || info.Scheme != scheme {
			t.Fatalf("scheme %d: info = %+v", scheme, *info)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	for _, digest := range []bool{false, true} {
		name := "simple"
		if digest {
			name = "digest"
		}
		t.Run(name, func(t *testing.T) {
			a, b := net.Pipe()
			defer a.Close()
			defer b.Close()
			deadline := time.Now().Add(5 * time.Second)
			a.SetDeadline(deadline)
			b.SetDeadline(deadline)
			done := make(chan error, 1)
			go func() { done <- Client(b, digest) }()
			info, err := Server(a)
			if err != nil {
				t.Fatal(err)
			}
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if info.Digest != digest {
				t.Fatalf("info = %+v", *info)
			}
			if digest && (info.ClientVersion != clientVersion || info.Scheme != 0) {
				t.Fatalf("info = %+v", *info)
			}
		})
	}
}

// scriptedServer runs Client against a scripted server that answers with
// S0, then S1 and S2 built by mk from C1, and returns the C2 the client
// sent.
func scriptedServer(t *testing.T, digest bool, mk func(c1 []byte) (s1, s2 []byte)) ([]byte, error) {
	t.Helper()
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	deadline := time.Now().Add(5 * time.Second)
	a.SetDeadline(deadline)
	b.SetDeadline(deadline)
	done := make(chan error, 1)
	go func() { done <- Client(b, digest) }()
	c0c1 := make([]byte, 1+packetSize)
	if _, err := io.ReadFull(a, c0c1); err != nil {
		t.Fatal(err)
	}
	s1, s2 := mk(c0c1[1:])
	c2ch := make(chan []byte, 1)
	go func() {
		a.Write(append(append([]byte{3}, s1...), s2...))
		c2 := make([]byte, packetSize)
		if _, err := io.ReadFull(a, c2); err != nil {
			c2 = nil
		}
		c2ch <- c2
	}()
	if err := <-done; err != nil {
		a.Close()
		<-c2ch
		return nil, err
	}
	c2 := <-c2ch
	if c2 == nil {
		t.Fatal("no C2")
	}
	return c2, nil
}

func TestClientAgainstSimpleServer(t *testing.T) {
	// Servers answering with a zero version (plain RTMP) or an unsigned
	// S1 get the simple handshake even when the client offered a digest.
	for _, digest := range []bool{false, true} {
		for _, version := range [][4]byte{{0, 0, 0, 0}, {3, 5, 1, 1}} {
			var s1 []byte
			c2, err := scriptedServer(t, digest, func(c1 []byte) ([]byte, []byte) {
				s1 = patternC1(-1)
				copy(s1[4:8], version[:])
				return s1, c1
			})
			if err != nil {
				t.Fatalf("digest=%v version=%v: %v", digest, version, err)
			}
			if !bytes.Equal(c2, s1) {
				t.Fatalf("digest=%v version=%v: C2 is not an echo of S1", digest, version)
			}
		}
	}
}

func TestClientDigest(t *testing.T) {
	// A digest server: check C1, sign S1, sign S2; then check the
	// client's C2 signature.
	var s1Digest []byte
	c2, err := scriptedServer(t, true, func(c1 []byte) ([]byte, []byte) {
		if !bytes.Equal(c1[4:8], []byte{9, 0, 124, 2}) {
			t.Errorf("C1 version = %v", c1[4:8])
		}
		scheme, c1Digest, ok := findDigest(c1, playerKeyText)
		if !ok || scheme != 0 {
			t.Errorf("C1 digest: ok=%v scheme=%d", ok, scheme)
		}
		s1 := make([]byte, packetSize)
		copy(s1[4:], serverVersion[:])
		off := imprintDigest(s1, 1, serverKeyText) // clients try both schemes
		s1Digest = s1[off : off+digestSize]
		s2 := make([]byte, packetSize)
		copy(s2[signatureAt:], signature(s2, serverKey, c1Digest))
		return s1, s2
	})
	if err != nil {
		t.Fatal(err)
	}
	// Computed by hand: HMAC(HMAC(full FP key, S1 digest), C2[:1504]).
	k := hmac.New(sha256.New, playerKey)
	k.Write(s1Digest)
	h := hmac.New(sha256.New, k.Sum(nil))
	h.Write(c2[:signatureAt])
	if !bytes.Equal(h.Sum(nil), c2[signatureAt:]) {
		t.Fatal("C2 signature mismatch")
	}
}

func TestClientBadSignature(t *testing.T) {
	_, err := scriptedServer(t, true, func(c1 []byte) ([]byte, []byte) {
		s1 := make([]byte, packetSize)
		copy(s1[4:], serverVersion[:])
		imprintDigest(s1, 0, serverKeyText)
		return s1, c1 // echo instead of a signed S2
	})
	if !errors.Is(err, ErrSignature) {
		t.Fatalf("err = %v, want ErrSignature", err)
	}
}

func TestClientBadS0(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	done := make(chan error, 1)
	go func() { done <- Client(b, false) }()
	io.ReadFull(a, make([]byte, 1+packetSize))
	a.Write([]byte{6})
	var ve *VersionError
	if err := <-done; !errors.As(err, &ve) || ve.Packet != "S0" {
		t.Fatalf("err = %v", err)
	}
}

func FuzzServer(f *testing.F) {
	c2 := make([]byte, packetSize)
	for _, scheme := range []int{-1, 0, 1} {
		in := append([]byte{3}, patternC1(scheme)...)
		f.Add(append(in, c2...))
	}
	f.Add([]byte{6})
	f.Add([]byte{3, 0, 0})
	f.Fuzz(func(t *testing.T, in []byte) {
		info, err := Server(conn{bytes.NewReader(in), io.Discard})
		complete := len(in) >= 1+2*packetSize && in[0] == 3
		if complete != (err == nil) {
			t.Fatalf("len %d C0 %v: err = %v", len(in), in[:min(len(in), 1)], err)
		}
		if err == nil && info.Digest != (info.Scheme >= 0) {
			t.Fatalf("info = %+v", *info)
		}
	})
}
