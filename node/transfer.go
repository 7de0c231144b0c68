package node

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/homing-mail/homing/cluster"
	"github.com/homing-mail/homing/mail"
	"github.com/homing-mail/homing/smtp"
)

// transferer hands mail generated on this node to a member whose queue
// mode is Locally for Others (queue mode Remotely), over that member's SMTP
// port with the cluster submission protocol (smtp/cluster.go). It
// satisfies actors.Transferer.
type transferer struct {
	n      *Node
	client *smtp.Client
	auth   *smtp.ClusterAuth
	next   atomic.Uint64 // spreads transfers over the members
}

// errNoTransferTarget: no live Locally-for-Others member is known.
var errNoTransferTarget = errors.New("no member processes queues for others now")

// Transfer tries the live Locally-for-Others members in turn (never a
// suspect one), starting at a different one each time. A transfer whose
// reply was lost is sent again to the same member first: it recognises the
// message id and does not queue it twice.
func (t *transferer) Transfer(ctx context.Context, msg *mail.Message) (string, error) {
	targets := t.n.members(func(m cluster.Member) bool {
		return !m.Self && m.State == cluster.StateAlive && m.Meta.QueueMode == ModeLocallyForOthers && m.Meta.SMTP != ""
	})
	if len(targets) == 0 {
		return "", errNoTransferTarget
	}
	start := int(t.next.Add(1))
	var last error
	for i := 0; i < len(targets) && i < 2; i++ {
		m := targets[(start+i)%len(targets)]
		err := t.client.Transfer(ctx, m.Meta.SMTP, t.auth, msg)
		var te *smtp.TransferError
		if errors.As(err, &te) && te.Unclear && ctx.Err() == nil {
			err = t.client.Transfer(ctx, m.Meta.SMTP, t.auth, msg)
		}
		if err == nil {
			return m.Name, nil
		}
		last = fmt.Errorf("to %s: %w", m.Name, err)
		if ctx.Err() != nil {
			break
		}
	}
	return "", last
}

// members returns the members of the cluster that keep returns true for,
// sorted by name; none on a single node.
func (n *Node) members(keep func(cluster.Member) bool) []cluster.Member {
	cl := n.cluster()
	if cl == nil || cl.membership == nil {
		return nil
	}
	var out []cluster.Member
	for _, m := range cl.membership.Members() {
		if keep(m) {
			out = append(out, m)
		}
	}
	return out
}

// forwardHosts are the SMTP addresses non-local mail is forwarded to with
// --forward-to: the live frontends (for "*"), starting at a different one
// each call so that the load spreads and a dead one is skipped, or the
// configured list.
func (n *Node) forwardHosts(counter *atomic.Uint64) func() []string {
	return func() []string {
		var hosts []string
		for _, f := range n.cfg.ForwardTo {
			if f != "*" {
				hosts = append(hosts, f)
				continue
			}
			for _, m := range n.members(func(m cluster.Member) bool {
				return !m.Self && m.State == cluster.StateAlive && m.Meta.HasRole("frontend") && m.Meta.SMTP != ""
			}) {
				hosts = append(hosts, m.Meta.SMTP)
			}
		}
		if len(hosts) > 1 {
			k := int(counter.Add(1)) % len(hosts)
			hosts = append(hosts[k:], hosts[:k]...)
		}
		return hosts
	}
}
