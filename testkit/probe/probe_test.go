package probe

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/homing-mail/homing/testkit/failtb"
)

// The probe's own tests use a local actor system only (no remote), so they
// run under -race.

type ping struct{ n int }
type pong struct{ n int }

func (p *pong) String() string { return fmt.Sprintf("pong %d", p.n) }

// testSystem is a local actor system, shut down when the test ends (after
// the probes, whose cleanups are registered later and so run first).
func testSystem(t *testing.T) *actor.ActorSystem {
	s := actor.NewActorSystem(
		actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return slog.New(slog.DiscardHandler) }),
		actor.WithDeadLetterRequestLogging(false),
	)
	t.Cleanup(s.Shutdown)
	return s
}

// echo answers every *ping with a *pong of the same number: with
// ctx.Respond (which sends without a sender) below 100, with ctx.Request
// (which names echo as the sender) from 100 on.
func echo(ctx actor.Context) {
	if p, ok := ctx.Message().(*ping); ok {
		if p.n < 100 {
			ctx.Respond(&pong{p.n})
		} else {
			ctx.Request(ctx.Sender(), &pong{p.n})
		}
	}
}

func TestProbeExpectReturnsTheFirstMessageOfTheAskedTypeAndKeepsTheOthers(t *testing.T) {
	system := testSystem(t)
	p := New(t, system)
	system.Root.Send(p.PID(), &ping{1})
	system.Root.Send(p.PID(), &pong{2})
	system.Root.Send(p.PID(), &ping{3})

	if got := Expect[*pong](p, time.Second); got.n != 2 {
		t.Fatalf("Expect[*pong] = %d, want 2", got.n)
	}
	// The pings that came before and after the pong were kept, in order.
	if got := Expect[*ping](p, time.Second); got.n != 1 {
		t.Fatalf("first Expect[*ping] = %d, want 1", got.n)
	}
	if got := Expect[*ping](p, time.Second); got.n != 3 {
		t.Fatalf("second Expect[*ping] = %d, want 3", got.n)
	}
	p.ExpectNothing(20 * time.Millisecond)
}

func TestProbeExpectWaitsForAMessageStillOnItsWay(t *testing.T) {
	system := testSystem(t)
	p := New(t, system)
	sent := make(chan struct{})
	go func() {
		<-sent
		system.Root.Send(p.PID(), &ping{7})
	}()
	close(sent) // the send happens while Expect waits (or just before)
	if got := Expect[*ping](p, 5*time.Second); got.n != 7 {
		t.Fatalf("Expect[*ping] = %d, want 7", got.n)
	}
}

func TestProbeExpectAcceptsAnInterfaceType(t *testing.T) {
	system := testSystem(t)
	p := New(t, system)
	system.Root.Send(p.PID(), &ping{1}) // not a Stringer
	system.Root.Send(p.PID(), &pong{4})
	if got := Expect[fmt.Stringer](p, time.Second); got.String() != "pong 4" {
		t.Fatalf("Expect[fmt.Stringer] = %q, want pong 4", got)
	}
}

func TestProbeExpectFailsWhenNothingOfTheTypeArrives(t *testing.T) {
	system := testSystem(t)
	f := failtb.New(t)
	p := New(f, system)
	system.Root.Send(p.PID(), &ping{1})
	start := time.Now()
	msgs, _ := f.Run(func() {
		Expect[*pong](p, 50*time.Millisecond)
		t.Error("Expect returned although no *pong arrived")
	})
	if len(msgs) != 1 || !strings.Contains(msgs[0], "no *probe.pong within 50ms") || !strings.Contains(msgs[0], "kept: *probe.ping") {
		t.Fatalf("failures = %q, want one naming the missing *pong and the kept *ping", msgs)
	}
	if waited := time.Since(start); waited < 50*time.Millisecond {
		t.Errorf("Expect gave up after %v, before its 50ms", waited)
	}
	// The ping it passed over is still there.
	if got := Expect[*ping](p, time.Second); got.n != 1 {
		t.Fatalf("Expect[*ping] = %d, want 1", got.n)
	}
}

func TestProbeExpectNothingPassesOnSilenceAndWaitsTheWholeTime(t *testing.T) {
	system := testSystem(t)
	p := New(t, system)
	start := time.Now()
	p.ExpectNothing(60 * time.Millisecond)
	if waited := time.Since(start); waited < 60*time.Millisecond {
		t.Errorf("ExpectNothing returned after %v, want at least 60ms", waited)
	}
}

func TestProbeExpectNothingFailsOnAMessageThatArrives(t *testing.T) {
	system := testSystem(t)
	f := failtb.New(t)
	p := New(f, system)
	go system.Root.Send(p.PID(), &ping{9})
	msgs, _ := f.Run(func() { p.ExpectNothing(5 * time.Second) })
	if len(msgs) != 1 || !strings.Contains(msgs[0], "got *probe.ping") {
		t.Fatalf("failures = %q, want one naming the *ping", msgs)
	}
}

func TestProbeExpectNothingFailsOnAMessageLeftUnexpected(t *testing.T) {
	system := testSystem(t)
	f := failtb.New(t)
	p := New(f, system)
	system.Root.Send(p.PID(), &ping{1})
	system.Root.Send(p.PID(), &pong{2})
	if got := Expect[*pong](p, time.Second); got.n != 2 {
		t.Fatalf("Expect[*pong] = %d, want 2", got.n)
	}
	msgs, _ := f.Run(func() { p.ExpectNothing(10 * time.Millisecond) })
	if len(msgs) != 1 || !strings.Contains(msgs[0], "got *probe.ping") {
		t.Fatalf("failures = %q, want one naming the kept *ping", msgs)
	}
}

func TestProbeRequestGetsTheReplyWithItsSender(t *testing.T) {
	system := testSystem(t)
	target := system.Root.Spawn(actor.PropsFromFunc(echo))
	t.Cleanup(func() { _ = system.Root.StopFuture(target).Wait() })
	p := New(t, system)

	p.Request(target, &ping{5}) // answered with ctx.Respond
	d := ExpectDelivery[*pong](p, time.Second)
	if d.Message.(*pong).n != 5 || d.Sender != nil {
		t.Fatalf("reply %+v from %v, want pong 5 without a sender", d.Message, d.Sender)
	}
	p.Request(target, &ping{105}) // answered with ctx.Request
	d = ExpectDelivery[*pong](p, time.Second)
	if d.Message.(*pong).n != 105 || d.Sender == nil || !d.Sender.Equal(target) {
		t.Fatalf("reply %+v from %v, want pong 105 from %v", d.Message, d.Sender, target)
	}
	p.ExpectNothing(20 * time.Millisecond)
}

func TestProbeWatchSeesTheTargetStop(t *testing.T) {
	system := testSystem(t)
	target := system.Root.Spawn(actor.PropsFromFunc(echo))
	p := New(t, system)
	p.Watch(target)
	// The watch is in place once the probe has handled it; a request sent
	// after it is handled after it too (one mailbox, in order), so the
	// reply proves it.
	p.Request(target, &ping{1})
	Expect[*pong](p, time.Second)
	system.Root.Stop(target)
	term := Expect[*actor.Terminated](p, 5*time.Second)
	if !term.Who.Equal(target) {
		t.Fatalf("Terminated for %v, want %v", term.Who, target)
	}
}

func TestProbeIsStoppedWhenTheTestEnds(t *testing.T) {
	system := testSystem(t)
	var pid *actor.PID
	t.Run("inner", func(t *testing.T) {
		pid = New(t, system).PID()
	})
	// The inner test's cleanup stopped the probe: watching it now yields
	// Terminated at once.
	p := New(t, system)
	p.Watch(pid)
	if term := Expect[*actor.Terminated](p, 5*time.Second); !term.Who.Equal(pid) {
		t.Fatalf("Terminated for %v, want the inner probe %v", term.Who, pid)
	}
}

func TestProbeDeliveryTellsWhenItArrived(t *testing.T) {
	system := testSystem(t)
	p := New(t, system)
	before := time.Now()
	system.Root.Send(p.PID(), &ping{1})
	d := ExpectDelivery[*ping](p, time.Second)
	if d.At.Before(before) || d.At.After(time.Now()) {
		t.Fatalf("At = %v, want between the send (%v) and now", d.At, before)
	}
}

// asker asks target for a pong with RequestFuture, as actors under test
// ask the actors a probe stands in for, and reports what it got on out.
func asker(t *testing.T, system *actor.ActorSystem, target *actor.PID, timeout time.Duration) <-chan any {
	out := make(chan any, 1)
	go func() {
		res, err := system.Root.RequestFuture(target, &ping{42}, timeout).Result()
		if err != nil {
			out <- err
			return
		}
		out <- res
	}()
	return out
}

func TestProbeReplyAnswersTheRequester(t *testing.T) {
	system := testSystem(t)
	p := New(t, system)
	answer := asker(t, system, p.PID(), 5*time.Second)
	d := ExpectDelivery[*ping](p, 5*time.Second)
	if d.Sender == nil {
		t.Fatal("a RequestFuture reached the probe without its future as the sender")
	}
	p.Reply(d, &pong{d.Message.(*ping).n})
	if got, ok := (<-answer).(*pong); !ok || got.n != 42 {
		t.Fatalf("the requester got %v, want pong 42", got)
	}
}

func TestProbeLeavingARequestUnansweredTimesTheRequesterOut(t *testing.T) {
	system := testSystem(t)
	p := New(t, system)
	answer := asker(t, system, p.PID(), 50*time.Millisecond)
	ExpectDelivery[*ping](p, 5*time.Second) // and say nothing
	if err, ok := (<-answer).(error); !ok || !errors.Is(err, actor.ErrTimeout) {
		t.Fatalf("the requester got %v, want a timeout", err)
	}
}

func TestProbeReplyFailsWithoutASender(t *testing.T) {
	system := testSystem(t)
	f := failtb.New(t)
	p := New(f, system)
	system.Root.Send(p.PID(), &ping{1})
	d := ExpectDelivery[*ping](p, time.Second)
	msgs, _ := f.Run(func() {
		p.Reply(d, &pong{1})
		t.Error("Reply returned for a message without a sender")
	})
	if len(msgs) != 1 || !strings.Contains(msgs[0], "cannot reply to *probe.ping") {
		t.Fatalf("failures = %q, want one saying there is nobody to answer", msgs)
	}
}

// child sends its parent a pong when it starts, and the number of every
// ping it is sent after that.
func child(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		ctx.Send(ctx.Parent(), &pong{0})
	case *ping:
		ctx.Send(ctx.Parent(), &pong{m.n})
	}
}

func TestProbeSpawnChildMakesTheProbeTheParent(t *testing.T) {
	system := testSystem(t)
	p := New(t, system)
	pid := p.SpawnChild(actor.PropsFromFunc(child))
	if got := Expect[*pong](p, 5*time.Second); got.n != 0 {
		t.Fatalf("first message from the child = pong %d, want its start (pong 0)", got.n)
	}
	system.Root.Send(pid, &ping{3})
	if got := Expect[*pong](p, 5*time.Second); got.n != 3 {
		t.Fatalf("Expect[*pong] = %d, want 3", got.n)
	}
	// A parent hears of its child's end without watching it.
	system.Root.Stop(pid)
	if term := Expect[*actor.Terminated](p, 5*time.Second); !term.Who.Equal(pid) {
		t.Fatalf("Terminated for %v, want the child %v", term.Who, pid)
	}
	p.ExpectNothing(20 * time.Millisecond)
}

func TestProbeChildStopsWithTheProbe(t *testing.T) {
	system := testSystem(t)
	var pid *actor.PID
	t.Run("inner", func(t *testing.T) {
		pid = New(t, system).SpawnChild(actor.PropsFromFunc(child))
	})
	p := New(t, system)
	p.Watch(pid)
	if term := Expect[*actor.Terminated](p, 5*time.Second); !term.Who.Equal(pid) {
		t.Fatalf("Terminated for %v, want the inner probe's child %v", term.Who, pid)
	}
}

func TestProbeTapCopiesWhatAnActorReceivesAndLetsItThrough(t *testing.T) {
	system := testSystem(t)
	p := New(t, system)
	bigOnly := func(m any) bool { pg, ok := m.(*ping); return ok && pg.n >= 10 }
	target := system.Root.Spawn(actor.PropsFromFunc(echo, actor.WithReceiverMiddleware(p.Tap(bigOnly))))
	t.Cleanup(func() { _ = system.Root.StopFuture(target).Wait() })
	asking := New(t, system) // the requester, whose answers show echo still got every ping

	asking.Request(target, &ping{1})
	asking.Request(target, &ping{11})
	for _, n := range []int{1, 11} {
		if got := Expect[*pong](asking, 5*time.Second); got.n != n {
			t.Fatalf("answer pong %d, want pong %d: the tapped actor handles every message", got.n, n)
		}
	}
	d := ExpectDelivery[*ping](p, 5*time.Second)
	if d.Message.(*ping).n != 11 || d.Sender == nil || !d.Sender.Equal(asking.PID()) {
		t.Fatalf("tapped %+v from %v, want ping 11 from the requester %v", d.Message, d.Sender, asking.PID())
	}
	// Neither the ping match refused nor the actor's lifecycle was copied.
	p.ExpectNothing(20 * time.Millisecond)

	all := system.Root.Spawn(actor.PropsFromFunc(echo, actor.WithReceiverMiddleware(p.Tap(nil))))
	system.Root.Send(all, &pong{5})
	if got := Expect[*pong](p, 5*time.Second); got.n != 5 {
		t.Fatalf("Tap(nil) copied pong %d, want pong 5", got.n)
	}
	_ = system.Root.StopFuture(all).Wait()
	p.ExpectNothing(20 * time.Millisecond) // nor its *actor.Started, *actor.Stopping, *actor.Stopped
}
