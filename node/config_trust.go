package node

import (
	"fmt"
	"net"
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
	if t.DKIMAlgorithm != "rsa" && t.DKIMAlgorithm != "ed25519" {
		return fmt.Errorf("--dkim-algorithm %s: want rsa or ed25519", t.DKIMAlgorithm)
	}
	return nil
}

func validDMARCMode(m string) bool { return m == "enforce" || m == "quarantine" || m == "monitor" }
