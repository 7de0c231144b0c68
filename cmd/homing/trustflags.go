package main

import (
	"flag"
	"fmt"
	"strconv"
	"strings"

	"github.com/homing-mail/homing/acme"
	"github.com/homing-mail/homing/node"
)

// trustFlags binds the settings of issue #11 (DNS, DKIM, inbound checks,
// TLS) to cfg.
func trustFlags(fs *flag.FlagSet, cfg *node.Config) {
	def := node.Defaults()
	if cfg.Trust.DMARCPolicyFor == nil {
		cfg.Trust.DMARCPolicyFor = map[string]string{}
	}
	fs.StringVar(&cfg.Listen.Submissions, "submissions", "", "submission listener with implicit TLS (RFC 8314, port 465); empty = off")
	fs.StringVar(&cfg.Trust.DNS, "dns", "", "DNS server HOST:PORT for every lookup (MX, SPF, DKIM, DMARC, TLSA); default: the nameservers of /etc/resolv.conf")
	fs.StringVar(&cfg.Trust.AuthServID, "authserv-id", "", "the cluster's name in Authentication-Results, the same on every node (default: the first of --domains)")
	fs.Var((*negBool)(&cfg.Trust.NoInboundChecks), "inbound-checks", "check SPF, DKIM and DMARC of mail from outside (default true)")
	fs.Var(dmarcPolicyFlag{&cfg.Trust}, "dmarc-policy", "what a DMARC failure does: enforce (the domain's policy: p=reject 550, p=quarantine Junk), quarantine (never refuse), monitor (header only); DOMAIN=MODE for mail from DOMAIN and below it (repeatable)")
	fs.Var((*negBool)(&cfg.Trust.NoDKIMSign), "dkim-sign", "DKIM-sign the mail of local senders this node relays (default true)")
	fs.StringVar(&cfg.Trust.DKIMAlgorithm, "dkim-algorithm", def.Trust.DKIMAlgorithm, "algorithm of a DKIM key made on a domain's first mail: rsa (RSA-2048) or ed25519")
	fs.Var((*negBool)(&cfg.Trust.NoMTASTS), "mta-sts", "apply the MTA-STS policies (RFC 8461) of the domains mail is relayed to through their MX hosts (default true)")
	fs.StringVar(&cfg.Trust.RelayCAFile, "relay-ca-file", "", "PEM CA certificates that verify MX hosts under MTA-STS, routes with tls=require or credentials, and MTA-STS policy hosts, instead of the system's roots")
	fs.IntVar(&cfg.Trust.TestMTASTSPort, "test-mta-sts-port", 0, "TESTS ONLY: fetch MTA-STS policies from this HTTPS port instead of 443")
	fs.StringVar(&cfg.Routing.RouteCredentials, "route-credentials", "", "file of 'KEY USER PASSWORD' lines (KEY: a route's DOMAIN or *, or its HOST or HOST:PORT; mode 0600) with which routes authenticate (AUTH PLAIN over TLS only); read again on SIGHUP")
	fs.IntVar(&cfg.Routing.TestMXPort, "test-mx-port", 0, "TESTS ONLY: connect to MX hosts on this port instead of 25")
	fs.StringVar(&cfg.Trust.ACME.Directory, "acme-directory", "", "ACME (RFC 8555) directory URL of the CA the TLS listeners' certificate comes from, e.g. https://acme-v02.api.letsencrypt.org/directory (accepts its terms); empty = off (--tls-cert, or self-signed)")
	fs.StringVar(&cfg.Trust.ACME.Email, "acme-email", "", "contact address of the ACME account (optional)")
	fs.Var((*listFlag)(&cfg.Trust.ACME.Names), "acme-names", "DNS names of the ACME certificate, comma-separated; the same on every frontend (default: --hostname)")
	fs.StringVar(&cfg.Trust.ACME.HTTP, "acme-http", "", "HTTP-01 challenge listener; the CA connects to port 80 of each name (default :80 with --acme-directory)")
	fs.StringVar(&cfg.Trust.ACME.CARoots, "acme-ca-roots", "", "PEM file of the roots that verify the ACME directory's HTTPS certificate (a private CA); default: the system's")
	fs.DurationVar(&cfg.Trust.ACME.Retry, "acme-retry", acme.DefaultRetryMin, "wait after a failed ACME attempt, doubling up to an hour (a permanent failure waits the hour)")
}

// negBool is a boolean flag stored as its negation (the zero value of
// the field is the flag's default, true).
type negBool bool

func (b *negBool) String() string   { return strconv.FormatBool(!bool(*b)) }
func (b *negBool) IsBoolFlag() bool { return true }
func (b *negBool) Set(v string) error {
	on, err := strconv.ParseBool(v)
	if err != nil {
		return err
	}
	*b = negBool(!on)
	return nil
}

// dmarcPolicyFlag is --dmarc-policy MODE or DOMAIN=MODE.
type dmarcPolicyFlag struct{ t *node.Trust }

func (f dmarcPolicyFlag) String() string {
	if f.t == nil || f.t.DMARCPolicy == "" {
		return "enforce"
	}
	return f.t.DMARCPolicy
}

func (f dmarcPolicyFlag) Set(v string) error {
	d, m, ok := strings.Cut(v, "=")
	if !ok {
		d, m = "", v
	}
	m = strings.ToLower(strings.TrimSpace(m))
	if m != "enforce" && m != "quarantine" && m != "monitor" {
		return fmt.Errorf("want enforce, quarantine or monitor (or DOMAIN=MODE), got %q", v)
	}
	if d == "" {
		f.t.DMARCPolicy = m
		return nil
	}
	f.t.DMARCPolicyFor[strings.ToLower(strings.TrimSpace(d))] = m
	return nil
}
