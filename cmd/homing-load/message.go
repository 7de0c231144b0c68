package main

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strconv"
	"time"
)

// lineLen is the length of a filler body line without its CRLF, the
// customary 76 of RFC 2045 §6.8 (RFC 5322 §2.1.1 allows 78).
const lineLen = 76

// dateLayout is RFC 5322 §3.3 date-time with a two-digit day, so that the
// Date: field always has the same length.
const dateLayout = "Mon, 02 Jan 2006 15:04:05 -0700"

// filler is the text the body lines are cut from; it has no '.' so that no
// line needs dot-stuffing (RFC 5321 §4.5.2) and the bytes on the wire are
// the message's bytes.
const filler = "Homing load test body text, the quick brown fox jumps over the lazy dog; " +
	"pack my box with five dozen liquor jugs, sphinx of black quartz judge my vow "

// generator makes the benchmark's messages: a realistic RFC 5322 header
// block and filler lines of 76 characters + CRLF, exactly size bytes in
// all. Every field of the header has a fixed width for a run, so every
// message has the same size. A generator is immutable after newGenerator
// and safe for concurrent use.
type generator struct {
	size   int
	from   string
	domain string
	width  int    // digits of the account number
	runID  string // makes Message-IDs unique across runs
	body   []byte // shared, never written after construction
}

// newGenerator returns a generator of size-byte messages from from to
// accounts of domain; size must leave room for the header and one body
// line.
func newGenerator(size int, from, domain string, accounts int) (*generator, error) {
	b := make([]byte, 4)
	rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	g := &generator{
		size:   size,
		from:   from,
		domain: domain,
		width:  accountWidth(accounts),
		runID:  hex.EncodeToString(b),
	}
	hl := len(g.header(0, g.account(0), time.Now()))
	if size < hl+lineLen+2 {
		return nil, fmt.Errorf("%d bytes is too small: the header takes %d and the body at least %d", size, hl, lineLen+2)
	}
	g.body = fillBody(size - hl)
	return g, nil
}

// account returns the address of account i: user0000@domain.
func (g *generator) account(i int) string { return accountAddr(i, g.width, g.domain) }

// accountWidth is the number of digits in the account names of a run of
// accounts accounts: at least 4 (user0000), so all have the same length.
func accountWidth(accounts int) int { return max(4, len(strconv.Itoa(accounts-1))) }

// accountAddr is the address of account i: user0000@domain.
func accountAddr(i, width int, domain string) string {
	return fmt.Sprintf("user%0*d@%s", width, i, domain)
}

// header is the header block of message i to rcpt, ending with the empty
// line that separates it from the body.
func (g *generator) header(i int, rcpt string, now time.Time) []byte {
	return fmt.Appendf(nil, "From: Homing Load <%s>\r\n"+
		"To: <%s>\r\n"+
		"Subject: homing-load message %08d\r\n"+
		"Date: %s\r\n"+
		"Message-ID: <%08d.%s@%s>\r\n"+
		"MIME-Version: 1.0\r\n"+
		"Content-Type: text/plain; charset=us-ascii\r\n"+
		"Content-Transfer-Encoding: 7bit\r\n"+
		"X-Mailer: homing-load\r\n"+
		"\r\n",
		g.from, rcpt, i, now.Format(dateLayout), i, g.runID, g.domain)
}

// message returns message i to rcpt: exactly g.size bytes, CRLF lines.
func (g *generator) message(i int, rcpt string, now time.Time) []byte {
	h := g.header(i, rcpt, now)
	m := make([]byte, 0, len(h)+len(g.body))
	return append(append(m, h...), g.body...)
}

// fillBody returns n bytes (n >= lineLen+2) of lines of at most lineLen
// characters, each ending in CRLF.
func fillBody(n int) []byte {
	out := make([]byte, 0, n)
	line := 0
	add := func(k int) { // one line of k characters
		off := (line * 7) % len(filler)
		for j := 0; j < k; j++ {
			out = append(out, filler[(off+j)%len(filler)])
		}
		out = append(out, '\r', '\n')
		line++
	}
	full, rem := n/(lineLen+2), n%(lineLen+2)
	if rem == 1 {
		// One byte cannot be a line: shorten the last full line by one
		// and end with an empty line (75+2 + 0+2 = 76+2 + 1).
		full--
		for range full {
			add(lineLen)
		}
		add(lineLen - 1)
		add(0)
		return out
	}
	for range full {
		add(lineLen)
	}
	if rem >= 2 {
		add(rem - 2)
	}
	return out
}
