package bench

import (
	"bytes"
	"encoding/json"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestSliceRate(t *testing.T) {
	require.InDelta(t, 4.0, sliceRate([]float64{1, 1.25, 1.5, 2}), 1e-9, "4 completions over 1 s")
	require.Zero(t, sliceRate(nil))
	require.Zero(t, sliceRate([]float64{3}), "one completion has no span")
	require.Zero(t, sliceRate([]float64{3, 3}), "no time passed")
}

func TestDrainRates(t *testing.T) {
	// 100 completions: the first 10 every 0.1 s, the middle 80 every 0.01 s, the last 10
	// every 0.2 s.
	var finished []float64
	at := 0.0
	for i := range 100 {
		finished = append(finished, at)
		switch {
		case i < 9:
			at += 0.1
		case i < 89:
			at += 0.01
		default:
			at += 0.2
		}
	}
	first, last, overall := drainRates(finished)
	require.InDelta(t, 10/0.9, first, 1e-9)
	require.InDelta(t, 10/1.8, last, 1e-9)
	require.InDelta(t, 100/finished[99], overall, 1e-9)

	first, last, overall = drainRates([]float64{0, 1})
	require.Equal(t, []float64{2, 2, 2}, []float64{first, last, overall}, "a tenth is at least two completions")
	first, last, overall = drainRates([]float64{0})
	require.Equal(t, []float64{0, 0, 0}, []float64{first, last, overall})
}

func TestFIFOInversions(t *testing.T) {
	inOrder := []float64{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13}
	require.Zero(t, fifoInversions(inOrder, 10))

	// Within the slack: the limit's worth of executions may start in any order.
	shuffled := []float64{10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 11, 12, 13}
	require.Zero(t, fifoInversions(shuffled, 10))

	// The last starts before the first, 13 places ahead of it: one jump past the slack.
	jumped := []float64{5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 1}
	require.Equal(t, 1, fifoInversions(jumped, 10))

	// 10 places after the first is within the slack of 10; 11 is past it.
	require.Zero(t, fifoInversions([]float64{5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 1}, 10))
	require.Equal(t, 1, fifoInversions([]float64{5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 1}, 10))

	require.Zero(t, fifoInversions(nil, 10))
}

func TestPrintBacklog(t *testing.T) {
	r := backlogResult{Broker: "rabbitmq", Backlog: 20000, Limit: 10, FirstPerSec: 412.34, LastPerSec: 405.1,
		OverallPerSec: 409, Ratio: 0.982, FIFOInversions: 0}
	var text bytes.Buffer
	require.NoError(t, printBacklog(&text, r, false))
	require.Equal(t, "rabbitmq   backlog 20000 behind limit 10  first 10% 412.3/s  last 10% 405.1/s  overall 409.0/s  ratio 0.98  fifo inversions 0\n", text.String())

	var js bytes.Buffer
	require.NoError(t, printBacklog(&js, r, true))
	var fields map[string]any
	require.NoError(t, json.Unmarshal(js.Bytes(), &fields))
	for _, k := range []string{"broker", "backlog", "limit", "first_10pct_per_sec", "last_10pct_per_sec", "overall_per_sec", "ratio"} {
		require.Contains(t, fields, k)
	}
}

func TestBenchCost(t *testing.T) {
	before := costSnapshot{
		statements: map[int64]statementCost{1: {Query: "SELECT 1", rawCalls: 10, rawExecTime: 5}, 2: {Query: "UPDATE x", rawCalls: 3}},
		commits:    100, published: 7, cpu: time.Second, writes: 50, broker: 4 * time.Second,
	}
	after := costSnapshot{
		statements: map[int64]statementCost{
			1: {Query: "SELECT 1", rawCalls: 210, rawExecTime: 25},
			2: {Query: "UPDATE\n\t  x", rawCalls: 103, rawExecTime: 50},
			3: {Query: "rare", rawCalls: 4}, // under one per twenty executions
		},
		commits: 406, published: 407, cpu: 3 * time.Second, writes: 1050, broker: 5 * time.Second, backends: 500 * time.Millisecond,
	}
	// 100 executions; the harness ran 6 statements of its own, each its own transaction.
	c := cost(before, after, 100, 6)
	require.InDelta(t, (200+100+4-6)/100.0, c.Statements, 1e-9)
	require.InDelta(t, 3.0, c.Commits, 1e-9)
	require.InDelta(t, 4.0, c.Messages, 1e-9)
	require.InDelta(t, 20.0, c.CPUms, 1e-9)
	require.InDelta(t, 10.0, c.Writes, 1e-9)
	require.InDelta(t, 5.0, c.PostgresCPUms, 1e-9)
	require.InDelta(t, 10.0, c.BrokerCPUms, 1e-9)
	require.Equal(t, []statementCost{
		{Query: "SELECT 1", PerExec: 2, MeanMS: 0.1},
		{Query: "UPDATE x", PerExec: 1, MeanMS: 0.5},
	}, c.Top)

	c = cost(costSnapshot{}, costSnapshot{commits: 5, backends: -1}, 5, 0)
	require.Equal(t, -1.0, c.Statements, "unknown without pg_stat_statements")
	require.Equal(t, -1.0, c.PostgresCPUms, "unknown when /proc does not show the backends")
	require.Equal(t, -1.0, c.BrokerCPUms, "unknown without a local RabbitMQ")
	require.Empty(t, c.Top)
}

func TestProcCPU(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc here")
	}
	cpu, ok := procCPU(os.Getpid())
	require.True(t, ok)
	require.GreaterOrEqual(t, cpu, time.Duration(0))
	_, ok = procCPU(-1)
	require.False(t, ok)
}
