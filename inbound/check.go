package inbound

import (
	"context"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/homing-mail/homing/mail"
)

// Resolver is the DNS the checks use (*resolve.Resolver).
type Resolver interface {
	LookupTXT(ctx context.Context, name string) ([]string, error)
	LookupMX(ctx context.Context, name string) ([]*net.MX, error)
	LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error)
	LookupAddr(ctx context.Context, addr string) ([]string, error)
}

// Config configures a Checker.
type Config struct {
	// AuthServID names the cluster in Authentication-Results (RFC 8601
	// §2.5); the same on every node.
	AuthServID string
	Resolver   Resolver
	// Policy is what a DMARC failure does for mail whose author domain
	// is domain (lower case); nil: Enforce.
	Policy func(authorDomain string) Mode
	// Timeout bounds the checks of one message from its MAIL to the end
	// of its DATA's checks; default 30 s. A check not done by then is a
	// temperror.
	Timeout time.Duration
	// Metrics counts the results (nil: not counted).
	Metrics *Metrics
	// Sample decides DMARC's pct= sampling (RFC 7489 §6.6.4): it returns
	// true with probability pct/100. nil: a random draw.
	Sample func(pct int) bool
}

// Mode is what a DMARC failure does.
type Mode string

// The modes of --dmarc-policy.
const (
	// Enforce follows the author domain's policy.
	Enforce Mode = "enforce"
	// Quarantine files p=reject failures in Junk too.
	Quarantine Mode = "quarantine"
	// Monitor only writes the result.
	Monitor Mode = "monitor"
)

// Checker runs the checks of messages from outside. Safe for concurrent
// use.
type Checker struct{ cfg Config }

// New returns a checker for cfg.
func New(cfg Config) *Checker {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	if cfg.Policy == nil {
		cfg.Policy = func(string) Mode { return Enforce }
	}
	return &Checker{cfg: cfg}
}

// Verdict is the outcome of the checks of one message.
type Verdict struct {
	// Header is the Authentication-Results field to put in front of the
	// message (with its CRLF).
	Header []byte
	// Refuse, when set, is the reply the message gets instead of 250: 550
	// 5.7.1 for a DMARC p=reject failure, 451 4.7.1 when a DNS failure
	// kept the checks from ruling out such a failure.
	Refuse *mail.Error
	// Quarantine: deliver to the Junk folder (DMARC p=quarantine).
	Quarantine bool
	// SPF, DKIM and DMARC are the results (pass, fail, none, ...; DKIM's
	// is the best of its signatures), for metrics, rules and the journey.
	SPF, DKIM, DMARC string
	// Detail says it for people: "spf=pass (example.com) dkim=... ".
	Detail string
}

// Check is the checks of one message in progress.
type Check struct {
	c      *Checker
	ctx    context.Context
	cancel context.CancelFunc
	origin Origin

	filter *headerFilter
	pw     *io.PipeWriter
	dkimCh chan dkimOutcome
	spfCh  chan spfOutcome
	once   sync.Once
}

// Origin is what the SMTP session knows of the message's sender.
type Origin struct {
	IP       netip.Addr
	HELO     string
	MailFrom string // the reverse-path, "" for the null sender
}

// Begin starts the checks of one message: SPF at once, DKIM once the
// header section shows a signature (the message is then fed to the
// verifier as it is written to the Check). The Check passes the message
// on to out without the forged Authentication-Results fields; End or
// Abort must be called.
func (c *Checker) Begin(ctx context.Context, o Origin, out io.Writer) *Check {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	k := &Check{c: c, ctx: ctx, cancel: cancel, origin: o,
		dkimCh: make(chan dkimOutcome, 1), spfCh: make(chan spfOutcome, 1)}
	k.filter = newHeaderFilter(c.cfg.AuthServID, teeWriter{out: out, k: k})
	k.filter.onEnd = k.headerRead
	go func() { k.spfCh <- c.checkSPF(ctx, o) }()
	return k
}

// headerRead starts the DKIM verifier when the message is signed: a
// message without a signature costs no second pass over its bytes.
func (k *Check) headerRead(raw []byte) {
	if !hasField(raw, "DKIM-Signature") {
		return
	}
	pr, pw := io.Pipe()
	k.pw = pw
	go func() {
		res := k.c.verifyDKIM(k.ctx, pr)
		// The verifier may stop before the end; drain the rest so that
		// the session's writes never block.
		io.Copy(io.Discard, pr)
		k.dkimCh <- res
	}()
	pw.Write(raw)
}

// teeWriter writes to the message's destination and, once started, to
// the DKIM verifier; only the destination's errors count.
type teeWriter struct {
	out io.Writer
	k   *Check
}

func (t teeWriter) Write(p []byte) (int, error) {
	n, err := t.out.Write(p)
	if t.k.pw != nil {
		t.k.pw.Write(p)
	}
	return n, err
}

// Write implements io.Writer: the message's bytes as they arrive.
func (k *Check) Write(p []byte) (int, error) { return k.filter.Write(p) }

// Removed is how many forged Authentication-Results fields were dropped.
func (k *Check) Removed() int { return k.filter.removed }

// Abort ends the checks of a message that is not taken.
func (k *Check) Abort() {
	k.once.Do(func() {
		k.cancel()
		if k.pw != nil {
			k.pw.CloseWithError(io.ErrClosedPipe)
			<-k.dkimCh
		}
		<-k.spfCh
	})
}

// End finishes the checks once the whole message was written, and
// decides.
func (k *Check) End() Verdict {
	var v Verdict
	k.once.Do(func() {
		defer k.cancel()
		k.filter.close()
		var dk dkimOutcome
		if k.pw != nil {
			k.pw.Close()
			dk = <-k.dkimCh
		}
		spf := <-k.spfCh
		v = k.c.decide(k.ctx, k.origin, spf, dk, k.filter.header.Bytes())
	})
	return v
}

// lowerDomain is d lower case without a final dot.
func lowerDomain(d string) string { return strings.ToLower(strings.TrimSuffix(d, ".")) }
