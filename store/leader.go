package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
)

// LeaderCheckInterval is how often a follower tries to take the leadership and how often a
// leader checks that the session holding it is still alive.
const LeaderCheckInterval = time.Second

// leaderTakeoverDelay is how long a new leader holds the lock before it starts work. A leader
// whose session died (and so lost its lock) notices within one check interval; waiting two
// means it has stopped by the time its successor starts, in all but pathological cases (a
// process frozen for seconds), which callers must tolerate anyway (see Lead).
const leaderTakeoverDelay = 2 * LeaderCheckInterval

// Lead runs fn while this process holds the leadership named key among every process that
// calls Lead with the same key on the same database, and returns only when ctx ends.
//
// Leadership is a session-level advisory lock held on a connection taken out of the pool for
// the purpose. Followers try to take it every LeaderCheckInterval; a leader that dies loses
// its session, so its lock, and a follower takes over within about that interval (plus the
// takeover delay). The leader runs SELECT 1 on its connection every LeaderCheckInterval and
// cancels fn's context as soon as that fails. When fn returns (an error is logged) or the
// connection breaks, leadership is given up and tried for again.
//
// The lock makes two leaders at once rare, not impossible: a process frozen between two checks
// can act after its session was taken from it. Work that must be done once needs its own guard
// in the database as well (a unique key, a conditional update).
func (s *Store) Lead(ctx context.Context, key string, logger *slog.Logger, fn func(ctx context.Context) error) error {
	for {
		err := s.leadOnce(ctx, key, logger, fn)
		if ctx.Err() != nil {
			return nil
		}
		logger.WarnContext(ctx, "leadership ended; trying again", "key", key, "err", err, "retry_in", LeaderCheckInterval)
		select {
		case <-time.After(LeaderCheckInterval):
		case <-ctx.Done():
			return nil
		}
	}
}

// leadOnce waits for the lock on a connection of its own, then runs fn while holding it. It
// returns why it stopped leading, or nil when ctx ended.
func (s *Store) leadOnce(ctx context.Context, key string, logger *slog.Logger, fn func(ctx context.Context) error) error {
	pooled, err := s.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("acquire leader connection: %w", translate(err))
	}
	// The lock belongs to the session: the connection must never go back to the pool, and
	// closing it is what releases the lock, however the leadership ended.
	conn := pooled.Hijack()
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = conn.Close(cctx)
	}()

	ticker := time.NewTicker(LeaderCheckInterval)
	defer ticker.Stop()
	for {
		var ok bool
		if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock(hashtext($1))`, key).Scan(&ok); err != nil {
			return ignoreEnd(ctx, fmt.Errorf("try leader lock %s: %w", key, translate(err)))
		}
		if ok {
			break
		}
		select {
		case <-ticker.C:
		case <-ctx.Done():
			return nil
		}
	}
	logger.InfoContext(ctx, "took the leadership", "key", key)

	// Wait out the previous leader's last check before starting work, checking our own
	// connection meanwhile.
	start := time.NewTimer(leaderTakeoverDelay)
	defer start.Stop()
	for waiting := true; waiting; {
		select {
		case <-start.C:
			waiting = false
		case <-ticker.C:
			if err := pingLeader(ctx, conn); err != nil {
				return ignoreEnd(ctx, err)
			}
		case <-ctx.Done():
			return nil
		}
	}
	return holdLeadership(ctx, conn, key, logger, ticker, fn)
}

// holdLeadership runs fn until ctx ends, fn returns or conn fails its check. fn has stopped by
// the time it returns, so the lock is released (conn closed) only after the work stopped.
func holdLeadership(ctx context.Context, conn *pgx.Conn, key string, logger *slog.Logger, ticker *time.Ticker, fn func(ctx context.Context) error) error {
	workCtx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan error, 1)
	go func() { done <- fn(workCtx) }()
	logger.InfoContext(ctx, "leading", "key", key)
	for {
		select {
		case <-ctx.Done():
			stop()
			<-done
			logger.InfoContext(ctx, "stopped leading", "key", key)
			return nil
		case err := <-done:
			if err == nil {
				err = errors.New("returned before its context ended")
			}
			return ignoreEnd(ctx, fmt.Errorf("leader work %s: %w", key, err))
		case <-ticker.C:
			if err := pingLeader(ctx, conn); err != nil {
				// The session, and with it the lock, may be gone: stop at once.
				stop()
				<-done
				return ignoreEnd(ctx, err)
			}
		}
	}
}

// pingLeader checks that the session holding the lock is alive. The timeout catches a
// connection that hangs rather than fails, whose lock the server may give away later.
func pingLeader(ctx context.Context, conn *pgx.Conn) error {
	cctx, cancel := context.WithTimeout(ctx, LeaderCheckInterval)
	defer cancel()
	if _, err := conn.Exec(cctx, `SELECT 1`); err != nil {
		return fmt.Errorf("check leader connection: %w", translate(err))
	}
	return nil
}

// ignoreEnd drops an error caused by ctx ending, which is a clean stop.
func ignoreEnd(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	return err
}
