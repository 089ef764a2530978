package tunnel

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Fingerprint is the SHA-256 of a certificate's DER encoding, in hex: what
// clients pin (DialQUIC's PinSHA256, rtmphub bridge --pin).
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

// Self-signed certificate files in the data directory.
const (
	SelfSignedCertFile = "rtmphub-selfsigned.crt"
	SelfSignedKeyFile  = "rtmphub-selfsigned.key"
)

// LoadOrCreateSelfSigned loads the self-signed certificate kept in dir,
// making it (ECDSA P-256, ten years, names localhost and the loopback
// addresses) the first time. created says whether it was just made.
func LoadOrCreateSelfSigned(dir string) (cert tls.Certificate, created bool, err error) {
	certPath := filepath.Join(dir, SelfSignedCertFile)
	keyPath := filepath.Join(dir, SelfSignedKeyFile)
	cert, err = tls.LoadX509KeyPair(certPath, keyPath)
	if err == nil {
		return cert, false, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return tls.Certificate{}, false, fmt.Errorf("self-signed certificate %s: %w", certPath, err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, false, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return tls.Certificate{}, false, err
	}
	host, _ := os.Hostname()
	names := []string{"localhost"}
	if host != "" && host != "localhost" {
		names = append(names, host)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "rtmphub self-signed"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		DNSNames:              names,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, false, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return tls.Certificate{}, false, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return tls.Certificate{}, false, err
	}
	if err := writeFileAtomic(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return tls.Certificate{}, false, err
	}
	if err := writeFileAtomic(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return tls.Certificate{}, false, err
	}
	cert, err = tls.LoadX509KeyPair(certPath, keyPath)
	return cert, err == nil, err
}

func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path))
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
