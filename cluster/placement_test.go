package cluster

import (
	"reflect"
	"slices"
	"testing"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/homing-mail/homing/mail"
)

func backend(name string, state State, static string) Member {
	return Member{Name: name, State: state, Meta: Meta{Roles: []mail.Role{"backend"}, Static: static, Channel: name + ":1"}}
}

func TestAssignSpreadsAndMovesLittle(t *testing.T) {
	const n = 64
	three := []Member{backend("b1", StateAlive, ""), backend("b2", StateAlive, ""), backend("b3", StateAlive, ""),
		{Name: "fe", State: StateAlive, Meta: Meta{Roles: []mail.Role{"frontend"}}}}
	before := Assign(n, three)
	count := map[string]int{}
	for p, o := range before {
		if o == "" || o == "fe" {
			t.Fatalf("partition %d owned by %q", p, o)
		}
		count[o]++
	}
	for _, b := range []string{"b1", "b2", "b3"} {
		if count[b] < n/3/2 {
			t.Errorf("%s owns %d of %d partitions: badly spread %v", b, count[b], n, count)
		}
	}
	// A fourth backend joins: it takes about a quarter, and few others
	// move (the load bound shuffles a handful).
	after := Assign(n, append(three, backend("b4", StateAlive, "")))
	moved, toNew := 0, 0
	for p := range after {
		if after[p] != before[p] {
			moved++
			if after[p] == "b4" {
				toNew++
			}
		}
	}
	if toNew < n/4-1 || moved > n/4+n/8 {
		t.Errorf("a 4th backend joined: %d moved, %d to it; want about %d, all but a few to it", moved, toNew, n/4)
	}
	// b2 dies: its partitions move, and few others.
	dead := []Member{backend("b1", StateAlive, ""), backend("b2", StateDead, ""), backend("b3", StateAlive, "")}
	after = Assign(n, dead)
	moved, onB2 := 0, 0
	for p := range after {
		if before[p] == "b2" {
			onB2++
		}
		if after[p] != before[p] {
			moved++
		}
		if after[p] == "b2" {
			t.Errorf("partition %d still on dead b2", p)
		}
	}
	if moved > onB2+n/8 {
		t.Errorf("b2 died: %d partitions moved, b2 had %d", moved, onB2)
	}
	for _, o := range after {
		count[o]++
	}
	// Balanced: with the bound every backend holds ceil(P/N) or less.
	load := map[string]int{}
	for _, o := range Assign(16, []Member{backend("x", StateAlive, ""), backend("y", StateAlive, "")}) {
		load[o]++
	}
	if load["x"] != 8 || load["y"] != 8 {
		t.Errorf("16 partitions over two backends: %v, want 8/8", load)
	}
	// Deterministic: same view, same answer, whatever the order.
	rev := []Member{three[3], three[2], three[1], three[0]}
	if !reflect.DeepEqual(Assign(n, rev), before) {
		t.Error("assignment depends on the order of members")
	}
}

func TestAssignNoBackends(t *testing.T) {
	for p, o := range Assign(4, []Member{{Name: "fe", State: StateAlive, Meta: Meta{Roles: []mail.Role{"frontend"}}}}) {
		if o != "" {
			t.Errorf("partition %d owned by %q with no backend", p, o)
		}
	}
}

func TestAssignStatic(t *testing.T) {
	ms := []Member{backend("s1", StateAlive, "0-3"), backend("s2", StateAlive, "4-7"), backend("d1", StateAlive, "")}
	got := Assign(10, ms)
	for p := 0; p < 10; p++ {
		want := map[bool]string{true: "s1", false: "s2"}[p < 4]
		if p >= 8 {
			want = "d1"
		}
		if got[p] != want {
			t.Errorf("partition %d -> %q, want %q", p, got[p], want)
		}
	}
}

func TestPartitionPIDRoutesToOwnerChannel(t *testing.T) {
	ms := []Member{backend("b1", StateAlive, ""), {Name: "fe", State: StateAlive, Meta: Meta{Roles: []mail.Role{"frontend"}}}}
	pl := NewPlacement(4, "fe", func(int) *actor.PID { return nil })
	if owned := pl.Update(ms); len(owned) != 0 {
		t.Fatalf("a frontend owns %v", owned)
	}
	pid, err := pl.PartitionPID(2)
	if err != nil {
		t.Fatal(err)
	}
	if pid.Address != "b1:1" || pid.Id != "partition-2" {
		t.Fatalf("pid = %s/%s", pid.Address, pid.Id)
	}
	pl.Update(nil)
	if _, err := pl.PartitionPID(2); err == nil {
		t.Fatal("PartitionPID with no backend succeeded")
	}
}

func markSelf(ms []Member, self string) []Member {
	out := append([]Member(nil), ms...)
	for i := range out {
		out[i].Self = out[i].Name == self
	}
	return out
}

// The partitions a membership change kicks: those whose owner is another,
// or the same member restarted or back from suspicion; none when nothing
// about the owners changed.
func TestChangedOwners(t *testing.T) {
	pl := NewPlacement(4, "fe", nil)
	o := &Ownership{pl: pl}
	be := func(name string, state State, started int64) Member {
		m := backend(name, state, "")
		m.Meta.Started = started
		return m
	}
	apply := func(ms ...Member) []int {
		pl.Update(ms)
		return o.changedOwners(ms)
	}
	if got := apply(be("b1", StateAlive, 1), be("b2", StateAlive, 1)); len(got) != 4 {
		t.Fatalf("first view: %v changed, want all 4", got)
	}
	if got := apply(be("b1", StateAlive, 1), be("b2", StateAlive, 1)); len(got) != 0 {
		t.Fatalf("the same view again: %v changed, want none", got)
	}
	owners := pl.Owners()
	var ofB2 []int
	for p, owner := range owners {
		if owner == "b2" {
			ofB2 = append(ofB2, p)
		}
	}
	if got := apply(be("b1", StateAlive, 1), be("b2", StateAlive, 2)); !slices.Equal(got, ofB2) {
		t.Fatalf("b2 restarted: %v changed, want b2's %v", got, ofB2)
	}
	apply(be("b1", StateAlive, 1), be("b2", StateSuspect, 2))
	if got := apply(be("b1", StateAlive, 1), be("b2", StateAlive, 2)); !slices.Equal(got, ofB2) {
		t.Fatalf("b2 back from suspicion: %v changed, want b2's %v", got, ofB2)
	}
}
