package inbound

import (
	"context"
	"io"

	msgdkim "github.com/emersion/go-msgauth/dkim"
)

// maxSignatures is how many DKIM signatures of one message are verified
// (each costs DNS lookups; RFC 6376 §6.1 lets a verifier limit them).
const maxSignatures = 8

// dkimSig is one verified signature: its result (RFC 8601 §2.7.1: pass,
// fail, neutral, temperror, permerror) and its d= and i=.
type dkimSig struct {
	result, domain, identifier, reason string
}

// dkimOutcome is the verification of every signature of a message.
type dkimOutcome struct {
	sigs []dkimSig
	err  error // the message could not be read as one (no header section...)
}

// verifyDKIM verifies every signature of the message read from r.
func (c *Checker) verifyDKIM(ctx context.Context, r io.Reader) dkimOutcome {
	res := ctxResolver{ctx, c.cfg.Resolver}
	vs, err := msgdkim.VerifyWithOptions(r, &msgdkim.VerifyOptions{LookupTXT: res.txt, MaxVerifications: maxSignatures})
	out := dkimOutcome{}
	if err != nil && err != msgdkim.ErrTooManySignatures && len(vs) == 0 {
		out.err = err
	}
	for _, v := range vs {
		s := dkimSig{result: "pass", domain: lowerDomain(v.Domain), identifier: v.Identifier}
		switch {
		case v.Err == nil:
		case msgdkim.IsTempFail(v.Err):
			s.result, s.reason = "temperror", v.Err.Error()
		case msgdkim.IsPermFail(v.Err):
			// A malformed signature or key record, a missing key:
			// permerror (RFC 8601 §2.7.1), never the message's refusal.
			s.result, s.reason = "permerror", v.Err.Error()
		default:
			s.result, s.reason = "fail", v.Err.Error()
		}
		if ctx.Err() != nil && s.result != "pass" {
			s.result, s.reason = "temperror", "the check took too long"
		}
		out.sigs = append(out.sigs, s)
	}
	return out
}

// best is the DKIM result of the message as one word: pass when a
// signature passed, else temperror, fail, permerror in that order, none
// without signatures.
func (d dkimOutcome) best() string {
	if len(d.sigs) == 0 {
		if d.err != nil {
			return "permerror"
		}
		return "none"
	}
	rank := map[string]int{"pass": 4, "temperror": 3, "fail": 2, "permerror": 1}
	best := d.sigs[0].result
	for _, s := range d.sigs[1:] {
		if rank[s.result] > rank[best] {
			best = s.result
		}
	}
	return best
}
