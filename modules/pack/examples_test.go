package pack

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/attune-go/attune/modules/workflow"
)

func TestLoadExamples(t *testing.T) {
	t.Parallel()
	p, err := Load(filepath.Join(packsDir, "examples"))
	require.NoError(t, err)
	core, err := Core()
	require.NoError(t, err)
	require.NoError(t, p.CheckReferences(packLookup{core}))

	require.Equal(t, []string{"examples.approval", "examples.branch", "examples.fanout", "examples.flaky", "examples.nested", "examples.retry", "examples.sequence"},
		refs(p.Actions, func(a Action) string { return a.Ref }))
	for _, a := range p.Actions {
		if a.RunnerType != RunnerWorkflow {
			require.Nil(t, a.Workflow, a.Ref)
			continue
		}
		require.NotNil(t, a.Workflow, a.Ref)
		sa, err := StoreAction(a, p.Ref)
		require.NoError(t, err)
		var back workflow.Definition
		require.NoError(t, json.Unmarshal(sa.Workflow, &back), "the store keeps the definition as JSON")
		require.Equal(t, a.Workflow.Start, back.Start)
	}
	fanout := p.Actions[2].Workflow.Task("ping")
	require.Equal(t, &workflow.With{Items: "{{ input.hosts }}", Concurrency: 2}, fanout.With)
	retry := p.Actions[5].Workflow.Task("call").Retry
	require.Equal(t, &workflow.Retry{Count: 4, DelaySeconds: 0.2, Backoff: workflow.BackoffExponential, MaxDelaySeconds: 1}, retry)
}

// Each example, walked through the workflow package's decisions with stand-ins for the core
// actions, gives the output its description promises. The engine's end-to-end tests run them
// for real; this proves the definitions themselves: their templates, publishes and branches.
func TestExamplesGiveTheirOutput(t *testing.T) {
	t.Parallel()
	examples, err := Load(filepath.Join(packsDir, "examples"))
	require.NoError(t, err)
	core, err := Core()
	require.NoError(t, err)

	tests := []struct {
		action    string
		params    map[string]any
		want      map[string]any
		wantTasks []string
		wantWaits []time.Duration
	}{
		{action: "examples.sequence", want: map[string]any{"greeting": "hello world", "shouted": "HELLO WORLD"},
			wantTasks: []string{"greet", "shout", "done"}},
		{action: "examples.branch", want: map[string]any{"outcome": "handled exit code 3"},
			wantTasks: []string{"risky", "recover", "report"}},
		{action: "examples.branch", params: map[string]any{"code": 0}, want: map[string]any{"outcome": "it worked"},
			wantTasks: []string{"risky", "report"}},
		{action: "examples.fanout",
			want:      map[string]any{"replies": []any{"0:alpha", "1:beta", "2:gamma", "3:delta"}, "summary": "4 hosts answered"},
			wantTasks: []string{"ping", "ping", "ping", "ping", "summary"}},
		{action: "examples.retry", params: map[string]any{"counter": "/tmp/c"}, want: map[string]any{"answer": "attempt 3"},
			wantTasks: []string{"call", "call", "call"}, wantWaits: []time.Duration{200 * time.Millisecond, 400 * time.Millisecond}},
		{action: "examples.retry", params: map[string]any{"counter": "/tmp/c", "failures": 9}, want: nil,
			wantTasks: []string{"call", "call", "call", "call", "call"},
			wantWaits: []time.Duration{200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond, time.Second}},
		{action: "examples.nested", want: map[string]any{"said": "the inner workflow said HELLO NESTED"},
			wantTasks: []string{"inner", "greet", "shout", "done", "after"}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.action, tt.params), func(t *testing.T) {
			t.Parallel()
			w := &walker{t: t, actions: map[string]Action{}, runs: map[string]int{}}
			for _, p := range []*Pack{core, examples} {
				for _, a := range p.Actions {
					w.actions[a.Ref] = a
				}
			}
			outcome, result := w.run(tt.action, tt.params)
			if tt.want == nil {
				require.Equal(t, workflow.OutcomeFailed, outcome)
			} else {
				require.Equal(t, workflow.OutcomeSucceeded, outcome)
				require.Equal(t, tt.want, result)
			}
			require.Equal(t, tt.wantTasks, w.tasks)
			require.Equal(t, tt.wantWaits, w.waits)
		})
	}
}

// walker runs workflows one task at a time, as an executor would with one worker, with
// stand-ins for the actions the examples use. Results go through JSON, as they do through the
// database.
type walker struct {
	t       *testing.T
	actions map[string]Action
	runs    map[string]int // examples.flaky's counter files
	tasks   []string       // the tasks run, in order, an entry per item and attempt
	waits   []time.Duration
}

var exitCommand = regexp.MustCompile(`exit (\d+)$`)

func (w *walker) run(ref string, params map[string]any) (string, any) {
	a, ok := w.actions[ref]
	require.True(w.t, ok, "no action %s", ref)
	params, err := a.Parameters.Apply(params)
	require.NoError(w.t, err, "parameters of %s", ref)
	if a.Workflow != nil {
		return w.workflow(a.Workflow, params)
	}
	shell := func(code int, stdout string) (string, any) {
		outcome := workflow.OutcomeSucceeded
		if code != 0 {
			outcome = workflow.OutcomeFailed
		}
		return outcome, viaJSON(w.t, map[string]any{"succeeded": code == 0, "exit_code": code, "stdout": stdout, "stderr": ""})
	}
	switch ref {
	case "core.echo":
		return shell(0, params["message"].(string)+"\n")
	case "core.noop":
		return workflow.OutcomeSucceeded, map[string]any{"succeeded": true}
	case "core.local":
		code := 0
		if m := exitCommand.FindStringSubmatch(params["cmd"].(string)); m != nil {
			code, _ = strconv.Atoi(m[1])
		}
		return shell(code, "trying\n")
	case "examples.flaky":
		counter := params["counter"].(string)
		w.runs[counter]++
		code := 1
		if int64(w.runs[counter]) > params["failures"].(int64) {
			code = 0
		}
		return shell(code, fmt.Sprintf("attempt %d\n", w.runs[counter]))
	}
	w.t.Fatalf("no stand-in for %s", ref)
	return "", nil
}

// workflow runs d: arrivals in order, a join waiting for its count, nothing new once failing.
func (w *walker) workflow(d *workflow.Definition, input map[string]any) (string, any) {
	input = viaJSON(w.t, input).(map[string]any)
	vars, err := workflow.RenderVars(d, workflow.Scope{Input: input})
	require.NoError(w.t, err)
	arrivals := map[string]int{}
	queue := append([]string(nil), d.Start...)
	failing := false
	for len(queue) > 0 && !failing {
		t := d.Task(queue[0])
		queue = queue[1:]
		arrivals[t.Name]++
		if t.Join > 0 && arrivals[t.Name] < t.Join {
			continue
		}
		outcome, result := w.task(t, workflow.Scope{Input: input, Vars: vars})
		decision, err := workflow.Decide(t, workflow.Scope{Input: input, Vars: vars, Result: result, Outcome: outcome})
		require.NoError(w.t, err)
		for _, p := range decision.Publish {
			vars[p.Name] = viaJSON(w.t, p.Value)
		}
		failing = decision.Fail
		queue = append(queue, decision.Next...)
	}
	if failing {
		return workflow.OutcomeFailed, nil
	}
	out, err := workflow.RenderOutput(d, workflow.Scope{Input: input, Vars: vars})
	require.NoError(w.t, err)
	return workflow.OutcomeSucceeded, viaJSON(w.t, out)
}

// task runs t once, or once per item, its result then the list of the items' results.
func (w *walker) task(t *workflow.Task, s workflow.Scope) (string, any) {
	if t.With == nil {
		return w.attempts(t, s)
	}
	items, err := workflow.RenderItems(t, s)
	require.NoError(w.t, err)
	outcome, results := workflow.OutcomeSucceeded, make([]any, len(items))
	for i, item := range items {
		s.Item, s.Index = item, i
		var o string
		if o, results[i] = w.attempts(t, s); o != workflow.OutcomeSucceeded {
			outcome = workflow.OutcomeFailed
		}
	}
	return outcome, results
}

// attempts runs t's action until it succeeds or its retries are used up.
func (w *walker) attempts(t *workflow.Task, s workflow.Scope) (string, any) {
	input, err := workflow.RenderInput(t, s)
	require.NoError(w.t, err)
	for attempt := 1; ; attempt++ {
		w.tasks = append(w.tasks, t.Name)
		outcome, result := w.run(t.Action, input)
		s.Outcome, s.Result = outcome, result
		again, err := workflow.ShouldRetry(t, attempt, s)
		require.NoError(w.t, err)
		if !again {
			return outcome, result
		}
		w.waits = append(w.waits, t.Retry.Delay(attempt+1))
	}
}

func viaJSON(t *testing.T, v any) any {
	b, err := json.Marshal(v)
	require.NoError(t, err)
	var out any
	require.NoError(t, json.Unmarshal(b, &out))
	return out
}
