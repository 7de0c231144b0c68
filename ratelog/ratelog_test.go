package ratelog

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestThrottleOneRecordPerKindPerInterval(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	th := NewThrottle(time.Second, func() time.Time { return now })
	written, total := 0, 0
	for i := 0; i < 10_000; i++ {
		ok, sup := th.Allow(fmt.Sprintf("connection from 127.0.0.%d:%d refused", i%250, 40000+i))
		if ok {
			written++
			total += sup + 1
		}
		if i%1000 == 999 {
			now = now.Add(time.Second)
		}
	}
	if written > 11 {
		t.Fatalf("%d written for 10,000 over 10 s, want at most one a second", written)
	}
	if total < 9000 || total > 10_000 {
		t.Fatalf("written records account for %d (with their suppressed counts), want about 10,000", total)
	}
	if ok, _ := th.Allow("another kind"); !ok {
		t.Fatal("another kind was held up by the flood")
	}
}

func TestThrottleBoundsTheKindsItKeeps(t *testing.T) {
	th := NewThrottle(time.Second, func() time.Time { return time.Unix(0, 0) })
	for i := 0; i < 10*MaxKinds; i++ {
		th.Allow(fmt.Sprintf("kind %c%c of error", 'a'+i%26, 'a'+(i/26)%26))
	}
	if n := th.Kinds(); n > MaxKinds {
		t.Fatalf("%d kinds kept, want at most %d", n, MaxKinds)
	}
}

func TestHandlerAddsTheSuppressedCount(t *testing.T) {
	var out bytes.Buffer
	h := New(slog.NewTextHandler(&out, nil), time.Hour)
	log := slog.New(h).With("component", "smtp")
	for i := 0; i < 5; i++ {
		log.Info("connection refused: too many connections", "client", fmt.Sprintf("127.0.0.%d", i))
	}
	log.Warn("connection refused: too many connections") // another level, another kind
	if got := strings.Count(out.String(), "connection refused"); got != 2 {
		t.Fatalf("%d lines, want 2 (one per kind within the interval):\n%s", got, out.String())
	}
	h.t.now = func() time.Time { return time.Now().Add(2 * time.Hour) }
	log.Info("connection refused: too many connections")
	if !strings.Contains(out.String(), "suppressed=4") || !strings.Contains(out.String(), "component=smtp") {
		t.Fatalf("the record after the interval does not say 4 were dropped:\n%s", out.String())
	}
}

func TestBurstThrottleLetsThroughBurstPerInterval(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	th := NewBurstThrottle(5, time.Second, func() time.Time { return now })
	written, total := 0, 0
	for i := 0; i < 1000; i++ {
		if ok, sup := th.Allow("reject RCPT 550 5.1.1"); ok {
			written++
			total += sup + 1
		}
		if i%100 == 99 {
			now = now.Add(time.Second)
		}
	}
	if written != 50 {
		t.Fatalf("%d written for 1,000 over 10 s with a burst of 5, want 50", written)
	}
	// The 95 dropped in the last interval wait for the next record.
	if total != 905 {
		t.Fatalf("written records account for %d (with their suppressed counts), want 905 of 1,000", total)
	}
}
