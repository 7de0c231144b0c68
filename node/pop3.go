package node

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/homing-mail/homing/actors"
	"github.com/homing-mail/homing/actors/pb"
	"github.com/homing-mail/homing/cert"
	"github.com/homing-mail/homing/mail"
	"github.com/homing-mail/homing/pop3"
	"github.com/homing-mail/homing/storage"
)

// DefaultPOP3 is where `homing serve` takes POP3 when --pop3 is not given
// (design.md: a single node serves POP3 on 127.0.0.1:1110). A Config's
// empty Listen.POP3 means off, so that nodes started in one process (the
// tests, testkit) do not all ask for the same port.
const DefaultPOP3 = "127.0.0.1:1110"

// startPOP3 starts the POP3 listener (STLS) and the pop3s listener
// (implicit TLS, RFC 8314) when configured, over the node's accounts
// (pop3Backend). They share the guard of SMTP AUTH. Without --tls-cert
// they use a self-signed certificate (development only): passwords are
// then taken over STLS or from loopback.
func (n *Node) startPOP3(context.Context) error {
	cfg := n.cfg
	if cfg.Listen.POP3 == "" && cfg.Listen.POP3S == "" {
		return nil
	}
	tlsConfig, err := cert.Server(cfg.Listen.TLSCert, cfg.Listen.TLSKey, "")
	if err != nil {
		return err
	}
	if tlsConfig == nil {
		if tlsConfig, err = cert.Server("", "", cfg.Hostname); err != nil {
			return err
		}
		n.log.Warn("pop3: no --tls-cert; using a self-signed certificate for STLS and pop3s (development only)")
	}
	pcfg := cfg.POP3
	pcfg.Hostname = cfg.Hostname
	pcfg.TLSConfig = tlsConfig
	pcfg.Guard = n.guard
	srv := pop3.NewServer(pcfg, newPOP3Backend(n.actors), n.log.With("component", "pop3"))
	// One closer for both listeners: the server's Close ends every
	// session of either, and the listeners' goroutines after it.
	var closeOnce sync.Once
	stop := func() error {
		closeOnce.Do(func() { srv.Close() })
		return nil
	}
	if cfg.Listen.POP3 != "" {
		if n.pop3Ln, err = n.listen("--pop3", cfg.Listen.POP3, srv.Serve, stop); err != nil {
			srv.Close()
			return err
		}
	}
	if cfg.Listen.POP3S != "" {
		if n.pop3sLn, err = n.listen("--pop3s", cfg.Listen.POP3S, srv.ServeTLS, stop); err != nil {
			srv.Close()
			return err
		}
	}
	return nil
}

// POP3Addr is the address of the POP3 listener, "" if off.
func (n *Node) POP3Addr() string { return addrOf(n.pop3Ln) }

// POP3SAddr is the address of the pop3s listener, "" if off.
func (n *Node) POP3SAddr() string { return addrOf(n.pop3sLn) }

// pop3Accounts is what the POP3 backend needs from the actors
// (*actors.System): the password check and an account's messages, listed
// and streamed from the account's owner, wherever it runs.
type pop3Accounts interface {
	Authenticate(ctx context.Context, user, password string) (string, error)
	Messages(ctx context.Context, address, folder string) ([]*pb.MessageInfo, error)
	OpenRaw(ctx context.Context, address, id string) (int64, io.ReadCloser, error)
}

// messageDeleter is the operation POP3's QUIT needs and the actors do not
// have yet: TODO(imap): the mailbox rebuild (issue #10, items 3 and 7)
// adds message deletion; *actors.System then satisfies this with
//
//	DeleteMessages(ctx, address string, ids []string) error
//
// which must remove the messages in one operation through the account's
// actor and return only once that is durable (synced, as an append is),
// be idempotent (ids already gone are not an error: a QUIT retried after
// an unclear answer) and take the ids Messages returned. Until then a
// QUIT with marked messages answers -ERR [SYS/TEMP] and deletes nothing.
type messageDeleter interface {
	DeleteMessages(ctx context.Context, address string, ids []string) error
}

// errNoDelete is the QUIT failure while the actors cannot delete.
var errNoDelete = mail.TemporaryError("pop3: deleting messages is not available yet")

// pop3Backend is the node's pop3.Backend over the actors: INBOX of an
// account as Messages lists it (sorted by id, which grows with every
// append: the numbering of a session), the message ids as UIDLs (stable:
// an id is never reused in an account), and the maildrop lock.
//
// TODO(cluster): the lock is this node's, so a second session for the same
// account on another node is not refused, and Lost never closes; it
// belongs to the account's owner (a lock message to the account actor,
// released when the owner changes, which also ends the session) — issue
// #10 item 2.
type pop3Backend struct {
	accounts pop3Accounts
	deleter  messageDeleter // nil until the actors can delete

	mu    sync.Mutex
	locks map[string]bool // accounts whose maildrop a session holds
}

func newPOP3Backend(s *actors.System) *pop3Backend {
	b := &pop3Backend{accounts: s, locks: make(map[string]bool)}
	if d, ok := any(s).(messageDeleter); ok {
		b.deleter = d
	}
	return b
}

// Authenticate implements pop3.Backend.
func (b *pop3Backend) Authenticate(ctx context.Context, user, password string) (string, error) {
	return b.accounts.Authenticate(ctx, user, password)
}

// Open implements pop3.Backend.
func (b *pop3Backend) Open(_ context.Context, account string, _ netip.Addr) (pop3.Maildrop, error) {
	key := strings.ToLower(account)
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.locks[key] {
		return nil, pop3.ErrInUse
	}
	b.locks[key] = true
	return &pop3Drop{b: b, account: key}, nil
}

// pop3Drop is one session's INBOX.
type pop3Drop struct {
	b       *pop3Backend
	account string
	once    sync.Once
}

// List implements pop3.Maildrop. The sizes are the stored ones: a message
// stored from SMTP has CRLF line ends only (bare CR and LF are refused at
// DATA), which is what RETR sends.
func (d *pop3Drop) List(ctx context.Context) ([]pop3.Message, error) {
	infos, err := d.b.accounts.Messages(ctx, d.account, storage.Inbox)
	if err != nil {
		return nil, err
	}
	slices.SortFunc(infos, func(a, b *pb.MessageInfo) int { return compareIDs(a.Id, b.Id) })
	out := make([]pop3.Message, len(infos))
	for i, m := range infos {
		out[i] = pop3.Message{ID: m.Id, Size: m.Size}
	}
	return out, nil
}

// compareIDs orders message ids: decimal integers by value (storage's
// ids), anything else after them as strings.
func compareIDs(a, b string) int {
	x, errA := strconv.ParseUint(a, 10, 64)
	y, errB := strconv.ParseUint(b, 10, 64)
	switch {
	case errA == nil && errB == nil:
		return compareUint(x, y)
	case errA == nil:
		return -1
	case errB == nil:
		return 1
	}
	return strings.Compare(a, b)
}

func compareUint(x, y uint64) int {
	switch {
	case x < y:
		return -1
	case x > y:
		return 1
	}
	return 0
}

// Open implements pop3.Maildrop: the message streamed from its owner in
// pieces (actors.System.OpenRaw).
func (d *pop3Drop) Open(ctx context.Context, id string) (io.ReadCloser, error) {
	_, r, err := d.b.accounts.OpenRaw(ctx, d.account, id)
	return r, err
}

// Delete implements pop3.Maildrop.
func (d *pop3Drop) Delete(ctx context.Context, ids []string) error {
	if d.b.deleter == nil {
		return errNoDelete
	}
	if err := d.b.deleter.DeleteMessages(ctx, d.account, ids); err != nil {
		return fmt.Errorf("deleting %d messages of %s: %w", len(ids), d.account, err)
	}
	return nil
}

// Lost implements pop3.Maildrop: never, while the lock is this node's.
func (d *pop3Drop) Lost() <-chan struct{} { return nil }

// Close implements pop3.Maildrop: the lock is released.
func (d *pop3Drop) Close() error {
	d.once.Do(func() {
		d.b.mu.Lock()
		defer d.b.mu.Unlock()
		delete(d.b.locks, d.account)
	})
	return nil
}
