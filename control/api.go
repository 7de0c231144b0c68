package control

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/mail"
	"net/netip"
	"strings"
	"time"

	"github.com/homing-mail/homing/actors"
	"github.com/homing-mail/homing/admin"
	"github.com/homing-mail/homing/guard"
	hmail "github.com/homing-mail/homing/mail"
	"github.com/homing-mail/homing/maillog"
	"github.com/homing-mail/homing/rules"
	"github.com/homing-mail/homing/storage"
)

var _ admin.API = (*API)(nil)

func (a *API) Cluster(ctx context.Context) (admin.Cluster, error) {
	if cl := a.cluster(); cl != nil {
		return a.clusterView(cl), nil
	}
	c := admin.Cluster{Members: []admin.Member{a.self()}}
	for p := 0; p < a.Info.Partitions; p++ {
		owner := ""
		if a.System.LocalPartition(p) != nil {
			owner = a.Info.Name
		}
		c.Partitions = append(c.Partitions, admin.Partition{ID: p, Owner: owner})
	}
	return c, nil
}

func (a *API) CreateAccount(ctx context.Context, req admin.CreateAccount) (admin.Account, error) {
	addr, err := hmail.ParseAddress(strings.TrimSpace(req.Address))
	if err != nil {
		return admin.Account{}, badField("address", fmt.Sprintf("address %q: %v", req.Address, addressReason(err)))
	}
	addr = strings.ToLower(addr)
	if !a.System.Directory().IsLocalDomain(hmail.Domain(addr)) {
		return admin.Account{}, badField("address",
			fmt.Sprintf("address %s: %s is not a local domain (%s)", addr, hmail.Domain(addr), strings.Join(a.localDomains(), ", ")))
	}
	if req.QuotaBytes < 0 {
		return admin.Account{}, badField("quotaBytes", "quotaBytes must not be negative")
	}
	hash := req.PasswordHash
	switch {
	case req.Password != "" && hash != "":
		return admin.Account{}, badField("passwordHash", "give password or passwordHash, not both")
	case req.Password != "":
		if err := a.checkPolicy(addr, req.Password); err != nil {
			return admin.Account{}, err
		}
		if hash, err = storage.HashPassword(req.Password); err != nil {
			return admin.Account{}, err
		}
	case hash != "":
		if err := storage.CheckHash(hash); err != nil {
			return admin.Account{}, badField("passwordHash", "passwordHash is not an argon2id ($argon2id$...) or bcrypt ($2b$...) hash")
		}
	default:
		return admin.Account{}, badField("password", "password or passwordHash is required")
	}
	rec, err := a.System.CreateAccount(ctx, addr, hash, req.QuotaBytes)
	if errors.Is(err, hmail.ErrExists) {
		return admin.Account{}, &admin.Error{Status: http.StatusConflict, Message: fmt.Sprintf("account %s exists already", addr), Field: "address", Err: err}
	}
	if err != nil {
		return admin.Account{}, a.accountError(err, addr)
	}
	return accountOut(rec, a.ownerOf(int(rec.Partition))), nil
}

func accountOut(r *actors.Account, owner string) admin.Account {
	return admin.Account{
		Address: r.Address, QuotaBytes: r.QuotaBytes, UsedBytes: r.UsedBytes, Messages: int(r.Messages),
		Created: time.Unix(0, r.CreatedUnixNano).UTC(), Partition: int(r.Partition), Owner: owner, Disabled: r.Disabled,
	}
}

func (a *API) Accounts(ctx context.Context) ([]admin.Account, error) {
	recs, err := a.System.Accounts(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]admin.Account, 0, len(recs))
	for _, r := range recs {
		out = append(out, accountOut(r, a.ownerOf(int(r.Partition))))
	}
	return out, nil
}

func (a *API) Account(ctx context.Context, address string) (admin.Account, error) {
	r, err := a.System.GetAccount(ctx, address)
	if err != nil {
		return admin.Account{}, a.accountError(err, address)
	}
	return accountOut(r, a.ownerOf(int(r.Partition))), nil
}

func (a *API) DeleteAccount(ctx context.Context, address string) error {
	if err := a.System.DeleteAccount(ctx, address); err != nil {
		return a.accountError(err, address)
	}
	a.forgetEverywhere(ctx, strings.ToLower(address))
	return nil
}

func (a *API) Messages(ctx context.Context, address string) ([]admin.Message, error) {
	if _, err := a.System.GetAccount(ctx, address); err != nil {
		return nil, a.accountError(err, address)
	}
	ms, err := a.System.Messages(ctx, address, "")
	if err != nil {
		return nil, a.accountError(a.damaged(err, "the mailbox of "+address), address)
	}
	out := make([]admin.Message, 0, len(ms))
	for _, m := range ms {
		msg := admin.Message{ID: m.Id, Folder: m.Folder, Size: m.Size,
			Received: time.Unix(0, m.ReceivedUnixNano).UTC(), Flags: m.Flags, UID: m.Uid, From: m.From, Subject: m.Subject}
		out = append(out, msg)
	}
	return out, nil
}

func (a *API) RawMessage(ctx context.Context, address, id string) ([]byte, error) {
	raw, err := a.System.RawMessage(ctx, address, id)
	if err != nil {
		return nil, a.messageError(ctx, err, address, id)
	}
	return raw, nil
}

// OpenRawMessage implements admin.RawMessageOpener: the message streamed
// from its owner in pieces, never held whole.
func (a *API) OpenRawMessage(ctx context.Context, address, id string) (int64, io.ReadCloser, error) {
	size, r, err := a.System.OpenRaw(ctx, address, id)
	if err != nil {
		return 0, nil, a.messageError(ctx, err, address, id)
	}
	return size, r, nil
}

// messageError says in words what a failed read of message id of address
// met: a missing account or message is 404 naming which, damaged data is
// 500 (damaged), anything else keeps its class (accountError).
func (a *API) messageError(ctx context.Context, err error, address, id string) error {
	if isNotFound(err) {
		// Which is missing, the account or the message?
		if _, aerr := a.System.GetAccount(ctx, address); aerr != nil {
			return a.accountError(aerr, address)
		}
		return &admin.Error{Status: http.StatusNotFound, Message: fmt.Sprintf("no message %s in %s", id, address), Field: "id", Err: err}
	}
	return a.accountError(a.damaged(err, "message "+id+" of "+address), address)
}

// damaged answers damaged data (storage.ErrDamaged: bytes that fail their
// checksum, a record that does not decode) with 500 and a message that
// says so, with a log line that has the detail; it is neither the
// client's fault (400) nor something that goes away (503). Other errors
// are returned as they are.
func (a *API) damaged(err error, what string) error {
	if !errors.Is(err, storage.ErrDamaged) {
		return err
	}
	a.Logger.Error("admin: stored data damaged; answered 500", "what", what, "err", err)
	return &admin.Error{Status: http.StatusInternalServerError,
		Message: what + " is damaged: its stored data fails its check (see the log of the node that owns it; homing check DATA_DIR)", Err: err}
}

func (a *API) Queue(ctx context.Context) ([]admin.QueueEntry, error) {
	envs, err := a.System.Queue(ctx)
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
	case e.Transfer && e.HandedTo != "":
		q.LastError = fmt.Sprintf("handed to %s at %s, unconfirmed", e.HandedTo, e.HandedAt.UTC().Format(time.RFC3339))
	case e.Origin != "":
		q.LastError = "handed over by " + e.Origin + ": waiting for its word that it is ours to process"
	}
	switch {
	case e.Damaged != "":
		q.State, q.LastError = "damaged", e.Damaged
	case e.Held:
		q.State = "held"
	case deferred:
		q.State = "deferred"
	}
	return q
}

func (a *API) QueueEntry(ctx context.Context, id string) (admin.QueueEntry, error) {
	e, err := a.System.QueueEntry(ctx, id)
	if err != nil {
		return admin.QueueEntry{}, a.queueError(err, id)
	}
	return queueOut(e), nil
}

func (a *API) QueueAction(ctx context.Context, id, action string) error {
	err := a.System.QueueAction(ctx, id, action)
	if errors.Is(err, hmail.ErrInvalid) {
		return &admin.Error{Status: http.StatusBadRequest, Message: plain(err), Err: err}
	}
	return a.queueError(err, id)
}

func (a *API) Settings(ctx context.Context) (admin.Settings, error) {
	return admin.Settings{QueueMode: string(a.Runtime.QueueMode()), Name: a.Info.Name, Roles: roleNames(a.Info.Roles)}, nil
}

func (a *API) UpdateSettings(ctx context.Context, s admin.SettingsUpdate) (admin.Settings, error) {
	if s.QueueMode != nil {
		mode, err := hmail.ParseQueueMode(*s.QueueMode)
		if err != nil {
			return admin.Settings{}, badField("queueMode", fmt.Sprintf("queueMode %q is not one of locally, locally-for-others, remotely", *s.QueueMode))
		}
		switch err := a.Runtime.SetQueueMode(mode); {
		case errors.Is(err, ErrNotSaved):
			return admin.Settings{}, err
		case err != nil:
			a.Logger.Error("gossiping the queue mode", "err", err)
		}
		a.Logger.Info("queue mode changed", "queueMode", mode)
	}
	return a.Settings(ctx)
}

func (a *API) Actors(ctx context.Context) (map[string]int, error) {
	return a.System.Stats().Active(), nil
}

func (a *API) Partitions(ctx context.Context) ([]admin.PartitionStatus, error) {
	var out []admin.PartitionStatus
	for _, p := range a.System.PartitionStates(ctx) {
		out = append(out, admin.PartitionStatus{ID: p.ID, Open: p.Open, ActiveAccounts: p.ActiveAccounts, Idle: p.Idle,
			Error: p.Error, Damaged: p.Damaged, LockError: p.LockError, HeldBy: p.HeldBy, Epoch: p.Epoch, LastFailure: p.LastFailure})
	}
	return out, nil
}

func (a *API) Stats(ctx context.Context) (admin.Stats, error) {
	s := a.System.Stats()
	q := s.LatencyQuantiles(0.5, 0.99)
	return admin.Stats{
		Accepted:        s.Accepted.Load(),
		DeliveredLocal:  s.DeliveredLocal.Load(),
		Relayed:         s.Relayed.Load(),
		Bounced:         s.Bounced.Load(),
		Deferred:        s.Deferred.Load(),
		Transferred:     s.Transferred.Load(),
		FilterRuns:      a.Content.FilterRuns(),
		QueueDepth:      int(s.QueueDepth.Load()),
		StoreLatencyP50: q[0].Seconds(),
		StoreLatencyP99: q[1].Seconds(),
		Since:           s.Since(),
	}, nil
}

// Submit is mail generated on this node by an account (the web-user path):
// the account authenticates, the message gets a Received line, and it is
// enqueued here.
//
// The password is checked through the node's guard, with the gate and the
// failure budgets of SMTP AUTH, keyed by the HTTP client's network: a
// wrong password is answered 401 after the guard's delay; a network (or
// the account from it) that used up its failures gets 429 Too Many
// Requests with Retry-After, unchecked (RFC 6585 §4: this client sent too
// many requests; another client is not affected, so 503, which says the
// server is unavailable, would be wrong); a full gate of password checks
// gets 503 with Retry-After (the server is overloaded for everyone).
func (a *API) Submit(ctx context.Context, client netip.Addr, user, password string, to []string, raw []byte) (string, error) {
	attempt, err := a.Guard.Begin(ctx, client, user)
	var refusal *guard.Refusal
	switch {
	case errors.Is(err, guard.ErrThrottled) && errors.As(err, &refusal):
		a.loginResult("throttled")
		a.loginLogged(client, user, maillog.AuthThrottled)
		a.Logger.Info("submit login refused unchecked: too many failures", "client", client, "user", user)
		return "", &admin.Error{Status: http.StatusTooManyRequests, Message: "too many failed logins; try again later", RetryAfter: refusal.RetryAfter}
	case errors.As(err, &refusal):
		a.loginResult("busy")
		a.loginLogged(client, user, maillog.AuthBusy)
		a.Logger.Info("submit login refused unchecked: every password check slot is busy", "client", client, "user", user)
		return "", &admin.Error{Status: http.StatusServiceUnavailable, Message: "too many logins in progress; try again later", RetryAfter: refusal.RetryAfter}
	case err != nil:
		a.loginResult("unavailable")
		return "", err
	}
	account, err := a.System.Authenticate(ctx, user, password)
	if errors.Is(err, hmail.ErrInvalid) {
		// A user name that is no address is a wrong login like any
		// other: the same 401, the same delay, the same budget.
		err = fmt.Errorf("%w: %v", hmail.ErrAuthFailed, err)
	}
	switch {
	case err == nil:
		a.loginResult("ok")
		a.loginLogged(client, user, maillog.AuthOK)
		attempt.Succeeded()
	case errors.Is(err, hmail.ErrAuthFailed):
		a.loginResult("failed")
		a.loginLogged(client, user, maillog.AuthFailed)
		delay := attempt.Failed()
		a.Logger.Info("submit login failed", "client", client, "user", user, "delay", delay)
		t := time.NewTimer(delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
		}
		return "", err
	default:
		a.loginResult("unavailable")
		attempt.Abandoned()
		return "", err
	}
	if len(to) == 0 {
		return "", badField("to", "at least one recipient (to) is required")
	}
	if err := checkMessage(raw); err != nil {
		return "", badField("raw", err.Error())
	}
	env := &hmail.Envelope{From: account, Source: hmail.SourceAPI, Auth: account, Received: time.Now()}
	seen := map[string]bool{}
	for _, t := range to {
		addr, err := hmail.ParseAddress(strings.TrimSpace(t))
		if err != nil {
			return "", badField("to", fmt.Sprintf("to: recipient %q: %v", t, addressReason(err)))
		}
		if seen[strings.ToLower(addr)] {
			continue
		}
		seen[strings.ToLower(addr)] = true
		env.Recipients = append(env.Recipients, &hmail.Recipient{Addr: addr, State: hmail.StatePending})
	}
	env.ID = hmail.NewID(env.Received)
	hdr := fmt.Sprintf("Received: from api (authenticated as %s)\r\n\tby %s with HTTP id %s;\r\n\t%s\r\n",
		account, a.Info.Hostname, env.ID, env.Received.Format(time.RFC1123Z))
	// Below the queue's free-space limit new mail is refused, as SMTP's
	// MAIL FROM answers 452 4.3.1: 507 Insufficient Storage.
	if err := a.System.Enqueuer().Admit(int64(len(raw))); err != nil {
		return "", noSpace()
	}
	// Through the queue's body writer, as SMTP's DATA: a large message is
	// a file of the queue, which every local mailbox links.
	var body hmail.Body
	w, err := a.System.Enqueuer().NewBody()
	if err == nil {
		if _, err = io.WriteString(w, hdr); err == nil {
			_, err = w.Write(raw)
		}
		if err != nil {
			w.Abort()
		} else {
			body, err = w.Commit()
		}
	}
	if errors.Is(err, hmail.ErrNoSpace) {
		return "", noSpace()
	}
	if err != nil {
		a.Logger.Error("submit failed", "err", err)
		return "", &admin.Error{Status: http.StatusServiceUnavailable, Message: "the message could not be queued; try again"}
	}
	if err := a.System.Submit(ctx, &hmail.Message{Envelope: env, Body: body}); err != nil {
		if errors.Is(err, hmail.ErrNoSpace) {
			return "", noSpace()
		}
		a.Logger.Error("submit failed", "err", err)
		return "", &admin.Error{Status: http.StatusServiceUnavailable, Message: "the message could not be queued; try again"}
	}
	return env.ID, nil
}

// loginLogged writes a login of the admin API (basic authentication) to
// the delivery log.
func (a *API) loginLogged(client netip.Addr, user, result string) {
	ip := ""
	if client.IsValid() {
		ip = client.String()
	}
	a.MailLog.Login(maillog.Auth{User: user, Client: ip, Mechanism: "basic", Via: "api", Result: result})
}

// noSpace is the answer of POST /api/v1/submit while the queue's disk is
// below its free-space limit (the free-space guard logs it, once).
func noSpace() error {
	return &admin.Error{Status: http.StatusInsufficientStorage, Message: "insufficient system storage; try again later",
		RetryAfter: time.Minute}
}

// checkMessage requires CRLF line ends and a parsable header, so that what
// the API queues is what SMTP would have accepted.
func checkMessage(raw []byte) error {
	if len(raw) == 0 {
		return errors.New("raw: the message is empty")
	}
	for i, c := range raw {
		if c == '\n' && (i == 0 || raw[i-1] != '\r') {
			return errors.New("raw: lines must end in CRLF (bare LF found; homing ctl submit converts a file's LF line ends)")
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

func (a *API) Rules(ctx context.Context, scope string) (admin.RuleSet, error) {
	sc := rules.ScopeServer
	if scope == "cluster" {
		sc = rules.ScopeCluster
	}
	rs, v := a.Content.Rules(sc)
	if rs == nil {
		rs = []rules.Rule{}
	}
	b, err := json.Marshal(rs)
	return admin.RuleSet{Scope: scope, Version: v, Rules: b}, err
}

func (a *API) SetRules(ctx context.Context, scope string, raw json.RawMessage) (admin.RuleSet, error) {
	var rs []rules.Rule
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rs); err != nil {
		return admin.RuleSet{}, badField("rules", "rules: "+strings.TrimPrefix(err.Error(), "json: "))
	}
	if scope == "cluster" {
		if a.cluster() == nil {
			// A single node is its own cluster.
			a.Logger.Info("cluster-wide rules set on a single node")
		}
		if _, err := a.Replicator.Set(rs); err != nil {
			return admin.RuleSet{}, rulesError(err)
		}
	} else {
		if err := a.Content.Set(rules.ScopeServer, rs, 0); err != nil {
			return admin.RuleSet{}, rulesError(err)
		}
		if err := a.Content.Save(); err != nil {
			return admin.RuleSet{}, err
		}
		a.Logger.Info("server-wide rules changed", "rules", len(rs))
	}
	return a.Rules(ctx, scope)
}

// rulesError makes a validation error a 400 for the operator.
func rulesError(err error) error {
	if errors.Is(err, rules.ErrInvalidRule) {
		return &admin.Error{Status: http.StatusBadRequest, Message: "rules: " + err.Error(), Field: "rules", Err: err}
	}
	return err
}

func (a *API) AccountRules(ctx context.Context, address string) (admin.RuleSet, error) {
	rec, err := a.System.GetAccount(ctx, address)
	if err != nil {
		return admin.RuleSet{}, a.accountError(err, address)
	}
	rs := json.RawMessage(rec.Rules)
	if len(rs) == 0 {
		rs = json.RawMessage("[]")
	}
	return admin.RuleSet{Scope: "account", Rules: rs}, nil
}

func (a *API) SetAccountRules(ctx context.Context, address string, raw json.RawMessage) (admin.RuleSet, error) {
	var rs []rules.Rule
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rs); err != nil {
		return admin.RuleSet{}, badField("rules", "rules: "+strings.TrimPrefix(err.Error(), "json: "))
	}
	if _, err := rules.Compile(rs, rules.ScopeAccount); err != nil {
		return admin.RuleSet{}, &admin.Error{Status: http.StatusBadRequest, Message: "rules: " + err.Error(), Field: "rules", Err: err}
	}
	b, _ := json.Marshal(rs)
	if _, err := a.System.SetAccountRules(ctx, address, b); err != nil {
		return admin.RuleSet{}, a.accountError(err, address)
	}
	return a.AccountRules(ctx, address)
}
