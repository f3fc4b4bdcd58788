package metrics

import (
	"testing"
	"time"

	"github.com/attune-go/attune/broker"
)

// What the metrics add to one execution's hot path, as the pipeline calls them: the worker's
// start, stages and end, the slot, and the messages of an execution (its dispatch and
// completion, published and consumed).
func BenchmarkExecutionHotPath(b *testing.B) {
	m := New()
	dispatch := m.Queue(broker.QueueKind(broker.DispatchQueue("noop").Name))
	completions := m.Queue(broker.QueueKind(broker.QueueExecutorCompletions.Name))
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.Published(broker.TypeExecutionDispatched)
			dispatch.Consumed()
			m.SlotsBusy(1)
			m.ExecutionStarted("core.noop", "noop")
			m.Stage("admitted", time.Millisecond)
			m.Stage("started", time.Millisecond)
			m.ExecutionFinished("core.noop", "noop", "completed")
			m.Stage("finished", time.Millisecond)
			m.SlotsBusy(-1)
			m.Published(broker.TypeExecutionCompleted)
			completions.Consumed()
		}
	})
}
