package node_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/homing-mail/homing/node"
	"github.com/homing-mail/homing/testkit"
)

// The examples for dashboards and alerting (examples/): they must name
// only metrics a node exports, and Prometheus's own tool must accept
// them.

const examplesDir = "../examples"

// exportedFamilies are the metric families of a fresh node with a filter
// and the submission listener, by name, with their type.
func exportedFamilies(t *testing.T) map[string]string {
	t.Helper()
	n := testkit.StartNode(t, "n1", testkit.WithConfig(func(c *node.Config) {
		c.Listen.Submission = "127.0.0.1:0"
		c.Routing.Filters = map[string][]string{"example": {filterBin}}
	}))
	families, _ := scrape(t, n.AdminAddr())
	return families
}

var metricName = regexp.MustCompile(`\bhoming_[a-z0-9_]+\b`)

// unexported returns the homing_ metric names in exprs that the node does
// not export (a histogram's _bucket, _sum and _count are its family's),
// except those in pending.
func unexported(families map[string]string, exprs []string, pending ...string) []string {
	var out []string
	for _, e := range exprs {
		for _, name := range metricName.FindAllString(e, -1) {
			if _, ok := families[name]; ok || contains(pending, name) {
				continue
			}
			base := name
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				base = strings.TrimSuffix(base, suffix)
			}
			if typ := families[base]; base != name && (typ == "histogram" || typ == "summary") {
				continue
			}
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// promtool is Prometheus's tool, from Debian's prometheus package.
func promtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatalf("the examples' tests need promtool (Debian's prometheus package; .ci/run installs it: apt-get download prometheus, then dpkg-deb -x): %v", err)
	}
	return p
}

// grafanaDashboard is what the test reads of examples/grafana-homing.json.
type grafanaDashboard struct {
	Title      string `json:"title"`
	UID        string `json:"uid"`
	Templating struct {
		List []struct {
			Name  string          `json:"name"`
			Type  string          `json:"type"`
			Query json.RawMessage `json:"query"`
		} `json:"list"`
	} `json:"templating"`
	Panels []struct {
		ID         int    `json:"id"`
		Title      string `json:"title"`
		Type       string `json:"type"`
		Datasource struct {
			UID string `json:"uid"`
		} `json:"datasource"`
		Targets []struct {
			RefID string `json:"refId"`
			Expr  string `json:"expr"`
		} `json:"targets"`
	} `json:"panels"`
}

// The example Grafana dashboard parses, has the panels an operator needs,
// names only metrics a fresh node exports, and its queries are PromQL
// (promtool checks them as recording rules).
func TestExampleDashboard(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(examplesDir, "grafana-homing.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d grafanaDashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("grafana-homing.json: %v", err)
	}
	if d.Title == "" || d.UID == "" || len(d.Panels) == 0 {
		t.Fatalf("dashboard %q (uid %q) with %d panels", d.Title, d.UID, len(d.Panels))
	}
	var exprs []string
	byTitle := map[string]string{}
	ids := map[int]bool{}
	for _, p := range d.Panels {
		if p.Title == "" || len(p.Targets) == 0 || p.Datasource.UID != "${datasource}" || ids[p.ID] {
			t.Errorf("panel %d %q: no title, no query, another data source than the variable, or a duplicate id", p.ID, p.Title)
		}
		ids[p.ID] = true
		for _, tg := range p.Targets {
			if strings.TrimSpace(tg.Expr) == "" {
				t.Errorf("panel %q: an empty query", p.Title)
			}
			exprs = append(exprs, tg.Expr)
			byTitle[p.Title] += tg.Expr + "\n"
		}
	}
	for _, v := range d.Templating.List {
		exprs = append(exprs, string(v.Query))
	}
	for title, want := range map[string][]string{
		"Queue depth":              {"homing_queue_messages"},
		"Oldest message age":       {"homing_queue_oldest_seconds"},
		"Delivery rate by outcome": {"homing_delivery_results_total", "outcome"},
		"Delivery latency":         {"histogram_quantile(0.5,", "histogram_quantile(0.99,", "homing_delivery_latency_seconds_bucket"},
		"SMTP replies by code":     {"homing_smtp_replies_total", "by (code)"},
		"Partitions failed":        {"homing_partitions_failed"},
		"Members by state":         {"homing_cluster_members", "by (state)"},
		"AUTH and limit refusals":  {"homing_smtp_auth_attempts_total", "homing_api_submit_logins_total", "homing_smtp_connections_rejected_total", "homing_smtp_rate_limited_total"},
	} {
		for _, w := range want {
			if !strings.Contains(byTitle[title], w) {
				t.Errorf("panel %q: its queries lack %q:\n%s", title, w, byTitle[title])
			}
		}
	}
	if bad := unexported(exportedFamilies(t), exprs); len(bad) > 0 {
		t.Errorf("the dashboard names metrics a node does not export: %v", bad)
	}

	// The queries as recording rules, with Grafana's variables given
	// values, for promtool's PromQL parser.
	var rules strings.Builder
	rules.WriteString("groups:\n  - name: dashboard\n    rules:\n")
	for i, e := range exprs[:len(exprs)-len(d.Templating.List)] {
		e = strings.NewReplacer("$instance", ".*", "$__rate_interval", "5m").Replace(e)
		q, _ := json.Marshal(e)
		fmt.Fprintf(&rules, "      - record: dashboard:query:%d\n        expr: %s\n", i, q)
	}
	file := filepath.Join(t.TempDir(), "dashboard-rules.yml")
	if err := os.WriteFile(file, []byte(rules.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(promtool(t), "check", "rules", file).CombinedOutput(); err != nil {
		t.Errorf("promtool check rules on the dashboard's queries: %v\n%s", err, out)
	}
}

// The example alert rules pass promtool check rules and their unit tests
// (examples/homing-alerts.test.yml: each alert fires when it should, and
// only then), and name only metrics a fresh node exports (the disk-space
// rule's homing_store_free_bytes included: the free-space guard exports
// it from the start, issue #9 item 1).
func TestExampleAlertRules(t *testing.T) {
	pt := promtool(t)
	for _, args := range [][]string{{"check", "rules", "homing-alerts.yml"}, {"test", "rules", "homing-alerts.test.yml"}} {
		cmd := exec.Command(pt, args...)
		cmd.Dir = examplesDir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	b, err := os.ReadFile(filepath.Join(examplesDir, "homing-alerts.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var exprs []string
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(strings.TrimSpace(line), "#") {
			exprs = append(exprs, line)
		}
	}
	if strings.Contains(string(b), "not exported yet") {
		t.Errorf("the rules file still says a metric is not exported yet")
	}
	if bad := unexported(exportedFamilies(t), exprs); len(bad) > 0 {
		t.Errorf("the alert rules name metrics a node does not export: %v", bad)
	}
	for _, alert := range []string{"HomingQueueMessageOld", "HomingDeferredRatioHigh", "HomingPartitionUnowned",
		"HomingPartitionFailed", "HomingStoreDiskSpaceLow", "HomingStoreRefusingMail", "HomingMemberDead"} {
		if !strings.Contains(string(b), "- alert: "+alert+"\n") {
			t.Errorf("no alert %s", alert)
		}
	}
}
