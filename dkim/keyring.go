package dkim

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/homing-mail/homing/durable"
	"github.com/homing-mail/homing/mail"
)

// ErrBadSelector: a selector that is not a DNS label (RFC 6376 §3.1).
var ErrBadSelector = mail.PermanentError("dkim: the selector is not a DNS label (letters, digits, hyphens; at most 63)")

// ErrSelectorTaken: the domain has a key of that selector already.
var ErrSelectorTaken = fmt.Errorf("dkim: %w: the domain has a key with that selector", mail.ErrExists)

// Keyring is the DKIM keys of the local domains on this node, saved in
// one file (0600) of the data directory. Keys are only ever added or
// retired, never changed, so two keyrings merge into the same one in any
// order (Merge): that is what replication relies on. Safe for concurrent
// use.
type Keyring struct {
	path string
	now  func() time.Time

	mu   sync.Mutex
	keys map[string][]Key // domain -> keys, oldest first
	// changed is called (without the lock) after every change made here
	// (Generate, a key made on first use, Merge that learnt something).
	changed func()
}

// OpenKeyring loads the keyring saved at path (none yet: empty).
func OpenKeyring(path string, now func() time.Time) (*Keyring, error) {
	if now == nil {
		now = time.Now
	}
	k := &Keyring{path: path, now: now, keys: map[string][]Key{}}
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return k, nil
	case err != nil:
		return nil, fmt.Errorf("reading the DKIM keys: %w", err)
	}
	var keys []Key
	if err := json.Unmarshal(b, &keys); err != nil {
		return nil, fmt.Errorf("reading the DKIM keys in %s: %w", path, err)
	}
	k.merge(keys)
	return k, nil
}

// OnChange sets the function called after each change (the replicator's
// push). Call it before the keyring is used.
func (k *Keyring) OnChange(f func()) { k.changed = f }

// All returns every key, by domain then age.
func (k *Keyring) All() []Key {
	k.mu.Lock()
	defer k.mu.Unlock()
	var out []Key
	for _, d := range k.domainsLocked() {
		out = append(out, k.keys[d]...)
	}
	return out
}

// Keys returns the keys of domain, oldest first.
func (k *Keyring) Keys(domain string) []Key {
	k.mu.Lock()
	defer k.mu.Unlock()
	return slices.Clone(k.keys[strings.ToLower(domain)])
}

func (k *Keyring) domainsLocked() []string {
	ds := make([]string, 0, len(k.keys))
	for d := range k.keys {
		ds = append(ds, d)
	}
	slices.Sort(ds)
	return ds
}

// Generate adds a new key of algorithm ("" = rsa) to domain under
// selector ("" = a new one named by the date) and retires the domain's
// active keys of the same algorithm: the new key signs from now on.
func (k *Keyring) Generate(domain, selector, algorithm string) (Key, error) {
	domain = strings.ToLower(strings.TrimSuffix(domain, "."))
	if algorithm == "" {
		algorithm = AlgorithmRSA
	}
	if selector == "" {
		selector = k.newSelector()
	}
	if !validLabel(selector) {
		return Key{}, ErrBadSelector
	}
	now := k.now()
	key, err := newKey(domain, selector, algorithm, now)
	if err != nil {
		return Key{}, err
	}
	k.mu.Lock()
	for _, old := range k.keys[domain] {
		if strings.EqualFold(old.Selector, selector) {
			k.mu.Unlock()
			return Key{}, ErrSelectorTaken
		}
	}
	keys := k.keys[domain]
	for i := range keys {
		if keys[i].Algorithm == algorithm && keys[i].Active() {
			keys[i].Retired = now.UTC()
		}
	}
	k.keys[domain] = append(keys, key)
	err = k.saveLocked()
	k.mu.Unlock()
	if err != nil {
		return Key{}, err
	}
	k.notify()
	return key, nil
}

// Signing returns the keys that sign domain's mail: the newest active
// key of each algorithm. When the domain has none and algorithm is not
// "", one is made (a key on first use) and reported by made.
func (k *Keyring) Signing(domain, algorithm string) (keys []Key, made bool, err error) {
	domain = strings.ToLower(domain)
	if keys = k.signing(domain); len(keys) > 0 || algorithm == "" {
		return keys, false, nil
	}
	if _, err := k.Generate(domain, "", algorithm); err != nil && !errors.Is(err, ErrSelectorTaken) {
		return nil, false, err
	}
	return k.signing(domain), true, nil
}

func (k *Keyring) signing(domain string) []Key {
	k.mu.Lock()
	defer k.mu.Unlock()
	newest := map[string]Key{}
	for _, key := range k.keys[domain] {
		if key.Active() && !key.Created.Before(newest[key.Algorithm].Created) {
			newest[key.Algorithm] = key
		}
	}
	var out []Key
	for _, alg := range []string{AlgorithmRSA, AlgorithmEd25519} {
		if key, ok := newest[alg]; ok {
			out = append(out, key)
		}
	}
	return out
}

// Merge adds what keys has that this keyring lacks: unknown selectors,
// and retirements. For one selector with two different keys (made on two
// nodes at once), the older wins everywhere, then the smaller bytes. It
// reports whether anything changed (and then saves).
func (k *Keyring) Merge(keys []Key) (bool, error) {
	k.mu.Lock()
	changed := k.merge(keys)
	var err error
	if changed {
		err = k.saveLocked()
	}
	k.mu.Unlock()
	if changed && err == nil {
		k.notify()
	}
	return changed, err
}

func (k *Keyring) merge(keys []Key) bool {
	changed := false
	for _, in := range keys {
		in.Domain = strings.ToLower(in.Domain)
		if in.Domain == "" || !validLabel(in.Selector) || len(in.Private) == 0 {
			continue
		}
		list := k.keys[in.Domain]
		i := slices.IndexFunc(list, func(x Key) bool { return strings.EqualFold(x.Selector, in.Selector) })
		if i < 0 {
			k.keys[in.Domain] = append(list, in)
			changed = true
			continue
		}
		cur := list[i]
		if in.Created.Before(cur.Created) || in.Created.Equal(cur.Created) && bytes.Compare(in.Private, cur.Private) < 0 {
			retired := laterOf(cur.Retired, in.Retired)
			cur, changed = in, true
			cur.Retired = retired
		}
		if r := laterOf(cur.Retired, in.Retired); !r.Equal(cur.Retired) {
			cur.Retired, changed = r, true
		}
		list[i] = cur
	}
	for d := range k.keys {
		slices.SortStableFunc(k.keys[d], func(a, b Key) int { return a.Created.Compare(b.Created) })
	}
	return changed
}

// laterOf is the later retirement: once retired, a key stays retired.
func laterOf(a, b time.Time) time.Time {
	switch {
	case a.IsZero():
		return b
	case b.IsZero():
		return a
	case b.After(a):
		return b
	}
	return a
}

// saveLocked writes the keyring to its file: a new file, synced, renamed
// over the old one (k.mu held).
func (k *Keyring) saveLocked() error {
	var all []Key
	for _, d := range k.domainsLocked() {
		all = append(all, k.keys[d]...)
	}
	b, err := json.MarshalIndent(all, "", " ")
	if err != nil {
		return err
	}
	if err := durable.WriteFile(k.path, b, 0o600); err != nil {
		return fmt.Errorf("saving the DKIM keys: %w", err)
	}
	return nil
}

func (k *Keyring) notify() {
	if k.changed != nil {
		k.changed()
	}
}

// newSelector names a new key by the month and a random suffix, so that
// two nodes making a key for one domain at once choose two selectors.
func (k *Keyring) newSelector() string {
	b := make([]byte, 2)
	_, _ = rand.Read(b)
	return "h" + k.now().UTC().Format("200601") + hex.EncodeToString(b)
}

// validLabel reports whether s is a DNS label: letters, digits and
// hyphens, not at either end, 1 to 63 of them.
func validLabel(s string) bool {
	if s == "" || len(s) > 63 || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}
