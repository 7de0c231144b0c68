package storage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/homing-mail/homing/mail"
)

// Account is a mailbox owner.
type Account struct {
	Address      string    // lower-case "local@domain"
	PasswordHash string    // argon2id PHC string or bcrypt (see HashPassword)
	QuotaBytes   int64     // 0 = unlimited
	Created      time.Time // set by CreateAccount when zero
	// Rules are the account's rules (package rules, as JSON); the account
	// actor runs them at delivery.
	Rules json.RawMessage
	// Disabled: the administrator disabled the account: it takes no
	// mail and no logins, and keeps what it has.
	Disabled bool
}

// accountRecord is the stored form of an Account (a/<addr>), decoupled from
// the API type so the disk format changes only on purpose.
type accountRecord struct {
	Address      string          `json:"address"`
	PasswordHash string          `json:"passwordHash,omitempty"`
	QuotaBytes   int64           `json:"quotaBytes,omitempty"`
	Created      time.Time       `json:"created"`
	Rules        json.RawMessage `json:"rules,omitempty"`
	Disabled     bool            `json:"disabled,omitempty"`
}

func encodeAccount(a Account) ([]byte, error) {
	return json.Marshal(accountRecord(a))
}

func decodeAccount(v []byte) (Account, error) {
	var r accountRecord
	if err := json.Unmarshal(v, &r); err != nil {
		return Account{}, fmt.Errorf("storage: account record: %w: %v", ErrDamaged, err)
	}
	return Account(r), nil
}

func accountNotFound(addr string) error {
	return fmt.Errorf("storage: account %s: %w", addr, mail.ErrNotFound)
}

// CreateAccount stores a new account. a.Address is lower-cased; a zero
// Created becomes now. It fails with an error wrapping mail.ErrExists if an
// account or an alias has that address, and refuses a negative quota.
func (p *Partition) CreateAccount(ctx context.Context, a Account) error {
	addr, err := p.account(a.Address)
	if err != nil {
		return err
	}
	if a.QuotaBytes < 0 {
		return fmt.Errorf("storage: account %s: negative quota", addr)
	}
	a.Address = addr
	if a.Created.IsZero() {
		a.Created = time.Now().UTC()
	}
	v, err := encodeAccount(a)
	if err != nil {
		return err
	}
	unlock := p.locks.lock(addr)
	// A deleted account of the same address may still have records
	// waiting to be purged; they must not reappear in the new one.
	purging, err := p.db.has(key(prefixPurge, addr))
	if err == nil && purging {
		err = p.purge(ctx, addr)
	}
	if err != nil {
		unlock()
		return err
	}
	for _, k := range [][]byte{key(prefixAccount, addr), key(prefixAlias, addr)} {
		found, err := p.db.has(k)
		if err != nil || found {
			unlock()
			if err == nil {
				err = fmt.Errorf("storage: address %s: %w", addr, mail.ErrExists)
			}
			return err
		}
	}
	var b Batch
	b.Set(key(prefixAccount, addr), v)
	// Every account has INBOX and the special-use folders from the start.
	st := mailboxState{next: 1, version: modelVersion}
	defaultFolders(&b, addr, &st, nil, time.Now())
	b.Set(key(prefixState, addr), st.encode())
	return p.commitLocked(ctx, &b, unlock)
}

// Account returns the account with address addr, or an error wrapping
// mail.ErrNotFound.
func (p *Partition) Account(addr string) (Account, error) {
	a, err := p.account(addr)
	if err != nil {
		return Account{}, err
	}
	v, err := p.db.Get(key(prefixAccount, a))
	if errors.Is(err, mail.ErrNotFound) {
		return Account{}, accountNotFound(a)
	}
	if err != nil {
		return Account{}, err
	}
	return decodeAccount(v)
}

// UpdateAccount replaces the stored account that has a.Address (password
// hash, quota; a zero Created keeps the stored one). It fails with an error
// wrapping mail.ErrNotFound if there is no such account.
func (p *Partition) UpdateAccount(ctx context.Context, a Account) error {
	addr, err := p.account(a.Address)
	if err != nil {
		return err
	}
	if a.QuotaBytes < 0 {
		return fmt.Errorf("storage: account %s: negative quota", addr)
	}
	a.Address = addr
	unlock := p.locks.lock(addr)
	old, err := p.Account(addr)
	if err != nil {
		unlock()
		return err
	}
	if a.Created.IsZero() {
		a.Created = old.Created
	}
	v, err := encodeAccount(a)
	if err != nil {
		unlock()
		return err
	}
	var b Batch
	b.Set(key(prefixAccount, addr), v)
	return p.commitLocked(ctx, &b, unlock)
}

// DeleteAccount removes the account and everything it owns: its messages,
// its dedup records and its usage. The account disappears atomically in a
// first write, which also leaves a purge marker; its records are then
// deleted in chunks, and the marker last. If that is interrupted (error,
// ctx, crash), the purge is finished by the next DeleteAccount or
// CreateAccount of the address or the next open of the partition. Aliases
// that point to the account, which may live in other partitions, are left
// alone: they resolve to an address that no longer exists.
//
// It fails with an error wrapping mail.ErrNotFound if there is no such
// account and nothing left to purge.
func (p *Partition) DeleteAccount(ctx context.Context, addr string) error {
	a, err := p.account(addr)
	if err != nil {
		return err
	}
	unlock := p.locks.lock(a)
	exists, err := p.db.has(key(prefixAccount, a))
	if err != nil || !exists {
		defer unlock()
		if err != nil {
			return err
		}
		return p.purgeIfMarked(ctx, a)
	}
	var b Batch
	b.maintenance = true
	b.Delete(key(prefixAccount, a))
	b.Delete(key(prefixState, a))
	b.Set(key(prefixPurge, a), nil)
	if err := p.commitLocked(ctx, &b, unlock); err != nil {
		return err
	}
	unlock = p.locks.lock(a)
	defer unlock()
	if err := p.purgeIfMarked(ctx, a); err != nil && !errors.Is(err, mail.ErrNotFound) {
		// ErrNotFound: a concurrent CreateAccount finished the purge.
		return err
	}
	return nil
}

// purgeIfMarked purges addr if its purge marker is set, and otherwise
// reports that there is no such account. The caller holds the account lock.
func (p *Partition) purgeIfMarked(ctx context.Context, addr string) error {
	purging, err := p.db.has(key(prefixPurge, addr))
	if err != nil {
		return err
	}
	if !purging {
		return accountNotFound(addr)
	}
	return p.purge(ctx, addr)
}

// purgeChunk is how many deletions one purge batch holds; it stays far
// below badger's transaction limit.
const purgeChunk = 1000

// purge deletes the messages, bodies, dedup, pending and auto-reply records of a deleted
// account, then its purge marker. The caller holds the account lock.
// Deleting is idempotent, so an interrupted purge is simply run again.
func (p *Partition) purge(ctx context.Context, addr string) error {
	var keys [][]byte
	var names []string
	if err := p.db.Scan(accountPrefix(prefixFile, addr), func(k, v []byte) error {
		keys = append(keys, k)
		names = append(names, string(v))
		return nil
	}); err != nil {
		return err
	}
	for _, prefix := range [][]byte{prefixMeta, prefixRaw, prefixDedup, prefixVacation, prefixPending, prefixFolder, prefixIndex, prefixSummary} {
		if err := p.db.scanKeys(accountPrefix(prefix, addr), func(k []byte) error {
			keys = append(keys, k)
			return nil
		}); err != nil {
			return err
		}
	}
	for len(keys) > 0 {
		n := min(len(keys), purgeChunk)
		var b Batch
		b.maintenance = true
		for _, k := range keys[:n] {
			b.Delete(k)
		}
		if err := p.db.Commit(ctx, &b); err != nil {
			return fmt.Errorf("storage: purge account %s: %w", addr, err)
		}
		keys = keys[n:]
	}
	for _, name := range names {
		p.blobs.remove(name)
	}
	var b Batch
	b.maintenance = true
	b.Delete(key(prefixPurge, addr))
	if err := p.db.Commit(ctx, &b); err != nil {
		return fmt.Errorf("storage: purge account %s: %w", addr, err)
	}
	return nil
}

// resumePurges finishes the purges that were interrupted; called by Open.
func (p *Partition) resumePurges() error {
	var addrs []string
	if err := p.db.scanKeys(prefixPurge, func(k []byte) error {
		addrs = append(addrs, string(k[len(prefixPurge):]))
		return nil
	}); err != nil {
		return err
	}
	for _, a := range addrs {
		unlock := p.locks.lock(a)
		err := p.purge(context.Background(), a)
		unlock()
		if err != nil {
			return err
		}
	}
	return nil
}

// Accounts returns every account of the partition, sorted by address.
func (p *Partition) Accounts() ([]Account, error) {
	out := []Account{}
	err := p.db.Scan(prefixAccount, func(_, v []byte) error {
		a, err := decodeAccount(v)
		if err != nil {
			return err
		}
		out = append(out, a)
		return nil
	})
	return out, err
}

// SetAlias makes alias deliver to account, replacing an earlier target.
// The alias lives in the partition of alias (this one, or
// *WrongPartitionError); account may be in any partition and is not checked.
// It fails with an error wrapping mail.ErrExists if an account has the
// address alias.
func (p *Partition) SetAlias(ctx context.Context, alias, account string) error {
	al, err := p.account(alias)
	if err != nil {
		return err
	}
	target, err := normalizeAddress(account)
	if err != nil {
		return err
	}
	if al == target {
		return fmt.Errorf("storage: alias %s points to itself", al)
	}
	unlock := p.locks.lock(al)
	found, err := p.db.has(key(prefixAccount, al))
	if err != nil || found {
		unlock()
		if err == nil {
			err = fmt.Errorf("storage: alias %s: an account has that address: %w", al, mail.ErrExists)
		}
		return err
	}
	var b Batch
	b.Set(key(prefixAlias, al), []byte(target))
	return p.commitLocked(ctx, &b, unlock)
}

// DeleteAlias removes alias; it fails with an error wrapping
// mail.ErrNotFound if there is no such alias.
func (p *Partition) DeleteAlias(ctx context.Context, alias string) error {
	al, err := p.account(alias)
	if err != nil {
		return err
	}
	unlock := p.locks.lock(al)
	found, err := p.db.has(key(prefixAlias, al))
	if err != nil || !found {
		unlock()
		if err == nil {
			err = fmt.Errorf("storage: alias %s: %w", al, mail.ErrNotFound)
		}
		return err
	}
	var b Batch
	b.maintenance = true
	b.Delete(key(prefixAlias, al))
	return p.commitLocked(ctx, &b, unlock)
}

// Aliases returns the aliases of the partition, alias -> account address.
func (p *Partition) Aliases() (map[string]string, error) {
	out := make(map[string]string)
	err := p.db.Scan(prefixAlias, func(k, v []byte) error {
		out[string(k[len(prefixAlias):])] = string(v)
		return nil
	})
	return out, err
}

// Resolve returns the account address that mail for addr goes to: addr
// itself (lower-cased) if it is an account, the target if it is an alias.
// An alias's target lives in its own partition and is not checked here.
// Otherwise the error wraps mail.ErrNoSuchUser.
func (p *Partition) Resolve(addr string) (string, error) {
	a, err := p.account(addr)
	if err != nil {
		return "", err
	}
	found, err := p.db.has(key(prefixAccount, a))
	if err != nil {
		return "", err
	}
	if found {
		return a, nil
	}
	v, err := p.db.Get(key(prefixAlias, a))
	if errors.Is(err, mail.ErrNotFound) {
		return "", fmt.Errorf("storage: %s: %w", a, mail.ErrNoSuchUser)
	}
	if err != nil {
		return "", err
	}
	return string(v), nil
}
