package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// ExecutionAdmitLate decides execution id, created requested without a decision (by a version
// of Attune that admitted after creating, or restored from elsewhere), under the policy in
// force, and returns CreateAdmitted, CreateQueued, or the status it has reached otherwise.
// Deciding twice gives the first decision.
func (q *Queries) ExecutionAdmitLate(ctx context.Context, id int64) (string, error) {
	var outcome string
	if err := q.db.QueryRow(ctx, `SELECT attune.admission_admit_late($1)`, id).Scan(&outcome); err != nil {
		return "", fmt.Errorf("admit execution %d: %w", id, translate(err))
	}
	return outcome, nil
}

func methodOr(m string) string {
	if m == "" {
		return "enqueue"
	}
	return m
}

// AdmissionPromoteDue admits the waiters of every group that has room again, oldest first, and
// returns them. Completions promote on their own, in the transaction that ends an execution;
// this is for rate windows that open with time, and a safety net.
func (q *Queries) AdmissionPromoteDue(ctx context.Context) ([]int64, error) {
	return queryAll(ctx, q.db, "promote waiting executions", func(r pgx.Row) (int64, error) {
		var id int64
		err := r.Scan(&id)
		return id, err
	}, `SELECT p FROM (SELECT g.id FROM attune.admission_group g WHERE g.queued > 0 AND attune.admission_open(g) ORDER BY g.id) g
		CROSS JOIN LATERAL attune.admission_promote(g.id) p`)
}

// AdmissionExpire fails every execution that has waited in its queue past the policy's
// queue_timeout_seconds, and returns them; failing releases their place in the queue.
func (q *Queries) AdmissionExpire(ctx context.Context) ([]Execution, error) {
	// The ids are gathered first, through admission_entry_expiry_idx, which is empty most of
	// the time; as an array they can only be looked up by primary key, where a join let the
	// planner scan every execution. Every executor runs this four times a second.
	return queryAll(ctx, q.db, "expire waiting executions", scanExecution, `
		WITH `+queuesFirst(`SELECT ae.execution FROM attune.admission_entry ae WHERE ae.state = 'queued' AND ae.expires_at < now()`)+`
		UPDATE attune.execution SET status = 'failed', finished_at = now(),
			reason = (SELECT format('policy %s: waited in the queue longer than queue_timeout_seconds (%s)',
					g.policy_ref, round(extract(epoch FROM ae.expires_at - ae.created)))
				FROM attune.admission_entry ae JOIN attune.admission_group g ON g.id = ae.admission_group
				WHERE ae.execution = execution.id)
		WHERE `+queuesLocked+` AND execution.id = ANY (ARRAY(SELECT ae.execution FROM attune.admission_entry ae
				WHERE ae.state = 'queued' AND ae.expires_at < now()))
			AND execution.status = 'requested'
		RETURNING `+executionColumns)
}

// ExecutionListUnadmitted returns requested executions created before before that neither
// passed admission nor wait in a queue. Every execution is decided as it is created today;
// these were created by an older version that decided afterwards, and their request was lost.
func (q *Queries) ExecutionListUnadmitted(ctx context.Context, before time.Time, limit int) ([]Execution, error) {
	return queryAll(ctx, q.db, "list unadmitted executions", scanExecution, `SELECT `+executionColumns+`
		FROM attune.execution WHERE status = 'requested' AND NOT admitted AND created < $1
			AND NOT EXISTS (SELECT 1 FROM attune.admission_entry ae WHERE ae.execution = execution.id)
		ORDER BY created LIMIT $2`, before, limit)
}

// ExecutionQueuePosition returns where execution id waits in its queue, 1 for the next to be
// admitted, or nil when it waits in none.
func (q *Queries) ExecutionQueuePosition(ctx context.Context, id int64) (*int, error) {
	var pos *int
	err := q.db.QueryRow(ctx, `
		SELECT (SELECT count(*) + 1 FROM attune.admission_entry o
			WHERE o.admission_group = me.admission_group AND o.state = 'queued'
				AND o.execution > g.head_execution AND o.execution < me.execution)::integer
		FROM attune.admission_entry me JOIN attune.admission_group g ON g.id = me.admission_group
		WHERE me.execution = $1 AND me.state = 'queued'`, id).Scan(&pos)
	if isNoRows(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("queue position of execution %d: %w", id, translate(err))
	}
	return pos, nil
}

// QueueGroup is one queue of an action: the executions of one combination of grouping
// parameter values.
type QueueGroup struct {
	Key    string `json:"key"`
	Active int    `json:"active"`
	Queued int    `json:"queued"`
}

// QueueStats describe an action's admission: slots in use and executions waiting.
type QueueStats struct {
	ActionRef      string       `json:"action_ref"`
	Limit          *int         `json:"limit"`
	Active         int          `json:"active"`
	Queued         int          `json:"queued"`
	OldestQueuedAt *time.Time   `json:"oldest_queued_at"`
	Groups         []QueueGroup `json:"groups"`
}

// QueueStatsGet returns the admission figures of actionRef; limit is the concurrency limit
// of the policy in force, if any.
func (q *Queries) QueueStatsGet(ctx context.Context, actionRef string, limit *int) (QueueStats, error) {
	st := QueueStats{ActionRef: actionRef, Limit: limit, Groups: []QueueGroup{}}
	groups, err := queryAll(ctx, q.db, "queue stats of "+actionRef, func(r pgx.Row) (QueueGroup, error) {
		var g QueueGroup
		err := r.Scan(&g.Key, &g.Active, &g.Queued)
		return g, err
	}, `SELECT group_key, active, queued FROM attune.admission_group
		WHERE action_ref = $1 AND (active > 0 OR queued > 0) ORDER BY group_key`, actionRef)
	if err != nil {
		return st, err
	}
	for _, g := range groups {
		st.Active += g.Active
		st.Queued += g.Queued
	}
	st.Groups = append(st.Groups, groups...)
	// From each group's cursor on, every waiter sorts after it, and the index entries of
	// those admitted before are passed over.
	err = q.db.QueryRow(ctx, `SELECT min(ae.enqueued_at) FROM attune.admission_group g
		JOIN attune.admission_entry ae ON ae.admission_group = g.id AND ae.state = 'queued'
			AND ae.execution > g.head_execution
		WHERE g.action_ref = $1 AND g.queued > 0`, actionRef).Scan(&st.OldestQueuedAt)
	if err != nil {
		return st, fmt.Errorf("oldest waiter of %s: %w", actionRef, translate(err))
	}
	return st, nil
}

// ActionQueue is how many executions of one action wait in its policy's queues, and since
// when the oldest of them has waited.
type ActionQueue struct {
	ActionRef string
	Queued    int
	Oldest    *time.Time
}

// AdmissionQueues returns the actions with executions waiting in their queues, the longest
// queues first and at most limit of them: what the metrics show at each scrape. It reads the
// groups with waiters and each one's head through admission_entry_queue_idx, never the queues
// themselves.
func (q *Queries) AdmissionQueues(ctx context.Context, limit int) ([]ActionQueue, error) {
	return queryAll(ctx, q.db, "policy queues", func(r pgx.Row) (ActionQueue, error) {
		var a ActionQueue
		err := r.Scan(&a.ActionRef, &a.Queued, &a.Oldest)
		return a, err
	}, `SELECT g.action_ref, sum(g.queued)::int, min(head.enqueued_at) FROM attune.admission_group g
		LEFT JOIN LATERAL (SELECT ae.enqueued_at FROM attune.admission_entry ae
			WHERE ae.admission_group = g.id AND ae.state = 'queued' AND ae.execution > g.head_execution
			ORDER BY ae.execution LIMIT 1) head ON true
		WHERE g.queued > 0
		GROUP BY g.action_ref ORDER BY 2 DESC, 1 LIMIT $1`, limit)
}
