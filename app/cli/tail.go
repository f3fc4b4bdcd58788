package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/attune-go/attune/store"
)

func newExecutionTailCommand(streams Streams, api *apiFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "tail ID",
		Short: "Follow an execution as it happens: each status change, and what it prints as it prints it",
		Long: `Follows execution ID on the API's live stream: prints its current status, then each change
as it happens, and what the action prints while it runs (its standard output here, its
standard error on standard error), as the worker sends it, a few times a second. When it
ends, it prints the reason it did not complete; of an execution that ended before tail
started, or that printed nothing live, it prints the stored output instead. Where the live
output missed something (tail started late, publishing fell behind, the live bound of 1 MiB
was reached), a line on standard error says so, and "attune execution show ID" has the
stored output. Of a workflow, it prints each change of its tasks' executions too, indented
under its own, and its output as JSON when it completes. Exit status 0 when it completed, 1
otherwise; interrupting it (exit status 130) stops the following, not the execution.`,
		Example:           `  attune execution tail 42`,
		Args:              UsageArgs(cobra.ExactArgs(1)),
		ValidArgsFunction: firstArg(api.completeExecutionID()),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := executionID(args[0])
			if err != nil {
				return err
			}
			client, err := api.client()
			if err != nil {
				return err
			}
			live := &liveOutput{id: id, out: streams.Out, errw: streams.Err}
			_, exec, err := followWith(cmd.Context(), client, id, followHooks{
				status: func(status string, at time.Time) {
					live.endLine()
					fmt.Fprintf(streams.Out, "%s  %s\n", at.Local().Format(clockFormat), status)
				},
				task:        printTaskChanges(streams.Out),
				output:      live.print,
				outputEnded: live.settled,
			})
			if err != nil && cmd.Context().Err() != nil {
				return ExitCode(130) // interrupted: the execution goes on; 128 + SIGINT, as shells say
			}
			if err != nil {
				return withStatus(err)
			}
			live.finish(exec)
			if exec.Status != store.ExecutionCompleted {
				return ExitCode(1)
			}
			return nil
		},
	}
}

// liveOutput prints what one execution prints, as the live stream carries it, and says where
// what it printed falls short of what the execution printed.
type liveOutput struct {
	id        int64
	out, errw io.Writer
	next      int64 // the number of the chunk expected next; 0 before the first
	shown     bool  // a chunk was printed
	ended     bool  // the output's last chunk, or its cut, was printed
	missed    bool  // something was not shown
	open      bool  // what was printed on out does not end a line
}

func (l *liveOutput) print(c outputChunk) {
	if c.ExecutionID != l.id || c.Seq < l.next {
		return // a workflow's task's, or one seen before the stream was opened again
	}
	switch {
	case l.next == 0 && c.Seq > 1:
		l.note("earlier output was printed before this tail began")
	case l.next != 0 && c.Seq > l.next:
		l.note(fmt.Sprintf("%d chunks of output were lost on the way", c.Seq-l.next))
	}
	if c.Dropped > 0 {
		l.note(fmt.Sprintf("%d bytes of output not shown: publishing fell behind", c.Dropped))
	}
	l.next, l.shown = c.Seq+1, true
	if c.Stream == "stderr" {
		fmt.Fprint(l.errw, c.Text)
	} else if c.Text != "" {
		fmt.Fprint(l.out, c.Text)
		l.open = !strings.HasSuffix(c.Text, "\n")
	}
	if c.Cut {
		l.note("the live output stops here: it reached its bound")
		l.ended = true
	}
	l.ended = l.ended || c.End
}

// note says on standard error where the live output falls short.
func (l *liveOutput) note(what string) {
	l.missed = true
	l.endLine()
	fmt.Fprintf(l.errw, "[attune: %s]\n", what)
}

// endLine ends the line the output left open on out, so that what follows starts its own.
func (l *liveOutput) endLine() {
	if l.open {
		fmt.Fprintln(l.out)
		l.open = false
	}
}

// settled reports whether nothing more of the output is to be waited for: none was shown live
// (the stored output will be), or its end was.
func (l *liveOutput) settled() bool { return !l.shown || l.ended }

// finish prints how exec ended: its stored output when none was shown live, and the reason it
// did not complete.
func (l *liveOutput) finish(exec followedExecution) {
	if !l.shown {
		printOutcome(l.out, l.errw, exec)
		return
	}
	l.endLine()
	if l.missed || !l.ended {
		fmt.Fprintf(l.errw, "[attune: the live output of execution %d was incomplete; attune execution show %d has the stored output]\n", exec.ID, exec.ID)
	}
	var result outcome
	_ = json.Unmarshal(exec.Result, &result)
	printReason(l.errw, exec, result.Error)
}
