package store

import (
	"context"
	"time"
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

// ExecutionFailUnrunnable fails the executions not yet claimed, made before olderThan, whose runner no
// live worker has: nothing would ever run them.
func (q *Queries) ExecutionFailUnrunnable(ctx context.Context, olderThan, aliveWithin time.Duration) ([]Execution, error) {
	// The runners no live worker has are found first, from the few actions and workers there
	// are; only when there are any are the waiting executions looked at, so a backlog that
	// some worker will serve costs nothing here.
	return queryAll(ctx, q.db, "fail unrunnable executions", scanExecution, `
		WITH orphaned AS MATERIALIZED (
			SELECT a.ref, a.runner_type FROM attune.action a
			WHERE a.runner_type NOT IN ('workflow', 'inquiry') AND NOT EXISTS (`+liveWorkers("a.runner_type", "$2")+`)
				AND pg_postmaster_start_time() < now() - make_interval(secs => $2)),
		`+queuesFirst(`SELECT x.id FROM attune.execution x JOIN orphaned o ON o.ref = x.action_ref
			WHERE x.status IN ('requested', 'scheduled') AND x.worker IS NULL AND x.created < now() - make_interval(secs => $1)`)+`
		UPDATE attune.execution SET status = 'failed', finished_at = now(),
			reason = 'no live worker can run runner "' || orphaned.runner_type || '"'
		FROM orphaned
		WHERE `+queuesLocked+` AND orphaned.ref = execution.action_ref AND execution.status IN ('requested', 'scheduled')
			AND execution.worker IS NULL AND execution.created < now() - make_interval(secs => $1)
		RETURNING `+executionColumns, olderThan.Seconds(), aliveWithin.Seconds())
}
