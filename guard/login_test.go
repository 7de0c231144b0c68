package guard

import (
	"context"
	"errors"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/homing-mail/homing/testkit/clock"
	"github.com/homing-mail/homing/testkit/wait"
)

// loginOp is one login attempt of a scenario and what it must meet.
type loginOp struct {
	advance time.Duration
	from    string // client address
	account string
	right   bool // the password is right
	want    string
	delay   time.Duration // "failed": the delay returned
}

const (
	admitted  = "admitted"
	failed    = "failed"
	throttled = "throttled"
)

func TestGuardLogins(t *testing.T) {
	cfg := Config{
		MaxFailuresPerNetwork: 6, MaxFailuresPerAccount: 3, FailureWindow: 15 * time.Minute,
		FailureDelay: time.Second, MaxFailureDelay: 3 * time.Second,
	}
	const (
		a1     = "192.0.2.10"    // network A
		a2     = "192.0.2.200"   // network A, another address
		b1     = "198.51.100.20" // network B
		v6     = "2001:db8:1:2::1"
		v6same = "2001:db8:1:2:ffff::9" // the same /64
	)
	for _, c := range []struct {
		name string
		ops  []loginOp
	}{
		{"wrong passwords from A: delayed, then refused from A, never from B", []loginOp{
			{from: a1, account: "owner", want: failed, delay: time.Second},
			{from: a2, account: "owner", want: failed, delay: 2 * time.Second},
			{from: a1, account: "Owner ", want: failed, delay: 3 * time.Second}, // capped; same account
			{from: a2, account: "owner", right: true, want: throttled},          // the network A budget of the account is used up
			{from: b1, account: "owner", right: true, want: admitted},           // the owner from B: at once
			{from: b1, account: "owner", want: failed, delay: time.Second},      // B's own count starts at 1
		}},
		{"the network budget covers every account from it", []loginOp{
			{from: a1, account: "u1", want: failed}, {from: a1, account: "u2", want: failed},
			{from: a1, account: "u3", want: failed}, {from: a1, account: "u4", want: failed},
			{from: a1, account: "u5", want: failed}, {from: a1, account: "u6", want: failed},
			{from: a2, account: "u7", right: true, want: throttled},
			{from: b1, account: "u7", right: true, want: admitted},
		}},
		{"the window slides", []loginOp{
			{from: a1, account: "owner", want: failed}, {from: a1, account: "owner", want: failed},
			{advance: 10 * time.Minute, from: a1, account: "owner", want: failed},
			{from: a1, account: "owner", right: true, want: throttled},
			{advance: 5 * time.Minute, from: a1, account: "owner", right: true, want: admitted},
		}},
		{"a success refunds its reservation", []loginOp{
			{from: a1, account: "owner", right: true, want: admitted}, {from: a1, account: "owner", right: true, want: admitted},
			{from: a1, account: "owner", right: true, want: admitted}, {from: a1, account: "owner", right: true, want: admitted},
			{from: a1, account: "owner", want: failed, delay: time.Second},
		}},
		{"IPv6 by /64", []loginOp{
			{from: v6, account: "owner", want: failed}, {from: v6same, account: "owner", want: failed},
			{from: v6, account: "owner", want: failed},
			{from: v6same, account: "owner", right: true, want: throttled},
			{from: "2001:db8:1:3::1", account: "owner", right: true, want: admitted},
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			clk := clock.New(time.Time{})
			cfg := cfg
			cfg.Now = clk.Now
			g := New(cfg)
			for i, op := range c.ops {
				clk.Advance(op.advance)
				a, err := g.Begin(context.Background(), netip.MustParseAddr(op.from), op.account)
				got, delay := admitted, time.Duration(0)
				switch {
				case errors.Is(err, ErrThrottled):
					got = throttled
				case err != nil:
					t.Fatalf("step %d: Begin: %v", i, err)
				case op.right:
					a.Succeeded()
				default:
					got, delay = failed, a.Failed()
				}
				if got != op.want {
					t.Fatalf("step %d (%s %s): %s, want %s", i, op.from, op.account, got, op.want)
				}
				if op.delay != 0 && delay != op.delay {
					t.Fatalf("step %d: delay %v, want %v", i, delay, op.delay)
				}
				if g.Gate().InUse() != 0 {
					t.Fatalf("step %d: a settled attempt still holds a gate slot", i)
				}
			}
		})
	}
}

// 50 parallel guesses for one account from one network with a limit of
// 10: at most 10 reach the check, because the budget is reserved before.
func TestGuardParallelGuessesGetAtMostTheLimitOfChecks(t *testing.T) {
	g := New(Config{MaxFailuresPerNetwork: 10, MaxFailuresPerAccount: 10, MaxChecks: 50})
	var checks, refused atomic.Int64
	var wg sync.WaitGroup
	hold := make(chan struct{}) // the checks end only once every attempt was made
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a, err := g.Begin(context.Background(), netip.AddrFrom4([4]byte{203, 0, 113, byte(i)}), "victim")
			if err != nil {
				refused.Add(1)
				return
			}
			checks.Add(1)
			<-hold
			a.Failed()
		}()
	}
	wait.For(t, 10*time.Second, func() bool { return checks.Load()+refused.Load() == 50 }, "every attempt answered")
	close(hold)
	wg.Wait()
	if checks.Load() != 10 {
		t.Fatalf("%d checks ran, want 10 (the limit)", checks.Load())
	}
}

// The gate: with 2 slots held, an attempt waits CheckWait and is refused
// busy, and its reservation is refunded.
func TestGuardBusyGate(t *testing.T) {
	g := New(Config{MaxChecks: 2, CheckWait: 20 * time.Millisecond, MaxFailuresPerAccount: 3})
	from := netip.MustParseAddr("192.0.2.1")
	a1, _ := g.Begin(context.Background(), from, "x")
	a2, _ := g.Begin(context.Background(), from, "y")
	if _, err := g.Begin(context.Background(), from, "owner"); !errors.Is(err, ErrBusy) {
		t.Fatalf("third attempt: %v, want ErrBusy", err)
	}
	if n, acc := g.Failures(from, "owner"); n != 0 || acc != 0 {
		t.Fatalf("a busy refusal counted failures (%d, %d)", n, acc)
	}
	a1.Abandoned()
	a3, err := g.Begin(context.Background(), from, "owner")
	if err != nil {
		t.Fatalf("after a slot came free: %v", err)
	}
	a3.Succeeded()
	a2.Failed()
	if n, _ := g.Failures(from, "y"); n != 1 {
		t.Fatalf("network failures %d, want 1 (abandoned and successful attempts do not count)", n)
	}
}

func TestGuardDelayAndClusterFailures(t *testing.T) {
	g := New(Config{FailureDelay: 100 * time.Millisecond, MaxFailureDelay: time.Second})
	for n, want := range map[int]time.Duration{0: 100 * time.Millisecond, 1: 100 * time.Millisecond, 2: 200 * time.Millisecond,
		4: 800 * time.Millisecond, 5: time.Second, 60: time.Second} {
		if got := g.Delay(n); got != want {
			t.Errorf("Delay(%d) = %v, want %v", n, got, want)
		}
	}
	from := netip.MustParseAddr("192.0.2.1")
	g.Failure(from)
	if d := g.Failure(from); d != 200*time.Millisecond {
		t.Fatalf("second cluster failure delay %v", d)
	}
	if n, _ := g.Failures(from, ""); n != 2 {
		t.Fatalf("network failures %d, want 2", n)
	}
}

func TestGuardLongAccountNamesAreBounded(t *testing.T) {
	if k := accountKey(string(make([]byte, 60000))); len(k) > 65 {
		t.Fatalf("key of a 60000-byte name is %d bytes", len(k))
	}
	if accountKey(" Alice@Example.TEST") != "alice@example.test" {
		t.Fatal("account keys are not case-folded")
	}
}
