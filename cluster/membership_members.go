package cluster

import (
	"cmp"
	"slices"
	"time"
)

// State is a member's state as this node sees it.
type State string

// The states of a member.
const (
	// StateAlive: the member answers.
	StateAlive State = "alive"
	// StateSuspect: this node's probes of the member failed; unless it
	// refutes in time, it will be declared dead. It is still a member.
	StateSuspect State = "suspect"
	// StateDead: the member was declared dead (it crashed, or could not be
	// reached for the whole suspicion timeout).
	StateDead State = "dead"
	// StateLeft: the member left gracefully (Membership.Leave).
	StateLeft State = "left"
)

// Live reports whether s counts as a member (alive or suspect).
func (s State) Live() bool { return s == StateAlive || s == StateSuspect }

// Member is one node as this node sees it.
type Member struct {
	Name  string // memberlist node name (= the node's --name)
	Addr  string // gossip host:port
	State State
	Meta  Meta
	Self  bool      // this is the local node
	Since time.Time // when State last changed, as this node saw it
}

// memberEntry is one row of Membership's member table.
type memberEntry struct {
	m       Member
	leaving bool      // its last metadata carried the leaving marker
	since   time.Time // when State last changed
}

// The methods below keep the member table. They are called from memberlist
// delegates (memberlist holds its node lock then, so they must never call
// into memberlist) and from Membership's methods. Each takes m.mu itself
// and returns whether anything a reader of Members can see changed.

// setAlive records that a member is alive with the given metadata.
func (m *Membership) setAlive(name, addr string, meta Meta, leaving bool) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.members[name]
	if !ok {
		e = &memberEntry{}
		m.members[name] = e
	}
	old := e.m
	e.m = Member{Name: name, Addr: addr, State: StateAlive, Meta: meta, Self: name == m.name}
	if e.m.Self {
		e.m.Meta = m.meta.clone()
	}
	// A leaving notice (membership_leaving.go) stays with the process
	// that sent it, whatever its later alive messages carry.
	e.leaving = leaving || (e.leaving && ok && old.State.Live() && old.Meta.Started == meta.Started)
	if !ok || old.State != StateAlive {
		e.since = time.Now()
	}
	return !ok || !sameMember(old, e.m)
}

// setGone records that a member died or left.
func (m *Membership) setGone(name, addr string, meta Meta, leaving, metaOK bool) (State, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.members[name]
	if !ok {
		e = &memberEntry{m: Member{Name: name, Self: name == m.name}}
		m.members[name] = e
	}
	leaving = leaving || e.leaving
	state := StateDead
	if leaving || (e.m.Self && m.left) {
		state = StateLeft
	}
	old := e.m
	e.m.Addr = addr
	if metaOK && !e.m.Self {
		e.m.Meta = meta
	}
	e.m.State = state
	e.leaving = leaving
	e.since = time.Now()
	return state, !ok || !sameMember(old, e.m)
}

// markLeaving records that member name, the process started at started,
// said it is leaving; it reports whether this node knew it alive as that
// process.
func (m *Membership) markLeaving(name string, started int64) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.members[name]
	if !ok || e.m.Self || !e.m.State.Live() || e.m.Meta.Started != started {
		return false
	}
	e.leaving = true
	return true
}

// setSuspect marks a live member suspect (this node's probe of it failed).
func (m *Membership) setSuspect(name string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.members[name]
	if !ok || e.m.Self || e.m.State != StateAlive {
		return false
	}
	e.m.State = StateSuspect
	e.since = time.Now()
	return true
}

// clearSuspect marks a suspect member alive again: an alive message about
// it arrived after this node suspected it.
func (m *Membership) clearSuspect(name string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.members[name]
	if !ok || e.m.State != StateSuspect {
		return false
	}
	e.m.State = StateAlive
	e.since = time.Now()
	return true
}

// Members returns every member this node knows, itself included, sorted by
// name, each with its latest state: alive or suspect while memberlist
// counts it, dead or left once it went (it stays listed so until a member
// of the same name comes back). Suspect is reported when this node's own
// probe of the member failed and no alive message about it arrived since;
// suspicions that other members gossip are not visible through memberlist's
// API. Safe for concurrent use; the result is the caller's.
func (m *Membership) Members() []Member {
	m.mu.Lock()
	out := make([]Member, 0, len(m.members))
	for _, e := range m.members {
		mm := e.m
		mm.Meta = mm.Meta.clone()
		mm.Since = e.since
		out = append(out, mm)
	}
	m.mu.Unlock()
	slices.SortFunc(out, func(a, b Member) int { return cmp.Compare(a.Name, b.Name) })
	return out
}

// deadPeers returns the addresses of members believed dead (not left) for
// less than within, for reconnecting.
func (m *Membership) deadPeers(within time.Duration) []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for _, e := range m.members {
		if !e.m.Self && e.m.State == StateDead && e.m.Addr != "" && time.Since(e.since) < within {
			out = append(out, e.m.Addr)
		}
	}
	return out
}

// deadProcesses returns the members this node holds as dead (not left),
// each with the start time of the process that died.
func (m *Membership) deadProcesses() []deadProcess {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []deadProcess
	for _, e := range m.members {
		if !e.m.Self && e.m.State == StateDead {
			out = append(out, deadProcess{Name: e.m.Name, Started: e.m.Meta.Started})
		}
	}
	return out
}

// sameMember reports whether a and b look the same to a reader of Members.
func sameMember(a, b Member) bool {
	return a.Name == b.Name && a.Addr == b.Addr && a.State == b.State && a.Self == b.Self && sameMeta(a.Meta, b.Meta)
}

// sameMeta reports whether a and b are equal.
func sameMeta(a, b Meta) bool {
	return a.Cluster == b.Cluster && a.Version == b.Version && slices.Equal(a.Roles, b.Roles) &&
		a.QueueMode == b.QueueMode && a.SMTP == b.SMTP && a.Channel == b.Channel && a.Admin == b.Admin &&
		a.Partitions == b.Partitions && a.Static == b.Static && a.Started == b.Started &&
		a.HasData == b.HasData && a.Adopted == b.Adopted
}
