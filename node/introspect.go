package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/homing-mail/homing/actors/pb"
	"github.com/homing-mail/homing/admin"
	"github.com/homing-mail/homing/cluster"
	hmail "github.com/homing-mail/homing/mail"
)

// Cluster-wide introspection: any node answers for the whole cluster by
// asking every live member's "introspect" actor over the cluster channel
// (authenticated: only members can ask). Each member answers with the admin
// API's JSON for itself.

// introspectActor answers other members' questions about this node.
type introspectActor struct{ n *Node }

func (a *introspectActor) Receive(ctx actor.Context) {
	m, ok := ctx.Message().(*pb.Introspect)
	if !ok {
		return
	}
	// Answer off the actor: some answers wait on other actors.
	sender := ctx.Sender()
	root := ctx.ActorSystem().Root
	go func() {
		cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		v, err := a.n.introspectLocal(cctx, m)
		reply := &pb.IntrospectReply{}
		if err != nil {
			reply.Error = &pb.Error{Kind: pb.Error_UNAVAILABLE, Text: err.Error()}
			if errors.Is(err, hmail.ErrNotFound) {
				reply.Error.Kind = pb.Error_NOT_FOUND
			}
		} else if reply.Json, err = json.Marshal(v); err != nil {
			reply.Error = &pb.Error{Kind: pb.Error_UNAVAILABLE, Text: err.Error()}
		}
		if sender != nil {
			root.Send(sender, reply)
		}
	}()
}

// introspectLocal answers one question about this node.
func (n *Node) introspectLocal(ctx context.Context, m *pb.Introspect) (any, error) {
	api := apiImpl{n}
	switch m.Kind {
	case "node":
		return n.nodeInfo(ctx), nil
	case "queue":
		return n.localQueue(ctx)
	case "journey":
		return n.localJourney(m.Id), nil
	case "queue-action":
		return nil, api.QueueAction(ctx, m.Id, m.Action)
	case "settings":
		var u admin.SettingsUpdate
		if err := json.Unmarshal(m.Json, &u); err != nil {
			return nil, err
		}
		return api.UpdateSettings(ctx, u)
	}
	return nil, fmt.Errorf("unknown question %q", m.Kind)
}

// startIntrospect spawns the introspect actor (clustered nodes).
func (n *Node) startIntrospect() error {
	_, err := n.actors.ActorSystem().Root.SpawnNamed(actor.PropsFromProducer(func() actor.Actor {
		return &introspectActor{n: n}
	}), "introspect")
	return err
}

// ask puts a question to another member and decodes its JSON answer.
func (n *Node) ask(ctx context.Context, m cluster.Member, q *pb.Introspect, out any) error {
	timeout := 5 * time.Second
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < timeout {
		timeout = time.Until(dl)
	}
	res, err := n.actors.ActorSystem().Root.RequestFuture(actor.NewPID(m.Meta.Channel, "introspect"), q, timeout).Result()
	if err != nil {
		return fmt.Errorf("%s did not answer: %w", m.Name, err)
	}
	r, ok := res.(*pb.IntrospectReply)
	if !ok {
		return fmt.Errorf("%s: unexpected answer %T", m.Name, res)
	}
	if r.Error != nil && r.Error.Kind != pb.Error_NONE {
		if r.Error.Kind == pb.Error_NOT_FOUND {
			return fmt.Errorf("%w: %s", hmail.ErrNotFound, r.Error.Text)
		}
		return fmt.Errorf("%s: %s", m.Name, r.Error.Text)
	}
	if out == nil || len(r.Json) == 0 {
		return nil
	}
	return json.Unmarshal(r.Json, out)
}

// others returns the live members other than this node.
func (n *Node) others() []cluster.Member {
	return n.members(func(m cluster.Member) bool { return !m.Self && m.State.Live() && m.Meta.Channel != "" })
}

// nodeInfo describes this node.
func (n *Node) nodeInfo(ctx context.Context) admin.NodeInfo {
	api := apiImpl{n}
	st, _ := api.Stats(ctx)
	info := admin.NodeInfo{
		Member: admin.Member{Name: n.cfg.Name, Roles: n.cfg.Roles, QueueMode: n.mode(), State: "alive",
			SMTP: n.SMTPAddr(), Admin: n.AdminAddr(), Version: Version,
			Uptime: time.Since(n.started).Round(time.Second).String()},
		Actors:       n.actors.Stats().Active(),
		Activations:  n.actors.Stats().Activations.Load(),
		Passivations: n.actors.Stats().Passivations.Load(),
		Stats:        st,
		Queue:        admin.QueueSummary{ByDomain: map[string]int{}},
	}
	if ps, err := api.Partitions(ctx); err == nil {
		info.Partitions = ps
	}
	if envs, err := n.actors.Queue(ctx); err == nil {
		q := &info.Queue
		for _, e := range envs {
			q.Total++
			switch out := queueOut(e); out.State {
			case "held":
				q.Held++
			case "deferred":
				q.Deferred++
			default:
				q.Active++
			}
			if q.Oldest == nil || e.Received.Before(*q.Oldest) {
				t := e.Received
				q.Oldest = &t
			}
			for _, r := range e.Open() {
				d := hmail.Domain(r.Addr)
				if r.Local() {
					d = "(local)"
				}
				q.ByDomain[d]++
			}
		}
	}
	return info
}

func (n *Node) localQueue(ctx context.Context) ([]admin.QueueEntry, error) {
	q, err := apiImpl{n}.Queue(ctx)
	for i := range q {
		q[i].Node = n.cfg.Name
	}
	return q, err
}

func (n *Node) localJourney(id string) []admin.JourneyEvent {
	var out []admin.JourneyEvent
	for _, e := range n.actors.Stats().Journal.Events(id) {
		out = append(out, admin.JourneyEvent{Time: e.Time, Node: n.cfg.Name, ID: e.ID, Event: e.Event, Detail: e.Detail})
	}
	return out
}

func (a apiImpl) Nodes(ctx context.Context) ([]admin.NodeInfo, error) {
	n := a.n
	out := []admin.NodeInfo{n.nodeInfo(ctx)}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, m := range n.members(func(m cluster.Member) bool { return !m.Self }) {
		if !m.State.Live() || m.Meta.Channel == "" {
			out = append(out, admin.NodeInfo{Member: memberOut(m), Error: "not reachable: " + string(m.State)})
			continue
		}
		wg.Add(1)
		go func(m cluster.Member) {
			defer wg.Done()
			var info admin.NodeInfo
			if err := n.ask(ctx, m, &pb.Introspect{Kind: "node"}, &info); err != nil {
				info = admin.NodeInfo{Member: memberOut(m), Error: err.Error()}
			}
			info.State = string(m.State) // the cluster's view, not the node's own
			mu.Lock()
			out = append(out, info)
			mu.Unlock()
		}(m)
	}
	wg.Wait()
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func memberOut(m cluster.Member) admin.Member {
	return admin.Member{Name: m.Name, Roles: m.Meta.Roles, QueueMode: m.Meta.QueueMode, State: string(m.State),
		SMTP: m.Meta.SMTP, Admin: m.Meta.Admin, Version: m.Meta.Version}
}

func (a apiImpl) ClusterQueue(ctx context.Context) ([]admin.QueueEntry, error) {
	n := a.n
	out, err := n.localQueue(ctx)
	if err != nil {
		return nil, err
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	var errs []error
	for _, m := range n.others() {
		wg.Add(1)
		go func(m cluster.Member) {
			defer wg.Done()
			var q []admin.QueueEntry
			err := n.ask(ctx, m, &pb.Introspect{Kind: "queue"}, &q)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			out = append(out, q...)
		}(m)
	}
	wg.Wait()
	if len(errs) > 0 {
		n.log.Warn("cluster queue listing incomplete", "err", errors.Join(errs...))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

func (a apiImpl) Journey(ctx context.Context, id string) ([]admin.JourneyEvent, error) {
	n := a.n
	if id == "" {
		return nil, &admin.Error{Status: http.StatusBadRequest, Message: "a queue id is required"}
	}
	out := n.localJourney(id)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, m := range n.others() {
		wg.Add(1)
		go func(m cluster.Member) {
			defer wg.Done()
			var ev []admin.JourneyEvent
			if err := n.ask(ctx, m, &pb.Introspect{Kind: "journey", Id: id}, &ev); err != nil {
				n.log.Warn("journey incomplete", "member", m.Name, "err", err)
				return
			}
			mu.Lock()
			out = append(out, ev...)
			mu.Unlock()
		}(m)
	}
	wg.Wait()
	sort.SliceStable(out, func(i, j int) bool { return out[i].Time.Before(out[j].Time) })
	if len(out) == 0 {
		return nil, fmt.Errorf("message %s: %w (no node remembers it)", id, hmail.ErrNotFound)
	}
	return out, nil
}

// member finds a live member by name.
func (n *Node) member(name string) (cluster.Member, error) {
	found := n.members(func(m cluster.Member) bool { return m.Name == name })
	switch {
	case len(found) == 0:
		return cluster.Member{}, &admin.Error{Status: http.StatusNotFound, Message: fmt.Sprintf("no node named %s", name)}
	case !found[0].State.Live():
		return found[0], &admin.Error{Status: http.StatusServiceUnavailable, Message: fmt.Sprintf("node %s is %s", name, found[0].State)}
	}
	return found[0], nil
}

func (a apiImpl) NodeQueueAction(ctx context.Context, node, id, action string) error {
	if node == "" || node == a.n.cfg.Name {
		return a.QueueAction(ctx, id, action)
	}
	m, err := a.n.member(node)
	if err != nil {
		return err
	}
	return a.n.ask(ctx, m, &pb.Introspect{Kind: "queue-action", Id: id, Action: action}, nil)
}

func (a apiImpl) NodeUpdateSettings(ctx context.Context, node string, u admin.SettingsUpdate) (admin.Settings, error) {
	if node == "" || node == a.n.cfg.Name {
		return a.UpdateSettings(ctx, u)
	}
	m, err := a.n.member(node)
	if err != nil {
		return admin.Settings{}, err
	}
	b, _ := json.Marshal(u)
	var s admin.Settings
	err = a.n.ask(ctx, m, &pb.Introspect{Kind: "settings", Json: b}, &s)
	return s, err
}
