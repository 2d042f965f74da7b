package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/streamsnatcher/streamsnatcher/certs"
)

func init() { extraCommands = append(extraCommands, (*app).caCmd, (*app).watchCmd) }

func (a *app) loadCA() (*certs.CA, error) {
	dir := a.config().CADir
	ca, err := certs.LoadOrCreate(dir)
	if err != nil {
		return nil, hinted(fmt.Errorf("CA in %s: %w", dir, err), "the CA key must be readable by you alone (chmod 600), or choose another --ca-dir")
	}
	return ca, nil
}

func (a *app) caCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "ca",
		Short: "Show this install's own CA (made on first use), export it, or print how to trust it",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ca, err := a.loadCA()
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(a.stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(map[string]string{
					"cert": ca.CertPath(), "key": ca.KeyPath(), "subject": ca.Cert().Subject.CommonName,
					"sha256_fingerprint": ca.Fingerprint(), "spki_sha256": ca.SPKIHash(),
					"not_after": ca.Cert().NotAfter.UTC().Format("2006-01-02"),
				})
			}
			fmt.Fprintf(a.stdout, "subject:      %s\ncertificate:  %s\nkey:          %s (0600; never share it)\nSHA-256:      %s\nSPKI SHA-256: %s\nexpires:      %s\n",
				ca.Cert().Subject.CommonName, ca.CertPath(), ca.KeyPath(), ca.Fingerprint(), ca.SPKIHash(), ca.Cert().NotAfter.UTC().Format("2006-01-02"))
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.AddCommand(&cobra.Command{
		Use:   "export [FILE]",
		Short: "Write the CA certificate (PEM) to FILE or stdout",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ca, err := a.loadCA()
			if err != nil {
				return err
			}
			if len(args) == 0 {
				_, err := a.stdout.Write(ca.CertPEM())
				return err
			}
			return os.WriteFile(args[0], ca.CertPEM(), 0o644)
		},
	}, &cobra.Command{
		Use:   "trust",
		Short: "Print the steps to trust the CA on Linux, Chromium, Firefox, macOS and Windows (runs nothing)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ca, err := a.loadCA()
			if err != nil {
				return err
			}
			fmt.Fprint(a.stdout, certs.TrustInstructions(ca))
			return nil
		},
	})
	return cmd
}
