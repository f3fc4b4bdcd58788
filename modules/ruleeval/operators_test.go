package ruleeval

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// testNow is the clock for timediff cases: ts in testPayload is ten minutes before it.
var testNow = time.Date(2024, 1, 1, 0, 10, 0, 0, time.UTC)

func testPayload() map[string]any {
	return map[string]any{
		"kind":   "push",
		"Title":  "Hello World",
		"count":  4.0,
		"small":  3,
		"big":    int64(1<<53 + 1),
		"num":    json.Number("4"),
		"numf":   json.Number("2.5"),
		"flag":   true,
		"null":   nil,
		"tags":   []any{"alpha", "Beta", 3.0},
		"labels": map[string]any{"env": "prod"},
		"items":  []any{map[string]any{"name": "a"}, map[string]any{"name": "b"}},
		"ref":    "refs/heads/main",
		"path":   "src/main.go",
		"ts":     "2024-01-01T00:00:00Z",
		"epoch":  float64(testNow.Unix() - 60),
		"epochi": testNow.Unix() - 60,
		"bad":    "not a date",
	}
}

func leaf(field, op string, value any) map[string]any {
	m := map[string]any{"field": field, "operator": op}
	if value != nil {
		m["value"] = value
	}
	return m
}

func TestOperators(t *testing.T) {
	t.Parallel()
	tests := []struct {
		field string
		op    string
		value any
		want  bool
	}{
		{"kind", "equals", "push", true},
		{"kind", "equals", "pull", false},
		{"count", "equals", 4, true},
		{"count", "equals", "4", true},
		{"count", "equals", 4.5, false},
		{"small", "equals", 3.0, true},
		{"num", "equals", 4, true},
		{"numf", "equals", 2.5, true},
		{"big", "equals", int64(1 << 53), false},
		{"flag", "equals", "true", true},
		{"flag", "equals", true, true},
		{"null", "equals", "", false},
		{"missing", "equals", "push", false},
		{"labels", "equals", map[string]any{"env": "prod"}, true},
		{"items.1.name", "equals", "b", true},
		{"kind", "eq", "push", true},

		{"kind", "nequals", "pull", true},
		{"kind", "nequals", "push", false},
		{"null", "nequals", "x", true},
		{"missing", "nequals", "push", true},
		{"kind", "neq", "push", false},

		{"kind", "iequals", "PUSH", true},
		{"Title", "iequals", "hello world", true},
		{"Title", "iequals", "hello", false},
		{"count", "iequals", 4, true},
		{"flag", "iequals", "TRUE", true},
		{"flag", "iequals", true, true},
		{"tags", "iequals", "alpha", false},
		{"missing", "iequals", "push", false},
		{"kind", "ieq", "Push", true},

		{"kind", "contains", "us", true},
		{"kind", "contains", "x", false},
		{"tags", "contains", "alpha", true},
		{"tags", "contains", "beta", false},
		{"tags", "contains", 3, true},
		{"labels", "contains", "env", true},
		{"labels", "contains", "prod", false},
		{"labels", "contains", []any{"env"}, false},
		{"kind", "contains", []any{"push"}, false},
		{"count", "contains", 4, false},
		{"missing", "contains", "x", false},

		{"kind", "ncontains", "zz", true},
		{"tags", "ncontains", "alpha", false},
		{"missing", "ncontains", "x", true},

		{"Title", "icontains", "WORLD", true},
		{"tags", "icontains", "beta", true},
		{"tags", "icontains", "BET", false},
		{"labels", "icontains", "ENV", true},
		{"count", "icontains", "4", false},
		{"missing", "icontains", "x", false},

		{"ref", "startswith", "refs/heads/", true},
		{"ref", "startswith", "heads", false},
		{"ref", "startswith", "REFS", false},
		{"count", "startswith", "4", false},
		{"ref", "istartswith", "REFS/", true},
		{"ref", "istartswith", "heads", false},
		{"path", "endswith", ".go", true},
		{"path", "endswith", ".GO", false},
		{"path", "iendswith", ".GO", true},
		{"path", "iendswith", ".py", false},

		{"count", "lessthan", 5, true},
		{"count", "lessthan", 4, false},
		{"count", "lessthan", 3, false},
		{"small", "lessthan", 4, true},
		{"num", "lessthan", 4.5, true},
		{"kind", "lessthan", "q", true},
		{"kind", "lessthan", "a", false},
		{"count", "lessthan", "5", false},
		{"kind", "lessthan", 5, false},
		{"flag", "lessthan", 5, false},
		{"missing", "lessthan", 5, false},
		{"count", "lt", 5, true},

		{"count", "greaterthan", 3, true},
		{"count", "greaterthan", 4, false},
		{"numf", "greaterthan", 2, true},
		{"big", "greaterthan", int64(1 << 53), true},
		{"kind", "greaterthan", "a", true},
		{"count", "greaterthan", "3", false},
		{"missing", "greaterthan", 0, false},
		{"count", "gt", 3, true},

		{"kind", "inside", []any{"push", "pull"}, true},
		{"kind", "inside", "pushing", true},
		{"kind", "inside", []any{"x"}, false},
		{"count", "inside", []any{1, 4}, true},
		{"count", "inside", "4", false},
		{"missing", "inside", []any{"x"}, false},
		{"kind", "in", []string{"push"}, true},

		{"kind", "ninside", []any{"x"}, true},
		{"kind", "ninside", []any{"push"}, false},
		{"missing", "ninside", []any{"x"}, true},
		{"kind", "nin", "push", false},

		{"kind", "exists", nil, true},
		{"null", "exists", nil, true},
		{"missing", "exists", nil, false},
		{"items.0.name", "exists", nil, true},
		{"items.5.name", "exists", nil, false},
		{"kind", "exists", "ignored", true},

		{"missing", "nexists", nil, true},
		{"kind", "nexists", nil, false},
		{"null", "nexists", nil, false},

		{"ref", "regex", "heads/ma", true},
		{"ref", "regex", "^heads", false},
		{"ref", "regex", "HEADS", false},
		{"count", "regex", "4", false},
		{"missing", "regex", ".*", false},
		{"ref", "iregex", "HEADS", true},
		{"ref", "iregex", "^main", false},

		{"path", "matchwildcard", "src/*.go", true},
		{"path", "matchwildcard", "*.go", false},
		{"kind", "matchwildcard", "pu?h", true},
		{"kind", "matchwildcard", "p*", true},
		{"kind", "matchwildcard", "pu", false},
		{"count", "matchwildcard", "*", false},

		{"ts", "timediff_lt", 3600, true},
		{"ts", "timediff_lt", 60, false},
		{"epoch", "timediff_lt", 120, true},
		{"epochi", "timediff_lt", 30, false},
		{"bad", "timediff_lt", 3600, false},
		{"count", "timediff_lt", 1e12, true},
		{"missing", "timediff_lt", 3600, false},
		{"ts", "td_lt", 3600.5, true},
		{"ts", "timediff_gt", 60, true},
		{"ts", "timediff_gt", 3600, false},
		{"epochi", "timediff_gt", 30, true},
		{"bad", "timediff_gt", 0, false},
		{"ts", "td_gt", 599, true},
	}
	in := Input{Payload: testPayload()}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s %s %v", tt.field, tt.op, tt.value), func(t *testing.T) {
			t.Parallel()
			c, err := ParseConditions(leaf(tt.field, tt.op, tt.value))
			require.NoError(t, err)
			got, err := c.MatchAt(in, testNow)
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

// sampleValues has a valid value for every operator, so that each can be tried on a missing
// field.
var sampleValues = map[string]any{
	"equals": "x", "nequals": "x", "iequals": "x", "contains": "x", "ncontains": "x",
	"icontains": "x", "startswith": "x", "istartswith": "x", "endswith": "x", "iendswith": "x",
	"lessthan": 1, "greaterthan": 1, "inside": []any{"x"}, "ninside": []any{"x"},
	"exists": nil, "nexists": nil, "regex": "x", "iregex": "x", "matchwildcard": "*",
	"timediff_lt": 1, "timediff_gt": 1,
}

func TestOperatorsOnMissingAndNullFields(t *testing.T) {
	t.Parallel()
	require.ElementsMatch(t, slices.Collect(maps.Keys(operators)), slices.Collect(maps.Keys(sampleValues)))
	in := Input{Payload: map[string]any{"null": nil, "list": []any{}}}
	for name, value := range sampleValues {
		negated := operators[name].negated
		for _, field := range []string{"missing", "missing.deeper", "list.0", "null.deeper"} {
			c, err := ParseConditions(leaf(field, name, value))
			require.NoError(t, err)
			got, err := c.MatchAt(in, testNow)
			require.NoError(t, err)
			require.Equal(t, negated, got, "%s on %s", name, field)
		}
		if name == "exists" || name == "nexists" {
			continue
		}
		// A null field has nothing to compare: positive operators fail, negations hold.
		c, err := ParseConditions(leaf("null", name, value))
		require.NoError(t, err)
		got, err := c.MatchAt(in, testNow)
		require.NoError(t, err)
		require.Equal(t, negated, got, "%s on null", name)
	}
}

func TestAliasesResolve(t *testing.T) {
	t.Parallel()
	for alias, canonical := range aliases {
		op, err := lookupOperator(alias)
		require.NoError(t, err)
		require.Same(t, operators[canonical], op)
	}
}

func TestUnknownOperatorListsValidOnes(t *testing.T) {
	t.Parallel()
	_, err := lookupOperator("equal")
	require.ErrorContains(t, err, `unknown operator "equal" (valid: contains, endswith, equals,`)
	require.ErrorContains(t, err, "timediff_lt")
	require.ErrorContains(t, err, "aliases: eq, gt, ieq, in,")
}

func TestTimediffMatchUsesTheClock(t *testing.T) {
	t.Parallel()
	c, err := ParseConditions(leaf("at", "timediff_lt", 3600))
	require.NoError(t, err)
	recent := Input{Payload: map[string]any{"at": time.Now().Add(-time.Minute).Format(time.RFC3339)}}
	got, err := c.Match(recent)
	require.NoError(t, err)
	require.True(t, got)
	old := Input{Payload: map[string]any{"at": time.Now().Add(-2 * time.Hour).Format(time.RFC3339Nano)}}
	got, err = c.Match(old)
	require.NoError(t, err)
	require.False(t, got)
}

func TestToTime(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   any
		want time.Time
		ok   bool
	}{
		{"2024-01-01T00:00:00Z", time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), true},
		{"2024-01-01T02:00:00.5+02:00", time.Date(2024, 1, 1, 0, 0, 0, 5e8, time.UTC), true},
		{1704067200, time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), true},
		{1704067200.25, time.Date(2024, 1, 1, 0, 0, 0, 25e7, time.UTC), true},
		{json.Number("1704067200"), time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), true},
		{"2024-01-01", time.Time{}, false},
		{true, time.Time{}, false},
	}
	for _, tt := range tests {
		got, ok := toTime(tt.in)
		require.Equal(t, tt.ok, ok, "%v", tt.in)
		if ok {
			require.True(t, tt.want.Equal(got), "%v: got %v", tt.in, got)
		}
	}
}
