package app_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The fault suite's checks on evidence made up for the purpose: each passes what keeps its
// promise and fails, naming it, what breaks it. (The suite itself runs only under make
// test-faults; these run with make test.)
func TestFaultChecks(t *testing.T) {
	t.Parallel()
	at := func(ms int) *time.Time {
		v := time.Unix(1000, 0).Add(time.Duration(ms) * time.Millisecond)
		return &v
	}

	t.Run("Marks", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "marks")
		require.NoError(t, os.WriteFile(path, []byte("start 7 100 worker-1.1 12.50\nend 7 100 worker-1.1 12.80 3\n"), 0o644))
		marks, err := readMarks(path)
		require.NoError(t, err)
		assert.Equal(t, []mark{
			{start: true, execution: 7, pid: 100, incarnation: "worker-1.1", uptime: 12.5},
			{execution: 7, pid: 100, incarnation: "worker-1.1", uptime: 12.8, exit: 3},
		}, marks)
		require.NoError(t, os.WriteFile(path, []byte("end 7 100 worker-1.1 12.80\n"), 0o644))
		_, err = readMarks(path)
		assert.ErrorContains(t, err, "bad line", "an end line without its exit code")
	})

	t.Run("AdmissionOrder", func(t *testing.T) {
		ev := &faultEvidence{executions: []execRow{
			{id: 1, action: "a", admittedAt: at(10)}, {id: 2, action: "a", admittedAt: at(10)},
			{id: 3, action: "a", admittedAt: at(30)}, {id: 4, action: "b", admittedAt: at(0)}, {id: 5, action: "a"},
		}}
		assert.Empty(t, checkAdmissionOrder(ev, "a").failed, "equal times and other queues are in order")
		ev.executions = append(ev.executions, execRow{id: 6, action: "a", admittedAt: at(20)})
		c := checkAdmissionOrder(ev, "a")
		require.Len(t, c.failed, 1)
		assert.Contains(t, c.failed[0], "execution 3 admitted after 1 younger ones: 6 (10ms earlier)")
	})

	t.Run("RecordedAsRun", func(t *testing.T) {
		s := &faultRun{kills: []*workerKill{{incarnation: "worker-1.1", atUptime: 50}}}
		ev := &faultEvidence{
			executions: []execRow{
				{id: 1, status: "completed"}, {id: 2, status: "failed"}, {id: 3, status: "abandoned"},
				{id: 4, status: "abandoned"}, {id: 5, status: "completed"}, {id: 6, status: "completed"},
				{id: 7, status: "running"}, {id: 8, status: "abandoned"},
			},
			marks: []mark{
				{execution: 1, incarnation: "worker-2.1", uptime: 40},
				{execution: 2, incarnation: "worker-2.1", uptime: 40, exit: 3},
				{execution: 3, incarnation: "worker-1.1", uptime: 49.5}, // ended as its worker was killed
				{execution: 4, incarnation: "worker-1.1", uptime: 52},   // ran on after the kill
				{execution: 5, incarnation: "worker-2.1", uptime: 40, exit: 3},
				{execution: 7, incarnation: "worker-2.1", uptime: 60},
				{execution: 8, incarnation: "worker-1.1", uptime: 50.4}, // ended as its worker's actions were being ended
			},
		}
		c := s.checkRecordedAsRun(ev)
		assert.Equal(t, "3 recorded otherwise; 2 ended as their worker was killed", c.figure)
		assert.Contains(t, c.failed[0], "execution 4: its action")
		assert.Contains(t, c.failed[1], "execution 5: its action (pid 0 on worker-2.1) exited 3, recorded completed")
		assert.Contains(t, c.failed[2], "execution 6 recorded completed, but its action never reached its end")
	})

	t.Run("RanOnce", func(t *testing.T) {
		event := int64(9)
		ev := &faultEvidence{
			executions: []execRow{{id: 1, event: &event, rule: "r"}, {id: 2, event: &event, rule: "r"}},
			byEvent:    map[int64][]execRow{9: {{id: 1, rule: "r"}, {id: 2, rule: "r"}}},
			marks:      []mark{{start: true, execution: 1, pid: 10}, {start: true, execution: 1, pid: 11}, {start: true, execution: 2}},
		}
		c := checkRanOnce(ev)
		require.Len(t, c.failed, 2)
		assert.Equal(t, "event 9 has 2 executions of rule r: [1 2]", c.failed[0])
		assert.True(t, strings.HasPrefix(c.failed[1], "execution 1 started 2 times"), c.failed[1])
	})

	t.Run("Answered", func(t *testing.T) {
		begin := time.Now()
		killed := &member{name: "api-1", asked: map[*process]time.Time{nil: begin.Add(time.Second)}}
		up := &member{name: "api-2", asked: map[*process]time.Time{}}
		s := &faultRun{begin: begin}
		results := []webhookResult{
			{seq: 0, api: up, sent: begin, latency: time.Second, status: 202},
			{seq: 1, api: up, sent: begin, latency: 2 * time.Second, status: 503},
			{seq: 2, api: killed, sent: begin, latency: 2 * time.Second, err: os.ErrClosed}, // cut by the kill
			{seq: 3, api: up, sent: begin, latency: 6 * time.Second, status: 202},
			{seq: 4, api: up, sent: begin, latency: time.Second, status: 500},
			{seq: 5, api: up, sent: begin, latency: 30 * time.Second, err: os.ErrDeadlineExceeded},
		}
		c := s.checkAnswered(results)
		assert.Equal(t, "2 of 5: 1 other answers, 1 unanswered, 1 late", c.figure)
		require.Len(t, c.failed, 3)
		assert.Contains(t, c.failed[0], "request 4 to api-2 at +0.0s: answered 500 after 1s")
		assert.Contains(t, c.failed[1], "request 5 to api-2 at +0.0s: no answer after 30s")
		assert.Contains(t, c.failed[2], "request 3 to api-2 at +0.0s: 202 after 6s")
	})
}
