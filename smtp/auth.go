package smtp

import (
	"errors"
	"time"

	"github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"

	"github.com/homing-mail/homing/guard"
	"github.com/homing-mail/homing/mail"
	"github.com/homing-mail/homing/maillog"
)

// The SASL mechanisms offered (RFC 4954; PLAIN is RFC 4616, LOGIN is
// draft-murchison-sasl-login).
const (
	mechPlain = "PLAIN"
	mechLogin = "LOGIN"
)

// authAllowed reports whether this connection may send a password: over
// TLS, or from a loopback address (RFC 4954 §4 leaves the policy to the
// server; plaintext passwords over the network are refused).
func (s *session) authAllowed() bool {
	return s.srv.auth != nil && (s.tls || (s.clientIP.IsValid() && s.clientIP.IsLoopback()))
}

// AuthMechanisms lists the mechanisms advertised in EHLO: none when the
// server has no Authenticator or the connection may not authenticate.
func (s *session) AuthMechanisms() (mechs []string) {
	defer s.recoverPanic("AuthMechanisms", nil)
	if s.authAllowed() {
		mechs = append(mechs, mechPlain, mechLogin)
	}
	if s.srv.cfg.Cluster != nil {
		// A challenge-response: no secret on the wire, so no TLS needed.
		mechs = append(mechs, MechCluster)
	}
	return mechs
}

// Auth starts an AUTH exchange (RFC 4954 §4).
func (s *session) Auth(mech string) (srv sasl.Server, err error) {
	defer s.recoverPanic("AUTH", &err)
	if mech == MechCluster && s.srv.cfg.Cluster != nil {
		return s.clusterAuth(), nil
	}
	switch {
	case s.srv.auth == nil:
		return nil, s.answer(reply(502, mail.StatusBadCommand, "AUTH not available"))
	case !s.authAllowed():
		return nil, s.answer(reply(538, mail.StatusEncryptionRequired, "Encryption required for requested authentication mechanism"))
	}
	s.mu.Lock()
	failures := s.authFailures
	s.mu.Unlock()
	if failures >= s.srv.cfg.MaxAuthFailures {
		s.closeAfterReply()
		return nil, s.answer(reply(421, mail.StatusTempAuth, "Too many authentication failures, closing connection"))
	}
	switch mech {
	case mechPlain:
		return &saslErrors{s: s, Server: sasl.NewPlainServer(func(identity, username, password string) error {
			if identity != "" && identity != username {
				// Acting as another user (RFC 4616 authzid) is not
				// supported; treat it as wrong credentials.
				return s.checkPassword(mechPlain, username, password, identity)
			}
			return s.checkPassword(mechPlain, username, password, "")
		})}, nil
	case mechLogin:
		return &saslErrors{s: s, Server: &loginServer{check: func(username, password string) error {
			return s.checkPassword(mechLogin, username, password, "")
		}}}, nil
	}
	return nil, s.answer(reply(504, mail.StatusBadArguments, "Unrecognized authentication mechanism"))
}

// clusterAuth runs X-HOMING-CLUSTER. A member's connection is then not
// counted against the per-IP and per-network limits. A failure counts like
// a wrong password (on the connection, and in the client network's failure
// budget), but no budget is checked first: the HMAC costs nothing to check
// and cannot be guessed, and refusing it could lock a member out.
func (s *session) clusterAuth() sasl.Server {
	return &saslErrors{s: s, Server: &clusterServer{a: s.srv.cfg.Cluster, done: func(node string) error {
		listener := string(s.srv.cfg.Source)
		if node == "" {
			s.mu.Lock()
			s.authFailures++
			failures := s.authFailures
			s.mu.Unlock()
			s.srv.m.auth(listener, "failed")
			s.srv.abuseLog.Warn("cluster authentication failed", "client", s.clientIP, "failures", failures)
			s.pause(s.srv.guard.Failure(s.clientIP))
			if failures >= s.srv.cfg.MaxAuthFailures {
				s.closeAfterReply()
				return s.answer(reply(421, mail.StatusTempAuth, "Too many authentication failures, closing connection"))
			}
			return s.answer(reply(535, mail.StatusBadCredentials, "Authentication credentials invalid"))
		}
		s.mu.Lock()
		s.clusterPeer = node
		s.mu.Unlock()
		if s.limited != nil {
			s.srv.lim.member(s.limited)
		}
		s.srv.m.auth(listener, "ok")
		s.srv.m.reply(listener, 235)
		return nil
	}}}
}

// checkPassword asks the Authenticator, through the guard: the attempt
// first reserves a failure in the client network's budget and in the
// budget of the account from that network, then waits for a slot of the
// password-check gate; when a budget is used up or no slot comes free in
// time it is answered 454 4.7.0 unchecked. A wrong password waits the
// guard's delay (growing with the recent failures) before its 535; the
// MaxAuthFailures-th on a connection closes it with 421. A non-empty
// authzid other than the user fails.
func (s *session) checkPassword(mech, username, password, authzid string) (err error) {
	defer s.recoverPanic("AUTH check", &err)
	listener := string(s.srv.cfg.Source)
	logged := func(result string) {
		client := ""
		if s.clientIP.IsValid() {
			client = s.clientIP.String()
		}
		s.srv.cfg.MailLog.Login(maillog.Auth{User: username, Client: client, Mechanism: mech, Via: listener, Result: result})
	}
	attempt, err := s.srv.guard.Begin(s.ctx, s.clientIP, username)
	switch {
	case errors.Is(err, guard.ErrThrottled):
		s.srv.m.auth(listener, "throttled")
		logged(maillog.AuthThrottled)
		s.srv.abuseLog.Info("authentication refused unchecked: too many failures", "client", s.clientIP, "user", username)
		s.pause(s.srv.guard.Config().FailureDelay)
		return s.answer(reply(454, mail.StatusTempAuth, "Too many failed authentication attempts; try again later"))
	case errors.Is(err, guard.ErrBusy):
		s.srv.m.auth(listener, "busy")
		logged(maillog.AuthBusy)
		s.srv.abuseLog.Info("authentication refused unchecked: every password check slot is busy", "client", s.clientIP, "user", username)
		return s.answer(reply(454, mail.StatusTempAuth, "Too many authentication attempts in progress; try again later"))
	case err != nil:
		s.srv.m.auth(listener, "unavailable")
		return s.answer(reply(454, mail.StatusTempAuth, "Temporary authentication failure"))
	}
	var account string
	if authzid == "" {
		account, err = s.srv.auth.Authenticate(s.ctx, username, password)
	} else {
		err = mail.ErrAuthFailed
	}
	switch {
	case err == nil && account != "":
		attempt.Succeeded()
		s.mu.Lock()
		s.authAccount = account
		s.mu.Unlock()
		s.srv.m.auth(listener, "ok")
		logged(maillog.AuthOK)
		s.srv.m.reply(listener, 235) // go-smtp writes the 235
		return nil
	case err == nil || errors.Is(err, mail.ErrAuthFailed):
		delay := attempt.Failed()
		s.mu.Lock()
		s.authFailures++
		failures := s.authFailures
		s.mu.Unlock()
		s.srv.m.auth(listener, "failed")
		if errors.Is(err, mail.ErrDisabled) {
			logged(maillog.AuthDisabled)
		} else {
			logged(maillog.AuthFailed)
		}
		s.srv.abuseLog.Info("authentication failed", "client", s.clientIP, "user", username, "failures", failures, "delay", delay)
		s.pause(delay)
		if failures >= s.srv.cfg.MaxAuthFailures {
			s.closeAfterReply()
			return s.answer(reply(421, mail.StatusTempAuth, "Too many authentication failures, closing connection"))
		}
		return s.answer(reply(535, mail.StatusBadCredentials, "Authentication credentials invalid"))
	default:
		attempt.Abandoned()
		s.srv.m.auth(listener, "unavailable")
		s.srv.log.Warn("authenticator failed", "user", username, "err", err)
		return s.answer(reply(454, mail.StatusTempAuth, "Temporary authentication failure"))
	}
}

// pause waits d or until the session ends.
func (s *session) pause(d time.Duration) {
	if s.limited != nil {
		s.limited.flush() // the replies before this one are not held
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-s.ctx.Done():
	}
}

// closeAfterReply closes the connection once the next reply is written.
func (s *session) closeAfterReply() {
	if s.limited != nil {
		s.limited.closeAfterNextWrite()
	}
}

// saslErrors makes every error of a SASL exchange an *SMTPError: go-smtp
// writes other errors' texts to the client with 454.
type saslErrors struct {
	sasl.Server
	s *session
}

// Next passes the client's response on and maps malformed responses to
// 501 5.5.2.
func (x *saslErrors) Next(response []byte) (challenge []byte, done bool, err error) {
	defer x.s.recoverPanic("AUTH exchange", &err)
	challenge, done, err = x.Server.Next(response)
	var se *gosmtp.SMTPError
	if err != nil && !errors.As(err, &se) {
		return nil, false, x.s.answer(reply(501, mail.StatusSyntaxError, "Malformed authentication response"))
	}
	return challenge, done, err
}

// loginServer is the server side of the LOGIN mechanism, which go-sasl
// only implements as a client: the server asks "Username:" and
// "Password:" (base64 is go-smtp's business). An initial response is the
// user name.
type loginServer struct {
	check    func(username, password string) error
	step     int
	username string
}

func (l *loginServer) Next(response []byte) (challenge []byte, done bool, err error) {
	switch l.step {
	case 0:
		l.step = 1
		if response == nil {
			return []byte("Username:"), false, nil
		}
		fallthrough
	case 1:
		l.username = string(response)
		l.step = 2
		return []byte("Password:"), false, nil
	case 2:
		l.step = 3
		return nil, true, l.check(l.username, string(response))
	}
	return nil, false, sasl.ErrUnexpectedClientResponse
}
