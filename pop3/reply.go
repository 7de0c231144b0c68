package pop3

// The extended response codes a -ERR may carry (RFC 2449 §8: "[" code "]"
// after "-ERR "), advertised with RESP-CODES and AUTH-RESP-CODE.
const (
	// codeInUse: "the authentication was successful, but the user's
	// maildrop is currently in use" (RFC 2449 §8.1).
	codeInUse = "IN-USE"
	// codeAuth: the failure is the user's credentials or a policy about
	// them, such as plaintext without TLS (RFC 3206 §5).
	codeAuth = "AUTH"
	// codeSysTemp: a temporary failure of the server; trying again later
	// may work (RFC 3206 §4).
	codeSysTemp = "SYS/TEMP"
	// codeSysPerm: a failure of the server that trying again will not
	// cure (RFC 3206 §4).
	codeSysPerm = "SYS/PERM"
)

// The texts of replies that more than one command sends. They are generic:
// nothing internal reaches the client.
const (
	textNoSuchMessage = "no such message"
	textSyntax        = "syntax error"
	textTemporary     = "temporary failure, try again later"
	textTooMany       = "too many errors, closing the connection"
	textShutdown      = "server shutting down, try again later"
	textLost          = "the mailbox has moved, reconnect"
	textLineTooLong   = "line too long"
)

// ok writes "+OK text" CRLF.
func (s *session) ok(text string) {
	s.writeLine("+OK", text)
}

// fail writes "-ERR [code] text" CRLF (no code when code is ""). It is not
// an error of the client (see clientError).
func (s *session) fail(code, text string) {
	if code != "" {
		s.writeLine("-ERR", "["+code+"] "+text)
		return
	}
	s.writeLine("-ERR", text)
}

// clientError answers a mistake of the client (an unknown command, bad
// syntax, a command out of its state) with "-ERR text" and counts it:
// before login, the MaxErrorsBeforeAuth-th is answered instead with "too
// many errors" and the connection is closed.
func (s *session) clientError(text string) {
	if s.state == stateAuthorization {
		s.errors++
		if s.errors >= s.srv.cfg.MaxErrorsBeforeAuth {
			s.srv.abuseLog.Info("POP3 connection closed: too many errors before login", "client", s.clientIP, "errors", s.errors)
			s.fail("", textTooMany)
			s.end = true
			return
		}
	}
	s.fail("", text)
}

// writeLine writes status, a space and text, then CRLF (RFC 1939 §3: a
// status indicator, then text up to 512 octets with the CRLF, RFC 2449
// §4). The write goes to the session's buffer; its error ends the session
// at the next flush.
func (s *session) writeLine(status, text string) {
	s.w.WriteString(status)
	if text != "" {
		s.w.WriteByte(' ')
		s.w.WriteString(text)
	}
	s.w.WriteString("\r\n")
}
