package control

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

	"github.com/homing-mail/homing/actors"
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
type introspectActor struct{ a *API }

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
		v, err := a.a.introspectLocal(cctx, m)
		reply := &pb.IntrospectReply{}
		if err == nil {
			reply.Json, err = json.Marshal(v)
		}
		reply.Error = actors.WireError(err)
		if sender != nil {
			root.Send(sender, reply)
		}
	}()
}

// introspectLocal answers one question about this node.
func (a *API) introspectLocal(ctx context.Context, m *pb.Introspect) (any, error) {
	switch m.Kind {
	case "node":
		return a.nodeInfo(ctx), nil
	case "queue":
		return a.localQueue(ctx)
	case "journey":
		return a.localJourney(m.Id), nil
	case "journey-search":
		var q admin.JourneyQuery
		if err := json.Unmarshal(m.Json, &q); err != nil {
			return nil, err
		}
		return a.localFind(q)
	case "history":
		return a.localHistory(), nil
	case "log":
		var q admin.LogQuery
		if err := json.Unmarshal(m.Json, &q); err != nil {
			return nil, err
		}
		return a.localLog(q), nil
	case "forget":
		a.System.Directory().Forget(m.Id)
		return nil, nil
	case "queue-action":
		return nil, a.QueueAction(ctx, m.Id, m.Action)
	case "partition-move":
		return nil, a.adoptPartition(m.Id, m.Action)
	case "settings":
		var u admin.SettingsUpdate
		if err := json.Unmarshal(m.Json, &u); err != nil {
			return nil, err
		}
		return a.UpdateSettings(ctx, u)
	}
	return nil, fmt.Errorf("%w: unknown question %q", hmail.ErrInvalid, m.Kind)
}

// StartIntrospect spawns the introspect actor, which answers the other
// members' questions about this node (clustered nodes).
func (a *API) StartIntrospect() error {
	_, err := a.System.ActorSystem().Root.SpawnNamed(actor.PropsFromProducer(func() actor.Actor {
		return &introspectActor{a: a}
	}), "introspect")
	return err
}

// ask puts a question to another member and decodes its JSON answer.
func (a *API) ask(ctx context.Context, m cluster.Member, q *pb.Introspect, out any) error {
	timeout := 5 * time.Second
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < timeout {
		timeout = time.Until(dl)
	}
	res, err := a.System.ActorSystem().Root.RequestFuture(actor.NewPID(m.Meta.Channel, "introspect"), q, timeout).Result()
	if err != nil {
		return fmt.Errorf("%w: %s did not answer: %v", hmail.ErrUnavailable, m.Name, err)
	}
	r, ok := res.(*pb.IntrospectReply)
	if !ok {
		return fmt.Errorf("%w: %s: unexpected answer %T", hmail.ErrUnavailable, m.Name, res)
	}
	if err := actors.ErrorFromWire(r.Error); err != nil {
		return fmt.Errorf("%s: %w", m.Name, err)
	}
	if out == nil || len(r.Json) == 0 {
		return nil
	}
	return json.Unmarshal(r.Json, out)
}

// others returns the live members other than this node.
func (a *API) others() []cluster.Member {
	return a.members(func(m cluster.Member) bool { return !m.Self && m.State.Live() && m.Meta.Channel != "" })
}

// nodeInfo describes this node.
func (a *API) nodeInfo(ctx context.Context) admin.NodeInfo {
	st, _ := a.Stats(ctx)
	info := admin.NodeInfo{
		Member: admin.Member{Name: a.Info.Name, Roles: roleNames(a.Info.Roles), QueueMode: string(a.Runtime.QueueMode()), State: "alive",
			SMTP: a.Addrs().SMTP, Admin: a.Addrs().Admin, Version: Version,
			Uptime: time.Since(a.Info.Started).Round(time.Second).String()},
		Actors:       a.System.Stats().Active(),
		Activations:  a.System.Stats().Activations.Load(),
		Passivations: a.System.Stats().Passivations.Load(),
		Stats:        st,
		Queue:        admin.QueueSummary{ByDomain: map[string]int{}},
		Stores:       a.stores(),
	}
	if ps, err := a.Partitions(ctx); err == nil {
		info.Partitions = ps
	}
	if envs, err := a.System.Queue(ctx); err == nil {
		q := &info.Queue
		for _, e := range envs {
			q.Total++
			switch out := queueOut(e); out.State {
			case "damaged":
				q.Damaged++
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

func (a *API) localQueue(ctx context.Context) ([]admin.QueueEntry, error) {
	q, err := a.Queue(ctx)
	for i := range q {
		q[i].Node = a.Info.Name
	}
	return q, err
}

func (a *API) localJourney(id string) []admin.JourneyEvent {
	var out []admin.JourneyEvent
	for _, e := range a.System.Stats().Journal.Events(id) {
		out = append(out, admin.JourneyEvent{Time: e.Time, Node: a.Info.Name, ID: e.ID, Event: e.Event, Detail: e.Detail})
	}
	return out
}

func (a *API) Nodes(ctx context.Context) ([]admin.NodeInfo, error) {
	out := []admin.NodeInfo{a.nodeInfo(ctx)}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, m := range a.members(func(m cluster.Member) bool { return !m.Self }) {
		if !m.State.Live() || m.Meta.Channel == "" {
			out = append(out, admin.NodeInfo{Member: memberOut(m), Error: "not reachable: " + string(m.State)})
			continue
		}
		wg.Add(1)
		go func(m cluster.Member) {
			defer wg.Done()
			var info admin.NodeInfo
			if err := a.ask(ctx, m, &pb.Introspect{Kind: "node"}, &info); err != nil {
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

func (a *API) ClusterQueue(ctx context.Context) ([]admin.QueueEntry, error) {
	out, err := a.localQueue(ctx)
	if err != nil {
		return nil, err
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	var errs []error
	for _, m := range a.others() {
		wg.Add(1)
		go func(m cluster.Member) {
			defer wg.Done()
			var q []admin.QueueEntry
			err := a.ask(ctx, m, &pb.Introspect{Kind: "queue"}, &q)
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
		a.Logger.Warn("cluster queue listing incomplete", "err", errors.Join(errs...))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

func (a *API) Journey(ctx context.Context, id string) ([]admin.JourneyEvent, error) {
	if id == "" {
		return nil, &admin.Error{Status: http.StatusBadRequest, Message: "a queue id is required"}
	}
	out := a.localJourney(id)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, m := range a.others() {
		wg.Add(1)
		go func(m cluster.Member) {
			defer wg.Done()
			var ev []admin.JourneyEvent
			if err := a.ask(ctx, m, &pb.Introspect{Kind: "journey", Id: id}, &ev); err != nil {
				a.Logger.Warn("journey incomplete", "member", m.Name, "err", err)
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
func (a *API) member(name string) (cluster.Member, error) {
	found := a.members(func(m cluster.Member) bool { return m.Name == name })
	switch {
	case len(found) == 0:
		return cluster.Member{}, &admin.Error{Status: http.StatusNotFound, Message: fmt.Sprintf("no node named %s", name)}
	case !found[0].State.Live():
		return found[0], &admin.Error{Status: http.StatusServiceUnavailable, Message: fmt.Sprintf("node %s is %s", name, found[0].State)}
	}
	return found[0], nil
}

func (a *API) NodeQueueAction(ctx context.Context, node, id, action string) error {
	if node == "" || node == a.Info.Name {
		return a.QueueAction(ctx, id, action)
	}
	m, err := a.member(node)
	if err != nil {
		return err
	}
	return a.ask(ctx, m, &pb.Introspect{Kind: "queue-action", Id: id, Action: action}, nil)
}

func (a *API) NodeUpdateSettings(ctx context.Context, node string, u admin.SettingsUpdate) (admin.Settings, error) {
	if node == "" || node == a.Info.Name {
		return a.UpdateSettings(ctx, u)
	}
	m, err := a.member(node)
	if err != nil {
		return admin.Settings{}, err
	}
	b, _ := json.Marshal(u)
	var s admin.Settings
	err = a.ask(ctx, m, &pb.Introspect{Kind: "settings", Json: b}, &s)
	return s, err
}
