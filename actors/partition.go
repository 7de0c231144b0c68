package actors

import (
	"container/list"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/homing-mail/homing/actors/pb"
	"github.com/homing-mail/homing/mail"
	"github.com/homing-mail/homing/rules"
	"github.com/homing-mail/homing/storage"
)

// partitionActor owns one account partition on this node: it holds the
// partition's data open (nobody else in the cluster can, the storage layer
// fences it), activates account actors on demand and routes to them, and
// answers directory and administration requests.
//
// Account actors are virtual: the first message for an account spawns its
// actor; an idle actor asks to be passivated and is stopped with a poison
// pill. Messages for an account whose actor is stopping wait here until it
// has terminated and are then handed to a fresh activation, so there are
// never two writers for one mailbox.
type partitionActor struct {
	id    int
	open  OpenPartition
	cfg   *Config
	stats *Stats
	log   *slog.Logger

	data     PartitionData
	children map[string]*accountChild
	byPID    map[string]string // child PID id -> account
	lru      *list.List        // of *accountChild, least recently used first (actorlimit.go)

	// Opening is retried while another process holds the data (the
	// previous owner has not closed it yet: a handoff in progress), and,
	// more slowly, while it fails otherwise (damaged files, see
	// storage.ErrDamaged, or another error).
	retry     *time.Timer
	retryWait time.Duration
	// openErr is why the data did not open at the last try (nil once it
	// is open). A lock held elsewhere is tried again on every request
	// too (the handoff may be over); any other failure is answered from
	// here until the retry timer tries again, and reported (partition
	// status, /api/v1/partitions, homing_partitions_failed).
	openErr error
	// failing: openErr is a failure other than a lock.
	failing bool

	retiring    bool
	retireReply *actor.PID

	submitter Submitter
	now       func() time.Time
	// bodies finds the bodies that come by reference (bodyref.go).
	bodies *bodySource
	disp   actor.Dispatcher // of the account actors (dispatcher.go); nil = protoactor's
	// changed, if set, is told when the data opens and when it closes.
	changed func(id int, open bool)

	// A failure of the open data (partition_failure.go): lost is why
	// (nil while healthy), closingLost is set while the failed data is
	// being closed off the actor, watchStop ends the goroutine that
	// watches the open data for a failure.
	lost        error
	closingLost bool
	lastLost    string
	watchStop   chan struct{}
	root        *actor.RootContext
	self        *actor.PID

	// Idle close (idle.go): lastUse is the time of the last request that
	// needed the data, idleCheck the timer that looks again, idleClosed
	// says the data was closed for being idle (the partition is still
	// this node's: the next request opens it again).
	lastUse    time.Time
	idleCheck  *time.Timer
	idleClosed bool
}

// retryOpen is the partition actor's own timer: try to open the data again.
type retryOpen struct{}

// retire asks a partition actor to stop taking work: it passivates its
// account actors (each finishes what is in its mailbox), answers every
// later request as temporarily unavailable, and replies retired once the
// account actors are gone. protoactor drops the messages still queued in
// a stopping actor without a reply; retiring first means none is left
// waiting for its whole timeout.
type retire struct{}

type retired struct{}

// partitionStatus asks a partition actor for its partitionState.
type partitionStatus struct{}

type partitionState struct {
	id       int
	open     bool
	accounts int
	err      string // why the data failed to open (not a lock held elsewhere)
	damaged  bool   // err is damage (storage.ErrDamaged)
	lockErr  bool   // err is a lock that cannot be taken (storage.ErrLockFailed)
	heldBy   string // the data is held by another open: its error, naming the holder
	epoch    uint64 // the open data's fencing token
	idle     bool   // the data is closed for being idle (open is still true: the next request opens it)
	lost     string // the last failure of the open data (a newer epoch, an I/O error), with its time
}

type accountChild struct {
	pid      *actor.PID
	stopping bool
	pending  []pendingMessage
	// lru is c's place in partitionActor.lru while it may be asked to
	// passivate early (actorlimit.go); nil while it stops, or since it
	// refused until the next message for it.
	lru *list.Element
}

type pendingMessage struct {
	msg    interface{}
	sender *actor.PID
}

func newPartitionActor(id int, open OpenPartition, cfg *Config, stats *Stats, log *slog.Logger,
	submitter Submitter, now func() time.Time) *partitionActor {
	if now == nil {
		now = time.Now
	}
	return &partitionActor{
		id: id, open: open, cfg: cfg, stats: stats, submitter: submitter, now: now,
		log:      log.With("partition", id),
		children: map[string]*accountChild{},
		byPID:    map[string]string{},
	}
}

func (p *partitionActor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		p.root, p.self = ctx.ActorSystem().Root, ctx.Self()
		p.stats.started(KindPartition)
		p.tryOpen(ctx)
	case *dataFailed:
		p.dataFailed(ctx, m)
	case *lostClosed:
		p.lostClosed(ctx, m)
	case *retryOpen:
		p.retry = nil
		p.tryOpen(ctx)
	case *closeIfIdle:
		p.closeIfIdle()
	case *actor.Stopped:
		if p.retry != nil {
			p.retry.Stop()
		}
		if p.idleCheck != nil {
			p.idleCheck.Stop()
		}
		if p.failing {
			p.failing = false
			p.stats.openRecovered()
		}
		// Children have terminated by now: close the data last.
		p.stopWatch()
		if p.data != nil {
			if err := p.data.Close(); err != nil {
				p.log.Error("closing partition", "err", err)
			}
			p.data = nil
			if p.changed != nil {
				p.changed(p.id, false)
			}
		}
		p.stats.stopped(KindPartition)
	case *retire:
		p.retiring, p.retireReply = true, ctx.Sender()
		for acct := range p.children {
			p.stopChild(ctx, acct)
		}
		p.maybeRetired(ctx)
	case *pb.Deliver:
		rcpts := m.GetEnvelope().GetRecipients()
		switch {
		case len(rcpts) == 0:
			ctx.Respond(deliverResult(m, p.id, p.cfg.NodeName, nil))
		case p.retiring:
			ctx.Respond(deliverFailure(m, p.id, p.cfg.NodeName, errMoving))
		case p.lost != nil:
			ctx.Respond(deliverFailure(m, p.id, p.cfg.NodeName, p.lostResult()))
		case p.ensureOpen() != nil:
			ctx.Respond(deliverFailure(m, p.id, p.cfg.NodeName, p.unavailable()))
		default:
			// Local Delivery sends one Deliver per account.
			p.route(ctx, strings.ToLower(rcpts[0].Account), m)
		}
	case *pb.MailboxOp:
		switch {
		case p.retiring:
			ctx.Respond(&pb.MailboxReply{Error: pbError(fmt.Errorf("%w: partition is moving to another node", mail.ErrUnavailable))})
		case p.ensureOpen() != nil:
			ctx.Respond(&pb.MailboxReply{Error: pbError(fmt.Errorf("%w: %v", mail.ErrUnavailable, p.openErr))})
		default:
			p.route(ctx, strings.ToLower(m.Account), m)
		}
	case *passivate:
		if c, ok := p.children[m.account]; ok && c.pid.Equal(m.pid) && !c.stopping {
			p.markStopping(c)
			ctx.Poison(c.pid)
		}
	case *passivateRefused:
		p.refused(m)
	case *actor.Terminated:
		p.terminated(ctx, m.Who)
	case *partitionStatus:
		st := &partitionState{id: p.id, open: (p.data != nil || p.idleClosed) && p.lost == nil, idle: p.idleClosed,
			accounts: len(p.children), lost: p.lastLost}
		if p.failing {
			st.err, st.damaged = p.openErr.Error(), errors.Is(p.openErr, storage.ErrDamaged)
			st.lockErr = errors.Is(p.openErr, storage.ErrLockFailed)
		} else if p.data == nil && p.openErr != nil && errors.Is(p.openErr, storage.ErrLocked) {
			st.heldBy = p.openErr.Error()
		}
		if p.data != nil {
			st.epoch = p.data.Epoch()
		}
		ctx.Respond(st)
	default:
		p.admin(ctx)
	}
}

// The retry schedules of a partition's open: while a lock is held
// elsewhere (a handoff takes a moment), and while it fails otherwise
// (damage stays until someone repairs or restores the files).
const (
	lockRetryFirst, lockRetryMax = 50 * time.Millisecond, time.Second
	failRetryFirst, failRetryMax = time.Second, time.Minute
)

// tryOpen opens the data or schedules another try.
func (p *partitionActor) tryOpen(ctx actor.Context) {
	err := p.openData()
	if err == nil {
		if p.retryWait > 0 {
			p.log.Info("partition opened")
		}
		p.retryWait = 0
		return
	}
	first, most := lockRetryFirst, lockRetryMax
	if !errors.Is(err, storage.ErrLocked) {
		first, most = failRetryFirst, failRetryMax
	}
	switch {
	case p.retryWait < first:
		p.retryWait = first
	case p.retryWait < most:
		p.retryWait = min(2*p.retryWait, most)
	}
	root, self := ctx.ActorSystem().Root, ctx.Self()
	p.retry = time.AfterFunc(p.retryWait, func() { root.Send(self, &retryOpen{}) })
}

// ensureOpen returns nil when the data is open. A partition that waits for
// a lock held elsewhere tries again at once; one that failed otherwise
// answers with that failure until its retry timer tries again.
func (p *partitionActor) ensureOpen() error {
	p.used()
	if p.lost != nil {
		return p.lost
	}
	if p.data != nil {
		return nil
	}
	if p.failing {
		return p.openErr
	}
	return p.openData()
}

// openData opens the data, or records why it did not open.
func (p *partitionActor) openData() error {
	if p.data != nil {
		return nil
	}
	d, err := p.open(p.id)
	if err != nil {
		p.openFailed(fmt.Errorf("open partition %d: %w", p.id, err))
		return p.openErr
	}
	p.data, p.openErr, p.idleClosed = d, nil, false
	p.watch(d)
	p.armIdle()
	if p.failing {
		p.failing = false
		p.stats.openRecovered()
	}
	if p.changed != nil {
		p.changed(p.id, true)
	}
	return nil
}

// openFailed records a failed open and says why, once per change of
// reason: a lock held elsewhere (a handoff in progress, normal), damaged
// files (the node goes on without this partition; homing check finds what
// is damaged) or another error.
func (p *partitionActor) openFailed(err error) {
	p.idleClosed = false
	changed := p.openErr == nil || p.openErr.Error() != err.Error()
	p.openErr = err
	if errors.Is(err, storage.ErrLocked) {
		if p.failing {
			p.failing = false
			p.stats.openRecovered()
		}
		if changed {
			p.log.Info("partition held by another open (a handoff in progress); retrying", "err", err)
		}
		return
	}
	reason := "error"
	switch {
	case errors.Is(err, storage.ErrDamaged):
		reason = "damaged"
	case errors.Is(err, storage.ErrLockFailed):
		reason = "lock"
	}
	p.stats.openFailed(p.id, reason, !p.failing)
	p.failing = true
	if !changed {
		return
	}
	switch reason {
	case "damaged":
		p.log.Error("partition data damaged: not opened; its mail waits in the queue, the other partitions and the queue go on; retrying (homing check DATA_DIR reports the damage)", "err", err)
	case "lock":
		p.log.Error("partition lock cannot be taken (not held by another node: the filesystem's locks fail); not opened, its mail waits in the queue; retrying slowly", "err", err)
	default:
		p.log.Error("partition failed to open; its mail waits in the queue; retrying", "err", err)
	}
}

// unavailable is the answer to a delivery while the data is not open.
// RFC 3463 §3.5: X.4.3 for the handoff, X.3.0 for our own trouble.
func (p *partitionActor) unavailable() mail.Result {
	if p.failing && errors.Is(p.openErr, storage.ErrDamaged) {
		return mail.Temp(mail.StatusLocalError, fmt.Sprintf("mailbox temporarily unavailable: partition %d is damaged", p.id))
	}
	if errors.Is(p.openErr, storage.ErrLocked) {
		// A handoff: the previous owner still closes it. Over in moments,
		// so the sender's queue retries soon (a 4.4.x, as errMoving).
		return mail.Temp(mail.StatusDirectoryFailure, fmt.Sprintf("partition %d is opening: its previous owner still holds it", p.id))
	}
	return mail.Temp(mail.StatusLocalError, "mailbox temporarily unavailable")
}

// route hands msg to the account's actor, activating it if needed. The
// original sender is kept so the account actor answers the requester.
func (p *partitionActor) route(ctx actor.Context, account string, msg interface{}) {
	c := p.children[account]
	if c != nil && c.stopping {
		c.pending = append(c.pending, pendingMessage{msg: msg, sender: ctx.Sender()})
		return
	}
	if c == nil {
		c = p.activate(ctx, account)
	} else {
		p.touch(c)
	}
	ctx.RequestWithCustomSender(c.pid, msg, ctx.Sender())
	p.enforceLimit(ctx)
}

func (p *partitionActor) activate(ctx actor.Context, account string) *accountChild {
	props := actor.PropsFromProducer(func() actor.Actor {
		return &accountActor{address: account, data: p.data, cfg: p.cfg, stats: p.stats, log: p.log,
			submitter: p.submitter, now: p.now, bodies: p.bodies}
	})
	if p.disp != nil {
		props.Configure(actor.WithDispatcher(p.disp))
	}
	pid := ctx.Spawn(props)
	c := &accountChild{pid: pid}
	p.children[account] = c
	p.byPID[pid.Id] = account
	p.touch(c)
	return c
}

func (p *partitionActor) terminated(ctx actor.Context, who *actor.PID) {
	account, ok := p.byPID[who.Id]
	if !ok {
		return
	}
	delete(p.byPID, who.Id)
	c := p.children[account]
	if c == nil || !c.pid.Equal(who) {
		return
	}
	delete(p.children, account)
	p.untrack(c)
	if p.retiring {
		for _, pm := range c.pending {
			if d, ok := pm.msg.(*pb.Deliver); ok && pm.sender != nil {
				ctx.Send(pm.sender, deliverFailure(d, p.id, p.cfg.NodeName, errMoving))
			}
		}
		p.maybeRetired(ctx)
		return
	}
	if p.lost != nil {
		for _, pm := range c.pending {
			if d, ok := pm.msg.(*pb.Deliver); ok && pm.sender != nil {
				ctx.Send(pm.sender, deliverFailure(d, p.id, p.cfg.NodeName, p.lostResult()))
			}
		}
		p.maybeCloseLost()
		return
	}
	if len(c.pending) == 0 {
		return
	}
	fresh := p.activate(ctx, account)
	for _, pm := range c.pending {
		ctx.RequestWithCustomSender(fresh.pid, pm.msg, pm.sender)
	}
}

// maybeRetired answers the retire request once no account actor is left.
func (p *partitionActor) maybeRetired(ctx actor.Context) {
	if p.retiring && len(p.children) == 0 && p.retireReply != nil {
		ctx.Send(p.retireReply, &retired{})
		p.retireReply = nil
	}
}

// stopChild passivates the account's actor at once (used when the account
// is deleted or changed, so that no stale state writes afterwards).
func (p *partitionActor) stopChild(ctx actor.Context, account string) {
	if c, ok := p.children[account]; ok && !c.stopping {
		p.markStopping(c)
		ctx.Poison(c.pid)
	}
}

func (p *partitionActor) admin(ctx actor.Context) {
	msg := ctx.Message()
	switch msg.(type) {
	case *pb.Resolve, *pb.CreateAccount, *pb.GetAccount, *pb.DeleteAccount, *pb.ListAccounts,
		*pb.SetAlias, *pb.DeleteAlias, *pb.ListMessages, *pb.GetRaw, *pb.SetAccountRules:
	case *pb.UpdateAccount, *pb.ListAliases: // provision.go
	default:
		return
	}
	if p.retiring {
		ctx.Respond(unavailableReply(msg, errors.New("partition is moving to another node")))
		return
	}
	if p.lost != nil {
		ctx.Respond(unavailableReply(msg, p.lost))
		return
	}
	if err := p.ensureOpen(); err != nil {
		ctx.Respond(unavailableReply(msg, err))
		return
	}
	cctx, cancel := context.WithTimeout(context.Background(), p.cfg.RequestTimeout)
	defer cancel()
	switch m := msg.(type) {
	case *pb.Resolve:
		acct, err := p.resolve(strings.ToLower(m.Address))
		ctx.Respond(&pb.ResolveResult{Account: acct, Error: pbError(err)})
	case *pb.UpdateAccount:
		p.updateAccount(ctx, cctx, m)
	case *pb.ListAliases:
		p.listAliases(ctx)
	case *pb.CreateAccount:
		rec := storageAccount(m.Account, strings.ToLower(m.GetAccount().GetAddress()))
		err := p.data.CreateAccount(cctx, rec)
		if err == nil {
			p.stopChild(ctx, rec.Address)
		}
		ctx.Respond(&pb.AccountReply{Account: p.record(rec), Error: pbError(err)})
	case *pb.GetAccount:
		a, err := p.data.Account(strings.ToLower(m.Address))
		var rec *pb.AccountRecord
		if err == nil {
			rec = p.record(a)
		}
		ctx.Respond(&pb.AccountReply{Account: rec, Error: pbError(err)})
	case *pb.DeleteAccount:
		addr := strings.ToLower(m.Address)
		p.stopChild(ctx, addr)
		err := p.data.DeleteAccount(cctx, addr)
		ctx.Respond(&pb.AccountReply{Error: pbError(err)})
	case *pb.ListAccounts:
		as, err := p.data.Accounts()
		reply := &pb.AccountReply{Error: pbError(err)}
		for _, a := range as {
			reply.Accounts = append(reply.Accounts, p.record(a))
		}
		ctx.Respond(reply)
	case *pb.SetAlias:
		err := p.data.SetAlias(cctx, strings.ToLower(m.Alias), strings.ToLower(m.Account))
		ctx.Respond(&pb.AccountReply{Error: pbError(err)})
	case *pb.DeleteAlias:
		err := p.data.DeleteAlias(cctx, strings.ToLower(m.Alias))
		ctx.Respond(&pb.AccountReply{Error: pbError(err)})
	case *pb.ListMessages:
		ms, err := p.data.Messages(strings.ToLower(m.Account), m.Folder)
		reply := &pb.MessagesReply{Error: pbError(err)}
		for _, x := range ms {
			reply.Messages = append(reply.Messages, pbMessageInfo(x))
		}
		sort.Slice(reply.Messages, func(i, j int) bool {
			return reply.Messages[i].ReceivedUnixNano < reply.Messages[j].ReceivedUnixNano
		})
		ctx.Respond(reply)
	case *pb.GetRaw:
		if m.GetLength() > 0 {
			p.rawPiece(ctx, m)
			return
		}
		raw, err := p.data.Raw(strings.ToLower(m.Account), m.Id)
		if errors.Is(err, storage.ErrDamaged) {
			p.log.Error("mailbox message damaged: its stored bytes fail their check, not served", "account", m.Account, "id", m.Id, "err", err)
		}
		ctx.Respond(&pb.RawReply{Raw: raw, Error: pbError(err)})
	case *pb.SetAccountRules:
		addr := strings.ToLower(m.Address)
		var rs []rules.Rule
		err := json.Unmarshal(m.Rules, &rs)
		if err == nil {
			_, err = rules.Compile(rs, rules.ScopeAccount)
		}
		if err != nil {
			ctx.Respond(&pb.AccountReply{Error: pbError(fmt.Errorf("%w: %v", mail.ErrInvalid, err))})
			return
		}
		a, err := p.data.Account(addr)
		if err == nil {
			a.Rules = append([]byte(nil), m.Rules...)
			err = p.data.UpdateAccount(cctx, a)
		}
		if err == nil {
			p.stopChild(ctx, addr) // the next activation reads the new rules
		}
		var rec *pb.AccountRecord
		if err == nil {
			rec = p.record(a)
		}
		ctx.Respond(&pb.AccountReply{Account: rec, Error: pbError(err)})
	}
}

// rawPiece answers a GetRaw for a piece of a message (the admin API
// streams it so): a message in memory at once, one in a file on a
// goroutine (the actor never reads a file), which reads the whole file
// once to check it when the first piece is asked for, so that damage is
// an error before any byte is served.
func (p *partitionActor) rawPiece(ctx actor.Context, m *pb.GetRaw) {
	length := min(int64(m.GetLength()), rawPieceMax)
	body, err := p.data.Body(strings.ToLower(m.Account), m.Id)
	if err != nil {
		p.rawFailed(m, err)
		ctx.Respond(&pb.RawReply{Error: pbError(err)})
		return
	}
	size, off := body.Size(), m.GetOffset()
	if off < 0 || off > size {
		ctx.Respond(&pb.RawReply{Error: pbError(fmt.Errorf("%w: offset %d of a %d-byte message", mail.ErrInvalid, off, size))})
		return
	}
	if bb, ok := body.(mail.BytesBody); ok {
		ctx.Respond(&pb.RawReply{Raw: bb[off:min(off+length, size)], Size: size})
		return
	}
	sender, root := ctx.Sender(), ctx.ActorSystem().Root
	go func() {
		reply := &pb.RawReply{Size: size}
		err := error(nil)
		if off == 0 && !m.GetUnchecked() {
			err = storage.VerifyBody(body)
		}
		if err == nil {
			reply.Raw, err = readPiece(body, off, length)
		}
		if err != nil {
			p.rawFailed(m, err)
			reply = &pb.RawReply{Error: pbError(err)}
		}
		if sender != nil {
			root.Send(sender, reply)
		}
	}()
}

// rawPieceMax is the largest piece of a message one GetRaw answers.
const rawPieceMax = 256 << 10

func (p *partitionActor) rawFailed(m *pb.GetRaw, err error) {
	if errors.Is(err, storage.ErrDamaged) {
		p.log.Error("mailbox message damaged: its stored bytes fail their check, not served", "account", m.Account, "id", m.Id, "err", err)
	}
}

// readPiece reads length bytes of body from off (fewer at its end).
func readPiece(body mail.Body, off, length int64) ([]byte, error) {
	head, rest := mail.SplitPrefix(body)
	out := make([]byte, 0, min(length, body.Size()-off))
	if off < int64(len(head)) {
		out = append(out, head[off:min(int64(len(head)), off+length)]...)
	}
	_, fb, ok := storage.BodyFile(rest)
	if !ok {
		return nil, fmt.Errorf("%w: not a body in a file", mail.ErrInvalid)
	}
	from := max(off-int64(len(head)), 0)
	n := int(min(length-int64(len(out)), fb.Size()-from))
	if n <= 0 {
		return out, nil
	}
	buf := out[len(out) : len(out)+n]
	got, err := fb.ReadAt(buf, from)
	if got < n {
		if err == nil || errors.Is(err, io.EOF) {
			err = fmt.Errorf("%w: body file %s is shorter than stored", storage.ErrDamaged, fb.Path())
		}
		return nil, err
	}
	return out[:len(out)+n], nil
}

func (p *partitionActor) record(a storage.Account) *pb.AccountRecord {
	used, n, _ := p.data.Usage(a.Address)
	return pbAccount(a, p.id, used, n)
}

// errMoving answers what reaches a partition that is being handed over.
var errMoving = mail.Temp(mail.StatusDirectoryFailure, "partition is moving to another node")
