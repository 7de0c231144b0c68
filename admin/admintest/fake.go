// Package admintest provides Fake, an in-memory admin.API that records its
// calls and injects errors, for tests of the admin handler, its client,
// `homing ctl` and the load generator. It is imported only by tests.
package admintest

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/homing-mail/homing/admin"
	"github.com/homing-mail/homing/mail"
)

// Call is one recorded call of a Fake method: its name ("CreateAccount")
// and its arguments after the context, in order.
type Call struct {
	Method string
	Args   []any
}

// Submission is one message accepted by Fake.Submit.
type Submission struct {
	ID   string
	User string
	To   []string
	Raw  []byte
}

// Fake is an admin.API held in memory. Its exported fields are the canned
// data; set them before the fake is in use, or while holding its lock
// (f.Lock(); ...; f.Unlock()), since the methods read and change them under
// that lock. All methods are safe for concurrent use.
//
// Behaviour: accounts live in Accounts (Account, DeleteAccount and
// Messages of an unknown address are mail.ErrNotFound, CreateAccount of a
// known one mail.ErrExists); Submit checks Passwords (else
// mail.ErrAuthFailed); QueueAction changes the entry's State ("hold" ->
// "held", "release" and "retry" -> "active") or removes it ("delete").
// Errs[method] makes that method return the error; PanicIn names a method
// that panics.
type Fake struct {
	sync.Mutex

	ClusterInfo admin.Cluster
	AccountMap  map[string]admin.Account   // by address
	Passwords   map[string]string          // address -> password, for Submit
	Mailboxes   map[string][]admin.Message // address -> messages
	Raw         map[string][]byte          // RawKey(address, id) -> bytes
	QueueList   []admin.QueueEntry
	Current     admin.Settings
	ActorCounts map[string]int
	Counters    admin.Stats
	// RuleSets answers Rules and records SetRules, by scope.
	RuleSets map[string]admin.RuleSet
	// NodeList answers Nodes; Journeys answers Journey.
	NodeList []admin.NodeInfo
	Journeys map[string][]admin.JourneyEvent
	// PartitionList answers Partitions.
	PartitionList []admin.PartitionStatus
	// StatsFunc, when set, answers Stats instead of Counters. It runs
	// with the fake locked and must not call the fake.
	StatsFunc func() admin.Stats
	Submitted []Submission

	Errs    map[string]error
	PanicIn string

	calls []Call
	seq   int
}

var _ admin.API = (*Fake)(nil)

// NewFake returns an empty fake whose maps are allocated and whose
// settings are a single node "fake" in mode "locally".
func NewFake() *Fake {
	return &Fake{
		AccountMap:  map[string]admin.Account{},
		Passwords:   map[string]string{},
		Mailboxes:   map[string][]admin.Message{},
		Raw:         map[string][]byte{},
		ActorCounts: map[string]int{},
		Current:     admin.Settings{QueueMode: admin.QueueModeLocally, Name: "fake", Roles: []string{"frontend", "backend"}},
		Errs:        map[string]error{},
	}
}

// RawKey is the key of Fake.Raw for a message of an account.
func RawKey(address, id string) string { return address + "\x00" + id }

// Calls returns a copy of the calls so far, in order.
func (f *Fake) Calls() []Call {
	f.Lock()
	defer f.Unlock()
	return slices.Clone(f.calls)
}

// CallsTo returns the recorded calls of one method, in order.
func (f *Fake) CallsTo(method string) []Call {
	f.Lock()
	defer f.Unlock()
	var out []Call
	for _, c := range f.calls {
		if c.Method == method {
			out = append(out, c)
		}
	}
	return out
}

// SetErr makes method return err from now on (nil clears it).
func (f *Fake) SetErr(method string, err error) {
	f.Lock()
	defer f.Unlock()
	if err == nil {
		delete(f.Errs, method)
		return
	}
	f.Errs[method] = err
}

// enter records a call and returns the injected error; the caller holds
// the lock until it returns.
func (f *Fake) enter(method string, args ...any) error {
	f.Lock()
	f.calls = append(f.calls, Call{Method: method, Args: args})
	if f.PanicIn == method {
		// The caller's deferred Unlock runs while the panic unwinds.
		panic("admintest: injected panic in " + method)
	}
	return f.Errs[method]
}

// Cluster returns ClusterInfo.
func (f *Fake) Cluster(ctx context.Context) (admin.Cluster, error) {
	defer f.Unlock()
	if err := f.enter("Cluster"); err != nil {
		return admin.Cluster{}, err
	}
	return f.ClusterInfo, nil
}

// CreateAccount adds the account (and its password, for Submit).
func (f *Fake) CreateAccount(ctx context.Context, req admin.CreateAccount) (admin.Account, error) {
	defer f.Unlock()
	if err := f.enter("CreateAccount", req); err != nil {
		return admin.Account{}, err
	}
	if _, ok := f.AccountMap[req.Address]; ok {
		return admin.Account{}, fmt.Errorf("account %s: %w", req.Address, mail.ErrExists)
	}
	a := admin.Account{
		Address:    req.Address,
		QuotaBytes: req.QuotaBytes,
		Created:    time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC),
		Partition:  mail.PartitionOf(req.Address, 16),
		Owner:      f.Current.Name,
	}
	f.AccountMap[req.Address] = a
	if req.Password != "" {
		f.Passwords[req.Address] = req.Password
	}
	return a, nil
}

// Accounts lists AccountMap sorted by address.
func (f *Fake) Accounts(ctx context.Context) ([]admin.Account, error) {
	defer f.Unlock()
	if err := f.enter("Accounts"); err != nil {
		return nil, err
	}
	var out []admin.Account
	for _, a := range f.AccountMap {
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Address < out[j].Address })
	return out, nil
}

// Account returns one account or mail.ErrNotFound.
func (f *Fake) Account(ctx context.Context, address string) (admin.Account, error) {
	defer f.Unlock()
	if err := f.enter("Account", address); err != nil {
		return admin.Account{}, err
	}
	a, ok := f.AccountMap[address]
	if !ok {
		return admin.Account{}, fmt.Errorf("account %s: %w", address, mail.ErrNotFound)
	}
	return a, nil
}

// DeleteAccount removes an account or returns mail.ErrNotFound.
func (f *Fake) DeleteAccount(ctx context.Context, address string) error {
	defer f.Unlock()
	if err := f.enter("DeleteAccount", address); err != nil {
		return err
	}
	if _, ok := f.AccountMap[address]; !ok {
		return fmt.Errorf("account %s: %w", address, mail.ErrNotFound)
	}
	delete(f.AccountMap, address)
	return nil
}

// Messages returns the account's mailbox listing.
func (f *Fake) Messages(ctx context.Context, address string) ([]admin.Message, error) {
	defer f.Unlock()
	if err := f.enter("Messages", address); err != nil {
		return nil, err
	}
	if _, ok := f.AccountMap[address]; !ok {
		return nil, fmt.Errorf("account %s: %w", address, mail.ErrNotFound)
	}
	return slices.Clone(f.Mailboxes[address]), nil
}

// RawMessage returns Raw[RawKey(address, id)] or mail.ErrNotFound.
func (f *Fake) RawMessage(ctx context.Context, address, id string) ([]byte, error) {
	defer f.Unlock()
	if err := f.enter("RawMessage", address, id); err != nil {
		return nil, err
	}
	b, ok := f.Raw[RawKey(address, id)]
	if !ok {
		return nil, fmt.Errorf("message %s of %s: %w", id, address, mail.ErrNotFound)
	}
	return slices.Clone(b), nil
}

// Queue returns QueueList.
func (f *Fake) Queue(ctx context.Context) ([]admin.QueueEntry, error) {
	defer f.Unlock()
	if err := f.enter("Queue"); err != nil {
		return nil, err
	}
	return slices.Clone(f.QueueList), nil
}

// QueueEntry returns one entry of QueueList or mail.ErrNotFound.
func (f *Fake) QueueEntry(ctx context.Context, id string) (admin.QueueEntry, error) {
	defer f.Unlock()
	if err := f.enter("QueueEntry", id); err != nil {
		return admin.QueueEntry{}, err
	}
	for _, e := range f.QueueList {
		if e.ID == id {
			return e, nil
		}
	}
	return admin.QueueEntry{}, fmt.Errorf("queue %s: %w", id, mail.ErrNotFound)
}

// QueueAction changes or removes an entry of QueueList.
func (f *Fake) QueueAction(ctx context.Context, id, action string) error {
	defer f.Unlock()
	if err := f.enter("QueueAction", id, action); err != nil {
		return err
	}
	for i := range f.QueueList {
		if f.QueueList[i].ID != id {
			continue
		}
		switch action {
		case admin.ActionHold:
			f.QueueList[i].State = "held"
		case admin.ActionRelease, admin.ActionRetry:
			f.QueueList[i].State = "active"
		case admin.ActionDelete:
			f.QueueList = slices.Delete(f.QueueList, i, i+1)
		default:
			return &admin.Error{Status: 400, Message: "unknown action " + action}
		}
		return nil
	}
	return fmt.Errorf("queue %s: %w", id, mail.ErrNotFound)
}

// Settings returns Current.
func (f *Fake) Settings(ctx context.Context) (admin.Settings, error) {
	defer f.Unlock()
	if err := f.enter("Settings"); err != nil {
		return admin.Settings{}, err
	}
	return f.Current, nil
}

// UpdateSettings applies the set fields to Current.
func (f *Fake) UpdateSettings(ctx context.Context, s admin.SettingsUpdate) (admin.Settings, error) {
	defer f.Unlock()
	if err := f.enter("UpdateSettings", s); err != nil {
		return admin.Settings{}, err
	}
	if s.QueueMode != nil {
		f.Current.QueueMode = *s.QueueMode
	}
	return f.Current, nil
}

// Actors returns ActorCounts.
func (f *Fake) Actors(ctx context.Context) (map[string]int, error) {
	defer f.Unlock()
	if err := f.enter("Actors"); err != nil {
		return nil, err
	}
	out := make(map[string]int, len(f.ActorCounts))
	for k, v := range f.ActorCounts {
		out[k] = v
	}
	return out, nil
}

// Rules returns RuleSets[scope].
func (f *Fake) Rules(ctx context.Context, scope string) (admin.RuleSet, error) {
	defer f.Unlock()
	if err := f.enter("Rules"); err != nil {
		return admin.RuleSet{}, err
	}
	return f.RuleSets[scope], nil
}

// SetRules stores rules as RuleSets[scope].
func (f *Fake) SetRules(ctx context.Context, scope string, rules json.RawMessage) (admin.RuleSet, error) {
	defer f.Unlock()
	if err := f.enter("SetRules"); err != nil {
		return admin.RuleSet{}, err
	}
	if f.RuleSets == nil {
		f.RuleSets = map[string]admin.RuleSet{}
	}
	rs := admin.RuleSet{Scope: scope, Rules: append(json.RawMessage(nil), rules...)}
	f.RuleSets[scope] = rs
	return rs, nil
}

// AccountRules returns RuleSets["account:"+address].
func (f *Fake) AccountRules(ctx context.Context, address string) (admin.RuleSet, error) {
	defer f.Unlock()
	if err := f.enter("AccountRules"); err != nil {
		return admin.RuleSet{}, err
	}
	return f.RuleSets["account:"+address], nil
}

// SetAccountRules stores rules as RuleSets["account:"+address].
func (f *Fake) SetAccountRules(ctx context.Context, address string, rules json.RawMessage) (admin.RuleSet, error) {
	defer f.Unlock()
	if err := f.enter("SetAccountRules"); err != nil {
		return admin.RuleSet{}, err
	}
	if f.RuleSets == nil {
		f.RuleSets = map[string]admin.RuleSet{}
	}
	rs := admin.RuleSet{Scope: "account", Rules: append(json.RawMessage(nil), rules...)}
	f.RuleSets["account:"+address] = rs
	return rs, nil
}

// Nodes returns NodeList.
func (f *Fake) Nodes(ctx context.Context) ([]admin.NodeInfo, error) {
	defer f.Unlock()
	if err := f.enter("Nodes"); err != nil {
		return nil, err
	}
	return append([]admin.NodeInfo(nil), f.NodeList...), nil
}

// ClusterQueue returns QueueList.
func (f *Fake) ClusterQueue(ctx context.Context) ([]admin.QueueEntry, error) {
	defer f.Unlock()
	if err := f.enter("ClusterQueue"); err != nil {
		return nil, err
	}
	return slices.Clone(f.QueueList), nil
}

// Journey returns Journeys[id].
func (f *Fake) Journey(ctx context.Context, id string) ([]admin.JourneyEvent, error) {
	defer f.Unlock()
	if err := f.enter("Journey"); err != nil {
		return nil, err
	}
	return append([]admin.JourneyEvent(nil), f.Journeys[id]...), nil
}

// NodeQueueAction records the call like QueueAction.
func (f *Fake) NodeQueueAction(ctx context.Context, node, id, action string) error {
	defer f.Unlock()
	return f.enter("NodeQueueAction")
}

// NodeUpdateSettings records the call and returns CurrentSettings.
func (f *Fake) NodeUpdateSettings(ctx context.Context, node string, u admin.SettingsUpdate) (admin.Settings, error) {
	defer f.Unlock()
	if err := f.enter("NodeUpdateSettings"); err != nil {
		return admin.Settings{}, err
	}
	return admin.Settings{}, nil
}

// Partitions returns PartitionList.
func (f *Fake) Partitions(ctx context.Context) ([]admin.PartitionStatus, error) {
	defer f.Unlock()
	if err := f.enter("Partitions"); err != nil {
		return nil, err
	}
	return append([]admin.PartitionStatus(nil), f.PartitionList...), nil
}

// Stats returns StatsFunc() when set, else Counters.
func (f *Fake) Stats(ctx context.Context) (admin.Stats, error) {
	defer f.Unlock()
	if err := f.enter("Stats"); err != nil {
		return admin.Stats{}, err
	}
	if f.StatsFunc != nil {
		return f.StatsFunc(), nil
	}
	return f.Counters, nil
}

// Submit checks the password and records the message; the id is
// "SUB" followed by a sequence number.
func (f *Fake) Submit(ctx context.Context, user, password string, to []string, raw []byte) (string, error) {
	defer f.Unlock()
	if err := f.enter("Submit", user, password, slices.Clone(to), slices.Clone(raw)); err != nil {
		return "", err
	}
	if p, ok := f.Passwords[user]; !ok || p != password {
		return "", fmt.Errorf("submit as %s: %w", user, mail.ErrAuthFailed)
	}
	f.seq++
	id := fmt.Sprintf("SUB%d", f.seq)
	f.Submitted = append(f.Submitted, Submission{ID: id, User: user, To: slices.Clone(to), Raw: slices.Clone(raw)})
	return id, nil
}
