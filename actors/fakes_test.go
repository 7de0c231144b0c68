package actors

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/homing-mail/homing/mail"
	"github.com/homing-mail/homing/storage"
)

// ---------------------------------------------------------------------------
// fakePartition: an in-memory PartitionData.

// fakePartition is an account partition in memory. It fails Append on
// demand (failAppend), lets a test stop an Append half-way (appendHook) and
// records how many Appends run at once per account, so a test can tell
// whether two account actors wrote one mailbox concurrently.
type fakePartition struct {
	id int

	mu         sync.Mutex
	accounts   map[string]storage.Account
	aliases    map[string]string
	boxes      map[string][]fakeMessage
	dedup      map[string]string // account + "\n" + dedup key -> id
	nextID     int
	appendErrs []error // the next Append calls fail with these, in order
	calls      int     // Append calls
	inAppend   map[string]int
	maxAppend  map[string]int
	closed     int
	// appendHook, when set, runs inside every Append after it has been
	// counted and before it stores anything; it may block.
	appendHook func(account string, req storage.AppendRequest)
	replied    map[string]bool // AutoReplied records
}

// fakeMessage is one stored message.
type fakeMessage struct {
	ID       string
	DedupKey string
	Raw      []byte
	Received time.Time
}

func newFakePartition(id int, accounts ...storage.Account) *fakePartition {
	p := &fakePartition{
		id:        id,
		accounts:  map[string]storage.Account{},
		aliases:   map[string]string{},
		boxes:     map[string][]fakeMessage{},
		dedup:     map[string]string{},
		inAppend:  map[string]int{},
		maxAppend: map[string]int{},
	}
	for _, a := range accounts {
		p.accounts[strings.ToLower(a.Address)] = a
	}
	return p
}

// failAppend makes the next n Appends fail with err.
func (p *fakePartition) failAppend(n int, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for range n {
		p.appendErrs = append(p.appendErrs, err)
	}
}

func (p *fakePartition) setAppendHook(h func(account string, req storage.AppendRequest)) {
	p.mu.Lock()
	p.appendHook = h
	p.mu.Unlock()
}

// messages returns a copy of account's stored messages.
func (p *fakePartition) messages(account string) []fakeMessage {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]fakeMessage(nil), p.boxes[account]...)
}

func (p *fakePartition) appendCalls() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.calls
}

// maxConcurrentAppends is the most Appends to account that ever ran at once.
func (p *fakePartition) maxConcurrentAppends(account string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.maxAppend[account]
}

func (p *fakePartition) ID() int { return p.id }

func (p *fakePartition) Close() error {
	p.mu.Lock()
	p.closed++
	p.mu.Unlock()
	return nil
}

func (p *fakePartition) CreateAccount(_ context.Context, a storage.Account) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	addr := strings.ToLower(a.Address)
	if _, ok := p.accounts[addr]; ok {
		return fmt.Errorf("fake: %s: %w", addr, mail.ErrExists)
	}
	if _, ok := p.aliases[addr]; ok {
		return fmt.Errorf("fake: %s: %w", addr, mail.ErrExists)
	}
	a.Address = addr
	p.accounts[addr] = a
	return nil
}

func (p *fakePartition) UpdateAccount(_ context.Context, a storage.Account) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	addr := strings.ToLower(a.Address)
	if _, ok := p.accounts[addr]; !ok {
		return fmt.Errorf("fake: account %s: %w", addr, mail.ErrNotFound)
	}
	a.Address = addr
	p.accounts[addr] = a
	return nil
}

func (p *fakePartition) AutoReplied(_ context.Context, account, sender string, _ time.Duration) (bool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.replied == nil {
		p.replied = map[string]bool{}
	}
	k := strings.ToLower(account) + "\n" + strings.ToLower(sender)
	already := p.replied[k]
	p.replied[k] = true
	return already, nil
}

func (p *fakePartition) Account(addr string) (storage.Account, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	a, ok := p.accounts[strings.ToLower(addr)]
	if !ok {
		return storage.Account{}, fmt.Errorf("fake: account %s: %w", addr, mail.ErrNotFound)
	}
	return a, nil
}

func (p *fakePartition) DeleteAccount(_ context.Context, addr string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	addr = strings.ToLower(addr)
	if _, ok := p.accounts[addr]; !ok {
		return fmt.Errorf("fake: account %s: %w", addr, mail.ErrNotFound)
	}
	delete(p.accounts, addr)
	delete(p.boxes, addr)
	return nil
}

func (p *fakePartition) Accounts() ([]storage.Account, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]storage.Account, 0, len(p.accounts))
	for _, a := range p.accounts {
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Address < out[j].Address })
	return out, nil
}

func (p *fakePartition) SetAlias(_ context.Context, alias, account string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.aliases[strings.ToLower(alias)] = strings.ToLower(account)
	return nil
}

func (p *fakePartition) DeleteAlias(_ context.Context, alias string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.aliases, strings.ToLower(alias))
	return nil
}

func (p *fakePartition) Resolve(addr string) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	addr = strings.ToLower(addr)
	if _, ok := p.accounts[addr]; ok {
		return addr, nil
	}
	if a, ok := p.aliases[addr]; ok {
		return a, nil
	}
	return "", fmt.Errorf("fake: %s: %w", addr, mail.ErrNoSuchUser)
}

func (p *fakePartition) Append(_ context.Context, account string, req storage.AppendRequest) (storage.AppendResult, error) {
	account = strings.ToLower(account)
	p.mu.Lock()
	p.calls++
	p.inAppend[account]++
	if p.inAppend[account] > p.maxAppend[account] {
		p.maxAppend[account] = p.inAppend[account]
	}
	var injected error
	if len(p.appendErrs) > 0 {
		injected = p.appendErrs[0]
		p.appendErrs = p.appendErrs[1:]
	}
	hook := p.appendHook
	p.mu.Unlock()

	if hook != nil {
		hook(account, req)
	}

	p.mu.Lock()
	defer p.mu.Unlock()
	p.inAppend[account]--
	if injected != nil {
		return storage.AppendResult{}, injected
	}
	if _, ok := p.accounts[account]; !ok {
		return storage.AppendResult{}, fmt.Errorf("fake: account %s: %w", account, mail.ErrNotFound)
	}
	if req.DedupKey != "" {
		if id, ok := p.dedup[account+"\n"+req.DedupKey]; ok {
			return storage.AppendResult{ID: id, Duplicate: true}, nil
		}
	}
	if req.QuotaBytes > 0 {
		var used int64
		for _, m := range p.boxes[account] {
			used += int64(len(m.Raw))
		}
		if used+int64(len(req.Raw)) > req.QuotaBytes {
			return storage.AppendResult{}, fmt.Errorf("fake: %s: %w", account, storage.ErrOverQuota)
		}
	}
	p.nextID++
	id := strconv.Itoa(p.nextID)
	p.boxes[account] = append(p.boxes[account], fakeMessage{
		ID: id, DedupKey: req.DedupKey, Raw: append([]byte(nil), req.Raw...), Received: req.Received,
	})
	if req.DedupKey != "" {
		p.dedup[account+"\n"+req.DedupKey] = id
	}
	return storage.AppendResult{ID: id}, nil
}

func (p *fakePartition) AppendAsync(ctx context.Context, account string, req storage.AppendRequest) (storage.AppendResult, <-chan error, error) {
	res, err := p.Append(ctx, account, req)
	return res, nil, err
}

func (p *fakePartition) Messages(account, folder string) ([]storage.MessageInfo, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	account = strings.ToLower(account)
	if _, ok := p.accounts[account]; !ok {
		return nil, fmt.Errorf("fake: account %s: %w", account, mail.ErrNotFound)
	}
	var out []storage.MessageInfo
	for _, m := range p.boxes[account] {
		out = append(out, storage.MessageInfo{ID: m.ID, Folder: storage.Inbox, Size: int64(len(m.Raw)), Received: m.Received})
	}
	return out, nil
}

func (p *fakePartition) Raw(account, id string) ([]byte, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, m := range p.boxes[strings.ToLower(account)] {
		if m.ID == id {
			return append([]byte(nil), m.Raw...), nil
		}
	}
	return nil, fmt.Errorf("fake: message %s/%s: %w", account, id, mail.ErrNotFound)
}

func (p *fakePartition) Usage(account string) (int64, int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	account = strings.ToLower(account)
	if _, ok := p.accounts[account]; !ok {
		return 0, 0, fmt.Errorf("fake: account %s: %w", account, mail.ErrNotFound)
	}
	var n int64
	for _, m := range p.boxes[account] {
		n += int64(len(m.Raw))
	}
	return n, len(p.boxes[account]), nil
}

// ---------------------------------------------------------------------------
// fakeQueue: an in-memory QueueStore that records its writes in order.

type queueOpKind string

const (
	opPut    queueOpKind = "put"
	opUpdate queueOpKind = "update"
	opDelete queueOpKind = "delete"
)

// queueOp is one write, with a copy of the envelope written (Put, Update).
type queueOp struct {
	kind queueOpKind
	id   string
	env  *mail.Envelope
	body []byte
}

// fakeQueue is a QueueStore in memory. Writes take effect at once; Update
// and Delete return an already resolved channel.
type fakeQueue struct {
	mu     sync.Mutex
	envs   map[string]*mail.Envelope
	bodies map[string][]byte
	log    []queueOp
	// eachHook, when set, runs at the start of Each (before it reads
	// anything); it may block.
	eachHook func()
	// transferred: ids stored by PutTransfer.
	transferred map[string]bool
}

func newFakeQueue() *fakeQueue {
	return &fakeQueue{envs: map[string]*mail.Envelope{}, bodies: map[string][]byte{}}
}

func resolved(err error) <-chan error {
	ch := make(chan error, 1)
	ch <- err
	return ch
}

func (q *fakeQueue) Put(_ context.Context, env *mail.Envelope, body []byte) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.envs[env.ID] = env.Clone()
	q.bodies[env.ID] = append([]byte(nil), body...)
	q.log = append(q.log, queueOp{kind: opPut, id: env.ID, env: env.Clone(), body: append([]byte(nil), body...)})
	return nil
}

func (q *fakeQueue) PutTransfer(ctx context.Context, env *mail.Envelope, body []byte) (bool, error) {
	q.mu.Lock()
	if q.transferred == nil {
		q.transferred = map[string]bool{}
	}
	if q.transferred[env.ID] {
		q.mu.Unlock()
		return true, nil
	}
	q.transferred[env.ID] = true
	q.mu.Unlock()
	return false, q.Put(ctx, env, body)
}

func (q *fakeQueue) Update(env *mail.Envelope) <-chan error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.envs[env.ID] = env.Clone()
	q.log = append(q.log, queueOp{kind: opUpdate, id: env.ID, env: env.Clone()})
	return resolved(nil)
}

func (q *fakeQueue) Delete(id string) <-chan error {
	q.mu.Lock()
	defer q.mu.Unlock()
	delete(q.envs, id)
	delete(q.bodies, id)
	q.log = append(q.log, queueOp{kind: opDelete, id: id})
	return resolved(nil)
}

func (q *fakeQueue) Envelope(id string) (*mail.Envelope, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	env, ok := q.envs[id]
	if !ok {
		return nil, fmt.Errorf("fake queue %s: %w", id, mail.ErrNotFound)
	}
	return env.Clone(), nil
}

func (q *fakeQueue) Body(id string) ([]byte, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	b, ok := q.bodies[id]
	if !ok {
		return nil, fmt.Errorf("fake queue body %s: %w", id, mail.ErrNotFound)
	}
	return append([]byte(nil), b...), nil
}

func (q *fakeQueue) Each(fn func(*mail.Envelope) error) error {
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

// seed stores a message without recording a write (what a previous run
// of the node left behind).
func (q *fakeQueue) seed(env *mail.Envelope, body []byte) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.envs[env.ID] = env.Clone()
	q.bodies[env.ID] = append([]byte(nil), body...)
}

// ops returns a copy of the write log.
func (q *fakeQueue) ops() []queueOp {
	q.mu.Lock()
	defer q.mu.Unlock()
	return append([]queueOp(nil), q.log...)
}

// opIndex is the position of the first write of kind to id, or -1.
func (q *fakeQueue) opIndex(kind queueOpKind, id string) int {
	for i, op := range q.ops() {
		if op.kind == kind && op.id == id {
			return i
		}
	}
	return -1
}

func (q *fakeQueue) deleted(id string) bool { return q.opIndex(opDelete, id) >= 0 }

// put returns the first Put of id, or nil.
func (q *fakeQueue) put(id string) *queueOp {
	for _, op := range q.ops() {
		if op.kind == opPut && op.id == id {
			return &op
		}
	}
	return nil
}

// updates returns the envelopes written by Update for id, in order.
func (q *fakeQueue) updates(id string) []*mail.Envelope {
	var out []*mail.Envelope
	for _, op := range q.ops() {
		if op.kind == opUpdate && op.id == id {
			out = append(out, op.env)
		}
	}
	return out
}

// waitDeleted waits until the queue deleted id.
func (q *fakeQueue) waitDeleted(t testing.TB, id string) {
	t.Helper()
	eventually(t, func() bool { return q.deleted(id) }, "message %s leaves the queue", id)
}

// waitUpdate waits for an Update of id that satisfies cond and returns it.
func (q *fakeQueue) waitUpdate(t testing.TB, id, what string, cond func(*mail.Envelope) bool) *mail.Envelope {
	t.Helper()
	var found *mail.Envelope
	eventually(t, func() bool {
		for _, env := range q.updates(id) {
			if cond(env) {
				found = env
				return true
			}
		}
		return false
	}, "an update of %s where %s", id, what)
	return found
}

// ---------------------------------------------------------------------------
// fakeRelayer: scripted results, recorded calls, gates per domain.

// relayCall is one Send, as the relayer saw it.
type relayCall struct {
	env    *mail.Envelope
	domain string
	rcpts  []string
	body   []byte
}

// fakeRelayer answers Send with scripted results (all delivered unless a
// script says otherwise), records every call and how many ran at once, and
// makes calls to a blocked domain wait until the test lets them through.
type fakeRelayer struct {
	mu sync.Mutex
	// script returns the results of one call; n is how many calls for
	// the same message id came before. Nil: every recipient delivered.
	script      func(c relayCall, n int) []mail.Result
	calls       []relayCall
	gates       map[string]chan struct{}
	inflight    map[string]int
	maxInflight map[string]int
	total       int
	maxTotal    int
}

func newFakeRelayer() *fakeRelayer {
	return &fakeRelayer{gates: map[string]chan struct{}{}, inflight: map[string]int{}, maxInflight: map[string]int{}}
}

func (r *fakeRelayer) setScript(f func(c relayCall, n int) []mail.Result) {
	r.mu.Lock()
	r.script = f
	r.mu.Unlock()
}

// block makes calls for domain wait until a value is sent on the returned
// channel (one call per value) or it is closed (all calls).
func (r *fakeRelayer) block(domain string) chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	g := make(chan struct{})
	r.gates[domain] = g
	return g
}

// anyDomain, given to block, blocks the calls to every domain that has no
// gate of its own.
const anyDomain = "*"

func (r *fakeRelayer) Send(ctx context.Context, env *mail.Envelope, rcpts []*mail.Recipient, body []byte) []mail.Result {
	c := relayCall{env: env.Clone(), body: append([]byte(nil), body...)}
	for _, rc := range rcpts {
		c.rcpts = append(c.rcpts, rc.Addr)
	}
	if len(rcpts) > 0 {
		c.domain = mail.Domain(rcpts[0].Addr)
	}
	r.mu.Lock()
	n := 0
	for _, old := range r.calls {
		if old.env.ID == env.ID {
			n++
		}
	}
	r.calls = append(r.calls, c)
	r.inflight[c.domain]++
	r.maxInflight[c.domain] = max(r.maxInflight[c.domain], r.inflight[c.domain])
	r.total++
	r.maxTotal = max(r.maxTotal, r.total)
	gate, script := r.gates[c.domain], r.script
	if gate == nil {
		gate = r.gates[anyDomain]
	}
	r.mu.Unlock()

	defer func() {
		r.mu.Lock()
		r.inflight[c.domain]--
		r.total--
		r.mu.Unlock()
	}()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			out := make([]mail.Result, len(rcpts))
			for i := range out {
				out[i] = mail.Temp("4.4.2", "relay cancelled")
			}
			return out
		}
	}
	if script != nil {
		return script(c, n)
	}
	out := make([]mail.Result, len(rcpts))
	for i := range out {
		out[i] = mail.Result{Code: 250, Status: "2.0.0", Text: "ok", RemoteMTA: "mx." + c.domain}
	}
	return out
}

func (r *fakeRelayer) callCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.calls)
}

// callsFor returns the calls for message id, in order.
func (r *fakeRelayer) callsFor(id string) []relayCall {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []relayCall
	for _, c := range r.calls {
		if c.env.ID == id {
			out = append(out, c)
		}
	}
	return out
}

// callsTo returns the calls to domain, in order.
func (r *fakeRelayer) callsTo(domain string) []relayCall {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []relayCall
	for _, c := range r.calls {
		if c.domain == domain {
			out = append(out, c)
		}
	}
	return out
}

func (r *fakeRelayer) inflightTo(domain string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.inflight[domain]
}

func (r *fakeRelayer) maxInflightTo(domain string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.maxInflight[domain]
}

func (r *fakeRelayer) maxInflightTotal() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.maxTotal
}

func (r *fakeRelayer) inflightTotal() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.total
}

// release lets exactly one blocked call of gate through, failing the test
// if none is waiting within waitTimeout.
func release(t testing.TB, gate chan<- struct{}, what string) {
	t.Helper()
	timer := time.NewTimer(waitTimeout)
	defer timer.Stop()
	select {
	case gate <- struct{}{}:
	case <-timer.C:
		t.Fatalf("not within %v: a blocked relay call to release (%s)", waitTimeout, what)
	}
}

// results builds one result per recipient of c with f.
func results(c relayCall, f func(rcpt string) mail.Result) []mail.Result {
	out := make([]mail.Result, len(c.rcpts))
	for i, a := range c.rcpts {
		out[i] = f(a)
	}
	return out
}

// ---------------------------------------------------------------------------
// placement fakes.

// switchPlacement has no owner for any partition until set is called.
type switchPlacement struct {
	mu  sync.Mutex
	pid *actor.PID
}

func (p *switchPlacement) set(pid *actor.PID) {
	p.mu.Lock()
	p.pid = pid
	p.mu.Unlock()
}

func (p *switchPlacement) PartitionPID(partition int) (*actor.PID, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.pid == nil {
		return nil, fmt.Errorf("%w: partition %d has no owner", ErrUnavailable, partition)
	}
	return p.pid, nil
}
