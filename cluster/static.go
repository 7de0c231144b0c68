package cluster

import (
	"cmp"
	"slices"

	"github.com/homing-mail/homing/mail"
)

// Static partitions, and why a static cluster cannot split.
//
// A backend started with --static-partitions claims a set (Meta.Static)
// and keeps its data in a store of its own. Two live backends may claim
// one partition (a configuration mistake, or a shared store with a
// standby); only one may open it. Every node decides the same way, from
// the same view:
//
//  1. A live member an operator moved the partition to (Meta.Adopted,
//     homing ctl partitions move) owns it.
//  2. Else, among the live claimants, those that hold its data
//     (Meta.HasData: the partition was opened in their store before) come
//     first, and of those the one started earliest owns it: the later
//     one does not open it, and the conflict is reported (StaticConflicts,
//     GET /api/v1/cluster, homing ctl cluster, the console, the log).
//  3. A claimant that does not hold the data never takes over from a
//     claimant that does, alive or dead: while the one with the data is
//     dead, the partition has no owner, and its mail waits in the
//     frontends' queues (4.x), never answered 5.1.1 by a store that
//     does not have the accounts. Only while nobody holds the data yet (a
//     new cluster) does the earliest live claimant own it.
//  4. A partition some member claims statically, alive or dead, is never
//     given to a dynamic backend (whose store does not have it).
//
// Dead members stay in the member table until a member of the same name
// comes back, so rule 3 and 4 hold while any node that saw the static
// owner is up; a node started after every one of those has forgotten it.

// StaticConflict is a static partition claimed by more than one live
// member: Owner has it, the other Claimants do not open it.
type StaticConflict struct {
	Partition int
	Owner     string   // "" when no claimant may have it (rule 3)
	Claimants []string // every live claimant, by name
}

// staticClaim is one member's claim on one partition.
type staticClaim struct {
	name    string
	started int64
	has     bool
	live    bool
}

// staticView is what the members say about static partitions.
type staticView struct {
	claims  [][]staticClaim // by partition, every member's claim, any state
	adopted [][]string      // by partition, live members it was moved to
}

func newStaticView(partitions int, members []Member) staticView {
	v := staticView{claims: make([][]staticClaim, partitions), adopted: make([][]string, partitions)}
	for _, m := range members {
		if !m.Meta.HasRole(mail.RoleBackend) {
			continue
		}
		live := m.State.Live()
		if live && m.Meta.Adopted != "" {
			if set, err := mail.ParsePartitionSet(m.Meta.Adopted, partitions); err == nil {
				for _, p := range set {
					v.adopted[p] = append(v.adopted[p], m.Name)
				}
			}
		}
		if m.Meta.Static == "" {
			continue
		}
		set, err := mail.ParsePartitionSet(m.Meta.Static, partitions)
		if err != nil {
			continue
		}
		has := map[int]bool{}
		if hs, err := mail.ParsePartitionSet(m.Meta.HasData, partitions); err == nil {
			for _, p := range hs {
				has[p] = true
			}
		}
		for _, p := range set {
			v.claims[p] = append(v.claims[p], staticClaim{name: m.Name, started: m.Meta.Started, has: has[p], live: live})
		}
	}
	return v
}

// static reports whether p is a static (or adopted) partition.
func (v staticView) static(p int) bool { return len(v.claims[p]) > 0 || len(v.adopted[p]) > 0 }

// owner applies the rules above to static partition p.
func (v staticView) owner(p int) string {
	if a := v.adopted[p]; len(a) > 0 {
		return slices.Min(a)
	}
	var live []staticClaim
	anyHas := false
	for _, c := range v.claims[p] {
		anyHas = anyHas || c.has
		if c.live {
			live = append(live, c)
		}
	}
	if anyHas {
		live = slices.DeleteFunc(live, func(c staticClaim) bool { return !c.has })
	}
	if len(live) == 0 {
		return ""
	}
	return slices.MinFunc(live, func(a, b staticClaim) int {
		if c := cmp.Compare(a.started, b.started); c != 0 {
			return c
		}
		return cmp.Compare(a.name, b.name)
	}).name
}

// StaticConflicts lists the static partitions more than one live member
// claims, each with the owner the rules give it.
func StaticConflicts(partitions int, members []Member) []StaticConflict {
	v := newStaticView(partitions, members)
	var out []StaticConflict
	for p := range partitions {
		var live []string
		for _, c := range v.claims[p] {
			if c.live {
				live = append(live, c.name)
			}
		}
		if len(live) < 2 {
			continue
		}
		slices.Sort(live)
		out = append(out, StaticConflict{Partition: p, Owner: v.owner(p), Claimants: live})
	}
	return out
}
