package app

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

type fakeModule struct {
	name    string
	run     func(ctx context.Context) error
	stopped chan struct{}
}

func (f *fakeModule) Name() string { return f.name }

func (f *fakeModule) Run(ctx context.Context) error {
	defer close(f.stopped)
	return f.run(ctx)
}

func blocking(name string) *fakeModule {
	return &fakeModule{name: name, stopped: make(chan struct{}), run: func(ctx context.Context) error {
		<-ctx.Done()
		return nil
	}}
}

func testServer(t *testing.T) *httpServer {
	t.Helper()
	srv, err := newHTTPServer("127.0.0.1:0", nil, nil, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	return srv
}

func TestFirstFailureStopsEveryModule(t *testing.T) {
	t.Parallel()
	healthy := blocking("healthy")
	failing := &fakeModule{name: "failing", stopped: make(chan struct{}), run: func(context.Context) error {
		return errors.New("lost its queue")
	}}
	err := run(context.Background(), time.Second, testServer(t), []module{healthy, failing}, slog.New(slog.DiscardHandler))
	require.EqualError(t, err, "failing: lost its queue")
	<-healthy.stopped
}

func TestModuleReturningEarlyIsAFailure(t *testing.T) {
	t.Parallel()
	quitter := &fakeModule{name: "quitter", stopped: make(chan struct{}), run: func(context.Context) error { return nil }}
	err := run(context.Background(), time.Second, testServer(t), []module{quitter}, slog.New(slog.DiscardHandler))
	require.EqualError(t, err, "quitter stopped unexpectedly")
}

func TestCancelStopsCleanly(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	a, b := blocking("a"), blocking("b")
	done := make(chan error, 1)
	go func() { done <- run(ctx, time.Second, testServer(t), []module{a, b}, slog.New(slog.DiscardHandler)) }()
	cancel()
	require.NoError(t, <-done)
	<-a.stopped
	<-b.stopped
}

func TestShutdownTimeoutNamesTheStuckModule(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	stuck := &fakeModule{name: "stuck", stopped: make(chan struct{}), run: func(context.Context) error {
		<-release // ignores cancellation
		return nil
	}}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := run(ctx, 10*time.Millisecond, testServer(t), []module{stuck}, slog.New(slog.DiscardHandler))
	require.ErrorContains(t, err, "shutdown timed out")
	require.ErrorContains(t, err, "[stuck]")
}
