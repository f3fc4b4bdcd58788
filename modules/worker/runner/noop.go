package runner

import "context"

// noopRunner does nothing and succeeds: the runner of core.noop, useful to test rules and
// workflows without side effects.
type noopRunner struct{}

// Run implements Runner.
func (noopRunner) Run(ctx context.Context, _ Job) Result {
	if ctx.Err() != nil {
		return cancelledBeforeStart()
	}
	return Result{Succeeded: true}
}
