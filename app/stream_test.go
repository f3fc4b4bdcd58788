package app_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/attune-go/attune/store"
)

// streamEvent is one event read off the live stream.
type streamEvent struct {
	name string
	data map[string]any
}

// liveStream reads GET /api/v1/stream in the background.
type liveStream struct {
	t      *testing.T
	events chan streamEvent
	ended  chan struct{}
}

// stream opens the process's live stream with query (such as "execution_id=3", or "") and
// returns once the server has subscribed it.
func (p *process) stream(t *testing.T, query string) *liveStream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.addr+"/api/v1/stream?"+query, nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+p.authToken(t))
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	s := &liveStream{t: t, events: make(chan streamEvent, 4096), ended: make(chan struct{})}
	go func() {
		defer close(s.ended)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		var name string
		for sc.Scan() {
			line := sc.Text()
			if v, ok := strings.CutPrefix(line, "event: "); ok {
				name = v
			}
			if v, ok := strings.CutPrefix(line, "data: "); ok {
				var data map[string]any
				if json.Unmarshal([]byte(v), &data) == nil {
					s.events <- streamEvent{name: name, data: data}
				}
			}
		}
	}()
	return s
}

// next returns the next event that keep accepts.
func (s *liveStream) next(keep func(streamEvent) bool) streamEvent {
	s.t.Helper()
	deadline := time.After(60 * time.Second)
	for {
		select {
		case ev := <-s.events:
			if keep(ev) {
				return ev
			}
		case <-s.ended:
			s.t.Fatal("the stream ended")
		case <-deadline:
			s.t.Fatal("no such event on the stream within a minute")
		}
	}
}

func executionEvent(id int64) func(streamEvent) bool {
	return func(ev streamEvent) bool { return ev.name == "execution" && ev.data["id"] == float64(id) }
}

// follow collects the statuses execution id goes through on s until it ends, and checks that
// none moves backwards.
func (s *liveStream) follow(id int64) []string {
	s.t.Helper()
	var seen []string
	for len(seen) == 0 || !store.IsTerminal(seen[len(seen)-1]) {
		status := s.next(executionEvent(id)).data["status"].(string)
		if len(seen) > 0 {
			require.Greater(s.t, store.ExecutionStatusRank(status), store.ExecutionStatusRank(seen[len(seen)-1]),
				"execution %d moved from %s back to %s on the stream", id, seen[len(seen)-1], status)
		}
		seen = append(seen, status)
	}
	return seen
}

// The test: with every role in its own process on RabbitMQ and two api replicas, a
// client of api B sees an execution started through api A go from requested to completed, in
// order, never backwards, though each status was committed by another process (A, the
// executor, the worker). Events fired through A reach B's stream too; the CLI follows
// executions through B; and B stops cleanly with a stream open.
func TestStreamAcrossReplicas(t *testing.T) {
	t.Parallel()
	start := splitRoles(t)
	apiA, apiB := start("api"), start("api")
	start("sensor")
	start("executor")
	start("worker")

	// One demo.slow at a time, and one holding the slot: the execution followed waits
	// requested in its policy's queue until the test lets it go, so its first status is seen
	// on B before anything else can happen to it.
	code, body := apiA.post(t, "/api/v1/policies", map[string]any{"ref": "demo.one_slow", "action_ref": "demo.slow", "concurrency": map[string]any{"limit": 1}})
	require.Equal(t, http.StatusCreated, code, body)
	_, body = apiA.post(t, "/api/v1/executions/execute", map[string]any{"action_ref": "demo.slow", "parameters": map[string]any{"seconds": 60}})
	blocker := id(t, data(t, body), "id")
	slow := apiB.stream(t, "action_ref=demo.slow")
	require.Eventually(t, func() bool {
		_, body := apiA.get(t, fmt.Sprintf("/api/v1/executions/%d", blocker))
		return data(t, body)["status"] == "running"
	}, 60*time.Second, 20*time.Millisecond, "the blocker never ran")

	followed := apiB.stream(t, "")
	_, body = apiA.post(t, "/api/v1/executions/execute", map[string]any{"action_ref": "demo.slow", "parameters": map[string]any{"seconds": 0}})
	target := id(t, data(t, body), "id")
	first := followed.next(executionEvent(target))
	require.Equal(t, "requested", first.data["status"])
	require.Equal(t, "demo.slow", first.data["action_ref"])

	code, _ = apiA.post(t, fmt.Sprintf("/api/v1/executions/%d/cancel", blocker), nil)
	require.Equal(t, http.StatusAccepted, code)
	statuses := append([]string{"requested"}, followed.follow(target)...)
	require.Equal(t, "completed", statuses[len(statuses)-1], statuses)
	require.Contains(t, statuses, "running", "the worker's change reached B")

	// The filtered stream saw both executions of demo.slow, and the blocker end cancelled.
	blocked := slow.follow(blocker)
	require.Equal(t, "cancelled", blocked[len(blocked)-1], blocked)

	// An event fired through A, and the execution its rule starts, reach B.
	events := apiB.stream(t, "")
	code, body = apiA.post(t, "/api/v1/webhooks/demo", map[string]any{"name": "Stream", "kind": "order"})
	require.Equal(t, http.StatusAccepted, code, body)
	eventID := id(t, data(t, body), "event_id")
	ev := events.next(func(ev streamEvent) bool { return ev.name == "event" && ev.data["id"] == float64(eventID) })
	require.Equal(t, "core.webhook", ev.data["trigger_ref"])

	// The CLI through B: execute --wait follows to the end, tail shows what has ended.
	done := cliJSON(t, apiB, 0, "action", "execute", "demo.hello", "--param", "name=Replica", "--wait")
	require.Equal(t, "completed", done["status"])
	stdout, stderr, code := apiB.cli(t, "execution", "tail", strconv.FormatInt(target, 10))
	require.Equal(t, 0, code, stderr)
	require.Regexp(t, `^\d\d:\d\d:\d\d\.\d{3}  completed\n$`, stdout)
	failed := cliJSON(t, apiB, 1, "action", "execute", "demo.fail", "--wait")
	require.Equal(t, "failed", failed["status"])

	// B stops with streams open: they end, and the shutdown is a clean one.
	exit, _ := apiB.stop(t, syscall.SIGTERM, 30*time.Second)
	require.Equal(t, 0, exit, "api B did not stop cleanly with streams open")
	for _, s := range []*liveStream{slow, followed, events} {
		select {
		case <-s.ended:
		case <-time.After(10 * time.Second):
			t.Fatal("a stream stayed open after its server stopped")
		}
	}
}
