package node

import (
	"context"
	"path/filepath"
	"slices"
	"strings"

	"github.com/homing-mail/homing/actors"
	"github.com/homing-mail/homing/control"
	"github.com/homing-mail/homing/dkim"
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
	keys, err := dkim.OpenKeyring(filepath.Join(n.cfg.Store.DataDir, dkimKeysFile), nil)
	if err != nil {
		return err
	}
	n.trust.keys = keys
	n.trust.keysRepl = dkim.NewReplicator(keys, n.log.With("component", "dkim"))
	algorithm := cfg.DKIMAlgorithm
	n.trust.signer = dkim.NewSigner(dkim.SignerConfig{Keys: keys, IsLocal: n.isLocalDomain,
		Fallback: n.cfg.Domains[0], Algorithm: algorithm})
	return nil
}

// isLocalDomain reports whether domain is one of the node's local domains.
func (n *Node) isLocalDomain(domain string) bool {
	return slices.ContainsFunc(n.cfg.Domains, func(d string) bool { return strings.EqualFold(d, domain) })
}

// relayResolver is the relay's DNS: a test's stub, or the node's resolver.
func (n *Node) relayResolver() smtp.Resolver {
	if n.cfg.Routing.Resolver != nil {
		return n.cfg.Routing.Resolver
	}
	return n.trust.resolver
}

// relayer wraps the relay client in the DKIM signer unless this node
// forwards every non-local message to other members (they sign when
// they relay it) or signing is off.
func (n *Node) relayer(next actors.Relayer) actors.Relayer {
	if n.cfg.Trust.NoDKIMSign || len(n.cfg.Routing.ForwardTo) > 0 {
		return next
	}
	return &dkim.SigningRelayer{Next: next, Signer: n.trust.signer, Log: n.log.With("component", "dkim"),
		Record: func(id, event, detail string) {
			if s := n.actors; s != nil {
				s.Stats().Journal.Record(id, event, detail)
			}
		}}
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
	changed, cancel := n.changes.Subscribe()
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		n.trust.keysRepl.Sync()
		for {
			select {
			case <-changed:
				n.trust.keysRepl.Sync()
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

// adminAPI is what the admin endpoint serves: the control plane and the
// DKIM keys.
type adminAPI struct {
	*control.API
	*control.DKIM
}

func (n *Node) adminAPI() adminAPI {
	return adminAPI{API: n.api, DKIM: &control.DKIM{Keys: n.trust.keys, IsLocal: n.isLocalDomain}}
}
