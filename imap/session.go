package imap

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-sasl"

	"github.com/homing-mail/homing/actors/pb"
	"github.com/homing-mail/homing/guard"
	"github.com/homing-mail/homing/mail"
	"github.com/homing-mail/homing/storage"
)

// session is one IMAP connection (imapserver.Session). imapserver calls
// its methods one at a time from the connection's goroutine, except Idle,
// which runs beside the read of DONE; the owner's notices arrive on the
// watcher's goroutine. mu guards what those share.
type session struct {
	s    *Server
	conn *imapserver.Conn
	h    *connState
	// ctx ends with the session (imapserver's Session methods take none).
	ctx    context.Context
	cancel context.CancelFunc

	mu       sync.Mutex
	account  string
	owner    string // the account's owner at login
	failures int
	watcher  Watcher
	notice   chan struct{} // a change was noticed (buffer 1)
	closing  bool

	sel *selection // the selected folder; nil in the authenticated state
}

func newSession(s *Server, c *imapserver.Conn, h *connState) *session {
	ctx, cancel := context.WithCancel(context.Background())
	return &session{s: s, conn: c, h: h, ctx: ctx, cancel: cancel, notice: make(chan struct{}, 1)}
}

var (
	_ imapserver.SessionIMAP4rev2 = (*session)(nil)
	_ imapserver.SessionSASL      = (*session)(nil)
)

func (s *Server) requestTimeout() time.Duration { return 15 * time.Second }

// loggedIn is the account, "" before login.
func (ss *session) loggedIn() string {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.account
}

func (ss *session) Close() error {
	ss.cancel()
	ss.mu.Lock()
	w, acct := ss.watcher, ss.account
	ss.watcher = nil
	ss.mu.Unlock()
	if w != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		wa, wid := w.Addr()
		_, _ = ss.s.backend.Mailbox(ctx, &pb.MailboxOp{Kind: pb.MailboxOp_UNWATCH, Account: acct, WatcherAddress: wa, WatcherId: wid})
		cancel()
		w.Stop()
	}
	ss.s.forget(ss)
	return nil
}

// bye ends the session with an untagged BYE (RFC 9051 §7.1.5).
func (ss *session) bye(text string) {
	ss.mu.Lock()
	if ss.closing {
		ss.mu.Unlock()
		return
	}
	ss.closing = true
	acct := ss.account
	ss.mu.Unlock()
	ss.s.log.Warn("imap session ended by the server", "account", acct, "reason", text)
	_ = ss.conn.Bye(text)
}

func (ss *session) opCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(ss.ctx, ss.s.requestTimeout())
}

// op runs a mailbox operation of the logged-in account.
func (ss *session) op(op *pb.MailboxOp) (*pb.MailboxReply, error) {
	op.Account = ss.loggedIn()
	ctx, cancel := ss.opCtx()
	defer cancel()
	r, err := ss.s.backend.Mailbox(ctx, op)
	return r, imapError(err)
}

// imapError is the answer to a failed operation (RFC 5530 codes).
func imapError(err error) error {
	var ie *imap.Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ie):
		return err
	case errors.Is(err, storage.ErrNoFolder):
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeNonExistent, Text: "No such mailbox"}
	case errors.Is(err, storage.ErrOverQuota):
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeOverQuota, Text: "Mailbox is full"}
	case errors.Is(err, mail.ErrNoSpace):
		// A store's disk below its free-space limit (storage.Space): a
		// temporary refusal, as SMTP's 452 4.3.1; the store's guard logs
		// the condition once.
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeUnavailable, Text: "Insufficient system storage; try again later"}
	case errors.Is(err, storage.ErrCannot):
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeCannot, Text: "Not possible with this mailbox"}
	case errors.Is(err, mail.ErrExists):
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeAlreadyExists, Text: "Mailbox already exists"}
	case errors.Is(err, storage.ErrUseNotSupported):
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: "USEATTR", Text: "Special use not supported"}
	case errors.Is(err, mail.ErrNotFound):
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeNonExistent, Text: "No such message or mailbox"}
	case errors.Is(err, mail.ErrInvalid):
		return &imap.Error{Type: imap.StatusResponseTypeBad, Code: imap.ResponseCodeClientBug, Text: "Invalid argument"}
	case errors.Is(err, storage.ErrDamaged):
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeServerBug, Text: "The message is damaged"}
	}
	return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeUnavailable, Text: "The mailbox is not reachable now; try again"}
}

// Login checks a password through the guard (the same budgets and gate
// as SMTP AUTH): refused unchecked when the client network's or the
// account's budget is used up; a wrong password answers after the guard's
// delay; the MaxAuthFailures-th failure ends the connection.
func (ss *session) Login(username, password string) error {
	if !ss.h.mayLogin(ss.h.fc.TLS()) {
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodePrivacyRequired, Text: "TLS is required to log in"}
	}
	var attempt *guard.Attempt
	if ss.s.guard != nil {
		var err error
		attempt, err = ss.s.guard.Begin(ss.ctx, ss.h.remote, username)
		switch {
		case errors.Is(err, guard.ErrThrottled):
			ss.pause(ss.s.guard.Config().FailureDelay)
			return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeUnavailable, Text: "Too many failed logins; try again later"}
		case err != nil:
			return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeUnavailable, Text: "Too many logins in progress; try again later"}
		}
	}
	ctx, cancel := ss.opCtx()
	account, err := ss.s.backend.Authenticate(ctx, username, password)
	cancel()
	switch {
	case err == nil && account != "":
		if attempt != nil {
			attempt.Succeeded()
		}
		return ss.loggedInAs(account)
	case err == nil || errors.Is(err, mail.ErrAuthFailed):
		var delay time.Duration
		if attempt != nil {
			delay = attempt.Failed()
		}
		ss.mu.Lock()
		ss.failures++
		n := ss.failures
		ss.mu.Unlock()
		ss.s.log.Info("imap login failed", "client", ss.h.remote, "user", username, "failures", n)
		ss.pause(delay)
		if n >= ss.s.cfg.MaxAuthFailures {
			go ss.bye("Too many failed logins")
		}
		return imapserver.ErrAuthFailed
	default:
		if attempt != nil {
			attempt.Abandoned()
		}
		ss.s.log.Warn("imap login: authenticator failed", "user", username, "err", err)
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeUnavailable, Text: "Temporary authentication failure"}
	}
}

func (ss *session) pause(d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ss.ctx.Done():
	}
}

// loggedInAs starts the session of account: its watcher, and the watch
// of its owner (the session ends with BYE when the owner changes).
func (ss *session) loggedInAs(account string) error {
	w, err := ss.s.backend.NewWatcher(func(m *pb.MailboxChanged) { ss.noticed(m) })
	if err != nil {
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeUnavailable, Text: "Temporary failure"}
	}
	ss.mu.Lock()
	ss.account, ss.watcher, ss.owner = account, w, ss.s.backend.MailboxOwner(account)
	ss.mu.Unlock()
	go ss.watchOwner()
	return nil
}

// noticed takes an owner's notice (on the watcher's goroutine).
func (ss *session) noticed(m *pb.MailboxChanged) {
	if m.Closing {
		// The account actor stopped (idle, or its partition moves):
		// watch again; watchOwner ends the session if the owner moved.
		go ss.rewatch()
	}
	select {
	case ss.notice <- struct{}{}:
	default:
	}
}

func (ss *session) rewatch() {
	ss.mu.Lock()
	w := ss.watcher
	ss.mu.Unlock()
	if w == nil {
		return
	}
	wa, wid := w.Addr()
	if _, err := ss.op(&pb.MailboxOp{Kind: pb.MailboxOp_WATCH, WatcherAddress: wa, WatcherId: wid}); err != nil {
		ss.s.log.Warn("imap session: watching the mailbox again failed; the session ends", "err", err)
		ss.bye("The mailbox moved; please reconnect")
	}
}

// watchOwner ends the session with BYE when the account's owner changes
// (RFC 9051 §7.1.5: the server is closing the connection), and renews the
// watcher's lease.
func (ss *session) watchOwner() {
	t := time.NewTicker(ss.s.cfg.OwnerCheck)
	defer t.Stop()
	renew := time.Now()
	for {
		select {
		case <-ss.ctx.Done():
			return
		case <-t.C:
		}
		ss.mu.Lock()
		acct, owner, w := ss.account, ss.owner, ss.watcher
		ss.mu.Unlock()
		if now := ss.s.backend.MailboxOwner(acct); now != owner {
			ss.s.log.Info("imap session ends: the account's owner changed", "account", acct, "from", owner, "to", now)
			ss.bye("The mailbox moved to another server; please reconnect")
			return
		}
		if w != nil && time.Since(renew) > 15*time.Second {
			renew = time.Now()
			wa, wid := w.Addr()
			if _, err := ss.op(&pb.MailboxOp{Kind: pb.MailboxOp_WATCH, WatcherAddress: wa, WatcherId: wid}); err != nil && !errors.Is(ss.ctx.Err(), context.Canceled) {
				ss.s.log.Warn("imap session: renewing the watch failed", "account", acct, "err", err)
			}
		}
	}
}

func (ss *session) AuthenticateMechanisms() []string { return []string{"PLAIN"} }

// Authenticate is AUTHENTICATE PLAIN (RFC 4616), through Login.
func (ss *session) Authenticate(mech string) (sasl.Server, error) {
	if !strings.EqualFold(mech, "PLAIN") {
		return nil, &imap.Error{Type: imap.StatusResponseTypeNo, Text: "SASL mechanism not supported"}
	}
	return sasl.NewPlainServer(func(identity, username, password string) error {
		if identity != "" && identity != username {
			return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeAuthorizationFailed, Text: "SASL identity not supported"}
		}
		return ss.Login(username, password)
	}), nil
}

// Namespace: one personal namespace, "/" (RFC 2342).
func (ss *session) Namespace() (*imap.NamespaceData, error) {
	return &imap.NamespaceData{Personal: []imap.NamespaceDescriptor{{Prefix: "", Delim: '/'}}}, nil
}

// Create is CREATE (RFC 9051 §6.3.4). The superiors the name needs are
// created first when they do not exist, as the RFC says a server SHOULD
// ("a/b/c" makes "a" and "a/b"), so that LIST shows the hierarchy.
func (ss *session) Create(name string, options *imap.CreateOptions) error {
	for i := 1; i < len(name); i++ {
		if name[i] != '/' || name[i-1] == '/' {
			continue
		}
		_, err := ss.op(&pb.MailboxOp{Kind: pb.MailboxOp_CREATE, Folder: name[:i]})
		if ie := (*imap.Error)(nil); err != nil && !(errors.As(err, &ie) && ie.Code == imap.ResponseCodeAlreadyExists) {
			return err
		}
	}
	use := ""
	if options != nil && len(options.SpecialUse) > 0 {
		use = string(options.SpecialUse[0])
	}
	_, err := ss.op(&pb.MailboxOp{Kind: pb.MailboxOp_CREATE, Folder: name, SpecialUse: use})
	return err
}

func (ss *session) Delete(name string) error {
	_, err := ss.op(&pb.MailboxOp{Kind: pb.MailboxOp_DELETE, Folder: name})
	return err
}

func (ss *session) Rename(from, to string, _ *imap.RenameOptions) error {
	_, err := ss.op(&pb.MailboxOp{Kind: pb.MailboxOp_RENAME, Folder: from, NewName: to})
	return err
}

func (ss *session) Subscribe(name string) error {
	_, err := ss.op(&pb.MailboxOp{Kind: pb.MailboxOp_SUBSCRIBE, Folder: name})
	return err
}

func (ss *session) Unsubscribe(name string) error {
	_, err := ss.op(&pb.MailboxOp{Kind: pb.MailboxOp_UNSUBSCRIBE, Folder: name})
	return err
}

// List is LIST (RFC 9051 §6.3.9) with LIST-EXTENDED selection and
// return options: SUBSCRIBED, SPECIAL-USE (RFC 6154), CHILDREN, STATUS
// (RFC 5819).
func (ss *session) List(w *imapserver.ListWriter, ref string, patterns []string, options *imap.ListOptions) error {
	if len(patterns) == 0 {
		return w.WriteList(&imap.ListData{Attrs: []imap.MailboxAttr{imap.MailboxAttrNoSelect}, Delim: '/'})
	}
	r, err := ss.op(&pb.MailboxOp{Kind: pb.MailboxOp_FOLDERS})
	if err != nil {
		return err
	}
	names := map[string]bool{}
	for _, f := range r.Folders {
		names[f.Name] = true
	}
	for _, f := range r.Folders {
		match := false
		for _, p := range patterns {
			if imapserver.MatchList(f.Name, '/', ref, p) {
				match = true
			}
		}
		if !match || (options.SelectSubscribed && !f.Subscribed) || (options.SelectSpecialUse && f.SpecialUse == "") {
			continue
		}
		d := &imap.ListData{Mailbox: f.Name, Delim: '/'}
		children := false
		for n := range names {
			if strings.HasPrefix(n, f.Name+"/") {
				children = true
			}
		}
		if children {
			d.Attrs = append(d.Attrs, imap.MailboxAttrHasChildren)
		} else {
			d.Attrs = append(d.Attrs, imap.MailboxAttrHasNoChildren)
		}
		if f.Subscribed && (options.SelectSubscribed || options.ReturnSubscribed) {
			d.Attrs = append(d.Attrs, imap.MailboxAttrSubscribed)
		}
		if f.SpecialUse != "" {
			d.Attrs = append(d.Attrs, imap.MailboxAttr(f.SpecialUse))
		}
		if options.ReturnStatus != nil {
			d.Status = statusData(f, options.ReturnStatus)
		}
		if err := w.WriteList(d); err != nil {
			return err
		}
	}
	return nil
}

func statusData(f *pb.FolderInfo, o *imap.StatusOptions) *imap.StatusData {
	d := &imap.StatusData{Mailbox: f.Name}
	if o.NumMessages {
		n := uint32(f.Messages)
		d.NumMessages = &n
	}
	if o.UIDNext {
		d.UIDNext = imap.UID(f.UidNext)
	}
	if o.UIDValidity {
		d.UIDValidity = f.UidValidity
	}
	if o.NumUnseen {
		n := uint32(f.Unseen)
		d.NumUnseen = &n
	}
	if o.NumRecent {
		n := uint32(0)
		d.NumRecent = &n
	}
	if o.Size {
		n := f.Bytes
		d.Size = &n
	}
	if o.HighestModSeq {
		d.HighestModSeq = f.Modseq
	}
	return d
}

func (ss *session) Status(name string, options *imap.StatusOptions) (*imap.StatusData, error) {
	r, err := ss.op(&pb.MailboxOp{Kind: pb.MailboxOp_STATUS, Folder: name})
	if err != nil {
		return nil, err
	}
	return statusData(r.Folder, options), nil
}

// Append is APPEND (RFC 9051 §6.3.12) with flags and date; the OK (with
// APPENDUID, RFC 4315) comes once the message is durable at the owner.
// The literal streams into a body of this node (a file above the inline
// threshold: memory does not grow with the message), which goes to the
// owner inline or by reference (actors/upload.go). A large message that
// cannot fit in the quota is refused before it is written (NO
// [OVERQUOTA], RFC 9208; the owner checks again).
func (ss *session) Append(name string, r imap.LiteralReader, options *imap.AppendOptions) (*imap.AppendData, error) {
	if r.Size() > ss.s.cfg.MaxAppend {
		return nil, &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeTooBig, Text: fmt.Sprintf("Messages are limited to %d bytes", ss.s.cfg.MaxAppend)}
	}
	if r.Size() == 0 {
		return nil, &imap.Error{Type: imap.StatusResponseTypeNo, Text: "Empty message"}
	}
	if r.Size() > appendQuotaCheck {
		q, err := ss.op(&pb.MailboxOp{Kind: pb.MailboxOp_QUOTA})
		if err == nil && q.QuotaBytes > 0 && q.UsedBytes+r.Size() > q.QuotaBytes {
			return nil, imapError(fmt.Errorf("%w: the message does not fit", storage.ErrOverQuota))
		}
	}
	if a, ok := ss.s.backend.(Admitter); ok {
		// This node's store takes the literal: not while its disk is
		// below its free-space limit.
		if err := a.Admit(r.Size()); err != nil {
			return nil, imapError(err)
		}
	}
	w, err := ss.s.backend.NewBody()
	if err != nil {
		return nil, imapError(err)
	}
	buf := make([]byte, appendBuffer)
	n, err := io.CopyBuffer(w, io.LimitReader(r, r.Size()), buf)
	if err == nil && n != r.Size() {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		w.Abort()
		if errors.Is(err, mail.ErrNoSpace) {
			return nil, imapError(err) // the body file met the store's floor
		}
		return nil, err
	}
	body, err := w.Commit()
	if err != nil {
		return nil, imapError(err)
	}
	op := &pb.MailboxOp{Kind: pb.MailboxOp_APPEND, Account: ss.loggedIn(), Folder: name}
	for _, f := range options.Flags {
		op.Flags = append(op.Flags, string(f))
	}
	if !options.Time.IsZero() {
		op.ReceivedUnixNano = options.Time.UnixNano()
	}
	// The owner may pull a large body in pieces: 1 s per MiB on top.
	ctx, cancel := context.WithTimeout(ss.ctx, ss.s.requestTimeout()+time.Duration(n>>20)*time.Second)
	defer cancel()
	rep, err := ss.s.backend.AppendMessage(ctx, op, body)
	if err != nil {
		err = imapError(err)
		var ie *imap.Error
		if errors.As(err, &ie) && ie.Code == imap.ResponseCodeNonExistent {
			// RFC 9051 §6.3.12: TRYCREATE when the folder does not exist.
			ie.Code = imap.ResponseCodeTryCreate
		}
		return nil, err
	}
	return &imap.AppendData{UID: imap.UID(rep.Uid), UIDValidity: rep.UidValidity}, nil
}

// appendBuffer is what an APPEND's literal is read through.
const appendBuffer = 32 << 10

// appendQuotaCheck: an APPEND larger than this asks the quota before it
// writes the message.
const appendQuotaCheck = 64 << 10

func (ss *session) Select(name string, options *imap.SelectOptions) (*imap.SelectData, error) {
	ss.mu.Lock()
	w := ss.watcher
	ss.sel = nil
	ss.mu.Unlock()
	wa, wid := w.Addr()
	r, err := ss.op(&pb.MailboxOp{Kind: pb.MailboxOp_SELECT, Folder: name, WatcherAddress: wa, WatcherId: wid, Packed: true})
	if err != nil {
		return nil, err
	}
	sel, err := newSelection(r, options != nil && options.ReadOnly)
	if err != nil {
		return nil, err
	}
	ss.mu.Lock()
	ss.sel = sel
	ss.mu.Unlock()
	return sel.selectData(r), nil
}

func (ss *session) Unselect() error {
	ss.mu.Lock()
	ss.sel = nil
	ss.mu.Unlock()
	return nil
}

func (ss *session) selected() *selection {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.sel
}

// Poll tells the client what changed, after each command (RFC 9051
// §7: EXPUNGE not after FETCH, STORE, SEARCH).
func (ss *session) Poll(w *imapserver.UpdateWriter, allowExpunge bool) error {
	sel := ss.selected()
	if sel == nil {
		return nil
	}
	select {
	case <-ss.notice:
		ss.sync(sel)
	default:
		if time.Since(sel.synced) > ss.s.cfg.Resync {
			ss.sync(sel)
		}
	}
	return sel.flush(w, allowExpunge)
}

// Idle is IDLE (RFC 2177): updates as the owner's notices come, and a
// sync every Resync in case one was lost.
func (ss *session) Idle(w *imapserver.UpdateWriter, stop <-chan struct{}) error {
	t := time.NewTicker(ss.s.cfg.Resync)
	defer t.Stop()
	for {
		sel := ss.selected()
		if sel != nil {
			if err := sel.flush(w, true); err != nil {
				return err
			}
		}
		select {
		case <-stop:
			return nil
		case <-ss.ctx.Done():
			return nil
		case <-ss.notice:
		case <-t.C:
		}
		if sel != nil {
			ss.sync(sel)
		}
	}
}

// sync asks the owner what changed in the selected folder.
func (ss *session) sync(sel *selection) {
	r, err := ss.op(&pb.MailboxOp{Kind: pb.MailboxOp_SYNC, FolderId: sel.folder.Id, SinceModseq: sel.modseq})
	if err != nil {
		ss.s.log.Info("imap sync failed", "account", ss.loggedIn(), "err", err)
		return
	}
	sel.apply(r)
}
