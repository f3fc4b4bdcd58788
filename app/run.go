package app

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"
	"golang.org/x/sync/errgroup"

	"github.com/attune-go/attune/app/database"
	"github.com/attune-go/attune/app/metrics"
	"github.com/attune-go/attune/broker"
	"github.com/attune-go/attune/broker/amqpbroker"
	"github.com/attune-go/attune/broker/membroker"
	"github.com/attune-go/attune/broker/notify"
	"github.com/attune-go/attune/broker/relay"
	"github.com/attune-go/attune/modules/api"
	"github.com/attune-go/attune/modules/api/webui"
	"github.com/attune-go/attune/modules/executor"
	"github.com/attune-go/attune/modules/pack/cache"
	"github.com/attune-go/attune/modules/retention"
	"github.com/attune-go/attune/modules/rules"
	"github.com/attune-go/attune/modules/sensor"
	"github.com/attune-go/attune/modules/worker"
	"github.com/attune-go/attune/store"
	"github.com/attune-go/attune/store/seal"
)

// module is what every role module offers: a name and a Run that blocks until ctx ends,
// drains, and returns nil on a clean stop.
type module interface {
	Name() string
	Run(ctx context.Context) error
}

// infrastructure is what the roles of one process share.
type infrastructure struct {
	store    *store.Store
	broker   broker.Broker
	http     *httpServer
	notifier *notify.Notifier
	relay    *relay.Relay
	keyring  *seal.Keyring
	// metrics is nil with --metrics=false.
	metrics *metrics.Metrics
}

// serve runs the configured roles until ctx ends or one of them fails. Start order: pool,
// schema, broker, HTTP listener, modules. Stop order is the reverse: readiness off and the
// HTTP server stops taking requests, modules drain, then the broker closes, then the pool.
func serve(ctx context.Context, cfg serveConfig, logger *slog.Logger) error {
	logger.InfoContext(ctx, "starting attune", "version", version, "roles", roleNames(cfg.roles))
	pool, err := database.Open(ctx, cfg.databaseURL, logger)
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := database.PrepareSchema(ctx, pool, cfg.migrate, logger); err != nil {
		return err
	}
	var mx *metrics.Metrics
	var batchSizes store.BatchSizes
	if cfg.metrics {
		mx = metrics.New()
		mx.WatchPool(pool)
		batchSizes = mx.BatchSizes
	}

	br, err := openBroker(ctx, cfg, mx, logger)
	if err != nil {
		return err
	}
	defer func() {
		if err := br.Close(); err != nil {
			logger.Warn("close broker", "module", "broker", "err", err)
		}
	}()

	st := store.NewObservedStore(pool, batchSizes)
	keyring, err := openKeyring(ctx, st, cfg.keys, logger)
	if err != nil {
		return err
	}
	// A datastore secret this process cannot open would fail every template that reads it;
	// better one clear refusal now. (Other columns are checked by "attune key rotate".)
	if err := requireKeys(ctx, st, keyring, []store.SealedColumn{store.KeySealedColumn}, "refusing to start"); err != nil {
		return err
	}
	if err := registerPacks(store.WithActor(ctx, store.System), st, cfg.packsDir, logger); err != nil {
		return err
	}
	srv, err := newHTTPServer(cfg.httpAddr, map[string]pinger{"database": st, "broker": br}, mx, logger.With("module", "http"))
	if err != nil {
		return err
	}
	notifier := notify.New(br, notify.Config{Logger: logger.With("module", "notify")})
	rel := relay.New(br, relay.Config{Logger: logger.With("module", "relay")})
	infra := infrastructure{store: st, broker: br, http: srv, notifier: notifier, relay: rel, keyring: keyring, metrics: mx}
	modules, err := buildModules(cfg, infra, logger)
	if err != nil {
		_ = srv.listener.Close()
		return err
	}
	// The notifier and the relay outlive the modules, so that what they commit while
	// draining is still sent, and stop before the broker closes.
	defer runAlongside(ctx, notifier.Run)()
	defer runAlongside(ctx, rel.Run)()
	if dir := ephemeralPackCache(cfg); dir != "" {
		// Named after this process alone, no later process would use it: removed once every
		// module has stopped.
		defer func() { _ = os.RemoveAll(dir) }()
	}
	return run(ctx, cfg.shutdownTimeout, srv, modules, logger)
}

// runAlongside runs a process-wide sender (the notifier, the relay) until the function it
// returns is called, which has it send what is left and waits for that.
func runAlongside(ctx context.Context, run func(context.Context) error) (stop func()) {
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = run(ctx)
	}()
	return func() {
		cancel()
		<-done
	}
}

func openBroker(ctx context.Context, cfg serveConfig, mx *metrics.Metrics, logger *slog.Logger) (broker.Broker, error) {
	opts := broker.Options{
		Namespace:     broker.Namespace(cfg.amqpNamespace),
		DrainTimeout:  cfg.shutdownTimeout,
		SourceService: roleNames(cfg.roles),
		Logger:        logger.With("module", "broker"),
		Meter:         mx.Meter(),
	}
	if len(cfg.amqpURLs) == 0 {
		logger.InfoContext(ctx, "using the in-process broker", "module", "broker")
		return membroker.New(opts), nil
	}
	connectCtx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	host, _ := os.Hostname()
	b, err := amqpbroker.New(connectCtx, amqpbroker.Config{
		URL:            cfg.amqpURLs[0],
		URLs:           cfg.amqpURLs[1:],
		QueueType:      amqpbroker.QueueType(cfg.amqpQueueType),
		Options:        opts,
		ConnectionName: fmt.Sprintf("attune %s on %s (pid %d)", roleNames(cfg.roles), host, os.Getpid()),
	})
	if errors.Is(err, amqpbroker.ErrQueueTypeMismatch) {
		return nil, fmt.Errorf("%w; every process of an installation must use the same --amqp-queue-type / ATTUNE_AMQP_QUEUE_TYPE", err)
	}
	if err != nil {
		return nil, fmt.Errorf("%w; is RabbitMQ running? Start it or fix --amqp-url / ATTUNE_AMQP_URL", err)
	}
	logger.InfoContext(ctx, "connected to RabbitMQ", "module", "broker", "addr", b.Addr(), "queue_type", cfg.amqpQueueType)
	return b, nil
}

// buildModules picks each role's modules: the worker runs actions; the executor turns
// enforcements into executions and schedules them; the sensor role matches events against
// rules; the api serves the REST API on the process's HTTP server.
func buildModules(cfg serveConfig, infra infrastructure, logger *slog.Logger) ([]module, error) {
	var mods []module
	mx := infra.metrics.Modules()
	add := func(m module, err error) error {
		if err != nil {
			return err
		}
		mods = append(mods, m)
		return nil
	}
	for _, role := range cfg.roles {
		log := logger.With("module", string(role))
		var err error
		switch role {
		case RoleWorker:
			host, _ := os.Hostname()
			err = add(worker.New(worker.Config{
				Name:              cfg.workerName,
				Labels:            cfg.workerLabels,
				Concurrency:       cfg.workerConcurrency,
				Host:              host,
				PID:               os.Getpid(),
				HeartbeatInterval: cfg.workerHeartbeat,
				Timeout:           cfg.workerTimeout,
				Companion:         companionCommand(cfg.logs),
				APIURL:            workerAPIURL(cfg, infra.http.Addr()),
				PackCache:         cmp.Or(cfg.workerPackCache, ephemeralPackCache(cfg)),
			}, worker.Deps{Logger: log, Store: infra.store, Broker: infra.broker, Relay: infra.relay, Notifier: infra.notifier, Opener: infra.keyring,
				Metrics: mx.Worker}))
			if infra.metrics != nil {
				infra.metrics.WorkerSlots(cfg.workerConcurrency)
			}
		case RoleExecutor:
			err = add(executor.New(executor.Config{WorkerAliveWithin: cfg.workerTimeout, WorkerWaitTimeout: cfg.workerWaitTimeout},
				executor.Deps{Logger: log, Store: infra.store, Broker: infra.broker, Relay: infra.relay, Notifier: infra.notifier, Sealer: infra.keyring,
					Metrics: mx.Executor}))
			if err == nil {
				err = add(retention.New(retention.Config{Keep: cfg.retain}, retention.Deps{Logger: logger.With("module", "retention"), Store: infra.store, Counter: mx.Retention}))
			}
			if infra.metrics != nil {
				infra.metrics.WatchQueues(infra.store, log)
			}
		case RoleSensor:
			err = add(rules.New(rules.Config{}, rules.Deps{Logger: logger.With("module", "rules"), Store: infra.store, Broker: infra.broker, Relay: infra.relay, Sealer: infra.keyring,
				Metrics: mx.Rules}))
			if err == nil {
				err = add(sensor.New(sensor.Config{Sensors: sensor.Sensors{
					Holder: replicaName(), LeaseTTL: cfg.sensorLease, APIURL: workerAPIURL(cfg, infra.http.Addr()),
					PackCache: cfg.sensorPackCache,
				}}, sensor.Deps{Logger: log, Store: infra.store, Broker: infra.broker, Relay: infra.relay, Notifier: infra.notifier}))
			}
		case RoleAPI:
			err = add(api.New(api.Config{
				AuthDisabled: !cfg.auth, AdminPassword: cfg.adminPassword, AccessTTL: cfg.accessTTL, RefreshTTL: cfg.refreshTTL,
				WorkerTimeout: cfg.workerTimeout, Replica: replicaName(), WebhookRate: cfg.webhookRate,
			}, api.Deps{
				Logger: log, Store: infra.store, Broker: infra.broker, Relay: infra.relay, Notifier: infra.notifier,
				Routes: infra.http.echo.Group("/api/v1"), Auth: infra.http.echo.Group("/auth"), Keyring: infra.keyring,
			}))
			if err == nil {
				err = serveUI(infra.http.echo)
			}
		}
		if err != nil {
			return nil, err
		}
	}
	return mods, nil
}

// workerAPIURL is the API address a worker gives its actions: --worker-api-url, else this
// process's own API when it runs the api role (its listener's port, on the loopback when it
// listens on every address), else http://localhost:8080.
func workerAPIURL(cfg serveConfig, listening string) string {
	if cfg.workerAPIURL != "" {
		return strings.TrimRight(cfg.workerAPIURL, "/")
	}
	if !slices.Contains(cfg.roles, RoleAPI) {
		return "http://localhost:8080"
	}
	host, port, err := net.SplitHostPort(listening)
	if err != nil {
		return "http://localhost:8080"
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// replicaName names this api process's own live-stream queue: readable in rabbitmqctl, and
// unique even for two processes of one host that reuse a pid across restarts.
func replicaName() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%s-%d-%s", cmp.Or(host, "api"), os.Getpid(), uuid.NewString()[:8])
}

// run serves HTTP and runs every module until ctx ends or one fails; the first failure stops
// the rest. After the stop it waits at most shutdownTimeout (plus a moment for the HTTP
// server) for modules to drain.
func run(ctx context.Context, shutdownTimeout time.Duration, srv *httpServer, modules []module, logger *slog.Logger) error {
	g, gctx := errgroup.WithContext(ctx)
	running := newRunningSet()

	g.Go(srv.serve)
	g.Go(func() error {
		<-gctx.Done()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(gctx), shutdownTimeout)
		defer cancel()
		return srv.shutdown(sctx)
	})
	for _, m := range modules {
		running.add(m.Name())
		g.Go(func() error {
			defer running.remove(m.Name())
			err := m.Run(gctx)
			switch {
			case err != nil:
				return fmt.Errorf("%s: %w", m.Name(), err)
			case gctx.Err() == nil:
				return fmt.Errorf("%s stopped unexpectedly", m.Name())
			}
			return nil
		})
	}
	logger.InfoContext(ctx, "attune ready", "http_addr", srv.Addr())

	done := make(chan error, 1)
	go func() { done <- g.Wait() }()
	select {
	case err := <-done:
		return finish(ctx, err, logger)
	case <-gctx.Done():
	}
	logger.InfoContext(ctx, "shutting down", "shutdown_timeout", shutdownTimeout)
	// Modules drain within shutdownTimeout; the HTTP shutdown and closing handlers get a
	// little more before the process gives up on them.
	grace := shutdownTimeout + min(shutdownTimeout, 10*time.Second)
	select {
	case err := <-done:
		return finish(ctx, err, logger)
	case <-time.After(grace):
		return fmt.Errorf("shutdown timed out after %s waiting for %v", grace, running.all())
	}
}

func finish(ctx context.Context, err error, logger *slog.Logger) error {
	if err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	logger.InfoContext(ctx, "attune stopped")
	return nil
}

// runningSet names the modules still running, for a shutdown that runs out of time.
type runningSet struct {
	mu    sync.Mutex
	names map[string]int
}

func newRunningSet() *runningSet { return &runningSet{names: make(map[string]int)} }

func (r *runningSet) add(name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.names[name]++
}

func (r *runningSet) remove(name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.names[name]--; r.names[name] <= 0 {
		delete(r.names, name)
	}
}

func (r *runningSet) all() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, 0, len(r.names))
	for n := range r.names {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// ephemeralPackCache is the worker's pack cache when it is made for this process alone: the
// default directory of a worker whose name was generated (<host>-<pid>), which a restart
// would never find again. "" when the cache is given or the name is stable, and then kept.
func ephemeralPackCache(cfg serveConfig) string {
	if cfg.workerPackCache != "" || !cfg.workerNameGenerated || !slices.Contains(cfg.roles, RoleWorker) {
		return ""
	}
	return cache.DefaultDir("packs", cfg.workerName)
}

// serveUI answers the web UI at / beside the API it calls.
func serveUI(e *echo.Echo) error {
	ui, err := webui.New()
	if err != nil {
		return err
	}
	ui.Register(e)
	return nil
}
