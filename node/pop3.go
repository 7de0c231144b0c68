package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/homing-mail/homing/actors"
	"github.com/homing-mail/homing/actors/pb"
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
	// The SMTP listeners' source (startSMTP ran): reloaded on SIGHUP,
	// renewed by ACME.
	tlsConfig := n.trust.certs.Config("", nil)
	var err error
	if n.trust.certs.SelfSigned() && !cfg.Trust.ACME.Enabled() {
		n.log.Warn("pop3: no --tls-cert; using a self-signed certificate for STLS and pop3s (development only)")
	}
	pcfg := cfg.POP3
	pcfg.Hostname = cfg.Hostname
	pcfg.TLSConfig = tlsConfig
	pcfg.Guard = n.guard
	backend := newPOP3Backend(n.actors, cfg.POP3LockLease, n.log.With("component", "pop3"))
	srv := pop3.NewServer(pcfg, backend, n.log.With("component", "pop3"))
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
// (*actors.System): the password check, mailbox operations at the
// account's owner (the lock, INBOX's index and sizes, the deletion), where
// the owner is, a receiver of its notices, and a message streamed from it.
type pop3Accounts interface {
	Authenticate(ctx context.Context, user, password string) (string, error)
	Mailbox(ctx context.Context, op *pb.MailboxOp) (*pb.MailboxReply, error)
	MailboxOwner(account string) string
	NewWatcher(fn func(*pb.MailboxChanged)) (*actors.Watcher, error)
	OpenRaw(ctx context.Context, address, id string) (int64, io.ReadCloser, error)
}

// pop3Backend is the node's pop3.Backend over the account actors: a POP3
// session on any node works on the INBOX of the account at its owner,
// as an IMAP session does (README, "IMAP and the mailbox model").
//
//   - The maildrop lock (RFC 1939 §8) is the owner's: a LOCK lease held
//     by the account actor for the session's watcher (actors/mailbox.go),
//     so a second session for the account on any node is refused
//     [IN-USE]. The session renews it every third of the lease; the lease
//     of a session whose node died runs out, and the maildrop is free
//     again. The watcher hears when the account actor stops (its lock
//     with it): the session takes it again at once, and when another
//     session got it meanwhile, the maildrop is lost.
//   - The owner changes (kill -9, leave, join): the session sees it (it
//     looks every ownerCheck) and its maildrop is lost: pop3 ends it with
//     -ERR [SYS/TEMP]; a reconnect works once the new owner has the
//     partition. Nothing is deleted but by QUIT.
//   - The list is INBOX's index when the session began (SELECT), in UID
//     order (the order of arrival), with each message's size with CRLF
//     line ends: the octets RETR sends (RFC 1939 §11), also for a message
//     appended over IMAP with bare LFs.
//   - The UIDL is the message id, not UIDVALIDITY+UID: the id is the
//     account's for the message's life, never reused, the same in every
//     session, after a restart and on every owner (it is in the shared
//     store); a UID changes when a message leaves INBOX and comes back
//     (IMAP MOVE gives it a new UID, the id stays), so a client would
//     fetch it again, and INBOX's UIDVALIDITY would have to be in it too.
//   - QUIT deletes the marked messages by their UIDs in INBOX in one
//     REMOVE at the owner, answered once durable; UIDs already gone
//     (expunged or moved by an IMAP session meanwhile) count as done, so
//     a QUIT repeated after an unclear answer deletes nothing twice. IMAP
//     sessions of the account hear the EXPUNGEs.
type pop3Backend struct {
	accounts   pop3Accounts
	lease      time.Duration
	ownerCheck time.Duration
	log        *slog.Logger
}

// ownerCheck is how often a session looks where its account is (as an
// IMAP session does).
const pop3OwnerCheck = 250 * time.Millisecond

func newPOP3Backend(a pop3Accounts, lease time.Duration, log *slog.Logger) *pop3Backend {
	if lease <= 0 {
		lease = DefaultPOP3LockLease
	}
	return &pop3Backend{accounts: a, lease: lease, ownerCheck: pop3OwnerCheck, log: log}
}

// DefaultPOP3LockLease is the maildrop lock's lease when the Config sets
// none.
const DefaultPOP3LockLease = 30 * time.Second

// Authenticate implements pop3.Backend.
func (b *pop3Backend) Authenticate(ctx context.Context, user, password string) (string, error) {
	return b.accounts.Authenticate(ctx, user, password)
}

// Open implements pop3.Backend: the lock at the owner, then the session's
// watch of it.
func (b *pop3Backend) Open(ctx context.Context, account string, _ netip.Addr) (pop3.Maildrop, error) {
	d := &pop3Drop{b: b, account: strings.ToLower(account), lost: make(chan struct{}), done: make(chan struct{})}
	w, err := b.accounts.NewWatcher(d.noticed)
	if err != nil {
		return nil, err
	}
	d.watcher = w
	d.owner = b.accounts.MailboxOwner(d.account)
	if err := d.lock(ctx); err != nil {
		w.Stop()
		if errors.Is(err, mail.ErrExists) {
			return nil, pop3.ErrInUse
		}
		return nil, err
	}
	go d.watch()
	return d, nil
}

// pop3Drop is one session's INBOX.
type pop3Drop struct {
	b       *pop3Backend
	account string
	owner   string // the account's owner at Open
	watcher *actors.Watcher

	folder uint32            // INBOX's id (List)
	uids   map[string]uint32 // message id -> UID in INBOX (List)

	lost     chan struct{}
	lostOnce sync.Once
	done     chan struct{} // Close
	once     sync.Once
}

// lock takes or renews the lock at the owner.
func (d *pop3Drop) lock(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, d.b.lease/3)
	defer cancel()
	_, err := d.b.accounts.Mailbox(ctx, &pb.MailboxOp{Kind: pb.MailboxOp_LOCK, Account: d.account,
		WatcherAddress: d.watcher.Address, WatcherId: d.watcher.ID, LeaseMillis: d.b.lease.Milliseconds()})
	return err
}

// noticed takes a notice of the owner (on the watcher's goroutine): when
// the account actor stops, the lock is taken again at once.
func (d *pop3Drop) noticed(m *pb.MailboxChanged) {
	if m.Closing {
		go func() {
			select {
			case <-d.done:
			default:
				d.renew()
			}
		}()
	}
}

// renew renews the lock; a lock another session holds now, or one that
// could not be renewed within its lease, is lost.
func (d *pop3Drop) renew() {
	err := d.lock(context.Background())
	switch {
	case err == nil:
	case errors.Is(err, mail.ErrExists):
		d.b.log.Info("pop3: the maildrop lock went to another session", "account", d.account)
		d.setLost()
	default:
		d.b.log.Info("pop3: renewing the maildrop lock failed", "account", d.account, "err", err)
	}
}

func (d *pop3Drop) setLost() { d.lostOnce.Do(func() { close(d.lost) }) }

// watch renews the lock every third of the lease and loses the maildrop
// when the account's owner changes or the lock cannot be kept.
func (d *pop3Drop) watch() {
	t := time.NewTicker(d.b.ownerCheck)
	defer t.Stop()
	renewed := time.Now()
	for {
		select {
		case <-d.done:
			return
		case <-t.C:
		}
		if now := d.b.accounts.MailboxOwner(d.account); now != d.owner {
			d.b.log.Info("pop3 session ends: the account's owner changed", "account", d.account, "from", d.owner, "to", now)
			d.setLost()
			return
		}
		if time.Since(renewed) >= d.b.lease/3 {
			if err := d.lock(context.Background()); err != nil {
				if errors.Is(err, mail.ErrExists) || time.Since(renewed) >= d.b.lease {
					d.b.log.Info("pop3 session ends: the maildrop lock is lost", "account", d.account, "err", err)
					d.setLost()
					return
				}
				continue
			}
			renewed = time.Now()
		}
	}
}

// List implements pop3.Maildrop: INBOX's index at the owner, and each
// message's size as RETR sends it.
func (d *pop3Drop) List(ctx context.Context) ([]pop3.Message, error) {
	r, err := d.b.accounts.Mailbox(ctx, &pb.MailboxOp{Kind: pb.MailboxOp_SELECT, Account: d.account, Folder: storage.Inbox})
	if err != nil {
		return nil, err
	}
	d.folder = r.Folder.GetId()
	d.uids = make(map[string]uint32, len(r.Entries))
	uids := make([]uint32, 0, len(r.Entries))
	for _, e := range r.Entries {
		uids = append(uids, e.Uid)
	}
	out := make([]pop3.Message, 0, len(uids))
	for start := 0; start < len(uids); start += pop3FetchBatch {
		part := uids[start:min(start+pop3FetchBatch, len(uids))]
		f, err := d.b.accounts.Mailbox(ctx, &pb.MailboxOp{Kind: pb.MailboxOp_FETCH, Account: d.account, FolderId: d.folder, Uids: part})
		if err != nil {
			return nil, err
		}
		// FETCH answers in UID order, leaving out what was expunged since.
		for _, e := range f.Entries {
			id := fmt.Sprint(e.Id)
			size := e.CrlfSize
			if size <= 0 {
				size = e.Size
			}
			d.uids[id] = e.Uid
			out = append(out, pop3.Message{ID: id, Size: size})
		}
	}
	return out, nil
}

// pop3FetchBatch is how many messages one FETCH of List asks about.
const pop3FetchBatch = 500

// Open implements pop3.Maildrop: the message streamed from its owner in
// pieces (actors.System.OpenRaw).
func (d *pop3Drop) Open(ctx context.Context, id string) (io.ReadCloser, error) {
	_, r, err := d.b.accounts.OpenRaw(ctx, d.account, id)
	return r, err
}

// Delete implements pop3.Maildrop: one REMOVE of their UIDs in INBOX,
// answered once durable.
func (d *pop3Drop) Delete(ctx context.Context, ids []string) error {
	uids := make([]uint32, 0, len(ids))
	for _, id := range ids {
		if u, ok := d.uids[id]; ok {
			uids = append(uids, u)
		}
	}
	if len(uids) == 0 {
		return nil
	}
	if _, err := d.b.accounts.Mailbox(ctx, &pb.MailboxOp{Kind: pb.MailboxOp_REMOVE, Account: d.account, FolderId: d.folder, Uids: uids}); err != nil {
		return fmt.Errorf("deleting %d messages of %s: %w", len(uids), d.account, err)
	}
	return nil
}

// Lost implements pop3.Maildrop.
func (d *pop3Drop) Lost() <-chan struct{} { return d.lost }

// Close implements pop3.Maildrop: the lock is released at the owner (a
// lock that cannot be released runs out with its lease).
func (d *pop3Drop) Close() error {
	d.once.Do(func() {
		close(d.done)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, err := d.b.accounts.Mailbox(ctx, &pb.MailboxOp{Kind: pb.MailboxOp_UNLOCK, Account: d.account,
			WatcherAddress: d.watcher.Address, WatcherId: d.watcher.ID}); err != nil {
			d.b.log.Info("pop3: releasing the maildrop lock failed; its lease runs out", "account", d.account, "err", err)
		}
		d.watcher.Stop()
	})
	return nil
}
