package actors

import (
	"errors"
	"testing"
	"time"

	"github.com/homing-mail/homing/actors/actorstest"
	"github.com/homing-mail/homing/mail"
	"github.com/homing-mail/homing/storage"
	"github.com/homing-mail/homing/testkit/clock"
)

// The Directory answers from the partition's owner, and remembers the
// addresses it found: while the owner cannot answer, a known address is
// still accepted (the message waits in the queue), an unknown one is a
// temporary failure, and an address the owner denied is forgotten.
func TestDirectoryRemembersKnownAddresses(t *testing.T) {
	const ann = "ann@example.test"
	part := actorstest.NewPartition(0, storage.Account{Address: ann})
	if err := part.SetAlias(testCtx(t), "anna@example.test", ann); err != nil {
		t.Fatal(err)
	}
	place := &actorstest.Placement{}
	queue := actorstest.NewQueue()
	cfg := testConfig()
	cfg.LookupCacheTTL = -1 // always ask the owner; TestDirectoryCacheTTL covers the fresh cache
	s := startSystem(t, cfg, Deps{Placement: place, Queue: queue})
	pid := spawnPartition(t, s, part)
	place.Set(pid)
	dir, ctx := s.Directory(), testCtx(t)

	resolve := func(addr, want string, wantErr error) {
		t.Helper()
		got, err := dir.Resolve(ctx, addr)
		if got != want || !errors.Is(err, wantErr) || (wantErr == nil) != (err == nil) {
			t.Errorf("Resolve(%s) = %q, %v; want %q, %v", addr, got, err, want, wantErr)
		}
	}
	resolve("Ann@Example.Test", ann, nil)
	resolve("anna@example.test", ann, nil)
	resolve("nobody@example.test", "", mail.ErrNoSuchUser)

	place.Set(nil) // the owner is gone
	resolve("ann@example.test", ann, nil)
	resolve("anna@example.test", ann, nil)
	resolve("nobody@example.test", "", mail.ErrUnavailable)
	resolve("never@example.test", "", mail.ErrUnavailable)
	env := newEnvelope("bob@remote.example", ann)
	id := enqueue(t, s, env, testBody("owner away"))
	if p := queue.FirstPut(id); p == nil || rcptOf(t, p.Env, 1).Account != ann {
		t.Errorf("message to a known address while the owner is away: put %+v, want queued for %s", p, ann)
	}

	// The owner says the account is gone: that is remembered too.
	if err := part.DeleteAccount(ctx, ann); err != nil {
		t.Fatal(err)
	}
	place.Set(pid)
	resolve(ann, "", mail.ErrNoSuchUser)
	place.Set(nil)
	resolve(ann, "", mail.ErrUnavailable)
	if d := dir.Domains(); len(d) != 1 || d[0] != "example.test" || !dir.IsLocalDomain("EXAMPLE.test.") || dir.IsLocalDomain("remote.example") {
		t.Errorf("local domains %v", d)
	}
}

// A positive answer younger than LookupCacheTTL is used without asking the
// owner again; an older one is checked again.
func TestDirectoryCacheTTL(t *testing.T) {
	const ann = "ann@example.test"
	part := actorstest.NewPartition(0, storage.Account{Address: ann})
	place := &actorstest.Placement{}
	clk := clock.New(clock.Start)
	cfg := testConfig()
	cfg.LookupCacheTTL = time.Minute
	s := startSystem(t, cfg, Deps{Placement: place, Queue: actorstest.NewQueue(), Now: clk.Now})
	place.Set(spawnPartition(t, s, part))
	dir, ctx := s.Directory(), testCtx(t)
	if a, err := dir.Resolve(ctx, ann); err != nil || a != ann {
		t.Fatalf("first Resolve = %q, %v", a, err)
	}
	if err := part.DeleteAccount(ctx, ann); err != nil {
		t.Fatal(err)
	}
	clk.Advance(30 * time.Second)
	if a, err := dir.Resolve(ctx, ann); err != nil || a != ann {
		t.Fatalf("Resolve within the TTL = %q, %v; want the remembered answer", a, err)
	}
	clk.Advance(31 * time.Second)
	if _, err := dir.Resolve(ctx, ann); !errors.Is(err, mail.ErrNoSuchUser) {
		t.Fatalf("Resolve after the TTL = %v; want the owner's answer (no such user)", err)
	}
}
