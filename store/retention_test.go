package store_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/attune-go/attune/store"
	"github.com/attune-go/attune/store/storetest"
)

// old and young are ages on either side of the day kept in these tests.
const (
	keepDay = 24 * time.Hour
	old     = 48 * time.Hour
	young   = time.Hour
)

// seed writes rows with chosen ages straight into the tables, as retention finds them.
type seed struct {
	t *testing.T
	s *store.Store
}

// execution writes an execution in status, created and (when terminal) ended age ago.
func (d seed) execution(status string, age time.Duration, set string, args ...any) int64 {
	d.t.Helper()
	var id int64
	cols, vals := "", ""
	if set != "" {
		cols, vals = ", "+set, ""
		for i := range args {
			vals += fmt.Sprintf(", $%d", i+4)
		}
	}
	require.NoError(d.t, d.s.Pool().QueryRow(context.Background(), `INSERT INTO attune.execution
		(action_ref, status, created, finished_at`+cols+`)
		VALUES ('demo.act', $1, now() - make_interval(secs => $2) - interval '1 minute',
			CASE WHEN $3 THEN now() - make_interval(secs => $2) END`+vals+`) RETURNING id`,
		append([]any{status, age.Seconds(), store.IsTerminal(status)}, args...)...).Scan(&id))
	return id
}

// event writes an event created age ago, seen by the rules when evaluated.
func (d seed) event(age time.Duration, evaluated bool) int64 {
	d.t.Helper()
	var id int64
	require.NoError(d.t, d.s.Pool().QueryRow(context.Background(), `INSERT INTO attune.event (trigger_ref, created, rules_evaluated_at)
		VALUES ('core.webhook', now() - make_interval(secs => $1), CASE WHEN $2 THEN now() - make_interval(secs => $1) END)
		RETURNING id`, age.Seconds(), evaluated).Scan(&id))
	return id
}

// audit writes an audit entry written age ago.
func (d seed) audit(age time.Duration) int64 {
	d.t.Helper()
	var id int64
	require.NoError(d.t, d.s.Pool().QueryRow(context.Background(), `INSERT INTO attune.audit (created, actor, kind, object_kind, object)
		VALUES (now() - make_interval(secs => $1), 'alice', 'rule.update', 'rule', 'demo.on_hook') RETURNING id`, age.Seconds()).Scan(&id))
	return id
}

// enforcement writes an enforcement of event created age ago.
func (d seed) enforcement(event int64, status string, age time.Duration) int64 {
	d.t.Helper()
	var id int64
	require.NoError(d.t, d.s.Pool().QueryRow(context.Background(), `INSERT INTO attune.enforcement (rule_ref, trigger_ref, event, status, created)
		VALUES ($4, 'core.webhook', $1, $2, now() - make_interval(secs => $3)) RETURNING id`,
		event, status, age.Seconds(), fmt.Sprintf("demo.rule%d", event)).Scan(&id))
	return id
}

// backdate makes executions created and (the terminal ones) ended age ago.
func (d seed) backdate(age time.Duration, ids ...int64) {
	d.t.Helper()
	_, err := d.s.Pool().Exec(context.Background(), `UPDATE attune.execution
		SET created = now() - make_interval(secs => $2) - interval '1 minute',
			finished_at = CASE WHEN status = ANY($3) THEN now() - make_interval(secs => $2) END
		WHERE id = ANY($1)`, ids, age.Seconds(), store.ExecutionTerminal)
	require.NoError(d.t, err)
}

// remaining returns which of ids are still in table.
func (d seed) remaining(table string, ids ...int64) []int64 {
	d.t.Helper()
	var left []int64
	rows, err := d.s.Pool().Query(context.Background(), `SELECT id FROM attune.`+table+` WHERE id = ANY($1) ORDER BY id`, ids)
	require.NoError(d.t, err)
	for rows.Next() {
		var id int64
		require.NoError(d.t, rows.Scan(&id))
		left = append(left, id)
	}
	require.NoError(d.t, rows.Err())
	return left
}

func (d seed) count(sql string, args ...any) int {
	d.t.Helper()
	var n int
	require.NoError(d.t, d.s.Pool().QueryRow(context.Background(), sql, args...).Scan(&n))
	return n
}

// pass runs every kind's batches until each is done, checking each batch stays within limit,
// and returns what each deleted.
func pass(t *testing.T, s *store.Store, keep time.Duration, limit int) map[string]int {
	t.Helper()
	got := map[string]int{}
	for _, kind := range store.RetentionKinds {
		var at store.RetentionCursor
		for {
			b, err := s.RetentionDelete(context.Background(), kind, keep, at, limit)
			require.NoError(t, err)
			if kind != store.RetainExecutions {
				require.LessOrEqual(t, b.Deleted, limit, "a batch of %s is small", kind)
			}
			got[kind] += b.Deleted
			if b.Done {
				break
			}
			at = b.Next
		}
	}
	return got
}

func TestRetentionDeletesWhatIsOldAndFinished(t *testing.T) {
	t.Parallel()
	s := storetest.NewStore(t)
	d := seed{t, s}

	var gone, kept []int64
	for _, status := range store.ExecutionTerminal {
		gone = append(gone, d.execution(status, old, ""))
		kept = append(kept, d.execution(status, young, ""))
	}
	for _, status := range store.ExecutionStatuses {
		if !store.IsTerminal(status) {
			kept = append(kept, d.execution(status, old, ""), d.execution(status, 30*old, ""))
		}
	}
	// Created long ago but ended just now: it counts from its end.
	recent := d.execution(store.ExecutionRequested, old, "")
	_, err := s.Pool().Exec(context.Background(), `UPDATE attune.execution SET status = 'failed', finished_at = now() WHERE id = $1`, recent)
	require.NoError(t, err)
	kept = append(kept, recent)
	// Ended long ago with its retry planned: the retry is work still to do.
	kept = append(kept, d.execution(store.ExecutionFailed, old, "retry_at", time.Now().Add(time.Hour)))

	// A retry chain goes whole once every attempt ended; not while one runs.
	first := d.execution(store.ExecutionFailed, old, "")
	gone = append(gone, first, d.execution(store.ExecutionFailed, old, "retry_of, attempt", first, 2),
		d.execution(store.ExecutionCompleted, old, "retry_of, attempt", first, 3))
	first = d.execution(store.ExecutionFailed, old, "")
	kept = append(kept, first, d.execution(store.ExecutionRunning, old, "retry_of, attempt", first, 2))
	first = d.execution(store.ExecutionFailed, old, "")
	kept = append(kept, first, d.execution(store.ExecutionFailed, young, "retry_of, attempt", first, 2))

	// Events and enforcements: each goes once nothing kept refers to it.
	evGone := []int64{d.event(old, true)}
	enfGone := []int64{d.enforcement(evGone[0], "processed", old)}
	gone = append(gone, d.execution(store.ExecutionCompleted, old, "enforcement", enfGone[0]))
	evKept := []int64{d.event(old, true), d.event(old, false), d.event(young, true), d.event(old, true), d.event(old, true)}
	enfKept := []int64{
		d.enforcement(evKept[0], "processed", old), // its execution is young
		d.enforcement(evKept[3], "created", old),   // not processed yet
		d.enforcement(evKept[4], "disabled", young),
	}
	kept = append(kept, d.execution(store.ExecutionCompleted, young, "enforcement", enfKept[0]))
	evGone = append(evGone, d.event(old, true), d.event(30*old, true))
	enfGone = append(enfGone, d.enforcement(evGone[1], "disabled", old))

	// Audit entries go by age alone.
	auditGone := []int64{d.audit(old), d.audit(30 * old), d.audit(old)}
	auditKept := []int64{d.audit(young), d.audit(0)}

	got := pass(t, s, keepDay, 2)
	require.Equal(t, map[string]int{store.RetainExecutions: len(gone), store.RetainEnforcements: len(enfGone), store.RetainEvents: len(evGone),
		store.RetainAudit: len(auditGone)}, got)
	require.Empty(t, d.remaining("audit", auditGone...))
	require.ElementsMatch(t, auditKept, d.remaining("audit", auditKept...))
	require.Empty(t, d.remaining("execution", gone...))
	require.ElementsMatch(t, kept, d.remaining("execution", kept...))
	require.Empty(t, d.remaining("enforcement", enfGone...))
	require.ElementsMatch(t, enfKept, d.remaining("enforcement", enfKept...))
	require.Empty(t, d.remaining("event", evGone...))
	require.ElementsMatch(t, evKept, d.remaining("event", evKept...))

	require.Equal(t, map[string]int{store.RetainExecutions: 0, store.RetainEnforcements: 0, store.RetainEvents: 0, store.RetainAudit: 0},
		pass(t, s, keepDay, 2), "a second pass finds nothing")
}

func TestRetentionDeletesWorkflowsWithTheirChildren(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := storetest.NewStore(t)
	d := seed{t, s}
	ended := func() storetest.Workflow {
		return storetest.Workflow{ActionRef: "demo.flow", Status: store.ExecutionCompleted, Tasks: []storetest.WorkflowTask{
			{Name: "a", Status: store.TaskSucceeded, Children: []storetest.WorkflowChild{
				{ActionRef: "demo.act", Status: store.ExecutionFailed}, {ActionRef: "demo.act", Attempt: 2, Status: store.ExecutionCompleted}}},
			{Name: "b", Status: store.TaskSucceeded, Children: []storetest.WorkflowChild{{Nested: &storetest.Workflow{
				ActionRef: "demo.flow", Status: store.ExecutionCompleted, Tasks: []storetest.WorkflowTask{{Name: "c", Status: store.TaskSucceeded,
					Children: []storetest.WorkflowChild{{ActionRef: "demo.act", Status: store.ExecutionCompleted}}}}}}}},
		}}
	}
	tree := func(w storetest.FilledWorkflow) []int64 {
		ids := []int64{w.ID}
		for _, task := range w.Children {
			ids = append(ids, task...)
		}
		for _, n := range w.Nested { // its own id is its task's child
			for _, task := range n.Children {
				ids = append(ids, task...)
			}
		}
		return ids
	}

	doomed := storetest.FillWorkflow(t, s, ended())
	doomedIDs := tree(doomed)
	d.backdate(old, doomedIDs...)
	// What hangs on the tree's executions goes with them.
	child := doomed.Children[0][1]
	_, err := s.Pool().Exec(ctx, `INSERT INTO attune.inquiry (execution, workflow, prompt, status, timeout_at)
		VALUES ($1, $2, 'ok?', 'responded', now())`, child, doomed.ID)
	require.NoError(t, err)
	_, err = s.Pool().Exec(ctx, `INSERT INTO attune.execution_token (hash, execution, expires) VALUES ('\x01', $1, now())`, child)
	require.NoError(t, err)

	// One child still running keeps the whole tree, however old; so does one ended lately.
	running := ended()
	running.Tasks[1].Children[0].Nested.Tasks[0].Children[0].Status = store.ExecutionRunning
	runningTree := storetest.FillWorkflow(t, s, running)
	d.backdate(old, tree(runningTree)...)
	lately := storetest.FillWorkflow(t, s, ended())
	d.backdate(old, tree(lately)...)
	d.backdate(young, lately.Children[0][0])

	// A workflow an unfinished rerun starts from stays until the rerun ends.
	source := storetest.FillWorkflow(t, s, ended())
	d.backdate(old, tree(source)...)
	rerun := d.execution(store.ExecutionRequested, young, "")
	_, err = s.Pool().Exec(ctx, `INSERT INTO attune.workflow_rerun (execution, source, tasks) VALUES ($1, $2, '{a}')`, rerun, source.ID)
	require.NoError(t, err)

	got := pass(t, s, keepDay, 1)
	require.Equal(t, len(doomedIDs), got[store.RetainExecutions], "the tree counts whole")
	require.Len(t, doomedIDs, 5)
	require.Empty(t, d.remaining("execution", doomedIDs...))
	require.Zero(t, d.count(`SELECT (SELECT count(*) FROM attune.workflow WHERE execution = ANY($1))
		+ (SELECT count(*) FROM attune.workflow_task WHERE workflow = ANY($1)) + (SELECT count(*) FROM attune.workflow_item WHERE workflow = ANY($1))
		+ (SELECT count(*) FROM attune.inquiry WHERE workflow = $2) + (SELECT count(*) FROM attune.execution_token WHERE execution = $3)`,
		doomedIDs, doomed.ID, child))
	for _, w := range []storetest.FilledWorkflow{runningTree, lately, source} {
		require.ElementsMatch(t, tree(w), d.remaining("execution", tree(w)...), "kept whole")
	}

	// The rerun ended: its source may go now, and the rerun (young) stays.
	_, err = s.Pool().Exec(ctx, `UPDATE attune.execution SET status = 'cancelled' WHERE id = $1`, rerun)
	require.NoError(t, err)
	require.Equal(t, len(tree(source)), pass(t, s, keepDay, 1)[store.RetainExecutions])
	require.Equal(t, []int64{rerun}, d.remaining("execution", rerun))
}

// Runners working at once (two leaders for a moment, or a batch overrunning its leadership)
// delete each row once: their counts add up to what there was.
func TestRetentionRunnersAtOnceDeleteEachRowOnce(t *testing.T) {
	t.Parallel()
	s := storetest.NewStore(t)
	d := seed{t, s}
	const n = 300
	for range n {
		ev := d.event(old, true)
		d.execution(store.ExecutionCompleted, old, "enforcement", d.enforcement(ev, "processed", old))
	}
	w := storetest.FillWorkflow(t, s, storetest.Workflow{ActionRef: "demo.flow", Status: store.ExecutionCompleted,
		Tasks: []storetest.WorkflowTask{{Name: "a", Status: store.TaskSucceeded, Children: []storetest.WorkflowChild{
			{ActionRef: "demo.act", Status: store.ExecutionFailed}, {ActionRef: "demo.act", Attempt: 2, Status: store.ExecutionCompleted}}}}})
	d.backdate(old, w.ID, w.Children[0][0], w.Children[0][1])
	running := d.execution(store.ExecutionRunning, old, "")
	for range n {
		d.audit(old)
	}

	var wg sync.WaitGroup
	results := make([]map[string]int, 2)
	for i := range results {
		wg.Go(func() { results[i] = pass(t, s, keepDay, 7) })
	}
	wg.Wait()
	total := map[string]int{}
	for _, r := range results {
		for kind, c := range r {
			total[kind] += c
		}
	}
	require.Equal(t, map[string]int{store.RetainExecutions: n + 3, store.RetainEnforcements: n, store.RetainEvents: n, store.RetainAudit: n}, total)
	require.Equal(t, 1, d.count(`SELECT count(*) FROM attune.execution`))
	require.Equal(t, []int64{running}, d.remaining("execution", running))
	require.Zero(t, d.count(`SELECT (SELECT count(*) FROM attune.event) + (SELECT count(*) FROM attune.enforcement)`))
}

// A member another transaction holds (a retry being planned, a rerun being made) keeps its
// tree for a later pass, and the batch neither waits for it nor fails.
func TestRetentionSkipsATreeWithAMemberLocked(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := storetest.NewStore(t)
	d := seed{t, s}
	root := d.execution(store.ExecutionFailed, old, "")
	attempt := d.execution(store.ExecutionFailed, old, "retry_of, attempt", root, 2)
	other := d.execution(store.ExecutionCompleted, old, "")

	tx, err := s.Pool().Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback(ctx) }()
	_, err = tx.Exec(ctx, `SELECT id FROM attune.execution WHERE id = $1 FOR UPDATE`, attempt)
	require.NoError(t, err)

	short, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	b, err := s.RetentionDelete(short, store.RetainExecutions, keepDay, store.RetentionCursor{}, 10)
	require.NoError(t, err, "the batch does not wait for the lock")
	require.Equal(t, 1, b.Deleted)
	require.Empty(t, d.remaining("execution", other))
	require.Equal(t, []int64{root, attempt}, d.remaining("execution", root, attempt))

	require.NoError(t, tx.Rollback(ctx))
	require.Equal(t, 2, pass(t, s, keepDay, 10)[store.RetainExecutions], "once let go, the tree goes whole")
}

// A batch stops adding trees once their members would pass store.RetentionTreeRows, and the
// next batch starts from the first tree it left.
func TestRetentionBatchOfTreesIsBoundedInRows(t *testing.T) {
	t.Parallel()
	s := storetest.NewStore(t)
	d := seed{t, s}
	const children = 2000
	var roots []int64
	for range 3 {
		root := d.execution(store.ExecutionCompleted, old, "")
		_, err := s.Pool().Exec(context.Background(), `INSERT INTO attune.execution (action_ref, status, created, finished_at, parent)
			SELECT 'demo.act', 'completed', now() - make_interval(secs => $2), now() - make_interval(secs => $2), $1
			FROM generate_series(1, $3)`, root, old.Seconds(), children)
		require.NoError(t, err)
		roots = append(roots, root)
	}
	small := d.execution(store.ExecutionCompleted, old, "")

	b, err := s.RetentionDelete(context.Background(), store.RetainExecutions, keepDay, store.RetentionCursor{}, 10)
	require.NoError(t, err)
	require.Equal(t, 2*(children+1), b.Deleted, "two trees fit, the third would pass the bound")
	require.False(t, b.Done)
	require.Equal(t, roots[2:], d.remaining("execution", roots...))

	b, err = s.RetentionDelete(context.Background(), store.RetainExecutions, keepDay, b.Next, 10)
	require.NoError(t, err)
	require.Equal(t, children+2, b.Deleted, "the tree left first, then the small one")
	require.True(t, b.Done)
	require.Empty(t, d.remaining("execution", small))
	require.Zero(t, d.count(`SELECT count(*) FROM attune.execution`))
}
