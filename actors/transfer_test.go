package actors

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/homing-mail/homing/actors/actorstest"
	"github.com/homing-mail/homing/mail"
	"github.com/homing-mail/homing/testkit/wait"
)

// Tests of the transfer protocol (transfer.go) with two or three Systems
// in one process: an origin "be1" in queue mode Remotely and takers
// "fe1", "fe2" (Locally for Others). A node "crashes" by stopping its
// System (what its fake queue holds is what it had made durable) and
// restarts with the same queue. Each test names an interleaving and ends
// when every copy has left every queue: then exactly one node has
// processed the message (run its rules and relayed it), once.

// xferNode is one node of a transfer test, across its restarts.
type xferNode struct {
	name    string
	mode    mail.QueueMode
	queue   *actorstest.Queue
	relayer *actorstest.Relayer
	pipe    *countingPipeline
	tr      *actorstest.Transferer // the origin's
	mu      sync.Mutex
	sys     *System // nil while down
}

func (n *xferNode) system() *System {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.sys
}

// xferNet connects the nodes' transfer questions, with faults.
type xferNet struct {
	t     *testing.T
	cfg   Config
	mu    sync.Mutex
	nodes map[string]*xferNode
	cut   map[string]bool // "a|b": questions between a and b fail
	// hook, if set, runs each question that reaches a node: answer
	// asks it.
	hook func(from, to string, q TransferQuestion, answer func() (TransferVerdict, error)) (TransferVerdict, error)
	// asked counts the questions that reached a node, by kind.
	asked map[TransferQuestionKind]int
}

func newXferNet(t *testing.T, confirm time.Duration) *xferNet {
	cfg := testConfig()
	cfg.LocalRetry = 20 * time.Millisecond // asks again soon
	cfg.TransferConfirmTimeout = confirm
	return &xferNet{t: t, cfg: cfg, nodes: map[string]*xferNode{}, cut: map[string]bool{}, asked: map[TransferQuestionKind]int{}}
}

// node adds a node (not started).
func (x *xferNet) node(name string, mode mail.QueueMode) *xferNode {
	n := &xferNode{name: name, mode: mode, queue: actorstest.NewQueue(), relayer: actorstest.NewRelayer(), pipe: newCountingPipeline()}
	if mode == mail.ModeRemotely {
		n.tr = actorstest.NewTransferer()
	}
	x.mu.Lock()
	x.nodes[name] = n
	x.mu.Unlock()
	return n
}

// start starts (or restarts) n on its queue.
func (x *xferNet) start(n *xferNode) *System {
	x.t.Helper()
	cfg := x.cfg
	cfg.NodeName = n.name
	deps := Deps{Queue: n.queue, Relayer: n.relayer, Pipeline: n.pipe, TransferPeers: &xferPeer{net: x, from: n.name},
		Mode: func() mail.QueueMode { return n.mode }}
	if n.tr != nil {
		deps.Transferer = n.tr
	}
	s := startSystem(x.t, cfg, deps)
	n.mu.Lock()
	n.sys = s
	n.mu.Unlock()
	return s
}

// crash stops n as a crash would: questions to it fail from now on, and
// what its queue holds stays.
func (x *xferNet) crash(n *xferNode) {
	n.mu.Lock()
	s := n.sys
	n.sys = nil
	n.mu.Unlock()
	if s != nil {
		s.Stop()
	}
}

func pair(a, b string) string {
	if a > b {
		a, b = b, a
	}
	return a + "|" + b
}

// setCut cuts (or heals) the channel between a and b.
func (x *xferNet) setCut(a, b string, cut bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.cut[pair(a, b)] = cut
}

func (x *xferNet) setHook(h func(from, to string, q TransferQuestion, answer func() (TransferVerdict, error)) (TransferVerdict, error)) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.hook = h
}

func (x *xferNet) questions(k TransferQuestionKind) int {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.asked[k]
}

// xferPeer is a node's TransferPeers on an xferNet.
type xferPeer struct {
	net  *xferNet
	from string
}

func (p *xferPeer) AskTransfer(ctx context.Context, member string, q TransferQuestion) (TransferVerdict, error) {
	x := p.net
	x.mu.Lock()
	n, cut, hook := x.nodes[member], x.cut[pair(p.from, member)], x.hook
	x.mu.Unlock()
	var s *System
	if n != nil {
		s = n.system()
	}
	if s == nil || cut {
		return 0, fmt.Errorf("%w: %s is not reachable", mail.ErrUnavailable, member)
	}
	x.mu.Lock()
	x.asked[q.Kind]++
	x.mu.Unlock()
	answer := func() (TransferVerdict, error) { return s.AnswerTransfer(ctx, q) }
	if hook != nil {
		return hook(p.from, member, q, answer)
	}
	return answer()
}

// countingPipeline is a ContentPipeline that counts the messages it runs
// on (processing a message starts with its rules), and can hold them.
type countingPipeline struct {
	mu   sync.Mutex
	runs map[string]int
	gate chan struct{}
}

func newCountingPipeline() *countingPipeline { return &countingPipeline{runs: map[string]int{}} }

func (p *countingPipeline) Process(ctx context.Context, msg *mail.Message) (bool, error) {
	p.mu.Lock()
	p.runs[msg.Envelope.ID]++
	gate := p.gate
	p.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return false, ctx.Err()
		}
	}
	return false, nil
}

func (p *countingPipeline) count(id string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.runs[id]
}

func (p *countingPipeline) hold() chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.gate = make(chan struct{})
	return p.gate
}

// handOver is what a taker's SMTP session does with a transfer
// (smtp/data.go): the taker's own envelope, the origin as Origin, its
// Received field on top, then EnqueueTransfer (a durable PutTransfer).
func handOver(ctx context.Context, taker *xferNode, origin string, msg *mail.Message) error {
	s := taker.system()
	if s == nil {
		return actorstest.ErrRefused // connection refused: nothing stored
	}
	env := msg.Envelope
	var open []*mail.Recipient
	for _, r := range env.Recipients {
		if !r.State.Final() {
			open = append(open, &mail.Recipient{Key: r.Key, Addr: r.Addr, Notify: r.Notify, ORcpt: r.ORcpt, State: mail.StatePending})
		}
	}
	body, err := mail.ReadBody(msg.Body)
	if err != nil {
		return err
	}
	body = append([]byte("Received: from "+origin+" by "+taker.name+" id "+env.ID+"\r\n"), body...)
	out := &mail.Envelope{ID: env.ID, From: env.From, Recipients: open, Received: env.Received, Source: mail.SourceCluster,
		Auth: env.Auth, Origin: origin, Size: int64(len(body))}
	_, err = s.Enqueuer().EnqueueTransfer(ctx, &mail.Message{Envelope: out, Body: mail.BytesBody(body)})
	return err
}

// submitAt submits a message generated on the origin (mode Remotely) and
// returns its id.
func submitAt(t *testing.T, origin *xferNode) string {
	t.Helper()
	env := &mail.Envelope{ID: mail.NewID(time.Now()), From: "alice@example.test", Source: mail.SourceAPI, Auth: "alice@example.test",
		Recipients: []*mail.Recipient{{Addr: "bob@remote.example"}}}
	if err := origin.system().Submit(testCtx(t), message(env, testBody("transfer "+env.ID))); err != nil {
		t.Fatalf("Submit: %v", err)
	}
	return env.ID
}

// settled waits until no node's queue holds id and one relay of it is
// done, and checks that exactly one node processed it, want ("" any), and
// returns that node's name.
func (x *xferNet) settled(t *testing.T, id, want string) string {
	t.Helper()
	x.mu.Lock()
	var nodes []*xferNode
	for _, n := range x.nodes {
		nodes = append(nodes, n)
	}
	x.mu.Unlock()
	slices.SortFunc(nodes, func(a, b *xferNode) int {
		if a.name < b.name {
			return -1
		}
		return 1
	})
	report := func() string {
		s := ""
		for _, n := range nodes {
			s += fmt.Sprintf(" %s: stored %v, rules ran %d, relayed %d;", n.name, n.queue.Stored(id), n.pipe.count(id), len(n.relayer.CallsFor(id)))
		}
		return s
	}
	wait.For(t, waitTimeout, func() bool {
		relays := 0
		for _, n := range nodes {
			if n.queue.Stored(id) {
				return false
			}
			relays += len(n.relayer.CallsFor(id))
		}
		return relays > 0
	}, "%s leaves every queue after one relay:%s", id, wait.Lazy(report))
	var by []string
	relays := 0
	for _, n := range nodes {
		if n.pipe.count(id) > 0 || len(n.relayer.CallsFor(id)) > 0 {
			by = append(by, n.name)
		}
		relays += len(n.relayer.CallsFor(id))
	}
	if len(by) != 1 || relays != 1 || (want != "" && by[0] != want) {
		t.Fatalf("message %s processed by %v, relayed %d times; want exactly once, by %q:%s", id, by, relays, want, report())
	}
	return by[0]
}

// stores makes the origin's transfers store the message at the taker
// they name, and then end with result (nil: the 250 arrived).
func (x *xferNet) stores(origin *xferNode, result error) {
	origin.tr.Script(func(ctx context.Context, c actorstest.TransferCall, msg *mail.Message) error {
		x.mu.Lock()
		taker := x.nodes[c.Member]
		x.mu.Unlock()
		if err := handOver(ctx, taker, origin.name, msg); err != nil {
			return err
		}
		return result
	})
}

// The normal case: the taker stores the message and answers 250; it
// processes the message once the origin has said it is its own, and the
// origin keeps nothing.
func TestTransferConfirmedTakerProcesses(t *testing.T) {
	x := newXferNet(t, time.Minute)
	be1, fe1 := x.node("be1", mail.ModeRemotely), x.node("fe1", mail.ModeLocallyForOthers)
	x.start(be1)
	x.start(fe1)
	be1.tr.SetTargets("fe1")
	x.stores(be1, nil)
	id := submitAt(t, be1)
	x.settled(t, id, "fe1")
	if o := be1.queue.Outcome(id); o.GivenTo != "fe1" {
		t.Fatalf("be1 recorded %+v, want given to fe1", o)
	}
	if n := be1.system().Stats().Transferred.Load(); n != 1 {
		t.Fatalf("be1 counted %d transfers", n)
	}
	if x.questions(AskMine) == 0 {
		t.Fatalf("fe1 processed its copy without asking be1")
	}
}

// The case: the taker stores the transfer and the reply is lost
// (unclear), the taker alive: it processes the message, and the origin,
// which asks it, does not.
func TestTransferUnclearTakerHoldsItTakerProcesses(t *testing.T) {
	x := newXferNet(t, time.Minute)
	be1, fe1 := x.node("be1", mail.ModeRemotely), x.node("fe1", mail.ModeLocallyForOthers)
	x.start(be1)
	x.start(fe1)
	be1.tr.SetTargets("fe1")
	x.stores(be1, actorstest.ErrUnclear)
	id := submitAt(t, be1)
	x.settled(t, id, "fe1")
	if len(be1.tr.Calls()) != 1 {
		t.Fatalf("be1 sent the message %d times; the question replaces a second transfer", len(be1.tr.Calls()))
	}
}

// Unclear, but the taker never stored it (it died reading the end of
// DATA and came back at once): it says it holds no copy, and the origin
// processes the message.
func TestTransferUnclearTakerNeverStoredOriginProcesses(t *testing.T) {
	x := newXferNet(t, time.Minute)
	be1, fe1 := x.node("be1", mail.ModeRemotely), x.node("fe1", mail.ModeLocallyForOthers)
	x.start(be1)
	x.start(fe1)
	be1.tr.SetTargets("fe1")
	be1.tr.Script(func(context.Context, actorstest.TransferCall, *mail.Message) error { return actorstest.ErrUnclear })
	id := submitAt(t, be1)
	x.settled(t, id, "be1")
	if x.questions(AskHold) == 0 {
		t.Fatalf("be1 processed it without asking fe1")
	}
	if !be1.queue.Outcome(id).Kept {
		t.Fatalf("be1 recorded %+v, want kept", be1.queue.Outcome(id))
	}
}

// The soak's case: the taker is killed right after it stored the
// transfer, before its reply; the origin cannot reach it and waits (its
// timeout is long). The taker comes back, asks, and processes it; the
// origin never does.
func TestTransferTakerKilledAfterStoringComesBackTakerProcesses(t *testing.T) {
	x := newXferNet(t, time.Hour)
	be1, fe1 := x.node("be1", mail.ModeRemotely), x.node("fe1", mail.ModeLocallyForOthers)
	x.start(be1)
	x.start(fe1)
	be1.tr.SetTargets("fe1")
	be1.tr.Script(func(ctx context.Context, c actorstest.TransferCall, msg *mail.Message) error {
		if err := handOver(ctx, fe1, "be1", msg); err != nil {
			return err
		}
		x.crash(fe1) // before its question reaches be1, and before its reply
		return actorstest.ErrUnclear
	})
	// fe1's question right after storing must not get through before it dies.
	x.setCut("be1", "fe1", true)
	id := submitAt(t, be1)
	wait.For(t, waitTimeout, func() bool { return fe1.system() == nil && fe1.queue.Stored(id) }, "fe1 stores %s and dies", id)
	x.setCut("be1", "fe1", false)
	// While fe1 is down be1 asks again and again, and processes nothing.
	wait.Never(t, 200*time.Millisecond, func() bool { return be1.pipe.count(id) > 0 || len(be1.tr.Calls()) > 1 },
		"be1 processed or sent %s again while fe1 might hold it", id)
	x.start(fe1)
	x.settled(t, id, "fe1")
}

// The taker is killed after storing and stays down past the origin's
// confirmation timeout: the origin processes the message; when the taker
// comes back its copy asks and is dropped.
func TestTransferTakerDownPastTimeoutOriginProcessesTakerDrops(t *testing.T) {
	x := newXferNet(t, 100*time.Millisecond)
	be1, fe1 := x.node("be1", mail.ModeRemotely), x.node("fe1", mail.ModeLocallyForOthers)
	x.start(be1)
	x.start(fe1)
	be1.tr.SetTargets("fe1")
	x.setCut("be1", "fe1", true)
	be1.tr.Script(func(ctx context.Context, c actorstest.TransferCall, msg *mail.Message) error {
		if err := handOver(ctx, fe1, "be1", msg); err != nil {
			return err
		}
		x.crash(fe1)
		return actorstest.ErrUnclear
	})
	id := submitAt(t, be1)
	wait.For(t, waitTimeout, func() bool { return len(be1.relayer.CallsFor(id)) == 1 }, "be1 processes %s after its timeout", id)
	if !fe1.queue.Stored(id) {
		t.Fatalf("fe1's copy is gone while fe1 is down")
	}
	x.setCut("be1", "fe1", false)
	x.start(fe1)
	x.settled(t, id, "be1")
}

// A network cut between origin and taker, both alive, right after the
// taker stored the message (the reply is lost): the origin's timeout
// passes and it processes the message; the taker, which cannot reach the
// origin, never processes its copy (no timeout runs there), and drops it
// when the cut heals.
func TestTransferNetworkCutOriginTimesOutTakerWaits(t *testing.T) {
	x := newXferNet(t, 100*time.Millisecond)
	be1, fe1 := x.node("be1", mail.ModeRemotely), x.node("fe1", mail.ModeLocallyForOthers)
	x.start(be1)
	x.start(fe1)
	be1.tr.SetTargets("fe1")
	x.setCut("be1", "fe1", true)
	x.stores(be1, actorstest.ErrUnclear)
	id := submitAt(t, be1)
	wait.For(t, waitTimeout, func() bool { return len(be1.relayer.CallsFor(id)) == 1 }, "be1 processes %s after its timeout", id)
	wait.Never(t, 300*time.Millisecond, func() bool { return fe1.pipe.count(id) > 0 || !fe1.queue.Stored(id) },
		"fe1 processed or dropped its copy of %s while cut off", id)
	x.setCut("be1", "fe1", false)
	x.settled(t, id, "be1")
}

// The taker answers "yes, I hold it" and dies before it processed its
// copy: the origin has given it away; the taker, back, asks and processes
// it.
func TestTransferTakerAnswersYesThenDies(t *testing.T) {
	x := newXferNet(t, time.Hour)
	be1, fe1 := x.node("be1", mail.ModeRemotely), x.node("fe1", mail.ModeLocallyForOthers)
	x.start(be1)
	x.start(fe1)
	be1.tr.SetTargets("fe1")
	x.stores(be1, actorstest.ErrUnclear)
	// fe1's own question gets lost; it answers be1's and dies.
	x.setHook(func(from, to string, q TransferQuestion, answer func() (TransferVerdict, error)) (TransferVerdict, error) {
		if q.Kind == AskMine {
			return 0, fmt.Errorf("%w: lost", mail.ErrUnavailable)
		}
		v, err := answer()
		if to == "fe1" {
			go x.crash(fe1)
		}
		return v, err
	})
	id := submitAt(t, be1)
	wait.For(t, waitTimeout, func() bool { return be1.queue.Outcome(id).GivenTo == "fe1" }, "be1 gives %s to fe1", id)
	wait.For(t, waitTimeout, func() bool { return fe1.system() == nil }, "fe1 dies")
	if fe1.pipe.count(id) > 0 {
		t.Fatalf("fe1 processed %s without the origin's yes", id)
	}
	x.setHook(nil)
	x.start(fe1)
	x.settled(t, id, "fe1")
}

// The origin crashes after it recorded the hand-over and before the
// session sent anything: back, it asks the taker, which holds nothing, and
// processes the message.
func TestTransferOriginCrashesBeforeSessionOriginProcesses(t *testing.T) {
	x := newXferNet(t, time.Hour)
	be1, fe1 := x.node("be1", mail.ModeRemotely), x.node("fe1", mail.ModeLocallyForOthers)
	x.start(be1)
	x.start(fe1)
	be1.tr.SetTargets("fe1")
	be1.tr.Script(func(ctx context.Context, _ actorstest.TransferCall, _ *mail.Message) error {
		<-ctx.Done() // the crash ends it
		return ctx.Err()
	})
	id := submitAt(t, be1)
	be1.tr.Wait(t, func() bool { return len(be1.tr.Calls()) == 1 }, "be1 starts the transfer")
	x.crash(be1)
	if env, err := be1.queue.Envelope(id); err != nil || env.HandedTo != "fe1" || env.HandedAt.IsZero() {
		t.Fatalf("be1's copy %+v (%v): the hand-over to fe1 is not recorded before the session", env, err)
	}
	x.stores(be1, nil)
	x.start(be1)
	x.settled(t, id, "be1")
	if len(be1.tr.Calls()) != 1 {
		t.Fatalf("be1 transferred %s again after the restart instead of asking", id)
	}
}

// The origin crashes after the taker stored the message and before the
// origin heard of it; the taker cannot reach it meanwhile (and, with no
// timeout of its own, waits). Back, the origin asks the taker, gives it
// the message, and the taker processes it.
func TestTransferOriginCrashesAfterTakerStoredTakerProcesses(t *testing.T) {
	x := newXferNet(t, 50*time.Millisecond)
	be1, fe1 := x.node("be1", mail.ModeRemotely), x.node("fe1", mail.ModeLocallyForOthers)
	x.start(be1)
	x.start(fe1)
	be1.tr.SetTargets("fe1")
	x.setCut("be1", "fe1", true)
	be1.tr.Script(func(ctx context.Context, c actorstest.TransferCall, msg *mail.Message) error {
		if err := handOver(ctx, fe1, "be1", msg); err != nil {
			return err
		}
		<-ctx.Done() // be1 dies waiting for the reply
		return ctx.Err()
	})
	id := submitAt(t, be1)
	wait.For(t, waitTimeout, func() bool { return fe1.queue.Stored(id) }, "fe1 stores %s", id)
	x.crash(be1)
	wait.Never(t, 200*time.Millisecond, func() bool { return fe1.pipe.count(id) > 0 },
		"fe1 processed %s while its origin is down (longer than any timeout)", id)
	x.setCut("be1", "fe1", false)
	x.start(be1)
	x.settled(t, id, "fe1")
}

// The origin crashes with its decision ("given to fe1", after the 250)
// not yet durable: nobody was told anything; back, it decides again.
func TestTransferOriginCrashesBeforeDecisionDurable(t *testing.T) {
	x := newXferNet(t, time.Hour)
	be1, fe1 := x.node("be1", mail.ModeRemotely), x.node("fe1", mail.ModeLocallyForOthers)
	x.start(be1)
	x.start(fe1)
	be1.tr.SetTargets("fe1")
	x.stores(be1, nil)
	be1.queue.PauseDecisions()
	id := submitAt(t, be1)
	be1.queue.Wait(t, func() bool { return be1.queue.PendingDecisions() > 0 }, "be1 decides about %s", id)
	x.crash(be1)
	be1.queue.ResumeDecisions(false)
	if fe1.pipe.count(id) > 0 || be1.pipe.count(id) > 0 {
		t.Fatalf("%s processed before the decision was durable", id)
	}
	x.start(be1)
	x.settled(t, id, "fe1")
}

// The origin's decision fails to be written (a disk error): nobody is
// told anything, the same decision is written again, and then it holds.
func TestTransferDecisionWriteFailsIsRetried(t *testing.T) {
	x := newXferNet(t, time.Hour)
	be1, fe1 := x.node("be1", mail.ModeRemotely), x.node("fe1", mail.ModeLocallyForOthers)
	x.start(be1)
	x.start(fe1)
	be1.tr.SetTargets("fe1")
	x.stores(be1, nil)
	be1.queue.PauseDecisions()
	id := submitAt(t, be1)
	be1.queue.Wait(t, func() bool { return be1.queue.PendingDecisions() > 0 }, "be1 decides about %s", id)
	be1.queue.ResumeDecisions(false) // the write fails; be1 runs on
	x.settled(t, id, "fe1")
	if o := be1.queue.Outcome(id); o.GivenTo != "fe1" {
		t.Fatalf("be1 recorded %+v, want given to fe1", o)
	}
}

// The origin crashes while it processes a message it kept (its rules
// running): back, it finds its decision and processes it again itself;
// the taker's late copy is dropped.
func TestTransferOriginCrashesWhileProcessingKept(t *testing.T) {
	x := newXferNet(t, time.Hour)
	be1, fe1 := x.node("be1", mail.ModeRemotely), x.node("fe1", mail.ModeLocallyForOthers)
	x.start(be1)
	x.start(fe1)
	be1.tr.SetTargets("fe1")
	var late *mail.Message
	var lateMu sync.Mutex
	be1.tr.Script(func(_ context.Context, _ actorstest.TransferCall, msg *mail.Message) error {
		lateMu.Lock()
		late = snapshot(msg)
		lateMu.Unlock()
		return actorstest.ErrUnclear // fe1 still reading it: it says it holds none
	})
	gate := be1.pipe.hold()
	id := submitAt(t, be1)
	wait.For(t, waitTimeout, func() bool { return be1.pipe.count(id) == 1 }, "be1 processes %s", id)
	x.crash(be1)
	close(gate)
	// The session fe1 was still reading ends now: it stores a copy.
	lateMu.Lock()
	if err := handOver(testCtx(t), fe1, "be1", late); err != nil {
		t.Fatal(err)
	}
	lateMu.Unlock()
	x.start(be1)
	x.settled(t, id, "be1")
	if n := be1.pipe.count(id); n != 2 {
		t.Fatalf("be1's rules ran %d times, want twice (the crash interrupted the first run)", n)
	}
}

// The origin lost its data (a new disk) while the taker held a copy: it
// has no record and no copy, so the taker's copy is the only one and goes
// on.
func TestTransferOriginLostItsDataTakerProcesses(t *testing.T) {
	x := newXferNet(t, time.Hour)
	be1, fe1 := x.node("be1", mail.ModeRemotely), x.node("fe1", mail.ModeLocallyForOthers)
	x.start(be1)
	x.start(fe1)
	be1.tr.SetTargets("fe1")
	x.setCut("be1", "fe1", true)
	x.stores(be1, nil)
	id := submitAt(t, be1)
	wait.For(t, waitTimeout, func() bool { return fe1.queue.Stored(id) && !be1.queue.Stored(id) }, "fe1 takes %s", id)
	x.crash(be1)
	be1.queue = actorstest.NewQueue() // its data is gone
	x.start(be1)
	x.setCut("be1", "fe1", false)
	x.settled(t, id, "fe1")
}

// After the taker said it holds no copy (the origin then keeps the
// message), the session it was still reading ends and stores one: that
// copy asks and is dropped. The origin's record is the fence.
func TestTransferLateStoreAfterNoIsDropped(t *testing.T) {
	x := newXferNet(t, time.Hour)
	be1, fe1 := x.node("be1", mail.ModeRemotely), x.node("fe1", mail.ModeLocallyForOthers)
	x.start(be1)
	x.start(fe1)
	be1.tr.SetTargets("fe1")
	var late *mail.Message
	var lateMu sync.Mutex
	be1.tr.Script(func(_ context.Context, _ actorstest.TransferCall, msg *mail.Message) error {
		lateMu.Lock()
		late = snapshot(msg)
		lateMu.Unlock()
		return actorstest.ErrUnclear
	})
	id := submitAt(t, be1)
	wait.For(t, waitTimeout, func() bool { return len(be1.relayer.CallsFor(id)) == 1 }, "be1 processes %s", id)
	lateMu.Lock()
	if err := handOver(testCtx(t), fe1, "be1", late); err != nil {
		t.Fatal(err)
	}
	lateMu.Unlock()
	x.settled(t, id, "be1")
}

// The first member refuses clearly but (its answer 451 after a slow
// store) holds a copy after all; the second takes the message. Whichever
// copy asks first gets it; the other is dropped.
func TestTransferRefusedThenSecondMemberOneCopyGoesOn(t *testing.T) {
	x := newXferNet(t, time.Hour)
	be1, fe1, fe2 := x.node("be1", mail.ModeRemotely), x.node("fe1", mail.ModeLocallyForOthers), x.node("fe2", mail.ModeLocallyForOthers)
	x.start(be1)
	x.start(fe1)
	x.start(fe2)
	be1.tr.SetTargets("fe1", "fe2")
	be1.tr.Script(func(ctx context.Context, c actorstest.TransferCall, msg *mail.Message) error {
		x.mu.Lock()
		taker := x.nodes[c.Member]
		x.mu.Unlock()
		if err := handOver(ctx, taker, "be1", msg); err != nil {
			return err
		}
		if c.Member == "fe1" {
			return actorstest.ErrRefused
		}
		return nil
	})
	id := submitAt(t, be1)
	x.settled(t, id, "")
	if got := len(be1.tr.Calls()); got != 2 && be1.queue.Outcome(id).GivenTo != "fe1" {
		t.Fatalf("be1 made %d transfers, want 2 (fe1, then fe2) unless fe1's question came first", got)
	}
}

// With no member to take it, the origin keeps the message (a record that
// says so) and processes it at once. A member that asks about a message
// the origin kept is told no, and one that asks about a message the
// origin never had gets unknown.
func TestTransferAnswers(t *testing.T) {
	x := newXferNet(t, time.Hour)
	be1 := x.node("be1", mail.ModeRemotely)
	s := x.start(be1)
	id := submitAt(t, be1)
	x.settled(t, id, "be1")
	if !be1.queue.Outcome(id).Kept {
		t.Fatalf("be1 recorded %+v, want kept", be1.queue.Outcome(id))
	}
	ctx := testCtx(t)
	if v, err := s.AnswerTransfer(ctx, TransferQuestion{Kind: AskMine, ID: id, From: "fe1"}); err != nil || v != VerdictNo {
		t.Fatalf("MINE about a kept message = %v, %v; want no", v, err)
	}
	if v, err := s.AnswerTransfer(ctx, TransferQuestion{Kind: AskMine, ID: "NEVERSEEN", From: "fe1"}); err != nil || v != VerdictUnknown {
		t.Fatalf("MINE about an unknown message = %v, %v; want unknown", v, err)
	}
	if v, err := s.AnswerTransfer(ctx, TransferQuestion{Kind: AskHold, ID: id, From: "fe1"}); err != nil || v != VerdictNo {
		t.Fatalf("HOLD about a message be1 does not hold from fe1 = %v, %v; want no", v, err)
	}
}
