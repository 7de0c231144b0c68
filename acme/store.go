package acme

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/homing-mail/homing/durable"
)

// Files of the store's directory (DATA/acme).
const (
	bundlesFile    = "certificates.json"
	accountKeyFile = "account-key.pem"
)

// maxBundles bounds the store: a node keeps the newest bundle of at most
// this many sets of names (an operator who changed --acme-names keeps
// the old set's until it expires), and forgets a bundle a week after it
// expired.
const maxBundles = 16

// Store keeps the node's certificate bundles in a file of its data
// directory (0600, written by rename after a sync), one bundle per CA and
// set of names. Safe for concurrent use.
type Store struct {
	dir string

	mu       sync.Mutex
	bundles  map[string]*Bundle // by storeKey
	onChange []func()
}

// OpenStore opens (or makes) the store in dir.
func OpenStore(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("ACME store %s: %w", dir, err)
	}
	s := &Store{dir: dir, bundles: map[string]*Bundle{}}
	b, err := os.ReadFile(filepath.Join(dir, bundlesFile))
	if errors.Is(err, fs.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return nil, fmt.Errorf("ACME store: %w", err)
	}
	var all []Bundle
	if err := json.Unmarshal(b, &all); err != nil {
		return nil, fmt.Errorf("ACME store %s: %w", filepath.Join(dir, bundlesFile), err)
	}
	s.merge(all)
	return s, nil
}

// OnChange adds f to what runs after the store changed (not under its
// lock).
func (s *Store) OnChange(f func()) {
	s.mu.Lock()
	s.onChange = append(s.onChange, f)
	s.mu.Unlock()
}

// Get is the bundle of the CA at directory for names, nil if there is
// none.
func (s *Store) Get(directory string, names []string) *Bundle {
	s.mu.Lock()
	defer s.mu.Unlock()
	if b := s.bundles[storeKey(directory, names)]; b != nil {
		c := *b
		return &c
	}
	return nil
}

// All is every bundle, ordered by CA and names.
func (s *Store) All() []Bundle {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Bundle, 0, len(s.bundles))
	for _, b := range s.bundles {
		out = append(out, *b)
	}
	slices.SortFunc(out, func(a, b Bundle) int {
		switch ka, kb := storeKey(a.Directory, a.Names), storeKey(b.Directory, b.Names); {
		case ka < kb:
			return -1
		case ka > kb:
			return 1
		}
		return 0
	})
	return out
}

// Merge takes the bundles that are newer than the ones kept for their
// CA and names (Bundle.newer), skipping any that is not whole, and saves the
// store when one was taken. Merging is commutative and idempotent: every
// node that has seen the same bundles keeps the same ones.
func (s *Store) Merge(bs []Bundle) (changed bool, err error) {
	s.mu.Lock()
	changed = s.merge(bs)
	if changed {
		err = s.saveLocked()
	}
	hooks := slices.Clone(s.onChange)
	s.mu.Unlock()
	if changed {
		for _, f := range hooks {
			f()
		}
	}
	return changed, err
}

// merge is Merge without saving (s.mu held or s not shared yet).
func (s *Store) merge(bs []Bundle) bool {
	changed := false
	for _, b := range bs {
		b.Names = NormalizeNames(b.Names)
		if len(b.Names) == 0 || b.check() != nil {
			continue
		}
		k := storeKey(b.Directory, b.Names)
		if old := s.bundles[k]; old == nil || newer(&b, old) {
			s.bundles[k] = &b
			changed = true
		}
	}
	// Bounded: drop what expired a week ago, then the soonest to expire.
	for k, b := range s.bundles {
		if time.Since(b.NotAfter) > 7*24*time.Hour {
			delete(s.bundles, k)
			changed = true
		}
	}
	for len(s.bundles) > maxBundles {
		var first string
		for k, b := range s.bundles {
			if first == "" || b.NotAfter.Before(s.bundles[first].NotAfter) {
				first = k
			}
		}
		delete(s.bundles, first)
		changed = true
	}
	return changed
}

// saveLocked writes the bundles: a new file, synced, renamed over the old
// one (s.mu held).
func (s *Store) saveLocked() error {
	all := make([]*Bundle, 0, len(s.bundles))
	for _, b := range s.bundles {
		all = append(all, b)
	}
	b, err := json.MarshalIndent(all, "", " ")
	if err != nil {
		return err
	}
	if err := durable.WriteFile(filepath.Join(s.dir, bundlesFile), b, 0o600); err != nil {
		return fmt.Errorf("saving the ACME certificates: %w", err)
	}
	return nil
}

// accountKey loads the ACME account key of this node (RFC 8555 §7.3),
// making and saving an ECDSA P-256 key on first use.
func (s *Store) accountKey() (crypto.Signer, error) {
	path := filepath.Join(s.dir, accountKeyFile)
	b, err := os.ReadFile(path)
	if err == nil {
		blk, _ := pem.Decode(b)
		if blk == nil {
			return nil, fmt.Errorf("ACME account key %s: no PEM block", path)
		}
		k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("ACME account key %s: %w", path, err)
		}
		signer, ok := k.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("ACME account key %s: not a signing key", path)
		}
		return signer, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("ACME account key: %w", err)
	}
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, err
	}
	if err := durable.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return nil, fmt.Errorf("saving the ACME account key: %w", err)
	}
	return k, nil
}
