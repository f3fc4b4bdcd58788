package api_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/attune-go/attune/store"
	"github.com/attune-go/attune/store/seal"
)

// auditOf lists the audit entries the query selects, newest first.
func (s server) auditOf(query string) []map[string]any {
	s.t.Helper()
	status, out := s.do(http.MethodGet, "/audit?per_page=100&"+query, "")
	require.Equal(s.t, http.StatusOK, status, out)
	var entries []map[string]any
	for _, e := range out["data"].([]any) {
		entries = append(entries, e.(map[string]any))
	}
	return entries
}

// lastAudit is the newest entry, which must be of kind on object (KIND:REF), by actor.
func (s server) lastAudit(kind, object, actor string) map[string]any {
	s.t.Helper()
	entries := s.auditOf("per_page=1")
	require.NotEmpty(s.t, entries)
	e := entries[0]
	require.Equal(s.t, kind, e["kind"], e)
	require.Equal(s.t, object, fmt.Sprint(e["object_kind"], ":", e["object"]), e)
	require.Equal(s.t, actor, e["actor"], e)
	return e
}

// auditCount counts every row of attune.audit.
func (s server) auditCount() int {
	s.t.Helper()
	var n int
	require.NoError(s.t, s.s.Pool().QueryRow(context.Background(), `SELECT count(*) FROM attune.audit`).Scan(&n))
	return n
}

// Each change through the API writes one audit entry, in its transaction, naming who made it
// (with the API token's name when the request came with one), its kind and its object; a
// refused change writes none; no secret reaches the table; only admins read it.
func TestAuditRecordsEachChange(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	registerCore(t, s)
	first := s.auditOf("kind=pack")
	require.NotEmpty(t, first)
	require.Equal(t, "system", first[0]["actor"], "packs registered outside the API are the system's")

	// An operator with an API token named ci: what the token asks is recorded with its name.
	olga := s.as(s.newIdentity("olga", "operator"))
	s.lastAudit("identity.create", "identity:olga", "admin")
	tok := olga.data(http.StatusCreated, http.MethodPost, "/tokens", `{"name": "ci"}`)
	created := s.lastAudit("token.create", "token:"+id(tok, "id"), "olga")
	require.Equal(t, "ci", created["detail"].(map[string]any)["name"])
	ci := s.as(tok["token"].(string))

	exec := ci.data(http.StatusCreated, http.MethodPost, "/executions/execute", `{"action_ref": "demo.run"}`)
	execID := id(exec, "id")
	e := s.lastAudit("execution.request", "execution:"+execID, "olga")
	require.Equal(t, "ci", e["token"])
	require.Equal(t, map[string]any{"kind": "identity", "identity": "olga", "identity_id": e["actor_id"], "token": "ci"}, exec["requested_by"])
	got := s.data(http.StatusOK, http.MethodGet, "/executions/"+execID, "")
	require.Equal(t, exec["requested_by"], got["requested_by"])

	olga.data(http.StatusOK, http.MethodPost, "/executions/"+execID+"/cancel", "")
	e = s.lastAudit("execution.cancel", "execution:"+execID, "olga")
	require.Nil(t, e["token"], "a login session has no token name")
	require.Equal(t, "cancelled", e["detail"].(map[string]any)["status"])

	rerun := olga.data(http.StatusCreated, http.MethodPost, "/executions/"+execID+"/rerun", "")
	e = s.lastAudit("execution.rerun", "execution:"+id(rerun, "id"), "olga")
	require.Equal(t, exec["id"], e["detail"].(map[string]any)["rerun_of"])
	require.Equal(t, exec["id"], rerun["requested_by"].(map[string]any)["rerun_of"])

	// Rules: create, update, enable, disable, delete.
	olga.data(http.StatusCreated, http.MethodPost, "/rules", ruleBody(t, "demo.hook", "core.webhook", map[string]any{"url": "hook"}, "demo.run", nil))
	require.Equal(t, map[string]any{"trigger": "core.webhook", "action": "demo.run", "enabled": true},
		s.lastAudit("rule.create", "rule:demo.hook", "olga")["detail"])
	olga.data(http.StatusOK, http.MethodPut, "/rules/demo.hook", ruleBody(t, "demo.hook", "core.webhook", map[string]any{"url": "hook"}, "demo.free", nil))
	s.lastAudit("rule.update", "rule:demo.hook", "olga")
	olga.data(http.StatusOK, http.MethodPost, "/rules/demo.hook/disable", "")
	s.lastAudit("rule.disable", "rule:demo.hook", "olga")
	olga.data(http.StatusOK, http.MethodPost, "/rules/demo.hook/enable", "")
	s.lastAudit("rule.enable", "rule:demo.hook", "olga")

	// Refused changes record nothing: a rule naming no action, cancelling what ended, the
	// last admin's deletion, a policy already there.
	before := s.auditCount()
	olga.fail(http.StatusBadRequest, "bad_request", http.MethodPost, "/rules", ruleBody(t, "demo.bad", "core.webhook", map[string]any{"url": "x"}, "demo.none", nil))
	olga.fail(http.StatusConflict, "conflict", http.MethodPost, "/executions/"+execID+"/cancel", "")
	s.fail(http.StatusConflict, "conflict", http.MethodDelete, "/identities/admin", "")
	s.fail(http.StatusConflict, "conflict", http.MethodPost, "/policies", `{"ref": "demo.other_limit", "action_ref": "demo.free", "concurrency": {"limit": 1}}`)
	olga.fail(http.StatusNotFound, "not_found", http.MethodDelete, "/rules/demo.none", "")
	require.Equal(t, before, s.auditCount(), "a refused change is not recorded")
	require.Equal(t, true, olga.data(http.StatusOK, http.MethodPost, "/rules/demo.hook/enable", "")["enabled"])
	require.Equal(t, before, s.auditCount(), "nor one that changes nothing")

	olga.do(http.MethodDelete, "/rules/demo.hook", "")
	s.lastAudit("rule.delete", "rule:demo.hook", "olga")

	// Actions, triggers, sensors.
	s.data(http.StatusCreated, http.MethodPost, "/actions", `{"ref": "demo.extra", "runner_type": "noop"}`)
	require.Equal(t, map[string]any{"runner": "noop", "enabled": true}, s.lastAudit("action.create", "action:demo.extra", "admin")["detail"])
	s.data(http.StatusOK, http.MethodPut, "/actions/demo.extra", `{"runner_type": "noop", "enabled": false}`)
	s.lastAudit("action.update", "action:demo.extra", "admin")
	s.do(http.MethodDelete, "/actions/demo.extra", "")
	s.lastAudit("action.delete", "action:demo.extra", "admin")
	s.data(http.StatusCreated, http.MethodPost, "/triggers", `{"ref": "demo.alert"}`)
	s.lastAudit("trigger.create", "trigger:demo.alert", "admin")
	s.data(http.StatusOK, http.MethodPut, "/triggers/demo.alert", `{"description": "changed"}`)
	s.lastAudit("trigger.update", "trigger:demo.alert", "admin")
	s.do(http.MethodDelete, "/triggers/demo.alert", "")
	s.lastAudit("trigger.delete", "trigger:demo.alert", "admin")
	_, err := s.s.PackRegister(context.Background(), store.PackRegistration{Pack: store.Pack{Ref: "watch"},
		Sensors: []store.Sensor{{Ref: "watch.poll", EntryPoint: "poll.sh", TriggerRefs: []string{"core.webhook"}, Enabled: true}}})
	require.NoError(t, err)
	olga.data(http.StatusOK, http.MethodPost, "/sensors/watch.poll/disable", "")
	s.lastAudit("sensor.disable", "sensor:watch.poll", "olga")
	olga.data(http.StatusOK, http.MethodPost, "/sensors/watch.poll/enable", "")
	s.lastAudit("sensor.enable", "sensor:watch.poll", "olga")

	// Packs: uploaded, deleted; policies; webhook secrets.
	s.data(http.StatusOK, http.MethodPost, "/packs", tarGz(t, tarEntry{name: "up/pack.yaml", body: "ref: up\n"},
		tarEntry{name: "up/actions/run.yaml", body: "ref: up.run\nrunner_type: noop\n"}))
	e = s.lastAudit("pack.register", "pack:up", "admin")
	require.Len(t, e["detail"].(map[string]any)["version"], 64)
	s.do(http.MethodDelete, "/packs/up", "")
	s.lastAudit("pack.delete", "pack:up", "admin")
	s.data(http.StatusCreated, http.MethodPost, "/policies", `{"ref": "demo.free_limit", "action_ref": "demo.free", "concurrency": {"limit": 1}}`)
	s.lastAudit("policy.create", "policy:demo.free_limit", "admin")
	s.data(http.StatusOK, http.MethodPut, "/policies/demo.free_limit", `{"action_ref": "demo.free", "concurrency": {"limit": 2}}`)
	s.lastAudit("policy.update", "policy:demo.free_limit", "admin")
	s.do(http.MethodDelete, "/policies/demo.free_limit", "")
	s.lastAudit("policy.delete", "policy:demo.free_limit", "admin")
	const hookSecret = "hook-secret-0123456789"
	s.data(http.StatusCreated, http.MethodPut, "/webhook-secrets/hook", `{"secret": "`+hookSecret+`"}`)
	s.lastAudit("webhook_secret.set", "webhook:hook", "admin")
	s.do(http.MethodDelete, "/webhook-secrets/hook", "")
	s.lastAudit("webhook_secret.delete", "webhook:hook", "admin")

	// Keys: a secret's value reaches no column of the audit.
	const keyValue = "very-secret-value-42"
	ci.data(http.StatusCreated, http.MethodPut, "/keys/system/db_password", `{"value": "`+keyValue+`", "secret": true}`)
	e = s.lastAudit("key.set", "key:system.db_password", "olga")
	require.Equal(t, true, e["detail"].(map[string]any)["secret"])
	ci.do(http.MethodDelete, "/keys/system/db_password", "")
	s.lastAudit("key.delete", "key:system.db_password", "olga")

	// Identities and tokens.
	s.data(http.StatusOK, http.MethodPut, "/identities/olga", `{"role": "viewer", "password": "a-new-password-123"}`)
	require.Equal(t, map[string]any{"role": "viewer", "password_changed": true}, s.lastAudit("identity.update", "identity:olga", "admin")["detail"])
	s.data(http.StatusOK, http.MethodDelete, "/tokens/"+id(tok, "id"), "")
	s.lastAudit("token.revoke", "token:"+id(tok, "id"), "admin")
	s.do(http.MethodDelete, "/identities/olga", "")
	s.lastAudit("identity.delete", "identity:olga", "admin")

	var all string
	require.NoError(t, s.s.Pool().QueryRow(context.Background(), `SELECT string_agg(a::text, ' ') FROM attune.audit a`).Scan(&all))
	for _, secret := range []string{keyValue, hookSecret, tok["token"].(string), "a-new-password-123", "pw-olga-long", "$argon2id", seal.Prefix} {
		require.NotContains(t, all, secret)
	}

	// Filters: actor, kind (a noun or a kind), object, time; viewers are refused naming why.
	for _, e := range s.auditOf("actor=olga") {
		require.Equal(t, "olga", e["actor"])
	}
	kinds := map[any]bool{}
	for _, e := range s.auditOf("kind=rule") {
		kinds[e["kind"]] = true
	}
	require.Equal(t, map[any]bool{"rule.create": true, "rule.update": true, "rule.enable": true, "rule.disable": true, "rule.delete": true}, kinds)
	require.Len(t, s.auditOf("kind=rule.enable"), 1)
	require.Len(t, s.auditOf("object=execution:"+execID), 2, "its request and its cancel")
	require.Empty(t, s.auditOf("since="+url.QueryEscape(time.Now().Add(time.Hour).Format(time.RFC3339))))
	require.Len(t, s.auditOf("kind=rule&until="+url.QueryEscape(time.Now().Add(time.Hour).Format(time.RFC3339))), 5)
	s.fail(http.StatusBadRequest, "bad_request", http.MethodGet, "/audit?kind=rule%25", "")
	s.fail(http.StatusBadRequest, "bad_request", http.MethodGet, "/audit?object=:x", "")
	require.Contains(t, s.as(s.newIdentity("vic", "viewer")).fail(http.StatusForbidden, "forbidden", http.MethodGet, "/audit", ""), "needs the admin role")
}

// Pausing and resuming a workflow are recorded with who asked.
func TestAuditRecordsPauseAndResume(t *testing.T) {
	t.Parallel()
	s, _ := newWorkflowServer(t)
	w := s.fillWorkflow(store.ExecutionRunning)
	path := idPath(w.ID, "")
	s.data(http.StatusAccepted, http.MethodPost, path+"/pause", "")
	s.lastAudit("execution.pause", "execution:"+strconv.FormatInt(w.ID, 10), "admin")
	s.data(http.StatusAccepted, http.MethodPost, path+"/resume", "")
	s.lastAudit("execution.resume", "execution:"+strconv.FormatInt(w.ID, 10), "admin")
	s.data(http.StatusAccepted, http.MethodPost, path+"/cancel", "")
	s.lastAudit("execution.cancel", "execution:"+strconv.FormatInt(w.ID, 10), "admin")
}

// Who requested an execution is shown on it and filters the list: an identity (with its
// workflows' tasks), a rule (with the retries of what it caused), a timer, a sensor, a
// workflow's tasks.
func TestExecutionRequestedBy(t *testing.T) {
	t.Parallel()
	s, _ := newWorkflowServer(t)
	registerCore(t, s)
	ctx := context.Background()
	mine := s.data(http.StatusCreated, http.MethodPost, "/executions/execute", `{"action_ref": "flows.step"}`)
	w := s.fillWorkflow(store.ExecutionRunning)
	adminID := mine["requested_by"].(map[string]any)["identity_id"]
	_, err := s.s.Pool().Exec(ctx, `UPDATE attune.execution SET requested_by = $1 WHERE id = $2 OR parent = $2`, int64(adminID.(float64)), w.ID)
	require.NoError(t, err)

	// A rule's execution from a timer's event, and its retry; another from a sensor's event.
	caused := func(ruleRef, source string) (store.Execution, int64) {
		ev, err := s.s.EventInsert(ctx, store.EventInsertParams{TriggerRef: "core.intervaltimer", Source: source})
		require.NoError(t, err)
		en, _, err := s.s.EnforcementInsert(ctx, store.EnforcementInsertParams{RuleRef: ruleRef, TriggerRef: "core.intervaltimer", EventID: ev.ID})
		require.NoError(t, err)
		c, err := s.s.ExecutionCreateOne(ctx, store.ExecutionCreateParams{ActionRef: "flows.step", EnforcementID: &en.ID})
		require.NoError(t, err)
		return c.Execution, ev.ID
	}
	ticked, tickEvent := caused("flows.tick", "timer")
	var retry int64
	require.NoError(t, s.s.Pool().QueryRow(ctx, `INSERT INTO attune.execution (action_ref, status, attempt, retry_of)
		VALUES ('flows.step', 'scheduled', 2, $1) RETURNING id`, ticked.ID).Scan(&retry))
	sensed, _ := caused("flows.watch", "flows.watcher")

	ids := func(query string) []int64 {
		t.Helper()
		status, out := s.do(http.MethodGet, "/executions?per_page=100&requested_by="+url.QueryEscape(query), "")
		require.Equal(t, http.StatusOK, status, out)
		var got []int64
		for _, e := range out["data"].([]any) {
			got = append(got, int64(e.(map[string]any)["id"].(float64)))
		}
		return got
	}
	mineID := int64(mine["id"].(float64))
	require.ElementsMatch(t, append([]int64{mineID, w.ID}, w.Children[0]...), ids("admin"))
	require.ElementsMatch(t, ids("admin"), ids("identity:admin"))
	require.ElementsMatch(t, []int64{ticked.ID, retry}, ids("rule:flows.tick"))
	require.ElementsMatch(t, []int64{ticked.ID, retry}, ids("timer"))
	require.ElementsMatch(t, []int64{sensed.ID}, ids("sensor:flows.watcher"))
	require.ElementsMatch(t, w.Children[0], ids("workflow:"+strconv.FormatInt(w.ID, 10)))
	require.Empty(t, ids("webhook"))
	for bad, named := range map[string]string{"nobody": `no identity has login "nobody"`, "rule:flows.nothing": `"flows.nothing"`,
		"sensor:flows.nothing": `"flows.nothing"`} {
		require.Contains(t, s.fail(http.StatusBadRequest, "bad_request", http.MethodGet, "/executions?requested_by="+url.QueryEscape(bad), ""), named)
	}
	for _, bad := range []string{"rule:", "workflow:x", "colour:red"} {
		require.Contains(t, s.fail(http.StatusBadRequest, "bad_request", http.MethodGet, "/executions?requested_by="+url.QueryEscape(bad), ""), "requested_by")
	}

	// What each shows.
	show := func(id int64) map[string]any {
		return s.data(http.StatusOK, http.MethodGet, idPath(id, ""), "")["requested_by"].(map[string]any)
	}
	require.Equal(t, map[string]any{"kind": "rule", "rule": "flows.tick", "trigger": "core.intervaltimer", "source": "timer",
		"event": float64(tickEvent), "enforcement": float64(*ticked.EnforcementID)}, show(ticked.ID))
	r := show(retry)
	require.Equal(t, float64(ticked.ID), r["retry_of"])
	require.Equal(t, "flows.tick", r["rule"], "a retry shows what caused its first attempt")
	sensor := show(sensed.ID)
	require.Equal(t, "sensor", sensor["source"])
	require.Equal(t, "flows.watcher", sensor["sensor"])
	task := show(w.Children[0][0])
	require.Equal(t, "workflow", task["kind"])
	require.Equal(t, float64(w.ID), task["workflow"])
	require.Equal(t, "admin", task["identity"])
}

// An API token's name is shown on an execution to admins and to whoever requested it, and
// token:NAME keeps, for anyone else than an admin, only what they requested.
func TestExecutionRequestedByTokenShownToOwner(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	registerCore(t, s)
	olga := s.as(s.newIdentity("olga", "operator"))
	oscar := s.as(s.newIdentity("oscar", "operator"))
	vera := s.as(s.newIdentity("vera", "viewer"))
	request := func(as server) string {
		tok := as.data(http.StatusCreated, http.MethodPost, "/tokens", `{"name": "ci"}`)
		return id(s.as(tok["token"].(string)).data(http.StatusCreated, http.MethodPost, "/executions/execute", `{"action_ref": "demo.run"}`), "id")
	}
	olgas, oscars := request(olga), request(oscar)

	token := func(as server, path string) any {
		return as.data(http.StatusOK, http.MethodGet, path, "")["requested_by"].(map[string]any)["token"]
	}
	require.Equal(t, "ci", token(s, "/executions/"+olgas), "an admin")
	require.Equal(t, "ci", token(olga, "/executions/"+olgas), "the requester")
	require.Nil(t, token(vera, "/executions/"+olgas), "a viewer")
	require.Nil(t, token(oscar, "/executions/"+olgas), "another operator")
	status, out := vera.do(http.MethodGet, "/executions?per_page=100", "")
	require.Equal(t, http.StatusOK, status, out)
	for _, e := range out["data"].([]any) {
		r := e.(map[string]any)["requested_by"].(map[string]any)
		require.Nil(t, r["token"], "a viewer's list: %v", r)
		require.NotEmpty(t, r["identity"], "the requester's login stays")
	}

	ids := func(as server) []string {
		t.Helper()
		status, out := as.do(http.MethodGet, "/executions?per_page=100&requested_by=token:ci", "")
		require.Equal(t, http.StatusOK, status, out)
		var got []string
		for _, e := range out["data"].([]any) {
			got = append(got, id(e.(map[string]any), "id"))
		}
		return got
	}
	require.ElementsMatch(t, []string{olgas, oscars}, ids(s))
	require.Equal(t, []string{olgas}, ids(olga))
	require.Equal(t, []string{oscars}, ids(oscar))
	require.Empty(t, ids(vera))

	// Whether a login exists is the admins' business: to others an unknown one finds nothing.
	status, out = vera.do(http.MethodGet, "/executions?requested_by=nobody", "")
	require.Equal(t, http.StatusOK, status, out)
	require.Empty(t, out["data"])
	require.Contains(t, s.fail(http.StatusBadRequest, "bad_request", http.MethodGet, "/executions?requested_by=nobody", ""), `no identity has login "nobody"`)
}
