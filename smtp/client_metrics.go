package smtp

import "github.com/prometheus/client_golang/prometheus"

// ClientMetrics are the Prometheus series of the relay client. Safe for
// concurrent use; every method does nothing on a nil *ClientMetrics.
type ClientMetrics struct {
	tls  *prometheus.CounterVec
	auth *prometheus.CounterVec
}

// The policy labels of homing_outbound_tls_total: what decided the TLS of
// a connection.
const (
	TLSPolicyDANE          = "dane"            // validated TLSA records (RFC 7672)
	TLSPolicyMTASTS        = "mta-sts"         // an MTA-STS policy in mode enforce (RFC 8461)
	TLSPolicyMTASTSTesting = "mta-sts-testing" // an MTA-STS policy in mode testing
	TLSPolicyRoute         = "route"           // a route's tls=require or tls=encrypt (or its credentials)
	TLSPolicyRequired      = "required"        // the client requires TLS (cluster traffic)
	TLSPolicyConfigured    = "configured"      // the client has a TLS configuration of its own
	TLSPolicyOpportunistic = "opportunistic"   // none: STARTTLS when offered, unverified (RFC 7435)
)

// The result labels: verified (TLS, the certificate checked), unverified
// (TLS, not checked or failing a check that only reports), plaintext,
// failed (a policy that requires TLS was not met: the host was not used),
// mx-mismatch (an MTA-STS enforce policy does not list the MX host: not
// used).
var (
	tlsPolicies = []string{TLSPolicyDANE, TLSPolicyMTASTS, TLSPolicyMTASTSTesting, TLSPolicyRoute, TLSPolicyRequired, TLSPolicyConfigured, TLSPolicyOpportunistic}
	tlsResults  = []string{"verified", "unverified", "plaintext", "failed", "mx-mismatch"}
	authOutcome = []string{"ok", "failed", "no-tls", "no-mechanism", "not-offered"}
)

// NewClientMetrics creates the series, at zero, and registers them with
// reg (nil: not registered; registering twice reuses the first).
func NewClientMetrics(reg prometheus.Registerer) *ClientMetrics {
	m := &ClientMetrics{
		tls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "homing_outbound_tls_total",
			Help: "Relay connections by the TLS policy that applied (dane, mta-sts, mta-sts-testing, route, required, configured, opportunistic) and the result (verified, unverified, plaintext, failed: the policy was not met and the host not used, mx-mismatch: not an MX host of an enforced MTA-STS policy).",
		}, []string{"policy", "result"}),
		auth: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "homing_relay_auth_total",
			Help: "AUTH of the relay client with a route's credentials (--route-credentials), by result: ok, failed (the server refused them), no-tls (not sent: no TLS), no-mechanism (no PLAIN or LOGIN offered), not-offered (the server offers no AUTH: sent without).",
		}, []string{"result"}),
	}
	if reg != nil {
		m.tls = register(reg, m.tls)
		m.auth = register(reg, m.auth)
	}
	for _, p := range tlsPolicies {
		for _, r := range tlsResults {
			m.tls.WithLabelValues(p, r)
		}
	}
	for _, r := range authOutcome {
		m.auth.WithLabelValues(r)
	}
	return m
}

func (m *ClientMetrics) tlsOutcome(policy, result string) {
	if m == nil {
		return
	}
	m.tls.WithLabelValues(policy, result).Inc()
}

func (m *ClientMetrics) authResult(result string) {
	if m == nil {
		return
	}
	m.auth.WithLabelValues(result).Inc()
}
