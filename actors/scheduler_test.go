package actors

import (
	"slices"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// schedule asks the probe to pass w to its scheduler.
type schedule struct{ w *wake }

// woken is a wake-up the scheduler sent, and when it arrived.
type woken struct {
	id string
	at time.Time
	on time.Time
}

// schedProbe is the scheduler's parent (as the queue actor is): it spawns
// the scheduler, passes schedule requests to it and reports the wake-ups
// it sends back.
type schedProbe struct {
	stats *Stats
	sched *actor.PID
	out   chan<- woken
}

func (p *schedProbe) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		p.sched = ctx.Spawn(actor.PropsFromProducer(func() actor.Actor {
			return &schedulerActor{stats: p.stats, now: time.Now}
		}))
	case *schedule:
		ctx.Send(p.sched, m.w)
	case *wake:
		p.out <- woken{id: m.id, at: m.at, on: time.Now()}
	}
}

func startScheduler(t *testing.T) (send func(id string, at time.Time), out <-chan woken, stats *Stats) {
	t.Helper()
	ch := make(chan woken, 16)
	stats = NewStats(nil)
	system := newActorSystem(testLogger(t))
	root := system.Root
	pid := root.Spawn(actor.PropsFromProducer(func() actor.Actor { return &schedProbe{stats: stats, out: ch} }))
	t.Cleanup(func() {
		_ = root.PoisonFuture(pid).Wait()
		system.Shutdown()
	})
	return func(id string, at time.Time) { root.Send(pid, &schedule{w: &wake{id: id, at: at}}) }, ch, stats
}

// Wake-ups come in time order, none before its time; one already due comes
// at once.
func TestSchedulerWakesInTimeOrder(t *testing.T) {
	send, out, stats := startScheduler(t)
	now := time.Now()
	send("c", now.Add(60*time.Millisecond))
	send("a", now.Add(20*time.Millisecond))
	send("b", now.Add(40*time.Millisecond))
	send("past", now.Add(-time.Second))

	var order []string
	for range 4 {
		w := receive(t, out, "a wake-up")
		order = append(order, w.id)
		if w.on.Before(w.at) {
			t.Errorf("%s woke at %v, %v before its time", w.id, w.on, w.at.Sub(w.on))
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
	send, out, _ := startScheduler(t)
	now := time.Now()
	send("late", now.Add(time.Hour))
	send("soon", now.Add(20*time.Millisecond))
	if w := receive(t, out, "the earlier wake-up (not held up by the one an hour away)"); w.id != "soon" {
		t.Fatalf("first wake-up %q, want soon", w.id)
	}
	// And again after a fire: the timer is re-armed for what comes next.
	send("sooner", time.Now().Add(10*time.Millisecond))
	if w := receive(t, out, "a wake-up scheduled after the first fired"); w.id != "sooner" {
		t.Fatalf("wake-up %q, want sooner", w.id)
	}
	select {
	case w := <-out:
		t.Errorf("unexpected wake-up %q at %v", w.id, w.on)
	default:
	}
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
