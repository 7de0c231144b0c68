package inbound

import (
	"context"
	"errors"
	netmail "net/mail"
	"strings"

	"github.com/emersion/go-msgauth/dmarc"
	"golang.org/x/net/publicsuffix"

	"github.com/homing-mail/homing/mail"
)

// dmarcOutcome is the DMARC evaluation of a message (RFC 7489 §6.6).
type dmarcOutcome struct {
	result      string // pass, fail, none, temperror, permerror
	from        string // the author domain
	policy      dmarc.Policy
	disposition string // what the receiver does: none, quarantine, reject
	reason      string
	// couldReject: the policy is reject, and a check's temperror keeps
	// the result from being known.
	couldReject bool
}

// authorDomain is the domain of the RFC 5322 From field (RFC 7489
// §6.6.1): exactly one field with exactly one address.
func authorDomain(header []byte) (string, error) {
	from, ok := fromField(header)
	if !ok {
		msg, err := netmail.ReadMessage(strings.NewReader(string(header) + "\r\n"))
		if err != nil {
			return "", err
		}
		froms := msg.Header["From"]
		if len(froms) != 1 {
			return "", errors.New("not exactly one From field")
		}
		from = froms[0]
	}
	addrs, err := netmail.ParseAddressList(from)
	if err != nil {
		return "", err
	}
	if len(addrs) != 1 {
		return "", errors.New("not exactly one From address")
	}
	d := lowerDomain(mail.Domain(addrs[0].Address))
	if d == "" {
		return "", errors.New("a From address without a domain")
	}
	return d, nil
}

// orgDomain is the organizational domain of d (RFC 7489 §3.2): the
// public suffix and one label more.
func orgDomain(d string) string {
	if org, err := publicsuffix.EffectiveTLDPlusOne(d); err == nil {
		return org
	}
	return d
}

// aligned reports whether identifier domain id is aligned with the author
// domain (RFC 7489 §3.1): the same name (strict) or the same
// organizational domain (relaxed).
func aligned(id, author string, mode dmarc.AlignmentMode) bool {
	if id == "" {
		return false
	}
	if mode == dmarc.AlignmentStrict {
		return id == author
	}
	return orgDomain(id) == orgDomain(author)
}

// lookupPolicy finds the DMARC record of the author domain or, failing
// that, of its organizational domain (§6.6.3), and says which applies:
// p= at the domain itself, sp= (or p=) from the organizational domain.
func (c *Checker) lookupPolicy(ctx context.Context, author string) (*dmarc.Record, dmarc.Policy, error) {
	res := ctxResolver{ctx, c.cfg.Resolver}
	opts := &dmarc.LookupOptions{LookupTXT: res.txt}
	rec, err := dmarc.LookupWithOptions(author, opts)
	if err == nil {
		return rec, rec.Policy, nil
	}
	if !errors.Is(err, dmarc.ErrNoPolicy) {
		return nil, "", err
	}
	org := orgDomain(author)
	if org == author {
		return nil, "", err
	}
	rec, err = dmarc.LookupWithOptions(org, opts)
	if err != nil {
		return nil, "", err
	}
	if rec.SubdomainPolicy != "" {
		return rec, rec.SubdomainPolicy, nil
	}
	return rec, rec.Policy, nil
}

// evaluateDMARC applies the author domain's policy to the SPF and DKIM
// results (RFC 7489 §6.6.2, §6.6.3).
func (c *Checker) evaluateDMARC(ctx context.Context, header []byte, spf spfOutcome, dk dkimOutcome) dmarcOutcome {
	author, err := authorDomain(header)
	if err != nil {
		return dmarcOutcome{result: "permerror", disposition: "none", reason: "From: " + err.Error()}
	}
	out := dmarcOutcome{from: author, disposition: "none"}
	rec, policy, err := c.lookupPolicy(ctx, author)
	switch {
	case errors.Is(err, dmarc.ErrNoPolicy):
		out.result = "none"
		return out
	case dmarc.IsTempFail(err) || ctx.Err() != nil:
		out.result, out.reason = "temperror", "the DMARC record could not be fetched"
		return out
	case err != nil:
		// A malformed record (RFC 7489 §6.6.3: as if there were none,
		// said as permerror).
		out.result, out.reason = "permerror", "malformed DMARC record"
		return out
	}
	out.policy = policy
	temp := false
	for _, s := range dk.sigs {
		if s.result == "pass" && aligned(s.domain, author, rec.DKIMAlignment) {
			out.result = "pass"
			return out
		}
		temp = temp || s.result == "temperror"
	}
	if spf.result == "pass" && !spf.helo && aligned(spf.domain, author, rec.SPFAlignment) {
		out.result = "pass"
		return out
	}
	temp = temp || spf.result == "temperror"
	out.result = "fail"
	if policy == dmarc.PolicyNone || policy == "" {
		return out
	}
	pct := 100
	if rec.Percent != nil {
		pct = *rec.Percent
	}
	disp := string(policy)
	if pct < 100 && !c.sample(pct) {
		// §6.6.4: outside the sample, the next less strict policy.
		if policy == dmarc.PolicyReject {
			disp = dmarc.PolicyQuarantine
		} else {
			disp = "none"
		}
	}
	out.disposition = disp
	out.couldReject = temp && disp == dmarc.PolicyReject
	return out
}
