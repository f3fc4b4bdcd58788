package workflow

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// def builds a definition from lines, so that tests can write YAML indented with their code.
func def(lines ...string) []byte {
	return []byte(strings.Join(lines, "\n") + "\n")
}

func TestParseKeepsOrderAndResolves(t *testing.T) {
	t.Parallel()
	d, err := Parse(def(
		"input: [hosts, retries]",
		"vars: {found: null, count: '{{ input.retries }}'}",
		"tasks:",
		"  check:",
		"    action: core.local",
		"    input: {cmd: uptime}",
		"    timeout_seconds: 30",
		"    delay_seconds: 2",
		"    next:",
		"      - when: '{{ succeeded() }}'",
		"        publish: {zeta: '{{ result.stdout }}', alpha: 1, mid: [a, '{{ vars.count }}']}",
		"        do: [fanout, notify]",
		"      - when: failed()",
		"        do: fail",
		"  other:",
		"    action: core.noop",
		"    next: [{do: notify}]",
		"  fanout:",
		"    action: core.echo",
		"    with: {items: '{{ input.hosts }}', concurrency: 10}",
		"    input: {message: '{{ item }} #{{ index }}'}",
		"    retry: {count: 3, delay_seconds: 1.5, backoff: exponential, max_delay_seconds: 30, when: '{{ failed() }}'}",
		"    next: [{do: notify}]",
		"  notify:",
		"    action: core.noop",
		"    join: all",
		"output: {load: '{{ vars.zeta }}'}",
	))
	require.NoError(t, err)
	require.Equal(t, []string{"hosts", "retries"}, d.Input)
	require.Equal(t, map[string]any{"found": nil, "count": "{{ input.retries }}"}, d.Vars)
	require.Equal(t, []string{"check", "other"}, d.Start, "tasks no transition names, in definition order")
	require.Equal(t, []string{"check", "other", "fanout", "notify"}, names(d.Tasks))

	check := d.Task("check")
	require.Equal(t, &Task{
		Name: "check", Action: "core.local", Input: map[string]any{"cmd": "uptime"}, TimeoutSeconds: 30, DelaySeconds: 2,
		Next: []Transition{{
			When: "{{ succeeded() }}",
			Publish: []Publish{
				{Name: "zeta", Value: "{{ result.stdout }}"},
				{Name: "alpha", Value: 1},
				{Name: "mid", Value: []any{"a", "{{ vars.count }}"}},
			},
			Do: []string{"fanout", "notify"},
		}, {When: "failed()", Do: []string{CommandFail}}},
	}, check)
	fanout := d.Task("fanout")
	require.Equal(t, &With{Items: "{{ input.hosts }}", Concurrency: 10}, fanout.With)
	require.Equal(t, &Retry{Count: 3, DelaySeconds: 1.5, Backoff: BackoffExponential, MaxDelaySeconds: 30, When: "{{ failed() }}"}, fanout.Retry)
	require.Equal(t, 3, d.Task("notify").Join, "join: all is the number of distinct tasks leading to it")
	require.Nil(t, d.Task("nope"))

	// The executor keeps the definition as JSON: it comes back the same.
	b, err := json.Marshal(d)
	require.NoError(t, err)
	var back Definition
	require.NoError(t, json.Unmarshal(b, &back))
	again, err := json.Marshal(&back)
	require.NoError(t, err)
	require.JSONEq(t, string(b), string(again))
}

func names(tasks []*Task) []string {
	out := make([]string, len(tasks))
	for i, t := range tasks {
		out[i] = t.Name
	}
	return out
}

func TestParseShorthandsAndDefaults(t *testing.T) {
	t.Parallel()
	d, err := Parse(def(
		"tasks:",
		"  each:",
		"    action: core.echo",
		"    with: '{{ input.hosts }}'",
		"    input: {message: '{{ item }}'}",
		"    retry: {count: 2}",
		"    next: [{when: 'succeeded() && len(result) > 0', do: last}, {when: failed(), publish: {why: '{{ result }}'}}]",
		"  literal:",
		"    action: core.echo",
		"    with: {items: [a, '{{ input.x }}', 3]}",
		"    input: {message: '{{ index }}'}",
		"    next: [{do: last}]",
		"  last:",
		"    action: core.noop",
		"    join: 2",
		"    next: [{do: noop}, {}]",
	))
	require.NoError(t, err)
	require.Equal(t, &With{Items: "{{ input.hosts }}"}, d.Task("each").With, "a string with is its items")
	require.Equal(t, &With{Items: []any{"a", "{{ input.x }}", 3}}, d.Task("literal").With)
	require.Equal(t, &Retry{Count: 2, Backoff: BackoffConstant}, d.Task("each").Retry)
	require.Equal(t, 2, d.Task("last").Join)
	require.Equal(t, []Transition{{Do: []string{CommandNoop}}, {}}, d.Task("last").Next)
}

// YAML anchors are resolved where they are used.
func TestParseAnchors(t *testing.T) {
	t.Parallel()
	d, err := Parse(def(
		"tasks:",
		"  a:",
		"    action: core.echo",
		"    input: &msg {message: hi}",
		"    next: [{do: b}]",
		"  b:",
		"    action: core.echo",
		"    input: *msg",
	))
	require.NoError(t, err)
	require.Equal(t, map[string]any{"message": "hi"}, d.Task("b").Input)
}

// A loop is fine when a when on its way can end it: poll until ready.
func TestParseAllowsLoopsThatCanEnd(t *testing.T) {
	t.Parallel()
	_, err := Parse(def(
		"tasks:",
		"  start: {action: core.noop, next: [{do: poll}]}",
		"  poll:",
		"    action: core.local",
		"    input: {cmd: check}",
		"    next: [{when: failed(), do: wait}, {when: succeeded(), do: done}]",
		"  wait: {action: core.sleep, input: {seconds: 1}, next: [{do: poll}]}",
		"  done: {action: core.noop}",
	))
	require.NoError(t, err)
}

// Every check of Parse, each with the field it names.
func TestParseRefuses(t *testing.T) {
	t.Parallel()
	one := func(task ...string) []byte { return def(append([]string{"tasks:"}, task...)...) }
	tests := []struct {
		name      string
		yaml      []byte
		wantField string
		wantTask  string
		wantErr   string
	}{
		{"not yaml", []byte("tasks: [\n"), "", "", "did not find expected node content"},
		{"empty", []byte("\n"), "", "", "empty definition"},
		{"two documents", def("tasks: {a: {action: core.noop}}", "---", "tasks: {}"), "", "", "line 2: more than one YAML document"},
		{"a list", def("- a"), "", "", "want a mapping of input, vars, tasks and output, got a list"},
		{"unknown top-level key", def("tasks: {a: {action: core.noop}}", "outputs: {}"), "outputs", "", "line 2: unknown key; want one of input, vars, tasks, output"},
		{"no tasks", def("vars: {a: 1}"), "tasks", "", "required"},
		{"tasks empty", def("tasks: {}"), "tasks", "", "want at least one task"},
		{"tasks a list", def("tasks: [a]"), "tasks", "", "want a mapping, got a list"},
		{"task name", one("  Check: {action: core.noop}"), "tasks.Check", "Check", `task name "Check" is not valid`},
		{"task named fail", one("  fail: {action: core.noop}"), "tasks.fail", "fail", `"fail" is an engine command, not a task name`},
		{"task named noop", one("  noop: {action: core.noop}"), "tasks.noop", "noop", "engine command"},
		{"task twice", one("  a: {action: core.noop}", "  a: {action: core.noop}"), "tasks.a", "", "line 3: written twice"},
		{"task not a mapping", one("  a: core.noop"), "tasks.a", "a", `want a mapping, got "core.noop"`},
		{"unknown task key", one("  a: {action: core.noop, acton: x}"), "tasks.a.acton", "a", "unknown key; want one of action, input, next, join, with, retry, timeout_seconds, delay_seconds"},
		{"no action", one("  a: {input: {}}"), "tasks.a.action", "a", "required"},
		{"action not a ref", one("  a: {action: local}"), "tasks.a.action", "a", `"local" is not an action ref; want <pack>.<name>`},
		{"action upper case", one("  a: {action: Core.local}"), "tasks.a.action", "a", "not an action ref"},
		{"action a number", one("  a: {action: 3}"), "tasks.a.action", "a", "want a string, got 3"},
		{"input a list", one("  a: {action: core.noop, input: [x]}"), "tasks.a.input", "a", "want a mapping, got a list"},
		{"input NaN", one("  a: {action: core.noop, input: {x: .nan}}"), "tasks.a.input.x", "a", ".nan cannot be represented in JSON"},
		{"input non-string key", one("  a: {action: core.noop, input: {1: x}}"), "tasks.a.input", "a", "keys must be strings, got 1"},
		{"next not a list", one("  a: {action: core.noop, next: {do: b}}"), "tasks.a.next", "a", "want a list of transitions"},
		{"unknown transition key", one("  a: {action: core.noop, next: [{dos: b}]}"), "tasks.a.next[0].dos", "a", "unknown key; want one of when, publish, do"},
		{"do unknown task", one("  a: {action: core.noop, next: [{do: [b]}]}"), "tasks.a.next[0].do", "a", `no task "b"; want a task of this workflow, fail or noop`},
		{"do a mapping", one("  a: {action: core.noop, next: [{do: {b: 1}}]}"), "tasks.a.next[0].do", "a", "want a string or a list of strings, got a mapping"},
		{"do entry a number", one("  a: {action: core.noop, next: [{do: [b, 3]}]}"), "tasks.a.next[0].do[1]", "a", "want a string, got 3"},
		{"when empty", one("  a: {action: core.noop, next: [{when: ' '}]}"), "tasks.a.next[0].when", "a", "empty; leave when out"},
		{"when a bool", one("  a: {action: core.noop, next: [{when: true}]}"), "tasks.a.next[0].when", "a", "want a string, got true"},
		{"when syntax", one("  a: {action: core.noop, next: [{when: '{{ succeeded( }}'}]}"), "tasks.a.next[0].when", "a", `compile expression "succeeded(":`},
		{"when not bool", one("  a: {action: core.noop, next: [{when: '{{ 1 + 2 }}'}]}"), "tasks.a.next[0].when", "a", `expression "1 + 2": result is not a bool, got int`},
		{"when bare not bool", one("  a: {action: core.noop, next: [{when: 'upper(result.x)'}]}"), "tasks.a.next[0].when", "a", "result is not a bool, got string"},
		{"when text", one("  a: {action: core.noop, next: [{when: 'ok {{ succeeded() }}'}]}"), "tasks.a.next[0].when", "a", "want one expression"},
		{"when item", one("  a: {action: core.noop, next: [{when: 'item == 1'}]}"), "tasks.a.next[0].when", "a", "unknown name item"},
		{"when status function not called", one("  a: {action: core.noop, next: [{when: succeeded}]}"), "tasks.a.next[0].when", "a", "result is not a bool, got func() bool"},
		{"publish a list", one("  a: {action: core.noop, next: [{publish: [x]}]}"), "tasks.a.next[0].publish", "a", "want a mapping, got a list"},
		{"publish name", one("  a: {action: core.noop, next: [{publish: {my-var: 1}}]}"), "tasks.a.next[0].publish.my-var", "a", `"my-var" is not a variable name`},
		{"publish template", one("  a: {action: core.noop, next: [{publish: {x: '{{ reslt.a }}'}}]}"), "tasks.a.next[0].publish.x", "a", `compile template "reslt.a": unknown name reslt`},
		{"publish nested template", one("  a: {action: core.noop, next: [{publish: {x: {y: ['{{ item }}']}}}]}"), "tasks.a.next[0].publish.x.y[0]", "a", "unknown name item"},
		{"publish a function", one("  a: {action: core.noop, next: [{publish: {x: '{{ failed }}'}}]}"), "tasks.a.next[0].publish.x", "a", `template "failed" is a function; call it: failed()`},
		{"join word", def("tasks:", "  a: {action: core.noop, next: [{do: c}]}", "  b: {action: core.noop, next: [{do: c}]}", "  c: {action: core.noop, join: any}"), "tasks.c.join", "c", `want all or a number of tasks, got "any"`},
		{"join zero", def("tasks:", "  a: {action: core.noop, next: [{do: c}]}", "  b: {action: core.noop, next: [{do: c}]}", "  c: {action: core.noop, join: 0}"), "tasks.c.join", "c", "want 1 or more, got 0"},
		{"join one inbound", def("tasks:", "  a: {action: core.noop, next: [{do: c}, {when: failed(), do: c}]}", "  c: {action: core.noop, join: all}"), "tasks.c.join", "c", "a join needs at least 2 tasks with a transition to it, and it has one, a"},
		{"join on a start", def("tasks:", "  c: {action: core.noop, join: 1}"), "tasks.c.join", "c", "and it has none"},
		{"join more than inbound", def("tasks:", "  a: {action: core.noop, next: [{do: c}]}", "  b: {action: core.noop, next: [{do: c}]}", "  c: {action: core.noop, join: 3}"), "tasks.c.join", "c", "waits for 3 tasks, but only 2 have a transition to it (a, b)"},
		{"with a number", one("  a: {action: core.echo, with: 5}"), "tasks.a.with.items", "a", "want a list, or one {{ }} template giving a list; got 5"},
		{"with items text", one("  a: {action: core.echo, with: {items: 'a,b'}}"), "tasks.a.with.items", "a", `got "a,b"`},
		{"with items text and template", one("  a: {action: core.echo, with: {items: 'x {{ input.l }}'}}"), "tasks.a.with.items", "a", "want a list, or one {{ }} template"},
		{"with no items", one("  a: {action: core.echo, with: {concurrency: 2}}"), "tasks.a.with.items", "a", "required"},
		{"with unknown key", one("  a: {action: core.echo, with: {items: [1], batch: 2}}"), "tasks.a.with.batch", "a", "unknown key; want one of items, concurrency"},
		{"with concurrency", one("  a: {action: core.echo, with: {items: [1], concurrency: -1}}"), "tasks.a.with.concurrency", "a", "want 0 or more, got -1"},
		{"with items template", one("  a: {action: core.echo, with: '{{ vars.l[ }}'}"), "tasks.a.with.items", "a", `compile template "vars.l[":`},
		{"with items result", one("  a: {action: core.echo, with: '{{ result }}'}"), "tasks.a.with.items", "a", "unknown name result"},
		{"with items literal template", one("  a: {action: core.echo, with: {items: [1, '{{ item }}']}}"), "tasks.a.with.items[1]", "a", "unknown name item"},
		{"item without with", one("  a: {action: core.echo, input: {message: '{{ item }}'}}"), "tasks.a.input.message", "a", `compile template "item": unknown name item`},
		{"index without with", one("  a: {action: core.echo, input: {message: 'n={{ index }}'}}"), "tasks.a.input.message", "a", "unknown name index"},
		{"result in input", one("  a: {action: core.echo, input: {message: '{{ result }}'}}"), "tasks.a.input.message", "a", "unknown name result"},
		{"status function in input", one("  a: {action: core.echo, input: {message: '{{ failed() }}'}}"), "tasks.a.input.message", "a", "unknown name failed"},
		{"retry not a mapping", one("  a: {action: core.noop, retry: 3}"), "tasks.a.retry", "a", "want a mapping, got 3"},
		{"retry no count", one("  a: {action: core.noop, retry: {delay_seconds: 1}}"), "tasks.a.retry.count", "a", "required"},
		{"retry count high", one("  a: {action: core.noop, retry: {count: 101}}"), "tasks.a.retry.count", "a", "want 0 to 100, got 101"},
		{"retry count negative", one("  a: {action: core.noop, retry: {count: -1}}"), "tasks.a.retry.count", "a", "want 0 to 100, got -1"},
		{"retry count fraction", one("  a: {action: core.noop, retry: {count: 1.5}}"), "tasks.a.retry.count", "a", "want a whole number, got 1.5"},
		{"retry delay negative", one("  a: {action: core.noop, retry: {count: 1, delay_seconds: -1}}"), "tasks.a.retry.delay_seconds", "a", "want 0 to 2592000 seconds, got -1"},
		{"retry delay long", one("  a: {action: core.noop, retry: {count: 1, delay_seconds: 2592001}}"), "tasks.a.retry.delay_seconds", "a", "want 0 to 2592000 seconds, got 2592001"},
		{"retry delay text", one("  a: {action: core.noop, retry: {count: 1, delay_seconds: 1s}}"), "tasks.a.retry.delay_seconds", "a", `want a number of seconds, got "1s"`},
		{"retry max delay negative", one("  a: {action: core.noop, retry: {count: 1, max_delay_seconds: -5}}"), "tasks.a.retry.max_delay_seconds", "a", "want 0 to 2592000 seconds, got -5"},
		{"retry max delay under delay", one("  a: {action: core.noop, retry: {count: 1, delay_seconds: 10, max_delay_seconds: 5}}"), "tasks.a.retry.max_delay_seconds", "a", "5 is less than delay_seconds 10"},
		{"retry backoff", one("  a: {action: core.noop, retry: {count: 1, backoff: linear}}"), "tasks.a.retry.backoff", "a", `unknown backoff "linear"; want constant or exponential`},
		{"retry unknown key", one("  a: {action: core.noop, retry: {count: 1, delay: 1}}"), "tasks.a.retry.delay", "a", "unknown key"},
		{"retry when not bool", one("  a: {action: core.noop, retry: {count: 1, when: '{{ \"x\" }}'}}"), "tasks.a.retry.when", "a", "result is not a bool, got string"},
		{"retry when name", one("  a: {action: core.noop, retry: {count: 1, when: 'item > 1'}}"), "tasks.a.retry.when", "a", "unknown name item"},
		{"timeout negative", one("  a: {action: core.noop, timeout_seconds: -1}"), "tasks.a.timeout_seconds", "a", "want 0 to 2592000, got -1"},
		{"timeout text", one("  a: {action: core.noop, timeout_seconds: ten}"), "tasks.a.timeout_seconds", "a", `want a whole number, got "ten"`},
		{"delay negative", one("  a: {action: core.noop, delay_seconds: -2}"), "tasks.a.delay_seconds", "a", "want 0 to 2592000, got -2"},
		{"delay fraction", one("  a: {action: core.noop, delay_seconds: 0.5}"), "tasks.a.delay_seconds", "a", "want a whole number, got 0.5"},
		{"vars a list", def("vars: [a]", "tasks: {a: {action: core.noop}}"), "vars", "", "want a mapping, got a list"},
		{"vars name", def("vars: {my-var: 1}", "tasks: {a: {action: core.noop}}"), "vars.my-var", "", `"my-var" is not a variable name`},
		{"vars name digit", def("vars: {1a: 1}", "tasks: {a: {action: core.noop}}"), "vars.1a", "", "not a variable name"},
		{"vars see only input", def("vars: {a: 1, b: '{{ vars.a }}'}", "tasks: {a: {action: core.noop}}"), "vars.b", "", `compile template "vars.a": unknown name vars`},
		{"vars template", def("vars: {a: '{{ input. }}'}", "tasks: {a: {action: core.noop}}"), "vars.a", "", `compile template "input.":`},
		{"input not a list", def("input: hosts", "tasks: {a: {action: core.noop}}"), "input", "", "want a list of parameter names"},
		{"input twice", def("input: [a, b, a]", "tasks: {a: {action: core.noop}}"), "input[2]", "", `"a" is listed twice`},
		{"input not a string", def("input: [a, {b: 1}]", "tasks: {a: {action: core.noop}}"), "input[1]", "", "want a string, got a mapping"},
		{"output a list", def("tasks: {a: {action: core.noop}}", "output: [x]"), "output", "", "want a mapping, got a list"},
		{"output result", def("tasks: {a: {action: core.noop}}", "output: {x: '{{ result }}'}"), "output.x", "", "unknown name result"},
		{"no start", def("tasks:", "  a: {action: core.noop, next: [{when: failed(), do: b}]}", "  b: {action: core.noop, next: [{when: failed(), do: a}]}"), "tasks", "", "no task to start with: every task is named by some transition's do"},
		{"unreachable", def("tasks:", "  a: {action: core.noop}", "  b: {action: core.noop, next: [{when: failed(), do: c}]}", "  c: {action: core.noop, next: [{when: failed(), do: b}]}"), "tasks.b", "b", "unreachable: no path of transitions leads to it from the start (a)"},
		{"endless loop", def("tasks:", "  a: {action: core.noop, next: [{do: b}]}", "  b: {action: core.noop, next: [{when: failed(), do: fail}, {do: c}]}", "  c: {action: core.noop, next: [{do: [b, d]}]}", "  d: {action: core.noop}"), "tasks.b.next", "b", "loops for ever: b, c lead back to one another by transitions without a when"},
		{"endless self loop", def("tasks:", "  a: {action: core.noop, next: [{do: b}]}", "  b: {action: core.noop, next: [{do: b}]}"), "tasks.b.next", "b", "a transition without a when leads back to the task itself"},
		{"first endless loop named", def("tasks:", "  s: {action: core.noop, next: [{do: [y, b]}]}", "  y: {action: core.noop, next: [{do: z}]}", "  z: {action: core.noop, next: [{do: y}]}", "  b: {action: core.noop, next: [{do: c}]}", "  c: {action: core.noop, next: [{do: b}]}"), "tasks.y.next", "y", "y, z lead back"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d, err := Parse(tt.yaml)
			require.Nil(t, d)
			var we *Error
			require.True(t, errors.As(err, &we), "want *Error, got %T %v", err, err)
			require.Equal(t, tt.wantField, we.Field, err.Error())
			require.Equal(t, tt.wantTask, we.Task, err.Error())
			require.Contains(t, err.Error(), tt.wantErr)
			if tt.wantField != "" {
				require.True(t, strings.HasPrefix(err.Error(), tt.wantField+": "), err.Error())
			}
			require.NotContains(t, err.Error(), "\n")
		})
	}
}
