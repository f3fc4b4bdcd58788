package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/attune-go/attune/broker"
	"github.com/attune-go/attune/broker/membroker"
	"github.com/attune-go/attune/modules/api"
	"github.com/attune-go/attune/store"
	"github.com/attune-go/attune/store/storetest"
)

// newInquiryServer is the API on a database holding ops.ask, an action of the inquiry runner.
func newInquiryServer(t *testing.T) (server, *recorder) {
	t.Helper()
	s := storetest.NewStore(t)
	_, err := s.PackRegister(context.Background(), store.PackRegistration{
		Pack:    store.Pack{Ref: "ops", Path: "/packs/ops"},
		Actions: []store.Action{{Ref: "ops.ask", RunnerType: "inquiry", OutputFormat: "json", TimeoutSeconds: 30, Enabled: true}},
	})
	require.NoError(t, err)
	rec := &recorder{Broker: membroker.New(broker.Options{})}
	return startAPI(t, s, rec, api.Config{}), rec
}

// ask starts an inquiry as the executor would, and returns its path.
func (s server) ask(roles, users []string, schema string) (store.Inquiry, string) {
	s.t.Helper()
	ctx := context.Background()
	c, err := s.s.ExecutionCreateOne(ctx, store.ExecutionCreateParams{ActionRef: "ops.ask", Parameters: json.RawMessage(`{}`)})
	require.NoError(s.t, err)
	inq, _, ok, err := s.s.InquiryStart(ctx, store.InquiryStartParams{Execution: c.Execution.ID, Prompt: "go?",
		Schema: json.RawMessage(schema), Roles: roles, Users: users, Timeout: time.Hour})
	require.NoError(s.t, err)
	require.True(s.t, ok)
	return inq, "/inquiries/" + strconv.FormatInt(inq.ID, 10)
}

const approvalSchema = `{"type": "object", "required": ["approved"], "properties": {"approved": {"type": "boolean"}}}`

// Who may answer is the inquiry's to say: with neither roles nor users, any operator (a viewer
// is refused); with users, those identities and admins alone, a viewer among them included.
// An answer that breaks the schema is 400 naming the path; a second answer is 409; the answer
// ends the execution with the answer as its result, and its completion goes to the executors.
func TestInquiryRespond(t *testing.T) {
	t.Parallel()
	s, rec := newInquiryServer(t)
	operator := s.as(s.newIdentity("olga", "operator"))
	viewer := s.as(s.newIdentity("vera", "viewer"))

	inq, path := s.ask(nil, nil, approvalSchema)
	list := viewer.data(http.StatusOK, http.MethodGet, path, "")
	require.Equal(t, "pending", list["status"])
	require.Equal(t, "go?", list["prompt"])

	msg := viewer.fail(http.StatusForbidden, "forbidden", http.MethodPost, path+"/respond", `{"response": {"approved": true}}`)
	require.Contains(t, msg, "may be answered by operators and admins; vera is viewer")
	msg = operator.fail(http.StatusBadRequest, "bad_request", http.MethodPost, path+"/respond", `{"response": {"approved": "yes"}}`)
	require.Contains(t, msg, "response.approved: got string, want boolean")
	msg = operator.fail(http.StatusBadRequest, "bad_request", http.MethodPost, path+"/respond", `{"response": {}}`)
	require.Contains(t, msg, "response: missing property 'approved'")
	msg = operator.fail(http.StatusBadRequest, "bad_request", http.MethodPost, path+"/respond", `{"approved": true}`)
	require.Contains(t, msg, `unknown field "approved"`)
	msg = operator.fail(http.StatusBadRequest, "bad_request", http.MethodPost, path+"/respond", `{}`)
	require.Contains(t, msg, "response: required")
	msg = operator.fail(http.StatusBadRequest, "bad_request", http.MethodPost, path+"/respond",
		`{"response": {"approved": true, "note": "\u0061ttune:sealed:v1:k0123456789ab:c2VhbGVk~"}}`)
	require.Contains(t, msg, "response: holds a sealed value")
	got, err := s.s.InquiryGet(context.Background(), inq.ID)
	require.NoError(t, err)
	require.Equal(t, store.InquiryPending, got.Status, "nothing was recorded")

	answered := operator.data(http.StatusOK, http.MethodPost, path+"/respond", `{"response": {"approved": true}}`)
	require.Equal(t, "responded", answered["status"])
	require.Equal(t, "olga", answered["responded_by"])
	require.Equal(t, map[string]any{"approved": true}, answered["response"])
	exec, err := s.s.ExecutionGet(context.Background(), inq.Execution)
	require.NoError(t, err)
	require.Equal(t, store.ExecutionCompleted, exec.Status)
	require.JSONEq(t, `{"approved": true}`, string(exec.Result))
	require.Eventually(t, func() bool { return rec.completed(inq.Execution) }, 10*time.Second, 10*time.Millisecond,
		"the answer's completion was announced")

	msg = s.fail(http.StatusConflict, "conflict", http.MethodPost, path+"/respond", `{"response": {"approved": false}}`)
	require.Contains(t, msg, "already responded")

	named, namedPath := s.ask(nil, []string{"vera"}, `{"type": "string"}`)
	msg = operator.fail(http.StatusForbidden, "forbidden", http.MethodPost, namedPath+"/respond", `{"response": "ok"}`)
	require.Contains(t, msg, "may be answered by users vera (and admins); olga is operator")
	viewer.data(http.StatusOK, http.MethodPost, namedPath+"/respond", `{"response": "ok"}`)

	_, rolePath := s.ask([]string{"viewer"}, nil, `{}`)
	viewer.data(http.StatusOK, http.MethodPost, rolePath+"/respond", `{"response": 42}`)

	status, out := viewer.do(http.MethodGet, "/inquiries?status=responded", "")
	require.Equal(t, http.StatusOK, status, out)
	require.Len(t, out["data"], 3)
	status, out = viewer.do(http.MethodGet, "/inquiries?execution_id="+strconv.FormatInt(named.Execution, 10), "")
	require.Equal(t, http.StatusOK, status, out)
	require.Len(t, out["data"], 1)
	s.fail(http.StatusBadRequest, "bad_request", http.MethodGet, "/inquiries?status=waiting", "")
	s.fail(http.StatusNotFound, "not_found", http.MethodPost, "/inquiries/999999/respond", `{"response": {}}`)
}

// An inquiry whose execution is being cancelled, or that was cancelled, takes no answer.
func TestInquiryRespondAfterCancel(t *testing.T) {
	t.Parallel()
	s, _ := newInquiryServer(t)
	inq, path := s.ask(nil, nil, `{}`)
	s.data(http.StatusAccepted, http.MethodPost, idPath(inq.Execution, "/cancel"), "")
	msg := s.fail(http.StatusConflict, "conflict", http.MethodPost, path+"/respond", `{"response": {}}`)
	require.Contains(t, msg, "canceling")
	_, _, _, err := s.s.InquiryCancel(context.Background(), inq.ID)
	require.NoError(t, err)
	msg = s.fail(http.StatusConflict, "conflict", http.MethodPost, path+"/respond", `{"response": {}}`)
	require.Contains(t, msg, "already cancelled")
}

// completed reports whether the completion of execution id was published.
func (r *recorder) completed(id int64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, m := range r.msgs {
		if m.Type != broker.TypeExecutionCompleted {
			continue
		}
		if p, err := broker.Decode[broker.ExecutionCompleted](m); err == nil && p.ExecutionID == id {
			return true
		}
	}
	return false
}
