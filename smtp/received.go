package smtp

import (
	"net/netip"
	"strings"
	"time"

	"github.com/homing-mail/homing/mail"
)

// maxHELOLen bounds the HELO name copied into headers and envelopes.
const maxHELOLen = 128

// received holds what goes into one Received header.
type received struct {
	helo     string     // already sanitized
	clientIP netip.Addr // invalid: not a TCP peer
	by       string
	tls      bool
	auth     bool
	smtputf8 bool
	id       string
	rcpts    []*mail.Recipient
	date     time.Time
}

// receivedHeader writes the trace header RFC 5321 §4.4 requires of every
// SMTP server that accepts a message (syntax: RFC 5321 §4.4 Time-stamp-line
// and RFC 5322 §3.6.7):
//
//	Received: from HELO ([192.0.2.1])
//		by host with ESMTPS id ID
//		for <rcpt>; Mon, 02 Jan 2006 15:04:05 -0700
//
// The protocol is one of RFC 3848's ESMTP, ESMTPS, ESMTPA and ESMTPSA, or
// RFC 6531 §3.7.3's UTF8SMTP forms for an SMTPUTF8 transaction. go-smtp
// does not tell a session whether the client said HELO or EHLO, so plain
// "SMTP" is never written. The "for" clause is written only for a single
// recipient (more would disclose Bcc recipients to the others), and only
// when the address holds no character that could end the clause early.
//
// Every value from the client is sanitized: the HELO name by
// sanitizeHELO, the address by mail.ParseAddress; the host name is
// sanitized as well, so nothing can inject a line break or a comment.
func receivedHeader(r received) []byte {
	var b strings.Builder
	b.WriteString("Received: from ")
	b.WriteString(r.helo)
	if r.clientIP.IsValid() {
		b.WriteString(" (")
		b.WriteString(addressLiteral(r.clientIP))
		b.WriteString(")")
	}
	b.WriteString("\r\n\tby ")
	b.WriteString(sanitizeHELO(r.by))
	b.WriteString(" with ")
	b.WriteString(withProtocol(r.smtputf8, r.tls, r.auth))
	b.WriteString(" id ")
	b.WriteString(r.id)
	if len(r.rcpts) == 1 && safeForClause(r.rcpts[0].Addr) {
		b.WriteString("\r\n\tfor <")
		b.WriteString(r.rcpts[0].Addr)
		b.WriteString(">")
	}
	b.WriteString(";\r\n\t")
	b.WriteString(r.date.Format(time.RFC1123Z))
	b.WriteString("\r\n")
	return []byte(b.String())
}

// withProtocol returns the "with" keyword (RFC 3848 §2, RFC 6531 §3.7.3).
func withProtocol(smtputf8, tls, auth bool) string {
	p := "ESMTP"
	if smtputf8 {
		p = "UTF8SMTP"
	}
	if tls {
		p += "S"
	}
	if auth {
		p += "A"
	}
	return p
}

// addressLiteral writes ip as an RFC 5321 §4.1.3 address literal.
func addressLiteral(ip netip.Addr) string {
	if ip.Is4() {
		return "[" + ip.String() + "]"
	}
	return "[IPv6:" + ip.WithZone("").String() + "]"
}

// sanitizeHELO keeps the characters a domain or an address literal may
// hold (letters, digits, '.', '-', '_', ':', '[', ']'), drops the rest and
// truncates; "unknown" when nothing is left. The HELO name is
// attacker-controlled; this keeps CR, LF, parentheses, ';' and spaces out
// of headers and reports.
func sanitizeHELO(s string) string {
	var b strings.Builder
	for i := 0; i < len(s) && b.Len() < maxHELOLen; i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9',
			c == '.', c == '-', c == '_', c == ':', c == '[', c == ']':
			b.WriteByte(c)
		}
	}
	if b.Len() == 0 {
		return "unknown"
	}
	return b.String()
}

// safeForClause reports whether addr can be written in "for <addr>"
// without ending the clause or the header early.
func safeForClause(addr string) bool {
	return !strings.ContainsAny(addr, "<>();\\\" \t\r\n")
}
