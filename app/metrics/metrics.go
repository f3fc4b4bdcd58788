// Package metrics is a process's Prometheus metrics: a registry of its own (tests run several
// processes' roles in one test binary), the collectors that read state when scraped, and the
// implementations of the small counting interfaces the modules, the broker and the store
// declare.
package metrics

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics holds every metric of one process. Its methods are safe for concurrent use and
// cheap enough for the hot path: label children that can be known in advance are resolved
// once.
type Metrics struct {
	registry *prometheus.Registry
	*pipeline
	messages
	batches *prometheus.HistogramVec
	web     web
}

// New registers the process's metrics, with the Go runtime's and the process's own, in a
// new registry.
func New() *Metrics {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m := &Metrics{
		registry: reg,
		pipeline: newPipeline(reg),
		messages: newMessages(reg),
		web:      newWeb(reg),
		batches: register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "attune_store_batch_size",
			Help:    "Items per statement of the store's coalesced hot statements, by statement.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 8),
		}, []string{"statement"})),
	}
	return m
}

// What the handler serves at once, and how long a scrape may take: /metrics asks no token,
// and shares its port with the API in an api process, so a flood of scrapes must cost little.
const (
	maxScrapesInFlight = 4
	scrapeTimeout      = 10 * time.Second
)

// Handler serves the registry in Prometheus's text format: at most maxScrapesInFlight scrapes
// at once (the next answer 503), each within scrapeTimeout.
func (m *Metrics) Handler(logger *slog.Logger) http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{
		ErrorLog:            slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		ErrorHandling:       promhttp.ContinueOnError,
		MaxRequestsInFlight: maxScrapesInFlight,
		Timeout:             scrapeTimeout,
	})
}

func register[C prometheus.Collector](reg *prometheus.Registry, c C) C {
	reg.MustRegister(c)
	return c
}
