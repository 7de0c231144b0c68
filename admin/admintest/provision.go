package admintest

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sort"

	"github.com/homing-mail/homing/admin"
	"github.com/homing-mail/homing/mail"
)

// Provisioning in the fake: DomainList answers Domains (AddDomain appends
// an active one, mail.ErrExists when it is there; RemoveDomain removes
// it, mail.ErrNotFound when it is not); AliasMap holds the aliases
// (alias -> target; RemoveAlias of an unknown one is mail.ErrNotFound);
// SetPassword and ChangePassword (which checks the old one in Passwords,
// else mail.ErrAuthFailed) store the new one in Passwords; UpdateAccount
// changes the AccountMap entry. Each of an unknown account is
// mail.ErrNotFound.

// Domains returns DomainList.
func (f *Fake) Domains(ctx context.Context) ([]admin.Domain, error) {
	defer f.Unlock()
	if err := f.enter("Domains"); err != nil {
		return nil, err
	}
	return slices.Clone(f.DomainList), nil
}

// AddDomain appends domain to DomainList.
func (f *Fake) AddDomain(ctx context.Context, domain string) (admin.Domain, error) {
	defer f.Unlock()
	if err := f.enter("AddDomain", domain); err != nil {
		return admin.Domain{}, err
	}
	if slices.ContainsFunc(f.DomainList, func(d admin.Domain) bool { return d.Domain == domain }) {
		return admin.Domain{}, fmt.Errorf("domain %s: %w", domain, mail.ErrExists)
	}
	d := admin.Domain{Domain: domain, State: "active"}
	f.DomainList = append(f.DomainList, d)
	return d, nil
}

// RemoveDomain removes domain from DomainList.
func (f *Fake) RemoveDomain(ctx context.Context, domain string) error {
	defer f.Unlock()
	if err := f.enter("RemoveDomain", domain); err != nil {
		return err
	}
	i := slices.IndexFunc(f.DomainList, func(d admin.Domain) bool { return d.Domain == domain })
	if i < 0 {
		return fmt.Errorf("%w: no local domain %s", mail.ErrNotFound, domain)
	}
	f.DomainList = slices.Delete(f.DomainList, i, i+1)
	return nil
}

// Aliases lists AliasMap, sorted.
func (f *Fake) Aliases(ctx context.Context) ([]admin.Alias, error) {
	defer f.Unlock()
	if err := f.enter("Aliases"); err != nil {
		return nil, err
	}
	var out []admin.Alias
	for a, t := range f.AliasMap {
		out = append(out, admin.Alias{Alias: a, Target: t})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Alias < out[j].Alias })
	return out, nil
}

// AddAlias sets AliasMap[a.Alias].
func (f *Fake) AddAlias(ctx context.Context, a admin.Alias) (admin.Alias, error) {
	defer f.Unlock()
	if err := f.enter("AddAlias", a); err != nil {
		return admin.Alias{}, err
	}
	if f.AliasMap == nil {
		f.AliasMap = map[string]string{}
	}
	f.AliasMap[a.Alias] = a.Target
	return a, nil
}

// RemoveAlias deletes AliasMap[alias].
func (f *Fake) RemoveAlias(ctx context.Context, alias string) error {
	defer f.Unlock()
	if err := f.enter("RemoveAlias", alias); err != nil {
		return err
	}
	if _, ok := f.AliasMap[alias]; !ok {
		return fmt.Errorf("alias %s: %w", alias, mail.ErrNotFound)
	}
	delete(f.AliasMap, alias)
	return nil
}

// SetPassword stores the password of a known account.
func (f *Fake) SetPassword(ctx context.Context, address, password string) error {
	defer f.Unlock()
	if err := f.enter("SetPassword", address, password); err != nil {
		return err
	}
	if _, ok := f.AccountMap[address]; !ok {
		return fmt.Errorf("account %s: %w", address, mail.ErrNotFound)
	}
	f.Passwords[address] = password
	return nil
}

// ChangePassword checks old against Passwords and stores password.
func (f *Fake) ChangePassword(ctx context.Context, client netip.Addr, address, old, password string) error {
	defer f.Unlock()
	if err := f.enter("ChangePassword", client, address, old, password); err != nil {
		return err
	}
	if pw, ok := f.Passwords[address]; !ok || pw != old {
		return mail.ErrAuthFailed
	}
	f.Passwords[address] = password
	return nil
}

// UpdateAccount changes the AccountMap entry.
func (f *Fake) UpdateAccount(ctx context.Context, address string, u admin.AccountUpdate) (admin.Account, error) {
	defer f.Unlock()
	if err := f.enter("UpdateAccount", address, u); err != nil {
		return admin.Account{}, err
	}
	a, ok := f.AccountMap[address]
	if !ok {
		return admin.Account{}, fmt.Errorf("account %s: %w", address, mail.ErrNotFound)
	}
	if u.QuotaBytes != nil {
		a.QuotaBytes = *u.QuotaBytes
	}
	if u.Disabled != nil {
		a.Disabled = *u.Disabled
	}
	f.AccountMap[address] = a
	return a, nil
}
