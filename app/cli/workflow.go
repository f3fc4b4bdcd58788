package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/attune-go/attune/store"
)

const (
	// clockFormat stamps the lines that follow an execution.
	clockFormat = "15:04:05.000"
	// maxShownExecutions bounds the execution ids a task's row lists; a task with items may
	// have thousands, which the JSON output carries whole.
	maxShownExecutions = 8
	// maxNestedDepth bounds how deep the tree follows workflows run as tasks, and
	// maxNestedShown how many of one task's workflows it draws: each costs a request.
	maxNestedDepth = 3
	maxNestedShown = 4
)

// newWorkflowCommands are the execution commands that steer a workflow.
func newWorkflowCommands(streams Streams, api *apiFlags) []*cobra.Command {
	return []*cobra.Command{
		newExecutionByIDCommand(streams, api, "pause ID",
			"Pause a running workflow: its running tasks finish and no new task starts, then it is paused", "/pause", false),
		newExecutionByIDCommand(streams, api, "resume ID", "Resume a pausing or paused workflow where it stopped", "/resume", false),
	}
}

// printWorkflow draws a workflow's tasks as a tree, the workflows its tasks run drawn under
// them (read from the API, to a bounded depth), and then its variables.
func printWorkflow(ctx context.Context, client *apiClient, w io.Writer, raw json.RawMessage) error {
	var view store.WorkflowView
	if err := json.Unmarshal(raw, &view); err != nil {
		return fmt.Errorf("decode workflow: %w", err)
	}
	var table bytes.Buffer
	tw := tabwriter.NewWriter(&table, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TASK\tSTATUS\tITEMS\tEXECUTIONS")
	drawTasks(ctx, client, tw, view.Tasks, "", 1)
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write table: %w", err)
	}
	// The rows that name a nested workflow leave their last cells empty, which the table
	// pads with spaces that nobody wants at the end of a line.
	fmt.Fprintln(w)
	for line := range strings.Lines(table.String()) {
		fmt.Fprintln(w, strings.TrimRight(line, " \n"))
	}
	return printVars(w, view.Vars)
}

// drawTasks writes one row per task under prefix, and under a task that runs workflows, theirs.
func drawTasks(ctx context.Context, client *apiClient, tw io.Writer, tasks []store.WorkflowTaskView, prefix string, depth int) {
	for i, t := range tasks {
		branch, below := "├─ ", "│  "
		if i == len(tasks)-1 {
			branch, below = "└─ ", "   "
		}
		name := t.Name
		if t.Seq > 1 {
			name += " #" + strconv.Itoa(t.Seq)
		}
		items := ""
		if t.ItemCount != 1 {
			items = fmt.Sprintf("%d/%d", t.ItemsEnded, t.ItemCount)
		}
		fmt.Fprintf(tw, "%s%s\t%s\t%s\t%s\n", prefix+branch, name, t.Status, items, executionList(t.Executions))
		if t.Nested {
			drawNested(ctx, client, tw, t.Executions, prefix+below, depth)
		}
	}
}

// drawNested writes the workflows a task runs, each as a row naming it, its tasks below.
func drawNested(ctx context.Context, client *apiClient, tw io.Writer, ids []int64, prefix string, depth int) {
	if len(ids) == 0 {
		return
	}
	if depth >= maxNestedDepth {
		fmt.Fprintf(tw, "%s└─ (deeper: attune execution show %d)\t\t\t\n", prefix, ids[0])
		return
	}
	shown := ids[:min(len(ids), maxNestedShown)]
	for i, id := range shown {
		branch, below := "├─ ", "│  "
		if i == len(shown)-1 && len(shown) == len(ids) {
			branch, below = "└─ ", "   "
		}
		var exec struct {
			ActionRef string              `json:"action_ref"`
			Status    string              `json:"status"`
			Workflow  *store.WorkflowView `json:"workflow"`
		}
		data, err := client.get(ctx, "/api/v1/executions/"+strconv.FormatInt(id, 10))
		if err == nil {
			err = json.Unmarshal(data, &exec)
		}
		if err != nil {
			fmt.Fprintf(tw, "%s%s%d: cannot read it: %v\t\t\t\n", prefix, branch, id, err)
			continue
		}
		fmt.Fprintf(tw, "%s%s%d %s\t%s\t\t\n", prefix, branch, id, exec.ActionRef, exec.Status)
		if exec.Workflow != nil {
			drawTasks(ctx, client, tw, exec.Workflow.Tasks, prefix+below, depth+1)
		}
	}
	if len(shown) < len(ids) {
		fmt.Fprintf(tw, "%s└─ … %d more workflows\t\t\t\n", prefix, len(ids)-len(shown))
	}
}

// executionList writes ids, the first few of many.
func executionList(ids []int64) string {
	parts := make([]string, 0, min(len(ids), maxShownExecutions)+1)
	for _, id := range ids[:min(len(ids), maxShownExecutions)] {
		parts = append(parts, strconv.FormatInt(id, 10))
	}
	if len(ids) > maxShownExecutions {
		parts = append(parts, fmt.Sprintf("… +%d", len(ids)-maxShownExecutions))
	}
	return strings.Join(parts, " ")
}

// printVars writes a workflow's variables by name, each value on one line.
func printVars(w io.Writer, raw json.RawMessage) error {
	var vars map[string]json.RawMessage
	if err := json.Unmarshal(raw, &vars); err != nil {
		return fmt.Errorf("decode workflow variables: %w", err)
	}
	if len(vars) == 0 {
		return nil
	}
	names := make([]string, 0, len(vars))
	for name := range vars {
		names = append(names, name)
	}
	slices.Sort(names)
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VAR\tVALUE")
	for _, name := range names {
		fmt.Fprintf(tw, "%s\t%s\n", name, cell(vars[name], 0))
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write table: %w", err)
	}
	return nil
}

// printWorkflowOutcome writes what an ended workflow left: its output, as one line of JSON,
// or why it did not complete.
func printWorkflowOutcome(out, errw io.Writer, exec followedExecution) {
	if exec.Status == store.ExecutionCompleted {
		var buf bytes.Buffer
		if len(exec.Result) > 0 && json.Compact(&buf, exec.Result) == nil {
			fmt.Fprintln(out, buf.String())
		}
		return
	}
	var result struct {
		Error string `json:"error"`
	}
	_ = json.Unmarshal(exec.Result, &result) // a failed workflow's result says why, as its reason does
	printReason(errw, exec, result.Error)
}

// printTaskChanges writes each change of a workflow's tasks' executions under the workflow's
// own lines, once per status, never one older than the last written for the execution.
func printTaskChanges(out io.Writer) func(executionChange) {
	type seen struct {
		status string
		at     time.Time
	}
	last := map[int64]seen{}
	return func(c executionChange) {
		if s, ok := last[c.ID]; ok && !store.ExecutionStatusNewer(s.status, s.at, c.Status, c.At) {
			return
		}
		last[c.ID] = seen{c.Status, c.At}
		fmt.Fprintf(out, "%s    %d %s  %s\n", c.At.Local().Format(clockFormat), c.ID, c.ActionRef, c.Status)
	}
}
