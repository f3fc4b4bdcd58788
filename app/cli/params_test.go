package cli

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/attune-go/attune/modules/pack"
)

// A --param's text is read as its parameter's type; the process tests cover the commands.
func TestParamValue(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		typ, raw string
		want     any
	}{
		{pack.TypeString, "123", "123"},
		{pack.TypeString, "true", "true"},
		{pack.TypeString, `"quoted"`, `"quoted"`},
		{pack.TypeString, "", ""},
		{pack.TypeInteger, "-42", int64(-42)},
		{pack.TypeNumber, "2.5", 2.5},
		{pack.TypeNumber, "3", 3.0},
		{pack.TypeBoolean, "false", false},
		{pack.TypeArray, `["a", 1]`, []any{"a", 1.0}},
		{pack.TypeObject, `{"k": "v"}`, map[string]any{"k": "v"}},
		{pack.TypeAny, "7", 7.0},
		{pack.TypeAny, "Ada", "Ada"},
		{"", `{"k": 1}`, map[string]any{"k": 1.0}},
		{"", "Ada", "Ada"},
		{pack.TypeInteger, "null", nil},
		{pack.TypeString, "null", nil},
		{pack.TypeInteger, pack.Mask, pack.Mask},
	} {
		got, err := paramValue(pack.Param{Type: tc.typ}, tc.raw)
		require.NoError(t, err, "%s %q", tc.typ, tc.raw)
		require.Equal(t, tc.want, got, "%s %q", tc.typ, tc.raw)
	}
	for _, tc := range []struct{ typ, raw, want string }{
		{pack.TypeInteger, "abc", "want an integer"},
		{pack.TypeInteger, "2.5", "want an integer"},
		{pack.TypeNumber, "NaN", "want a number"},
		{pack.TypeNumber, "1e999", "want a number"},
		{pack.TypeNumber, `"3"`, "want a number"},
		{pack.TypeBoolean, "yes", "want true or false"},
		{pack.TypeArray, `{"k": 1}`, "want a JSON array"},
		{pack.TypeObject, "[1]", "want a JSON object"},
	} {
		_, err := paramValue(pack.Param{Type: tc.typ}, tc.raw)
		require.ErrorContains(t, err, tc.want, "%s %q", tc.typ, tc.raw)
		require.NotContains(t, err.Error(), tc.raw, "the value is not repeated: it may be a secret")
	}
}
