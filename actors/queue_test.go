package actors

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/homing-mail/homing/actors/actorstest"
	"github.com/homing-mail/homing/mail"
	"github.com/homing-mail/homing/storage"
	"github.com/homing-mail/homing/testkit/clock"
	"github.com/homing-mail/homing/testkit/tlog"
	"github.com/homing-mail/homing/testkit/wait"
)

// openQueue is a real queue store on disk, closed after the test (after
// the System, which stops writing to it first).
func openQueue(t *testing.T) *storage.QueueStore {
	t.Helper()
	q, err := storage.OpenQueue(t.TempDir(), storage.Options{ValueLogGCInterval: -1})
	if err != nil {
		t.Fatalf("OpenQueue: %v", err)
	}
	t.Cleanup(func() {
		if err := q.Close(); err != nil {
			t.Errorf("closing the queue: %v", err)
		}
	})
	return q
}

func goneFrom(q QueueStore, id string) bool {
	_, err := q.Envelope(id)
	return errors.Is(err, mail.ErrNotFound)
}

// Messages left in the store by a previous run are attempted at start:
// open ones delivered, held ones left alone, finished ones removed.
func TestQueueRecoveryAttemptsStoredMessages(t *testing.T) {
	const ann = "ann@example.test"
	store := openQueue(t)
	ctx := testCtx(t)
	past := time.Now().Add(-time.Minute)

	local := newEnvelope("bob@remote.example", ann)
	local.Received = past
	local.Recipients[0].Account = ann
	local.Recipients[0].State = mail.StateDeferred
	local.Recipients[0].Attempts = 1
	local.Recipients[0].NextAttempt = past
	remote := newEnvelope("bob@remote.example", "carl@far.example")
	held := newEnvelope("bob@remote.example", "dan@far.example")
	held.Held = true
	finished := newEnvelope("", "eve@far.example")
	finished.Recipients[0].State = mail.StateDelivered
	for _, env := range []*mail.Envelope{local, remote, held, finished} {
		if env.Received.IsZero() {
			env.Received = past
		}
		for _, r := range env.Recipients {
			if r.State == "" {
				r.State = mail.StatePending
			}
		}
		if err := store.Put(ctx, message(env, testBody("recovered "+env.ID))); err != nil {
			t.Fatal(err)
		}
	}

	part := actorstest.NewPartition(0, storage.Account{Address: ann})
	relayer := actorstest.NewRelayer()
	s := startSystem(t, testConfig(), Deps{OpenPartition: openFake(part), Queue: store, Relayer: relayer})

	for _, id := range []string{local.ID, remote.ID, finished.ID} {
		wait.For(t, waitTimeout, func() bool { return goneFrom(store, id) }, "recovered message %s leaves the queue", id)
	}
	if msgs := part.Stored(ann); len(msgs) != 1 || msgs[0].DedupKey != local.ID+"/"+ann ||
		string(msgs[0].Raw) != string(testBody("recovered "+local.ID)) {
		t.Errorf("stored %+v, want the recovered local message once", msgs)
	}
	if n := len(relayer.CallsFor(remote.ID)); n != 1 {
		t.Errorf("recovered remote message relayed %d times, want 1", n)
	}
	if n := len(relayer.CallsFor(held.ID)) + len(relayer.CallsFor(finished.ID)); n != 0 {
		t.Errorf("%d relay calls for held or finished messages, want 0", n)
	}
	list, err := s.Queue(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].ID != held.ID || !list[0].Held {
		t.Errorf("queue after recovery = %v, want only the held message", list)
	}
	if env, err := store.Envelope(held.ID); err != nil || !env.Held {
		t.Errorf("held message in the store: %v, %v", env, err)
	}
}

// requireActiveSlots checks that n messages can be in flight at once (a
// slot lost by the queue's MaxActive accounting shows here): it sends n
// messages to a blocked domain, waits for n transactions at once, and lets
// them finish.
func requireActiveSlots(t *testing.T, s *System, queue *actorstest.Queue, relayer *actorstest.Relayer, n int) {
	t.Helper()
	const domain = "slots.example"
	gate := relayer.Block(domain)
	release := sync.OnceFunc(func() { close(gate) })
	defer release() // a failed wait lets the blocked transactions end too
	var ids []string
	for range n {
		ids = append(ids, enqueue(t, s, newEnvelope("bob@remote.example", "u@"+domain), testBody("slots")))
	}
	inflight := wait.Lazy(func() string { return strconv.Itoa(relayer.InflightTo(domain)) })
	wait.For(t, 2*time.Second, func() bool { return relayer.InflightTo(domain) >= n },
		"only %s of %d messages in flight at once (MaxActive %d): an active slot was lost", inflight, n, s.cfg.MaxActive)
	release()
	for _, id := range ids {
		queue.WaitDeleted(t, id)
	}
}

// With MaxActive=2 at most two messages are attempted at once; the others
// wait their turn and all are delivered.
func TestMaxActiveLimitsMessagesInFlight(t *testing.T) {
	relayer := actorstest.NewRelayer()
	queue := actorstest.NewQueue()
	cfg := testConfig()
	cfg.MaxActive = 2
	s := startSystem(t, cfg, Deps{Queue: queue, Relayer: relayer})
	gate := relayer.Block(actorstest.AnyDomain)

	var ids []string
	for i := range 10 {
		// A domain each, so that the relay limit plays no part.
		rcpt := fmt.Sprintf("u@d%d.example", i)
		ids = append(ids, enqueue(t, s, newEnvelope("bob@remote.example", rcpt), testBody("active")))
	}
	wait.For(t, waitTimeout, func() bool { return relayer.InflightTotal() >= 2 }, "two messages in flight")
	if _, err := s.Queue(testCtx(t)); err != nil { // the queue has seen all ten
		t.Fatal(err)
	}
	if got := relayer.CallCount(); got != 2 {
		t.Errorf("%d messages attempted with MaxActive 2", got)
	}
	for i := range ids {
		actorstest.Release(t, gate, fmt.Sprintf("message %d", i+1))
	}
	for _, id := range ids {
		queue.WaitDeleted(t, id)
	}
	if got := relayer.MaxInflightTotal(); got != 2 {
		t.Errorf("at most %d messages in flight, want 2", got)
	}
	if got := relayer.InflightTotal(); got != 0 {
		t.Errorf("%d calls still in flight", got)
	}
}

// A message enqueued while the queue actor is still reading its store
// (right after Start) is attempted once, and its active slot is returned.
func TestEnqueueDuringRecoveryAttemptsOnce(t *testing.T) {
	queue := actorstest.NewQueue()
	scanning, proceed := make(chan struct{}), make(chan struct{})
	var once sync.Once
	letGo := func() { once.Do(func() { close(proceed) }) }
	queue.SetEachHook(func() {
		close(scanning)
		<-proceed
	})
	relayer := actorstest.NewRelayer()
	cfg := testConfig()
	cfg.MaxActive = 2
	s, err := Start(cfg, Deps{Queue: queue, Relayer: relayer, OpenPartition: openFake(actorstest.NewPartition(0)), Logger: tlog.New(t, "actors")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	t.Cleanup(letGo)

	receive(t, scanning, "the queue actor reads its store")
	gate := relayer.Block("far.example")
	id := enqueue(t, s, newEnvelope("bob@remote.example", "u@far.example"), testBody("early"))
	letGo()
	waitRecovered(t, s.root, s.queue)
	close(gate)
	queue.WaitDeleted(t, id)

	requireActiveSlots(t, s, queue, relayer, 2)
	if n := len(relayer.CallsFor(id)); n != 1 {
		t.Errorf("message enqueued during recovery relayed %d times, want 1", n)
	}
}

// After a crash between writing a report and deleting the message it is
// about, recovery finds both; writing the report again (same id) must not
// make a second queue entry for it: it would be relayed twice, and the
// outcome of one attempt would find no entry, losing an active slot.
func TestRecoveredReportIsNotQueuedTwice(t *testing.T) {
	queue := actorstest.NewQueue()
	now := time.Now()
	orig := newEnvelope("sam@remote.example", "x@bad.example")
	orig.Received = now.Add(-time.Minute)
	r := orig.Recipients[0]
	r.State, r.Status, r.LastError, r.Done, r.Attempts = mail.StateFailed, mail.StatusNoSuchUser, "550 5.1.1 user unknown", now, 1
	queue.Seed(orig, testBody("bounced"))
	report := &mail.Envelope{ID: reportID(orig.ID, reportFailure), Received: now, Source: mail.SourceDSN,
		Recipients: []*mail.Recipient{{Addr: "sam@remote.example", State: mail.StatePending, Notify: []mail.Notify{mail.NotifyNever}}}}
	queue.Seed(report, []byte("Subject: the report written before the crash\r\n\r\n"))

	relayer := actorstest.NewRelayer()
	gate := relayer.Block("remote.example")
	cfg := testConfig()
	cfg.MaxActive = 2
	s := startSystem(t, cfg, Deps{Queue: queue, Relayer: relayer})

	// The report is written again before the original leaves the queue.
	queue.WaitDeleted(t, orig.ID)
	if queue.FirstPut(report.ID) == nil {
		t.Fatal("the failure report was not written again for the recovered bounce")
	}
	close(gate)
	queue.WaitDeleted(t, report.ID)

	requireActiveSlots(t, s, queue, relayer, 2)
	if n := len(relayer.CallsFor(report.ID)); n != 1 {
		t.Errorf("the report was relayed %d times, want 1", n)
	}
}

// expire runs a message to a domain that always defers, past MaxLifetime,
// and returns the report sent to its sender.
func expire(t *testing.T) (dsn actorstest.RelayCall, stats *Stats) {
	t.Helper()
	clk := clock.New(clock.Start)
	relayer := actorstest.NewRelayer()
	relayer.Answer(func(r *mail.Recipient, _ int) mail.Result {
		if mail.Domain(r.Addr) == "slow.example" {
			return mail.Result{Code: 451, Status: mail.StatusNoAnswer, Text: "connection timed out", RemoteMTA: "mx.slow.example"}
		}
		return mail.Delivered("ok")
	})
	queue := actorstest.NewQueue()
	stats = NewStats(nil)
	cfg := testConfig()
	cfg.MaxLifetime = time.Hour
	s := startSystem(t, cfg, Deps{Queue: queue, Relayer: relayer, Now: clk.Now, Stats: stats})

	id := enqueue(t, s, newEnvelope("bob@remote.example", "u@slow.example"), testBody("slow"))
	queue.WaitUpdate(t, id, "the first attempt is deferred", inState(1, mail.StateDeferred))
	clk.Advance(time.Hour)
	queue.WaitDeleted(t, id)
	queue.WaitDeleted(t, reportID(id, reportFailure))
	if n := len(relayer.CallsFor(id)); n != 2 {
		t.Errorf("%d attempts, want 2 (deferred, then expired)", n)
	}
	calls := relayer.CallsFor(reportID(id, reportFailure))
	if len(calls) != 1 {
		t.Fatalf("%d failure reports relayed, want 1", len(calls))
	}
	return calls[0], stats
}

// dsnField returns the values of a field in a report, in order.
func dsnField(raw []byte, name string) []string {
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + `: (.*)\r$`)
	var out []string
	for _, m := range re.FindAllSubmatch(raw, -1) {
		out = append(out, string(m[1]))
	}
	return out
}

// A recipient still deferred after MaxLifetime fails and the sender gets a
// failure report.
func TestMaxLifetimeExpiryFailsAndReports(t *testing.T) {
	dsn, stats := expire(t)
	if dsn.Env.From != "" || len(dsn.Rcpts) != 1 || dsn.Rcpts[0] != "bob@remote.example" {
		t.Errorf("report from %q to %v, want from <> to bob@remote.example", dsn.Env.From, dsn.Rcpts)
	}
	body := dsn.Body
	if got := dsnField(body, "Action"); len(got) != 1 || got[0] != "failed" {
		t.Errorf("Action %v, want [failed]", got)
	}
	if got := dsnField(body, "Final-Recipient"); len(got) != 1 || got[0] != "rfc822; u@slow.example" {
		t.Errorf("Final-Recipient %v", got)
	}
	if got := dsnField(body, "Diagnostic-Code"); len(got) != 1 ||
		got[0] != "smtp; delivery time expired: 451 4.4.1 connection timed out" {
		t.Errorf("Diagnostic-Code %v, want the expiry and the last error", got)
	}
	if got := dsnField(body, "Status"); len(got) != 1 || !strings.HasPrefix(got[0], "5.") && !strings.HasPrefix(got[0], "4.4.7") {
		t.Errorf("Status %v, want a permanent status (or 4.4.7)", got)
	}
	if got := stats.Bounced.Load(); got != 1 {
		t.Errorf("Bounced = %d, want 1", got)
	}
}

// RFC 3463 has a code for exactly this, X.4.7 "delivery time expired"; the
// queue asks for it (fail(..., "4.4.7", ...)) but the report says 5.0.0.
func TestMaxLifetimeExpiryStatusIsX47(t *testing.T) {
	dsn, _ := expire(t)
	if got := dsnField(dsn.Body, "Status"); len(got) != 1 || !strings.HasSuffix(got[0], ".4.7") {
		t.Errorf("Status of an expired recipient %v, want 5.4.7 (or 4.4.7): delivery time expired", got)
	}
}

// A full mailbox (452 4.2.2) is a temporary failure until
// OverQuotaTimeout has passed since the first one, then a permanent 5.2.2.
func TestOverQuotaTemporaryThenPermanent(t *testing.T) {
	const ann = "ann@example.test"
	clk := clock.New(clock.Start)
	t0 := clk.Now()
	part := actorstest.NewPartition(0, storage.Account{Address: ann, QuotaBytes: 10})
	relayer := actorstest.NewRelayer()
	queue := actorstest.NewQueue()
	cfg := testConfig()
	cfg.OverQuotaTimeout = time.Hour
	s := startSystem(t, cfg, Deps{OpenPartition: openFake(part), Queue: queue, Relayer: relayer, Now: clk.Now})

	id := enqueue(t, s, newEnvelope("bob@remote.example", ann), testBody("too big"))
	attempt := func(n int) *mail.Recipient {
		env := queue.WaitUpdate(t, id, fmt.Sprintf("attempt %d is recorded", n), func(e *mail.Envelope) bool {
			r := e.Recipient(1)
			return r != nil && r.Attempts == n
		})
		return rcptOf(t, env, 1)
	}
	r := attempt(1)
	if r.State != mail.StateDeferred || r.Status != "4.2.2" || r.LastError != "452 4.2.2 mailbox full" || !r.FirstTempFailure.Equal(t0) {
		t.Errorf("first attempt: %s %q %q since %v; want deferred 4.2.2 452 4.2.2 mailbox full since %v",
			r.State, r.Status, r.LastError, r.FirstTempFailure, t0)
	}
	clk.Advance(cfg.OverQuotaTimeout / 2)
	if r := attempt(2); r.State != mail.StateDeferred || !r.FirstTempFailure.Equal(t0) {
		t.Errorf("second attempt, within OverQuotaTimeout: %s since %v; want deferred since %v", r.State, r.FirstTempFailure, t0)
	}
	clk.Advance(cfg.OverQuotaTimeout / 2)
	queue.WaitDeleted(t, id)
	queue.WaitDeleted(t, reportID(id, reportFailure))

	calls := relayer.CallsFor(reportID(id, reportFailure))
	if len(calls) != 1 {
		t.Fatalf("%d failure reports, want 1", len(calls))
	}
	if got := dsnField(calls[0].Body, "Status"); len(got) != 1 || got[0] != "5.2.2" {
		t.Errorf("Status %v, want [5.2.2]", got)
	}
	if got := dsnField(calls[0].Body, "Diagnostic-Code"); len(got) != 1 || got[0] != "smtp; mailbox full: 452 4.2.2 mailbox full" {
		t.Errorf("Diagnostic-Code %v", got)
	}
	if n := len(part.Stored(ann)); n != 0 {
		t.Errorf("%d messages stored in the full mailbox", n)
	}
}

// Administrator actions: hold stops attempts, release and retry start one
// at once, delete removes the message.
func TestQueueAdminActions(t *testing.T) {
	clk := clock.New(clock.Start)
	relayer := actorstest.NewRelayer()
	// The first attempt of every message is deferred, the next succeeds.
	relayer.Answer(func(_ *mail.Recipient, n int) mail.Result {
		if n == 0 {
			return mail.Temp(mail.StatusNoAnswer, "try again")
		}
		return mail.Delivered("ok")
	})
	queue := actorstest.NewQueue()
	cfg := testConfig()
	cfg.RelayConcurrency = 1 // one relay transaction at a time: calls happen in order
	s := startSystem(t, cfg, Deps{Queue: queue, Relayer: relayer, Now: clk.Now})
	ctx := testCtx(t)

	deferred := func(id string) {
		t.Helper()
		queue.WaitUpdate(t, id, "it is deferred", inState(1, mail.StateDeferred))
	}
	held := enqueue(t, s, newEnvelope("bob@remote.example", "h@q.example"), testBody("held"))
	deferred(held)
	clk.Advance(time.Millisecond) // control is due strictly after held
	control := enqueue(t, s, newEnvelope("bob@remote.example", "c@q.example"), testBody("control"))
	deferred(control)

	// Hold.
	if err := s.QueueAction(ctx, held, "hold"); err != nil {
		t.Fatal(err)
	}
	if env, err := s.QueueEntry(ctx, held); err != nil || !env.Held {
		t.Fatalf("QueueEntry after hold = %+v, %v; want Held", env, err)
	}
	if ups := queue.Updates(held); len(ups) == 0 || !ups[len(ups)-1].Held {
		t.Error("the hold was not written to the store")
	}
	// Both become due; held's wake-up comes first, control's second, and
	// with one relay transaction at a time an attempt of held would
	// have been sent before control's.
	clk.Advance(time.Minute)
	queue.WaitDeleted(t, control)
	if n := len(relayer.CallsFor(held)); n != 1 {
		t.Fatalf("held message attempted %d times, want 1 (before the hold)", n)
	}

	// Release: attempted at once.
	if err := s.QueueAction(ctx, held, "release"); err != nil {
		t.Fatal(err)
	}
	queue.WaitDeleted(t, held)
	if n := len(relayer.CallsFor(held)); n != 2 {
		t.Errorf("released message attempted %d times, want 2", n)
	}

	// Retry: attempted at once, though its next attempt is not due (the
	// clock stands still).
	retried := enqueue(t, s, newEnvelope("bob@remote.example", "r@q.example"), testBody("retried"))
	deferred(retried)
	if err := s.QueueAction(ctx, retried, "retry"); err != nil {
		t.Fatal(err)
	}
	queue.WaitDeleted(t, retried)

	// Delete.
	gone := enqueue(t, s, newEnvelope("bob@remote.example", "d@q.example"), testBody("deleted"))
	deferred(gone)
	if err := s.QueueAction(ctx, gone, "frobnicate"); !errors.Is(err, mail.ErrInvalid) {
		t.Errorf("unknown action: %v, want an invalid-request error", err)
	}
	if err := s.QueueAction(ctx, gone, "delete"); err != nil {
		t.Fatal(err)
	}
	if !queue.Deleted(gone) {
		t.Error("delete did not remove the message from the store")
	}
	if _, err := s.QueueEntry(ctx, gone); !errors.Is(err, mail.ErrNotFound) {
		t.Errorf("QueueEntry after delete: %v, want ErrNotFound", err)
	}
	if err := s.QueueAction(ctx, gone, "retry"); !errors.Is(err, mail.ErrNotFound) {
		t.Errorf("retry after delete: %v, want ErrNotFound", err)
	}
	if list, err := s.Queue(ctx); err != nil || len(list) != 0 {
		t.Errorf("queue after delete = %v, %v; want empty", list, err)
	}
}
