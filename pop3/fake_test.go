package pop3

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/netip"
	"slices"
	"strings"
	"sync"

	"github.com/homing-mail/homing/mail"
)

// fakeBackend is an in-memory Backend: accounts with a password and an
// INBOX, the maildrop lock per account, and fields that inject faults.
// Safe for concurrent use.
type fakeBackend struct {
	mu       sync.Mutex
	accounts map[string]*fakeAccount // lower-case address -> account
	locks    map[string]*fakeDrop    // account -> the open maildrop

	// Injected faults.
	authErr   error // Authenticate fails with it (not a wrong password)
	openErr   error // Open fails with it
	listErr   error // List fails with it
	deleteErr error // Delete fails with it
	// readFailAfter, when positive, makes message streams fail after
	// that many octets.
	readFailAfter int
	// openMessage, when set, returns the stream of a message instead of
	// the stored bytes (a generated 30 MiB message).
	openMessage func(id string) (io.ReadCloser, error)
	// beforeDelete, when set, runs at the start of each Delete, outside
	// the backend's lock (a test holds a QUIT in its UPDATE state).
	beforeDelete func()

	// What happened.
	authCalls int
	deletes   [][]string // each Delete call's ids
}

type fakeAccount struct {
	address, password string
	msgs              []fakeMessage
}

type fakeMessage struct {
	id   string
	raw  []byte
	size int64 // as listed; CanonicalSize(raw) unless set by the test
}

func newFakeBackend() *fakeBackend {
	return &fakeBackend{accounts: make(map[string]*fakeAccount), locks: make(map[string]*fakeDrop)}
}

// addAccount creates an account.
func (b *fakeBackend) addAccount(address, password string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.accounts[strings.ToLower(address)] = &fakeAccount{address: address, password: password}
}

// add stores a message in address's INBOX with the given id; its listed
// size is its canonical size.
func (b *fakeBackend) add(address, id, raw string) {
	size, err := CanonicalSize(strings.NewReader(raw))
	if err != nil {
		panic(err)
	}
	b.addSized(address, id, raw, size)
}

func (b *fakeBackend) addSized(address, id, raw string, size int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	a := b.accounts[strings.ToLower(address)]
	a.msgs = append(a.msgs, fakeMessage{id: id, raw: []byte(raw), size: size})
}

// ids returns the ids of the messages in address's INBOX.
func (b *fakeBackend) ids(address string) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for _, m := range b.accounts[strings.ToLower(address)].msgs {
		out = append(out, m.id)
	}
	return out
}

// locked reports whether address's maildrop lock is held.
func (b *fakeBackend) locked(address string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.locks[strings.ToLower(address)] != nil
}

// lose ends the maildrop lock of address as if its owner changed: the
// session's Lost channel closes. It reports whether a lock was held.
func (b *fakeBackend) lose(address string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	d := b.locks[strings.ToLower(address)]
	if d == nil {
		return false
	}
	d.loseOnce.Do(func() { close(d.lost) })
	return true
}

func (b *fakeBackend) deleteCalls() [][]string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.deletes)
}

func (b *fakeBackend) authCount() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.authCalls
}

func (b *fakeBackend) set(f func(b *fakeBackend)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	f(b)
}

// Authenticate implements Backend.
func (b *fakeBackend) Authenticate(_ context.Context, username, password string) (string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.authCalls++
	if b.authErr != nil {
		return "", b.authErr
	}
	a := b.accounts[strings.ToLower(username)]
	if a == nil || a.password != password {
		return "", mail.ErrAuthFailed
	}
	return a.address, nil
}

// Open implements Backend.
func (b *fakeBackend) Open(_ context.Context, account string, _ netip.Addr) (Maildrop, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.openErr != nil {
		return nil, b.openErr
	}
	key := strings.ToLower(account)
	if b.locks[key] != nil {
		return nil, ErrInUse
	}
	d := &fakeDrop{b: b, account: key, lost: make(chan struct{})}
	b.locks[key] = d
	return d, nil
}

// fakeDrop is a session's Maildrop.
type fakeDrop struct {
	b        *fakeBackend
	account  string
	lost     chan struct{}
	loseOnce sync.Once
	closed   bool
}

func (d *fakeDrop) List(context.Context) ([]Message, error) {
	d.b.mu.Lock()
	defer d.b.mu.Unlock()
	if d.b.listErr != nil {
		return nil, d.b.listErr
	}
	var out []Message
	for _, m := range d.b.accounts[d.account].msgs {
		out = append(out, Message{ID: m.id, Size: m.size})
	}
	return out, nil
}

func (d *fakeDrop) Open(_ context.Context, id string) (io.ReadCloser, error) {
	d.b.mu.Lock()
	defer d.b.mu.Unlock()
	if d.b.openMessage != nil {
		return d.b.openMessage(id)
	}
	for _, m := range d.b.accounts[d.account].msgs {
		if m.id == id {
			var r io.Reader = bytes.NewReader(m.raw)
			if d.b.readFailAfter > 0 {
				r = io.MultiReader(io.LimitReader(r, int64(d.b.readFailAfter)), failingReader{})
			}
			return io.NopCloser(r), nil
		}
	}
	return nil, mail.ErrNotFound
}

func (d *fakeDrop) Delete(_ context.Context, ids []string) error {
	d.b.mu.Lock()
	hook := d.b.beforeDelete
	d.b.mu.Unlock()
	if hook != nil {
		hook()
	}
	d.b.mu.Lock()
	defer d.b.mu.Unlock()
	d.b.deletes = append(d.b.deletes, slices.Clone(ids))
	if d.b.deleteErr != nil {
		return d.b.deleteErr
	}
	a := d.b.accounts[d.account]
	a.msgs = slices.DeleteFunc(a.msgs, func(m fakeMessage) bool { return slices.Contains(ids, m.id) })
	return nil
}

func (d *fakeDrop) Lost() <-chan struct{} { return d.lost }

func (d *fakeDrop) Close() error {
	d.b.mu.Lock()
	defer d.b.mu.Unlock()
	if d.closed {
		return errors.New("maildrop closed twice")
	}
	d.closed = true
	if d.b.locks[d.account] == d {
		delete(d.b.locks, d.account)
	}
	return nil
}

// errTemporaryForTest is a temporary failure of the backend.
var errTemporaryForTest = mail.TemporaryError("test: temporary failure")

// failingReader fails every read, as a message file that went away.
type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, mail.ErrUnavailable }
