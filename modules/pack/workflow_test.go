package pack

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/require"

	"github.com/attune-go/attune/modules/workflow"
)

// workflowPack is a pack with a workflow action deploy, whose definition is def.
func workflowPack(def string) fstest.MapFS {
	return fstest.MapFS{
		"pack.yaml":                     file("ref: p\n"),
		"actions/deploy.yaml":           file("name: deploy\nrunner_type: workflow\nentry_point: workflows/deploy.yaml\nparameters: {hosts: {type: array}}\n"),
		"actions/step.yaml":             file("name: step\nrunner_type: noop\n"),
		"actions/workflows/deploy.yaml": file(def),
	}
}

func TestLoadWorkflowAction(t *testing.T) {
	t.Parallel()
	p, err := LoadFS(workflowPack("input: [hosts]\ntasks:\n  a: {action: p.step, with: '{{ input.hosts }}', next: [{do: b}]}\n  b: {action: core.echo, input: {message: done}}\n"), ".")
	require.NoError(t, err)
	deploy := p.Actions[0]
	require.Equal(t, RunnerWorkflow, deploy.RunnerType)
	require.Equal(t, "workflows/deploy.yaml", deploy.EntryPoint)
	require.NotNil(t, deploy.Workflow)
	require.Equal(t, []string{"a"}, deploy.Workflow.Start)
	require.Equal(t, "p.step", deploy.Workflow.Task("a").Action)
	require.Nil(t, p.Actions[1].Workflow)

	// Registered, the definition goes with the action.
	reg := newMemRegistrar(t)
	_, err = Register(context.Background(), reg, p)
	require.NoError(t, err)
	stored := reg.actions["p.deploy"]
	var d workflow.Definition
	require.NoError(t, json.Unmarshal(stored.Workflow, &d))
	require.Equal(t, *deploy.Workflow, d)
	require.Nil(t, reg.actions["p.step"].Workflow, "other actions have none")
}

func TestLoadWorkflowRefusals(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		fsys      fstest.MapFS
		wantErr   string
		wantFile  string
		wantField string
	}{
		{name: "broken definition", fsys: workflowPack("tasks:\n  a: {action: p.step, next: [{do: b}]}\n"),
			wantErr:  `actions/workflows/deploy.yaml: tasks.a.next[0].do: no task "b"; want a task of this workflow, fail or noop`,
			wantFile: "actions/workflows/deploy.yaml", wantField: "tasks.a.next[0].do"},
		{name: "not yaml", fsys: workflowPack("tasks: [\n"),
			wantErr: "actions/workflows/deploy.yaml: line 1: did not find expected node content", wantFile: "actions/workflows/deploy.yaml"},
		{name: "input not a parameter", fsys: workflowPack("input: [hosts, region]\ntasks: {a: {action: p.step}}\n"),
			wantErr:  `actions/workflows/deploy.yaml: input[1]: "region" is not a parameter of action p.deploy`,
			wantFile: "actions/workflows/deploy.yaml", wantField: "input[1]"},
		{name: "task action missing from the pack", fsys: workflowPack("tasks: {a: {action: p.stpe}}\n"),
			wantErr:  `actions/workflows/deploy.yaml: tasks.a.action: no action "p.stpe"`,
			wantFile: "actions/workflows/deploy.yaml", wantField: "tasks.a.action"},
		{name: "missing definition", fsys: func() fstest.MapFS {
			fsys := workflowPack("")
			delete(fsys, "actions/workflows/deploy.yaml")
			return fsys
		}(), wantErr: `actions/deploy.yaml: entry_point: "workflows/deploy.yaml" not found in actions/`, wantFile: "actions/deploy.yaml", wantField: "entry_point"},
		{name: "no entry point", fsys: fstest.MapFS{
			"pack.yaml": file("ref: p\n"), "actions/deploy.yaml": file("name: deploy\nrunner_type: workflow\n"),
		}, wantErr: "actions/deploy.yaml: entry_point: required: the workflow's definition, a YAML file under actions/",
			wantFile: "actions/deploy.yaml", wantField: "entry_point"},
		{name: "entry point out of actions", fsys: fstest.MapFS{
			"pack.yaml": file("ref: p\n"), "actions/deploy.yaml": file("name: deploy\nrunner_type: workflow\nentry_point: ../pack.yaml\n"),
		}, wantErr: `actions/deploy.yaml: entry_point: "../pack.yaml" must stay inside actions/, with no "..", "." or empty elements`,
			wantFile: "actions/deploy.yaml", wantField: "entry_point"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p, err := LoadFS(tt.fsys, ".")
			require.Nil(t, p)
			require.EqualError(t, err, "load pack .: "+tt.wantErr)
			var perr *Error
			require.ErrorAs(t, err, &perr)
			require.Equal(t, tt.wantFile, perr.File)
			require.Equal(t, tt.wantField, perr.Field)
		})
	}
}

// A task's action in another pack is checked against what is registered.
func TestRegisterWorkflowChecksOtherPacksActions(t *testing.T) {
	t.Parallel()
	p, err := LoadFS(workflowPack("tasks: {a: {action: core.echo, next: [{do: b}]}, b: {action: other.thing}}\n"), ".")
	require.NoError(t, err, "another pack's action is not the loader's to check")
	reg := newMemRegistrar(t)
	_, err = Register(context.Background(), reg, p)
	require.EqualError(t, err, `check references of pack p: actions/workflows/deploy.yaml: tasks.b.action: no action "other.thing"`)
	var perr *Error
	require.ErrorAs(t, err, &perr)
	require.Equal(t, "tasks.b.action", perr.Field)
	require.Len(t, reg.packs, 1, "nothing written beyond the core pack")
}

// A workflow action sent on its own, as to the API, is checked as loading and registering
// its pack would: its definition read from the pack's directory (it need not be executable),
// its tasks' actions registered.
func TestCheckLoneWorkflowAction(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "actions", "workflows"), 0o755))
	write := func(def string) {
		require.NoError(t, os.WriteFile(filepath.Join(dir, "actions", "workflows", "w.yaml"), []byte(def), 0o644))
	}
	lone := func() Action {
		a := Action{Name: "w", RunnerType: RunnerWorkflow, EntryPoint: "workflows/w.yaml", OutputFormat: OutputText, TimeoutSeconds: 60}
		require.NoError(t, ValidateAction(&a, "p"))
		return a
	}
	reg := newMemRegistrar(t)

	write("tasks: {a: {action: core.echo, input: {message: hi}}}\n")
	a := lone()
	require.NoError(t, CheckEntryPoint(dir, &a))
	require.Equal(t, "core.echo", a.Workflow.Task("a").Action)
	require.NoError(t, CheckWorkflow(context.Background(), reg, a))
	sa, err := StoreAction(a, "p")
	require.NoError(t, err)
	require.JSONEq(t, `{"tasks": [{"name": "a", "action": "core.echo", "input": {"message": "hi"}}], "start": ["a"]}`, string(sa.Workflow))

	write("tasks: {a: {action: core.nothing}}\n")
	a = lone()
	require.NoError(t, CheckEntryPoint(dir, &a))
	err = CheckWorkflow(context.Background(), reg, a)
	require.EqualError(t, err, `actions/workflows/w.yaml: tasks.a.action: no action "core.nothing"`)

	write("tasks: {a: {action: core.echo, input: {message: '{{ item }}'}}}\n")
	a = lone()
	err = CheckEntryPoint(dir, &a)
	require.EqualError(t, err, `actions/workflows/w.yaml: tasks.a.input.message: compile template "item": unknown name item (1:0)`)
	require.Nil(t, a.Workflow)

	a = lone()
	err = CheckEntryPoint("", &a)
	require.EqualError(t, err, "entry_point: the pack has no directory on this server to hold the workflow's definition")
}
