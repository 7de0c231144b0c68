package pop3

// cmdCapa is CAPA (RFC 2449 §5): the capabilities of the session in its
// state. Before login: USER and SASL PLAIN only where a password may be
// sent (TLS or loopback, RFC 2595 §4 and §2.4), STLS where TLS is
// available and not yet active. RESP-CODES and AUTH-RESP-CODE (RFC 2449
// §6.4, RFC 3206 §6) because every -ERR that has a reason a client can act
// on carries its code; PIPELINING (§6.6) because replies to pipelined
// commands are written in order and sent together.
func (s *session) cmdCapa(cmd command) {
	if len(cmd.Args) != 0 {
		s.clientError(textSyntax)
		return
	}
	s.ok("capability list follows")
	lines := []string{"TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING"}
	if s.state == stateAuthorization {
		if s.passwordsAllowed() {
			lines = append(lines, "USER", "SASL "+mechPlain)
		}
		if s.srv.tlsConfig() != nil && !s.tls {
			lines = append(lines, "STLS")
		}
	}
	lines = append(lines, "IMPLEMENTATION "+s.srv.cfg.Implementation)
	for _, l := range lines {
		s.w.WriteString(l + "\r\n")
	}
	s.w.WriteString(".\r\n")
}
