package ruleeval

import (
	"encoding/json"
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestFormatValue(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   any
		want string
	}{
		{nil, ""},
		{"text", "text"},
		{true, "true"},
		{3, "3"},
		{int64(-9007199254740993), "-9007199254740993"},
		{uint8(7), "7"},
		{3.0, "3"},
		{2.5, "2.5"},
		{float32(0.5), "0.5"},
		{1e20, "100000000000000000000"},
		{1e21, "1e+21"},
		{0.000001, "0.000001"},
		{0.0000001, "1e-07"},
		{math.Inf(1), "+Inf"},
		{json.Number("12.50"), "12.50"},
		{map[string]any{"b": 1.0, "a": "<x>"}, `{"a":"<x>","b":1}`},
		{[]any{"a", 2.0, nil}, `["a",2,null]`},
		{[]string{"a"}, `["a"]`},
		{map[any]any{"k": "v"}, `{"k":"v"}`},
		{ruleEnv{Ref: "r"}, `{"ref":"r"}`},
		{struct{ A int }{1}, "{1}"},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, formatValue(tt.in), "%#v", tt.in)
	}
}

func TestLooseEqual(t *testing.T) {
	t.Parallel()
	tests := []struct {
		a, b any
		want bool
	}{
		{3, 3.0, true},
		{int64(3), json.Number("3"), true},
		{json.Number("3.5"), 3.5, true},
		{uint16(3), 3, true},
		{3, "3", true},
		{3.5, "3.5", true},
		{3, "3.0", false},
		{"a", "a", true},
		{"a", "A", false},
		{true, "true", true},
		{nil, nil, false},
		{nil, "", false},
		{"", nil, false},
		{int64(1<<53 + 1), float64(1 << 53), false},
		{int64(1<<53 + 1), int64(1<<53 + 1), true},
		{[]any{1.0}, []any{1}, true},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, looseEqual(tt.a, tt.b), "%#v == %#v", tt.a, tt.b)
	}
}

func TestCompareOrdered(t *testing.T) {
	t.Parallel()
	tests := []struct {
		a, b any
		want int
		ok   bool
	}{
		{1, 2.0, -1, true},
		{json.Number("10"), 9, 1, true},
		{"b", "a", 1, true},
		{"10", "9", -1, true},
		{"10", 9, 0, false},
		{9, "10", 0, false},
		{true, 1, 0, false},
		{nil, 1, 0, false},
	}
	for _, tt := range tests {
		got, ok := compareOrdered(tt.a, tt.b)
		require.Equal(t, tt.ok, ok, "%#v vs %#v", tt.a, tt.b)
		require.Equal(t, tt.want, got, "%#v vs %#v", tt.a, tt.b)
	}
}

func TestToNumber(t *testing.T) {
	t.Parallel()
	for _, v := range []any{3, int8(3), int32(3), int64(3), uint(3), uint64(3), 3.0, float32(3), json.Number("3"), json.Number("3.0")} {
		n, ok := toNumber(v)
		require.True(t, ok, "%#v", v)
		require.Equal(t, 0, compareNumbers(n, number{i: 3, isInt: true}), "%#v", v)
	}
	for _, v := range []any{"3", true, nil, json.Number("x"), []any{3}} {
		_, ok := toNumber(v)
		require.False(t, ok, "%#v", v)
	}
	n, ok := toNumber(uint64(math.MaxUint64))
	require.True(t, ok)
	require.False(t, n.isInt)
}

func TestPlain(t *testing.T) {
	t.Parallel()
	in := map[string]any{
		"n":  json.Number("3"),
		"f":  json.Number("2.5"),
		"l":  []any{json.Number("1"), map[any]any{"k": "v"}},
		"s":  []string{"a"},
		"bs": []byte("x"),
	}
	require.Equal(t, map[string]any{
		"n":  int64(3),
		"f":  2.5,
		"l":  []any{int64(1), map[string]any{"k": "v"}},
		"s":  []any{"a"},
		"bs": []byte("x"),
	}, plain(in))
}

func TestCompareNumbersMixesIntAndFloatExactly(t *testing.T) {
	t.Parallel()
	i := func(v int64) number { return number{i: v, isInt: true} }
	f := func(v float64) number { return number{f: v} }
	tests := []struct {
		a, b number
		want int
	}{
		{f(2.5), i(2), 1},
		{f(2), i(2), 0},
		{i(2), f(2.5), -1},
		{f(-2.5), i(-2), -1},
		{i(-2), f(-2.5), 1},
		{f(1 << 53), i(1<<53 + 1), -1},
		{i(1<<53 + 1), f(1 << 53), 1},
		{f(1e19), i(math.MaxInt64), 1},
		{f(-1e19), i(math.MinInt64), -1},
		{f(math.NaN()), i(0), -1},
		{f(1.5), f(2.5), -1},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, compareNumbers(tt.a, tt.b), "%+v vs %+v", tt.a, tt.b)
	}
}
