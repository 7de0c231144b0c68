package smtp

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/homing-mail/homing/mail"
	"github.com/homing-mail/homing/mtasts"
)

// Resolver is the DNS the relay client uses. *net.Resolver satisfies it;
// tests stub it. Errors that are *net.DNSError with IsNotFound set mean
// the name does not exist (or has no such records).
type Resolver interface {
	LookupMX(ctx context.Context, name string) ([]*net.MX, error)
	LookupHost(ctx context.Context, host string) ([]string, error)
}

// ClientConfig configures the relay client. Zero values take the
// documented defaults.
type ClientConfig struct {
	// Hostname is the name sent in EHLO. Default "localhost".
	Hostname string
	// Resolver looks up MX and address records; nil is
	// net.DefaultResolver.
	Resolver Resolver
	// Routes maps a lower-case domain to "host:port", bypassing MX
	// lookup; the key "*" is a smarthost for every domain without a
	// route of its own.
	Routes map[string]string
	// Port is the port of MX hosts. Default 25.
	Port int
	// DialTimeout bounds connecting (default 30 s), CommandTimeout each
	// command's reply (default 5 min, RFC 5321 §4.5.3.2), DataTimeout
	// sending the message and waiting for the final reply (default
	// 10 min, RFC 5321 §4.5.3.2.6).
	DialTimeout, CommandTimeout, DataTimeout time.Duration
	// TLS is the configuration for STARTTLS. nil means opportunistic
	// TLS without certificate verification (RFC 7435): STARTTLS when the
	// server offers it, and plaintext again on a new connection when
	// the handshake fails. When set, a failed handshake is a failure of
	// that host. Either way a server that does not offer STARTTLS gets
	// the message in plaintext.
	TLS *tls.Config
	// RequireTLS: a host that does not offer STARTTLS, refuses it or
	// fails the handshake is a temporary failure of that host; nothing
	// goes in plaintext (cluster traffic on the SMTP port, with TLS
	// verifying the cluster CA).
	RequireTLS bool
	// DANE, when set, looks up each host's TLSA records (RFC 7672): a
	// host with validated, usable records must offer STARTTLS and present
	// a certificate that matches them, or it is a temporary 4.7.5
	// failure of that host (never plaintext); a failed lookup too.
	DANE TLSAResolver
	// Smarthosts, when set, overrides Routes and MX for every domain: the
	// "host:port" list it returns now is tried in order (forwarding to
	// the cluster's frontends, --forward-to).
	Smarthosts func() []string
	// Auth, when set, authenticates every connection with the cluster
	// mechanism (a backend forwarding to a frontend may then relay).
	Auth *ClusterAuth
	// Dial opens connections; nil is a net.Dialer.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)

	// MTASTS, when set, finds the MTA-STS policy (RFC 8461) of a domain
	// whose MX hosts (or implicit MX) are used; a route or smarthost is
	// the operator's choice and has its own TLS level (RouteTLS). Mode
	// enforce: only MX hosts the policy lists, each over STARTTLS with a
	// certificate verified against RootCAs for the MX name, or a
	// temporary 4.7.5 failure of that host; mode testing: delivered as
	// without, a failure logged. DANE takes precedence for a host with
	// validated TLSA records (RFC 8461 §2).
	MTASTS STSResolver
	// RootCAs verify the certificates MTA-STS and tls=require ask to be
	// verified; nil: the system's roots.
	RootCAs *x509.CertPool
	// RouteTLS is the TLS level of routes, by the key of Routes. A route
	// without one is RouteTLSMay, or RouteTLSRequire when it has
	// credentials.
	RouteTLS map[string]RouteTLS
	// Credentials, when set, gives the AUTH credentials of a route (its
	// key in Routes, its host and port): sent with AUTH PLAIN (LOGIN when
	// the server offers only that) after STARTTLS, never without TLS. It
	// is called at every connection, so the credentials may change.
	Credentials func(route, host string, port int) (Credential, bool)
	// Metrics counts the TLS outcomes and route AUTH results; nil: not
	// counted.
	Metrics *ClientMetrics
	// Logger gets what is worth an operator's attention but does not
	// fail the delivery (MTA-STS testing failures); nil: discarded.
	Logger *slog.Logger
	// Journal, when set, notes the TLS outcome of each connection in the
	// journey of the message (its queue id): event "tls".
	Journal func(id, event, detail string)
}

// Credential is a user name and password for AUTH.
type Credential struct {
	User, Password string
}

func (c ClientConfig) withDefaults() ClientConfig {
	if c.Hostname == "" {
		c.Hostname = "localhost"
	}
	if c.Resolver == nil {
		c.Resolver = net.DefaultResolver
	}
	if c.Port <= 0 {
		c.Port = 25
	}
	if c.DialTimeout <= 0 {
		c.DialTimeout = 30 * time.Second
	}
	if c.CommandTimeout <= 0 {
		c.CommandTimeout = 5 * time.Minute
	}
	if c.DataTimeout <= 0 {
		c.DataTimeout = 10 * time.Minute
	}
	if c.Dial == nil {
		d := &net.Dialer{}
		c.Dial = d.DialContext
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return c
}

// Client relays messages to other MTAs. It holds no connections between
// calls; Send may be called concurrently.
type Client struct {
	cfg ClientConfig
	log *slog.Logger
}

// NewClient returns a relay client for cfg.
func NewClient(cfg ClientConfig) *Client {
	cfg = cfg.withDefaults()
	return &Client{cfg: cfg, log: cfg.Logger}
}

// Send delivers the attempt msg to its recipients, which must all be in
// one domain (the domain of the first is used), in ONE SMTP transaction,
// and returns one mail.Result per recipient, in the envelope's order and
// each naming its recipient's Key. It never returns an error and never
// blocks past ctx:
//
//   - Routing: a route for the domain (or "*") names the host; otherwise
//     the domain's MX hosts by preference, or the domain itself when it has
//     no MX (implicit MX, RFC 5321 §5.1). A null MX (RFC 7505) is a
//     permanent 5.1.10, a domain that does not exist a permanent 5.1.2, a
//     DNS failure a temporary 4.4.3.
//   - Each address of each host is tried in turn until one gets as far as
//     MAIL: a connection that fails, or a greeting or EHLO that is not
//     2xx, moves on to the next. When all fail, every recipient gets the
//     last failure (4.4.1 for no answer or a refused connection).
//   - TLS: DANE for a host with validated TLSA records, the route's level
//     (RouteTLS), an MTA-STS policy of the domain for its MX hosts, or
//     STARTTLS when offered (see ClientConfig.TLS, MTASTS, RouteTLS). A
//     policy that is not met is a temporary 4.7.5 failure of that host;
//     the next host is tried.
//   - A route with credentials authenticates after STARTTLS (a 5xx reply
//     to AUTH defers the message: the credentials are this server's to
//     fix, as Postfix's smtp_sasl_auth_soft_bounce does). MAIL FROM carries SIZE,
//     BODY=8BITMIME (go-smtp sends it whenever the server offers 8BITMIME),
//     SMTPUTF8 when env.SMTPUTF8, and RET and ENVID when the server offers
//     DSN; RCPT TO carries NOTIFY and ORCPT when it does. A server without
//     SMTPUTF8 for an SMTPUTF8 message is a permanent 5.6.7 (RFC 6531
//     §3.4), one without 8BITMIME for an 8-bit message a permanent 5.6.3
//     (RFC 6152 §3), a SIZE limit below the message a permanent 5.3.4
//     (RFC 1870 §6.1).
//   - Each recipient gets its RCPT reply; DATA is sent only when at least
//     one was accepted, and its final reply applies to all accepted ones.
//     A connection lost after MAIL is a temporary 4.4.2 for every
//     recipient without a final answer.
func (c *Client) Send(ctx context.Context, msg *mail.Message) (results []mail.Result) {
	env, body := msg.Envelope, msg.Body
	rcpts := env.Recipients
	results = make([]mail.Result, len(rcpts))
	if len(rcpts) == 0 {
		return results
	}
	defer func() {
		if p := recover(); p != nil {
			// A bug, not the peer's fault: try again later.
			fill(results, mail.Temp(mail.StatusLocalError, fmt.Sprintf("internal error while relaying: %v", p)))
		}
		for i, r := range rcpts {
			results[i].Rcpt = r.Key
		}
	}()

	domain := mail.Domain(rcpts[0].Addr)
	hosts, fail := c.route(ctx, domain)
	if fail != nil {
		fill(results, *fail)
		return results
	}
	sts := c.stsPolicy(ctx, env.ID, domain, hosts)
	last := mail.Temp(mail.StatusUnableToRoute, "no mail server found for "+domain)
	for _, h := range hosts {
		addrs, fail := c.addresses(ctx, h)
		if fail != nil {
			last = *fail
			continue
		}
		dane, fail := c.dane(ctx, h)
		if fail != nil {
			last = remote(*fail, h.name)
			c.cfg.Metrics.tlsOutcome(TLSPolicyDANE, "failed")
			c.journal(env.ID, h.name, "", "not used: "+fail.Text)
			continue
		}
		pol, fail := c.hostTLS(h, dane, sts)
		if fail != nil {
			last = remote(*fail, h.name)
			c.cfg.Metrics.tlsOutcome(pol.label, "mx-mismatch")
			c.journal(env.ID, h.name, "", "not used: "+fail.Text)
			continue
		}
		for _, addr := range addrs {
			if ctx.Err() != nil {
				fill(results, mail.Temp(mail.StatusNoAnswer, "delivery attempt cancelled: "+ctx.Err().Error()))
				return results
			}
			res, next := c.attempt(ctx, h, addr, pol, env, rcpts, body, results)
			if next == retryPlain {
				plain := pol
				plain.plain = true
				res, next = c.attempt(ctx, h, addr, plain, env, rcpts, body, results)
			}
			if next == done {
				return results
			}
			last = res
		}
	}
	fill(results, last)
	return results
}

// stsPolicy is the MTA-STS policy that applies to a delivery to domain
// through hosts: nil without a resolver, for routes and smarthosts, and
// when the domain has none or withdrew it (mode none). The journey of
// message id notes a policy, and why there is none when the domain has
// a record (a malformed one, a policy that could not be fetched).
func (c *Client) stsPolicy(ctx context.Context, id, domain string, hosts []host) *stsApplied {
	if c.cfg.MTASTS == nil || len(hosts) == 0 || !hosts[0].mx {
		return nil
	}
	l := c.cfg.MTASTS.Get(ctx, domain)
	note := func(detail string) {
		if c.cfg.Journal != nil && id != "" {
			c.cfg.Journal(id, "mta-sts", domain+": "+detail)
		}
	}
	switch {
	case l.Policy == nil:
		if l.How != "no record" {
			note("no policy applies: " + l.How)
		}
		return nil
	case l.Policy.Mode == mtasts.ModeNone:
		note("the policy (id " + l.ID + ") is mode none: withdrawn")
		return nil
	}
	note(fmt.Sprintf("mode %s, mx %s, id %s (%s)", l.Policy.Mode, strings.Join(l.Policy.MX, " "), l.ID, l.How))
	return &stsApplied{domain: domain, id: l.ID, policy: l.Policy}
}

// journal notes what the TLS of a connection to name (at addr) was.
func (c *Client) journal(id, name, addr, detail string) {
	if c.cfg.Journal == nil || id == "" {
		return
	}
	where := name
	if addr != "" {
		where += " [" + addr + "]"
	}
	c.cfg.Journal(id, "tls", where+": "+detail)
}

// credential is the AUTH credential of h's route, if it has one.
func (c *Client) credential(h host) (Credential, bool) {
	if h.route == "" || c.cfg.Credentials == nil {
		return Credential{}, false
	}
	return c.cfg.Credentials(h.route, h.name, h.port)
}

// fill sets every result to r.
func fill(results []mail.Result, r mail.Result) {
	for i := range results {
		results[i] = r
	}
}
