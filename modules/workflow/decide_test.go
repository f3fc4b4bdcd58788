package workflow

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/attune-go/attune/modules/ruleeval"
	"github.com/stretchr/testify/require"
)

// mustTask parses a definition whose tasks all start, and returns the task named name.
func mustTask(t *testing.T, name string, lines ...string) *Task {
	t.Helper()
	d, err := Parse(def(lines...))
	require.NoError(t, err)
	task := d.Task(name)
	require.NotNil(t, task)
	return task
}

// branches is a task with every kind of transition, for the tables below.
func branches(t *testing.T) *Task {
	return mustTask(t, "check",
		"tasks:",
		"  check:",
		"    action: core.local",
		"    next:",
		"      - when: '{{ succeeded() }}'",
		"        publish: {out: '{{ result.stdout }}', twice: '{{ vars.out + vars.out }}'}",
		"        do: [a, b]",
		"      - when: result.code == 0 && vars.out == nil",
		"        publish: {out: last, seen: '{{ vars.out }}'}",
		"        do: a",
		"      - when: failed()",
		"        do: [handler, noop]",
		"      - when: timed_out()",
		"        do: fail",
		"      - when: '{{ cancelled() }}'",
		"  a: {action: core.noop}",
		"  b: {action: core.noop}",
		"  handler: {action: core.noop}",
	)
}

func TestDecide(t *testing.T) {
	t.Parallel()
	task := branches(t)
	tests := []struct {
		name    string
		outcome string
		result  any
		want    Decision
	}{
		{
			// Every transition whose when holds is taken, each evaluated on the ending; their
			// publishes come in order, each seeing the ones before; do's tasks in order, with
			// repeats.
			name: "succeeded, two transitions", outcome: OutcomeSucceeded,
			result: map[string]any{"stdout": "up", "code": json.Number("0")},
			want: Decision{
				Publish: []Publish{{Name: "out", Value: "up"}, {Name: "twice", Value: "upup"}, {Name: "out", Value: "last"}, {Name: "seen", Value: "last"}},
				Next:    []string{"a", "b", "a"},
			},
		},
		{
			name: "succeeded, one transition", outcome: OutcomeSucceeded,
			result: map[string]any{"stdout": "up", "code": 1},
			want:   Decision{Publish: []Publish{{Name: "out", Value: "up"}, {Name: "twice", Value: "upup"}}, Next: []string{"a", "b"}},
		},
		{
			name: "failed and handled", outcome: OutcomeFailed, result: map[string]any{"code": 3},
			want: Decision{Next: []string{"handler"}},
		},
		{
			name: "timed out, fail", outcome: OutcomeTimedOut, result: nil,
			want: Decision{Fail: true},
		},
		{
			// A transition taken with nothing to do handles the ending: no fail.
			name: "cancelled, handled by an empty transition", outcome: OutcomeCancelled, result: nil,
			want: Decision{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := Decide(task, Scope{Outcome: tt.outcome, Result: tt.result, Vars: map[string]any{"out": nil}})
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
			_, err = json.Marshal(got)
			require.NoError(t, err)
		})
	}
}

func TestDecideFailsWhenNothingHandlesAFailure(t *testing.T) {
	t.Parallel()
	task := mustTask(t, "a",
		"tasks:",
		"  a: {action: core.noop, next: [{when: succeeded(), do: b}]}",
		"  b: {action: core.noop}",
	)
	got, err := Decide(task, Scope{Outcome: OutcomeFailed})
	require.NoError(t, err)
	require.Equal(t, Decision{Fail: true}, got)

	got, err = Decide(task, Scope{Outcome: OutcomeSucceeded})
	require.NoError(t, err)
	require.Equal(t, Decision{Next: []string{"b"}}, got)

	// A task without transitions: its success ends the branch, its failure fails the workflow.
	last := mustTask(t, "b", "tasks:", "  a: {action: core.noop, next: [{do: b}]}", "  b: {action: core.noop}")
	got, err = Decide(last, Scope{Outcome: OutcomeSucceeded})
	require.NoError(t, err)
	require.Equal(t, Decision{}, got)
	for _, outcome := range []string{OutcomeFailed, OutcomeTimedOut, OutcomeCancelled} {
		got, err = Decide(last, Scope{Outcome: outcome})
		require.NoError(t, err)
		require.Equal(t, Decision{Fail: true}, got, outcome)
	}
}

// A transition without a when is taken on any outcome, and fail beside tasks still starts
// them: the workflow fails once they end.
func TestDecideUnconditionalAndFail(t *testing.T) {
	t.Parallel()
	task := mustTask(t, "a",
		"tasks:",
		"  a: {action: core.noop, next: [{do: [cleanup, fail]}, {do: report}]}",
		"  cleanup: {action: core.noop}",
		"  report: {action: core.noop}",
	)
	for _, outcome := range []string{OutcomeSucceeded, OutcomeFailed} {
		got, err := Decide(task, Scope{Outcome: outcome})
		require.NoError(t, err)
		require.Equal(t, Decision{Next: []string{"cleanup", "report"}, Fail: true}, got)
	}
}

func TestDecideKeepsTypesAndSharesNothing(t *testing.T) {
	t.Parallel()
	task := mustTask(t, "a",
		"tasks:",
		"  a:",
		"    action: core.noop",
		"    next:",
		"      - publish: {hosts: '{{ result.hosts }}', n: '{{ result.n * 2 }}', fixed: {k: [1, 2]}, text: 'n={{ result.n }} of {{ input.total }}'}",
	)
	result := map[string]any{"hosts": []any{"a", "b"}, "n": json.Number("21")}
	got, err := Decide(task, Scope{Outcome: OutcomeSucceeded, Result: result, Input: map[string]any{"total": 50.0}})
	require.NoError(t, err)
	require.Equal(t, []Publish{
		{Name: "hosts", Value: []any{"a", "b"}},
		{Name: "n", Value: 42},
		{Name: "fixed", Value: map[string]any{"k": []any{1, 2}}},
		{Name: "text", Value: "n=21 of 50"},
	}, got.Publish)

	got.Publish[0].Value.([]any)[0] = "changed"
	got.Publish[2].Value.(map[string]any)["k"].([]any)[0] = "changed"
	require.Equal(t, "a", result["hosts"].([]any)[0], "the result is not aliased")
	require.Equal(t, map[string]any{"k": []any{1, 2}}, task.Next[0].Publish[2].Value, "nor is the definition")
}

func TestDecideErrors(t *testing.T) {
	t.Parallel()
	task := mustTask(t, "a",
		"tasks:",
		"  a:",
		"    action: core.noop",
		"    next:",
		"      - when: succeeded()",
		"        publish: {x: '{{ int(result.text) }}'}",
		"      - when: result.flag",
	)
	// A when whose data gives something else than a bool.
	_, err := Decide(task, Scope{Outcome: OutcomeFailed, Result: map[string]any{"flag": "yes"}})
	var we *Error
	require.ErrorAs(t, err, &we)
	require.Equal(t, "tasks.a.next[1].when", we.Field)
	require.Equal(t, "a", we.Task)
	require.True(t, errors.Is(err, ruleeval.ErrNotBool))
	require.EqualError(t, err, `tasks.a.next[1].when: expression "result.flag": result is not a bool, got string`)

	_, err = Decide(task, Scope{Outcome: OutcomeFailed, Result: map[string]any{}})
	require.ErrorIs(t, err, ruleeval.ErrNotBool, "a missing path is nil, not false")

	// A publish that fails to evaluate.
	_, err = Decide(task, Scope{Outcome: OutcomeSucceeded, Result: map[string]any{"text": "x", "flag": false}})
	require.ErrorAs(t, err, &we)
	require.Equal(t, "tasks.a.next[0].publish.x", we.Field)
	require.Contains(t, err.Error(), `evaluate template "int(result.text)"`)
}

func TestShouldRetry(t *testing.T) {
	t.Parallel()
	plain := mustTask(t, "a", "tasks:", "  a: {action: core.noop, retry: {count: 2}}")
	when := mustTask(t, "a", "tasks:", "  a: {action: core.noop, retry: {count: 5, when: 'result.code == 75'}}")
	none := mustTask(t, "a", "tasks:", "  a: {action: core.noop}")
	zero := mustTask(t, "a", "tasks:", "  a: {action: core.noop, retry: {count: 0}}")
	tests := []struct {
		name    string
		task    *Task
		attempt int
		outcome string
		result  any
		want    bool
	}{
		{"no retry", none, 1, OutcomeFailed, nil, false},
		{"count 0", zero, 1, OutcomeFailed, nil, false},
		{"first failure", plain, 1, OutcomeFailed, nil, true},
		{"second failure", plain, 2, OutcomeFailed, nil, true},
		{"third failure: count used up", plain, 3, OutcomeFailed, nil, false},
		{"timed out", plain, 1, OutcomeTimedOut, nil, true},
		{"cancelled", plain, 1, OutcomeCancelled, nil, false},
		{"success", plain, 1, OutcomeSucceeded, nil, false},
		{"when holds", when, 1, OutcomeFailed, map[string]any{"code": 75}, true},
		{"when does not", when, 1, OutcomeFailed, map[string]any{"code": 1}, false},
		{"when decides, even on success", when, 1, OutcomeSucceeded, map[string]any{"code": 75}, true},
		{"when holds, count used up", when, 6, OutcomeFailed, map[string]any{"code": 75}, false},
		{"when holds, last retry", when, 5, OutcomeFailed, map[string]any{"code": 75}, true},
	}
	for _, tt := range tests {
		got, err := ShouldRetry(tt.task, tt.attempt, Scope{Outcome: tt.outcome, Result: tt.result})
		require.NoError(t, err, tt.name)
		require.Equal(t, tt.want, got, tt.name)
	}

	notBool := mustTask(t, "a", "tasks:", "  a: {action: core.noop, retry: {count: 1, when: 'result.code'}}")
	_, err := ShouldRetry(notBool, 1, Scope{Outcome: OutcomeFailed, Result: map[string]any{"code": 75}})
	var we *Error
	require.ErrorAs(t, err, &we)
	require.Equal(t, "tasks.a.retry.when", we.Field)
	require.ErrorIs(t, err, ruleeval.ErrNotBool)

	status := mustTask(t, "a", "tasks:", "  a: {action: core.noop, retry: {count: 1, when: '{{ timed_out() || cancelled() }}'}}")
	for outcome, want := range map[string]bool{OutcomeTimedOut: true, OutcomeCancelled: true, OutcomeFailed: false} {
		got, err := ShouldRetry(status, 1, Scope{Outcome: outcome})
		require.NoError(t, err)
		require.Equal(t, want, got, outcome)
	}
}

func TestRetryDelay(t *testing.T) {
	t.Parallel()
	tests := []struct {
		retry   Retry
		attempt int
		want    time.Duration
	}{
		{Retry{DelaySeconds: 2, Backoff: BackoffConstant}, 2, 2 * time.Second},
		{Retry{DelaySeconds: 2, Backoff: BackoffConstant}, 5, 2 * time.Second},
		{Retry{DelaySeconds: 0.5, Backoff: BackoffExponential}, 2, 500 * time.Millisecond},
		{Retry{DelaySeconds: 0.5, Backoff: BackoffExponential}, 3, time.Second},
		{Retry{DelaySeconds: 0.5, Backoff: BackoffExponential}, 5, 4 * time.Second},
		{Retry{DelaySeconds: 1, Backoff: BackoffExponential, MaxDelaySeconds: 3}, 4, 3 * time.Second},
		{Retry{DelaySeconds: 1, Backoff: BackoffExponential, MaxDelaySeconds: 3}, 3, 2 * time.Second},
		{Retry{Backoff: BackoffExponential}, 9, 0},
		// The longest retries a definition may write do not overflow.
		{Retry{DelaySeconds: maxSeconds, Backoff: BackoffExponential}, maxRetries + 1, maxSeconds * time.Second},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, tt.retry.Delay(tt.attempt), "%+v attempt %d", tt.retry, tt.attempt)
	}
}

func TestRenderItems(t *testing.T) {
	t.Parallel()
	d, err := Parse(def(
		"tasks:",
		"  from_input: {action: core.echo, with: '{{ input.hosts }}', input: {message: '{{ item.name }} #{{ index }} of {{ len(input.hosts) }}'}}",
		"  literal: {action: core.echo, with: {items: ['{{ vars.first }}', 2, {k: '{{ input.n }}'}]}, input: {message: '{{ item }}'}}",
		"  once: {action: core.echo, input: {message: hi}}",
	))
	require.NoError(t, err)
	hosts := []any{map[string]any{"name": "h1"}, map[string]any{"name": "h2"}}
	s := Scope{Input: map[string]any{"hosts": hosts, "n": 7}, Vars: map[string]any{"first": "one"}}

	items, err := RenderItems(d.Task("from_input"), s)
	require.NoError(t, err)
	require.Equal(t, hosts, items)
	items[0].(map[string]any)["name"] = "changed"
	require.Equal(t, "h1", hosts[0].(map[string]any)["name"], "the input is not aliased")

	items, err = RenderItems(d.Task("literal"), s)
	require.NoError(t, err)
	require.Equal(t, []any{"one", 2, map[string]any{"k": 7}}, items)

	s.Item, s.Index = map[string]any{"name": "h2"}, 1
	in, err := RenderInput(d.Task("from_input"), s)
	require.NoError(t, err)
	require.Equal(t, map[string]any{"message": "h2 #1 of 2"}, in)

	for _, notList := range []any{"h1,h2", map[string]any{"a": 1}, nil, 3.0} {
		_, err = RenderItems(d.Task("from_input"), Scope{Input: map[string]any{"hosts": notList}})
		var we *Error
		require.ErrorAs(t, err, &we)
		require.Equal(t, "tasks.from_input.with.items", we.Field)
		require.Equal(t, "from_input", we.Task)
		require.Contains(t, err.Error(), "want a list of items, got ")
	}

	_, err = RenderItems(d.Task("once"), s)
	require.EqualError(t, err, "tasks.once.with.items: the task has no with")
}

func TestRenderVarsInputOutput(t *testing.T) {
	t.Parallel()
	d, err := Parse(def(
		"input: [retries, hosts]",
		"vars: {count: '{{ input.retries }}', label: 'r={{ input.retries }}', none: null, hosts: '{{ input.hosts }}'}",
		"tasks:",
		"  run: {action: core.local, input: {cmd: 'echo {{ vars.label }}', n: '{{ vars.count + 1 }}'}}",
		"  bare: {action: core.noop}",
		"output: {count: '{{ vars.count }}', first: '{{ input.hosts[0] }}', missing: '{{ vars.nope.deeper }}'}",
	))
	require.NoError(t, err)
	input := map[string]any{"retries": json.Number("3"), "hosts": []any{"a", "b"}}

	vars, err := RenderVars(d, Scope{Input: input})
	require.NoError(t, err)
	require.Equal(t, map[string]any{"count": int64(3), "label": "r=3", "none": nil, "hosts": []any{"a", "b"}}, vars)
	vars["hosts"].([]any)[0] = "changed"
	require.Equal(t, "a", input["hosts"].([]any)[0])

	s := Scope{Input: input, Vars: map[string]any{"count": int64(3), "label": "r=3"}}
	in, err := RenderInput(d.Task("run"), s)
	require.NoError(t, err)
	require.Equal(t, map[string]any{"cmd": "echo r=3", "n": 4}, in)

	in, err = RenderInput(d.Task("bare"), s)
	require.NoError(t, err)
	require.Equal(t, map[string]any{}, in, "no input is no parameters")

	out, err := RenderOutput(d, s)
	require.NoError(t, err)
	require.Equal(t, map[string]any{"count": int64(3), "first": "a", "missing": nil}, out)
	b, err := json.Marshal(out)
	require.NoError(t, err)
	require.JSONEq(t, `{"count": 3, "first": "a", "missing": null}`, string(b))

	// Empty vars and output render to empty objects, with nil input.
	empty, err := Parse(def("tasks: {a: {action: core.noop}}"))
	require.NoError(t, err)
	vars, err = RenderVars(empty, Scope{})
	require.NoError(t, err)
	require.Equal(t, map[string]any{}, vars)
	out, err = RenderOutput(empty, Scope{})
	require.NoError(t, err)
	require.Equal(t, map[string]any{}, out)

	// A run-time failure names the field.
	broken, err := Parse(def("tasks: {a: {action: core.noop, input: {n: '{{ int(input.x) }}'}}}"))
	require.NoError(t, err)
	_, err = RenderInput(broken.Task("a"), Scope{Input: map[string]any{"x": "abc"}})
	var we *Error
	require.ErrorAs(t, err, &we)
	require.Equal(t, "tasks.a.input.n", we.Field)
	require.Equal(t, "a", we.Task)
}

// The engine keeps the definition as JSON and decides from the decoded copy: a round trip
// changes nothing Decide or the renders do.
func TestDecideAfterJSONRoundTrip(t *testing.T) {
	t.Parallel()
	d, err := Parse(def(
		"tasks:",
		"  a:",
		"    action: core.noop",
		"    input: {n: 3, list: [1, '{{ input.x }}']}",
		"    next: [{when: succeeded(), publish: {x: 1, y: '{{ result.v }}'}, do: b}]",
		"  b: {action: core.noop}",
	))
	require.NoError(t, err)
	b, err := json.Marshal(d)
	require.NoError(t, err)
	var back Definition
	require.NoError(t, json.Unmarshal(b, &back))

	got, err := Decide(back.Task("a"), Scope{Outcome: OutcomeSucceeded, Result: map[string]any{"v": "ok"}})
	require.NoError(t, err)
	require.Equal(t, Decision{Publish: []Publish{{Name: "x", Value: 1.0}, {Name: "y", Value: "ok"}}, Next: []string{"b"}}, got)
	in, err := RenderInput(back.Task("a"), Scope{Input: map[string]any{"x": "y"}})
	require.NoError(t, err)
	require.Equal(t, map[string]any{"n": 3.0, "list": []any{1.0, "y"}}, in)
}
