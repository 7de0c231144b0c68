package control

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/homing-mail/homing/admin"
	"github.com/homing-mail/homing/dkim"
	"github.com/homing-mail/homing/mail"
)

// DKIM is the admin API's part for the DKIM keys (admin.DKIMAPI): keys are
// made on this node and reach every member through the keyring's
// replication.
type DKIM struct {
	Keys *dkim.Keyring
	// IsLocal reports whether a domain (lower case) is local: only
	// local domains get keys.
	IsLocal func(domain string) bool
}

var _ admin.DKIMAPI = (*DKIM)(nil)

func (d *DKIM) local(domain string) error {
	if !d.IsLocal(domain) {
		return fmt.Errorf("%w: no local domain %s (DKIM keys are for the local domains: homing ctl domains add)", mail.ErrNotFound, domain)
	}
	return nil
}

// GenerateDKIM implements admin.DKIMAPI.
func (d *DKIM) GenerateDKIM(_ context.Context, domain string, req admin.DKIMGenerate) (admin.DKIMKey, error) {
	if err := d.local(domain); err != nil {
		return admin.DKIMKey{}, err
	}
	k, err := d.Keys.Generate(domain, req.Selector, req.Algorithm)
	switch {
	case errors.Is(err, dkim.ErrBadSelector):
		return admin.DKIMKey{}, &admin.Error{Status: 400, Field: "selector", Message: fmt.Sprintf("selector %q: %v", req.Selector, err)}
	case err != nil:
		return admin.DKIMKey{}, err
	}
	return keyInfo(k), nil
}

// DKIMKeys implements admin.DKIMAPI.
func (d *DKIM) DKIMKeys(context.Context) ([]admin.DKIMKey, error) {
	var out []admin.DKIMKey
	for _, k := range d.Keys.All() {
		out = append(out, keyInfo(k))
	}
	return out, nil
}

// DKIMRecords implements admin.DKIMAPI: the TXT record of every key of
// domain, active ones first.
func (d *DKIM) DKIMRecords(_ context.Context, domain string) (admin.DKIMRecords, error) {
	if err := d.local(domain); err != nil {
		return admin.DKIMRecords{}, err
	}
	var active, retired []admin.DNSRecord
	for _, k := range d.Keys.Keys(domain) {
		v, err := k.RecordValue()
		if err != nil {
			return admin.DKIMRecords{}, err
		}
		r := admin.DNSRecord{Name: k.RecordName(), Type: "TXT", Value: v, Selector: k.Selector, State: state(k)}
		if k.Active() {
			active = append(active, r)
		} else {
			retired = append(retired, r)
		}
	}
	return admin.DKIMRecords{Records: append(active, retired...)}, nil
}

func keyInfo(k dkim.Key) admin.DKIMKey {
	return admin.DKIMKey{Domain: k.Domain, Selector: k.Selector, Algorithm: k.Algorithm,
		Created: k.Created.UTC().Format(time.RFC3339), State: state(k)}
}

func state(k dkim.Key) string {
	if k.Active() {
		return "active"
	}
	return "retired"
}
