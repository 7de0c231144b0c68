package node_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/homing-mail/homing/mail"
	"github.com/homing-mail/homing/testkit"
	"github.com/homing-mail/homing/testkit/netns"
	"github.com/homing-mail/homing/testkit/wait"
)

// netnsEnv carries the network (netns.Net.Env) to the copy of this test
// that runs inside it.
const netnsEnv = "HOMING_TEST_NETNS"

// inNetwork runs the calling test inside a network of namespaces with one
// host per name, plus a host "drv" for the test itself: it makes the
// network, runs this test binary again in drv (only this test), and
// reports its output. In that copy it returns the network; in the outer
// test it returns nil and the test must return.
func inNetwork(t *testing.T, names ...string) *netns.Net {
	if env := os.Getenv(netnsEnv); env != "" {
		return netns.FromEnv(t, env)
	}
	n := netns.New(t, "hm")
	for _, name := range append(names, "drv") {
		n.Host(name)
	}
	args := append(n.Prefix("drv"), os.Args[0], "-test.run=^"+t.Name()+"$", "-test.v", "-test.timeout=8m")
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = append(os.Environ(), netnsEnv+"="+n.Env())
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: "+t.Name()) {
		t.Fatalf("the test inside the network namespaces failed (%v):\n%s", err, out)
	}
	t.Logf("inside the network namespaces:\n%s", tail(string(out), 30))
	return nil
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// TestNetworkPartitionBackendCutOff: 1 frontend and 2 backends, each a
// real process in a network namespace of its own (198.18.0.x, linked by a
// bridge), share one account store. Under a steady stream of mail, be1's
// link is cut: it sees a minority alive and closes its partitions, and be2
// opens them (with newer epochs) only after be1 let go; mail keeps being
// stored. Healed, both serve again, and every acknowledged message is
// stored exactly once.
func TestNetworkPartitionBackendCutOff(t *testing.T) {
	n := inNetwork(t, "fe", "be1", "be2")
	if n == nil {
		return
	}
	c := testkit.NewCluster(t, testkit.ClusterOptions{Runner: testkit.Processes, Binary: homingBin, Partitions: 8,
		Host: func(name string) ([]string, string) { return n.Prefix(name), n.Addr(name) }})
	c.Add("fe", mail.RoleFrontend)
	c.Add("be1", mail.RoleBackend)
	c.Add("be2", mail.RoleBackend)
	c.WaitOwners(t, "be1", "be2")
	fe := c.Admin("fe")
	cl, err := fe.Cluster(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var be1Parts []int
	for _, p := range cl.Partitions {
		if p.Owner == "be1" {
			be1Parts = append(be1Parts, p.ID)
		}
	}
	if len(be1Parts) == 0 {
		t.Fatalf("be1 owns nothing: %+v", cl.Partitions)
	}
	epochs := func() map[int]epochFile {
		out := map[int]epochFile{}
		for _, p := range be1Parts {
			out[p] = readEpochFile(t, filepath.Join(c.AccountStore(), fmt.Sprintf("p%04d", p)))
		}
		return out
	}
	before := epochs()
	accounts := makeAccounts(t, fe, 8)
	s := startSender(t, c.SMTPAddr("fe"), accounts, 3)
	s.waitCount(t, 60)

	n.Cut("be1")
	cut := time.Now()
	wait.For(t, 30*time.Second, func() bool {
		ps, err := c.Admin("be2").Partitions(context.Background())
		if err != nil || len(ps) != 8 {
			return false
		}
		for _, p := range ps {
			if !p.Open {
				return false
			}
		}
		return true
	}, "be2 does not hold every partition open while be1 is cut off")
	t.Logf("be2 opened be1's partitions %v after the cut", time.Since(cut).Round(10*time.Millisecond))
	after := epochs()
	closed := logTime(t, c.Process("be1").Log(), "closing every partition")
	for _, p := range be1Parts {
		if after[p].Owner != "be2" || after[p].Epoch <= before[p].Epoch {
			t.Errorf("partition %d: epoch %+v after the cut, want be2's, above %+v", p, after[p], before[p])
		}
		if !after[p].Opened.After(closed) {
			t.Errorf("partition %d opened by be2 at %s, before the cut-off be1 closed its partitions at %s", p, after[p].Opened, closed)
		}
	}
	s.waitCount(t, s.n.Load()+60)

	n.Heal("be1")
	c.WaitOwners(t, "be1", "be2")
	s.waitCount(t, s.n.Load()+60)
	acked := s.finish()
	verifyExactlyOnce(t, fe, acked)
	t.Logf("%d acknowledged messages, each stored once", len(acked))
}

type epochFile struct {
	Epoch  uint64    `json:"epoch"`
	Owner  string    `json:"owner"`
	Opened time.Time `json:"opened"`
}

func readEpochFile(t *testing.T, dir string) epochFile {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "homing.epoch"))
	if err != nil {
		t.Fatal(err)
	}
	var e epochFile
	if err := json.Unmarshal(b, &e); err != nil {
		t.Fatal(err)
	}
	return e
}

// logTime is the time of the last line of log that contains what.
func logTime(t *testing.T, log, what string) time.Time {
	t.Helper()
	var at time.Time
	for _, line := range strings.Split(log, "\n") {
		if !strings.Contains(line, what) {
			continue
		}
		f, ok := strings.CutPrefix(line, "time=")
		if !ok {
			continue
		}
		ts, _, _ := strings.Cut(f, " ")
		if v, err := time.Parse(time.RFC3339Nano, ts); err == nil {
			at = v
		}
	}
	if at.IsZero() {
		t.Fatalf("no log line with %q:\n%s", what, tail(log, 40))
	}
	return at
}

// TestNetworkPartitionSplitIntoHalves: 2 frontends and 3 backends, each
// in a namespace of its own, share one store. The network splits into
// {fe1, be1, be2} and {fe2, be3}: be3, in the minority, closes its
// partitions and the majority's backends open them (after it let go, with
// newer epochs); mail through fe1 keeps being stored. Healed, every
// acknowledged message (through either frontend) is stored exactly once.
func TestNetworkPartitionSplitIntoHalves(t *testing.T) {
	n := inNetwork(t, "fe1", "fe2", "be1", "be2", "be3")
	if n == nil {
		return
	}
	c := testkit.NewCluster(t, testkit.ClusterOptions{Runner: testkit.Processes, Binary: homingBin, Partitions: 8,
		Host: func(name string) ([]string, string) { return n.Prefix(name), n.Addr(name) }})
	c.Add("fe1", mail.RoleFrontend)
	c.Add("fe2", mail.RoleFrontend)
	c.Add("be1", mail.RoleBackend)
	c.Add("be2", mail.RoleBackend)
	c.Add("be3", mail.RoleBackend)
	c.WaitOwners(t, "be1", "be2", "be3")
	fe1 := c.Admin("fe1")
	cl, err := fe1.Cluster(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var be3Parts []int
	for _, p := range cl.Partitions {
		if p.Owner == "be3" {
			be3Parts = append(be3Parts, p.ID)
		}
	}
	if len(be3Parts) == 0 {
		t.Fatalf("be3 owns nothing: %+v", cl.Partitions)
	}
	accounts := makeAccounts(t, fe1, 8)
	acked2 := map[string]string{} // through fe2, before the split
	for i := range 40 {
		acct := accounts[i%len(accounts)]
		mid := fmt.Sprintf("<fe2-%d@load.test>", i)
		raw := []byte(fmt.Sprintf("From: <load@load.test>\r\nTo: <%s>\r\nMessage-ID: %s\r\nSubject: fe2 %d\r\n\r\nbody %d\r\n", acct, mid, i, i))
		if _, err := testkit.Send(c.SMTPAddr("fe2"), "load@load.test", []string{acct}, raw); err != nil {
			t.Fatalf("through fe2: %v", err)
		}
		acked2[mid] = acct
	}
	s := startSender(t, c.SMTPAddr("fe1"), accounts, 3)
	s.waitCount(t, 60)

	n.Split("fe2", "be3")
	split := time.Now()
	wait.For(t, 30*time.Second, func() bool {
		owners := map[string]bool{}
		for _, be := range []string{"be1", "be2"} {
			ps, err := c.Admin(be).Partitions(context.Background())
			if err != nil {
				return false
			}
			for _, p := range ps {
				if p.Open {
					owners[fmt.Sprint(p.ID)] = true
				}
			}
		}
		return len(owners) == 8
	}, "be1 and be2 do not hold every partition open while be3 is split off")
	t.Logf("the majority opened be3's partitions %v after the split", time.Since(split).Round(10*time.Millisecond))
	closed := logTime(t, c.Process("be3").Log(), "closing every partition")
	for _, p := range be3Parts {
		e := readEpochFile(t, filepath.Join(c.AccountStore(), fmt.Sprintf("p%04d", p)))
		if e.Owner == "be3" || !e.Opened.After(closed) {
			t.Errorf("partition %d: epoch %+v, want opened by be1 or be2 after be3 closed its partitions at %s", p, e, closed)
		}
	}
	s.waitCount(t, s.n.Load()+60)

	n.Rejoin("fe2", "be3")
	c.WaitOwners(t, "be1", "be2", "be3")
	s.waitCount(t, s.n.Load()+60)
	acked := s.finish()
	for k, v := range acked2 {
		acked[k] = v
	}
	verifyExactlyOnce(t, fe1, acked)
	t.Logf("%d acknowledged messages, each stored once", len(acked))
}
