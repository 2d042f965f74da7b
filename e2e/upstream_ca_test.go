package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/streamsnatcher/streamsnatcher/internal/testmedia"
)

// selfSigned makes a certificate for names that is its own CA, as a CDN on a
// private network may have, and writes it as PEM to a file: what a person
// hands to --upstream-ca.
func selfSigned(t *testing.T, names ...string) (tls.Certificate, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: names[0]},
		DNSNames: names, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true,
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "cdn-ca.pem")
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, p
}

// upstreamCA reads a PEM file into a pool the way --upstream-ca does.
func upstreamCA(t *testing.T, p string) *x509.CertPool {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		t.Fatalf("%s: no certificate", p)
	}
	return pool
}

// hls.js from a CDN whose certificate is self-signed, trusted only through
// the --upstream-ca file: the proxy (proxy.UpstreamTLS) and the backfill both
// verify it against that CA; playback, the recording and each file once.
func TestPlayerSelfSignedCDN(t *testing.T) {
	needPlayers(t)
	start := time.Now()
	media := testmedia.ForTest(t, testmedia.Small)
	page := pageOrigin(t)
	cert, caFile := selfSigned(t, cdnHost)
	c := newCDNWith(t, media.Dir, cdnOptions{cert: &cert})
	pool := upstreamCA(t, caFile)
	pool.AddCert(page.Certificate()) // the page's origin: httptest's own certificate
	r := &rig{}
	r.start(t, map[string]string{
		pageHost: must(url.Parse(page.URL)).Host,
		cdnHost:  must(url.Parse(c.srv.URL)).Host,
	}, pool, rigOptions{concurrency: 4})
	pr := &playerRig{rig: r, cdn: c}
	bctx, closeBrowser := pr.browser(t, "<-loopback>;*.google.com;*.googleapis.com;*.gstatic.com")
	playedAfter := pr.play(t, bctx, "hlsjs", "https://"+cdnHost+"/v/index.m3u8", 2)
	s := waitSession(t, pr.store, "", time.Minute)
	if errs := playerErrors(t, bctx); len(errs) > 0 {
		t.Errorf("hls.js reported errors:\n  %s", strings.Join(errs, "\n  "))
	}
	closeBrowser()
	checkRecording(t, pr.store, s, media.VideoPackets, media.AudioPackets)
	pr.cdn.checkOnce(t, mediaFiles(media))
	if s.Title != "Player test: hlsjs" {
		t.Errorf("session title %q, want the page's", s.Title)
	}
	t.Logf("played 2 s after %.1fs; recording done %.1fs after the start", playedAfter.Seconds(), time.Since(start).Seconds())
}
