package app_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// A policy's retry repeats a failing action until its attempts run out, each attempt an
// execution of its own linked to the first, and execution show lists them.
func TestRetryRunsEveryAttempt(t *testing.T) {
	t.Parallel()
	p := startPipeline(t, nil)
	code, body := p.post(t, "/api/v1/policies", map[string]any{"ref": "demo.again", "action_ref": "demo.fail",
		"retry": map[string]any{"max_attempts": 3, "on": []string{"failed"}, "delay_seconds": 1, "backoff": "exponential"}})
	require.Equal(t, http.StatusCreated, code, body)

	code, body = p.post(t, "/api/v1/executions/execute", map[string]any{"action_ref": "demo.fail"})
	require.Equal(t, http.StatusCreated, code, body)
	first := id(t, data(t, body), "id")
	var attempts []any
	require.Eventually(t, func() bool {
		_, body := p.get(t, fmt.Sprintf("/api/v1/executions/%d", first))
		attempts = data(t, body)["attempts"].([]any)
		if len(attempts) < 3 {
			return false
		}
		for _, a := range attempts {
			if a.(map[string]any)["status"] != "failed" {
				return false
			}
		}
		return true
	}, 60*time.Second, 50*time.Millisecond, "three failed attempts: %v", attempts)
	last := int64(attempts[2].(map[string]any)["id"].(float64))
	exec := p.waitExecution(t, last)
	require.Equal(t, 3.0, exec["attempt"])
	require.Equal(t, float64(first), exec["retry_of"])
	require.Nil(t, exec["retry_at"], "no fourth attempt is planned")

	out, errOut, code2 := p.cli(t, "execution", "show", fmt.Sprint(first))
	require.Zero(t, code2, errOut)
	require.Contains(t, out, "ATTEMPT")
	lines := strings.Split(strings.TrimSpace(out[strings.Index(out, "ATTEMPT"):]), "\n")
	require.Len(t, lines, 4, "a header and the three attempts:\n%s", out)
	for i, line := range lines[1:] {
		require.True(t, strings.HasPrefix(line, fmt.Sprint(i+1)), line)
		require.Contains(t, line, "failed")
	}
}
