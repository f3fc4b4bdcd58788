package app_test

import (
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/stretchr/testify/require"

	"github.com/attune-go/attune/app"
)

// Every command that groups others, found by walking the tree, refuses an argument that names
// none of them: exit 2 and one line naming it and where to read on, so that a script with a
// typo stops. Alone, a group prints its help.
func TestUnknownSubcommandIsUsageError(t *testing.T) {
	t.Parallel()
	var groups []string
	var walk func(cmd *cobra.Command)
	walk = func(cmd *cobra.Command) {
		if !cmd.HasSubCommands() {
			return
		}
		groups = append(groups, cmd.CommandPath())
		for _, sub := range cmd.Commands() {
			walk(sub)
		}
	}
	walk(app.NewRootCommand(app.Streams{Out: io.Discard, Err: io.Discard}))
	require.Subset(t, groups, []string{"attune", "attune pack", "attune action", "attune migrate", "attune identity", "attune token", "attune completion"})

	for _, path := range groups {
		t.Run(path, func(t *testing.T) {
			t.Parallel()
			stdout, stderr, code := runAttune(t, append(strings.Fields(path)[1:], "bogus")...)
			require.Equal(t, 2, code, stderr)
			require.Empty(t, stdout)
			require.Equal(t, fmt.Sprintf("attune: unknown command \"bogus\" for %q (see %s --help)\n", path, path), requireOneErrorLine(t, stderr))
		})
	}

	t.Run("Suggestion", func(t *testing.T) {
		t.Parallel()
		_, stderr, code := runAttune(t, "pack", "regster", "dir")
		require.Equal(t, 2, code, stderr)
		require.Contains(t, requireOneErrorLine(t, stderr), `unknown command "regster" for "attune pack"; did you mean "register"?`)
	})

	t.Run("GroupAlone", func(t *testing.T) {
		t.Parallel()
		stdout, stderr, code := runAttune(t, "pack")
		require.Equal(t, 0, code, stderr)
		require.Empty(t, stderr)
		require.Contains(t, stdout, "Available Commands:")
	})
}
