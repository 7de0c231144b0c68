package node

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/mail"
	"strings"
	"time"

	"github.com/homing-mail/homing/actors"
	"github.com/homing-mail/homing/admin"
	"github.com/homing-mail/homing/cluster"
	hmail "github.com/homing-mail/homing/mail"
	"github.com/homing-mail/homing/rules"
	"github.com/homing-mail/homing/storage"
)

// apiImpl is the node seen by the admin endpoint.
type apiImpl struct{ n *Node }

var _ admin.API = apiImpl{}

func (a apiImpl) Cluster(ctx context.Context) (admin.Cluster, error) {
	n := a.n
	if cl := n.cluster(); cl != nil && cl.membership != nil {
		return n.clusterView(cl), nil
	}
	c := admin.Cluster{Members: []admin.Member{{
		Name:      n.cfg.Name,
		Roles:     n.cfg.Roles,
		QueueMode: n.mode(),
		State:     "alive",
		SMTP:      n.SMTPAddr(),
		Admin:     n.AdminAddr(),
		Version:   Version,
		Uptime:    time.Since(n.started).Round(time.Second).String(),
	}}}
	for p := 0; p < n.cfg.Partitions; p++ {
		owner := ""
		if n.actors.LocalPartition(p) != nil {
			owner = n.cfg.Name
		}
		c.Partitions = append(c.Partitions, admin.Partition{ID: p, Owner: owner})
	}
	return c, nil
}

func (a apiImpl) CreateAccount(ctx context.Context, req admin.CreateAccount) (admin.Account, error) {
	addr, err := hmail.ParseAddress(strings.TrimSpace(req.Address))
	if err != nil {
		return admin.Account{}, &admin.Error{Status: http.StatusBadRequest, Message: fmt.Sprintf("address %q: %v", req.Address, err)}
	}
	addr = strings.ToLower(addr)
	if !a.n.actors.Directory().IsLocalDomain(hmail.Domain(addr)) {
		return admin.Account{}, &admin.Error{Status: http.StatusBadRequest,
			Message: fmt.Sprintf("%s is not in a local domain (%s)", hmail.Domain(addr), strings.Join(a.n.cfg.Domains, ", "))}
	}
	if req.QuotaBytes < 0 {
		return admin.Account{}, &admin.Error{Status: http.StatusBadRequest, Message: "quotaBytes must not be negative"}
	}
	hash := req.PasswordHash
	switch {
	case req.Password != "" && hash != "":
		return admin.Account{}, &admin.Error{Status: http.StatusBadRequest, Message: "give password or passwordHash, not both"}
	case req.Password != "":
		if hash, err = storage.HashPassword(req.Password); err != nil {
			return admin.Account{}, err
		}
	case hash != "":
		if err := storage.CheckHash(hash); err != nil {
			return admin.Account{}, &admin.Error{Status: http.StatusBadRequest, Message: "passwordHash is not an argon2id or bcrypt hash"}
		}
	default:
		return admin.Account{}, &admin.Error{Status: http.StatusBadRequest, Message: "password or passwordHash is required"}
	}
	rec, err := a.n.actors.CreateAccount(ctx, addr, hash, req.QuotaBytes)
	if err != nil {
		return admin.Account{}, err
	}
	return accountOut(rec, a.n.ownerOf(int(rec.Partition))), nil
}

func accountOut(r *actors.Account, owner string) admin.Account {
	return admin.Account{
		Address: r.Address, QuotaBytes: r.QuotaBytes, UsedBytes: r.UsedBytes, Messages: int(r.Messages),
		Created: time.Unix(0, r.CreatedUnixNano).UTC(), Partition: int(r.Partition), Owner: owner,
	}
}

func (a apiImpl) Accounts(ctx context.Context) ([]admin.Account, error) {
	recs, err := a.n.actors.Accounts(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]admin.Account, 0, len(recs))
	for _, r := range recs {
		out = append(out, accountOut(r, a.n.ownerOf(int(r.Partition))))
	}
	return out, nil
}

func (a apiImpl) Account(ctx context.Context, address string) (admin.Account, error) {
	r, err := a.n.actors.GetAccount(ctx, address)
	if err != nil {
		return admin.Account{}, err
	}
	return accountOut(r, a.n.ownerOf(int(r.Partition))), nil
}

func (a apiImpl) DeleteAccount(ctx context.Context, address string) error {
	return a.n.actors.DeleteAccount(ctx, address)
}

func (a apiImpl) Messages(ctx context.Context, address string) ([]admin.Message, error) {
	if _, err := a.n.actors.GetAccount(ctx, address); err != nil {
		return nil, err
	}
	ms, err := a.n.actors.Messages(ctx, address, "")
	if err != nil {
		return nil, err
	}
	out := make([]admin.Message, 0, len(ms))
	for _, m := range ms {
		msg := admin.Message{ID: m.Id, Folder: m.Folder, Size: m.Size,
			Received: time.Unix(0, m.ReceivedUnixNano).UTC(), Flags: m.Flags}
		out = append(out, msg)
	}
	return out, nil
}

func (a apiImpl) RawMessage(ctx context.Context, address, id string) ([]byte, error) {
	return a.n.actors.RawMessage(ctx, address, id)
}

func (a apiImpl) Queue(ctx context.Context) ([]admin.QueueEntry, error) {
	envs, err := a.n.actors.Queue(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]admin.QueueEntry, 0, len(envs))
	for _, e := range envs {
		out = append(out, queueOut(e))
	}
	return out, nil
}

func queueOut(e *hmail.Envelope) admin.QueueEntry {
	q := admin.QueueEntry{ID: e.ID, Sender: e.From, Received: e.Received, Size: e.Size, State: "active"}
	var next time.Time
	deferred := false
	for _, r := range e.Recipients {
		qr := admin.QueueRecipient{Address: r.Addr, State: string(r.State), Attempts: r.Attempts, LastError: r.LastError}
		if !r.NextAttempt.IsZero() && !r.State.Final() {
			t := r.NextAttempt
			qr.NextAttempt = &t
			if next.IsZero() || t.Before(next) {
				next = t
			}
		}
		if r.State == hmail.StateDeferred {
			deferred = true
		}
		q.Attempts = max(q.Attempts, r.Attempts)
		if r.LastError != "" {
			q.LastError = r.LastError
		}
		q.Recipients = append(q.Recipients, qr)
	}
	if !next.IsZero() {
		q.NextAttempt = &next
	}
	switch {
	case e.Held:
		q.State = "held"
	case deferred:
		q.State = "deferred"
	}
	return q
}

func (a apiImpl) QueueEntry(ctx context.Context, id string) (admin.QueueEntry, error) {
	e, err := a.n.actors.QueueEntry(ctx, id)
	if err != nil {
		return admin.QueueEntry{}, err
	}
	return queueOut(e), nil
}

func (a apiImpl) QueueAction(ctx context.Context, id, action string) error {
	err := a.n.actors.QueueAction(ctx, id, action)
	if errors.Is(err, hmail.ErrInvalid) {
		return &admin.Error{Status: http.StatusBadRequest, Message: err.Error()}
	}
	return err
}

func (a apiImpl) Settings(ctx context.Context) (admin.Settings, error) {
	return admin.Settings{QueueMode: a.n.mode(), Name: a.n.cfg.Name, Roles: a.n.cfg.Roles}, nil
}

func (a apiImpl) UpdateSettings(ctx context.Context, s admin.SettingsUpdate) (admin.Settings, error) {
	if s.QueueMode != nil {
		switch *s.QueueMode {
		case ModeLocally, ModeLocallyForOthers, ModeRemotely:
			a.n.mu.Lock()
			a.n.queueMode = *s.QueueMode
			a.n.mu.Unlock()
			if cl := a.n.cluster(); cl != nil && cl.membership != nil {
				mode := *s.QueueMode
				if err := cl.membership.UpdateMeta(func(m *cluster.Meta) { m.QueueMode = mode }); err != nil {
					a.n.log.Error("gossiping the queue mode", "err", err)
				}
			}
			a.n.log.Info("queue mode changed", "queueMode", *s.QueueMode)
		default:
			return admin.Settings{}, &admin.Error{Status: http.StatusBadRequest,
				Message: fmt.Sprintf("queueMode %q is not one of locally, locally-for-others, remotely", *s.QueueMode)}
		}
	}
	return a.Settings(ctx)
}

func (a apiImpl) Actors(ctx context.Context) (map[string]int, error) {
	return a.n.actors.Stats().Active(), nil
}

func (a apiImpl) Partitions(ctx context.Context) ([]admin.PartitionStatus, error) {
	var out []admin.PartitionStatus
	for _, p := range a.n.actors.PartitionStates(ctx) {
		out = append(out, admin.PartitionStatus{ID: p.ID, Open: p.Open, ActiveAccounts: p.ActiveAccounts})
	}
	return out, nil
}

func (a apiImpl) Stats(ctx context.Context) (admin.Stats, error) {
	s := a.n.actors.Stats()
	q := s.LatencyQuantiles(0.5, 0.99)
	return admin.Stats{
		Accepted:        s.Accepted.Load(),
		DeliveredLocal:  s.DeliveredLocal.Load(),
		Relayed:         s.Relayed.Load(),
		Bounced:         s.Bounced.Load(),
		Deferred:        s.Deferred.Load(),
		Transferred:     s.Transferred.Load(),
		FilterRuns:      a.n.pipe.invocations.Load(),
		QueueDepth:      int(s.QueueDepth.Load()),
		StoreLatencyP50: q[0].Seconds(),
		StoreLatencyP99: q[1].Seconds(),
		Since:           s.Since(),
	}, nil
}

// Submit is mail generated on this node by an account (the web-user path):
// the account authenticates, the message gets a Received line, and it is
// enqueued here.
func (a apiImpl) Submit(ctx context.Context, user, password string, to []string, raw []byte) (string, error) {
	account, err := a.n.actors.Authenticate(ctx, user, password)
	if err != nil {
		return "", err
	}
	if len(to) == 0 {
		return "", &admin.Error{Status: http.StatusBadRequest, Message: "at least one recipient (to) is required"}
	}
	if err := checkMessage(raw); err != nil {
		return "", &admin.Error{Status: http.StatusBadRequest, Message: err.Error()}
	}
	env := &hmail.Envelope{From: account, Source: hmail.SourceAPI, Auth: account, Received: time.Now()}
	seen := map[string]bool{}
	for _, t := range to {
		addr, err := hmail.ParseAddress(strings.TrimSpace(t))
		if err != nil {
			return "", &admin.Error{Status: http.StatusBadRequest, Message: fmt.Sprintf("recipient %q: %v", t, err)}
		}
		if seen[strings.ToLower(addr)] {
			continue
		}
		seen[strings.ToLower(addr)] = true
		env.Recipients = append(env.Recipients, &hmail.Recipient{Addr: addr, State: hmail.StatePending})
	}
	env.ID = hmail.NewID(env.Received)
	body := append([]byte(fmt.Sprintf("Received: from api (authenticated as %s)\r\n\tby %s with HTTP id %s;\r\n\t%s\r\n",
		account, a.n.cfg.Hostname, env.ID, env.Received.Format(time.RFC1123Z))), raw...)
	if err := a.n.actors.Submit(ctx, &hmail.Message{Envelope: env, Body: hmail.BytesBody(body)}); err != nil {
		a.n.log.Error("submit failed", "err", err)
		return "", &admin.Error{Status: http.StatusServiceUnavailable, Message: "the message could not be queued; try again"}
	}
	return env.ID, nil
}

// checkMessage requires CRLF line ends and a parsable header, so that what
// the API queues is what SMTP would have accepted.
func checkMessage(raw []byte) error {
	if len(raw) == 0 {
		return errors.New("raw: the message is empty")
	}
	for i, c := range raw {
		if c == '\n' && (i == 0 || raw[i-1] != '\r') {
			return errors.New("raw: lines must end in CRLF (bare LF found)")
		}
		if c == '\r' && (i+1 >= len(raw) || raw[i+1] != '\n') {
			return errors.New("raw: bare CR found")
		}
	}
	if _, err := mail.ReadMessage(bytes.NewReader(raw)); err != nil {
		return fmt.Errorf("raw: not an RFC 5322 message: %v", err)
	}
	return nil
}

// ownerOf names the node that owns partition p.
func (n *Node) ownerOf(p int) string {
	if cl := n.cluster(); cl != nil {
		return cl.placement.Owner(p)
	}
	return n.cfg.Name
}

func (n *Node) mode() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.queueMode
}

// Version is the node software version.
const Version = "0.1.0"

func (a apiImpl) Rules(ctx context.Context, scope string) (admin.RuleSet, error) {
	sc := rules.ScopeServer
	if scope == "cluster" {
		sc = rules.ScopeCluster
	}
	rs, v := a.n.pipe.rulesOf(sc)
	if rs == nil {
		rs = []rules.Rule{}
	}
	b, err := json.Marshal(rs)
	return admin.RuleSet{Scope: scope, Version: v, Rules: b}, err
}

func (a apiImpl) SetRules(ctx context.Context, scope string, raw json.RawMessage) (admin.RuleSet, error) {
	var rs []rules.Rule
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rs); err != nil {
		return admin.RuleSet{}, &admin.Error{Status: http.StatusBadRequest, Message: "rules: " + err.Error()}
	}
	if scope == "cluster" {
		if a.n.cluster() == nil {
			// A single node is its own cluster.
			a.n.log.Info("cluster-wide rules set on a single node")
		}
		b, _ := json.Marshal(rs)
		if _, err := a.n.setClusterRules(b); err != nil {
			return admin.RuleSet{}, rulesError(err)
		}
	} else {
		if err := a.n.pipe.set(rules.ScopeServer, rs, 0); err != nil {
			return admin.RuleSet{}, rulesError(err)
		}
		if err := a.n.pipe.save(); err != nil {
			return admin.RuleSet{}, err
		}
		a.n.log.Info("server-wide rules changed", "rules", len(rs))
	}
	return a.Rules(ctx, scope)
}

// rulesError makes a validation error a 400 for the operator.
func rulesError(err error) error {
	if errors.Is(err, rules.ErrInvalidRule) || strings.Contains(err.Error(), "filter") {
		return &admin.Error{Status: http.StatusBadRequest, Message: err.Error()}
	}
	return err
}

func (a apiImpl) AccountRules(ctx context.Context, address string) (admin.RuleSet, error) {
	rec, err := a.n.actors.GetAccount(ctx, address)
	if err != nil {
		return admin.RuleSet{}, err
	}
	rs := json.RawMessage(rec.Rules)
	if len(rs) == 0 {
		rs = json.RawMessage("[]")
	}
	return admin.RuleSet{Scope: "account", Rules: rs}, nil
}

func (a apiImpl) SetAccountRules(ctx context.Context, address string, raw json.RawMessage) (admin.RuleSet, error) {
	var rs []rules.Rule
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rs); err != nil {
		return admin.RuleSet{}, &admin.Error{Status: http.StatusBadRequest, Message: "rules: " + err.Error()}
	}
	if _, err := rules.Compile(rs, rules.ScopeAccount); err != nil {
		return admin.RuleSet{}, &admin.Error{Status: http.StatusBadRequest, Message: err.Error()}
	}
	b, _ := json.Marshal(rs)
	if _, err := a.n.actors.SetAccountRules(ctx, address, b); err != nil {
		if errors.Is(err, hmail.ErrInvalid) {
			return admin.RuleSet{}, &admin.Error{Status: http.StatusBadRequest, Message: err.Error()}
		}
		return admin.RuleSet{}, err
	}
	return a.AccountRules(ctx, address)
}
