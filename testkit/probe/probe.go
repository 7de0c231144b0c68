// Package probe is an actor whose mailbox a test asserts on, in sentences:
//
//	p := probe.New(t, system)
//	p.Request(account, &pb.Deliver{...})
//	res := probe.Expect[*pb.DeliverResult](p, time.Second)
//	p.ExpectNothing(100 * time.Millisecond)
//
// The probe can stand in for the actors around the one under test: for
// the actor it sends requests to (give the actor the probe's PID; take a
// request with ExpectDelivery, answer it with Reply or not at all), for
// its parent (SpawnChild) and for a watcher (Watch). Tap copies the
// messages an actor receives to the probe, for the ones that only pass
// between actors under test.
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
// *actor.Terminated for actors it Watches and for its children
// (SpawnChild); the actor's own lifecycle messages (*actor.Started,
// *actor.Stopping, ...) are not recorded.
//
// Expect, ExpectNothing, Reply, SpawnChild and the other assertions fail
// the test with t.Fatalf, so they must be called from the goroutine
// running the test; PID, Request, Watch and Tap may be called from any
// goroutine.
type Probe struct {
	t      testing.TB
	system *actor.ActorSystem
	pid    *actor.PID

	mu      sync.Mutex
	kept    []Delivery    // received and not yet taken by an Expect
	arrived chan struct{} // signalled (buffer 1) when kept grows
}

// Delivery is one message a Probe received, its sender and when it
// arrived. Sender is nil when the message was sent without one (Send, and
// ctx.Respond, which protoactor sends without a sender), else the PID the
// sender gave (ctx.Request, ctx.RequestFuture: the future's PID).
type Delivery struct {
	Message any
	Sender  *actor.PID
	At      time.Time // when the probe actor received it
}

// probeWatch asks the probe actor to watch a PID (Watch needs the actor's
// own context).
type probeWatch struct{ pid *actor.PID }

// probeSpawn asks the probe actor to spawn a child (SpawnChild).
type probeSpawn struct {
	props *actor.Props
	pid   chan<- *actor.PID
}

// spawnTimeout bounds SpawnChild's wait for the probe actor; it only makes
// a wedged actor system fail the test instead of hanging it.
const spawnTimeout = 10 * time.Second

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
	case probeSpawn:
		m.pid <- ctx.Spawn(m.props)
		return
	}
	d := Delivery{Message: ctx.Message(), Sender: ctx.Sender(), At: time.Now()}
	p.mu.Lock()
	p.kept = append(p.kept, d)
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

// Reply answers d, a request the probe received, with msg: it sends msg to
// d's sender (a future's PID, when d came from ctx.RequestFuture), with
// the probe as the sender. A probe that stands in for an actor answers
// with Reply, or leaves a request unanswered to provoke its requester's
// timeout. It fails the test when d came without a sender: there is
// nobody to answer.
func (p *Probe) Reply(d Delivery, msg any) {
	p.t.Helper()
	if d.Sender == nil {
		p.t.Fatalf("probe %s: cannot reply to %T: it came without a sender", p.pid.Id, d.Message)
	}
	p.system.Root.RequestWithCustomSender(d.Sender, msg, p.pid)
}

// SpawnChild spawns an actor from props as a child of the probe, and
// returns its PID: the probe stands in for the parent, so what the child
// sends to ctx.Parent() is the probe's to Expect, and the probe receives
// an *actor.Terminated when the child stops. The child stops with the
// probe, at the end of the test at the latest. Call it from the goroutine
// running the test.
func (p *Probe) SpawnChild(props *actor.Props) *actor.PID {
	p.t.Helper()
	ch := make(chan *actor.PID, 1)
	p.system.Root.Send(p.pid, probeSpawn{props: props, pid: ch})
	timer := time.NewTimer(spawnTimeout)
	defer timer.Stop()
	select {
	case pid := <-ch:
		return pid
	case <-timer.C:
		p.t.Fatalf("probe %s: spawning a child took longer than %v", p.pid.Id, spawnTimeout)
		return nil
	}
}

// Tap returns receiver middleware that sends the probe a copy of every
// message the actor it is installed on receives and match accepts (every
// one, when match is nil), with the message's sender, before the actor
// handles it. It shows what passes between actors that are all under
// test, a child's request to its parent say:
//
//	props := actor.PropsFromProducer(newParent, actor.WithReceiverMiddleware(p.Tap(isPassivate)))
//
// The probe records none of the actor's lifecycle messages
// (*actor.Started, *actor.Stopping, ...). The copy is the message itself,
// not a clone: the test must not change it, nor read what the actor
// changes in it.
func (p *Probe) Tap(match func(msg any) bool) actor.ReceiverMiddleware {
	return func(next actor.ReceiverFunc) actor.ReceiverFunc {
		return func(c actor.ReceiverContext, env *actor.MessageEnvelope) {
			if match == nil || match(env.Message) {
				p.system.Root.RequestWithCustomSender(p.pid, env.Message, env.Sender)
			}
			next(c, env)
		}
	}
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
