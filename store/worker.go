package store

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Worker is a row of attune.worker: a process that runs actions.
type Worker struct {
	ID      int64    `json:"id"`
	Name    string   `json:"name"`
	Runners []string `json:"runners"`
	// Labels are what the worker was started with (--worker-labels): executions whose
	// selector they satisfy may run on it.
	Labels        Labels    `json:"labels"`
	Concurrency   int       `json:"concurrency"`
	Status        string    `json:"status"`
	Host          string    `json:"host"`
	PID           int       `json:"pid"`
	LastHeartbeat time.Time `json:"last_heartbeat"`
	Created       time.Time `json:"created"`
	Updated       time.Time `json:"updated"`
}

// Worker statuses.
const (
	WorkerActive   = "active"
	WorkerInactive = "inactive"
)

const workerColumns = `id, name, runners, labels, concurrency, status, host, pid, last_heartbeat, created, updated`

func scanWorker(row interface{ Scan(...any) error }) (Worker, error) {
	var w Worker
	err := row.Scan(&w.ID, &w.Name, &w.Runners, &w.Labels, &w.Concurrency, &w.Status, &w.Host, &w.PID, &w.LastHeartbeat, &w.Created, &w.Updated)
	return w, err
}

// WorkerGetByName returns the worker called name.
func (q *Queries) WorkerGetByName(ctx context.Context, name string) (Worker, error) {
	w, err := scanWorker(q.db.QueryRow(ctx, `SELECT `+workerColumns+` FROM attune.worker WHERE name = $1`, name))
	if err != nil {
		return Worker{}, fmt.Errorf("get worker %s: %w", name, translate(err))
	}
	return w, nil
}

// WorkerHeartbeat records that the worker is alive. A worker whose row is gone, or was
// marked inactive by someone else, gets ErrNotFound and must register again.
func (q *Queries) WorkerHeartbeat(ctx context.Context, name string) error {
	tag, err := q.db.Exec(ctx, `UPDATE attune.worker SET last_heartbeat = now() WHERE name = $1 AND status = 'active'`, name)
	if err != nil {
		return fmt.Errorf("heartbeat worker %s: %w", name, translate(err))
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("heartbeat worker %s: %w", name, ErrNotFound)
	}
	return nil
}

// WorkerRegisterParams describe a worker as it starts.
type WorkerRegisterParams struct {
	Name        string
	Runners     []string
	Labels      Labels
	Concurrency int
	Host        string
	PID         int
}

// WorkerRegister records a starting worker, or revives the row of an earlier process of the
// same name.
func (q *Queries) WorkerRegister(ctx context.Context, p WorkerRegisterParams) (Worker, error) {
	if p.Runners == nil {
		p.Runners = []string{} // NULL is not "no runners"
	}
	w, err := scanWorker(q.db.QueryRow(ctx, `
		INSERT INTO attune.worker (name, runners, labels, concurrency, status, host, pid, last_heartbeat)
		VALUES ($1, $2, coalesce($6::jsonb, '{}'), $3, 'active', $4, $5, now())
		ON CONFLICT (name) DO UPDATE SET
			runners = EXCLUDED.runners, labels = EXCLUDED.labels, concurrency = EXCLUDED.concurrency, status = 'active',
			host = EXCLUDED.host, pid = EXCLUDED.pid, last_heartbeat = now()
		RETURNING `+workerColumns,
		p.Name, p.Runners, p.Concurrency, p.Host, p.PID, selectorArg(p.Labels)))
	if err != nil {
		return Worker{}, fmt.Errorf("register worker %s: %w", p.Name, translate(err))
	}
	return w, nil
}

// WorkerSetInactive marks a worker as gone; the scheduler stops choosing it.
func (q *Queries) WorkerSetInactive(ctx context.Context, name string) error {
	if _, err := q.db.Exec(ctx, `UPDATE attune.worker SET status = 'inactive' WHERE name = $1`, name); err != nil {
		return fmt.Errorf("deactivate worker %s: %w", name, translate(err))
	}
	return nil
}

// workerSeenColumns are workerColumns as readers are shown them: a worker that has not
// heartbeated within the seconds in parameter alive is inactive, whatever its row says. A
// worker killed outright never marks itself inactive; reading its status from its heartbeat
// needs no sweeper, and stays true while the database is away.
func workerSeenColumns(alive string) string {
	return `id, name, runners, labels, concurrency, ` + workerSeenStatus(alive) + `, host, pid, last_heartbeat, created, updated`
}

// workerSeenStatus is a worker's status as readers are shown it (workerSeenColumns).
func workerSeenStatus(alive string) string {
	return `CASE WHEN status = 'active' AND last_heartbeat < now() - make_interval(secs => ` + alive + `) THEN 'inactive' ELSE status END`
}

// WorkerGet returns the worker called name, inactive when it has not heartbeated within
// aliveWithin.
func (q *Queries) WorkerGet(ctx context.Context, name string, aliveWithin time.Duration) (Worker, error) {
	w, err := scanWorker(q.db.QueryRow(ctx, `SELECT `+workerSeenColumns("$2")+` FROM attune.worker WHERE name = $1`,
		name, aliveWithin.Seconds()))
	if err != nil {
		return Worker{}, fmt.Errorf("get worker %s: %w", name, translate(err))
	}
	return w, nil
}

// WorkerList returns a page of workers, most recently seen first, and how many there are;
// those that have not heartbeated within aliveWithin are inactive.
func (q *Queries) WorkerList(ctx context.Context, aliveWithin time.Duration, page Page) ([]Worker, int, error) {
	// The count shares the statement's arguments, so the parameter lives in FROM.
	from := `FROM attune.worker, (SELECT $1::float8 AS alive) arg`
	return list(ctx, q.db, "workers", from, workerSeenColumns("arg.alive"), `last_heartbeat DESC, id DESC`,
		page, func(r pgx.Row) (Worker, error) { return scanWorker(r) }, aliveWithin.Seconds())
}

// WorkerPickParams describe what a scheduler needs of a worker.
type WorkerPickParams struct {
	Runner string
	// AliveWithin is how recent the last heartbeat must be.
	AliveWithin time.Duration
}

// workerLoad counts the executions a worker is running or cancelling, stopping at twice its
// concurrency: enough to rank workers, without counting on through a long history.
const workerLoad = `(SELECT count(*) FROM (SELECT 1 FROM attune.execution held
	WHERE held.worker = w.id AND held.status IN ('running', 'canceling') LIMIT 2 * w.concurrency) x)`

// liveWorkers selects the workers that are up and can run the runner in parameter runner,
// heartbeating within the seconds in parameter alive, with their load.
func liveWorkers(runner, alive string) string {
	return `SELECT w.*, ` + workerLoad + ` AS load FROM attune.worker w
	WHERE w.status = 'active' AND w.last_heartbeat > now() - make_interval(secs => ` + alive + `) AND ` + runner + ` = ANY(w.runners)`
}

// WorkerPick returns a live worker that can run p.Runner, the least loaded first, full or not,
// or ErrNotFound when there is none.
func (q *Queries) WorkerPick(ctx context.Context, p WorkerPickParams) (Worker, error) {
	w, err := scanWorker(q.db.QueryRow(ctx, `
		SELECT `+prefixed("w.", workerColumns)+` FROM (`+liveWorkers("$1", "$2")+`) w
		ORDER BY w.load::float8 / w.concurrency, random() LIMIT 1`, p.Runner, p.AliveWithin.Seconds()))
	if err != nil {
		return Worker{}, fmt.Errorf("pick a worker for runner %s: %w", p.Runner, translate(err))
	}
	return w, nil
}

func prefixed(prefix, columns string) string {
	parts := strings.Split(columns, ", ")
	for i, p := range parts {
		parts[i] = prefix + p
	}
	return strings.Join(parts, ", ")
}

// WorkerDelete removes the record of worker name, which must be dead: inactive, or silent
// for aliveWithin. A live worker is ErrConflict; so is one that executions are still running
// on (*InUseError naming them), since the sweeper abandons those through the worker's row.
// Executions it ran stay, without their link to it.
func (s *Store) WorkerDelete(ctx context.Context, name string, aliveWithin time.Duration) error {
	err := s.InTx(ctx, func(q *Queries) error {
		// The row lock holds off a heartbeat (an update of the row) until the decision is made.
		var id int64
		var alive bool
		err := q.db.QueryRow(ctx, `SELECT id, status = 'active' AND last_heartbeat > now() - make_interval(secs => $2)
			FROM attune.worker WHERE name = $1 FOR UPDATE`, name, aliveWithin.Seconds()).Scan(&id, &alive)
		if err != nil {
			return translate(err)
		}
		if alive {
			return fmt.Errorf("worker %s is alive: it heartbeated within %s: %w", name, aliveWithin, ErrConflict)
		}
		running, err := queryAll(ctx, q.db, "find its executions", scanRef, `
			SELECT 'execution ' || id FROM attune.execution WHERE worker = $1 AND status IN ('running', 'canceling') ORDER BY id`, id)
		if err != nil {
			return err
		}
		if len(running) > 0 {
			return &InUseError{What: "worker " + name, By: running}
		}
		if _, err := q.db.Exec(ctx, `DELETE FROM attune.worker WHERE id = $1`, id); err != nil {
			return translate(err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("delete worker %s: %w", name, err)
	}
	return nil
}

// heldBy is true while executions are claimed by, or running on, the worker row w: such a
// row stays, since the sweeper abandons them through it. It reads
// execution_worker_running_idx.
const heldBy = `EXISTS (SELECT 1 FROM attune.execution e WHERE e.worker = w.id AND e.status IN ('scheduled', 'running', 'canceling'))`

// DeadWorker is the record of a worker that stopped heartbeating, as a worker starting on
// the same host reads it to judge whether its process is gone.
type DeadWorker struct {
	Name string
	PID  int
	// SilentFor is how long ago it last heartbeated, by the database's clock.
	SilentFor time.Duration
}

// WorkerListDeadOnHost returns the workers of host other than except that are inactive or
// have been silent for aliveWithin, and on which nothing runs, longest silent first.
func (q *Queries) WorkerListDeadOnHost(ctx context.Context, host, except string, aliveWithin time.Duration) ([]DeadWorker, error) {
	return queryAll(ctx, q.db, "list dead workers of host "+host, func(r pgx.Row) (DeadWorker, error) {
		var d DeadWorker
		var silent float64
		err := r.Scan(&d.Name, &d.PID, &silent)
		d.SilentFor = time.Duration(silent * float64(time.Second))
		return d, err
	}, `
		SELECT w.name, w.pid, extract(epoch FROM now() - w.last_heartbeat)::float8 FROM attune.worker w
		WHERE w.host = $1 AND w.name <> $2
			AND (w.status = 'inactive' OR w.last_heartbeat < now() - make_interval(secs => $3))
			AND NOT `+heldBy+`
		ORDER BY w.last_heartbeat LIMIT 1000`, host, except, aliveWithin.Seconds())
}

// WorkerDeleteSilent deletes the records of the workers, on any host, that have not
// heartbeated for silentFor and on which nothing runs, and returns their names. Executions
// they ran keep their names.
func (q *Queries) WorkerDeleteSilent(ctx context.Context, silentFor time.Duration) ([]string, error) {
	// Rows locked by a heartbeat or a delete of their own are left for another time.
	return queryAll(ctx, q.db, "delete silent workers", scanRef, `
		DELETE FROM attune.worker w
		WHERE w.id IN (SELECT id FROM attune.worker WHERE last_heartbeat < now() - make_interval(secs => $1) FOR UPDATE SKIP LOCKED)
			AND NOT `+heldBy+`
		RETURNING w.name`, silentFor.Seconds())
}
