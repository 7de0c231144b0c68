package ctl

import (
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"

	"github.com/homing-mail/homing/admin"
	"github.com/homing-mail/homing/mail"
)

func (c *command) cmdCluster(args []string) error {
	_, done, err := c.prepare(c.flags("cluster"), args, 0, 0, "cluster takes no arguments")
	if err != nil {
		return err
	}
	defer done()
	cl, err := c.client.Cluster(c.ctx)
	if err != nil {
		return c.describe(thing{name: "cluster"}, err)
	}
	return c.out(cl, func(w io.Writer) {
		fmt.Fprintln(w, "NAME\tROLES\tQUEUE MODE\tSTATE\tSMTP\tADMIN\tVERSION\tUPTIME")
		for _, m := range cl.Members {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", cell(m.Name), cell(strings.Join(m.Roles, ",")),
				cell(m.QueueMode), cell(m.State), cell(m.SMTP), cell(m.Admin), cell(m.Version), cell(m.Uptime))
		}
		fmt.Fprintln(w)
		fmt.Fprintf(w, "OWNER\tCOUNT\tPARTITIONS\n")
		for _, o := range owners(cl.Partitions) {
			fmt.Fprintf(w, "%s\t%d\t%s\n", cell(o.owner), len(o.ids), ranges(o.ids))
		}
		if len(cl.Conflicts) > 0 {
			fmt.Fprintln(w)
			fmt.Fprintln(w, "CONFLICT\tCLAIMED BY\tOWNER (the others do not open it)")
			for _, sc := range cl.Conflicts {
				owner := sc.Owner
				if owner == "" {
					owner = "(none: the member with its data is not live)"
				}
				fmt.Fprintf(w, "partition %d\t%s\t%s\n", sc.Partition, cell(strings.Join(sc.Claimants, ",")), cell(owner))
			}
		}
	})
}

// owner is one owner and the partitions it holds.
type owner struct {
	owner string
	ids   []int
}

// owners groups partitions by owner, sorted by owner name; partitions
// without an owner are listed as "(none)" last.
func owners(ps []admin.Partition) []owner {
	by := map[string][]int{}
	for _, p := range ps {
		by[p.Owner] = append(by[p.Owner], p.ID)
	}
	var out []owner
	for o, ids := range by {
		sort.Ints(ids)
		out = append(out, owner{owner: o, ids: ids})
	}
	sort.Slice(out, func(i, j int) bool {
		if (out[i].owner == "") != (out[j].owner == "") {
			return out[j].owner == ""
		}
		return out[i].owner < out[j].owner
	})
	for i := range out {
		if out[i].owner == "" {
			out[i].owner = "(none)"
		}
	}
	return out
}

// ranges writes ids compactly: 0-3,7,9-12.
func ranges(ids []int) string { return mail.FormatPartitionSet(ids) }

// cmdNodes: `nodes`, every member as the node asked sees it (GET
// /api/v1/nodes).
func (c *command) cmdNodes(args []string) error {
	_, done, err := c.prepare(c.flags("nodes"), args, 0, 0, "nodes takes no arguments")
	if err != nil {
		return err
	}
	defer done()
	ns, err := c.client.Nodes(c.ctx)
	if err != nil {
		return c.describe(thing{name: "nodes"}, err)
	}
	now := c.now()
	return c.out(ns, func(w io.Writer) {
		fmt.Fprintln(w, "NAME\tROLES\tMODE\tSTATE\tQUEUE T/D/H\tOLDEST\tPARTITIONS OPEN/ALL\tACTORS\tERROR")
		for _, n := range ns {
			if n.Error != "" && (n.State == "alive" || n.State == "suspect") {
				// Gossip says it lives, but it did not answer the node
				// asked: what the operator needs to know is that.
				n.State = "unreachable"
			}
			open := 0
			for _, p := range n.Partitions {
				if p.Open {
					open++
				}
			}
			actors := 0
			for _, k := range n.Actors {
				actors += k
			}
			q := n.Queue
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%d/%d/%d\t%s\t%d/%d\t%d\t%s\n",
				cell(n.Name), cell(strings.Join(n.Roles, ",")), cell(n.QueueMode), cell(n.State),
				q.Total, q.Deferred, q.Held, ageOf(q.Oldest, now), open, len(n.Partitions), actors,
				clip(nodeError(n), 60))
		}
	})
}

// nodeError is what is wrong with a member: it could not be asked, or
// some of its partitions failed to open, or its queue holds damaged
// messages, or a store's disk is below its free-space limit.
func nodeError(n admin.NodeInfo) string {
	if n.Error != "" {
		msg := cleanMessage(n.Error)
		if i := strings.Index(msg, " did not answer"); i >= 0 {
			// "be2 did not answer: future: timeout": protoactor's words
			// for a request that timed out.
			return "no answer in time (frozen, overloaded or cut off?)"
		}
		return msg
	}
	var failed, damaged []string
	for _, p := range n.Partitions {
		switch {
		case p.Damaged:
			damaged = append(damaged, strconv.Itoa(p.ID))
		case p.Error != "":
			failed = append(failed, strconv.Itoa(p.ID))
		}
	}
	var out []string
	if len(damaged) > 0 {
		out = append(out, "partitions damaged: "+strings.Join(damaged, ","))
	}
	if len(failed) > 0 {
		out = append(out, "partitions not opening: "+strings.Join(failed, ","))
	}
	if n.Queue.Damaged > 0 {
		out = append(out, fmt.Sprintf("%d damaged queued message(s)", n.Queue.Damaged))
	}
	for _, st := range n.Stores {
		if st.Low {
			out = append(out, fmt.Sprintf("%s store below its free-space limit (%s free, limit %s): refusing mail",
				st.Store, formatSize(st.FreeBytes), formatSize(st.MinFreeBytes)))
		}
	}
	return strings.Join(out, "; ")
}

// cmdPartitions: the partitions whose actors run on the node asked.
func (c *command) cmdPartitions(args []string) error {
	pos, done, err := c.prepare(c.flags("partitions"), args, 0, 3, "partitions takes no arguments, or move PARTITION NODE")
	if err != nil {
		return err
	}
	defer done()
	if len(pos) > 0 {
		if pos[0] != "move" || len(pos) != 3 {
			return usagef("usage: homing ctl partitions move PARTITION NODE")
		}
		id, err := strconv.Atoi(pos[1])
		if err != nil {
			return usagef("partition %q: not a number", pos[1])
		}
		if err := c.client.MovePartition(c.ctx, id, pos[2]); err != nil {
			return c.describe(thing{name: "partition " + pos[1]}, err)
		}
		return c.out(map[string]any{"partition": id, "node": pos[2]}, func(w io.Writer) {
			fmt.Fprintf(w, "partition %d moved to %s\n", id, pos[2])
		})
	}
	ps, err := c.client.Partitions(c.ctx)
	if err != nil {
		return c.describe(thing{name: "partitions"}, err)
	}
	return c.out(ps, func(w io.Writer) {
		fmt.Fprintln(w, "PARTITION\tOPEN\tACTIVE ACCOUNTS\tERROR")
		for _, p := range ps {
			fmt.Fprintf(w, "%d\t%v\t%d\t%s\n", p.ID, p.Open, p.ActiveAccounts, clip(p.Error, 100))
		}
	})
}

const clusterHelp = `usage: homing ctl cluster

The cluster as the node asked sees it: every member with its roles, queue
mode, gossip state (alive, suspect, dead, left), SMTP and admin addresses,
version and uptime; then which backend owns which account partitions
("(none)": no live backend holds them, their accounts cannot be reached);
then the static partitions that more than one live member claims, and the
one that owns each (the others do not open it).

examples:
  homing ctl cluster
  homing ctl --admin 10.0.0.5:8025 --json cluster | jq '.partitions[] | select(.owner == "")'
`

const nodesHelp = `usage: homing ctl nodes

Every member, asked over the cluster channel: roles, queue mode, state,
queue (total/deferred/held), its oldest message, partitions open of those it
runs, actors, and what is wrong (partitions that fail to open, damaged
queued messages). A member that does not answer within a few seconds is
shown as unreachable.

examples:
  homing ctl nodes
  homing ctl nodes --json | jq '.[] | {name, queue: .queue.total}'
`

const partitionsHelp = `usage: homing ctl partitions
       homing ctl partitions move PARTITION NODE

The account partitions whose actors run on the node asked: open or not
(a handoff in progress), active account actors, and the error when a
partition's data fails to open (damaged files: homing check DATA_DIR; a
lock that cannot be taken on the store's filesystem).

move makes NODE (a live backend) own PARTITION, whatever the static
partition sets say, until NODE restarts: for a static partition whose owner
is dead and whose store NODE reaches too (a shared store). Without it such a
partition stays without an owner and its mail waits in the queues.

examples:
  homing ctl --admin 127.0.0.1:8026 partitions
  homing ctl partitions move 5 be2
`

const readyHelp = `usage: homing ctl ready

Whether the node does its whole job now (GET /readyz, what load balancers
and systemd ask): it is running and not shutting down, its queue answers,
it has joined its cluster, every partition has an owner and the ones it
owns are open. Each check is listed with what was found; the exit code is
0 when ready, 1 when not.

examples:
  homing ctl ready
  until homing ctl ready >/dev/null; do sleep 1; done
`

// cmdReady: `ready`, GET /readyz.
func (c *command) cmdReady(args []string) error {
	_, done, err := c.prepare(c.flags("ready"), args, 0, 0, "ready takes no arguments")
	if err != nil {
		return err
	}
	defer done()
	r, err := c.client.Readiness(c.ctx)
	if err != nil {
		return c.describe(thing{name: "readiness"}, err)
	}
	if err := c.out(r, func(w io.Writer) {
		state := "ready"
		if !r.Ready {
			state = "not ready"
		}
		fmt.Fprintf(w, "%s\n", state)
		for _, ch := range r.Checks {
			mark := "ok"
			if !ch.OK {
				mark = "FAIL"
			}
			fmt.Fprintf(w, "  %s\t%s\t%s\n", cell(ch.Name), mark, clip(ch.Detail, 120))
		}
	}); err != nil {
		return err
	}
	if !r.Ready {
		return errReported
	}
	return nil
}
