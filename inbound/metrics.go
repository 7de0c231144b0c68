package inbound

import "github.com/prometheus/client_golang/prometheus"

// Metrics counts the checks' results: homing_auth_results_total{method,
// result}, one per message and method (DKIM: one per signature, "none"
// for a message without).
type Metrics struct {
	results *prometheus.CounterVec
}

// resultValues are the results each method can give (RFC 8601 §2.7),
// exported at zero from the start.
var resultValues = map[string][]string{
	"spf":   {"pass", "fail", "softfail", "neutral", "none", "temperror", "permerror"},
	"dkim":  {"pass", "fail", "none", "temperror", "permerror"},
	"dmarc": {"pass", "fail", "none", "temperror", "permerror"},
}

// NewMetrics registers the family on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{results: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "homing_auth_results_total",
		Help: "Results of the SPF, DKIM and DMARC checks of mail from outside, by method and result.",
	}, []string{"method", "result"})}
	for method, vs := range resultValues {
		for _, v := range vs {
			m.results.WithLabelValues(method, v)
		}
	}
	if reg != nil {
		reg.MustRegister(m.results)
	}
	return m
}

func (m *Metrics) count(v Verdict, dk dkimOutcome) {
	m.results.WithLabelValues("spf", v.SPF).Inc()
	m.results.WithLabelValues("dmarc", v.DMARC).Inc()
	if len(dk.sigs) == 0 {
		m.results.WithLabelValues("dkim", v.DKIM).Inc()
	}
	for _, s := range dk.sigs {
		m.results.WithLabelValues("dkim", s.result).Inc()
	}
}
