package inbound

import (
	"context"
	"net"

	"blitiri.com.ar/go/spf"

	"github.com/homing-mail/homing/mail"
)

// spfOutcome is the SPF result of a message (RFC 7208 §2.6) and the
// identity checked: the MAIL FROM domain, or the HELO name for the null
// sender (§2.4).
type spfOutcome struct {
	result spf.Result
	domain string
	helo   bool // the identity is the HELO name
}

// checkSPF runs check_host() for the client's address (RFC 7208 §4),
// with the library's limits (10 DNS-querying terms, 2 void lookups,
// §4.6.4).
func (c *Checker) checkSPF(ctx context.Context, o Origin) spfOutcome {
	sender := o.MailFrom
	out := spfOutcome{domain: lowerDomain(mail.Domain(sender))}
	if out.domain == "" {
		out.domain, out.helo = lowerDomain(o.HELO), true
		sender = "postmaster@" + out.domain
	}
	if !o.IP.IsValid() || out.domain == "" {
		out.result = spf.None
		return out
	}
	res, _ := spf.CheckHostWithSender(net.IP(o.IP.Unmap().AsSlice()), o.HELO, sender,
		spf.WithContext(ctx), spf.WithResolver(ctxResolver{ctx, c.cfg.Resolver}))
	out.result = res
	return out
}

// ctxResolver is a Resolver for libraries that pass their own context
// (or none): the check's context bounds every lookup.
type ctxResolver struct {
	ctx context.Context
	r   Resolver
}

func (c ctxResolver) LookupTXT(_ context.Context, name string) ([]string, error) {
	return c.r.LookupTXT(c.ctx, name)
}
func (c ctxResolver) LookupMX(_ context.Context, name string) ([]*net.MX, error) {
	return c.r.LookupMX(c.ctx, name)
}
func (c ctxResolver) LookupIPAddr(_ context.Context, host string) ([]net.IPAddr, error) {
	return c.r.LookupIPAddr(c.ctx, host)
}
func (c ctxResolver) LookupAddr(_ context.Context, addr string) ([]string, error) {
	return c.r.LookupAddr(c.ctx, addr)
}

// txt is a LookupTXT without a context, for go-msgauth.
func (c ctxResolver) txt(name string) ([]string, error) { return c.r.LookupTXT(c.ctx, name) }
