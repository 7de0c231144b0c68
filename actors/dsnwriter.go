package actors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/homing-mail/homing/mail"
	"github.com/homing-mail/homing/maillog"
	"github.com/homing-mail/homing/rules"
	"github.com/homing-mail/homing/storage"
)

// dsnJob asks the DSN writer for one report about msg.
type dsnJob struct {
	msg   *mail.Message
	kind  reportKind
	rcpts []int // the keys of the recipients reported on
	also  []int // delivered recipients mentioned in a failure report
}

// dsnActor writes delivery status notifications and submits them from the
// null sender, so a report that fails makes no further report (RFC 3461
// §6.2). The id of a report is derived from the id of the message it is
// about, so a report submitted again after a crash is the same queue
// message and a local sender's mailbox stores it once.
//
// A submission waits for the Enqueuer's rules and filters and a sync
// round, so each report is written and submitted on a goroutine of its
// own, which tells the queue when it is durable (dsnWritten): the actor
// never blocks.
type dsnActor struct {
	cfg *Config
	// submitter queues the report by the node's queue mode (a report
	// written on a backend in mode Remotely goes to a Locally-for-Others
	// member).
	submitter Submitter
	stats     *Stats
	mlog      *maillog.Log
	log       *slog.Logger
	now       func() time.Time
}

func (d *dsnActor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		d.stats.started(KindDSN)
	case *actor.Stopped:
		d.stats.stopped(KindDSN)
	case *dsnJob:
		root, queue := ctx.ActorSystem().Root, ctx.Parent()
		go func() {
			err := d.write(m)
			if m.kind != reportDelay {
				root.Send(queue, &dsnWritten{id: m.msg.Envelope.ID, err: err})
			} else if err != nil {
				d.log.Error("delay warning not sent", "queueID", m.msg.Envelope.ID, "err", err)
			}
		}()
	}
}

func (d *dsnActor) write(job *dsnJob) error {
	now := d.now()
	orig := job.msg.Envelope
	body, err := d.original(job.msg)
	if err != nil {
		return err
	}
	id := reportID(orig.ID, job.kind)
	raw := buildDSN(d.cfg.Hostname, orig, body, job.kind, job.rcpts, job.also, now,
		orig.Received.Add(d.cfg.MaxLifetime), id)
	env := &mail.Envelope{
		ID:         id,
		From:       "",
		Recipients: []*mail.Recipient{{Addr: orig.From, State: mail.StatePending, Notify: []mail.Notify{mail.NotifyNever}}},
		Received:   now,
		Source:     mail.SourceDSN,
		SMTPUTF8:   orig.SMTPUTF8,
		Body8Bit:   true,
	}
	ctx, cancel := context.WithTimeout(context.Background(), d.cfg.RequestTimeout)
	defer cancel()
	if err := d.submitter.Submit(ctx, &mail.Message{Envelope: env, Body: mail.BytesBody(raw)}); err != nil {
		return err
	}
	d.stats.Journal.Record(orig.ID, "report", fmt.Sprintf("%s report %s queued to <%s>", job.kind, id, orig.From))
	d.log.Debug("DSN queued", "queueID", id, "about", orig.ID, "action", string(job.kind), "to", orig.From)
	d.mlog.Report(orig.ID, reportLogKind(job.kind), id, orig.From)
	return nil
}

// original is what a report may quote of the message: all of it when it
// is small enough to return, its header section otherwise (buildDSN
// decides which it uses).
func (d *dsnActor) original(msg *mail.Message) ([]byte, error) {
	if msg.Body == nil {
		return nil, nil
	}
	if msg.Body.Size() > maxReturnedBody {
		return mail.Head(msg.Body, rules.MaxHeaderBytes)
	}
	raw, err := mail.ReadBody(msg.Body)
	if errors.Is(err, storage.ErrDamaged) {
		// The report still goes out, quoting nothing: its bytes are not
		// what was accepted.
		d.log.Error("the body of a message to report on is damaged; the report quotes nothing", "queueID", msg.Envelope.ID, "err", err)
		return nil, nil
	}
	return raw, err
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
