package bench

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/attune-go/attune/app/cli"
	"github.com/attune-go/attune/app/database"
	"github.com/attune-go/attune/app/metrics"
	"github.com/attune-go/attune/broker"
	"github.com/attune-go/attune/broker/amqpbroker"
	"github.com/attune-go/attune/broker/membroker"
	"github.com/attune-go/attune/store"
)

// benchRun is one run's fresh database, store and broker namespace.
type benchRun struct {
	pool    *pgxpool.Pool
	st      *store.Store
	br      *countingBroker
	meter   costMeter
	mx      *metrics.Metrics // nil with --metrics=false
	cleanup []func()
}

// openBenchRun creates the database with its schema and the broker; close undoes both.
func openBenchRun(ctx context.Context, cfg benchConfig, brokerName string, logger *slog.Logger) (_ *benchRun, err error) {
	run := &benchRun{}
	defer func() {
		if err != nil {
			run.close()
		}
	}()
	dbURL, dbName, drop, err := benchDatabase(ctx, cfg.databaseURL)
	if err != nil {
		return nil, err
	}
	run.br = &countingBroker{}
	run.meter = costMeter{adminURL: cfg.databaseURL, database: dbName, broker: run.br}
	run.cleanup = append(run.cleanup, drop)
	if run.pool, err = database.Open(ctx, dbURL, logger); err != nil {
		return nil, err
	}
	run.cleanup = append(run.cleanup, run.pool.Close)
	if err := database.PrepareSchema(ctx, run.pool, true, logger); err != nil {
		return nil, err
	}
	var sizes store.BatchSizes
	if cfg.metrics {
		run.mx = metrics.New()
		run.mx.WatchPool(run.pool)
		sizes = run.mx.BatchSizes
	}
	run.st = store.NewObservedStore(run.pool, sizes)

	opts := broker.Options{Namespace: broker.Namespace("bench." + uuid.NewString()[:8]), Logger: logger, Meter: run.mx.Meter()}
	if brokerName == "inprocess" {
		run.br.Broker = membroker.New(opts)
	} else {
		ab, err := amqpbroker.New(ctx, amqpbroker.Config{URL: cfg.amqpURL, Options: opts})
		if err != nil {
			return nil, err
		}
		run.cleanup = append(run.cleanup, func() { _ = ab.Teardown() })
		run.br.Broker = ab
	}
	run.cleanup = append(run.cleanup, func() { _ = run.br.Close() })
	return run, nil
}

// close releases in the reverse order of opening: the database is dropped last, once nothing
// holds a connection to it.
func (r *benchRun) close() {
	for i := len(r.cleanup) - 1; i >= 0; i-- {
		r.cleanup[i]()
	}
}

// benchDatabase creates a database for one run next to the one url names, and returns its
// URL, its name and a function that drops it.
func benchDatabase(ctx context.Context, base string) (string, string, func(), error) {
	u, err := url.Parse(base)
	if err != nil {
		return "", "", nil, cli.Usage(fmt.Errorf("invalid --database-url: %w", err))
	}
	name := "attune_bench_" + strings.ReplaceAll(uuid.NewString(), "-", "")[:12]
	u.Path = "/" + name
	admin := *u
	admin.Path = "/postgres"
	drop := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, admin.String())
		if err != nil {
			return
		}
		defer conn.Close(ctx)
		_, _ = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	}
	return u.String(), name, drop, nil
}

// metered runs work with the roles mods running, once a worker of runner is up, and returns
// what it cost per unit (units in all). The cost is counted from just before the roles start
// to just after they stop, every backend gone so that PostgreSQL has counted all of their
// commits. work polls through the querier it is given: those statements are the harness's
// own, and left out.
func (r *benchRun) metered(ctx context.Context, mods []module, runner string, units int, work func(ctx context.Context, polls querier) error) (benchCost, error) {
	if _, err := r.meter.quiesce(ctx, r.pool.Reset); err != nil {
		return benchCost{}, err
	}
	before, err := r.meter.snapshot(ctx)
	if err != nil {
		return benchCost{}, err
	}
	stop := startModules(ctx, mods)
	defer stop()
	if err := waitWorker(ctx, r.st, runner); err != nil {
		return benchCost{}, err
	}
	polls := &countingQuerier{querier: r.pool}
	if err := work(ctx, polls); err != nil {
		return benchCost{}, err
	}
	stop()
	backends, err := r.meter.quiesce(ctx, r.pool.Reset)
	if err != nil {
		return benchCost{}, err
	}
	after, err := r.meter.snapshot(ctx)
	if err != nil {
		return benchCost{}, err
	}
	after.backends = backends
	return cost(before, after, units, polls.n.Load()), nil
}
