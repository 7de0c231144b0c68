package actorstest

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"sync"
	"testing"

	"github.com/homing-mail/homing/mail"
	"github.com/homing-mail/homing/storage"
)

// OpKind names a write to a Queue.
type OpKind string

// The writes a Queue records.
const (
	OpPut    OpKind = "put"
	OpUpdate OpKind = "update"
	OpDelete OpKind = "delete"
	// OpGive and OpKeep record a transfer decision (GiveTransfer also
	// deletes the message).
	OpGive OpKind = "give"
	OpKeep OpKind = "keep"
)

// Op is one write to a Queue, with a copy of the envelope (Put, Update)
// and the body (Put) written.
type Op struct {
	Kind OpKind
	ID   string
	Env  *mail.Envelope
	Body []byte
}

// Queue is a queue store in memory, an actors.QueueStore that records
// every write in order (Ops). Writes take effect at once: Put and
// PutTransfer return when the message is stored, Update and Delete with a
// channel that already holds nil. It keeps copies, so a caller may change
// what it passed in afterwards. Envelope and Body of an id not stored
// fail with an error wrapping mail.ErrNotFound.
type Queue struct {
	mu          sync.Mutex
	envs        map[string]*mail.Envelope
	bodies      map[string][]byte
	log         []Op
	eachHook    func()
	transferred map[string]bool
	outcomes    map[string]storage.TransferOutcome
	paused      bool // PauseDecisions
	pending     []pendingDecision
	fail        failures
	changed     signal
}

// NewQueue returns an empty queue.
func NewQueue() *Queue {
	return &Queue{envs: map[string]*mail.Envelope{}, bodies: map[string][]byte{}, transferred: map[string]bool{},
		outcomes: map[string]storage.TransferOutcome{}}
}

// FailPuts makes the next n Put (or PutTransfer) calls fail with err,
// storing nothing.
func (q *Queue) FailPuts(n int, err error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.fail.failNext(n, err)
}

// SetEachHook sets a function that runs at the start of every Each, before
// it reads anything, outside the fake's lock: it may block (a recovery a
// test holds up). Nil removes it.
func (q *Queue) SetEachHook(h func()) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.eachHook = h
}

// Seed stores a message without recording a write: what a previous run of
// the node left behind.
func (q *Queue) Seed(env *mail.Envelope, body []byte) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.envs[env.ID] = env.Clone()
	q.bodies[env.ID] = slices.Clone(body)
}

// Put implements QueueStore.
func (q *Queue) Put(_ context.Context, msg *mail.Message) error {
	body, err := mail.ReadBody(msg.Body)
	if err != nil {
		return err
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if err := q.fail.take(); err != nil {
		return err
	}
	q.putLocked(msg.Envelope, body)
	return nil
}

func (q *Queue) putLocked(env *mail.Envelope, body []byte) {
	defer q.changed.broadcast()
	q.envs[env.ID] = env.Clone()
	q.bodies[env.ID] = slices.Clone(body)
	q.log = append(q.log, Op{Kind: OpPut, ID: env.ID, Env: env.Clone(), Body: slices.Clone(body)})
}

// PutTransfer implements QueueStore: an id handed over before is a
// duplicate and stores nothing.
func (q *Queue) PutTransfer(_ context.Context, msg *mail.Message) (bool, error) {
	body, err := mail.ReadBody(msg.Body)
	if err != nil {
		return false, err
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if err := q.fail.take(); err != nil {
		return false, err
	}
	if q.transferred[msg.Envelope.ID] {
		return true, nil
	}
	q.transferred[msg.Envelope.ID] = true
	q.putLocked(msg.Envelope, body)
	return false, nil
}

// Update implements QueueStore.
func (q *Queue) Update(env *mail.Envelope) <-chan error {
	q.mu.Lock()
	defer q.mu.Unlock()
	defer q.changed.broadcast()
	q.envs[env.ID] = env.Clone()
	q.log = append(q.log, Op{Kind: OpUpdate, ID: env.ID, Env: env.Clone()})
	return resolved(nil)
}

// Delete implements QueueStore.
func (q *Queue) Delete(id string) <-chan error {
	q.mu.Lock()
	defer q.mu.Unlock()
	defer q.changed.broadcast()
	delete(q.envs, id)
	delete(q.bodies, id)
	q.log = append(q.log, Op{Kind: OpDelete, ID: id})
	return resolved(nil)
}

// pendingDecision is a GiveTransfer or KeepTransfer held by
// PauseDecisions.
type pendingDecision struct {
	apply func()
	ch    chan error
}

// GiveTransfer implements QueueStore: it records the decision and deletes
// the message, at once (unless PauseDecisions holds it).
func (q *Queue) GiveTransfer(id, member string) <-chan error {
	return q.decide(func() {
		q.outcomes[id] = storage.TransferOutcome{GivenTo: member}
		delete(q.envs, id)
		delete(q.bodies, id)
		q.log = append(q.log, Op{Kind: OpGive, ID: id})
	})
}

// KeepTransfer implements QueueStore.
func (q *Queue) KeepTransfer(id string) <-chan error {
	return q.decide(func() {
		q.outcomes[id] = storage.TransferOutcome{Kept: true}
		q.log = append(q.log, Op{Kind: OpKeep, ID: id})
	})
}

func (q *Queue) decide(apply func()) <-chan error {
	q.mu.Lock()
	defer q.mu.Unlock()
	defer q.changed.broadcast()
	if q.paused {
		ch := make(chan error, 1)
		q.pending = append(q.pending, pendingDecision{apply: apply, ch: ch})
		return ch
	}
	apply()
	return resolved(nil)
}

// PauseDecisions holds every later GiveTransfer and KeepTransfer: nothing
// is written and their channels stay empty until ResumeDecisions.
func (q *Queue) PauseDecisions() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.paused = true
}

// PendingDecisions is the number of decisions PauseDecisions holds.
func (q *Queue) PendingDecisions() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.pending)
}

// ResumeDecisions ends the pause. With apply the decisions held are
// written now, in order, and their channels get nil; without (the node
// crashed before they were durable) they are dropped and their channels
// get an error.
func (q *Queue) ResumeDecisions(apply bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	defer q.changed.broadcast()
	q.paused = false
	for _, p := range q.pending {
		if apply {
			p.apply()
			p.ch <- nil
		} else {
			p.ch <- fmt.Errorf("fake queue: the node crashed before the decision was durable")
		}
	}
	q.pending = nil
}

// Outcome is the transfer decision recorded for id.
func (q *Queue) Outcome(id string) storage.TransferOutcome {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.outcomes[id]
}

// TransferOutcome implements QueueStore.
func (q *Queue) TransferOutcome(id string) (storage.TransferOutcome, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.outcomes[id], nil
}

// Stored reports whether id is in the queue now.
func (q *Queue) Stored(id string) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	_, ok := q.envs[id]
	return ok
}

// Envelope implements QueueStore.
func (q *Queue) Envelope(id string) (*mail.Envelope, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	env, ok := q.envs[id]
	if !ok {
		return nil, fmt.Errorf("fake queue %s: %w", id, mail.ErrNotFound)
	}
	return env.Clone(), nil
}

// Body implements QueueStore.
func (q *Queue) Body(id string) (mail.Body, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	b, ok := q.bodies[id]
	if !ok {
		return nil, fmt.Errorf("fake queue body %s: %w", id, mail.ErrNotFound)
	}
	return mail.BytesBody(slices.Clone(b)), nil
}

// Each implements QueueStore, in id order, on copies taken when it starts
// (after the hook).
func (q *Queue) Each(fn func(*mail.Envelope) error) error {
	q.mu.Lock()
	hook := q.eachHook
	q.mu.Unlock()
	if hook != nil {
		hook()
	}
	q.mu.Lock()
	ids := make([]string, 0, len(q.envs))
	for id := range q.envs {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	envs := make([]*mail.Envelope, len(ids))
	for i, id := range ids {
		envs[i] = q.envs[id].Clone()
	}
	q.mu.Unlock()
	for _, env := range envs {
		if err := fn(env); err != nil {
			return err
		}
	}
	return nil
}

// Ops returns a copy of the write log, oldest first.
func (q *Queue) Ops() []Op {
	q.mu.Lock()
	defer q.mu.Unlock()
	return slices.Clone(q.log)
}

// OpIndex is the position in Ops of the first write of kind to id, or -1.
func (q *Queue) OpIndex(kind OpKind, id string) int {
	for i, op := range q.Ops() {
		if op.Kind == kind && op.ID == id {
			return i
		}
	}
	return -1
}

// Count is the number of writes of kind to id.
func (q *Queue) Count(kind OpKind, id string) int {
	n := 0
	for _, op := range q.Ops() {
		if op.Kind == kind && op.ID == id {
			n++
		}
	}
	return n
}

// Deleted reports whether id was ever deleted.
func (q *Queue) Deleted(id string) bool { return q.OpIndex(OpDelete, id) >= 0 }

// FirstPut returns the first Put (or stored PutTransfer) of id, or nil.
func (q *Queue) FirstPut(id string) *Op {
	if i := q.OpIndex(OpPut, id); i >= 0 {
		return &q.Ops()[i]
	}
	return nil
}

// Updates returns the envelopes written by Update for id, in order.
func (q *Queue) Updates(id string) []*mail.Envelope {
	var out []*mail.Envelope
	for _, op := range q.Ops() {
		if op.Kind == OpUpdate && op.ID == id {
			out = append(out, op.Env)
		}
	}
	return out
}

// Wait returns once cond holds, checking it after every write, and fails
// t if it does not hold within WaitTimeout.
func (q *Queue) Wait(t testing.TB, cond func() bool, format string, args ...any) {
	t.Helper()
	await(t, &q.changed, cond, format, args...)
}

// WaitDeleted waits until id is deleted (the message left the queue).
func (q *Queue) WaitDeleted(t testing.TB, id string) {
	t.Helper()
	q.Wait(t, func() bool { return q.Deleted(id) }, "message %s leaves the queue", id)
}

// WaitPut waits until id is put and returns its first Put.
func (q *Queue) WaitPut(t testing.TB, id string) *Op {
	t.Helper()
	q.Wait(t, func() bool { return q.FirstPut(id) != nil }, "message %s is queued", id)
	return q.FirstPut(id)
}

// WaitUpdate waits for an Update of id that satisfies cond (what says
// which, for the failure message) and returns the first such envelope.
func (q *Queue) WaitUpdate(t testing.TB, id, what string, cond func(*mail.Envelope) bool) *mail.Envelope {
	t.Helper()
	var found *mail.Envelope
	q.Wait(t, func() bool {
		for _, env := range q.Updates(id) {
			if cond(env) {
				found = env
				return true
			}
		}
		return false
	}, "an update of %s where %s", id, what)
	return found
}
