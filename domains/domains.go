// Package domains keeps the cluster's local domains the same on every
// member, changed at run time by the administrator on any node (POST and
// DELETE /api/v1/domains): like the cluster-wide rules, every change is a
// new version of the whole set, saved on the node that made it
// (DATA/domains.json), pushed to every live member and gossiped as the
// node's DomainsVersion, so a member that missed it (down, cut off, new)
// fetches it; the newest version wins everywhere. `--domains` only seeds
// a node that has no saved set, with version 0: any change made in the
// cluster wins over it.
//
// Removal takes two steps, so that no member refuses mail for a domain
// that another still takes as local: the domain is first marked removing
// (still local everywhere) until every live member has confirmed that
// version; only then is it removed, and from then on refused. A member
// that does not confirm keeps the domain local on every node; the
// administrator repeats the removal.
package domains

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/homing-mail/homing/mail"
)

// State is where a domain is in its life.
type State string

const (
	// Active: a local domain.
	Active State = "active"
	// Removing: being removed; still local until every member has
	// confirmed, then gone.
	Removing State = "removing"
)

// Domain is one local domain.
type Domain struct {
	Name  string `json:"domain"`
	State State  `json:"state"`
}

// Set is a version of the cluster's local domains.
type Set struct {
	// Version is the time of the change in Unix nanoseconds; 0 for a
	// set seeded from --domains.
	Version int64    `json:"version"`
	Domains []Domain `json:"domains"`
}

// Local lists the domains mail is accepted for: the active ones and
// those being removed.
func (s Set) Local() []string {
	out := make([]string, 0, len(s.Domains))
	for _, d := range s.Domains {
		out = append(out, d.Name)
	}
	return out
}

func (s Set) find(name string) int {
	return slices.IndexFunc(s.Domains, func(d Domain) bool { return d.Name == name })
}

func (s Set) clone() Set {
	s.Domains = slices.Clone(s.Domains)
	return s
}

// Errors of the registry, in the taxonomy of package mail.
var (
	// ErrBadDomain: the name is not a domain name.
	ErrBadDomain = mail.PermanentError("not a domain name")
)

// Normalize checks that name is a domain name (RFC 1035 §2.3.1 letters,
// digits and hyphens in labels of at most 63, 253 in all; no trailing
// dot) and returns it in lower case.
func Normalize(name string) (string, error) {
	d := strings.ToLower(strings.TrimSuffix(strings.TrimSpace(name), "."))
	if d == "" || len(d) > 253 {
		return "", fmt.Errorf("%w: %q", ErrBadDomain, name)
	}
	for _, label := range strings.Split(d, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return "", fmt.Errorf("%w: %q", ErrBadDomain, name)
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return "", fmt.Errorf("%w: %q (only letters, digits, hyphens and dots)", ErrBadDomain, name)
			}
		}
	}
	return d, nil
}

// store is where a node keeps its set.
type store struct{ file string }

func (st store) load() (Set, bool, error) {
	b, err := os.ReadFile(st.file)
	if errors.Is(err, fs.ErrNotExist) {
		return Set{}, false, nil
	}
	if err != nil {
		return Set{}, false, err
	}
	var s Set
	if err := json.Unmarshal(b, &s); err != nil {
		return Set{}, false, fmt.Errorf("%s: %w", st.file, err)
	}
	return s, true, nil
}

// save writes s durably: a temporary file, fsync, rename.
func (st store) save(s Set) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	tmp := st.file + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("saving the domains: %w", err)
	}
	return os.Rename(tmp, st.file)
}

// seeded is the set of --domains, version 0.
func seeded(names []string) (Set, error) {
	var s Set
	for _, n := range names {
		d, err := Normalize(n)
		if err != nil {
			return Set{}, fmt.Errorf("--domains: %w", err)
		}
		if s.find(d) < 0 {
			s.Domains = append(s.Domains, Domain{Name: d, State: Active})
		}
	}
	return s, nil
}

// fileIn is the file of the set in a data directory.
func fileIn(dataDir string) string { return filepath.Join(dataDir, "domains.json") }

// nextVersion is a version newer than cur: the time now, or cur+1.
func nextVersion(now time.Time, cur int64) int64 { return max(now.UnixNano(), cur+1) }
