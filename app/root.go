package app

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/attune-go/attune/app/bench"
	"github.com/attune-go/attune/app/cli"
)

// Streams are where commands write; tests capture them.
type Streams = cli.Streams

// Main runs the attune command line with args and returns the process exit code. Errors are
// printed once, on one line, to streams.Err.
func Main(ctx context.Context, args []string, streams Streams) int {
	root := NewRootCommand(streams)
	root.SetArgs(args)
	code, message := cli.ExitStatus(root.ExecuteContext(ctx))
	if message != "" {
		fmt.Fprintf(streams.Err, "attune: %s\n", message)
	}
	return code
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
		return cli.Usagef("%w (see %s --help)", err, cmd.CommandPath())
	})
	root.AddCommand(newServeCommand(streams), newMigrateCommand(streams), newVersionCommand(streams))
	root.AddCommand(cli.Commands(streams)...)
	root.AddCommand(bench.NewCommand(streams), newInternalCommand(streams))
	return root
}
