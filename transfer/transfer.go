package transfer

import (
	"context"
	"fmt"
	"sync/atomic"

	"github.com/homing-mail/homing/cluster"
	"github.com/homing-mail/homing/mail"
	"github.com/homing-mail/homing/smtp"
)

// Members returns the cluster's members as this node sees them now (none
// on a single node or before the node has joined).
type Members func() []cluster.Member

// Client hands mail generated on this node to a member whose queue mode is
// Locally for Others (queue mode Remotely), over that member's SMTP port
// with the cluster submission protocol (smtp/cluster.go). It satisfies
// actors.Transferer. Safe for concurrent use.
type Client struct {
	smtp    *smtp.Client
	auth    *smtp.ClusterAuth
	members Members
	next    atomic.Uint64 // spreads transfers over the members
}

// New returns a transfer client that authenticates with auth.
func New(client *smtp.Client, auth *smtp.ClusterAuth, members Members) *Client {
	return &Client{smtp: client, auth: auth, members: members}
}

// ErrNoTarget: no live Locally-for-Others member is known.
var ErrNoTarget = mail.TemporaryError("no member processes queues for others now")

// Targets lists the live Locally-for-Others members other than this node
// (never a suspect one), starting at a different one each call, so that
// transfers spread over them. It satisfies actors.Transferer.
func (c *Client) Targets() []string {
	targets := c.targets()
	if len(targets) == 0 {
		return nil
	}
	start := int(c.next.Add(1))
	out := make([]string, len(targets))
	for i := range targets {
		out[i] = targets[(start+i)%len(targets)].Name
	}
	return out
}

// TransferTo hands msg to member over its SMTP port (smtp.Client.Transfer)
// and returns nil once the member answered 250. It fails with ErrNoTarget
// when member is not a live member that takes transfers. An error
// wrapping an unclear *smtp.TransferError (the whole message was sent and
// no reply was read) means the member may hold a copy: the queue then
// asks it (actors/transfer.go) rather than sending it again.
func (c *Client) TransferTo(ctx context.Context, member string, msg *mail.Message) error {
	for _, m := range c.targets() {
		if m.Name == member {
			if err := c.smtp.Transfer(ctx, m.Meta.SMTP, c.auth, msg); err != nil {
				return fmt.Errorf("to %s: %w", m.Name, err)
			}
			return nil
		}
	}
	return fmt.Errorf("to %s: %w", member, ErrNoTarget)
}

// Channel returns the cluster channel address of member while it is live
// (alive or suspect: a question may still reach it), "" otherwise: where
// the transfer protocol's questions go (actors.ChannelPeers).
func (c *Client) Channel(member string) string {
	for _, m := range c.members() {
		if m.Name == member && !m.Self && m.State.Live() {
			return m.Meta.Channel
		}
	}
	return ""
}

// targets are the live members other than this node that take transfers.
func (c *Client) targets() []cluster.Member {
	var out []cluster.Member
	for _, m := range c.members() {
		if !m.Self && m.State == cluster.StateAlive && m.Meta.QueueMode == mail.ModeLocallyForOthers && m.Meta.SMTP != "" {
			out = append(out, m)
		}
	}
	return out
}
