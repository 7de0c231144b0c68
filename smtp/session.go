package smtp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime/debug"
	"sync"

	gosmtp "github.com/emersion/go-smtp"

	"github.com/homing-mail/homing/mail"
	"github.com/homing-mail/homing/maillog"
)

// session is one SMTP session: go-smtp creates it at the first EHLO/HELO of
// a connection (and again after STARTTLS) and calls its methods as the
// client's commands arrive.
//
// Concurrency: go-smtp calls the methods from the connection's goroutine,
// except that with BDAT (CHUNKING, which go-smtp always advertises) Data
// runs in a goroutine of its own while Reset and Logout may still be
// called, and Server.Close calls Logout from another goroutine. mu guards
// the mutable state; Data works on a snapshot.
type session struct {
	srv  *Server
	conn *gosmtp.Conn
	// netConn is the connection as it was when the session began (the
	// TLS connection after STARTTLS); limited is the limitedConn under
	// it, nil when the listener was not wrapped.
	netConn net.Conn
	limited *limitedConn

	// ctx is the connection's context. go-smtp's Session methods take no
	// context, so the session keeps one: Directory, Enqueuer and
	// Authenticator calls get it, and it ends when the session ends
	// (Logout) or the server closes.
	ctx    context.Context
	cancel context.CancelFunc

	clientIP netip.Addr // invalid when the peer is not TCP
	tls      bool

	mu           sync.Mutex
	helo         string
	authAccount  string // set by a successful AUTH; survives RSET
	clusterPeer  string // the member authenticated with X-HOMING-CLUSTER
	authFailures int
	errors       int // error replies to MAIL, RCPT and DATA (SoftErrorLimit, HardErrorLimit)
	tx           transaction
}

// transaction is the state of one mail transaction (MAIL to DATA).
type transaction struct {
	started  bool
	from     string
	smtputf8 bool
	body8bit bool
	ret      mail.Return
	envID    string
	mailAuth string // the MAIL AUTH= parameter (RFC 4954 §5), logged only
	rcpts    []*mail.Recipient
	seen     map[string]bool
	// rated is set once the message took its token of the message rate
	// limits; limited when it got none (every RCPT then gets 450).
	rated, limited bool
}

var (
	_ gosmtp.Session     = (*session)(nil)
	_ gosmtp.AuthSession = (*session)(nil)
)

func newSession(srv *Server, c *gosmtp.Conn) *session {
	s := &session{srv: srv, conn: c, netConn: c.Conn(), helo: c.Hostname()}
	s.limited = asLimited(s.netConn)
	_, s.tls = c.TLSConnectionState()
	if ta, ok := s.netConn.RemoteAddr().(*net.TCPAddr); ok {
		if a, ok := netip.AddrFromSlice(ta.IP); ok {
			s.clientIP = a.Unmap()
		}
	}
	s.ctx, s.cancel = context.WithCancel(srv.ctx)
	srv.m.sessionStarted(string(srv.cfg.Source))
	return s
}

// recoverPanic turns a panic in a session method into the generic 451
// 4.3.0 reply, counts it and logs it with its stack. It must be deferred
// directly.
func (s *session) recoverPanic(where string, errp *error) {
	if p := recover(); p != nil {
		s.srv.recovered(where, p, debug.Stack())
		if errp != nil {
			*errp = errTempFailure()
		}
	}
}

// answer counts the reply err stands for (nil is 250) and returns err.
func (s *session) answer(err error) error {
	code := 250
	var se *gosmtp.SMTPError
	if errors.As(err, &se) {
		code = se.Code
	}
	s.srv.m.reply(string(s.srv.cfg.Source), code)
	return err
}

// Reset discards the current transaction (RSET, a new EHLO, the end of
// DATA). Authentication is connection state and stays.
func (s *session) Reset() {
	defer s.recoverPanic("RSET", nil)
	helo := s.conn.Hostname() // go-smtp sets a new EHLO name before it calls Reset
	s.mu.Lock()
	defer s.mu.Unlock()
	s.helo = helo
	s.tx = transaction{}
}

// Logout ends the session: its context is cancelled.
func (s *session) Logout() (err error) {
	defer s.recoverPanic("Logout", nil)
	s.mu.Lock()
	s.tx = transaction{}
	s.mu.Unlock()
	s.cancel()
	s.srv.m.sessionEnded(string(s.srv.cfg.Source))
	return nil
}

// Mail starts a transaction (RFC 5321 §4.1.1.2). go-smtp has checked the
// syntax and the SIZE parameter; the reverse-path is parsed again with
// mail.ParseAddress ("" is the null sender, RFC 5321 §4.5.5).
func (s *session) Mail(from string, opts *gosmtp.MailOptions) (err error) {
	defer s.recoverPanic("MAIL", &err)
	err = s.limitErrors(s.mail(from, opts))
	s.logRefusal("MAIL", from, "", err)
	return s.answer(err)
}

func (s *session) mail(from string, opts *gosmtp.MailOptions) error {
	if opts == nil {
		opts = &gosmtp.MailOptions{}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv.cfg.Submission && s.authAccount == "" && s.clusterPeer == "" {
		return errAuthRequired() // RFC 6409 §4.3
	}
	if s.tx.started {
		return errNestedMail() // RFC 5321 §4.1.4
	}
	if opts.Size > s.srv.cfg.MaxMessageBytes {
		return errTooBig() // RFC 1870 §6.1
	}
	if s.srv.admit(opts.Size) != nil {
		return errNoSpace() // RFC 1870 §6.1, Postfix's queue_minfree
	}
	addr := ""
	if from != "" {
		a, err := mail.ParseAddress(from)
		switch {
		case errors.Is(err, mail.ErrRelaySyntax):
			return reply(553, mail.StatusBadSender, "Sender address syntax not accepted")
		case err != nil:
			return reply(501, mail.StatusBadSender, "Bad sender address syntax")
		}
		addr = a
	}
	if !opts.UTF8 && !isASCII(addr) {
		return errNeedUTF8() // RFC 6531 §3.5
	}
	tx := transaction{
		started:  true,
		from:     addr,
		smtputf8: opts.UTF8,
		body8bit: opts.Body == gosmtp.Body8BitMIME,
		ret:      mail.Return(opts.Return),
		envID:    opts.EnvelopeID,
		seen:     make(map[string]bool),
	}
	if opts.Auth != nil {
		// RFC 4954 §5: the AUTH parameter of an untrusted client must
		// not be believed. Homing records the authenticated identity
		// of this session in the envelope instead and only logs this.
		tx.mailAuth = *opts.Auth
		s.srv.log.Debug("MAIL AUTH= parameter", "value", tx.mailAuth, "authenticated", s.authAccount)
	}
	s.tx = tx
	return nil
}

// Rcpt adds a recipient (RFC 5321 §4.1.1.3). The order of checks matters:
// a relay trick or a domain that is not local is refused to an
// unauthenticated client before anything else is looked at.
func (s *session) Rcpt(to string, opts *gosmtp.RcptOptions) (err error) {
	defer s.recoverPanic("RCPT", &err)
	err = s.limitErrors(s.rcpt(to, opts))
	s.logRefusal("RCPT", "", to, err)
	return s.answer(err)
}

// logRefusal writes a refusal of MAIL, RCPT or DATA (a reply of 400 or
// more) to the delivery log, with the client, its HELO and the
// transaction's sender (from, when the command is MAIL).
func (s *session) logRefusal(stage, from, to string, err error) {
	var se *gosmtp.SMTPError
	if s.srv.cfg.MailLog == nil || !errors.As(err, &se) || se.Code < 400 {
		return
	}
	s.mu.Lock()
	helo := s.helo
	if stage != "MAIL" {
		from = s.tx.from
	}
	s.mu.Unlock()
	client := ""
	if s.clientIP.IsValid() {
		client = s.clientIP.String()
	}
	dsn := ""
	if se.EnhancedCode != gosmtp.NoEnhancedCode && se.EnhancedCode != gosmtp.EnhancedCodeNotSet {
		dsn = fmt.Sprintf("%d.%d.%d", se.EnhancedCode[0], se.EnhancedCode[1], se.EnhancedCode[2])
	}
	s.srv.cfg.MailLog.Rejected(maillog.Reject{Stage: stage, Listener: string(s.srv.cfg.Source), Client: client, HELO: helo,
		From: from, To: to, Code: se.Code, DSN: mail.Status(dsn), Text: se.Message})
}

func (s *session) rcpt(to string, opts *gosmtp.RcptOptions) error {
	if opts == nil {
		opts = &gosmtp.RcptOptions{}
	}
	s.mu.Lock()
	authed := s.authAccount != "" || s.clusterPeer != ""
	started, smtputf8 := s.tx.started, s.tx.smtputf8
	s.mu.Unlock()
	if !started {
		return reply(503, mail.StatusBadCommand, "Need MAIL before RCPT")
	}

	addr, err := mail.ParseAddress(to)
	switch {
	case errors.Is(err, mail.ErrRelaySyntax):
		// Source routes, the percent hack, bang paths and extra '@'s.
		// go-smtp has already dropped a source route and unquoted a
		// quoted local part, so "\"u@x\"@local" arrives as "u@x@local".
		if !authed {
			return errRelayDenied()
		}
		return reply(553, mail.StatusBadDestination, "Relay syntax in addresses is not accepted")
	case err != nil:
		return reply(501, mail.StatusBadDestination, "Bad destination mailbox address syntax")
	}
	if !smtputf8 && !isASCII(addr) {
		return errNeedUTF8()
	}
	domain := mail.Domain(addr)
	local := s.srv.dir.IsLocalDomain(domain)
	if !local && !authed {
		return errRelayDenied()
	}

	s.mu.Lock()
	dup := s.tx.seen[addr]
	full := len(s.tx.rcpts) >= s.srv.cfg.MaxRecipients
	s.mu.Unlock()
	if dup {
		return nil // a repeated RCPT is accepted again and counted once
	}
	if full {
		return errTooManyRcpts() // RFC 5321 §4.5.3.1.8
	}
	if err := s.rateLimit(); err != nil {
		return err
	}

	account := ""
	if local {
		account, err = s.srv.dir.Resolve(s.ctx, addr)
		switch {
		case errors.Is(err, mail.ErrNoSuchUser):
			return errNoSuchUser()
		case errors.Is(err, mail.ErrDisabled):
			return errDisabled()
		case err != nil:
			s.srv.log.Warn("directory lookup failed", "rcpt", addr, "err", err)
			return errDirectoryDown()
		case account == "":
			s.srv.log.Warn("directory returned an empty account", "rcpt", addr)
			return errDirectoryDown()
		}
	}

	r := &mail.Recipient{Addr: addr, Account: account, State: mail.StatePending}
	for _, n := range opts.Notify {
		r.Notify = append(r.Notify, mail.Notify(n)) // same keywords, RFC 3461 §4.1
	}
	if opts.OriginalRecipient != "" {
		// RFC 3461 §4.2, kept decoded as "type;addr".
		typ := "rfc822"
		if opts.OriginalRecipientType == gosmtp.DSNAddressTypeUTF8 {
			typ = "utf-8"
		}
		r.ORcpt = typ + ";" + opts.OriginalRecipient
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.tx.started {
		// The session ended while the directory was asked.
		return errTempFailure()
	}
	if s.tx.seen[addr] {
		return nil
	}
	if len(s.tx.rcpts) >= s.srv.cfg.MaxRecipients {
		return errTooManyRcpts()
	}
	s.tx.seen[addr] = true
	s.tx.rcpts = append(s.tx.rcpts, r)
	return nil
}

// isASCII reports whether s is 7-bit.
func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// limitErrors counts err when it is an error reply that the client
// caused and applies the session's error limits (Postfix's
// smtpd_soft_error_limit and smtpd_hard_error_limit): beyond
// SoftErrorLimit errors each error reply waits ErrorSleep; the
// HardErrorLimit-th becomes 421 4.7.0 and the connection is closed after
// it. Every 5xx counts, and every 4xx but 451: 451 is "local error in
// processing" (RFC 5321 §4.2.3), the server's own trouble (a directory
// that does not answer, an owner in a handoff), for which a client that
// keeps trying in one session must not be cut off. A cluster member's
// session is exempt.
func (s *session) limitErrors(err error) error {
	var se *gosmtp.SMTPError
	if err == nil || !errors.As(err, &se) || se.Code < 400 || se.Code == 451 {
		return err
	}
	s.mu.Lock()
	member := s.clusterPeer != ""
	s.errors++
	n := s.errors
	s.mu.Unlock()
	cfg := s.srv.cfg
	switch {
	case member:
		return err
	case n >= cfg.HardErrorLimit:
		s.srv.m.errorLimited(string(cfg.Source), "disconnected")
		s.srv.abuseLog.Info("too many errors in the session, closing it", "client", s.clientIP, "errors", n)
		s.closeAfterReply()
		return reply(421, mail.StatusTempAuth, "Too many errors, closing connection")
	case n > cfg.SoftErrorLimit:
		s.srv.m.errorLimited(string(cfg.Source), "delayed")
		s.pause(cfg.ErrorSleep)
	}
	return err
}

// rateLimit takes the transaction's token of the message rate limits (per
// client network, and per authenticated sender) at its first recipient.
// Without one, RCPT answers 450 4.7.1 for the rest of the transaction:
// RFC 5321 §4.2.2 gives 450 for a mailbox "temporarily blocked for policy
// reasons", and §4.3.2 lists it among RCPT's replies (not MAIL's; 452 would
// say "insufficient storage", and after RCPT "too many recipients", which
// makes a client send the rest in another transaction at once). The client
// keeps the message and tries later. Cluster members are exempt.
func (s *session) rateLimit() error {
	s.mu.Lock()
	rated, limited := s.tx.rated, s.tx.limited
	account, member := s.authAccount, s.clusterPeer != ""
	s.tx.rated = true
	s.mu.Unlock()
	switch {
	case limited:
		return errRateLimited()
	case rated || member:
		return nil
	}
	by := ""
	if ok, _ := s.srv.netRate.Allow(s.srv.guard.Network(s.clientIP).String()); !ok {
		by = "network"
	} else if account != "" {
		if ok, _ := s.srv.senderRate.Allow(account); !ok {
			by = "sender"
		}
	}
	if by == "" {
		return nil
	}
	s.mu.Lock()
	if s.tx.started {
		s.tx.limited = true
	}
	s.mu.Unlock()
	s.srv.m.rateLimit(string(s.srv.cfg.Source), by)
	s.srv.abuseLog.Info("message rate limit reached", "by", by, "client", s.clientIP, "sender", account)
	return errRateLimited()
}
