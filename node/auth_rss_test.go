package node_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/textproto"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/homing-mail/homing/admin"
	"github.com/homing-mail/homing/testkit"
)

// vmRSS returns the resident set size of process pid in KiB, 0 when it
// cannot be read.
func vmRSS(pid int) int {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			kib, _ := strconv.Atoi(f[1])
			return kib
		}
	}
	return 0
}

// Issue #9, "200 parallel AUTH attempts: RSS 1.1 -> 4.0 GB": a real
// `homing serve` with a real account (argon2id, 19 MiB a check) gets 200
// AUTH PLAIN at once from 200 networks (127.0.N.1). The password-check gate
// keeps the node's RSS growth to a few checks' worth: before the gate the
// same run took the node from 50 MiB to 3.8 GB.
func TestSubmissionParallelAuthRSS(t *testing.T) {
	p := testkit.StartProcess(t, homingBin, "auth", "--submission", "127.0.0.1:0", "--demo=false", "--log-level", "error")
	var ready struct {
		PID        int    `json:"pid"`
		Submission string `json:"submission"`
	}
	b, err := os.ReadFile(filepath.Join(p.Data, "..", p.Name+".ready"))
	if err != nil || json.Unmarshal(b, &ready) != nil || ready.PID == 0 || ready.Submission == "" {
		t.Fatalf("ready file %q: %v", b, err)
	}
	c := admin.NewClient("http://"+p.Admin, "")
	if _, err := c.CreateAccount(context.Background(), admin.CreateAccount{Address: "alice@example.test", Password: "pw-for-tests-123"}); err != nil {
		t.Fatal(err)
	}
	const attempts = 200
	conns := make([]*textproto.Conn, attempts)
	for i := range conns {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, byte(1+i), 1)}, Timeout: 10 * time.Second}
		nc, err := d.Dial("tcp", ready.Submission)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { nc.Close() })
		nc.SetDeadline(time.Now().Add(2 * time.Minute))
		tc := textproto.NewConn(nc)
		if _, _, err := tc.ReadResponse(220); err != nil {
			t.Fatal(err)
		}
		if err := tc.PrintfLine("EHLO mua.test"); err != nil {
			t.Fatal(err)
		}
		if _, _, err := tc.ReadResponse(250); err != nil {
			t.Fatal(err)
		}
		conns[i] = tc
	}

	before := vmRSS(ready.PID)
	if before == 0 {
		t.Fatal("cannot read the node's RSS from /proc")
	}
	peak := before
	stop, sampled := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(sampled)
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				peak = max(peak, vmRSS(ready.PID))
			}
		}
	}()
	var mu sync.Mutex
	codes := map[int]int{}
	var wg sync.WaitGroup
	start := time.Now()
	for i, tc := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pw := "pw-for-tests-123"
			if i%2 == 1 {
				pw = "wrong"
			}
			code := 0
			if err := tc.PrintfLine("AUTH PLAIN %s", base64.StdEncoding.EncodeToString([]byte("\x00alice@example.test\x00"+pw))); err == nil {
				code, _, _ = tc.ReadResponse(0)
			}
			mu.Lock()
			codes[code]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	took := time.Since(start)
	close(stop)
	<-sampled
	growth := (peak - before) / 1024
	if codes[235]+codes[535]+codes[454] != attempts || codes[235] == 0 {
		t.Errorf("replies %v: want 235, 535 or 454 (busy) to every attempt", codes)
	}
	// 200 unbounded checks are 3.8 GB; the gate holds a few at once
	// (plus the garbage of finished checks until the GC runs).
	if growth > 768 {
		t.Errorf("the node's RSS grew by %d MiB (from %d MiB), want under 768 MiB", growth, before/1024)
	}
	t.Logf("%d parallel AUTH against homing serve: replies %v in %v; RSS %d MiB -> peak %d MiB (+%d MiB)",
		attempts, codes, took.Round(time.Millisecond), before/1024, peak/1024, growth)
}
