package store

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

// The statements below end or find executions that nobody else will: the executor's
// sweeper repairs lost messages and dead workers with them, and a worker that restarts under
// its old name abandons what its previous process was running.

// ExecutionListStale returns executions left in status since before before, for sweepers
// that repair lost messages.
func (q *Queries) ExecutionListStale(ctx context.Context, status string, before time.Time, limit int) ([]Execution, error) {
	return queryAll(ctx, q.db, "list stale "+status+" executions", scanExecution, `SELECT `+executionColumns+` FROM attune.execution
		WHERE status = $1 AND updated < $2 ORDER BY updated LIMIT $3`, status, before, limit)
}

// deadWorkers selects the ids of workers that said they stopped (inactive), and, when the
// boolean parameter trust is true, those silent for the seconds in parameter alive. Silence
// counts only once the server itself has been up that long: a restarted database heard no
// heartbeat while it was down, from workers that may be well.
func deadWorkers(alive, trust string) string {
	return `SELECT id FROM attune.worker WHERE status = 'inactive' OR (` + trust + ` AND last_heartbeat < now() - make_interval(secs => ` + alive + `)
		AND pg_postmaster_start_time() < now() - make_interval(secs => ` + alive + `))`
}

// ExecutionAbandonOrphans ends as abandoned every execution that was running on a worker that
// stopped, or, with trustSilence, has not heartbeated within aliveWithin, and returns them.
// Silence is evidence only when the caller itself has reached the database for aliveWithin
// without a break: after an outage every worker is silent. A worker that was in fact alive
// records its result over the abandonment.
func (q *Queries) ExecutionAbandonOrphans(ctx context.Context, aliveWithin time.Duration, trustSilence bool) ([]Execution, error) {
	orphans := `SELECT id FROM attune.execution WHERE status IN ('running', 'canceling') AND worker IN (` + deadWorkers("$1", "$2") + `)`
	return queryAll(ctx, q.db, "abandon orphaned executions", scanExecution, `
		WITH `+queuesFirst(orphans)+`
		UPDATE attune.execution SET status = 'abandoned', finished_at = now(),
			reason = 'worker ' || (SELECT name FROM attune.worker w WHERE w.id = execution.worker) || ' stopped before the execution finished'
		WHERE `+queuesLocked+` AND id IN (`+orphans+`)
		RETURNING `+executionColumns, aliveWithin.Seconds(), trustSilence)
}

// ExecutionAbandonOverdue ends as abandoned the executions still running margin past their
// timeout. The worker enforces the timeout, so such a row is one its worker lost track of (a
// result it could not write, say).
func (q *Queries) ExecutionAbandonOverdue(ctx context.Context, margin time.Duration) ([]Execution, error) {
	// A workflow runs on no worker, for as long as its tasks take; its tasks have timeouts.
	overdue := `SELECT id FROM attune.execution WHERE status IN ('running', 'canceling') AND worker IS NOT NULL
		AND started_at < now() - make_interval(secs => coalesce(timeout_seconds, 600) + $1)`
	return queryAll(ctx, q.db, "abandon overdue executions", scanExecution, `
		WITH `+queuesFirst(overdue)+`
		UPDATE attune.execution SET status = 'abandoned', finished_at = now(),
			reason = 'still running past its timeout; its worker lost track of it'
		WHERE `+queuesLocked+` AND id IN (`+overdue+`)
		RETURNING `+executionColumns, margin.Seconds())
}

// ExecutionAbandonLeftovers ends as abandoned what worker was running when its previous
// process died: a worker that restarts under the same name finds them still its own.
func (q *Queries) ExecutionAbandonLeftovers(ctx context.Context, worker int64) ([]Execution, error) {
	return queryAll(ctx, q.db, "abandon leftover executions", scanExecution, `
		UPDATE attune.execution SET status = 'abandoned', finished_at = now(),
			reason = 'its worker died while it ran (the next process of the worker ended what was left of it): how it ended is unknown'
		WHERE status IN ('running', 'canceling') AND worker = $1
		RETURNING `+executionColumns, worker)
}

// UnrunnableParams say how long an execution may wait for a live worker that can run it.
type UnrunnableParams struct {
	// NoWorker is the wait of an execution without a selector, for a worker with its runner.
	NoWorker time.Duration
	// Selected is the wait of an execution with a selector, for a worker with its runner and
	// the selector's labels: a worker that must come from elsewhere may take longer to start.
	Selected time.Duration
	// AliveWithin is how recent a live worker's heartbeat is.
	AliveWithin time.Duration
}

// ExecutionFailUnrunnable fails the executions not yet claimed that have waited past their wait
// for a live worker that can run them, and returns them: nothing would ever run them.
func (q *Queries) ExecutionFailUnrunnable(ctx context.Context, p UnrunnableParams) ([]Execution, error) {
	// The runners no live worker has are found first, from the few actions and workers there
	// are; only when there are any are the waiting executions looked at, so a backlog that
	// some worker will serve costs nothing here.
	failed, err := queryAll(ctx, q.db, "fail unrunnable executions", scanExecution, `
		WITH orphaned AS MATERIALIZED (
			SELECT a.ref, a.runner_type FROM attune.action a
			WHERE a.runner_type NOT IN ('workflow', 'inquiry') AND NOT EXISTS (`+liveWorkers("a.runner_type", "$2")+`)
				AND pg_postmaster_start_time() < now() - make_interval(secs => $2)),
		`+queuesFirst(`SELECT x.id FROM attune.execution x JOIN orphaned o ON o.ref = x.action_ref
			WHERE x.status IN ('requested', 'scheduled') AND x.worker IS NULL AND x.worker_selector IS NULL
				AND x.created < now() - make_interval(secs => $1)`)+`
		UPDATE attune.execution SET status = 'failed', finished_at = now(),
			reason = 'no live worker can run runner "' || orphaned.runner_type || '"'
		FROM orphaned
		WHERE `+queuesLocked+` AND orphaned.ref = execution.action_ref AND execution.status IN ('requested', 'scheduled')
			AND execution.worker IS NULL AND execution.worker_selector IS NULL AND execution.created < now() - make_interval(secs => $1)
		RETURNING `+executionColumns, p.NoWorker.Seconds(), p.AliveWithin.Seconds())
	if err != nil {
		return nil, err
	}
	// Executions with a selector are few (execution_selector_waiting_idx); each is looked at
	// with the workers that could take it.
	selected, err := queryAll(ctx, q.db, "fail executions no worker matches", scanExecution, `
		WITH unmatched AS MATERIALIZED (
			SELECT x.id, a.runner_type, x.worker_selector FROM attune.execution x JOIN attune.action a ON a.ref = x.action_ref
			WHERE x.worker_selector IS NOT NULL AND x.status IN ('requested', 'scheduled') AND x.worker IS NULL
				AND x.created < now() - make_interval(secs => $1)
				AND a.runner_type NOT IN ('workflow', 'inquiry')
				AND NOT EXISTS (`+liveWorkers("a.runner_type", "$2")+` AND w.labels @> x.worker_selector)
				AND pg_postmaster_start_time() < now() - make_interval(secs => $2)),
		`+queuesFirst(`SELECT id FROM unmatched`)+`
		UPDATE attune.execution SET status = 'failed', finished_at = now(),
			reason = 'no live worker has labels ' || (SELECT string_agg(l.key || '=' || l.value, ',' ORDER BY l.key)
				FROM jsonb_each_text(unmatched.worker_selector) l) || ' and runner "' || unmatched.runner_type || '"; waited ' || $3
		FROM unmatched
		WHERE `+queuesLocked+` AND unmatched.id = execution.id AND execution.status IN ('requested', 'scheduled')
			AND execution.worker IS NULL
		RETURNING `+executionColumns, p.Selected.Seconds(), p.AliveWithin.Seconds(), p.Selected.String())
	return append(failed, selected...), err
}

// RunnerSelector is a selector in use, with the runner of the actions it is for: together they
// name a dispatch queue of their own (broker.SelectorDispatchQueue).
type RunnerSelector struct {
	Runner   string
	Selector Labels
}

// SelectorsInUse lists the selectors a worker may have to take executions for: those in force
// for an action, and those of executions still waiting for a worker (made under a selector
// changed since).
func (q *Queries) SelectorsInUse(ctx context.Context) ([]RunnerSelector, error) {
	return queryAll(ctx, q.db, "list selectors in use", func(r pgx.Row) (RunnerSelector, error) {
		var s RunnerSelector
		err := r.Scan(&s.Runner, &s.Selector)
		return s, err
	}, `
		SELECT a.runner_type, s.sel FROM attune.action a, attune.worker_selector_for(a.ref) s(sel)
		WHERE s.sel IS NOT NULL AND a.runner_type NOT IN ('workflow', 'inquiry')
		UNION
		SELECT a.runner_type, x.worker_selector FROM attune.execution x JOIN attune.action a ON a.ref = x.action_ref
		WHERE x.worker_selector IS NOT NULL AND x.status IN ('requested', 'scheduled') AND x.worker IS NULL`)
}
