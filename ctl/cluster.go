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
		return c.describe("cluster", err)
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
		return c.describe("nodes", err)
	}
	now := c.now()
	return c.out(ns, func(w io.Writer) {
		fmt.Fprintln(w, "NAME\tROLES\tMODE\tSTATE\tQUEUE T/D/H\tOLDEST\tPARTITIONS OPEN/ALL\tACTORS\tERROR")
		for _, n := range ns {
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
// messages.
func nodeError(n admin.NodeInfo) string {
	if n.Error != "" {
		return n.Error
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
	return strings.Join(out, "; ")
}

// cmdPartitions: the partitions whose actors run on the node asked.
func (c *command) cmdPartitions(args []string) error {
	_, done, err := c.prepare(c.flags("partitions"), args, 0, 0, "partitions takes no arguments")
	if err != nil {
		return err
	}
	defer done()
	ps, err := c.client.Partitions(c.ctx)
	if err != nil {
		return c.describe("partitions", err)
	}
	return c.out(ps, func(w io.Writer) {
		fmt.Fprintln(w, "PARTITION\tOPEN\tACTIVE ACCOUNTS\tERROR")
		for _, p := range ps {
			fmt.Fprintf(w, "%d\t%v\t%d\t%s\n", p.ID, p.Open, p.ActiveAccounts, clip(p.Error, 100))
		}
	})
}
