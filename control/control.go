package control

import (
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/homing-mail/homing/actors"
	"github.com/homing-mail/homing/admin"
	"github.com/homing-mail/homing/cluster"
	"github.com/homing-mail/homing/content"
	"github.com/homing-mail/homing/domains"
	"github.com/homing-mail/homing/guard"
	"github.com/homing-mail/homing/mail"
	"github.com/homing-mail/homing/maillog"
	"github.com/homing-mail/homing/storage"
)

// Version is the node software version.
const Version = "0.1.0"

// Info is what a node is, as the API reports it.
type Info struct {
	Name       string
	Roles      []mail.Role
	Hostname   string
	Domains    []string
	Partitions int
	Started    time.Time
	// Clustered: the node joins a cluster (--gossip or --join); Seeds is
	// how many --join seeds it was given (readiness: a node with seeds
	// has joined once another member answered).
	Clustered bool
	Seeds     int
}

// Cluster is a clustered node's membership, placement and ownership loop.
type Cluster struct {
	Membership *cluster.Membership
	Placement  *cluster.Placement
	Ownership  *cluster.Ownership
}

// Deps are what the API works on.
type Deps struct {
	Info       Info
	System     *actors.System
	Content    *content.Pipeline
	Replicator *content.Replicator
	Runtime    *Settings // settings changed at run time (queue mode)
	// Addrs returns the listeners' addresses (known once they listen).
	Addrs  func() Addrs
	Logger *slog.Logger
	// Guard checks the logins of POST /api/v1/submit: the node passes
	// the one its SMTP listeners use, so they share the gate and the
	// failure budgets. nil: a guard of its own with the defaults.
	Guard *guard.Guard
	// MailLog is the node's delivery log: the logins of the submit API
	// go there, and the live tail reads it.
	MailLog *maillog.Log
	// DomainSet is the cluster's local domains (nil: the domains of
	// Info, unchangeable).
	DomainSet *domains.Registry
	// MinPasswordLength is the password policy's shortest password (0:
	// DefaultMinPasswordLength).
	MinPasswordLength int
	// Spaces returns the state of the free-space guard of each store's
	// filesystem (readiness, node info, metrics). nil: none.
	Spaces func() []storage.SpaceStatus
}

// Addrs are a node's listener addresses.
type Addrs struct{ SMTP, Admin string }

// API is one node's implementation of admin.API: accounts and mailboxes
// (through the account's partition actor, wherever it runs), the queue,
// settings, rules, statistics, mail submitted by users, and the whole
// cluster's view (asking every member's introspect actor, introspect.go).
// Errors are the taxonomy's: bad input is a 400 *admin.Error or wraps
// mail.ErrInvalid, unknown things wrap mail.ErrNotFound, temporary trouble
// (no owner, a handoff, a member that does not answer) is temporary and the
// admin handler answers it 503 with Retry-After.
type API struct {
	Deps

	mu      sync.Mutex
	cl      *Cluster // nil on a single node and until the node has joined
	history *History // this node's minutes (StartHistory)

	started, closing atomic.Bool // readiness: SetStarted, SetClosing

	submitLogins *prometheus.CounterVec // POST /api/v1/submit logins by result (metrics.go)
}

// New returns the API of a node.
func New(d Deps) *API {
	if d.Guard == nil {
		d.Guard = guard.New(guard.Config{})
	}
	return &API{Deps: d, submitLogins: newSubmitLogins()}
}

// Join gives the API the node's cluster, once it has joined.
func (a *API) Join(cl *Cluster) {
	a.mu.Lock()
	a.cl = cl
	a.mu.Unlock()
}

// cluster returns the node's cluster parts, nil on a single node.
func (a *API) cluster() *Cluster {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.cl
}

// members returns the members keep returns true for (sorted by name);
// none on a single node.
func (a *API) members(keep func(cluster.Member) bool) []cluster.Member {
	cl := a.cluster()
	if cl == nil {
		return nil
	}
	var out []cluster.Member
	for _, m := range cl.Membership.Members() {
		if keep(m) {
			out = append(out, m)
		}
	}
	return out
}

// self is this node as a member.
func (a *API) self() admin.Member {
	addrs := a.Addrs()
	return admin.Member{
		Name: a.Info.Name, Roles: roleNames(a.Info.Roles), QueueMode: string(a.Runtime.QueueMode()), State: "alive",
		SMTP: addrs.SMTP, Admin: addrs.Admin, Version: Version,
		Uptime: time.Since(a.Info.Started).Round(time.Second).String(),
	}
}

func roleNames(rs []mail.Role) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = string(r)
	}
	return out
}

// ownerOf names the node that owns partition p.
func (a *API) ownerOf(p int) string {
	if cl := a.cluster(); cl != nil {
		return cl.Placement.Owner(p)
	}
	return a.Info.Name
}

// clusterView is GET /api/v1/cluster on a clustered node.
func (a *API) clusterView(cl *Cluster) admin.Cluster {
	var c admin.Cluster
	for _, m := range cl.Membership.Members() {
		mem := memberOut(m)
		if m.Meta.Started > 0 && (m.State == cluster.StateAlive || m.State == cluster.StateSuspect) {
			mem.Uptime = time.Since(time.Unix(0, m.Meta.Started)).Round(time.Second).String()
		}
		c.Members = append(c.Members, mem)
	}
	members := cl.Membership.Members()
	for p, o := range cl.Placement.Owners() {
		c.Partitions = append(c.Partitions, admin.Partition{ID: p, Owner: o})
	}
	for _, sc := range cluster.StaticConflicts(len(c.Partitions), members) {
		c.Conflicts = append(c.Conflicts, admin.StaticConflict{Partition: sc.Partition, Owner: sc.Owner, Claimants: sc.Claimants})
	}
	return c
}

func memberOut(m cluster.Member) admin.Member {
	return admin.Member{Name: m.Name, Roles: roleNames(m.Meta.Roles), QueueMode: string(m.Meta.QueueMode), State: string(m.State),
		SMTP: m.Meta.SMTP, Admin: m.Meta.Admin, Version: m.Meta.Version}
}
