package smtp

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"

	"github.com/homing-mail/homing/mail"
)

// maxPreludeBytes bounds what the client reads before go-smtp takes over
// (greeting and EHLO replies), so a hostile server cannot make it buffer
// without end.
const maxPreludeBytes = 64 << 10

// next says what Send does after an attempt.
type next int

const (
	done       next = iota // the transaction ran (or was refused for good); results are set
	nextHost               // this address failed before MAIL; try the next one
	retryPlain             // opportunistic TLS failed; try the same address without it
)

// attempt connects to addr and runs the transaction there. Before MAIL
// nothing is written to results; from MAIL on, every result is set.
func (c *Client) attempt(ctx context.Context, h host, addr string, pol tlsPolicy,
	env *mail.Envelope, rcpts []*mail.Recipient, body mail.Body, results []mail.Result) (mail.Result, next) {
	name := h.name
	dctx, cancel := context.WithTimeout(ctx, c.cfg.DialTimeout)
	raw, err := c.cfg.Dial(dctx, "tcp", addr)
	cancel()
	if err != nil {
		return relayed(remote(mail.Temp(mail.StatusNoAnswer, fmt.Sprintf("connection to %s (%s) failed: %v", name, addr, err)), name), name, addr), nextHost
	}
	defer raw.Close()
	// Any blocking read or write ends when ctx does.
	stop := context.AfterFunc(ctx, func() { raw.Close() })
	defer stop()

	report := func(result, detail string) {
		c.cfg.Metrics.tlsOutcome(pol.label, result)
		c.journal(env.ID, name, addr, detail)
	}
	cl, conn, secure, res, nx := c.open(ctx, name, raw, pol, report)
	if cl == nil {
		return relayed(remote(res, name), name, addr), nx
	}
	defer cl.Close()
	if c.cfg.Auth != nil {
		if err := cl.Auth(c.cfg.Auth.Client()); err != nil {
			return relayed(remote(mail.Temp(mail.StatusTempAuth, fmt.Sprintf("cluster authentication with %s failed: %v", name, err)), name), name, addr), nextHost
		}
	} else if cred, ok := c.credential(h); ok {
		if res, ok := c.authenticate(cl, h, cred, secure); !ok {
			quit(cl)
			return relayed(remote(res, name), name, addr), nextHost
		}
	}
	c.transact(cl, conn, name, env, rcpts, body, results)
	for i := range results {
		results[i] = relayed(results[i], name, addr)
	}
	return mail.Result{}, done
}

// authenticate sends the route's credentials: only over TLS, with PLAIN
// (RFC 4616) or, when the server offers only that, LOGIN. A server that
// offers no AUTH gets the message without (it may relay for this
// client's address; Postfix does the same). A refusal is a temporary
// failure of the host whatever its class: the credentials are this
// server's configuration, and the message is not at fault.
func (c *Client) authenticate(cl *gosmtp.Client, h host, cred Credential, secure bool) (mail.Result, bool) {
	who := fmt.Sprintf("%s as %s (route %s)", h.name, cred.User, h.route)
	if !secure {
		c.cfg.Metrics.authResult("no-tls")
		return mail.Temp(mail.StatusEncryptionRequired.Transient(), "not sending the credentials to "+who+" without TLS"), false
	}
	ok, mechs := cl.Extension("AUTH")
	if !ok {
		c.cfg.Metrics.authResult("not-offered")
		c.log.Warn("relay: the route has credentials but the server offers no AUTH; sending without", "host", h.name, "route", h.route)
		return mail.Result{}, true
	}
	var sc sasl.Client
	offered := strings.Fields(strings.ToUpper(mechs))
	switch {
	case slices.Contains(offered, "PLAIN"):
		sc = sasl.NewPlainClient("", cred.User, cred.Password)
	case slices.Contains(offered, "LOGIN"):
		sc = sasl.NewLoginClient(cred.User, cred.Password)
	default:
		c.cfg.Metrics.authResult("no-mechanism")
		return mail.Temp(mail.StatusTempAuth, fmt.Sprintf("%s offers AUTH %s, none of PLAIN and LOGIN", h.name, mechs)), false
	}
	err := cl.Auth(sc)
	var se *gosmtp.SMTPError
	switch {
	case err == nil:
		c.cfg.Metrics.authResult("ok")
		return mail.Result{}, true
	case errors.As(err, &se):
		c.cfg.Metrics.authResult("failed")
		r := fromReply(se)
		text := fmt.Sprintf("authentication with %s failed: %d %s %s", who, r.Code, r.Status, r.Text)
		if r.Code/100 == 5 {
			text += " (deferred: the route's credentials are to be fixed in --route-credentials, then SIGHUP)"
		}
		return mail.Result{Code: 451, Status: r.Status.Transient(), Text: text}, false
	}
	return mail.Temp(mail.StatusConnectionLost, fmt.Sprintf("authentication with %s failed: %v", who, err)), false
}

// open reads the greeting, says EHLO and runs STARTTLS as pol asks, then
// hands the connection to a go-smtp client; secure says whether it runs
// over TLS. go-smtp can only run STARTTLS right after a greeting it read
// itself and EHLO "localhost", and has no way to send it on a client that
// already said EHLO with our name; so the client does this part itself
// and lets go-smtp start on the TLS connection (or the plaintext one)
// with a synthetic greeting. go-smtp then says EHLO again (RFC 3207 §4.2
// requires it after TLS; after plaintext it is a harmless repetition, RFC
// 5321 §4.1.4). report gets the TLS outcome of the connection.
func (c *Client) open(ctx context.Context, name string, raw net.Conn, pol tlsPolicy,
	report func(result, detail string)) (_ *gosmtp.Client, _ net.Conn, secure bool, _ mail.Result, _ next) {
	broken := func(what string, err error) (*gosmtp.Client, net.Conn, bool, mail.Result, next) {
		return nil, nil, false, mail.Temp(mail.StatusConnectionLost, fmt.Sprintf("%s with %s failed: %v", what, name, err)), nextHost
	}
	refused := func(res mail.Result) (*gosmtp.Client, net.Conn, bool, mail.Result, next) {
		return nil, nil, false, res, nextHost
	}
	tlsFailed := func(text string) (*gosmtp.Client, net.Conn, bool, mail.Result, next) {
		report("failed", text)
		return nil, nil, false, mail.Temp(mail.StatusTLSFailed, text), nextHost
	}
	raw.SetDeadline(time.Now().Add(c.cfg.CommandTimeout))
	br := bufio.NewReader(&io.LimitedReader{R: raw, N: maxPreludeBytes})
	tr := textproto.NewReader(br)

	if _, _, err := tr.ReadResponse(220); err != nil {
		var pe *textproto.Error
		if errors.As(err, &pe) {
			// A 4xx (or 5xx) greeting: this host does not take mail now.
			return refused(fromReply(toSMTPError(pe)))
		}
		return refused(mail.Temp(mail.StatusNoAnswer, fmt.Sprintf("no greeting from %s: %v", name, err)))
	}
	ext := map[string]string{}
	if _, err := io.WriteString(raw, "EHLO "+c.cfg.Hostname+"\r\n"); err != nil {
		return broken("EHLO", err)
	}
	if _, msg, err := tr.ReadResponse(250); err != nil {
		var pe *textproto.Error
		if !errors.As(err, &pe) {
			return broken("EHLO", err)
		}
		if pe.Code != 500 && pe.Code != 502 {
			return refused(fromReply(toSMTPError(pe)))
		}
		// No ESMTP: go-smtp falls back to HELO itself below.
	} else {
		ext = parseEHLO(msg)
	}

	conn := raw
	_, offered := ext["STARTTLS"]
	switch {
	case pol.required && !offered:
		return tlsFailed(name + " does not offer STARTTLS, and " + pol.why)
	case !offered:
		report("plaintext", "plaintext: STARTTLS not offered")
	case pol.plain:
		report("plaintext", "plaintext: the TLS handshake failed before (opportunistic TLS)")
	default:
		if _, err := io.WriteString(raw, "STARTTLS\r\n"); err != nil {
			return broken("STARTTLS", err)
		}
		_, _, err := tr.ReadResponse(220)
		var pe *textproto.Error
		switch {
		case errors.As(err, &pe) && pol.required:
			return tlsFailed(fmt.Sprintf("%s refused STARTTLS (%d %s), and %s", name, pe.Code, oneLine(pe.Msg), pol.why))
		case errors.As(err, &pe):
			// Refused: go on in plaintext on this connection (RFC 3207 §4).
			report("plaintext", fmt.Sprintf("plaintext: STARTTLS refused (%d)", pe.Code))
		case err != nil:
			return broken("STARTTLS", err)
		case br.Buffered() > 0:
			// Data after the 220 was sent before TLS and would be read
			// as if it came through it (CVE-2011-0411 style injection).
			return broken("STARTTLS", errors.New("unexpected data after the 220 reply"))
		default:
			tc := tls.Client(raw, pol.config)
			hctx, cancel := context.WithTimeout(ctx, c.cfg.CommandTimeout)
			err := tc.HandshakeContext(hctx)
			cancel()
			if err != nil {
				text := fmt.Sprintf("TLS handshake with %s failed: %v", name, err)
				if pol.required {
					return tlsFailed(text + "; " + pol.why)
				}
				if pol.fallback {
					return nil, nil, false, mail.Temp(mail.StatusTLSFailed, text), retryPlain
				}
				report("failed", text)
				return nil, nil, false, mail.Temp(mail.StatusTLSFailed, text), nextHost
			}
			conn, secure = tc, true
			cs := tc.ConnectionState()
			switch {
			case pol.verified:
				report("verified", fmt.Sprintf("%s, certificate verified (%s)", tlsVersion(cs), pol.describe()))
			case pol.report != nil:
				if err := verifyPKIX(cs, pol.roots, name); err != nil {
					c.log.Warn("MTA-STS testing: the certificate of the MX host does not verify; delivering anyway",
						"domain", pol.report.domain, "mx", name, "id", pol.report.id, "err", err)
					report("unverified", fmt.Sprintf("%s, certificate NOT verified: %v (%s: delivered anyway)", tlsVersion(cs), err, pol.report))
				} else {
					report("verified", fmt.Sprintf("%s, certificate verified (%s)", tlsVersion(cs), pol.report))
				}
			default:
				report("unverified", fmt.Sprintf("%s, certificate not verified (%s)", tlsVersion(cs), pol.describe()))
			}
		}
	}
	if !secure && pol.report != nil {
		c.log.Warn("MTA-STS testing: no TLS with the MX host; delivering anyway", "domain", pol.report.domain, "mx", name, "id", pol.report.id)
	}

	// Whatever the server sent that is still buffered (nothing, for a
	// well-behaved one) is handed to go-smtp after the synthetic greeting.
	prelude := []byte("220 " + name + " ESMTP\r\n")
	if conn == raw {
		if n := br.Buffered(); n > 0 {
			pending, _ := br.Peek(n)
			prelude = append(prelude, pending...)
		}
	}
	raw.SetDeadline(time.Time{})
	pc := &preludeConn{Conn: conn, prelude: prelude}
	cl := gosmtp.NewClient(pc)
	cl.CommandTimeout = c.cfg.CommandTimeout
	cl.SubmissionTimeout = c.cfg.DataTimeout
	if err := cl.Hello(c.cfg.Hostname); err != nil {
		cl.Close()
		var se *gosmtp.SMTPError
		if errors.As(err, &se) {
			return refused(fromReply(se))
		}
		return broken("EHLO", err)
	}
	return cl, pc, secure, mail.Result{}, done
}

// tlsConfig returns the configuration for STARTTLS with name.
func (c *Client) tlsConfig(name string) *tls.Config {
	if c.cfg.TLS == nil {
		// RFC 7435 opportunistic security: encrypt, do not authenticate.
		return &tls.Config{ServerName: name, InsecureSkipVerify: true, MinVersion: tls.VersionTLS12} //nolint:gosec // RFC 7435
	}
	cfg := c.cfg.TLS.Clone()
	if cfg.ServerName == "" {
		cfg.ServerName = name
	}
	return cfg
}

// transact runs MAIL, RCPT and DATA and sets every result.
func (c *Client) transact(cl *gosmtp.Client, conn net.Conn, name string,
	env *mail.Envelope, rcpts []*mail.Recipient, body mail.Body, results []mail.Result) {
	set := func(i int, r mail.Result) { results[i] = remote(r, name) }
	setAll := func(idx []int, r mail.Result) {
		for _, i := range idx {
			set(i, r)
		}
	}
	all := make([]int, len(rcpts))
	for i := range all {
		all[i] = i
	}
	lost := func(err error) mail.Result {
		return mail.Temp(mail.StatusConnectionLost, fmt.Sprintf("connection to %s lost: %v", name, err))
	}
	// fail maps a command's error: the server's reply, or a lost connection.
	fail := func(err error) mail.Result {
		var se *gosmtp.SMTPError
		if errors.As(err, &se) {
			return fromReply(se)
		}
		return lost(err)
	}

	if ok, _ := cl.Extension("SMTPUTF8"); env.SMTPUTF8 && !ok {
		setAll(all, mail.Result{Code: 553, Status: mail.StatusNeedsUTF8, Text: name + " does not support SMTPUTF8, which the message needs (RFC 6531 §3.4)"})
		quit(cl)
		return
	}
	if ok, _ := cl.Extension("8BITMIME"); env.Body8Bit && !ok {
		setAll(all, mail.Result{Code: 554, Status: mail.StatusNeeds8BitMIME, Text: name + " does not support 8BITMIME, which the message needs (RFC 6152 §3)"})
		quit(cl)
		return
	}
	if ok, v := cl.Extension("SIZE"); ok {
		if limit, err := strconv.ParseInt(v, 10, 64); err == nil && limit > 0 && body.Size() > limit {
			setAll(all, mail.Result{Code: 552, Status: mail.StatusMessageTooBig, Text: fmt.Sprintf("message size %d exceeds the limit of %s (%d)", body.Size(), name, limit)})
			quit(cl)
			return
		}
	}

	if err := cl.Mail(env.From, mailOptions(env, body.Size())); err != nil {
		setAll(all, fail(err))
		quit(cl)
		return
	}
	var accepted []int
	for i, r := range rcpts {
		err := cl.Rcpt(r.Addr, rcptOptions(r))
		var se *gosmtp.SMTPError
		switch {
		case err == nil:
			accepted = append(accepted, i)
		case errors.As(err, &se):
			set(i, fromReply(se))
		default:
			setAll(accepted, lost(err))
			setAll(all[i:], lost(err))
			return
		}
	}
	if len(accepted) == 0 {
		quit(cl)
		return
	}
	w, err := cl.Data()
	if err != nil {
		setAll(accepted, fail(err))
		if errors.As(err, new(*gosmtp.SMTPError)) {
			quit(cl) // only on a live connection: QUIT waits for its reply
		}
		return
	}
	conn.SetDeadline(time.Now().Add(c.cfg.DataTimeout))
	if err := writeBody(w, body); err != nil {
		setAll(accepted, lost(err))
		return
	}
	resp, err := w.CloseWithResponse()
	if err != nil {
		setAll(accepted, fail(err))
		return
	}
	ok := toSMTPError(&textproto.Error{Code: 250, Msg: resp.StatusText})
	delivered := mail.Delivered(oneLine(ok.Message))
	delivered.Status = statusOf(ok.EnhancedCode, 250)
	setAll(accepted, delivered)
	quit(cl)
}

// quitTimeout bounds the wait for the reply to QUIT, which decides
// nothing.
const quitTimeout = 30 * time.Second

// quit ends the session politely without waiting long for the reply.
func quit(cl *gosmtp.Client) {
	cl.CommandTimeout = min(cl.CommandTimeout, quitTimeout)
	cl.Quit()
}

// mailOptions returns the MAIL parameters. Values go-smtp would refuse
// locally (and so fail the whole attempt) are left out instead.
func mailOptions(env *mail.Envelope, size int64) *gosmtp.MailOptions {
	o := &gosmtp.MailOptions{Size: size, UTF8: env.SMTPUTF8}
	if env.Ret == mail.ReturnFull || env.Ret == mail.ReturnHeaders {
		o.Return = gosmtp.DSNReturn(env.Ret)
	}
	if env.EnvID != "" && isPrintableASCII(env.EnvID) {
		o.EnvelopeID = env.EnvID
	}
	return o
}

// rcptOptions returns the RCPT parameters (RFC 3461 §4.1, §4.2).
func rcptOptions(r *mail.Recipient) *gosmtp.RcptOptions {
	o := &gosmtp.RcptOptions{}
	if validNotify(r.Notify) {
		for _, n := range r.Notify {
			o.Notify = append(o.Notify, gosmtp.DSNNotify(n))
		}
	}
	if typ, addr, ok := strings.Cut(r.ORcpt, ";"); ok && addr != "" {
		switch strings.ToLower(typ) {
		case "rfc822":
			if isPrintableASCII(addr) {
				o.OriginalRecipientType, o.OriginalRecipient = gosmtp.DSNAddressTypeRFC822, addr
			}
		case "utf-8":
			o.OriginalRecipientType, o.OriginalRecipient = gosmtp.DSNAddressTypeUTF8, addr
		}
	}
	return o
}

// validNotify reports whether ns is a NOTIFY value RFC 3461 §4.1 allows:
// NEVER alone, or distinct SUCCESS, FAILURE, DELAY.
func validNotify(ns []mail.Notify) bool {
	if len(ns) == 0 {
		return false
	}
	seen := map[mail.Notify]bool{}
	for _, n := range ns {
		switch n {
		case mail.NotifyNever, mail.NotifySuccess, mail.NotifyFailure, mail.NotifyDelay:
		default:
			return false
		}
		if seen[n] {
			return false
		}
		seen[n] = true
	}
	return !seen[mail.NotifyNever] || len(ns) == 1
}

// fromReply turns a server's reply into a result. A code that is neither
// 4xx nor 5xx where an error was expected is a protocol error, retried.
func fromReply(e *gosmtp.SMTPError) mail.Result {
	text := oneLine(e.Message)
	if e.Code < 400 || e.Code > 599 {
		return mail.Temp(mail.StatusProtocolError, fmt.Sprintf("unexpected reply %d %s", e.Code, text))
	}
	return mail.Result{Code: e.Code, Status: statusOf(e.EnhancedCode, e.Code), Text: text}
}

// toSMTPError parses the enhanced status code of a reply read by
// textproto, as go-smtp does for its own replies.
func toSMTPError(pe *textproto.Error) *gosmtp.SMTPError {
	se := &gosmtp.SMTPError{Code: pe.Code, Message: pe.Msg}
	if code, rest, ok := strings.Cut(pe.Msg, " "); ok {
		if ec := enhanced(mail.Status(code)); ec != gosmtp.EnhancedCodeNotSet {
			se.EnhancedCode, se.Message = ec, rest
		}
	}
	return se
}

// parseEHLO returns the extensions of an EHLO reply (keywords upper-case).
func parseEHLO(msg string) map[string]string {
	ext := map[string]string{}
	lines := strings.Split(msg, "\n")
	for _, l := range lines[1:] {
		k, v, _ := strings.Cut(strings.TrimSpace(l), " ")
		if k != "" {
			ext[strings.ToUpper(k)] = v
		}
	}
	return ext
}

// remote sets the host that gave a result.
func remote(r mail.Result, name string) mail.Result {
	r.RemoteMTA = name
	return r
}

// relayed sets where a result came from, for the delivery log:
// "mx.example.net[192.0.2.1]:25" (Postfix's relay=), name and the address
// dialled.
func relayed(r mail.Result, name, addr string) mail.Result {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		r.Relay = name + "[" + addr + "]"
		return r
	}
	r.Relay = name + "[" + host + "]:" + port
	return r
}

// oneLine joins a multi-line reply text.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

func isPrintableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

// preludeConn is a connection whose first reads return prelude: the
// synthetic greeting that lets a go-smtp client start on a connection
// whose greeting was already read. Only one goroutine reads from it.
type preludeConn struct {
	net.Conn
	prelude []byte
}

func (p *preludeConn) Read(b []byte) (int, error) {
	if len(p.prelude) > 0 {
		n := copy(b, p.prelude)
		p.prelude = p.prelude[n:]
		return n, nil
	}
	return p.Conn.Read(b)
}

// writeBody copies body to w (the DATA writer, which dot-stuffs it).
func writeBody(w io.Writer, body mail.Body) error {
	r, err := body.Open()
	if err != nil {
		return err
	}
	defer r.Close()
	_, err = io.Copy(w, r)
	return err
}
