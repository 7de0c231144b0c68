package actorstest

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/homing-mail/homing/mail"
	"github.com/homing-mail/homing/storage"
)

// Partition is an account partition in memory: an actors.PartitionData
// that keeps the contract of *storage.Partition where the actors depend on
// it:
//
//   - Append (and AppendAsync) is idempotent on the DedupKey: a key seen
//     before returns Duplicate with the first append's ID ("" for a
//     Discard) and the work still pending for it, and writes nothing; the
//     quota (QuotaBytes of the request) is checked after that lookup, so
//     a repeated delivery is a duplicate, never "full";
//   - Discard writes the dedup record (with Pending and AutoReplied) and
//     no message; Pending is returned by every duplicate until
//     DonePending; AutoReplied marks are what HasAutoReplied answers
//     (their TTL is required, but the fake never expires them);
//   - a refused append (unknown account, invalid request, over quota,
//     an injected failure) writes nothing at all;
//   - AppendAsync reports a new write durable at once (a resolved
//     channel) and a duplicate or refusal with a nil channel.
//
// Addresses are compared in lower case. Folders are kept as given ("" is
// storage.Inbox). It records every Append call and how many ran at once per
// account, so that a test can tell whether two writers touched one mailbox;
// SetAppendHook lets a test stop an Append half-way.
type Partition struct {
	id int

	mu       sync.Mutex
	accounts map[string]storage.Account
	aliases  map[string]string
	boxes    map[string][]Message
	dedup    map[string]*dedupRecord // account + "\n" + dedup key
	replied  map[string]bool         // account + "\n" + sender
	nextID   int
	fail     failures
	calls    int
	inAppend map[string]int
	maxIn    map[string]int
	closed   int
	hook     func(account string, req storage.AppendRequest)
	changed  signal
	failedC  chan struct{} // nil until Failed is first asked for
	failErr  error
	epoch    uint64
	syncs    chan struct{} // non-nil while HoldSyncs holds AppendAsync's durability
}

type dedupRecord struct {
	id      string
	pending []string
}

// Message is one message stored in a Partition.
type Message struct {
	ID       string
	Folder   string
	DedupKey string
	Raw      []byte
	Received time.Time
	Flags    []string
}

// NewPartition returns partition id holding accounts (and nothing else).
func NewPartition(id int, accounts ...storage.Account) *Partition {
	p := &Partition{
		id:       id,
		accounts: map[string]storage.Account{},
		aliases:  map[string]string{},
		boxes:    map[string][]Message{},
		dedup:    map[string]*dedupRecord{},
		replied:  map[string]bool{},
		inAppend: map[string]int{},
		maxIn:    map[string]int{},
	}
	for _, a := range accounts {
		a.Address = strings.ToLower(a.Address)
		p.accounts[a.Address] = a
	}
	return p
}

// FailAppends makes the next n Append calls fail with err (before the
// append hook returns, nothing written). It adds to failures already
// asked for.
func (p *Partition) FailAppends(n int, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.fail.failNext(n, err)
}

// FailAppendAfter lets the next n successful Appends through and fails
// every later one with err, until FailAppendAfter(-1, nil) or Heal.
// Failures asked for with FailAppends come first.
func (p *Partition) FailAppendAfter(n int, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.fail.failAfter(n, err)
}

// Heal cancels every injected failure.
func (p *Partition) Heal() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.fail.heal()
}

// SetAppendHook sets a function that runs inside every Append (and
// AppendAsync) after the call is counted and before anything is stored,
// outside the fake's lock: it may block, and other calls go on meanwhile.
// Nil removes it.
func (p *Partition) SetAppendHook(h func(account string, req storage.AppendRequest)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.hook = h
}

// Stored returns a copy of account's stored messages, in the order they
// were stored. (Messages is the PartitionData method.)
func (p *Partition) Stored(account string) []Message {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []Message
	for _, m := range p.boxes[strings.ToLower(account)] {
		m.Raw = slices.Clone(m.Raw)
		m.Flags = slices.Clone(m.Flags)
		out = append(out, m)
	}
	return out
}

// AddMessage stores raw in account's inbox as if it had been delivered
// before (no dedup record, no quota check) and returns its id.
func (p *Partition) AddMessage(account string, raw []byte) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	defer p.changed.broadcast()
	account = strings.ToLower(account)
	p.nextID++
	id := strconv.Itoa(p.nextID)
	p.boxes[account] = append(p.boxes[account], Message{ID: id, Folder: storage.Inbox, Raw: slices.Clone(raw), Received: time.Now()})
	return id
}

// DeleteMessage removes a stored message (as its owner's mail client
// would), making room under the quota. The dedup record of its delivery
// stays.
func (p *Partition) DeleteMessage(account, id string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	defer p.changed.broadcast()
	account = strings.ToLower(account)
	box := p.boxes[account]
	for i, m := range box {
		if m.ID == id {
			p.boxes[account] = slices.Delete(box, i, i+1)
			return nil
		}
	}
	return fmt.Errorf("fake: message %s/%s: %w", account, id, mail.ErrNotFound)
}

// Pending returns the work recorded with the append of dedupKey and not
// cleared yet (nil when none).
func (p *Partition) Pending(account, dedupKey string) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if d := p.dedup[strings.ToLower(account)+"\n"+dedupKey]; d != nil {
		return slices.Clone(d.pending)
	}
	return nil
}

// Deduped reports whether an append with dedupKey was committed for
// account (stored, or discarded with only its dedup record).
func (p *Partition) Deduped(account, dedupKey string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.dedup[strings.ToLower(account)+"\n"+dedupKey] != nil
}

// AppendCalls is the number of Append and AppendAsync calls so far,
// failed ones included.
func (p *Partition) AppendCalls() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.calls
}

// MaxConcurrentAppends is the most Appends to account that ever ran at
// once.
func (p *Partition) MaxConcurrentAppends(account string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.maxIn[strings.ToLower(account)]
}

// Closed is how many times Close was called.
func (p *Partition) Closed() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closed
}

// ID implements PartitionData.
func (p *Partition) ID() int { return p.id }

// Fail makes the partition fail as a storage DB does after a failed sync
// or a newer epoch: Failed is closed, Err returns err and every Append
// fails with it (nothing written) until Recover.
func (p *Partition) Fail(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.failErr != nil {
		return
	}
	p.failErr = err
	p.fail.failAfter(0, err)
	if p.failedC == nil {
		p.failedC = make(chan struct{})
	}
	close(p.failedC)
}

// Recover ends a failure from Fail, as a reopened DB would: a new Failed
// channel, Err nil, appends succeed, and the next open's Epoch is higher.
func (p *Partition) Recover() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.failErr, p.failedC = nil, make(chan struct{})
	p.fail.heal()
	p.epoch++
}

// Failed implements PartitionData.
func (p *Partition) Failed() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.failedC == nil {
		p.failedC = make(chan struct{})
	}
	return p.failedC
}

// Err implements PartitionData.
func (p *Partition) Err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.failErr
}

// Epoch implements PartitionData: the number of times Recover was called,
// plus one.
func (p *Partition) Epoch() uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.epoch + 1
}

// Close implements PartitionData; it only counts the call (the data stays
// readable, so a test can look at it after the System stopped).
func (p *Partition) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed++
	return nil
}

// CreateAccount implements PartitionData.
func (p *Partition) CreateAccount(_ context.Context, a storage.Account) error {
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

// Account implements PartitionData.
func (p *Partition) Account(addr string) (storage.Account, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	a, ok := p.accounts[strings.ToLower(addr)]
	if !ok {
		return storage.Account{}, fmt.Errorf("fake: account %s: %w", addr, mail.ErrNotFound)
	}
	return a, nil
}

// UpdateAccount implements PartitionData.
func (p *Partition) UpdateAccount(_ context.Context, a storage.Account) error {
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

// DeleteAccount implements PartitionData: the account and its mailbox go.
func (p *Partition) DeleteAccount(_ context.Context, addr string) error {
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

// Accounts implements PartitionData, in address order.
func (p *Partition) Accounts() ([]storage.Account, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]storage.Account, 0, len(p.accounts))
	for _, a := range p.accounts {
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Address < out[j].Address })
	return out, nil
}

// SetAlias implements PartitionData.
func (p *Partition) SetAlias(_ context.Context, alias, account string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.aliases[strings.ToLower(alias)] = strings.ToLower(account)
	return nil
}

// DeleteAlias implements PartitionData.
func (p *Partition) DeleteAlias(_ context.Context, alias string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.aliases, strings.ToLower(alias))
	return nil
}

// Resolve implements PartitionData: an account is itself, an alias its
// account, anything else mail.ErrNoSuchUser.
func (p *Partition) Resolve(addr string) (string, error) {
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

// Append is storage.Partition.Append: see the type's contract.
func (p *Partition) Append(_ context.Context, account string, req storage.AppendRequest) (storage.AppendResult, error) {
	account = strings.ToLower(account)
	p.mu.Lock()
	p.calls++
	p.inAppend[account]++
	p.maxIn[account] = max(p.maxIn[account], p.inAppend[account])
	injected := p.fail.take()
	hook := p.hook
	p.mu.Unlock()

	if hook != nil {
		hook(account, req)
	}

	p.mu.Lock()
	defer p.mu.Unlock()
	defer p.changed.broadcast()
	p.inAppend[account]--
	if injected != nil {
		return storage.AppendResult{}, injected
	}
	res, err := p.appendLocked(account, req)
	if err == nil {
		p.fail.succeeded()
	}
	return res, err
}

func (p *Partition) appendLocked(account string, req storage.AppendRequest) (storage.AppendResult, error) {
	if req.Body != nil {
		// The fake keeps bytes: a body by reference is read here.
		raw, err := mail.ReadBody(req.Body)
		if err != nil {
			return storage.AppendResult{}, err
		}
		req.Raw = raw
	}
	if _, ok := p.accounts[account]; !ok {
		return storage.AppendResult{}, fmt.Errorf("fake: account %s: %w", account, mail.ErrNotFound)
	}
	switch {
	case len(req.Raw) == 0 && !req.Discard:
		return storage.AppendResult{}, fmt.Errorf("fake: %w: append to %s: empty message", storage.ErrInvalidMessage, account)
	case req.DedupKey == "" && (req.Discard || len(req.Pending) > 0):
		return storage.AppendResult{}, fmt.Errorf("fake: %w: append to %s: Discard and Pending need a DedupKey", storage.ErrInvalidMessage, account)
	case len(req.AutoReplied) > 0 && req.AutoReplyTTL <= 0:
		return storage.AppendResult{}, fmt.Errorf("fake: %w: append to %s: auto-reply records need a TTL", storage.ErrInvalidMessage, account)
	}
	dk := account + "\n" + req.DedupKey
	if req.DedupKey != "" {
		if d := p.dedup[dk]; d != nil {
			return storage.AppendResult{ID: d.id, Duplicate: true, Pending: slices.Clone(d.pending)}, nil
		}
	}
	var id string
	if !req.Discard {
		if req.QuotaBytes > 0 {
			var used int64
			for _, m := range p.boxes[account] {
				used += int64(len(m.Raw))
			}
			if used+int64(len(req.Raw)) > req.QuotaBytes {
				return storage.AppendResult{}, fmt.Errorf("fake: %w: %s uses %d of %d bytes", storage.ErrOverQuota, account, used, req.QuotaBytes)
			}
		}
		folder := req.Folder
		if folder == "" || strings.EqualFold(folder, storage.Inbox) {
			folder = storage.Inbox
		}
		received := req.Received
		if received.IsZero() {
			received = time.Now()
		}
		p.nextID++
		id = strconv.Itoa(p.nextID)
		p.boxes[account] = append(p.boxes[account], Message{
			ID: id, Folder: folder, DedupKey: req.DedupKey, Raw: slices.Clone(req.Raw),
			Received: received, Flags: slices.Clone(req.Flags),
		})
	}
	if req.DedupKey != "" {
		p.dedup[dk] = &dedupRecord{id: id, pending: slices.Clone(req.Pending)}
	}
	for _, s := range req.AutoReplied {
		p.replied[account+"\n"+strings.ToLower(s)] = true
	}
	return storage.AppendResult{ID: id}, nil
}

// AppendAsync implements PartitionData: Append, with a new write reported
// durable at once, or at ReleaseSyncs while HoldSyncs holds it.
func (p *Partition) AppendAsync(ctx context.Context, account string, req storage.AppendRequest) (storage.AppendResult, <-chan error, error) {
	res, err := p.Append(ctx, account, req)
	if err != nil || res.Duplicate {
		return res, nil, err
	}
	p.mu.Lock()
	held := p.syncs
	p.mu.Unlock()
	if held == nil {
		return res, resolved(nil), nil
	}
	ch := make(chan error, 1)
	go func() { <-held; ch <- nil }()
	return res, ch, nil
}

// HoldSyncs makes every later AppendAsync write durable only at
// ReleaseSyncs: a sync round that takes its time. The writes are stored
// (Stored, AppendCalls see them) meanwhile.
func (p *Partition) HoldSyncs() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.syncs == nil {
		p.syncs = make(chan struct{})
	}
}

// ReleaseSyncs makes the writes HoldSyncs held durable.
func (p *Partition) ReleaseSyncs() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.syncs != nil {
		close(p.syncs)
		p.syncs = nil
	}
}

// DonePending implements PartitionData: the kinds in done no longer come
// back with the dedup key (marking what is not there is no error).
func (p *Partition) DonePending(account, dedupKey string, done []string) <-chan error {
	p.mu.Lock()
	defer p.mu.Unlock()
	defer p.changed.broadcast()
	if d := p.dedup[strings.ToLower(account)+"\n"+dedupKey]; d != nil {
		d.pending = slices.DeleteFunc(d.pending, func(k string) bool { return slices.Contains(done, k) })
		if len(d.pending) == 0 {
			d.pending = nil
		}
	}
	return resolved(nil)
}

// HasAutoReplied implements PartitionData.
func (p *Partition) HasAutoReplied(account, sender string) (bool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.replied[strings.ToLower(account)+"\n"+strings.ToLower(sender)], nil
}

// Messages implements PartitionData ("" = every folder).
func (p *Partition) Messages(account, folder string) ([]storage.MessageInfo, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	account = strings.ToLower(account)
	if _, ok := p.accounts[account]; !ok {
		return nil, fmt.Errorf("fake: account %s: %w", account, mail.ErrNotFound)
	}
	out := []storage.MessageInfo{}
	for _, m := range p.boxes[account] {
		if folder != "" && !strings.EqualFold(folder, m.Folder) {
			continue
		}
		out = append(out, storage.MessageInfo{ID: m.ID, Folder: m.Folder, Size: int64(len(m.Raw)), Received: m.Received,
			Flags: slices.Clone(m.Flags)})
	}
	return out, nil
}

// Raw implements PartitionData.
func (p *Partition) Raw(account, id string) ([]byte, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, m := range p.boxes[strings.ToLower(account)] {
		if m.ID == id {
			return slices.Clone(m.Raw), nil
		}
	}
	return nil, fmt.Errorf("fake: message %s/%s: %w", account, id, mail.ErrNotFound)
}

// Body implements PartitionData: Raw as a body in memory.
func (p *Partition) Body(account, id string) (mail.Body, error) {
	raw, err := p.Raw(account, id)
	if err != nil {
		return nil, err
	}
	return mail.BytesBody(raw), nil
}

// Delivered implements PartitionData: the dedup key was stored and its
// pending work is done.
func (p *Partition) Delivered(account, dedupKey string) (string, bool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	d := p.dedup[strings.ToLower(account)+"\n"+dedupKey]
	if d == nil || len(d.pending) > 0 {
		return "", false, nil
	}
	return d.id, true, nil
}

// NewBody implements PartitionData: a body in memory.
func (p *Partition) NewBody() (mail.BodyWriter, error) { return new(mail.MemoryBodyWriter), nil }

// Linkable implements PartitionData: the fake links nothing (it reads a
// body by reference when it is appended).
func (p *Partition) Linkable(mail.Body) bool { return false }

// Usage implements PartitionData.
func (p *Partition) Usage(account string) (int64, int, error) {
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

// Wait returns once cond holds, checking it after every change to p (an
// append, a deletion, a clearing of pending work), and fails t if it does
// not hold within WaitTimeout. cond may call p's accessors.
func (p *Partition) Wait(t testing.TB, cond func() bool, format string, args ...any) {
	t.Helper()
	await(t, &p.changed, cond, format, args...)
}

// Aliases implements PartitionData.
func (p *Partition) Aliases() (map[string]string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]string, len(p.aliases))
	for k, v := range p.aliases {
		out[k] = v
	}
	return out, nil
}
