// Package probe is an actor whose mailbox a test asserts on, in sentences:
//
//	p := probe.New(t, system)
//	p.Request(account, &pb.Deliver{...})
//	res := probe.Expect[*pb.DeliverResult](p, time.Second)
//	p.ExpectNothing(100 * time.Millisecond)
//
// It needs only protoactor-go and imports nothing from Homing, so the
// tests of every package can use it (the actors' tests, say).
package probe

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// Probe is an actor that records every user message it receives, for
// Expect and ExpectNothing, in arrival order, including
// *actor.Terminated for actors it Watches; the actor's own lifecycle
// messages (*actor.Started, *actor.Stopping, ...) are not recorded.
//
// Expect, ExpectNothing and the other assertions fail the test with
// t.Fatalf, so they must be called from the goroutine running the test;
// PID, Request and Watch may be called from any goroutine.
type Probe struct {
	t      testing.TB
	system *actor.ActorSystem
	pid    *actor.PID

	mu      sync.Mutex
	kept    []Delivery    // received and not yet taken by an Expect
	arrived chan struct{} // signalled (buffer 1) when kept grows
}

// Delivery is one message a Probe received and its sender: nil when it was
// sent without one (Send, and ctx.Respond, which protoactor sends without
// a sender), else the PID the sender gave (ctx.Request).
type Delivery struct {
	Message any
	Sender  *actor.PID
}

// probeWatch asks the probe actor to watch a PID (Watch needs the actor's
// own context).
type probeWatch struct{ pid *actor.PID }

// New spawns a probe in system; it is stopped when the test ends.
// Cleanups run last-registered first, so a system shut down by a cleanup
// registered before New is still running when the probe stops.
func New(t testing.TB, system *actor.ActorSystem) *Probe {
	t.Helper()
	p := &Probe{t: t, system: system, arrived: make(chan struct{}, 1)}
	p.pid = system.Root.SpawnPrefix(actor.PropsFromFunc(p.receive), "probe")
	t.Cleanup(func() {
		// StopFuture's own 10 s bound turns a wedged system into a failure.
		if err := system.Root.StopFuture(p.pid).Wait(); err != nil {
			t.Errorf("stopping probe %s: %v", p.pid.Id, err)
		}
	})
	return p
}

// receive is the probe actor's behaviour: record, never reply.
func (p *Probe) receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started, actor.AutoReceiveMessage:
		return // the actor's own lifecycle
	case probeWatch:
		ctx.Watch(m.pid)
		return
	}
	p.mu.Lock()
	p.kept = append(p.kept, Delivery{Message: ctx.Message(), Sender: ctx.Sender()})
	p.mu.Unlock()
	select {
	case p.arrived <- struct{}{}:
	default:
	}
}

// PID is the probe's address: give it to the actor under test as a reply
// target or a subscriber.
func (p *Probe) PID() *actor.PID { return p.pid }

// Request sends msg to target with the probe as the sender, so that the
// target's ctx.Respond comes back to the probe.
func (p *Probe) Request(target *actor.PID, msg any) {
	p.system.Root.RequestWithCustomSender(target, msg, p.pid)
}

// Watch makes the probe watch target: when target stops, the probe
// receives an *actor.Terminated (Expect[*actor.Terminated]).
func (p *Probe) Watch(target *actor.PID) {
	p.system.Root.Send(p.pid, probeWatch{target})
}

// Expect returns the first message of type T the probe has received or
// receives within the given time, and fails the test if none does.
// Messages of other types, before or after it, are kept for later Expects
// (and make ExpectNothing fail). T may be an interface type.
func Expect[T any](p *Probe, within time.Duration) T {
	p.t.Helper()
	d := ExpectDelivery[T](p, within)
	return d.Message.(T)
}

// ExpectDelivery is Expect that also returns the sender of the message.
func ExpectDelivery[T any](p *Probe, within time.Duration) Delivery {
	p.t.Helper()
	d, ok := p.take(within, func(m any) bool { _, ok := m.(T); return ok })
	if !ok {
		var zero *T
		p.t.Fatalf("probe %s: no %s within %v (kept: %s)", p.pid.Id, strings.TrimPrefix(fmt.Sprintf("%T", zero), "*"), within, p.describeKept())
	}
	return d
}

// ExpectNothing asserts absence: it fails the test if the probe holds a
// message no Expect has taken, or receives one within the given time. It
// always waits the whole time when nothing arrives.
func (p *Probe) ExpectNothing(within time.Duration) {
	p.t.Helper()
	if d, ok := p.take(within, func(any) bool { return true }); ok {
		p.t.Fatalf("probe %s: got %T %+v, want nothing within %v", p.pid.Id, d.Message, d.Message, within)
	}
}

// take removes and returns the first kept message that match accepts,
// waiting up to within for one to arrive.
func (p *Probe) take(within time.Duration, match func(any) bool) (Delivery, bool) {
	timer := time.NewTimer(within)
	defer timer.Stop()
	for expired := false; ; {
		p.mu.Lock()
		for i, d := range p.kept {
			if match(d.Message) {
				p.kept = append(p.kept[:i], p.kept[i+1:]...)
				p.mu.Unlock()
				return d, true
			}
		}
		p.mu.Unlock()
		if expired { // looked once more after the deadline: a message may have raced it
			return Delivery{}, false
		}
		select {
		case <-p.arrived:
		case <-timer.C:
			expired = true
		}
	}
}

// describeKept lists the types of the messages kept, for failure messages.
func (p *Probe) describeKept() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.kept) == 0 {
		return "none"
	}
	var b strings.Builder
	for i, d := range p.kept {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%T", d.Message)
	}
	return b.String()
}
