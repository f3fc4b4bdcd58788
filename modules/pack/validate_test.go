package pack

import (
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/require"
)

// TestLoadRefuses covers the validation rules one broken file at a time; the packs on disk
// under testdata/packs/broken cover the common mistakes end to end.
func TestLoadRefuses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		files   map[string]string
		wantErr string
	}{
		// pack.yaml
		{name: "invalid pack ref", files: map[string]string{"pack.yaml": "ref: Demo\n"},
			wantErr: `pack.yaml: ref: "Demo" is not valid`},
		{name: "unknown pack key", files: map[string]string{"pack.yaml": "ref: demo\nauthor: me\n"},
			wantErr: "pack.yaml: line 2: field author not found in type pack.Pack"},
		{name: "empty pack.yaml", files: map[string]string{"pack.yaml": "# nothing\n"},
			wantErr: "pack.yaml: empty file"},
		{name: "two documents", files: map[string]string{"pack.yaml": "ref: demo\n---\nref: other\n"},
			wantErr: "pack.yaml: line 2: more than one YAML document"},
		{name: "bad second document", files: map[string]string{"pack.yaml": "ref: demo\n---\n[\n"},
			wantErr: "pack.yaml: line 3: did not find expected node content"},

		// refs and names
		{name: "no ref or name", files: action("label: x\nrunner_type: noop\n"),
			wantErr: "actions/x.yaml: ref: required"},
		{name: "ref without pack", files: action("ref: hello\nrunner_type: noop\n"),
			wantErr: `actions/x.yaml: ref: "hello": want <pack>.<name>`},
		{name: "invalid name in ref", files: action("ref: demo.Hello\nrunner_type: noop\n"),
			wantErr: `actions/x.yaml: ref: name "Hello" is not valid`},
		{name: "two dots", files: action("ref: demo.a.b\nrunner_type: noop\n"),
			wantErr: `actions/x.yaml: ref: name "a.b" is not valid`},
		{name: "invalid short name", files: action("name: a b\nrunner_type: noop\n"),
			wantErr: `actions/x.yaml: name: name "a b" is not valid`},
		{name: "name and ref disagree", files: action("ref: demo.a\nname: b\nrunner_type: noop\n"),
			wantErr: `actions/x.yaml: name: "b" does not match ref "demo.a"`},
		{name: "duplicate trigger", files: map[string]string{"pack.yaml": "ref: demo\n", "triggers/a.yaml": "name: t\n", "triggers/b.yml": "ref: demo.t\n"},
			wantErr: `triggers/b.yml: ref: trigger "demo.t" is already defined in triggers/a.yaml`},
		{name: "first file in name order", files: map[string]string{"pack.yaml": "ref: demo\n", "actions/b.yaml": "bogus: 1\n", "actions/a.yaml": "name: a\n"},
			wantErr: "actions/a.yaml: runner_type: required"},
		{name: "actions before rules", files: map[string]string{"pack.yaml": "ref: demo\n", "rules/a.yaml": "bogus: 1\n", "actions/z.yaml": "name: z\n"},
			wantErr: "actions/z.yaml: runner_type: required"},

		// actions
		{name: "wrong yaml type", files: action("name: x\nrunner_type: noop\ntimeout_seconds: soon\n"),
			wantErr: "actions/x.yaml: line 3: cannot unmarshal !!str `soon` into int"},
		{name: "not a mapping", files: action("- name: x\n"),
			wantErr: "actions/x.yaml: line 1: cannot unmarshal !!seq into pack.Action"},
		{name: "shell without entry point or cmd", files: action("name: x\nrunner_type: shell\n"),
			wantErr: `actions/x.yaml: entry_point: required for a shell action without a "cmd" parameter`},
		{name: "inline cmd not a string", files: action("name: x\nrunner_type: shell\nparameters: {cmd: {type: array}}\n"),
			wantErr: "actions/x.yaml: parameters.cmd.type: want string"},
		{name: "entry point for http", files: action("name: x\nrunner_type: http\nentry_point: x.sh\n"),
			wantErr: "actions/x.yaml: entry_point: the http runner takes none"},
		{name: "absolute entry point", files: action("name: x\nrunner_type: shell\nentry_point: /bin/true\n"),
			wantErr: `actions/x.yaml: entry_point: "/bin/true" must be relative to actions/`},
		{name: "entry point with ..", files: action("name: x\nrunner_type: shell\nentry_point: lib/../../x.sh\n"),
			wantErr: `actions/x.yaml: entry_point: "lib/../../x.sh" must stay inside actions/`},
		{name: "entry point is a directory", files: map[string]string{"pack.yaml": "ref: demo\n", "actions/x.yaml": "name: x\nrunner_type: shell\nentry_point: lib\n", "actions/lib/a.sh": ""},
			wantErr: "actions/x.yaml: entry_point: actions/lib is a directory; want a script file"},
		{name: "output format", files: action("name: x\nrunner_type: noop\noutput_format: xml\n"),
			wantErr: `actions/x.yaml: output_format: unknown output format "xml"; want text or json`},
		{name: "zero timeout", files: action("name: x\nrunner_type: noop\ntimeout_seconds: 0\n"),
			wantErr: "actions/x.yaml: timeout_seconds: want more than 0, got 0"},
		{name: "unknown parameter key", files: action("name: x\nrunner_type: noop\nparameters:\n  a:\n    type: string\n    requird: true\n"),
			wantErr: "actions/x.yaml: line 6: field requird not found in type pack.Param"},
		{name: "unknown parameter type", files: action("name: x\nrunner_type: noop\nparameters: {a: {type: str}}\n"),
			wantErr: `actions/x.yaml: parameters.a.type: unknown type "str"`},
		{name: "enum of the wrong type", files: action("name: x\nrunner_type: noop\nparameters: {a: {type: integer, enum: [1, two]}}\n"),
			wantErr: `actions/x.yaml: parameters.a.enum[1]: want integer, got "two"`},

		// triggers and sensors
		{name: "bad output schema", files: map[string]string{"pack.yaml": "ref: demo\n", "triggers/t.yaml": "name: t\noutput: {body: {type: blob}}\n"},
			wantErr: `triggers/t.yaml: output.body.type: unknown type "blob"`},
		{name: "sensor trigger ref", files: map[string]string{"pack.yaml": "ref: demo\n", "sensors/s.yaml": "name: s\ntrigger_refs: [demo.t, t]\n"},
			wantErr: `sensors/s.yaml: trigger_refs[1]: "t": want <pack>.<name>`},
		{name: "sensor script missing", files: map[string]string{"pack.yaml": "ref: demo\n", "sensors/s.yaml": "name: s\nentry_point: s.py\n"},
			wantErr: `sensors/s.yaml: entry_point: "s.py" not found in sensors/`},

		// rules
		{name: "rule without trigger", files: rule("name: r\naction_ref: core.noop\n"),
			wantErr: "rules/r.yaml: trigger_ref: required"},
		{name: "rule without action", files: rule("name: r\ntrigger_ref: core.webhook\n"),
			wantErr: "rules/r.yaml: action_ref: required"},
		{name: "rule action ref", files: rule("name: r\ntrigger_ref: core.webhook\naction_ref: Core.noop\n"),
			wantErr: `rules/r.yaml: action_ref: "Core.noop": pack ref "Core" is not valid`},
		{name: "trigger params key", files: rule("name: r\ntrigger_ref: core.webhook\ntrigger_params: {a: {1: x}}\naction_ref: core.noop\n"),
			wantErr: "rules/r.yaml: trigger_params.a: keys must be strings, got integer 1"},
		{name: "condition JSON cannot carry", files: rule("name: r\ntrigger_ref: core.webhook\nconditions: {all: [{value: .inf}]}\naction_ref: core.noop\n"),
			wantErr: "rules/r.yaml: conditions.all[0].value: +Inf cannot be represented in JSON"},
		{name: "action params not a map", files: rule("name: r\ntrigger_ref: core.webhook\naction_ref: core.noop\naction_params: [a]\n"),
			wantErr: "rules/r.yaml: line 4: cannot unmarshal !!seq into map[string]interface {}"},

		// worker selectors
		{name: "selector label", files: action("name: a\nrunner_type: noop\nworker_selector: {zone: e u}\n"),
			wantErr: `actions/x.yaml: worker_selector: label "zone=e u": value "e u" must be 1 to 63 letters`},
		{name: "empty selector", files: action("name: a\nrunner_type: noop\nworker_selector: {}\n"),
			wantErr: "actions/x.yaml: worker_selector: empty: leave it out to run on any worker"},
		{name: "selector of a workflow", files: map[string]string{"pack.yaml": "ref: demo\n",
			"actions/x.yaml": "name: a\nrunner_type: workflow\nentry_point: w.yaml\nworker_selector: {zone: eu}\n"},
			wantErr: "actions/x.yaml: worker_selector: the workflow runner runs in the executor, on no worker"},
		{name: "policy selector label", files: policy("name: p\naction_ref: demo.a\nworker_selector: {\"\": x}\n"),
			wantErr: `policies/p.yaml: worker_selector: label "=x": key "" must be`},

		// policies
		{name: "policy without scope", files: policy("name: p\nconcurrency: {limit: 1}\n"),
			wantErr: "policies/p.yaml: action_ref: required, or pack_ref"},
		{name: "policy with two scopes", files: policy("name: p\naction_ref: demo.a\npack_ref: demo\nconcurrency: {limit: 1}\n"),
			wantErr: "policies/p.yaml: pack_ref: give action_ref or pack_ref, not both"},
		{name: "policy pack ref", files: policy("name: p\npack_ref: Demo\nconcurrency: {limit: 1}\n"),
			wantErr: `policies/p.yaml: pack_ref: pack ref "Demo" is not valid`},
		{name: "policy without limits", files: policy("name: p\naction_ref: demo.a\nmax_queue_length: 3\n"),
			wantErr: "policies/p.yaml: concurrency: a policy needs at least one of concurrency, rate_limit, retry and worker_selector"},
		{name: "concurrency limit", files: policy("name: p\naction_ref: demo.a\nconcurrency: {method: cancel}\n"),
			wantErr: "policies/p.yaml: concurrency.limit: want more than 0, got 0"},
		{name: "concurrency method", files: policy("name: p\naction_ref: demo.a\nconcurrency: {limit: 1, method: drop}\n"),
			wantErr: `policies/p.yaml: concurrency.method: unknown method "drop"; want enqueue or cancel`},
		{name: "concurrency parameter", files: policy("name: p\naction_ref: demo.a\nconcurrency: {limit: 1, parameters: [host, \"\"]}\n"),
			wantErr: `policies/p.yaml: concurrency.parameters[1]: "" is not a parameter name`},
		{name: "rate window", files: policy("name: p\naction_ref: demo.a\nrate_limit: {max_executions: 1}\n"),
			wantErr: "policies/p.yaml: rate_limit.window_seconds: want more than 0, got 0"},
		{name: "rate executions", files: policy("name: p\naction_ref: demo.a\nrate_limit: {window_seconds: 1, max_executions: -1}\n"),
			wantErr: "policies/p.yaml: rate_limit.max_executions: want more than 0, got -1"},
		{name: "rate method", files: policy("name: p\naction_ref: demo.a\nrate_limit: {window_seconds: 1, max_executions: 1, method: later}\n"),
			wantErr: `policies/p.yaml: rate_limit.method: unknown method "later"`},
		{name: "queue length", files: policy("name: p\naction_ref: demo.a\nconcurrency: {limit: 1}\nmax_queue_length: -1\n"),
			wantErr: "policies/p.yaml: max_queue_length: want 0 or more, got -1"},
		{name: "queue timeout", files: policy("name: p\naction_ref: demo.a\nconcurrency: {limit: 1}\nqueue_timeout_seconds: 0\n"),
			wantErr: "policies/p.yaml: queue_timeout_seconds: want more than 0, got 0"},
		{name: "queue bound without a limit", files: policy("name: p\naction_ref: demo.a\nretry: {max_attempts: 2}\nqueue_timeout_seconds: 5\n"),
			wantErr: "policies/p.yaml: max_queue_length: bounds a queue, and only concurrency or rate_limit makes one"},
		{name: "retry attempts", files: policy("name: p\naction_ref: demo.a\nretry: {max_attempts: 0}\n"),
			wantErr: "policies/p.yaml: retry.max_attempts: want 1 to 100 (every attempt, the first included), got 0"},
		{name: "retry status", files: policy("name: p\naction_ref: demo.a\nretry: {max_attempts: 3, on: [failed, cancelled]}\n"),
			wantErr: `policies/p.yaml: retry.on[1]: unknown status "cancelled"; want failed, timeout or abandoned`},
		{name: "retry backoff", files: policy("name: p\naction_ref: demo.a\nretry: {max_attempts: 3, backoff: linear}\n"),
			wantErr: `policies/p.yaml: retry.backoff: unknown backoff "linear"; want constant or exponential`},
		{name: "retry delay", files: policy("name: p\naction_ref: demo.a\nretry: {max_attempts: 3, delay_seconds: -1}\n"),
			wantErr: "policies/p.yaml: retry.delay_seconds: want 0 to 2592000 (30 days), got -1"},
		{name: "retry delay too long", files: policy("name: p\naction_ref: demo.a\nretry: {max_attempts: 3, delay_seconds: 10000000000000}\n"),
			wantErr: "policies/p.yaml: retry.delay_seconds: want 0 to 2592000 (30 days), got 10000000000000"},
		{name: "retry max delay", files: policy("name: p\naction_ref: demo.a\nretry: {max_attempts: 3, delay_seconds: 10, backoff: exponential, max_delay_seconds: 5}\n"),
			wantErr: "policies/p.yaml: retry.max_delay_seconds: want delay_seconds (10) to 2592000 (30 days), got 5"},
		{name: "retry max delay constant", files: policy("name: p\naction_ref: demo.a\nretry: {max_attempts: 3, max_delay_seconds: 5}\n"),
			wantErr: "policies/p.yaml: retry.max_delay_seconds: only an exponential backoff grows to a maximum"},
		{name: "unknown policy key", files: policy("name: p\naction_ref: demo.a\nconcurrency: {limit: 1, per: host}\n"),
			wantErr: "policies/p.yaml: line 3: field per not found in type pack.Concurrency"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fsys := fstest.MapFS{}
			for name, data := range tt.files {
				fsys[name] = file(data)
			}
			p, err := LoadFS(fsys, ".")
			require.Nil(t, p)
			require.ErrorContains(t, err, "load pack .: "+tt.wantErr)
		})
	}
}

func action(yaml string) map[string]string {
	return map[string]string{"pack.yaml": "ref: demo\n", "actions/x.yaml": yaml}
}

func rule(yaml string) map[string]string {
	return map[string]string{"pack.yaml": "ref: demo\n", "rules/r.yaml": yaml}
}

func policy(yaml string) map[string]string {
	return map[string]string{"pack.yaml": "ref: demo\n", "policies/p.yaml": yaml}
}
