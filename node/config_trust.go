package node

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/homing-mail/homing/acme"
)

// Trust is what makes the node's mail trusted by others and lets it
// judge theirs (issue #11): the DNS resolver every lookup goes through,
// DKIM signing of local senders' mail, the SPF/DKIM/DMARC checks of mail
// from outside, and TLS on the MX port by default.
type Trust struct {
	// DNS is the resolver, "host:port" (--dns); "" = the nameservers of
	// /etc/resolv.conf.
	DNS string
	// AuthServID names this cluster in the Authentication-Results header
	// fields it writes (RFC 8601 §2.5) and trusts; every node of a
	// cluster must use the same one. Default: the first local domain.
	AuthServID string
	// NoInboundChecks turns the SPF, DKIM and DMARC checks of mail from
	// outside off (--inbound-checks=false).
	NoInboundChecks bool
	// DMARCPolicy is what a DMARC failure does, server-wide (--dmarc-policy
	// MODE): "enforce" (default) follows the sender domain's policy
	// (p=reject: 550 5.7.1 at the end of DATA, p=quarantine: the Junk
	// folder), "quarantine" files even p=reject failures in Junk, and
	// "monitor" only writes the result. DMARCPolicyFor overrides it for
	// mail whose author domain is, or is below, a domain
	// (--dmarc-policy DOMAIN=MODE).
	DMARCPolicy    string
	DMARCPolicyFor map[string]string
	// NoDKIMSign turns DKIM signing of local senders' mail off
	// (--dkim-sign=false). DKIMAlgorithm is the algorithm of a key made
	// on first use: rsa (RSA-2048, the default: every verifier knows it)
	// or ed25519 (RFC 8463).
	NoDKIMSign    bool
	DKIMAlgorithm string
	// NoMTASTS turns MTA-STS (RFC 8461) for MX delivery off
	// (--mta-sts=false).
	NoMTASTS bool
	// RelayCAFile is a PEM file of CA certificates that verify what
	// outbound TLS verifies (MX hosts under an MTA-STS policy in mode
	// enforce, routes with tls=require or credentials, MTA-STS policy
	// hosts) instead of the system's roots (--relay-ca-file): a private
	// CA, or a test's.
	RelayCAFile string
	// TestMTASTSPort is for tests only (0 otherwise): the HTTPS port
	// MTA-STS policies are fetched from instead of 443, so that a test
	// can serve them on loopback (--test-mta-sts-port).
	TestMTASTSPort int
	// ACME obtains and renews the certificate of the TLS listeners from
	// a CA (RFC 8555) instead of --tls-cert/--tls-key.
	ACME ACME
}

// ACME is where and for which names a frontend obtains its certificate
// (package acme): every frontend of a cluster should be given the same.
type ACME struct {
	// Directory is the CA's directory URL (--acme-directory); "" = no
	// ACME.
	Directory string
	// Email is the account's contact (--acme-email), optional.
	Email string
	// Names are the certificate's DNS names (--acme-names); default: the
	// node's --hostname.
	Names []string
	// HTTP is the HTTP-01 challenge listener (--acme-http); the CA
	// connects to port 80 of each name (RFC 8555 §8.3). Default ":80".
	HTTP string
	// CARoots is a PEM file of the roots that verify the CA's HTTPS
	// certificate (--acme-ca-roots, a private CA); "" = the system's.
	CARoots string
	// Retry is the first wait after a failed attempt, doubling to an
	// hour (--acme-retry; default acme.DefaultRetryMin).
	Retry time.Duration

	namesFromHostname bool // Names is --hostname's default
}

// Enabled reports whether the node obtains its certificate by ACME.
func (a ACME) Enabled() bool { return a.Directory != "" }

func (a ACME) withDefaults(hostname string) ACME {
	if !a.Enabled() {
		return a
	}
	if len(a.Names) == 0 && hostname != "" {
		a.Names, a.namesFromHostname = []string{hostname}, true
	}
	if a.HTTP == "" {
		a.HTTP = ":80"
	}
	if a.Retry <= 0 {
		a.Retry = acme.DefaultRetryMin
	}
	return a
}

func (a ACME) validate(l Listen) error {
	if !a.Enabled() {
		if a.Email != "" || len(a.Names) > 0 || a.CARoots != "" {
			return errors.New("--acme-email, --acme-names and --acme-ca-roots need --acme-directory")
		}
		return nil
	}
	if l.TLSCert != "" {
		return errors.New("--acme-directory and --tls-cert: the certificate comes from one of them; choose one")
	}
	if err := acme.ValidDirectory(a.Directory); err != nil {
		return err
	}
	if a.Email != "" {
		local, domain, ok := strings.Cut(a.Email, "@")
		if !ok || local == "" || domain == "" || strings.ContainsAny(a.Email, " ,<>\"\t") {
			return fmt.Errorf("--acme-email %q: want an address, e.g. postmaster@example.com", a.Email)
		}
	}
	names := acme.NormalizeNames(a.Names)
	if len(names) == 0 {
		return errors.New("--acme-directory: no names (--acme-names or --hostname)")
	}
	for _, n := range names {
		if err := acme.ValidName(n); err != nil {
			if a.namesFromHostname {
				return fmt.Errorf("--acme-names defaults to --hostname %s, which cannot be the certificate's name: give --acme-names (%v)", n, err)
			}
			return err
		}
	}
	if err := checkListenAddr(a.HTTP); err != nil {
		return fmt.Errorf("--acme-http %s: %v", a.HTTP, err)
	}
	return nil
}

func (t Trust) withDefaults(domains []string) Trust {
	if t.AuthServID == "" && len(domains) > 0 {
		t.AuthServID = domains[0]
	}
	if t.DMARCPolicy == "" {
		t.DMARCPolicy = "enforce"
	}
	if t.DKIMAlgorithm == "" {
		t.DKIMAlgorithm = "rsa"
	}
	return t
}

func (t Trust) validate() error {
	if t.DNS != "" {
		if _, _, err := net.SplitHostPort(t.DNS); err != nil {
			return fmt.Errorf("--dns %s: want HOST:PORT", t.DNS)
		}
	}
	if !validDMARCMode(t.DMARCPolicy) {
		return fmt.Errorf("--dmarc-policy %s: want enforce, quarantine or monitor", t.DMARCPolicy)
	}
	for d, m := range t.DMARCPolicyFor {
		if !validDMARCMode(m) {
			return fmt.Errorf("--dmarc-policy %s=%s: want enforce, quarantine or monitor", d, m)
		}
	}
	if t.TestMTASTSPort < 0 || t.TestMTASTSPort > 65535 {
		return fmt.Errorf("--test-mta-sts-port %d: not a port", t.TestMTASTSPort)
	}
	if t.DKIMAlgorithm != "rsa" && t.DKIMAlgorithm != "ed25519" {
		return fmt.Errorf("--dkim-algorithm %s: want rsa or ed25519", t.DKIMAlgorithm)
	}
	return nil
}

func validDMARCMode(m string) bool { return m == "enforce" || m == "quarantine" || m == "monitor" }
