package store_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
	"golang.org/x/sync/errgroup"

	"github.com/attune-go/attune/store"
	"github.com/attune-go/attune/store/storetest"
)

func ptr[T any](v T) *T { return &v }

// admissionFixture is a store with the demo pack and a way to create executions under a
// policy.
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

// policy puts pol in force for demo.run.
func (f admissionFixture) policy(pol store.Policy) {
	f.t.Helper()
	pol.ActionRef, pol.Enabled = ptr("demo.run"), true
	_, err := f.s.PolicyCreate(f.ctx, pol)
	require.NoError(f.t, err)
}

// admit creates an execution of demo.run with params, which decides its admission.
func (f admissionFixture) admit(params string) (int64, string) {
	f.t.Helper()
	c, err := f.s.ExecutionCreateOne(f.ctx, store.ExecutionCreateParams{ActionRef: "demo.run", Parameters: json.RawMessage(params)})
	require.NoError(f.t, err)
	return c.Execution.ID, c.Outcome
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
	f.policy(store.Policy{Ref: "demo.limit", ConcurrencyLimit: ptr(2)})
	var ids []int64
	for range 6 {
		id, outcome := f.admit(`{}`)
		ids = append(ids, id)
		if len(ids) <= 2 {
			require.Equal(t, store.CreateAdmitted, outcome)
		} else {
			require.Equal(t, store.CreateQueued, outcome)
		}
	}
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
		ID: ids[0], From: []string{store.ExecutionRunning, store.ExecutionScheduled}, To: store.ExecutionCompleted,
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
	f.policy(store.Policy{Ref: "demo.per_host", ConcurrencyLimit: ptr(1), ConcurrencyParameters: []string{"host"}})
	a1, out := f.admit(`{"host": "a"}`)
	require.Equal(t, store.CreateAdmitted, out)
	_, out = f.admit(`{"host": "b"}`)
	require.Equal(t, store.CreateAdmitted, out, "another host has its own slot")
	a2, out := f.admit(`{"host": "a"}`)
	require.Equal(t, store.CreateQueued, out)
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
	f.policy(store.Policy{Ref: "demo.cancel", ConcurrencyLimit: ptr(1), ConcurrencyMethod: "cancel"})
	_, out := f.admit(`{}`)
	require.Equal(t, store.CreateAdmitted, out)
	id, out := f.admit(`{}`)
	require.Equal(t, store.CreateCancelled, out)
	e, err := f.s.ExecutionGet(f.ctx, id)
	require.NoError(t, err)
	require.Equal(t, store.ExecutionCancelled, e.Status)
	require.Contains(t, *e.Reason, "policy demo.cancel")

	g := newAdmission(t)
	g.policy(store.Policy{Ref: "demo.short", ConcurrencyLimit: ptr(1), MaxQueueLength: ptr(1)})
	_, out = g.admit(`{}`)
	require.Equal(t, store.CreateAdmitted, out)
	_, out = g.admit(`{}`)
	require.Equal(t, store.CreateQueued, out)
	id, out = g.admit(`{}`)
	require.Equal(t, store.CreateFailed, out)
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
	f.policy(store.Policy{Ref: "demo.rate", RateMaxExecutions: ptr(2), RateWindowSeconds: ptr(60)})
	for range 2 {
		_, out := f.admit(`{}`)
		require.Equal(t, store.CreateAdmitted, out)
	}
	waiting, out := f.admit(`{}`)
	require.Equal(t, store.CreateQueued, out)
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
	g.policy(store.Policy{Ref: "demo.strict", RateMaxExecutions: ptr(1), RateWindowSeconds: ptr(60), RateMethod: "cancel"})
	_, out = g.admit(`{}`)
	require.Equal(t, store.CreateAdmitted, out)
	_, out = g.admit(`{}`)
	require.Equal(t, store.CreateCancelled, out)
}

// A waiter past queue_timeout_seconds fails with the reason and leaves the queue.
func TestAdmissionQueueTimeout(t *testing.T) {
	t.Parallel()
	f := newAdmission(t)
	f.policy(store.Policy{Ref: "demo.patient", ConcurrencyLimit: ptr(1), QueueTimeoutSeconds: ptr(30)})
	_, out := f.admit(`{}`)
	require.Equal(t, store.CreateAdmitted, out)
	late, out := f.admit(`{}`)
	require.Equal(t, store.CreateQueued, out)
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

// Deleting a policy lets its waiters go in the deleting transaction: a newcomer created after
// the deletion cannot pass them.
func TestAdmissionPolicyRemoved(t *testing.T) {
	t.Parallel()
	f := newAdmission(t)
	created, err := f.s.PolicyCreate(f.ctx, store.Policy{Ref: "demo.one", ActionRef: ptr("demo.run"), Enabled: true, ConcurrencyLimit: ptr(1)})
	require.NoError(t, err)
	got, err := f.s.PolicyFor(f.ctx, "demo.run")
	require.NoError(t, err)
	require.Equal(t, created.ID, got.ID)
	_, out := f.admit(`{}`)
	require.Equal(t, store.CreateAdmitted, out)
	waiting, out := f.admit(`{}`)
	require.Equal(t, store.CreateQueued, out)

	require.NoError(t, f.s.PolicyDelete(f.ctx, "demo.one"))
	none, err := f.s.PolicyFor(f.ctx, "demo.run")
	require.NoError(t, err)
	require.Zero(t, none.ID)
	require.True(t, f.admitted(waiting), "the deletion let the waiter go in its own transaction")
	_, out = f.admit(`{}`)
	require.Equal(t, store.CreateAdmitted, out, "no policy limits it any more")
}

// An execution an older version created undecided, decided late after younger ones already
// wait or were admitted, still goes ahead of every younger waiter: the queue is in id order
// and the group's cursor moves back for it.
func TestAdmissionLateDecisionKeepsIDOrder(t *testing.T) {
	t.Parallel()
	f := newAdmission(t)
	f.policy(store.Policy{Ref: "demo.one", ConcurrencyLimit: ptr(1)})
	insert := func() int64 {
		e, err := f.s.ExecutionInsert(f.ctx, store.ExecutionInsertParams{ActionRef: "demo.run"})
		require.NoError(t, err)
		return e.ID
	}
	decide := func(id int64) string {
		out, err := f.s.ExecutionAdmitLate(f.ctx, id)
		require.NoError(t, err)
		return out
	}
	a, b, c, d := insert(), insert(), insert(), insert()
	require.Equal(t, store.CreateAdmitted, decide(b))
	require.Equal(t, store.CreateAdmitted, decide(b), "deciding twice gives the first decision")
	require.Equal(t, store.CreateQueued, decide(c))
	f.end(b, store.ExecutionCompleted)
	require.True(t, f.admitted(c), "c admitted in order; the cursor is at c now")
	require.Equal(t, store.CreateQueued, decide(d))
	require.Equal(t, store.CreateQueued, decide(a), "a, older than the cursor, waits")
	require.Equal(t, 1, *f.position(a))
	require.Equal(t, 2, *f.position(d))
	f.end(c, store.ExecutionCompleted)
	require.True(t, f.admitted(a), "the oldest waiter goes first")
	require.False(t, f.admitted(d))
}

// The head-of-queue lookup in attune.admission_promote, under the function's planner
// settings, starts in admission_entry_queue_idx at the group's cursor: it neither sorts nor
// walks the entries of waiters admitted before.
func TestAdmissionHeadLookupPlan(t *testing.T) {
	t.Parallel()
	f := newAdmission(t)
	var body string
	var settings []string
	require.NoError(t, f.s.Pool().QueryRow(f.ctx, `SELECT prosrc, proconfig FROM pg_proc
		WHERE oid = 'attune.admission_promote'::regproc`).Scan(&body, &settings))
	_, query, ok := strings.Cut(body, "SELECT ae.execution INTO next_id")
	require.True(t, ok, body)
	query, _, ok = strings.Cut(query, ";")
	require.True(t, ok, body)
	query = "SELECT ae.execution " + strings.NewReplacer("gid", "$1", "g.head_execution", "$2::bigint").Replace(query)

	tx, err := f.s.Pool().Begin(f.ctx)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback(f.ctx) }()
	for _, setting := range settings {
		name, value, _ := strings.Cut(setting, "=")
		_, err := tx.Exec(f.ctx, `SELECT set_config($1, $2, true)`, name, value)
		require.NoError(t, err)
	}
	_, err = tx.Exec(f.ctx, `PREPARE head(bigint, bigint) AS `+query)
	require.NoError(t, err)
	defer func() { _, _ = tx.Exec(f.ctx, `DEALLOCATE head`) }()
	_, err = tx.Exec(f.ctx, `SET LOCAL plan_cache_mode = force_generic_plan`)
	require.NoError(t, err)
	rows, err := tx.Query(f.ctx, `EXPLAIN EXECUTE head(1, 1)`)
	require.NoError(t, err)
	var lines []string
	for rows.Next() {
		var line string
		require.NoError(t, rows.Scan(&line))
		lines = append(lines, line)
	}
	require.NoError(t, rows.Err())
	plan := strings.Join(lines, "\n")
	require.Contains(t, plan, "admission_entry_queue_idx", plan)
	require.Regexp(t, `Index Cond: .*admission_group = \$1.*execution > \$2`, plan)
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

// Within a queue, admission follows ids however many processes create executions at once:
// creators on connections of their own (as replicas are), some through the coalesced
// statement, and an ender completing admitted executions as they appear, so that the queue
// keeps running empty and newcomers race for a free slot. In the end every execution was
// admitted, and along ids admitted_at never decreases.
func TestAdmissionFollowsIDsUnderConcurrentCreation(t *testing.T) {
	t.Parallel()
	for _, limit := range []int{1, 2} {
		t.Run(fmt.Sprintf("limit %d", limit), func(t *testing.T) {
			t.Parallel()
			f := newAdmission(t)
			f.policy(store.Policy{Ref: "demo.limited", ConcurrencyLimit: ptr(limit)})
			const creators, each = 8, 25
			var created atomic.Int64
			deadline, cancel := context.WithTimeout(f.ctx, time.Minute)
			defer cancel()
			g, ctx := errgroup.WithContext(deadline)
			for c := range creators {
				g.Go(func() error {
					for range each {
						// Jitter, so that creations interleave every way, and the ender
						// keeps up often enough for the queue to empty.
						time.Sleep(time.Duration(rand.IntN(1500)) * time.Microsecond)
						p := store.ExecutionCreateParams{ActionRef: "demo.run"}
						var err error
						if c%2 == 0 {
							_, err = f.s.ExecutionCreateOne(ctx, p) // shares statements with the others
						} else {
							_, err = f.s.Queries.ExecutionCreateOne(ctx, p)
						}
						if err != nil {
							return err
						}
						created.Add(1)
					}
					return nil
				})
			}
			g.Go(func() error {
				for {
					all := created.Load() == creators*each
					running, err := f.s.Pool().Query(ctx, `SELECT id FROM attune.execution WHERE status = 'scheduled'`)
					if err != nil {
						return err
					}
					ids, err := pgx.CollectRows(running, pgx.RowTo[int64])
					if err != nil {
						return err
					}
					for _, id := range ids {
						if _, _, err := f.s.ExecutionTransition(ctx, store.ExecutionTransition{
							ID: id, From: []string{store.ExecutionScheduled}, To: store.ExecutionCompleted}); err != nil {
							return err
						}
					}
					if all && len(ids) == 0 {
						if _, err := f.s.ExecutionScheduleWaiting(ctx, 100); err != nil {
							return err
						}
						var left int
						if err := f.s.Pool().QueryRow(ctx, `SELECT count(*) FROM attune.execution WHERE status <> 'completed'`).Scan(&left); err != nil {
							return err
						}
						if left == 0 {
							return nil
						}
						if ctx.Err() != nil {
							return fmt.Errorf("%d executions never ran: %w", left, ctx.Err())
						}
					}
					// Promoted waiters are requested and admitted until scheduled.
					if _, err := f.s.ExecutionScheduleWaiting(ctx, 100); err != nil {
						return err
					}
				}
			})
			require.NoError(t, g.Wait())

			rows, err := f.s.Pool().Query(f.ctx, `SELECT id, admitted_at FROM attune.execution ORDER BY id`)
			require.NoError(t, err)
			type admission struct {
				ID int64
				At *time.Time
			}
			order, err := pgx.CollectRows(rows, pgx.RowToStructByPos[admission])
			require.NoError(t, err)
			require.Len(t, order, creators*each)
			for i, a := range order {
				require.NotNil(t, a.At, "execution %d was never admitted", a.ID)
				if i > 0 {
					require.False(t, a.At.Before(*order[i-1].At), "execution %d was admitted at %s, before %d (at %s)",
						a.ID, a.At, order[i-1].ID, order[i-1].At)
				}
			}
		})
	}
}

// Every writer that holds queues and executions takes the queues first, in id order, so that
// creations spanning several queues (batches), endings (batches of worker results), queue
// expiries and promotions never deadlock: PostgreSQL counts none while they all run at once.
func TestQueuesLockedInOneOrder(t *testing.T) {
	t.Parallel()
	f := newAdmission(t)
	f.policy(store.Policy{Ref: "demo.per_host", ConcurrencyLimit: ptr(1), ConcurrencyParameters: []string{"host"},
		QueueTimeoutSeconds: ptr(1)})
	deadlocks := func() int64 {
		var n int64
		require.NoError(t, f.s.Pool().QueryRow(f.ctx, `SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()`).Scan(&n))
		return n
	}
	before := deadlocks()
	ctx, cancel := context.WithTimeout(f.ctx, 4*time.Second)
	defer cancel()
	g, ctx := errgroup.WithContext(ctx)
	live := func(err error) error {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	for c := range 6 {
		g.Go(func() error { // creators: the coalesced statement makes batches across the hosts' queues
			for i := 0; ctx.Err() == nil; i++ {
				host := fmt.Sprintf(`{"host": "h%d"}`, (c+i)%4)
				if _, err := f.s.ExecutionCreateOne(ctx, store.ExecutionCreateParams{ActionRef: "demo.run", Parameters: json.RawMessage(host)}); err != nil {
					return live(err)
				}
			}
			return nil
		})
	}
	for range 3 {
		g.Go(func() error { // workers: their results, batched, release queues in any order
			for ctx.Err() == nil {
				rows, err := f.s.Pool().Query(ctx, `SELECT id FROM attune.execution WHERE status = 'scheduled' ORDER BY random() LIMIT 20`)
				if err != nil {
					return live(err)
				}
				ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
				if err != nil {
					return live(err)
				}
				var wg errgroup.Group
				for _, id := range ids {
					wg.Go(func() error {
						_, _, err := f.s.ExecutionTransition(ctx, store.ExecutionTransition{ID: id, From: []string{store.ExecutionScheduled}, To: store.ExecutionCompleted})
						return err
					})
				}
				if err := wg.Wait(); err != nil {
					return live(err)
				}
				if _, err := f.s.ExecutionScheduleWaiting(ctx, 50); err != nil {
					return live(err)
				}
			}
			return nil
		})
	}
	g.Go(func() error { // an executor's admission pass: expiries and promotions
		for ctx.Err() == nil {
			if _, err := f.s.AdmissionExpire(ctx); err != nil {
				return live(err)
			}
			if _, err := f.s.AdmissionPromoteDue(ctx); err != nil {
				return live(err)
			}
		}
		return nil
	})
	require.NoError(t, g.Wait())
	require.Equal(t, before, deadlocks(), "deadlocks while creating, ending, expiring and promoting at once")
}
