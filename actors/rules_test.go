package actors

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/homing-mail/homing/actors/actorstest"
	"github.com/homing-mail/homing/actors/pb"
	"github.com/homing-mail/homing/mail"
	"github.com/homing-mail/homing/rules"
	"github.com/homing-mail/homing/storage"
	"github.com/homing-mail/homing/testkit/clock"
)

// Account rules in the delivery transaction (account.go): the append is
// the commit; forwards and vacation replies are submitted only after it,
// once, however often the delivery is repeated.

// ruleSet is account rules as the account record holds them.
func ruleSet(t testing.TB, rs ...rules.Rule) json.RawMessage {
	t.Helper()
	if _, err := rules.Compile(rs, rules.ScopeAccount); err != nil {
		t.Fatalf("rules: %v", err)
	}
	js, err := json.Marshal(rs)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// forwardRule forwards a copy to to; with discard no copy is kept.
func forwardRule(to string, discard bool) rules.Rule {
	r := rules.Rule{Name: "forward", Actions: []rules.Action{{Kind: rules.ActionForward, Value: to}}}
	if discard {
		r.Actions = append(r.Actions, rules.Action{Kind: rules.ActionDiscard})
	}
	return r
}

func vacationRule() rules.Rule {
	return rules.Rule{Name: "away", Actions: []rules.Action{{Kind: rules.ActionVacation, Value: "I am away.",
		Params: map[string]string{rules.ParamDays: "7"}}}}
}

// bodyTo is a message from from addressed to to (so an auto-reply may
// answer it, RFC 3834 §2).
func bodyTo(from, to, subject string) []byte {
	return []byte("From: " + from + "\r\nTo: " + to + "\r\nSubject: " + subject +
		"\r\nMessage-ID: <" + strings.ReplaceAll(subject, " ", ".") + "@remote.example>\r\n\r\nHello, " + subject + ".\r\n")
}

// journalEvents counts the events of kind the journal has for message id
// itself (not for the messages derived from it).
func journalEvents(s *System, id, kind string) int {
	n := 0
	for _, e := range s.Stats().Journal.Events(id) {
		if e.ID == id && e.Event == kind {
			n++
		}
	}
	return n
}

// forwardedCopy is what a forward of body by account relays.
func forwardedCopy(account string, body []byte) []byte {
	return append([]byte("Delivered-To: "+account+"\r\n"), body...)
}

// The case: a forward with a copy kept, to a mailbox over quota.
// Every attempt while the mailbox is full is refused before anything is
// committed (4.2.2), so it generates nothing; the attempt that fits stores
// the copy and forwards once; a repeated delivery after that does
// nothing. Through the queue, Local Delivery, the partition and account
// actors and System.Submit, with the fake clock standing still (only the
// administrator's retry starts an attempt).
func TestForwardWithCopyToFullMailboxStoresOnceForwardsOnce(t *testing.T) {
	const ann, fwd, bob = "ann@example.test", "fwd@far.example", "bob@remote.example"
	body := bodyTo(bob, ann, "forward me")
	filler := bytes.Repeat([]byte("x"), 100)
	part := actorstest.NewPartition(0, storage.Account{Address: ann, QuotaBytes: int64(len(filler) + len(body) - 1),
		Rules: ruleSet(t, forwardRule(fwd, false))})
	fillerID := part.AddMessage(ann, filler)
	queue, relayer, clk := actorstest.NewQueue(), actorstest.NewRelayer(), clock.New(clock.Start)
	s := startSystem(t, testConfig(), Deps{OpenPartition: openFake(part), Queue: queue, Relayer: relayer, Now: clk.Now})
	ctx := testCtx(t)

	env := newEnvelope(bob, ann)
	dedup, fwdID := env.ID+"/"+ann, derivedID(env.ID, ann, workForward)
	id := enqueue(t, s, env, body)
	attempt := func(n int) *mail.Recipient {
		t.Helper()
		up := queue.WaitUpdate(t, id, fmt.Sprintf("attempt %d is recorded", n), func(e *mail.Envelope) bool {
			r := e.Recipient(1)
			return r != nil && r.Attempts == n
		})
		return rcptOf(t, up, 1)
	}
	for n := 1; n <= 3; n++ {
		if n > 1 {
			if err := s.QueueAction(ctx, id, "retry"); err != nil {
				t.Fatal(err)
			}
		}
		if r := attempt(n); r.State != mail.StateDeferred || r.Status != mail.StatusMailboxFull {
			t.Fatalf("attempt %d: %s %s (%s), want deferred 4.2.2", n, r.State, r.Status, r.LastError)
		}
		if got := part.Stored(ann); len(got) != 1 || got[0].ID != fillerID {
			t.Fatalf("after over-quota attempt %d the mailbox holds %d messages, want only the one that fills it", n, len(got))
		}
		if part.Deduped(ann, dedup) || queue.FirstPut(fwdID) != nil || len(relayer.CallsFor(fwdID)) != 0 {
			t.Fatalf("over-quota attempt %d committed or forwarded something (dedup %v, forward queued %v)",
				n, part.Deduped(ann, dedup), queue.FirstPut(fwdID) != nil)
		}
	}

	// The owner makes room; the next attempt fits.
	if err := part.DeleteMessage(ann, fillerID); err != nil {
		t.Fatal(err)
	}
	if err := s.QueueAction(ctx, id, "retry"); err != nil {
		t.Fatal(err)
	}
	queue.WaitDeleted(t, id)
	queue.WaitDeleted(t, fwdID)
	if n := journalEvents(s, id, "delivered"); n != 1 {
		t.Errorf("the message was delivered %d times, want once (attempt 4)", n)
	}

	checkOnce := func(when string) {
		t.Helper()
		if got := part.Stored(ann); len(got) != 1 || got[0].DedupKey != dedup || !bytes.Equal(got[0].Raw, body) {
			t.Errorf("%s: the mailbox holds %+v, want the message once (dedup key %s)", when, got, dedup)
		}
		if n := queue.Count(actorstest.OpPut, fwdID); n != 1 {
			t.Errorf("%s: the forward %s was queued %d times, want 1", when, fwdID, n)
		}
		calls := relayer.CallsFor(fwdID)
		if len(calls) != 1 {
			t.Fatalf("%s: the forward was relayed %d times, want 1", when, len(calls))
		}
		if c := calls[0]; !slices.Equal(c.Rcpts, []string{fwd}) || c.Env.From != bob || !bytes.Equal(c.Body, forwardedCopy(ann, body)) {
			t.Errorf("%s: forward from %q to %v with body %q; want from %s to %s, the message with Delivered-To: %s",
				when, c.Env.From, c.Rcpts, c.Body, bob, fwd, ann)
		}
		if p := part.Pending(ann, dedup); p != nil {
			t.Errorf("%s: pending work %v left after the forward was queued", when, p)
		}
		if n := relayer.CallCount(); n != 1 {
			t.Errorf("%s: %d relay calls, want only the forward's", when, n)
		}
	}
	checkOnce("delivered")

	// The same delivery again, as after an answer lost on its way back:
	// a duplicate, which generates nothing.
	pid, root := s.LocalPartition(0), s.ActorSystem().Root
	for i := range 2 {
		if r := only(t, deliver(t, root, pid, deliverFrom(id, bob, ann, ann, body))); r.GetCode() != 250 {
			t.Errorf("repeated delivery %d: %v, want 250", i+1, r)
		}
	}
	if _, err := s.Queue(ctx); err != nil { // the queue has seen whatever was enqueued
		t.Fatal(err)
	}
	checkOnce("after two repeated deliveries")
}

// A forward whose submission fails answers the delivery temporarily
// (4.3.0) with the copy stored and the forward left as pending work; the
// queue's retry is a duplicate that submits the pending forward, once;
// a delivery repeated after that submits nothing.
func TestForwardSubmissionFailureIsRetriedAsPendingWork(t *testing.T) {
	const ann, fwd, bob = "ann@example.test", "fwd@far.example", "bob@remote.example"
	part := actorstest.NewPartition(0, storage.Account{Address: ann, Rules: ruleSet(t, forwardRule(fwd, false))})
	place, queue, clk := &actorstest.Placement{}, actorstest.NewQueue(), clock.New(clock.Start)
	s := startSystem(t, testConfig(), Deps{Placement: place, Queue: queue, Now: clk.Now})
	sub := actorstest.NewSubmitter(nil)
	pid := spawnPartitionWith(t, s, part, sub)
	place.Set(pid)
	ctx, root := testCtx(t), s.ActorSystem().Root
	sub.FailSubmits(1, errors.New("queue store: no space left on device"))

	body := bodyTo(bob, ann, "forward me later")
	env := newEnvelope(bob, ann)
	dedup, fwdID := env.ID+"/"+ann, derivedID(env.ID, ann, workForward)
	id := enqueue(t, s, env, body)

	queue.Wait(t, func() bool { return len(queue.Updates(id)) > 0 || queue.Deleted(id) }, "the first attempt is recorded")
	if queue.Deleted(id) {
		t.Fatal("the message left the queue though its forward could not be submitted")
	}
	r := rcptOf(t, queue.Updates(id)[0], 1)
	if r.State != mail.StateDeferred || r.Status != mail.StatusLocalError || !strings.HasPrefix(r.LastError, "451 4.3.0") {
		t.Errorf("after the failed submission: %s %s %q, want deferred 451 4.3.0", r.State, r.Status, r.LastError)
	}
	if got := part.Stored(ann); len(got) != 1 || got[0].DedupKey != dedup {
		t.Errorf("after the failed submission the mailbox holds %+v, want the copy (the commit comes first)", got)
	}
	if p := part.Pending(ann, dedup); !slices.Equal(p, []string{workForward}) {
		t.Errorf("pending work %v after the failed submission, want [%s]", p, workForward)
	}
	if n, ok := sub.Calls(), len(sub.Submitted()); n != 1 || ok != 0 {
		t.Fatalf("%d submissions, %d of them successful; want 1, 0", n, ok)
	}

	if err := s.QueueAction(ctx, id, "retry"); err != nil {
		t.Fatal(err)
	}
	queue.WaitDeleted(t, id)
	got := sub.Submitted()
	if len(got) != 1 || sub.Calls() != 2 {
		t.Fatalf("after the retry: %d submissions, %d successful; want 2, 1", sub.Calls(), len(got))
	}
	if g := got[0].Envelope; g.ID != fwdID || g.From != bob || len(g.Recipients) != 1 || g.Recipients[0].Addr != fwd {
		t.Errorf("submitted %s from %q to %v; want the forward %s from %s to %s", g.ID, g.From, recipientList(g), fwdID, bob, fwd)
	}
	if p := part.Pending(ann, dedup); p != nil {
		t.Errorf("pending work %v after the forward was submitted", p)
	}

	// Repeated after success: nothing is submitted, nothing stored.
	if r := only(t, deliver(t, root, pid, deliverFrom(id, bob, ann, ann, body))); r.GetCode() != 250 {
		t.Errorf("repeated delivery: %v, want 250", r)
	}
	if n := sub.Calls(); n != 2 {
		t.Errorf("%d submissions after a repeated delivery, want still 2", n)
	}
	if n := len(part.Stored(ann)); n != 1 {
		t.Errorf("%d messages stored, want 1", n)
	}
}

// A forward that keeps no copy (forward + discard) commits only the dedup
// record. When the answer of that delivery is lost (the Local Delivery
// times out while the account actor is still appending), the queue retries
// a delivery that was done: the retry is a duplicate, stores nothing and
// generates nothing; the forward went out once.
func TestForwardWithoutCopyRetriedAfterUnclearAnswer(t *testing.T) {
	const ann, fwd, bob = "ann@example.test", "fwd@far.example", "bob@remote.example"
	part := actorstest.NewPartition(0, storage.Account{Address: ann, Rules: ruleSet(t, forwardRule(fwd, true))})
	place, queue, relayer, clk := &actorstest.Placement{}, actorstest.NewQueue(), actorstest.NewRelayer(), clock.New(clock.Start)
	cfg := testConfig()
	cfg.RequestTimeout = time.Second // how long Local Delivery waits for the blocked append
	s := startSystem(t, cfg, Deps{Placement: place, Queue: queue, Relayer: relayer, Now: clk.Now})
	sub := actorstest.NewSubmitter(s) // records, then queues through the System
	place.Set(spawnPartitionWith(t, s, part, sub))
	ctx := testCtx(t)

	body := bodyTo(bob, ann, "pass it on")
	env := newEnvelope(bob, ann)
	dedup, fwdID := env.ID+"/"+ann, derivedID(env.ID, ann, workForward)
	entered, proceed := make(chan struct{}), make(chan struct{})
	var first atomic.Bool
	part.SetAppendHook(func(_ string, req storage.AppendRequest) {
		if req.DedupKey == dedup && first.CompareAndSwap(false, true) {
			close(entered)
			<-proceed
		}
	})
	t.Cleanup(func() {
		select {
		case <-proceed:
		default:
			close(proceed)
		}
	})
	id := enqueue(t, s, env, body)
	receive(t, entered, "the first append starts")
	r := rcptOf(t, queue.WaitUpdate(t, id, "the unanswered attempt is deferred", inState(1, mail.StateDeferred)), 1)
	if r.Status != mail.StatusNoAnswer {
		t.Errorf("unanswered attempt: %s %q, want 4.4.1 (no answer)", r.Status, r.LastError)
	}
	close(proceed) // the append commits after its answer was given up on
	part.Wait(t, func() bool { return part.Deduped(ann, dedup) && part.Pending(ann, dedup) == nil },
		"the delivery is committed and its forward done")
	if n := len(sub.Submitted()); n != 1 {
		t.Fatalf("%d forwards submitted by the unanswered delivery, want 1", n)
	}

	if err := s.QueueAction(ctx, id, "retry"); err != nil {
		t.Fatal(err)
	}
	queue.WaitDeleted(t, id)
	queue.WaitDeleted(t, fwdID)
	if n := journalEvents(s, id, "delivered"); n != 1 {
		t.Errorf("the message was delivered %d times, want once (the retry)", n)
	}
	if n, c := len(sub.Submitted()), sub.Calls(); n != 1 || c != 1 {
		t.Errorf("%d submissions (%d successful) after the retry, want 1", c, n)
	}
	if got := part.Stored(ann); len(got) != 0 {
		t.Errorf("the mailbox holds %d messages, want none (the rules keep no copy)", len(got))
	}
	if calls := relayer.CallsFor(fwdID); len(calls) != 1 || !slices.Equal(calls[0].Rcpts, []string{fwd}) {
		t.Errorf("forward relayed %d times, want once to %s", len(calls), fwd)
	}
	if n := queue.Count(actorstest.OpPut, fwdID); n != 1 {
		t.Errorf("forward queued %d times, want 1", n)
	}
}

// A vacation reply goes to a sender once: not again when the same message
// is delivered again, nor for another message from that sender; another
// sender gets one.
func TestVacationReplyOncePerSender(t *testing.T) {
	const ann, bob, cat = "ann@example.test", "bob@remote.example", "cat@remote.example"
	part := actorstest.NewPartition(0, storage.Account{Address: ann, Rules: ruleSet(t, vacationRule())})
	s := startSystem(t, testConfig(), Deps{Placement: &actorstest.Placement{}})
	sub := actorstest.NewSubmitter(nil)
	pid, root := spawnPartitionWith(t, s, part, sub), s.ActorSystem().Root

	replies := func(to string) []*mail.Message {
		var out []*mail.Message
		for _, m := range sub.Submitted() {
			if len(m.Envelope.Recipients) == 1 && m.Envelope.Recipients[0].Addr == to {
				out = append(out, m)
			}
		}
		return out
	}
	send := func(queueID, from string) {
		t.Helper()
		d := deliverFrom(queueID, from, ann, ann, bodyTo(from, ann, "are you there "+queueID))
		if r := only(t, deliver(t, root, pid, d)); r.GetCode() != 250 {
			t.Fatalf("delivery of %s from %s: %v, want 250", queueID, from, r)
		}
	}

	send("Q1", bob)
	got := replies(bob)
	if len(got) != 1 {
		t.Fatalf("%d replies to %s after the first message, want 1", len(got), bob)
	}
	if e := got[0].Envelope; e.From != "" || e.ID != derivedID("Q1", ann, workVacation) ||
		!slices.Equal(e.Recipients[0].Notify, []mail.Notify{mail.NotifyNever}) {
		t.Errorf("reply %s from %q, NOTIFY %v; want %s from <> with NOTIFY=NEVER", e.ID, e.From, e.Recipients[0].Notify,
			derivedID("Q1", ann, workVacation))
	}
	if raw, _ := mail.ReadBody(got[0].Body); !bytes.Contains(raw, []byte("I am away.")) {
		t.Errorf("reply %q does not carry the vacation text", raw)
	}
	if ok, _ := part.HasAutoReplied(ann, bob); !ok {
		t.Error("no auto-reply mark for the sender")
	}

	send("Q1", bob) // the same message again
	send("Q2", bob) // another message from the same sender
	if n := len(replies(bob)); n != 1 {
		t.Errorf("%d replies to %s after a repeated delivery and a second message, want 1", n, bob)
	}
	send("Q3", cat)
	if n := len(replies(cat)); n != 1 {
		t.Errorf("%d replies to another sender, want 1", n)
	}
	if n := len(sub.Submitted()); n != 2 || sub.Calls() != 2 {
		t.Errorf("%d submissions (%d calls), want 2: one reply per sender", n, sub.Calls())
	}
	if n := len(part.Stored(ann)); n != 3 {
		t.Errorf("%d messages stored, want 3 (Q1 once, Q2, Q3)", n)
	}
}

// The relayer answers a transaction's recipients in any order, each result
// naming its recipient's key: the queue records each on the recipient it
// names, not on the one in the same position.
func TestRelayResultsMatchedByKey(t *testing.T) {
	relayer := actorstest.NewRelayer()
	byAddr := map[string]mail.Result{
		"a@x.example": {Code: 250, Status: mail.StatusOK, Text: "ok", RemoteMTA: "mx.x.example"},
		"b@x.example": {Code: 550, Status: mail.StatusNoSuchUser, Text: "user unknown", RemoteMTA: "mx.x.example"},
		"c@x.example": {Code: 451, Status: "4.7.1", Text: "greylisted", RemoteMTA: "mx.x.example"},
	}
	relayer.Script(func(c actorstest.RelayCall, _ int) []mail.Result {
		out := actorstest.Each(c.Env, func(r *mail.Recipient) mail.Result { return byAddr[r.Addr] })
		slices.Reverse(out)
		return out
	})
	queue := actorstest.NewQueue()
	s := startSystem(t, testConfig(), Deps{Queue: queue, Relayer: relayer, Now: clock.New(clock.Start).Now})

	id := enqueue(t, s, newEnvelope("", "a@x.example", "b@x.example", "c@x.example"), testBody("in any order"))
	up := queue.WaitUpdate(t, id, "the attempt is recorded", func(*mail.Envelope) bool { return true })
	if calls := relayer.CallsFor(id); len(calls) != 1 || !slices.Equal(calls[0].Keys, []int{1, 2, 3}) {
		t.Fatalf("relay calls %+v, want one transaction for keys 1, 2, 3", calls)
	}
	for key, want := range map[int]struct {
		addr   string
		state  mail.RcptState
		status mail.Status
		last   string
	}{
		1: {"a@x.example", mail.StateDelivered, mail.StatusOK, ""},
		2: {"b@x.example", mail.StateFailed, mail.StatusNoSuchUser, "550 5.1.1 user unknown"},
		3: {"c@x.example", mail.StateDeferred, "4.7.1", "451 4.7.1 greylisted"},
	} {
		r := rcptOf(t, up, key)
		if r.Addr != want.addr || r.State != want.state || r.Status != want.status || r.LastError != want.last || r.RemoteMTA != "mx.x.example" {
			t.Errorf("recipient %d: %s %s %s %q (MTA %q); want %s %s %s %q", key, r.Addr, r.State, r.Status, r.LastError, r.RemoteMTA,
				want.addr, want.state, want.status, want.last)
		}
	}
}

// The temporary answer of a delivery whose forward could not be submitted
// names its recipient, like every answer of a Local Delivery, and says
// why.
func TestFailedSubmissionAnswerNamesItsRecipient(t *testing.T) {
	const ann, fwd, bob = "ann@example.test", "fwd@far.example", "bob@remote.example"
	part := actorstest.NewPartition(0, storage.Account{Address: ann, Rules: ruleSet(t, forwardRule(fwd, false))})
	s := startSystem(t, testConfig(), Deps{Placement: &actorstest.Placement{}})
	sub := actorstest.NewSubmitter(nil)
	pid, root := spawnPartitionWith(t, s, part, sub), s.ActorSystem().Root
	sub.FailSubmits(1, errors.New("queue store: no space left on device"))

	dr := deliver(t, root, pid, deliverFrom("Q1", bob, ann, ann, bodyTo(bob, ann, "forward me")))
	if len(dr.Results) != 1 || dr.Results[0].GetCode() != 451 || dr.Results[0].GetStatus() != string(mail.StatusLocalError) {
		t.Fatalf("answer %v, want one 451 4.3.0", dr.Results)
	}
	if r := dr.Results[0]; r.GetRcpt() != 1 || r.GetText() != "forwarding failed; try again later" {
		t.Errorf("answer %v, want it for recipient 1 with the reason", r)
	}
}

// A delivery whose rules generate two messages (a forward and a vacation
// reply), where the forward is submitted and the reply is not, is retried:
// the retry submits the reply, and not the forward again.
func TestRetryAfterPartialSubmissionSubmitsOnlyWhatFailed(t *testing.T) {
	const ann, fwd, bob = "ann@example.test", "fwd@far.example", "bob@remote.example"
	both := rules.Rule{Name: "both", Actions: []rules.Action{{Kind: rules.ActionForward, Value: fwd}, {Kind: rules.ActionVacation, Value: "I am away."}}}
	part := actorstest.NewPartition(0, storage.Account{Address: ann, Rules: ruleSet(t, both)})
	s := startSystem(t, testConfig(), Deps{Placement: &actorstest.Placement{}})
	sub := actorstest.NewSubmitter(nil)
	pid, root := spawnPartitionWith(t, s, part, sub), s.ActorSystem().Root
	sub.FailSubmitAfter(1, errors.New("queue store: no space left on device"))

	d := deliverFrom("Q1", bob, ann, ann, bodyTo(bob, ann, "two things"))
	if dr := deliver(t, root, pid, d); len(dr.Results) != 1 || dr.Results[0].GetCode() != 451 {
		t.Fatalf("answer %v with the reply's submission failing, want 451", dr.Results)
	}
	sub.Heal()
	if r := only(t, deliver(t, root, pid, d)); r.GetCode() != 250 {
		t.Fatalf("retry: %v, want 250", r)
	}
	count := func(id string) int {
		n := 0
		for _, m := range sub.Submitted() {
			if m.Envelope.ID == id {
				n++
			}
		}
		return n
	}
	if n := count(derivedID("Q1", ann, workVacation)); n != 1 {
		t.Errorf("vacation reply submitted %d times, want 1", n)
	}
	if n := len(part.Stored(ann)); n != 1 {
		t.Errorf("%d messages stored, want 1", n)
	}
	if n := count(derivedID("Q1", ann, workForward)); n != 1 {
		t.Errorf("forward submitted %d times, want 1", n)
	}
}

// A delivery repeated while the first one's forward is still being
// submitted (its answer was given up on, and the queue retried) must not
// submit the forward a second time.
func TestRepeatedDeliveryDuringSubmissionDoesNotSubmitAgain(t *testing.T) {
	const ann, fwd, bob = "ann@example.test", "fwd@far.example", "bob@remote.example"
	part := actorstest.NewPartition(0, storage.Account{Address: ann, Rules: ruleSet(t, forwardRule(fwd, false))})
	s := startSystem(t, testConfig(), Deps{Placement: &actorstest.Placement{}})
	sub := actorstest.NewSubmitter(nil)
	pid, root := spawnPartitionWith(t, s, part, sub), s.ActorSystem().Root
	entered, proceed := make(chan struct{}), make(chan struct{})
	var first atomic.Bool
	sub.SetSubmitHook(func(*mail.Message) {
		if first.CompareAndSwap(false, true) {
			close(entered)
			<-proceed
		}
	})
	var once atomic.Bool
	release := func() {
		if once.CompareAndSwap(false, true) {
			close(proceed)
		}
	}
	t.Cleanup(release)

	d := deliverFrom("Q1", bob, ann, ann, bodyTo(bob, ann, "slow queue"))
	f1 := root.RequestFuture(pid, d, waitTimeout)
	receive(t, entered, "the first delivery's forward is being submitted")
	f2 := root.RequestFuture(pid, d, waitTimeout)
	part.Wait(t, func() bool { return part.AppendCalls() == 2 }, "the repeated delivery is appended")
	release()
	for i, f := range []*actor.Future{f1, f2} {
		res, err := f.Result()
		if err != nil {
			t.Fatalf("delivery %d: %v", i+1, err)
		}
		if dr, ok := res.(*pb.DeliverResult); !ok || len(dr.Results) != 1 || dr.Results[0].GetCode()/100 == 5 {
			t.Errorf("delivery %d answered %v, want one result, not a permanent failure", i+1, res)
		}
	}
	if n := len(part.Stored(ann)); n != 1 {
		t.Errorf("%d messages stored, want 1", n)
	}
	if n := sub.Calls(); n != 1 {
		t.Errorf("the forward was submitted %d times, want 1", n)
	}
}
