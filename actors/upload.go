package actors

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/homing-mail/homing/actors/pb"
	"github.com/homing-mail/homing/mail"
	"github.com/homing-mail/homing/storage"
)

// Uploads: the body of an IMAP APPEND, staged on the session's node.
//
// A session writes an appended message into a body writer of this node's
// queue store (NewBody: up to the inline threshold in memory, beyond it a
// file, as SMTP DATA does), never holding a large one whole. AppendMessage
// sends a small one inline in the MailboxOp; a file is registered here
// under a fresh id and goes to the owner as a pb.BodyRef with that id as
// its upload, which the owner treats as Local Delivery treats a queued
// body (bodyref.go): on this node, on the partition's filesystem, it is
// hard-linked; otherwise the owner stages it, copying it or pulling it
// from this node's body server in chunks, checked against its size and
// CRC-32C. The answer (OK, APPENDUID) comes once the message is durable at
// the owner; then the upload is unregistered and its file removed (the
// partition keeps its own link or copy). A crash leaves the file as an
// orphan of the queue's bodies directory, which the queue removes when it
// opens.

// uploads are the staged bodies of this node's sessions, by id.
type uploads struct {
	mu sync.Mutex
	m  map[string]*storage.FileBody
}

func newUploads() *uploads { return &uploads{m: map[string]*storage.FileBody{}} }

func (u *uploads) add(fb *storage.FileBody) string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	u.mu.Lock()
	defer u.mu.Unlock()
	u.m[id] = fb
	return id
}

func (u *uploads) remove(id string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	delete(u.m, id)
}

// get returns the upload id if it is the body of size and crc.
func (u *uploads) get(id string, size int64, crc uint32) (*storage.FileBody, error) {
	u.mu.Lock()
	fb := u.m[id]
	u.mu.Unlock()
	if fb == nil || fb.Size() != size || fb.CRC() != crc {
		return nil, fmt.Errorf("%w: no such upload %s here", mail.ErrNotFound, id)
	}
	return fb, nil
}

// NewBody returns a writer for the body of a message a session of this
// node appends: this node's queue store's (mail.MemoryBodyWriter when the
// queue has none).
func (s *System) NewBody() (mail.BodyWriter, error) { return s.enq.NewBody() }

// Admit says whether a body of size bytes may be staged on this node now
// (Enqueuer.Admit: nil, or an error wrapping mail.ErrNoSpace while the
// queue store's filesystem is below its free-space limit). IMAP asks
// before it takes an APPEND's literal.
func (s *System) Admit(size int64) error { return s.enq.Admit(size) }

// uploadRate is the transfer rate an APPEND's deadline allows for its
// body on top of the request timeout: at least 1 MiB/s.
const uploadRate = 1 << 20

// AppendMessage sends op (an APPEND) with its body to the owner of the
// account: inline when it is in memory, by reference when it is a file
// of this node (see above). It returns the owner's answer, once the
// message is durable there; the body is this call's to discard after.
func (s *System) AppendMessage(ctx context.Context, op *pb.MailboxOp, body mail.Body) (*pb.MailboxReply, error) {
	defer storage.DiscardBody(body)
	op.Kind = pb.MailboxOp_APPEND
	op.Account = strings.ToLower(op.Account)
	head, fb, ok := storage.BodyFile(body)
	if !ok {
		raw, err := mail.ReadBody(body)
		if err != nil {
			return nil, err
		}
		op.Body = raw
		return s.Mailbox(ctx, op)
	}
	id := s.uploads.add(fb)
	defer s.uploads.remove(id)
	op.Body = nil
	op.BodyRef = &pb.BodyRef{Origin: s.system.Address(), Upload: id, Size: fb.Size(), Crc32C: fb.CRC(), Prefix: head}
	pid, err := s.partitionOf(op.Account)
	if err != nil {
		return nil, err
	}
	timeout := s.cfg.RequestTimeout + time.Duration(body.Size()/uploadRate)*time.Second
	r, err := request[*pb.MailboxReply](ctx, s.root, pid, op, timeout)
	if err != nil {
		return nil, err
	}
	return r, goError(r.Error)
}
