package worker

import (
	"context"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/attune-go/attune/modules/worker/reaper"
)

// companion keeps the worker's companion process running: the process that ends the worker's
// actions when the worker dies (package reaper).
type companion struct {
	mu      sync.Mutex
	current *reaper.Companion
}

// earlierWithin bounds how long a starting worker tries to end what an earlier process left.
const earlierWithin = 30 * time.Second

// endEarlierActions ends the processes an earlier process of this worker's name left running
// on this host, and removes its files: it died without its companion getting to them (both
// were killed), and this process is about to abandon their executions. Nothing it finds stops
// the start, since holding back this worker would end none of it: a process stuck in the
// kernel, or one of another process of the name that still runs, is logged and left. Only the
// end of ctx returns an error.
func (m *Module) endEarlierActions(ctx context.Context) error {
	log := m.deps.Logger
	rctx, cancel := context.WithTimeout(ctx, earlierWithin)
	defer cancel()
	e, err := m.endEarlier(rctx, m.marker, filepath.Dir(m.dir), reaper.Options{})
	if len(e.Live) > 0 {
		log.WarnContext(ctx, "another process of this worker's name runs on this host: two workers share a name; its actions are left alone",
			"worker", m.cfg.Name, "instances", e.Live)
	}
	if len(e.PIDs) > 0 {
		log.WarnContext(ctx, "ended the actions an earlier process of this worker left", "worker", m.cfg.Name, "pids", e.PIDs, "left", e.Left)
	}
	if len(e.Dirs) > 0 {
		log.InfoContext(ctx, "removed the files earlier processes of this worker left", "worker", m.cfg.Name, "dirs", e.Dirs)
	}
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		log.WarnContext(ctx, "could not end all an earlier process of this worker left; starting all the same",
			"worker", m.cfg.Name, "left", e.Left, "err", err)
	}
	return nil
}

// startCompanion starts the companion, before any action can start.
func (m *Module) startCompanion(ctx context.Context) error {
	c, err := reaper.Launch(m.cfg.Companion(m.marker, m.dir))
	if err != nil {
		return err
	}
	m.companion.mu.Lock()
	m.companion.current = c
	m.companion.mu.Unlock()
	m.deps.Logger.InfoContext(ctx, "worker companion started", "worker", m.cfg.Name, "pid", c.PID())
	return nil
}

// superviseCompanion starts the companion again when it exits while the worker runs (someone
// killed it): without it, the actions would outlive a killed worker. It returns when ctx ends,
// or with an error when a new companion cannot be started.
func (m *Module) superviseCompanion(ctx context.Context) error {
	for {
		m.companion.mu.Lock()
		c := m.companion.current
		m.companion.mu.Unlock()
		select {
		case <-ctx.Done():
			return nil
		case <-c.Done():
		}
		m.deps.Logger.ErrorContext(ctx, "worker companion exited; starting another", "worker", m.cfg.Name, "pid", c.PID(), "err", c.Err())
		// One start a second at most, should it keep dying.
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Second):
		}
		if err := m.startCompanion(ctx); err != nil {
			return err
		}
	}
}

// stopCompanion closes the worker's end of the companion's pipe once every run has ended, as
// the worker's death would: the companion ends what the actions left in the background, and
// exits.
func (m *Module) stopCompanion(ctx context.Context) {
	m.companion.mu.Lock()
	c := m.companion.current
	m.companion.mu.Unlock()
	if c == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*reaper.Grace+5*time.Second)
	defer cancel()
	if err := c.Stop(ctx); err != nil {
		m.deps.Logger.WarnContext(ctx, "worker companion stop", "worker", m.cfg.Name, "err", err)
		_ = syscall.Kill(c.PID(), syscall.SIGKILL)
	}
}

// processGone reports whether the process of a dead worker's record is gone from this host:
// no process has its pid, or the one that has it started after the worker's last heartbeat,
// so it is another process that reuses the pid. Both durations are measured, not read off a
// clock, so clocks that disagree do not matter; a margin keeps a doubtful one.
func processGone(pid int, silentFor time.Duration) (bool, error) {
	if pid <= 0 {
		return false, nil // not known: keep it
	}
	age, alive, err := reaper.Age(pid)
	if err != nil {
		return false, err
	}
	return !alive || age+2*time.Second < silentFor, nil
}
