package smtp

import (
	"errors"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the Prometheus series of the SMTP servers. One *Metrics may
// be shared by several servers (the MX and the submission listener); every
// series carries the label listener=Config.Source. All methods are safe for
// concurrent use and do nothing on a nil *Metrics.
type Metrics struct {
	sessions      *prometheus.CounterVec
	active        *prometheus.GaugeVec
	replies       *prometheus.CounterVec
	accepted      *prometheus.CounterVec
	bytes         *prometheus.CounterVec
	panics        *prometheus.CounterVec
	connsRejected *prometheus.CounterVec
}

// NewMetrics creates the series and registers them with reg (nil: not
// registered). Registering twice with one registry reuses the series that
// are there already, so it does not fail.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		sessions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "homing_smtp_sessions_total",
			Help: "SMTP sessions started (one per EHLO/HELO that opens a session).",
		}, []string{"listener"}),
		active: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "homing_smtp_sessions_active",
			Help: "SMTP sessions open now.",
		}, []string{"listener"}),
		replies: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "homing_smtp_replies_total",
			Help: "Replies the session gave to MAIL, RCPT, DATA and AUTH, by code class and code.",
		}, []string{"listener", "class", "code"}),
		accepted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "homing_smtp_messages_accepted_total",
			Help: "Messages accepted (250 to DATA).",
		}, []string{"listener"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "homing_smtp_message_bytes_total",
			Help: "Bytes of accepted messages, Received header included.",
		}, []string{"listener"}),
		panics: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "homing_smtp_panics_recovered_total",
			Help: "Panics recovered in SMTP sessions (each is a bug).",
		}, []string{"listener"}),
		connsRejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "homing_smtp_connections_rejected_total",
			Help: "Connections refused with 421 by the connection limits.",
		}, []string{"listener", "reason"}),
	}
	if reg != nil {
		m.sessions = register(reg, m.sessions)
		m.active = register(reg, m.active)
		m.replies = register(reg, m.replies)
		m.accepted = register(reg, m.accepted)
		m.bytes = register(reg, m.bytes)
		m.panics = register(reg, m.panics)
		m.connsRejected = register(reg, m.connsRejected)
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

func (m *Metrics) sessionStarted(listener string) {
	if m == nil {
		return
	}
	m.sessions.WithLabelValues(listener).Inc()
	m.active.WithLabelValues(listener).Inc()
}

func (m *Metrics) sessionEnded(listener string) {
	if m == nil {
		return
	}
	m.active.WithLabelValues(listener).Dec()
}

func (m *Metrics) reply(listener string, code int) {
	if m == nil {
		return
	}
	m.replies.WithLabelValues(listener, strconv.Itoa(code/100)+"xx", strconv.Itoa(code)).Inc()
}

func (m *Metrics) messageAccepted(listener string, size int) {
	if m == nil {
		return
	}
	m.accepted.WithLabelValues(listener).Inc()
	m.bytes.WithLabelValues(listener).Add(float64(size))
}

func (m *Metrics) panicRecovered(listener string) {
	if m == nil {
		return
	}
	m.panics.WithLabelValues(listener).Inc()
}

func (m *Metrics) connectionRejected(listener, reason string) {
	if m == nil {
		return
	}
	m.connsRejected.WithLabelValues(listener, reason).Inc()
}
