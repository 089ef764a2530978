// Package handshake implements the RTMP handshake, both the simple one of
// the RTMP 1.0 specification and the digest ("FP9") one that Flash Player
// and Flash Media Server use.
//
// The exchange is C0 C1 -> S0 S1 S2 -> C2, where C0 and S0 are the version
// byte (3) and C1, S1, C2 and S2 are 1536 bytes each. In the simple
// handshake S1 carries a zero version and S2 echoes C1. In the digest
// handshake C1 and S1 carry an HMAC-SHA256 digest at an offset derived from
// their own bytes (scheme 0 or 1), and C2/S2 end with a signature that
// proves the peer saw the other side's digest.
//
// The package works on any io.ReadWriter (a TCP connection, an RTMPT
// session, a QUIC stream), tolerates reads that return a few bytes at a
// time, never logs and never starts goroutines.
package handshake

import (
	"crypto/hmac"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"
)

// rtmpVersion is the only version byte accepted in C0 and S0.
const rtmpVersion = 3

var (
	// serverVersion is sent in S1 of a digest handshake: an FMS 3.5 build,
	// which clients treat as "digest capable" (version byte >= 3).
	serverVersion = [4]byte{3, 5, 1, 1}
	// clientVersion is sent in a digest C1, as FFmpeg does.
	clientVersion = [4]byte{9, 0, 124, 2}
)

// Info describes the client as seen in its C1.
type Info struct {
	// ClientVersion is C1[4:8], the client's Flash Player version; all
	// zero for clients that want the simple handshake.
	ClientVersion [4]byte
	// Digest reports whether C1 carried a valid Flash Player digest and
	// the server answered with the digest handshake.
	Digest bool
	// Scheme is the digest scheme of C1 (0 or 1) when Digest is true and
	// -1 otherwise.
	Scheme int
	// ClientTime is C1[0:4], the client's epoch in milliseconds.
	ClientTime uint32
}

// VersionError reports a C0 or S0 byte other than 3, such as 6 for RTMPE
// (encrypted RTMP), which this package does not implement.
type VersionError struct {
	Packet  string // "C0" or "S0"
	Version byte
}

func (e *VersionError) Error() string {
	switch e.Version {
	case 6, 8, 9:
		return fmt.Sprintf("rtmp handshake: %s is 0x%02x: RTMPE (encrypted RTMP) is not supported", e.Packet, e.Version)
	default:
		return fmt.Sprintf("rtmp handshake: %s is 0x%02x: unsupported RTMP version (want 3)", e.Packet, e.Version)
	}
}

// ErrSignature is returned by Client when the server answered with a
// digest S1 but its S2 does not carry the matching signature.
var ErrSignature = errors.New("rtmp handshake: S2 signature does not match C1 digest")

// env holds the sources of randomness and time, so tests can fix them.
type env struct {
	rand io.Reader
	now  func() uint32
}

var defaultEnv = env{
	rand: rand.Reader,
	now:  func() uint32 { return uint32(time.Now().UnixMilli()) },
}

// Server performs the server side of the RTMP handshake on rw: it reads C0
// and C1, writes S0 S1 S2 in one write and reads C2.
//
// If C1 carries a valid Flash Player digest (scheme 0 or 1), Server answers
// with the digest handshake: S1 with an FMS version and the FMS digest in
// the client's scheme, and S2 = 1504 random bytes followed by
// HMAC(HMAC(full FMS key, C1 digest), S2[:1504]). Otherwise it answers with
// the simple handshake: S1 with a zero version and S2 echoing C1. The
// content of C2 is not checked: FFmpeg echoes S1 where Flash signs it, and
// other clients send anything.
//
// A C0 other than 3 yields a *VersionError before anything is written.
// Reads may return any number of bytes; a short input yields an error
// wrapping io.EOF or io.ErrUnexpectedEOF. Server sets no deadline: the
// caller bounds the handshake with its connection's.
func Server(rw io.ReadWriter) (*Info, error) {
	return server(rw, defaultEnv)
}

func server(rw io.ReadWriter, e env) (*Info, error) {
	var c0 [1]byte
	if _, err := io.ReadFull(rw, c0[:]); err != nil {
		return nil, fmt.Errorf("rtmp handshake: read C0: %w", err)
	}
	if c0[0] != rtmpVersion {
		return nil, &VersionError{Packet: "C0", Version: c0[0]}
	}
	c1 := make([]byte, packetSize)
	if _, err := io.ReadFull(rw, c1); err != nil {
		return nil, fmt.Errorf("rtmp handshake: read C1: %w", err)
	}

	info := &Info{ClientTime: binary.BigEndian.Uint32(c1), Scheme: -1}
	copy(info.ClientVersion[:], c1[4:8])
	var c1Digest []byte
	if info.ClientVersion != [4]byte{} {
		if scheme, d, ok := findDigest(c1, playerKeyText); ok {
			info.Digest, info.Scheme, c1Digest = true, scheme, d
		}
	}

	out := make([]byte, 1+2*packetSize)
	out[0] = rtmpVersion
	s1 := out[1 : 1+packetSize]
	s2 := out[1+packetSize:]
	binary.BigEndian.PutUint32(s1, e.now())
	if _, err := io.ReadFull(e.rand, s1[8:]); err != nil {
		return nil, fmt.Errorf("rtmp handshake: random: %w", err)
	}
	if info.Digest {
		copy(s1[4:8], serverVersion[:])
		imprintDigest(s1, info.Scheme, serverKeyText)
		if _, err := io.ReadFull(e.rand, s2[:signatureAt]); err != nil {
			return nil, fmt.Errorf("rtmp handshake: random: %w", err)
		}
		copy(s2[signatureAt:], signature(s2, serverKey, c1Digest))
	} else {
		copy(s2, c1)
	}
	if _, err := rw.Write(out); err != nil {
		return nil, fmt.Errorf("rtmp handshake: write S0S1S2: %w", err)
	}

	// C2 is read into C1's buffer: only its length matters.
	if _, err := io.ReadFull(rw, c1); err != nil {
		return nil, fmt.Errorf("rtmp handshake: read C2: %w", err)
	}
	return info, nil
}

// Client performs the client side of the RTMP handshake on rw: it writes
// C0 C1, reads S0 S1 S2 and writes C2.
//
// With digest true, C1 carries version 9.0.124.2 and a Flash Player digest
// (scheme 0), as FFmpeg sends. If the server then answers with a valid FMS
// digest in S1, Client checks the S2 signature (ErrSignature on mismatch)
// and signs C2; otherwise, and always with digest false, C2 echoes S1.
func Client(rw io.ReadWriter, digest bool) error {
	return client(rw, digest, defaultEnv)
}

func client(rw io.ReadWriter, digest bool, e env) error {
	out := make([]byte, 1+packetSize)
	out[0] = rtmpVersion
	c1 := out[1:]
	binary.BigEndian.PutUint32(c1, e.now())
	if _, err := io.ReadFull(e.rand, c1[8:]); err != nil {
		return fmt.Errorf("rtmp handshake: random: %w", err)
	}
	var c1Digest []byte
	if digest {
		copy(c1[4:8], clientVersion[:])
		off := imprintDigest(c1, 0, playerKeyText)
		c1Digest = c1[off : off+digestSize]
	}
	if _, err := rw.Write(out); err != nil {
		return fmt.Errorf("rtmp handshake: write C0C1: %w", err)
	}

	in := make([]byte, 1+2*packetSize)
	if _, err := io.ReadFull(rw, in[:1]); err != nil {
		return fmt.Errorf("rtmp handshake: read S0: %w", err)
	}
	if in[0] != rtmpVersion {
		return &VersionError{Packet: "S0", Version: in[0]}
	}
	s1 := in[1 : 1+packetSize]
	s2 := in[1+packetSize:]
	if _, err := io.ReadFull(rw, s1); err != nil {
		return fmt.Errorf("rtmp handshake: read S1: %w", err)
	}
	if _, err := io.ReadFull(rw, s2); err != nil {
		return fmt.Errorf("rtmp handshake: read S2: %w", err)
	}

	c2 := make([]byte, packetSize)
	var s1Digest []byte
	if digest && s1[4] != 0 {
		_, s1Digest, _ = findDigest(s1, serverKeyText)
	}
	if s1Digest != nil {
		if !hmac.Equal(s2[signatureAt:], signature(s2, serverKey, c1Digest)) {
			return ErrSignature
		}
		if _, err := io.ReadFull(e.rand, c2[:signatureAt]); err != nil {
			return fmt.Errorf("rtmp handshake: random: %w", err)
		}
		copy(c2[signatureAt:], signature(c2, playerKey, s1Digest))
	} else {
		copy(c2, s1)
	}
	if _, err := rw.Write(c2); err != nil {
		return fmt.Errorf("rtmp handshake: write C2: %w", err)
	}
	return nil
}
