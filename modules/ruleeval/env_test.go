package ruleeval

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
)

// testLanguage declares names the way package workflow does: data, a value of any shape, a
// number and a function.
var testLanguage = NewEnv(map[string]any{
	"input":  map[string]any{},
	"result": nil,
	"index":  0,
	"ok":     func() bool { return false },
})

func testValues(result any) map[string]any {
	return map[string]any{
		"input":  map[string]any{"n": int64(2), "name": "x"},
		"result": result,
		"index":  3,
		"ok":     func() bool { return true },
	}
}

func TestEnvAnyShapeNames(t *testing.T) {
	t.Parallel()
	tests := []struct {
		tmpl   string
		result any
		want   any
	}{
		{"{{ result.stdout }}", map[string]any{"stdout": "hi"}, "hi"},
		{"{{ result[1] }}", []any{"a", "b"}, "b"},
		{"{{ result + 1 }}", 41, 42},
		{"{{ len(result) }}", []any{1, 2, 3}, 3},
		{"{{ result.missing.deeper }}", map[string]any{}, nil},
		{"{{ result.stdout }}", "text", nil},
		{"{{ ok() && input.n == 2 }}", nil, true},
		{"{{ index * input.n }}", nil, 6},
		{"n={{ input.n }} r={{ result }}", []any{1}, "n=2 r=[1]"},
	}
	for _, tt := range tests {
		out, err := testLanguage.Render(map[string]any{"v": tt.tmpl}, "p", func() map[string]any { return testValues(tt.result) })
		require.NoError(t, err, tt.tmpl)
		require.Equal(t, tt.want, out.(map[string]any)["v"], tt.tmpl)
	}
}

func TestEnvRefusesUndeclaredNames(t *testing.T) {
	t.Parallel()
	err := testLanguage.Validate(map[string]any{"a": []any{"{{ item }}"}}, "p")
	var pe *PathError
	require.ErrorAs(t, err, &pe)
	require.Equal(t, "p.a[0]", pe.Path)
	require.EqualError(t, err, `p.a[0]: compile template "item": unknown name item (1:0)`)
	// The rules' names are not a workflow's, and the other way round.
	require.Error(t, testLanguage.Validate("{{ event.id }}", "p"))
	require.Error(t, ValidateTemplates(map[string]any{"x": "{{ result }}"}))
}

func TestEnvRenderBuildsValuesOnlyForTemplates(t *testing.T) {
	t.Parallel()
	calls := 0
	values := func() map[string]any { calls++; return testValues(nil) }
	out, err := testLanguage.Render([]any{"plain", 1, map[string]any{"k": "text"}}, "p", values)
	require.NoError(t, err)
	require.Equal(t, []any{"plain", 1, map[string]any{"k": "text"}}, out)
	require.Zero(t, calls)
	_, err = testLanguage.Render([]any{"{{ index }}", "{{ input.n }}"}, "p", values)
	require.NoError(t, err)
	require.Equal(t, 1, calls)
}

func TestEnvBool(t *testing.T) {
	t.Parallel()
	for _, cond := range []string{"ok()", "{{ ok() }}", "  {{ ok() && result.code == 0 }} ", "result.code == 0 && index > 2"} {
		require.NoError(t, testLanguage.CheckBool(cond), cond)
		got, err := testLanguage.Bool(cond, testValues(map[string]any{"code": 0}))
		require.NoError(t, err, cond)
		require.True(t, got, cond)
	}

	got, err := testLanguage.Bool("result.code == 1", testValues(map[string]any{"code": 0}))
	require.NoError(t, err)
	require.False(t, got)

	// Known not to be a bool: refused when checked.
	for cond, want := range map[string]string{
		"1 + 2":                   `expression "1 + 2": result is not a bool, got int`,
		"{{ upper(input.name) }}": `expression "upper(input.name)": result is not a bool, got string`,
		"x {{ ok() }}":            `"x {{ ok() }}": want one expression, bare or as one {{ }} template, not text with templates in it`,
		"ok(":                     `compile expression "ok(": `,
		"   ":                     "empty expression",
		"{{ ok() }} {{ ok }}":     "want one expression",
		"nope()":                  `compile expression "nope()": unknown name nope`,
	} {
		err := testLanguage.CheckBool(cond)
		require.ErrorContains(t, err, want, cond)
	}

	// Only the data knows: refused when it runs.
	_, err = testLanguage.Bool("result.stdout", testValues(map[string]any{"stdout": "x"}))
	require.True(t, errors.Is(err, ErrNotBool), err)
	require.EqualError(t, err, `expression "result.stdout": result is not a bool, got string`)
	_, err = testLanguage.Bool("{{ result.missing }}", testValues(map[string]any{}))
	require.EqualError(t, err, `expression "result.missing": result is not a bool, got <nil>`)
}

func TestEnvRefusesAFunctionAsAValue(t *testing.T) {
	t.Parallel()
	err := testLanguage.Validate(map[string]any{"a": "{{ ok }}"}, "p")
	require.EqualError(t, err, `p.a: template "ok" is a function; call it: ok()`)
	require.NoError(t, testLanguage.Validate(map[string]any{"a": "{{ ok() }}"}, "p"))
}
