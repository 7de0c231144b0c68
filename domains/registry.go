package domains

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/homing-mail/homing/actors/pb"
	"github.com/homing-mail/homing/cluster"
	"github.com/homing-mail/homing/mail"
)

// Membership is what the Registry needs of the cluster's membership.
// *cluster.Membership satisfies it.
type Membership interface {
	Members() []cluster.Member
	UpdateMeta(func(*cluster.Meta)) error
}

// ActorName is the name of the actor members address
// (actor.NewPID(channel address, ActorName)).
const ActorName = "domains"

// confirmTimeout bounds the wait for a member's confirmation of a
// removal.
const confirmTimeout = 5 * time.Second

// Registry is one node's view of the cluster's local domains. Safe for
// concurrent use.
type Registry struct {
	st      store
	log     *slog.Logger
	now     func() time.Time
	changed func(local []string)

	mu      sync.Mutex
	set     Set
	root    *actor.RootContext // set by Start
	members Membership         // set by Join; nil on a single node
}

// Open loads the set saved in dataDir, or seeds one from seed
// (--domains) when there is none. changed is told the local domains after
// every change (not for the first set); it must not block. saved reports
// whether a saved set was found.
func Open(dataDir string, seed []string, log *slog.Logger, changed func(local []string)) (r *Registry, saved bool, err error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if changed == nil {
		changed = func([]string) {}
	}
	r = &Registry{st: store{file: fileIn(dataDir)}, log: log, now: time.Now, changed: changed}
	if r.set, saved, err = r.st.load(); err != nil {
		return nil, false, err
	}
	if !saved {
		if r.set, err = seeded(seed); err != nil {
			return nil, false, err
		}
	}
	return r, saved, nil
}

// Current returns the set in force.
func (r *Registry) Current() Set {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.set.clone()
}

// Local lists the domains mail is accepted for here now.
func (r *Registry) Local() []string { return r.Current().Local() }

// Start spawns the actor members talk to (clustered nodes).
func (r *Registry) Start(system *actor.ActorSystem) error {
	if _, err := system.Root.SpawnNamed(actor.PropsFromProducer(func() actor.Actor {
		return &registryActor{r: r}
	}), ActorName); err != nil {
		return fmt.Errorf("domains actor: %w", err)
	}
	r.mu.Lock()
	r.root = system.Root
	r.mu.Unlock()
	return nil
}

// Join makes changes reach the members, once the node has joined.
func (r *Registry) Join(m Membership) {
	r.mu.Lock()
	r.members = m
	r.mu.Unlock()
}

// registryActor answers members: it hands out the set and takes newer
// ones, answering with the version in force.
type registryActor struct{ r *Registry }

func (a *registryActor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *pb.GetDomains:
		s := a.r.Current()
		b, _ := json.Marshal(s)
		ctx.Respond(&pb.Domains{Version: s.Version, Json: b})
	case *pb.Domains:
		var s Set
		if err := json.Unmarshal(m.Json, &s); err != nil {
			a.r.log.Error("domains from a member refused", "version", m.Version, "err", err)
		} else if err := a.r.adopt(s); err != nil {
			a.r.log.Error("domains from a member not saved", "version", m.Version, "err", err)
		}
		ctx.Respond(&pb.DomainsAck{Version: a.r.Current().Version})
	}
}

// adopt installs s if it is newer than the set in force, saves it, tells
// the node and gossips its version.
func (r *Registry) adopt(s Set) error {
	r.mu.Lock()
	if s.Version <= r.set.Version {
		r.mu.Unlock()
		return nil
	}
	if err := r.st.save(s); err != nil {
		r.mu.Unlock()
		return err
	}
	r.set = s.clone()
	members := r.members
	r.changed(s.Local()) // under the lock: the node hears of the sets in order
	r.mu.Unlock()
	r.log.Info("local domains changed", "version", s.Version, "domains", strings.Join(s.Local(), ","))
	if members != nil {
		return members.UpdateMeta(func(m *cluster.Meta) { m.DomainsVersion = s.Version })
	}
	return nil
}

// peers are the members other than this node that may take mail now
// (alive or suspect) and have a channel.
func (r *Registry) peers() (*actor.RootContext, []cluster.Member) {
	r.mu.Lock()
	root, members := r.root, r.members
	r.mu.Unlock()
	if root == nil || members == nil {
		return nil, nil
	}
	var out []cluster.Member
	for _, m := range members.Members() {
		if !m.Self && m.State.Live() && m.Meta.Channel != "" {
			out = append(out, m)
		}
	}
	return root, out
}

// push sends s to every peer and returns the names of those that did not
// confirm it (an older version in their answer, or no answer within
// confirmTimeout).
func (r *Registry) push(ctx context.Context, s Set) []string {
	root, peers := r.peers()
	if root == nil {
		return nil
	}
	b, _ := json.Marshal(s)
	var mu sync.Mutex
	var missing []string
	var wg sync.WaitGroup
	for _, m := range peers {
		wg.Add(1)
		go func(m cluster.Member) {
			defer wg.Done()
			timeout := confirmTimeout
			if dl, ok := ctx.Deadline(); ok && time.Until(dl) < timeout {
				timeout = max(time.Until(dl), time.Millisecond)
			}
			res, err := root.RequestFuture(actor.NewPID(m.Meta.Channel, ActorName), &pb.Domains{Version: s.Version, Json: b}, timeout).Result()
			ack, ok := res.(*pb.DomainsAck)
			if err != nil || !ok || ack.Version < s.Version {
				mu.Lock()
				missing = append(missing, m.Name)
				mu.Unlock()
			}
		}(m)
	}
	wg.Wait()
	sort.Strings(missing)
	return missing
}

// Sync runs after every membership change: when a member gossips a newer
// set than this node's, fetch it (on a goroutine of its own).
func (r *Registry) Sync() {
	root, peers := r.peers()
	if root == nil {
		return
	}
	cur := r.Current().Version
	var best cluster.Member
	for _, m := range peers {
		if m.Meta.DomainsVersion > cur && m.Meta.DomainsVersion > best.Meta.DomainsVersion {
			best = m
		}
	}
	if best.Name == "" {
		return
	}
	go func() {
		res, err := root.RequestFuture(actor.NewPID(best.Meta.Channel, ActorName), &pb.GetDomains{}, confirmTimeout).Result()
		d, ok := res.(*pb.Domains)
		if err != nil || !ok {
			r.log.Warn("fetching the local domains failed", "member", best.Name, "err", err)
			return
		}
		var s Set
		if err := json.Unmarshal(d.Json, &s); err != nil {
			r.log.Error("local domains from a member refused", "member", best.Name, "err", err)
			return
		}
		if err := r.adopt(s); err != nil {
			r.log.Error("local domains from a member not saved", "member", best.Name, "err", err)
		}
	}()
}

// change makes a new version of the set with edit applied, installs it
// here and pushes it to the members; it returns the members that did not
// confirm it. edit returns an error to change nothing.
func (r *Registry) change(ctx context.Context, edit func(*Set) error) (Set, []string, error) {
	s := r.Current()
	if err := edit(&s); err != nil {
		return Set{}, nil, err
	}
	s.Version = nextVersion(r.now(), s.Version)
	if err := r.adopt(s); err != nil {
		return Set{}, nil, err
	}
	return s, r.push(ctx, s), nil
}

// Add makes name a local domain on every member (again active if it was
// being removed). It fails with an error wrapping mail.ErrExists when it
// is local already, ErrBadDomain when it is no domain name.
func (r *Registry) Add(ctx context.Context, name string) (Domain, error) {
	d, err := Normalize(name)
	if err != nil {
		return Domain{}, err
	}
	_, missing, err := r.change(ctx, func(s *Set) error {
		switch i := s.find(d); {
		case i < 0:
			s.Domains = append(s.Domains, Domain{Name: d, State: Active})
		case s.Domains[i].State == Removing:
			s.Domains[i].State = Active
		default:
			return fmt.Errorf("domain %s: %w", d, mail.ErrExists)
		}
		return nil
	})
	if err != nil {
		return Domain{}, err
	}
	if len(missing) > 0 {
		// They fetch it when they see the version in gossip.
		r.log.Warn("domain added; members not confirmed yet", "domain", d, "members", strings.Join(missing, ","))
	}
	return Domain{Name: d, State: Active}, nil
}

// PendingError says that a removal waits for members' confirmation: the
// domain stays local everywhere until they confirm (temporary).
type PendingError struct {
	Domain  string
	Members []string
}

func (e *PendingError) Error() string {
	return fmt.Sprintf("the removal of %s waits for %s to confirm it; the domain stays local on every node until then: remove it again",
		e.Domain, strings.Join(e.Members, ", "))
}

// Temporary implements the taxonomy: ask again later.
func (e *PendingError) Temporary() bool { return true }

// Remove removes name from the local domains, in two steps: marked
// removing (still local) on every member, and removed once every live
// member confirmed that. A member that does not confirm is a
// *PendingError, with the domain left removing (local); calling Remove
// again goes on. An unknown domain is an error wrapping mail.ErrNotFound.
func (r *Registry) Remove(ctx context.Context, name string) error {
	d, err := Normalize(name)
	if err != nil {
		return err
	}
	_, missing, err := r.change(ctx, func(s *Set) error {
		i := s.find(d)
		if i < 0 {
			return fmt.Errorf("domain %s is not a local domain: %w", d, mail.ErrNotFound)
		}
		s.Domains[i].State = Removing
		return nil
	})
	if err != nil {
		return err
	}
	if len(missing) > 0 {
		return &PendingError{Domain: d, Members: missing}
	}
	_, missing, err = r.change(ctx, func(s *Set) error {
		i := s.find(d)
		if i < 0 || s.Domains[i].State != Removing {
			return fmt.Errorf("domain %s: changed meanwhile: %w", d, mail.ErrUnavailable)
		}
		s.Domains = append(s.Domains[:i], s.Domains[i+1:]...)
		return nil
	})
	if err == nil && len(missing) > 0 {
		r.log.Warn("domain removed; members not confirmed yet (they fetch the set from gossip)", "domain", d,
			"members", strings.Join(missing, ","))
	}
	return err
}
