package main

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"

	"github.com/spf13/pflag"

	"github.com/streamsnatcher/streamsnatcher/proxy"
	"github.com/streamsnatcher/streamsnatcher/recorder"
)

// addTrustFlags adds the upstream trust settings every command that fetches takes.
func addTrustFlags(f *pflag.FlagSet) {
	f.String("upstream-ca", "", "PEM file of an extra root CA trusted for upstream TLS (company proxies, self-signed origins, tests)")
	f.Bool("insecure-upstream", false, "do not verify upstream certificates (DANGEROUS)")
}

// upstreamTrust reads --upstream-ca and --insecure-upstream (after
// applyRunConfig): the extra roots (nil: none) and whether verification is off,
// warning loudly when it is.
func (a *app) upstreamTrust(f *pflag.FlagSet) (*x509.CertPool, bool, error) {
	insecure, _ := f.GetBool("insecure-upstream")
	var pool *x509.CertPool
	if p, _ := f.GetString("upstream-ca"); p != "" {
		pem, err := os.ReadFile(p)
		if err != nil {
			return nil, false, hinted(fmt.Errorf("--upstream-ca: %w", err), "give a PEM file holding a CA certificate")
		}
		pool = x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, false, hinted(fmt.Errorf("--upstream-ca %s: no PEM certificate in it", p), "give a PEM file holding a CA certificate")
		}
	}
	if insecure {
		fmt.Fprintln(a.stderr, "streamsnatcher: WARNING: --insecure-upstream: upstream certificates are NOT verified; anyone on the network path can read and change this traffic")
	}
	return pool, insecure, nil
}

// fetchClient is the backfill's HTTP client, trusting what the proxy trusts.
func fetchClient(pool *x509.CertPool, insecure bool, concurrency int) *http.Client {
	base := http.DefaultTransport.(*http.Transport).Clone()
	base.TLSClientConfig = proxy.UpstreamTLS(pool, insecure)
	return recorder.NewClient(base, concurrency)
}

// untrustedHint is the hint for an origin whose certificate was refused.
func untrustedHint(err error) error {
	if errors.Is(err, recorder.ErrUntrusted) {
		return hinted(err, "if you trust this origin, pass its CA with --upstream-ca FILE.pem (or set upstream-ca in the config)")
	}
	return err
}
