package imap

import (
	"strconv"
	"strings"
	"time"
)

// badSyntax checks the arguments that go-imap v2 beta.8's imapserver
// parses with errors of its own instead of its decoder's: a sequence set
// that is not one (FETCH x, FETCH 0, a number over 2^32-1, UID EXPUNGE x),
// an unknown SEARCH key (parsed as a sequence set), a SEARCH date that
// is not a date, and a quoted string not closed before the line's end
// (RFC 9051's QUOTED-CHAR has no CR or LF), and ENABLE without a
// capability. imapserver answers those NO [SERVERBUG] Internal server
// error; they are the client's syntax errors, which RFC 9051 §7.1.5
// answers BAD. It returns the BAD's text, or "" to let imapserver parse
// the command. name is upper case; args is the rest of the line.
func badSyntax(name, args string) string {
	args = strings.TrimRight(args, "\r\n")
	if unterminatedQuote(args) {
		// imapserver would read on past the line end for the closing
		// quote, taking the next commands as part of the string.
		return "Syntax error: unterminated quoted string"
	}
	if name == "UID" {
		name, args, _ = strings.Cut(args, " ")
		name = strings.ToUpper(name)
		if name == "EXPUNGE" {
			if set, _, _ := strings.Cut(args, " "); !isSequenceSet(set) {
				return "Syntax error: invalid UID set"
			}
			return ""
		}
	}
	switch name {
	case "ENABLE": // RFC 5161 §3.1: at least one capability
		if strings.TrimSpace(args) == "" {
			return "Syntax error: ENABLE needs a capability"
		}
	case "FETCH", "STORE", "COPY", "MOVE":
		if set, _, _ := strings.Cut(args, " "); !isSequenceSet(set) {
			return "Syntax error: invalid sequence set"
		}
	case "SEARCH":
		if strings.Contains(args, "{") { // a literal: the keys go on past this line
			return ""
		}
		return searchSyntax(tokens(args))
	}
	return ""
}

// unterminatedQuote reports whether the line ends inside a quoted string.
func unterminatedQuote(s string) bool {
	in := false
	for i := 0; i < len(s); i++ {
		switch {
		case in && s[i] == '\\':
			i++
		case s[i] == '"':
			in = !in
		}
	}
	return in
}

// isSequenceSet is RFC 9051's sequence-set (and "$", RFC 5182's saved
// result): numbers 1 to 2^32-1 or "*", ranges of two, comma-separated.
func isSequenceSet(s string) bool {
	if s == "$" {
		return true
	}
	if s == "" {
		return false
	}
	for _, r := range strings.Split(s, ",") {
		a, b, isRange := strings.Cut(r, ":")
		if !isSeqNumber(a) || isRange && !isSeqNumber(b) {
			return false
		}
	}
	return true
}

func isSeqNumber(s string) bool {
	if s == "*" {
		return true
	}
	n, err := strconv.ParseUint(s, 10, 32)
	return err == nil && n > 0 && s[0] != '0'
}

// tokens splits SEARCH arguments into atoms, quoted strings (kept with
// their quotes) and parentheses.
func tokens(s string) []string {
	var out []string
	for i := 0; i < len(s); {
		switch c := s[i]; {
		case c == ' ':
			i++
		case c == '(' || c == ')':
			out = append(out, s[i:i+1])
			i++
		case c == '"':
			j := i + 1
			for j < len(s) && s[j] != '"' {
				if s[j] == '\\' {
					j++
				}
				j++
			}
			out = append(out, s[i:min(j+1, len(s))])
			i = j + 1
		default:
			j := i
			for j < len(s) && !strings.ContainsRune(" ()\"", rune(s[j])) {
				j++
			}
			out = append(out, s[i:j])
			i = j
		}
	}
	return out
}

// searchSyntax walks search-program (RFC 9051 §6.4.4; RETURN of RFC 4731,
// CHARSET) as imapserver reads it, and names the first key that is
// neither a search key nor a sequence set, or a date that is not one.
func searchSyntax(t []string) string {
	p := &searchParser{t: t}
	if p.peekUpper() == "RETURN" {
		p.next()
		if p.next() != "(" {
			return "" // imapserver answers BAD itself
		}
		for depth := 1; depth > 0 && p.more(); {
			switch p.next() {
			case "(":
				depth++
			case ")":
				depth--
			}
		}
	}
	if p.peekUpper() == "CHARSET" {
		p.next()
		p.next()
	}
	for p.more() && p.err == "" {
		p.key()
	}
	return p.err
}

type searchParser struct {
	t   []string
	i   int
	err string
}

func (p *searchParser) more() bool { return p.i < len(p.t) }

func (p *searchParser) next() string {
	if !p.more() {
		return ""
	}
	p.i++
	return p.t[p.i-1]
}

func (p *searchParser) peekUpper() string {
	if !p.more() {
		return ""
	}
	return strings.ToUpper(p.t[p.i])
}

// key reads one search-key; on a missing argument it stops and leaves the
// answer to imapserver (whose decoder answers BAD).
func (p *searchParser) key() {
	k := p.next()
	switch strings.ToUpper(k) {
	case "(":
		for p.more() && p.err == "" && p.t[p.i] != ")" {
			p.key()
		}
		p.next()
	case ")":
		p.i = len(p.t) // unbalanced: imapserver's decoder answers it
	case "ALL", "ANSWERED", "DELETED", "DRAFT", "FLAGGED", "RECENT", "SEEN", "NEW", "OLD",
		"UNANSWERED", "UNDELETED", "UNDRAFT", "UNFLAGGED", "UNSEEN", "$":
	case "KEYWORD", "UNKEYWORD", "BCC", "CC", "FROM", "SUBJECT", "TO", "BODY", "TEXT", "LARGER", "SMALLER":
		p.next()
	case "HEADER":
		p.next()
		p.next()
	case "SINCE", "BEFORE", "ON", "SENTSINCE", "SENTBEFORE", "SENTON":
		d := strings.Trim(p.next(), `"`)
		if _, err := time.Parse("2-Jan-2006", d); err != nil && d != "" {
			p.err = "Syntax error: invalid date " + strconv.Quote(d)
		}
	case "UID":
		if set := p.next(); set != "" && !isSequenceSet(set) {
			p.err = "Syntax error: invalid UID set " + strconv.Quote(set)
		}
	case "NOT":
		p.key()
	case "OR":
		p.key()
		if p.err == "" {
			p.key()
		}
	default:
		if !isSequenceSet(k) {
			p.err = "Syntax error: unknown search key " + strconv.Quote(k)
		}
	}
}
