package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

func newTraceCommand(streams Streams) *cobra.Command {
	var (
		api              apiFlags
		asJSON           bool
		execution, event string
	)
	cmd := &cobra.Command{
		Use:   "trace [ID | --execution N | --event N]",
		Short: "Show a trace: an event and everything it caused, as a tree",
		Long: `Shows trace ID as a tree: the event that started it, each rule it matched with the status
of that match (a refused one with the reason), the execution each match made and, under a
workflow, its tasks, recursively; a retry's attempts beside the first. Each line has its status
and how long it took. An execution requested by hand (execute, rerun) starts a trace of its own.

--execution N or --event N shows the trace that execution or event belongs to. --json (or
-o json) prints the API's answer as it is.`,
		Example: `  attune trace 0b5c1e7a-6f0e-4d4a-9a53-2f1f5d1f8c11
  attune trace --execution 42
  attune trace --event 7 --json`,
		Args: UsageArgs(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			given := 0
			for _, s := range []string{strings.Join(args, ""), execution, event} {
				if s != "" {
					given++
				}
			}
			if given != 1 {
				return Usagef("give one of a trace ID, --execution N or --event N (see %s --help)", cmd.CommandPath())
			}
			if asJSON {
				api.output = outputJSON
			}
			client, err := api.client()
			if err != nil {
				return err
			}
			id, err := traceIDOf(cmd.Context(), client, args, execution, event)
			if err != nil {
				return err
			}
			data, err := client.get(cmd.Context(), "/api/v1/traces/"+url.PathEscape(id))
			if err != nil {
				return err
			}
			if api.output != outputTable {
				return printObject(streams.Out, api.output, data)
			}
			var t traceTree
			if err := json.Unmarshal(data, &t); err != nil {
				return fmt.Errorf("decode trace %s: %w", id, err)
			}
			printTrace(streams.Out, t)
			return nil
		},
	}
	api.register(cmd.Flags())
	api.registerOutput(cmd.Flags())
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the API's answer as JSON (the same as -o json)")
	cmd.Flags().StringVar(&execution, "execution", "", "show the trace of this execution id")
	cmd.Flags().StringVar(&event, "event", "", "show the trace of this event id")
	_ = cmd.RegisterFlagCompletionFunc("execution", api.completeExecutionID())
	return cmd
}

// traceIDOf is the trace to show: the argument, or the trace of --execution or --event.
func traceIDOf(ctx context.Context, client *apiClient, args []string, execution, event string) (string, error) {
	if len(args) == 1 {
		return args[0], nil
	}
	noun, arg, path := "execution", execution, "/api/v1/executions/"
	if event != "" {
		noun, arg, path = "event", event, "/api/v1/events/"
	}
	id, err := strconv.ParseInt(arg, 10, 64)
	if err != nil || id < 1 {
		return "", Usagef("invalid --%s %q: want a positive integer", noun, arg)
	}
	data, err := client.get(ctx, path+strconv.FormatInt(id, 10))
	if err != nil {
		return "", err
	}
	var row struct {
		TraceID *string `json:"trace_id"`
	}
	if err := json.Unmarshal(data, &row); err != nil {
		return "", fmt.Errorf("decode %s %d: %w", noun, id, err)
	}
	if row.TraceID == nil {
		return "", fmt.Errorf("%s %d has no trace: it was made before Attune kept them", noun, id)
	}
	return *row.TraceID, nil
}

// traceTree is the part of GET /traces/{id} the tree prints.
type traceTree struct {
	TraceID string `json:"trace_id"`
	Events  []struct {
		ID           int64      `json:"id"`
		TriggerRef   string     `json:"trigger_ref"`
		Source       string     `json:"source"`
		Created      time.Time  `json:"created"`
		Evaluated    *time.Time `json:"rules_evaluated_at"`
		Enforcements []struct {
			ID         int64       `json:"id"`
			RuleRef    string      `json:"rule_ref"`
			Status     string      `json:"status"`
			Reason     *string     `json:"reason"`
			Refused    bool        `json:"refused"`
			Created    time.Time   `json:"created"`
			ResolvedAt *time.Time  `json:"resolved_at"`
			Executions []traceExec `json:"executions"`
		} `json:"enforcements"`
	} `json:"events"`
	Executions []traceExec `json:"executions"`
	Truncated  bool        `json:"truncated"`
}

type traceExec struct {
	ID         int64       `json:"id"`
	ActionRef  string      `json:"action_ref"`
	Status     string      `json:"status"`
	Reason     *string     `json:"reason"`
	TaskName   *string     `json:"task_name"`
	TaskItem   *int        `json:"task_item"`
	Attempt    int         `json:"attempt"`
	Created    time.Time   `json:"created"`
	StartedAt  *time.Time  `json:"started_at"`
	FinishedAt *time.Time  `json:"finished_at"`
	Children   []traceExec `json:"children"`
}

// printTrace prints t as an indented tree, one line per row:
//
//	trace 7c7b95ff-3183-4d7b-b056-1e76da8ad243
//	  event 1  core.webhook from webhook  2026-12-05 12:25:55.710
//	    rule hooks.echo  enforcement 1  processed
//	      execution 2  core.echo  completed  24ms
//	    rule hooks.broken  enforcement 3  processed  refused: rule hooks.broken: render action_params: ...
//	      execution 1  core.echo  failed  (the reason above)
func printTrace(w io.Writer, t traceTree) {
	fmt.Fprintf(w, "trace %s\n", t.TraceID)
	for _, ev := range t.Events {
		line := fmt.Sprintf("  event %d  %s from %s  %s", ev.ID, ev.TriggerRef, ev.Source, ev.Created.Local().Format(time.DateOnly+" "+clockFormat))
		if ev.Evaluated == nil {
			line += "  (rules not evaluated yet)"
		} else if len(ev.Enforcements) == 0 {
			line += "  (no rule matched)"
		}
		fmt.Fprintln(w, line)
		for _, enf := range ev.Enforcements {
			line := fmt.Sprintf("    rule %s  enforcement %d  %s", enf.RuleRef, enf.ID, enf.Status)
			if enf.Refused && enf.Reason != nil {
				line += "  refused: " + oneLine(*enf.Reason)
			}
			fmt.Fprintln(w, line)
			var reason string
			if enf.Reason != nil {
				reason = *enf.Reason
			}
			printTraceExecs(w, enf.Executions, 6, reason)
		}
	}
	printTraceExecs(w, t.Executions, 2, "")
	if t.Truncated {
		fmt.Fprintln(w, "  (more rows than are shown: see --json)")
	}
}

// printTraceExecs prints es and their children at indent; a reason the same as above (a
// refused match's, which its execution failed with) is not repeated.
func printTraceExecs(w io.Writer, es []traceExec, indent int, above string) {
	for _, e := range es {
		var b strings.Builder
		fmt.Fprintf(&b, "%sexecution %d  %s", strings.Repeat(" ", indent), e.ID, e.ActionRef)
		if e.TaskName != nil {
			fmt.Fprintf(&b, "  task %s", *e.TaskName)
			if e.TaskItem != nil {
				fmt.Fprintf(&b, "[%d]", *e.TaskItem)
			}
		}
		if e.Attempt > 1 {
			fmt.Fprintf(&b, "  attempt %d", e.Attempt)
		}
		fmt.Fprintf(&b, "  %s", e.Status)
		if d, ok := traceDuration(e); ok {
			fmt.Fprintf(&b, "  %s", d)
		}
		switch {
		case e.Reason == nil || e.Status == "completed":
		case *e.Reason == above:
			b.WriteString("  (the reason above)")
		default:
			fmt.Fprintf(&b, "  %s", oneLine(*e.Reason))
		}
		fmt.Fprintln(w, b.String())
		printTraceExecs(w, e.Children, indent+2, "")
	}
}

// traceDuration is how long e ran, or has run so far; none before it started.
func traceDuration(e traceExec) (time.Duration, bool) {
	if e.StartedAt == nil {
		return 0, false
	}
	end := time.Now()
	if e.FinishedAt != nil {
		end = *e.FinishedAt
	}
	d := end.Sub(*e.StartedAt)
	if d < time.Second {
		return d.Round(time.Millisecond), true
	}
	return d.Round(100 * time.Millisecond), true
}

// oneLine keeps a reason on its line.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
