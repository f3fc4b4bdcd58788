package ruleeval

import (
	"encoding/json"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

func renderOne(t *testing.T, tmpl any) any {
	t.Helper()
	out, err := Render(map[string]any{"p": tmpl}, testInput())
	require.NoError(t, err)
	return out["p"]
}

func TestRenderWholeTemplateKeepsType(t *testing.T) {
	t.Parallel()
	tests := []struct {
		tmpl string
		want any
	}{
		{"{{ event.payload.count }}", 4.0},
		{"  {{ trigger.count }}\n", 4.0},
		{"{{trigger.small}}", 3},
		{"{{ trigger.num }}", int64(4)},
		{"{{ trigger.numf }}", 2.5},
		{"{{ trigger.count * 2 }}", 8.0},
		{"{{ event.id }}", int64(7)},
		{"{{ trigger.flag }}", true},
		{"{{ trigger.flag && trigger.count > 5 }}", false},
		{"{{ trigger.labels }}", map[string]any{"env": "prod"}},
		{"{{ trigger.tags }}", []any{"alpha", "Beta", 3.0}},
		{"{{ trigger.items[1] }}", map[string]any{"name": "b"}},
		{"{{ trigger.items[-1].name }}", "b"},
		{"{{ trigger.null }}", nil},
		{"{{ event.payload.nope }}", nil},
		{"{{ event.payload.nope.deeper }}", nil},
		{"{{ trigger.kind.deeper }}", nil},
		{"{{ trigger.items[9].name }}", nil},
		{"{{ trigger.labels['env'] }}", "prod"},
		{"{{ trigger.nope ?? 'default' }}", "default"},
		{"{{ trigger.kind }}", "push"},
		{"{{ event.trigger_ref }}", "core.webhook"},
		{"{{ rule.ref }}", "pack.rule"},
		{"{{ upper(trigger.kind) }}", "PUSH"},
		{"{{ trigger.kind | upper() }}", "PUSH"},
		{"{{ map(trigger.items, .name) }}", []any{"a", "b"}},
		{"{{ split(trigger.ref, '/') }}", []any{"refs", "heads", "main"}},
		{`{{ {"a": {"b": trigger.small}} }}`, map[string]any{"a": map[string]any{"b": 3}}},
		{`{{ "}}" + trigger.kind }}`, "}}push"},
		{"{{ event }}", map[string]any{"id": int64(7), "trigger_ref": "core.webhook", "payload": plain(testPayload())}},
	}
	for _, tt := range tests {
		t.Run(tt.tmpl, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, renderOne(t, tt.tmpl))
		})
	}
}

func TestRenderInterpolates(t *testing.T) {
	t.Parallel()
	tests := []struct {
		tmpl string
		want string
	}{
		{"kind={{ trigger.kind }}", "kind=push"},
		{"n={{ trigger.count }} f={{ trigger.numf }} i={{ trigger.small }}", "n=4 f=2.5 i=3"},
		{"big={{ trigger.count * 1e6 }} tiny={{ trigger.count / 1e9 }}", "big=4000000 tiny=4e-09"},
		{"none=[{{ trigger.nope.deeper }}]", "none=[]"},
		{"obj={{ trigger.labels }}", `obj={"env":"prod"}`},
		{"list={{ trigger.tags }}", `list=["alpha","Beta",3]`},
		{"html={{ {'a': '<b>&'} }}", `html={"a":"<b>&"}`},
		{"b={{ trigger.flag }}", "b=true"},
		{"{{ trigger.count }}{{ trigger.count }}", "44"},
		{"{{ trigger.kind }} by {{ rule.ref }} #{{ event.id }}", "push by pack.rule #7"},
		{"{{ trigger.kind }}}", "push}"},
		{"no templates }} here", "no templates }} here"},
		{"{{ event }}!", `{"id":7,"payload":{`},
	}
	for _, tt := range tests {
		t.Run(tt.tmpl, func(t *testing.T) {
			t.Parallel()
			got := renderOne(t, tt.tmpl)
			require.IsType(t, "", got)
			if strings.HasSuffix(tt.want, "{") {
				require.True(t, strings.HasPrefix(got.(string), tt.want), got)
				return
			}
			require.Equal(t, tt.want, got)
		})
	}
}

func TestRenderWalksMapsAndLists(t *testing.T) {
	t.Parallel()
	params := map[string]any{
		"message": "{{ trigger.kind }} on {{ trigger.ref }}",
		"count":   "{{ trigger.count }}",
		"n":       5,
		"f":       1.5,
		"on":      true,
		"nothing": nil,
		"nested": map[string]any{
			"list": []any{"{{ rule.ref }}", 1, []any{"{{ trigger.labels }}"}},
			"deep": map[string]any{"x": "id {{ event.id }}"},
		},
	}
	out, err := Render(params, testInput())
	require.NoError(t, err)
	require.Equal(t, map[string]any{
		"message": "push on refs/heads/main",
		"count":   4.0,
		"n":       5,
		"f":       1.5,
		"on":      true,
		"nothing": nil,
		"nested": map[string]any{
			"list": []any{"pack.rule", 1, []any{map[string]any{"env": "prod"}}},
			"deep": map[string]any{"x": "id 7"},
		},
	}, out)
}

func TestRenderDoesNotModifyInputOrAliasIt(t *testing.T) {
	t.Parallel()
	params := map[string]any{
		"labels": "{{ trigger.labels }}",
		"same":   "{{ trigger.labels }}",
		"list":   []any{"{{ trigger.kind }}"},
		"map":    map[string]any{"k": "{{ trigger.kind }}"},
	}
	paramsBefore := deepCopyJSON(t, params)
	in := testInput()
	payloadBefore := plain(in.Payload)

	out, err := Render(params, in)
	require.NoError(t, err)
	require.Equal(t, paramsBefore, deepCopyJSON(t, params))
	require.Equal(t, []any{"{{ trigger.kind }}"}, params["list"])

	// Changing the result must reach neither the event nor another parameter.
	out["labels"].(map[string]any)["env"] = "changed"
	out["list"].([]any)[0] = "changed"
	require.Equal(t, "prod", in.Payload["labels"].(map[string]any)["env"])
	require.Equal(t, "prod", out["same"].(map[string]any)["env"])
	require.Equal(t, payloadBefore, plain(in.Payload))
	require.Equal(t, "{{ trigger.kind }}", params["list"].([]any)[0])
}

func deepCopyJSON(t *testing.T, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	var out any
	require.NoError(t, json.Unmarshal(b, &out))
	return out
}

func TestRenderEdgeCases(t *testing.T) {
	t.Parallel()
	out, err := Render(nil, testInput())
	require.NoError(t, err)
	require.Equal(t, map[string]any{}, out)

	out, err = Render(map[string]any{"p": "{{ trigger.kind }}"}, Input{})
	require.NoError(t, err)
	require.Equal(t, map[string]any{"p": nil}, out)

	out, err = Render(map[string]any{"p": "{{ len(trigger) }}"}, Input{})
	require.NoError(t, err)
	require.Equal(t, map[string]any{"p": 0}, out)
}

func TestRenderErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		params  map[string]any
		wantErr string
	}{
		{map[string]any{"x": "{{ int(trigger.kind) }}"}, `action_params.x: evaluate template "int(trigger.kind)": `},
		{map[string]any{"a": []any{map[string]any{"b": "v={{ trigger.count + }}"}}}, `action_params.a[0].b: compile template "trigger.count +": `},
		{map[string]any{"x": "{{ trigger.kind"}, `action_params.x: unclosed "{{" at offset 0`},
		{map[string]any{"a": "ok", "b": "{{ foo }}", "c": "{{ bar }}"}, `action_params.b: compile template "foo": unknown name foo`},
	}
	for _, tt := range tests {
		out, err := Render(tt.params, testInput())
		require.Nil(t, out)
		require.Error(t, err)
		require.True(t, strings.HasPrefix(err.Error(), tt.wantErr), "got %q, want prefix %q", err, tt.wantErr)
		require.NotContains(t, err.Error(), "\n")
		var pe *PathError
		require.ErrorAs(t, err, &pe)
	}
}

func TestValidateTemplates(t *testing.T) {
	t.Parallel()
	require.NoError(t, ValidateTemplates(nil))
	require.NoError(t, ValidateTemplates(map[string]any{
		"message": "{{ trigger.kind }} by {{ rule.ref }}",
		"plain":   "no templates",
		"n":       3,
		"nested":  map[string]any{"list": []any{"{{ event.payload.items[0].name }}", true}},
		"map":     `{{ {"a": {"b": 1}} }}`,
	}))

	tests := []struct {
		params  map[string]any
		wantErr string
	}{
		{map[string]any{"message": "{{ trigger.count + }}"}, `action_params.message: compile template "trigger.count +": unexpected token EOF (1:14)`},
		{map[string]any{"a": map[string]any{"b": []any{"ok", "x {{ event.nope }}"}}},
			`action_params.a.b[1]: compile template "event.nope": type ruleeval.eventEnv has no field nope (1:6)`},
		{map[string]any{"x": "hello {{ trigger.kind "}, `action_params.x: unclosed "{{" at offset 6`},
		{map[string]any{"x": "{{ 'unterminated }}"}, `action_params.x: unclosed "{{" at offset 0`},
		{map[string]any{"x": "a {{ }} b"}, `action_params.x: empty template {{ }}`},
		{map[string]any{"x": "{{ payload.kind }}"}, `action_params.x: compile template "payload.kind": unknown name payload (1:0)`},
		{map[string]any{"b": "{{ foo }}", "a": "{{ bar }}"}, `action_params.a: compile template "bar": unknown name bar`},
	}
	for _, tt := range tests {
		err := ValidateTemplates(tt.params)
		require.Error(t, err)
		require.True(t, strings.HasPrefix(err.Error(), tt.wantErr), "got %q, want prefix %q", err, tt.wantErr)
		var pe *PathError
		require.ErrorAs(t, err, &pe)
	}
}

func TestSplitTemplate(t *testing.T) {
	t.Parallel()
	expr := func(s string) segment { return segment{text: s, isExpr: true} }
	text := func(s string) segment { return segment{text: s} }
	tests := []struct {
		in   string
		want []segment
	}{
		{"", nil},
		{"plain", []segment{text("plain")}},
		{"{{a}}", []segment{expr("a")}},
		{" {{ a }} ", []segment{text(" "), expr("a"), text(" ")}},
		{"x{{a}}y{{ b }}z", []segment{text("x"), expr("a"), text("y"), expr("b"), text("z")}},
		{"{{a}}{{b}}", []segment{expr("a"), expr("b")}},
		{`{{ {"a": {"b": 1}} }}`, []segment{expr(`{"a": {"b": 1}}`)}},
		{`{{ "}}" }}`, []segment{expr(`"}}"`)}},
		{`{{ 'it\'s }}' }}`, []segment{expr(`'it\'s }}'`)}},
		{"{{ `}}` }}", []segment{expr("`}}`")}},
		{"{{a}}}", []segment{expr("a"), text("}")}},
		{"}} {{a}}", []segment{text("}} "), expr("a")}},
	}
	for _, tt := range tests {
		got, err := splitTemplate(tt.in)
		require.NoError(t, err, tt.in)
		require.Equal(t, tt.want, got, tt.in)
	}
	for _, bad := range []string{"{{", "{{ a }", "x {{ {a: 1} }", "{{ }}", "{{ 'a }}"} {
		_, err := splitTemplate(bad)
		require.Error(t, err, bad)
	}
}

// Templated tells what Render will do with a string: leave it, keep its value's type, or make
// text of it.
func TestTemplated(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in                   string
		templated, keepsType bool
	}{
		{"plain", false, false},
		{"}} {", false, false},
		{"{{ event.payload.n }}", true, true},
		{" {{ event.payload.n * 2 }} ", true, true},
		{"n-{{ event.payload.n }}", true, false},
		{"{{ a }}{{ b }}", true, false},
		{"{{ unclosed", true, false},
	}
	for _, tt := range tests {
		templated, keepsType := Templated(tt.in)
		require.Equal(t, tt.templated, templated, tt.in)
		require.Equal(t, tt.keepsType, keepsType, tt.in)
		if !tt.templated {
			continue
		}
		// The promise: a whole template renders to the value, anything else to a string.
		out, err := Render(map[string]any{"x": tt.in}, Input{Payload: map[string]any{"n": 1}})
		if err != nil {
			continue
		}
		_, isString := out["x"].(string)
		require.Equal(t, !tt.keepsType, isString, tt.in)
	}
}

func TestTemplateCache(t *testing.T) {
	t.Parallel()
	p1, err := templates.get("trigger.kind + 'cached'")
	require.NoError(t, err)
	p2, err := templates.get("trigger.kind + 'cached'")
	require.NoError(t, err)
	require.Same(t, p1, p2)

	var c programCache
	c.n.Store(maxCachedPrograms)
	_, err = c.get("1 + 1")
	require.NoError(t, err)
	_, cached := c.m.Load("1 + 1")
	require.False(t, cached, "a full cache takes no more programs")

	_, err = c.get("1 +")
	require.Error(t, err)
}

func TestRenderIsSafeForConcurrentUse(t *testing.T) {
	t.Parallel()
	params := map[string]any{"m": "{{ trigger.kind }}-{{ event.id }}", "o": "{{ trigger.labels }}"}
	var wg sync.WaitGroup
	outs := make([]map[string]any, 16)
	errs := make([]error, 16)
	for i := range outs {
		wg.Go(func() { outs[i], errs[i] = Render(params, testInput()) })
	}
	wg.Wait()
	for i := range outs {
		require.NoError(t, errs[i])
		require.Equal(t, map[string]any{"m": "push-7", "o": map[string]any{"env": "prod"}}, outs[i])
	}
}
