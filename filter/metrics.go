package filter

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the Prometheus series of external filters; every series
// carries the label filter=Config.Name. One *Metrics is shared by all the
// filters of a node. All methods are safe for concurrent use, and a nil
// *Metrics records nothing.
type Metrics struct {
	requests *prometheus.CounterVec
	answers  *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	restarts *prometheus.CounterVec
	resends  *prometheus.CounterVec
	errors   *prometheus.CounterVec
	running  *prometheus.GaugeVec
}

// NewMetrics creates the series and registers them with reg (nil: not
// registered). Registering twice with one registry reuses the series that
// are there already.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "homing_filter_requests_total",
			Help: "Messages handed to the external filter (Check calls; re-sends after a restart not counted).",
		}, []string{"filter"}),
		answers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "homing_filter_answers_total",
			Help: "Verdicts returned by Check, by kind (ok, discard, reject, error, failure); failures include timeouts and protocol errors.",
		}, []string{"filter", "kind"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "homing_filter_latency_seconds",
			Help:    "Time from Check to its verdict.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 18),
		}, []string{"filter"}),
		restarts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "homing_filter_restarts_total",
			Help: "Attempts to start the filter program again after it died or was killed.",
		}, []string{"filter"}),
		resends: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "homing_filter_resends_total",
			Help: "Requests sent again to a restarted filter program.",
		}, []string{"filter"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "homing_filter_errors_total",
			Help: "Failure verdicts Homing made itself, by reason (timeout, protocol, gave_up, closed, canceled, invalid_path).",
		}, []string{"filter", "reason"}),
		running: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "homing_filter_running",
			Help: "1 while a filter process has passed the handshake and takes requests, else 0.",
		}, []string{"filter"}),
	}
	if reg != nil {
		m.requests = register(reg, m.requests)
		m.answers = register(reg, m.answers)
		m.latency = register(reg, m.latency)
		m.restarts = register(reg, m.restarts)
		m.resends = register(reg, m.resends)
		m.errors = register(reg, m.errors)
		m.running = register(reg, m.running)
	}
	return m
}

// register registers c, or returns the collector registered before it.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		// A clash with a different collector of the same name is a wiring
		// bug; keep the series unregistered rather than panic.
	}
	return c
}

// prepare makes the series of filter, at zero, when it starts: every
// verdict kind and failure reason is there before the first message.
func (m *Metrics) prepare(filter string) {
	if m == nil {
		return
	}
	m.requests.WithLabelValues(filter)
	m.latency.WithLabelValues(filter)
	m.restarts.WithLabelValues(filter)
	m.resends.WithLabelValues(filter)
	m.running.WithLabelValues(filter)
	for _, k := range []Kind{KindOK, KindDiscard, KindReject, KindError, KindFailure} {
		m.answers.WithLabelValues(filter, k.String())
	}
	for _, r := range []string{"timeout", "protocol", "gave_up", "closed", "invalid_path", "canceled", "other"} {
		m.errors.WithLabelValues(filter, r)
	}
}

func (m *Metrics) request(filter string) {
	if m == nil {
		return
	}
	m.requests.WithLabelValues(filter).Inc()
}

func (m *Metrics) answer(filter string, k Kind, d time.Duration) {
	if m == nil {
		return
	}
	m.answers.WithLabelValues(filter, k.String()).Inc()
	m.latency.WithLabelValues(filter).Observe(d.Seconds())
}

func (m *Metrics) restart(filter string) {
	if m == nil {
		return
	}
	m.restarts.WithLabelValues(filter).Inc()
}

func (m *Metrics) resend(filter string) {
	if m == nil {
		return
	}
	m.resends.WithLabelValues(filter).Inc()
}

func (m *Metrics) failure(filter, reason string) {
	if m == nil {
		return
	}
	m.errors.WithLabelValues(filter, reason).Inc()
}

func (m *Metrics) setRunning(filter string, up bool) {
	if m == nil {
		return
	}
	v := 0.0
	if up {
		v = 1
	}
	m.running.WithLabelValues(filter).Set(v)
}
