package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/spf13/cobra"
)

// workflowResult is one broker's figures of --workflow; its JSON form is what --json prints.
type workflowResult struct {
	Broker      string         `json:"broker"`
	SpawnPerSec float64        `json:"spawn_per_sec"`
	Sequence    sequenceResult `json:"sequence"`
	FanOuts     []fanOutResult `json:"fan_outs"`
}

// sequenceResult is the time of a workflow of sequential tasks, from the creation of its
// execution to its end, over several runs.
type sequenceResult struct {
	Tasks    int       `json:"tasks"`
	RunsMS   []float64 `json:"runs_ms"`
	MedianMS float64   `json:"median_ms"`
	BestMS   float64   `json:"best_ms"`
	// PerHopMS is the median run over its tasks: the time from one task's start to the next's.
	PerHopMS float64      `json:"per_hop_ms"`
	Hop      hopBreakdown `json:"hop"`
	Cost     benchCost    `json:"cost_per_hop"`
}

// hopBreakdown splits a hop, from one task's result to the next one's, into where its time
// went, each part the median over every hop of every run. The parts are read from the
// timestamps PostgreSQL gave the tasks' executions: created, started_at and finished_at are
// each the start of the transaction that set them (so a transaction's work and commit count
// in the part that follows), and admitted_at the moment the execution's row was made.
type hopBreakdown struct {
	// CompletionMS is from the previous task's result to the start of the workflow's advance:
	// the result's commit, the completion message, the executor's delivery.
	CompletionMS float64 `json:"completion_ms"`
	// AdvanceMS is from the advance's start to the next task's row: the workflow's lock, its
	// reads, taking in the ending, deciding, and the creation statement.
	AdvanceMS float64 `json:"advance_ms"`
	// DispatchMS is from the task's row to a worker claiming it: the rest of the advance and
	// its commit, the dispatch message, the worker's delivery.
	DispatchMS float64 `json:"dispatch_ms"`
	// RunMS is from the claim to the worker recording the result: the claim's commit and the
	// action (core.noop runs nothing).
	RunMS float64 `json:"run_ms"`
}

// fanOutResult is the time of a with-items fan-out over Items items, from the creation of
// the workflow's execution to its end.
type fanOutResult struct {
	Items       int       `json:"items"`
	Concurrency int       `json:"concurrency"`
	TotalMS     float64   `json:"total_ms"`
	PerItemMS   float64   `json:"per_item_ms"`
	Cost        benchCost `json:"cost_per_item"`
}

// workflowOnce runs the workflows of --workflow on a fresh database and broker namespace: the
// sequence cfg.workflowRuns times, then one fan-out per size in cfg.workflowItems. Each part
// runs roles of its own, so that its cost is counted apart.
func workflowOnce(ctx context.Context, cfg benchConfig, brokerName string, logger *slog.Logger) (workflowResult, error) {
	ctx, cancel := context.WithTimeout(ctx, cfg.timeout)
	defer cancel()
	run, err := openBenchRun(ctx, cfg, brokerName, logger)
	if err != nil {
		return workflowResult{}, err
	}
	defer run.close()
	if err := registerWorkflowPack(ctx, run.st, cfg.workflowTasks); err != nil {
		return workflowResult{}, err
	}
	r := workflowResult{Broker: brokerName}
	if r.Sequence, err = run.sequence(ctx, cfg, logger); err != nil {
		return workflowResult{}, fmt.Errorf("sequence of %d tasks: %w", cfg.workflowTasks, err)
	}
	for _, n := range cfg.workflowItems {
		f, err := run.fanOut(ctx, cfg, logger, n)
		if err != nil {
			return workflowResult{}, fmt.Errorf("fan-out over %d items: %w", n, err)
		}
		r.FanOuts = append(r.FanOuts, f)
	}
	return r, nil
}

// sequence runs the sequence workflow cfg.workflowRuns times, one after the other.
func (r *benchRun) sequence(ctx context.Context, cfg benchConfig, logger *slog.Logger) (sequenceResult, error) {
	mods, err := benchRoles(cfg, r, logger)
	if err != nil {
		return sequenceResult{}, err
	}
	ids := make([]int64, 0, cfg.workflowRuns)
	c, err := r.metered(ctx, mods, "noop", cfg.workflowRuns*cfg.workflowTasks, func(ctx context.Context, polls querier) error {
		for range cfg.workflowRuns {
			id, err := executeAction(ctx, r.st, r.br, sequenceAction, nil)
			if err != nil {
				return err
			}
			ids = append(ids, id)
			if err := waitEnded(ctx, polls, id); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return sequenceResult{}, err
	}
	s := sequenceResult{Tasks: cfg.workflowTasks, Cost: c}
	var tasks [][]taskTimes
	for _, id := range ids {
		span, err := workflowSpan(ctx, r.pool, id)
		if err != nil {
			return sequenceResult{}, err
		}
		children, err := childTimes(ctx, r.pool, id, cfg.workflowTasks)
		if err != nil {
			return sequenceResult{}, err
		}
		s.RunsMS = append(s.RunsMS, span)
		tasks = append(tasks, children)
	}
	s.MedianMS, s.BestMS = medianAndBest(s.RunsMS)
	s.PerHopMS = s.MedianMS / float64(cfg.workflowTasks)
	s.Hop = breakDown(tasks)
	return s, nil
}

// fanOut runs the fan-out workflow once over n items.
func (r *benchRun) fanOut(ctx context.Context, cfg benchConfig, logger *slog.Logger, n int) (fanOutResult, error) {
	mods, err := benchRoles(cfg, r, logger)
	if err != nil {
		return fanOutResult{}, err
	}
	var id int64
	c, err := r.metered(ctx, mods, "noop", n, func(ctx context.Context, polls querier) error {
		if id, err = executeAction(ctx, r.st, r.br, fanOutAction, map[string]any{"items": itemList(n)}); err != nil {
			return err
		}
		return waitEnded(ctx, polls, id)
	})
	if err != nil {
		return fanOutResult{}, err
	}
	span, err := workflowSpan(ctx, r.pool, id)
	if err != nil {
		return fanOutResult{}, err
	}
	if _, err := childTimes(ctx, r.pool, id, n); err != nil {
		return fanOutResult{}, err
	}
	return fanOutResult{Items: n, Concurrency: fanOutConcurrency, TotalMS: span, PerItemMS: span / float64(n), Cost: c}, nil
}

// checkWorkflowFlags refuses workflow flags that cannot be measured, and ones given without
// --workflow or beside another mode, which would be ignored without a word.
func checkWorkflowFlags(cmd *cobra.Command, cfg benchConfig) error {
	if !cfg.workflow {
		for _, name := range []string{"workflow-tasks", "workflow-runs", "workflow-items"} {
			if cmd.Flags().Changed(name) {
				return fmt.Errorf("--%s needs --workflow", name)
			}
		}
		return nil
	}
	for _, name := range []string{"events", "rate", "action"} {
		if cmd.Flags().Changed(name) {
			return fmt.Errorf("--%s does not apply to --workflow, which runs core.noop in workflows it starts itself", name)
		}
	}
	switch {
	case cfg.backlog != 0:
		return errors.New("--workflow and --backlog are separate measurements; give one")
	case cfg.workflowTasks < 1 || cfg.workflowRuns < 1:
		return errors.New("--workflow-tasks and --workflow-runs must be at least 1")
	case slices.ContainsFunc(cfg.workflowItems, func(n int) bool { return n < 1 }):
		return fmt.Errorf("invalid --workflow-items %v: each count must be at least 1", cfg.workflowItems)
	}
	return nil
}

// benchWorkflows measures workflows on one broker, next to the spawn rate of the moment.
func benchWorkflows(ctx context.Context, cfg benchConfig, brokerName string, logger *slog.Logger, out io.Writer) error {
	spawnRate, err := measureSpawns(ctx, cfg.spawns)
	if err != nil {
		return err
	}
	r, err := workflowOnce(ctx, cfg, brokerName, logger)
	if err != nil {
		return fmt.Errorf("bench %s workflows: %w", brokerName, err)
	}
	r.SpawnPerSec = spawnRate
	return printWorkflow(out, r, cfg.json, cfg.statements)
}

// waitEnded polls until execution id has ended.
func waitEnded(ctx context.Context, db querier, id int64) error {
	return pollCount(ctx, db, fmt.Sprintf(`SELECT count(*) FROM attune.execution WHERE id = %d AND finished_at IS NOT NULL`, id),
		func(ended int) bool { return ended == 1 }, func(int) string { return fmt.Sprintf("execution %d has not ended", id) })
}

// workflowSpan is how long workflow id took, in milliseconds, from its execution's creation
// to its end, both stamped by PostgreSQL; it must have completed.
func workflowSpan(ctx context.Context, db querier, id int64) (float64, error) {
	var status, reason string
	var span float64
	err := db.QueryRow(ctx, `SELECT status, coalesce(reason, ''), extract(epoch FROM finished_at - created)::float8 * 1000
		FROM attune.execution WHERE id = $1`, id).Scan(&status, &reason, &span)
	if err != nil {
		return 0, fmt.Errorf("read workflow %d: %w", id, err)
	}
	if status != "completed" {
		return 0, fmt.Errorf("workflow %d ended %s: %s", id, status, reason)
	}
	return span, nil
}

// taskTimes are the timestamps of one task's execution (see hopBreakdown), in seconds since
// its workflow's creation.
type taskTimes struct {
	created, admitted, started, finished float64
}

// childTimes reads the timestamps of workflow id's task executions in the order they were
// created, and checks that there are want of them and that each completed.
func childTimes(ctx context.Context, db querier, id int64, want int) ([]taskTimes, error) {
	rows, err := db.Query(ctx, `SELECT c.status,
			extract(epoch FROM c.created - w.created)::float8,
			extract(epoch FROM c.admitted_at - w.created)::float8,
			extract(epoch FROM c.started_at - w.created)::float8,
			extract(epoch FROM c.finished_at - w.created)::float8
		FROM attune.execution c JOIN attune.execution w ON w.id = c.parent
		WHERE c.parent = $1 ORDER BY c.created, c.id`, id)
	if err != nil {
		return nil, fmt.Errorf("read the tasks of workflow %d: %w", id, err)
	}
	var notCompleted []string
	times, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (taskTimes, error) {
		var status string
		var admitted, started *float64
		var t taskTimes
		if err := row.Scan(&status, &t.created, &admitted, &started, &t.finished); err != nil {
			return t, err
		}
		if status != "completed" || admitted == nil || started == nil {
			notCompleted = append(notCompleted, status)
			return t, nil
		}
		t.admitted, t.started = *admitted, *started
		return t, nil
	})
	if err != nil {
		return nil, fmt.Errorf("read the tasks of workflow %d: %w", id, err)
	}
	if len(times) != want || len(notCompleted) > 0 {
		return nil, fmt.Errorf("workflow %d ran %d tasks, want %d completed; not completed: %s",
			id, len(times), want, strings.Join(notCompleted, ", "))
	}
	return times, nil
}

// breakDown is the median of each part of the hops between tasks, over runs of a sequence
// (each its tasks in the order they were created). A run's first task has no hop before it.
func breakDown(runs [][]taskTimes) hopBreakdown {
	var completion, advance, dispatch, ran []float64
	ms := func(from, to float64) float64 { return 1000 * (to - from) }
	for _, tasks := range runs {
		for i, t := range tasks[min(1, len(tasks)):] {
			completion = append(completion, ms(tasks[i].finished, t.created))
			advance = append(advance, ms(t.created, t.admitted))
			dispatch = append(dispatch, ms(t.admitted, t.started))
			ran = append(ran, ms(t.started, t.finished))
		}
	}
	return hopBreakdown{CompletionMS: median(completion), AdvanceMS: median(advance), DispatchMS: median(dispatch), RunMS: median(ran)}
}

// medianAndBest are the median and the least of runs.
func medianAndBest(runs []float64) (float64, float64) {
	if len(runs) == 0 {
		return 0, 0
	}
	return median(runs), slices.Min(runs)
}

// median is the middle of xs (the upper middle of an even count); 0 for none.
func median(xs []float64) float64 {
	sorted := slices.Clone(xs)
	slices.Sort(sorted)
	return percentile(sorted, 0.5)
}

func printWorkflow(w io.Writer, r workflowResult, asJSON, statements bool) error {
	if asJSON {
		if !statements {
			r.Sequence.Cost.Top = nil
			r.FanOuts = slices.Clone(r.FanOuts)
			for i := range r.FanOuts {
				r.FanOuts[i].Cost.Top = nil
			}
		}
		return printJSONLine(w, r)
	}
	s := r.Sequence
	runs := make([]string, len(s.RunsMS))
	for i, ms := range s.RunsMS {
		runs[i] = fmt.Sprintf("%.0f", ms)
	}
	if _, err := fmt.Fprintf(w, "%-10s sequence of %d core.noop tasks, %d runs: median %.1f ms, best %.1f ms (%s)  %.2f ms per task hop  |  sh -c true %.1f spawns/s\n"+
		"%-10s per hop (medians): result to advance %.2f ms, advance to the next task's row %.2f ms, row to claim %.2f ms, claim to result %.2f ms\n",
		r.Broker, s.Tasks, len(s.RunsMS), s.MedianMS, s.BestMS, strings.Join(runs, " "), s.PerHopMS, r.SpawnPerSec,
		"", s.Hop.CompletionMS, s.Hop.AdvanceMS, s.Hop.DispatchMS, s.Hop.RunMS); err != nil {
		return err
	}
	if err := printUnitCost(w, "hop", s.Cost, statements); err != nil {
		return err
	}
	for _, f := range r.FanOuts {
		if _, err := fmt.Fprintf(w, "%-10s with-items over %d core.noop items, concurrency %d: %.1f ms, %.2f ms per item\n",
			r.Broker, f.Items, f.Concurrency, f.TotalMS, f.PerItemMS); err != nil {
			return err
		}
		if err := printUnitCost(w, "item", f.Cost, statements); err != nil {
			return err
		}
	}
	return nil
}

// printUnitCost prints what one unit (a hop, an item) cost, and with statements each
// statement's share.
func printUnitCost(w io.Writer, unit string, c benchCost, statements bool) error {
	stmts := "-"
	if c.Statements >= 0 {
		stmts = fmt.Sprintf("%.2f", c.Statements)
	}
	if _, err := fmt.Fprintf(w, "%-10s per %s: %s statements, %.2f commits, %.2f messages, %.1f write syscalls; CPU ms: attune %.2f, postgres %s, rabbitmq %s\n",
		"", unit, stmts, c.Commits, c.Messages, c.Writes, c.CPUms, orDash(c.PostgresCPUms), orDash(c.BrokerCPUms)); err != nil {
		return err
	}
	if !statements {
		return nil
	}
	return printCost(w, c)
}
