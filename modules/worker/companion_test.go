package worker

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/attune-go/attune/modules/worker/reaper"
)

// A process an earlier worker left that does not die (stuck in the kernel, where no signal
// reaches it) does not keep the worker from starting: the worker logs what is left and goes
// on. Only the end of the worker's own context stops it.
func TestStuckLeftoverDoesNotBlockStart(t *testing.T) {
	t.Parallel()
	var logs strings.Builder
	m := &Module{
		cfg:    Config{Name: "w"},
		deps:   Deps{Logger: slog.New(slog.NewJSONHandler(&logs, nil))},
		marker: reaper.NewMarker("w"),
		dir:    t.TempDir(),
		// What reaper.EndEarlier answers when a process outlives its bound.
		endEarlier: func(ctx context.Context, _ reaper.Marker, _ string, _ reaper.Options) (reaper.Earlier, error) {
			return reaper.Earlier{Reaped: reaper.Reaped{PIDs: []int{4242, 4243}, Left: []int{4242}}},
				fmt.Errorf("end the actions of earlier processes of worker w: %w (left: [4242])", context.DeadlineExceeded)
		},
	}
	require.NoError(t, m.endEarlierActions(t.Context()))
	var lines []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var l map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &l))
		lines = append(lines, l)
	}
	require.Len(t, lines, 2, logs.String())
	require.Equal(t, "ended the actions an earlier process of this worker left", lines[0]["msg"])
	require.Equal(t, "could not end all an earlier process of this worker left; starting all the same", lines[1]["msg"])
	require.Equal(t, []any{4242.0}, lines[1]["left"])

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	require.ErrorIs(t, m.endEarlierActions(ctx), context.Canceled, "a worker that is stopping does not start")
}
