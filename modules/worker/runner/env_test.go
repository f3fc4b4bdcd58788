package runner

import (
	"encoding/json"
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestEnvName(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"message":     "MESSAGE",
		"user-name":   "USER_NAME",
		"a.b c":       "A_B_C",
		"Retry2":      "RETRY2",
		"naïve":       "NA_VE",
		"already_ENV": "ALREADY_ENV",
	} {
		require.Equal(t, want, envName(in), in)
	}
}

func TestScalarString(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   any
		want string
	}{
		{nil, ""},
		{"text", "text"},
		{true, "true"},
		{float64(3), "3"},
		{float64(-3), "-3"},
		{2.5, "2.5"},
		{float64(1e20), "100000000000000000000"},
		{float64(1e21), "1e+21"},
		{0.000001, "1e-06"},
		{math.Inf(1), "+Inf"},
		{float32(1.5), "1.5"},
		{json.Number("12345678901234567890"), "12345678901234567890"},
		{int(-7), "-7"},
		{uint64(math.MaxUint64), "18446744073709551615"},
	} {
		got, ok := scalarString(tc.in)
		require.True(t, ok, "%#v", tc.in)
		require.Equal(t, tc.want, got, "%#v", tc.in)
	}
	for _, in := range []any{map[string]any{}, []any{"a"}, struct{}{}} {
		_, ok := scalarString(in)
		require.False(t, ok, "%#v", in)
	}
}

// The worker's own configuration (database and broker URLs with their passwords) never
// reaches an action: its output is stored and served. Not parallel: it sets the environment.
func TestEnvironmentDropsWorkerSecrets(t *testing.T) {
	t.Setenv("ATTUNE_DATABASE_URL", "postgres://attune:s3cret@db/attune")
	t.Setenv("ATTUNE_AMQP_URL", "amqp://guest:s3cret@mq/")
	t.Setenv("UNRELATED", "kept")
	env := environment(Job{ExecutionID: 7, ActionRef: "demo.x", Parameters: map[string]any{"n": 1}})
	joined := strings.Join(env, "\n")
	require.NotContains(t, joined, "s3cret")
	require.Contains(t, env, "UNRELATED=kept")
	require.Contains(t, env, "ATTUNE_EXECUTION_ID=7")
	require.Contains(t, env, "ATTUNE_PARAM_N=1")
}
