package transfer

import (
	"context"
	"errors"
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

// Transfer tries the live Locally-for-Others members in turn (never a
// suspect one, at most two), starting at a different one each time. A
// transfer whose reply was lost is sent again to the same member first: it
// recognises the message id and does not queue it twice.
func (c *Client) Transfer(ctx context.Context, msg *mail.Message) (string, error) {
	targets := c.targets()
	if len(targets) == 0 {
		return "", ErrNoTarget
	}
	start := int(c.next.Add(1))
	var last error
	for i := 0; i < len(targets) && i < 2; i++ {
		m := targets[(start+i)%len(targets)]
		err := c.smtp.Transfer(ctx, m.Meta.SMTP, c.auth, msg)
		var te *smtp.TransferError
		if errors.As(err, &te) && te.Unclear && ctx.Err() == nil {
			err = c.smtp.Transfer(ctx, m.Meta.SMTP, c.auth, msg)
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
