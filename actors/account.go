package actors

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"slices"
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

// The kinds of work an account's rules leave pending after an append
// (storage.AppendRequest.Pending); each also names its generated message's
// id (derivedID).
const (
	workForward  = "R" // forward and redirect copies
	workVacation = "V" // an RFC 3834 auto-reply
)

// accountActor is the only writer of one account's mailbox. It is activated
// by the first message for the account and passivated after cfg.AccountIdle
// without messages.
type accountActor struct {
	address string
	data    PartitionData
	cfg     *Config
	stats   *Stats
	log     *slog.Logger
	// submitter queues mail this account's rules generate (redirect,
	// forward, auto-reply) by the node's queue mode.
	submitter Submitter
	now       func() time.Time

	loaded bool
	acct   storage.Account
	rules  *rules.Set
	// busy holds the dedup keys whose generated messages a goroutine of
	// this actor is submitting now: a repeated delivery then does not
	// submit them a second time.
	busy map[string]bool
	// bodies finds bodies that come by reference (bodyref.go); staging
	// counts the deliveries whose body a goroutine is fetching or
	// copying: the actor is not passivated meanwhile.
	bodies  *bodySource
	staging int

	// The mailbox operations' state (mailbox.go): the folders sessions
	// selected, the watchers told of changes, the POP3 lock.
	views          map[uint32]*folderView
	metas          metaCache
	watchers       map[string]*watcher
	popLock        string
	popLockExpires time.Time
}

// workDone: the goroutine of a delivery has finished the work of these
// dedup keys.
type workDone struct{ keys []string }

func (a *accountActor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		a.stats.started(KindAccount)
		ctx.SetReceiveTimeout(a.cfg.AccountIdle)
	case *actor.Stopped:
		a.closing(ctx)
		a.release()
		a.stats.stopped(KindAccount)
	case *actor.ReceiveTimeout:
		if a.staging == 0 && !a.watched() {
			ctx.Send(ctx.Parent(), &passivate{account: a.address, pid: ctx.Self()})
		}
	case *passivateIdle:
		if a.mayPassivate() {
			ctx.Send(ctx.Parent(), &passivate{account: a.address, pid: ctx.Self()})
		} else {
			ctx.Send(ctx.Parent(), &passivateRefused{account: a.address, pid: ctx.Self()})
		}
	case *pb.Deliver:
		a.receive(ctx, m)
	case *staged:
		a.staged(ctx, m)
	case *stagedAppend:
		a.stagedAppend(ctx, m)
	case *workDone:
		for _, k := range m.keys {
			delete(a.busy, k)
		}
	case *pb.MailboxOp:
		a.mailbox(ctx, m)
	case *notifyChange:
		a.notify(ctx, m)
	case *viewsStale:
		a.views = nil
	}
}

// release drops what the actor holds of its account once it has stopped.
// A stopped actor is not always garbage at once: protoactor's set of a
// parent's children (PIDSet.Remove) shortens its slice without clearing
// the slot it gave up, so the PIDs of up to as many children as the
// partition once had stay reachable, and each PID caches its process, the
// actor included. Measured on a node idle after 20,000 messages to 20,000
// accounts: their loaded accounts, folder views and the partitions they
// pointed to were ~15 MB of a 58 MB live heap. Only the state Receive
// alone touches is dropped here; what the actor's goroutines read (data,
// cfg, bodies, ...) stays as it was.
func (a *accountActor) release() {
	a.loaded, a.acct, a.rules, a.busy = false, storage.Account{}, nil, nil
	a.views, a.watchers = nil, nil
	a.metas.drop()
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

// delivery is the work of one recipient of a Deliver.
type delivery struct {
	rcpt   *mail.Recipient
	result mail.Result
	// durable, when set, says when the append is synced.
	durable <-chan error
	// generated are the messages to submit once the append is durable;
	// dedupKey is the append's key, whose pending work is marked done as
	// each is queued.
	generated []generated
	dedupKey  string
	// messageID is the id the append gave (or the first append, for a
	// duplicate); duplicate says it was stored before.
	messageID string
	duplicate bool
	// unwritten: the append was refused when its batch was written
	// (complete): the folder view that took it is wrong.
	unwritten bool
	// notify is the change to tell the account's watchers once the
	// append is durable.
	notify *notifyChange
}

// deliver stores one attempt (Local Delivery) for each of its recipients,
// in the order of a delivery transaction (maddy's: no side effect before
// the commit):
//
//  1. evaluate the account's rules: refuse, file into a folder, add
//     header fields, keep a copy or not, messages to generate;
//  2. append, the commit: the message (or only its dedup record, when the
//     rules keep no copy), the work it leaves pending and the auto-reply
//     marks go in one batch, idempotent on the queue id and recipient;
//  3. only when that append is durable and new, or repeated while its
//     pending work was never done, submit the generated messages (forward
//     and redirect copies, the vacation reply) and then clear the work.
//
// The answer goes back when all of that is done, off the actor (a
// goroutine waits for the sync and the submissions): stored, or temporary
// when the sync or a submission failed. A retry after that finds a
// duplicate with its work still pending and does only the work; a retry
// after the work was done does nothing at all. So a forwarded copy is sent
// once however often the delivery is repeated (over quota, an unclear
// answer), except after a crash between a submission and the clearing of
// its work (at least once, like every queue hand-off).
//
// msg is d with its body found (bodyref.go); done, when set, runs once
// all of that is over (it drops a staged copy of the body).
func (a *accountActor) deliver(ctx actor.Context, d *pb.Deliver, msg *mail.Message, sender *actor.PID, done func()) {
	c := &content{body: msg.Body}
	if bb, ok := msg.Body.(mail.BytesBody); ok {
		c.raw = bb
	}
	var work []*delivery
	for _, r := range msg.Envelope.Recipients {
		w := &delivery{rcpt: r}
		w.result = a.deliverOne(msg, c, w)
		w.result.Rcpt = r.Key
		work = append(work, w)
	}
	root, self := ctx.ActorSystem().Root, ctx.Self()
	answer := func() {
		out := deliverResult(d, mail.PartitionOf(a.address, a.cfg.Partitions), a.cfg.NodeName, nil)
		for _, w := range work {
			w.result.Rcpt = w.rcpt.Key
			r := pbResult(w.result)
			if w.result.OK() {
				r.MessageId, r.Duplicate = w.messageID, w.duplicate
			}
			out.Results = append(out.Results, r)
		}
		if sender != nil {
			root.Send(sender, out)
		}
	}
	if !slices.ContainsFunc(work, func(w *delivery) bool { return w.durable != nil || len(w.generated) > 0 }) {
		answer()
		if done != nil {
			done()
		}
		return
	}
	// Written, not yet synced: answer once it is durable and its work is
	// queued, and go on with the next delivery meanwhile (one account's
	// deliveries then share sync rounds). The storage layer fails every
	// later write if this sync fails, so nothing is reported stored on top
	// of a loss.
	var keys []string
	for _, w := range work {
		if len(w.generated) > 0 {
			keys = append(keys, w.dedupKey)
		}
	}
	go func() {
		for _, w := range work {
			a.complete(msg.Envelope.ID, w)
			if w.notify != nil && w.result.OK() {
				root.Send(self, w.notify)
			}
			if w.unwritten {
				root.Send(self, &viewsStale{})
			}
		}
		// workDone first: a repeat the answer provokes must find the
		// work no longer in progress (the actor reads workDone first).
		if len(keys) > 0 {
			root.Send(self, &workDone{keys: keys})
		}
		answer()
		if done != nil {
			done()
		}
	}()
}

// content is the body of a delivery as the rules and the append read it:
// raw when it is in memory; otherwise the head is read from the body
// (once, and only if the rules need it), never the whole.
type content struct {
	body mail.Body
	raw  []byte
	head []byte
	read bool
}

// header returns the start of the message: enough for its header section.
func (c *content) header() []byte {
	if c.raw != nil {
		return c.raw
	}
	if !c.read {
		c.read = true
		c.head, _ = mail.Head(c.body, rules.MaxHeaderBytes)
	}
	return c.head
}

// complete waits for w's append to be durable and submits the messages it
// generated (on the goroutine of deliver, never the actor's).
func (a *accountActor) complete(queueID string, w *delivery) {
	if w.durable != nil {
		if err := <-w.durable; err != nil {
			w.unwritten = true
			if errors.Is(err, storage.ErrNoSpace) {
				w.result = noSpaceResult()
				return
			}
			a.log.Error("local delivery not synced", "account", a.address, "queueID", queueID, "err", err)
			w.result = mail.Temp(mail.StatusLocalError, "mailbox temporarily unavailable")
			return
		}
	}
	if len(w.generated) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), a.cfg.RequestTimeout)
	defer cancel()
	var done []string
	for _, g := range w.generated {
		if err := a.submitter.Submit(ctx, g.msg); err != nil {
			a.log.Error("account rule could not queue a message; the delivery will be retried", "account", a.address,
				"queueID", queueID, "generated", g.msg.Envelope.ID, "err", err)
			w.result = mail.Temp(mail.StatusLocalError, "forwarding failed; try again later")
			break
		}
		a.log.Info("account rule queued a message", "account", a.address, "about", queueID, "queueID", g.msg.Envelope.ID,
			"to", recipientList(g.msg.Envelope))
		done = append(done, g.kind)
	}
	if len(done) == 0 {
		return
	}
	if err := <-a.data.DonePending(a.address, w.dedupKey, done); err != nil {
		// The work is done; a repeated delivery would do it again.
		a.log.Error("recording the work of a delivery as done", "account", a.address, "queueID", queueID, "err", err)
	}
}

// deliverOne runs steps 1 and 2 of deliver for one recipient and returns
// its result (final unless w.durable or w.generated say there is more).
func (a *accountActor) deliverOne(msg *mail.Message, c *content, w *delivery) mail.Result {
	env, r := msg.Envelope, w.rcpt
	if !a.loaded {
		if err := a.load(); err != nil {
			return a.failure(env.ID, err)
		}
	}
	if a.acct.Disabled {
		// Mail for it through an alias, or queued before it was
		// disabled: refused for good, as RCPT would have.
		return mail.Perm(mail.StatusMailboxDisabled, "mailbox disabled")
	}
	ctx, cancel := context.WithTimeout(context.Background(), a.cfg.RequestTimeout)
	defer cancel()
	w.dedupKey = env.ID + "/" + r.Addr
	p := a.plan(env, r, c)
	if p.stop != nil {
		return *p.stop
	}
	req := storage.AppendRequest{
		Folder:     p.folder,
		DedupKey:   w.dedupKey,
		Received:   env.Received,
		QuotaBytes: a.acct.QuotaBytes,
		Discard:    !p.keep,
		Pending:    p.work,
		Background: true, // the queue waits, no client
	}
	switch {
	case !p.keep:
	case c.raw == nil:
		// A body in a file: the store links it (one copy on disk) and
		// keeps the rules' header fields beside it.
		req.Body = mail.Prepend(p.headers, c.body)
	case len(p.headers) > 0:
		req.Raw = append(p.headers, c.raw...)
	default:
		req.Raw = c.raw
	}
	if slices.Contains(p.work, workVacation) {
		req.AutoReplied, req.AutoReplyTTL = []string{env.From}, p.vacationTTL
	}
	// The store checks the quota after the dedup lookup, so a repeated
	// delivery of a message already stored is a duplicate, never "full".
	res, durable, err := a.data.AppendAsync(ctx, a.address, req)
	switch {
	case errors.Is(err, storage.ErrOverQuota):
		// RFC 3463 4.2.2: mailbox full. Temporary; the queue turns it
		// permanent after its over-quota time (5.2.2).
		return mail.Result{Code: 452, Status: mail.StatusMailboxFull, Text: "mailbox full"}
	case errors.Is(err, storage.ErrNoSpace):
		// The mailbox store's disk is below its free-space limit: the
		// queue keeps the message and tries again. Its guard logs the
		// condition once; the delivery log has each deferral.
		return noSpaceResult()
	case errors.Is(err, storage.ErrBodyDamaged):
		// The queue's body file failed its check as the store read it:
		// nothing was stored, and the queue holds the message.
		return bodyFailure(err)
	case err != nil:
		a.loaded = false
		return a.failure(env.ID, err)
	}
	w.durable, w.messageID, w.duplicate = durable, res.ID, res.Duplicate
	if !res.Duplicate && res.UID != 0 {
		a.appended(res)
		w.notify = &notifyChange{folder: res.FolderID, modseq: res.ModSeq}
	}
	todo := p.work
	if res.Duplicate {
		todo = res.Pending
		if len(todo) > 0 && a.busy[w.dedupKey] {
			// The first delivery's goroutine is doing that work now: not
			// twice. The queue tries again and then finds it done.
			return mail.Temp(mail.StatusLocalError, "delivery in progress; try again later")
		}
	}
	if w.generated = a.generate(msg, r, c, p, todo); len(w.generated) > 0 {
		if a.busy == nil {
			a.busy = map[string]bool{}
		}
		a.busy[w.dedupKey] = true
	}
	a.journal(env.ID, r, p, res)
	if !p.keep {
		return mail.Result{Code: 250, Status: mail.StatusOK, Text: "handled by the account's rules (not kept)"}
	}
	return mail.Delivered("stored")
}

// plan is what the account's rules make of one delivery.
type plan struct {
	stop    *mail.Result // answer this; store and generate nothing
	keep    bool
	folder  string
	headers []byte // header fields to prepend to the stored copy
	forward []string
	// vacation is the auto-reply the rules ask for, when RFC 3834 allows
	// one for this message; it is sent only if work has workVacation
	// (the sender was not answered within vacationTTL yet) or a repeated
	// delivery finds it pending.
	vacation    *rules.Vacation
	vacationTTL time.Duration
	work        []string // the work of a new delivery: workForward, workVacation
}

// plan evaluates the account's rules for recipient r of env (step 1).
func (a *accountActor) plan(env *mail.Envelope, r *mail.Recipient, c *content) plan {
	p := plan{keep: true}
	if a.rules.Len() == 0 {
		p.folder = a.quarantineFolder(c, nil)
		return p
	}
	h, _ := rules.ParseHeader(c.header())
	one := &mail.Envelope{From: env.From, Recipients: []*mail.Recipient{{Addr: r.Addr}}, Size: c.body.Size(), Source: env.Source}
	m := rules.NewMessage(one, h)
	m.Auth = rules.AuthResults(h, a.cfg.AuthServID)
	o := a.rules.Evaluate(m)
	if o.Reject != nil {
		res := o.Reject.Result()
		return plan{stop: &res}
	}
	p.keep, p.folder = o.Keep(), o.Folder
	if p.folder == "" {
		p.folder = a.quarantineFolder(c, h)
	}
	for _, line := range o.AddHeaders {
		p.headers = append(append(p.headers, line...), '\r', '\n')
	}
	// Delivered-To (RFC 9228) marks what this account already handled: a
	// message that comes back is stored, never sent round again.
	looped := rules.AddressedTo(deliveredTo(h), a.address)
	if out := append(append([]string(nil), o.Redirect...), o.Forward...); len(out) > 0 {
		if looped {
			a.log.Warn("forwarding loop: not forwarding again", "account", a.address, "queueID", env.ID)
		} else {
			p.forward = out
			p.work = append(p.work, workForward)
		}
	}
	if v := o.Vacation; v != nil && !looped && a.mayAutoReply(env, r, h) {
		days := v.Days
		if days <= 0 {
			days = rules.DefaultVacationDays
		}
		p.vacation, p.vacationTTL = v, time.Duration(days)*24*time.Hour
		if already, err := a.data.HasAutoReplied(a.address, env.From); err == nil && !already {
			p.work = append(p.work, workVacation)
		}
	}
	return p
}

// mayAutoReply: an RFC 3834 vacation reply never goes to the null sender,
// lists or automatic mail, and only when the account was named in To or Cc
// (RFC 3834 §2). (At most once per sender per the rule's days is the
// auto-reply mark's business.)
func (a *accountActor) mayAutoReply(env *mail.Envelope, r *mail.Recipient, h rules.Header) bool {
	if ok, why := rules.ShouldAutoReply(env.From, h); !ok {
		a.log.Debug("no auto-reply", "account", a.address, "reason", why)
		return false
	}
	return rules.AddressedTo(h, a.address, r.Addr)
}

// generate builds the messages of the work kinds todo for recipient r: a
// copy for the forward and redirect addresses, and the vacation reply. Their
// queue ids are derived from the delivery's, so the same delivery always
// generates the same messages.
func (a *accountActor) generate(msg *mail.Message, r *mail.Recipient, c *content, p plan, todo []string) []generated {
	env := msg.Envelope
	var out []generated
	if slices.Contains(todo, workForward) && len(p.forward) > 0 {
		g := &mail.Envelope{ID: derivedID(env.ID, r.Addr, workForward), From: env.From, Received: a.now(),
			Source: rules.SourceRule, Auth: a.address}
		for _, to := range p.forward {
			g.Recipients = append(g.Recipients, &mail.Recipient{Addr: to, State: mail.StatePending})
		}
		out = append(out, generated{workForward, &mail.Message{Envelope: g, Body: mail.Prepend([]byte("Delivered-To: "+a.address+"\r\n"), msg.Body)}})
	}
	if v := p.vacation; slices.Contains(todo, workVacation) && v != nil {
		h, _ := rules.ParseHeader(c.header())
		from := v.From
		if from == "" {
			from = a.address
		}
		id := derivedID(env.ID, r.Addr, workVacation)
		body := rules.AutoReplyMessage(from, env.From, v.Subject, v.Text, h, a.now(), id+"@"+a.cfg.Hostname)
		out = append(out, generated{workVacation, &mail.Message{Body: mail.BytesBody(body), Envelope: &mail.Envelope{
			ID:         id,
			From:       "", // RFC 3834 §3.3: auto-replies go out from the null sender
			Recipients: []*mail.Recipient{{Addr: env.From, State: mail.StatePending, Notify: []mail.Notify{mail.NotifyNever}}},
			Received:   a.now(),
			Source:     rules.SourceRule,
			Auth:       a.address,
		}}})
	}
	return out
}

// generated is a message an account's rules generate, with its kind of
// work (workForward, workVacation).
type generated struct {
	kind string
	msg  *mail.Message
}

// journal records what the append did.
func (a *accountActor) journal(queueID string, r *mail.Recipient, p plan, res storage.AppendResult) {
	switch {
	case res.Duplicate && res.ID != "":
		a.stats.Journal.Record(queueID, "stored", fmt.Sprintf("%s: already stored as message %s of %s (a repeated delivery)", r.Addr, res.ID, a.address))
	case res.Duplicate:
		a.stats.Journal.Record(queueID, "stored", fmt.Sprintf("%s: already handled by the rules of %s (a repeated delivery)", r.Addr, a.address))
	case !p.keep:
		a.stats.Journal.Record(queueID, "stored", fmt.Sprintf("%s: handled by the rules of %s, no copy kept", r.Addr, a.address))
	default:
		f := p.folder
		if f == "" {
			f = storage.Inbox
		}
		a.stats.Journal.Record(queueID, "stored", fmt.Sprintf("%s: stored as message %s in %s/%s", r.Addr, res.ID, a.address, f))
	}
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

// derivedID names a message generated from a delivery.
func derivedID(queueID, rcpt, kind string) string {
	h := fnv.New32a()
	h.Write([]byte(strings.ToLower(rcpt)))
	return fmt.Sprintf("%s%s%08X", queueID, kind, h.Sum32())
}

func recipientList(env *mail.Envelope) string {
	var out []string
	for _, r := range env.Recipients {
		out = append(out, r.Addr)
	}
	return strings.Join(out, ",")
}

func (a *accountActor) failure(queueID string, err error) mail.Result {
	if errors.Is(err, mail.ErrNotFound) || errors.Is(err, mail.ErrNoSuchUser) {
		return mail.Perm(mail.StatusNoSuchUser, "no such mailbox")
	}
	a.log.Error("local delivery failed", "account", a.address, "queueID", queueID, "err", err)
	return mail.Temp(mail.StatusLocalError, "mailbox temporarily unavailable")
}

// noSpaceResult is the answer to a delivery while the mailbox store's disk
// is below its free-space limit (storage.ErrNoSpace): 452 4.3.1, mail
// system full, temporary.
func noSpaceResult() mail.Result {
	return mail.Result{Code: 452, Status: mail.StatusSystemFull, Text: "mail system full; try again later"}
}
