package guard

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/homing-mail/homing/mail"
	"github.com/homing-mail/homing/testkit/clock"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func addr(s string) netip.Addr { return netip.MustParseAddr(s) }

func TestNetworks(t *testing.T) {
	for _, c := range []struct {
		nets Networks
		addr netip.Addr
		want string
	}{
		{Networks{}, addr("192.0.2.77"), "192.0.2.0/24"},
		{Networks{}, addr("::ffff:192.0.2.77"), "192.0.2.0/24"},
		{Networks{}, addr("2001:db8:1:2:3:4:5:6"), "2001:db8:1:2::/64"},
		{Networks{}, addr("fe80::1%eth0"), "fe80::/64"},
		{Networks{IPv4: 32, IPv6: 128}, addr("192.0.2.77"), "192.0.2.77/32"},
		{Networks{IPv4: 16, IPv6: 48}, addr("2001:db8:1:2::9"), "2001:db8:1::/48"},
		{Networks{IPv4: 16}, addr("10.1.2.3"), "10.1.0.0/16"},
		{Networks{IPv4: 40, IPv6: 200}, addr("10.1.2.3"), "10.1.2.0/24"}, // out of range: defaults
		{Networks{}, netip.Addr{}, "invalid Prefix"},
	} {
		if got := c.nets.Of(c.addr).String(); got != c.want {
			t.Errorf("%+v.Of(%v) = %s, want %s", c.nets, c.addr, got, c.want)
		}
	}
}

// budgetOp is one step of a budget scenario.
type budgetOp struct {
	advance time.Duration
	op      string // "reserve", "fail", "refund", "record"
	key     string
	ok      bool          // reserve: admitted
	retry   time.Duration // reserve refused: RetryAfter
	n       int           // fail, record: failures after it
}

func TestBudget(t *testing.T) {
	for _, c := range []struct {
		name  string
		limit int
		ops   []budgetOp
	}{
		{"failures up to the limit, then refused until the oldest leaves the window", 2, []budgetOp{
			{op: "reserve", key: "a", ok: true}, {op: "fail", key: "a", n: 1},
			{advance: time.Minute, op: "reserve", key: "a", ok: true}, {op: "fail", key: "a", n: 2},
			{op: "reserve", key: "a", retry: 14 * time.Minute},
			{op: "reserve", key: "b", ok: true}, // another key has its own budget
			{advance: 14 * time.Minute, op: "reserve", key: "a", ok: true}, {op: "fail", key: "a", n: 2},
		}},
		{"a refund gives the failure back", 1, []budgetOp{
			{op: "reserve", key: "a", ok: true}, {op: "refund", key: "a"},
			{op: "reserve", key: "a", ok: true}, {op: "refund", key: "a"},
			{op: "reserve", key: "a", ok: true}, {op: "fail", key: "a", n: 1},
			{op: "reserve", key: "a", retry: 15 * time.Minute},
		}},
		{"checks in progress count before they end", 2, []budgetOp{
			{op: "reserve", key: "a", ok: true}, {op: "reserve", key: "a", ok: true},
			{op: "reserve", key: "a", retry: time.Second},
		}},
		{"recorded failures count without a reservation", 3, []budgetOp{
			{op: "record", key: "a", n: 1}, {op: "record", key: "a", n: 2}, {op: "record", key: "a", n: 3},
			{op: "record", key: "a", n: 3}, // at most limit times are kept
			{op: "reserve", key: "a", retry: 15 * time.Minute},
			{advance: 15 * time.Minute, op: "reserve", key: "a", ok: true},
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			clk := clock.New(time.Time{})
			b := NewBudget(c.limit, 15*time.Minute, 100, clk.Now)
			open := map[string][]*Reservation{}
			for i, op := range c.ops {
				clk.Advance(op.advance)
				switch op.op {
				case "reserve":
					r, err := b.Reserve(op.key)
					var ref *Refusal
					switch {
					case op.ok && err != nil:
						t.Fatalf("step %d: Reserve(%s) = %v, want admitted", i, op.key, err)
					case !op.ok && (!errors.As(err, &ref) || !errors.Is(err, ErrThrottled) || ref.RetryAfter != op.retry):
						t.Fatalf("step %d: Reserve(%s) = %v, want ErrThrottled retry after %v", i, op.key, err, op.retry)
					case !op.ok && !mail.IsTemporary(err):
						t.Fatalf("step %d: a refusal must be temporary", i)
					}
					if r != nil {
						open[op.key] = append(open[op.key], r)
					}
				case "fail", "refund":
					rs := open[op.key]
					r := rs[0]
					open[op.key] = rs[1:]
					if op.op == "refund" {
						r.Refund()
						break
					}
					if n := r.Fail(); n != op.n {
						t.Fatalf("step %d: Fail = %d failures, want %d", i, n, op.n)
					}
					if n := r.Fail(); n != op.n {
						t.Fatalf("step %d: a second Fail counted again: %d", i, n)
					}
				case "record":
					if n := b.Record(op.key); n != op.n {
						t.Fatalf("step %d: Record = %d, want %d", i, n, op.n)
					}
				}
			}
		})
	}
}

// 50 parallel reservations against a limit of 10: exactly 10 are admitted
// while none has ended, whatever the interleaving.
func TestBudgetReservesBeforeTheCheck(t *testing.T) {
	b := NewBudget(10, time.Minute, 100, nil)
	var admitted, refused atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			if _, err := b.Reserve("net"); err == nil {
				admitted.Add(1)
			} else if errors.Is(err, ErrThrottled) {
				refused.Add(1)
			}
		}()
	}
	close(start)
	wg.Wait()
	if admitted.Load() != 10 || refused.Load() != 40 {
		t.Fatalf("admitted %d, refused %d; want 10 and 40", admitted.Load(), refused.Load())
	}
}

// The tables stay within MaxKeys whatever the number of keys; expired keys
// go first and keys with checks in progress are never dropped.
func TestBudgetMemoryIsBounded(t *testing.T) {
	clk := clock.New(time.Time{})
	b := NewBudget(3, time.Minute, 100, clk.Now)
	held, err := b.Reserve("in-progress")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10000 {
		b.Record(fmt.Sprint("k", i))
	}
	if n := b.Len(); n > 100 {
		t.Fatalf("%d keys tracked, want at most 100", n)
	}
	if b.Evicted() == 0 {
		t.Fatal("no key was evicted")
	}
	if n := held.Fail(); n != 1 {
		t.Fatalf("the key with a check in progress lost its state: Fail = %d", n)
	}
	clk.Advance(time.Minute)
	evicted := b.Evicted()
	for i := range 100 {
		b.Record(fmt.Sprint("fresh", i))
	}
	if b.Evicted() != evicted {
		t.Fatalf("live keys were evicted while expired ones could go (%d -> %d)", evicted, b.Evicted())
	}
	clk.Advance(time.Minute)
	if n := b.Len(); n != 0 {
		t.Fatalf("%d keys tracked after every failure left the window", n)
	}
}

func TestGate(t *testing.T) {
	g := NewGate(2, 50*time.Millisecond)
	r1, err1 := g.Enter(context.Background())
	r2, err2 := g.Enter(context.Background())
	if err1 != nil || err2 != nil || g.InUse() != 2 {
		t.Fatalf("entering a free gate: %v, %v (in use %d)", err1, err2, g.InUse())
	}
	start := time.Now()
	_, err := g.Enter(context.Background())
	var ref *Refusal
	if !errors.As(err, &ref) || !errors.Is(err, ErrBusy) || ref.RetryAfter != time.Second {
		t.Fatalf("full gate: %v, want ErrBusy", err)
	}
	if d := time.Since(start); d < 50*time.Millisecond || d > 5*time.Second {
		t.Fatalf("refused after %v, want after the 50ms wait", d)
	}
	// A waiter gets the slot as soon as it is released.
	got := make(chan error, 1)
	slow := NewGate(1, time.Minute)
	rs, _ := slow.Enter(context.Background())
	go func() {
		r, err := slow.Enter(context.Background())
		if err == nil {
			r()
		}
		got <- err
	}()
	rs()
	if err := <-got; err != nil {
		t.Fatalf("waiter: %v", err)
	}
	// A cancelled context ends the wait with its error.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := g.Enter(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled wait: %v", err)
	}
	r1()
	r1() // releasing twice frees one slot only
	if g.InUse() != 1 {
		t.Fatalf("in use %d after one release, want 1", g.InUse())
	}
	r2()
	if g.InUse() != 0 {
		t.Fatalf("in use %d after both releases", g.InUse())
	}
}
