package pack

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/require"
)

const packsDir = "../../testdata/packs"

func TestLoadDemo(t *testing.T) {
	t.Parallel()
	p, err := Load(filepath.Join(packsDir, "demo"))
	require.NoError(t, err)

	abs, err := filepath.Abs(filepath.Join(packsDir, "demo"))
	require.NoError(t, err)
	require.Equal(t, abs, p.Dir)
	require.Equal(t, "demo", p.Ref)
	require.Equal(t, "Demo", p.Label)
	require.Equal(t, "0.1.0", p.Version)

	require.Equal(t, []string{"demo.fail", "demo.hello", "demo.json", "demo.nap", "demo.slow", "demo.step"}, refs(p.Actions, func(a Action) string { return a.Ref }))
	hello := p.Actions[1]
	require.Equal(t, Action{
		Ref: "demo.hello", Name: "hello", Label: "Hello", Description: "Greets someone.",
		RunnerType: RunnerShell, EntryPoint: "hello.sh",
		Parameters:   Schema{"name": {Type: TypeString, Description: "Who to greet.", Default: "world"}},
		OutputFormat: OutputText, TimeoutSeconds: DefaultTimeoutSeconds, Enabled: true,
		File: "actions/hello.yaml",
	}, hello)
	fail := p.Actions[0]
	require.Equal(t, "fail", fail.Name, "the short form")
	require.Equal(t, "demo.fail", fail.Ref)
	require.Equal(t, OutputJSON, p.Actions[2].OutputFormat)
	require.Equal(t, 1, p.Actions[3].TimeoutSeconds)
	require.Equal(t, 30, p.Actions[4].TimeoutSeconds)
	for _, a := range p.Actions {
		info, err := os.Stat(filepath.Join(p.Dir, "actions", a.EntryPoint))
		require.NoError(t, err)
		require.NotZero(t, info.Mode()&0o111, "%s is executable", a.EntryPoint)
	}

	require.Len(t, p.Triggers, 1)
	require.Equal(t, "demo.order", p.Triggers[0].Ref)
	require.Equal(t, Param{Type: TypeInteger, Required: true}, p.Triggers[0].Output["id"])

	require.Equal(t, []string{"demo.every_second", "demo.on_broken", "demo.on_typed", "demo.on_webhook"}, refs(p.Rules, func(r Rule) string { return r.Ref }))
	tick := p.Rules[0]
	require.Equal(t, "core.intervaltimer", tick.TriggerRef)
	require.Equal(t, map[string]any{"unit": "seconds", "interval": 1}, tick.TriggerParams)
	require.Nil(t, tick.Conditions)
	require.Equal(t, map[string]any{"cmd": "echo tick"}, tick.ActionParams)
	require.False(t, tick.Enabled, "the timer ships disabled: enabled: false")

	hook := p.Rules[3]
	require.Equal(t, map[string]any{"url": "demo"}, hook.TriggerParams)
	require.Equal(t, map[string]any{"message": "{{ event.payload.body.name }}"}, hook.ActionParams)
	require.Equal(t, map[string]any{"all": []any{
		map[string]any{"field": "body.name", "operator": "exists"},
		map[string]any{"any": []any{
			map[string]any{"field": "body.kind", "operator": "equals", "value": "order"},
			map[string]any{"field": "body.kind", "operator": "equals", "value": "refund"},
		}},
		map[string]any{"not": map[string]any{"field": "body.test", "operator": "equals", "value": true}},
	}}, hook.Conditions)

	require.Equal(t, []Policy{{
		Ref: "demo.hello_concurrency", Name: "hello_concurrency", ActionRef: "demo.hello", Enabled: true,
		Concurrency: &Concurrency{Limit: 2, Method: MethodEnqueue}, File: "policies/hello.yaml",
	}, {
		Ref: "demo.step_limit", Name: "step_limit", ActionRef: "demo.step", Enabled: true,
		Concurrency: &Concurrency{Limit: 2, Method: MethodEnqueue}, File: "policies/step.yaml",
	}}, p.Policies)
}

func TestLoadFSSubdirectory(t *testing.T) {
	t.Parallel()
	p, err := LoadFS(os.DirFS(packsDir), "demo")
	require.NoError(t, err)
	require.Empty(t, p.Dir, "an fs.FS has no directory on disk")
	require.Len(t, p.Actions, 6)
	require.Equal(t, "actions/hello.yaml", p.Actions[1].File, "files are named relative to the pack")
}

// brokenPacks are the packs under testdata/packs/broken, each refused whole for one mistake,
// with the file and field named: by Load when the files alone show it, by Register when it
// takes what they refer to (a trigger's schedule, an action's parameters).
var brokenPacks = []struct {
	dir       string
	register  bool // refused by Register, Load having passed it
	wantErr   string
	wantFile  string
	wantField string
}{
	{dir: "bad_yaml", wantErr: "actions/hello.yaml: line 3: did not find expected key", wantFile: "actions/hello.yaml"},
	{dir: "unknown_key", wantErr: "actions/hello.yaml: line 3: field bogus not found in type pack.Action", wantFile: "actions/hello.yaml"},
	{dir: "foreign_ref", wantErr: `rules/on_push.yaml: ref "other.on_push" does not belong to pack "demo"`, wantFile: "rules/on_push.yaml"},
	{dir: "wrong_default", wantErr: `actions/count.yaml: parameters.count.default: want integer, got "three"`,
		wantFile: "actions/count.yaml", wantField: "parameters.count.default"},
	{dir: "missing_script", wantErr: `actions/deploy.yaml: entry_point: "deploy.sh" not found in actions/`,
		wantFile: "actions/deploy.yaml", wantField: "entry_point"},
	{dir: "escaping_entry_point", wantErr: `actions/deploy.yaml: entry_point: "../pack.yaml" must stay inside actions/, with no "..", "." or empty elements`,
		wantFile: "actions/deploy.yaml", wantField: "entry_point"},
	{dir: "not_executable", wantErr: "actions/deploy.yaml: entry_point: actions/deploy.sh is not executable (mode 0644); the worker runs it as a program: chmod +x it",
		wantFile: "actions/deploy.yaml", wantField: "entry_point"},
	{dir: "script_is_directory", wantErr: "actions/deploy.yaml: entry_point: actions/deploy is a directory; want a script file",
		wantFile: "actions/deploy.yaml", wantField: "entry_point"},
	{dir: "link_out_of_pack", wantErr: "actions/deploy.yaml: entry_point: actions/deploy.sh is a link that leads out of the pack, to {demo}/actions/hello.sh",
		wantFile: "actions/deploy.yaml", wantField: "entry_point"},
	{dir: "duplicate_ref", wantErr: `actions/b.yaml: ref: action "demo.same" is already defined in actions/a.yaml`,
		wantFile: "actions/b.yaml", wantField: "ref"},
	{dir: "unknown_runner", wantErr: `actions/deploy.yaml: runner_type: unknown runner "python"; want shell, http, noop, workflow or inquiry`,
		wantFile: "actions/deploy.yaml", wantField: "runner_type"},
	{dir: "no_ref", wantErr: "pack.yaml: ref: required", wantFile: "pack.yaml", wantField: "ref"},
	{dir: "bad_cron", register: true, wantErr: "rules/nightly.yaml: trigger_params.expression: field 1 (minute): 61 is out of range 0-59",
		wantFile: "rules/nightly.yaml", wantField: "trigger_params.expression"},
	{dir: "zero_interval", register: true, wantErr: "rules/tick.yaml: trigger_params.interval: want an integer greater than 0, got 0",
		wantFile: "rules/tick.yaml", wantField: "trigger_params.interval"},
	{dir: "bad_fire_at", register: true,
		wantErr:  `rules/once.yaml: trigger_params.fire_at: "tomorrow" is not an RFC 3339 time; want a date, a time and a zone, such as 2030-01-02T15:04:05Z or 2030-01-02T15:04:05+02:00`,
		wantFile: "rules/once.yaml", wantField: "trigger_params.fire_at"},
	{dir: "unknown_timezone", register: true,
		wantErr:  `rules/nightly.yaml: trigger_params.timezone: unknown time zone "Mars/Olympus"; want an IANA name such as UTC or Europe/Paris`,
		wantFile: "rules/nightly.yaml", wantField: "trigger_params.timezone"},
	{dir: "action_param_type", register: true, wantErr: `rules/on_push.yaml: action_params.count: want integer, got "three"`,
		wantFile: "rules/on_push.yaml", wantField: "action_params.count"},
	{dir: "action_param_enum", register: true, wantErr: `rules/on_push.yaml: action_params.mode: "reckless" is not one of "fast", "careful"`,
		wantFile: "rules/on_push.yaml", wantField: "action_params.mode"},
	{dir: "action_param_unknown", register: true, wantErr: "rules/on_push.yaml: action_params.colour: unknown; want count or mode",
		wantFile: "rules/on_push.yaml", wantField: "action_params.colour"},
	{dir: "action_param_missing", register: true, wantErr: "rules/on_push.yaml: action_params.count: required",
		wantFile: "rules/on_push.yaml", wantField: "action_params.count"},
}

// brokenPackError is the refusal of a broken pack, with {demo} standing for the real path of
// the demo pack's directory.
func brokenPackError(t *testing.T, want string) string {
	t.Helper()
	demo, err := filepath.EvalSymlinks(filepath.Join(packsDir, "demo"))
	require.NoError(t, err)
	demo, err = filepath.Abs(demo)
	require.NoError(t, err)
	return strings.ReplaceAll(want, "{demo}", demo)
}

func TestLoadBrokenPacks(t *testing.T) {
	t.Parallel()
	entries, err := os.ReadDir(filepath.Join(packsDir, "broken"))
	require.NoError(t, err)
	require.Len(t, entries, len(brokenPacks), "every broken pack has a case")

	for _, tt := range brokenPacks {
		t.Run(tt.dir, func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join(packsDir, "broken", tt.dir)
			p, err := Load(dir)
			if tt.register {
				require.NoError(t, err)
				reg := newMemRegistrar(t)
				_, err = Register(context.Background(), reg, p)
				require.EqualError(t, err, tt.wantErr)
				require.Len(t, reg.packs, 1, "nothing written beyond the core pack")
			} else {
				require.Nil(t, p)
				require.EqualError(t, err, "load pack "+dir+": "+brokenPackError(t, tt.wantErr))
			}
			var perr *Error
			require.ErrorAs(t, err, &perr)
			require.Equal(t, tt.wantFile, perr.File)
			require.Equal(t, tt.wantField, perr.Field)
		})
	}
}

func TestLoadMissingPack(t *testing.T) {
	t.Parallel()
	_, err := Load(filepath.Join(t.TempDir(), "nothing"))
	require.ErrorContains(t, err, "pack.yaml: open pack.yaml: no such file or directory")
	require.ErrorIs(t, err, os.ErrNotExist)
}

func TestLoadDefaultsAndIgnoredFiles(t *testing.T) {
	t.Parallel()
	fsys := fstest.MapFS{
		"pack.yaml":                 file("ref: p\nversion: 1.0\n"),
		"README.md":                 file("not read"),
		"actions/run.yml":           file("name: run\nrunner_type: shell\nentry_point: lib/run.sh\nenabled: false\n"),
		"actions/lib/run.sh":        file("#!/bin/sh\n"),
		"actions/lib/ignored.yaml":  file("not: [read"),
		"actions/.hidden.yaml":      file("not: [read"),
		"actions/notes.txt":         file("not: [read"),
		"actions/same.yaml":         file("ref: p.same\nrunner_type: noop\n"),
		"triggers/same.yaml":        file("ref: p.same\n"),
		"sensors/watch.yaml":        file("name: watch\nentry_point: watch.sh\ntrigger_refs: [p.same, core.webhook]\n"),
		"sensors/watch.sh":          file("#!/bin/sh\n"),
		"rules/r.yaml":              file("name: r\ntrigger_ref: p.same\naction_ref: p.same\n"),
		"policies/limit.yaml":       file("name: limit\npack_ref: p\nrate_limit: {max_executions: 5, window_seconds: 60}\nmax_queue_length: 0\n"),
		"policies/cancel.yaml":      file("name: cancel\naction_ref: p.run\nconcurrency: {limit: 1, method: cancel, parameters: [host]}\nqueue_timeout_seconds: 9\n"),
		"policies/subdir/x.yaml":    file("not: [read"),
		"unknown_directory/x.yaml":  file("not: [read"),
		"actions/directory.yaml/ok": file(""),
	}
	p, err := LoadFS(fsys, ".")
	require.NoError(t, err)
	require.Equal(t, "1.0", p.Version)

	require.Len(t, p.Actions, 2)
	run := p.Actions[0]
	require.Equal(t, "p.run", run.Ref)
	require.Equal(t, "actions/run.yml", run.File)
	require.Equal(t, "lib/run.sh", run.EntryPoint)
	require.False(t, run.Enabled)
	require.Equal(t, OutputText, run.OutputFormat)
	require.Equal(t, DefaultTimeoutSeconds, run.TimeoutSeconds)
	require.Equal(t, "p.same", p.Triggers[0].Ref, "actions and triggers have separate refs")

	require.Equal(t, []Sensor{{
		Ref: "p.watch", Name: "watch", EntryPoint: "watch.sh", TriggerRefs: []string{"p.same", "core.webhook"},
		Config: map[string]any{}, Enabled: true, File: "sensors/watch.yaml",
	}}, p.Sensors)

	r := p.Rules[0]
	require.Equal(t, map[string]any{}, r.TriggerParams, "stored as {} rather than null")
	require.Equal(t, map[string]any{}, r.ActionParams)
	require.Nil(t, r.Conditions)
	require.True(t, r.Enabled)

	zero, nine := 0, 9
	require.Equal(t, []Policy{
		{Ref: "p.cancel", Name: "cancel", ActionRef: "p.run", Enabled: true,
			Concurrency:         &Concurrency{Limit: 1, Method: MethodCancel, Parameters: []string{"host"}},
			QueueTimeoutSeconds: &nine, File: "policies/cancel.yaml"},
		{Ref: "p.limit", Name: "limit", PackRef: "p", Enabled: true,
			RateLimit:      &RateLimit{MaxExecutions: 5, WindowSeconds: 60, Method: MethodEnqueue},
			MaxQueueLength: &zero, File: "policies/limit.yaml"},
	}, p.Policies)
}

func refs[T any](items []T, ref func(T) string) []string {
	out := make([]string, len(items))
	for i, item := range items {
		out[i] = ref(item)
	}
	return out
}

func file(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s)} }

// A seal token an author wrote is refused, naming the field: in an action's parameter
// default or enum, a rule's action_params and anywhere in a workflow's definition, written
// with YAML's escapes too (sealed values come from Attune only; a worker would open one).
func TestLoadRefusesSealedValues(t *testing.T) {
	t.Parallel()
	const token = `"\u0061ttune:sealed:v1:k1:AAAA~"`
	base := func() fstest.MapFS {
		return fstest.MapFS{
			"pack.yaml":                   file("ref: p\n"),
			"actions/run.yaml":            file("name: run\nrunner_type: noop\nparameters:\n  pw: {type: string}\n"),
			"actions/flow.yaml":           file("name: flow\nrunner_type: workflow\nentry_point: workflows/flow.yaml\n"),
			"actions/workflows/flow.yaml": file("tasks:\n  one:\n    action: p.run\n"),
			"rules/r.yaml":                file("name: r\ntrigger_ref: core.webhook\naction_ref: p.run\n"),
		}
	}
	for _, c := range []struct{ file, text, want string }{
		{"actions/run.yaml", "name: run\nrunner_type: noop\nparameters:\n  pw: {type: string, default: " + token + "}\n",
			"actions/run.yaml: parameters.pw.default: holds a sealed value: sealed values come from Attune only"},
		{"actions/run.yaml", "name: run\nrunner_type: noop\nparameters:\n  pw: {type: string, enum: [a, " + token + "]}\n",
			"actions/run.yaml: parameters.pw.enum[1]: holds a sealed value"},
		{"rules/r.yaml", "name: r\ntrigger_ref: core.webhook\naction_ref: p.run\naction_params:\n  pw: {nested: [" + token + "]}\n",
			"rules/r.yaml: action_params.pw.nested[0]: holds a sealed value"},
		{"actions/workflows/flow.yaml", "tasks:\n  one:\n    action: p.run\n    input:\n      pw: " + token + "\n",
			"actions/workflows/flow.yaml: tasks.one.input.pw: holds a sealed value"},
	} {
		fsys := base()
		fsys[c.file] = file(c.text)
		_, err := LoadFS(fsys, ".")
		require.ErrorContains(t, err, c.want, c.file)
	}
	_, err := LoadFS(base(), ".")
	require.NoError(t, err, "the same pack without them")
}
