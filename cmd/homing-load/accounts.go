package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"golang.org/x/crypto/argon2"

	"github.com/homing-mail/homing/admin"
)

// The argon2id parameters of the imported hash: OWASP's minimum
// recommendation (m=19 MiB, t=2, p=1), RFC 9106 §3.1 output of 32 bytes.
const (
	argonMemory  = 19456
	argonTime    = 2
	argonThreads = 1
	argonKeyLen  = 32
	argonSaltLen = 16
)

// argon2idPHC hashes password with a fresh salt and returns the PHC
// string form "$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>" (unpadded
// standard base64), which POST /api/v1/accounts accepts as passwordHash.
func argon2idPHC(password string) string {
	salt := make([]byte, argonSaltLen)
	rand.Read(salt) // crypto/rand.Read never fails (Go 1.24+)
	key := argon2.IDKey([]byte(password), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemory, argonTime, argonThreads,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key))
}

// accountCreator is the part of the admin API that createAccounts needs.
type accountCreator interface {
	CreateAccount(ctx context.Context, req admin.CreateAccount) (admin.Account, error)
}

// createAccounts creates the addresses with workers parallel requests, all
// with the same imported hash, so that hashing does not dominate. An
// account that exists already (409) is fine: the run may reuse a node.
// It returns how many were created and the first other error.
func createAccounts(ctx context.Context, api accountCreator, addrs []string, hash string, workers int) (int, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	jobs := make(chan string)
	var (
		mu       sync.Mutex
		created  int
		firstErr error
		wg       sync.WaitGroup
	)
	for range max(1, min(workers, len(addrs))) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for a := range jobs {
				err := createOne(ctx, api, admin.CreateAccount{Address: a, PasswordHash: hash})
				var ae *admin.Error
				if errors.As(err, &ae) && ae.Status == http.StatusConflict {
					continue
				}
				mu.Lock()
				if err == nil {
					created++
				} else if firstErr == nil {
					firstErr = fmt.Errorf("creating account %s: %w", a, err)
					cancel()
				}
				mu.Unlock()
			}
		}()
	}
feed:
	for _, a := range addrs {
		select {
		case jobs <- a:
		case <-ctx.Done():
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	if firstErr == nil && ctx.Err() != nil {
		firstErr = ctx.Err()
	}
	return created, firstErr
}

// unavailableFor bounds how long createOne retries an account whose
// partition is temporarily unavailable (503: a handoff while a cluster
// settles, a backend restarting).
const unavailableFor = 30 * time.Second

// createOne creates one account, trying again after a short wait while
// the API answers 503 (temporarily unavailable), as its Retry-After asks.
func createOne(ctx context.Context, api accountCreator, req admin.CreateAccount) error {
	deadline := time.Now().Add(unavailableFor)
	for wait := 20 * time.Millisecond; ; wait = min(2*wait, time.Second) {
		_, err := api.CreateAccount(ctx, req)
		var ae *admin.Error
		if !errors.As(err, &ae) || ae.Status != http.StatusServiceUnavailable || time.Now().After(deadline) {
			return err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
	}
}
