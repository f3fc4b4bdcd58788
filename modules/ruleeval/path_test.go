package ruleeval

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestLookup(t *testing.T) {
	t.Parallel()
	root := map[string]any{
		"body":   map[string]any{"kind": "push", "null": nil},
		"items":  []any{map[string]any{"name": "a"}, []any{"x", "y"}},
		"byname": map[string]any{"0": "zero"},
		"typed":  map[string]string{"k": "v"},
		"strs":   []string{"s0", "s1"},
		"arr":    [2]int{10, 20},
		"text":   "hello",
	}
	tests := []struct {
		path  string
		want  any
		found bool
	}{
		{"body.kind", "push", true},
		{"body", root["body"], true},
		{"body.null", nil, true},
		{"body.null.deeper", nil, false},
		{"body.missing", nil, false},
		{"missing.deeper", nil, false},
		{"items.0.name", "a", true},
		{"items.1.1", "y", true},
		{"items.2", nil, false},
		{"items.-1", nil, false},
		{"items.+1", nil, false},
		{"items.name", nil, false},
		{"items.99999999999999999999", nil, false},
		{"byname.0", "zero", true},
		{"typed.k", "v", true},
		{"typed.x", nil, false},
		{"strs.1", "s1", true},
		{"arr.1", 20, true},
		{"text.0", nil, false},
		{"text.length", nil, false},
	}
	for _, tt := range tests {
		segs, err := parseFieldPath(tt.path)
		require.NoError(t, err)
		got, found := lookup(root, segs)
		require.Equal(t, tt.found, found, tt.path)
		require.Equal(t, tt.want, got, tt.path)
	}

	_, found := lookup(map[string]any(nil), []string{"a"})
	require.False(t, found)
	_, found = lookup(map[int]any{1: "x"}, []string{"1"})
	require.False(t, found)
}

func TestParseFieldPath(t *testing.T) {
	t.Parallel()
	segs, err := parseFieldPath("a.0.b")
	require.NoError(t, err)
	require.Equal(t, []string{"a", "0", "b"}, segs)
	for _, bad := range []string{"", ".", "a.", ".a", "a..b"} {
		_, err := parseFieldPath(bad)
		require.Error(t, err, bad)
	}
}

func TestMember(t *testing.T) {
	t.Parallel()
	tests := []struct {
		base, key, want any
	}{
		{nil, "a", nil},
		{map[string]any{"a": 1}, "a", 1},
		{map[string]any{"a": 1}, "b", nil},
		{map[string]any{"a": 1}, 0, nil},
		{[]any{"x", "y"}, 1, "y"},
		{[]any{"x", "y"}, -1, "y"},
		{[]any{"x", "y"}, 1.0, "y"},
		{[]any{"x", "y"}, 1.5, nil},
		{[]any{"x", "y"}, 2, nil},
		{[]any{"x", "y"}, -3, nil},
		{[]any{"x", "y"}, "0", nil},
		{map[string]string{"k": "v"}, "k", "v"},
		{[]string{"s"}, 0, "s"},
		{[]string{"s"}, 5, nil},
		{"text", "field", nil},
		{3.0, "field", nil},
		{true, 0, nil},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, member(tt.base, tt.key), "%#v[%#v]", tt.base, tt.key)
	}
}
