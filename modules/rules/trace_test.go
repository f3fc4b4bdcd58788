package rules_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/attune-go/attune/broker"
	"github.com/attune-go/attune/broker/membroker"
	"github.com/attune-go/attune/modules/rules"
	"github.com/attune-go/attune/store"
	"github.com/attune-go/attune/store/storetest"
)

// The matcher's enforcements carry the trace of their event, in their rows and in the header
// of the message that announces each; and a webhook's rule that cannot be used (conditions
// that do not parse) is in the trace with why, rather than passed by in silence because its
// url was never read.
func TestEnforcementsCarryTheTrace(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st := storetest.NewStore(t)
	_, err := st.PackRegister(ctx, store.PackRegistration{
		Pack:     store.Pack{Ref: "demo"},
		Triggers: []store.Trigger{{Ref: rules.WebhookTrigger, Enabled: true}},
		Actions:  []store.Action{{Ref: "demo.run", RunnerType: "noop", OutputFormat: "text", TimeoutSeconds: 5, Enabled: true}},
		Rules: []store.Rule{
			{Ref: "demo.good", TriggerRef: rules.WebhookTrigger, TriggerParams: json.RawMessage(`{"url": "traced"}`), ActionRef: "demo.run", Enabled: true},
			{Ref: "demo.unusable", TriggerRef: rules.WebhookTrigger, TriggerParams: json.RawMessage(`{"url": "traced"}`),
				Conditions: json.RawMessage(`{"no such operator": 1}`), ActionRef: "demo.run", Enabled: true},
			{Ref: "demo.elsewhere", TriggerRef: rules.WebhookTrigger, TriggerParams: json.RawMessage(`{"url": "other"}`),
				Conditions: json.RawMessage(`{"no such operator": 1}`), ActionRef: "demo.run", Enabled: true},
		},
	})
	require.NoError(t, err)

	br := membroker.New(broker.Options{})
	defer br.Close()
	announced := make(chan broker.Message, 8)
	go func() {
		_ = br.Subscribe(ctx, broker.Subscription{Queue: broker.QueueExecutorEnforcement, Prefetch: 1}, func(_ context.Context, m broker.Message) error {
			announced <- m
			return nil
		})
	}()
	m, err := rules.New(rules.Config{}, rules.Deps{Logger: slog.New(slog.DiscardHandler), Store: storetest.Deaf{Store: st}, Broker: br,
		Sealer: storetest.Keyring(t)})
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()

	payload := json.RawMessage(`{"url": "traced", "headers": {}, "body": {}}`)
	ev, err := st.EventInsert(ctx, store.EventInsertParams{TriggerRef: rules.WebhookTrigger, Payload: payload, Source: "webhook"})
	require.NoError(t, err)
	require.NotEmpty(t, ev.Trace())
	require.NoError(t, broker.Send(ctx, br, broker.NewEventCreated(ev.ID, ev.TriggerRef, "", ev.Payload, ev.Created, ev.Trace())))

	select {
	case msg := <-announced:
		p, err := broker.Decode[broker.EnforcementCreated](msg)
		require.NoError(t, err)
		require.Equal(t, "demo.good", p.RuleRef)
		require.Equal(t, ev.Trace(), msg.Headers.TraceID, "the announcement carries the trace")
	case <-time.After(30 * time.Second):
		t.Fatal("no enforcement announced")
	}
	trace, err := st.TraceGet(ctx, ev.Trace())
	require.NoError(t, err)
	require.Len(t, trace.Enforcements, 2, "the good rule's and the unusable one's; the other url's rule does not listen")
	refused := trace.Enforcements[1]
	if refused.RuleRef != "demo.unusable" {
		refused = trace.Enforcements[0]
	}
	require.Equal(t, "demo.unusable", refused.RuleRef)
	require.Equal(t, store.EnforcementProcessed, refused.Status)
	require.NotNil(t, refused.Reason)
	require.Contains(t, *refused.Reason, "parse conditions")

	cancel()
	require.NoError(t, <-done)
}
