package actorstest

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"

	"github.com/homing-mail/homing/mail"
	"github.com/homing-mail/homing/smtp"
)

// TransferCall is one TransferTo as the Transferer saw it: the member and
// copies of the message's envelope and body; N counts the earlier calls
// for the same message id.
type TransferCall struct {
	Member string
	Env    *mail.Envelope
	Body   []byte
	N      int
}

// Transferer is an actors.Transferer (queue mode Remotely) with scripted
// transfers. Targets lists the members set with SetTargets, in that order.
// Each TransferTo records the call and runs the script, which decides what
// the member did (a test's script stores the message at a taker, say, and
// then loses the reply: ErrUnclear); without a script every transfer is
// refused (ErrRefused).
type Transferer struct {
	mu      sync.Mutex
	targets []string
	script  func(ctx context.Context, c TransferCall, msg *mail.Message) error
	calls   []TransferCall
	changed signal
}

// ErrUnclear is the error of a transfer whose whole message was sent but
// whose reply was never read: the member may have stored it.
var ErrUnclear error = &smtp.TransferError{Err: errors.New("fake: the connection broke after the end of DATA"), Unclear: true}

// ErrRefused is a clear refusal: the member did not store the message.
var ErrRefused error = &smtp.TransferError{Err: errors.New("fake: 451 4.3.2 not taking transfers")}

// NewTransferer returns a Transferer whose targets are members.
func NewTransferer(members ...string) *Transferer {
	return &Transferer{targets: members}
}

// SetTargets replaces the members Targets lists.
func (t *Transferer) SetTargets(members ...string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.targets = members
}

// Script sets what each transfer does: f gets the call and the message
// (the queue's copy: f must not change it) and returns TransferTo's
// result. It may block until ctx ends.
func (t *Transferer) Script(f func(ctx context.Context, c TransferCall, msg *mail.Message) error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.script = f
}

// Targets implements actors.Transferer.
func (t *Transferer) Targets() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return slices.Clone(t.targets)
}

// TransferTo implements actors.Transferer.
func (t *Transferer) TransferTo(ctx context.Context, member string, msg *mail.Message) error {
	body, err := mail.ReadBody(msg.Body)
	if err != nil {
		return err
	}
	t.mu.Lock()
	c := TransferCall{Member: member, Env: msg.Envelope.Clone(), Body: body}
	for _, old := range t.calls {
		if old.Env.ID == c.Env.ID {
			c.N++
		}
	}
	t.calls = append(t.calls, c)
	script := t.script
	t.mu.Unlock()
	t.changed.broadcast()
	if script == nil {
		return ErrRefused
	}
	return script(ctx, c, msg)
}

// Calls returns every call so far, oldest first.
func (t *Transferer) Calls() []TransferCall {
	t.mu.Lock()
	defer t.mu.Unlock()
	return slices.Clone(t.calls)
}

// Wait returns once cond holds, checking it after every call, and fails
// tb if it does not hold within WaitTimeout.
func (t *Transferer) Wait(tb testing.TB, cond func() bool, format string, args ...any) {
	tb.Helper()
	await(tb, &t.changed, cond, format, args...)
}
