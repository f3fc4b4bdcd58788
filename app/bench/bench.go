// Package bench measures the whole pipeline from inside one process: executions per second and
// latency on each broker, how fast a policy queue drains, how long workflows take, and what
// each execution costs the database and the broker.
package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/attune-go/attune/app/cli"
	"github.com/attune-go/attune/app/database"
	"github.com/attune-go/attune/broker"
	"github.com/attune-go/attune/broker/notify"
	"github.com/attune-go/attune/modules/executor"
	"github.com/attune-go/attune/modules/pack"
	"github.com/attune-go/attune/modules/rules"
	"github.com/attune-go/attune/modules/worker"
	"github.com/attune-go/attune/store"
	"github.com/attune-go/attune/store/seal"
)

type benchConfig struct {
	events      int
	brokers     string
	databaseURL string
	amqpURL     string
	concurrency int
	spawns      int
	json        bool
	timeout     time.Duration
	cpuProfile  string
	rate        int
	backlog     int
	action      string
	statements  bool
	// metrics counts what serve's metrics count, so that the figures include their cost.
	metrics bool
	// workflow measures workflows instead of events: a sequence of workflowTasks tasks run
	// workflowRuns times, and a fan-out over each of workflowItems.
	workflow      bool
	workflowTasks int
	workflowRuns  int
	workflowItems []int
}

// benchActions are the actions --action can choose: the shell action most figures in
// docs/benchmarks.md are about; print, a shell action that prints 200 lines (what its output
// costs: the stored result, and the live output the worker streams); and noop, which spawns
// nothing and so measures the platform alone.
var benchActions = map[string]struct {
	ref, runner, params string
}{
	"shell": {ref: "core.local", runner: "shell", params: `{"cmd": "true"}`},
	"print": {ref: "core.local", runner: "shell", params: `{"cmd": "seq 1 200"}`},
	"noop":  {ref: "core.noop", runner: "noop", params: `{}`},
}

// benchResult is one broker's figures; its JSON form is what --json prints.
type benchResult struct {
	Broker           string  `json:"broker"`
	Executions       int     `json:"executions"`
	ExecutionsPerSec float64 `json:"executions_per_sec"`
	P50ms            float64 `json:"p50_ms"`
	P99ms            float64 `json:"p99_ms"`
	SpawnPerSec      float64 `json:"spawn_per_sec"`
	Ratio            float64 `json:"ratio"`
	benchCost
}

// NewCommand is "attune bench".
func NewCommand(streams cli.Streams) *cobra.Command {
	var cfg benchConfig
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure executions per second through the whole pipeline",
		Long: `Pushes --events events through the whole pipeline (event, rule match, enforcement,
execution, scheduling, a worker running "/bin/sh -c true", completion) with every role in this
process, once per broker, and prints executions per second and the event-to-completed latency
(p50, p99) next to the raw rate of "/bin/sh -c true" spawns measured in the same run.

With --backlog N it measures a policy queue instead: N executions of one action wait behind a
concurrency limit of 10, and it prints how fast the queue drains at its start and at its end.

With --workflow it measures workflows instead: one of --workflow-tasks sequential core.noop
tasks, run --workflow-runs times (median, best, time per task hop), then a with-items fan-out
of core.noop at concurrency 16 over each count of --workflow-items (total, time per item),
each from the creation of the workflow's execution to its end.

Each run uses a fresh database created next to the one --database-url names (and dropped
after), and a namespace of its own on RabbitMQ, so it can run beside a live installation.`,
		Example: `  attune bench --events 5000
  attune bench --brokers rabbitmq --json
  attune bench --backlog 20000 --brokers rabbitmq
  attune bench --workflow --workflow-items 100,1000`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := cli.ApplyEnv(cmd.Flags()); err != nil {
				return cli.Usage(err)
			}
			if cfg.events < 1 || cfg.concurrency < 1 {
				return cli.Usage(errors.New("--events and --concurrency must be at least 1"))
			}
			if _, ok := benchActions[cfg.action]; !ok {
				return cli.Usage(fmt.Errorf("invalid --action %q: want shell, print or noop", cfg.action))
			}
			if cfg.backlog != 0 && cfg.backlog < minBacklog {
				return cli.Usage(fmt.Errorf("--backlog must be 0 (off) or at least %d", minBacklog))
			}
			if err := checkWorkflowFlags(cmd, cfg); err != nil {
				return cli.Usage(err)
			}
			return runBench(cmd.Context(), cfg, streams)
		},
	}
	fs := cmd.Flags()
	fs.IntVar(&cfg.events, "events", 2000, "events to push through the pipeline per broker")
	fs.StringVar(&cfg.brokers, "brokers", "inprocess,rabbitmq", "brokers to measure: inprocess, rabbitmq, or both")
	fs.StringVar(&cfg.databaseURL, "database-url", database.DefaultURL, "PostgreSQL server to create the benchmark databases on")
	fs.StringVar(&cfg.amqpURL, "amqp-url", "amqp://guest:guest@localhost:5672/", "RabbitMQ for the rabbitmq run")
	fs.IntVar(&cfg.concurrency, "concurrency", 16, "actions the worker runs at once")
	fs.IntVar(&cfg.spawns, "spawns", 3000, "spawns of /bin/sh -c true for the raw spawn rate")
	fs.BoolVar(&cfg.json, "json", false, "print one JSON object per broker")
	fs.BoolVar(&cfg.metrics, "metrics", true, "count what serve's --metrics counts, as serve does by default; false measures without that cost")
	fs.DurationVar(&cfg.timeout, "timeout", 10*time.Minute, "give up on a run after this long")
	fs.IntVar(&cfg.rate, "rate", 0, "events per second to inject; 0 floods (throughput), a modest rate measures latency without queueing")
	fs.IntVar(&cfg.backlog, "backlog", 0, "instead of events, queue this many executions behind a concurrency limit of 10 and measure how fast the queue drains; 0 is off")
	fs.StringVar(&cfg.action, "action", "shell", `the action each event runs: shell (core.local "true"), print (core.local "seq 1 200": 200 lines of output) or noop (core.noop, no process: the platform alone)`)
	fs.StringVar(&cfg.cpuProfile, "cpuprofile", "", "write a CPU profile of the runs to this file (go tool pprof reads it)")
	fs.BoolVar(&cfg.workflow, "workflow", false, "instead of events, time workflows: a sequence of core.noop tasks and with-items fan-outs of core.noop")
	fs.IntVar(&cfg.workflowTasks, "workflow-tasks", 40, "tasks of the --workflow sequence")
	fs.IntVar(&cfg.workflowRuns, "workflow-runs", 5, "runs of the --workflow sequence, one after the other")
	fs.IntSliceVar(&cfg.workflowItems, "workflow-items", []int{100, 1000}, "item counts of the --workflow fan-outs, one fan-out each")
	fs.BoolVar(&cfg.statements, "statements", false, "also print each statement run at least once per twenty executions, with its calls per execution (needs pg_stat_statements)")
	cli.BindEnv(fs, "database-url", "ATTUNE_DATABASE_URL")
	cli.BindEnv(fs, "amqp-url", "ATTUNE_AMQP_URL")
	return cmd
}

func runBench(ctx context.Context, cfg benchConfig, streams cli.Streams) error {
	logger := slog.New(slog.NewTextHandler(streams.Err, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if cfg.cpuProfile != "" {
		f, err := os.Create(cfg.cpuProfile)
		if err != nil {
			return fmt.Errorf("create --cpuprofile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("start cpu profile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	for _, name := range strings.Split(cfg.brokers, ",") {
		name = strings.TrimSpace(name)
		if name != "inprocess" && name != "rabbitmq" {
			return cli.Usage(fmt.Errorf("invalid --brokers %q: want inprocess, rabbitmq or both", cfg.brokers))
		}
		if cfg.workflow {
			if err := benchWorkflows(ctx, cfg, name, logger, streams.Out); err != nil {
				return err
			}
			continue
		}
		if cfg.backlog > 0 {
			r, err := backlogOnce(ctx, cfg, name, logger)
			if err != nil {
				return fmt.Errorf("bench %s backlog: %w", name, err)
			}
			if err := printBacklog(streams.Out, r, cfg.json); err != nil {
				return err
			}
			continue
		}
		spawnRate, err := measureSpawns(ctx, cfg.spawns)
		if err != nil {
			return err
		}
		r, err := benchOnce(ctx, cfg, name, logger)
		if err != nil {
			return fmt.Errorf("bench %s: %w", name, err)
		}
		r.SpawnPerSec = spawnRate
		r.Ratio = r.ExecutionsPerSec / spawnRate
		if !cfg.statements {
			r.Top = nil
		}
		if err := printBench(streams.Out, r, cfg.json); err != nil {
			return err
		}
		if cfg.statements && !cfg.json {
			if err := printCost(streams.Out, r.benchCost); err != nil {
				return err
			}
		}
	}
	return nil
}

func printBench(w io.Writer, r benchResult, asJSON bool) error {
	if asJSON {
		return printJSONLine(w, r)
	}
	if _, err := fmt.Fprintf(w, "%-10s %6d executions  %8.1f executions/s  p50 %7.1f ms  p99 %7.1f ms  |  sh -c true %7.1f spawns/s  ratio %.2f\n",
		r.Broker, r.Executions, r.ExecutionsPerSec, r.P50ms, r.P99ms, r.SpawnPerSec, r.Ratio); err != nil {
		return err
	}
	return printUnitCost(w, "execution", r.benchCost, false)
}

// orDash formats a figure that is negative when unknown.
func orDash(v float64) string {
	if v < 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", v)
}

// printJSONLine prints v as one line of JSON, the form --json promises.
func printJSONLine(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(w, string(b))
	return err
}

// measureSpawns is the ceiling a shell action cannot beat on this machine: how fast two
// goroutines can run /bin/sh -c true with its output captured, as a worker does.
func measureSpawns(ctx context.Context, n int) (float64, error) {
	start := time.Now()
	g, ctx := errgroup.WithContext(ctx)
	per := n / 2
	for range 2 {
		g.Go(func() error {
			for range per {
				var out, errb strings.Builder
				c := exec.CommandContext(ctx, "/bin/sh", "-c", "true")
				c.Stdout, c.Stderr = &out, &errb
				if err := c.Run(); err != nil {
					return fmt.Errorf("spawn /bin/sh -c true: %w", err)
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return 0, err
	}
	return float64(2*per) / time.Since(start).Seconds(), nil
}

// benchOnce runs the pipeline on a fresh database and broker namespace.
func benchOnce(ctx context.Context, cfg benchConfig, brokerName string, logger *slog.Logger) (benchResult, error) {
	ctx, cancel := context.WithTimeout(ctx, cfg.timeout)
	defer cancel()
	run, err := openBenchRun(ctx, cfg, brokerName, logger)
	if err != nil {
		return benchResult{}, err
	}
	defer run.close()
	action := benchActions[cfg.action]
	if err := registerBenchPack(ctx, run.st, action.ref, action.params); err != nil {
		return benchResult{}, err
	}
	mods, err := benchModules(cfg, run, logger)
	if err != nil {
		return benchResult{}, err
	}
	c, err := run.metered(ctx, mods, action.runner, cfg.events, func(ctx context.Context, polls querier) error {
		if err := fireBenchEvents(ctx, run.st, run.br, cfg.events, cfg.rate); err != nil {
			return err
		}
		return waitFinished(ctx, polls, cfg.events)
	})
	if err != nil {
		return benchResult{}, err
	}
	r, err := benchFigures(ctx, run.pool, brokerName, cfg.events)
	r.benchCost = c
	return r, err
}

// module is a role module as the bench runs it.
type module interface {
	Name() string
	Run(ctx context.Context) error
}

// startModules runs mods until the returned function stops them and waits for them.
func startModules(ctx context.Context, mods []module) func() {
	runCtx, stop := context.WithCancel(ctx)
	g, gctx := errgroup.WithContext(runCtx)
	for _, m := range mods {
		g.Go(func() error { return m.Run(gctx) })
	}
	return func() {
		stop()
		_ = g.Wait()
	}
}

func benchModules(cfg benchConfig, run *benchRun, logger *slog.Logger) ([]module, error) {
	mods, err := benchRoles(cfg, run, logger)
	if err != nil {
		return nil, err
	}
	keys, err := benchKeyring()
	if err != nil {
		return nil, err
	}
	r, err := rules.New(rules.Config{Prefetch: 64}, rules.Deps{Logger: logger, Store: run.st, Broker: run.br, Sealer: keys, Metrics: run.mx.Modules().Rules})
	if err != nil {
		return nil, err
	}
	return append(mods, r), nil
}

// benchRoles are the worker and the executor: what runs an execution once it exists; and
// the notifier a process has, so that the figures include the live stream's cost.
func benchRoles(cfg benchConfig, run *benchRun, logger *slog.Logger) ([]module, error) {
	st, br, mx := run.st, run.br, run.mx.Modules()
	keys, err := benchKeyring()
	if err != nil {
		return nil, err
	}
	n := notify.New(br, notify.Config{Logger: logger})
	w, err := worker.New(worker.Config{Name: "bench-" + uuid.NewString()[:8], Concurrency: cfg.concurrency},
		worker.Deps{Logger: logger, Store: st, Broker: br, Notifier: n, Opener: keys, Metrics: mx.Worker})
	if err != nil {
		return nil, err
	}
	e, err := executor.New(executor.Config{Prefetch: 64}, executor.Deps{Logger: logger, Store: st, Broker: br, Notifier: n, Sealer: keys, Metrics: mx.Executor})
	if err != nil {
		return nil, err
	}
	return []module{w, e, notifierModule{n}}, nil
}

// benchKeyring is a keyring of a key of the run's own: the bench's actions have no secret
// parameters, and what it would seal lives no longer than the run.
func benchKeyring() (*seal.Keyring, error) {
	k, err := seal.NewKey()
	if err != nil {
		return nil, err
	}
	return seal.NewKeyring(k)
}

// notifierModule runs a notifier among the bench's modules.
type notifierModule struct{ *notify.Notifier }

func (notifierModule) Name() string { return "notify" }

// registerBenchPack adds a trigger and a rule running actionRef with params for each of its
// events, and policies if given.
func registerBenchPack(ctx context.Context, st *store.Store, actionRef, params string, policies ...store.Policy) error {
	if err := registerCore(ctx, st); err != nil {
		return err
	}
	_, err := st.PackRegister(ctx, store.PackRegistration{
		Pack:     store.Pack{Ref: "bench", Label: "Benchmark"},
		Triggers: []store.Trigger{{Ref: "bench.tick"}},
		Rules: []store.Rule{{Ref: "bench.run", TriggerRef: "bench.tick", ActionRef: actionRef, Enabled: true,
			ActionParams: json.RawMessage(params)}},
		Policies: policies,
	})
	return err
}

// registerCore registers the core pack, whose actions the bench runs.
func registerCore(ctx context.Context, st *store.Store) error {
	core, err := pack.Core()
	if err != nil {
		return err
	}
	_, err = pack.Register(ctx, st, core)
	return err
}

func waitWorker(ctx context.Context, st *store.Store, runner string) error {
	for {
		if _, err := st.WorkerPick(ctx, store.WorkerPickParams{Runner: runner, AliveWithin: time.Minute}); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for the worker: %w", ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// fireBenchEvents injects n events as the API would, from 16 goroutines: enough that the
// pipeline, not the injection, is what is measured.
func fireBenchEvents(ctx context.Context, st *store.Store, br broker.Broker, n, rate int) error {
	var pace <-chan time.Time
	if rate > 0 {
		t := time.NewTicker(time.Second / time.Duration(rate))
		defer t.Stop()
		pace = t.C
	}
	g, ctx := errgroup.WithContext(ctx)
	var mu sync.Mutex
	next := 0
	for range 16 {
		g.Go(func() error {
			for {
				if pace != nil {
					select {
					case <-pace:
					case <-ctx.Done():
						return ctx.Err()
					}
				}
				mu.Lock()
				i := next
				next++
				mu.Unlock()
				if i >= n {
					return nil
				}
				ev, err := st.EventInsert(ctx, store.EventInsertParams{TriggerRef: "bench.tick", Payload: json.RawMessage(fmt.Sprintf(`{"i":%d}`, i)), Source: "bench"})
				if err != nil {
					return err
				}
				if err := broker.Send(ctx, br, broker.NewEventCreated(ev.ID, ev.TriggerRef, "", ev.Payload, ev.Created, ev.Trace())); err != nil {
					return err
				}
			}
		})
	}
	return g.Wait()
}

type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// waitFinished polls until n executions are terminal: the harness's own loop, not the
// pipeline's.
func waitFinished(ctx context.Context, db querier, n int) error {
	return pollCount(ctx, db, `SELECT count(*) FROM attune.execution WHERE finished_at IS NOT NULL`,
		func(done int) bool { return done >= n }, func(done int) string { return fmt.Sprintf("%d of %d executions finished", done, n) })
}

// pollCount runs query, which counts something, every 100 ms until done accepts the count or
// ctx ends; describe says where it stood then.
func pollCount(ctx context.Context, db querier, query string, done func(int) bool, describe func(int) string) error {
	for {
		var count int
		if err := db.QueryRow(ctx, query).Scan(&count); err != nil {
			return fmt.Errorf("poll %q: %w", query, err)
		}
		if done(count) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %w", describe(count), ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func benchFigures(ctx context.Context, db querier, brokerName string, n int) (benchResult, error) {
	var failed int
	if err := db.QueryRow(ctx, `SELECT count(*) FROM attune.execution WHERE status <> 'completed'`).Scan(&failed); err != nil {
		return benchResult{}, err
	}
	if failed > 0 {
		return benchResult{}, fmt.Errorf("%d of %d executions did not complete", failed, n)
	}
	var span float64
	if err := db.QueryRow(ctx, `SELECT extract(epoch FROM (SELECT max(finished_at) FROM attune.execution) - (SELECT min(created) FROM attune.event))`).Scan(&span); err != nil {
		return benchResult{}, err
	}
	rows, err := db.Query(ctx, `SELECT extract(epoch FROM x.finished_at - ev.created) * 1000
		FROM attune.execution x JOIN attune.enforcement en ON x.enforcement = en.id JOIN attune.event ev ON en.event = ev.id`)
	if err != nil {
		return benchResult{}, err
	}
	lat, err := pgx.CollectRows(rows, pgx.RowTo[float64])
	if err != nil {
		return benchResult{}, err
	}
	slices.Sort(lat)
	return benchResult{
		Broker:           brokerName,
		Executions:       n,
		ExecutionsPerSec: float64(n) / span,
		P50ms:            percentile(lat, 0.50),
		P99ms:            percentile(lat, 0.99),
	}, nil
}

func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(int(p*float64(len(sorted))), len(sorted)-1)]
}
