package store_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/attune-go/attune/store"
	"github.com/attune-go/attune/store/storetest"
)

// registerDemo registers the demo pack, an action demo.run and a trigger demo.hook, with the
// sensors and rules of more, as the system.
func registerDemo(t *testing.T, s *store.Store, more store.PackRegistration) {
	t.Helper()
	_, err := s.PackRegister(context.Background(), store.PackRegistration{Pack: store.Pack{Ref: "demo"},
		Actions:  []store.Action{{Ref: "demo.run", RunnerType: "noop", OutputFormat: "text", TimeoutSeconds: 30, Enabled: true}},
		Triggers: []store.Trigger{{Ref: "demo.hook"}}, Sensors: more.Sensors, Rules: more.Rules})
	require.NoError(t, err)
}

// A change and its audit record commit together: when the record cannot be written, the
// change is not made either, whichever store method makes it. Without an actor in the
// context the record names the system.
func TestAuditCommitsWithItsChange(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := storetest.NewStore(t)
	registerDemo(t, s, store.PackRegistration{})
	var actor string
	require.NoError(t, s.Pool().QueryRow(ctx, `SELECT actor FROM attune.audit WHERE kind = 'pack.register' AND object = 'demo'`).Scan(&actor))
	require.Equal(t, "system", actor)

	_, err := s.Pool().Exec(ctx, `
		CREATE FUNCTION attune.refuse_audit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'audit refused'; END $$;
		CREATE TRIGGER refuse_audit BEFORE INSERT ON attune.audit FOR EACH ROW EXECUTE FUNCTION attune.refuse_audit()`)
	require.NoError(t, err)
	alice := store.WithActor(ctx, store.Actor{ID: 1, Login: "alice", Token: "ci"})

	_, err = s.RuleCreate(alice, store.Rule{Ref: "demo.on_hook", PackRef: "demo", TriggerRef: "demo.hook", ActionRef: "demo.run", Enabled: true})
	require.ErrorContains(t, err, "audit refused")
	_, err = s.RuleGetByRef(ctx, "demo.on_hook")
	require.ErrorIs(t, err, store.ErrNotFound, "the rule went with its record")

	_, _, err = s.KeySet(alice, store.KeySetParams{KeyRef: store.KeyRef{Scope: "system", Name: "k"}, Value: json.RawMessage(`1`)})
	require.ErrorContains(t, err, "audit refused")
	_, err = s.KeyGet(ctx, store.KeyRef{Scope: "system", Name: "k"})
	require.ErrorIs(t, err, store.ErrNotFound)

	_, err = s.ExecutionRequest(alice, store.ExecutionCreateParams{ActionRef: "demo.run"})
	require.ErrorContains(t, err, "audit refused")
	_, total, err := s.ExecutionList(ctx, store.ExecutionFilter{}, store.Page{Limit: 10})
	require.NoError(t, err)
	require.Zero(t, total, "no execution without its record")

	direct, err := s.ExecutionCreateDirect(ctx, store.ExecutionCreateParams{ActionRef: "demo.run"})
	require.NoError(t, err, "what the pipeline creates records nothing")
	_, ok, err := s.ExecutionTransition(alice, store.ExecutionTransition{ID: direct.Execution.ID,
		From: []string{store.ExecutionScheduled}, To: store.ExecutionCancelled, Audit: "execution.cancel"})
	require.ErrorContains(t, err, "audit refused")
	require.False(t, ok)
	got, err := s.ExecutionGet(ctx, direct.Execution.ID)
	require.NoError(t, err)
	require.Equal(t, store.ExecutionScheduled, got.Status, "the cancel went with its record")
	_, err = s.ExecutionTransitionBatch(ctx, []store.ExecutionTransition{{ID: direct.Execution.ID,
		From: []string{store.ExecutionScheduled}, To: store.ExecutionCancelled, Audit: "execution.cancel"}})
	require.ErrorContains(t, err, "only ExecutionTransition writes", "a batch refuses to move what asks for a record")

	_, err = s.Pool().Exec(ctx, `DROP TRIGGER refuse_audit ON attune.audit`)
	require.NoError(t, err)
	_, err = s.RuleCreate(alice, store.Rule{Ref: "demo.on_hook", PackRef: "demo", TriggerRef: "demo.hook", ActionRef: "demo.run", Enabled: true})
	require.NoError(t, err)
	entries, _, err := s.AuditList(ctx, store.AuditFilter{Kind: "rule"}, store.Page{Limit: 10})
	require.NoError(t, err)
	require.Len(t, entries, 1)
	e := entries[0]
	require.Equal(t, []any{int64(1), "alice", "ci", "rule.create", "rule", "demo.on_hook"},
		[]any{*e.ActorID, e.Actor, *e.Token, e.Kind, e.ObjectKind, e.Object})
}

// What the audit record adds to an execution requested through the API (one insert in its
// transaction): compare ExecutionRequest with ExecutionCreateDirect, which records nothing.
func BenchmarkExecutionRequest(b *testing.B) {
	ctx := store.WithActor(context.Background(), store.Actor{ID: 1, Login: "alice", Token: "ci"})
	s := storetest.NewStore(b)
	_, err := s.PackRegister(ctx, store.PackRegistration{Pack: store.Pack{Ref: "demo"},
		Actions: []store.Action{{Ref: "demo.run", RunnerType: "noop", OutputFormat: "text", TimeoutSeconds: 30, Enabled: true}}})
	require.NoError(b, err)
	for _, c := range []struct {
		name   string
		create func(context.Context, store.ExecutionCreateParams) (store.ExecutionCreated, error)
	}{{"direct", s.ExecutionCreateDirect}, {"recorded", s.ExecutionRequest}} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := c.create(ctx, store.ExecutionCreateParams{ActionRef: "demo.run"}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// A change that does not happen (enabling what is enabled, revoking what is revoked) answers
// as before and records nothing.
func TestAuditRecordsOnlyChangesMade(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := storetest.NewStore(t)
	registerDemo(t, s, store.PackRegistration{
		Sensors: []store.Sensor{{Ref: "demo.watch", EntryPoint: "watch.sh", TriggerRefs: []string{"demo.hook"}, Enabled: true}},
		Rules:   []store.Rule{{Ref: "demo.on_hook", TriggerRef: "demo.hook", ActionRef: "demo.run", Enabled: true}}})
	alice := store.WithActor(ctx, store.Actor{ID: 1, Login: "alice"})
	count := func(kind string) int {
		t.Helper()
		var n int
		require.NoError(t, s.Pool().QueryRow(ctx, `SELECT count(*) FROM attune.audit WHERE kind = $1`, kind).Scan(&n))
		return n
	}

	for range 2 {
		r, err := s.RuleSetEnabled(alice, "demo.on_hook", false)
		require.NoError(t, err)
		require.False(t, r.Enabled)
		require.NoError(t, s.SensorSetEnabled(alice, "demo.watch", false))
	}
	r, err := s.RuleSetEnabled(alice, "demo.on_hook", false)
	require.NoError(t, err)
	require.Equal(t, "demo.on_hook", r.Ref, "the rule as it is")
	require.Equal(t, 1, count("rule.disable"))
	require.Equal(t, 1, count("sensor.disable"))
	_, err = s.RuleSetEnabled(alice, "demo.nothing", true)
	require.ErrorIs(t, err, store.ErrNotFound)
	require.ErrorIs(t, s.SensorSetEnabled(alice, "demo.nothing", true), store.ErrNotFound)

	id, err := s.IdentityInsert(ctx, "bob", "x", "viewer")
	require.NoError(t, err)
	tok, err := s.TokenInsert(ctx, store.TokenInsertParams{IdentityID: id.ID, Name: "ci", Prefix: "p", SecretSHA256: []byte{1}})
	require.NoError(t, err)
	first, err := s.TokenRevoke(alice, tok.ID)
	require.NoError(t, err)
	require.NotNil(t, first.RevokedAt)
	again, err := s.TokenRevoke(alice, tok.ID)
	require.NoError(t, err)
	require.Equal(t, first.RevokedAt, again.RevokedAt, "revoked once")
	require.Equal(t, 1, count("token.revoke"))
	_, err = s.TokenRevoke(alice, tok.ID+100)
	require.ErrorIs(t, err, store.ErrNotFound)
}

// A kind filter keeps the kinds it starts, reading its _ as itself.
func TestAuditKindFilterIsAPrefix(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := storetest.NewStore(t)
	_, err := s.Pool().Exec(ctx, `INSERT INTO attune.audit (actor, kind, object_kind, object) VALUES
		('alice', 'webhook_secret.set', 'webhook_secret', 'a'), ('alice', 'webhookxsecret.set', 'webhook_secret', 'b'),
		('alice', 'webhook_secret.delete', 'webhook_secret', 'c'), ('alice', 'webhook_secrets.set', 'webhook_secret', 'd')`)
	require.NoError(t, err)
	entries, total, err := s.AuditList(ctx, store.AuditFilter{Kind: "webhook_secret"}, store.Page{Limit: 10})
	require.NoError(t, err)
	require.Equal(t, 2, total)
	var objects []string
	for _, e := range entries {
		objects = append(objects, e.Object)
	}
	require.ElementsMatch(t, []string{"a", "c"}, objects)
	_, total, err = s.AuditList(ctx, store.AuditFilter{Kind: "webhook_secret.set"}, store.Page{Limit: 10})
	require.NoError(t, err)
	require.Equal(t, 1, total)
}
