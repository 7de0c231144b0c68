package cluster

import (
	"bytes"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/homing-mail/homing/ratelog"
	"github.com/homing-mail/homing/testkit/wait"
)

// A flood of one kind of line (garbage on the gossip port: one ERROR per
// packet) is written at most once a second, each written line carrying how
// many were dropped; other kinds are not held up by it.
func TestMemberlistLogFloodIsThrottledPerKind(t *testing.T) {
	var mu sync.Mutex
	now := time.Unix(1_000_000, 0)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	var out bytes.Buffer
	m := &Membership{log: slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	w := memberlistLogWriter{m: m, throttle: ratelog.NewThrottle(time.Second, clock)}

	const packets = 10_000 // over 10 s of the fake clock
	for i := 0; i < packets; i++ {
		fmt.Fprintf(&lineWriter{w}, "[ERR] memberlist: Failed to decode ping from=127.0.0.%d:%d\n", i%250, 40000+i)
		if i == 5000 {
			fmt.Fprintf(&lineWriter{w}, "[WARN] memberlist: Was able to connect to be2 over TCP but UDP probes failed\n")
		}
		if i%1000 == 999 {
			mu.Lock()
			now = now.Add(time.Second)
			mu.Unlock()
		}
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	var decode, other, total int
	for _, l := range lines {
		switch {
		case strings.Contains(l, "Failed to decode ping"):
			decode++
			var n int
			if i := strings.Index(l, "suppressed="); i >= 0 {
				fmt.Sscanf(l[i:], "suppressed=%d", &n)
			}
			total += n + 1
		case strings.Contains(l, "UDP probes failed"):
			other++
		}
	}
	if decode > 11 {
		t.Fatalf("%d lines for %d undecodable packets in 10 s, want at most one a second:\n%s", decode, packets, out.String())
	}
	if other != 1 {
		t.Fatalf("the other kind was written %d times, want once", other)
	}
	if total < packets-1000 || total > packets {
		t.Fatalf("written lines account for %d packets (with their suppressed counts), want about %d", total, packets)
	}
}

// lineWriter makes each Fprintf one Write, as log.Logger does.
type lineWriter struct{ w memberlistLogWriter }

func (l *lineWriter) Write(p []byte) (int, error) { return l.w.Write(p) }

// Garbage sent to a real node's gossip port makes a handful of log lines,
// not one per packet (issue #9: 37,976 lines in 10 s before).
func TestGarbageOnTheGossipPortDoesNotFloodTheLog(t *testing.T) {
	n := startGossip(t, "a", nil)
	conn, err := net.Dial("udp", n.GossipAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	const packets = 3000
	start := time.Now()
	for i := 0; i < packets; i++ {
		if _, err := conn.Write([]byte(fmt.Sprintf("garbage %d \x00\xff\x01", i))); err != nil {
			t.Fatal(err)
		}
	}
	// memberlist reads and logs each packet: once it has logged the first,
	// the count must stay at about one line a second while it reads the
	// rest (3,000 lines at once without the throttle).
	wait.For(t, 10*time.Second, func() bool { return n.log.Count("level=ERROR") > 0 }, "no error logged for garbage packets")
	wait.Consistently(t, 1500*time.Millisecond, func() bool {
		return n.log.Count("level=ERROR") <= int(time.Since(start)/time.Second)+2
	}, "%d ERROR lines for %d garbage packets in %v: not throttled", wait.Lazy(func() string { return fmt.Sprint(n.log.Count("level=ERROR")) }),
		packets, wait.Lazy(func() string { return time.Since(start).Round(time.Millisecond).String() }))
	lines := n.log.Count("level=ERROR")
	t.Logf("%d ERROR lines for %d garbage packets", lines, packets)
}
