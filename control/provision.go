package control

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/homing-mail/homing/actors/pb"
	"github.com/homing-mail/homing/admin"
	"github.com/homing-mail/homing/cluster"
	"github.com/homing-mail/homing/domains"
	"github.com/homing-mail/homing/guard"
	hmail "github.com/homing-mail/homing/mail"
	"github.com/homing-mail/homing/maillog"
	"github.com/homing-mail/homing/storage"
)

// Provisioning for the whole cluster: domains through the replicated
// registry (package domains), aliases and accounts through the owners of
// their partitions, and the password policy.

// DefaultMinPasswordLength is the shortest password the policy accepts
// when Deps.MinPasswordLength is 0.
const DefaultMinPasswordLength = 8

// checkPolicy says why password may not be the password of address: too
// short, or the account's name in it. A 400 naming "password".
func (a *API) checkPolicy(address, password string) error {
	min := a.MinPasswordLength
	if min <= 0 {
		min = DefaultMinPasswordLength
	}
	if n := len([]rune(password)); n < min {
		return badField("password", fmt.Sprintf("password: at least %d characters are required (this one has %d)", min, n))
	}
	pw := strings.ToLower(password)
	local := strings.ToLower(address)
	if i := strings.LastIndexByte(local, '@'); i >= 0 {
		local = local[:i]
	}
	if strings.Contains(pw, strings.ToLower(address)) || (len(local) >= 3 && strings.Contains(pw, local)) {
		return badField("password", "password: it must not contain the account's name ("+local+")")
	}
	return nil
}

// localDomains are the domains mail is accepted for now.
func (a *API) localDomains() []string {
	if d := a.System.Directory(); d != nil {
		return d.Domains()
	}
	return a.Info.Domains
}

func (a *API) Domains(ctx context.Context) ([]admin.Domain, error) {
	if a.DomainSet == nil {
		var out []admin.Domain
		for _, d := range a.localDomains() {
			out = append(out, admin.Domain{Domain: d, State: string(domains.Active)})
		}
		return out, nil
	}
	var out []admin.Domain
	for _, d := range a.DomainSet.Current().Domains {
		out = append(out, admin.Domain{Domain: d.Name, State: string(d.State)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Domain < out[j].Domain })
	return out, nil
}

// domainError is a registry's error for people.
func domainError(err error, domain string) error {
	var pending *domains.PendingError
	switch {
	case err == nil:
		return nil
	case errors.Is(err, domains.ErrBadDomain):
		return badField("domain", fmt.Sprintf("domain %q is not a domain name (letters, digits, hyphens and dots)", domain))
	case errors.Is(err, hmail.ErrExists):
		return &admin.Error{Status: http.StatusConflict, Message: fmt.Sprintf("domain %s is a local domain already", domain), Field: "domain", Err: err}
	case errors.Is(err, hmail.ErrNotFound):
		return &admin.Error{Status: http.StatusNotFound, Message: fmt.Sprintf("no local domain %s", domain), Field: "domain", Err: err}
	case errors.As(err, &pending):
		return &admin.Error{Status: http.StatusServiceUnavailable, Message: pending.Error(), RetryAfter: 10 * time.Second, Err: err}
	}
	return err
}

func (a *API) AddDomain(ctx context.Context, domain string) (admin.Domain, error) {
	if a.DomainSet == nil {
		return admin.Domain{}, &admin.Error{Status: http.StatusNotImplemented, Message: "this node has no domain registry"}
	}
	d, err := a.DomainSet.Add(ctx, domain)
	if err != nil {
		return admin.Domain{}, domainError(err, domain)
	}
	return admin.Domain{Domain: d.Name, State: string(d.State)}, nil
}

func (a *API) RemoveDomain(ctx context.Context, domain string) error {
	if a.DomainSet == nil {
		return &admin.Error{Status: http.StatusNotImplemented, Message: "this node has no domain registry"}
	}
	d, err := domains.Normalize(domain)
	if err != nil {
		return domainError(err, domain)
	}
	local := a.DomainSet.Current().Local()
	switch {
	case !contains(local, d):
		return domainError(fmt.Errorf("%w", hmail.ErrNotFound), d)
	case len(local) == 1:
		return &admin.Error{Status: http.StatusConflict, Field: "domain",
			Message: fmt.Sprintf("%s is the only local domain: add another first", d)}
	}
	// Its accounts and aliases go first: mail for them would have
	// nowhere to go.
	accts, err := a.System.Accounts(ctx)
	if err != nil {
		return err
	}
	var left []string
	for _, r := range accts {
		if hmail.Domain(r.Address) == d {
			left = append(left, r.Address)
		}
	}
	aliases, err := a.System.Aliases(ctx)
	if err != nil {
		return err
	}
	for _, al := range aliases {
		if hmail.Domain(al.Alias) == d {
			left = append(left, al.Alias)
		}
	}
	if len(left) > 0 {
		sort.Strings(left)
		shown := left[:min(len(left), 5)]
		more := ""
		if len(left) > len(shown) {
			more = fmt.Sprintf(" and %d more", len(left)-len(shown))
		}
		return &admin.Error{Status: http.StatusConflict, Field: "domain",
			Message: fmt.Sprintf("domain %s still has %d accounts or aliases (%s%s): delete them first", d, len(left), strings.Join(shown, ", "), more)}
	}
	return domainError(a.DomainSet.Remove(ctx, d), d)
}

// forgetEverywhere makes every live member drop what its directory
// remembers of addr (a disabled or deleted account), so that the next RCPT
// asks the owner; a member that cannot be asked forgets it after
// --lookup-cache-ttl.
func (a *API) forgetEverywhere(ctx context.Context, addr string) {
	a.System.Directory().Forget(addr)
	var wg sync.WaitGroup
	for _, m := range a.others() {
		wg.Add(1)
		go func(m cluster.Member) {
			defer wg.Done()
			if err := a.ask(ctx, m, &pb.Introspect{Kind: "forget", Id: addr}, nil); err != nil {
				a.Logger.Warn("a member did not forget an address (it will after the lookup cache TTL)", "member", m.Name, "address", addr, "err", err)
			}
		}(m)
	}
	wg.Wait()
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (a *API) Aliases(ctx context.Context) ([]admin.Alias, error) {
	as, err := a.System.Aliases(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]admin.Alias, 0, len(as))
	for _, x := range as {
		out = append(out, admin.Alias{Alias: x.Alias, Target: x.Target})
	}
	return out, nil
}

// aliasDomainCheck requires the alias's domain to be local.
func (a *API) aliasDomainCheck(alias string) error {
	if d := hmail.Domain(alias); !a.System.Directory().IsLocalDomain(d) {
		return badField("alias", fmt.Sprintf("alias %s: %s is not a local domain (%s)", alias, d, strings.Join(a.localDomains(), ", ")))
	}
	return nil
}

func (a *API) AddAlias(ctx context.Context, al admin.Alias) (admin.Alias, error) {
	alias := strings.ToLower(strings.TrimSpace(al.Alias))
	target, err := hmail.ParseAddress(strings.TrimSpace(al.Target))
	if err != nil {
		return admin.Alias{}, badField("target", fmt.Sprintf("target %q: %v", al.Target, addressReason(err)))
	}
	target = strings.ToLower(target)
	if err := a.aliasDomainCheck(alias); err != nil {
		return admin.Alias{}, err
	}
	if alias == target {
		return admin.Alias{}, badField("target", "target: an alias cannot point to itself")
	}
	if a.System.Directory().IsLocalDomain(hmail.Domain(target)) {
		// A local target must be an account (an alias of an alias is
		// not followed); one elsewhere is a forwarding address.
		if _, err := a.System.GetAccount(ctx, target); err != nil {
			if isNotFound(err) {
				return admin.Alias{}, badField("target", fmt.Sprintf("target %s: no such account (homing ctl accounts lists them)", target))
			}
			return admin.Alias{}, err
		}
	}
	if err := a.System.SetAlias(ctx, alias, target); err != nil {
		if errors.Is(err, hmail.ErrExists) {
			return admin.Alias{}, &admin.Error{Status: http.StatusConflict, Field: "alias",
				Message: fmt.Sprintf("%s is an account: an alias cannot have its address", alias), Err: err}
		}
		return admin.Alias{}, err
	}
	return admin.Alias{Alias: alias, Target: target}, nil
}

func (a *API) RemoveAlias(ctx context.Context, alias string) error {
	alias = strings.ToLower(strings.TrimSpace(alias))
	err := a.System.DeleteAlias(ctx, alias)
	if isNotFound(err) {
		return &admin.Error{Status: http.StatusNotFound, Field: "alias", Message: "no alias " + alias, Err: err}
	}
	return err
}

func (a *API) SetPassword(ctx context.Context, address, password string) error {
	addr := strings.ToLower(strings.TrimSpace(address))
	if err := a.checkPolicy(addr, password); err != nil {
		return err
	}
	hash, err := storage.HashPassword(password)
	if err != nil {
		return err
	}
	_, err = a.System.UpdateAccount(ctx, &pb.UpdateAccount{Address: addr, PasswordHash: hash})
	return a.accountError(err, addr)
}

// ChangePassword is an account's own change of its password: the old
// one is checked through the node's guard, like SMTP AUTH and submit (the
// same gate of checks and budgets of failures per network and per
// account), and a failure answers 401 after the guard's delay.
func (a *API) ChangePassword(ctx context.Context, client netip.Addr, address, old, password string) error {
	addr := strings.ToLower(strings.TrimSpace(address))
	attempt, err := a.Guard.Begin(ctx, client, addr)
	var refusal *guard.Refusal
	switch {
	case errors.Is(err, guard.ErrThrottled) && errors.As(err, &refusal):
		a.loginLogged(client, addr, maillog.AuthThrottled)
		return &admin.Error{Status: http.StatusTooManyRequests, Message: "too many failed logins; try again later", RetryAfter: refusal.RetryAfter}
	case errors.As(err, &refusal):
		a.loginLogged(client, addr, maillog.AuthBusy)
		return &admin.Error{Status: http.StatusServiceUnavailable, Message: "too many logins in progress; try again later", RetryAfter: refusal.RetryAfter}
	case err != nil:
		return err
	}
	_, err = a.System.Authenticate(ctx, addr, old)
	if errors.Is(err, hmail.ErrInvalid) {
		err = fmt.Errorf("%w: %v", hmail.ErrAuthFailed, err)
	}
	switch {
	case err == nil:
		attempt.Succeeded()
		a.loginLogged(client, addr, maillog.AuthOK)
	case errors.Is(err, hmail.ErrAuthFailed):
		result := maillog.AuthFailed
		if errors.Is(err, hmail.ErrDisabled) {
			result = maillog.AuthDisabled
		}
		a.loginLogged(client, addr, result)
		delay := attempt.Failed()
		t := time.NewTimer(delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
		}
		return hmail.ErrAuthFailed
	default:
		attempt.Abandoned()
		return err
	}
	return a.SetPassword(ctx, addr, password)
}

func (a *API) UpdateAccount(ctx context.Context, address string, u admin.AccountUpdate) (admin.Account, error) {
	addr := strings.ToLower(strings.TrimSpace(address))
	req := &pb.UpdateAccount{Address: addr}
	if u.QuotaBytes != nil {
		if *u.QuotaBytes < 0 {
			return admin.Account{}, badField("quotaBytes", "quotaBytes must not be negative (0: unlimited)")
		}
		req.SetQuota, req.QuotaBytes = true, *u.QuotaBytes
	}
	if u.Disabled != nil {
		req.SetDisabled, req.Disabled = true, *u.Disabled
	}
	rec, err := a.System.UpdateAccount(ctx, req)
	if err != nil {
		return admin.Account{}, a.accountError(err, addr)
	}
	if u.Disabled != nil {
		// RCPT-time answers remembered for its address are stale now.
		a.forgetEverywhere(ctx, addr)
	}
	return accountOut(rec, a.ownerOf(int(rec.Partition))), nil
}
