package metrics

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/attune-go/attune/store"
)

// poolCollector reads the PostgreSQL pool's figures when scraped.
type poolCollector struct {
	stat func() *pgxpool.Stat
	desc map[string]*prometheus.Desc
}

// WatchPool adds the figures of the process's PostgreSQL pool.
func (m *Metrics) WatchPool(pool *pgxpool.Pool) {
	help := map[string]string{
		"attune_db_pool_acquired_connections":       "Connections of the PostgreSQL pool in use now.",
		"attune_db_pool_idle_connections":           "Connections of the PostgreSQL pool idle now.",
		"attune_db_pool_connections":                "Connections of the PostgreSQL pool open now (acquired, idle and being made).",
		"attune_db_pool_max_connections":            "Most connections the PostgreSQL pool may open.",
		"attune_db_pool_acquires_total":             "Connections taken from the PostgreSQL pool.",
		"attune_db_pool_empty_acquires_total":       "Acquires that found no idle connection and waited for one.",
		"attune_db_pool_acquire_wait_seconds_total": "Time acquires spent waiting for a connection when none was idle.",
	}
	c := poolCollector{stat: pool.Stat, desc: make(map[string]*prometheus.Desc, len(help))}
	for name, h := range help {
		c.desc[name] = prometheus.NewDesc(name, h, nil, nil)
	}
	m.registry.MustRegister(c)
}

func (c poolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.desc {
		ch <- d
	}
}

func (c poolCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.stat()
	gauge := func(name string, v float64) {
		ch <- prometheus.MustNewConstMetric(c.desc[name], prometheus.GaugeValue, v)
	}
	counter := func(name string, v float64) {
		ch <- prometheus.MustNewConstMetric(c.desc[name], prometheus.CounterValue, v)
	}
	gauge("attune_db_pool_acquired_connections", float64(s.AcquiredConns()))
	gauge("attune_db_pool_idle_connections", float64(s.IdleConns()))
	gauge("attune_db_pool_connections", float64(s.TotalConns()))
	gauge("attune_db_pool_max_connections", float64(s.MaxConns()))
	counter("attune_db_pool_acquires_total", float64(s.AcquireCount()))
	counter("attune_db_pool_empty_acquires_total", float64(s.EmptyAcquireCount()))
	counter("attune_db_pool_acquire_wait_seconds_total", s.EmptyAcquireWaitTime().Seconds())
}

// QueueReader reads the policies' queues (store.Queries.AdmissionQueues).
type QueueReader interface {
	AdmissionQueues(ctx context.Context, limit int) ([]store.ActionQueue, error)
}

// queueLimit bounds the actions a scrape reports queues of, the longest first: a label value
// per action, and one bounded statement per scrape.
const queueLimit = 200

// queuesFresh is how long a reading of the policy queues serves the scrapes that follow: however
// many scrape, and however often, a process runs the statement at most once in that time.
const queuesFresh = 5 * time.Second

// queueCollector reads the policies' queues from PostgreSQL when scraped, at most once per
// queuesFresh.
type queueCollector struct {
	reader         QueueReader
	logger         *slog.Logger
	length, oldest *prometheus.Desc
	now            func() time.Time

	// mu is held while the queues are read, so that one statement at most is in flight:
	// scrapes that come meanwhile wait for it and report what it read.
	mu     sync.Mutex
	readAt time.Time // zero: never read
	queues []store.ActionQueue
}

// WatchQueues adds the length and the oldest wait of each action's policy queue, read from
// PostgreSQL when scraped. The figures are the installation's, not the process's: only
// processes running the executor role report them, and dashboards take the max over them.
func (m *Metrics) WatchQueues(reader QueueReader, logger *slog.Logger) {
	m.registry.MustRegister(newQueueCollector(reader, logger))
}

func newQueueCollector(reader QueueReader, logger *slog.Logger) *queueCollector {
	return &queueCollector{
		reader: reader,
		logger: logger,
		length: prometheus.NewDesc("attune_policy_queue_length", "Executions waiting in the queues of an action's policy (the installation's figure, read from PostgreSQL).", []string{"action"}, nil),
		oldest: prometheus.NewDesc("attune_policy_queue_oldest_wait_seconds", "How long the oldest execution waiting in an action's policy queue has waited.", []string{"action"}, nil),
		now:    time.Now,
	}
}

func (c *queueCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.length
	ch <- c.oldest
}

// read returns the queues as last read, reading them again once that is queuesFresh old.
func (c *queueCollector) read() []store.ActionQueue {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.readAt.IsZero() && c.now().Sub(c.readAt) < queuesFresh {
		return c.queues
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	queues, err := c.reader.AdmissionQueues(ctx, queueLimit)
	if err != nil {
		// A scrape while PostgreSQL is away still gives every other figure, and the next
		// period tries again.
		c.logger.Warn("read the policy queues for the metrics", "err", err)
		queues = nil
	}
	c.readAt, c.queues = c.now(), queues
	return queues
}

func (c *queueCollector) Collect(ch chan<- prometheus.Metric) {
	queues := c.read()
	now := c.now()
	for _, q := range queues {
		ch <- prometheus.MustNewConstMetric(c.length, prometheus.GaugeValue, float64(q.Queued), q.ActionRef)
		if q.Oldest != nil {
			ch <- prometheus.MustNewConstMetric(c.oldest, prometheus.GaugeValue, max(now.Sub(*q.Oldest), 0).Seconds(), q.ActionRef)
		}
	}
}
