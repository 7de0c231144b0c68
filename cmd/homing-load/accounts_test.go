package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"sync"
	"testing"

	"golang.org/x/crypto/argon2"

	"github.com/homing-mail/homing/admin"
	"github.com/homing-mail/homing/admin/admintest"
)

func TestArgon2idPHC(t *testing.T) {
	h := argon2idPHC("correct horse")
	m := regexp.MustCompile(`^\$argon2id\$v=19\$m=19456,t=2,p=1\$([A-Za-z0-9+/]{22})\$([A-Za-z0-9+/]{43})$`).FindStringSubmatch(h)
	if m == nil {
		t.Fatalf("hash %q is not in PHC form", h)
	}
	salt, err1 := base64.RawStdEncoding.DecodeString(m[1])
	key, err2 := base64.RawStdEncoding.DecodeString(m[2])
	if err1 != nil || err2 != nil {
		t.Fatalf("base64: %v %v", err1, err2)
	}
	if !bytes.Equal(argon2.IDKey([]byte("correct horse"), salt, 2, 19456, 1, 32), key) {
		t.Errorf("the hash does not verify the password")
	}
	if bytes.Equal(argon2.IDKey([]byte("wrong horse"), salt, 2, 19456, 1, 32), key) {
		t.Errorf("the hash verifies a wrong password")
	}
	if argon2idPHC("correct horse") == h {
		t.Errorf("two hashes share a salt")
	}
}

func TestCreateAccounts(t *testing.T) {
	f := admintest.NewFake()
	f.AccountMap["user0001@example.test"] = admin.Account{Address: "user0001@example.test"} // from an earlier run
	addrs := []string{"user0000@example.test", "user0001@example.test", "user0002@example.test", "user0003@example.test"}
	n, err := createAccounts(context.Background(), conflictAsAdminError{f}, addrs, "$argon2id$hash", 3)
	if err != nil || n != 3 {
		t.Fatalf("createAccounts = %d, %v; want 3 created and the existing one accepted", n, err)
	}
	calls := f.CallsTo("CreateAccount")
	if len(calls) != 4 {
		t.Fatalf("%d calls", len(calls))
	}
	for _, c := range calls {
		req := c.Args[0].(admin.CreateAccount)
		if req.PasswordHash != "$argon2id$hash" || req.Password != "" {
			t.Errorf("request %+v: want the shared hash and no password", req)
		}
	}

	f2 := admintest.NewFake()
	f2.SetErr("CreateAccount", errors.New("disk full"))
	many := make([]string, 200)
	for i := range many {
		many[i] = fmt.Sprintf("u%d@example.test", i)
	}
	_, err = createAccounts(context.Background(), f2, many, "h", 4)
	if err == nil || !errors.Is(err, f2.Errs["CreateAccount"]) {
		t.Fatalf("error not returned: %v", err)
	}
	if n := len(f2.CallsTo("CreateAccount")); n > 10 {
		t.Errorf("%d requests after the first failure; the workers should stop", n)
	}
}

// conflictAsAdminError makes the fake answer like the HTTP client does: a
// 409 is an *admin.Error.
type conflictAsAdminError struct{ *admintest.Fake }

func (c conflictAsAdminError) CreateAccount(ctx context.Context, req admin.CreateAccount) (admin.Account, error) {
	a, err := c.Fake.CreateAccount(ctx, req)
	if err != nil {
		return a, &admin.Error{Status: 409, Message: err.Error()}
	}
	return a, nil
}

// unavailableTwice answers 503 to the first two requests for each address
// (a partition handing over), then creates it.
type unavailableTwice struct {
	mu    sync.Mutex
	tries map[string]int
}

func (u *unavailableTwice) CreateAccount(ctx context.Context, req admin.CreateAccount) (admin.Account, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.tries[req.Address]++
	if u.tries[req.Address] <= 2 {
		return admin.Account{}, &admin.Error{Status: http.StatusServiceUnavailable, Message: "partition 3 is moving"}
	}
	return admin.Account{Address: req.Address}, nil
}

// A 503 (a partition in a handoff) is tried again; it is not the run's
// failure.
func TestCreateAccountsRetriesWhileUnavailable(t *testing.T) {
	u := &unavailableTwice{tries: map[string]int{}}
	n, err := createAccounts(context.Background(), u, []string{"a@example.test", "b@example.test"}, "h", 2)
	if err != nil || n != 2 {
		t.Fatalf("createAccounts = %d, %v; want both created after the 503s", n, err)
	}
	if u.tries["a@example.test"] != 3 || u.tries["b@example.test"] != 3 {
		t.Fatalf("tries %v, want 3 each", u.tries)
	}
}
