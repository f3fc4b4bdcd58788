package runner

import (
	"encoding/json"
	"errors"
	"fmt"
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
	t.Setenv("ATTUNE_WORKER", "parent")
	t.Setenv("ATTUNE_TOKEN", "atx_of-the-worker")
	env, err := environment(Job{ExecutionID: 7, ActionRef: "demo.x", Parameters: map[string]any{"n": 1},
		Env: []string{"ATTUNE_API_URL=http://api:8080", "ATTUNE_TOKEN=atx_of-the-job"}}, []string{"ATTUNE_WORKER=w1"}, refuseSpill(t))
	require.NoError(t, err)
	joined := strings.Join(env, "\n")
	require.NotContains(t, joined, "s3cret")
	require.Contains(t, env, "UNRELATED=kept")
	require.Contains(t, env, "ATTUNE_EXECUTION_ID=7")
	require.Contains(t, env, "ATTUNE_PARAM_N=1")
	require.Contains(t, env, "ATTUNE_WORKER=w1", "the worker's marker")
	require.NotContains(t, env, "ATTUNE_WORKER=parent", "a marker is never inherited from the worker's own environment")
	require.Contains(t, env, "ATTUNE_API_URL=http://api:8080", "the job's own variables")
	require.Contains(t, env, "ATTUNE_TOKEN=atx_of-the-job")
	require.NotContains(t, joined, "atx_of-the-worker")
}

func refuseSpill(t *testing.T) spillFunc {
	return func(name, _ string) (string, error) {
		t.Errorf("%s went to a file", name)
		return "", errors.New("no files here")
	}
}

// Values too large for the environment go to files it names instead, and the environment's
// parameters stay within their budget however many there are.
func TestEnvironmentSpillsLargeValues(t *testing.T) {
	t.Parallel()
	spilled := map[string]string{}
	spill := func(name, value string) (string, error) {
		spilled[name] = value
		return "/files/" + name, nil
	}
	big := strings.Repeat("b", maxEnvValue+1)
	params := map[string]any{
		"small":   "s",
		"edge":    strings.Repeat("e", maxEnvValue),
		"big":     big,
		"number":  float64(12),
		"object":  map[string]any{"large": big},
		"nothing": nil,
	}
	// Enough values at the bound to outgrow the budget; in name order, the later ones spill.
	fits := envParamBudget/maxEnvValue - 1 // "edge" takes one share of the budget
	for i := range fits + 2 {
		params[fmt.Sprintf("v%02d", i)] = strings.Repeat("v", maxEnvValue)
	}
	env, err := environment(Job{ExecutionID: 1, ActionRef: "demo.x", Parameters: params}, nil, spill)
	require.NoError(t, err)

	vars := map[string]string{}
	total := 0
	for _, kv := range env {
		name, value, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, envParamPrefix) {
			vars[name] = value
			total += len(value)
		}
		require.LessOrEqual(t, len(kv), maxEnvValue+100, "%s is too long for an environment string", name)
	}
	require.LessOrEqual(t, total, envParamBudget)
	require.Equal(t, "s", vars["ATTUNE_PARAM_SMALL"])
	require.Equal(t, "12", vars["ATTUNE_PARAM_NUMBER"])
	require.Contains(t, vars, "ATTUNE_PARAM_NOTHING")
	require.Len(t, vars["ATTUNE_PARAM_EDGE"], maxEnvValue, "a value at the bound stays")
	require.NotContains(t, vars, "ATTUNE_PARAM_BIG")
	require.Equal(t, "/files/ATTUNE_PARAM_BIG", vars["ATTUNE_PARAM_BIG_FILE"])
	require.Equal(t, big, spilled["ATTUNE_PARAM_BIG"])
	require.NotContains(t, vars, "ATTUNE_PARAM_OBJECT_FILE", "objects reach the action on stdin only")
	for i := range fits + 2 {
		name := fmt.Sprintf("ATTUNE_PARAM_V%02d", i)
		if i < fits-1 {
			require.Contains(t, vars, name)
			continue
		}
		require.NotContains(t, vars, name, "over the budget")
		require.Equal(t, "/files/"+name, vars[name+"_FILE"])
	}

	_, err = environment(Job{Parameters: map[string]any{"big": big}}, nil, func(string, string) (string, error) {
		return "", errors.New("disk full")
	})
	require.EqualError(t, err, "write parameter big to a file: disk full")
}
