package store_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/attune-go/attune/store"
	"github.com/attune-go/attune/store/storetest"
)

func ptr[T any](v T) *T { return &v }

// admissionFixture is a store with the demo pack and a way to create and admit executions.
type admissionFixture struct {
	t   *testing.T
	ctx context.Context
	s   *store.Store
}

func newAdmission(t *testing.T) admissionFixture {
	t.Helper()
	s := storetest.NewStore(t)
	seedPack(t, s)
	return admissionFixture{t: t, ctx: context.Background(), s: s}
}

// admit creates an execution with params and admits it under pol.
func (f admissionFixture) admit(pol store.Policy, params string) (int64, string) {
	f.t.Helper()
	e, err := f.s.ExecutionInsert(f.ctx, store.ExecutionInsertParams{ActionRef: "demo.run", Parameters: json.RawMessage(params)})
	require.NoError(f.t, err)
	key := ""
	if len(pol.ConcurrencyParameters) > 0 {
		var values map[string]any
		require.NoError(f.t, json.Unmarshal([]byte(params), &values))
		b, _ := json.Marshal([]any{values[pol.ConcurrencyParameters[0]]})
		key = string(b)
	}
	outcome, err := f.s.AdmissionAdmit(f.ctx, store.AdmitParams{ExecutionID: e.ID, ActionRef: "demo.run", GroupKey: key, Policy: pol})
	require.NoError(f.t, err)
	return e.ID, outcome
}

func (f admissionFixture) end(id int64, status string) {
	f.t.Helper()
	_, _, err := f.s.ExecutionTransition(f.ctx, store.ExecutionTransition{
		ID: id, From: []string{store.ExecutionRequested, store.ExecutionScheduled, store.ExecutionRunning}, To: status,
	})
	require.NoError(f.t, err)
}

func (f admissionFixture) admitted(id int64) bool {
	f.t.Helper()
	e, err := f.s.ExecutionGet(f.ctx, id)
	require.NoError(f.t, err)
	return e.Admitted
}

func (f admissionFixture) position(id int64) *int {
	f.t.Helper()
	pos, err := f.s.ExecutionQueuePosition(f.ctx, id)
	require.NoError(f.t, err)
	return pos
}

func (f admissionFixture) stats() store.QueueStats {
	f.t.Helper()
	st, err := f.s.QueueStatsGet(f.ctx, "demo.run", nil)
	require.NoError(f.t, err)
	return st
}

// Under limit 2, executions beyond the slots wait in creation order; every ending releases
// its slot once and admits the oldest waiter in the same transaction, a repeated ending
// changes nothing, and cancelling a waiter takes it out of the queue.
func TestAdmissionFIFO(t *testing.T) {
	t.Parallel()
	f := newAdmission(t)
	pol := store.Policy{Ref: "demo.limit", ConcurrencyLimit: ptr(2)}
	var ids []int64
	for range 6 {
		id, outcome := f.admit(pol, `{}`)
		ids = append(ids, id)
		if len(ids) <= 2 {
			require.Equal(t, store.AdmissionAdmitted, outcome)
		} else {
			require.Equal(t, store.AdmissionQueued, outcome)
		}
	}
	again, err := f.s.AdmissionAdmit(f.ctx, store.AdmitParams{ExecutionID: ids[3], ActionRef: "demo.run", Policy: pol})
	require.NoError(t, err)
	require.Equal(t, store.AdmissionQueued, again, "deciding twice gives the first decision")
	require.Equal(t, 1, *f.position(ids[2]))
	require.Equal(t, 3, *f.position(ids[4]))
	require.Nil(t, f.position(ids[0]), "an admitted execution waits in no queue")
	st := f.stats()
	require.Equal(t, 2, st.Active)
	require.Equal(t, 4, st.Queued)
	require.NotNil(t, st.OldestQueuedAt)

	f.end(ids[0], store.ExecutionCompleted)
	require.True(t, f.admitted(ids[2]), "the oldest waiter takes the freed slot")
	require.False(t, f.admitted(ids[3]))
	_, changed, err := f.s.ExecutionTransition(f.ctx, store.ExecutionTransition{
		ID: ids[0], From: []string{store.ExecutionRunning, store.ExecutionRequested}, To: store.ExecutionCompleted,
	})
	require.NoError(t, err)
	require.False(t, changed)
	require.Equal(t, 2, f.stats().Active, "a repeated ending releases nothing more")

	f.end(ids[4], store.ExecutionCancelled) // a waiter cancelled
	require.Equal(t, 1, *f.position(ids[3]))
	require.Equal(t, 2, *f.position(ids[5]), "the queue closes up behind a cancelled waiter")

	f.end(ids[1], store.ExecutionAbandoned)
	require.True(t, f.admitted(ids[3]), "an abandoned execution releases its slot too")
	f.end(ids[2], store.ExecutionFailed)
	require.True(t, f.admitted(ids[5]))
	st = f.stats()
	require.Equal(t, 2, st.Active)
	require.Equal(t, 0, st.Queued)
	require.Nil(t, st.OldestQueuedAt)
}

// Grouping parameters give each combination of values its own slots and queue.
func TestAdmissionGroups(t *testing.T) {
	t.Parallel()
	f := newAdmission(t)
	pol := store.Policy{Ref: "demo.per_host", ConcurrencyLimit: ptr(1), ConcurrencyParameters: []string{"host"}}
	a1, out := f.admit(pol, `{"host": "a"}`)
	require.Equal(t, store.AdmissionAdmitted, out)
	_, out = f.admit(pol, `{"host": "b"}`)
	require.Equal(t, store.AdmissionAdmitted, out, "another host has its own slot")
	a2, out := f.admit(pol, `{"host": "a"}`)
	require.Equal(t, store.AdmissionQueued, out)
	st := f.stats()
	require.Len(t, st.Groups, 2)
	require.Equal(t, store.QueueGroup{Key: `["a"]`, Active: 1, Queued: 1}, st.Groups[0])
	require.Equal(t, store.QueueGroup{Key: `["b"]`, Active: 1, Queued: 0}, st.Groups[1])
	f.end(a1, store.ExecutionCompleted)
	require.True(t, f.admitted(a2))
}

// With method cancel a newcomer without a slot ends cancelled with the reason; a full queue
// fails the newcomer.
func TestAdmissionCancelAndQueueLength(t *testing.T) {
	t.Parallel()
	f := newAdmission(t)
	cancel := store.Policy{Ref: "demo.cancel", ConcurrencyLimit: ptr(1), ConcurrencyMethod: "cancel"}
	_, out := f.admit(cancel, `{}`)
	require.Equal(t, store.AdmissionAdmitted, out)
	id, out := f.admit(cancel, `{}`)
	require.Equal(t, store.AdmissionCancelled, out)
	e, err := f.s.ExecutionGet(f.ctx, id)
	require.NoError(t, err)
	require.Equal(t, store.ExecutionCancelled, e.Status)
	require.Contains(t, *e.Reason, "policy demo.cancel")

	g := newAdmission(t)
	short := store.Policy{Ref: "demo.short", ConcurrencyLimit: ptr(1), MaxQueueLength: ptr(1)}
	_, out = g.admit(short, `{}`)
	require.Equal(t, store.AdmissionAdmitted, out)
	_, out = g.admit(short, `{}`)
	require.Equal(t, store.AdmissionQueued, out)
	id, out = g.admit(short, `{}`)
	require.Equal(t, store.AdmissionFailed, out)
	e, err = g.s.ExecutionGet(g.ctx, id)
	require.NoError(t, err)
	require.Equal(t, store.ExecutionFailed, e.Status)
	require.Contains(t, *e.Reason, "queue full")
}

// A rate limit admits max_executions per sliding window: beyond that, enqueue waits until
// the window moves on and cancel refuses.
func TestAdmissionRateLimit(t *testing.T) {
	t.Parallel()
	f := newAdmission(t)
	pol := store.Policy{Ref: "demo.rate", RateMaxExecutions: ptr(2), RateWindowSeconds: ptr(60)}
	for range 2 {
		_, out := f.admit(pol, `{}`)
		require.Equal(t, store.AdmissionAdmitted, out)
	}
	waiting, out := f.admit(pol, `{}`)
	require.Equal(t, store.AdmissionQueued, out)
	promoted, err := f.s.AdmissionPromoteDue(f.ctx)
	require.NoError(t, err)
	require.Empty(t, promoted, "the window is still full")

	// Let the window move past the first admission (rather than wait a minute).
	_, err = f.s.Pool().Exec(f.ctx, `UPDATE attune.admission_group
		SET recent = ARRAY[now() - interval '61 seconds', now() - interval '1 second']`)
	require.NoError(t, err)
	promoted, err = f.s.AdmissionPromoteDue(f.ctx)
	require.NoError(t, err)
	require.Equal(t, []int64{waiting}, promoted)

	g := newAdmission(t)
	strict := store.Policy{Ref: "demo.strict", RateMaxExecutions: ptr(1), RateWindowSeconds: ptr(60), RateMethod: "cancel"}
	_, out = g.admit(strict, `{}`)
	require.Equal(t, store.AdmissionAdmitted, out)
	_, out = g.admit(strict, `{}`)
	require.Equal(t, store.AdmissionCancelled, out)
}

// A waiter past queue_timeout_seconds fails with the reason and leaves the queue.
func TestAdmissionQueueTimeout(t *testing.T) {
	t.Parallel()
	f := newAdmission(t)
	pol := store.Policy{Ref: "demo.patient", ConcurrencyLimit: ptr(1), QueueTimeoutSeconds: ptr(30)}
	_, out := f.admit(pol, `{}`)
	require.Equal(t, store.AdmissionAdmitted, out)
	late, out := f.admit(pol, `{}`)
	require.Equal(t, store.AdmissionQueued, out)
	expired, err := f.s.AdmissionExpire(f.ctx)
	require.NoError(t, err)
	require.Empty(t, expired)

	_, err = f.s.Pool().Exec(f.ctx, `UPDATE attune.admission_entry SET expires_at = now() - interval '1 second' WHERE execution = $1`, late)
	require.NoError(t, err)
	expired, err = f.s.AdmissionExpire(f.ctx)
	require.NoError(t, err)
	require.Len(t, expired, 1)
	require.Equal(t, late, expired[0].ID)
	require.Equal(t, store.ExecutionFailed, expired[0].Status)
	require.Contains(t, *expired[0].Reason, "queue_timeout_seconds")
	require.Equal(t, 0, f.stats().Queued)
}

// Deleting a policy lets its waiters go at the next promotion.
func TestAdmissionPolicyRemoved(t *testing.T) {
	t.Parallel()
	f := newAdmission(t)
	created, err := f.s.PolicyCreate(f.ctx, store.Policy{Ref: "demo.one", ActionRef: ptr("demo.run"), Enabled: true, ConcurrencyLimit: ptr(1)})
	require.NoError(t, err)
	got, err := f.s.PolicyFor(f.ctx, "demo.run")
	require.NoError(t, err)
	require.Equal(t, created.ID, got.ID)
	_, out := f.admit(got, `{}`)
	require.Equal(t, store.AdmissionAdmitted, out)
	waiting, out := f.admit(got, `{}`)
	require.Equal(t, store.AdmissionQueued, out)

	require.NoError(t, f.s.PolicyDelete(f.ctx, "demo.one"))
	none, err := f.s.PolicyFor(f.ctx, "demo.run")
	require.NoError(t, err)
	require.Zero(t, none.ID)
	require.NoError(t, f.s.AdmissionApplyPolicies(f.ctx))
	promoted, err := f.s.AdmissionPromoteDue(f.ctx)
	require.NoError(t, err)
	require.Equal(t, []int64{waiting}, promoted)
}

// An execution decided late, after younger ones already wait or were admitted in order, still
// goes ahead of every younger waiter: the group's cursor moves back for it.
func TestAdmissionLateDecisionKeepsCreationOrder(t *testing.T) {
	t.Parallel()
	f := newAdmission(t)
	pol := store.Policy{Ref: "demo.one", ConcurrencyLimit: ptr(1)}
	insert := func() int64 {
		e, err := f.s.ExecutionInsert(f.ctx, store.ExecutionInsertParams{ActionRef: "demo.run"})
		require.NoError(t, err)
		return e.ID
	}
	decide := func(id int64) string {
		out, err := f.s.AdmissionAdmit(f.ctx, store.AdmitParams{ExecutionID: id, ActionRef: "demo.run", Policy: pol})
		require.NoError(t, err)
		return out
	}
	a, b, c, d := insert(), insert(), insert(), insert()
	require.Equal(t, store.AdmissionAdmitted, decide(b))
	require.Equal(t, store.AdmissionQueued, decide(c))
	f.end(b, store.ExecutionCompleted)
	require.True(t, f.admitted(c), "c admitted in order; the cursor is at c now")
	require.Equal(t, store.AdmissionQueued, decide(d))
	require.Equal(t, store.AdmissionQueued, decide(a), "a, older than the cursor, waits")
	require.Equal(t, 1, *f.position(a))
	require.Equal(t, 2, *f.position(d))
	f.end(c, store.ExecutionCompleted)
	require.True(t, f.admitted(a), "the oldest waiter goes first")
	require.False(t, f.admitted(d))
}

// The head-of-queue lookup in attune.admission_promote, under the function's planner
// settings, starts in admission_entry_fifo_idx at the group's cursor: it neither sorts nor
// walks the entries of waiters admitted before.
func TestAdmissionHeadLookupPlan(t *testing.T) {
	t.Parallel()
	f := newAdmission(t)
	var body string
	var settings []string
	require.NoError(t, f.s.Pool().QueryRow(f.ctx, `SELECT prosrc, proconfig FROM pg_proc
		WHERE oid = 'attune.admission_promote'::regproc`).Scan(&body, &settings))
	_, query, ok := strings.Cut(body, "FOR cand IN")
	require.True(t, ok, body)
	query, _, ok = strings.Cut(query, "LOOP")
	require.True(t, ok, body)
	query = strings.NewReplacer("gid", "$1", "g.head_enqueued_at", "$2::timestamptz", "g.head_execution", "$3::bigint").Replace(query)

	tx, err := f.s.Pool().Begin(f.ctx)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback(f.ctx) }()
	for _, setting := range settings {
		name, value, _ := strings.Cut(setting, "=")
		_, err := tx.Exec(f.ctx, `SELECT set_config($1, $2, true)`, name, value)
		require.NoError(t, err)
	}
	_, err = tx.Exec(f.ctx, `PREPARE head(bigint, timestamptz, bigint) AS `+query)
	require.NoError(t, err)
	defer func() { _, _ = tx.Exec(f.ctx, `DEALLOCATE head`) }()
	_, err = tx.Exec(f.ctx, `SET LOCAL plan_cache_mode = force_generic_plan`)
	require.NoError(t, err)
	rows, err := tx.Query(f.ctx, `EXPLAIN EXECUTE head(1, now(), 1)`)
	require.NoError(t, err)
	var lines []string
	for rows.Next() {
		var line string
		require.NoError(t, rows.Scan(&line))
		lines = append(lines, line)
	}
	require.NoError(t, rows.Err())
	plan := strings.Join(lines, "\n")
	require.Contains(t, plan, "admission_entry_fifo_idx", plan)
	require.Regexp(t, `Index Cond: .*admission_group = \$1.*ROW\(enqueued_at, execution\) > ROW`, plan)
	require.NotContains(t, plan, "Sort", plan)
}

// A pack's policy bounds each of its actions; an action's own policy wins over it, and a
// disabled one counts as none.
func TestPolicyForPrecedence(t *testing.T) {
	t.Parallel()
	f := newAdmission(t)
	none, err := f.s.PolicyFor(f.ctx, "demo.run")
	require.NoError(t, err)
	require.Zero(t, none.ID)

	packWide, err := f.s.PolicyCreate(f.ctx, store.Policy{Ref: "demo.pack_wide", PackRef: ptr("demo"), Enabled: true, ConcurrencyLimit: ptr(3)})
	require.NoError(t, err)
	got, err := f.s.PolicyFor(f.ctx, "demo.run")
	require.NoError(t, err)
	require.Equal(t, packWide.ID, got.ID, "the pack's policy covers its action")

	own, err := f.s.PolicyCreate(f.ctx, store.Policy{Ref: "demo.own", ActionRef: ptr("demo.run"), Enabled: true, ConcurrencyLimit: ptr(1)})
	require.NoError(t, err)
	got, err = f.s.PolicyFor(f.ctx, "demo.run")
	require.NoError(t, err)
	require.Equal(t, own.ID, got.ID, "the action's own policy wins")

	own.Enabled = false
	_, err = f.s.PolicyUpdate(f.ctx, own.Ref, own)
	require.NoError(t, err)
	got, err = f.s.PolicyFor(f.ctx, "demo.run")
	require.NoError(t, err)
	require.Equal(t, packWide.ID, got.ID, "a disabled policy counts as none")
}
