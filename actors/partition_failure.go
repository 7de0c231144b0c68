package actors

import (
	"errors"
	"fmt"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/homing-mail/homing/mail"
	"github.com/homing-mail/homing/storage"
)

// A failure of a partition's open data.
//
// The storage layer fails a partition's DB at once when a write or a sync
// fails (EIO: after a lost lock on a network filesystem, or a dying disk),
// or when the directory's epoch is newer than this open's (another node
// took the partition after this one lost its lock; storage/epoch.go).
// Nothing is written or acknowledged after that. The partition actor then
// closes the data at once: every delivery in flight and every one that
// arrives is answered temporary (the message stays in its sender's queue
// and is retried; appends are idempotent, so one whose answer was lost is
// never stored twice), the account actors are stopped, the data is closed
// off the actor (closing badger may take a while, and the lock is
// released only when it is done) and the actor tries to open it again:
// at once after an I/O error (a reopen recovers from the logs, or fails
// and is reported), with the lock schedule while the other node holds it.

// dataFailed: the open data's Failed channel was closed.
type dataFailed struct{ data PartitionData }

// lostClosed: the failed data is closed.
type lostClosed struct{ err error }

// watch starts watching d for a failure.
func (p *partitionActor) watch(d PartitionData) {
	p.stopWatch()
	stop := make(chan struct{})
	p.watchStop = stop
	root, self := p.root, p.self
	go func() {
		select {
		case <-d.Failed():
			root.Send(self, &dataFailed{data: d})
		case <-stop:
		}
	}()
}

func (p *partitionActor) stopWatch() {
	if p.watchStop != nil {
		close(p.watchStop)
		p.watchStop = nil
	}
}

// dataFailed begins closing failed data: from now on every request is
// answered temporary, and the account actors stop (each answers what is
// in its mailbox first: its appends fail, so it answers them temporary).
func (p *partitionActor) dataFailed(ctx actor.Context, m *dataFailed) {
	if p.data != m.data || p.lost != nil {
		return
	}
	cause := m.data.Err()
	if cause == nil {
		cause = errors.New("the data failed")
	}
	reason := "io"
	if errors.Is(cause, storage.ErrFenced) {
		reason = "fenced"
	}
	p.lost = fmt.Errorf("partition %d failed (%s): %w", p.id, reason, cause)
	p.lastLost = time.Now().UTC().Format(time.RFC3339) + ": " + p.lost.Error()
	p.stats.partitionLost(p.id, reason)
	if reason == "fenced" {
		p.log.Error("partition opened by another node since (a newer epoch): closing it at once; its deliveries are answered temporary and wait in the queues", "epoch", m.data.Epoch(), "err", cause)
	} else {
		p.log.Error("partition write or sync failed: closing it at once; its deliveries are answered temporary and wait in the queues; reopening", "err", cause)
	}
	for acct := range p.children {
		p.stopChild(ctx, acct)
	}
	p.maybeCloseLost()
}

// maybeCloseLost closes the failed data once no account actor is left,
// off the actor.
func (p *partitionActor) maybeCloseLost() {
	if p.lost == nil || p.closingLost || len(p.children) > 0 || p.retiring {
		return
	}
	d := p.data
	p.closingLost = true
	p.stopWatch()
	root, self := p.root, p.self
	go func() { root.Send(self, &lostClosed{err: d.Close()}) }()
}

// lostClosed: the failed data is closed (and its lock released); try to
// open it again.
func (p *partitionActor) lostClosed(ctx actor.Context, m *lostClosed) {
	if m.err != nil {
		p.log.Warn("closing the failed partition", "err", m.err)
	}
	p.data, p.lost, p.closingLost = nil, nil, false
	if p.changed != nil {
		p.changed(p.id, false)
	}
	if p.retry != nil {
		p.retry.Stop()
		p.retry = nil
	}
	p.retryWait = 0
	p.tryOpen(ctx)
}

// lostResult answers a delivery while failed data is being closed.
func (p *partitionActor) lostResult() mail.Result {
	return mail.Temp(mail.StatusLocalError, fmt.Sprintf("mailbox temporarily unavailable: partition %d is closing after a failure", p.id))
}
