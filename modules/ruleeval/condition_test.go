package ruleeval

import (
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

func testInput() Input {
	return Input{EventID: 7, TriggerRef: "core.webhook", RuleRef: "pack.rule", Payload: testPayload()}
}

func match(t *testing.T, raw any) bool {
	t.Helper()
	c, err := ParseConditions(raw)
	require.NoError(t, err)
	got, err := c.MatchAt(testInput(), testNow)
	require.NoError(t, err)
	return got
}

func TestZeroAndEmptyConditionsMatchEverything(t *testing.T) {
	t.Parallel()
	var zero Condition
	got, err := zero.Match(Input{})
	require.NoError(t, err)
	require.True(t, got)
	for _, raw := range []any{nil, []any{}, []map[string]any{}} {
		c, err := ParseConditions(raw)
		require.NoError(t, err)
		got, err := c.Match(testInput())
		require.NoError(t, err)
		require.True(t, got, "%#v", raw)
	}
}

func TestNesting(t *testing.T) {
	t.Parallel()
	yes := leaf("kind", "equals", "push")
	no := leaf("kind", "equals", "pull")
	tests := []struct {
		name string
		raw  any
		want bool
	}{
		{"leaf", yes, true},
		{"list all true", []any{yes, yes}, true},
		{"list one false", []any{yes, no}, false},
		{"typed list", []map[string]any{yes, yes}, true},
		{"all true", map[string]any{"all": []any{yes, yes}}, true},
		{"all one false", map[string]any{"all": []any{yes, no}}, false},
		{"all empty", map[string]any{"all": []any{}}, true},
		{"any one true", map[string]any{"any": []any{no, yes}}, true},
		{"any none true", map[string]any{"any": []any{no, no}}, false},
		{"not false", map[string]any{"not": no}, true},
		{"not true", map[string]any{"not": yes}, false},
		{"not list", map[string]any{"not": []any{yes, no}}, true},
		{"double not", map[string]any{"not": map[string]any{"not": yes}}, true},
		{"any of all", map[string]any{"any": []any{
			map[string]any{"all": []any{yes, no}},
			map[string]any{"all": []any{yes, leaf("count", "gt", 3)}},
		}}, true},
		{"list of any and not", []any{
			map[string]any{"any": []any{no, yes}},
			map[string]any{"not": map[string]any{"any": []any{no, leaf("missing", "exists", nil)}}},
		}, true},
		{"list of list", []any{[]any{yes, yes}, []any{no}}, false},
		{"expression in any", map[string]any{"any": []any{no, map[string]any{"expression": "trigger.count == 4"}}}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, match(t, tt.raw))
		})
	}
}

func TestShortCircuitSkipsFailingExpressions(t *testing.T) {
	t.Parallel()
	yes := leaf("kind", "equals", "push")
	no := leaf("kind", "equals", "pull")
	failing := map[string]any{"expression": `int(trigger.kind) > 1`}

	require.True(t, match(t, map[string]any{"any": []any{yes, failing}}))
	require.False(t, match(t, []any{no, failing}))

	for _, raw := range []any{
		[]any{yes, failing},
		map[string]any{"any": []any{no, failing}},
		map[string]any{"not": failing},
	} {
		c, err := ParseConditions(raw)
		require.NoError(t, err)
		_, err = c.MatchAt(testInput(), testNow)
		require.Error(t, err, "%#v", raw)
	}
}

func TestExpressionConditions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		src  string
		want bool
	}{
		{"event.payload.count > 3", true},
		{"event.payload.count > 4", false},
		{`trigger.kind == "push" && rule.ref == "pack.rule"`, true},
		{`event.trigger_ref startsWith "core."`, true},
		{"event.id == 7", true},
		{"trigger.small + trigger.num == 7", true},
		{"trigger.nope.deeper == nil", true},
		{"trigger.items[5]?.name == nil", true},
		{`trigger.items[1].name == "b"`, true},
		{`"alpha" in trigger.tags`, true},
		{`upper(trigger.kind) == "PUSH"`, true},
		{`len(trigger.items) == 2`, true},
		{`any(trigger.items, .name == "b")`, true},
		{`trigger.flag`, true},
	}
	for _, tt := range tests {
		t.Run(tt.src, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, match(t, map[string]any{"expression": tt.src}))
		})
	}
}

func TestExpressionRunTimeErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		raw     any
		wantErr string
		notBool bool
	}{
		{[]any{map[string]any{"expression": "int(trigger.kind) > 1"}},
			`conditions[0]: evaluate expression "int(trigger.kind) > 1": `, false},
		{map[string]any{"all": []any{map[string]any{"expression": "trigger.kind"}}},
			`conditions.all[0]: expression "trigger.kind": result is not a bool, got string`, true},
		{map[string]any{"expression": "trigger.nope"},
			`conditions: expression "trigger.nope": result is not a bool, got <nil>`, true},
	}
	for _, tt := range tests {
		c, err := ParseConditions(tt.raw)
		require.NoError(t, err)
		got, err := c.MatchAt(testInput(), testNow)
		require.False(t, got)
		require.ErrorContains(t, err, tt.wantErr)
		require.True(t, strings.HasPrefix(err.Error(), tt.wantErr), err.Error())
		require.NotContains(t, err.Error(), "\n")
		require.Equal(t, tt.notBool, errors.Is(err, ErrNotBool))
		var pe *PathError
		require.ErrorAs(t, err, &pe)
	}
}

func TestParseErrors(t *testing.T) {
	t.Parallel()
	ok := leaf("kind", "equals", "push")
	tests := []struct {
		name    string
		raw     any
		wantErr string
	}{
		{"unknown operator nested", []any{ok, map[string]any{"any": []any{leaf("kind", "equal", "push")}}},
			`conditions[1].any[0]: unknown operator "equal" (valid: `},
		{"leaf without field", []any{map[string]any{"operator": "equals", "value": 1}},
			`conditions[0]: leaf needs "field"`},
		{"leaf without operator", map[string]any{"field": "kind"}, `conditions: leaf needs "operator"`},
		{"missing value", leaf("kind", "equals", nil), `conditions: operator "equals" needs "value"`},
		{"null value", map[string]any{"field": "kind", "operator": "regex", "value": nil},
			`conditions: operator "regex" needs "value"`},
		{"unknown key", map[string]any{"field": "kind", "operator": "exists", "type": "x"},
			`conditions: unknown key "type"`},
		{"two kinds", map[string]any{"all": []any{}, "not": ok}, "conditions: condition has more than one of all, not"},
		{"field and expression", map[string]any{"field": "a", "operator": "exists", "expression": "true"},
			"conditions: condition has more than one of expression, field"},
		{"empty map", map[string]any{}, "conditions: condition needs one of all, any, not, expression, field"},
		{"operator outside leaf", map[string]any{"all": []any{ok}, "operator": "equals"},
			`conditions: "operator" only belongs in a leaf with "field"`},
		{"value outside leaf", map[string]any{"not": ok, "value": 1},
			`conditions: "value" only belongs in a leaf with "field"`},
		{"field number", map[string]any{"field": 3, "operator": "exists"}, `conditions: "field" must be a string, got int`},
		{"empty field", leaf("", "exists", nil), `conditions: "field" is empty`},
		{"empty segment", leaf("a..b", "exists", nil), `conditions: "field" "a..b" has an empty segment`},
		{"operator not string", map[string]any{"field": "a", "operator": 3}, `conditions: "operator" must be a string, got int`},
		{"bad regex", leaf("kind", "regex", "("), `conditions: operator "regex": compile regex "(": error parsing regexp`},
		{"regex not string", leaf("kind", "iregex", 3), `conditions: operator "iregex": value must be a string, got int`},
		{"wildcard not string", leaf("kind", "matchwildcard", 1), `conditions: operator "matchwildcard": value must be a string, got int`},
		{"bad wildcard", leaf("kind", "matchwildcard", "["), `conditions: operator "matchwildcard": check wildcard "[": syntax error in pattern`},
		{"inside number", leaf("kind", "in", 3), `conditions: operator "in": value must be a list or a string, got int`},
		{"lessthan list", leaf("count", "lessthan", []any{1}), `conditions: operator "lessthan": value must be a number or a string, got []interface {}`},
		{"timediff string", leaf("ts", "td_gt", "1h"), `conditions: operator "td_gt": value must be a number of seconds, got string`},
		{"startswith map", leaf("kind", "startswith", map[string]any{}), `conditions: operator "startswith": value must be a string, number or bool`},
		{"icontains list", leaf("kind", "icontains", []any{"a"}), `conditions: operator "icontains": value must be a string, number or bool`},
		{"all not list", map[string]any{"all": "x"}, "conditions.all: must be a list, got string"},
		{"empty any", map[string]any{"any": []any{}}, "conditions.any: needs at least one condition"},
		{"not scalar", map[string]any{"not": "x"}, "conditions.not: condition must be a map or a list, got string"},
		{"root scalar", "kind == push", "conditions: condition must be a map or a list, got string"},
		{"deep path", map[string]any{"all": []any{ok, map[string]any{"not": map[string]any{"any": []any{ok, leaf("a", "nope", 1)}}}}},
			`conditions.all[1].not.any[1]: unknown operator "nope"`},
		{"list in list", []any{[]any{ok, leaf("a", "nope", 1)}}, `conditions[0][1]: unknown operator "nope"`},
		{"expression not string", map[string]any{"expression": 3}, `conditions: "expression" must be a non-empty string`},
		{"expression blank", []any{map[string]any{"expression": "  "}}, `conditions[0]: "expression" must be a non-empty string`},
		{"expression syntax", map[string]any{"expression": "trigger.count >"}, `conditions: compile expression "trigger.count >": unexpected token EOF`},
		{"expression not bool", map[string]any{"expression": "1 + 2"}, `conditions: compile expression "1 + 2": result is not a bool, got int`},
		{"expression unknown name", map[string]any{"expression": "payload.count > 1"}, `conditions: compile expression "payload.count > 1": unknown name payload`},
		{"expression unknown event field", map[string]any{"expression": "event.paylod.count > 1"},
			`conditions: compile expression "event.paylod.count > 1": type ruleeval.eventEnv has no field paylod`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := ParseConditions(tt.raw)
			require.Error(t, err)
			require.Zero(t, c)
			require.True(t, strings.HasPrefix(err.Error(), tt.wantErr), "got %q, want prefix %q", err, tt.wantErr)
			require.NotContains(t, err.Error(), "\n")
			var pe *PathError
			require.ErrorAs(t, err, &pe)
			require.Equal(t, tt.wantErr[:strings.Index(tt.wantErr, ": ")], pe.Path)
		})
	}
}

func TestConditionsFromJSON(t *testing.T) {
	t.Parallel()
	const rule = `{
		"conditions": [
			{"field": "body.kind", "operator": "equals", "value": "push"},
			{"any": [
				{"field": "body.commits.0.id", "operator": "regex", "value": "^[0-9a-f]{7}"},
				{"field": "body.forced", "operator": "eq", "value": true}
			]},
			{"not": {"field": "body.count", "operator": "lt", "value": 2}},
			{"expression": "len(trigger.body.commits) == trigger.body.count"}
		]
	}`
	const event = `{"body": {"kind": "push", "count": 2, "forced": false, "commits": [{"id": "deadbeef1"}, {"id": "x"}]}}`

	for _, useNumber := range []bool{false, true} {
		var r struct{ Conditions any }
		var payload map[string]any
		decode(t, rule, &r, useNumber)
		decode(t, event, &payload, useNumber)
		c, err := ParseConditions(r.Conditions)
		require.NoError(t, err)
		got, err := c.Match(Input{Payload: payload})
		require.NoError(t, err)
		require.True(t, got, "useNumber=%v", useNumber)

		payload["body"].(map[string]any)["count"] = 1
		got, err = c.Match(Input{Payload: payload})
		require.NoError(t, err)
		require.False(t, got, "useNumber=%v", useNumber)
	}
}

func decode(t *testing.T, src string, v any, useNumber bool) {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(src))
	if useNumber {
		dec.UseNumber()
	}
	require.NoError(t, dec.Decode(v))
}

func TestConditionsFromOldYAMLMaps(t *testing.T) {
	t.Parallel()
	raw := []any{
		map[any]any{"field": "count", "operator": "gt", "value": 3},
		map[any]any{"not": map[any]any{"field": "kind", "operator": "equals", "value": "pull"}},
	}
	require.True(t, match(t, raw))

	_, err := ParseConditions([]any{map[any]any{1: "x"}})
	require.EqualError(t, err, "conditions[0]: condition must be a map or a list, got map[interface {}]interface {}")
}

func TestConditionIsSafeForConcurrentUse(t *testing.T) {
	t.Parallel()
	c, err := ParseConditions([]any{
		leaf("kind", "regex", "^pu"),
		map[string]any{"expression": "trigger.count > 3"},
	})
	require.NoError(t, err)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for range 16 {
		wg.Go(func() {
			got, err := c.Match(testInput())
			if err == nil && !got {
				err = errUnexpectedFalse
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
}

var errUnexpectedFalse = errors.New("match returned false")
