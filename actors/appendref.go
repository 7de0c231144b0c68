package actors

import (
	"fmt"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/homing-mail/homing/actors/pb"
	"github.com/homing-mail/homing/mail"
	"github.com/homing-mail/homing/storage"
)

// An APPEND whose body comes by reference (upload.go): the account actor
// takes it as a Local Delivery's body by reference (bodyref.go). A body
// of this node on the partition's filesystem is linked at once; any other
// is staged first on a goroutine (copied, or pulled in chunks from the
// session's node), so the actor never waits on the transfer, and appended
// when it is here. An APPEND that cannot fit in the quota is refused
// before anything is fetched.

// stagedAppend: a goroutine of the account actor staged the body of an
// APPEND into the partition (or failed to).
type stagedAppend struct {
	op     *pb.MailboxOp
	sender *actor.PID
	body   mail.Body // the file's bytes, without the prefix
	err    error
}

// appendRef appends op, whose body ref names.
func (a *accountActor) appendRef(ctx actor.Context, to *actor.PID, op *pb.MailboxOp, ref *pb.BodyRef) {
	if q := a.acct.QuotaBytes; q > 0 {
		used, _, err := a.data.Usage(a.address)
		if err == nil && used+ref.GetSize()+int64(len(ref.GetPrefix())) > q {
			a.afterDurable(ctx, to, nil, nil, fmt.Errorf("%w: %s uses %d of %d bytes", storage.ErrOverQuota, a.address, used, q))
			return
		}
	}
	local := ref.GetOrigin() == ctx.ActorSystem().Address()
	if local {
		body, err := a.bodies.local(ref)
		if err != nil {
			a.afterDurable(ctx, to, nil, nil, err)
			return
		}
		if a.data.Linkable(body) {
			a.appendBody(ctx, to, op, body, nil)
			return
		}
	}
	if a.bodies == nil {
		a.afterDurable(ctx, to, nil, nil, fmt.Errorf("%w: no way to fetch the body", mail.ErrUnavailable))
		return
	}
	a.staging++
	root, self := ctx.ActorSystem().Root, ctx.Self()
	go func() {
		body, err := a.stage(root, ref, local)
		root.Send(self, &stagedAppend{op: op, sender: to, body: body, err: err})
	}()
}

// stagedAppend appends an APPEND whose body was staged.
func (a *accountActor) stagedAppend(ctx actor.Context, m *stagedAppend) {
	a.staging--
	if m.err != nil {
		a.log.Warn("append: the body could not be fetched", "account", a.address, "from", m.op.GetBodyRef().GetOrigin(), "err", m.err)
		a.afterDurable(ctx, m.sender, nil, nil, m.err)
		return
	}
	// The staged file is taken over by the append; dropped if it fails.
	a.appendBody(ctx, m.sender, m.op, mail.Prepend(m.op.GetBodyRef().GetPrefix(), m.body), func() { storage.DiscardBody(m.body) })
}
