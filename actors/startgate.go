package actors

import (
	"sync"
	"sync/atomic"

	"github.com/asynkron/protoactor-go/actor"
)

// The start gate: a mailbox for actors other nodes address by name.
//
// protoactor's spawn (props.go, defaultSpawner) adds the new process to
// the registry before it gives the mailbox its dispatcher
// (RegisterHandlers). A message that finds the name in that window, which
// a remote member's message can (it needs no PID from the spawn, only the
// name: a partition's actor, the queue, the body server), is posted to a
// mailbox without a dispatcher, and defaultMailbox.schedule dereferences
// the nil one: the whole process panics (protoactor-go issue #198, closed
// as "mainly used for testing"). Seen in CI: a frontend's Deliver reached
// a backend that was just spawning the partitions it had taken over
// (TestNetworkPartitionBackendCutOff), and the backend died.
//
// gatedMailbox holds what is posted before the spawn is complete
// (Start, which the spawner calls last, after it posted Started) and
// hands it on, system messages first, so that the actor's first message
// is still Started; after that every post goes straight through.

// gatedMailboxes returns the producer of start-gated default mailboxes.
func gatedMailboxes() actor.MailboxProducer {
	inner := actor.Unbounded()
	return func() actor.Mailbox { return &gatedMailbox{Mailbox: inner()} }
}

// withStartGate is the props option of an actor addressed by name.
func withStartGate() actor.PropsOption { return actor.WithMailbox(gatedMailboxes()) }

type gatedMailbox struct {
	actor.Mailbox // protoactor's default mailbox

	open atomic.Bool // Start has run: posts go straight through
	mu   sync.Mutex  // guards the early posts and the opening
	sys  []any       // system messages posted before Start, in order
	user []any       // user messages posted before Start, in order
}

func (g *gatedMailbox) PostUserMessage(m any) {
	g.post(m, g.Mailbox.PostUserMessage, &g.user)
}

func (g *gatedMailbox) PostSystemMessage(m any) {
	g.post(m, g.Mailbox.PostSystemMessage, &g.sys)
}

// post hands m to the mailbox once the gate is open, and keeps it in
// early until then.
func (g *gatedMailbox) post(m any, direct func(any), early *[]any) {
	if g.open.Load() {
		direct(m)
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.open.Load() {
		direct(m)
		return
	}
	*early = append(*early, m)
}

// Start opens the gate: the handlers are registered by now (the spawner
// calls RegisterHandlers first). The early posts go in under the lock, so
// that a post racing with the opening comes after them.
func (g *gatedMailbox) Start() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.Mailbox.Start()
	for _, m := range g.sys {
		g.Mailbox.PostSystemMessage(m)
	}
	for _, m := range g.user {
		g.Mailbox.PostUserMessage(m)
	}
	g.sys, g.user = nil, nil
	g.open.Store(true)
}

// UserMessageCount counts the early posts too.
func (g *gatedMailbox) UserMessageCount() int {
	n := g.Mailbox.UserMessageCount()
	if !g.open.Load() {
		g.mu.Lock()
		n += len(g.user)
		g.mu.Unlock()
	}
	return n
}
