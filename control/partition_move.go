package control

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"

	"github.com/homing-mail/homing/actors/pb"
	"github.com/homing-mail/homing/admin"
	"github.com/homing-mail/homing/cluster"
	hmail "github.com/homing-mail/homing/mail"
)

var _ admin.PartitionMover = (*API)(nil)

// MovePartition makes node the owner of partition id (homing ctl
// partitions move): every live member is told, the target adds id to its
// Meta.Adopted and every other member drops it from its own, so that the
// placement of every node gives it to node (cluster/static.go). A member
// that cannot be told is an error (503): run the move again.
func (a *API) MovePartition(ctx context.Context, id int, node string) error {
	cl := a.cluster()
	if cl == nil {
		return &admin.Error{Status: http.StatusBadRequest, Message: "a single node owns every partition: there is nothing to move"}
	}
	if id < 0 || id >= a.Info.Partitions {
		return &admin.Error{Status: http.StatusBadRequest, Field: "id",
			Message: fmt.Sprintf("partition %d: out of range 0-%d", id, a.Info.Partitions-1)}
	}
	members := cl.Membership.Members()
	i := slices.IndexFunc(members, func(m cluster.Member) bool { return m.Name == node })
	if i < 0 || !members[i].State.Live() || !members[i].Meta.HasRole(hmail.RoleBackend) {
		return &admin.Error{Status: http.StatusBadRequest, Field: "node",
			Message: fmt.Sprintf("node %q: not a live backend of this cluster", node)}
	}
	var errs []error
	for _, m := range members {
		if !m.State.Live() || !m.Meta.HasRole(hmail.RoleBackend) {
			continue
		}
		if m.Self {
			errs = append(errs, a.adoptPartition(strconv.Itoa(id), node))
			continue
		}
		q := &pb.Introspect{Kind: "partition-move", Id: strconv.Itoa(id), Action: node}
		errs = append(errs, a.ask(ctx, m, q, nil))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: moving partition %d to %s: %v", hmail.ErrUnavailable, id, node, err)
	}
	a.Logger.Warn("partition moved by an operator", "partition", id, "node", node)
	return nil
}

// adoptPartition is this member's part of a move: take partition id when
// node is this member, let it go otherwise.
func (a *API) adoptPartition(idText, node string) error {
	cl := a.cluster()
	if cl == nil {
		return errors.New("not clustered")
	}
	id, err := strconv.Atoi(idText)
	if err != nil || id < 0 || id >= a.Info.Partitions {
		return fmt.Errorf("%w: partition %q", hmail.ErrInvalid, idText)
	}
	return cl.Membership.UpdateMeta(func(m *cluster.Meta) {
		set, _ := hmail.ParsePartitionSet(m.Adopted, a.Info.Partitions)
		set = slices.DeleteFunc(set, func(p int) bool { return p == id })
		if node == a.Info.Name {
			set = append(set, id)
		}
		m.Adopted = hmail.FormatPartitionSet(set)
	})
}
