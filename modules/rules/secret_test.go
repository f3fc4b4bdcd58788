package rules_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/attune-go/attune/broker"
	"github.com/attune-go/attune/broker/membroker"
	"github.com/attune-go/attune/modules/pack"
	"github.com/attune-go/attune/modules/rules"
	"github.com/attune-go/attune/store"
	"github.com/attune-go/attune/store/storetest"
)

// recorder is a broker that keeps what is published through it.
type recorder struct {
	broker.Broker
	mu   sync.Mutex
	msgs []broker.Message
}

func (r *recorder) Publish(ctx context.Context, msgs ...broker.Message) error {
	if err := r.Broker.Publish(ctx, msgs...); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, msgs...)
	return nil
}

func (r *recorder) published() []broker.Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]broker.Message(nil), r.msgs...)
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// A secret never travels in a message: the EnforcementCreated of a rule whose action has
// secret parameters carries no snapshot of the rendered parameters (the executor reads the
// enforcement back), while one whose action has none still does. The enforcement records
// the secret names; a secret parameter that fails to render says so without the detail,
// which would quote its template or the value it got, in the enforcement and in the log.
func TestEnforcementCreatedCarriesNoSecret(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const (
		ruleSecret     = "rule-secret-6d2f1a"
		templateSecret = "template-secret-e41b77"
		payloadValue   = "payload-value-0c9a3e"
	)
	st := storetest.NewStore(t)
	_, err := st.PackRegister(ctx, store.PackRegistration{
		Pack:     store.Pack{Ref: "demo"},
		Triggers: []store.Trigger{{Ref: "demo.hook", Enabled: true}},
		Actions: []store.Action{
			{Ref: "demo.secret", RunnerType: "noop", OutputFormat: "text", TimeoutSeconds: 5, Enabled: true,
				Parameters: json.RawMessage(`{"token": {"type": "string", "secret": true}, "host": {"type": "string"}}`)},
			{Ref: "demo.plain", RunnerType: "noop", OutputFormat: "text", TimeoutSeconds: 5, Enabled: true,
				Parameters: json.RawMessage(`{"host": {"type": "string"}}`)},
		},
		Rules: []store.Rule{
			{Ref: "demo.with_secret", TriggerRef: "demo.hook", ActionRef: "demo.secret", Enabled: true,
				ActionParams: json.RawMessage(`{"token": "` + ruleSecret + `", "host": "h"}`)},
			{Ref: "demo.plain", TriggerRef: "demo.hook", ActionRef: "demo.plain", Enabled: true,
				ActionParams: json.RawMessage(`{"host": "{{ event.payload.host }}"}`)},
			{Ref: "demo.bad_secret", TriggerRef: "demo.hook", ActionRef: "demo.secret", Enabled: true,
				ActionParams: json.RawMessage(`{"token": "{{ '` + templateSecret + `' + string(int(event.payload.word)) }}"}`)},
		},
	})
	require.NoError(t, err)

	br := &recorder{Broker: membroker.New(broker.Options{})}
	defer br.Close()
	logs := &lockedBuffer{}
	logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	keys := storetest.Keyring(t)
	m, err := rules.New(rules.Config{}, rules.Deps{Logger: logger, Store: storetest.Deaf{Store: st}, Broker: br, Sealer: keys})
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()

	ev, err := st.EventInsert(ctx, store.EventInsertParams{TriggerRef: "demo.hook",
		Payload: json.RawMessage(`{"host": "h1", "word": "` + payloadValue + `"}`)})
	require.NoError(t, err)
	require.NoError(t, broker.Send(ctx, br, broker.NewEventCreated(ev.ID, ev.TriggerRef, "", ev.Payload, ev.Created, ev.Trace())))

	announced := func() []broker.Message {
		var out []broker.Message
		for _, msg := range br.published() {
			if msg.Type == broker.TypeEnforcementCreated {
				out = append(out, msg)
			}
		}
		return out
	}
	require.Eventually(t, func() bool { return len(announced()) == 3 }, 10*time.Second, 5*time.Millisecond,
		"the three matches are announced, the one that fails to render too (its execution fails with the reason)")
	var matches []broker.EnforcementCreated
	for _, msg := range announced() {
		require.NotContains(t, string(msg.Payload), ruleSecret, "a secret in a message")
		p, err := broker.Decode[broker.EnforcementCreated](msg)
		require.NoError(t, err)
		matches = append(matches, p)
	}

	for _, p := range matches {
		enf, err := st.EnforcementGet(ctx, p.EnforcementID)
		require.NoError(t, err)
		switch p.RuleRef {
		case "demo.with_secret":
			require.Empty(t, p.ActionRef, "no snapshot: the executor reads the enforcement back")
			require.Empty(t, p.Config)
			require.Equal(t, []string{"token"}, enf.Secrets)
			require.NotContains(t, string(enf.Config), ruleSecret, "PostgreSQL holds the value sealed")
			opened, _, err := keys.OpenJSON(enf.Config)
			require.NoError(t, err)
			require.JSONEq(t, `{"token": "`+ruleSecret+`", "host": "h"}`, string(opened), "the sealed value opens to the rule's")
		case "demo.bad_secret":
			require.Empty(t, p.ActionRef, "no snapshot: the executor reads the enforcement and its failure back")
			require.Empty(t, p.Failure)
		case "demo.plain":
			require.Equal(t, "demo.plain", p.ActionRef, "an action without secrets keeps the snapshot")
			require.JSONEq(t, `{"host": "h1"}`, string(p.Config))
			require.Empty(t, enf.Secrets)
		default:
			t.Fatalf("unexpected match %+v", p)
		}
	}

	enfs, _, err := st.EnforcementList(ctx, store.EnforcementFilter{RuleRef: "demo.bad_secret"}, store.Page{Limit: 10})
	require.NoError(t, err)
	require.Len(t, enfs, 1)
	require.NotNil(t, enfs[0].Reason)
	require.Equal(t, "rule demo.bad_secret: render action_params.token: failed; the detail is withheld, as the parameter is secret", *enfs[0].Reason)
	require.Contains(t, logs.String(), "rule matched but its parameters could not be rendered")
	for _, secret := range []string{ruleSecret, templateSecret, payloadValue} {
		require.NotContains(t, logs.String(), secret, "the log shows a secret")
	}

	cancel()
	require.NoError(t, <-done)
}

// plainRule is a store holding the pack demo: the trigger demo.hook and the rule ref running
// demo.plain (whose parameter schema is schema) with params; keys seals and opens.
func plainRule(t *testing.T, ref, schema, params string) *store.Store {
	t.Helper()
	st := storetest.NewStore(t)
	_, err := st.PackRegister(context.Background(), store.PackRegistration{
		Pack:     store.Pack{Ref: "demo"},
		Triggers: []store.Trigger{{Ref: "demo.hook", Enabled: true}},
		Actions: []store.Action{{Ref: "demo.plain", RunnerType: "noop", OutputFormat: "text", TimeoutSeconds: 5, Enabled: true,
			Parameters: json.RawMessage(schema)}},
		Rules: []store.Rule{{Ref: ref, TriggerRef: "demo.hook", ActionRef: "demo.plain", Enabled: true, ActionParams: json.RawMessage(params)}},
	})
	require.NoError(t, err)
	return st
}

// enforceOne runs the rule matcher on st until the test ends, sends it an event of demo.hook
// (payload stored, sent as it is in the message) and returns the one enforcement of rule ref,
// with the matcher's log at debug level.
func enforceOne(t *testing.T, st *store.Store, keys rules.Sealer, ref string, payload, sent json.RawMessage) (store.Enforcement, *lockedBuffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	br := &recorder{Broker: membroker.New(broker.Options{})}
	logs := &lockedBuffer{}
	logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	m, err := rules.New(rules.Config{}, rules.Deps{Logger: logger, Store: storetest.Deaf{Store: st}, Broker: br, Sealer: keys})
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
		br.Close()
	})

	ev, err := st.EventInsert(ctx, store.EventInsertParams{TriggerRef: "demo.hook", Payload: payload})
	require.NoError(t, err)
	require.NoError(t, broker.Send(ctx, br, broker.NewEventCreated(ev.ID, ev.TriggerRef, "", sent, ev.Created, ev.Trace())))
	var enfs []store.Enforcement
	require.Eventually(t, func() bool {
		enfs, _, err = st.EnforcementList(ctx, store.EnforcementFilter{RuleRef: ref}, store.Page{Limit: 10})
		require.NoError(t, err)
		return len(enfs) == 1
	}, 10*time.Second, 5*time.Millisecond)
	return enfs[0], logs
}

// A template that computes with a secret key fails on its seal token, and expr's error quotes
// the value it failed on: the reason recorded on the enforcement, and logged, shows the token
// masked, as every answer shows a sealed string.
func TestRenderFailureMasksSealToken(t *testing.T) {
	t.Parallel()
	st := plainRule(t, "demo.port", `{"port": {"type": "integer"}}`, `{"port": "{{ int(kv.system.port) }}"}`)
	keys := storetest.Keyring(t)
	sealed, err := keys.SealValue(json.RawMessage(`"8443"`))
	require.NoError(t, err)
	_, _, err = st.KeySet(context.Background(), store.KeySetParams{KeyRef: store.KeyRef{Scope: "system", Name: "port"}, Secret: true, Sealed: sealed})
	require.NoError(t, err)

	enf, logs := enforceOne(t, st, keys, "demo.port", json.RawMessage(`{}`), json.RawMessage(`{}`))
	require.NotNil(t, enf.Reason)
	require.Contains(t, *enf.Reason, "render action_params: action_params.port:", "the reason still says what failed")
	require.NotContains(t, *enf.Reason, "attune:sealed:", "the reason quotes the seal token")
	require.Contains(t, *enf.Reason, "int(********)")
	require.Eventually(t, func() bool {
		return strings.Contains(logs.String(), "rule matched but its parameters could not be rendered")
	}, 10*time.Second, 5*time.Millisecond)
	require.NotContains(t, logs.String(), "attune:sealed:", "the log quotes the seal token")
}

// An event comes from outside, so a seal token in its payload was copied from somewhere (a
// database dump): rendered into a parameter, the worker would open it for whoever sent it. A
// rule reads the payload with every sealed string masked, as the API refuses sealed values in
// the parameters a caller sends.
func TestPayloadSealTokenIsNotRendered(t *testing.T) {
	t.Parallel()
	st := plainRule(t, "demo.relay", `{"body": {"type": "string"}, "host": {"type": "string"}}`,
		`{"body": "{{ event.payload.body }}", "host": "{{ event.payload.host }}"}`)
	keys := storetest.Keyring(t)
	stolen, err := keys.SealValue(json.RawMessage(`"the system's secret"`))
	require.NoError(t, err)

	// The message carries the payload as sent, where JSON may spell the token with escapes.
	enf, _ := enforceOne(t, st, keys, "demo.relay", json.RawMessage(`{"body": "x `+stolen+`", "host": "h1"}`),
		json.RawMessage(`{"body": "x \u0061`+stolen[1:]+`", "host": "h1"}`))
	require.JSONEq(t, `{"body": "`+pack.Mask+`", "host": "h1"}`, string(enf.Config), "nothing sealed reaches the worker")
	require.Empty(t, enf.Secrets)
}
