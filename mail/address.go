package mail

import (
	"fmt"
	"net/netip"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Address errors. ParseAddress returns errors that wrap one of them; test
// with errors.Is.
var (
	// ErrBadAddress: the string is not an RFC 5321 §4.1.2 Mailbox
	// (the SMTP server answers 501 5.1.3).
	ErrBadAddress = PermanentError("bad address syntax")
	// ErrRelaySyntax: the address uses a form that asks the receiver to
	// route it further (source route, percent hack, bang path, a second
	// '@'). Homing never honours them; an unauthenticated SMTP client that
	// sends one is refused with 554 5.7.1.
	ErrRelaySyntax = PermanentError("relay syntax in address")
)

// Length limits. RFC 5321 §4.5.3.1.1 puts the local part at 64 octets but
// tells servers to accept more where they can; real VERP and SRS addresses
// are longer, so Homing allows 256. The domain limit is §4.5.3.1.2's.
const (
	maxLocalLen  = 256
	maxDomainLen = 255
	maxLabelLen  = 63
)

// ParseAddress parses an RFC 5321 §4.1.2 Mailbox and returns it normalised
// as "local@domain": the domain lower-cased, the local part kept as it is
// (local parts are case-sensitive, RFC 5321 §2.4) and written as a
// dot-string when it is one, as a quoted string otherwise. UTF-8 is
// accepted in both parts (RFC 6531 §3.3); whether the session allows it is
// the caller's decision. Address literals are accepted as the domain:
// "[192.0.2.1]" and "[ipv6:2001:db8::1]" (normalised, lower case).
//
// It accepts both what arrives in RCPT TO and MAIL FROM after go-smtp has
// parsed them and the plain RFC form. go-smtp hands over the mailbox
// without angle brackets and parameters, drops a source route
// ("<@a,@b:u@c>" becomes "u@c") and removes the quotes and backslashes of
// a quoted local part ("\"u@x\"@y" becomes "u@x@y"), so the two forms
// cannot always be told apart; both are handled.
//
// Errors wrap ErrBadAddress for syntax errors (empty parts, control
// characters, invalid UTF-8, a bad or trailing-dot domain, over-long
// parts) and ErrRelaySyntax for relay tricks: a source route, '%' or '!'
// in the local part (quoted or not), or more than one '@'.
//
// The output parses to itself. ParseAddress never panics; it is safe for
// concurrent use.
func ParseAddress(s string) (string, error) {
	if s == "" {
		return "", fmt.Errorf("%w: empty address", ErrBadAddress)
	}
	if !utf8.ValidString(s) {
		return "", fmt.Errorf("%w: invalid UTF-8", ErrBadAddress)
	}
	if s[0] == '@' {
		if strings.IndexByte(s, ':') > 0 {
			// RFC 5321 §4.1.2 A-d-l, "@relay:user@domain" (Appendix C).
			return "", fmt.Errorf("%w: source route", ErrRelaySyntax)
		}
		return "", fmt.Errorf("%w: empty local part", ErrBadAddress)
	}

	var local, domain string
	if s[0] == '"' {
		l, rest, err := unquoteLocal(s)
		if err != nil {
			return "", err
		}
		if !strings.HasPrefix(rest, "@") {
			return "", fmt.Errorf("%w: missing @ after the quoted local part", ErrBadAddress)
		}
		local, domain = l, rest[1:]
	} else {
		i := strings.LastIndexByte(s, '@')
		if i < 0 {
			return "", fmt.Errorf("%w: no @", ErrBadAddress)
		}
		local, domain = s[:i], s[i+1:]
	}

	if local == "" {
		return "", fmt.Errorf("%w: empty local part", ErrBadAddress)
	}
	if strings.ContainsAny(local, "@%!") || strings.ContainsRune(domain, '@') {
		// A second '@' (quoted or not), the percent hack
		// "user%remote@local" and bang paths "remote!user@local" all ask
		// this server to relay.
		return "", fmt.Errorf("%w: '@', '%%' or '!' in the local part", ErrRelaySyntax)
	}
	for _, r := range local {
		if r < 0x20 || r == 0x7f || unicode.IsControl(r) {
			return "", fmt.Errorf("%w: control character in the local part", ErrBadAddress)
		}
	}
	if !isDotString(local) {
		local = quoteLocal(local)
	}
	if len(local) > maxLocalLen {
		return "", fmt.Errorf("%w: local part longer than %d octets", ErrBadAddress, maxLocalLen)
	}

	d, err := parseDomain(domain)
	if err != nil {
		return "", err
	}
	return local + "@" + d, nil
}

// SplitAddress returns the local and domain parts of an address normalised
// by ParseAddress, split at the last '@'. The local part is returned as it
// appears in the address (quoted when ParseAddress quoted it). Without an
// '@' it returns (addr, "").
func SplitAddress(addr string) (local, domain string) {
	i := strings.LastIndexByte(addr, '@')
	if i < 0 {
		return addr, ""
	}
	return addr[:i], addr[i+1:]
}

// unquoteLocal reads an RFC 5321 Quoted-string at the start of s and
// returns its content with the quoted-pairs resolved, and what follows the
// closing quote.
func unquoteLocal(s string) (local, rest string, err error) {
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch c := s[i]; c {
		case '"':
			return b.String(), s[i+1:], nil
		case '\\':
			// quoted-pairSMTP = %d92 %d32-126 (RFC 5321 §4.1.2).
			if i+1 >= len(s) || s[i+1] < 32 || s[i+1] > 126 {
				return "", "", fmt.Errorf("%w: bad quoted pair", ErrBadAddress)
			}
			i++
			b.WriteByte(s[i])
		default:
			b.WriteByte(c)
		}
	}
	return "", "", fmt.Errorf("%w: unterminated quoted string", ErrBadAddress)
}

// quoteLocal writes local as an RFC 5321 Quoted-string.
func quoteLocal(local string) string {
	var b strings.Builder
	b.Grow(len(local) + 2)
	b.WriteByte('"')
	for i := 0; i < len(local); i++ {
		if c := local[i]; c == '"' || c == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(local[i])
	}
	b.WriteByte('"')
	return b.String()
}

// isDotString reports whether s is an RFC 5321 Dot-string, with RFC 6531
// §3.3's UTF-8 extension of atext.
func isDotString(s string) bool {
	if s == "" || s[0] == '.' || s[len(s)-1] == '.' || strings.Contains(s, "..") {
		return false
	}
	for _, r := range s {
		if r != '.' && !isAtext(r) {
			return false
		}
	}
	return true
}

// isAtext reports whether r is RFC 5322 §3.2.3 atext or UTF8-non-ascii.
func isAtext(r rune) bool {
	switch {
	case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		return true
	case r >= 0x80:
		return !unicode.IsControl(r) && !unicode.IsSpace(r)
	}
	return strings.ContainsRune("!#$%&'*+-/=?^_`{|}~", r)
}

// parseDomain validates and normalises the domain of a Mailbox: an
// RFC 5321 Domain (LDH labels, or UTF-8 U-labels under RFC 6531) or an
// address literal (§4.1.3).
func parseDomain(d string) (string, error) {
	if d == "" {
		return "", fmt.Errorf("%w: empty domain", ErrBadAddress)
	}
	if d[0] == '[' {
		return parseAddressLiteral(d)
	}
	if strings.HasSuffix(d, ".") {
		// "user@example.com." would compare unequal to the local domain
		// "example.com"; it is not RFC 5321 syntax, so refuse it.
		return "", fmt.Errorf("%w: trailing dot in the domain", ErrBadAddress)
	}
	d = strings.ToLower(d)
	if len(d) > maxDomainLen {
		return "", fmt.Errorf("%w: domain longer than %d octets", ErrBadAddress, maxDomainLen)
	}
	labels := strings.Split(d, ".")
	for _, l := range labels {
		if err := checkLabel(l); err != nil {
			return "", err
		}
	}
	if allDigits(labels[len(labels)-1]) {
		// RFC 1123 §2.1: a top-level label is not numeric, so "1.2.3.4"
		// is an IP address written without brackets.
		return "", fmt.Errorf("%w: numeric top-level label (use [a.b.c.d])", ErrBadAddress)
	}
	return d, nil
}

// checkLabel validates one lower-cased label: Let-dig [Ldh-str], or a
// UTF-8 U-label of letters, digits, marks and hyphens.
func checkLabel(l string) error {
	if l == "" {
		return fmt.Errorf("%w: empty label in the domain", ErrBadAddress)
	}
	if len(l) > maxLabelLen {
		return fmt.Errorf("%w: label longer than %d octets", ErrBadAddress, maxLabelLen)
	}
	if l[0] == '-' || l[len(l)-1] == '-' {
		return fmt.Errorf("%w: label starts or ends with '-'", ErrBadAddress)
	}
	for _, r := range l {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-':
		case r >= 0x80 && (unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsMark(r)):
			if unicode.ToLower(r) != r {
				// strings.ToLower left an upper-case letter (no
				// simple lower-case mapping round-trips); refuse it
				// rather than emit a domain that is not lower case.
				return fmt.Errorf("%w: character %q in the domain", ErrBadAddress, r)
			}
		default:
			return fmt.Errorf("%w: character %q in the domain", ErrBadAddress, r)
		}
	}
	return nil
}

// parseAddressLiteral validates "[IPv4]" and "[IPv6:addr]" and returns
// them in canonical lower-case form. General address literals (other tags)
// are refused.
func parseAddressLiteral(d string) (string, error) {
	if len(d) < 3 || d[len(d)-1] != ']' {
		return "", fmt.Errorf("%w: bad address literal", ErrBadAddress)
	}
	inner := d[1 : len(d)-1]
	if len(inner) > 5 && strings.EqualFold(inner[:5], "IPv6:") {
		a, err := netip.ParseAddr(inner[5:])
		if err != nil || !a.Is6() || a.Zone() != "" {
			return "", fmt.Errorf("%w: bad IPv6 address literal", ErrBadAddress)
		}
		return "[ipv6:" + a.String() + "]", nil
	}
	a, err := netip.ParseAddr(inner)
	if err != nil || !a.Is4() {
		return "", fmt.Errorf("%w: bad IPv4 address literal", ErrBadAddress)
	}
	return "[" + a.String() + "]", nil
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}
