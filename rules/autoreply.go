package rules

import (
	"bytes"
	"mime"
	"mime/quotedprintable"
	netmail "net/mail"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/homing-mail/homing/mail"
)

// ShouldAutoReply decides whether an automatic response (a vacation
// notice) may go to sender for a message with header h, after RFC 3834 §2.
// When it may not, it returns false and the reason, for logs. It refuses:
//   - the null sender and a sender that is not an address;
//   - senders that are programs, not people: MAILER-DAEMON, LISTSERV,
//     majordomo, owner-*, *-request, *-owner, *-bounces (also with a
//     "+detail"), and the usual no-reply addresses;
//   - auto-submitted mail: an Auto-Submitted field with any value other
//     than "no" (RFC 3834 §5), X-Auto-Response-Suppress asking for none
//     (All, OOF, AutoReply), or another responder's X-Autoreply or
//     X-Autorespond field;
//   - list and bulk mail: Precedence bulk, list or junk, any List-* field
//     (RFC 2369, RFC 2919), Mailing-List or X-Mailing-List.
//
// Whether the recipient was addressed directly (AddressedTo) and whether
// this sender had a reply within the vacation's days are the caller's to
// check. ShouldAutoReply never panics and is safe for concurrent use.
func ShouldAutoReply(sender string, h Header) (bool, string) {
	s := strings.TrimSpace(sender)
	if strings.HasPrefix(s, "<") && strings.HasSuffix(s, ">") {
		s = s[1 : len(s)-1]
	}
	if s == "" {
		return false, "null sender"
	}
	addr, err := mail.ParseAddress(s)
	if err != nil {
		return false, "sender is not an address"
	}
	if reason := automaticSender(addr); reason != "" {
		return false, reason
	}
	for _, v := range h.Values("Auto-Submitted") {
		if firstWord(v) != "no" {
			return false, "auto-submitted message (Auto-Submitted: " + clip(v) + ")"
		}
	}
	for _, v := range h.Values("X-Auto-Response-Suppress") {
		for _, w := range strings.FieldsFunc(strings.ToLower(v), func(r rune) bool { return r == ',' || r == ' ' || r == '\t' }) {
			if w == "all" || w == "oof" || w == "autoreply" {
				return false, "X-Auto-Response-Suppress: " + clip(v)
			}
		}
	}
	for _, name := range [...]string{"X-Autoreply", "X-Autorespond"} {
		if h.Has(name) {
			return false, "another responder's " + name + " field"
		}
	}
	for _, v := range h.Values("Precedence") {
		switch firstWord(v) {
		case "bulk", "list", "junk":
			return false, "Precedence: " + clip(v)
		}
	}
	for _, f := range h {
		n := strings.ToLower(f.Name)
		if strings.HasPrefix(n, "list-") || n == "mailing-list" || n == "x-mailing-list" {
			return false, "mailing list message (" + f.Name + " field)"
		}
	}
	return true, ""
}

// automaticSender returns why addr belongs to a program, or "".
func automaticSender(addr string) string {
	local, _ := mail.SplitAddress(addr)
	local = strings.ToLower(strings.Trim(local, `"`))
	base := local
	if i := strings.IndexByte(base, '+'); i > 0 {
		base = base[:i]
	}
	switch base {
	case "mailer-daemon", "listserv", "majordomo":
		return "sender " + base + " is a program"
	}
	for _, p := range [...]string{"owner-", "noreply", "no-reply", "no_reply", "donotreply", "do-not-reply", "do_not_reply"} {
		if strings.HasPrefix(base, p) {
			return "sender " + base + " is a program or takes no replies"
		}
	}
	for _, sfx := range [...]string{"-request", "-owner", "-bounces"} {
		if strings.HasSuffix(base, sfx) {
			return "sender " + base + " is a mailing list address"
		}
	}
	return ""
}

// firstWord returns the first token of a structured field value, lower
// case: what comes before white space, ';' or a comment.
func firstWord(v string) string {
	v = strings.TrimSpace(v)
	if i := strings.IndexAny(v, " \t;("); i >= 0 {
		v = v[:i]
	}
	return strings.ToLower(v)
}

// clip shortens a header value quoted in a reason.
func clip(v string) string {
	if len(v) > 64 {
		return strings.ToValidUTF8(v[:64], "") + "..."
	}
	return v
}

// AddressedTo reports whether one of addrs appears in a recipient field of
// h (To, Cc, Bcc, Resent-To, Resent-Cc, Resent-Bcc), compared without
// regard to case. RFC 3834 §2 asks personal responders not to answer mail
// that did not name the recipient this way (mail that reached it through a
// list or a Bcc). A field that does not parse as an address list is
// searched for the address as text.
func AddressedTo(h Header, addrs ...string) bool {
	for _, f := range h {
		switch strings.ToLower(f.Name) {
		case "to", "cc", "bcc", "resent-to", "resent-cc", "resent-bcc":
		default:
			continue
		}
		list, err := netmail.ParseAddressList(f.Value)
		for _, want := range addrs {
			want = strings.TrimSpace(want)
			if want == "" {
				continue
			}
			if err != nil {
				if containsAddress(f.Value, want) {
					return true
				}
				continue
			}
			for _, a := range list {
				if strings.EqualFold(a.Address, want) {
					return true
				}
			}
		}
	}
	return false
}

// containsAddress reports whether addr occurs in text as a whole address:
// not preceded or followed by a character that could belong to one.
func containsAddress(text, addr string) bool {
	t, a := strings.ToLower(text), strings.ToLower(addr)
	for from := 0; from <= len(t); {
		i := strings.Index(t[from:], a)
		if i < 0 {
			return false
		}
		i += from
		j := i + len(a)
		if (i == 0 || !addressChar(t[i-1])) && (j == len(t) || !addressChar(t[j])) {
			return true
		}
		from = i + 1
	}
	return false
}

func addressChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c >= 0x80 || strings.IndexByte("!#$%&'*+-/=?^_`{|}~.@", c) >= 0
}

// Limits of AutoReplyMessage.
const (
	foldAt        = 78 // RFC 5322 §2.1.1 SHOULD
	maxMsgIDLen   = 250
	maxReferences = 20
	maxSubjectLen = 900
)

// AutoReplyMessage builds an RFC 3834 §3 automatic response from from to
// to, answering a message whose header is orig, as the RFC 5322 bytes to
// queue: CRLF line ends, lines folded at 78 characters where they can be
// and never longer than 998. Its header has From, To, Date (now), Subject
// (subject, or "Auto: " and the original's subject, RFC 3834 §3.1.5),
// Message-ID (msgID; angle brackets are added when missing; left out when
// empty), In-Reply-To and References from the original's Message-ID and
// References (§3.1.4; left out when it has none), Auto-Submitted:
// auto-replied (§5.2) and X-Auto-Response-Suppress: All. The body is text,
// plain ASCII as 7bit, anything else quoted-printable UTF-8.
//
// Every header value is sanitised: CR, LF and other control characters
// become spaces, invalid UTF-8 is replaced, non-ASCII text is RFC 2047
// encoded and over-long values are cut, so nothing in from, to, subject,
// msgID or orig can add a header field. AutoReplyMessage never panics and
// is safe for concurrent use.
func AutoReplyMessage(from, to, subject, text string, orig Header, now time.Time, msgID string) []byte {
	var b bytes.Buffer
	writeField(&b, "From", formatAddress(from))
	writeField(&b, "To", formatAddress(to))
	writeField(&b, "Date", now.Format(time.RFC1123Z))

	subj := cut(sanitize(subject), maxSubjectLen)
	if subj == "" {
		o := cut(sanitize(decodeValue(orig.Get("Subject"))), maxSubjectLen)
		if o == "" {
			o = "(no subject)"
		}
		subj = "Auto: " + o
	}
	writeField(&b, "Subject", mime.QEncoding.Encode("utf-8", subj))

	if id := sanitize(msgID); id != "" {
		id = strings.Join(strings.Fields(id), "")
		if !strings.HasPrefix(id, "<") {
			id = "<" + id
		}
		if !strings.HasSuffix(id, ">") {
			id += ">"
		}
		if len(id) <= maxMsgIDLen && isASCII(id) {
			writeField(&b, "Message-ID", id)
		}
	}
	if ids := msgIDs(orig.Get("Message-ID")); len(ids) > 0 {
		origID := ids[0]
		refs := msgIDs(orig.Get("References"))
		if len(refs) == 0 {
			refs = msgIDs(orig.Get("In-Reply-To"))
		}
		if len(refs) >= maxReferences {
			// Keep the thread's root and the most recent ones.
			refs = append(refs[:1:1], refs[len(refs)-maxReferences+2:]...)
		}
		writeField(&b, "In-Reply-To", origID)
		writeField(&b, "References", strings.Join(append(refs, origID), " "))
	}
	writeField(&b, "Auto-Submitted", "auto-replied")
	writeField(&b, "X-Auto-Response-Suppress", "All")
	writeField(&b, "MIME-Version", "1.0")
	writeField(&b, "Content-Type", "text/plain; charset=utf-8")

	body := strings.ToValidUTF8(text, "\uFFFD")
	body = strings.ReplaceAll(body, "\r\n", "\n")
	body = strings.ReplaceAll(body, "\r", "\n")
	body = strings.TrimRight(body, "\n")
	lines := strings.Split(body, "\n")
	plain := isASCII(body)
	for _, l := range lines {
		if len(l) > maxHeaderLine || strings.ContainsFunc(l, func(r rune) bool { return r < 0x20 && r != '\t' || r == 0x7f }) {
			plain = false
			break
		}
	}
	if plain {
		writeField(&b, "Content-Transfer-Encoding", "7bit")
		b.WriteString("\r\n")
		for _, l := range lines {
			b.WriteString(l)
			b.WriteString("\r\n")
		}
		return b.Bytes()
	}
	writeField(&b, "Content-Transfer-Encoding", "quoted-printable")
	b.WriteString("\r\n")
	w := quotedprintable.NewWriter(&b) // writes CRLF line ends
	for _, l := range lines {
		w.Write([]byte(l)) // a bytes.Buffer does not fail
		w.Write([]byte("\r\n"))
	}
	w.Close()
	if !bytes.HasSuffix(b.Bytes(), []byte("\r\n")) {
		b.WriteString("\r\n")
	}
	return b.Bytes()
}

// formatAddress renders an address (optionally with a display name) for a
// header field, encoding a non-ASCII name (RFC 2047) when it parses.
func formatAddress(s string) string {
	s = cut(sanitize(s), maxHeaderLine/2)
	if a, err := netmail.ParseAddress(s); err == nil {
		return a.String()
	}
	if !isASCII(s) {
		return mime.QEncoding.Encode("utf-8", s)
	}
	return s
}

// msgIDs returns the "<...>" message identifiers in a field value (RFC 5322
// §3.6.4), skipping any that hold white space or are over-long.
func msgIDs(v string) []string {
	var out []string
	for {
		i := strings.IndexByte(v, '<')
		if i < 0 {
			return out
		}
		j := strings.IndexByte(v[i:], '>')
		if j < 0 {
			return out
		}
		id := v[i : i+j+1]
		v = v[i+j+1:]
		if len(id) > 2 && len(id) <= maxMsgIDLen && isASCII(id) &&
			!strings.ContainsFunc(id, func(r rune) bool { return r <= ' ' || r == 0x7f }) &&
			!strings.Contains(id[1:], "<") {
			out = append(out, id)
		}
	}
}

// sanitize makes s safe as (part of) a header value: valid UTF-8, control
// characters (CR and LF among them) as spaces, trimmed.
func sanitize(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == '\u2028' || r == '\u2029' {
			return ' '
		}
		return r
	}, s)
	return strings.TrimSpace(s)
}

// cut shortens s to at most n bytes without splitting a UTF-8 sequence.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// writeField writes "Name: value" and CRLF, folding at white space
// (RFC 5322 §2.2.3) so that lines stay near 78 characters. value must not
// contain CR or LF; a word longer than a line stays whole on its own line.
func writeField(b *bytes.Buffer, name, value string) {
	line := name + ":"
	col := len(line)
	b.WriteString(line)
	for i, w := range strings.Fields(value) {
		if i > 0 && col+1+len(w) > foldAt {
			b.WriteString("\r\n")
			col = 0
		}
		b.WriteByte(' ')
		b.WriteString(w)
		col += 1 + len(w)
	}
	b.WriteString("\r\n")
}
