package actors

import (
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// recorder records the messages it gets, in order.
type recorder struct{ got chan any }

func (r *recorder) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started, string:
		r.got <- m
	}
}

// spawnWhileSent spawns a named actor and, in the window protoactor's
// spawn leaves between registering the name and registering the
// mailbox's handlers (held open here by an init hook), sends it a
// message by name, as a remote member's message arrives. It returns what
// the actor received, or the panic the send caused.
func spawnWhileSent(t *testing.T, opts ...actor.PropsOption) (got []any, panicked any) {
	t.Helper()
	sys := actor.NewActorSystem()
	t.Cleanup(sys.Shutdown)
	registered, sent := make(chan struct{}), make(chan any, 1)
	r := &recorder{got: make(chan any, 4)}
	opts = append(opts, actor.WithOnInit(func(actor.Context) {
		close(registered)
		if p := <-sent; p != nil {
			panic(p) // the spawn cannot go on either
		}
	}))
	go func() {
		<-registered
		defer func() { sent <- recover() }()
		sys.Root.Send(actor.NewPID(sys.Address(), "named"), "early")
	}()
	var spawnPanic any
	func() {
		defer func() { spawnPanic = recover() }()
		if _, err := sys.Root.SpawnNamed(actor.PropsFromProducer(func() actor.Actor { return r }, opts...), "named"); err != nil {
			t.Fatal(err)
		}
	}()
	if spawnPanic != nil {
		return nil, spawnPanic
	}
	for len(got) < 2 {
		select {
		case m := <-r.got:
			got = append(got, m)
		case <-time.After(10 * time.Second): // a bound on a failure, not a wait for success
			t.Fatalf("received %v, want Started and the early message", got)
		}
	}
	return got, nil
}

// TestStartGateTakesMessagesSentDuringTheSpawn: a message sent by name
// while the actor is being spawned is delivered after Started, instead
// of crashing the sender (protoactor's default mailbox has no dispatcher
// yet then).
func TestStartGateTakesMessagesSentDuringTheSpawn(t *testing.T) {
	if _, p := spawnWhileSent(t); p == nil {
		t.Log("protoactor's default mailbox no longer panics in the spawn window; the gate may be unnecessary")
	}
	got, p := spawnWhileSent(t, withStartGate())
	if p != nil {
		t.Fatalf("a message sent during the spawn panicked through the start gate: %v", p)
	}
	if _, ok := got[0].(*actor.Started); !ok || got[1] != "early" {
		t.Fatalf("received %v; want Started, then the early message", got)
	}
}
