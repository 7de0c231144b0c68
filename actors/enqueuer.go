package actors

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/homing-mail/homing/actors/pb"
	"github.com/homing-mail/homing/mail"
)

// Enqueuer is the entrance to this node's queue (the "Enqueuer" of the
// reference design): it routes every recipient (a local account, after
// aliases, or a remote domain), writes the message durably, and only then
// hands it to the queue actor. It satisfies smtp.Enqueuer.
//
// Safe for concurrent use by every SMTP session, the admin API and the
// DSN writer.
type Enqueuer struct {
	store    QueueStore
	dir      *Directory
	pipeline ContentPipeline // nil: no rules
	journal  *Journal
	root     *actor.RootContext
	queue    *actor.PID
	now      func() time.Time
}

// Enqueue implements smtp.Enqueuer. Recipients in a local domain whose
// Account is not set yet are resolved here; one that does not exist is
// recorded as failed (5.1.1) so the sender gets a report, and one that
// cannot be resolved now makes the whole call fail temporarily. A message
// marked for transfer (queue mode Remotely) is stored as it is: it is
// routed where it is processed.
func (e *Enqueuer) Enqueue(ctx context.Context, env *mail.Envelope, body []byte) error {
	body, discard, err := e.prepare(ctx, env, body)
	if err != nil || discard {
		return err
	}
	if err := e.store.Put(ctx, env, body); err != nil {
		return fmt.Errorf("queueing %s: %w", env.ID, err)
	}
	e.note(env, "")
	e.root.Send(e.queue, &enqueued{env: env, body: body})
	return nil
}

// note records the arrival of env in the journal.
func (e *Enqueuer) note(env *mail.Envelope, how string) {
	if e.journal == nil {
		return
	}
	from := env.From
	if from == "" {
		from = "<>"
	}
	d := fmt.Sprintf("from %s to %d recipient(s), %d bytes, source %s%s", from, len(env.Recipients), env.Size, env.Source, how)
	if env.Transfer {
		d += "; waiting for transfer to a member that processes queues for others"
	}
	e.journal.Record(env.ID, "queued", d)
}

// EnqueueTransfer implements smtp.TransferEnqueuer: a message handed over
// by another member is queued once, however often the transfer is
// repeated.
func (e *Enqueuer) EnqueueTransfer(ctx context.Context, env *mail.Envelope, body []byte) (bool, error) {
	body, discard, err := e.prepare(ctx, env, body)
	if err != nil || discard {
		return false, err
	}
	dup, err := e.store.PutTransfer(ctx, env, body)
	if err != nil {
		return false, fmt.Errorf("queueing transfer %s: %w", env.ID, err)
	}
	if !dup {
		e.note(env, " (handed over by a member)")
		e.root.Send(e.queue, &enqueued{env: env, body: body})
	}
	return dup, nil
}

// prepare sets the id, arrival time and size, runs the rules and routes
// the recipients (a message waiting for transfer is left as it is: it is
// processed where it is queued). It returns the body to store.
func (e *Enqueuer) prepare(ctx context.Context, env *mail.Envelope, body []byte) ([]byte, bool, error) {
	if env.ID == "" {
		env.ID = mail.NewID(e.now())
	}
	if env.Received.IsZero() {
		env.Received = e.now()
	}
	if len(env.Recipients) == 0 {
		return nil, false, fmt.Errorf("%w: no recipients", errInvalid)
	}
	for _, r := range env.Recipients {
		if r.State == "" {
			r.State = mail.StatePending
		}
	}
	if env.Transfer {
		env.Size = int64(len(body))
		return body, false, nil
	}
	body, discard, err := e.process(ctx, env, body)
	if err != nil || discard {
		return nil, discard, err
	}
	env.Size = int64(len(body))
	return body, false, e.route(ctx, env)
}

// process runs the content pipeline, if any.
func (e *Enqueuer) process(ctx context.Context, env *mail.Envelope, body []byte) ([]byte, bool, error) {
	if e.pipeline == nil {
		return body, false, nil
	}
	return e.pipeline.Process(ctx, env, body)
}

// route resolves the local recipients of env (aliases to accounts).
func (e *Enqueuer) route(ctx context.Context, env *mail.Envelope) error {
	for _, r := range env.Recipients {
		if r.State.Final() || r.Account != "" || !e.dir.IsLocalDomain(mail.Domain(r.Addr)) {
			continue
		}
		acct, err := e.dir.Resolve(ctx, r.Addr)
		switch {
		case err == nil:
			r.Account = acct
		case errors.Is(err, mail.ErrNoSuchUser):
			r.State, r.Status, r.LastError, r.Done = mail.StateFailed, "5.1.1",
				"550 5.1.1 no such mailbox", e.now()
		default:
			return fmt.Errorf("resolving %s: %w", r.Addr, err)
		}
	}
	return nil
}

// Directory answers which addresses are local accounts, asking the actor of
// the address's partition (an alias lives in the partition of the alias
// address). It satisfies smtp.Directory.
//
// It remembers the addresses it found (a bounded map). An answer younger
// than the cache TTL is used without asking again (on a frontend every
// RCPT would otherwise be a round trip to a backend). When the partition's
// owner cannot answer (a frontend cut off from the backends, a handoff), an
// address known to exist is still accepted, however old the answer: the
// message waits in this node's queue until the owner answers. An address
// never seen gets 451 4.4.3. So a real account is never rejected, and
// nothing accepted is lost (if the account was deleted meanwhile, the
// sender gets a DSN).
type Directory struct {
	domains map[string]bool
	parts   int
	place   Placement
	root    *actor.RootContext
	timeout time.Duration

	ttl   time.Duration
	now   func() time.Time
	mu    sync.Mutex
	known map[string]knownAddress // last positive answers
}

type knownAddress struct {
	account string
	at      time.Time
}

// maxKnown bounds the Directory's memory of positive answers.
const maxKnown = 100_000

func (d *Directory) remember(addr, account string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.known == nil {
		d.known = map[string]knownAddress{}
	}
	if _, ok := d.known[addr]; !ok && len(d.known) >= maxKnown {
		for k := range d.known { // drop an arbitrary entry
			delete(d.known, k)
			break
		}
	}
	d.known[addr] = knownAddress{account: account, at: d.now()}
}

func (d *Directory) forget(addr string) {
	d.mu.Lock()
	delete(d.known, addr)
	d.mu.Unlock()
}

// recall returns the remembered account of addr and whether the answer is
// still fresh.
func (d *Directory) recall(addr string) (account string, known, fresh bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	k, ok := d.known[addr]
	return k.account, ok, ok && d.now().Sub(k.at) < d.ttl
}

// IsLocalDomain implements smtp.Directory.
func (d *Directory) IsLocalDomain(domain string) bool {
	return d.domains[strings.ToLower(strings.TrimSuffix(domain, "."))]
}

// Domains returns the local domains.
func (d *Directory) Domains() []string {
	out := make([]string, 0, len(d.domains))
	for k := range d.domains {
		out = append(out, k)
	}
	return out
}

// Resolve implements smtp.Directory.
func (d *Directory) Resolve(ctx context.Context, addr string) (string, error) {
	addr = strings.ToLower(addr)
	if a, _, fresh := d.recall(addr); fresh {
		return a, nil
	}
	account, err := d.ask(ctx, addr)
	switch {
	case err == nil:
		d.remember(addr, account)
		return account, nil
	case errors.Is(err, mail.ErrNoSuchUser):
		d.forget(addr)
		return "", err
	default:
		if a, known, _ := d.recall(addr); known {
			return a, nil
		}
		return "", err
	}
}

func (d *Directory) ask(ctx context.Context, addr string) (string, error) {
	pid, err := d.place.PartitionPID(mail.PartitionOf(addr, d.parts))
	if err != nil {
		return "", err
	}
	reply, err := request[*pb.ResolveResult](ctx, d.root, pid, &pb.Resolve{Address: addr}, d.timeout)
	if err != nil {
		return "", err
	}
	return reply.Account, goError(reply.Error)
}

// request sends msg to pid and waits for a reply of type T, at most timeout
// (or ctx's deadline, if sooner). Failing to get one is ErrUnavailable.
func request[T any](ctx context.Context, root *actor.RootContext, pid *actor.PID, msg interface{}, timeout time.Duration) (T, error) {
	var zero T
	if dl, ok := ctx.Deadline(); ok {
		if d := time.Until(dl); d < timeout {
			timeout = d
		}
	}
	if timeout <= 0 {
		return zero, fmt.Errorf("%w: deadline passed", ErrUnavailable)
	}
	res, err := root.RequestFuture(pid, msg, timeout).Result()
	if err != nil {
		return zero, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	t, ok := res.(T)
	if !ok {
		return zero, fmt.Errorf("%w: unexpected reply %T", ErrUnavailable, res)
	}
	return t, nil
}
