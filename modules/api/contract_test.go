package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/attune-go/attune/broker"
	"github.com/attune-go/attune/broker/membroker"
	"github.com/attune-go/attune/modules/api"
	"github.com/attune-go/attune/store"
	"github.com/attune-go/attune/store/storetest"
)

// probe is one request of a contract and the status it must get.
type probe struct {
	path, body string
	status     int
	// as sends another token than the admin's; off sends the request to a server with
	// authentication off.
	as  string
	off bool
	// stream reads no body: the answer is an endless event stream, of which the status and
	// the content type are the contract.
	stream bool
}

// contract is what one documented route promises, exercised against a real server: a good
// request, and a request for each refusal the OpenAPI document lists for it.
type contract struct {
	route  string // "METHOD /path" as the document names it
	probes []probe
}

// documentedRoute is one operation of the OpenAPI document as the contracts see it.
type documentedRoute struct {
	role     string // x-attune-role, or "" for an open route
	statuses []int  // the refusals it documents: 400, 401, 404, 409
	example  string // the path with every parameter filled in
}

// documentedRoutes reads the served OpenAPI document: every route, who may call it, and the
// refusals it promises. TestOpenAPIMatchesRoutes holds the document to the router.
func documentedRoutes(t *testing.T, s server) map[string]documentedRoute {
	t.Helper()
	resp, err := http.Get(s.base + "/openapi.json")
	require.NoError(t, err)
	defer resp.Body.Close()
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&doc))
	param := regexp.MustCompile(`\{[^}]+\}`)
	out := make(map[string]documentedRoute)
	for path, item := range doc.Paths {
		prefix := ""
		if _, ok := item["servers"]; ok {
			prefix = "/auth" // the only path items that leave /api/v1
		}
		for method, raw := range item {
			if method == "parameters" || method == "servers" {
				continue
			}
			var op struct {
				Role      string                     `json:"x-attune-role"`
				Responses map[string]json.RawMessage `json:"responses"`
			}
			require.NoError(t, json.Unmarshal(raw, &op), path)
			r := documentedRoute{role: op.Role, example: param.ReplaceAllString(path, "x")}
			for code := range op.Responses {
				n, err := strconv.Atoi(code)
				require.NoError(t, err, "%s %s: response %q", method, path, code)
				if slices.Contains([]int{400, 401, 404, 409}, n) {
					r.statuses = append(r.statuses, n)
				}
			}
			sort.Ints(r.statuses)
			out[strings.ToUpper(method)+" "+prefix+path] = r
		}
	}
	return out
}

// below is the role just under need, whose token a route must refuse with 403.
var below = map[string]string{"operator": "viewer", "admin": "operator"}

// Every route keeps its contract: a good request succeeds; a request without a token is 401
// and one with too small a role 403; and each refusal the document lists (bad input 400,
// missing 404, conflict 409) is produced by a real request. A route without a contract, or a
// documented refusal no probe produces, fails the test.
func TestContracts(t *testing.T) {
	s := newServer(t)
	f := newContractFixture(t, s)
	routes := documentedRoutes(t, s)
	contracts := f.contracts()

	var covered []string
	for _, c := range contracts {
		covered = append(covered, c.route)
	}
	var documented []string
	for route := range routes {
		documented = append(documented, route)
	}
	require.ElementsMatch(t, documented, covered, "every documented route has a contract, and only those")

	tokens := map[string]string{"viewer": f.viewer, "operator": f.operator}
	for _, c := range contracts {
		doc := routes[c.route]
		method, _, _ := strings.Cut(c.route, " ")
		t.Run(c.route, func(t *testing.T) {
			got := map[int]bool{}
			for i, p := range c.probes {
				target := s
				switch {
				case p.off:
					target = f.open
				case p.as != "":
					target = s.as(p.as)
				}
				path := p.path
				if p.stream {
					requireEventStream(t, target, path)
					got[http.StatusOK] = true
					continue
				}
				if strings.HasPrefix(c.route, method+" /auth/") {
					status, out := target.raw(method, target.root+path, target.token, p.body)
					require.Equal(t, p.status, status, "probe %d %s: %v", i, path, out)
				} else {
					status, out := target.do(method, path, p.body)
					require.Equal(t, p.status, status, "probe %d %s %s: %v", i, method, path, out)
					if status >= 400 {
						require.Contains(t, out, "error", "probe %d: the error shape", i)
					}
				}
				got[p.status] = true
			}
			require.True(t, got[http.StatusOK] || got[http.StatusCreated] || got[http.StatusAccepted] || got[http.StatusNoContent],
				"%s: no good request", c.route)
			for _, want := range doc.statuses {
				if want == http.StatusUnauthorized && doc.role != "" {
					continue // every gated route is probed for that below
				}
				require.True(t, got[want], "%s documents %d but no probe gets it", c.route, want)
			}
			if doc.role == "" {
				return
			}
			example := doc.example
			status, out := s.as("").do(method, example, "{}")
			require.Equal(t, http.StatusUnauthorized, status, "%s without a token: %v", c.route, out)
			if lower, ok := below[doc.role]; ok {
				status, out := s.as(tokens[lower]).do(method, example, "{}")
				require.Equal(t, http.StatusForbidden, status, "%s as %s: %v", c.route, lower, out)
			}
		})
	}
}

// requireEventStream opens path and requires a 200 text/event-stream, then hangs up.
func requireEventStream(t *testing.T, s server, path string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.base+path, nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+s.token)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, path)
	require.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"), path)
}

// contractFixture is what the contracts act on: the demo and ops packs, the core pack, a
// viewer and an operator, a rule, an event with its enforcement, an execution, a running
// workflow, a live worker and a dead one, an API token and a signed webhook url.
type contractFixture struct {
	s                  server
	open               server // the same database with authentication off
	opsDir, scratchDir string
	viewer, operator   string
	refresh            string
	eventID, enfID     string
	// traceID is the event's trace.
	traceID         string
	execID, tokenID string
	// offExecID is an execution of ops.off, an action disabled since it ran.
	offExecID string
	// workflowID is a running workflow's execution.
	workflowID string
	// inquiryID is a pending inquiry, of an execution of ops.ask.
	inquiryID string
}

func newContractFixture(t *testing.T, s server) *contractFixture {
	t.Helper()
	ctx := context.Background()
	f := &contractFixture{s: s, opsDir: withOps(t, s), scratchDir: t.TempDir()}
	require.NoError(t, os.WriteFile(filepath.Join(f.scratchDir, "pack.yaml"), []byte("ref: scratch\n"), 0o644))
	f.open = startAPI(t, s.s, membroker.New(broker.Options{}), api.Config{AuthDisabled: true})
	f.viewer = s.newIdentity("vera", "viewer")
	f.operator = s.newIdentity("otto", "operator")
	_, out := s.raw(http.MethodPost, s.root+"/auth/login", "", `{"login": "admin", "password": "`+adminPassword+`"}`)
	f.refresh = out["refresh_token"].(string)

	s.data(http.StatusCreated, http.MethodPost, "/actions", `{"ref": "ops.run", "runner_type": "shell", "entry_point": "run.sh"}`)
	s.data(http.StatusCreated, http.MethodPost, "/rules", `{"ref": "ops.on_hook", "trigger_ref": "core.webhook", "trigger_params": {"url": "hook"}, "action_ref": "ops.run"}`)
	ev, err := s.s.EventInsert(ctx, store.EventInsertParams{TriggerRef: "core.webhook", Payload: json.RawMessage(`{"url": "hook"}`)})
	require.NoError(t, err)
	enfs, err := s.s.EventEnforce(ctx, ev.ID, []store.EnforcementMatch{{RuleRef: "ops.on_hook"}})
	require.NoError(t, err)
	f.eventID, f.enfID = strconv.FormatInt(ev.ID, 10), strconv.FormatInt(enfs[0].ID, 10)
	f.traceID = ev.Trace()
	exec := s.data(http.StatusCreated, http.MethodPost, "/executions/execute", `{"action_ref": "demo.free"}`)
	f.execID = strconv.Itoa(int(exec["id"].(float64)))
	s.data(http.StatusCreated, http.MethodPost, "/actions", `{"ref": "ops.off", "runner_type": "noop"}`)
	off := s.data(http.StatusCreated, http.MethodPost, "/executions/execute", `{"action_ref": "ops.off"}`)
	f.offExecID = strconv.Itoa(int(off["id"].(float64)))
	s.data(http.StatusOK, http.MethodPut, "/actions/ops.off", `{"runner_type": "noop", "enabled": false}`)
	f.tokenID = strconv.Itoa(int(s.data(http.StatusCreated, http.MethodPost, "/tokens", `{"name": "spare"}`)["id"].(float64)))
	_, err = s.s.PackRegister(ctx, store.PackRegistration{Pack: store.Pack{Ref: "flows"}, Actions: []store.Action{storetest.WorkflowAction("flows.run", "")}})
	require.NoError(t, err)
	f.workflowID = strconv.FormatInt(storetest.FillWorkflow(t, s.s, storetest.Workflow{ActionRef: "flows.run"}).ID, 10)
	s.data(http.StatusCreated, http.MethodPost, "/actions", `{"ref": "ops.ask", "runner_type": "inquiry"}`)
	ask, err := s.s.ExecutionCreateOne(ctx, store.ExecutionCreateParams{ActionRef: "ops.ask"})
	require.NoError(t, err)
	inq, _, _, err := s.s.InquiryStart(ctx, store.InquiryStartParams{Execution: ask.Execution.ID, Prompt: "go?", Timeout: time.Hour})
	require.NoError(t, err)
	f.inquiryID = strconv.FormatInt(inq.ID, 10)

	_, err = s.s.PackRegister(ctx, store.PackRegistration{Pack: store.Pack{Ref: "watch"},
		Sensors: []store.Sensor{{Ref: "watch.poll", EntryPoint: "poll.sh", TriggerRefs: []string{"core.webhook"}, Enabled: true}}})
	require.NoError(t, err)

	for _, name := range []string{"alive", "gone"} {
		_, err := s.s.WorkerRegister(ctx, store.WorkerRegisterParams{Name: name, Runners: []string{"shell"}, Concurrency: 1, Host: "h", PID: 1})
		require.NoError(t, err)
	}
	_, err = s.s.Pool().Exec(ctx, `UPDATE attune.worker SET last_heartbeat = now() - interval '1 hour', status = 'inactive' WHERE name = 'gone'`)
	require.NoError(t, err)
	s.data(http.StatusCreated, http.MethodPut, "/webhook-secrets/signed", `{"secret": "a-secret-of-some-length"}`)
	return f
}

func (f *contractFixture) contracts() []contract {
	const (
		ok, created, accepted, gone = http.StatusOK, http.StatusCreated, http.StatusAccepted, http.StatusNoContent
		bad, unauth, missing, clash = http.StatusBadRequest, http.StatusUnauthorized, http.StatusNotFound, http.StatusConflict
	)
	list := func(route, path string) contract {
		return contract{route, []probe{{path: path, status: ok}, {path: path + "?page=0", status: bad},
			{path: path + "?page=9223372036854775807", status: bad}}}
	}
	return []contract{
		{"POST /auth/login", []probe{
			{path: "/auth/login", body: `{"login": "admin", "password": "` + adminPassword + `"}`, status: ok},
			{path: "/auth/login", body: `{"login": "admin"}`, status: bad},
			{path: "/auth/login", body: `{"login": "admin", "password": "wrong-password"}`, status: unauth}}},
		{"POST /auth/refresh", []probe{
			{path: "/auth/refresh", body: `{"refresh_token": "` + f.refresh + `"}`, status: ok},
			{path: "/auth/refresh", body: `{}`, status: bad},
			{path: "/auth/refresh", body: `{"refresh_token": "not-a-token"}`, status: unauth}}},
		{"GET /openapi.json", []probe{{path: "/openapi.json", status: ok}}},
		{"GET /whoami", []probe{{path: "/whoami", status: ok}}},
		{"GET /dashboard", []probe{{path: "/dashboard", status: ok}}},

		list("GET /packs", "/packs"),
		{"GET /packs/{ref}", []probe{{path: "/packs/demo", status: ok}, {path: "/packs/nope", status: missing}}},
		{"POST /packs", []probe{
			{path: "/packs", body: tarGz(f.s.t, tarEntry{name: "pack.yaml", body: "ref: uploaded\n"}), status: ok},
			{path: "/packs", body: tarGz(f.s.t, tarEntry{name: "../pack.yaml", body: "ref: uploaded\n"}), status: bad}}},
		{"POST /packs/register", []probe{
			{path: "/packs/register", body: `{"path": "` + f.scratchDir + `"}`, status: ok},
			{path: "/packs/register", body: `{"path": ""}`, status: bad}}},
		{"DELETE /packs/{ref}", []probe{
			{path: "/packs/scratch", status: gone}, {path: "/packs/scratch", status: missing}, {path: "/packs/core", status: clash}}},

		list("GET /actions", "/actions"),
		{"GET /actions/{ref}", []probe{{path: "/actions/demo.run", status: ok}, {path: "/actions/demo.nope", status: missing}}},
		{"GET /actions/{ref}/queue-stats", []probe{
			{path: "/actions/demo.other/queue-stats", status: ok}, {path: "/actions/demo.nope/queue-stats", status: missing}}},
		{"POST /actions", []probe{
			{path: "/actions", body: `{"ref": "ops.extra", "runner_type": "noop"}`, status: created},
			{path: "/actions", body: `{"ref": "ops.bad", "runner_type": "bogus"}`, status: bad},
			{path: "/actions", body: `{"ref": "ops.extra", "runner_type": "noop"}`, status: clash}}},
		{"PUT /actions/{ref}", []probe{
			{path: "/actions/ops.extra", body: `{"runner_type": "noop", "description": "changed"}`, status: ok},
			{path: "/actions/ops.extra", body: `{"runner_type": "bogus"}`, status: bad},
			{path: "/actions/ops.nope", body: `{"runner_type": "noop"}`, status: missing},
			{path: "/actions/core.noop", body: `{"runner_type": "noop"}`, status: clash}}},
		{"DELETE /actions/{ref}", []probe{
			{path: "/actions/ops.extra", status: gone}, {path: "/actions/ops.extra", status: missing}, {path: "/actions/ops.run", status: clash}}},

		list("GET /triggers", "/triggers"),
		{"GET /triggers/{ref}", []probe{{path: "/triggers/core.webhook", status: ok}, {path: "/triggers/ops.nope", status: missing}}},
		{"POST /triggers", []probe{
			{path: "/triggers", body: `{"ref": "ops.alert", "output": {"host": {"type": "string"}}}`, status: created},
			{path: "/triggers", body: `{"ref": "ops.bad", "output": {"host": {"type": "text"}}}`, status: bad},
			{path: "/triggers", body: `{"ref": "ops.alert"}`, status: clash}}},
		{"PUT /triggers/{ref}", []probe{
			{path: "/triggers/ops.alert", body: `{"description": "changed"}`, status: ok},
			{path: "/triggers/ops.alert", body: `{"output": {"host": {"type": "text"}}}`, status: bad},
			{path: "/triggers/ops.nope", body: `{}`, status: missing},
			{path: "/triggers/core.webhook", body: `{}`, status: clash}}},
		{"DELETE /triggers/{ref}", []probe{
			{path: "/triggers/ops.alert", status: gone}, {path: "/triggers/ops.alert", status: missing}, {path: "/triggers/core.webhook", status: clash}}},

		list("GET /sensors", "/sensors"),
		{"GET /sensors/{ref}", []probe{{path: "/sensors/watch.poll", status: ok}, {path: "/sensors/watch.nope", status: missing}}},
		{"POST /sensors/{ref}/disable", []probe{{path: "/sensors/watch.poll/disable", status: ok, as: f.operator}, {path: "/sensors/watch.nope/disable", status: missing}}},
		{"POST /sensors/{ref}/enable", []probe{{path: "/sensors/watch.poll/enable", status: ok}, {path: "/sensors/watch.nope/enable", status: missing}}},

		list("GET /rules", "/rules"),
		{"GET /rules/{ref}", []probe{{path: "/rules/ops.on_hook", status: ok}, {path: "/rules/ops.nope", status: missing}}},
		{"POST /rules", []probe{
			{path: "/rules", body: `{"ref": "ops.on_other", "trigger_ref": "core.webhook", "trigger_params": {"url": "other"}, "action_ref": "ops.run"}`, status: created, as: f.operator},
			{path: "/rules", body: `{"ref": "ops.broken", "trigger_ref": "core.webhook", "trigger_params": {"url": "x"}, "action_ref": "ops.nope"}`, status: bad},
			{path: "/rules", body: `{"ref": "ops.on_other", "trigger_ref": "core.webhook", "trigger_params": {"url": "other"}, "action_ref": "ops.run"}`, status: clash}}},
		{"PUT /rules/{ref}", []probe{
			{path: "/rules/ops.on_other", body: `{"trigger_ref": "core.webhook", "trigger_params": {"url": "again"}, "action_ref": "ops.run"}`, status: ok},
			{path: "/rules/ops.on_other", body: `{"trigger_ref": "core.webhook", "trigger_params": {"port": 1}, "action_ref": "ops.run"}`, status: bad},
			{path: "/rules/ops.nope", body: `{"trigger_ref": "core.webhook", "trigger_params": {"url": "x"}, "action_ref": "ops.run"}`, status: missing}}},
		{"POST /rules/{ref}/disable", []probe{{path: "/rules/ops.on_other/disable", status: ok}, {path: "/rules/ops.nope/disable", status: missing}}},
		{"POST /rules/{ref}/enable", []probe{{path: "/rules/ops.on_other/enable", status: ok}, {path: "/rules/ops.nope/enable", status: missing}}},
		{"DELETE /rules/{ref}", []probe{{path: "/rules/ops.on_other", status: gone}, {path: "/rules/ops.on_other", status: missing}}},

		list("GET /events", "/events"),
		{"GET /events/{id}", []probe{{path: "/events/" + f.eventID, status: ok}, {path: "/events/x", status: bad}, {path: "/events/999999", status: missing}}},
		{"POST /events", []probe{
			{path: "/events", body: `{"trigger_ref": "core.webhook", "payload": {"url": "hook"}}`, status: accepted},
			{path: "/events", body: `{"trigger_ref": "core.nope", "payload": {}}`, status: bad}}},
		{"POST /webhooks/{url}", []probe{
			{path: "/webhooks/hook", body: `{"kind": "push"}`, status: accepted},
			{path: "/webhooks/hook", body: `not json`, status: bad},
			{path: "/webhooks/signed", body: `{}`, status: unauth},
			{path: "/webhooks/nobody", body: `{}`, status: missing}}},

		list("GET /enforcements", "/enforcements"),
		{"GET /enforcements/{id}", []probe{{path: "/enforcements/" + f.enfID, status: ok}, {path: "/enforcements/x", status: bad}, {path: "/enforcements/999999", status: missing}}},

		{"GET /executions", []probe{{path: "/executions", status: ok}, {path: "/executions?status=bogus", status: bad},
			{path: "/executions?requested_by=otto", status: ok}, {path: "/executions?requested_by=colour:red", status: bad}}},
		{"GET /executions/{id}", []probe{{path: "/executions/" + f.execID, status: ok}, {path: "/executions/x", status: bad}, {path: "/executions/999999", status: missing}}},
		{"POST /executions/execute", []probe{
			{path: "/executions/execute", body: `{"action_ref": "demo.free"}`, status: created},
			{path: "/executions/execute", body: `{}`, status: bad},
			{path: "/executions/execute", body: `{"action_ref": "demo.nope"}`, status: missing},
			{path: "/executions/execute", body: `{"action_ref": "ops.off"}`, status: clash}}},
		{"POST /executions/{id}/rerun", []probe{
			{path: "/executions/" + f.execID + "/rerun", status: created},
			{path: "/executions/x/rerun", status: bad},
			{path: "/executions/999999/rerun", status: missing},
			{path: "/executions/" + f.offExecID + "/rerun", status: clash}}},
		{"GET /traces/{id}", []probe{{path: "/traces/" + f.traceID, status: ok}, {path: "/traces/x", status: bad},
			{path: "/traces/00000000-0000-0000-0000-000000000000", status: missing}}},
		{"GET /inquiries", []probe{{path: "/inquiries", status: ok}, {path: "/inquiries?status=bogus", status: bad}}},
		{"GET /inquiries/{id}", []probe{{path: "/inquiries/" + f.inquiryID, status: ok}, {path: "/inquiries/x", status: bad}, {path: "/inquiries/999999", status: missing}}},
		{"POST /inquiries/{id}/respond", []probe{
			{path: "/inquiries/" + f.inquiryID + "/respond", body: `{"response": {}}`, status: ok},
			{path: "/inquiries/x/respond", body: `{"response": {}}`, status: bad},
			{path: "/inquiries/999999/respond", body: `{"response": {}}`, status: missing},
			{path: "/inquiries/" + f.inquiryID + "/respond", body: `{"response": {}}`, status: clash}}},
		{"POST /executions/{id}/cancel", []probe{
			{path: "/executions/" + f.execID + "/cancel", status: ok},
			{path: "/executions/x/cancel", status: bad},
			{path: "/executions/999999/cancel", status: missing},
			{path: "/executions/" + f.execID + "/cancel", status: clash}}},
		{"POST /executions/{id}/pause", []probe{
			{path: "/executions/" + f.workflowID + "/pause", status: accepted},
			{path: "/executions/x/pause", status: bad},
			{path: "/executions/999999/pause", status: missing},
			{path: "/executions/" + f.execID + "/pause", status: clash}}},
		{"POST /executions/{id}/resume", []probe{
			{path: "/executions/" + f.workflowID + "/resume", status: accepted},
			{path: "/executions/x/resume", status: bad},
			{path: "/executions/999999/resume", status: missing},
			{path: "/executions/" + f.workflowID + "/resume", status: clash}}},

		{"GET /stream", []probe{
			{path: "/stream?execution_id=" + f.execID, stream: true, as: f.viewer},
			{path: "/stream?execution_id=x", status: bad}}},

		list("GET /workers", "/workers"),
		{"GET /workers/{name}", []probe{{path: "/workers/alive", status: ok}, {path: "/workers/nobody", status: missing}}},
		{"DELETE /workers/{name}", []probe{{path: "/workers/gone", status: gone}, {path: "/workers/gone", status: missing}, {path: "/workers/alive", status: clash}}},

		list("GET /policies", "/policies"),
		{"GET /policies/{ref}", []probe{{path: "/policies/demo.other_limit", status: ok}, {path: "/policies/demo.nope", status: missing}}},
		{"POST /policies", []probe{
			{path: "/policies", body: `{"ref": "demo.one_free", "action_ref": "demo.free", "concurrency": {"limit": 1}}`, status: created},
			{path: "/policies", body: `{"ref": "demo.bad", "action_ref": "demo.free", "concurrency": {"limit": 0}}`, status: bad},
			{path: "/policies", body: `{"ref": "demo.one_free", "action_ref": "demo.free", "concurrency": {"limit": 1}}`, status: clash}}},
		{"PUT /policies/{ref}", []probe{
			{path: "/policies/demo.one_free", body: `{"action_ref": "demo.free", "concurrency": {"limit": 2}}`, status: ok},
			{path: "/policies/demo.one_free", body: `{"action_ref": "demo.free", "concurrency": {"limit": -1}}`, status: bad},
			{path: "/policies/demo.nope", body: `{"action_ref": "demo.free", "concurrency": {"limit": 1}}`, status: missing}}},
		{"DELETE /policies/{ref}", []probe{{path: "/policies/demo.one_free", status: gone}, {path: "/policies/demo.one_free", status: missing}}},

		list("GET /identities", "/identities"),
		{"GET /audit", []probe{{path: "/audit", status: ok}, {path: "/audit?kind=rule&actor=admin", status: ok},
			{path: "/audit?kind=Rule", status: bad}, {path: "/audit?page=0", status: bad}}},
		{"GET /identities/{login}", []probe{{path: "/identities/vera", status: ok}, {path: "/identities/nobody", status: missing}}},
		{"POST /identities", []probe{
			{path: "/identities", body: `{"login": "ida", "password": "long-enough", "role": "viewer"}`, status: created},
			{path: "/identities", body: `{"login": "ida", "password": "short", "role": "viewer"}`, status: bad},
			{path: "/identities", body: `{"login": "ida", "password": "long-enough", "role": "viewer"}`, status: clash}}},
		{"PUT /identities/{login}", []probe{
			{path: "/identities/ida", body: `{"role": "operator"}`, status: ok},
			{path: "/identities/ida", body: `{}`, status: bad},
			{path: "/identities/nobody", body: `{"role": "viewer"}`, status: missing},
			{path: "/identities/admin", body: `{"role": "viewer"}`, status: clash}}},
		{"DELETE /identities/{login}", []probe{
			{path: "/identities/ida", status: gone}, {path: "/identities/ida", status: missing}, {path: "/identities/admin", status: clash}}},

		{"GET /tokens", []probe{{path: "/tokens", status: ok}, {path: "/tokens?all=maybe", status: bad}}},
		{"POST /tokens", []probe{
			{path: "/tokens", body: `{"name": "ci"}`, status: created},
			{path: "/tokens", body: `{"role": "root"}`, status: bad},
			{path: "/tokens", body: `{}`, status: clash, off: true}}},
		{"DELETE /tokens/{id}", []probe{
			{path: "/tokens/" + f.tokenID, status: ok}, {path: "/tokens/x", status: bad}, {path: "/tokens/999999", status: missing}}},

		list("GET /webhook-secrets", "/webhook-secrets"),
		{"PUT /webhook-secrets/{url}", []probe{
			{path: "/webhook-secrets/other", body: `{"secret": "another-secret-of-length"}`, status: created},
			{path: "/webhook-secrets/other", body: `{"secret": "short"}`, status: bad}}},
		{"DELETE /webhook-secrets/{url}", []probe{{path: "/webhook-secrets/other", status: gone}, {path: "/webhook-secrets/other", status: missing}}},

		{"GET /keys", []probe{{path: "/keys?scope=system", status: ok}, {path: "/keys?scope=nope", status: bad}}},
		{"PUT /keys/{scope}/{name}", []probe{
			{path: "/keys/system/limit", body: `{"value": 3, "ttl": "1h"}`, status: created},
			{path: "/keys/system/limit", body: `{"value": 4, "secret": true}`, status: ok},
			{path: "/keys/system/limit", body: `{}`, status: bad},
			{path: "/keys/user/mine", body: `{"value": 1}`, status: created, as: f.viewer},
			{path: "/keys/system/limit", body: `{"value": 5}`, status: http.StatusForbidden, as: f.viewer}}},
		{"GET /keys/{scope}/{name}", []probe{
			{path: "/keys/system/limit?decrypt=true", status: ok},
			{path: "/keys/nope/limit", status: bad},
			{path: "/keys/system/nope", status: missing},
			{path: "/keys/system/limit?decrypt=true", status: http.StatusForbidden, as: f.operator}}},
		{"DELETE /keys/{scope}/{name}", []probe{
			{path: "/keys/system/limit", status: gone}, {path: "/keys/system/9", status: bad}, {path: "/keys/system/limit", status: missing}}},
	}
}
