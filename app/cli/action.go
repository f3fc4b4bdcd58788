package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/attune-go/attune/modules/pack"
	"github.com/attune-go/attune/store"
)

// defaultWaitTimeout bounds --wait; longer than any shipped action's timeout.
const defaultWaitTimeout = 10 * time.Minute

func newActionCommand(streams Streams) *cobra.Command {
	var api apiFlags
	cmd := newNounCommand("action", "List, show and run actions, and show their queues, through the API", &api)
	show := newShowCommandPrinting(streams, &api, "action", "/api/v1/actions", printAction)
	show.ValidArgsFunction = firstArg(api.completeActionRef())
	cmd.AddCommand(
		newListCommand(streams, &api, listCommand{noun: "actions", path: "/api/v1/actions", columns: actionColumns, all: true, packFilter: true}),
		show,
		newActionExecuteCommand(streams, &api),
		newActionQueueCommand(streams, &api),
	)
	return cmd
}

func newActionExecuteCommand(streams Streams, api *apiFlags) *cobra.Command {
	var (
		params  paramFlags
		wait    bool
		timeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "execute REF",
		Short: "Run an action and print the execution",
		Long: `Runs the action REF with the parameters given, checked against the action's schema by the
server, and prints the execution it created. Each --param value is read as the schema types
its parameter: count=3 is the integer 3, name=123 the string "123", tags=["a"] an array.
With REF and a reachable API, --help lists the action's parameters.

With --wait it follows the execution on the API's live stream until it ends and prints it
then: exit status 0 when it completed, 1 when it failed, timed out, was cancelled or abandoned,
or --timeout passed first; 130 when interrupted, which stops the waiting, not the execution.`,
		Example: `  attune action execute demo.hello --param name=Ada --wait
  attune action execute demo.json --params-json '{"count": 3}' --param name=Bo -o json`,
		Args:              UsageArgs(cobra.ExactArgs(1)),
		ValidArgsFunction: firstArg(api.completeActionRef()),
		RunE: func(cmd *cobra.Command, args []string) error {
			if wait && timeout <= 0 {
				return UsageError{fmt.Errorf("invalid --timeout %s: want a positive duration", timeout)}
			}
			client, err := api.client()
			if err != nil {
				return err
			}
			values, err := params.parse(cmd.Context(), func(ctx context.Context) (pack.Schema, error) {
				return actionSchema(ctx, client, args[0])
			})
			if err != nil {
				return err
			}
			data, err := client.post(cmd.Context(), "/api/v1/executions/execute",
				map[string]any{"action_ref": args[0], "parameters": values})
			if err != nil {
				return err
			}
			if !wait {
				return printObject(streams.Out, api.output, data)
			}
			return waitAndPrint(cmd.Context(), streams, api.output, client, data, timeout)
		},
	}
	params.register(cmd, true)
	cmd.SetHelpFunc(helpWithParams(api))
	cmd.Flags().BoolVar(&wait, "wait", false, "wait until the execution ends; exit 1 unless it completed")
	cmd.Flags().DurationVar(&timeout, "timeout", defaultWaitTimeout, "with --wait, how long to wait")
	return cmd
}

// waitAndPrint follows the execution created (created is its data) on the live stream until
// it ends, prints it and makes the exit status say whether it completed.
func waitAndPrint(ctx context.Context, streams Streams, format outputFormat, client *apiClient, created json.RawMessage, timeout time.Duration) error {
	var exec struct {
		ID int64 `json:"id"`
	}
	if err := json.Unmarshal(created, &exec); err != nil || exec.ID == 0 {
		return errors.New("read created execution: no id in the answer")
	}
	waitCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	status := "requested"
	data, final, err := follow(waitCtx, client, exec.ID, func(s string, _ time.Time) { status = s })
	switch {
	case err != nil && ctx.Err() != nil:
		return ExitCode(130) // interrupted, as tail is: the execution goes on
	case err != nil && errors.Is(waitCtx.Err(), context.DeadlineExceeded):
		return fmt.Errorf("execution %d is still %s after --timeout %s", exec.ID, status, timeout)
	case err != nil:
		return fmt.Errorf("wait for execution %d: %w", exec.ID, withStatus(err))
	}
	if err := printExecution(ctx, client, streams.Out, format, data); err != nil {
		return err
	}
	if final.Status != store.ExecutionCompleted {
		return ExitCode(1)
	}
	return nil
}
