// Package certs owns the per-install certificate authority that the MITM proxy signs leaf certificates with:
// creating and loading it (with strict key file permissions), minting and caching leaves, and describing how to
// trust it.
package certs

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// File names inside the CA directory.
const (
	CertFile = "rootCA.pem"
	KeyFile  = "rootCA-key.pem"
)

const (
	caValidity   = 10 * 365 * 24 * time.Hour
	leafValidity = 30 * 24 * time.Hour
	clockSkew    = time.Hour
)

var (
	// ErrKeyPermissions means the CA key file is readable or writable by group or others.
	ErrKeyPermissions = errors.New("CA key file permissions too open")
	// ErrKeyMismatch means the CA certificate and key do not belong together.
	ErrKeyMismatch = errors.New("CA certificate and key do not match")
	// ErrIncomplete means only one of the two CA files exists.
	ErrIncomplete = errors.New("CA directory holds only one of certificate and key")
	// ErrNotCA means the stored certificate cannot sign certificates.
	ErrNotCA = errors.New("stored certificate is not a usable CA")
)

// CA is a loaded certificate authority: its certificate, its private key and where they live on disk.
type CA struct {
	cert     *x509.Certificate
	certPEM  []byte
	key      crypto.Signer
	certPath string
	keyPath  string
}

// LoadOrCreate loads the CA stored in dir, or creates one there when dir holds neither file. dir is created with
// mode 0700; the certificate is written 0644 and the key 0600, each atomically. A key file that group or others
// may access is refused with ErrKeyPermissions, and a certificate that does not match its key with ErrKeyMismatch.
func LoadOrCreate(dir string) (*CA, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create CA directory: %w", err)
	}
	certPath := filepath.Join(dir, CertFile)
	keyPath := filepath.Join(dir, KeyFile)
	certExists, err := exists(certPath)
	if err != nil {
		return nil, err
	}
	keyExists, err := exists(keyPath)
	if err != nil {
		return nil, err
	}
	switch {
	case certExists && keyExists:
		return load(certPath, keyPath)
	case certExists:
		return nil, fmt.Errorf("%s exists but %s is missing (restore it, or remove %s to create a new CA): %w",
			certPath, keyPath, certPath, ErrIncomplete)
	case keyExists:
		return nil, fmt.Errorf("%s exists but %s is missing (restore it, or remove %s to create a new CA): %w",
			keyPath, certPath, keyPath, ErrIncomplete)
	}
	return create(certPath, keyPath)
}

func exists(path string) (bool, error) {
	_, err := os.Stat(path)
	if err == nil {
		return true, nil
	}
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return false, fmt.Errorf("stat %s: %w", path, err)
}

func load(certPath, keyPath string) (*CA, error) {
	if runtime.GOOS != "windows" {
		fi, err := os.Stat(keyPath)
		if err != nil {
			return nil, fmt.Errorf("stat CA key: %w", err)
		}
		if mode := fi.Mode().Perm(); mode&0o077 != 0 {
			return nil, fmt.Errorf("%s has mode %#o, which lets other users read the CA key; fix it with `chmod 600 %s`: %w",
				keyPath, mode, keyPath, ErrKeyPermissions)
		}
	}
	certPEM, err := os.ReadFile(certPath)
	if err != nil {
		return nil, fmt.Errorf("read CA certificate: %w", err)
	}
	keyPEM, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, fmt.Errorf("read CA key: %w", err)
	}
	certBlock, _ := pem.Decode(certPEM)
	if certBlock == nil || certBlock.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("%s: no PEM CERTIFICATE block", certPath)
	}
	cert, err := x509.ParseCertificate(certBlock.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", certPath, err)
	}
	keyBlock, _ := pem.Decode(keyPEM)
	if keyBlock == nil {
		return nil, fmt.Errorf("%s: no PEM block", keyPath)
	}
	key, err := parseKey(keyBlock)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", keyPath, err)
	}
	pub, ok := cert.PublicKey.(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(key.Public()) {
		return nil, fmt.Errorf("%s and %s: %w", certPath, keyPath, ErrKeyMismatch)
	}
	if !cert.IsCA || !cert.BasicConstraintsValid || cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, fmt.Errorf("%s: %w", certPath, ErrNotCA)
	}
	if time.Now().After(cert.NotAfter) {
		return nil, fmt.Errorf("%s expired on %s (remove both CA files to create a new CA): %w",
			certPath, cert.NotAfter.Format(time.DateOnly), ErrNotCA)
	}
	return &CA{cert: cert, certPEM: pem.EncodeToMemory(certBlock), key: key, certPath: certPath, keyPath: keyPath}, nil
}

func parseKey(b *pem.Block) (crypto.Signer, error) {
	var k any
	var err error
	switch b.Type {
	case "PRIVATE KEY":
		k, err = x509.ParsePKCS8PrivateKey(b.Bytes)
	case "EC PRIVATE KEY":
		k, err = x509.ParseECPrivateKey(b.Bytes)
	case "RSA PRIVATE KEY":
		k, err = x509.ParsePKCS1PrivateKey(b.Bytes)
	default:
		return nil, fmt.Errorf("unsupported PEM block type %q", b.Type)
	}
	if err != nil {
		return nil, err
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("key of type %T cannot sign", k)
	}
	return s, nil
}

func create(certPath, keyPath string) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate CA key: %w", err)
	}
	spki, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		return nil, fmt.Errorf("marshal CA public key: %w", err)
	}
	skid := sha1.Sum(spki)
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	id := make([]byte, 4)
	if _, err := rand.Read(id); err != nil {
		return nil, fmt.Errorf("generate CA id: %w", err)
	}
	host, _ := os.Hostname()
	if host == "" {
		host = "localhost"
	}
	name := fmt.Sprintf("StreamSnatcher CA %s %s", host, hex.EncodeToString(id))
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: name, Organization: []string{name}},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              now.Add(caValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            0,
		MaxPathLenZero:        true,
		SubjectKeyId:          skid[:],
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("create CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parse new CA certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("marshal CA key: %w", err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	// Key first: a crash between the two writes leaves a key without a certificate, which LoadOrCreate reports
	// rather than silently replacing.
	if err := writeAtomic(keyPath, keyPEM, 0o600); err != nil {
		return nil, fmt.Errorf("write CA key: %w", err)
	}
	if err := writeAtomic(certPath, certPEM, 0o644); err != nil {
		return nil, fmt.Errorf("write CA certificate: %w", err)
	}
	return &CA{cert: cert, certPEM: certPEM, key: key, certPath: certPath, keyPath: keyPath}, nil
}

// writeAtomic writes data to a temporary file next to path with the given mode, syncs it and renames it over path.
func writeAtomic(path string, data []byte, mode os.FileMode) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.partial")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(tmp)
		}
	}()
	if err = f.Chmod(mode); err != nil {
		return err
	}
	if _, err = f.Write(data); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp, path); err != nil {
		return err
	}
	if d, derr := os.Open(dir); derr == nil {
		_ = d.Sync() // best effort: not every platform can sync a directory
		_ = d.Close()
	}
	return nil
}

func randomSerial() (*big.Int, error) {
	limit := new(big.Int).Lsh(big.NewInt(1), 128)
	n, err := rand.Int(rand.Reader, limit)
	if err != nil {
		return nil, fmt.Errorf("generate serial number: %w", err)
	}
	return n, nil
}

// Cert returns the CA certificate.
func (ca *CA) Cert() *x509.Certificate { return ca.cert }

// CertPEM returns the CA certificate in PEM form, as stored in CertPath.
func (ca *CA) CertPEM() []byte { return bytes.Clone(ca.certPEM) }

// TLSCert returns the CA as a tls.Certificate (certificate and private key).
func (ca *CA) TLSCert() tls.Certificate {
	return tls.Certificate{Certificate: [][]byte{ca.cert.Raw}, PrivateKey: ca.key, Leaf: ca.cert}
}

// CertPath returns the path of the CA certificate file.
func (ca *CA) CertPath() string { return ca.certPath }

// KeyPath returns the path of the CA private key file.
func (ca *CA) KeyPath() string { return ca.keyPath }

// Name returns the CA's subject common name, unique to this install.
func (ca *CA) Name() string { return ca.cert.Subject.CommonName }

// Fingerprint returns the SHA-256 fingerprint of the CA certificate as colon-separated upper-case hex, the form
// browsers and certutil display.
func (ca *CA) Fingerprint() string {
	sum := sha256.Sum256(ca.cert.Raw)
	parts := make([]string, len(sum))
	for i, b := range sum {
		parts[i] = fmt.Sprintf("%02X", b)
	}
	return strings.Join(parts, ":")
}

// SPKIHash returns the base64 (standard encoding) SHA-256 of the CA's SubjectPublicKeyInfo: the value Chromium's
// --ignore-certificate-errors-spki-list flag takes.
func (ca *CA) SPKIHash() string {
	sum := sha256.Sum256(ca.cert.RawSubjectPublicKeyInfo)
	return base64.StdEncoding.EncodeToString(sum[:])
}

// Mint issues a leaf certificate for host (a DNS name or an IP address, with or without a port) signed by the CA.
// The returned certificate's chain holds the leaf and the CA certificate; Leaf is set.
func (ca *CA) Mint(host string) (*tls.Certificate, error) {
	return ca.mintAt(host, time.Now())
}

func (ca *CA) mintAt(host string, now time.Time) (*tls.Certificate, error) {
	name := normalizeHost(host)
	if name == "" {
		return nil, fmt.Errorf("mint certificate for %q: empty host name", host)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("mint certificate for %s: generate key: %w", name, err)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, fmt.Errorf("mint certificate for %s: %w", name, err)
	}
	notAfter := now.Add(leafValidity)
	if notAfter.After(ca.cert.NotAfter) {
		notAfter = ca.cert.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: name, Organization: []string{"StreamSnatcher leaf"}},
		NotBefore:    now.Add(-clockSkew),
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if ip := net.ParseIP(name); ip != nil {
		tmpl.IPAddresses = []net.IP{ip}
	} else {
		tmpl.DNSNames = []string{name}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		return nil, fmt.Errorf("mint certificate for %s: %w", name, err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("mint certificate for %s: parse: %w", name, err)
	}
	return &tls.Certificate{
		Certificate: [][]byte{der, ca.cert.Raw},
		PrivateKey:  key,
		Leaf:        leaf,
	}, nil
}

// normalizeHost strips a port and IPv6 brackets and lower-cases the name.
func normalizeHost(host string) string {
	h := host
	if hh, _, err := net.SplitHostPort(host); err == nil {
		h = hh
	}
	h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
	h = strings.TrimSuffix(h, ".")
	return strings.ToLower(h)
}
