package handshake

import (
	"crypto/hmac"
	"crypto/sha256"
)

const (
	// packetSize is the size of C1, S1, C2 and S2.
	packetSize = 1536
	// digestSize is the size of an HMAC-SHA256 digest.
	digestSize = sha256.Size
	// signatureAt is where the signature of a digest-mode C2/S2 starts:
	// 1504 random bytes, then the 32-byte HMAC of those bytes.
	signatureAt = packetSize - digestSize
)

// keyTail is the 32 bytes shared by the Flash Player and the Flash Media
// Server keys.
const keyTail = "\xF0\xEE\xC2\x4A\x80\x68\xBE\xE8\x2E\x00\xD0\xD1\x02\x9E\x7E\x57" +
	"\x6E\xEC\x5D\x2D\x29\x80\x6F\xAB\x93\xB8\xE6\x36\xCF\xEB\x31\xAE"

var (
	// playerKey is the full Flash Player key (62 bytes); its first 30
	// bytes, the text alone, sign C1.
	playerKey = []byte("Genuine Adobe Flash Player 001" + keyTail)
	// serverKey is the full Flash Media Server key (68 bytes); its first
	// 36 bytes, the text alone, sign S1.
	serverKey = []byte("Genuine Adobe Flash Media Server 001" + keyTail)

	playerKeyText = playerKey[:30]
	serverKeyText = serverKey[:36]
)

// digestOffset returns where the 32-byte digest sits in a 1536-byte C1 or
// S1 under the given scheme. Scheme 0 derives it from bytes 8-11 (digest
// in 12..771), scheme 1 from bytes 772-775 (digest in 776..1535).
func digestOffset(p []byte, scheme int) int {
	base := 8
	if scheme == 1 {
		base = 772
	}
	sum := int(p[base]) + int(p[base+1]) + int(p[base+2]) + int(p[base+3])
	return sum%728 + base + 4
}

// computeDigest returns the HMAC-SHA256 under key of the 1536-byte packet p
// without the 32 bytes at off.
func computeDigest(p []byte, off int, key []byte) []byte {
	h := hmac.New(sha256.New, key)
	h.Write(p[:off])
	h.Write(p[off+digestSize:])
	return h.Sum(nil)
}

// findDigest looks for a valid digest in p under key, trying scheme 0 and
// then scheme 1. It returns the scheme and the digest bytes (a sub-slice of
// p).
func findDigest(p []byte, key []byte) (scheme int, digest []byte, ok bool) {
	for scheme := 0; scheme <= 1; scheme++ {
		off := digestOffset(p, scheme)
		if hmac.Equal(computeDigest(p, off, key), p[off:off+digestSize]) {
			return scheme, p[off : off+digestSize], true
		}
	}
	return -1, nil, false
}

// imprintDigest writes the digest of p under key at the scheme's offset
// and returns that offset.
func imprintDigest(p []byte, scheme int, key []byte) int {
	off := digestOffset(p, scheme)
	copy(p[off:], computeDigest(p, off, key))
	return off
}

// signature returns the signature of a digest-mode C2/S2:
// HMAC(HMAC(fullKey, peerDigest), p[:1504]).
func signature(p []byte, fullKey, peerDigest []byte) []byte {
	h := hmac.New(sha256.New, fullKey)
	h.Write(peerDigest)
	h = hmac.New(sha256.New, h.Sum(nil))
	h.Write(p[:signatureAt])
	return h.Sum(nil)
}
