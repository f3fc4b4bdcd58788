package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// OldChains writes n chains as retention finds them once the pipeline is done with them: an
// event the rules evaluated, its enforcement processed and its execution completed a second
// later, created age ago (and a second apart, in (created, id) order).
func OldChains(tb testing.TB, pool *pgxpool.Pool, n int, age time.Duration) {
	tb.Helper()
	_, err := pool.Exec(context.Background(), `
		WITH ev AS (INSERT INTO attune.event (trigger_ref, created, rules_evaluated_at)
				SELECT 'core.webhook', now() - make_interval(secs => $2) - g * interval '1 second', now() - make_interval(secs => $2)
				FROM generate_series(1, $1) g RETURNING id, created),
			enf AS (INSERT INTO attune.enforcement (rule_ref, trigger_ref, event, status, created)
				SELECT 'demo.rule', 'core.webhook', id, 'processed', created FROM ev RETURNING id, created)
		INSERT INTO attune.execution (action_ref, status, enforcement, created, finished_at)
		SELECT 'demo.act', 'completed', id, created, created + interval '1 second' FROM enf`, n, age.Seconds())
	if err != nil {
		tb.Fatalf("write %d old chains: %v", n, err)
	}
}
