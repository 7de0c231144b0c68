package node_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/homing-mail/homing/admin"
	"github.com/homing-mail/homing/mail"
	"github.com/homing-mail/homing/node"
	"github.com/homing-mail/homing/testkit"
	"github.com/homing-mail/homing/testkit/damage"
	"github.com/homing-mail/homing/testkit/wait"
)

// probe is a client as a load balancer's probe is: no connection kept
// between probes (and none left behind for goleak).
var probe = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}

// readyz is GET /readyz without a token: the status and the checks.
func readyz(t *testing.T, adminAddr string) (int, map[string]admin.Check) {
	t.Helper()
	resp, err := probe.Get("http://" + adminAddr + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Status string
		Checks []admin.Check
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	if (resp.StatusCode == 200) != (body.Status == "ready") {
		t.Fatalf("status %d with %q", resp.StatusCode, body.Status)
	}
	checks := map[string]admin.Check{}
	for _, c := range body.Checks {
		checks[c.Name] = c
	}
	return resp.StatusCode, checks
}

// failed lists the checks that failed, with their detail.
func failed(checks map[string]admin.Check) string {
	var out []string
	for _, c := range checks {
		if !c.OK {
			out = append(out, c.Name+": "+c.Detail)
		}
	}
	return strings.Join(out, "; ")
}

// A single node with an admin token: /healthz and /readyz answer on
// loopback without it (the API does not), ready once started, with each
// check's detail; not ready from the moment it begins to shut down.
func TestReadyzSingleNode(t *testing.T) {
	n := testkit.StartNode(t, "n1", testkit.WithConfig(func(c *node.Config) { c.Admin.Token = "admintok" }))
	resp, err := probe.Get("http://" + n.AdminAddr() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("healthz %d", resp.StatusCode)
	}
	code, checks := readyz(t, n.AdminAddr())
	if code != 200 || len(checks) != 4 || failed(checks) != "" {
		t.Fatalf("readyz %d %+v", code, checks)
	}
	if d := checks["storage"].Detail; !strings.Contains(d, "queue: ") || !strings.Contains(d, "accounts: ") || !strings.Contains(d, "free (limit 128.0 MiB)") {
		t.Errorf("storage detail %q", d)
	}
	if d := checks["partitions"].Detail; d != "all 4 owned; 4 open here" {
		t.Errorf("partitions detail %q", d)
	}
	if d := checks["queue"].Detail; d != "open" {
		t.Errorf("queue detail %q", d)
	}
	if resp, err := probe.Get("http://" + n.AdminAddr() + "/api/v1/stats"); err != nil || resp.StatusCode != 401 {
		t.Fatalf("the API without the token: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}

	n.API().(interface{ SetClosing() }).SetClosing() // what Close does first
	code, checks = readyz(t, n.AdminAddr())
	if code != 503 || checks["running"].OK || checks["running"].Detail != "shutting down" || !checks["queue"].OK {
		t.Fatalf("closing: %d %+v", code, checks)
	}
}

// A partition whose data fails to open makes the node not ready, saying
// which and why, while the others serve.
func TestReadyzDamagedPartition(t *testing.T) {
	data := t.TempDir()
	at := testkit.WithConfig(func(c *node.Config) { c.Store.DataDir = data })
	n := testkit.StartNode(t, "n1", at)
	acct := accountIn(2)
	createAccount(t, client(n), acct, "pw-12345", 0)
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	damage.TruncateTable(t, partitionDir(data, acct))

	n = testkit.StartNode(t, "n1", at)
	var checks map[string]admin.Check
	wait.For(t, 20*time.Second, func() bool {
		_, checks = readyz(t, n.AdminAddr())
		return strings.Contains(checks["partitions"].Detail, "failed to open: partition 2 (")
	}, "readyz does not name the damaged partition: %+v", checks)
	code, checks := readyz(t, n.AdminAddr())
	if code != 503 || checks["partitions"].OK || !checks["queue"].OK || !checks["running"].OK {
		t.Fatalf("damaged partition: %d %+v", code, checks)
	}
}

// In a cluster: a node whose seeds do not answer is not ready (not
// joined); a frontend without a backend is not ready (no partition has an
// owner); once a backend has joined and opened its partitions, both are.
func TestReadyzCluster(t *testing.T) {
	lone := testkit.StartProcess(t, homingBin, "lone", "--gossip", "127.0.0.1:0", "--cluster-addr", "127.0.0.1:0",
		"--join", "127.0.0.1:1", "--insecure", "--gossip-fast", "--partitions", "8")
	code, checks := readyz(t, lone.Admin)
	if code != 503 || checks["cluster"].OK || !strings.Contains(checks["cluster"].Detail, "no seed (--join) has answered") {
		t.Fatalf("a node whose seed does not answer: %d %+v", code, checks)
	}

	c := newCluster(t)
	c.Add("fe", mail.RoleFrontend)
	_, feAdmin, _ := c.Endpoints("fe")
	code, checks = readyz(t, feAdmin)
	if code != 503 || !checks["cluster"].OK || checks["partitions"].OK ||
		!strings.Contains(checks["partitions"].Detail, "8 of 8 partitions have no owner") {
		t.Fatalf("a frontend alone: %d %+v", code, checks)
	}

	c.Add("be", mail.RoleBackend)
	for _, name := range []string{"fe", "be"} {
		_, addr, _ := c.Endpoints(name)
		var why string
		wait.For(t, 30*time.Second, func() bool {
			code, checks := readyz(t, addr)
			why = failed(checks)
			return code == 200
		}, "%s not ready: %s", name, why)
	}
	r, err := c.Admin("be").Readiness(context.Background())
	if err != nil || !r.Ready {
		t.Fatalf("be through the client: %+v %v", r, err)
	}
	for _, ch := range r.Checks {
		if ch.Name == "partitions" && !strings.HasSuffix(ch.Detail, "; 8 open here") {
			t.Errorf("be's partitions: %q", ch.Detail)
		}
	}
}
