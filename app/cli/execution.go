package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/attune-go/attune/modules/pack"
)

func newExecutionCommand(streams Streams) *cobra.Command {
	var api apiFlags
	cmd := newNounCommand("execution", "List, show, follow, cancel and rerun executions, pause and resume workflows, through the API", &api)
	cmd.AddCommand(
		newExecutionListCommand(streams, &api),
		newExecutionByIDCommand(streams, &api, "show ID", "Show one execution", "", false),
		newExecutionByIDCommand(streams, &api, "result ID", "Print only the result of an execution, as JSON (or YAML with -o yaml)", "", true),
		newExecutionByIDCommand(streams, &api, "cancel ID", "Cancel an execution: at once if it has not run, else its worker stops it", "/cancel", false),
		newExecutionRerunCommand(streams, &api),
		newExecutionTailCommand(streams, &api),
	)
	cmd.AddCommand(newWorkflowCommands(streams, &api)...)
	return cmd
}

func newExecutionListCommand(streams Streams, api *apiFlags) *cobra.Command {
	cmd := newListCommand(streams, api, listCommand{noun: "the latest executions, newest first", path: "/api/v1/executions",
		columns: executionColumns, recent: true, filters: []queryFlag{
			{"status", "status", "only executions in this status (requested, running, completed, failed, ...)"},
			{"action", "action_ref", "only executions of this action ref"},
			{"rule", "rule_ref", "only executions this rule ref caused"},
			{"parent", "parent", "only the children of this execution id: a workflow's tasks, an execution's reruns"},
			{"requested-by", "requested_by", "only what this requester caused: LOGIN (or identity:LOGIN), token:NAME, rule:REF, " +
				"sensor:REF, timer, webhook, api (events created through the API), workflow:ID (its tasks)"},
		}})
	_ = cmd.RegisterFlagCompletionFunc("action", api.completeActionRef())
	_ = cmd.RegisterFlagCompletionFunc("rule", api.completeFromList("/api/v1/rules", "ref", true, "trigger_ref", "action_ref"))
	return cmd
}

// executionID reads execution arg, which must be a positive integer.
func executionID(arg string) (int64, error) {
	id, err := strconv.ParseInt(arg, 10, 64)
	if err != nil || id < 1 {
		return 0, UsageError{fmt.Errorf("invalid execution id %q: want a positive integer", arg)}
	}
	return id, nil
}

// executionPath is the API path of execution arg, which must be a positive integer.
func executionPath(arg string) (string, error) {
	id, err := executionID(arg)
	if err != nil {
		return "", err
	}
	return "/api/v1/executions/" + strconv.FormatInt(id, 10), nil
}

// newExecutionByIDCommand is a command on one execution: a GET of it, or with postSuffix a
// POST to that path below it; resultOnly prints the execution's result alone.
func newExecutionByIDCommand(streams Streams, api *apiFlags, use, short, postSuffix string, resultOnly bool) *cobra.Command {
	return &cobra.Command{
		Use:               use,
		Short:             short,
		Args:              UsageArgs(cobra.ExactArgs(1)),
		ValidArgsFunction: firstArg(api.completeExecutionID()),
		RunE: func(cmd *cobra.Command, args []string) error {
			path, err := executionPath(args[0])
			if err != nil {
				return err
			}
			client, err := api.client()
			if err != nil {
				return err
			}
			var data json.RawMessage
			if postSuffix != "" {
				data, err = client.post(cmd.Context(), path+postSuffix, nil)
			} else {
				data, err = client.get(cmd.Context(), path)
			}
			if err != nil {
				return err
			}
			if !resultOnly {
				return printExecution(cmd.Context(), client, streams.Out, api.output, data)
			}
			var exec struct {
				Result json.RawMessage `json:"result"`
			}
			if err := json.Unmarshal(data, &exec); err != nil {
				return fmt.Errorf("decode execution %s: %w", args[0], err)
			}
			format := api.output
			if format == outputTable {
				// A result is any JSON, nothing to tabulate.
				format = outputJSON
			}
			if len(bytes.TrimSpace(exec.Result)) == 0 {
				exec.Result = json.RawMessage("null")
			}
			return printData(streams.Out, format, exec.Result)
		},
	}
}

// attemptColumns are the columns of an execution's attempts.
var attemptColumns = []column{{"ATTEMPT", "attempt", 0}, {"ID", "id", 0}, {"STATUS", "status", 0}, {"FINISHED", "finished_at", 0}, {"REASON", "reason", 60}}

// printExecution prints one execution; as a table, its standard output and error follow as
// the lines they are, then its attempts, when a retry repeated it, as a table of their own
// instead of one crammed cell, and a workflow's tasks as a tree.
func printExecution(ctx context.Context, client *apiClient, w io.Writer, format outputFormat, data json.RawMessage) error {
	if format != outputTable {
		return printObject(w, format, data)
	}
	fields, err := orderedFields(data)
	if err != nil {
		return err
	}
	shown, rawAttempts := takeField(fields, "attempts")
	shown, workflow := takeField(shown, "workflow")
	var attempts []json.RawMessage
	if len(rawAttempts) > 0 {
		if err := json.Unmarshal(rawAttempts, &attempts); err != nil {
			return fmt.Errorf("decode attempts: %w", err)
		}
	}
	var stdout, stderr string
	for i, f := range shown {
		if f.name == "result" {
			shown[i].value, stdout, stderr = splitOutput(f.value)
		}
	}
	if err := printFields(w, shown); err != nil {
		return err
	}
	printOutput(w, "STDOUT", stdout)
	printOutput(w, "STDERR", stderr)
	if len(attempts) >= 2 {
		fmt.Fprintln(w)
		if err := printList(w, format, attempts, attemptColumns); err != nil {
			return err
		}
	}
	if workflow == nil {
		return nil
	}
	return printWorkflow(ctx, client, w, workflow)
}

func newExecutionRerunCommand(streams Streams, api *apiFlags) *cobra.Command {
	var (
		params   paramFlags
		wait     bool
		timeout  time.Duration
		fromTask string
	)
	cmd := &cobra.Command{
		Use:   "rerun ID",
		Short: "Run an execution's action again, with its parameters and the --param ones replacing them",
		Long: `Runs the action of execution ID again as its child (parent_id), with the original's parameters
and those given by --param replacing them by name; --param name=null drops one, so that the
action's default applies. Each --param value is read as the action's schema types its
parameter, as for action execute. Secret parameters are copied without being shown, and
--param name=******** keeps one as it was. Prints the new execution. With --from-task, a
failed workflow is rerun from that task of it: its variables and the tasks that succeeded
are kept, and the workflow goes on from there.

With --wait it follows the new execution as action execute --wait does, and prints it when
it ends: exit status 0 when it completed, 1 when it did not or --timeout passed first, 130
when interrupted, which stops the waiting, not the execution.`,
		Example:           `  attune execution rerun 42 --param seconds=0 --wait`,
		Args:              UsageArgs(cobra.ExactArgs(1)),
		ValidArgsFunction: firstArg(api.completeExecutionID()),
		RunE: func(cmd *cobra.Command, args []string) error {
			path, err := executionPath(args[0])
			if err != nil {
				return err
			}
			if wait && timeout <= 0 {
				return Usagef("invalid --timeout %s: want a positive duration", timeout)
			}
			client, err := api.client()
			if err != nil {
				return err
			}
			values, err := params.parse(cmd.Context(), func(ctx context.Context) (pack.Schema, error) {
				return executionSchema(ctx, client, path)
			})
			if err != nil {
				return err
			}
			body := map[string]any{"parameters": values}
			if fromTask != "" {
				body["from_task"] = fromTask
			}
			data, err := client.post(cmd.Context(), path+"/rerun", body)
			if err != nil {
				return err
			}
			if !wait {
				return printObject(streams.Out, api.output, data)
			}
			return waitAndPrint(cmd.Context(), streams, api.output, client, data, timeout)
		},
	}
	params.register(cmd, false)
	cmd.Flags().BoolVar(&wait, "wait", false, "wait until the new execution ends; exit 1 unless it completed")
	cmd.Flags().StringVar(&fromTask, "from-task", "", "rerun a failed workflow from this task of it, keeping its variables and what succeeded")
	cmd.Flags().DurationVar(&timeout, "timeout", defaultWaitTimeout, "with --wait, how long to wait")
	return cmd
}
