package app

import (
	"fmt"
	"runtime"

	"github.com/spf13/cobra"
)

// version and commit are set at build time with -ldflags "-X".
var (
	version = "dev"
	commit  = "unknown"
)

func newVersionCommand(streams Streams) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version of this binary",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			_, err := fmt.Fprintf(streams.Out, "attune %s (commit %s, %s, %s/%s)\n", version, commit, runtime.Version(), runtime.GOOS, runtime.GOARCH)
			return err
		},
	}
}
