package guard

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// Guard decides whether a password login may be checked now, and counts
// how it ended. One Guard is shared by everything on a node that checks
// passwords, so they share the gate and the budgets:
//
//	a, err := g.Begin(ctx, clientIP, username)
//	if err != nil { /* refused unchecked: 454 4.7.0, 429 or 503 */ }
//	account, err := authenticator.Authenticate(ctx, username, password)
//	switch {
//	case err == nil:        a.Succeeded()
//	case wrongCredentials:  time.Sleep(a.Failed()) // then 535, 401
//	default:                a.Abandoned()          // could not check: 454, 503
//	}
//
// Safe for concurrent use.
type Guard struct {
	cfg   Config
	nets  Networks
	gate  *Gate
	byNet *Budget // network -> failures
	byAcc *Budget // network and account -> failures
}

// New returns a guard for cfg (defaults applied).
func New(cfg Config) *Guard {
	cfg = cfg.WithDefaults()
	return &Guard{
		cfg:   cfg,
		nets:  cfg.Networks(),
		gate:  NewGate(cfg.MaxChecks, cfg.CheckWait),
		byNet: NewBudget(cfg.MaxFailuresPerNetwork, cfg.FailureWindow, cfg.MaxKeys, cfg.Now),
		byAcc: NewBudget(cfg.MaxFailuresPerAccount, cfg.FailureWindow, cfg.MaxKeys, cfg.Now),
	}
}

// Config returns the guard's configuration, defaults applied.
func (g *Guard) Config() Config { return g.cfg }

// Network returns the network of a client address (see Networks).
func (g *Guard) Network(a netip.Addr) netip.Prefix { return g.nets.Of(a) }

// Gate returns the gate of password checks.
func (g *Guard) Gate() *Gate { return g.gate }

// Attempt is a login admitted to its check. Settle it exactly once with
// Succeeded, Failed or Abandoned; that also frees its gate slot, so settle
// it as soon as the check is done (and wait the delay after).
type Attempt struct {
	g        *Guard
	net, acc *Reservation
	release  func()
	once     sync.Once
}

// Begin asks to check a password for account from client. It reserves a
// failure in the client network's budget and in the budget of the account
// from that network, then waits for a gate slot. It returns a *Refusal
// (ErrThrottled when a budget is used up, ErrBusy when no slot came free in
// time) or ctx's error; then nothing was reserved and nothing may be
// checked.
func (g *Guard) Begin(ctx context.Context, client netip.Addr, account string) (*Attempt, error) {
	netKey := g.Network(client).String()
	rn, err := g.byNet.Reserve(netKey)
	if err != nil {
		return nil, err
	}
	ra, err := g.byAcc.Reserve(netKey + " " + accountKey(account))
	if err != nil {
		rn.Refund()
		return nil, err
	}
	release, err := g.gate.Enter(ctx)
	if err != nil {
		rn.Refund()
		ra.Refund()
		return nil, err
	}
	return &Attempt{g: g, net: rn, acc: ra, release: release}, nil
}

// Succeeded settles a correct login: the reserved failures are refunded.
// Earlier failures stay counted (a success of the owner does not reopen
// the budget for someone guessing from the same network).
func (a *Attempt) Succeeded() {
	a.once.Do(func() {
		a.release()
		a.net.Refund()
		a.acc.Refund()
	})
}

// Failed settles wrong credentials: the reserved failures count. It
// returns how long to wait before answering: FailureDelay doubled for each
// further failure within the window of the network or of the account from
// it (whichever has more), at most MaxFailureDelay.
func (a *Attempt) Failed() time.Duration {
	var d time.Duration
	a.once.Do(func() {
		a.release()
		n := max(a.net.Fail(), a.acc.Fail())
		d = a.g.Delay(n)
	})
	return d
}

// Abandoned settles an attempt that could not be checked (the
// authenticator failed, the client went away): nothing is counted.
func (a *Attempt) Abandoned() {
	a.once.Do(func() {
		a.release()
		a.net.Refund()
		a.acc.Refund()
	})
}

// Failure counts a failed login that needed no password check and no
// budget beforehand (a wrong cluster HMAC: guessing it is hopeless, and
// refusing it could lock a member out) against the client's network, and
// returns the delay to wait before answering.
func (g *Guard) Failure(client netip.Addr) time.Duration {
	return g.Delay(g.byNet.Record(g.Network(client).String()))
}

// Delay is the wait before answering the n-th recent failure:
// FailureDelay·2^(n-1), at most MaxFailureDelay.
func (g *Guard) Delay(n int) time.Duration {
	d := g.cfg.FailureDelay
	for i := 1; i < n && d < g.cfg.MaxFailureDelay; i++ {
		d *= 2
	}
	return min(d, g.cfg.MaxFailureDelay)
}

// Failures returns the recent failures of client's network and of account
// from that network.
func (g *Guard) Failures(client netip.Addr, account string) (network, acct int) {
	netKey := g.Network(client).String()
	return g.byNet.Failures(netKey), g.byAcc.Failures(netKey + " " + accountKey(account))
}

// Tracked returns the keys the budgets track (networks, account-network
// pairs), after dropping expired ones.
func (g *Guard) Tracked() (networks, accounts int) { return g.byNet.Len(), g.byAcc.Len() }

// accountKey is the budget key of a user name: case and surrounding space
// do not make another account, and a very long name (the SMTP line limit
// allows tens of KiB) is kept as its hash.
func accountKey(account string) string {
	account = strings.ToLower(strings.TrimSpace(account))
	if len(account) > 320 {
		sum := sha256.Sum256([]byte(account))
		return "#" + hex.EncodeToString(sum[:])
	}
	return account
}
