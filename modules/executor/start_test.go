package executor_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/attune-go/attune/modules/executor"
)

// startExecutor runs an executor module until ctx ends; the channel gets what Run returned.
func startExecutor(ctx context.Context, t *testing.T, cfg executor.Config, deps executor.Deps) <-chan error {
	t.Helper()
	m, err := executor.New(cfg, deps)
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	return done
}
