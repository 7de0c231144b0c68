package actors

import (
	"slices"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/homing-mail/homing/testkit/probe"
	"github.com/homing-mail/homing/testkit/tlog"
)

// startScheduler spawns a scheduler as the child of a probe, which
// stands in for the queue actor: the scheduler sends its wake-ups to its
// parent. send asks the scheduler for a wake-up.
func startScheduler(t *testing.T) (send func(id string, at time.Time), queue *probe.Probe, stats *Stats) {
	t.Helper()
	stats = NewStats(nil)
	system := newActorSystem(tlog.New(t, "actors"))
	t.Cleanup(system.Shutdown) // after the probe, which stops the scheduler with it
	queue = probe.New(t, system)
	sched := queue.SpawnChild(actor.PropsFromProducer(func() actor.Actor {
		return &schedulerActor{stats: stats, now: time.Now}
	}))
	return func(id string, at time.Time) { system.Root.Send(sched, &wake{id: id, at: at}) }, queue, stats
}

// Wake-ups come in time order, none before its time; one already due comes
// at once.
func TestSchedulerWakesInTimeOrder(t *testing.T) {
	send, queue, stats := startScheduler(t)
	now := time.Now()
	send("c", now.Add(60*time.Millisecond))
	send("a", now.Add(20*time.Millisecond))
	send("b", now.Add(40*time.Millisecond))
	send("past", now.Add(-time.Second))

	var order []string
	for range 4 {
		d := probe.ExpectDelivery[*wake](queue, waitTimeout)
		w := d.Message.(*wake)
		order = append(order, w.id)
		if d.At.Before(w.at) {
			t.Errorf("%s woke at %v, %v before its time", w.id, d.At, w.at.Sub(d.At))
		}
	}
	if want := []string{"past", "a", "b", "c"}; !slices.Equal(order, want) {
		t.Errorf("wake-up order %v, want %v", order, want)
	}
	if got := stats.Active()[KindScheduler]; got != 1 {
		t.Errorf("schedulers alive = %d, want 1", got)
	}
}

// An earlier wake-up than the one the timer is armed for re-arms it: the
// earlier one does not wait for the later.
func TestSchedulerEarlierWakeRearms(t *testing.T) {
	send, queue, _ := startScheduler(t)
	now := time.Now()
	send("late", now.Add(time.Hour))
	send("soon", now.Add(20*time.Millisecond))
	// (Not held up by the one an hour away.)
	if w := probe.Expect[*wake](queue, waitTimeout); w.id != "soon" {
		t.Fatalf("first wake-up %q, want soon", w.id)
	}
	// And again after a fire: the timer is re-armed for what comes next.
	send("sooner", time.Now().Add(10*time.Millisecond))
	if w := probe.Expect[*wake](queue, waitTimeout); w.id != "sooner" {
		t.Fatalf("wake-up %q, want sooner", w.id)
	}
	queue.ExpectNothing(50 * time.Millisecond) // late is an hour away
}

// backoff doubles from MinBackoff up to MaxBackoff (RFC 5321 §4.5.4.1).
func TestBackoff(t *testing.T) {
	cfg := Config{MinBackoff: time.Minute, MaxBackoff: 5 * time.Minute}
	for attempts, want := range map[int]time.Duration{
		0: time.Minute, 1: time.Minute, 2: 2 * time.Minute, 3: 4 * time.Minute, 4: 5 * time.Minute, 40: 5 * time.Minute,
	} {
		if got := cfg.backoff(attempts); got != want {
			t.Errorf("backoff(%d) = %v, want %v", attempts, got, want)
		}
	}
}
