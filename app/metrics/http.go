package metrics

import (
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
)

// web counts the HTTP server's requests.
type web struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newWeb(reg *prometheus.Registry) web {
	return web{
		requests: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "attune_http_requests_total",
			Help: "HTTP requests answered, by route template (\"unmatched\" for none), method and status code.",
		}, []string{"route", "method", "code"})),
		duration: register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "attune_http_request_duration_seconds",
			Help:    "Time to answer an HTTP request, by route template and method (a live stream counts when it ends).",
			Buckets: prometheus.DefBuckets,
		}, []string{"route", "method"})),
	}
}

// knownMethods are the methods a label names; any other a client sends counts as "other".
var knownMethods = map[string]bool{"GET": true, "HEAD": true, "POST": true, "PUT": true, "PATCH": true, "DELETE": true, "OPTIONS": true}

// unmatched is the route of a request no route took: never its path, which anyone can vary.
const unmatched = "unmatched"

// HTTP counts e's requests by route template. It goes first, so that it sees the status the
// error handler answers with, panics included.
func (m *Metrics) HTTP(e *echo.Echo) echo.MiddlewareFunc {
	// The routes are all added before the server takes its first request.
	var once sync.Once
	var routes map[string]bool
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			start := time.Now()
			err := next(c)
			if err != nil {
				c.Error(err)
			}
			once.Do(func() {
				routes = make(map[string]bool)
				for _, r := range e.Routes() {
					routes[r.Method+" "+r.Path] = true
				}
			})
			method := c.Request().Method
			if !knownMethods[method] {
				method = "other"
			}
			route := c.Path()
			status := c.Response().Status
			// Echo names a path near the one asked for when no route matches; and a catch-all
			// (the web UI's /*) that found nothing at the path took no route either.
			if !routes[method+" "+route] || (status == http.StatusNotFound && strings.HasSuffix(route, "*")) {
				route = unmatched
			}
			m.web.requests.WithLabelValues(route, method, strconv.Itoa(status)).Inc()
			m.web.duration.WithLabelValues(route, method).Observe(time.Since(start).Seconds())
			return nil
		}
	}
}
