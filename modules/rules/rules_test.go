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

// A rule added after the matcher cached its trigger's rules matches the very next event,
// even when the change notification has not reached the matcher.
func TestRuleAddedMatchesNextEvent(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st := storetest.NewStore(t)
	register := func(rules ...store.Rule) {
		t.Helper()
		_, err := st.PackRegister(ctx, store.PackRegistration{
			Pack:     store.Pack{Ref: "demo"},
			Triggers: []store.Trigger{{Ref: "demo.hook", Enabled: true}},
			Actions:  []store.Action{{Ref: "demo.run", RunnerType: "noop", OutputFormat: "text", TimeoutSeconds: 5, Enabled: true}},
			Rules:    rules,
		})
		require.NoError(t, err)
	}
	rule := func(ref string) store.Rule {
		return store.Rule{Ref: ref, TriggerRef: "demo.hook", ActionRef: "demo.run", Enabled: true}
	}
	register(rule("demo.first"))

	br := membroker.New(broker.Options{})
	defer br.Close()
	m, err := rules.New(rules.Config{}, rules.Deps{Logger: slog.New(slog.DiscardHandler), Store: storetest.Deaf{Store: st}, Broker: br, Sealer: storetest.Keyring(t)})
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()

	enforced := func(ruleRefs ...string) {
		t.Helper()
		ev, err := st.EventInsert(ctx, store.EventInsertParams{TriggerRef: "demo.hook", Payload: json.RawMessage(`{}`)})
		require.NoError(t, err)
		require.NoError(t, broker.Send(ctx, br, broker.NewEventCreated(ev.ID, ev.TriggerRef, "", ev.Payload, ev.Created, ev.Trace())))
		require.Eventually(t, func() bool {
			got, err := st.EventGet(ctx, ev.ID)
			require.NoError(t, err)
			return got.RulesEvaluatedAt != nil
		}, 10*time.Second, 5*time.Millisecond)
		var got []string
		for _, ref := range []string{"demo.first", "demo.second"} {
			enfs, _, err := st.EnforcementList(ctx, store.EnforcementFilter{RuleRef: ref}, store.Page{Limit: 100})
			require.NoError(t, err)
			for _, e := range enfs {
				if e.EventID == ev.ID {
					got = append(got, ref)
				}
			}
		}
		require.ElementsMatch(t, ruleRefs, got)
	}
	enforced("demo.first")
	register(rule("demo.first"), rule("demo.second"))
	enforced("demo.first", "demo.second")

	cancel()
	require.NoError(t, <-done)
}
