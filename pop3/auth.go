package pop3

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"github.com/homing-mail/homing/guard"
	"github.com/homing-mail/homing/mail"
)

// mechPlain is the one SASL mechanism offered (RFC 4616).
const mechPlain = "PLAIN"

// textPlaintext refuses a password on a connection that may not carry one.
const textPlaintext = "plaintext authentication disallowed without TLS, use STLS"

// passwordsAllowed reports whether this connection may carry a password:
// over TLS, or from loopback. RFC 2595 §2.4 lets a server refuse
// plaintext passwords without TLS, and RFC 8314 §3 says submission and
// access of mail should use TLS; a client on the same host has no network
// to be overheard on.
func (s *session) passwordsAllowed() bool {
	return s.tls || (s.clientIP.IsValid() && s.clientIP.IsLoopback())
}

// cmdUser is USER name (RFC 1939 §7). The answer is +OK whatever the name,
// so that USER does not tell which accounts exist.
func (s *session) cmdUser(cmd command) {
	if !s.passwordsAllowed() {
		s.refusePlaintext()
		return
	}
	if len(cmd.Args) != 1 {
		s.clientError(textSyntax)
		return
	}
	s.user = cmd.Args[0]
	s.ok("send PASS")
}

// cmdPass is PASS string (RFC 1939 §7): the password is the rest of the
// line, spaces included. It needs a USER just before; after it, whatever
// the answer, a new USER is needed.
func (s *session) cmdPass(cmd command) {
	if !s.passwordsAllowed() {
		s.refusePlaintext()
		return
	}
	user := s.user
	s.user = ""
	switch {
	case user == "":
		s.clientError("USER first")
	case cmd.Rest == "":
		s.clientError(textSyntax)
	default:
		s.login(user, cmd.Rest, "")
	}
}

// refusePlaintext answers USER, PASS or AUTH on a connection that may not
// carry a password (RFC 3206 §5: [AUTH]); it counts as a client error.
func (s *session) refusePlaintext() {
	s.srv.abuseLog.Info("POP3 plaintext login refused: no TLS", "client", s.clientIP)
	if s.state == stateAuthorization {
		s.errors++
		if s.errors >= s.srv.cfg.MaxErrorsBeforeAuth {
			s.fail("", textTooMany)
			s.end = true
			return
		}
	}
	s.fail(codeAuth, textPlaintext)
}

// cmdAuth is AUTH (RFC 5034 §4). Without arguments it lists the mechanisms
// (as RFC 1734 servers did, and clients still ask); AUTH PLAIN takes the
// response as an initial response ("=" for an empty one) or, without
// one, after an empty "+ " challenge; "*" cancels (-ERR).
func (s *session) cmdAuth(cmd command) {
	if len(cmd.Args) == 0 {
		s.ok("SASL mechanisms follow")
		if s.passwordsAllowed() {
			s.w.WriteString(mechPlain + "\r\n")
		}
		s.w.WriteString(".\r\n")
		return
	}
	if !strings.EqualFold(cmd.Args[0], mechPlain) {
		s.clientError("unsupported authentication mechanism")
		return
	}
	if !s.passwordsAllowed() {
		s.refusePlaintext()
		return
	}
	if len(cmd.Args) > 2 {
		s.clientError(textSyntax)
		return
	}
	var response string
	if len(cmd.Args) == 2 {
		response = cmd.Args[1]
	} else {
		// RFC 5034 §4: the server's challenge is "+" SP and the base64
		// challenge, here empty (PLAIN has none).
		s.w.WriteString("+ \r\n")
		line, err := s.readLine()
		switch {
		case errors.Is(err, errLineTooLong):
			s.clientError(textLineTooLong)
			return
		case err != nil:
			// The connection failed, the timeout or an interrupt: the
			// command loop's next read sees the same and ends.
			s.fail("", "authentication aborted")
			s.end = true
			return
		}
		response = strings.TrimRight(string(line), "\r\n")
	}
	if response == "*" {
		s.clientError("authentication cancelled")
		return
	}
	authzid, user, password, ok := decodePlain(response)
	if !ok {
		s.clientError("malformed authentication response")
		return
	}
	s.login(user, password, authzid)
}

// decodePlain decodes a PLAIN response (RFC 4616 §2: [authzid] NUL authcid
// NUL passwd, in base64 per RFC 5034 §4; "=" is the empty response, which
// PLAIN cannot use). authcid and passwd must not be empty.
func decodePlain(response string) (authzid, user, password string, ok bool) {
	if response == "" || response == "=" {
		return "", "", "", false
	}
	raw, err := base64.StdEncoding.DecodeString(response)
	if err != nil {
		return "", "", "", false
	}
	parts := bytes.Split(raw, []byte{0})
	if len(parts) != 3 || len(parts[1]) == 0 || len(parts[2]) == 0 {
		return "", "", "", false
	}
	return string(parts[0]), string(parts[1]), string(parts[2]), true
}

// login checks a password through the guard and, when it is right, opens
// the maildrop. The attempt first reserves a failure in the client
// network's budget and in the budget of the account from that network,
// then waits for a password-check slot; a used-up budget or no free slot
// is answered -ERR [SYS/TEMP] unchecked. A wrong password waits the
// guard's delay (which grows with the recent failures) before its -ERR
// [AUTH]; the MaxAuthFailures-th on a connection closes it. An authzid
// other than the user (acting as another user) is wrong credentials.
func (s *session) login(user, password, authzid string) {
	attempt, err := s.srv.guard.Begin(s.ctx, s.clientIP, user)
	switch {
	case errors.Is(err, guard.ErrThrottled):
		s.srv.abuseLog.Info("POP3 login refused unchecked: too many failures", "client", s.clientIP, "user", user)
		s.pause(s.srv.guard.Config().FailureDelay)
		s.fail(codeSysTemp, "too many failed logins, try again later")
		return
	case errors.Is(err, guard.ErrBusy):
		s.srv.abuseLog.Info("POP3 login refused unchecked: every password check slot is busy", "client", s.clientIP, "user", user)
		s.fail(codeSysTemp, "too many logins in progress, try again later")
		return
	case err != nil:
		s.fail(codeSysTemp, textTemporary)
		return
	}
	var account string
	if authzid != "" && authzid != user {
		err = mail.ErrAuthFailed
	} else {
		account, err = s.srv.backend.Authenticate(s.ctx, user, password)
	}
	switch {
	case err == nil && account != "":
		attempt.Succeeded()
		s.open(account)
	case err == nil || errors.Is(err, mail.ErrAuthFailed):
		delay := attempt.Failed()
		s.authFailures++
		s.srv.abuseLog.Info("POP3 login failed", "client", s.clientIP, "user", user, "failures", s.authFailures, "delay", delay)
		s.pause(delay)
		s.fail(codeAuth, "authentication failed")
		if s.authFailures >= s.srv.cfg.MaxAuthFailures {
			s.end = true
		}
	default:
		attempt.Abandoned()
		s.srv.log.Warn("POP3: the password check failed", "user", user, "err", err)
		s.fail(codeSysTemp, textTemporary)
	}
}

// open takes account's maildrop lock and reads its list (RFC 1939 §4:
// "the POP3 server then acquires an exclusive-access lock on the
// maildrop"), and enters the TRANSACTION state. A lock held by another
// session is -ERR [IN-USE] (RFC 2449 §8.1), and the session stays in the
// AUTHORIZATION state.
func (s *session) open(account string) {
	drop, err := s.srv.backend.Open(s.ctx, account, s.clientIP)
	switch {
	case errors.Is(err, ErrInUse):
		s.srv.log.Info("POP3 login refused: the maildrop is in use", "client", s.clientIP, "account", account)
		s.fail(codeInUse, "maildrop already locked by another session")
		return
	case err != nil:
		s.backendFailure("opening the maildrop", err)
		return
	}
	msgs, err := drop.List(s.ctx)
	if err != nil {
		if cerr := drop.Close(); cerr != nil {
			s.srv.log.Warn("POP3: releasing the maildrop failed", "account", account, "err", cerr)
		}
		s.backendFailure("listing the maildrop", err)
		return
	}
	s.drop, s.account, s.state = drop, account, stateTransaction
	s.msgs = make([]entry, len(msgs))
	var total int64
	for i, m := range msgs {
		s.msgs[i] = entry{Message: m, uid: UniqueID(m.ID)}
		total += m.Size
	}
	if lost := drop.Lost(); lost != nil {
		go func() {
			select {
			case <-lost:
				s.interrupt(reasonLost)
			case <-s.done:
			}
		}()
	}
	s.srv.log.Info("POP3 login", "client", s.clientIP, "account", account, "messages", len(msgs), "tls", s.tls)
	s.ok(fmt.Sprintf("maildrop has %d messages (%d octets)", len(msgs), total))
}

// backendFailure answers a failure of the backend: -ERR [SYS/TEMP] when it
// is temporary (mail.IsTemporary), [SYS/PERM] otherwise, with a generic
// text; the cause goes to the log.
func (s *session) backendFailure(what string, err error) {
	s.srv.log.Warn("POP3: "+what+" failed", "account", s.account, "client", s.clientIP, "err", err)
	if mail.IsTemporary(err) {
		s.fail(codeSysTemp, textTemporary)
		return
	}
	s.fail(codeSysPerm, "mailbox unavailable")
}

// cmdStls is STLS (RFC 2595 §4): "+OK" and the TLS handshake, after which
// the session is in the AUTHORIZATION state again with nothing of before
// kept (a USER given is forgotten, and the client must ask CAPA anew).
func (s *session) cmdStls(cmd command) {
	switch {
	case len(cmd.Args) != 0:
		s.clientError(textSyntax)
	case s.srv.tlsConfig() == nil:
		s.clientError("TLS not available")
	case s.tls:
		s.clientError("command not permitted when TLS active")
	default:
		s.ok("begin TLS negotiation")
		if err := s.w.Flush(); err != nil {
			s.end = true
			return
		}
		if !s.startTLS() {
			s.end = true
			return
		}
		s.user = ""
	}
}
