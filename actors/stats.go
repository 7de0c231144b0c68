package actors

import (
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/homing-mail/homing/mail"
)

// Actor kinds, as GET /api/v1/actors counts them.
const (
	KindAccount       = "account"
	KindPartition     = "partition"
	KindQueue         = "queue"
	KindLocalDelivery = "localDelivery"
	KindRelay         = "relay"
	KindScheduler     = "scheduler"
	KindDSN           = "dsn"
)

var kinds = []string{KindAccount, KindPartition, KindQueue, KindLocalDelivery, KindRelay, KindScheduler, KindDSN}

// Stats counts what the actors of one node do. It is shared by the actors
// of a node (never between nodes) and safe for concurrent use.
type Stats struct {
	since  time.Time
	active map[string]*atomic.Int64

	Activations  atomic.Int64 // account actors activated
	Passivations atomic.Int64 // account actors passivated
	Evictions    atomic.Int64 // account actors asked to passivate early (MaxAccountActors)

	Accepted       atomic.Int64
	DeliveredLocal atomic.Int64
	Relayed        atomic.Int64
	Bounced        atomic.Int64
	Deferred       atomic.Int64
	Transferred    atomic.Int64 // messages handed to a Locally-for-Others member
	QueueDepth     atomic.Int64

	lat *latencyRing

	// Journal records the journey of messages through this node.
	Journal *Journal

	promActive   *prometheus.GaugeVec
	promResults  *prometheus.CounterVec
	promLatency  prometheus.Histogram
	promDepth    prometheus.Gauge
	promActivate *prometheus.CounterVec
	promRelay    *prometheus.CounterVec

	// Damage (storage.ErrDamaged) and partitions that fail to open.
	promOpenFailures *prometheus.CounterVec
	promLost         *prometheus.CounterVec
	promFailed       prometheus.Gauge
	promDamaged      prometheus.Counter
	// QueueDamaged counts the messages the queue held as damaged.
	QueueDamaged atomic.Int64
}

// relayResult counts a relay outcome by destination domain.
func (s *Stats) relayResult(r *mail.Recipient, outcome string) {
	if r.Local() {
		return
	}
	s.promRelay.WithLabelValues(mail.Domain(r.Addr), outcome).Inc()
}

// NewStats returns counters registered on reg (nil: not exported).
func NewStats(reg prometheus.Registerer) *Stats {
	s := &Stats{
		since:   time.Now(),
		active:  make(map[string]*atomic.Int64, len(kinds)),
		lat:     newLatencyRing(1 << 16),
		Journal: NewJournal(1<<17, nil),
		promActive: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "homing_actors_active", Help: "Actors alive on this node, by kind.",
		}, []string{"kind"}),
		promResults: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "homing_delivery_results_total", Help: "Delivery attempts per recipient, by path and outcome.",
		}, []string{"path", "outcome"}),
		promLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "homing_delivery_latency_seconds",
			Help:    "Time from acceptance (250 to DATA) to storage in the mailbox or acceptance by the next hop.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 20),
		}),
		promDepth: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "homing_queue_messages", Help: "Messages in this node's queue.",
		}),
		promRelay: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "homing_relay_results_total", Help: "Relay outcomes per recipient, by destination domain.",
		}, []string{"domain", "outcome"}),
		promActivate: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "homing_account_actor_events_total", Help: "Account actor activations and passivations.",
		}, []string{"event"}),
		promOpenFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "homing_partition_open_failures_total",
			Help: "Failed opens of a partition's data on this node for another reason than a lock held elsewhere (a handoff), by partition and reason (damaged, lock: the lock cannot be taken, error).",
		}, []string{"partition", "reason"}),
		promLost: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "homing_partition_failures_total",
			Help: "Open partitions closed at once because their data failed, by partition and reason (fenced: another node opened it since, a newer epoch; io: a write or sync error).",
		}, []string{"partition", "reason"}),
		promFailed: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "homing_partitions_failed",
			Help: "Partitions of this node whose data failed to open at the last try (damaged or another error; not a handoff).",
		}),
		promDamaged: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "homing_queue_damaged_total", Help: "Queued messages held as damaged (their stored body or envelope failed its check).",
		}),
	}
	for _, k := range kinds {
		s.active[k] = new(atomic.Int64)
	}
	// Every series whose labels are known is there from the start, at
	// zero, so that dashboards and alert rules have data before the first
	// message (rate() of a series that appears with its first increment
	// misses that increment).
	for _, k := range kinds {
		s.promActive.WithLabelValues(k)
	}
	for path, outcomes := range ResultOutcomes {
		for _, o := range outcomes {
			s.promResults.WithLabelValues(path, o)
		}
	}
	s.promActivate.WithLabelValues("activate")
	s.promActivate.WithLabelValues("passivate")
	if reg != nil {
		reg.MustRegister(s.promActive, s.promResults, s.promLatency, s.promDepth, s.promActivate, s.promRelay,
			s.promOpenFailures, s.promLost, s.promFailed, s.promDamaged)
	}
	return s
}

// ResultOutcomes are the label values of homing_delivery_results_total:
// the outcomes of each path.
var ResultOutcomes = map[string][]string{
	"local":    {"delivered", "deferred", "failed"},
	"relay":    {"delivered", "deferred", "failed"},
	"transfer": {"transferred", "fallback", "retry", "failed"},
}

// openFailureReasons are the reason labels of
// homing_partition_open_failures_total.
var openFailureReasons = []string{"damaged", "lock", "error"}

// lostReasons are the reason labels of homing_partition_failures_total.
var lostReasons = []string{"fenced", "io"}

// partitionSeries makes the per-partition series of partition id, at
// zero: this node runs its actor from now on. (Series of every partition
// on every node would be P x reasons on each, most of them never this
// node's.)
func (s *Stats) partitionSeries(id int) {
	for _, r := range openFailureReasons {
		s.promOpenFailures.WithLabelValues(strconv.Itoa(id), r)
	}
	for _, r := range lostReasons {
		s.promLost.WithLabelValues(strconv.Itoa(id), r)
	}
}

func (s *Stats) started(kind string) {
	s.active[kind].Add(1)
	s.promActive.WithLabelValues(kind).Inc()
	if kind == KindAccount {
		s.Activations.Add(1)
		s.promActivate.WithLabelValues("activate").Inc()
	}
}

func (s *Stats) stopped(kind string) {
	s.active[kind].Add(-1)
	s.promActive.WithLabelValues(kind).Dec()
	if kind == KindAccount {
		s.Passivations.Add(1)
		s.promActivate.WithLabelValues("passivate").Inc()
	}
}

// openFailed counts a failed open of partition id (reason "damaged" or
// "error"); failing says the partition has just entered the failed state.
func (s *Stats) openFailed(id int, reason string, failing bool) {
	s.promOpenFailures.WithLabelValues(strconv.Itoa(id), reason).Inc()
	if failing {
		s.promFailed.Inc()
	}
}

// partitionLost counts a failure of partition id's open data (reason
// "fenced": a newer epoch; "io": a write or sync error).
func (s *Stats) partitionLost(id int, reason string) {
	s.promLost.WithLabelValues(strconv.Itoa(id), reason).Inc()
}

// openRecovered: a partition in the failed state opened, or its actor
// stopped.
func (s *Stats) openRecovered() { s.promFailed.Dec() }

// queueDamaged counts a message held as damaged.
func (s *Stats) queueDamaged() {
	s.QueueDamaged.Add(1)
	s.promDamaged.Inc()
}

// Active returns the number of live actors per kind.
func (s *Stats) Active() map[string]int {
	out := make(map[string]int, len(s.active))
	for k, v := range s.active {
		out[k] = int(v.Load())
	}
	return out
}

// Since is when the counters started.
func (s *Stats) Since() time.Time { return s.since }

func (s *Stats) result(path, outcome string) {
	s.promResults.WithLabelValues(path, outcome).Inc()
}

// recorded counts the queue's verdict on one recipient after an attempt;
// latency is the time since the message was queued.
func (s *Stats) recorded(r *mail.Recipient, v verdict, latency time.Duration) {
	path := "relay"
	if r.Local() {
		path = "local"
	}
	switch v {
	case delivered:
		s.delivered(latency)
		if r.Local() {
			s.DeliveredLocal.Add(1)
		} else {
			s.Relayed.Add(1)
		}
		s.result(path, "delivered")
		s.relayResult(r, "delivered")
	case deferred:
		s.Deferred.Add(1)
		s.result(path, "deferred")
		s.relayResult(r, "deferred")
	default:
		s.failed(r, path)
	}
}

// failed counts a recipient that failed for good on path (local, relay,
// transfer).
func (s *Stats) failed(r *mail.Recipient, path string) {
	s.relayResult(r, "failed")
	s.Bounced.Add(1)
	s.result(path, "failed")
}

func (s *Stats) delivered(latency time.Duration) {
	s.promLatency.Observe(latency.Seconds())
	s.lat.add(latency)
}

func (s *Stats) depth(n int) {
	s.QueueDepth.Store(int64(n))
	s.promDepth.Set(float64(n))
}

// LatencyQuantiles returns quantiles (in [0,1]) of the most recent
// delivery latencies, received -> stored.
func (s *Stats) LatencyQuantiles(qs ...float64) []time.Duration { return s.lat.quantiles(qs...) }

// latencyRing keeps the last n samples.
type latencyRing struct {
	mu   sync.Mutex
	buf  []time.Duration
	next int
	full bool
}

func newLatencyRing(n int) *latencyRing { return &latencyRing{buf: make([]time.Duration, n)} }

func (r *latencyRing) add(d time.Duration) {
	r.mu.Lock()
	r.buf[r.next] = d
	r.next++
	if r.next == len(r.buf) {
		r.next, r.full = 0, true
	}
	r.mu.Unlock()
}

func (r *latencyRing) quantiles(qs ...float64) []time.Duration {
	r.mu.Lock()
	n := r.next
	if r.full {
		n = len(r.buf)
	}
	s := append([]time.Duration(nil), r.buf[:n]...)
	r.mu.Unlock()
	out := make([]time.Duration, len(qs))
	if len(s) == 0 {
		return out
	}
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	for i, q := range qs {
		k := int(q*float64(len(s)-1) + 0.5)
		out[i] = s[min(max(k, 0), len(s)-1)]
	}
	return out
}
