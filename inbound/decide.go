package inbound

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/emersion/go-msgauth/authres"

	"github.com/homing-mail/homing/mail"
)

// decide writes the Authentication-Results field and applies the policy.
func (c *Checker) decide(ctx context.Context, o Origin, spf spfOutcome, dk dkimOutcome, header []byte) Verdict {
	dm := c.evaluateDMARC(ctx, header, spf, dk)
	mode := c.cfg.Policy(dm.from)
	if dm.from != "" && mode == Enforce {
		if m := c.cfg.Policy(orgDomain(dm.from)); m != Enforce {
			mode = m
		}
	}
	disp := dm.disposition
	switch mode {
	case Monitor:
		disp = "none"
	case Quarantine:
		if disp == "reject" {
			disp = "quarantine"
		}
	}
	v := Verdict{SPF: string(spf.result), DKIM: dk.best(), DMARC: dm.result}
	if v.SPF == "" {
		v.SPF = "none"
	}
	switch {
	case disp == "reject" && dm.couldReject:
		// A DNS failure kept a check from passing: it may pass later.
		v.Refuse = mail.Temporaryf(mail.StatusRefused.Transient(), "Message not accepted now: its authentication could not be checked, try again later")
		disp = "none"
	case disp == "reject":
		v.Refuse = mail.Permanentf(mail.StatusRefused, "Message rejected: it fails the DMARC policy of its author domain")
	case disp == "quarantine":
		v.Quarantine = true
	}
	v.Header = c.format(o, spf, dk, dm, disp)
	v.Detail = fmt.Sprintf("spf=%s (%s) dkim=%s dmarc=%s", v.SPF, spf.domain, v.DKIM, v.DMARC)
	if dm.from != "" {
		v.Detail += " (" + dm.from + ")"
	}
	if disp != "none" {
		v.Detail += " policy=" + disp
	}
	if c.cfg.Metrics != nil {
		c.cfg.Metrics.count(v, dk)
	}
	return v
}

// format is the Authentication-Results field (RFC 8601 §2.2), folded
// per result.
func (c *Checker) format(o Origin, spf spfOutcome, dk dkimOutcome, dm dmarcOutcome, disp string) []byte {
	var rs []authres.Result
	sp := map[string]string{}
	if spf.helo {
		sp["smtp.helo"] = spf.domain
	} else {
		sp["smtp.mailfrom"] = spf.domain
	}
	rs = append(rs, &authres.GenericResult{Method: "spf", Value: authres.ResultValue(orNone(string(spf.result))), Params: sp})
	if len(dk.sigs) == 0 {
		rs = append(rs, &authres.GenericResult{Method: "dkim", Value: authres.ResultValue(dk.best())})
	}
	for _, s := range dk.sigs {
		p := map[string]string{"header.d": s.domain}
		if s.identifier != "" {
			p["header.i"] = s.identifier
		}
		rs = append(rs, &authres.GenericResult{Method: "dkim", Value: authres.ResultValue(s.result), Params: p})
	}
	dp := map[string]string{}
	if dm.from != "" {
		dp["header.from"] = dm.from
	}
	if disp != "none" {
		// What this receiver applied (RFC 8601 §2.3's "policy" ptype):
		// delivery reads it to file the message in Junk.
		dp["policy.dmarc"] = disp
	}
	rs = append(rs, &authres.GenericResult{Method: "dmarc", Value: authres.ResultValue(dm.result), Params: dp})
	v := authres.Format(c.cfg.AuthServID, rs)
	// One result a line; a result without properties leaves a blank
	// before its ";".
	v = strings.ReplaceAll(strings.ReplaceAll(v, " ; ", "; "), "; ", ";\r\n\t")
	v = strings.TrimRight(v, " ")
	return []byte("Authentication-Results: " + v + "\r\n")
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// sample is true with probability pct/100.
func (c *Checker) sample(pct int) bool {
	if c.cfg.Sample != nil {
		return c.cfg.Sample(pct)
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	return binary.BigEndian.Uint64(b[:])%100 < uint64(pct)
}
