package api_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/attune-go/attune/modules/api"
	"github.com/attune-go/attune/store"
)

// listenOn makes an enabled rule of the demo pack listen on webhook url, and returns its ref.
func listenOn(t *testing.T, s server, url string) string {
	t.Helper()
	ref := "demo.on_" + strings.ReplaceAll(url, "-", "_")
	s.data(http.StatusCreated, http.MethodPost, "/rules", fmt.Sprintf(`{"ref": %q, "trigger_ref": "core.webhook",
		"trigger_params": {"url": %q}, "action_ref": "demo.run"}`, ref, url))
	return ref
}

// coreRuleOn writes an enabled core rule listening on webhook url straight into the store,
// which no live stream hears of.
func coreRuleOn(t *testing.T, s server, url string) {
	t.Helper()
	_, err := s.s.RuleCreate(t.Context(), store.Rule{Ref: "core.on_" + url, PackRef: "core", TriggerRef: "core.webhook",
		TriggerParams: json.RawMessage(fmt.Sprintf(`{"url": %q}`, url)), ActionRef: "core.noop", Enabled: true})
	require.NoError(t, err)
}

// postSigned posts {"n": 1} to webhook url signed with secret, and returns the status.
func postSigned(t *testing.T, s server, url, secret string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, s.base+"/webhooks/"+url, strings.NewReader(`{"n": 1}`))
	require.NoError(t, err)
	req.Header.Set("X-Hub-Signature-256", sign(secret, `{"n": 1}`))
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	return resp.StatusCode
}

// A webhook url is taken while an enabled rule listens on it or while it is registered (has
// a secret); otherwise it is 404, naming it, from the moment the rule is disabled or deleted.
func TestWebhookForNobodyIsNotFound(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	registerCore(t, s)
	post := func(url string) (int, string) {
		t.Helper()
		status, out := s.as("").do(http.MethodPost, "/webhooks/"+url, `{"n": 1}`)
		if status >= 400 {
			return status, out["error"].(map[string]any)["message"].(string)
		}
		return status, ""
	}
	status, msg := post("deploys")
	require.Equal(t, http.StatusNotFound, status)
	require.Contains(t, msg, "webhook deploys: no enabled rule listens on it")

	ref := listenOn(t, s, "deploys")
	status, _ = post("deploys")
	require.Equal(t, http.StatusAccepted, status, "an enabled rule listens")
	status, _ = post("deploy")
	require.Equal(t, http.StatusNotFound, status, "only its own url")

	s.data(http.StatusOK, http.MethodPost, "/rules/"+ref+"/disable", "")
	status, _ = post("deploys")
	require.Equal(t, http.StatusNotFound, status, "disabled: at once")
	s.data(http.StatusOK, http.MethodPost, "/rules/"+ref+"/enable", "")
	status, _ = post("deploys")
	require.Equal(t, http.StatusAccepted, status, "enabled again")
	status, _ = s.do(http.MethodDelete, "/rules/"+ref, "")
	require.Equal(t, http.StatusNoContent, status)
	status, _ = post("deploys")
	require.Equal(t, http.StatusNotFound, status, "deleted: at once")

	// Registered, with no rule yet: taken, signed.
	const secret = "a-webhook-secret-of-enough-length"
	s.data(http.StatusCreated, http.MethodPut, "/webhook-secrets/deploys", `{"secret": "`+secret+`"}`)
	require.Equal(t, http.StatusAccepted, postSigned(t, s, "deploys", secret), "a registered url is taken")
	status, _ = post("deploys")
	require.Equal(t, http.StatusUnauthorized, status, "and still takes signed bodies only")
}

// Past its rate a url gets 429 with Retry-After; other urls keep their own buckets.
func TestWebhookRateLimit(t *testing.T) {
	t.Parallel()
	s := newServerWith(t, api.Config{WebhookRate: api.WebhookRate{PerSecond: 0.01, Burst: 3}})
	registerCore(t, s)
	listenOn(t, s, "busy")
	listenOn(t, s, "quiet")

	for i := range 3 {
		status, out := s.as("").do(http.MethodPost, "/webhooks/busy", `{}`)
		require.Equal(t, http.StatusAccepted, status, "within the burst: %d %v", i, out)
	}
	req, err := http.NewRequest(http.MethodPost, s.base+"/webhooks/busy", strings.NewReader(`{}`))
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
	after, err := strconv.Atoi(resp.Header.Get("Retry-After"))
	require.NoError(t, err)
	require.InDelta(t, 100, after, 1, "one token comes back in 1/0.01 s")
	msg := s.as("").fail(http.StatusTooManyRequests, "rate_limited", http.MethodPost, "/webhooks/busy", `{}`)
	require.Contains(t, msg, "webhook busy: over its rate of 0.01 a second (burst 3)")

	status, out := s.as("").do(http.MethodPost, "/webhooks/quiet", `{}`)
	require.Equal(t, http.StatusAccepted, status, "another url has its own bucket: %v", out)
	status, _ = s.as("").do(http.MethodPost, "/webhooks/nobody", `{}`)
	require.Equal(t, http.StatusNotFound, status, "a url nobody uses is refused before the limit")
}

// Posts that fail a url's signature spend none of its rate: its real sender is still taken.
func TestWebhookRateCountsSignedPostsOnly(t *testing.T) {
	t.Parallel()
	s := newServerWith(t, api.Config{WebhookRate: api.WebhookRate{PerSecond: 1.0 / 60, Burst: 1}})
	registerCore(t, s)
	const secret = "a-webhook-secret-of-enough-length"
	s.data(http.StatusCreated, http.MethodPut, "/webhook-secrets/signed", `{"secret": "`+secret+`"}`)

	status, _ := s.as("").do(http.MethodPost, "/webhooks/signed", `{"n": 1}`)
	require.Equal(t, http.StatusUnauthorized, status, "unsigned")
	require.Equal(t, http.StatusUnauthorized, postSigned(t, s, "signed", "not-the-secret-of-this-webhook-url"), "signed wrongly")
	require.Equal(t, http.StatusAccepted, postSigned(t, s, "signed", secret), "neither refused post took a token")
	require.Equal(t, http.StatusTooManyRequests, postSigned(t, s, "signed", secret), "the signed one did")
}
