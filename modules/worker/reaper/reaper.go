// Package reaper ends the processes of a worker's actions that would outlive the worker, and
// removes the worker's files: it finds the processes by a marker in their environment, which
// every process an action starts inherits, and it runs both in the worker (for what an earlier
// process of the same worker left) and in the worker's companion process (for what the worker
// leaves when it dies).
package reaper

import (
	"bytes"
	"context"
	"slices"
	"syscall"
	"time"
)

// The variables that mark the processes of a worker's actions.
const (
	// EnvWorker holds the worker's name.
	EnvWorker = "ATTUNE_WORKER"
	// EnvInstance holds the token of the worker process (see instance.go).
	EnvInstance = "ATTUNE_WORKER_INSTANCE"
)

// Marker tags the processes of the actions of one worker process.
type Marker struct {
	// Worker is the worker's name, which its next process shares.
	Worker string
	// Instance differs for each process of the worker, and names that process.
	Instance string
}

// NewMarker returns the marker of this process, a worker called worker.
func NewMarker(worker string) Marker {
	return Marker{Worker: worker, Instance: newInstance()}
}

// Env is the marker as environment variables, "NAME=value".
func (m Marker) Env() []string {
	return []string{EnvWorker + "=" + m.Worker, EnvInstance + "=" + m.Instance}
}

// Mine reports whether environ belongs to a process of this worker process's actions.
func (m Marker) Mine(environ []byte) bool {
	want := []byte(EnvInstance + "=" + m.Instance)
	return envHas(environ, func(e []byte) bool { return bytes.Equal(e, want) })
}

// other returns the instance token of the process of environ when it belongs to the actions
// of another process of the same worker name, alive or not.
func (m Marker) other(environ []byte) (string, bool) {
	worker := []byte(EnvWorker + "=" + m.Worker)
	if !envHas(environ, func(e []byte) bool { return bytes.Equal(e, worker) }) {
		return "", false
	}
	instance, ok := envValue(environ, EnvInstance)
	return instance, ok && instance != m.Instance
}

// Earlier reports whether environ belongs to a process of the actions of an earlier process
// of the same worker name that is gone. The actions of one that still runs are its own to
// end: two processes were started with one name, or one still drains while its replacement
// starts.
func (m Marker) Earlier(environ []byte) bool {
	instance, ok := m.other(environ)
	if !ok {
		return false
	}
	// One whose state cannot be read reads alive: it is left alone.
	alive, _ := instanceAlive(instance)
	return !alive
}

const (
	// Grace is how long the processes of a dead worker's actions have between SIGTERM and
	// SIGKILL: short, since the promise is that none outlives its worker by a second.
	Grace = 500 * time.Millisecond
	// poll is how often /proc is read again while processes are left.
	poll = 25 * time.Millisecond
)

// Options tune Reap.
type Options struct {
	// Grace is how long after SIGTERM SIGKILL follows. Default Grace.
	Grace time.Duration
	// Spare lists process groups never signalled as a whole, besides this process's own: a
	// marked process may have joined one (its worker's, say) that holds others too. The
	// marked process itself is signalled all the same.
	Spare []int
}

// Reaped is what a Reap did.
type Reaped struct {
	// PIDs lists every process signalled, in the order found.
	PIDs []int
	// Left lists the processes still there when the reap gave up.
	Left []int
}

// Reap ends every process whose environment match accepts: SIGTERM to each and to its process
// group (so that a process of the group that cleared its environment goes too), then, past the
// grace, SIGKILL, reading /proc again until no such process is left or ctx ends. A process
// forked while the reap runs carries the marker and is found by the next reading.
func Reap(ctx context.Context, match func(environ []byte) bool, opts Options) (Reaped, error) {
	grace := opts.Grace
	if grace <= 0 {
		grace = Grace
	}
	spare := append([]int{syscall.Getpgrp()}, opts.Spare...)
	var r Reaped
	termed := map[int]bool{}
	var killFrom time.Time
	tick := time.NewTicker(poll)
	defer tick.Stop()
	for {
		procs, err := scan(match)
		if err != nil {
			return r, err
		}
		if len(procs) == 0 {
			return r, nil
		}
		if killFrom.IsZero() {
			killFrom = time.Now().Add(grace)
		}
		kill := !time.Now().Before(killFrom)
		for _, p := range procs {
			if !termed[p.pid] {
				termed[p.pid] = true
				r.PIDs = append(r.PIDs, p.pid)
			} else if !kill {
				continue
			}
			sig := syscall.SIGTERM
			if kill {
				sig = syscall.SIGKILL
			}
			// Group 1 and below are not groups one may signal as a whole.
			if p.pgid > 1 && !slices.Contains(spare, p.pgid) {
				_ = syscall.Kill(-p.pgid, sig)
			}
			// One that cannot be signalled (gone since, or no longer this user's) is either
			// not found by the next reading or reported left when the reap gives up.
			_ = syscall.Kill(p.pid, sig)
		}
		select {
		case <-ctx.Done():
			for _, p := range procs {
				r.Left = append(r.Left, p.pid)
			}
			return r, ctx.Err()
		case <-tick.C:
		}
	}
}
