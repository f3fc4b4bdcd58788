package api_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/attune-go/attune/modules/api"
)

// The routes that carry an action's parameters take a parameter of 1 MiB, which a shell
// action receives through a file; bodies past their bound, and other routes' past 1 MiB, are
// 413.
func TestParametersBodyLimit(t *testing.T) {
	t.Parallel()
	// Megabytes of JSON checked under the race detector on a busy machine take seconds of
	// CPU: the bound on an answer, a promise about a database that does not answer, is the
	// fault suite's (TestFaults, pgdown), and here would make this test a timing.
	s, _ := newRerunServerWith(t, api.Config{AnswerWithin: time.Minute})
	mib := strings.Repeat("x", 1<<20)

	exec := s.data(http.StatusCreated, http.MethodPost, "/executions/execute",
		`{"action_ref": "ops.deploy", "parameters": {"host": "a", "tag": "`+mib+`"}}`)
	require.Equal(t, mib, exec["parameters"].(map[string]any)["tag"])
	child := s.data(http.StatusCreated, http.MethodPost, executionPath(exec["id"], "/rerun"),
		`{"parameters": {"host": "`+mib+`"}}`)
	require.Equal(t, mib, child["parameters"].(map[string]any)["host"])
	require.Equal(t, mib, child["parameters"].(map[string]any)["tag"])

	over := strings.Repeat("x", 4<<20)
	require.Contains(t, s.fail(http.StatusRequestEntityTooLarge, "too_large", http.MethodPost, "/executions/execute",
		`{"action_ref": "ops.deploy", "parameters": {"host": "`+over+`"}}`), "request body over 4194304 bytes")
	require.Contains(t, s.fail(http.StatusRequestEntityTooLarge, "too_large", http.MethodPost, executionPath(exec["id"], "/rerun"),
		`{"parameters": {"host": "`+over+`"}}`), "request body over 4194304 bytes")
	require.Contains(t, s.fail(http.StatusRequestEntityTooLarge, "too_large", http.MethodPost, "/events",
		`{"trigger_ref": "core.webhook", "payload": {"body": "`+mib+`"}}`), "request body over 1048576 bytes")
}
