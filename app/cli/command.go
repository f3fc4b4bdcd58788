// Package cli is attune's command line as a client of the API, and the conventions every
// attune command follows: where it writes, which errors exit 2, and flags that fall back to
// ATTUNE_* variables.
package cli

import (
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

// UsageError marks an error in how a command was called: exit status 2.
type UsageError struct{ error }

// Usage marks err as a usage error.
func Usage(err error) error { return UsageError{err} }

// Usagef makes a usage error.
func Usagef(format string, args ...any) error { return UsageError{fmt.Errorf(format, args...)} }

func (u UsageError) Unwrap() error { return u.error }

// ExitCode ends a command with that exit status and no message: the command has already
// written its answer, and the status carries the rest, as grep's 1 says "no match".
type ExitCode int

func (c ExitCode) Error() string { return fmt.Sprintf("exit status %d", int(c)) }

// ExitStatus is what a command's error means for the process: its exit status, and the one
// line to print (empty when the command has said all it had to).
func ExitStatus(err error) (code int, message string) {
	if err == nil {
		return 0, ""
	}
	var exit ExitCode
	if errors.As(err, &exit) {
		return int(exit), ""
	}
	message = strings.Join(strings.Fields(strings.ReplaceAll(err.Error(), "\n", " ")), " ")
	var usage UsageError
	if errors.As(err, &usage) {
		return 2, message
	}
	return 1, message
}

// UsageArgs makes a bad number of positional arguments a usage error (exit 2), as bad flags
// are; cobra's own validators return plain errors.
func UsageArgs(validate cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := validate(cmd, args); err != nil {
			return UsageError{fmt.Errorf("%w (see %s --help)", err, cmd.CommandPath())}
		}
		return nil
	}
}

// Commands are the commands that call the API (and "rule test", which checks a rule offline).
func Commands(streams Streams) []*cobra.Command {
	cmds := []*cobra.Command{
		newPackCommand(streams), newRuleCommand(streams),
		newActionCommand(streams), newExecutionCommand(streams), newInquiryCommand(streams), newTriggerCommand(streams), newSensorCommand(streams),
		newEventCommand(streams), newPolicyCommand(streams), newWorkerCommand(streams), newEnforcementCommand(streams),
		newLoginCommand(streams), newWhoamiCommand(streams), newIdentityCommand(streams), newTokenCommand(streams),
		newWebhookSecretCommand(streams), newKeyCommand(streams), newTraceCommand(streams), newAuditCommand(streams),
	}
	completeOutputFlags(cmds)
	return cmds
}
