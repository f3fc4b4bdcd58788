package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/attune-go/attune/app/metrics"
	"github.com/attune-go/attune/modules/api"
)

// pinger is a dependency readiness checks ask.
type pinger interface {
	Ping(ctx context.Context) error
}

// httpServer serves health, readiness, the metrics (unless --metrics=false) and, with the api
// role, the API, on one address whatever the roles.
type httpServer struct {
	echo     *echo.Echo
	server   *http.Server
	listener net.Listener
	// stopping turns readiness off as soon as shutdown begins, so load balancers stop
	// sending work before the server stops taking it.
	stopping atomic.Bool
}

func newHTTPServer(addr string, checks map[string]pinger, mx *metrics.Metrics, logger *slog.Logger) (*httpServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on --http-addr %s: %w", addr, err)
	}
	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	e.HTTPErrorHandler = api.ErrorHandler(logger)
	if mx != nil {
		e.Use(mx.HTTP(e))
	}
	e.Use(middleware.Recover())
	s := &httpServer{
		echo:     e,
		listener: ln,
		server: &http.Server{
			Handler:           e,
			ReadHeaderTimeout: 10 * time.Second,
			ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		},
	}
	e.GET("/healthz", func(c echo.Context) error {
		return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
	})
	e.GET("/readyz", func(c echo.Context) error { return s.ready(c, checks) })
	if mx != nil {
		e.GET("/metrics", echo.WrapHandler(mx.Handler(logger)))
	}
	return s, nil
}

// Addr is the address the server listens on (useful with port 0).
func (s *httpServer) Addr() string { return s.listener.Addr().String() }

func (s *httpServer) ready(c echo.Context, checks map[string]pinger) error {
	status := http.StatusOK
	results := make(map[string]string, len(checks))
	if s.stopping.Load() {
		status = http.StatusServiceUnavailable
		results["shutdown"] = "in progress"
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), 2*time.Second)
	defer cancel()
	for name, p := range checks {
		if err := p.Ping(ctx); err != nil {
			status = http.StatusServiceUnavailable
			results[name] = err.Error()
			continue
		}
		results[name] = "ok"
	}
	word := "ready"
	if status != http.StatusOK {
		word = "not ready"
	}
	return c.JSON(status, map[string]any{"status": word, "checks": results})
}

// serve blocks until the server stops; a shutdown is not an error.
func (s *httpServer) serve() error {
	if err := s.server.Serve(s.listener); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("http server: %w", err)
	}
	return nil
}

// shutdown stops taking requests and waits for those in flight until ctx ends.
func (s *httpServer) shutdown(ctx context.Context) error {
	s.stopping.Store(true)
	if err := s.server.Shutdown(ctx); err != nil {
		_ = s.server.Close()
		return fmt.Errorf("http shutdown: %w", err)
	}
	return nil
}
