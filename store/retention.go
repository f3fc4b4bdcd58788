package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// The kinds of rows retention deletes, as the settings and the counts name them.
const (
	RetainExecutions   = "executions"
	RetainEnforcements = "enforcements"
	RetainEvents       = "events"
	RetainAudit        = "audit"
)

// RetentionKinds lists the kinds in the order a pass deletes them: a row goes only once
// nothing kept refers to it (an execution holds its enforcement, an enforcement its event),
// so what refers comes first.
var RetentionKinds = []string{RetainExecutions, RetainEnforcements, RetainEvents, RetainAudit}

// retainedTable is a kind whose rows go one by one: its table, and the condition (over the
// row as t) under which a row old enough may go. Adding a kind of that sort is one entry
// here and one in RetentionKinds.
type retainedTable struct {
	table, deletable string
}

// The NOT EXISTS subqueries end in OFFSET 0, which keeps PostgreSQL from turning them into an
// anti-join: that hashes the whole referring table for each batch, where a probe of its index
// per row read stops as soon as the batch is full.
var retainedTables = map[string]retainedTable{
	// An enforcement still created is work not done; one whose execution is kept stays with it
	// (deleting it would cut the execution from its cause).
	RetainEnforcements: {"attune.enforcement", `t.status <> 'created'
		AND NOT EXISTS (SELECT 1 FROM attune.execution x WHERE x.enforcement = t.id OFFSET 0)`},
	// An event the rules have not seen is work not done; deleting one with enforcements would
	// take them too (ON DELETE CASCADE), so it waits for them.
	RetainEvents: {"attune.event", `t.rules_evaluated_at IS NOT NULL
		AND NOT EXISTS (SELECT 1 FROM attune.enforcement f WHERE f.event = t.id OFFSET 0)`},
	// An audit entry refers to nothing and nothing refers to it.
	RetainAudit: {"attune.audit", "true"},
}

// RetentionCursor is how far a pass over one kind has gone, in (created, id) order: the next
// batch looks only from there on, so what a pass keeps is not read again by every batch. The
// zero value starts at the oldest row.
type RetentionCursor struct {
	Created time.Time
	ID      int64
}

// RetentionBatch is what one batch did.
type RetentionBatch struct {
	// Deleted counts the rows of the kind deleted: for executions, each root with every
	// descendant and attempt that went with it.
	Deleted int
	// Next is where the pass goes on from; Done says nothing is left to look at.
	Next RetentionCursor
	Done bool
}

// RetentionDelete deletes, in one short transaction, at most limit rows of kind (for
// executions: limit roots, each with its tree, and at most RetentionTreeRows executions)
// created more than keep ago, past the cursor, that are finished and that nothing kept refers
// to. Rows another transaction holds are skipped (FOR UPDATE SKIP LOCKED), so runners working
// at once never delete a row twice nor wait on each other or on anyone.
func (s *Store) RetentionDelete(ctx context.Context, kind string, keep time.Duration, after RetentionCursor, limit int) (RetentionBatch, error) {
	var b RetentionBatch
	err := s.InTx(ctx, func(q *Queries) error {
		var err error
		if kind == RetainExecutions {
			b, err = q.retentionDeleteExecutions(ctx, keep, after, limit)
			return err
		}
		t, ok := retainedTables[kind]
		if !ok {
			return fmt.Errorf("unknown kind %q", kind)
		}
		b, err = q.retentionDeleteRows(ctx, t, keep, after, limit)
		return err
	})
	if err != nil {
		return RetentionBatch{}, fmt.Errorf("delete old %s: %w", kind, err)
	}
	return b, nil
}

// olderThan is the cutoff for a keep given in seconds as $1, on PostgreSQL's clock, which
// wrote the timestamps it is compared with.
const olderThan = `now() - make_interval(secs => $1)`

// retentionDeleteRows deletes rows of t in created order, on the index every such table has on
// created. Only rows deleted count towards limit, and a row kept is never returned, so the
// cursor is the last deleted row's created and the next batch starts at it (rows kept that
// share it are read again, nothing more).
func (q *Queries) retentionDeleteRows(ctx context.Context, t retainedTable, keep time.Duration, after RetentionCursor, limit int) (RetentionBatch, error) {
	rows, err := q.db.Query(ctx, `WITH doomed AS (
			SELECT t.id FROM `+t.table+` t
			WHERE t.created < `+olderThan+` AND t.created >= $2 AND `+t.deletable+`
			ORDER BY t.created LIMIT $3
			FOR UPDATE OF t SKIP LOCKED)
		DELETE FROM `+t.table+` t USING doomed WHERE t.id = doomed.id
		RETURNING t.created, t.id`, keep.Seconds(), after.Created, limit)
	if err != nil {
		return RetentionBatch{}, translate(err)
	}
	gone, err := pgx.CollectRows(rows, pgx.RowToStructByPos[RetentionCursor])
	if err != nil {
		return RetentionBatch{}, translate(err)
	}
	return RetentionBatch{Deleted: len(gone), Next: lastOf(gone, after), Done: len(gone) < limit}, nil
}

// RetentionTreeRows bounds the executions one batch deletes: trees are added, oldest root
// first, while their members stay within it (a tree bigger than it goes alone), so a batch of
// workflows with a thousand items each stays a short transaction.
const RetentionTreeRows = 5000

// retentionMember is one execution of a tree, read by treeMembers.
type retentionMember struct {
	Root, ID int64
	Done     bool
}

// treeMembers returns every member of the trees of roots, without locking: by parent (a
// workflow's tasks, nested workflows, reruns) or by retry_of (the attempts after the first),
// each with whether it may go: finished (a terminal status and no retry planned), ended more
// than keep ago, and not the source of a rerun still unfinished (which reads its tasks when it
// starts).
func (q *Queries) treeMembers(ctx context.Context, keep time.Duration, roots []int64) ([]retentionMember, error) {
	rows, err := q.db.Query(ctx, `WITH RECURSIVE tree (root, id) AS (
			SELECT r, r FROM unnest($2::bigint[]) r
			UNION
			SELECT t.root, e.id FROM tree t JOIN attune.execution e ON e.parent = t.id OR e.retry_of = t.id)
		SELECT t.root, e.id, e.status = ANY($3) AND e.retry_at IS NULL
			AND coalesce(e.finished_at, e.updated) < `+olderThan+`
			AND NOT EXISTS (SELECT 1 FROM attune.workflow_rerun w JOIN attune.execution x ON x.id = w.execution
				WHERE w.source = e.id AND NOT x.status = ANY($3))
		FROM tree t JOIN attune.execution e ON e.id = t.id`, keep.Seconds(), roots, ExecutionTerminal)
	if err != nil {
		return nil, translate(err)
	}
	members, err := pgx.CollectRows(rows, pgx.RowToStructByPos[retentionMember])
	if err != nil {
		return nil, translate(err)
	}
	return members, nil
}

// finishedTrees groups members by root and returns, in roots' order, the roots whose every
// member may go, each with its members.
func finishedTrees(roots []int64, members []retentionMember) ([]int64, map[int64][]int64) {
	trees := make(map[int64][]int64, len(roots))
	kept := make(map[int64]bool)
	for _, m := range members {
		trees[m.Root] = append(trees[m.Root], m.ID)
		if !m.Done {
			kept[m.Root] = true
		}
	}
	var done []int64
	for _, r := range roots {
		if len(trees[r]) > 0 && !kept[r] {
			done = append(done, r)
		}
	}
	return done, trees
}

// retentionDeleteExecutions deletes whole trees: a root (no parent, a first attempt) goes
// with every execution under it, and only when every one of them may go (see treeMembers). A
// child is never deleted on its own. It waits on no execution: roots and trees are read
// without locks, only trees wholly finished are chosen (at most RetentionTreeRows rows, see
// there), their members are locked FOR UPDATE SKIP LOCKED, and a tree goes only when, read
// again under those locks, every member is locked and may go. A member another transaction
// holds (a retry being planned, a rerun of one of its tasks being made) keeps its tree for a
// later pass, and once a member is locked nothing can be added under it (a new child's
// foreign key needs a lock that ours excludes). The DELETE may still wait on a lock held
// briefly on a row it cascades to (a finished workflow's state). Roots are read on
// execution_root_created_idx in (created, id) order, and the cursor is the last root looked
// at, deleted or not: a tree kept is read once per pass.
func (q *Queries) retentionDeleteExecutions(ctx context.Context, keep time.Duration, after RetentionCursor, limit int) (RetentionBatch, error) {
	rows, err := q.db.Query(ctx, `SELECT e.created, e.id FROM attune.execution e
		WHERE e.created < `+olderThan+` AND e.created >= $2 AND (e.created, e.id) > ($2, $3)
			AND e.parent IS NULL AND e.retry_of IS NULL
			AND e.status = ANY($5) AND e.retry_at IS NULL AND coalesce(e.finished_at, e.updated) < `+olderThan+`
		ORDER BY e.created, e.id LIMIT $4`, keep.Seconds(), after.Created, after.ID, limit, ExecutionTerminal)
	if err != nil {
		return RetentionBatch{}, translate(err)
	}
	roots, err := pgx.CollectRows(rows, pgx.RowToStructByPos[RetentionCursor])
	if err != nil {
		return RetentionBatch{}, translate(err)
	}
	b := RetentionBatch{Next: lastOf(roots, after), Done: len(roots) < limit}
	chosen, members, looked, err := q.chooseTrees(ctx, keep, roots)
	if err != nil {
		return RetentionBatch{}, err
	}
	if looked < len(roots) {
		b.Next, b.Done = lastOf(roots[:looked], after), false
	}
	if len(members) == 0 {
		return b, nil
	}
	rows, err = q.db.Query(ctx, `SELECT id FROM attune.execution WHERE id = ANY($1) FOR UPDATE SKIP LOCKED`, members)
	if err != nil {
		return RetentionBatch{}, translate(err)
	}
	locked, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return RetentionBatch{}, translate(err)
	}
	// Read again, now that what is locked cannot change: a member added or changed since the
	// first read, or one not locked, keeps its tree.
	again, err := q.treeMembers(ctx, keep, chosen)
	if err != nil {
		return RetentionBatch{}, err
	}
	isLocked := make(map[int64]bool, len(locked))
	for _, id := range locked {
		isLocked[id] = true
	}
	for i, m := range again {
		again[i].Done = m.Done && isLocked[m.ID]
	}
	chosen, trees := finishedTrees(chosen, again)
	var doomed []int64
	for _, r := range chosen {
		doomed = append(doomed, trees[r]...)
	}
	if len(doomed) == 0 {
		return b, nil
	}
	// Dependent rows go by ON DELETE CASCADE: the workflow's state (tasks, items, reruns),
	// inquiries, execution tokens, admission entries. Retries' and children's links are
	// SET NULL, and every row they link is in this same statement.
	tag, err := q.db.Exec(ctx, `DELETE FROM attune.execution WHERE id = ANY($1)`, doomed)
	if err != nil {
		return RetentionBatch{}, translate(err)
	}
	b.Deleted = int(tag.RowsAffected())
	return b, nil
}

// chooseTrees reads the trees of roots, oldest first, a few roots at a time so that big trees
// are not all read for one batch, and chooses those wholly finished while their members stay
// within RetentionTreeRows. It returns the chosen roots, their members, and how many roots it
// looked at: those after were not, and the next batch starts from them.
func (q *Queries) chooseTrees(ctx context.Context, keep time.Duration, roots []RetentionCursor) (chosen, members []int64, looked int, err error) {
	// The first read takes a few roots; the next ones as many as the trees seen so far say
	// fit in what is left.
	n, read := 10, 0
	for looked < len(roots) && len(members) < RetentionTreeRows {
		ids := make([]int64, 0, n)
		for _, r := range roots[looked:min(looked+n, len(roots))] {
			ids = append(ids, r.ID)
		}
		all, err := q.treeMembers(ctx, keep, ids)
		if err != nil {
			return nil, nil, 0, err
		}
		done, trees := finishedTrees(ids, all)
		kept := make(map[int64]bool, len(done))
		for _, r := range done {
			kept[r] = true
		}
		for _, r := range ids {
			if kept[r] {
				if len(members) > 0 && len(members)+len(trees[r]) > RetentionTreeRows {
					return chosen, members, looked, nil
				}
				chosen = append(chosen, r)
				members = append(members, trees[r]...)
			}
			looked++
		}
		read += len(all)
		n = max(1, (RetentionTreeRows-len(members))*looked/max(read, 1))
	}
	return chosen, members, looked, nil
}

// lastOf returns the last of rows taken in (created, id) order, or after when there are none.
func lastOf(rows []RetentionCursor, after RetentionCursor) RetentionCursor {
	if len(rows) == 0 {
		return after
	}
	last := rows[len(rows)-1]
	for _, r := range rows {
		if r.Created.After(last.Created) || r.Created.Equal(last.Created) && r.ID > last.ID {
			last = r
		}
	}
	return last
}
