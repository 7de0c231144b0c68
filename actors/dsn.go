package actors

import (
	"bytes"
	"fmt"
	"strings"
	"time"

	"github.com/homing-mail/homing/mail"
)

// reportKind is what a DSN reports (RFC 3464 §2.3.3 Action).
type reportKind string

const (
	reportFailure reportKind = "failed"
	reportDelay   reportKind = "delayed"
	reportSuccess reportKind = "delivered"
)

// maxReturnedBody: a failure report carries the whole original message
// (RET=FULL or no RET) only up to this size; above it, its header only.
const maxReturnedBody = 1 << 20

// buildDSN composes an RFC 3464 delivery status notification about env for
// the recipients whose keys are rcpts (and, in a failure report, the
// delivered ones also). It returns the report's bytes. The caller sends it
// from the null sender to env.From.
func buildDSN(hostname string, env *mail.Envelope, body []byte, kind reportKind, rcpts, also []int, now, until time.Time, id string) []byte {
	boundary := "=_homing_" + id
	var b bytes.Buffer
	w := func(format string, a ...any) { fmt.Fprintf(&b, format, a...); b.WriteString("\r\n") }

	subject := map[reportKind]string{
		reportFailure: "Undelivered Mail Returned to Sender",
		reportDelay:   "Delayed Mail (still being retried)",
		reportSuccess: "Successful Mail Delivery Report",
	}[kind]
	w("From: Mail Delivery System <MAILER-DAEMON@%s>", hostname)
	w("To: <%s>", env.From)
	w("Subject: %s", subject)
	w("Date: %s", now.Format(time.RFC1123Z))
	w("Message-ID: <%s@%s>", id, hostname)
	w("Auto-Submitted: auto-replied") // RFC 3834 §5
	w("MIME-Version: 1.0")
	w("Content-Type: multipart/report; report-type=delivery-status; boundary=\"%s\"", boundary)
	w("")
	w("This is a MIME-encapsulated message.")
	w("")

	// Part 1: for people.
	w("--%s", boundary)
	w("Content-Type: text/plain; charset=utf-8")
	w("Content-Transfer-Encoding: 8bit")
	w("")
	switch kind {
	case reportFailure:
		w("This is the mail system at host %s.", hostname)
		w("")
		w("Your message could not be delivered to one or more recipients.")
		w("It is attached below.")
	case reportDelay:
		w("This is the mail system at host %s.", hostname)
		w("")
		w("Your message has not been delivered yet to the recipients below.")
		w("The mail system will keep trying; you do not need to send it again.")
	case reportSuccess:
		w("This is the mail system at host %s.", hostname)
		w("")
		w("Your message was delivered to the mailboxes below, as you asked.")
	}
	w("")
	for _, r := range recipients(env, rcpts) {
		if r.LastError != "" {
			w("<%s>: %s", r.Addr, oneLine(r.LastError))
		} else {
			w("<%s>: %s", r.Addr, kind)
		}
	}
	w("")

	// Part 2: for machines (RFC 3464 §2.2 per-message, §2.3 per-recipient).
	w("--%s", boundary)
	w("Content-Type: message/delivery-status")
	w("")
	w("Reporting-MTA: dns; %s", hostname)
	if env.EnvID != "" {
		w("Original-Envelope-Id: %s", xtext(env.EnvID))
	}
	w("Arrival-Date: %s", env.Received.Format(time.RFC1123Z))
	for _, r := range recipients(env, rcpts) {
		perRecipient(w, r, kind, until)
	}
	if kind == reportFailure {
		for _, r := range recipients(env, also) {
			perRecipient(w, r, reportSuccess, until)
		}
	}
	w("")

	// Part 3: the original (RFC 3461 §4.3 RET; RFC 3462 text/rfc822-headers).
	w("--%s", boundary)
	headersOnly := kind != reportFailure || env.Ret == mail.ReturnHeaders || len(body) > maxReturnedBody || env.Size > maxReturnedBody
	if headersOnly {
		w("Content-Type: text/rfc822-headers")
		w("")
		b.Write(headerBlock(body))
	} else {
		w("Content-Type: message/rfc822")
		w("")
		b.Write(body)
		if !bytes.HasSuffix(body, []byte("\r\n")) {
			b.WriteString("\r\n")
		}
	}
	w("")
	w("--%s--", boundary)
	return b.Bytes()
}

func perRecipient(w func(string, ...any), r *mail.Recipient, kind reportKind, until time.Time) {
	w("")
	if r.ORcpt != "" {
		w("Original-Recipient: %s", oneLine(r.ORcpt))
	}
	w("Final-Recipient: rfc822; %s", r.Addr)
	w("Action: %s", kind)
	status := r.Status
	switch {
	case kind == reportSuccess:
		status = mail.StatusOK
	case kind == reportDelay && status.Class() != 4:
		status = mail.StatusTempFailure
	case kind == reportFailure && status.Class() != 5:
		status = mail.StatusPermFailure
	}
	w("Status: %s", status)
	if r.RemoteMTA != "" {
		w("Remote-MTA: dns; %s", oneLine(r.RemoteMTA))
	}
	if r.LastError != "" && kind != reportSuccess {
		w("Diagnostic-Code: smtp; %s", oneLine(r.LastError))
	}
	if !r.Done.IsZero() {
		w("Last-Attempt-Date: %s", r.Done.Format(time.RFC1123Z))
	}
	if kind == reportDelay && !r.NextAttempt.IsZero() {
		w("Will-Retry-Until: %s", until.Format(time.RFC1123Z))
	}
}

// recipients returns the recipients of env with the keys, in that order.
func recipients(env *mail.Envelope, keys []int) []*mail.Recipient {
	out := make([]*mail.Recipient, 0, len(keys))
	for _, k := range keys {
		if r := env.Recipient(k); r != nil {
			out = append(out, r)
		}
	}
	return out
}

// headerBlock returns the header section of a message, ending in CRLF.
func headerBlock(body []byte) []byte {
	if i := bytes.Index(body, []byte("\r\n\r\n")); i >= 0 {
		return body[:i+2]
	}
	out := append([]byte(nil), body...)
	if !bytes.HasSuffix(out, []byte("\r\n")) {
		out = append(out, '\r', '\n')
	}
	return out
}

// oneLine keeps a value on one header line.
func oneLine(s string) string {
	s = strings.NewReplacer("\r", " ", "\n", " ").Replace(s)
	if len(s) > 900 {
		s = s[:900]
	}
	return s
}

// xtext encodes s as RFC 3461 §4 xtext.
func xtext(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '!' || c > '~' || c == '+' || c == '=' {
			fmt.Fprintf(&b, "+%02X", c)
		} else {
			b.WriteByte(c)
		}
	}
	return b.String()
}
