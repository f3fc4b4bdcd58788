package worker

import (
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/attune-go/attune/modules/worker/reaper"
)

// A dead worker's process is gone when no process has its pid, or when the one that has it
// started after the worker's last heartbeat; one that may be it is kept.
func TestProcessGone(t *testing.T) {
	t.Parallel()
	age, alive, err := reaper.Age(os.Getpid())
	require.NoError(t, err)
	require.True(t, alive)

	gone, err := processGone(os.Getpid(), time.Second)
	require.NoError(t, err)
	require.False(t, gone, "alive, and older than its last heartbeat: maybe the worker, stalled")

	gone, err = processGone(os.Getpid(), age+time.Hour)
	require.NoError(t, err)
	require.True(t, gone, "started after the worker's last heartbeat: another process reusing the pid")

	done := exec.Command("/bin/true")
	require.NoError(t, done.Run())
	gone, err = processGone(done.Process.Pid, time.Minute)
	require.NoError(t, err)
	require.True(t, gone, "no such process")

	gone, err = processGone(0, time.Hour)
	require.NoError(t, err)
	require.False(t, gone, "a record without a pid is kept")
}
