package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/attune-go/attune/app/cli"
	"github.com/attune-go/attune/modules/pack"
	"github.com/attune-go/attune/store/storetest"
)

// TestWorkflowBench runs the --workflow measurement, small, on a real PostgreSQL with the
// in-process broker: every workflow completes with the tasks it should, and each part of a
// hop, read from timestamps of transactions that follow one another, is never negative.
func TestWorkflowBench(t *testing.T) {
	cfg := benchConfig{databaseURL: storetest.AdminURL(t), concurrency: 4, timeout: 2 * time.Minute,
		workflowTasks: 3, workflowRuns: 2, workflowItems: []int{5, 20}}
	r, err := workflowOnce(context.Background(), cfg, "inprocess", slog.New(slog.DiscardHandler))
	require.NoError(t, err)

	s := r.Sequence
	require.Equal(t, 3, s.Tasks)
	require.Len(t, s.RunsMS, 2)
	for _, ms := range s.RunsMS {
		require.Positive(t, ms)
	}
	require.LessOrEqual(t, s.BestMS, s.MedianMS)
	require.InDelta(t, s.MedianMS/3, s.PerHopMS, 1e-9)
	for name, part := range map[string]float64{"completion": s.Hop.CompletionMS, "advance": s.Hop.AdvanceMS,
		"dispatch": s.Hop.DispatchMS, "run": s.Hop.RunMS} {
		require.GreaterOrEqual(t, part, 0.0, name)
	}
	require.Positive(t, s.Cost.Commits)
	require.Positive(t, s.Cost.Messages)

	require.Len(t, r.FanOuts, 2)
	for i, n := range []int{5, 20} {
		f := r.FanOuts[i]
		require.Equal(t, n, f.Items)
		require.Equal(t, fanOutConcurrency, f.Concurrency)
		require.Positive(t, f.TotalMS)
		require.InDelta(t, f.TotalMS/float64(n), f.PerItemMS, 1e-9)
	}
}

func TestWorkflowPackLoads(t *testing.T) {
	p, err := pack.LoadFS(workflowPack(40), ".")
	require.NoError(t, err, "the generated pack passes the checks of a pack on disk")
	actions := map[string]pack.Action{}
	for _, a := range p.Actions {
		actions[a.Ref] = a
	}

	seq := actions[sequenceAction].Workflow
	require.NotNil(t, seq)
	require.Len(t, seq.Tasks, 40)
	require.Equal(t, []string{"step1"}, seq.Start, "only the first step starts with the workflow")
	for i, task := range seq.Tasks {
		require.Equal(t, stepName(i+1), task.Name)
		require.Equal(t, "core.noop", task.Action)
		if i == len(seq.Tasks)-1 {
			require.Empty(t, task.Next, "the last step leads nowhere")
			continue
		}
		require.Len(t, task.Next, 1)
		require.Equal(t, "succeeded()", task.Next[0].When, "a failed step takes no transition and fails the workflow")
		require.Equal(t, []string{stepName(i + 2)}, task.Next[0].Do)
	}

	fan := actions[fanOutAction].Workflow
	require.NotNil(t, fan)
	require.Len(t, fan.Tasks, 1)
	require.Equal(t, "core.noop", fan.Tasks[0].Action)
	require.NotNil(t, fan.Tasks[0].With)
	require.Equal(t, fanOutConcurrency, fan.Tasks[0].With.Concurrency)
	require.Equal(t, "{{ input.items }}", fan.Tasks[0].With.Items)
	require.Contains(t, actions[fanOutAction].Parameters, "items")

	one, err := pack.LoadFS(workflowPack(1), ".")
	require.NoError(t, err, "a sequence of one task is a workflow too")
	for _, a := range one.Actions {
		if a.Ref == sequenceAction {
			require.Len(t, a.Workflow.Tasks, 1)
		}
	}
}

func TestItemList(t *testing.T) {
	require.Equal(t, []any{0, 1, 2}, itemList(3))
	require.Empty(t, itemList(0))
}

func TestBreakDown(t *testing.T) {
	// Two runs of a three-task sequence, in seconds since each workflow's creation.
	runs := [][]taskTimes{
		{
			{created: 0.001, admitted: 0.002, started: 0.004, finished: 0.005},
			{created: 0.007, admitted: 0.009, started: 0.012, finished: 0.013},
			{created: 0.014, admitted: 0.016, started: 0.020, finished: 0.021},
		},
		{
			{created: 0.100, admitted: 0.900, started: 0.950, finished: 0.990}, // no hop before it
			{created: 1.000, admitted: 1.001, started: 1.003, finished: 1.005},
			{created: 1.009, admitted: 1.012, started: 1.015, finished: 1.017},
		},
	}
	b := breakDown(runs)
	// Result to advance: 2, 1, 10, 4 ms; advance to row: 2, 2, 1, 3 ms; row to claim: 3, 4, 2,
	// 3 ms; claim to result: 1, 1, 2, 2 ms. Medians take the upper middle of an even count.
	require.InDelta(t, 4, b.CompletionMS, 1e-9)
	require.InDelta(t, 2, b.AdvanceMS, 1e-9)
	require.InDelta(t, 3, b.DispatchMS, 1e-9)
	require.InDelta(t, 2, b.RunMS, 1e-9)
	require.Equal(t, hopBreakdown{}, breakDown(nil))
	require.Equal(t, hopBreakdown{}, breakDown([][]taskTimes{{{created: 1, admitted: 2, started: 3, finished: 4}}}), "one task makes no hop")
}

func TestMedianAndBest(t *testing.T) {
	runs := []float64{900, 420, 610, 480, 700}
	m, best := medianAndBest(runs)
	require.Equal(t, 610.0, m)
	require.Equal(t, 420.0, best)
	require.Equal(t, []float64{900, 420, 610, 480, 700}, runs, "the runs keep their order")
	m, best = medianAndBest(nil)
	require.Zero(t, m)
	require.Zero(t, best)
}

func TestPrintWorkflow(t *testing.T) {
	c := benchCost{Statements: -1, Commits: 4, Messages: 5, Writes: 20, CPUms: 1.5, PostgresCPUms: 2, BrokerCPUms: -1,
		Top: []statementCost{{Query: "SELECT 1", PerExec: 2, MeanMS: 0.1}}}
	r := workflowResult{
		Broker: "rabbitmq", SpawnPerSec: 412,
		Sequence: sequenceResult{Tasks: 40, RunsMS: []float64{480.4, 420.2, 610}, MedianMS: 480.4, BestMS: 420.2, PerHopMS: 12.01,
			Hop: hopBreakdown{CompletionMS: 1.5, AdvanceMS: 6, DispatchMS: 4, RunMS: 2}, Cost: c},
		FanOuts: []fanOutResult{{Items: 100, Concurrency: 16, TotalMS: 800, PerItemMS: 8, Cost: c}},
	}
	var text bytes.Buffer
	require.NoError(t, printWorkflow(&text, r, false, false))
	require.Equal(t, ""+
		"rabbitmq   sequence of 40 core.noop tasks, 3 runs: median 480.4 ms, best 420.2 ms (480 420 610)  12.01 ms per task hop  |  sh -c true 412.0 spawns/s\n"+
		"           per hop (medians): result to advance 1.50 ms, advance to the next task's row 6.00 ms, row to claim 4.00 ms, claim to result 2.00 ms\n"+
		"           per hop: - statements, 4.00 commits, 5.00 messages, 20.0 write syscalls; CPU ms: attune 1.50, postgres 2.00, rabbitmq -\n"+
		"rabbitmq   with-items over 100 core.noop items, concurrency 16: 800.0 ms, 8.00 ms per item\n"+
		"           per item: - statements, 4.00 commits, 5.00 messages, 20.0 write syscalls; CPU ms: attune 1.50, postgres 2.00, rabbitmq -\n",
		text.String())

	text.Reset()
	require.NoError(t, printWorkflow(&text, r, false, true))
	require.Contains(t, text.String(), "     2.00/exec    0.100 ms  SELECT 1\n", "--statements lists each statement")

	var js bytes.Buffer
	require.NoError(t, printWorkflow(&js, r, true, false))
	var got map[string]any
	require.NoError(t, json.Unmarshal(js.Bytes(), &got))
	seq := got["sequence"].(map[string]any)
	for _, k := range []string{"tasks", "runs_ms", "median_ms", "best_ms", "per_hop_ms", "hop", "cost_per_hop"} {
		require.Contains(t, seq, k)
	}
	require.NotContains(t, seq["cost_per_hop"], "statements", "statements only with --statements")
	fan := got["fan_outs"].([]any)[0].(map[string]any)
	for _, k := range []string{"items", "concurrency", "total_ms", "per_item_ms", "cost_per_item"} {
		require.Contains(t, fan, k)
	}
	require.Len(t, r.Sequence.Cost.Top, 1, "printing leaves the result alone")
	require.Len(t, r.FanOuts[0].Cost.Top, 1, "printing leaves the result alone")
}

func TestWorkflowFlagsRefused(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--workflow-runs", "3"}, "--workflow-runs needs --workflow"},
		{[]string{"--workflow-items", "100"}, "--workflow-items needs --workflow"},
		{[]string{"--workflow", "--backlog", "200"}, "--workflow and --backlog are separate measurements; give one"},
		{[]string{"--workflow", "--events", "10"}, "--events does not apply to --workflow"},
		{[]string{"--workflow", "--workflow-runs", "0"}, "--workflow-tasks and --workflow-runs must be at least 1"},
		{[]string{"--workflow", "--workflow-items", "100,0"}, "invalid --workflow-items [100 0]: each count must be at least 1"},
	} {
		cmd := NewCommand(cli.Streams{In: bytes.NewReader(nil), Out: io.Discard, Err: io.Discard})
		cmd.SetArgs(tc.args)
		cmd.SetOut(io.Discard)
		cmd.SetErr(io.Discard)
		err := cmd.ExecuteContext(context.Background())
		var usage cli.UsageError
		require.True(t, errors.As(err, &usage), "%v: want a usage error, got %v", tc.args, err)
		require.Contains(t, err.Error(), tc.want, "%v", tc.args)
	}
}
