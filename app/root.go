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
	// The identity and key commands call the API but for these, which reach the database.
	subcommand(root, "identity").AddCommand(newResetPasswordCommand(streams))
	subcommand(root, "key").AddCommand(newKeyRotateCommand(streams))
	root.AddCommand(bench.NewCommand(streams), newInternalCommand(streams))
	// Added now rather than when the root runs, so that the walk below reaches it.
	root.InitDefaultCompletionCmd()
	refuseUnknownSubcommands(root)
	return root
}

// subcommand is cmd's subcommand called name; a missing one is a mistake in the tree.
func subcommand(cmd *cobra.Command, name string) *cobra.Command {
	for _, c := range cmd.Commands() {
		if c.Name() == name {
			return c
		}
	}
	panic("attune: no command " + cmd.CommandPath() + " " + name)
}

// refuseUnknownSubcommands makes every command that only groups others (the root included)
// refuse an argument that names none of them, as a usage error. Cobra would print the
// group's help and exit 0, and a script with a typo would carry on as if it had run. Without
// an argument a group still prints its help.
func refuseUnknownSubcommands(cmd *cobra.Command) {
	if cmd.HasSubCommands() && !cmd.Runnable() {
		cmd.Args = cobra.ArbitraryArgs
		cmd.SuggestionsMinimumDistance = 2 // cobra's own default, which it applies only to the root
		cmd.RunE = func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return cmd.Help()
			}
			hint := ""
			if names := cmd.SuggestionsFor(args[0]); len(names) > 0 {
				hint = fmt.Sprintf("; did you mean %q?", names[0])
			}
			return cli.Usagef("unknown command %q for %q%s (see %s --help)", args[0], cmd.CommandPath(), hint, cmd.CommandPath())
		}
	}
	for _, sub := range cmd.Commands() {
		refuseUnknownSubcommands(sub)
	}
}
