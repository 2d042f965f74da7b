package recorder

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
)

// ErrUntrusted means the origin's TLS certificate could not be verified.
// Retrying cannot help: trust its CA (--upstream-ca) or fix the clock.
var ErrUntrusted = errors.New("untrusted certificate")

// untrusted wraps err with ErrUntrusted when it is a certificate verification
// failure, keeping the x509 cause in the message.
func untrusted(err error) error {
	var (
		ve  *tls.CertificateVerificationError
		ua  x509.UnknownAuthorityError
		he  x509.HostnameError
		ci  x509.CertificateInvalidError
		sys x509.SystemRootsError
	)
	if errors.As(err, &ve) || errors.As(err, &ua) || errors.As(err, &he) || errors.As(err, &ci) || errors.As(err, &sys) {
		return fmt.Errorf("%w: %w", ErrUntrusted, err)
	}
	return err
}
