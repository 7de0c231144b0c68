package actors

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/homing-mail/homing/mail"
)

// dsnJob asks the DSN writer for one report.
type dsnJob struct {
	env  *mail.Envelope
	body []byte
	kind reportKind
	idxs []int // the recipients reported on
	also []int // delivered recipients mentioned in a failure report
}

// dsnActor writes delivery status notifications and enqueues them from the
// null sender, so a report that fails makes no further report (RFC 3461
// §6.2). The id of a report is derived from the id of the message it is
// about, so a report enqueued again after a crash is the same queue message
// and a local sender's mailbox stores it once.
type dsnActor struct {
	cfg *Config
	// submit queues the report by the node's queue mode (a report written
	// on a backend in mode Remotely goes to a Locally-for-Others member).
	submit func(ctx context.Context, env *mail.Envelope, body []byte) error
	stats  *Stats
	log    *slog.Logger
	now    func() time.Time
}

func (d *dsnActor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		d.stats.started(KindDSN)
	case *actor.Stopped:
		d.stats.stopped(KindDSN)
	case *dsnJob:
		err := d.write(m)
		if m.kind != reportDelay {
			ctx.Send(ctx.Parent(), &dsnWritten{id: m.env.ID, err: err})
		} else if err != nil {
			d.log.Error("delay warning not sent", "queueID", m.env.ID, "err", err)
		}
	}
}

func (d *dsnActor) write(job *dsnJob) error {
	now := d.now()
	id := reportID(job.env.ID, job.kind)
	raw := buildDSN(d.cfg.Hostname, job.env, job.body, job.kind, job.idxs, job.also, now,
		job.env.Received.Add(d.cfg.MaxLifetime), id)
	env := &mail.Envelope{
		ID:         id,
		From:       "",
		Recipients: []*mail.Recipient{{Addr: job.env.From, State: mail.StatePending, Notify: []mail.Notify{mail.NotifyNever}}},
		Received:   now,
		Source:     mail.SourceDSN,
		SMTPUTF8:   job.env.SMTPUTF8,
		Body8Bit:   true,
	}
	ctx, cancel := context.WithTimeout(context.Background(), d.cfg.RequestTimeout)
	defer cancel()
	err := d.submit(ctx, env, raw)
	if err == nil {
		d.stats.Journal.Record(job.env.ID, "report", fmt.Sprintf("%s report %s queued to <%s>", job.kind, id, job.env.From))
		d.log.Info("DSN queued", "queueID", id, "about", job.env.ID, "action", string(job.kind), "to", job.env.From)
	}
	return err
}

// reportID derives a report's queue id from the original's: the same
// report written twice is one message.
func reportID(id string, kind reportKind) string {
	switch kind {
	case reportFailure:
		return id + "F"
	case reportDelay:
		return id + "D"
	default:
		return id + "S"
	}
}
