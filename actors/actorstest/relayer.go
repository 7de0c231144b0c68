package actorstest

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/homing-mail/homing/mail"
)

// RelayCall is one Send as the Relayer saw it: copies of the attempt's
// envelope and body, its domain (that of its first recipient), and its
// recipients' addresses and keys in the attempt's order.
type RelayCall struct {
	Env    *mail.Envelope
	Domain string
	Rcpts  []string
	Keys   []int
	Body   []byte
}

// AnyDomain, given to Block, blocks the calls to every domain that has no
// gate of its own.
const AnyDomain = "*"

// Relayer is an actors.Relayer with scripted answers. Every recipient is
// delivered (250 2.0.0, from "mx." and its domain) unless Answer or Script
// says otherwise. It records every call and how many ran at once, per
// domain and in all, and makes the calls to a blocked domain wait until
// the test lets them through, or their context ends (then every recipient
// gets 451 4.4.2).
type Relayer struct {
	mu          sync.Mutex
	answer      func(r *mail.Recipient, n int) mail.Result
	script      func(c RelayCall, n int) []mail.Result
	calls       []RelayCall
	gates       map[string]chan struct{}
	inflight    map[string]int
	maxInflight map[string]int
	total       int
	maxTotal    int
	changed     signal
}

// NewRelayer returns a Relayer that delivers everything at once.
func NewRelayer() *Relayer {
	return &Relayer{gates: map[string]chan struct{}{}, inflight: map[string]int{}, maxInflight: map[string]int{}}
}

// Answer scripts the result of each recipient: f gets the recipient (as
// attempted) and n, the number of earlier calls for the same message that
// carried the same recipient (its key), and returns its result; the
// Relayer names the recipient in it (Rcpt). Answer replaces a Script.
func (r *Relayer) Answer(f func(rcpt *mail.Recipient, n int) mail.Result) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.answer, r.script = f, nil
}

// Script scripts whole calls: f gets the call and n, the number of earlier
// calls for the same message id, and returns the results as Send returns
// them (in any order, each naming its recipient's key; a recipient
// without one is the caller's business). Script replaces an Answer.
func (r *Relayer) Script(f func(c RelayCall, n int) []mail.Result) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.script, r.answer = f, nil
}

// Block makes the calls for domain (or AnyDomain) wait until a value is
// sent on the returned channel (one call per value, see Release) or it is
// closed (every call, from then on).
func (r *Relayer) Block(domain string) chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	g := make(chan struct{})
	r.gates[domain] = g
	return g
}

// Send implements actors.Relayer.
func (r *Relayer) Send(ctx context.Context, msg *mail.Message) []mail.Result {
	env := msg.Envelope
	body, _ := mail.ReadBody(msg.Body)
	c := RelayCall{Env: env.Clone(), Body: slices.Clone(body)}
	for _, rc := range env.Recipients {
		c.Rcpts = append(c.Rcpts, rc.Addr)
		c.Keys = append(c.Keys, rc.Key)
	}
	if len(env.Recipients) > 0 {
		c.Domain = mail.Domain(env.Recipients[0].Addr)
	}
	r.mu.Lock()
	n := 0
	seen := map[int]int{}
	for _, old := range r.calls {
		if old.Env.ID == env.ID {
			n++
			for _, k := range old.Keys {
				seen[k]++
			}
		}
	}
	r.calls = append(r.calls, c)
	r.inflight[c.Domain]++
	r.maxInflight[c.Domain] = max(r.maxInflight[c.Domain], r.inflight[c.Domain])
	r.total++
	r.maxTotal = max(r.maxTotal, r.total)
	gate, answer, script := r.gates[c.Domain], r.answer, r.script
	if gate == nil {
		gate = r.gates[AnyDomain]
	}
	r.mu.Unlock()
	r.changed.broadcast()

	defer func() {
		r.mu.Lock()
		r.inflight[c.Domain]--
		r.total--
		r.mu.Unlock()
		r.changed.broadcast()
	}()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return Each(c.Env, func(*mail.Recipient) mail.Result { return mail.Temp(mail.StatusConnectionLost, "relay cancelled") })
		}
	}
	if script != nil {
		return script(c, n)
	}
	if answer == nil {
		answer = func(rc *mail.Recipient, _ int) mail.Result {
			return mail.Result{Code: 250, Status: mail.StatusOK, Text: "ok", RemoteMTA: "mx." + mail.Domain(rc.Addr)}
		}
	}
	return Each(c.Env, func(rc *mail.Recipient) mail.Result { return answer(rc, seen[rc.Key]) })
}

// Each builds one result per recipient of env with f, in env's order, each
// naming its recipient (Rcpt).
func Each(env *mail.Envelope, f func(*mail.Recipient) mail.Result) []mail.Result {
	out := make([]mail.Result, 0, len(env.Recipients))
	for _, rc := range env.Recipients {
		res := f(rc)
		res.Rcpt = rc.Key
		out = append(out, res)
	}
	return out
}

// CallCount is the number of calls so far.
func (r *Relayer) CallCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.calls)
}

// CallsFor returns the calls for message id, in order.
func (r *Relayer) CallsFor(id string) []RelayCall {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []RelayCall
	for _, c := range r.calls {
		if c.Env.ID == id {
			out = append(out, c)
		}
	}
	return out
}

// CallsTo returns the calls to domain, in order.
func (r *Relayer) CallsTo(domain string) []RelayCall {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []RelayCall
	for _, c := range r.calls {
		if c.Domain == domain {
			out = append(out, c)
		}
	}
	return out
}

// InflightTo is the number of calls to domain running now.
func (r *Relayer) InflightTo(domain string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.inflight[domain]
}

// MaxInflightTo is the most calls to domain that ever ran at once.
func (r *Relayer) MaxInflightTo(domain string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.maxInflight[domain]
}

// InflightTotal is the number of calls running now.
func (r *Relayer) InflightTotal() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.total
}

// MaxInflightTotal is the most calls that ever ran at once.
func (r *Relayer) MaxInflightTotal() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.maxTotal
}

// Wait returns once cond holds, checking it whenever a call starts or
// ends, and fails t if it does not hold within WaitTimeout.
func (r *Relayer) Wait(t testing.TB, cond func() bool, format string, args ...any) {
	t.Helper()
	await(t, &r.changed, cond, format, args...)
}

// Release lets exactly one call blocked on gate through, failing t if
// none is waiting within WaitTimeout.
func Release(t testing.TB, gate chan<- struct{}, what string) {
	t.Helper()
	timer := time.NewTimer(WaitTimeout)
	defer timer.Stop()
	select {
	case gate <- struct{}{}:
	case <-timer.C:
		t.Fatalf("not within %v: a blocked relay call to release (%s)", WaitTimeout, what)
	}
}
