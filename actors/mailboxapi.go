package actors

import (
	"context"
	"strings"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/homing-mail/homing/actors/pb"
)

// Mailbox access for the sessions of this node (IMAP, POP3) and the admin
// API: every operation goes to the owner of the account's partition, on
// this node or another, as a pb.MailboxOp.

// Mailbox sends op to the owner of op.Account and returns its answer; an
// error the owner answered comes back as an error (goError: testable with
// errors.Is for mail.ErrNotFound, storage.ErrNoFolder, ErrOverQuota, ...),
// no answer as mail.ErrUnavailable.
func (s *System) Mailbox(ctx context.Context, op *pb.MailboxOp) (*pb.MailboxReply, error) {
	op.Account = strings.ToLower(op.Account)
	pid, err := s.partitionOf(op.Account)
	if err != nil {
		return nil, err
	}
	r, err := request[*pb.MailboxReply](ctx, s.root, pid, op, s.cfg.RequestTimeout)
	if err != nil {
		return nil, err
	}
	return r, goError(r.Error)
}

// MailboxOwner names where account's partition is open now: the channel
// address of its owner ("" when it has none). A session ends when this
// changes (the owner moved; a reconnect finds the new one).
func (s *System) MailboxOwner(account string) string {
	pid, err := s.partitionOf(account)
	if err != nil {
		return ""
	}
	return pid.Address
}

// ReadMessage reads the piece [off, off+length) of a stored message
// (length at most 256 KiB) and returns it with the message's size. With
// check, a piece at offset 0 comes after the owner read the whole message
// and checked it (a damaged one is an error before any byte: BODY[]);
// without, only the piece is read (a section).
func (s *System) ReadMessage(ctx context.Context, account, id string, off int64, length int, check bool) ([]byte, int64, error) {
	pid, err := s.partitionOf(account)
	if err != nil {
		return nil, 0, err
	}
	length = min(length, rawPieceMax)
	reply, err := request[*pb.RawReply](ctx, s.root, pid,
		&pb.GetRaw{Account: strings.ToLower(account), Id: id, Offset: off, Length: int32(length), Unchecked: !check}, s.cfg.RequestTimeout)
	if err != nil {
		return nil, 0, err
	}
	if err := goError(reply.Error); err != nil {
		return nil, 0, err
	}
	return reply.Raw, reply.GetSize(), nil
}

// Watcher is an actor of this node that receives an account's
// pb.MailboxChanged (its address and id go into MailboxOp's watcher
// fields).
type Watcher struct {
	Address, ID string
	s           *System
	pid         *actor.PID
}

// Stop stops the watcher.
func (w *Watcher) Stop() { w.s.root.Stop(w.pid) }

// NewWatcher starts a watcher that calls fn (on the watcher's goroutine;
// fn must not block) for each notice.
func (s *System) NewWatcher(fn func(*pb.MailboxChanged)) (*Watcher, error) {
	props := actor.PropsFromFunc(func(ctx actor.Context) {
		if m, ok := ctx.Message().(*pb.MailboxChanged); ok {
			fn(m)
		}
	})
	pid := s.root.Spawn(props)
	return &Watcher{Address: pid.Address, ID: pid.Id, s: s, pid: pid}, nil
}
