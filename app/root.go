package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
)

// Streams are where commands write; tests capture them.
type Streams struct {
	In  io.Reader
	Out io.Writer
	Err io.Writer
}

// Main runs the attune command line with args and returns the process exit code. Errors are
// printed once, on one line, to streams.Err.
func Main(ctx context.Context, args []string, streams Streams) int {
	root := NewRootCommand(streams)
	root.SetArgs(args)
	if err := root.ExecuteContext(ctx); err != nil {
		var code exitCode
		if errors.As(err, &code) {
			return int(code)
		}
		fmt.Fprintf(streams.Err, "attune: %s\n", oneLine(err))
		var ue usageError
		if errors.As(err, &ue) {
			return 2
		}
		return 1
	}
	return 0
}

// usageError marks errors in how the command was called.
type usageError struct{ error }

func (u usageError) Unwrap() error { return u.error }

func oneLine(err error) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(err.Error(), "\n", " ")), " ")
}

// NewRootCommand builds the attune command tree.
func NewRootCommand(streams Streams) *cobra.Command {
	root := &cobra.Command{
		Use:   "attune",
		Short: "Attune is an event-driven automation platform",
		Long: strings.TrimSpace(`
Attune turns events into actions: sensors and webhooks produce events, rules match them,
the executor runs the matching actions on workers under concurrency and rate policies.

One binary runs every role: "attune serve" runs them all in one process, and
"attune serve --roles=executor" runs one role per process in production.`),
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	root.SetOut(streams.Out)
	root.SetErr(streams.Err)
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return usageError{fmt.Errorf("%w (see %s --help)", err, cmd.CommandPath())}
	})
	root.AddCommand(newServeCommand(streams), newMigrateCommand(streams), newVersionCommand(streams),
		newPackCommand(streams), newRuleCommand(streams))
	root.AddCommand(newActionCommand(streams), newExecutionCommand(streams), newTriggerCommand(streams),
		newEventCommand(streams), newPolicyCommand(streams), newWorkerCommand(streams), newEnforcementCommand(streams))
	root.AddCommand(newLoginCommand(streams), newWhoamiCommand(streams), newIdentityCommand(streams), newTokenCommand(streams))
	root.AddCommand(newBenchCommand(streams), newInternalCommand(streams))
	return root
}
