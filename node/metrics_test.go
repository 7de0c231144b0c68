package node_test

import (
	"bufio"
	"io"
	"net/http"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/homing-mail/homing/node"
	"github.com/homing-mail/homing/testkit"
)

// metricFamilies are the families a node exports from its start, each at
// zero, so that a dashboard and alert rules have data before the first
// message (README.md, "Admin API"). The one family that is not there
// before its first value is homing_relay_results_total: its label is the
// destination domain; homing_delivery_results_total{path="relay"} has
// the same outcomes from the start.
var metricFamilies = []string{
	// SMTP, per listener (smtp, submission).
	"homing_smtp_sessions_total", "homing_smtp_sessions_active", "homing_smtp_replies_total",
	"homing_smtp_messages_accepted_total", "homing_smtp_message_bytes_total", "homing_smtp_panics_recovered_total",
	"homing_smtp_connections_rejected_total", "homing_smtp_under_stress", "homing_smtp_stress_periods_total",
	"homing_smtp_error_limit_total", "homing_smtp_rate_limited_total", "homing_smtp_auth_attempts_total",
	"homing_smtp_member_connections_total",
	// The queue and delivery.
	"homing_queue_messages", "homing_queue_oldest_seconds", "homing_queue_damaged_total",
	"homing_delivery_results_total", "homing_delivery_latency_seconds",
	// Actors.
	"homing_actors_active", "homing_account_actor_events_total",
	// Partitions and the cluster.
	"homing_partitions_failed", "homing_partition_open_failures_total", "homing_partition_failures_total", "homing_partitions_unowned",
	"homing_partition_moves_total", "homing_cluster_members",
	// External filters, per configured filter.
	"homing_filter_requests_total", "homing_filter_answers_total", "homing_filter_latency_seconds",
	"homing_filter_restarts_total", "homing_filter_resends_total", "homing_filter_errors_total", "homing_filter_running",
	// Logins: the guard shared by SMTP AUTH and the submit API.
	"homing_auth_checks_in_progress", "homing_auth_check_slots", "homing_auth_failures_tracked",
	"homing_api_submit_logins_total",
	// Free space, per store (queue, accounts).
	"homing_store_free_bytes", "homing_store_min_free_bytes", "homing_store_space_low",
	// The checks of mail from outside (issue #11); the listeners'
	// certificate.
	"homing_auth_results_total", "homing_tls_certificate_expiry_timestamp_seconds",
	// Outbound TLS: MTA-STS, DANE, routes (issue #11 item 5).
	"homing_outbound_tls_total", "homing_relay_auth_total", "homing_mta_sts_fetches_total",
}

// scrape is GET /metrics of the node at adminAddr: the families (from the
// TYPE lines) and the sample lines.
func scrape(t *testing.T, adminAddr string) (families map[string]string, samples []string) {
	t.Helper()
	resp, err := probe.Get("http://" + adminAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("/metrics: %d %s", resp.StatusCode, b)
	}
	families = map[string]string{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, "# TYPE "); ok {
			f := strings.Fields(rest)
			families[f[0]] = f[1]
		} else if line != "" && !strings.HasPrefix(line, "#") {
			samples = append(samples, line)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return families, samples
}

// A fresh node (a filter configured, submission on) lists every family at
// zero, with the label values that are known before the first message.
func TestEveryMetricFamilyFromStart(t *testing.T) {
	n := testkit.StartNode(t, "n1", testkit.WithConfig(func(c *node.Config) {
		c.Listen.Submission = "127.0.0.1:0"
		c.Routing.Filters = map[string][]string{"example": {filterBin}}
	}))
	families, samples := scrape(t, n.AdminAddr())
	for _, f := range metricFamilies {
		if _, ok := families[f]; !ok {
			t.Errorf("a fresh node does not export %s", f)
		}
	}
	var extra []string
	for f := range families {
		if strings.HasPrefix(f, "homing_") && !slices.Contains(metricFamilies, f) {
			extra = append(extra, f)
		}
	}
	sort.Strings(extra)
	if len(extra) > 0 {
		t.Errorf("families not in the list (add them to metricFamilies and README.md): %v", extra)
	}
	if _, ok := families["homing_relay_results_total"]; ok {
		t.Errorf("homing_relay_results_total before any relay: which domain?")
	}

	want := []string{
		`homing_delivery_results_total{outcome="deferred",path="relay"} 0`,
		`homing_delivery_results_total{outcome="failed",path="local"} 0`,
		`homing_delivery_results_total{outcome="fallback",path="transfer"} 0`,
		`homing_smtp_replies_total{class="4xx",code="451",listener="smtp"} 0`,
		`homing_smtp_replies_total{class="5xx",code="550",listener="smtp"} 0`,
		`homing_smtp_replies_total{class="2xx",code="250",listener="submission"} 0`,
		`homing_smtp_auth_attempts_total{listener="submission",result="throttled"} 0`,
		`homing_smtp_connections_rejected_total{listener="smtp",reason="per-network"} 0`,
		`homing_smtp_under_stress{listener="smtp"} 0`,
		`homing_smtp_rate_limited_total{by="sender",listener="submission"} 0`,
		`homing_smtp_error_limit_total{action="disconnected",listener="smtp"} 0`,
		`homing_api_submit_logins_total{result="failed"} 0`,
		`homing_partition_open_failures_total{partition="3",reason="damaged"} 0`,
		`homing_partition_open_failures_total{partition="3",reason="lock"} 0`,
		`homing_partition_failures_total{partition="3",reason="fenced"} 0`,
		`homing_partitions_failed 0`,
		`homing_partitions_unowned 0`,
		`homing_cluster_members{state="dead"} 0`,
		`homing_account_actor_events_total{event="passivate"} 0`,
		`homing_actors_active{kind="relay"} 0`,
		`homing_filter_answers_total{filter="example",kind="reject"} 0`,
		`homing_filter_errors_total{filter="example",reason="timeout"} 0`,
		`homing_filter_running{filter="example"} 1`,
		`homing_queue_messages 0`,
		`homing_queue_oldest_seconds 0`,
		`homing_delivery_latency_seconds_count 0`,
		`homing_auth_failures_tracked{kind="networks"} 0`,
	}
	for _, w := range want {
		if !slices.Contains(samples, w) {
			t.Errorf("no sample %s", w)
		}
	}
	var slots string
	for _, s := range samples {
		if strings.HasPrefix(s, "homing_auth_check_slots ") {
			slots = s
		}
	}
	if slots == "" || slots == "homing_auth_check_slots 0" {
		t.Errorf("check slots: %q", slots)
	}
	if n := count(samples, "homing_smtp_replies_total{"); n != 2*19 {
		t.Errorf("%d reply code series, want 19 codes for each of the 2 listeners", n)
	}
	if n := count(samples, "homing_partition_open_failures_total{"); n != 4*3 {
		t.Errorf("%d partition open failure series, want 3 reasons for each of the 4 partitions", n)
	}
	if n := count(samples, "homing_partition_failures_total{"); n != 4*2 {
		t.Errorf("%d partition failure series, want 2 reasons for each of the 4 partitions", n)
	}
}

func count(samples []string, prefix string) int {
	n := 0
	for _, s := range samples {
		if strings.HasPrefix(s, prefix) {
			n++
		}
	}
	return n
}
