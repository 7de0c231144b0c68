package control

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/homing-mail/homing/admin"
	"github.com/homing-mail/homing/mail"
)

// Readiness is GET /readyz. A node is ready when every check passes:
//
//   - running: the node has finished starting (it has joined, on a
//     clustered node) and is not shutting down;
//   - queue: the queue store answers (the queue actor reads it);
//   - cluster (a clustered node): this node has joined its cluster: with
//     --join seeds, it knows another member (a node whose seeds have not
//     answered runs alone and is not ready; one whose peers died since it
//     joined still knows them, as dead, and stays ready: it serves what it
//     can, and the partitions check says what it cannot);
//   - partitions: every partition has an owner (in a cluster, as this
//     node's placement sees it: a partition without a live backend has
//     none), and on a backend every partition this node owns is open (not
//     failed: damaged files, another error; not still opening: a handoff
//     in progress), and none it no longer owns is still running here (a
//     handoff away from it). On a single node a backend owns them all.
//   - storage: every store's filesystem has at least its free-space limit
//     (--min-free-space); below it new mail is refused with 452 4.3.1.
//
// So a node is not ready while its cluster settles (a join, a death, a
// handoff), which takes seconds, and while a partition it owns fails to
// open, until that is repaired: its mail waits in the queues and requests
// for its accounts answer 503, and the node reports it here, to the load
// balancer and to systemd.
func (a *API) Readiness(ctx context.Context) admin.Readiness {
	checks := []admin.Check{a.runningCheck(), a.queueCheck(ctx)}
	if a.Info.Clustered {
		checks = append(checks, a.clusterCheck())
	}
	checks = append(checks, a.partitionsCheck(ctx), a.spaceCheck())
	r := admin.Readiness{Ready: true, Checks: checks}
	for _, c := range checks {
		r.Ready = r.Ready && c.OK
	}
	return r
}

// SetStarted says the node has run every step of its start; SetClosing
// that it has begun to shut down. Readiness reads both.
func (a *API) SetStarted() { a.started.Store(true) }

// SetClosing: see SetStarted.
func (a *API) SetClosing() { a.closing.Store(true) }

func (a *API) runningCheck() admin.Check {
	switch {
	case a.closing.Load():
		return admin.Check{Name: "running", Detail: "shutting down"}
	case !a.started.Load():
		return admin.Check{Name: "running", Detail: "starting"}
	}
	return admin.Check{Name: "running", OK: true, Detail: "up since " + a.Info.Started.UTC().Format("2006-01-02T15:04:05Z")}
}

func (a *API) queueCheck(ctx context.Context) admin.Check {
	if _, err := a.System.OldestQueued(ctx); err != nil {
		return admin.Check{Name: "queue", Detail: "the queue does not answer: " + err.Error()}
	}
	return admin.Check{Name: "queue", OK: true, Detail: "open"}
}

func (a *API) clusterCheck() admin.Check {
	cl := a.cluster()
	if cl == nil {
		return admin.Check{Name: "cluster", Detail: "not joined yet"}
	}
	others, known := 0, 0
	for _, m := range cl.Membership.Members() {
		if m.Self {
			continue
		}
		known++ // memberlist knows a member, in any state, only by a join
		if m.State.Live() {
			others++
		}
	}
	if a.Info.Seeds > 0 && known == 0 {
		return admin.Check{Name: "cluster", Detail: "not joined: no seed (--join) has answered yet; this node runs alone"}
	}
	return admin.Check{Name: "cluster", OK: true, Detail: fmt.Sprintf("joined, %d other live %s", others, plural(others, "member", "members"))}
}

func (a *API) partitionsCheck(ctx context.Context) admin.Check {
	n := a.Info.Partitions
	owners := make([]string, n)
	if cl := a.cluster(); cl != nil {
		copy(owners, cl.Placement.Owners())
	} else if mail.HasRole(a.Info.Roles, mail.RoleBackend) {
		for p := range owners {
			owners[p] = a.Info.Name
		}
	}
	var unowned, owned []int
	for p, o := range owners {
		switch o {
		case "":
			unowned = append(unowned, p)
		case a.Info.Name:
			owned = append(owned, p)
		}
	}
	states := map[int]partitionState{}
	for _, s := range a.System.PartitionStates(ctx) {
		states[s.ID] = partitionState{open: s.Open, err: s.Error}
	}
	var failed, opening, leaving []string
	for _, p := range owned {
		s, ok := states[p]
		switch {
		case ok && s.err != "":
			failed = append(failed, fmt.Sprintf("%d (%s)", p, s.err))
		case !ok || !s.open:
			opening = append(opening, strconv.Itoa(p))
		}
		delete(states, p)
	}
	for p := range states {
		leaving = append(leaving, strconv.Itoa(p))
	}
	var why []string
	if len(unowned) > 0 {
		why = append(why, fmt.Sprintf("%d of %d partitions have no owner (no live backend for %s)", len(unowned), n, mail.FormatPartitionSet(unowned)))
	}
	if len(failed) > 0 {
		why = append(why, "failed to open: partition "+strings.Join(failed, ", partition "))
	}
	if len(opening) > 0 {
		why = append(why, "still opening (a handoff): "+strings.Join(opening, ","))
	}
	if len(leaving) > 0 {
		why = append(why, "still closing (handed to another node): "+strings.Join(leaving, ","))
	}
	if len(why) > 0 {
		return admin.Check{Name: "partitions", Detail: strings.Join(why, "; ")}
	}
	if len(owned) == 0 {
		return admin.Check{Name: "partitions", OK: true, Detail: fmt.Sprintf("all %d owned by backends", n)}
	}
	return admin.Check{Name: "partitions", OK: true, Detail: fmt.Sprintf("all %d owned; %d open here", n, len(owned))}
}

type partitionState struct {
	open bool
	err  string
}

// plural chooses the word for n.
func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
