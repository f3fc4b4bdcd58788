package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"

	"github.com/jackc/pgx/v5"

	"github.com/attune-go/attune/broker"
	"github.com/attune-go/attune/store"
)

const (
	// backlogLimit is the concurrency limit the queue waits behind.
	backlogLimit = 10
	// minBacklog keeps a tenth of the backlog large enough to time.
	minBacklog = 100
	// backlogAction is the action queued: the bench pack's "true", so that the queue, not the
	// action, is what is measured.
	backlogAction = "core.local"
	backlogPolicy = "bench.backlog"
	// fifoSlack is how far out of creation order an execution may start without counting as
	// an inversion: up to the limit run at once, and the scheduler and the workers may start
	// those in any order.
	fifoSlack = backlogLimit
)

// backlogResult is one broker's drain figures; its JSON form is what --json prints.
type backlogResult struct {
	Broker         string  `json:"broker"`
	Backlog        int     `json:"backlog"`
	Limit          int     `json:"limit"`
	FirstPerSec    float64 `json:"first_10pct_per_sec"`
	LastPerSec     float64 `json:"last_10pct_per_sec"`
	OverallPerSec  float64 `json:"overall_per_sec"`
	Ratio          float64 `json:"ratio"`
	FIFOInversions int     `json:"fifo_inversions"`
}

func printBacklog(w io.Writer, r backlogResult, asJSON bool) error {
	if asJSON {
		return printJSONLine(w, r)
	}
	_, err := fmt.Fprintf(w, "%-10s backlog %d behind limit %d  first 10%% %.1f/s  last 10%% %.1f/s  overall %.1f/s  ratio %.2f  fifo inversions %d\n",
		r.Broker, r.Backlog, r.Limit, r.FirstPerSec, r.LastPerSec, r.OverallPerSec, r.Ratio, r.FIFOInversions)
	return err
}

// backlogOnce queues cfg.backlog executions behind the limit on a fresh database, then starts
// the executor and the worker and times the queue draining. Queueing before the roles start
// makes the whole backlog wait at once, so the last tenth is claimed from the longest queue's
// far end: a head-of-queue lookup that grows with what was claimed before shows as a ratio
// well under 1.
func backlogOnce(ctx context.Context, cfg benchConfig, brokerName string, logger *slog.Logger) (backlogResult, error) {
	ctx, cancel := context.WithTimeout(ctx, cfg.timeout)
	defer cancel()
	run, err := openBenchRun(ctx, cfg, brokerName, logger)
	if err != nil {
		return backlogResult{}, err
	}
	defer run.close()
	limit, action := backlogLimit, backlogAction
	shell := benchActions["shell"]
	if err := registerBenchPack(ctx, run.st, shell.ref, shell.params, store.Policy{Ref: backlogPolicy, ActionRef: &action, Enabled: true, ConcurrencyLimit: &limit}); err != nil {
		return backlogResult{}, err
	}
	if err := queueBacklog(ctx, run.pool, cfg.backlog); err != nil {
		return backlogResult{}, err
	}

	mods, err := benchRoles(cfg, run, logger)
	if err != nil {
		return backlogResult{}, err
	}
	defer startModules(ctx, mods)()
	if err := waitWorker(ctx, run.st, shell.runner); err != nil {
		return backlogResult{}, err
	}
	if err := requestAdmitted(ctx, run.pool, run.br); err != nil {
		return backlogResult{}, err
	}
	if err := waitDrained(ctx, run.pool, cfg.backlog); err != nil {
		return backlogResult{}, err
	}
	return backlogFigures(ctx, run.pool, brokerName, cfg.backlog)
}

// admitChunk is how many executions one statement creates. Each admission updates the group
// row, and within one transaction those versions cannot be pruned, so every admission walks
// all the versions before it: the whole backlog in one statement takes minutes at 20000.
const admitChunk = 100

// queueBacklog creates n executions as the pipeline does, each admitted or queued as it is
// created, a chunk per statement: one by one through the pipeline would take longer than the
// drain.
func queueBacklog(ctx context.Context, db store.DBTX, n int) error {
	q := store.New(db)
	for done := 0; done < n; done += admitChunk {
		items := make([]store.ExecutionCreateParams, min(admitChunk, n-done))
		for i := range items {
			items[i] = store.ExecutionCreateParams{ActionRef: backlogAction, Parameters: json.RawMessage(`{"cmd": "true"}`)}
		}
		if _, err := q.ExecutionCreate(ctx, items); err != nil {
			return fmt.Errorf("queue backlog: %w", err)
		}
	}
	var queued, admittedLate int
	if err := db.QueryRow(ctx, `SELECT coalesce(sum(queued), 0) FROM attune.admission_group`).Scan(&queued); err != nil {
		return fmt.Errorf("count queued executions: %w", err)
	}
	if queued != n-backlogLimit {
		return fmt.Errorf("queue backlog: %d executions queued, want %d (%d minus the limit %d)", queued, n-backlogLimit, n, backlogLimit)
	}
	if err := db.QueryRow(ctx, `SELECT count(*) FROM attune.execution WHERE admitted AND id NOT IN (
		SELECT id FROM attune.execution ORDER BY id LIMIT $1)`, backlogLimit).Scan(&admittedLate); err != nil {
		return fmt.Errorf("check admission order: %w", err)
	}
	if admittedLate > 0 {
		return fmt.Errorf("queue backlog: %d executions admitted ahead of older ones", admittedLate)
	}
	return nil
}

// requestAdmitted asks the executor to dispatch the executions admitted while it was not
// running, as the API does for those it creates; the sweeper would too, but only after its
// delay.
func requestAdmitted(ctx context.Context, db store.DBTX, br broker.Broker) error {
	rows, err := db.Query(ctx, `SELECT id FROM attune.execution WHERE admitted AND status IN ('requested', 'scheduled') ORDER BY id`)
	if err != nil {
		return fmt.Errorf("list admitted executions: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return fmt.Errorf("list admitted executions: %w", err)
	}
	msgs := make([]broker.Payload, 0, len(ids))
	for _, id := range ids {
		msgs = append(msgs, broker.ExecutionRequested{ExecutionID: id, ActionRef: backlogAction})
	}
	if err := broker.Send(ctx, br, msgs...); err != nil {
		return fmt.Errorf("request admitted executions: %w", err)
	}
	return nil
}

// waitDrained polls until no execution holds or waits for a slot. It reads the group's
// counters rather than counting finished executions as waitFinished does: that count scans
// a table that grows with every transition, and its cost, rising as the queue drains, would
// show as a slower drain at the end.
func waitDrained(ctx context.Context, db querier, n int) error {
	return pollCount(ctx, db, `SELECT coalesce(sum(queued + active), 0) FROM attune.admission_group`,
		func(left int) bool { return left == 0 },
		func(left int) string { return fmt.Sprintf("%d of %d executions still queued or running", left, n) })
}

func backlogFigures(ctx context.Context, db querier, brokerName string, n int) (backlogResult, error) {
	var failed int
	if err := db.QueryRow(ctx, `SELECT count(*) FROM attune.execution WHERE status <> 'completed'`).Scan(&failed); err != nil {
		return backlogResult{}, fmt.Errorf("count failed executions: %w", err)
	}
	if failed > 0 {
		return backlogResult{}, fmt.Errorf("%d of %d executions did not complete", failed, n)
	}
	// Seconds since the first finish, so that float64 keeps microseconds.
	finished, err := secondsSinceFirst(ctx, db, "finished_at", "finished_at")
	if err != nil {
		return backlogResult{}, err
	}
	started, err := secondsSinceFirst(ctx, db, "started_at", "created, id")
	if err != nil {
		return backlogResult{}, err
	}
	first, last, overall := drainRates(finished)
	r := backlogResult{
		Broker: brokerName, Backlog: n, Limit: backlogLimit,
		FirstPerSec: first, LastPerSec: last, OverallPerSec: overall,
		FIFOInversions: fifoInversions(started, fifoSlack),
	}
	if first > 0 {
		r.Ratio = last / first
	}
	return r, nil
}

// secondsSinceFirst returns column of every execution in order, as seconds since its minimum.
func secondsSinceFirst(ctx context.Context, db querier, column, order string) ([]float64, error) {
	rows, err := db.Query(ctx, fmt.Sprintf(`SELECT extract(epoch FROM %[1]s - (SELECT min(%[1]s) FROM attune.execution))::float8
		FROM attune.execution ORDER BY %[2]s`, column, order))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", column, err)
	}
	times, err := pgx.CollectRows(rows, pgx.RowTo[float64])
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", column, err)
	}
	return times, nil
}

// drainRates returns the completions per second over the first tenth of finished (sorted
// times of completion), over its last tenth, and over all of it.
func drainRates(finished []float64) (first, last, overall float64) {
	n := len(finished)
	tenth := max(n/10, 2)
	if n < tenth {
		return 0, 0, 0
	}
	return sliceRate(finished[:tenth]), sliceRate(finished[n-tenth:]), sliceRate(finished)
}

// sliceRate is the slice's size over the time from its first to its last completion; 0
// when no time passed, which a clock that coarse cannot rate.
func sliceRate(sorted []float64) float64 {
	if len(sorted) < 2 {
		return 0
	}
	span := sorted[len(sorted)-1] - sorted[0]
	if span <= 0 {
		return 0
	}
	return float64(len(sorted)) / span
}

// fifoInversions counts the executions that started before one created more than slack
// places ahead of them did: jumps in the queue beyond what running slack at once explains.
// started is in creation order.
func fifoInversions(started []float64, slack int) int {
	count := 0
	latest := 0.0 // the latest start among those more than slack places ahead
	for j := slack + 1; j < len(started); j++ {
		if i := j - slack - 1; i == 0 || started[i] > latest {
			latest = started[i]
		}
		if started[j] < latest {
			count++
		}
	}
	return count
}
