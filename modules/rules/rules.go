// Package rules is the rule matcher, run with the sensor role: it takes each new event,
// evaluates the enabled rules of its trigger, records an enforcement for every match (or for
// every rule that could not be evaluated, with the reason) and hands the matches to the
// executor.
package rules

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/attune-go/attune/broker"
	"github.com/attune-go/attune/modules/pack"
	"github.com/attune-go/attune/modules/ruleeval"
	"github.com/attune-go/attune/store"
)

// Store is what the matcher reads and writes.
type Store interface {
	EventGet(ctx context.Context, id int64) (store.Event, error)
	RuleListEnabledByTrigger(ctx context.Context, triggerRef string) ([]store.Rule, error)
	ComponentVersion(ctx context.Context) (int64, error)
	EventEnforce(ctx context.Context, id int64, matches []store.EnforcementMatch) ([]store.Enforcement, error)
	KeyLookup(ctx context.Context, packRef string, user *int64, names []store.KeyName) (map[store.KeyName]store.KeyFound, error)
	Listen(ctx context.Context, channel string, logger *slog.Logger, onChange func(listening bool)) error
}

// Config tunes the matcher.
type Config struct {
	// Prefetch bounds the events matched at once. Default 16.
	Prefetch int
}

// Deps are the matcher's collaborators. Relay sends the enforcements it commits, keeping what
// the broker cannot take at once (package broker/relay); nil publishes through Broker
// directly.
type Deps struct {
	Logger *slog.Logger
	Store  Store
	Broker broker.Broker
	Relay  broker.Sender
	Sealer Sealer
	// Metrics observes how long events wait for their enforcements; nil observes nothing.
	Metrics Metrics
}

// Metrics observes the stages of the pipeline (the process's /metrics).
type Metrics interface {
	// Stage observes how long one reached stage from the stage before it.
	Stage(stage string, d time.Duration)
}

// Sealer seals the values of secret parameters before an enforcement is written (package
// store/seal): only the worker opens them.
type Sealer interface {
	SealParams(params json.RawMessage, names []string) (json.RawMessage, error)
}

// Module is the rule matcher.
type Module struct {
	cfg  Config
	deps Deps
	// rules caches the compiled enabled rules by trigger; a listener drops it when rules
	// change, and it caches nothing while that listener is down.
	rules *store.RefCache[[]compiledRule]
	// watch drops rules changed just before an event, ahead of their NOTIFY.
	watch *store.ComponentWatch
}

// New checks the configuration.
func New(cfg Config, deps Deps) (*Module, error) {
	if deps.Logger == nil || deps.Store == nil || deps.Broker == nil || deps.Sealer == nil {
		return nil, errors.New("rules: Logger, Store, Broker and Sealer are required")
	}
	cfg.Prefetch = cmp.Or(cfg.Prefetch, 16)
	if deps.Relay == nil {
		deps.Relay = broker.Direct(deps.Broker)
	}
	m := &Module{cfg: cfg, deps: deps}
	m.rules = store.NewRefCache(m.loadRules)
	m.watch = store.NewComponentWatch(deps.Store.ComponentVersion, m.rules)
	return m, nil
}

// Name implements the role module contract.
func (m *Module) Name() string { return "rules" }

// Run matches events until ctx ends. The rule cache follows rule changes through
// LISTEN/NOTIFY, and is bypassed while that is not listening.
func (m *Module) Run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		return m.deps.Store.Listen(ctx, store.ChannelRulesChanged, m.deps.Logger, m.rules.Invalidate)
	})
	g.Go(func() error {
		return m.deps.Broker.Subscribe(ctx, broker.Subscription{Queue: broker.QueueRuleEvents, Prefetch: m.cfg.Prefetch}, m.handle)
	})
	return g.Wait()
}

func (m *Module) handle(ctx context.Context, msg broker.Message) error {
	p, err := broker.Decode[broker.EventCreated](msg)
	if err != nil {
		return err
	}
	ev, err := m.event(ctx, p)
	if errors.Is(err, store.ErrNotFound) {
		return broker.Permanent(err)
	}
	if err != nil {
		return err
	}
	if ev.RulesEvaluatedAt != nil {
		return nil // a redelivery: the rules have seen this event
	}
	if err := m.watch.Check(ctx); err != nil {
		return err
	}
	rules, err := m.rules.Get(ctx, ev.TriggerRef)
	if err != nil {
		return err
	}
	var payload map[string]any
	if err := json.Unmarshal(ev.Payload, &payload); err != nil {
		return broker.Permanent(fmt.Errorf("decode payload of event %d: %w", ev.ID, err))
	}
	if pack.HoldsToken(payload) {
		// Sealed values come from Attune alone: one in an event's payload was copied from
		// somewhere, and rendered into a parameter the worker would open it for its sender.
		// Looked for once decoded, as JSON may spell it with escapes.
		if payload, err = maskedPayload(payload); err != nil {
			return broker.Permanent(fmt.Errorf("decode payload of event %d: %w", ev.ID, err))
		}
	}

	var verdicts []store.EnforcementMatch
	actions := make(map[string]string)
	for _, r := range rules {
		if !listensTo(r, ev, payload) {
			continue
		}
		in := ruleeval.Input{EventID: ev.ID, TriggerRef: ev.TriggerRef, Payload: payload, RuleRef: r.rule.Ref}
		var o outcome
		if in.KV, o.reason, err = m.keys(ctx, r); err != nil {
			return err
		}
		if o.reason == "" {
			o = enforce(r, in)
		}
		// An error of a template that computed with a secret key quotes its seal token.
		o.reason, o.failure = pack.MaskSealedText(o.reason), pack.MaskSealedText(o.failure)
		if !o.matched && o.reason == "" {
			continue
		}
		if o.reason != "" {
			m.deps.Logger.WarnContext(ctx, "rule could not be evaluated", "rule", r.rule.Ref, "event_id", ev.ID, "trace_id", msg.Headers.TraceID,
				"reason", o.reason)
		}
		if o.failure != "" {
			m.deps.Logger.WarnContext(ctx, "rule matched but its parameters could not be rendered", "rule", r.rule.Ref, "event_id", ev.ID,
				"trace_id", msg.Headers.TraceID, "reason", o.failure)
		}
		secrets := r.secrets
		if o.config != nil {
			// Any parameter a secret key was rendered into is secret too; the values of them
			// all are sealed before the enforcement is written.
			secrets = pack.WithSealed(secrets, o.config)
			if o.config, err = m.deps.Sealer.SealParams(o.config, secrets); err != nil {
				return fmt.Errorf("rule %s: %w", r.rule.Ref, err)
			}
		}
		verdicts = append(verdicts, store.EnforcementMatch{RuleRef: r.rule.Ref, Conditions: r.rule.Conditions, Config: o.config,
			Reason: o.reason, Failure: o.failure, Secrets: secrets})
		actions[r.rule.Ref] = r.rule.ActionRef
	}
	// One statement marks the event evaluated and records the enforcements: a concurrent or
	// later delivery of the same event finds it evaluated and records nothing.
	created, err := m.deps.Store.EventEnforce(ctx, ev.ID, verdicts)
	if err != nil {
		return err
	}
	if m.deps.Metrics != nil && !ev.Created.IsZero() {
		for _, e := range created {
			m.deps.Metrics.Stage("enforced", e.Created.Sub(ev.Created))
		}
	}
	matches := make([]broker.Payload, len(created))
	for i, e := range created {
		match := broker.EnforcementCreated{EnforcementID: e.ID, RuleRef: e.RuleRef, EventID: ev.ID, Created: e.Created}
		// Secret values never travel in a message: without the snapshot the executor reads
		// the enforcement (its parameters and any render failure) back from PostgreSQL.
		if len(e.Secrets) == 0 {
			match.ActionRef, match.Config, match.Failure = actions[e.RuleRef], e.Config, deref(e.Reason)
		}
		matches[i] = broker.InTrace(e.Trace(), match)
	}
	// Committed: the relay keeps what the broker cannot take now, and a crash before the
	// publish is repaired by the executor's sweeper, which republishes enforcements left in
	// created.
	return m.deps.Relay.Send(ctx, matches...)
}

// maskedPayload is payload with every string holding a seal token masked.
func maskedPayload(payload map[string]any) (map[string]any, error) {
	raw, err := json.Marshal(payload)
	if err != nil {
		return nil, err
	}
	var out map[string]any
	err = json.Unmarshal(pack.MaskSealed(raw), &out)
	return out, err
}

// keys reads the datastore keys rule r reads, in one statement (nothing for a rule that reads
// none), as kv. A condition that reads a secret key cannot be evaluated: the reason says so.
func (m *Module) keys(ctx context.Context, r compiledRule) (kv map[string]any, reason string, err error) {
	if len(r.keys) == 0 || r.err != nil {
		return nil, "", nil
	}
	rows, err := m.deps.Store.KeyLookup(ctx, r.rule.PackRef, nil, ruleeval.NamesAs[store.KeyName](r.keys))
	if err != nil {
		return nil, "", err
	}
	found := ruleeval.FoundFrom(rows)
	if err := ruleeval.RefuseSecretKeys(r.conditionKeys, found, "conditions"); err != nil {
		return nil, err.Error(), nil
	}
	kv, err = ruleeval.KV(found)
	if err != nil {
		return nil, fmt.Sprintf("read keys: %v", err), nil
	}
	return kv, "", nil
}

// renderReason says why action_params could not be rendered. The detail of a secret
// parameter's failure is left out: it may quote the parameter's template, or the value it
// was given, and the reason is stored, shown and logged.
func renderReason(err error, secrets []string) string {
	var pe *ruleeval.PathError
	if errors.As(err, &pe) {
		for _, name := range secrets {
			// Render's paths start at "action_params".
			p := "action_params." + name
			if pe.Path == p || strings.HasPrefix(pe.Path, p+".") || strings.HasPrefix(pe.Path, p+"[") {
				return fmt.Sprintf("render %s: failed; the detail is withheld, as the parameter is secret", p)
			}
		}
	}
	return fmt.Sprintf("render action_params: %v", err)
}

// WebhookTrigger is the trigger of events posted to /api/v1/webhooks/{url}.
const WebhookTrigger = "core.webhook"

// listensTo reports whether rule r wants event ev at all, before its conditions: an event
// fired for one rule (its timer) goes to that rule only, and a webhook goes to the rules
// configured for its url.
func listensTo(r compiledRule, ev store.Event, payload map[string]any) bool {
	if ev.RuleRef != nil {
		return *ev.RuleRef == r.rule.Ref
	}
	if ev.TriggerRef == WebhookTrigger {
		url, _ := payload["url"].(string)
		want, _ := r.triggerParams["url"].(string)
		return url == want
	}
	return true
}

// event returns the event a message announces: from the message when it carries the payload
// (events never change), from the store otherwise. Either way EventEnforce decides atomically
// whether the rules have seen it already.
func (m *Module) event(ctx context.Context, p broker.EventCreated) (store.Event, error) {
	if p.Payload == nil {
		return m.deps.Store.EventGet(ctx, p.EventID)
	}
	ev := store.Event{ID: p.EventID, TriggerRef: p.TriggerRef, Payload: p.Payload, Created: p.Created}
	if p.RuleRef != "" {
		ev.RuleRef = &p.RuleRef
	}
	return ev, nil
}

// outcome is one rule's verdict: matched with the rendered parameters in config, matched but
// failed to render (failure), or not evaluable (reason).
type outcome struct {
	matched bool
	config  json.RawMessage
	reason  string
	failure string
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// enforce evaluates one rule against one event. A rule that cannot be evaluated or rendered
// yields a reason instead of an error: it is recorded on an enforcement, where operators see
// it, and the other rules of the event still run.
func enforce(r compiledRule, in ruleeval.Input) outcome {
	if r.err != nil {
		return outcome{reason: r.err.Error()}
	}
	ok, err := r.cond.Match(in)
	if err != nil {
		return outcome{reason: fmt.Sprintf("evaluate conditions: %v", err)}
	}
	if !ok {
		return outcome{}
	}
	rendered, err := ruleeval.Render(r.params, in)
	if err != nil {
		return outcome{matched: true, failure: fmt.Sprintf("rule %s: %s", r.rule.Ref, renderReason(err, r.secrets))}
	}
	config, err := json.Marshal(rendered)
	if err != nil {
		return outcome{matched: true, failure: fmt.Sprintf("rule %s: encode action_params: %v", r.rule.Ref, err)}
	}
	return outcome{matched: true, config: config}
}
