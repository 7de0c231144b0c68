package node

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/homing-mail/homing/acme"
	"github.com/homing-mail/homing/actors"
	"github.com/homing-mail/homing/cert"
	"github.com/homing-mail/homing/control"
	"github.com/homing-mail/homing/dkim"
	"github.com/homing-mail/homing/inbound"
	"github.com/homing-mail/homing/resolve"
	"github.com/homing-mail/homing/smtp"
)

// trust is the node's part of issue #11: the resolver every lookup goes
// through, the DKIM keyring with its replication and the signer.
type trust struct {
	resolver *resolve.Resolver
	keys     *dkim.Keyring
	keysRepl *dkim.Replicator
	signer   *dkim.Signer
	// authMetrics counts the inbound checks' results from the start.
	authMetrics *inbound.Metrics
	// certs is the SMTP listeners' certificate (tls.go); the member TLS
	// configurations are those of cluster traffic on the SMTP port.
	certs                            *cert.Source
	memberServerTLS, memberClientTLS *tls.Config
	subsLn                           net.Listener
	// acme obtains and renews certs' certificate (--acme-directory,
	// acme.go); acmeRepl shares it with the other frontends.
	acme     *acme.Manager
	acmeRepl *acme.Replicator
	acmeLn   net.Listener
}

// dkimKeysFile is the keyring's file in the data directory.
const dkimKeysFile = "dkim-keys.json"

// startTrust makes the resolver (--dns) and opens the DKIM keyring.
func (n *Node) startTrust(context.Context) error {
	cfg := n.cfg.Trust
	r, err := resolve.New(resolve.Config{Server: cfg.DNS})
	if err != nil {
		return err
	}
	n.trust.resolver = r
	n.trust.authMetrics = inbound.NewMetrics(n.registry)
	keys, err := dkim.OpenKeyring(filepath.Join(n.cfg.Store.DataDir, dkimKeysFile), nil)
	if err != nil {
		return err
	}
	n.trust.keys = keys
	n.trust.keysRepl = dkim.NewReplicator(keys, n.log.With("component", "dkim"))
	algorithm := cfg.DKIMAlgorithm
	n.trust.signer = dkim.NewSigner(dkim.SignerConfig{Keys: keys, IsLocal: n.isLocalDomain,
		Fallback: n.Domains()[0], Algorithm: algorithm})
	return n.startRelayTLS()
}

// isLocalDomain reports whether domain is one of the node's local domains
// now (the cluster's set, which changes at run time: package domains).
func (n *Node) isLocalDomain(domain string) bool {
	return slices.ContainsFunc(n.Domains(), func(d string) bool { return strings.EqualFold(d, domain) })
}

// relayResolver is the relay's DNS: a test's stub, or the node's resolver.
func (n *Node) relayResolver() smtp.Resolver {
	if n.cfg.Routing.Resolver != nil {
		return n.cfg.Routing.Resolver
	}
	return n.trust.resolver
}

// relayDANE is the relay's DANE lookups (RFC 7672): the node's resolver,
// unless a test stubs the relay's DNS.
func (n *Node) relayDANE() smtp.TLSAResolver {
	if n.cfg.Routing.Resolver != nil {
		return nil
	}
	return tlsaResolver{n.trust.resolver}
}

// tlsaResolver adapts the resolver's TLSA records to the relay client's.
type tlsaResolver struct{ r *resolve.Resolver }

func (a tlsaResolver) LookupTLSA(ctx context.Context, port int, host string) ([]smtp.TLSA, bool, error) {
	recs, secure, err := a.r.LookupTLSA(ctx, port, host)
	out := make([]smtp.TLSA, len(recs))
	for i, r := range recs {
		out[i] = smtp.TLSA{Usage: r.Usage, Selector: r.Selector, MatchingType: r.MatchingType, Data: r.Data}
	}
	return out, secure, err
}

// relayer wraps the relay client in the DKIM signer unless this node
// forwards every non-local message to other members (they sign when
// they relay it) or signing is off.
func (n *Node) relayer(next actors.Relayer) actors.Relayer {
	if n.cfg.Trust.NoDKIMSign || len(n.cfg.Routing.ForwardTo) > 0 {
		return next
	}
	return &dkim.SigningRelayer{Next: next, Signer: n.trust.signer, Log: n.log.With("component", "dkim"),
		Record: n.noteJourney}
}

// startTrustChannel lets members fetch and push DKIM keys (clustered
// nodes, once the channel runs).
func (n *Node) startTrustChannel(context.Context) error {
	if n.channel == nil {
		return nil
	}
	return n.trust.keysRepl.Start(n.actors.ActorSystem())
}

// joinTrust follows membership: after each change the DKIM keys of every
// live member are fetched and merged.
func (n *Node) joinTrust(context.Context) error {
	ms := n.membership.Load()
	if ms == nil {
		return nil
	}
	n.trust.keysRepl.Join(ms)
	if n.trust.acmeRepl != nil {
		n.trust.acmeRepl.Join(ms)
	}
	changed, cancel := n.changes.Subscribe()
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		n.trust.keysRepl.Sync()
		for {
			select {
			case <-changed:
				n.trust.keysRepl.Sync()
				n.syncACME(stop)
			case <-stop:
				return
			}
		}
	}()
	n.stop.push("dkim key sync", func() error {
		cancel()
		close(stop)
		<-done
		return nil
	})
	return nil
}

// syncACME, after a membership change, fetches the other frontends'
// certificates (on a goroutine: it waits for their answers) and has the
// ACME manager look at its rank again.
func (n *Node) syncACME(stop <-chan struct{}) {
	if n.trust.acmeRepl == nil {
		return
	}
	n.trust.acme.Wake()
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		go func() {
			select {
			case <-stop:
				cancel()
			case <-ctx.Done():
			}
		}()
		n.trust.acmeRepl.Sync(ctx)
	}()
}

// adminAPI is what the admin endpoint serves: the control plane and the
// DKIM keys.
type adminAPI struct {
	*control.API
	*control.DKIM
}

func (n *Node) adminAPI() adminAPI {
	return adminAPI{API: n.api, DKIM: &control.DKIM{Keys: n.trust.keys, IsLocal: n.isLocalDomain}}
}

// inboundChecks adapts the inbound checker to the SMTP session's
// smtp.Checker, and notes each verdict in the message's journey.
type inboundChecks struct {
	c      *inbound.Checker
	record func(id, event, detail string)
}

func (ic inboundChecks) Begin(ctx context.Context, id string, ip netip.Addr, helo, mailFrom string, out io.Writer) smtp.Check {
	return &inboundCheck{k: ic.c.Begin(ctx, inbound.Origin{IP: ip, HELO: helo, MailFrom: mailFrom}, out), id: id, record: ic.record}
}

type inboundCheck struct {
	k      *inbound.Check
	id     string
	record func(id, event, detail string)
}

func (c *inboundCheck) Write(p []byte) (int, error) { return c.k.Write(p) }
func (c *inboundCheck) Abort()                      { c.k.Abort() }

func (c *inboundCheck) End() smtp.Verdict {
	v := c.k.End()
	detail := v.Detail
	if v.Refuse != nil {
		detail += fmt.Sprintf(" refused %d %s", v.Refuse.Code, v.Refuse.Status)
	}
	if n := c.k.Removed(); n > 0 {
		detail += fmt.Sprintf(" (removed %d forged Authentication-Results)", n)
	}
	c.record(c.id, "checked", detail)
	return smtp.Verdict{Header: v.Header, Refuse: v.Refuse, Detail: detail}
}

// inboundChecker makes the checker of mail from outside (nil when
// --inbound-checks=false).
func (n *Node) inboundChecker() smtp.Checker {
	cfg := n.cfg.Trust
	if cfg.NoInboundChecks {
		return nil
	}
	policy := func(domain string) inbound.Mode {
		if m, ok := cfg.DMARCPolicyFor[domain]; ok {
			return inbound.Mode(m)
		}
		return inbound.Mode(cfg.DMARCPolicy)
	}
	c := inbound.New(inbound.Config{AuthServID: cfg.AuthServID, Resolver: n.trust.resolver, Policy: policy,
		Metrics: n.trust.authMetrics})
	return inboundChecks{c: c, record: n.noteJourney}
}

// noteJourney notes an event of message id in this node's journal.
func (n *Node) noteJourney(id, event, detail string) {
	if s := n.actors; s != nil {
		s.Stats().Journal.Record(id, event, detail)
	}
}
