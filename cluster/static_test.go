package cluster

import (
	"reflect"
	"testing"

	"github.com/asynkron/protoactor-go/actor"
)

func staticBackend(name string, state State, static string, started int64, has string) Member {
	m := backend(name, state, static)
	m.Meta.Started, m.Meta.HasData = started, has
	return m
}

// Two live backends claim partition 0 and neither has its data yet (a
// new cluster, misconfigured): the earlier started owns it, the later
// one's placement does not give it to itself, and the conflict is listed.
func TestStaticConflictTheEarlierOwns(t *testing.T) {
	ms := []Member{staticBackend("s2", StateAlive, "0", 100, ""), staticBackend("s1", StateAlive, "0-1", 200, "")}
	if got := Assign(2, ms); !reflect.DeepEqual(got, []string{"s2", "s1"}) {
		t.Fatalf("owners %q, want s2 (started first) for 0, s1 for 1", got)
	}
	for self, want := range map[string][]int{"s1": {1}, "s2": {0}} {
		pl := NewPlacement(2, self, func(int) *actor.PID { return nil })
		if got := pl.Update(markSelf(ms, self)); !reflect.DeepEqual(got, want) {
			t.Errorf("%s owns %v, want %v", self, got, want)
		}
	}
	want := []StaticConflict{{Partition: 0, Owner: "s2", Claimants: []string{"s1", "s2"}}}
	if got := StaticConflicts(2, ms); !reflect.DeepEqual(got, want) {
		t.Fatalf("conflicts %+v, want %+v", got, want)
	}
}

// A claimant holding the partition's data wins over an earlier one that
// does not (the later one was restarted; the earlier has an empty store).
func TestStaticTheOneWithTheDataOwns(t *testing.T) {
	ms := []Member{staticBackend("s1", StateAlive, "0", 100, ""), staticBackend("s2", StateAlive, "0", 200, "0")}
	if got := Assign(1, ms); got[0] != "s2" {
		t.Fatalf("owner %q, want s2 (it has the data)", got[0])
	}
}

// The static owner with the data is dead: a live claimant without the data
// does not take over, nor does a dynamic backend: the partition has no
// owner (its mail waits, 4.x), never a store that would answer 5.1.1.
func TestStaticDeadOwnerLeavesItUnowned(t *testing.T) {
	for _, state := range []State{StateDead, StateLeft} {
		ms := []Member{staticBackend("s1", state, "0-1", 100, "0-1"), staticBackend("s2", StateAlive, "0", 200, ""),
			backend("d1", StateAlive, "")}
		got := Assign(4, ms)
		if !reflect.DeepEqual(got[:2], []string{"", ""}) || got[2] != "d1" || got[3] != "d1" {
			t.Errorf("s1 %s: owners %q, want 0 and 1 unowned, 2 and 3 on d1", state, got)
		}
	}
	// Without any data anywhere, a dead claimant's partition still goes
	// to no dynamic backend.
	ms := []Member{staticBackend("s1", StateDead, "0", 100, ""), backend("d1", StateAlive, "")}
	if got := Assign(2, ms); got[0] != "" || got[1] != "d1" {
		t.Errorf("owners %q, want 0 unowned, 1 on d1", got)
	}
}

// Two claimants on a shared store both have the data: when the owner
// dies, the other takes over at once (TestClusterTwoOwnersFence).
func TestStaticSharedStoreTakesOver(t *testing.T) {
	ms := []Member{staticBackend("s1", StateDead, "0", 100, "0"), staticBackend("s2", StateAlive, "0", 200, "0")}
	if got := Assign(1, ms); got[0] != "s2" {
		t.Fatalf("owner %q, want s2", got[0])
	}
}

// An operator's move (Meta.Adopted) wins over every static claim.
func TestStaticAdoptedWins(t *testing.T) {
	d1 := backend("d1", StateAlive, "")
	d1.Meta.Adopted = "0"
	ms := []Member{staticBackend("s1", StateDead, "0", 100, "0"), d1}
	if got := Assign(2, ms); got[0] != "d1" || got[1] != "d1" {
		t.Fatalf("owners %q, want both on d1", got)
	}
	s2 := staticBackend("s2", StateAlive, "0", 50, "0")
	if got := Assign(2, append(ms, s2)); got[0] != "d1" {
		t.Fatalf("owner %q, want d1 (moved there) over the live claimant s2", got[0])
	}
}
