package certs

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

func newCA(t *testing.T) *CA {
	t.Helper()
	ca, err := LoadOrCreate(filepath.Join(t.TempDir(), "ca"))
	if err != nil {
		t.Fatalf("LoadOrCreate: %v", err)
	}
	return ca
}

func TestLoadOrCreatePermissions(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("POSIX modes")
	}
	dir := filepath.Join(t.TempDir(), "ca")
	ca, err := LoadOrCreate(dir)
	if err != nil {
		t.Fatalf("LoadOrCreate: %v", err)
	}
	for _, c := range []struct {
		name string
		path string
		want os.FileMode
	}{
		{"dir", dir, 0o700},
		{"key", ca.KeyPath(), 0o600},
		{"cert", ca.CertPath(), 0o644},
	} {
		t.Run(c.name, func(t *testing.T) {
			fi, err := os.Stat(c.path)
			if err != nil {
				t.Fatal(err)
			}
			if got := fi.Mode().Perm(); got != c.want {
				t.Errorf("mode of %s: got %#o, want %#o", c.path, got, c.want)
			}
		})
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Errorf("CA dir holds %d entries, want 2 (no temporary files left)", len(entries))
	}
}

func TestLoadRefusesOpenKey(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("POSIX modes")
	}
	for _, mode := range []os.FileMode{0o644, 0o640, 0o604, 0o660} {
		t.Run(fmt.Sprintf("%#o", mode), func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "ca")
			ca, err := LoadOrCreate(dir)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(ca.KeyPath(), mode); err != nil {
				t.Fatal(err)
			}
			_, err = LoadOrCreate(dir)
			if !errors.Is(err, ErrKeyPermissions) {
				t.Fatalf("LoadOrCreate with key mode %#o: got %v, want ErrKeyPermissions", mode, err)
			}
			if want := "chmod 600 " + ca.KeyPath(); !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not tell the fix %q", err, want)
			}
		})
	}
	t.Run("0400 accepted", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "ca")
		ca, err := LoadOrCreate(dir)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(ca.KeyPath(), 0o400); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadOrCreate(dir); err != nil {
			t.Fatalf("LoadOrCreate with key mode 0400: %v", err)
		}
	})
}

func TestReloadGivesSameCA(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ca")
	a, err := LoadOrCreate(dir)
	if err != nil {
		t.Fatal(err)
	}
	b, err := LoadOrCreate(dir)
	if err != nil {
		t.Fatal(err)
	}
	if a.Fingerprint() != b.Fingerprint() || a.SPKIHash() != b.SPKIHash() {
		t.Errorf("reload: got fingerprint %s, want %s", b.Fingerprint(), a.Fingerprint())
	}
	// The reloaded key must be able to mint leaves the original certificate verifies.
	leaf, err := b.Mint("reload.test")
	if err != nil {
		t.Fatal(err)
	}
	verifyLeaf(t, a, leaf, "reload.test")
}

func TestTwoInstallsDiffer(t *testing.T) {
	a, b := newCA(t), newCA(t)
	if a.Name() == b.Name() {
		t.Errorf("two installs share the name %q", a.Name())
	}
	if a.Cert().Subject.Organization[0] == b.Cert().Subject.Organization[0] {
		t.Errorf("two installs share the organization %q", a.Cert().Subject.Organization[0])
	}
	if a.SPKIHash() == b.SPKIHash() {
		t.Error("two installs share a key")
	}
	if a.Cert().SerialNumber.Cmp(b.Cert().SerialNumber) == 0 {
		t.Error("two installs share a serial number")
	}
}

func TestCAProperties(t *testing.T) {
	ca := newCA(t)
	c := ca.Cert()
	if !c.IsCA || !c.BasicConstraintsValid || c.MaxPathLen != 0 || !c.MaxPathLenZero {
		t.Errorf("basic constraints: IsCA=%v valid=%v MaxPathLen=%d zero=%v", c.IsCA, c.BasicConstraintsValid, c.MaxPathLen, c.MaxPathLenZero)
	}
	if c.KeyUsage&x509.KeyUsageCertSign == 0 {
		t.Error("CA lacks KeyUsageCertSign")
	}
	if len(c.SubjectKeyId) == 0 {
		t.Error("CA lacks SubjectKeyId")
	}
	if c.PublicKeyAlgorithm != x509.ECDSA {
		t.Errorf("key algorithm: got %v, want ECDSA", c.PublicKeyAlgorithm)
	}
	if got := c.NotAfter.Sub(c.NotBefore); got < 10*365*24*time.Hour {
		t.Errorf("validity: got %v, want at least 10 years", got)
	}
	if c.SerialNumber.BitLen() < 64 {
		t.Errorf("serial has %d bits, want a 128-bit random serial", c.SerialNumber.BitLen())
	}
	if !strings.HasPrefix(c.Subject.CommonName, "StreamSnatcher CA ") {
		t.Errorf("CN %q", c.Subject.CommonName)
	}
	block, _ := pem.Decode(ca.CertPEM())
	if block == nil || string(block.Bytes) != string(c.Raw) {
		t.Error("CertPEM does not encode Cert")
	}
	onDisk, err := os.ReadFile(ca.CertPath())
	if err != nil || string(onDisk) != string(ca.CertPEM()) {
		t.Errorf("CertPEM differs from %s (%v)", ca.CertPath(), err)
	}
}

func TestLoadRefusesMismatchAndIncomplete(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, dir string)
		want  error
	}{
		{"mismatched key", func(t *testing.T, dir string) {
			other := newCA(t)
			key, err := os.ReadFile(other.KeyPath())
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, KeyFile), key, 0o600); err != nil {
				t.Fatal(err)
			}
		}, ErrKeyMismatch},
		{"key missing", func(t *testing.T, dir string) {
			if err := os.Remove(filepath.Join(dir, KeyFile)); err != nil {
				t.Fatal(err)
			}
		}, ErrIncomplete},
		{"cert missing", func(t *testing.T, dir string) {
			if err := os.Remove(filepath.Join(dir, CertFile)); err != nil {
				t.Fatal(err)
			}
		}, ErrIncomplete},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "ca")
			if _, err := LoadOrCreate(dir); err != nil {
				t.Fatal(err)
			}
			tt.setup(t, dir)
			_, err := LoadOrCreate(dir)
			if !errors.Is(err, tt.want) {
				t.Fatalf("LoadOrCreate: got %v, want %v", err, tt.want)
			}
		})
	}
}

func verifyLeaf(t *testing.T, ca *CA, leaf *tls.Certificate, host string) {
	t.Helper()
	if len(leaf.Certificate) != 2 || string(leaf.Certificate[1]) != string(ca.Cert().Raw) {
		t.Fatalf("chain of %d certificates does not end with the CA", len(leaf.Certificate))
	}
	parsed, err := x509.ParseCertificate(leaf.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert())
	if _, err := parsed.Verify(x509.VerifyOptions{DNSName: host, Roots: pool}); err != nil {
		t.Fatalf("leaf for %s does not verify against the CA: %v", host, err)
	}
}

func TestMintVerifies(t *testing.T) {
	ca := newCA(t)
	tests := []struct {
		name   string
		host   string
		verify string
		isIP   bool
	}{
		{"dns", "cdn.example.com", "cdn.example.com", false},
		{"dns with port", "cdn.example.com:443", "cdn.example.com", false},
		{"upper case", "CDN.Example.COM", "cdn.example.com", false},
		{"ipv4", "127.0.0.1", "127.0.0.1", true},
		{"ipv4 with port", "10.1.2.3:8443", "10.1.2.3", true},
		{"ipv6 bracketed", "[::1]:443", "::1", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			leaf, err := ca.Mint(tt.host)
			if err != nil {
				t.Fatalf("Mint(%q): %v", tt.host, err)
			}
			verifyLeaf(t, ca, leaf, tt.verify)
			l := leaf.Leaf
			if tt.isIP != (len(l.IPAddresses) == 1 && len(l.DNSNames) == 0) {
				t.Errorf("Mint(%q): SANs DNS=%v IP=%v", tt.host, l.DNSNames, l.IPAddresses)
			}
			if len(l.ExtKeyUsage) != 1 || l.ExtKeyUsage[0] != x509.ExtKeyUsageServerAuth {
				t.Errorf("ExtKeyUsage: %v", l.ExtKeyUsage)
			}
			if d := time.Until(l.NotAfter); d > 397*24*time.Hour || d < 29*24*time.Hour {
				t.Errorf("leaf valid for %v more", d)
			}
			if time.Since(l.NotBefore) < 30*time.Minute {
				t.Errorf("NotBefore %v leaves no room for clock skew", l.NotBefore)
			}
			if l.PublicKeyAlgorithm != x509.ECDSA {
				t.Errorf("leaf key algorithm %v", l.PublicKeyAlgorithm)
			}
			// Does not verify for another name.
			pool := x509.NewCertPool()
			pool.AddCert(ca.Cert())
			if _, err := l.Verify(x509.VerifyOptions{DNSName: "other.example.net", Roots: pool}); err == nil {
				t.Error("leaf verifies for an unrelated name")
			}
		})
	}
	if _, err := ca.Mint(""); err == nil {
		t.Error("Mint(\"\") succeeded")
	}
	a, _ := ca.Mint("same.test")
	b, _ := ca.Mint("same.test")
	if a.Leaf.SerialNumber.Cmp(b.Leaf.SerialNumber) == 0 {
		t.Error("two leaves share a serial number")
	}
}

func TestMintIPAddressSAN(t *testing.T) {
	ca := newCA(t)
	leaf, err := ca.Mint("192.0.2.7")
	if err != nil {
		t.Fatal(err)
	}
	if len(leaf.Leaf.IPAddresses) != 1 || !leaf.Leaf.IPAddresses[0].Equal(net.ParseIP("192.0.2.7")) {
		t.Errorf("IP SAN: got %v", leaf.Leaf.IPAddresses)
	}
}

func TestSPKIHashIndependent(t *testing.T) {
	ca := newCA(t)
	// Independent path: re-read the PEM file and marshal the public key ourselves.
	data, err := os.ReadFile(ca.CertPath())
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(data)
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	spki, err := x509.MarshalPKIXPublicKey(cert.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(spki)
	if want := base64.StdEncoding.EncodeToString(sum[:]); ca.SPKIHash() != want {
		t.Errorf("SPKIHash: got %s, want %s", ca.SPKIHash(), want)
	}
	fp := sha256.Sum256(block.Bytes)
	if want := strings.ToUpper(fmt.Sprintf("%x", fp[:1])) + ":"; !strings.HasPrefix(ca.Fingerprint(), want) {
		t.Errorf("Fingerprint %s does not start with %s", ca.Fingerprint(), want)
	}
	if got := len(ca.Fingerprint()); got != 32*3-1 {
		t.Errorf("Fingerprint length %d", got)
	}
}

func TestTrustInstructions(t *testing.T) {
	ca := newCA(t)
	got := TrustInstructions(ca)
	for _, want := range []string{
		"/usr/local/share/ca-certificates/",
		"update-ca-certificates",
		"trust anchor --store",
		`certutil -d sql:$HOME/.pki/nssdb -A -t "C,," -n`,
		".mozilla/firefox",
		"security add-trusted-cert -d -r trustRoot -k /Library/Keychains/System.keychain " + ca.CertPath(),
		"certutil -addstore -f ROOT " + ca.CertPath(),
		ca.SPKIHash(),
		ca.Fingerprint(),
		"'" + ca.Name() + "'",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("TrustInstructions lacks %q", want)
		}
	}
}

func TestShellQuote(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"plain", "/home/a/rootCA.pem", "/home/a/rootCA.pem"},
		{"space", "/home/a b/rootCA.pem", "'/home/a b/rootCA.pem'"},
		{"quote", "it's", `'it'\''s'`},
		{"dollar", "$HOME", "'$HOME'"},
		{"empty", "", "''"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := shellQuote(tt.in); got != tt.want {
				t.Errorf("shellQuote(%q): got %s, want %s", tt.in, got, tt.want)
			}
		})
	}
}
