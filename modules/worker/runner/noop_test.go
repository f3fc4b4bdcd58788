package runner_test

import (
	"context"
	"testing"

	"github.com/attune-go/attune/modules/worker/runner"
	"github.com/stretchr/testify/require"
)

func TestNoopSucceeds(t *testing.T) {
	t.Parallel()
	res := runner.New(runner.Config{})[runner.TypeNoop].Run(t.Context(), runner.Job{ActionRef: "core.noop", RunnerType: runner.TypeNoop})
	require.Equal(t, runner.Result{Succeeded: true}, res)
}

func TestNoopCancelled(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	res := runner.New(runner.Config{})[runner.TypeNoop].Run(ctx, runner.Job{ActionRef: "core.noop", RunnerType: runner.TypeNoop})
	require.True(t, res.Cancelled)
	require.False(t, res.Succeeded)
}

func TestNewReturnsEveryRunnerType(t *testing.T) {
	t.Parallel()
	runners := runner.New(runner.Config{})
	require.Len(t, runners, 3)
	for _, typ := range []string{"shell", "http", "noop"} {
		require.NotNil(t, runners[typ], typ)
	}
}
