package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Dashboard is the state of the whole system at a glance: what the web UI's first screen
// shows, read in one transaction.
type Dashboard struct {
	// LastHour and LastDay count the executions created in the last hour and day by their
	// status now; a status no execution has is left out.
	LastHour map[string]int `json:"last_hour"`
	LastDay  map[string]int `json:"last_day"`
	// Running counts the executions running now, whenever they were created.
	Running int `json:"running"`
	// Failures are the last executions created in the last day that failed, timed out or
	// were abandoned, the most recently finished first.
	Failures []DashboardFailure `json:"failures"`
	// Queues are the actions with executions waiting in their policy's queues, the longest
	// queue first.
	Queues  []DashboardQueue `json:"queues"`
	Workers DashboardWorkers `json:"workers"`
	Sensors DashboardSensors `json:"sensors"`
}

// DashboardFailure is one execution that ended badly.
type DashboardFailure struct {
	ID         int64      `json:"id"`
	ActionRef  string     `json:"action_ref"`
	Status     string     `json:"status"`
	Reason     *string    `json:"reason"`
	FinishedAt *time.Time `json:"finished_at"`
}

// DashboardQueue is how many executions of an action wait for admission, and since when the
// oldest of them has waited.
type DashboardQueue struct {
	ActionRef      string     `json:"action_ref"`
	Queued         int        `json:"queued"`
	OldestQueuedAt *time.Time `json:"oldest_queued_at"`
}

// DashboardWorkers counts the workers by whether they heartbeated within the worker timeout.
type DashboardWorkers struct {
	Active   int `json:"active"`
	Inactive int `json:"inactive"`
}

// DashboardSensors counts the sensors, those enabled, and those whose process a replica
// holding a live lease reports running.
type DashboardSensors struct {
	Total   int `json:"total"`
	Enabled int `json:"enabled"`
	Running int `json:"running"`
}

// How many failures and queues a dashboard lists at most.
const (
	dashboardFailures = 10
	dashboardQueues   = 20
)

// executionRefs walks execution_action_ref_idx from one action_ref to the next (a loose
// index scan), so that the windows below read each action's executions of the window through
// the index: executions have no index on created alone, and one would cost an entry at every
// status change (migration 00008). It finds the refs of deleted actions too.
const executionRefs = `WITH RECURSIVE refs(ref) AS (
	SELECT min(action_ref) FROM attune.execution
	UNION ALL
	SELECT (SELECT min(e.action_ref) FROM attune.execution e WHERE e.action_ref > refs.ref) FROM refs WHERE refs.ref IS NOT NULL)`

// DashboardGet reads the dashboard; workers that have not heartbeated within aliveWithin
// count as inactive, as in WorkerList.
func (s *Store) DashboardGet(ctx context.Context, aliveWithin time.Duration) (Dashboard, error) {
	d := Dashboard{LastHour: map[string]int{}, LastDay: map[string]int{}}
	err := s.inTx(ctx, func(q *Queries) error {
		// One snapshot for every figure. The planner's guess at the refs' count puts the day's
		// statement over the JIT threshold, and compiling costs more than the statement.
		if _, err := q.db.Exec(ctx, `SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY`); err != nil {
			return fmt.Errorf("dashboard: %w", translate(err))
		}
		if _, err := q.db.Exec(ctx, `SET LOCAL jit = off`); err != nil {
			return fmt.Errorf("dashboard: %w", translate(err))
		}
		return q.dashboard(ctx, aliveWithin, &d)
	})
	return d, err
}

func (q *Queries) dashboard(ctx context.Context, aliveWithin time.Duration, d *Dashboard) error {
	// The aggregate inside LATERAL keeps the planner from flattening it into a join that
	// scans the whole table.
	rows, err := q.db.Query(ctx, executionRefs+`
		SELECT c.status, sum(c.hour)::int, sum(c.day)::int
		FROM refs CROSS JOIN LATERAL (SELECT e.status, count(*) FILTER (WHERE e.created >= now() - interval '1 hour') AS hour, count(*) AS day
			FROM attune.execution e WHERE e.action_ref = refs.ref AND e.created >= now() - interval '1 day' GROUP BY e.status) c
		GROUP BY c.status`)
	if err != nil {
		return fmt.Errorf("dashboard counts: %w", translate(err))
	}
	var status string
	var hour, day int
	if _, err := pgx.ForEachRow(rows, []any{&status, &hour, &day}, func() error {
		if hour > 0 {
			d.LastHour[status] = hour
		}
		d.LastDay[status] = day
		return nil
	}); err != nil {
		return fmt.Errorf("dashboard counts: %w", translate(err))
	}

	if err := q.db.QueryRow(ctx, `SELECT count(*) FROM attune.execution WHERE status = 'running'`).Scan(&d.Running); err != nil {
		return fmt.Errorf("dashboard running: %w", translate(err))
	}

	d.Failures, err = queryAll(ctx, q.db, "dashboard failures", func(r pgx.Row) (DashboardFailure, error) {
		var f DashboardFailure
		err := r.Scan(&f.ID, &f.ActionRef, &f.Status, &f.Reason, &f.FinishedAt)
		return f, err
	}, executionRefs+`
		SELECT f.* FROM refs CROSS JOIN LATERAL (SELECT e.id, e.action_ref, e.status, e.reason, e.finished_at FROM attune.execution e
			WHERE e.action_ref = refs.ref AND e.created >= now() - interval '1 day' AND e.status IN ('failed', 'timeout', 'abandoned')
			ORDER BY e.finished_at DESC NULLS LAST, e.id DESC LIMIT $1) f
		ORDER BY f.finished_at DESC NULLS LAST, f.id DESC LIMIT $1`, dashboardFailures)
	if err != nil {
		return err
	}

	queues, err := q.AdmissionQueues(ctx, dashboardQueues)
	if err != nil {
		return err
	}
	d.Queues = make([]DashboardQueue, len(queues))
	for i, a := range queues {
		d.Queues[i] = DashboardQueue{ActionRef: a.ActionRef, Queued: a.Queued, OldestQueuedAt: a.Oldest}
	}

	if err := q.db.QueryRow(ctx, `SELECT count(*) FILTER (WHERE seen = 'active'), count(*) FILTER (WHERE seen <> 'active')
		FROM (SELECT `+workerSeenStatus("$1")+` AS seen FROM attune.worker) w`, aliveWithin.Seconds()).
		Scan(&d.Workers.Active, &d.Workers.Inactive); err != nil {
		return fmt.Errorf("dashboard workers: %w", translate(err))
	}

	if err := q.db.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE s.enabled), count(*) FILTER (WHERE `+sensorStatus+` = 'running')
		`+sensorViewFrom).Scan(&d.Sensors.Total, &d.Sensors.Enabled, &d.Sensors.Running); err != nil {
		return fmt.Errorf("dashboard sensors: %w", translate(err))
	}
	return nil
}
