package app

import (
	"errors"
	"os"
	"os/exec"
	"runtime"

	"github.com/spf13/cobra"

	"github.com/attune-go/attune/app/cli"
	"github.com/attune-go/attune/modules/worker/reaper"
)

// newInternalCommand holds the commands attune runs of itself, not meant for people.
func newInternalCommand(streams Streams) *cobra.Command {
	cmd := &cobra.Command{Use: "internal", Short: "Commands attune runs of itself", Hidden: true}
	cmd.AddCommand(newReaperCommand(streams))
	return cmd
}

// newReaperCommand is the worker's companion process (package reaper): it waits for the end
// of its stdin, which the worker holds the other end of, then ends what is left of the
// worker's actions and removes the worker's directory. Everything it needs is on its command
// line: the worker gives it none of its ATTUNE_* environment.
func newReaperCommand(streams Streams) *cobra.Command {
	var marker reaper.Marker
	var dir string
	var logs logOptions
	cmd := &cobra.Command{
		Use:   "reaper --worker NAME --instance TOKEN [--dir PATH]",
		Short: "End a worker's actions when the worker dies",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if marker.Worker == "" || marker.Instance == "" {
				return cli.Usage(errors.New("--worker and --instance are required"))
			}
			logger, err := newLogger(logs, streams.Err)
			if err != nil {
				return cli.Usage(err)
			}
			return reaper.Serve(streams.In, streams.Out, marker, dir, logger.With("module", "worker-companion"))
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&marker.Worker, "worker", "", "the worker's name")
	fs.StringVar(&marker.Instance, "instance", "", "the worker process's marker")
	fs.StringVar(&dir, "dir", "", "the worker process's directory, removed once its actions are ended")
	fs.StringVar(&logs.level, "log-level", "info", "log level: debug, info, warn or error")
	fs.StringVar(&logs.format, "log-format", "text", "log format: text or json")
	return cmd
}

// companionCommand is how a worker starts its companion: this very binary, through
// /proc/self/exe, which names it even after it was replaced on disk by an upgrade. Only Linux
// has the /proc the companion reads; elsewhere a worker runs without one.
func companionCommand(logs logOptions) func(reaper.Marker, string) *exec.Cmd {
	if runtime.GOOS != "linux" {
		return nil
	}
	return func(m reaper.Marker, dir string) *exec.Cmd {
		cmd := exec.Command("/proc/self/exe", "internal", "reaper", "--worker", m.Worker, "--instance", m.Instance, "--dir", dir,
			"--log-level", logs.level, "--log-format", logs.format)
		cmd.Args[0] = "attune"
		cmd.Stderr = os.Stderr
		return cmd
	}
}
