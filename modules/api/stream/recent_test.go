package stream

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/attune-go/attune/broker"
)

// checkRecent checks that what the hub counts of its kept output is what it keeps, within
// its bounds, and reports how many executions' output it keeps.
func checkRecent(t *testing.T, h *Hub) int {
	t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	cost := 0
	for e := h.lru.Front(); e != nil; e = e.Next() {
		r := e.Value.(*recentOutput)
		require.Same(t, e, h.recent[r.id])
		cost += r.cost()
	}
	require.Equal(t, len(h.recent), h.lru.Len())
	require.Equal(t, cost, h.recentCost)
	require.LessOrEqual(t, h.recentCost, h.cfg.RecentTotal)
	require.LessOrEqual(t, len(h.recent), h.cfg.RecentExecutions)
	return len(h.recent)
}

func chunk(id int64, c broker.OutputChunk) []broker.Notification {
	return []broker.Notification{broker.OutputPrinted(id, "core.local", nil, c, time.Now())}
}

// The statuses that end executions, and their last chunks, may be lost on the way (the
// notifier drops what overflows it, and batches it fails to publish): what is kept of the
// output of executions that are never heard to end stays bounded all the same.
func TestRecentOutputStaysBoundedWhenEndingsAreLost(t *testing.T) {
	t.Parallel()
	h := NewHub(Config{})
	for id := int64(1); id <= 200000; id++ {
		h.Deliver(chunk(id, broker.OutputChunk{Seq: 1, Stream: "stdout", Text: "a line\n"}))
	}
	require.Equal(t, 4096, checkRecent(t, h), "the executions kept are bounded")
	for id := int64(200001); id <= 400000; id++ {
		h.Deliver(chunk(id, broker.OutputChunk{Seq: 1, Stream: "stdout", Text: "all of it\n", End: true}))
	}
	require.Equal(t, 4096, checkRecent(t, h), "an execution whose only chunk is its last is not kept")
	for id := int64(200000 - 4095); id <= 200000; id++ {
		h.Deliver(chunk(id, broker.OutputChunk{Seq: 2, Stream: "stdout", End: true}))
	}
	require.Zero(t, checkRecent(t, h), "the last chunk forgets, with no status")
}

// Chunks without text cost memory too: the total bound counts them.
func TestRecentOutputCountsWhatChunksCost(t *testing.T) {
	t.Parallel()
	h := NewHub(Config{RecentTotal: 10 * (recentOverhead + chunkOverhead)})
	for id := int64(1); id <= 100; id++ {
		h.Deliver(chunk(id, broker.OutputChunk{Seq: 1, Stream: "stdout", Dropped: 10}))
	}
	require.Equal(t, 10, checkRecent(t, h))
	h.Deliver(chunk(100, broker.OutputChunk{Seq: 2, Stream: "stdout", Text: "x"}))
	require.Equal(t, 9, checkRecent(t, h), "a chunk more, and text, push the least lately printed out")
	h.mu.Lock()
	defer h.mu.Unlock()
	require.Equal(t, int64(100), h.lru.Front().Value.(*recentOutput).id)
	require.Equal(t, int64(92), h.lru.Back().Value.(*recentOutput).id)
}
