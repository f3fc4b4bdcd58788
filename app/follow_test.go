package app_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// Notifications are best effort, so following an execution must not depend on them. Against a
// stand-in API whose stream never tells anything: execution 1's stream drops at once and the
// follower opens it again and reads the execution; execution 2's stays open and silent, and
// the follower's periodic read finds the end. Both end as they should, and the stream is
// opened with the caller's token, as every call is.
func TestFollowWithoutNotifications(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	reads := map[string]int{}
	streams := map[string]int{}
	var auth []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case r.URL.Path == "/api/v1/stream":
			id := r.URL.Query().Get("execution_id")
			streams[id]++
			auth = append(auth, r.Header.Get("Authorization"))
			w.Header().Set("Content-Type", "text/event-stream")
			w.WriteHeader(http.StatusOK)
			_, _ = io.WriteString(w, ": stream open\n\n")
			w.(http.Flusher).Flush()
			if id == "2" || streams[id] > 1 {
				mu.Unlock()
				<-r.Context().Done() // silent until the client goes
				mu.Lock()
			}
		case strings.HasPrefix(r.URL.Path, "/api/v1/executions/"):
			id := strings.TrimPrefix(r.URL.Path, "/api/v1/executions/")
			reads[id]++
			status, result := "running", "null"
			if reads[id] > 1 {
				status, result = "completed", `{"stdout": "done `+id+`\n"}`
			}
			_, _ = fmt.Fprintf(w, `{"data": {"id": %s, "action_ref": "demo.hello", "status": %q, "result": %s, "updated": "2026-11-23T09:00:00Z"}}`, id, status, result)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)

	for _, id := range []string{"1", "2"} {
		stdout, stderr, code := runAttuneEnv(t, []string{"ATTUNE_TOKEN=tok"}, "execution", "tail", id, "--api-url", srv.URL)
		require.Equal(t, 0, code, stderr)
		lines := strings.Split(stdout, "\n")
		require.Len(t, lines, 4, stdout)
		require.True(t, strings.HasSuffix(lines[0], "  running"), stdout)
		require.True(t, strings.HasSuffix(lines[1], "  completed"), stdout)
		require.Equal(t, "done "+id, lines[2])
	}
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, 2, streams["1"], "execution 1's stream was opened again after it dropped")
	require.Equal(t, 1, streams["2"])
	require.Equal(t, []string{"Bearer tok", "Bearer tok", "Bearer tok"}, auth, "the stream carries the token")
}

// A follower whose reads are refused (a token revoked while it waited) says so and stops,
// rather than ask again every few seconds for ever.
func TestFollowStopsWhenRefused(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	reads := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case r.URL.Path == "/api/v1/stream":
			w.Header().Set("Content-Type", "text/event-stream")
			w.WriteHeader(http.StatusOK)
			_, _ = io.WriteString(w, ": stream open\n\n")
			w.(http.Flusher).Flush()
			mu.Unlock()
			<-r.Context().Done()
			mu.Lock()
		case strings.HasPrefix(r.URL.Path, "/api/v1/executions/"):
			reads++
			if reads == 1 {
				_, _ = io.WriteString(w, `{"data": {"id": 1, "action_ref": "demo.hello", "status": "running", "updated": "2026-11-23T09:00:00Z"}}`)
				return
			}
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = io.WriteString(w, `{"error": {"code": "unauthorized", "message": "invalid API token: unknown, revoked or expired"}}`)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	stdout, stderr, code := runAttuneEnv(t, []string{"ATTUNE_TOKEN=atn_tok"}, "execution", "tail", "1", "--api-url", srv.URL)
	require.Equal(t, 1, code, stdout)
	require.Contains(t, requireOneErrorLine(t, stderr), "invalid API token: unknown, revoked or expired (401 Unauthorized)")
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, 2, reads, "no read after the refusal")
}
