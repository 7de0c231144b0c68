package admin

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
)

// Moving a partition by hand: POST /api/v1/partitions/{id}/move
// {"node": NAME}. A static partition whose owner is dead has no owner (its
// mail waits in the frontends' queues); when its store is shared, an
// operator moves it to a live backend that reaches that store, which then
// owns it whatever the static claims, until it restarts (homing ctl
// partitions move P NODE).

// PartitionMove is the body of POST /api/v1/partitions/{id}/move.
type PartitionMove struct {
	Node string `json:"node"`
}

// PartitionMover is the optional part of API that moves partitions; an API
// without it answers 501.
type PartitionMover interface {
	// MovePartition makes node the owner of partition id: an *Error 400
	// for a partition out of range or a node that is not a live backend.
	MovePartition(ctx context.Context, id int, node string) error
}

func (h *handler) movePartition(w http.ResponseWriter, r *http.Request) {
	mover, ok := h.api.(PartitionMover)
	if !ok {
		writeError(w, http.StatusNotImplemented, "this node cannot move partitions")
		return
	}
	id, err := strconv.Atoi(r.PathValue("id"))
	if err != nil || id < 0 {
		h.fail(w, r, &Error{Status: http.StatusBadRequest, Message: fmt.Sprintf("partition %q: not a partition number", r.PathValue("id")), Field: "id"})
		return
	}
	var req PartitionMove
	if err := decode(w, r, h.opt.BodyLimit, &req); err != nil {
		h.fail(w, r, err)
		return
	}
	if req.Node == "" {
		h.fail(w, r, &Error{Status: http.StatusBadRequest, Message: "node: the member to move the partition to is missing", Field: "node"})
		return
	}
	if err := mover.MovePartition(r.Context(), id, req.Node); err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"partition": id, "node": req.Node})
}

// MovePartition is POST /api/v1/partitions/{id}/move.
func (c *Client) MovePartition(ctx context.Context, id int, node string) error {
	return c.call(ctx, http.MethodPost, "/api/v1/partitions/"+strconv.Itoa(id)+"/move", PartitionMove{Node: node}, nil)
}
