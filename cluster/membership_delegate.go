package cluster

import (
	"encoding/json"
	"fmt"

	"github.com/hashicorp/memberlist"
)

// RefusedError is why this node refuses another node: it belongs to another
// cluster, has another partition count, sent unreadable metadata, or this
// node runs alone. memberlist gets it from the Alive and Merge delegates,
// which makes it ignore the node (alive messages) or cancel the join
// (push/pull merge).
type RefusedError struct {
	Node   string // the refused node's name
	Addr   string // its gossip host:port
	Reason string // e.g. `cluster name "a" != "b"` (theirs, then ours)
}

// Temporary is false: the node stays refused until its configuration
// changes.
func (e *RefusedError) Temporary() bool { return false }

func (e *RefusedError) Error() string {
	return fmt.Sprintf("refusing node %s (%s): %s", e.Node, e.Addr, e.Reason)
}

// delegate adapts memberlist's delegate interfaces to Membership. Its
// methods run on memberlist's goroutines, some while memberlist holds its
// node lock: they never block and never call into memberlist (they take
// Membership's mutex for short, non-blocking work and signal through
// buffered channels).
type delegate struct{ m *Membership }

var (
	_ memberlist.Delegate         = delegate{}
	_ memberlist.EventDelegate    = delegate{}
	_ memberlist.AliveDelegate    = delegate{}
	_ memberlist.MergeDelegate    = delegate{}
	_ memberlist.ConflictDelegate = delegate{}
)

// NodeMeta returns this node's encoded metadata (validated to fit limit
// when it was set).
func (d delegate) NodeMeta(limit int) []byte {
	d.m.mu.Lock()
	defer d.m.mu.Unlock()
	if len(d.m.metaBytes) > limit {
		return nil // cannot happen: Start and UpdateMeta check the size
	}
	return append([]byte(nil), d.m.metaBytes...)
}

// NotifyMsg reads user messages: the only one is the leaving notice
// (membership_leaving.go); others are ignored.
func (d delegate) NotifyMsg(msg []byte) { d.m.receiveLeavingNotice(msg) }

// GetBroadcasts has nothing to broadcast: everything Membership tells the
// others travels in the node metadata or the push/pull state.
func (d delegate) GetBroadcasts(overhead, limit int) [][]byte { return nil }

// pushState is what a node adds to memberlist's push/pull exchange: the
// processes it holds as dead. A node that finds itself in there learns it
// was declared dead.
type pushState struct {
	Dead []deadProcess `json:"d,omitempty"`
}

// deadProcess names one dead process: node name and start time.
type deadProcess struct {
	Name    string `json:"n"`
	Started int64  `json:"t"`
}

// LocalState returns this node's push/pull state.
func (d delegate) LocalState(join bool) []byte {
	b, err := json.Marshal(pushState{Dead: d.m.deadProcesses()})
	if err != nil {
		return nil
	}
	return b
}

// MergeRemoteState reads another node's push/pull state.
func (d delegate) MergeRemoteState(buf []byte, join bool) {
	var s pushState
	if err := json.Unmarshal(buf, &s); err != nil {
		d.m.log.Debug("ignoring unreadable push/pull state", "err", err)
		return
	}
	for _, p := range s.Dead {
		if d.m.isSelf(p.Name, p.Started) {
			d.m.declaredDead("a member's push/pull state lists this node as dead")
			return
		}
	}
}

// NotifyJoin records a member that joined (or came back).
func (d delegate) NotifyJoin(n *memberlist.Node) {
	meta, flags, err := decodeMeta(n.Meta)
	if err != nil && n.Name != d.m.name {
		d.m.log.Warn("member with unreadable metadata", "member", n.Name, "err", err)
	}
	if d.m.setAlive(n.Name, n.Address(), meta, flags.leaving) {
		d.m.log.Info("member joined", "member", n.Name, "addr", n.Address())
		d.m.signalChanged()
	}
}

// NotifyLeave records a member that died or left.
func (d delegate) NotifyLeave(n *memberlist.Node) {
	meta, flags, err := decodeMeta(n.Meta)
	// memberlist marks a member that sent its own leave message StateLeft
	// (state.go, deadNode: Node == From); the leaving marker covers the
	// member whose leave message this node heard only as news of a death.
	left := flags.leaving || n.State == memberlist.StateLeft
	state, changed := d.m.setGone(n.Name, n.Address(), meta, left, err == nil)
	if changed {
		d.m.log.Info("member gone", "member", n.Name, "addr", n.Address(), "state", string(state))
		d.m.signalChanged()
	}
}

// NotifyUpdate records a member's new metadata.
func (d delegate) NotifyUpdate(n *memberlist.Node) {
	meta, flags, err := decodeMeta(n.Meta)
	if err != nil {
		d.m.log.Warn("member with unreadable metadata", "member", n.Name, "err", err)
		return
	}
	if d.m.setAlive(n.Name, n.Address(), meta, flags.leaving) {
		d.m.signalChanged()
	}
}

// NotifyAlive refuses nodes of another cluster or partition count before
// memberlist considers them (every alive message goes through here: gossip,
// push/pull and joins). An alive message about a member this node suspects
// clears the suspicion.
func (d delegate) NotifyAlive(peer *memberlist.Node) error {
	if err := d.m.admit(peer); err != nil {
		d.m.logRefusal(err)
		return err
	}
	if d.m.clearSuspect(peer.Name) {
		d.m.signalChanged()
	}
	return nil
}

// NotifyMerge vets the member list of a node this node joins or that joins
// it; one node of another cluster cancels the whole merge. A list that holds
// this very process as dead is the cluster declaring us dead.
func (d delegate) NotifyMerge(peers []*memberlist.Node) error {
	for _, p := range peers {
		if p.Name == d.m.name {
			if p.State == memberlist.StateDead {
				if meta, _, err := decodeMeta(p.Meta); err == nil && d.m.isSelf(p.Name, meta.Started) {
					d.m.declaredDead("the member list of a join holds this node as dead")
				}
			}
			continue
		}
		if err := d.m.admit(p); err != nil {
			d.m.logRefusal(err)
			return err
		}
	}
	return nil
}

// NotifyConflict logs two nodes that claim the same name: memberlist keeps
// the one it knew and ignores the other.
func (d delegate) NotifyConflict(existing, other *memberlist.Node) {
	d.m.log.Error("two nodes claim the same node name; names must be unique, the newcomer is ignored",
		"name", existing.Name, "known", existing.Address(), "other", other.Address())
	d.m.conflicts.Add(1)
}
