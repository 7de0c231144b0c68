package mtasts

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/homing-mail/homing/durable"
)

// cached is a policy as the cache keeps it: with the id of the record it
// was fetched for and when.
type cached struct {
	Domain  string    `json:"domain"`
	ID      string    `json:"id"`
	Mode    Mode      `json:"mode"`
	MX      []string  `json:"mx,omitempty"`
	MaxAge  int64     `json:"maxAge"` // seconds
	Fetched time.Time `json:"fetched"`
}

func (c *cached) expires() time.Time { return c.Fetched.Add(time.Duration(c.MaxAge) * time.Second) }

func (c *cached) policy() *Policy {
	return &Policy{Mode: c.Mode, MX: slices.Clone(c.MX), MaxAge: time.Duration(c.MaxAge) * time.Second}
}

// cacheFile is the file's shape.
type cacheFile struct {
	Version  int       `json:"version"`
	Policies []*cached `json:"policies"`
}

// cache holds the policies fetched, by domain, in memory and (with a
// path) in a file, rewritten by rename after a sync whenever a policy is
// added: policies change rarely, at most once per max_age and id. At most
// max entries; the ones that expire first go first.
type cache struct {
	path string
	max  int

	mu      sync.Mutex
	entries map[string]*cached
}

// openCache reads the file at path ("" keeps the cache in memory). A
// missing file is an empty cache; one that does not parse is an error
// that says so, with the cache empty (the next save replaces the file).
func openCache(path string, max int) (*cache, error) {
	c := &cache{path: path, max: max, entries: map[string]*cached{}}
	if path == "" {
		return c, nil
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return nil, fmt.Errorf("the MTA-STS policy cache: %w", err)
	}
	var f cacheFile
	if err := json.Unmarshal(b, &f); err != nil || f.Version != 1 {
		return c, fmt.Errorf("%w: the MTA-STS policy cache %s does not parse (%v); starting empty", errCacheDamaged, path, err)
	}
	for _, e := range f.Policies {
		if e == nil || e.Domain == "" || e.ID == "" || (e.Mode != ModeEnforce && e.Mode != ModeTesting && e.Mode != ModeNone) ||
			e.MaxAge < 0 || e.MaxAge > int64(MaxAge/time.Second) {
			continue
		}
		c.entries[e.Domain] = e
	}
	return c, nil
}

var errCacheDamaged = errors.New("damaged")

// get returns the policy of domain that has not expired at now, or nil.
func (c *cache) get(domain string, now time.Time) *cached {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.entries[domain]
	if e == nil || !now.Before(e.expires()) {
		return nil
	}
	cp := *e
	return &cp
}

// put stores e and saves the file.
func (c *cache) put(e *cached, now time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.entries[e.Domain] = e
	for d, x := range c.entries {
		if !now.Before(x.expires()) {
			delete(c.entries, d)
		}
	}
	if c.max > 0 && len(c.entries) > c.max {
		all := make([]*cached, 0, len(c.entries))
		for _, x := range c.entries {
			all = append(all, x)
		}
		slices.SortFunc(all, func(a, b *cached) int { return a.expires().Compare(b.expires()) })
		for _, x := range all[:len(all)-c.max] {
			delete(c.entries, x.Domain)
		}
	}
	return c.saveLocked()
}

func (c *cache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

// saveLocked writes the file: a new one, synced, renamed over the old.
func (c *cache) saveLocked() error {
	if c.path == "" {
		return nil
	}
	f := cacheFile{Version: 1}
	for _, e := range c.entries {
		f.Policies = append(f.Policies, e)
	}
	slices.SortFunc(f.Policies, func(a, b *cached) int {
		switch {
		case a.Domain < b.Domain:
			return -1
		case a.Domain > b.Domain:
			return 1
		}
		return 0
	})
	b, err := json.MarshalIndent(f, "", " ")
	if err != nil {
		return err
	}
	if err := durable.WriteFile(c.path, b, 0o600); err != nil {
		return fmt.Errorf("saving the MTA-STS policy cache: %w", err)
	}
	return nil
}
