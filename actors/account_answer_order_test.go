package actors

import (
	"errors"
	"sync"
	"testing"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/homing-mail/homing/actors/actorstest"
	"github.com/homing-mail/homing/actors/pb"
	"github.com/homing-mail/homing/storage"
	"github.com/homing-mail/homing/testkit/probe"
)

// heldRequester is a process (not an actor) that stands in for the one
// who sent a Deliver: what is sent to it is passed on to a probe, and the
// sending goroutine is held there until release. It shows what the
// account actor has done by the time its answer is out.
type heldRequester struct {
	system  *actor.ActorSystem
	to      *actor.PID
	release chan struct{}
}

func (h *heldRequester) SendUserMessage(_ *actor.PID, m any) {
	h.system.Root.Send(h.to, m)
	<-h.release
}
func (h *heldRequester) SendSystemMessage(*actor.PID, any) {}
func (h *heldRequester) Stop(*actor.PID)                   {}

// Once a delivery has been answered, its work is over: a repeat that the
// answer provoked (the queue retries at once after an administrator's
// retry, or when the backoff is short) must not be told "delivery in
// progress". account.go answers (line 187) before it tells the actor the
// work is done (line 189, workDone), so a repeat that reaches the actor
// in between is refused with 451 4.3.0 "delivery in progress" although
// nothing is in progress; the queue then waits a whole backoff for
// nothing. (This is what makes TestForwardSubmissionFailureIsRetriedAsPendingWork
// fail now and then under -race: its fake clock stands still, so the
// spurious deferral is never retried.)
func TestRepeatAfterTheAnswerIsNotInProgress(t *testing.T) {
	const ann, fwd, bob = "ann@example.test", "fwd@far.example", "bob@remote.example"
	part := actorstest.NewPartition(0, storage.Account{Address: ann, Rules: ruleSet(t, forwardRule(fwd, false))})
	s := startSystem(t, testConfig(), Deps{Placement: &actorstest.Placement{}})
	sub := actorstest.NewSubmitter(nil)
	sub.FailSubmits(1, errors.New("queue store: no space left on device"))
	partition, p := spawnPartitionWith(t, s, part, sub), probe.New(t, s.ActorSystem())
	held := &heldRequester{system: s.ActorSystem(), to: p.PID(), release: make(chan struct{})}
	t.Cleanup(sync.OnceFunc(func() { close(held.release) }))
	requester, ok := s.ActorSystem().ProcessRegistry.Add(held, "held-requester")
	if !ok {
		t.Fatal("registering the held requester")
	}
	t.Cleanup(func() { s.ActorSystem().ProcessRegistry.Remove(requester) })

	d := deliverFrom("Q1", bob, ann, ann, bodyTo(bob, ann, "forward me"))
	s.ActorSystem().Root.RequestWithCustomSender(partition, d, requester)
	first := resultsByKey(t, probe.Expect[*pb.DeliverResult](p, waitTimeout), "Q1", 1)[1]
	if first.GetCode() != 451 || first.GetText() != "forwarding failed; try again later" {
		t.Fatalf("first delivery: %v, want 451 forwarding failed", first)
	}
	// The answer is out: the first delivery's work is over. Repeat it.
	p.Request(partition, d)
	if again := resultsByKey(t, probe.Expect[*pb.DeliverResult](p, waitTimeout), "Q1", 1)[1]; again.GetCode() != 250 {
		t.Errorf("delivery repeated after the answer: %v, want 250 (the pending forward submitted now)", again)
	}
	if n := len(sub.Submitted()); n != 1 {
		t.Errorf("%d forwards submitted, want 1", n)
	}
}
