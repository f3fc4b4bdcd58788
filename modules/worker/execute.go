package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/attune-go/attune/broker"
	"github.com/attune-go/attune/modules/worker/runner"
	"github.com/attune-go/attune/store"
)

// running tracks the executions this worker is running, so that a cancel request can reach
// the right one and the end of a run can tell an operator's cancel from a shutdown.
type running struct {
	mu   sync.Mutex
	byID map[int64]*runHandle
	// early holds cancels that arrived before their execution started here: the API marks
	// an execution canceling the moment it is claimed, which can beat the run's start.
	early map[int64]time.Time
}

type runHandle struct {
	cancel    context.CancelFunc
	requested bool // an operator asked for the cancel
}

func (r *running) add(id int64, cancel context.CancelFunc) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.byID == nil {
		r.byID = make(map[int64]*runHandle)
	}
	h := &runHandle{cancel: cancel}
	r.byID[id] = h
	if _, ok := r.early[id]; ok {
		delete(r.early, id)
		h.requested = true
		cancel()
	}
}

// remove forgets id and reports whether a cancel was requested for it.
func (r *running) remove(id int64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	h := r.byID[id]
	delete(r.byID, id)
	return h != nil && h.requested
}

// earlyCancelTTL bounds how long a cancel waits for its execution to start here.
const earlyCancelTTL = 10 * time.Minute

// cancel stops id if it runs here, or remembers the request for when it starts, and reports
// whether it was running.
func (r *running) cancel(id int64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if h, ok := r.byID[id]; ok {
		h.requested = true
		h.cancel()
		return true
	}
	now := time.Now()
	if r.early == nil {
		r.early = make(map[int64]time.Time)
	}
	for k, at := range r.early {
		if now.Sub(at) > earlyCancelTTL {
			delete(r.early, k)
		}
	}
	r.early[id] = now
	return false
}

// handleDispatch claims a dispatched execution and runs it. The claim is a conditional
// update from scheduled to running, so a redelivered or duplicated dispatch, or one taken by
// two workers, never runs an execution twice.
func (m *Module) handleDispatch(ctx context.Context, msg broker.Message) error {
	p, err := broker.Decode[broker.ExecutionDispatched](msg)
	if err != nil {
		return err
	}
	if err := m.refuseForeign(p.WorkerSelector); err != nil {
		return err
	}
	if err := m.slots.Acquire(ctx, 1); err != nil {
		return err
	}
	m.deps.Metrics.SlotsBusy(1)
	defer func() {
		m.deps.Metrics.SlotsBusy(-1)
		m.slots.Release(1)
	}()
	exec, claimed, err := m.deps.Store.ExecutionClaim(ctx, p.ExecutionID, m.id.Load())
	if err != nil || !claimed {
		return err
	}
	runnerType := p.Action.RunnerType
	m.started(exec, runnerType)
	m.notify(store.ExecutionScheduled, exec)
	// Secret values are opened here, just before the action starts, and live only in this
	// run: what the action is given, and the scrubber of what it prints.
	params, opened, err := m.deps.Opener.OpenJSON(exec.Parameters)
	if err != nil {
		return m.finish(ctx, exec, runnerType, nil, notStarted(fmt.Sprintf("open the sealed parameters: %v", err)), store.ExecutionFailed)
	}
	job, release, err := m.job(ctx, exec, params, p.Action)
	if err != nil {
		return m.finish(ctx, exec, runnerType, newScrubber(params, exec.Secrets, opened...), notStarted(err.Error()), store.ExecutionFailed)
	}
	defer release()
	if job.RunnerType == "shell" && m.cfg.APIURL != "" {
		// The action's own credential for the API, good while it runs and a little after; it
		// is scrubbed from what the action prints, as its secrets are.
		token, err := m.issueToken(ctx, exec.ID, job.Timeout+actionTokenMargin)
		if err != nil {
			return m.finish(ctx, exec, runnerType, newScrubber(params, exec.Secrets, opened...), notStarted(fmt.Sprintf("issue the action's API token: %v", err)), store.ExecutionFailed)
		}
		job.Env = []string{"ATTUNE_API_URL=" + m.cfg.APIURL, "ATTUNE_TOKEN=" + token}
		opened = append(opened, token)
	}
	scrub := newScrubber(params, exec.Secrets, opened...)
	run, ok := m.runners[job.RunnerType]
	if !ok {
		return m.finish(ctx, exec, runnerType, scrub, notStarted(fmt.Sprintf("this worker has no %q runner", job.RunnerType)), store.ExecutionFailed)
	}

	var live *liveOutput
	if job.RunnerType == runner.TypeShell {
		live = m.liveOutput(exec, scrub)
		job.Stdout, job.Stderr = live.writers()
	}

	runCtx, cancel := context.WithCancel(ctx)
	m.running.add(exec.ID, cancel)
	m.deps.Logger.DebugContext(ctx, "execution started", "execution_id", exec.ID, "action", exec.ActionRef, "trace_id", exec.Trace())
	result := run.Run(runCtx, job)
	m.closeLiveOutput(ctx, live)
	cancelled := m.running.remove(exec.ID)
	cancel()
	return m.finish(ctx, exec, runnerType, scrub, result, statusOf(result, cancelled))
}

// started counts a claimed execution, and observes how long it waited for its policy to
// admit it and then for a worker.
func (m *Module) started(exec store.Execution, runnerType string) {
	m.deps.Metrics.ExecutionStarted(exec.ActionRef, runnerType)
	if exec.AdmittedAt != nil && exec.StartedAt != nil {
		m.deps.Metrics.Stage("admitted", exec.AdmittedAt.Sub(exec.Created))
		m.deps.Metrics.Stage("started", exec.StartedAt.Sub(*exec.AdmittedAt))
	}
}

// statusOf maps a run's result to the execution's terminal status. A run stopped without an
// operator's cancel was stopped by this worker shutting down: abandoned, not cancelled.
func statusOf(r runner.Result, cancelRequested bool) string {
	switch {
	case r.Succeeded:
		return store.ExecutionCompleted
	case r.TimedOut:
		return store.ExecutionTimeout
	case r.Cancelled && cancelRequested:
		return store.ExecutionCancelled
	case r.Cancelled:
		return store.ExecutionAbandoned
	default:
		return store.ExecutionFailed
	}
}

// finish records the terminal status and result, then announces the completion. It runs
// even when the worker is stopping, so it gets a context that outlives the handler's.
func (m *Module) finish(ctx context.Context, exec store.Execution, runnerType string, scrub *scrubber, result runner.Result, status string) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordFor)
	defer cancel()
	// Actions echo their inputs: the result is recorded, shown and followed live, and must
	// not carry the secrets the action was given in clear.
	result = scrub.result(result)
	// PostgreSQL's jsonb cannot hold NUL characters, and actions do print them.
	for _, s := range []*string{&result.Stdout, &result.Stderr, &result.Error} {
		*s = strings.ReplaceAll(*s, "\x00", "\uFFFD")
	}
	body, err := json.Marshal(result)
	if err != nil {
		return fmt.Errorf("encode result of execution %d: %w", exec.ID, err)
	}
	reason := ""
	switch {
	case status == store.ExecutionAbandoned:
		reason = "worker " + m.cfg.Name + " stopped before the action finished"
	case result.NotStarted:
		// What the result says would otherwise show only to who opens the execution.
		reason = "the action did not start: " + result.Error
	}
	// From abandoned too: a sweeper that lost sight of this worker (its heartbeats could not
	// reach the database) ended the execution meanwhile, but the action ran on, and what it
	// did is what the record must say.
	done, ok, err := m.record(ctx, store.ExecutionTransition{
		ID: exec.ID, From: []string{store.ExecutionRunning, store.ExecutionCanceling, store.ExecutionAbandoned}, To: status, Result: body, Reason: reason,
	})
	if err != nil {
		return fmt.Errorf("finish execution %d: %w", exec.ID, err)
	}
	if !ok {
		return nil // already final: cancelled, or abandoned by this worker's next process
	}
	m.deps.Metrics.ExecutionFinished(done.ActionRef, runnerType, done.Status)
	if done.StartedAt != nil && done.FinishedAt != nil {
		m.deps.Metrics.Stage("finished", done.FinishedAt.Sub(*done.StartedAt))
	}
	m.notify("", done)
	m.deps.Logger.DebugContext(ctx, "execution finished", "execution_id", exec.ID, "status", status, "duration_ms", result.DurationMS,
		"trace_id", done.Trace())
	return m.deps.Relay.Send(ctx, broker.InTrace(done.Trace(), broker.ExecutionCompleted{
		ExecutionID: done.ID, ActionRef: done.ActionRef, Status: done.Status, FinishedAt: time.Now().UTC(), HeldSlot: &done.HeldSlot,
		Workflow: done.WorkflowID(),
	}))
}

// actionTokenMargin is how long an action's API token outlives the action's timeout: what it
// writes as it ends still gets through.
const actionTokenMargin = time.Minute

// notStarted is the result of an execution that failed before its action ran.
func notStarted(msg string) runner.Result {
	return runner.Result{ExitCode: -1, Error: msg, NotStarted: true}
}

// recordFor bounds how long a worker keeps trying to record a result: past it the sweeper
// abandons the execution as overdue, and a late write would be refused anyway.
const recordFor = 10 * time.Minute

// record writes a terminal status, retrying while the database is away (a server that
// crashed mid-answer included): the result exists only in this process, and the claim makes
// the dispatch's redelivery skip the execution, so giving up would leave it running until the
// sweeper abandons it as overdue.
func (m *Module) record(ctx context.Context, t store.ExecutionTransition) (e store.Execution, ok bool, err error) {
	err = m.whileUnavailable(ctx, 0, "recording a result", t.ID, func() error {
		e, ok, err = m.deps.Store.ExecutionTransition(ctx, t)
		return err
	})
	return e, ok, err
}

// startAttempts bounds the tries at what a claimed action needs before it starts (its pack
// version, its API token), 1.5 s of waits in all: the action waits meanwhile, and a database
// away for longer fails it, as it would fail the writes the action makes with the token.
const startAttempts = 5

// issueToken issues the action's API token for claimed execution id, trying again while the
// database is away: the claim cannot be undone for a redelivery to take the execution again
// (statuses never move back), so a blip would otherwise fail it for good. A try whose answer
// was lost after its commit leaves a token nobody holds, which expires unused.
func (m *Module) issueToken(ctx context.Context, id int64, ttl time.Duration) (token string, err error) {
	err = m.whileUnavailable(ctx, startAttempts, "issuing the action's API token", id, func() error {
		token, err = m.deps.Store.ExecutionTokenIssue(ctx, id, ttl)
		return err
	})
	return token, err
}

// whileUnavailable runs try until it ends otherwise than with the database away, ctx ends, or
// it was tried attempts times (0: no bound), waiting 100 ms after the first failure and twice
// as long after each next one, at most 5 s. It returns try's last error.
func (m *Module) whileUnavailable(ctx context.Context, attempts int, what string, id int64, try func() error) error {
	delay := 100 * time.Millisecond
	for n := 1; ; n++ {
		err := try()
		if !errors.Is(err, store.ErrUnavailable) || ctx.Err() != nil || n == attempts {
			return err
		}
		m.deps.Logger.WarnContext(ctx, what+" failed; retrying", "execution_id", id, "err", err, "retry_in", delay)
		select {
		case <-ctx.Done():
			return err
		case <-time.After(delay):
		}
		delay = min(delay*2, 5*time.Second)
	}
}

// job resolves what to run from the execution, its parameters opened, and the action snapshot
// of its dispatch; release gives back the pack version it runs from once the run ends.
func (m *Module) job(ctx context.Context, exec store.Execution, opened json.RawMessage, action broker.ActionSnapshot) (job runner.Job, release func(), err error) {
	release = func() {}
	var params map[string]any
	if err := json.Unmarshal(opened, &params); err != nil {
		return runner.Job{}, release, fmt.Errorf("decode parameters: %w", err)
	}
	if action.TimeoutSeconds <= 0 {
		return runner.Job{}, release, fmt.Errorf("dispatch of execution %d carries no timeout", exec.ID)
	}
	job = runner.Job{
		ExecutionID:  exec.ID,
		ActionRef:    exec.ActionRef,
		RunnerType:   action.RunnerType,
		Parameters:   params,
		Timeout:      time.Duration(action.TimeoutSeconds) * time.Second,
		OutputFormat: action.OutputFormat,
	}
	if action.RunnerType != "shell" {
		return job, release, nil
	}
	// The core pack lives in the binary; this worker wrote its scripts out at start. Any other
	// pack runs from this worker's copy of the version the dispatch names, which a newer
	// version registered meanwhile does not touch; a dispatch of before versions names a path.
	dir := action.PackPath
	switch {
	case action.PackRef == "core":
		dir = m.coreDir
	case action.PackVersion != "":
		// The claim cannot be given back: a database away for a moment must not fail the run.
		err = m.whileUnavailable(ctx, startAttempts, "fetching the action's pack version", exec.ID, func() error {
			var err error
			dir, release, err = m.packs.Acquire(ctx, action.PackRef, action.PackVersion)
			return err
		})
		if err != nil {
			return runner.Job{}, func() {}, err
		}
	}
	if dir == "" {
		return runner.Job{}, release, fmt.Errorf("pack %s has no directory on disk", action.PackRef)
	}
	job.WorkDir = dir
	if action.EntryPoint != "" {
		job.Script = filepath.Join(dir, "actions", action.EntryPoint)
		return job, release, nil
	}
	cmd, ok := params["cmd"].(string)
	if !ok || cmd == "" {
		release()
		return runner.Job{}, func() {}, errors.New("shell action has no entry point and no cmd parameter")
	}
	job.Command = cmd
	return job, release, nil
}

// handleCancel stops a running execution of this worker.
func (m *Module) handleCancel(ctx context.Context, msg broker.Message) error {
	p, err := broker.Decode[broker.ExecutionCancelRequested](msg)
	if err != nil {
		return err
	}
	if !m.running.cancel(p.ExecutionID) {
		m.deps.Logger.DebugContext(ctx, "cancel for an execution not running here yet", "execution_id", p.ExecutionID)
	}
	return nil
}
