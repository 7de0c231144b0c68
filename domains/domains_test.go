package domains

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/homing-mail/homing/cluster"
	"github.com/homing-mail/homing/mail"
)

func TestNormalize(t *testing.T) {
	for in, want := range map[string]string{"Example.ORG": "example.org", "a-b.example.test.": "a-b.example.test", " x.test ": "x.test"} {
		if got, err := Normalize(in); err != nil || got != want {
			t.Errorf("Normalize(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "a..b", "-a.test", "a-.test", "a b.test", "a@b.test", "ü.test", string(make([]byte, 300))} {
		if _, err := Normalize(bad); !errors.Is(err, ErrBadDomain) {
			t.Errorf("Normalize(%q) = %v, want ErrBadDomain", bad, err)
		}
	}
}

// --domains seeds a new node; once the set changed, the saved set wins
// over whatever --domains says at the next start.
func TestSeedThenSaved(t *testing.T) {
	dir := t.TempDir()
	var told [][]string
	r, saved, err := Open(dir, []string{"example.test", "Example.TEST", "b.test"}, nil, func(l []string) { told = append(told, l) })
	if err != nil || saved {
		t.Fatalf("Open = %v, saved %v", err, saved)
	}
	if got := r.Current(); got.Version != 0 || !slices.Equal(got.Local(), []string{"example.test", "b.test"}) {
		t.Fatalf("seeded set %+v", got)
	}
	ctx := context.Background()
	if _, err := r.Add(ctx, "C.test"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Add(ctx, "c.test"); !errors.Is(err, mail.ErrExists) {
		t.Fatalf("adding it again: %v", err)
	}
	if err := r.Remove(ctx, "b.test"); err != nil {
		t.Fatal(err)
	}
	if err := r.Remove(ctx, "b.test"); !errors.Is(err, mail.ErrNotFound) {
		t.Fatalf("removing it again: %v", err)
	}
	// Removing goes through "removing" before the set without it.
	if len(told) != 3 || !slices.Equal(told[1], []string{"example.test", "b.test", "c.test"}) || !slices.Equal(told[2], []string{"example.test", "c.test"}) {
		t.Fatalf("the node was told %v", told)
	}
	r2, saved, err := Open(dir, []string{"other.test"}, nil, nil)
	if err != nil || !saved || !slices.Equal(r2.Local(), []string{"example.test", "c.test"}) || r2.Current().Version == 0 {
		t.Fatalf("after a restart with other --domains: %+v, saved %v, %v", r2.Current(), saved, err)
	}
}

// A newer set from a member wins, an older one is ignored.
func TestNewestVersionWins(t *testing.T) {
	r, _, err := Open(t.TempDir(), []string{"a.test"}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.adopt(Set{Version: 10, Domains: []Domain{{Name: "new.test", State: Active}}}); err != nil {
		t.Fatal(err)
	}
	if err := r.adopt(Set{Version: 5, Domains: []Domain{{Name: "old.test", State: Active}}}); err != nil {
		t.Fatal(err)
	}
	if got := r.Local(); !slices.Equal(got, []string{"new.test"}) {
		t.Fatalf("local domains %v, want the version 10's", got)
	}
}

// fakeMembers is one live member whose channel nobody answers on.
type fakeMembers struct{ meta cluster.Meta }

func (f *fakeMembers) Members() []cluster.Member {
	return []cluster.Member{
		{Name: "self", Self: true, State: cluster.StateAlive},
		{Name: "mute", State: cluster.StateAlive, Meta: cluster.Meta{Channel: "127.0.0.1:1"}},
	}
}
func (f *fakeMembers) UpdateMeta(fn func(*cluster.Meta)) error { fn(&f.meta); return nil }

// A removal a live member does not confirm stays "removing": the domain
// is still local here, and the error says who did not answer.
func TestRemovalWaitsForEveryMember(t *testing.T) {
	r, _, err := Open(t.TempDir(), []string{"a.test", "b.test"}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	system := actor.NewActorSystem()
	defer system.Shutdown()
	if err := r.Start(system); err != nil {
		t.Fatal(err)
	}
	members := &fakeMembers{}
	r.Join(members)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	err = r.Remove(ctx, "b.test")
	var pending *PendingError
	if !errors.As(err, &pending) || !slices.Equal(pending.Members, []string{"mute"}) || !mail.IsTemporary(err) {
		t.Fatalf("Remove = %v, want a temporary PendingError naming mute", err)
	}
	if got := r.Current(); !slices.Equal(got.Local(), []string{"a.test", "b.test"}) || got.Domains[1].State != Removing {
		t.Fatalf("set after an unconfirmed removal: %+v", got)
	}
	if members.meta.DomainsVersion != r.Current().Version {
		t.Fatalf("gossiped version %d, set version %d", members.meta.DomainsVersion, r.Current().Version)
	}
	// Added again, it is active again.
	if _, err := r.Add(ctx, "b.test"); err != nil || r.Current().Domains[1].State != Active {
		t.Fatalf("re-adding a domain being removed: %v, %+v", err, r.Current())
	}
}
