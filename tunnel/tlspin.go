package tunnel

// Certificate pins: a client that knows the SHA-256 of the server's
// certificate accepts that certificate and no other, whoever signed it.
// This is how clients trust a hub's self-signed QUIC certificate (whose
// fingerprint the hub logs), and the bridge pins rtmps and rtmpts servers
// the same way.

import (
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// Fingerprint is the SHA-256 of a certificate's DER encoding, in hex: what
// clients pin (rtmpquic.DialOptions.PinSHA256, rtmphub bridge --pin).
func Fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}

// parsePin accepts a fingerprint in hex, upper or lower case, with or
// without colons, optionally prefixed "sha256:" or "sha256/".
func parsePin(pin string) ([]byte, error) {
	p := strings.TrimSpace(pin)
	if len(p) > 7 && strings.EqualFold(p[:6], "sha256") && (p[6] == ':' || p[6] == '/') {
		p = p[7:]
	}
	p = strings.ReplaceAll(p, ":", "")
	b, err := hex.DecodeString(p)
	if err != nil || len(b) != sha256.Size {
		return nil, fmt.Errorf("bad certificate pin %q: want the 64 hex digits of a SHA-256", pin)
	}
	return b, nil
}

// ClientTLSConfig is the TLS configuration of a client that verifies the
// server by pin (only the certificate with that SHA-256 is accepted,
// whatever its name or issuer), accepts anything (insecure), or else
// verifies normally with base (or the system roots) for serverName.
func ClientTLSConfig(serverName string, insecure bool, pin string, base *tls.Config) (*tls.Config, error) {
	var tc *tls.Config
	if base != nil {
		tc = base.Clone()
	} else {
		tc = &tls.Config{}
	}
	if tc.ServerName == "" {
		tc.ServerName = serverName
	}
	switch {
	case pin != "":
		want, err := parsePin(pin)
		if err != nil {
			return nil, err
		}
		tc.InsecureSkipVerify = true // replaced by the pin check below
		tc.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("server sent no certificate")
			}
			got := sha256.Sum256(cs.PeerCertificates[0].Raw)
			if subtle.ConstantTimeCompare(got[:], want) != 1 {
				return &PinMismatchError{Got: hex.EncodeToString(got[:]), Want: hex.EncodeToString(want)}
			}
			return nil
		}
	case insecure:
		tc.InsecureSkipVerify = true
	}
	return tc, nil
}

// PinMismatchError is a server certificate that is not the pinned one.
type PinMismatchError struct{ Got, Want string }

func (e *PinMismatchError) Error() string {
	return "server certificate sha256 " + e.Got + " does not match the pin " + e.Want
}
