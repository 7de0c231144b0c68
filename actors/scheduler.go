package actors

import (
	"container/heap"
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// tick is the scheduler's own timer firing.
type tick struct{}

// schedulerActor wakes the queue when deferred messages are due. It keeps
// one min-heap of (time, id) and one timer for the earliest entry, so a
// queue of a million deferred messages costs one timer.
type schedulerActor struct {
	stats *Stats
	now   func() time.Time

	items  wakeHeap
	timer  *time.Timer
	armed  time.Time
	system *actor.ActorSystem
	self   *actor.PID
}

func (s *schedulerActor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		s.stats.started(KindScheduler)
		s.system, s.self = ctx.ActorSystem(), ctx.Self()
	case *actor.Stopped:
		if s.timer != nil {
			s.timer.Stop()
		}
		s.stats.stopped(KindScheduler)
	case *wake:
		heap.Push(&s.items, m)
		s.fire(ctx)
	case *tick:
		s.armed = time.Time{}
		s.fire(ctx)
	}
}

// fire sends every due wake-up to the parent (the queue) and arms the timer
// for the next one.
func (s *schedulerActor) fire(ctx actor.Context) {
	now := s.now()
	for len(s.items) > 0 && !s.items[0].at.After(now) {
		ctx.Send(ctx.Parent(), heap.Pop(&s.items))
	}
	if len(s.items) == 0 {
		return
	}
	next := s.items[0].at
	if !s.armed.IsZero() && !s.armed.After(next) {
		return
	}
	if s.timer != nil {
		s.timer.Stop()
	}
	s.armed = next
	system, self := s.system, s.self
	s.timer = time.AfterFunc(next.Sub(now), func() { system.Root.Send(self, &tick{}) })
}

type wakeHeap []*wake

func (h wakeHeap) Len() int           { return len(h) }
func (h wakeHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h wakeHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *wakeHeap) Push(x any)        { *h = append(*h, x.(*wake)) }
func (h *wakeHeap) Pop() any {
	old := *h
	n := len(old)
	x := old[n-1]
	old[n-1] = nil
	*h = old[:n-1]
	return x
}
