package store

import (
	"context"
	"fmt"
	"time"
)

// TimerTickInsert records that the timer of rule ruleRef fired its tick due at tickAt. It
// reports false when that tick was already recorded: another leader fired it, and the caller
// must not insert its event. Run it in the transaction that inserts the event, so that a tick
// is recorded exactly when its event is.
func (q *Queries) TimerTickInsert(ctx context.Context, ruleRef string, tickAt time.Time) (bool, error) {
	tag, err := q.db.Exec(ctx, `INSERT INTO attune.timer_tick (rule_ref, tick_at) VALUES ($1, $2)
		ON CONFLICT (rule_ref, tick_at) DO NOTHING`, ruleRef, tickAt)
	if err != nil {
		return false, fmt.Errorf("insert tick of timer %s at %s: %w", ruleRef, tickAt.Format(time.RFC3339), translate(err))
	}
	return tag.RowsAffected() == 1, nil
}

// TimerTickPrune deletes the ticks due before before and reports how many went. Only ticks
// recent enough to be fired again at a hand-over need keeping.
func (q *Queries) TimerTickPrune(ctx context.Context, before time.Time) (int64, error) {
	tag, err := q.db.Exec(ctx, `DELETE FROM attune.timer_tick WHERE tick_at < $1`, before)
	if err != nil {
		return 0, fmt.Errorf("prune timer ticks: %w", translate(err))
	}
	return tag.RowsAffected(), nil
}
