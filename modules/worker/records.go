package worker

import (
	"context"
	"errors"

	"github.com/attune-go/attune/store"
)

// forgetDeadWorkers deletes the records of workers that are gone for good, so that restarts
// under the default name (host and pid) do not pile them up: those of this host that stopped
// heartbeating and whose process is gone, and those of any host silent past the retention,
// when nothing runs on them. The executions they ran keep their names. It is best effort: a
// failure is logged, and the next worker to start tries again.
func (m *Module) forgetDeadWorkers(ctx context.Context) {
	log := m.deps.Logger
	var forgotten []string
	if m.cfg.Host != "" {
		dead, err := m.deps.Store.WorkerListDeadOnHost(ctx, m.cfg.Host, m.cfg.Name, m.cfg.Timeout)
		if err != nil {
			log.WarnContext(ctx, "list the dead workers of this host", "err", err)
		}
		for _, d := range dead {
			gone, err := processGone(d.PID, d.SilentFor)
			if err != nil {
				log.WarnContext(ctx, "look for a dead worker's process", "worker", d.Name, "pid", d.PID, "err", err)
			}
			if !gone {
				continue
			}
			// The delete checks again, under the row's lock, that it is dead and runs nothing.
			err = m.deps.Store.WorkerDelete(ctx, d.Name, m.cfg.Timeout)
			switch {
			case err == nil:
				forgotten = append(forgotten, d.Name)
			case errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrConflict):
				// Deleted by another, or back to life since.
			default:
				log.WarnContext(ctx, "delete a dead worker's record", "worker", d.Name, "err", err)
			}
		}
	}
	silent, err := m.deps.Store.WorkerDeleteSilent(ctx, m.cfg.Retention)
	if err != nil {
		log.WarnContext(ctx, "delete the records of long silent workers", "err", err)
	}
	forgotten = append(forgotten, silent...)
	if len(forgotten) > 0 {
		log.InfoContext(ctx, "deleted the records of dead workers", "workers", forgotten)
	}
}
