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
	stressed      *prometheus.GaugeVec
	stressPeriods *prometheus.CounterVec
	errorLimit    *prometheus.CounterVec
	rateLimited   *prometheus.CounterVec
	auths         *prometheus.CounterVec
	members       *prometheus.CounterVec
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
			Help: "Connections refused with 421 by the connection limits (reason: total, per-ip, per-network, reserved: the last slots kept for networks holding few connections).",
		}, []string{"listener", "reason"}),
		stressed: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "homing_smtp_under_stress",
			Help: "1 while most connection slots are taken and the command timeout is shortened (StressPercent of MaxConnections), else 0.",
		}, []string{"listener"}),
		stressPeriods: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "homing_smtp_stress_periods_total",
			Help: "Times the server came under stress.",
		}, []string{"listener"}),
		errorLimit: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "homing_smtp_error_limit_total",
			Help: "Error replies delayed after the soft error limit (action=delayed) and sessions closed with 421 at the hard error limit (action=disconnected).",
		}, []string{"listener", "action"}),
		rateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "homing_smtp_rate_limited_total",
			Help: "Messages refused with 450 4.7.1 by the message rate limits (by=network or sender).",
		}, []string{"listener", "by"}),
		auths: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "homing_smtp_auth_attempts_total",
			Help: "AUTH attempts by result: ok, failed (wrong credentials), throttled (a failure budget used up, refused unchecked), busy (no password check slot in time), unavailable (the check could not be made).",
		}, []string{"listener", "result"}),
		members: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "homing_smtp_member_connections_total",
			Help: "Connections authenticated as cluster members (X-HOMING-CLUSTER), which the per-IP, per-network and rate limits do not count.",
		}, []string{"listener"}),
	}
	if reg != nil {
		m.sessions = register(reg, m.sessions)
		m.active = register(reg, m.active)
		m.replies = register(reg, m.replies)
		m.accepted = register(reg, m.accepted)
		m.bytes = register(reg, m.bytes)
		m.panics = register(reg, m.panics)
		m.connsRejected = register(reg, m.connsRejected)
		m.stressed = register(reg, m.stressed)
		m.stressPeriods = register(reg, m.stressPeriods)
		m.errorLimit = register(reg, m.errorLimit)
		m.rateLimited = register(reg, m.rateLimited)
		m.auths = register(reg, m.auths)
		m.members = register(reg, m.members)
	}
	return m
}

// ReplyCodes are the reply codes the sessions give to MAIL, RCPT, DATA and
// AUTH (homing_smtp_replies_total{code}), made at zero for each listener.
var ReplyCodes = []int{235, 250, 421, 450, 451, 452, 454, 501, 502, 503, 504, 530, 535, 538, 550, 552, 553, 554, 556}

// authResults are the result labels of homing_smtp_auth_attempts_total.
var authResults = []string{"ok", "failed", "throttled", "busy", "unavailable"}

// prepare makes every series of listener whose labels are known, at zero
// (a stress gauge at 0), so that a dashboard and alert rules have data
// from the start: rate() over a series that appears with its first
// increment misses that increment.
func (m *Metrics) prepare(listener string) {
	if m == nil {
		return
	}
	for _, v := range []*prometheus.CounterVec{m.sessions, m.accepted, m.bytes, m.panics, m.stressPeriods, m.members} {
		v.WithLabelValues(listener)
	}
	m.active.WithLabelValues(listener)
	m.stressed.WithLabelValues(listener)
	for _, code := range ReplyCodes {
		m.replies.WithLabelValues(listener, strconv.Itoa(code/100)+"xx", strconv.Itoa(code))
	}
	for _, r := range []string{rejectTotal, rejectPerIP, rejectPerNet, rejectReserved} {
		m.connsRejected.WithLabelValues(listener, r)
	}
	for _, a := range []string{"delayed", "disconnected"} {
		m.errorLimit.WithLabelValues(listener, a)
	}
	for _, by := range []string{"network", "sender"} {
		m.rateLimited.WithLabelValues(listener, by)
	}
	for _, r := range authResults {
		m.auths.WithLabelValues(listener, r)
	}
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

func (m *Metrics) stress(listener string, on bool) {
	if m == nil {
		return
	}
	if on {
		m.stressed.WithLabelValues(listener).Set(1)
		m.stressPeriods.WithLabelValues(listener).Inc()
		return
	}
	m.stressed.WithLabelValues(listener).Set(0)
}

func (m *Metrics) errorLimited(listener, action string) {
	if m == nil {
		return
	}
	m.errorLimit.WithLabelValues(listener, action).Inc()
}

func (m *Metrics) rateLimit(listener, by string) {
	if m == nil {
		return
	}
	m.rateLimited.WithLabelValues(listener, by).Inc()
}

func (m *Metrics) auth(listener, result string) {
	if m == nil {
		return
	}
	m.auths.WithLabelValues(listener, result).Inc()
}

func (m *Metrics) memberConnection(listener string) {
	if m == nil {
		return
	}
	m.members.WithLabelValues(listener).Inc()
}
