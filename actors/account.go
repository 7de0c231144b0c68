package actors

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/homing-mail/homing/actors/pb"
	"github.com/homing-mail/homing/mail"
	"github.com/homing-mail/homing/rules"
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
	// submit queues mail this account's rules generate (redirect,
	// forward, auto-reply) by the node's queue mode.
	submit func(ctx context.Context, env *mail.Envelope, body []byte) error
	now    func() time.Time

	loaded bool
	acct   storage.Account
	rules  *rules.Set
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
		out, durable := a.deliver(m)
		if durable == nil {
			ctx.Respond(out)
			return
		}
		// Written, not yet synced: answer once it is durable, and go on
		// with the next delivery meanwhile (one account's deliveries then
		// share sync rounds). The storage layer fails every later write if
		// this sync fails, so nothing is reported stored on top of a loss.
		sender, root := ctx.Sender(), ctx.ActorSystem().Root
		go func() {
			if err := <-durable; err != nil {
				a.log.Error("local delivery not synced", "account", a.address, "queueID", m.QueueId, "err", err)
				out.Result, out.MessageId = pbResult(mail.Temp("4.3.0", "mailbox temporarily unavailable")), ""
			}
			if sender != nil {
				root.Send(sender, out)
			}
		}()
	}
}

func (a *accountActor) load() error {
	acct, err := a.data.Account(a.address)
	if err != nil {
		return err
	}
	a.acct, a.loaded = acct, true
	a.rules = nil
	if len(acct.Rules) > 0 {
		var rs []rules.Rule
		set, err := (*rules.Set)(nil), json.Unmarshal(acct.Rules, &rs)
		if err == nil {
			set, err = rules.Compile(rs, rules.ScopeAccount)
		}
		if err != nil {
			// Validated when set; a bad set is ignored, never fatal for mail.
			a.log.Error("account rules ignored", "account", a.address, "err", err)
		}
		a.rules = set
	}
	return nil
}

// deliver stores one message (Local Delivery). It is idempotent: the queue
// id and the recipient form the dedup key, so a retry after an unclear
// answer never stores the message twice.
// durable, when not nil, says when the stored message is synced: out may
// be reported only then.
func (a *accountActor) deliver(m *pb.Deliver) (out *pb.DeliverResult, durable <-chan error) {
	out = &pb.DeliverResult{QueueId: m.QueueId, Recipient: m.Recipient}
	if !a.loaded {
		if err := a.load(); err != nil {
			out.Result = pbResult(a.failure(m, err))
			return out, nil
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), a.cfg.RequestTimeout)
	defer cancel()
	raw, folder := m.Raw, m.Folder
	if a.rules.Len() > 0 {
		var stop *mail.Result
		raw, folder, stop = a.applyRules(ctx, m)
		if stop != nil {
			out.Result = pbResult(*stop)
			return out, nil
		}
	}
	// The store checks the quota after the dedup lookup, so a repeated
	// delivery of a message already stored is a duplicate, never "full".
	res, durable, err := a.data.AppendAsync(ctx, a.address, storage.AppendRequest{
		Folder:     folder,
		DedupKey:   m.QueueId + "/" + m.Recipient,
		Raw:        raw,
		Received:   time.Unix(0, m.ReceivedUnixNano),
		QuotaBytes: a.acct.QuotaBytes,
	})
	if errors.Is(err, storage.ErrOverQuota) {
		// RFC 3463 4.2.2: mailbox full. Temporary; the queue turns it
		// permanent after its over-quota time (5.2.2).
		out.Result = pbResult(mail.Result{Code: 452, Status: "4.2.2", Text: "mailbox full"})
		return out, nil
	}
	if err != nil {
		a.loaded = false
		out.Result = pbResult(a.failure(m, err))
		return out, nil
	}
	out.MessageId, out.Duplicate = res.ID, res.Duplicate
	if res.Duplicate {
		a.stats.Journal.Record(m.QueueId, "stored", fmt.Sprintf("%s: already stored as message %s of %s (a repeated delivery)", m.Recipient, res.ID, a.address))
	} else {
		f := folder
		if f == "" {
			f = "INBOX"
		}
		a.stats.Journal.Record(m.QueueId, "stored", fmt.Sprintf("%s: stored as message %s in %s/%s", m.Recipient, res.ID, a.address, f))
	}
	out.Result = pbResult(mail.Delivered("stored"))
	return out, durable
}

// applyRules runs the account's rules on one delivery: it may refuse it,
// file it in a folder, add header fields, keep no copy, and generate
// messages (redirect and forward copies, an RFC 3834 auto-reply), which go
// out through the node's queue mode. stop is the result to answer when the
// message is not stored here.
func (a *accountActor) applyRules(ctx context.Context, m *pb.Deliver) (raw []byte, folder string, stop *mail.Result) {
	raw, folder = m.Raw, m.Folder
	h, _ := rules.ParseHeader(m.Raw)
	env := &mail.Envelope{From: m.Sender, Recipients: []*mail.Recipient{{Addr: m.Recipient}}, Size: int64(len(m.Raw))}
	o := a.rules.Evaluate(rules.NewMessage(env, h))
	if o.Reject != nil {
		return nil, "", &mail.Result{Code: o.Reject.Code, Status: o.Reject.Status, Text: o.Reject.Text}
	}
	// Delivered-To (RFC 9228) marks what this account already handled: a
	// message that comes back is stored, never sent round again.
	looped := rules.AddressedTo(deliveredTo(h), a.address)
	if out := append(append([]string(nil), o.Redirect...), o.Forward...); len(out) > 0 {
		if looped {
			a.log.Warn("forwarding loop: not forwarding again", "account", a.address, "queueID", m.QueueId)
		} else if err := a.generate(ctx, m, out, append([]byte("Delivered-To: "+a.address+"\r\n"), m.Raw...), "R"); err != nil {
			return nil, "", &mail.Result{Code: 451, Status: "4.3.0", Text: "forwarding failed; try again later"}
		}
	}
	if o.Vacation != nil && !looped {
		a.autoReply(ctx, m, h, o.Vacation)
	}
	if !o.Keep() {
		return nil, "", &mail.Result{Code: 250, Status: "2.0.0", Text: "handled by the account's rules (not kept)"}
	}
	if o.Folder != "" {
		folder = o.Folder
	}
	if len(o.AddHeaders) > 0 {
		var b []byte
		for _, line := range o.AddHeaders {
			b = append(append(b, line...), '\r', '\n')
		}
		raw = append(b, raw...)
	}
	return raw, folder, nil
}

// deliveredTo returns the Delivered-To fields of h as a header that
// rules.AddressedTo can read (it looks at To and Cc).
func deliveredTo(h rules.Header) rules.Header {
	var out rules.Header
	for _, v := range h.Values("Delivered-To") {
		out = append(out, rules.Field{Name: "To", Value: v})
	}
	return out
}

// generate submits a copy of the message for rcpts. Its queue id is
// derived from the delivery's, so a delivery retried after a crash
// produces the same message, which a local mailbox stores once.
func (a *accountActor) generate(ctx context.Context, m *pb.Deliver, rcpts []string, body []byte, kind string) error {
	env := &mail.Envelope{
		ID:       derivedID(m.QueueId, m.Recipient, kind),
		From:     m.Sender,
		Received: a.now(),
		Source:   rules.SourceRule,
		Auth:     a.address,
	}
	for _, r := range rcpts {
		env.Recipients = append(env.Recipients, &mail.Recipient{Addr: r, State: mail.StatePending})
	}
	if err := a.submit(ctx, env, body); err != nil {
		a.log.Error("account rule could not queue a message", "account", a.address, "queueID", m.QueueId, "err", err)
		return err
	}
	a.log.Info("account rule queued a message", "account", a.address, "about", m.QueueId, "queueID", env.ID, "to", strings.Join(rcpts, ","))
	return nil
}

// autoReply sends an RFC 3834 vacation reply, at most once per sender per
// v.Days, never to the null sender, lists or automatic mail, and only when
// the account was named in To or Cc (RFC 3834 §2).
func (a *accountActor) autoReply(ctx context.Context, m *pb.Deliver, h rules.Header, v *rules.Vacation) {
	if ok, why := rules.ShouldAutoReply(m.Sender, h); !ok {
		a.log.Debug("no auto-reply", "account", a.address, "reason", why)
		return
	}
	if !rules.AddressedTo(h, a.address, m.Recipient) {
		return
	}
	days := v.Days
	if days <= 0 {
		days = rules.DefaultVacationDays
	}
	already, err := a.data.AutoReplied(ctx, a.address, m.Sender, time.Duration(days)*24*time.Hour)
	if err != nil || already {
		return
	}
	from := v.From
	if from == "" {
		from = a.address
	}
	id := derivedID(m.QueueId, m.Recipient, "V")
	body := rules.AutoReplyMessage(from, m.Sender, v.Subject, v.Text, h, a.now(), id+"@"+a.cfg.Hostname)
	env := &mail.Envelope{
		ID:         id,
		From:       "", // RFC 3834 §3.3: auto-replies go out from the null sender
		Recipients: []*mail.Recipient{{Addr: m.Sender, State: mail.StatePending, Notify: []mail.Notify{mail.NotifyNever}}},
		Received:   a.now(),
		Source:     rules.SourceRule,
		Auth:       a.address,
	}
	if err := a.submit(ctx, env, body); err != nil {
		a.log.Error("auto-reply not queued", "account", a.address, "err", err)
	}
}

// derivedID names a message generated from a delivery.
func derivedID(queueID, rcpt, kind string) string {
	h := fnv.New32a()
	h.Write([]byte(strings.ToLower(rcpt)))
	return fmt.Sprintf("%s%s%08X", queueID, kind, h.Sum32())
}

func (a *accountActor) failure(m *pb.Deliver, err error) mail.Result {
	if errors.Is(err, mail.ErrNotFound) || errors.Is(err, mail.ErrNoSuchUser) {
		return mail.Perm("5.1.1", "no such mailbox")
	}
	a.log.Error("local delivery failed", "account", a.address, "queueID", m.QueueId, "err", err)
	return mail.Temp("4.3.0", "mailbox temporarily unavailable")
}
