package pack

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/require"

	"github.com/attune-go/attune/store"
)

// memRegistrar is a Registrar over the core pack and what is registered through it, for the
// checks that do not depend on the database.
type memRegistrar struct {
	actions  map[string]store.Action
	triggers map[string]store.Trigger
	rules    map[string]store.Rule
	packs    []store.PackRegistration
}

func newMemRegistrar(t *testing.T) *memRegistrar {
	t.Helper()
	core, err := Core()
	require.NoError(t, err)
	reg, err := core.registration()
	require.NoError(t, err)
	m := &memRegistrar{actions: map[string]store.Action{}, triggers: map[string]store.Trigger{}, rules: map[string]store.Rule{}}
	_, err = m.PackRegister(context.Background(), reg)
	require.NoError(t, err)
	return m
}

func (m *memRegistrar) PackRegister(_ context.Context, reg store.PackRegistration) (store.RegisteredPack, error) {
	for _, a := range reg.Actions {
		m.actions[a.Ref] = a
	}
	for _, t := range reg.Triggers {
		m.triggers[t.Ref] = t
	}
	for ref, r := range m.rules {
		if r.PackRef == reg.Pack.Ref {
			delete(m.rules, ref)
		}
	}
	for _, r := range reg.Rules {
		m.rules[r.Ref] = r
	}
	m.packs = append(m.packs, reg)
	return store.RegisteredPack{Pack: reg.Pack}, nil
}

func (m *memRegistrar) ActionGetByRef(_ context.Context, ref string) (store.Action, error) {
	if a, ok := m.actions[ref]; ok {
		return a, nil
	}
	return store.Action{}, fmt.Errorf("get action %s: %w", ref, store.ErrNotFound)
}

func (m *memRegistrar) RuleListByAction(_ context.Context, ref string) ([]store.Rule, error) {
	var out []store.Rule
	for _, r := range m.rules {
		if r.ActionRef == ref {
			out = append(out, r)
		}
	}
	return out, nil
}

func (m *memRegistrar) RuleListByTrigger(_ context.Context, ref string) ([]store.Rule, error) {
	var out []store.Rule
	for _, r := range m.rules {
		if r.TriggerRef == ref {
			out = append(out, r)
		}
	}
	return out, nil
}

func (m *memRegistrar) TriggerGetByRef(_ context.Context, ref string) (store.Trigger, error) {
	if t, ok := m.triggers[ref]; ok {
		return t, nil
	}
	return store.Trigger{}, fmt.Errorf("get trigger %s: %w", ref, store.ErrNotFound)
}

// A lone component is held to the loader's rules, with its pack given rather than found from
// the directory it sits in.
func TestValidateLoneComponents(t *testing.T) {
	t.Parallel()
	a := Action{Name: "run", RunnerType: RunnerNoop, OutputFormat: OutputText, TimeoutSeconds: DefaultTimeoutSeconds}
	require.NoError(t, ValidateAction(&a, "ops"))
	require.Equal(t, "ops.run", a.Ref)

	tr := Trigger{Ref: "ops.hit", Parameters: Schema{"n": {Type: TypeInteger, Default: 2.0}}}
	require.NoError(t, ValidateTrigger(&tr, "ops"))
	require.Equal(t, "hit", tr.Name)
	require.Equal(t, int64(2), tr.Parameters["n"].Default, "defaults are normalised as the loader does")

	r := Rule{Name: "on_hit", TriggerRef: "ops.hit", ActionRef: "ops.run"}
	require.NoError(t, ValidateRule(&r, "ops"))
	require.Equal(t, "ops.on_hit", r.Ref)
	require.Equal(t, map[string]any{}, r.TriggerParams, "stored as {} rather than null")

	tests := []struct {
		name string
		err  error
		want string
	}{
		{"bad pack ref", ValidateAction(&Action{Name: "x", RunnerType: RunnerNoop, OutputFormat: OutputText, TimeoutSeconds: 1}, "Ops"),
			`pack_ref: pack ref "Ops" is not valid; want lower case letters, digits, _ and -, starting with a letter`},
		{"ref outside the pack", ValidateTrigger(&Trigger{Ref: "other.hit"}, "ops"),
			`pack_ref: ref "other.hit" does not belong to pack "ops"`},
		{"runner", ValidateAction(&Action{Name: "x", RunnerType: "python", OutputFormat: OutputText, TimeoutSeconds: 1}, "ops"),
			`runner_type: unknown runner "python"; want shell, http, noop, workflow or inquiry`},
		{"timeout", ValidateAction(&Action{Name: "x", RunnerType: RunnerNoop, OutputFormat: OutputText}, "ops"),
			"timeout_seconds: want more than 0, got 0"},
		{"escaping script", ValidateAction(&Action{Name: "x", RunnerType: RunnerShell, EntryPoint: "../x.sh", OutputFormat: OutputText, TimeoutSeconds: 1}, "ops"),
			`entry_point: "../x.sh" must stay inside actions/, with no "..", "." or empty elements`},
		{"schema", ValidateTrigger(&Trigger{Name: "t", Output: Schema{"n": {Type: "int"}}}, "ops"),
			`output.n.type: unknown type "int"; want string, integer, number, boolean, object, array or any`},
		{"rule without action", ValidateRule(&Rule{Name: "r", TriggerRef: "core.webhook"}, "ops"),
			"action_ref: required"},
		{"no ref", ValidateRule(&Rule{TriggerRef: "core.webhook", ActionRef: "core.noop"}, "ops"),
			"ref: required"},
	}
	for _, tt := range tests {
		require.EqualError(t, tt.err, tt.want, tt.name)
		var perr *Error
		require.ErrorAs(t, tt.err, &perr, tt.name)
		require.NotEmpty(t, perr.Field, tt.name)
	}
}

func TestCheckScript(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "actions", "lib"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "actions", "lib", "run.sh"), []byte("#!/bin/sh\n"), 0o755))

	require.NoError(t, os.WriteFile(filepath.Join(dir, "actions", "plain.sh"), []byte("#!/bin/sh\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "shared.sh"), []byte("#!/bin/sh\n"), 0o700))
	require.NoError(t, os.Symlink("../shared.sh", filepath.Join(dir, "actions", "shared.sh")))
	outside := filepath.Join(t.TempDir(), "elsewhere.sh")
	require.NoError(t, os.WriteFile(outside, []byte("#!/bin/sh\n"), 0o755))
	require.NoError(t, os.Symlink(outside, filepath.Join(dir, "actions", "out.sh")))
	realOutside, err := filepath.EvalSymlinks(outside)
	require.NoError(t, err)

	require.NoError(t, CheckScript(dir, "lib/run.sh"))
	require.NoError(t, CheckScript(dir, "shared.sh"), "a link within the pack is the pack's")
	require.EqualError(t, CheckScript(dir, "gone.sh"), `entry_point: "gone.sh" not found in actions/`)
	require.EqualError(t, CheckScript(dir, "lib"), "entry_point: actions/lib is a directory; want a script file")
	require.EqualError(t, CheckScript(dir, "plain.sh"), "entry_point: actions/plain.sh is not executable (mode 0644); the worker runs it as a program: chmod +x it")
	require.EqualError(t, CheckScript(dir, "out.sh"), "entry_point: actions/out.sh is a link that leads out of the pack, to "+realOutside)
	require.EqualError(t, CheckScript("", "run.sh"), "entry_point: the pack has no directory on this server to hold scripts")
}

// CheckRule is Register's check of one rule: what it names exists, its trigger_params fit the
// trigger's parameter schema, its conditions and templates compile.
func TestCheckRule(t *testing.T) {
	t.Parallel()
	reg := newMemRegistrar(t)
	ctx := context.Background()
	rule := func(trigger string, params map[string]any, conditions any, actionParams map[string]any) Rule {
		return Rule{Ref: "ops.r", TriggerRef: trigger, TriggerParams: params, Conditions: conditions, ActionRef: "core.noop", ActionParams: actionParams}
	}
	require.NoError(t, CheckRule(ctx, reg, rule("core.webhook", map[string]any{"url": "x"}, nil, nil)))
	require.NoError(t, CheckRule(ctx, reg, rule("core.intervaltimer", map[string]any{"interval": 5.0}, nil, nil)),
		"a number from JSON that is whole is an integer")

	tests := []struct {
		name string
		rule Rule
		want string
	}{
		{"no trigger", rule("core.nothing", nil, nil, nil), `trigger_ref: no trigger "core.nothing"`},
		{"no action", Rule{Ref: "ops.r", TriggerRef: "core.webhook", TriggerParams: map[string]any{"url": "x"}, ActionRef: "core.gone"},
			`action_ref: no action "core.gone"`},
		{"missing trigger param", rule("core.webhook", map[string]any{}, nil, nil), `trigger_params.url: required`},
		{"unknown trigger param", rule("core.webhook", map[string]any{"url": "x", "path": "y"}, nil, nil),
			`trigger_params.path: unknown; want url`},
		{"trigger param type", rule("core.intervaltimer", map[string]any{"interval": "often"}, nil, nil),
			`trigger_params.interval: want integer, got "often"`},
		{"trigger param enum", rule("core.intervaltimer", map[string]any{"interval": 1, "unit": "weeks"}, nil, nil),
			`trigger_params.unit: "weeks" is not one of "seconds", "minutes", "hours", "days"`},
		{"conditions", rule("core.webhook", map[string]any{"url": "x"}, map[string]any{"field": "body.x", "operator": "resembles"}, nil),
			"conditions: "},
		{"templates", rule("core.webhook", map[string]any{"url": "x"}, nil, map[string]any{"m": "{{ event.payload. }}"}),
			"action_params.m: "},
	}
	for _, tt := range tests {
		err := CheckRule(ctx, reg, tt.rule)
		require.ErrorContains(t, err, tt.want, tt.name)
		var perr *Error
		require.ErrorAs(t, err, &perr, tt.name)
	}
}

// Registering a pack holds its rules' trigger_params to their trigger's schema, the pack's
// own triggers' and registered ones' alike, and names the file and field.
func TestRegisterChecksTriggerParams(t *testing.T) {
	t.Parallel()
	reg := newMemRegistrar(t)
	packWith := func(rule string) *Pack {
		fsys := map[string]string{
			"pack.yaml":       "ref: ops\n",
			"actions/a.yaml":  "name: a\nrunner_type: noop\n",
			"triggers/t.yaml": "name: t\nparameters: {size: {type: integer, required: true}}\n",
			"rules/r.yaml":    rule,
		}
		p, err := LoadFS(mapFS(fsys), ".")
		require.NoError(t, err)
		return p
	}
	_, err := Register(context.Background(), reg, packWith("name: r\ntrigger_ref: ops.t\ntrigger_params: {size: 3}\naction_ref: ops.a\n"))
	require.NoError(t, err)

	_, err = Register(context.Background(), reg, packWith("name: r\ntrigger_ref: ops.t\naction_ref: ops.a\n"))
	require.EqualError(t, err, `rules/r.yaml: trigger_params.size: required`)
	_, err = Register(context.Background(), reg, packWith("name: r\ntrigger_ref: core.webhook\ntrigger_params: {uri: x}\naction_ref: ops.a\n"))
	require.EqualError(t, err, `rules/r.yaml: trigger_params.uri: unknown; want url`)
	require.Len(t, reg.packs, 2, "core, then the one good registration: a refused pack writes nothing")
}

// The stored form of a schema reads back as the schema.
func TestStoredSchema(t *testing.T) {
	t.Parallel()
	s, err := StoredSchema(json.RawMessage(`{"url": {"type": "string", "required": true}}`))
	require.NoError(t, err)
	require.Equal(t, Schema{"url": {Type: TypeString, Required: true}}, s)
	s, err = StoredSchema(nil)
	require.NoError(t, err)
	require.Nil(t, s)
	require.NoError(t, CheckTriggerParams(s, json.RawMessage(`{}`)))
	require.EqualError(t, CheckTriggerParams(Schema{"url": {Type: TypeString, Required: true}}, json.RawMessage(`{}`)),
		`trigger_params.url: required`)
}

func mapFS(files map[string]string) fstest.MapFS {
	fsys := fstest.MapFS{}
	for name, data := range files {
		fsys[name] = file(data)
	}
	return fsys
}
