package actors

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/homing-mail/homing/actors/pb"
	"github.com/homing-mail/homing/mail"
	"github.com/homing-mail/homing/storage"
)

// passivate is sent by an idle account actor to its partition actor, which
// then stops it with a poison pill (processed after every message already in
// its mailbox, so nothing routed to it before is lost).
type passivate struct {
	account string
	pid     *actor.PID
}

// accountActor is the only writer of one account's mailbox. It is activated
// by the first message for the account and passivated after cfg.AccountIdle
// without messages.
type accountActor struct {
	address string
	data    PartitionData
	cfg     *Config
	stats   *Stats
	log     *slog.Logger

	loaded bool
	acct   storage.Account
	used   int64
}

func (a *accountActor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		a.stats.started(KindAccount)
		ctx.SetReceiveTimeout(a.cfg.AccountIdle)
	case *actor.Stopped:
		a.stats.stopped(KindAccount)
	case *actor.ReceiveTimeout:
		ctx.Send(ctx.Parent(), &passivate{account: a.address, pid: ctx.Self()})
	case *pb.Deliver:
		ctx.Respond(a.deliver(m))
	case *reloadAccount:
		a.loaded = false
	}
}

// reloadAccount tells an account actor that its record changed.
type reloadAccount struct{}

func (a *accountActor) load() error {
	acct, err := a.data.Account(a.address)
	if err != nil {
		return err
	}
	used, _, err := a.data.Usage(a.address)
	if err != nil {
		return err
	}
	a.acct, a.used, a.loaded = acct, used, true
	return nil
}

// deliver stores one message (Local Delivery). It is idempotent: the queue
// id and the recipient form the dedup key, so a retry after an unclear
// answer never stores the message twice.
func (a *accountActor) deliver(m *pb.Deliver) *pb.DeliverResult {
	out := &pb.DeliverResult{QueueId: m.QueueId, Recipient: m.Recipient}
	if !a.loaded {
		if err := a.load(); err != nil {
			out.Result = pbResult(a.failure(m, err))
			return out
		}
	}
	size := int64(len(m.Raw))
	ctx, cancel := context.WithTimeout(context.Background(), a.cfg.RequestTimeout)
	defer cancel()
	// The store checks the quota after the dedup lookup, so a repeated
	// delivery of a message already stored is a duplicate, never "full".
	res, err := a.data.Append(ctx, a.address, storage.AppendRequest{
		Folder:     m.Folder,
		DedupKey:   m.QueueId + "/" + m.Recipient,
		Raw:        m.Raw,
		Received:   time.Unix(0, m.ReceivedUnixNano),
		QuotaBytes: a.acct.QuotaBytes,
	})
	if errors.Is(err, storage.ErrOverQuota) {
		// RFC 3463 4.2.2: mailbox full. Temporary; the queue turns it
		// permanent after its over-quota time (5.2.2).
		out.Result = pbResult(mail.Result{Code: 452, Status: "4.2.2", Text: "mailbox full"})
		return out
	}
	if err != nil {
		a.loaded = false
		out.Result = pbResult(a.failure(m, err))
		return out
	}
	if !res.Duplicate {
		a.used += size
	}
	out.MessageId, out.Duplicate = res.ID, res.Duplicate
	out.Result = pbResult(mail.Delivered("stored"))
	return out
}

func (a *accountActor) failure(m *pb.Deliver, err error) mail.Result {
	if errors.Is(err, mail.ErrNotFound) || errors.Is(err, mail.ErrNoSuchUser) {
		return mail.Perm("5.1.1", "no such mailbox")
	}
	a.log.Error("local delivery failed", "account", a.address, "queueID", m.QueueId, "err", err)
	return mail.Temp("4.3.0", "mailbox temporarily unavailable")
}
