// Package admintest provides Fake, an in-memory admin.API that records its
// calls and injects errors, for tests of the admin handler, its client,
// `homing ctl` and the load generator. It is imported only by tests.
package admintest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
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
	ID     string
	Client netip.Addr // the HTTP client's address
	User   string
	To     []string
	Raw    []byte
}

// Fake is an admin.API held in memory. Its exported fields are the canned
// data; set them before the fake is in use, or while holding its lock
// (f.Lock(); ...; f.Unlock()), since the methods read and change them under
// that lock. All methods are safe for concurrent use.
//
// Behaviour: accounts live in AccountMap (Account, DeleteAccount,
// Messages, AccountRules and SetAccountRules of an unknown address are
// mail.ErrNotFound, CreateAccount of a known one mail.ErrExists); Submit
// checks Passwords (else mail.ErrAuthFailed); QueueAction changes the
// entry's State ("hold" -> "held", "release" and "retry" -> "active",
// unless StateAfter says otherwise) or removes it ("delete").
//
// The cluster: QueueList holds every member's queue, QueueEntry.Node
// naming whose ("" is this node, Current.Name). Queue lists this node's
// entries; ClusterQueue lists all of them with Node filled in;
// NodeQueueAction acts like QueueAction on the entry of that node (an
// unknown node is an *admin.Error 404, like the real node's). NodeList
// answers Nodes, and NodeUpdateSettings changes the QueueMode of the
// NodeList entry of that name (or Current for "" and this node's name),
// and of the ClusterInfo member of that name, as gossip would spread it.
// Journey answers from Journeys (an id that is not a key is
// mail.ErrNotFound). Rules answers from RuleSets, or an empty set of the
// scope when none was stored, as the node does.
//
// Every call is recorded with its arguments after the context (Calls,
// CallsTo). Errs[method] makes that method return the error; PanicIn names
// a method that panics.
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
	// NodeList answers Nodes; Journeys answers Journey (by queue id).
	NodeList []admin.NodeInfo
	Journeys map[string][]admin.JourneyEvent
	// Found answers FindMessages (journey.go).
	Found []admin.JourneyMessage
	// DomainList and AliasMap answer the provisioning (provision.go).
	DomainList []admin.Domain
	AliasMap   map[string]string
	// HistoryData and LogLines answer History and DeliveryLog (observe.go).
	HistoryData []admin.NodeHistory
	LogLines    []admin.LogLine
	// PartitionList answers Partitions.
	PartitionList []admin.PartitionStatus
	// Ready answers Readiness; NewFake makes it a ready node.
	Ready admin.Readiness
	// NodesDeadline is how long the context of the last Nodes call had
	// left when it came (0: no deadline).
	NodesDeadline time.Duration
	// StateAfter, when it has the action, is the State a queue action
	// ("hold", "release", "retry") leaves the entry in, instead of the
	// default ("held", "active", "active").
	StateAfter map[string]string
	// StatsFunc, when set, answers Stats instead of Counters. It runs
	// with the fake locked and must not call the fake.
	StatsFunc func() admin.Stats
	Submitted []Submission

	Errs map[string]error
	// ErrFor, when set, is asked first for every call (method and
	// arguments, as recorded); a non-nil answer is that call's error, so
	// one item of a batch can fail. It runs with the fake locked and must
	// not call the fake.
	ErrFor  func(Call) error
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
		Ready:       admin.Readiness{Ready: true, Checks: []admin.Check{{Name: "stores", OK: true, Detail: "open"}}},
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

// CallsTo returns the recorded calls of one method, in order (the order
// the fake was called in: concurrent callers interleave).
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

// enter records a call and returns the injected error (ErrFor's, else
// Errs'); the caller holds the lock until it returns.
func (f *Fake) enter(method string, args ...any) error {
	f.Lock()
	c := Call{Method: method, Args: args}
	f.calls = append(f.calls, c)
	if f.PanicIn == method {
		// The caller's deferred Unlock runs while the panic unwinds.
		panic("admintest: injected panic in " + method)
	}
	if f.ErrFor != nil {
		if err := f.ErrFor(c); err != nil {
			return err
		}
	}
	return f.Errs[method]
}

// Readiness returns Ready (an injected error for "Readiness" makes it a
// node that is not ready, with that error as a failed check).
func (f *Fake) Readiness(ctx context.Context) admin.Readiness {
	defer f.Unlock()
	if err := f.enter("Readiness"); err != nil {
		return admin.Readiness{Checks: []admin.Check{{Name: "fake", Detail: err.Error()}}}
	}
	r := f.Ready
	r.Checks = slices.Clone(r.Checks)
	return r
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

// Queue returns the entries of QueueList that are this node's (Node "" or
// Current.Name).
func (f *Fake) Queue(ctx context.Context) ([]admin.QueueEntry, error) {
	defer f.Unlock()
	if err := f.enter("Queue"); err != nil {
		return nil, err
	}
	var out []admin.QueueEntry
	for _, e := range f.QueueList {
		if f.isSelf(e.Node) {
			out = append(out, e)
		}
	}
	return out, nil
}

// isSelf reports whether node names this node ("" or Current.Name); the
// caller holds the lock.
func (f *Fake) isSelf(node string) bool { return node == "" || node == f.Current.Name }

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

// QueueAction changes or removes an entry of this node's queue.
func (f *Fake) QueueAction(ctx context.Context, id, action string) error {
	defer f.Unlock()
	if err := f.enter("QueueAction", id, action); err != nil {
		return err
	}
	return f.act(func(e admin.QueueEntry) bool { return e.ID == id && f.isSelf(e.Node) }, id, action)
}

// act applies a queue action to the first entry of QueueList that match
// accepts (mail.ErrNotFound when none does); the caller holds the lock.
func (f *Fake) act(match func(admin.QueueEntry) bool, id, action string) error {
	for i := range f.QueueList {
		if !match(f.QueueList[i]) {
			continue
		}
		if st, ok := f.StateAfter[action]; ok && action != admin.ActionDelete {
			f.QueueList[i].State = st
			return nil
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

// UpdateSettings applies the set fields to Current (and the queue mode
// to this node's ClusterInfo member, if it is listed).
func (f *Fake) UpdateSettings(ctx context.Context, s admin.SettingsUpdate) (admin.Settings, error) {
	defer f.Unlock()
	if err := f.enter("UpdateSettings", s); err != nil {
		return admin.Settings{}, err
	}
	if s.QueueMode != nil {
		f.Current.QueueMode = *s.QueueMode
		f.setMemberMode(f.Current.Name, *s.QueueMode)
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

// Rules returns RuleSets[scope] as stored, or an empty set of the scope
// (rules []) when none is. The recorded arguments are scope.
func (f *Fake) Rules(ctx context.Context, scope string) (admin.RuleSet, error) {
	defer f.Unlock()
	if err := f.enter("Rules", scope); err != nil {
		return admin.RuleSet{}, err
	}
	return f.ruleSet(scope, scope), nil
}

// ruleSet returns RuleSets[key] or an empty set of scope; the caller
// holds the lock.
func (f *Fake) ruleSet(key, scope string) admin.RuleSet {
	if rs, ok := f.RuleSets[key]; ok {
		rs.Rules = slices.Clone(rs.Rules)
		return rs
	}
	return admin.RuleSet{Scope: scope, Rules: json.RawMessage("[]")}
}

// SetRules stores rules as RuleSets[scope]; the "cluster" set gets the
// version after the one stored. The recorded arguments are scope and the
// rules as a string.
func (f *Fake) SetRules(ctx context.Context, scope string, rules json.RawMessage) (admin.RuleSet, error) {
	defer f.Unlock()
	if err := f.enter("SetRules", scope, string(rules)); err != nil {
		return admin.RuleSet{}, err
	}
	if f.RuleSets == nil {
		f.RuleSets = map[string]admin.RuleSet{}
	}
	rs := admin.RuleSet{Scope: scope, Rules: slices.Clone(rules)}
	if scope == "cluster" {
		rs.Version = f.RuleSets[scope].Version + 1
	}
	f.RuleSets[scope] = rs
	return f.ruleSet(scope, scope), nil
}

// AccountRules returns RuleSets["account:"+address] (an empty set when
// none is stored), or mail.ErrNotFound for an unknown account.
func (f *Fake) AccountRules(ctx context.Context, address string) (admin.RuleSet, error) {
	defer f.Unlock()
	if err := f.enter("AccountRules", address); err != nil {
		return admin.RuleSet{}, err
	}
	if _, ok := f.AccountMap[address]; !ok {
		return admin.RuleSet{}, fmt.Errorf("account %s: %w", address, mail.ErrNotFound)
	}
	return f.ruleSet("account:"+address, "account"), nil
}

// SetAccountRules stores rules as RuleSets["account:"+address], or
// returns mail.ErrNotFound for an unknown account. The recorded arguments
// are address and the rules as a string.
func (f *Fake) SetAccountRules(ctx context.Context, address string, rules json.RawMessage) (admin.RuleSet, error) {
	defer f.Unlock()
	if err := f.enter("SetAccountRules", address, string(rules)); err != nil {
		return admin.RuleSet{}, err
	}
	if _, ok := f.AccountMap[address]; !ok {
		return admin.RuleSet{}, fmt.Errorf("account %s: %w", address, mail.ErrNotFound)
	}
	if f.RuleSets == nil {
		f.RuleSets = map[string]admin.RuleSet{}
	}
	f.RuleSets["account:"+address] = admin.RuleSet{Scope: "account", Rules: slices.Clone(rules)}
	return f.ruleSet("account:"+address, "account"), nil
}

// Nodes returns NodeList.
func (f *Fake) Nodes(ctx context.Context) ([]admin.NodeInfo, error) {
	defer f.Unlock()
	err := f.enter("Nodes")
	f.NodesDeadline = 0
	if dl, ok := ctx.Deadline(); ok {
		f.NodesDeadline = time.Until(dl)
	}
	if err != nil {
		return nil, err
	}
	return append([]admin.NodeInfo(nil), f.NodeList...), nil
}

// ClusterQueue returns QueueList, each entry's Node filled in (this
// node's entries get Current.Name).
func (f *Fake) ClusterQueue(ctx context.Context) ([]admin.QueueEntry, error) {
	defer f.Unlock()
	if err := f.enter("ClusterQueue"); err != nil {
		return nil, err
	}
	out := slices.Clone(f.QueueList)
	for i := range out {
		if out[i].Node == "" {
			out[i].Node = f.Current.Name
		}
	}
	return out, nil
}

// Journey returns Journeys[id], or mail.ErrNotFound when id is not a key
// (a key with no events answers an empty list).
func (f *Fake) Journey(ctx context.Context, id string) ([]admin.JourneyEvent, error) {
	defer f.Unlock()
	if err := f.enter("Journey", id); err != nil {
		return nil, err
	}
	ev, ok := f.Journeys[id]
	if !ok {
		return nil, fmt.Errorf("message %s: %w (no node remembers it)", id, mail.ErrNotFound)
	}
	return slices.Clone(ev), nil
}

// knownNode reports whether node is this node or an entry of NodeList or
// QueueList; the caller holds the lock.
func (f *Fake) knownNode(node string) bool {
	if f.isSelf(node) {
		return true
	}
	for _, n := range f.NodeList {
		if n.Name == node {
			return true
		}
	}
	for _, e := range f.QueueList {
		if e.Node == node {
			return true
		}
	}
	return false
}

// NodeQueueAction is QueueAction on the entry of QueueList with the id
// whose Node is node ("" and Current.Name are this node). A node the fake
// does not know (not in NodeList or QueueList) is an *admin.Error 404.
// The recorded arguments are node, id and action.
func (f *Fake) NodeQueueAction(ctx context.Context, node, id, action string) error {
	defer f.Unlock()
	if err := f.enter("NodeQueueAction", node, id, action); err != nil {
		return err
	}
	if !f.knownNode(node) {
		return &admin.Error{Status: 404, Message: "no node named " + node}
	}
	self := f.isSelf(node)
	return f.act(func(e admin.QueueEntry) bool {
		return e.ID == id && (e.Node == node || self && f.isSelf(e.Node))
	}, id, action)
}

// NodeUpdateSettings applies u to Current when node is this node ("" or
// Current.Name), else to the QueueMode of NodeList's entry of that name,
// and to the QueueMode of the ClusterInfo member of that name, and
// returns that node's settings. An unknown node is an *admin.Error 404.
// The recorded arguments are node and u.
func (f *Fake) NodeUpdateSettings(ctx context.Context, node string, u admin.SettingsUpdate) (admin.Settings, error) {
	defer f.Unlock()
	if err := f.enter("NodeUpdateSettings", node, u); err != nil {
		return admin.Settings{}, err
	}
	if f.isSelf(node) {
		if u.QueueMode != nil {
			f.Current.QueueMode = *u.QueueMode
			f.setMemberMode(f.Current.Name, *u.QueueMode)
		}
		return f.Current, nil
	}
	for i := range f.NodeList {
		n := &f.NodeList[i]
		if n.Name != node {
			continue
		}
		if u.QueueMode != nil {
			n.QueueMode = *u.QueueMode
			f.setMemberMode(node, *u.QueueMode)
		}
		return admin.Settings{QueueMode: n.QueueMode, Name: n.Name, Roles: slices.Clone(n.Roles)}, nil
	}
	return admin.Settings{}, &admin.Error{Status: 404, Message: "no node named " + node}
}

// setMemberMode sets the QueueMode of the ClusterInfo member called name,
// if there is one; the caller holds the lock.
func (f *Fake) setMemberMode(name, mode string) {
	for i := range f.ClusterInfo.Members {
		if f.ClusterInfo.Members[i].Name == name {
			f.ClusterInfo.Members[i].QueueMode = mode
		}
	}
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
func (f *Fake) Submit(ctx context.Context, client netip.Addr, user, password string, to []string, raw []byte) (string, error) {
	defer f.Unlock()
	if err := f.enter("Submit", client, user, password, slices.Clone(to), slices.Clone(raw)); err != nil {
		return "", err
	}
	if p, ok := f.Passwords[user]; !ok || p != password {
		return "", fmt.Errorf("submit as %s: %w", user, mail.ErrAuthFailed)
	}
	f.seq++
	id := fmt.Sprintf("SUB%d", f.seq)
	f.Submitted = append(f.Submitted, Submission{ID: id, Client: client, User: user, To: slices.Clone(to), Raw: slices.Clone(raw)})
	return id, nil
}
