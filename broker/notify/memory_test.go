package notify

import (
	"runtime"
	"strings"
	"testing"
	"time"
	"weak"

	"github.com/stretchr/testify/require"

	"github.com/attune-go/attune/broker"
)

// large queues a notification carrying a large output into n and returns a weak pointer to
// its output, which tells whether anything still keeps it.
func large(n *Notifier, id int64) weak.Pointer[broker.OutputChunk] {
	note := broker.OutputPrinted(id, "core.local", nil, broker.OutputChunk{Seq: 1, Stream: "stdout", Text: strings.Repeat("x", 48<<10)}, time.Now())
	n.Notify(note)
	return weak.Make(note.Output)
}

func changed(id int64) broker.Notification {
	return broker.ExecutionChanged(id, "core.noop", "running", "scheduled", time.Now())
}

// Output that was dropped past the bound, or taken to be sent, is not kept reachable by the
// array of what still waits.
func TestForgetsWhatWentOrWasDropped(t *testing.T) {
	t.Parallel()
	n := New(nil, Config{MaxPending: 2, MaxBatch: 1})
	dropped := large(n, 1)
	n.Notify(changed(2), changed(3))
	require.Equal(t, int64(1), n.Dropped())
	runtime.GC()
	require.True(t, dropped.Value() == nil, "the dropped output is still reachable")
	require.Equal(t, int64(2), n.pending[0].ID, "n lives on past the collection")

	n = New(nil, Config{MaxBatch: 1})
	sent := large(n, 1)
	n.Notify(changed(2))
	require.Equal(t, int64(1), n.take()[0].ID)
	runtime.GC()
	require.True(t, sent.Value() == nil, "the sent output is still reachable")
	require.Equal(t, int64(2), n.pending[0].ID, "n lives on past the collection")
}
