package certs

import (
	"fmt"
	"strings"
)

// TrustInstructions returns the exact commands that make common trust stores accept ca, with the ones that undo
// them. It only describes; it never runs anything.
func TrustInstructions(ca *CA) string {
	cert := shellQuote(ca.CertPath())
	name := shellQuote(ca.Name())
	fp := strings.ReplaceAll(ca.Fingerprint(), ":", "")
	file := "streamsnatcher-" + strings.ToLower(fp[:8]) + ".crt"

	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	w("StreamSnatcher CA: %s", ca.Name())
	w("  certificate:  %s", ca.CertPath())
	w("  SHA-256:      %s", ca.Fingerprint())
	w("  SPKI hash:    %s", ca.SPKIHash())
	w("")
	w("Anyone holding %s can impersonate any HTTPS site to a program that trusts this CA.", ca.KeyPath())
	w("Trust it only where you need it; `streamsnatcher watch --browser` needs none of the steps below")
	w("(it starts Chromium with --ignore-certificate-errors-spki-list=%s).", ca.SPKIHash())
	w("")
	w("Linux system store, Debian/Ubuntu:")
	w("  sudo cp %s /usr/local/share/ca-certificates/%s", cert, file)
	w("  sudo update-ca-certificates")
	w("  undo: sudo rm /usr/local/share/ca-certificates/%s && sudo update-ca-certificates --fresh", file)
	w("")
	w("Linux system store, Fedora/RHEL/Arch (p11-kit):")
	w("  sudo trust anchor --store %s", cert)
	w("  undo: sudo trust anchor --remove %s", cert)
	w("")
	w("Chromium/Chrome on Linux (NSS database; certutil is in libnss3-tools / nss-tools):")
	w("  certutil -d sql:$HOME/.pki/nssdb -A -t \"C,,\" -n %s -i %s", name, cert)
	w("  undo: certutil -d sql:$HOME/.pki/nssdb -D -n %s", name)
	w("")
	w("Firefox (each profile has its own store; restart Firefox afterwards):")
	w("  for d in \"$HOME\"/.mozilla/firefox/*/ \"$HOME\"/snap/firefox/common/.mozilla/firefox/*/; do")
	w("    [ -f \"$d/cert9.db\" ] && certutil -d sql:\"$d\" -A -t \"C,,\" -n %s -i %s", name, cert)
	w("  done")
	w("  undo: the same loop with: certutil -d sql:\"$d\" -D -n %s", name)
	w("")
	w("macOS (system keychain; Chrome and Safari use it):")
	w("  sudo security add-trusted-cert -d -r trustRoot -k /Library/Keychains/System.keychain %s", cert)
	w("  undo: sudo security remove-trusted-cert -d %s", cert)
	w("")
	w("Windows (elevated prompt):")
	w("  certutil -addstore -f ROOT %s", windowsQuote(ca.CertPath()))
	w("  undo: certutil -delstore ROOT %s", ca.Cert().SerialNumber.Text(16))
	return b.String()
}

// shellQuote quotes s for a POSIX shell when it holds anything beyond a conservative safe set.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._-+=:@,") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func windowsQuote(s string) string {
	if strings.ContainsAny(s, " \t&()^") {
		return `"` + s + `"`
	}
	return s
}
