package smtp

import (
	"crypto/tls"
	"net"
)

// ServeTLS serves l with implicit TLS (RFC 8314 §3.3: submissions, port
// 465): every connection is a TLS handshake first, then SMTP inside it.
// The TLS layer sits over the connection limits, so a client counts
// against them from its first byte, and a session sees a TLS connection
// (its Received header says ESMTPSA, AUTH needs no STARTTLS).
func (s *Server) ServeTLS(l net.Listener, cfg *tls.Config) error {
	if s.closing.Load() {
		l.Close()
		return nil
	}
	err := s.gs.Serve(tls.NewListener(&limitListener{Listener: l, lim: s.lim}, cfg))
	if s.closing.Load() {
		return nil
	}
	return err
}
