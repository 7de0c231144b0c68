package actors

import (
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/homing-mail/homing/actors/actorstest"
	"github.com/homing-mail/homing/actors/pb"
	"github.com/homing-mail/homing/mail"
	"github.com/homing-mail/homing/storage"
	"github.com/homing-mail/homing/testkit/probe"
	"github.com/homing-mail/homing/testkit/tlog"
	"github.com/homing-mail/homing/testkit/wait"
)

// newAccountStore is a real account store on disk, closed after the test
// (after the System, whose partition actors close their partitions first).
func newAccountStore(t *testing.T, partitions int) *storage.AccountStore {
	t.Helper()
	store, err := storage.NewAccountStore(t.TempDir(), partitions, storage.Options{ValueLogGCInterval: -1})
	if err != nil {
		t.Fatalf("NewAccountStore: %v", err)
	}
	t.Cleanup(func() {
		if err := store.Close(); err != nil {
			t.Errorf("closing the account store: %v", err)
		}
	})
	return store
}

func openStore(store *storage.AccountStore) OpenPartition {
	return func(id int) (PartitionData, error) { return store.Open(id) }
}

// Local Delivery is idempotent: the same (queue id, recipient) sent twice
// stores one message, and the second answer names the first message.
func TestDeliverTwiceStoresOnce(t *testing.T) {
	store := newAccountStore(t, 1)
	s := startSystem(t, testConfig(), Deps{OpenPartition: openStore(store)})
	ctx := testCtx(t)
	const ann = "ann@example.test"
	if _, err := s.CreateAccount(ctx, ann, "hash", 0); err != nil {
		t.Fatal(err)
	}
	if err := s.SetAlias(ctx, "anna@example.test", ann); err != nil {
		t.Fatal(err)
	}
	pid, root := s.LocalPartition(0), s.ActorSystem().Root
	raw := testBody("twice")

	first := only(t, deliver(t, root, pid, deliverMsg("Q1", ann, ann, raw)))
	second := only(t, deliver(t, root, pid, deliverMsg("Q1", ann, ann, raw)))
	for i, r := range []*pb.Result{first, second} {
		if r.GetCode() != 250 {
			t.Fatalf("delivery %d: result %v, want 250", i+1, r)
		}
	}
	if first.Duplicate || !second.Duplicate {
		t.Errorf("Duplicate = %v, %v; want false, true", first.Duplicate, second.Duplicate)
	}
	if first.MessageId == "" || second.MessageId != first.MessageId {
		t.Errorf("message ids %q, %q; want the same non-empty id", first.MessageId, second.MessageId)
	}
	msgs, err := s.Messages(ctx, ann, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 1 {
		t.Fatalf("%d messages stored after a repeated delivery, want 1", len(msgs))
	}

	// The key is (queue id, recipient): another recipient address of the
	// same message, or another message, is a new delivery.
	alias := only(t, deliver(t, root, pid, deliverMsg("Q1", "anna@example.test", ann, raw)))
	other := only(t, deliver(t, root, pid, deliverMsg("Q2", ann, ann, raw)))
	if alias.Duplicate || other.Duplicate || alias.MessageId == first.MessageId || other.MessageId == first.MessageId {
		t.Errorf("new deliveries reported as duplicates: %+v, %+v", alias, other)
	}
	if msgs, _ := s.Messages(ctx, ann, ""); len(msgs) != 3 {
		t.Errorf("%d messages stored, want 3", len(msgs))
	}
	stored, err := s.RawMessage(ctx, ann, first.MessageId)
	if err != nil || string(stored) != string(raw) {
		t.Errorf("RawMessage = %q, %v; want the delivered bytes", stored, err)
	}
}

// An account actor answers a Deliver to several recipients of its account
// (an address and an alias of it) with one DeliverResult holding one
// result per recipient, each naming the recipient's key (not its
// position), with the id of the message stored for that recipient.
func TestDeliverToTwoRecipientsOfOneAccountAnswersEachByKey(t *testing.T) {
	const ann, anna = "ann@example.test", "anna@example.test"
	part := actorstest.NewPartition(0, storage.Account{Address: ann})
	s := startSystem(t, testConfig(), Deps{OpenPartition: openFake(part)})
	partition, p := s.LocalPartition(0), probe.New(t, s.ActorSystem())

	p.Request(partition, deliverTo("Q1", testBody("to both"), rcpt(9, anna, ann), rcpt(4, ann, ann)))
	got := resultsByKey(t, probe.Expect[*pb.DeliverResult](p, waitTimeout), "Q1", 4, 9)
	for key, r := range got {
		if r.GetCode() != 250 || r.Duplicate || r.MessageId == "" {
			t.Errorf("recipient %d: %v (duplicate %v, message %q), want 250 stored as a new message", key, r, r.Duplicate, r.MessageId)
		}
	}
	// Each recipient's result names the message stored for its address.
	stored := map[string]string{} // dedup key -> message id
	for _, m := range part.Stored(ann) {
		stored[m.DedupKey] = m.ID
	}
	if len(stored) != 2 || stored["Q1/"+ann] != got[4].MessageId || stored["Q1/"+anna] != got[9].MessageId {
		t.Errorf("stored %v; want Q1/%s as recipient 4's message %q and Q1/%s as recipient 9's %q",
			stored, ann, got[4].MessageId, anna, got[9].MessageId)
	}
}

// A Deliver repeated (its answer was lost, the queue tried again) is
// answered, recipient by recipient, as a duplicate with the id of the
// message the first one stored; nothing is stored twice.
func TestRepeatedDeliverIsAnsweredDuplicateWithTheSameMessageID(t *testing.T) {
	const ann, anna = "ann@example.test", "anna@example.test"
	part := actorstest.NewPartition(0, storage.Account{Address: ann})
	s := startSystem(t, testConfig(), Deps{OpenPartition: openFake(part)})
	partition, p := s.LocalPartition(0), probe.New(t, s.ActorSystem())
	d := deliverTo("Q1", testBody("twice"), rcpt(3, ann, ann), rcpt(8, anna, ann))

	p.Request(partition, d)
	first := resultsByKey(t, probe.Expect[*pb.DeliverResult](p, waitTimeout), "Q1", 3, 8)
	p.Request(partition, d)
	again := resultsByKey(t, probe.Expect[*pb.DeliverResult](p, waitTimeout), "Q1", 3, 8)
	for _, key := range []int32{3, 8} {
		f, a := first[key], again[key]
		if f.GetCode() != 250 || f.Duplicate || f.MessageId == "" {
			t.Errorf("recipient %d, first delivery: %v (duplicate %v, message %q), want 250 stored", key, f, f.Duplicate, f.MessageId)
		}
		if a.GetCode() != 250 || !a.Duplicate || a.MessageId != f.MessageId {
			t.Errorf("recipient %d, repeated delivery: %v (duplicate %v, message %q), want 250, a duplicate of %q",
				key, a, a.Duplicate, a.MessageId, f.MessageId)
		}
	}
	if first[3].MessageId == first[8].MessageId {
		t.Errorf("both recipients stored as message %q, want one message each", first[3].MessageId)
	}
	if n := len(part.Stored(ann)); n != 2 {
		t.Errorf("%d messages stored after a repeated delivery to two recipients, want 2", n)
	}
}

// A delivery repeated after an unclear answer (a timeout) must be
// recognised as the message already stored even when that message filled
// the mailbox: otherwise the sender gets "mailbox full" and, after
// OverQuotaTimeout, a bounce for mail that was delivered.
func TestRepeatedDeliveryAtQuotaIsDuplicateNotMailboxFull(t *testing.T) {
	store := newAccountStore(t, 1)
	s := startSystem(t, testConfig(), Deps{OpenPartition: openStore(store)})
	ctx := testCtx(t)
	const ann = "ann@example.test"
	raw := testBody("fills the mailbox")
	if _, err := s.CreateAccount(ctx, ann, "hash", int64(len(raw))+10); err != nil {
		t.Fatal(err)
	}
	pid, root := s.LocalPartition(0), s.ActorSystem().Root

	first := only(t, deliver(t, root, pid, deliverMsg("Q1", ann, ann, raw)))
	if first.GetCode() != 250 {
		t.Fatalf("first delivery: %v", first)
	}
	again := only(t, deliver(t, root, pid, deliverMsg("Q1", ann, ann, raw)))
	if again.GetCode() != 250 || !again.Duplicate || again.MessageId != first.MessageId {
		t.Errorf("repeated delivery = %v (duplicate %v, id %q); want 250, a duplicate of %q",
			again, again.Duplicate, again.MessageId, first.MessageId)
	}
	// A different message is over quota.
	other := only(t, deliver(t, root, pid, deliverMsg("Q2", ann, ann, raw)))
	if other.GetCode() != 452 || other.GetStatus() != string(mail.StatusMailboxFull) {
		t.Errorf("new message to a full mailbox = %v, want 452 4.2.2", other)
	}
}

// An idle account actor asks its partition to passivate it and the
// partition stops it; the next Deliver for the account reaches a fresh
// activation (another actor), which is passivated in its turn. The probe
// asks the partition, taps the passivation requests the account actors
// send it, and watches the actors they name.
func TestAccountActorPassivatesWhenIdle(t *testing.T) {
	const ann = "ann@example.test"
	part := actorstest.NewPartition(0, storage.Account{Address: ann})
	cfg := testConfig()
	cfg.AccountIdle = 30 * time.Millisecond
	stats := NewStats(nil)
	s := startSystem(t, cfg, Deps{Placement: &actorstest.Placement{}, Stats: stats})
	p := probe.New(t, s.ActorSystem())
	isPassivate := func(m any) bool { _, ok := m.(*passivate); return ok }
	partition := spawnPartitionWith(t, s, part, s, p.Tap(isPassivate))

	p.Request(partition, deliverMsg("Q1", ann, ann, testBody("one")))
	if r := only(t, probe.Expect[*pb.DeliverResult](p, waitTimeout)); r.GetCode() != 250 {
		t.Fatalf("delivery: %v", r)
	}
	if got := stats.Activations.Load(); got != 1 {
		t.Errorf("Activations = %d after the first delivery, want 1", got)
	}
	first := probe.Expect[*passivate](p, waitTimeout) // the idle actor asks to be passivated
	if first.account != ann {
		t.Fatalf("passivation asked for %q, want %s", first.account, ann)
	}
	p.Watch(first.pid)
	if term := probe.Expect[*actor.Terminated](p, waitTimeout); !term.Who.Equal(first.pid) {
		t.Fatalf("Terminated for %v, want the idle account actor %v", term.Who, first.pid)
	}
	// (A watch that comes as the actor stops may be answered before the
	// actor's Stopped has run: the counters are waited for.)
	wait.For(t, waitTimeout, func() bool { return stats.Passivations.Load() == 1 }, "the idle account actor is passivated")
	wait.For(t, waitTimeout, func() bool { return stats.Active()[KindAccount] == 0 }, "no account actor alive")
	if got := stats.Activations.Load(); got != 1 {
		t.Errorf("Activations = %d while idle, want 1", got)
	}
	if got := stats.Active()[KindPartition]; got != 1 {
		t.Errorf("partition actors alive = %d, want 1 (only account actors passivate)", got)
	}

	p.Request(partition, deliverMsg("Q2", ann, ann, testBody("two")))
	if r := only(t, probe.Expect[*pb.DeliverResult](p, waitTimeout)); r.GetCode() != 250 {
		t.Fatalf("delivery after passivation: %v", r)
	}
	if got := stats.Activations.Load(); got != 2 {
		t.Errorf("Activations = %d after a message to a passivated account, want 2", got)
	}
	second := probe.Expect[*passivate](p, waitTimeout)
	if second.account != ann || second.pid.Equal(first.pid) {
		t.Fatalf("second passivation asked for %q at %v, want %s at a fresh actor (not %v)", second.account, second.pid, ann, first.pid)
	}
	p.Watch(second.pid)
	if term := probe.Expect[*actor.Terminated](p, waitTimeout); !term.Who.Equal(second.pid) {
		t.Fatalf("Terminated for %v, want the second activation %v", term.Who, second.pid)
	}
	wait.For(t, waitTimeout, func() bool { return stats.Passivations.Load() == 2 }, "the second activation is passivated")
	if n := len(part.Stored(ann)); n != 2 {
		t.Errorf("%d messages stored, want 2", n)
	}
	p.ExpectNothing(2 * cfg.AccountIdle) // nothing else: no third activation, no second request
}

// Messages that reach the partition while an account actor is stopping
// wait for it to terminate and go to a fresh activation, so one mailbox
// never has two writers. The test holds the idle actor's passivation
// request back (a receiver middleware on the partition actor) until that
// actor is busy storing another message, so the stopping window is open
// for as long as the test needs.
func TestMessagesDuringPassivationGoToFreshActivation(t *testing.T) {
	const ann = "ann@example.test"
	part := actorstest.NewPartition(0, storage.Account{Address: ann})
	cfg := testConfig().WithDefaults()
	cfg.AccountIdle = 30 * time.Millisecond
	stats := NewStats(nil)
	log := tlog.New(t, "actors")

	// Hold back the first passivation request.
	held := make(chan *passivate, 1)
	var holding atomic.Bool
	hold := func(next actor.ReceiverFunc) actor.ReceiverFunc {
		return func(c actor.ReceiverContext, env *actor.MessageEnvelope) {
			if p, ok := env.Message.(*passivate); ok && holding.CompareAndSwap(false, true) {
				held <- p
				return
			}
			next(c, env)
		}
	}
	system := newActorSystem(log)
	root := system.Root
	pid := root.Spawn(actor.PropsFromProducer(func() actor.Actor {
		return newPartitionActor(0, openFake(part), &cfg, stats, log, nil, nil)
	}, actor.WithReceiverMiddleware(hold)))
	t.Cleanup(func() {
		_ = root.PoisonFuture(pid).Wait()
		system.Shutdown()
	})

	// Stop the Append of "busy" half-way; tell when "pending" is stored.
	busyIn, busyGo, pendingIn := make(chan struct{}), make(chan struct{}), make(chan struct{})
	letBusyGo := sync.OnceFunc(func() { close(busyGo) })
	t.Cleanup(letBusyGo) // before the actors stop, should the test fail first
	part.SetAppendHook(func(_ string, req storage.AppendRequest) {
		switch {
		case strings.HasPrefix(req.DedupKey, "busy/"):
			close(busyIn)
			<-busyGo
		case strings.HasPrefix(req.DedupKey, "pending/"):
			close(pendingIn)
		}
	})

	if r := only(t, deliver(t, root, pid, deliverMsg("first", ann, ann, testBody("first")))); r.GetCode() != 250 {
		t.Fatalf("first delivery: %v", r)
	}
	p := receive(t, held, "the idle account actor asks to be passivated")

	// The actor is not stopping yet: this message goes to it and blocks.
	busy := root.RequestFuture(pid, deliverMsg("busy", ann, ann, testBody("busy")), waitTimeout)
	receive(t, busyIn, "the busy Append starts")
	// Now the partition stops the actor (its poison pill waits behind
	// the busy message) ...
	root.Send(pid, p)
	// ... and this message arrives while it is stopping.
	pending := root.RequestFuture(pid, deliverMsg("pending", ann, ann, testBody("pending")), waitTimeout)
	// A request answered by the partition itself: the partition has
	// handled everything sent before it.
	if _, err := root.RequestFuture(pid, &pb.ListAccounts{}, waitTimeout).Result(); err != nil {
		t.Fatal(err)
	}
	// "pending" must not be stored while the first actor is still
	// writing. A second writer would start within this window; it is the
	// time given to a forbidden event to show, not a synchronisation.
	stored := func() bool {
		select {
		case <-pendingIn:
			return true
		default:
			return false
		}
	}
	wait.Never(t, 200*time.Millisecond, stored,
		"a message sent during passivation was stored while the stopping actor was still writing")
	if got := stats.Activations.Load(); got != 1 {
		t.Errorf("Activations = %d while the first actor is stopping, want 1 (no second writer yet)", got)
	}
	letBusyGo()

	for name, f := range map[string]*actor.Future{"busy": busy, "pending": pending} {
		res, err := f.Result()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if r := only(t, res.(*pb.DeliverResult)); r.GetCode() != 250 || r.Duplicate {
			t.Errorf("%s: %v (duplicate %v), want 250 stored", name, r, r.Duplicate)
		}
	}
	if got := part.MaxConcurrentAppends(ann); got != 1 {
		t.Errorf("at most %d Appends to one account ran at once, want 1", got)
	}
	if got := stats.Activations.Load(); got != 2 {
		t.Errorf("Activations = %d, want 2 (the stopping actor and a fresh one)", got)
	}
	if n := len(part.Stored(ann)); n != 3 {
		t.Errorf("%d messages stored, want 3", n)
	}
	wait.For(t, waitTimeout, func() bool { return stats.Passivations.Load() == 2 && stats.Active()[KindAccount] == 0 },
		"both activations are passivated")
}

// A stopped account actor lets go of its account's state (release): the
// actor itself may stay reachable from protoactor's set of its parent's
// children for a while. The actor is run and stopped for real; its
// Stopped releases before it counts the passivation, which the test waits
// for.
func TestStoppedAccountActorReleasesItsState(t *testing.T) {
	cfg := testConfig()
	stats := NewStats(nil)
	s := startSystem(t, cfg, Deps{Placement: &actorstest.Placement{}, Stats: stats})
	a := &accountActor{address: "held@example.test", cfg: &cfg, stats: stats, log: tlog.New(t, "account"), now: time.Now,
		loaded: true, acct: storage.Account{Address: "held@example.test"},
		busy: map[string]bool{"k": true}, views: map[uint32]*folderView{1: {}}}
	a.metas.put(1, 10, 12, time.Now())
	root := s.ActorSystem().Root
	pid := root.Spawn(actor.PropsFromProducer(func() actor.Actor { return a }))
	wait.For(t, waitTimeout, func() bool { return stats.Activations.Load() == 1 }, "the account actor started")
	root.Poison(pid)
	wait.For(t, waitTimeout, func() bool { return stats.Passivations.Load() == 1 }, "the account actor stopped")
	if a.loaded || a.acct.Address != "" || a.busy != nil || a.views != nil || a.metas.m != nil {
		t.Fatalf("after its stop: loaded %v, account %q, busy %v, views %v, metas %v",
			a.loaded, a.acct.Address, a.busy, a.views, a.metas.m)
	}
	if a.address != "held@example.test" {
		t.Fatal("release dropped the address, which its goroutines may still log")
	}
	a.watchers = map[string]*watcher{"w": {}}
	if a.release(); a.watchers != nil {
		t.Fatal("release kept the watchers")
	}
}
