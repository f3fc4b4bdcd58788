package store

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
)

// Listen calls onChange whenever a NOTIFY arrives on channel, until ctx ends. It holds one
// connection of the pool for the purpose and re-listens after the connection breaks. Since
// notifications sent while it was not listening are lost, onChange(false) is called whenever
// listening stops, and onChange(true) once it is listening again (and for every
// notification): a caller that caches must not trust its cache while listening is false.
func (s *Store) Listen(ctx context.Context, channel string, logger *slog.Logger, onChange func(listening bool)) error {
	delay := 100 * time.Millisecond
	for {
		err := s.listenOnce(ctx, channel, onChange)
		onChange(false)
		if ctx.Err() != nil {
			return nil
		}
		logger.WarnContext(ctx, "listen interrupted; listening again", "channel", channel, "err", err, "retry_in", delay)
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return nil
		}
		delay = min(delay*2, 5*time.Second)
	}
}

func (s *Store) listenOnce(ctx context.Context, channel string, onChange func(bool)) error {
	pooled, err := s.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("acquire listen connection: %w", translate(err))
	}
	// A connection that was listening must not go back to the pool.
	conn := pooled.Hijack()
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{channel}.Sanitize()); err != nil {
		return fmt.Errorf("listen on %s: %w", channel, translate(err))
	}
	onChange(true)
	for {
		if _, err := conn.WaitForNotification(ctx); err != nil {
			return fmt.Errorf("wait for notification on %s: %w", channel, translate(err))
		}
		onChange(true)
	}
}
