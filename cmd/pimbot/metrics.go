package main

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/pimbot/pimbot/bot"
	"github.com/pimbot/pimbot/obs"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"
)

// metrics are pimbot's Prometheus metrics, on a registry of their own (no global state,
// so tests and several apps in one process do not collide).
type metrics struct {
	reg         *prometheus.Registry
	requests    *prometheus.CounterVec
	decisions   *prometheus.CounterVec
	jobs        *prometheus.CounterVec
	jobLag      *prometheus.HistogramVec
	retries     *prometheus.CounterVec
	takenOver   prometheus.Counter
	deadLetters *prometheus.CounterVec
	undelivered *prometheus.CounterVec
	calls       *prometheus.CounterVec
	callLatency *prometheus.HistogramVec
	httpReqs    *prometheus.CounterVec
	httpLatency *prometheus.HistogramVec
}

func newMetrics() *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pimbot_requests_total",
		Help: "Activation and extension requests by surface and outcome (accepted, invalid, duplicate, limited, error)."},
		[]string{"surface", "outcome"})
	m.decisions = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pimbot_decisions_total",
		Help: "Approver decisions (approve, deny)."}, []string{"decision"})
	m.jobs = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pimbot_jobs_total",
		Help: "Jobs run, by kind (activate, end, timeout, remind, notify) and result (ok, error)."}, []string{"kind", "result"})
	m.jobLag = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "pimbot_job_lag_seconds",
		Help:    "Start time of a job minus its due time.",
		Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300}}, []string{"kind"})
	m.retries = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pimbot_job_retries_total",
		Help: "Jobs that failed and were put back with backoff (a notification is dropped after its last attempt)."}, []string{"kind"})
	m.takenOver = prometheus.NewCounter(prometheus.CounterOpts{Name: "pimbot_leases_taken_over_total",
		Help: "Jobs claimed after the lease of another worker ran out (a replica died or stalled)."})
	m.calls = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pimbot_api_calls_total",
		Help: "Outbound API calls (each attempt) by service (slack, teams, graph, entra), operation and HTTP status (or error)."},
		[]string{"service", "operation", "status"})
	m.callLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "pimbot_api_call_duration_seconds",
		Help:    "Latency of outbound API calls by service and operation.",
		Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}}, []string{"service", "operation"})
	m.httpReqs = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pimbot_http_requests_total",
		Help: "Inbound HTTP requests by route and status code."}, []string{"route", "code"})
	m.httpLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "pimbot_http_request_duration_seconds",
		Help:    "Time to answer inbound HTTP requests (for Slack: the ack), by route.",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 3}}, []string{"route"})
	m.deadLetters = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pimbot_jobs_dead_lettered_total",
		Help: "Jobs moved to the dead-letter set because they (or their request) could not be decoded, by kind. Any increase needs an operator."},
		[]string{"kind"})
	m.undelivered = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pimbot_notifications_undelivered_total",
		Help: "Notifications given up: the platform refused them for good (channel not found, app not in the channel) or they were no longer worth retrying, by surface and event. Each is also in the log and the audit trail."},
		[]string{"surface", "event"})
	m.reg.MustRegister(m.requests, m.decisions, m.jobs, m.jobLag, m.retries, m.takenOver, m.deadLetters, m.undelivered,
		m.calls, m.callLatency, m.httpReqs, m.httpLatency,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// hooks feed the engine's observations into the metrics.
func (m *metrics) hooks() bot.Hooks {
	return bot.Hooks{
		Submitted: func(surface, outcome string) { m.requests.WithLabelValues(surface, outcome).Inc() },
		Decided:   func(decision string) { m.decisions.WithLabelValues(decision).Inc() },
		JobDone: func(kind string, lag time.Duration, err error) {
			result := "ok"
			if err != nil {
				result = "error"
				m.retries.WithLabelValues(kind).Inc()
			}
			m.jobs.WithLabelValues(kind, result).Inc()
			m.jobLag.WithLabelValues(kind).Observe(max(lag, 0).Seconds())
		},
		TakenOver:    func() { m.takenOver.Inc() },
		DeadLettered: func(kind string) { m.deadLetters.WithLabelValues(kind).Inc() },
		Undelivered:  func(notifier, event string) { m.undelivered.WithLabelValues(notifier, event).Inc() },
	}
}

// ObserveCall records one outbound API call (obs.Observer).
func (m *metrics) ObserveCall(service, operation, status string, d time.Duration) {
	m.calls.WithLabelValues(service, operation, status).Inc()
	m.callLatency.WithLabelValues(service, operation).Observe(d.Seconds())
}

var _ obs.Observer = (*metrics)(nil)

// handler serves GET /metrics.
func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Timeout: 10 * time.Second})
}

// instrumentHTTP counts and times inbound requests by the route pattern that served them.
func (m *metrics) instrumentHTTP(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, route := mux.Handler(r)
		if route == "" {
			route = "other"
		}
		sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		start := time.Now()
		mux.ServeHTTP(sw, r)
		m.httpLatency.WithLabelValues(route).Observe(time.Since(start).Seconds())
		m.httpReqs.WithLabelValues(route, strconv.Itoa(sw.code)).Inc()
	})
}

type statusWriter struct {
	http.ResponseWriter
	code  int
	wrote bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.code, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// queueCollector reads the job queue's figures from Redis on each scrape. Every query is
// O(1) or O(log n) except the count of active grants, which scans the job sets (an active
// grant is exactly one pending "end:" job) and is therefore cached for activeTTL.
type queueCollector struct {
	rdb    redis.UniversalClient
	prefix string // "{pimbot}:" as the store writes its keys
	now    func() time.Time

	up, scheduled, due, leased, open, active *prometheus.Desc

	mu         sync.Mutex
	activeAt   time.Time
	activeN    int
	activeErr  error
	activeTTL  time.Duration
	scanBudget time.Duration
}

func newQueueCollector(rdb redis.UniversalClient, storePrefix string, now func() time.Time) *queueCollector {
	d := func(name, help string) *prometheus.Desc { return prometheus.NewDesc(name, help, nil, nil) }
	return &queueCollector{rdb: rdb, prefix: "{" + storePrefix + "}:", now: now, activeTTL: 15 * time.Second, scanBudget: 5 * time.Second,
		up:        d("pimbot_redis_up", "1 if Redis answered the last scrape's queries."),
		scheduled: d("pimbot_jobs_scheduled", "Jobs waiting in the due set (ZCARD), due or not."),
		due:       d("pimbot_jobs_due", "Jobs due now and not yet claimed (the backlog)."),
		leased:    d("pimbot_jobs_leased", "Jobs claimed by a worker and not yet acknowledged."),
		open:      d("pimbot_open_requests", "Open requests (waiting for MFA, pending, scheduled or active)."),
		active:    d("pimbot_active_grants", "Grants the directory holds now (requests in state active), refreshed at most every 15 s."),
	}
}

func (c *queueCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.up, c.scheduled, c.due, c.leased, c.open, c.active} {
		ch <- d
	}
}

func (c *queueCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	now := strconv.FormatInt(c.now().UnixMilli(), 10)
	pipe := c.rdb.Pipeline()
	scheduled := pipe.ZCard(ctx, c.prefix+"due")
	due := pipe.ZCount(ctx, c.prefix+"due", "-inf", now)
	leased := pipe.ZCard(ctx, c.prefix+"lease")
	open := pipe.HLen(ctx, c.prefix+"open")
	if _, err := pipe.Exec(ctx); err != nil {
		ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 1)
	ch <- prometheus.MustNewConstMetric(c.scheduled, prometheus.GaugeValue, float64(scheduled.Val()))
	ch <- prometheus.MustNewConstMetric(c.due, prometheus.GaugeValue, float64(due.Val()))
	ch <- prometheus.MustNewConstMetric(c.leased, prometheus.GaugeValue, float64(leased.Val()))
	ch <- prometheus.MustNewConstMetric(c.open, prometheus.GaugeValue, float64(open.Val()))
	if n, err := c.activeGrants(); err == nil {
		ch <- prometheus.MustNewConstMetric(c.active, prometheus.GaugeValue, float64(n))
	}
}

// activeGrants counts distinct "end:" jobs in the due and lease sets with ZSCAN (no
// command blocks Redis for long), at most once per activeTTL.
func (c *queueCollector) activeGrants() (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.activeAt.IsZero() && time.Since(c.activeAt) < c.activeTTL {
		return c.activeN, c.activeErr
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.scanBudget)
	defer cancel()
	leased := map[string]bool{}
	err := c.scanEnds(ctx, c.prefix+"lease", func(id string) { leased[id] = true })
	n := len(leased)
	if err == nil {
		err = c.scanEnds(ctx, c.prefix+"due", func(id string) {
			if !leased[id] {
				n++
			}
		})
	}
	c.activeAt, c.activeN, c.activeErr = time.Now(), n, err
	return n, err
}

func (c *queueCollector) scanEnds(ctx context.Context, key string, f func(string)) error {
	var cursor uint64
	for {
		kv, next, err := c.rdb.ZScan(ctx, key, cursor, bot.JobEnd+":*", 5000).Result()
		if err != nil {
			return err
		}
		for i := 0; i < len(kv); i += 2 { // member, score, member, score...
			f(kv[i])
		}
		if next == 0 {
			return nil
		}
		cursor = next
		if ctx.Err() != nil {
			return errors.New("counting active grants took too long")
		}
	}
}
