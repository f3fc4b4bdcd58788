package api

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
)

// Webhook payloads are stored and served, so headers that carry credentials are dropped,
// whatever the sender calls them.
func TestWebhookHeadersDropCredentials(t *testing.T) {
	t.Parallel()
	h := http.Header{}
	for _, name := range []string{"Authorization", "Cookie", "X-Gitlab-Token", "X-Api-Key", "X-Hub-Signature-256", "X-Webhook-Secret", "Proxy-Authorization"} {
		h.Set(name, "s3cret")
	}
	h.Set("Content-Type", "application/json")
	h.Set("X-Github-Event", "push")
	require.Equal(t, map[string]any{"Content-Type": "application/json", "X-Github-Event": "push"}, webhookHeaders(h))
}
